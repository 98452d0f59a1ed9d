/**
 * Sparkplug host rules (spec Ch.5/6) beyond the basics in host.test.ts: one test per rule, over the
 * session fixture in test/fixtures/sparkplug-host. The host's clock follows the receipt times given.
 */
import { describe, expect, it } from 'vitest';
import { ConflictError, DecodeError, ProtocolError } from '../../../functions/core/errors.js';
import { decodePayload, encodePayload } from '../../../functions/core/sparkplug/codec.js';
import { SparkplugHost } from '../../../functions/core/sparkplug/host/host.js';
import {
  type DeviceRecord,
  InMemorySparkplugStateStore,
  type NodeRecord,
  type SparkplugStateStore,
} from '../../../functions/core/sparkplug/host/state.js';
import { createInMemorySparkplugHost } from '../../../functions/core/sparkplug/index.js';
import { DataType } from '../../../functions/core/sparkplug/types.js';
import {
  byAlias,
  DEVICE,
  data,
  dbirth,
  eventTypes,
  GROUP,
  hostHarness,
  NODE,
  nbirth,
  ndeath,
  rebirths,
  T0,
  topicOf,
} from '../../fixtures/sparkplug-host/session.js';

describe('host: unknown node, device, metric or alias → rebirth request', () => {
  it('DBIRTH, DDATA and DDEATH before any NBIRTH each ask for a rebirth and store nothing', async () => {
    const { send } = hostHarness({ throttle: 0 });
    const outs = [
      await send('DBIRTH', dbirth(1), DEVICE),
      await send('DDATA', data(2, [byAlias(10, DataType.Int16, 1)]), DEVICE),
      await send('DDEATH', { timestamp: T0, seq: 3 }, DEVICE),
    ];
    for (const out of outs) {
      expect(out.readings).toEqual([]);
      expect(rebirths(out)).toHaveLength(1);
      expect(eventTypes(out)).toEqual(['ignored', 'rebirth-requested']);
    }
  });

  it('builds the NCMD exactly: spBv1.0/{group}/NCMD/{node}, QoS 0, timestamp, Rebirth=true, no seq', async () => {
    const { send } = hostHarness();
    const out = await send('NDATA', data(4, [byAlias(1, DataType.Int64, 1)]), undefined, T0 + 42);
    const [ncmd] = rebirths(out);
    expect(ncmd).toMatchObject({ kind: 'publish', topic: `spBv1.0/${GROUP}/NCMD/${NODE}`, qos: 0 });
    const payload = decodePayload(ncmd!.payload);
    expect(payload.timestamp).toBe(T0 + 42);
    expect(payload.seq).toBeUndefined();
    expect(payload.metrics).toHaveLength(1);
    expect(payload.metrics[0]).toMatchObject({
      name: 'Node Control/Rebirth',
      datatype: DataType.Boolean,
      value: true,
    });
  });

  it('DATA after a valid NDEATH (offline node) asks for a rebirth', async () => {
    const { send } = hostHarness();
    await send('NBIRTH', nbirth(3));
    await send('NDEATH', ndeath(3));
    const out = await send('NDATA', data(1, [byAlias(1, DataType.Int64, 9)]));
    expect(out.readings).toEqual([]);
    expect(out.events[0]?.detail).toContain('offline');
    expect(rebirths(out)).toHaveLength(1);
  });

  it('stores the known metrics of a message and reports the unknown name and alias in an event', async () => {
    const { send } = hostHarness();
    await send('NBIRTH', nbirth(1));
    await send('DBIRTH', dbirth(1), DEVICE);
    const out = await send(
      'DDATA',
      data(2, [
        byAlias(10, DataType.Int16, -5),
        { name: 'NotInBirth', datatype: DataType.Int32, value: 1 },
        byAlias(77, DataType.Int32, 2),
      ]),
      DEVICE,
    );
    expect(out.readings.map((r) => [r.metric, r.value])).toEqual([['Pressure', -5]]);
    const ignored = out.events.find((e) => e.type === 'ignored');
    expect(ignored?.data).toEqual({ unknown: ['NotInBirth', 'alias 77'] });
    expect(rebirths(out)).toHaveLength(1);
  });

  it('treats a DATA metric named like an Object.prototype member ("toString") as not in the birth', async () => {
    const { send } = hostHarness();
    await send('NBIRTH', nbirth(1));
    const out = await send('NDATA', data(1, [{ name: 'toString', datatype: DataType.Int32, value: 1 }]));
    expect(out.readings).toEqual([]);
    expect(out.events.find((e) => e.type === 'ignored')?.data).toEqual({ unknown: ['toString'] });
    expect(rebirths(out)).toHaveLength(1);
  });

  it('a node alias is not a device alias: scopes are separate', async () => {
    const { send } = hostHarness();
    await send('NBIRTH', nbirth(1));
    await send('DBIRTH', dbirth(1), DEVICE);
    // alias 1 (Uptime) belongs to the node, not to the device.
    const out = await send('DDATA', data(2, [byAlias(1, DataType.Int64, 5)]), DEVICE);
    expect(out.readings).toEqual([]);
    expect(rebirths(out)).toHaveLength(1);
  });

  it('asks for a rebirth when an alias-only value does not fit the datatype from the birth', async () => {
    const { send } = hostHarness();
    await send('NBIRTH', nbirth(1));
    await send('DBIRTH', dbirth(1), DEVICE);
    // Pressure (alias 10) is Int16 in the birth, but the edge node now sends a string.
    const out = await send(
      'DDATA',
      data(2, [
        { alias: 10, datatype: DataType.String, value: 'x', omitDatatype: true },
        byAlias(11, DataType.Boolean, false),
      ]),
      DEVICE,
    );
    expect(out.readings.map((r) => r.metric)).toEqual(['Running']);
    expect(rebirths(out)).toHaveLength(1);
  });

  it('a duplicate alias in a DBIRTH asks for a rebirth', async () => {
    const { send } = hostHarness();
    await send('NBIRTH', nbirth(1));
    const out = await send(
      'DBIRTH',
      {
        timestamp: T0,
        seq: 1,
        metrics: [
          { name: 'A', alias: 5, datatype: DataType.Int32, value: 1 },
          { name: 'B', alias: 5, datatype: DataType.Int32, value: 2 },
        ],
      },
      DEVICE,
    );
    expect(rebirths(out)).toHaveLength(1);
    expect(out.events.find((e) => e.type === 'rebirth-requested')?.detail).toContain('duplicate alias');
  });
});

