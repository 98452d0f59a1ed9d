import { beforeEach, describe, expect, it } from 'vitest';
import { ValidationError } from '../../../functions/core/errors.js';
import type { FirmwarePackage, PackageStore } from '../../../functions/core/operations/packages.js';
import { OperationService } from '../../../functions/core/operations/service.js';
import { MemoryOperationStore } from '../../../functions/core/operations/store.js';
import type { Command } from '../../../functions/core/registry.js';

/**
 * Fake devices behind the command port: each runs the object 5 state machine one step per `advance()`
 * and answers the commands sent to it on the next `advance()`. `failWith` makes a device's download end
 * in that Update Result.
 */
class FakeFleet {
  now = 1_000;
  private n = 0;
  readonly commands = new Map<string, Command>();
  readonly sentTo: string[] = [];
  readonly fw = new Map<string, { state: number; result: number; ticks: number }>();
  constructor(
    readonly ids: string[],
    readonly failWith: Map<string, number> = new Map(),
    readonly silent = new Set<string>(),
  ) {
    for (const id of ids) this.fw.set(id, { state: 0, result: 0, ticks: 0 });
  }

  port = {
    create: async (deviceId: string, body: Record<string, unknown>): Promise<Command> => {
      if (!this.fw.has(deviceId))
        throw new ValidationError(`device ${deviceId} has not registered over LwM2M`);
      const c: Command = {
        deviceId,
        commandId: `c${++this.n}`,
        protocol: 'lwm2m',
        operation: String(body.operation),
        request: body,
        status: 'pending',
        createdAt: this.now,
        updatedAt: this.now,
        deadline: this.now + 60_000,
      };
      this.commands.set(c.commandId, c);
      this.sentTo.push(deviceId);
      return c;
    },
    get: async (_deviceId: string, id: string) => this.commands.get(id),
  };

  advance(ms = 500): void {
    this.now += ms;
    for (const [id, f] of this.fw) {
      if (f.state === 1 && ++f.ticks >= 2) {
        const fail = this.failWith.get(id);
        if (fail) Object.assign(f, { state: 0, result: fail });
        else Object.assign(f, { state: 2, ticks: 0 });
      } else if (f.state === 3 && ++f.ticks >= 2) Object.assign(f, { state: 0, result: 1, ticks: 0 });
    }
    for (const c of this.commands.values()) {
      if (c.status !== 'pending' || this.silent.has(c.deviceId)) continue;
      const f = this.fw.get(c.deviceId)!;
      const r = c.request as Record<string, unknown>;
      let result = 204;
      let readings: unknown[] = [];
      if (r.operation === 'write' && r.path === '/5/0/1') Object.assign(f, { state: 1, result: 0, ticks: 0 });
      else if (r.operation === 'execute' && r.path === '/5/0/2') {
        if (f.state === 2) Object.assign(f, { state: 3, ticks: 0 });
        else result = 405;
      } else if (r.operation === 'execute' && r.path === '/5/0/10') {
        // Cancel: allowed while Downloading or Downloaded, back to Idle with Update Result 10.
        if (f.state === 1 || f.state === 2) Object.assign(f, { state: 0, result: 10, ticks: 0 });
        else result = 405;
      } else if (r.operation === 'read-composite') {
        result = 205;
        readings = [
          { metric: '/5/0/3', value: f.state },
          { metric: '/5/0/5', value: f.result },
        ];
      } else if (r.operation === 'read') result = 205;
      c.status = result < 300 ? 'succeeded' : 'failed';
      c.response = { result, success: result < 300, readings };
    }
  }
}

const pkg: FirmwarePackage = {
  id: 'p1',
  name: 'fw.bin',
  version: '2.0.0',
  size: 3,
  sha256: 'ab',
  createdAt: 0,
};
const packages: PackageStore = {
  put: async () => {},
  get: async (id) => (id === 'p1' ? pkg : undefined),
  list: async () => [pkg],
  downloadUri: async (_p, exp) => `http://x/firmware/p1?exp=${exp}#sha256=ab`,
};

let fleet: FakeFleet;
let store: MemoryOperationStore;
let svc: OperationService;
const ids = Array.from({ length: 30 }, (_, i) => `d${String(i).padStart(2, '0')}`);

function make(f: FakeFleet) {
  fleet = f;
  store = new MemoryOperationStore();
  let n = 0;
  svc = new OperationService({
    store,
    commands: f.port,
    selectDevices: async (filter) => filter.deviceIds ?? ids,
    packages,
    clock: () => fleet.now,
    newId: () => `op${++n}`,
  });
}

