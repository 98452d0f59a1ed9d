import { describe, expect, it } from 'vitest';
import { DecodeError } from '../../../functions/core/errors.js';
import type { MessageOutcome } from '../../../functions/core/reading.js';
import {
  decodePayload,
  encodePayload,
  type SpMetricInput,
  type SpPayloadInput,
} from '../../../functions/core/sparkplug/codec.js';
import { SparkplugHost } from '../../../functions/core/sparkplug/host/host.js';
import { InMemorySparkplugStateStore } from '../../../functions/core/sparkplug/host/state.js';
import { DataType } from '../../../functions/core/sparkplug/types.js';

const T0 = 1_700_000_000_000;
const G = 'plant';
const N = 'edge-1';

function setup(opts: { throttle?: number; reorder?: number } = {}) {
  let now = T0;
  const store = new InMemorySparkplugStateStore();
  const host = new SparkplugHost({
    store,
    clock: () => now,
    rebirthThrottleMs: opts.throttle ?? 5000,
    reorderTimeoutMs: opts.reorder ?? 2000,
  });
  const send = (
    type: string,
    payload: SpPayloadInput,
    device?: string,
    at?: number,
  ): Promise<MessageOutcome> => {
    now = at ?? now + 10;
    const topic = `spBv1.0/${G}/${type}/${N}${device ? `/${device}` : ''}`;
    return host.handle({ topic, payload: encodePayload(payload), receivedAt: now });
  };
  return { host, store, send, setNow: (t: number) => (now = t) };
}

const nbirth = (bdSeq: number, seq = 0, extra: SpMetricInput[] = []): SpPayloadInput => ({
  timestamp: T0,
  seq,
  metrics: [
    { name: 'bdSeq', datatype: DataType.Int64, value: bdSeq, timestamp: T0 },
    { name: 'Node Control/Rebirth', datatype: DataType.Boolean, value: false, timestamp: T0 },
    { name: 'Uptime', alias: 1, datatype: DataType.Int64, value: 5, timestamp: T0 },
    ...extra,
  ],
});

const dbirth = (seq: number): SpPayloadInput => ({
  timestamp: T0 + 1,
  seq,
  metrics: [
    {
      name: 'Pressure',
      alias: 10,
      datatype: DataType.Int16,
      value: 3,
      timestamp: T0 + 1,
      properties: { keys: ['engUnit'], values: [{ type: DataType.String, value: 'kPa' }] },
    },
    { name: 'Running', alias: 11, datatype: DataType.Boolean, value: true, timestamp: T0 + 1 },
  ],
});

/** Spec-style DATA metric: alias only, value encoded by the birth's datatype, no datatype on the wire. */
const alias = (a: number, datatype: number, value: number | boolean): SpMetricInput => ({
  alias: a,
  datatype,
  value,
  omitDatatype: true,
});

const ddata = (seq: number, metrics: SpMetricInput[]): SpPayloadInput => ({
  timestamp: T0 + 100,
  seq,
  metrics,
});
const rebirths = (o: MessageOutcome) => o.actions.filter((a) => a.topic === `spBv1.0/${G}/NCMD/${N}`);