describe('host: rebirth throttle', () => {
  it('is configurable and per node', async () => {
    const { send } = hostHarness({ throttle: 1000 });
    const a = await send('NDATA', data(1, []), undefined, T0);
    const b = await send('NDATA', data(2, []), undefined, T0 + 999);
    const c = await send('NDATA', data(3, []), undefined, T0 + 1000);
    expect([a, b, c].map((o) => rebirths(o).length)).toEqual([1, 0, 1]);
    const other = await createHostOnStore(new InMemorySparkplugStateStore()).handle({
      topic: `spBv1.0/${GROUP}/NDATA/other-node`,
      payload: encodePayload(data(1, [])),
      receivedAt: T0 + 1,
    });
    expect(other.actions).toHaveLength(1);
  });

  it('uses the stored last-request time, so a new host instance (cold start) is throttled too', async () => {
    const store = new InMemorySparkplugStateStore();
    const first = hostHarness({ store });
    const second = hostHarness({ store });
    expect(rebirths(await first.send('NDATA', data(1, []), undefined, T0))).toHaveLength(1);
    const throttled = await second.send('NDATA', data(2, []), undefined, T0 + 100);
    expect(throttled.actions).toEqual([]);
    expect(throttled.events.find((e) => e.type === 'rebirth-requested')?.data).toEqual({ throttled: true });
    expect((await store.getNode(GROUP, NODE))?.lastRebirthRequest).toBe(T0);
  });
});

