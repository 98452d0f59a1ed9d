import { describe, expect, it } from 'vitest';
import { completingCommands } from '../../functions/core/commands.js';
import { ConflictError, TransientError } from '../../functions/core/errors.js';
import { InMemoryEventLog, type StoredEvent } from '../../functions/core/events.js';

const T0 = 1_700_000_000_000;
const response = (id: string, data: Record<string, unknown>): StoredEvent => ({
  id,
  deviceId: 'ep1',
  protocol: 'lwm2m',
  type: 'response',
  time: T0,
  detail: 'read /3/0/0 → 205',
  data,
});

function registry(fail?: Error) {
  const calls: Array<[string, string, string]> = [];
  return {
    calls,
    async completeCommand(deviceId: string, commandId: string, patch: { status: string }) {
      calls.push([deviceId, commandId, patch.status]);
      if (fail) throw fail;
    },
  };
}

describe('completingCommands (the lwm2m-ingest event log)', () => {
  it('logs every event and completes the command a response names: 2.xx succeeded, else failed', async () => {
    // Prepare
    const log = new InMemoryEventLog();
    const reg = registry();
    const events = completingCommands(log, reg, () => T0 + 5);
    // Act
    await events.append([
      response('e1', { commandId: 'c1', result: 205, success: true }),
      response('e2', { commandId: 'c2', result: 404, success: false }),
      response('e3', { result: 205, success: true }),
      { ...response('e4', { commandId: 'c4' }), type: 'register' },
    ]);
    // Assess
    expect(reg.calls).toEqual([
      ['ep1', 'c1', 'succeeded'],
      ['ep1', 'c2', 'failed'],
    ]);
    expect((await log.list({})).events.map((e) => e.id).sort()).toEqual(['e1', 'e2', 'e3', 'e4']);
  });

  it('leaves a command that is no longer pending as it is (a redelivered response)', async () => {
    const events = completingCommands(
      new InMemoryEventLog(),
      registry(new ConflictError('not pending')),
      () => T0,
    );
    await expect(
      events.append([response('e1', { commandId: 'c1', result: 205, success: true })]),
    ).resolves.toBe(undefined);
  });

  it('propagates any other failure, so the batch is retried', async () => {
    const events = completingCommands(
      new InMemoryEventLog(),
      registry(new TransientError('THROTTLED', 'registry throttled')),
      () => T0,
    );
    await expect(
      events.append([response('e1', { commandId: 'c1', result: 205, success: true })]),
    ).rejects.toThrow('registry throttled');
  });
});
