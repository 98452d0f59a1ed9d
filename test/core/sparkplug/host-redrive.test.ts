/**
 * Redriven (late) Sparkplug messages (ADR 0017): replayed for their readings against the session they
 * were sent in, never moving the node's seq, session or aliases; DATA of a replaced session is
 * quarantined (REDRIVE_SESSION_ENDED), not dropped; no rebirth request for a late message.
 */
import { describe, expect, it } from 'vitest';
import { ProtocolError } from '../../../functions/core/errors.js';
import { encodePayload, type SpPayloadInput } from '../../../functions/core/sparkplug/codec.js';
import { SparkplugHost } from '../../../functions/core/sparkplug/host/host.js';
import { InMemorySparkplugStateStore } from '../../../functions/core/sparkplug/host/state.js';
import { DataType } from '../../../functions/core/sparkplug/types.js';

const T0 = 1_700_000_000_000;
const G = 'plant';
const N = 'edge-1';

function setup() {
  const store = new InMemorySparkplugStateStore();
  const host = new SparkplugHost({
    store,
    clock: () => T0 + 60_000,
    rebirthThrottleMs: 0,
    reorderTimeoutMs: 0,
  });
  const send = (type: string, payload: SpPayloadInput, at: number, redriveOf?: string, device?: string) =>
    host.handle({
      topic: `spBv1.0/${G}/${type}/${N}${device ? `/${device}` : ''}`,
      payload: encodePayload(payload),
      receivedAt: at,
      ...(redriveOf ? { redriveOf } : {}),
    });
  return { store, send };
}

const birth = (bdSeq: number, at: number, aliasName = 'Temp'): SpPayloadInput => ({
  timestamp: at,
  seq: 0,
  metrics: [
    { name: 'bdSeq', datatype: DataType.Int64, value: bdSeq },
    { name: aliasName, alias: 1, datatype: DataType.Double, value: 0 },
  ],
});
const data = (seq: number, at: number, value: number): SpPayloadInput => ({
  timestamp: at,
  seq,
  metrics: [{ alias: 1, datatype: DataType.Double, value }],
});
const death = (bdSeq: number): SpPayloadInput => ({
  metrics: [{ name: 'bdSeq', datatype: DataType.Int64, value: bdSeq }],
});

describe('redriven Sparkplug messages', () => {
  it('stores the readings of DATA redriven after later DATA, without moving the seq', async () => {
    const { store, send } = setup();
    await send('NBIRTH', birth(0, T0), T0);
    await send('NDATA', data(2, T0 + 20, 2), T0 + 20); // seq 1 was sent to the DLQ
    const before = await store.getNode(G, N);
    const late = await send('NDATA', data(1, T0 + 10, 1), T0 + 10, '4960001');
    expect(late.readings.map((r) => [r.metric, r.value])).toEqual([['Temp', 1]]);
    expect(late.actions).toEqual([]);
    const after = await store.getNode(G, N);
    expect(after?.expectedSeq).toBe(before?.expectedSeq);
    expect(after?.recentSeqs).toEqual(before?.recentSeqs);
  });

  it('stores the readings of DATA redriven after the node died, leaving it offline', async () => {
    const { store, send } = setup();
    await send('NBIRTH', birth(0, T0), T0);
    await send('NDEATH', death(0), T0 + 30);
    // Without the redrive marker the same message is ignored (offline node) and asks for a rebirth.
    const live = await send('NDATA', data(1, T0 + 10, 1), T0 + 10);
    expect(live.readings).toEqual([]);
    const late = await send('NDATA', data(1, T0 + 10, 1), T0 + 10, '4960001');
    expect(late.readings.map((r) => r.value)).toEqual([1]);
    expect(late.actions).toEqual([]);
    expect((await store.getNode(G, N))?.online).toBe(false);
  });

  it('quarantines DATA whose session was replaced (its aliases are gone)', async () => {
    const { send } = setup();
    await send('NBIRTH', birth(0, T0), T0);
    await send('NBIRTH', birth(1, T0 + 20_000, 'Other'), T0 + 20_000);
    await expect(send('NDATA', data(1, T0 + 10, 1), T0 + 10, '4960001')).rejects.toMatchObject({
      code: 'REDRIVE_SESSION_ENDED',
    });
    await expect(send('NDATA', data(1, T0 + 10, 1), T0 + 10, '4960001')).rejects.toBeInstanceOf(
      ProtocolError,
    );
  });

  it('a redriven NBIRTH older than the current birth yields its readings and leaves the session alone', async () => {
    const { store, send } = setup();
    await send('NBIRTH', birth(1, T0 + 20_000, 'New'), T0 + 20_000);
    const late = await send('NBIRTH', birth(0, T0, 'Old'), T0, '4960001');
    expect(late.readings.map((r) => r.metric)).toContain('Old');
    const node = await store.getNode(G, N);
    expect(node?.birthTime).toBe(T0 + 20_000);
    expect(String(node?.bdSeq)).toBe('1');
  });

  it('a redriven NBIRTH newer than the state applies as a birth', async () => {
    const { store, send } = setup();
    const late = await send('NBIRTH', birth(3, T0), T0, '4960001');
    expect(late.readings.map((r) => r.metric)).toContain('Temp');
    expect((await store.getNode(G, N))?.online).toBe(true);
  });
});