describe('host: sequence numbers', () => {
  it('NBIRTH accepts any seq and resets the expected seq, clearing an open gap', async () => {
    const { send, store } = hostHarness();
    await send('NBIRTH', nbirth(1, 0));
    await send('NDATA', data(5, []));
    expect((await store.getNode(GROUP, NODE))?.gap?.missing).toEqual([1, 2, 3, 4]);
    await send('NBIRTH', nbirth(1, 77, { timestamp: T0 + 500 }));
    const node = await store.getNode(GROUP, NODE);
    expect(node?.gap).toBeUndefined();
    expect(node?.expectedSeq).toBe(78);
    expect(eventTypes(await send('NDATA', data(78, [])))).toEqual([]);
  });

  it('shares one counter between N* and D* messages; DDEATH carries seq, NDEATH does not', async () => {
    const { send } = hostHarness();
    await send('NBIRTH', nbirth(1, 0));
    expect(eventTypes(await send('DBIRTH', dbirth(1), DEVICE))).toEqual(['birth']);
    expect(eventTypes(await send('NDATA', data(2, [])))).toEqual([]);
    expect(eventTypes(await send('DDATA', data(3, []), DEVICE))).toEqual([]);
    const ddeath = await send('DDEATH', { timestamp: T0 + 5, seq: 5 }, DEVICE);
    expect(eventTypes(ddeath)).toEqual(['seq-gap', 'death', 'stale']);
    // NDEATH without seq (as sent by the broker): no seq event.
    expect(eventTypes(await send('NDEATH', ndeath(1)))).toEqual(['death', 'stale']);
  });

  it('records a gap across the 255 → 0 wrap and clears it when the late messages arrive', async () => {
    const { send, store } = hostHarness();
    await send('NBIRTH', nbirth(1, 253));
    const skip = await send('NDATA', data(1, [byAlias(1, DataType.Int64, 1)]));
    expect(skip.events[0]?.data).toMatchObject({ expected: 254, missing: [254, 255, 0] });
    expect(skip.readings).toHaveLength(1);
    for (const s of [255, 254]) await send('NDATA', data(s, []));
    expect((await store.getNode(GROUP, NODE))?.gap?.missing).toEqual([0]);
    const last = await send('NDATA', data(0, []));
    expect(last.events.map((e) => e.detail)).toEqual(['late seq 0 filled the gap']);
    expect((await store.getNode(GROUP, NODE))?.gap).toBeUndefined();
    expect(eventTypes(await send('NDATA', data(2, [])))).toEqual([]);
  });

  it('keeps an expired gap open while the rebirth is throttled, and asks once the window passes', async () => {
    const { send, store } = hostHarness({ reorder: 100, throttle: 1000 });
    await send('NBIRTH', nbirth(1, 0), undefined, T0);
    // Another reason asked for a rebirth just now (unknown alias).
    expect(
      rebirths(await send('NDATA', data(1, [byAlias(99, DataType.Int32, 1)]), undefined, T0 + 10)),
    ).toHaveLength(1);
    await send('NDATA', data(3, []), undefined, T0 + 20); // seq 2 missing, deadline T0+120
    const throttled = await send('NDATA', data(4, []), undefined, T0 + 200);
    expect(throttled.actions).toEqual([]);
    expect(throttled.events.at(-1)?.data).toEqual({ throttled: true });
    expect((await store.getNode(GROUP, NODE))?.gap?.missing).toEqual([2]);
    const asked = await send('NDATA', data(5, []), undefined, T0 + 1010);
    expect(rebirths(asked)).toHaveLength(1);
    expect((await store.getNode(GROUP, NODE))?.gap).toBeUndefined();
  });

  it('recognises a duplicate from the recent window, still emits its readings, and leaves seq alone', async () => {
    const { send, store } = hostHarness();
    await send('NBIRTH', nbirth(1, 0));
    for (let s = 1; s <= 10; s++) await send('NDATA', data(s, [byAlias(1, DataType.Int64, s)]));
    const dup = await send('NDATA', data(3, [byAlias(1, DataType.Int64, 3)]));
    expect(eventTypes(dup)).toEqual(['duplicate']);
    expect(dup.events[0]?.detail).toBe('seq 3 already received');
    expect(dup.readings.map((r) => r.value)).toEqual([3]);
    expect((await store.getNode(GROUP, NODE))?.expectedSeq).toBe(11);
    expect((await store.getNode(GROUP, NODE))?.recentSeqs.length).toBeLessThanOrEqual(32);
  });

  it('keeps the missing set bounded and duplicate-free under repeated gaps', async () => {
    const { send, store } = hostHarness({ reorder: 60_000 });
    await send('NBIRTH', nbirth(1, 0));
    let seq = 0;
    for (let i = 0; i < 10; i++) {
      seq = (seq + 100) % 256;
      await send('NDATA', data(seq, []));
    }
    const missing = (await store.getNode(GROUP, NODE))?.gap?.missing ?? [];
    expect(missing.length).toBeLessThanOrEqual(255);
    expect(new Set(missing).size).toBe(missing.length);
    expect(missing).not.toContain(seq);
  });
});