describe('Sparkplug host: births and alias resolution', () => {
  it('resolves alias-only DATA with the name, datatype and unit from the birth', async () => {
    const { send } = setup();
    await send('NBIRTH', nbirth(1));
    await send('DBIRTH', dbirth(1), 'pump');

    const out = await send(
      'DDATA',
      ddata(2, [
        {
          alias: 10,
          raw: { field: 'int', value: 0xffa9 },
          timestamp: T0 + 100,
          omitDatatype: true,
        } as SpMetricInput,
      ]),
      'pump',
    );

    expect(out.readings).toEqual([
      expect.objectContaining({
        metric: 'Pressure',
        type: 'Int16',
        value: -87,
        unit: 'kPa',
        subDevice: 'pump',
        time: T0 + 100,
      }),
    ]);
    expect(out.actions).toEqual([]);
  });

  it('stores birth values as readings but not bdSeq or Node Control metrics', async () => {
    const { send } = setup();
    const out = await send('NBIRTH', nbirth(3));
    expect(out.readings.map((r) => r.metric)).toEqual(['Uptime']);
    expect(out.events.map((e) => e.type)).toEqual(['birth']);
  });

  it('asks for a rebirth (NCMD Node Control/Rebirth) for DATA from an unknown node', async () => {
    const { send } = setup();
    const out = await send('NDATA', { seq: 4, metrics: [alias(1, DataType.Int64, 1)] });
    expect(out.readings).toEqual([]);
    const [ncmd] = rebirths(out);
    expect(ncmd?.qos).toBe(0);
    const decoded = decodePayload(ncmd!.payload);
    expect(decoded.seq).toBeUndefined();
    expect(decoded.metrics[0]).toMatchObject({
      name: 'Node Control/Rebirth',
      datatype: DataType.Boolean,
      value: true,
    });
  });

  it('asks for a rebirth for DDATA of a device without DBIRTH, and for an unknown alias', async () => {
    const { send } = setup({ throttle: 0 });
    await send('NBIRTH', nbirth(1));
    const noBirth = await send('DDATA', ddata(1, [alias(10, DataType.Int16, 1)]), 'ghost');
    expect(rebirths(noBirth)).toHaveLength(1);
    await send('DBIRTH', dbirth(2), 'pump');
    const unknownAlias = await send(
      'DDATA',
      ddata(3, [alias(99, DataType.Int32, 1), alias(11, DataType.Boolean, false)]),
      'pump',
    );
    expect(unknownAlias.readings.map((r) => r.metric)).toEqual(['Running']);
    expect(rebirths(unknownAlias)).toHaveLength(1);
  });

  it('throttles rebirth requests per node', async () => {
    const { send } = setup({ throttle: 5000 });
    const first = await send('NDATA', { seq: 1, metrics: [] }, undefined, T0 + 1000);
    const second = await send('NDATA', { seq: 2, metrics: [] }, undefined, T0 + 2000);
    const third = await send('NDATA', { seq: 3, metrics: [] }, undefined, T0 + 7000);
    expect([rebirths(first).length, rebirths(second).length, rebirths(third).length]).toEqual([1, 0, 1]);
    expect(second.events.find((e) => e.type === 'rebirth-requested')?.data).toEqual({ throttled: true });
  });

  it('requests a rebirth for duplicate aliases in a birth', async () => {
    const { send } = setup();
    const out = await send(
      'NBIRTH',
      nbirth(1, 0, [{ name: 'Other', alias: 1, datatype: DataType.Int32, value: 1, timestamp: T0 }]),
    );
    expect(rebirths(out)).toHaveLength(1);
  });
});

describe('Sparkplug host: sequence numbers', () => {
  it('accepts in-order messages and wraps 255 → 0', async () => {
    const { send } = setup();
    await send('NBIRTH', nbirth(1, 254));
    const a = await send('NDATA', { seq: 255, metrics: [alias(1, DataType.Int64, 6)] });
    const b = await send('NDATA', { seq: 0, metrics: [alias(1, DataType.Int64, 7)] });
    expect([...a.events, ...b.events]).toEqual([]);
    expect(b.readings[0]).toMatchObject({ metric: 'Uptime', value: 7 });
  });

  it('tolerates reordering within the timeout and asks for a rebirth when a gap is not recovered', async () => {
    const { send } = setup({ reorder: 2000, throttle: 0 });
    await send('NBIRTH', nbirth(1, 0), undefined, T0);
    const skip = await send('NDATA', { seq: 2, metrics: [alias(1, DataType.Int64, 2)] }, undefined, T0 + 100);
    expect(skip.events.map((e) => e.type)).toEqual(['seq-gap']);
    expect(skip.readings).toHaveLength(1);
    const late = await send('NDATA', { seq: 1, metrics: [alias(1, DataType.Int64, 1)] }, undefined, T0 + 200);
    expect(late.events[0]?.detail).toContain('filled');
    expect(rebirths(late)).toEqual([]);

    await send('NDATA', { seq: 5, metrics: [] }, undefined, T0 + 300);
    const stillMissing = await send('NDATA', { seq: 6, metrics: [] }, undefined, T0 + 1000);
    expect(rebirths(stillMissing)).toEqual([]);
    const expired = await send('NDATA', { seq: 7, metrics: [] }, undefined, T0 + 2500);
    expect(rebirths(expired)).toHaveLength(1);
    expect(expired.events.find((e) => e.type === 'rebirth-requested')?.detail).toContain('missing 3, 4');
  });

  it('flags duplicates but still emits their readings (writes are idempotent)', async () => {
    const { send } = setup();
    await send('NBIRTH', nbirth(1, 0));
    await send('NDATA', { seq: 1, metrics: [alias(1, DataType.Int64, 1)] });
    const dup = await send('NDATA', { seq: 1, metrics: [alias(1, DataType.Int64, 1)] });
    expect(dup.events.map((e) => e.type)).toEqual(['duplicate']);
    expect(dup.readings).toHaveLength(1);
  });
});

