/**
 * Batch operations end to end on the local stack (ADR 0022): a firmware campaign over 100 simulated
 * devices, 5 of them set to fail their integrity check, through the REST API — package upload, signed
 * download by each device, Write /5/0/1, polls of /5/0/3 + /5/0/5, Execute /5/0/2 — ends 95 succeeded
 * and 5 failed with Update Result 5; retry re-runs only those 5; cancel stops pending devices.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LocalStack, startLocalStack } from '../../infra/local/stack.js';
import { type Fleet, startFleet } from '../../simulator/fleet.js';

const ADMIN = `dp_admin_${randomBytes(32).toString('base64url')}`;
let stack: LocalStack;
let fleet: Fleet;
let dir: string;
const FAILING = [
  'sim-flow-meter-00007',
  'sim-flow-meter-00021',
  'sim-flow-meter-00050',
  'sim-flow-meter-00064',
  'sim-flow-meter-00099',
];

async function api(method: string, path: string, body?: unknown) {
  const res = await fetch(`http://127.0.0.1:${stack.httpPort}${path}`, {
    method,
    headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined };
}

async function waitFor(
  id: string,
  done: (op: { status: string; counts: Record<string, number> }) => boolean,
  timeoutMs = 120_000,
) {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const r = await api('GET', `/operations/${id}`);
    if (done(r.body)) return r.body;
    if (Date.now() > until) throw new Error(`operation ${id} still ${JSON.stringify(r.body.counts)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** A command's final state (its answer, or its failure). */
async function waitForCommand(deviceId: string, commandId: string, timeoutMs = 30_000) {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const r = await api('GET', `/devices/${deviceId}/commands/${commandId}`);
    if (r.body.status !== 'pending') return r.body;
    if (Date.now() > until) throw new Error(`command ${commandId} still pending`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Collects the admin's live operation events (ADR 0023) from /live as Server-Sent Events. */
async function liveOperations() {
  const controller = new AbortController();
  const res = await fetch(`http://127.0.0.1:${stack.httpPort}/live?kinds=operation`, {
    headers: { authorization: `Bearer ${ADMIN}` },
    signal: controller.signal,
  });
  expect(res.status).toBe(200);
  const events: Array<{ operationId: string; status: string; done: number; total: number }> = [];
  void (async () => {
    const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
    let buf = '';
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        buf += value;
        for (let i = buf.indexOf('\n\n'); i >= 0; i = buf.indexOf('\n\n')) {
          const data = /^data: (.*)$/m.exec(buf.slice(0, i))?.[1];
          buf = buf.slice(i + 2);
          if (data) events.push(JSON.parse(data));
        }
      }
    } catch {
      // aborted
    }
  })();
  return { events, close: () => controller.abort() };
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'dualpath-ops-'));
  stack = await startLocalStack({ dataDir: dir, mqttPort: 0, httpPort: 0, adminKey: ADMIN });
  // Registered up front with their type (auto-registration would give them the default type).
  if (!(await stack.registry.getDeviceType('flow-meter')))
    await stack.registry.putDeviceType({ id: 'flow-meter', name: 'Flow meter', capabilities: [], units: {} });
  for (let i = 0; i < 100; i++) {
    const id = `sim-flow-meter-${String(i).padStart(5, '0')}`;
    await stack.registry.putDevice({
      id,
      type: 'flow-meter',
      tags: {},
      status: 'active',
      protocols: [],
      createdAt: 0,
      updatedAt: 0,
    });
  }
  fleet = await startFleet({
    url: `mqtt://127.0.0.1:${stack.mqttPort}`,
    devices: 100,
    types: ['flow-meter'],
    rate: 0.05,
    lwm2mRate: 0.02,
    seed: 5,
    firmwareDownloadMs: 300,
    firmwareUpdateMs: 300,
    firmwareFailures: { ids: FAILING, kind: 'integrity' },
  });
  expect(await fleet.ready(60_000)).toBe(true);
}, 120_000);

afterAll(async () => {
  await fleet?.stop();
  await stack?.stop();
  rmSync(dir, { recursive: true, force: true });
}, 60_000);