describe('host: births', () => {
  it('a redelivered NBIRTH (same bdSeq and timestamp) is a duplicate: readings again, session kept', async () => {
    const { send, store } = hostHarness();
    await send('NBIRTH', nbirth(4, 0));
    await send('DBIRTH', dbirth(1), DEVICE);
    await send('DDATA', data(2, []), DEVICE);
    const again = await send('NBIRTH', nbirth(4, 0));
    expect(eventTypes(again)).toEqual(['duplicate']);
    expect(again.readings.map((r) => r.metric)).toEqual(['Uptime']);
    expect((await store.getNode(GROUP, NODE))?.expectedSeq).toBe(3);
    expect(eventTypes(await send('DDATA', data(3, [byAlias(10, DataType.Int16, 1)]), DEVICE))).toEqual([]);
  });

  it('a redelivered NBIRTH of a session that already died does not revive the node', async () => {
    const { send, store } = hostHarness();
    await send('NBIRTH', nbirth(4, 0));
    await send('NDEATH', ndeath(4));
    const replay = await send('NBIRTH', nbirth(4, 0));
    expect(eventTypes(replay)).toEqual(['ignored']);
    expect(replay.readings).toEqual([]);
    expect((await store.getNode(GROUP, NODE))?.online).toBe(false);
    // The next real session (bdSeq incremented on reconnect) is accepted.
    const next = await send('NBIRTH', nbirth(5, 0, { timestamp: T0 + 1000 }));
    expect(eventTypes(next)).toEqual(['birth']);
    expect((await store.getNode(GROUP, NODE))?.online).toBe(true);
  });

  it('a rebirth (same bdSeq, new timestamp) replaces the alias map atomically', async () => {
    const { send } = hostHarness();
    await send('NBIRTH', nbirth(2, 0));
    await send('NBIRTH', {
      timestamp: T0 + 100,
      seq: 0,
      metrics: [
        { name: 'bdSeq', datatype: DataType.Int64, value: 2 },
        { name: 'Level', alias: 1, datatype: DataType.Double, value: 0.5 },
      ],
    });
    const out = await send('NDATA', data(1, [byAlias(1, DataType.Double, 0.75)]));
    expect(out.readings.map((r) => [r.metric, r.type, r.value])).toEqual([['Level', 'Double', 0.75]]);
  });

  it('keeps static birth metadata (unit, engineering range) per device metric in state', async () => {
    const { send, store } = hostHarness();
    await send('NBIRTH', nbirth(1));
    await send(
      'DBIRTH',
      {
        timestamp: T0,
        seq: 1,
        metrics: [
          {
            name: 'Level',
            alias: 3,
            datatype: DataType.Float,
            value: 2,
            properties: {
              keys: ['engUnit', 'engLow', 'engHigh'],
              values: [
                { type: DataType.String, value: 'm' },
                { type: DataType.Float, value: 0 },
                { type: DataType.Float, value: 12 },
              ],
            },
          },
        ],
      },
      DEVICE,
    );
    const rec = await store.getDevice(GROUP, NODE, DEVICE);
    expect(rec?.metrics.Level).toEqual({
      name: 'Level',
      datatype: DataType.Float,
      unit: 'm',
      props: { engUnit: 'm', engLow: 0, engHigh: 12 },
    });
    expect(rec?.aliases['3']?.name).toBe('Level');
  });

  it('keeps Template definitions from the NBIRTH as state and resolves DBIRTH and DDATA instances with them', async () => {
    const { send, store } = hostHarness();
    const birth = await send('NBIRTH', nbirth(1));
    expect(birth.readings.map((r) => r.metric)).toEqual(['Uptime']);
    expect(Object.keys((await store.getNode(GROUP, NODE))?.templates ?? {}).sort()).toEqual([
      'BearingDef',
      'Motor',
    ]);
    const dev = await send('DBIRTH', dbirth(1), DEVICE);
    expect(
      dev.readings
        .filter((r) => r.metric.startsWith('Pump1/'))
        .map((r) => [r.metric, r.type, r.value, r.unit]),
    ).toEqual([
      ['Pump1/Speed', 'Float', 1450, 'rpm'],
      ['Pump1/Amps', 'Double', 12.5, undefined],
      ['Pump1/Bearing/Temp', 'Float', 41.5, '°C'],
    ]);
    // DATA: alias only, no templateRef, one member without datatype: all resolved from state.
    const out = await send(
      'DDATA',
      data(2, [
        {
          alias: 20,
          datatype: DataType.Template,
          omitDatatype: true,
          value: {
            isDefinition: false,
            metrics: [{ name: 'Speed', datatype: DataType.Float, value: 1500, omitDatatype: true }],
            parameters: [],
          },
        },
      ]),
      DEVICE,
    );
    expect(out.readings.map((r) => [r.metric, r.type, r.value, r.unit])).toEqual([
      ['Pump1/Speed', 'Float', 1500, 'rpm'],
    ]);
    // Parameters are attributes kept with the instance, not series.
    const rec = await store.getDevice(GROUP, NODE, DEVICE);
    expect(rec?.metrics.Pump1).toMatchObject({ templateRef: 'Motor', params: { RatedKW: 7.5 } });
    expect(dev.readings.some((r) => r.metric.includes('RatedKW'))).toBe(false);
    expect(out.actions).toEqual([]);
  });

  it('a Template instance of an unknown definition with untyped members asks for a rebirth', async () => {
    const { send } = hostHarness();
    await send('NBIRTH', nbirth(1));
    const out = await send(
      'DBIRTH',
      {
        timestamp: T0,
        seq: 1,
        metrics: [
          {
            name: 'Valve',
            datatype: DataType.Template,
            value: {
              isDefinition: false,
              templateRef: 'NoSuchDef',
              metrics: [{ name: 'Open', datatype: DataType.Boolean, value: true, omitDatatype: true }],
              parameters: [],
            },
          },
        ],
      },
      DEVICE,
    );
    expect(out.readings).toEqual([]);
    expect(out.events.find((e) => e.type === 'ignored')?.data).toEqual({ unknown: ['Valve/Open'] });
    expect(rebirths(out)).toHaveLength(1);
  });

  it('rejects a birth metric without a datatype with a ProtocolError naming the metric', async () => {
    const { send } = hostHarness();
    await expect(
      send('NBIRTH', {
        timestamp: T0,
        seq: 0,
        metrics: [{ name: 'X', datatype: DataType.Int32, value: 1, omitDatatype: true }],
      }),
    ).rejects.toSatisfy((e: unknown) => e instanceof ProtocolError && e.message.includes('"X"'));
  });
});