describe('Sparkplug host: deaths', () => {
  it('honours NDEATH only when its bdSeq matches the NBIRTH, and marks the node and devices stale', async () => {
    const { send, store } = setup();
    await send('NBIRTH', nbirth(7));
    await send('DBIRTH', dbirth(1), 'pump');
    const late = await send('NDEATH', { metrics: [{ name: 'bdSeq', datatype: DataType.Int64, value: 6 }] });
    expect(late.events.map((e) => e.type)).toEqual(['ignored']);
    expect((await store.getNode(G, N))?.online).toBe(true);

    const death = await send('NDEATH', { metrics: [{ name: 'bdSeq', datatype: DataType.UInt64, value: 7 }] });
    expect(death.events.map((e) => e.type)).toEqual(['death', 'stale', 'stale']);
    expect(death.events[2]).toMatchObject({ subDevice: 'pump', data: { metrics: ['Pressure', 'Running'] } });
    expect((await store.getNode(G, N))?.online).toBe(false);
    expect((await store.getDevice(G, N, 'pump'))?.online).toBe(false);

    const again = await send('NDEATH', { metrics: [{ name: 'bdSeq', datatype: DataType.Int64, value: 7 }] });
    expect(again.events[0]?.detail).toContain('already offline');
  });

  it('takes DDEATH stale time from the payload timestamp and needs a new DBIRTH afterwards', async () => {
    const { send } = setup({ throttle: 0 });
    await send('NBIRTH', nbirth(1));
    await send('DBIRTH', dbirth(1), 'pump');
    const death = await send('DDEATH', { timestamp: T0 + 555, seq: 2 }, 'pump');
    expect(death.events.map((e) => [e.type, e.time])).toEqual([
      ['death', T0 + 555],
      ['stale', T0 + 555],
    ]);
    const after = await send('DDATA', ddata(3, [alias(10, DataType.Int16, 1)]), 'pump');
    expect(after.readings).toEqual([]);
    expect(rebirths(after)).toHaveLength(1);
  });

  it('requires a fresh DBIRTH after a new NBIRTH session', async () => {
    const { send } = setup({ throttle: 0 });
    await send('NBIRTH', nbirth(1));
    await send('DBIRTH', dbirth(1), 'pump');
    await send('NBIRTH', { ...nbirth(2), timestamp: T0 + 50 });
    const out = await send('DDATA', ddata(1, [alias(10, DataType.Int16, 1)]), 'pump');
    expect(out.readings).toEqual([]);
    expect(rebirths(out)).toHaveLength(1);
  });
});

describe('Sparkplug host: routing and flattening', () => {
  it('parses STATE as JSON and never as protobuf', async () => {
    const { host } = setup();
    const out = await host.handle({
      topic: 'spBv1.0/STATE/scada',
      payload: new TextEncoder().encode('{"online":true,"timestamp":1700000000000}'),
      receivedAt: T0,
    });
    expect(out).toMatchObject({
      kind: 'STATE',
      readings: [],
      events: [{ type: 'state', data: { online: true } }],
    });
  });

  it('rejects garbage payloads with a DecodeError (the caller quarantines them)', async () => {
    const { host } = setup();
    await expect(
      host.handle({
        topic: `spBv1.0/${G}/NDATA/${N}`,
        payload: new Uint8Array([0xff, 0xff, 0xff]),
        receivedAt: T0,
      }),
    ).rejects.toBeInstanceOf(DecodeError);
  });

  it('flattens DataSets per cell, templates per member (definition datatypes), and maps Quality and flags', async () => {
    const { send } = setup();
    const out = await send(
      'NBIRTH',
      nbirth(1, 0, [
        {
          name: 'Motor',
          datatype: DataType.Template,
          timestamp: T0,
          value: {
            isDefinition: true,
            metrics: [
              { name: 'Speed', datatype: DataType.Float, value: 0 },
              { name: 'Amps', datatype: DataType.Double, value: 0 },
            ],
            parameters: [],
          },
        },
        {
          name: 'Pump1',
          alias: 5,
          datatype: DataType.Template,
          timestamp: T0,
          value: {
            isDefinition: false,
            templateRef: 'Motor',
            metrics: [{ name: 'Speed', datatype: DataType.Float, value: 1.5 }],
            parameters: [],
          },
        },
        {
          name: 'Table',
          datatype: DataType.DataSet,
          timestamp: T0,
          value: {
            numOfColumns: 2n,
            columns: ['a', 'b'],
            types: [DataType.Int32, DataType.String],
            rows: [
              [1, 'x'],
              [2, 'y'],
            ],
          },
        },
        {
          name: 'Temp',
          datatype: DataType.Double,
          value: 21.5,
          timestamp: T0 - 60_000,
          isHistorical: true,
          properties: { keys: ['Quality'], values: [{ type: DataType.Int32, value: 500 }] },
        },
      ]),
    );
    const byMetric = Object.fromEntries(
      out.readings.map((r) => [`${r.metric}${r.row === undefined ? '' : `#${r.row}`}`, r]),
    );
    expect(Object.keys(byMetric).sort()).toEqual([
      'Pump1/Speed',
      'Table/a#0',
      'Table/a#1',
      'Table/b#0',
      'Table/b#1',
      'Temp',
      'Uptime',
    ]);
    expect(byMetric['Pump1/Speed']).toMatchObject({ type: 'Float', value: 1.5 });
    expect(byMetric['Table/b#1']).toMatchObject({ type: 'String', value: 'y', row: 1 });
    expect(byMetric.Temp).toMatchObject({ quality: 'STALE', historical: true, time: T0 - 60_000 });
  });
});