describe('firmware campaign over 100 simulated devices', () => {
  let opId = '';
  let packageId = '';

  it('ends with 95 succeeded and 5 failed with their Update Result', async () => {
    const image = Buffer.from('flow-meter firmware 2.1.0 '.repeat(2000));
    const up = await api('POST', '/firmware', {
      name: 'flow-meter-2.1.0.bin',
      version: '2.1.0',
      contentBase64: image.toString('base64'),
    });
    expect(up.status).toBe(201);
    expect(up.body.size).toBe(image.length);
    packageId = up.body.id;

    const live = await liveOperations();
    const started = Date.now();
    const created = await api('POST', '/operations', {
      filter: { type: 'flow-meter' },
      operation: { kind: 'firmware-update', packageId: up.body.id },
      settings: { concurrency: 25, ratePerSecond: 50, pollMs: 250, targetTimeoutMs: 60_000 },
    });
    expect(created.status, JSON.stringify(created.body)).toBe(202);
    expect(created.body).toMatchObject({ status: 'running', total: 100 });
    opId = created.body.id;
    let maxSent = 0;
    const op = await waitFor(opId, (o) => {
      maxSent = Math.max(maxSent, o.counts.sent ?? 0);
      return o.status === 'completed';
    });
    const seconds = (Date.now() - started) / 1000;
    console.log(
      `firmware campaign, 100 devices (concurrency 25): ${seconds.toFixed(1)} s; max in flight ${maxSent}`,
    );
    expect(maxSent).toBeLessThanOrEqual(25);
    expect(op.counts).toMatchObject({ succeeded: 95, failed: 5, pending: 0, sent: 0, 'timed-out': 0 });
    expect(op.progress).toEqual({ finished: 100, total: 100, percent: 100 });
    // Progress was pushed to live subscribers as it happened, ending with the whole campaign.
    await new Promise((r) => setTimeout(r, 500));
    live.close();
    const mine = live.events.filter((e) => e.operationId === opId);
    expect(mine.length).toBeGreaterThan(2);
    expect(mine.some((e) => e.done > 0 && e.done < 100)).toBe(true);
    expect(mine.at(-1)).toMatchObject({ status: 'completed', done: 100, total: 100 });

    const all = (await api('GET', `/operations/${opId}/targets`)).body.targets as Array<{
      startedAt: number;
      updatedAt: number;
    }>;
    const per = all.map((t) => t.updatedAt - t.startedAt).sort((a, b) => a - b);
    console.log(
      `per device (start → outcome): median ${(per[50]! / 1000).toFixed(1)} s, p95 ${(per[95]! / 1000).toFixed(1)} s`,
    );
    const failed = await api('GET', `/operations/${opId}/targets?status=failed`);
    expect(failed.body.targets.map((t: { deviceId: string }) => t.deviceId).sort()).toEqual(FAILING);
    for (const t of failed.body.targets)
      expect(t.reason).toMatchObject({ code: 'UPDATE_RESULT', updateResult: 5 });
    // The devices really run the new firmware (or not).
    expect(fleet.device('sim-flow-meter-00008')!.lwm2m.info.firmware).toBe('2.1.0');
    expect(fleet.device('sim-flow-meter-00007')!.lwm2m.info.firmware).toBe('1.4.2');
    // The commands went through the single-device command path: recorded per device.
    const cmds = await api('GET', '/devices/sim-flow-meter-00008/commands');
    const ops = cmds.body.commands.map((c: { operation: string }) => c.operation);
    expect(ops).toContain('write');
    expect(ops).toContain('execute');
    expect(ops).toContain('read-composite');
  }, 180_000);

  it('retry re-runs only the failed devices', async () => {
    const before = await api('GET', '/devices/sim-flow-meter-00008/commands');
    const r = await api('POST', `/operations/${opId}/retry`);
    expect(r.status).toBe(202);
    expect(r.body).toMatchObject({ status: 'running', retries: 1, counts: { pending: 5, succeeded: 95 } });
    // Not while it runs.
    expect((await api('POST', `/operations/${opId}/retry`)).status).toBe(409);
    const op = await waitFor(opId, (o) => o.status === 'completed');
    expect(op.counts).toMatchObject({ succeeded: 95, failed: 5 });
    const targets = (await api('GET', `/operations/${opId}/targets`)).body.targets as Array<{
      deviceId: string;
      attempts: number;
    }>;
    expect(
      targets
        .filter((t) => t.attempts === 2)
        .map((t) => t.deviceId)
        .sort(),
    ).toEqual(FAILING);
    expect(targets.filter((t) => t.attempts === 1)).toHaveLength(95);
    const after = await api('GET', '/devices/sim-flow-meter-00008/commands');
    expect(after.body.commands.length).toBe(before.body.commands.length);
  }, 120_000);

  it('cancel during a firmware campaign cancels the downloads in flight on the devices (/5/0/10)', async () => {
    // Polls 5 s apart: a device that took the Package URI is still Downloading or Downloaded (not yet
    // told to Update) when the cancel reaches it.
    const created = await api('POST', '/operations', {
      filter: { type: 'flow-meter' },
      operation: { kind: 'firmware-update', packageId },
      settings: { concurrency: 10, ratePerSecond: 100, pollMs: 5000, targetTimeoutMs: 60_000 },
    });
    expect(created.status).toBe(202);
    const id = created.body.id as string;
    await waitFor(id, (o) => (o.counts.sent ?? 0) > 0, 30_000);
    expect((await api('POST', `/operations/${id}/cancel`)).status).toBe(202);
    const op = await waitFor(id, (o) => o.status === 'cancelled', 60_000);
    const targets = (await api('GET', `/operations/${id}/targets`)).body.targets as Array<{
      deviceId: string;
      status: string;
      attempts: number;
      reason?: { code: string; updateResult?: number };
    }>;
    const started = targets.filter((t) => t.attempts > 0);
    expect(started.length).toBeGreaterThan(0);
    expect(op.counts.cancelled).toBe(100 - op.counts.failed);
    expect(op.counts.succeeded).toBe(0);
    // The pending devices were never started: no command of this operation reached them.
    const neverStarted = targets.filter((t) => t.attempts === 0);
    expect(neverStarted.length).toBeGreaterThan(0);
    for (const t of neverStarted) expect(t.status).toBe('cancelled');
    const untouched = await api('GET', `/devices/${neverStarted[0]!.deviceId}/commands`);
    expect(
      (untouched.body.commands as Array<{ createdAt: number }>).filter(
        (c) => c.createdAt >= (created.body.createdAt as number),
      ),
    ).toEqual([]);
    for (const t of started) {
      // Cancelled on the device (Update Result 10), unless its download had failed its integrity check first.
      if (t.status === 'failed') {
        expect(FAILING).toContain(t.deviceId);
        expect(t.reason?.updateResult).toBe(5);
      } else
        expect(t, t.deviceId).toMatchObject({
          status: 'cancelled',
          reason: { code: 'CANCELLED', updateResult: 10 },
        });
    }
    // The device agrees: Idle with Update Result 10.
    const one = started.find((t) => t.status === 'cancelled')!;
    const read = await api('POST', `/devices/${one.deviceId}/commands`, {
      protocol: 'lwm2m',
      operation: 'read-composite',
      paths: ['/5/0/3', '/5/0/5'],
    });
    expect(read.status).toBeLessThan(300);
    const cmd = read.body.commandId
      ? await waitForCommand(one.deviceId, read.body.commandId as string)
      : read.body;
    const values = Object.fromEntries(
      (cmd.response.readings as Array<{ metric: string; value: unknown }>).map((r) => [
        r.metric,
        Number(r.value),
      ]),
    );
    expect(values).toEqual({ '/5/0/3': 0, '/5/0/5': 10 });
  }, 120_000);

  it('cancel stops the pending devices; the ones in flight finish', async () => {
    const created = await api('POST', '/operations', {
      filter: { type: 'flow-meter' },
      operation: { kind: 'command', command: { protocol: 'lwm2m', operation: 'read', path: '/3/0/3' } },
      settings: { concurrency: 2, ratePerSecond: 1 },
    });
    expect(created.status).toBe(202);
    const c = await api('POST', `/operations/${created.body.id}/cancel`);
    expect(c.status).toBe(202);
    expect(c.body.status).toBe('cancelling');
    const op = await waitFor(created.body.id, (o) => o.status === 'cancelled', 60_000);
    const started = op.counts.succeeded + op.counts.failed + op.counts['timed-out'];
    expect(op.counts.cancelled).toBe(100 - started);
    expect(started).toBeLessThanOrEqual(2);
    const ok = (await api('GET', `/operations/${created.body.id}/targets?status=succeeded`)).body.targets;
    for (const t of ok) expect(t.response.readings[0]).toMatchObject({ metric: '/3/0/3', value: '2.1.0' });
  }, 90_000);

  it('lists operations newest first, and refuses bad requests naming the field', async () => {
    const list = await api('GET', '/operations');
    expect(list.body.operations).toHaveLength(3);
    expect(list.body.operations[2].id).toBe(opId);
    const bad = await api('POST', '/operations', {
      filter: { type: 'flow-meter' },
      operation: { kind: 'nope' },
    });
    expect(bad.status).toBe(400);
    expect(bad.body.error.field).toBe('operation.kind');
    const none = await api('POST', '/operations', {
      filter: { type: 'no-such-type' },
      operation: { kind: 'command', command: { protocol: 'lwm2m', operation: 'read', path: '/3/0/0' } },
    });
    expect(none.status).toBe(400);
    expect(none.body.error.field).toBe('filter');
  });
});