describe('host: deaths', () => {
  it('accepts bdSeq in the Int64 or the UInt64 field, and values beyond 2^53 without rounding', async () => {
    const big = 2n ** 63n - 1n;
    const { send, store } = hostHarness();
    await send('NBIRTH', nbirth(big, 0, { bdSeqType: DataType.UInt64 }));
    // Differs only below 2^53 precision: must not match.
    const near = await send('NDEATH', ndeath(big - 1n, DataType.Int64));
    expect(eventTypes(near)).toEqual(['ignored']);
    const exact = await send('NDEATH', ndeath(big, DataType.Int64));
    expect(eventTypes(exact)).toEqual(['death', 'stale']);
    expect((await store.getNode(GROUP, NODE))?.bdSeq).toBe(big.toString());
  });

  it('ignores an NDEATH for a node never born and an NDEATH without bdSeq', async () => {
    const { send, store } = hostHarness();
    expect((await send('NDEATH', ndeath(0))).events[0]?.detail).toContain('never born');
    await send('NBIRTH', nbirth(0));
    const noBdSeq = await send('NDEATH', { metrics: [] });
    expect(eventTypes(noBdSeq)).toEqual(['ignored']);
    expect((await store.getNode(GROUP, NODE))?.online).toBe(true);
  });

  it('NDEATH: node and online devices offline, stale at the receipt time, metrics listed, no values made up', async () => {
    const { send } = hostHarness();
    await send('NBIRTH', nbirth(1));
    await send('DBIRTH', dbirth(1), DEVICE);
    await send(
      'DBIRTH',
      { ...dbirth(2), metrics: [{ name: 'Level', datatype: DataType.Float, value: 1 }] },
      'tank',
    );
    await send('DDEATH', { timestamp: T0 + 3, seq: 3 }, 'tank');
    const death = await send(
      'NDEATH',
      { timestamp: T0 - 99_999, metrics: ndeath(1).metrics },
      undefined,
      T0 + 7777,
    );
    expect(death.readings).toEqual([]);
    expect(death.events.map((e) => [e.type, e.subDevice, e.time])).toEqual([
      ['death', undefined, T0 + 7777],
      ['stale', undefined, T0 + 7777],
      ['stale', DEVICE, T0 + 7777],
    ]);
    expect(death.events[1]?.data).toEqual({
      metrics: ['Uptime'],
      devices: [DEVICE, 'tank'],
      at: T0 + 7777,
    });
    expect(death.events[2]?.data).toEqual({ metrics: ['Pressure', 'Running', 'Pump1'], at: T0 + 7777 });
  });
});