async function runToEnd(id: string, maxPasses = 500) {
  for (let i = 0; i < maxPasses; i++) {
    const r = await svc.tick(id);
    const s = r!.operation.status;
    if (s === 'completed' || s === 'cancelled') return r!.operation;
    fleet.advance();
  }
  throw new Error('operation did not finish');
}

beforeEach(() =>
  make(
    new FakeFleet(
      ids,
      new Map([
        ['d03', 5],
        ['d17', 2],
      ]),
    ),
  ),
);

const firmware = (settings: Record<string, unknown> = {}) => ({
  filter: { type: 'meter' },
  operation: { kind: 'firmware-update', packageId: 'p1' },
  settings: { concurrency: 5, ratePerSecond: 4, pollMs: 500, targetTimeoutMs: 60_000, ...settings },
});

describe('OperationService', () => {
  it('runs a firmware campaign to the end: successes, and failures with their Update Result', async () => {
    const op = await svc.create(firmware());
    expect(op).toMatchObject({ status: 'running', total: 30, counts: { pending: 30 } });
    let maxInFlight = 0;
    for (;;) {
      const r = (await svc.tick(op.id))!;
      maxInFlight = Math.max(maxInFlight, r.operation.counts.sent);
      if (r.operation.status === 'completed') break;
      fleet.advance();
    }
    const done = (await svc.get(op.id))!;
    expect(done.counts).toMatchObject({ succeeded: 28, failed: 2, pending: 0, sent: 0 });
    expect(maxInFlight).toBeLessThanOrEqual(5);
    const failed = await svc.targets(op.id, 'failed');
    expect(failed.map((t) => [t.deviceId, t.reason?.updateResult])).toEqual([
      ['d03', 5],
      ['d17', 2],
    ]);
    expect(failed[0]!.reason?.message).toContain('integrity check failure');
    // Every device got: write URI, execute only after Downloaded, and reads in between.
    const ops = [...fleet.commands.values()]
      .filter((c) => c.deviceId === 'd05')
      .map((c) => c.request.operation);
    expect(ops[0]).toBe('write');
    expect(ops).toContain('execute');
    expect(ops.indexOf('execute')).toBeGreaterThan(ops.indexOf('read-composite'));
  });

  it('retry re-runs only the failed targets', async () => {
    const op = await svc.create(firmware());
    await runToEnd(op.id);
    fleet.failWith.clear();
    fleet.sentTo.length = 0;
    const again = await svc.retry(op.id);
    expect(again).toMatchObject({ status: 'running', retries: 1, counts: { pending: 2, succeeded: 28 } });
    const done = await runToEnd(op.id);
    expect(done.counts).toMatchObject({ succeeded: 30, failed: 0 });
    expect(new Set(fleet.sentTo)).toEqual(new Set(['d03', 'd17']));
    await expect(svc.retry(op.id)).rejects.toThrow(/no failed/);
  });

  it('a worker pass racing a retry cannot strand its targets on a completed operation', async () => {
    const op = await svc.create(firmware());
    await runToEnd(op.id);
    fleet.failWith.clear();
    // The worker's pass lands while the retry writes the targets.
    const putTargets = store.putTargets.bind(store);
    store.putTargets = async (targets) => {
      await svc.tick(op.id);
      return putTargets(targets);
    };
    await svc.retry(op.id);
    store.putTargets = putTargets;
    const done = await runToEnd(op.id);
    expect(done.counts).toMatchObject({ succeeded: 30, failed: 0, pending: 0 });
  });

  it('cancel stops the pending targets and cancels downloads in flight on the device (/5/0/10)', async () => {
    const op = await svc.create(firmware({ concurrency: 3, ratePerSecond: 100 }));
    await svc.tick(op.id);
    fleet.advance();
    await svc.cancel(op.id);
    await expect(svc.cancel(op.id)).rejects.toThrow(/cancelling/);
    const done = await runToEnd(op.id);
    expect(done.status).toBe('cancelled');
    expect(done.counts.cancelled).toBe(30);
    expect(new Set(fleet.sentTo).size).toBe(3);
    const inFlight = (await svc.targets(op.id)).filter((t) => t.attempts > 0);
    expect(inFlight).toHaveLength(3);
    for (const t of inFlight) {
      expect(t.reason).toMatchObject({ code: 'CANCELLED', updateResult: 10 });
      expect(fleet.fw.get(t.deviceId)).toMatchObject({ state: 0, result: 10 });
    }
    // Nobody was told to Update.
    const executes = [...fleet.commands.values()].filter(
      (c) => (c.request as { path?: string }).path === '/5/0/2',
    );
    expect(executes).toHaveLength(0);
  });

  it('cancel wins over a worker pass that rewrites the operation between its read and its flip', async () => {
    const op = await svc.create(firmware({ concurrency: 3, ratePerSecond: 100 }));
    await svc.tick(op.id);
    // The worker's pass lands once, right after the cancel has read the operation.
    const get = store.getOperation.bind(store);
    let raced = false;
    store.getOperation = async (id) => {
      const read = await get(id);
      if (!raced) {
        raced = true;
        fleet.advance();
        await svc.tick(op.id);
      }
      return read;
    };
    const cancelled = await svc.cancel(op.id);
    store.getOperation = get;
    expect(raced).toBe(true);
    expect(cancelled.status).toBe('cancelling');
    expect((await svc.get(op.id))?.status).toBe('cancelling');
    expect((await runToEnd(op.id)).status).toBe('cancelled');
  });

  it('cancel leaves a device that is already Updating to finish', async () => {
    const op = await svc.create(firmware({ concurrency: 1, ratePerSecond: 100 }));
    // Run until the first device is Updating (Execute /5/0/2 sent and accepted).
    for (let i = 0; i < 50 && ![...fleet.fw.values()].some((f) => f.state === 3); i++) {
      await svc.tick(op.id);
      fleet.advance();
    }
    await svc.cancel(op.id);
    const done = await runToEnd(op.id);
    expect(done.status).toBe('cancelled');
    expect(done.counts).toMatchObject({ succeeded: 1, cancelled: 29 });
    const cancels = [...fleet.commands.values()].filter(
      (c) => (c.request as { path?: string }).path === '/5/0/10',
    );
    expect(cancels).toHaveLength(0);
  });

  it('a single command over explicit devices; a device that never answers times out', async () => {
    make(new FakeFleet(ids, new Map(), new Set(['d02'])));
    const op = await svc.create({
      filter: { deviceIds: ['d01', 'd02', 'd09'] },
      operation: { kind: 'command', command: { protocol: 'lwm2m', operation: 'read', path: '/3/0/0' } },
      settings: { targetTimeoutMs: 5000 },
    });
    const done = await runToEnd(op.id);
    const ts = await svc.targets(op.id);
    expect(ts.map((t) => t.status)).toEqual(['succeeded', 'timed-out', 'succeeded']);
    expect(done.counts).toMatchObject({ succeeded: 2, 'timed-out': 1 });
  });

  it('a device the command path refuses fails with REJECTED, its neighbours are unharmed', async () => {
    make(new FakeFleet(['a', 'c']));
    const op = await svc.create({
      filter: { deviceIds: ['a', 'b', 'c'] },
      operation: { kind: 'command', command: { protocol: 'lwm2m', operation: 'execute', path: '/3/0/4' } },
    });
    await runToEnd(op.id);
    const ts = await svc.targets(op.id);
    expect(ts.map((t) => [t.deviceId, t.status, t.reason?.code])).toEqual([
      ['a', 'succeeded', undefined],
      ['b', 'failed', 'REJECTED'],
      ['c', 'succeeded', undefined],
    ]);
  });

  it('refuses bad requests naming the field', async () => {
    const bad: Array<[unknown, string]> = [
      [{}, 'filter'],
      [{ filter: {}, operation: { kind: 'command', command: {} } }, 'filter'],
      [{ filter: { type: 'm' }, operation: { kind: 'reboot' } }, 'operation.kind'],
      [
        { filter: { type: 'm' }, operation: { kind: 'firmware-update', packageId: 'nope' } },
        'operation.packageId',
      ],
      [
        {
          filter: { type: 'm' },
          operation: { kind: 'command', command: { protocol: 'lwm2m', operation: 'read' } },
        },
        'operation.command.path',
      ],
      [{ ...firmware(), settings: { concurrency: 0 } }, 'settings.concurrency'],
      [
        { filter: { deviceIds: [] }, operation: { kind: 'firmware-update', packageId: 'p1' } },
        'filter.deviceIds',
      ],
      [{ filter: { tag: 'a:1,,b' }, operation: { kind: 'command', command: {} } }, 'filter.tag'],
      [{ filter: { online: 'yes' }, operation: { kind: 'command', command: {} } }, 'filter.online'],
      [{ filter: { protocol: 'coap' }, operation: { kind: 'command', command: {} } }, 'filter.protocol'],
      [{ filter: { site: 'north' }, operation: { kind: 'command', command: {} } }, 'filter.site'],
    ];
    for (const [body, field] of bad) {
      const e = await svc.create(body).catch((x) => x);
      expect(e, JSON.stringify(body)).toBeInstanceOf(ValidationError);
      expect(e.field).toBe(field);
    }
  });
});