describe('host: state store conflicts (late writers)', () => {
  /** Runs `interleave` once, after the first read of the node and before the host writes it. */
  class InterleavingStore implements SparkplugStateStore {
    private armed = true;
    constructor(
      readonly inner: InMemorySparkplugStateStore,
      private readonly interleave: () => Promise<void>,
    ) {}
    async getNode(g: string, n: string) {
      const r = await this.inner.getNode(g, n);
      if (this.armed) {
        this.armed = false;
        await this.interleave();
      }
      return r;
    }
    putNode(r: NodeRecord, v: number | undefined) {
      return this.inner.putNode(r, v);
    }
    getDevice(g: string, n: string, d: string) {
      return this.inner.getDevice(g, n, d);
    }
    putDevice(r: DeviceRecord, v: number | undefined) {
      return this.inner.putDevice(r, v);
    }
  }

  it('a late NBIRTH loses the conditional write to a newer one, re-reads and is ignored', async () => {
    const inner = new InMemorySparkplugStateStore();
    const newer = createHostOnStore(inner);
    const store = new InterleavingStore(inner, async () => {
      await newer.handle({
        topic: topicOf('NBIRTH'),
        payload: encodePayload(nbirth(8, 0, { timestamp: T0 + 20 })),
        receivedAt: T0 + 21,
      });
    });
    const late = createHostOnStore(store);
    const out = await late.handle({
      topic: topicOf('NBIRTH'),
      payload: encodePayload(nbirth(7, 0, { timestamp: T0 + 10 })),
      receivedAt: T0 + 22,
    });
    expect(eventTypes(out)).toEqual(['ignored']);
    expect(out.readings).toEqual([]);
    const node = await inner.getNode(GROUP, NODE);
    expect(node).toMatchObject({ bdSeq: '8', birthTime: T0 + 20, online: true, version: 1 });
  });

  it('a stale NDEATH that raced a new NBIRTH re-reads, sees the new bdSeq and is ignored', async () => {
    const inner = new InMemorySparkplugStateStore();
    const other = createHostOnStore(inner);
    await other.handle({ topic: topicOf('NBIRTH'), payload: encodePayload(nbirth(1)), receivedAt: T0 });
    const store = new InterleavingStore(inner, async () => {
      await other.handle({
        topic: topicOf('NBIRTH'),
        payload: encodePayload(nbirth(2, 0, { timestamp: T0 + 50 })),
        receivedAt: T0 + 50,
      });
    });
    const out = await createHostOnStore(store).handle({
      topic: topicOf('NDEATH'),
      payload: encodePayload(ndeath(1)),
      receivedAt: T0 + 60,
    });
    expect(eventTypes(out)).toEqual(['ignored']);
    expect(out.events[0]?.detail).toContain('does not match');
    expect(await inner.getNode(GROUP, NODE)).toMatchObject({ bdSeq: '2', online: true });
  });

  it('gives up after the configured retries with a retryable ConflictError', async () => {
    const inner = new InMemorySparkplugStateStore();
    const always: SparkplugStateStore = {
      getNode: (g, n) => inner.getNode(g, n),
      putNode: async () => {
        throw new ConflictError('lost the race');
      },
      getDevice: (g, n, d) => inner.getDevice(g, n, d),
      putDevice: (r, v) => inner.putDevice(r, v),
    };
    let puts = 0;
    const counting: SparkplugStateStore = {
      ...always,
      putNode: (r, v) => {
        puts++;
        return always.putNode(r, v);
      },
    };
    const host = new SparkplugHost({ store: counting, clock: () => T0, conflictRetries: 2 });
    const err = await host
      .handle({ topic: topicOf('NBIRTH'), payload: encodePayload(nbirth(1)), receivedAt: T0 })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConflictError);
    expect((err as ConflictError).retryable).toBe(true);
    expect(puts).toBe(3);
  });

  it('the in-memory store refuses a write based on a stale version, and a refused write changes nothing', async () => {
    const { send, store } = hostHarness();
    await send('NBIRTH', nbirth(1, 0));
    await send('NDATA', data(3, [])); // gap [1, 2]
    const read = (await store.getNode(GROUP, NODE))!;
    await send('NDATA', data(1, [])); // fills 1, version advances
    const stale = { ...read, gap: { missing: [], deadline: 0 }, devices: ['x'] };
    await expect(store.putNode(stale, read.version)).rejects.toBeInstanceOf(ConflictError);
    const now = await store.getNode(GROUP, NODE);
    expect(now?.gap?.missing).toEqual([2]);
    expect(now?.devices).toEqual([]);
    await expect(store.putDevice({ ...dbirthRecord() }, 3)).rejects.toBeInstanceOf(ConflictError);
  });
});

describe('host: routing', () => {
  it('STATE is parsed as JSON (even when it would be garbage as protobuf) and bad STATE is a DecodeError', async () => {
    const host = createInMemorySparkplugHost({ clock: () => T0 });
    const out = await host.handle({
      topic: 'spBv1.0/STATE/scada-primary',
      payload: new TextEncoder().encode('{"online":false,"timestamp":1700000000123}'),
      receivedAt: T0,
    });
    expect(out).toEqual({
      protocol: 'sparkplug',
      kind: 'STATE',
      deviceId: 'scada-primary',
      readings: [],
      events: [
        {
          type: 'state',
          protocol: 'sparkplug',
          deviceId: 'scada-primary',
          time: T0,
          detail: 'host scada-primary offline',
          data: { online: false, timestamp: 1_700_000_000_123 },
        },
      ],
      actions: [],
    });
    await expect(
      host.handle({ topic: 'spBv1.0/STATE/h', payload: encodePayload(nbirth(1)), receivedAt: T0 }),
    ).rejects.toBeInstanceOf(DecodeError);
  });

  it('a bad topic is a ProtocolError; an NCMD echo is ignored without touching state', async () => {
    const host = createInMemorySparkplugHost({ clock: () => T0 });
    await expect(
      host.handle({
        topic: `spBv1.0/${GROUP}/NDATA/${NODE}/extra`,
        payload: new Uint8Array(),
        receivedAt: T0,
      }),
    ).rejects.toBeInstanceOf(ProtocolError);
    const echo = await host.handle({
      topic: topicOf('NCMD'),
      payload: encodePayload(nbirth(1)),
      receivedAt: T0,
    });
    expect(echo).toMatchObject({ kind: 'NCMD', readings: [], actions: [] });
    expect(eventTypes(echo)).toEqual(['ignored']);
  });

  it('reports kind, node, group and device on every outcome', async () => {
    const { send } = hostHarness();
    await send('NBIRTH', nbirth(1));
    const out = await send('DBIRTH', dbirth(1), DEVICE);
    expect(out).toMatchObject({
      protocol: 'sparkplug',
      kind: 'DBIRTH',
      deviceId: NODE,
      group: GROUP,
      subDevice: DEVICE,
    });
  });
});

function createHostOnStore(store: SparkplugStateStore): SparkplugHost {
  return new SparkplugHost({ store, clock: () => T0 + 1000 });
}

function dbirthRecord(): DeviceRecord {
  return {
    group: GROUP,
    node: NODE,
    device: 'never-written',
    version: 3,
    online: true,
    nodeBirthTime: T0,
    birthTime: T0,
    aliases: {},
    metrics: {},
  };
}
