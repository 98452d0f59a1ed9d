/**
 * DynamoTelemetryStore against dynalite: what is specific to this adapter (the port's semantics are in
 * the contract suite): packing, TTL and retention, key escaping, series hour chunks and their
 * invalidation, concurrent writer instances, item size limits.
 */
import { GetCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  DynamoTelemetryStore,
  type DynamoTelemetryStoreOptions,
  framePk,
  frameSk,
} from '../../functions/adapters/dynamo-telemetry-store.js';
import type { EnrichedReading } from '../../functions/core/reading.js';
import { aggregateBuckets, type BucketQuery } from '../../functions/core/telemetry.js';
import {
  createTelemetryTable,
  type LocalTelemetryTable,
  startTelemetryDynalite,
} from './dynamo-telemetry.helpers.js';
import { NOW, reading, T0 } from './telemetry-store.contract.js';

let local: LocalTelemetryTable;
let table: string;

beforeAll(async () => {
  local = await startTelemetryDynalite();
});
afterAll(async () => {
  await local.stop();
});
beforeEach(async () => {
  table = await createTelemetryTable(local);
});

function open(over: Partial<DynamoTelemetryStoreOptions> = {}): DynamoTelemetryStore {
  return new DynamoTelemetryStore({ client: local.doc, tableName: table, clock: () => NOW, ...over });
}

async function partition(pk: string): Promise<Array<Record<string, unknown>>> {
  const out = await local.doc.send(
    new QueryCommand({
      TableName: table,
      KeyConditionExpression: 'pk = :pk',
      ExpressionAttributeValues: { ':pk': pk },
    }),
  );
  return out.Items ?? [];
}

function message(deviceId: string, time: number, n = 50): EnrichedReading[] {
  return Array.from({ length: n }, (_, m) =>
    reading({
      deviceId,
      time,
      metric: `Sensors/Channel-${m}`,
      name: `Channel ${m}`,
      type: 'Float',
      value: m + time / 1e9,
    }),
  );
}

describe('packing', () => {
  it('stores a 50-reading message as one frame item under 1 KB, plus one catalog and one latest item', async () => {
    const store = open();
    await store.write(message('edge-1', T0));
    await store.write(message('edge-1', T0 + 10_000));
    const frames = await partition(framePk('edge-1'));
    expect(frames).toHaveLength(2);
    for (const f of frames) expect(Buffer.byteLength(f.x as string)).toBeLessThan(1024);
    expect((await partition('D#edge-1')).map((i) => i.sk)).toEqual(['C#', 'L#']);
    expect(await store.latest({ deviceId: 'edge-1' })).toHaveLength(50);
  });

  it('keeps identities apart whatever separators the names contain', async () => {
    const store = open();
    const tricky: Array<Partial<EnrichedReading>> = [
      { deviceId: 'a', subDevice: 'b#c', metric: 'm' },
      { deviceId: 'a', subDevice: 'b', metric: 'c#m' },
      { deviceId: 'a#b', subDevice: 'c', metric: 'm' },
      { deviceId: 'a', subDevice: 'b%23c', metric: 'm' },
      { deviceId: 'a', metric: 'b#c#m' },
      { deviceId: 'a', metric: 'Node Control/Rebirth' },
      { deviceId: 'a', metric: 'L#x' },
      { deviceId: 'a', subDevice: 'b', metric: 'c' },
    ];
    const res = await store.write(tricky.map((t, i) => reading({ ...t, value: i })));
    expect(res.written).toBe(tricky.length);
    const { points } = await store.queryRaw({ deviceId: 'a', from: T0, to: T0 + 1 });
    expect(points.map((p) => [p.subDevice ?? '', p.metric, p.value])).toEqual([
      ['', 'L#x', 6],
      ['', 'Node Control/Rebirth', 5],
      ['', 'b#c#m', 4],
      ['b', 'c', 7],
      ['b', 'c#m', 1],
      ['b#c', 'm', 0],
      ['b%23c', 'm', 3],
    ]);
    expect(
      (await store.queryRaw({ deviceId: 'a#b', from: T0, to: T0 + 1 })).points.map((p) => p.value),
    ).toEqual([2]);
    expect((await store.latest({ deviceId: 'a', subDevice: 'b' })).map((p) => p.metric)).toEqual([
      'c',
      'c#m',
    ]);
    const q = {
      deviceId: 'a',
      subDevice: 'b',
      from: T0 - 7_200_000,
      to: T0 + 1,
      intervalMs: 60_000,
      aggs: ['sum' as const],
    };
    expect(await store.queryBuckets({ ...q, metric: 'c#m' })).toEqual([
      { start: Math.floor(T0 / 60_000) * 60_000, count: 1, sum: 1 },
    ]);
  });
});

describe('binary value column', () => {
  it('keeps values in entry order when a frame is merged across calls with JSON-form entries between', async () => {
    const store = open();
    await store.write([
      reading({ metric: 'a', value: 1.5 }),
      reading({ metric: 'b', value: true }),
      reading({ metric: 'c', value: 0.1 + 0.2 }),
    ]);
    const res = await store.write([
      reading({ metric: 'd', value: 2.5, historical: true }),
      reading({ metric: 'e', value: -0 }),
      reading({ metric: 'f', value: false }),
      reading({ metric: 'g', value: 'text' }),
      reading({ metric: 'h', value: 2 ** 60 }),
      reading({ metric: 'a', value: 99 }),
    ]);
    expect(res).toMatchObject({ written: 5, duplicates: 1 });
    const { points } = await store.queryRaw({ deviceId: 'edge-1', from: T0, to: T0 + 1 });
    expect(points.map((p) => [p.metric, p.value, p.historical])).toEqual([
      ['a', 1.5, false],
      ['b', true, false],
      ['c', 0.1 + 0.2, false],
      ['d', 2.5, true],
      ['e', -0, false],
      ['f', false, false],
      ['g', 'text', false],
      ['h', 2 ** 60, false],
    ]);
    expect(Object.is(points[4]?.value, -0)).toBe(true);
    const [frame] = await partition(framePk('edge-1'));
    // a, b, c, e, f, h in the binary column (float32 1.5, true, float64, float32 -0, false, float32 2^60).
    expect(Buffer.from(frame?.b as Uint8Array).length).toBe(5 + 1 + 9 + 5 + 1 + 5);
  });
});

describe('TTL and retention', () => {
  it('keeps 30 days by default', async () => {
    await open().write([reading()]);
    const got = await local.doc.send(
      new GetCommand({ TableName: table, Key: { pk: framePk('edge-1'), sk: frameSk(T0, '') } }),
    );
    expect(got.Item?.expiresAt).toBe(Math.floor(T0 / 1000) + 30 * 86_400);
  });

  it('answers a bucket query even when storing its chunks is refused', async () => {
    const store = open();
    const hour0 = Math.floor(NOW / 3_600_000) * 3_600_000 - 3 * 3_600_000;
    await store.write([reading({ time: hour0 + 5, value: 3 })]);
    const refusing = Object.create(local.doc) as typeof local.doc;
    refusing.send = (async (command: { input: { Item?: { pk?: string } } }) => {
      if (String(command.input.Item?.pk).startsWith('K#')) {
        throw Object.assign(new Error('not authorized'), { name: 'AccessDeniedException' });
      }
      return local.doc.send(command as never);
    }) as never;
    const q = {
      deviceId: 'edge-1',
      metric: 'temp',
      from: hour0,
      to: NOW,
      intervalMs: 60_000,
      aggs: ['sum' as const],
    };
    expect(await open({ client: refusing }).queryBuckets(q)).toEqual([{ start: hour0, count: 1, sum: 3 }]);
  });

  it('sets the TTL from the frame time and rejects readings already past retention', async () => {
    const store = open({ retentionDays: 30 });
    const old = reading({ time: NOW - 31 * 86_400_000 });
    const res = await store.write([old, reading()]);
    expect(res).toMatchObject({ written: 1 });
    expect(res.rejected).toEqual([expect.objectContaining({ reading: old, code: 'OUTSIDE_RETENTION' })]);
    const got = await local.doc.send(
      new GetCommand({ TableName: table, Key: { pk: framePk('edge-1'), sk: frameSk(T0, '') } }),
    );
    expect(got.Item?.expiresAt).toBe(Math.floor(T0 / 1000) + 30 * 86_400);
  });

  it('hides points whose TTL passed even before DynamoDB deletes them', async () => {
    await open({ retentionDays: 365 }).write([reading(), reading({ time: T0 + 10 * 86_400_000, value: 2 })]);
    const later = open({ retentionDays: 365, clock: () => T0 + 366 * 86_400_000 });
    const q = { deviceId: 'edge-1', from: 0, to: T0 + 400 * 86_400_000 };
    expect((await later.queryRaw({ ...q, limit: 100 })).points.map((p) => p.value)).toEqual([2]);
    expect((await later.latest({ deviceId: 'edge-1' })).map((p) => p.value)).toEqual([2]);
    const buckets = await later.queryBuckets({
      ...q,
      from: T0 - 1,
      metric: 'temp',
      intervalMs: 86_400_000 * 40,
      aggs: ['sum'],
    });
    expect(buckets.map((b) => b.count)).toEqual([1]);
  });
});

describe('series hour chunks', () => {
  const hour0 = Math.floor(NOW / 3_600_000) * 3_600_000 - 5 * 3_600_000;
  const q: BucketQuery = {
    deviceId: 'edge-1',
    metric: 'temp',
    from: hour0,
    to: NOW,
    intervalMs: 60_000,
    aggs: ['avg', 'min', 'max', 'count', 'sum', 'first', 'last'],
  };
  const series = (from: number, to: number, step: number) => {
    const out: EnrichedReading[] = [];
    for (let t = from; t < to; t += step)
      out.push(reading({ time: t, value: Math.cos(t) * 10 }), reading({ time: t, metric: 'x', value: 1 }));
    return out;
  };

  it('builds chunks for closed hours on the first bucket query and answers later ones from them', async () => {
    const store = open();
    await store.write(series(hour0, NOW, 30_000));
    const first = await store.queryBuckets(q);
    // Hours closed more than 10 min before NOW; the open hour stays on the frames. (Writing into closed
    // hours left stale marks for both series: only the queried one's are replaced by chunks.)
    const chunks = (await partition('K#edge-1')).filter((c) => typeof c.x === 'string');
    expect(chunks.map((c) => String(c.sk).slice(0, 6))).toEqual(Array(5).fill('#temp#'));
    expect(Math.floor((NOW - 600_000 - hour0) / 3_600_000)).toBe(5);
    const { points } = await store.queryRaw({
      deviceId: 'edge-1',
      metric: 'temp',
      from: hour0,
      to: NOW,
      limit: 10_000,
    });
    expect(first).toEqual(aggregateBuckets(points, q));
    expect(await store.queryBuckets(q)).toEqual(first);
    expect(await open({ chunkGraceMs: false }).queryBuckets(q)).toEqual(first);
  });

  it('sees a late reading written into a chunked hour (the write marks the chunk stale)', async () => {
    const store = open();
    await store.write(series(hour0, NOW, 60_000));
    await store.queryBuckets(q);
    const late = reading({ time: hour0 + 1234, value: 1000, historical: true });
    expect((await store.write([late])).written).toBe(1);
    const temp = async () => (await partition('K#edge-1')).filter((c) => String(c.sk).startsWith('#temp#'));
    expect((await temp()).filter((c) => c.x === undefined)).toHaveLength(1);
    const buckets = await store.queryBuckets(q);
    expect(buckets[0]).toMatchObject({ start: hour0, count: 2, max: 1000 });
    expect((await temp()).every((c) => typeof c.x === 'string')).toBe(true);
    const { points } = await store.queryRaw({
      deviceId: 'edge-1',
      metric: 'temp',
      from: hour0,
      to: NOW,
      limit: 10_000,
    });
    expect(buckets).toEqual(aggregateBuckets(points, q));
  });

  it('refuses a range holding more points than the cap with RANGE_TOO_LARGE naming from', async () => {
    const store = open({ maxBucketPoints: 50 });
    await store.write(Array.from({ length: 51 }, (_, i) => reading({ time: T0 + i, value: i })));
    const b = { deviceId: 'edge-1', metric: 'temp', from: T0, intervalMs: 1000, aggs: ['avg' as const] };
    await expect(store.queryBuckets({ ...b, to: T0 + 51 })).rejects.toMatchObject({
      code: 'RANGE_TOO_LARGE',
      field: 'from',
      retryable: false,
    });
    expect(await store.queryBuckets({ ...b, to: T0 + 50 })).toEqual([
      { start: Math.floor(T0 / 1000) * 1000, count: 50, avg: 24.5 },
    ]);
  });
});

describe('concurrent writer instances', () => {
  it('merges different readings of the same frame written at once by two instances', async () => {
    const [a, b] = [open(), open()];
    const ra = message('edge-1', T0, 20);
    const rb = Array.from({ length: 20 }, (_, m) => reading({ time: T0, metric: `Other/${m}`, value: m }));
    const [x, y] = await Promise.all([a.write(ra), b.write(rb)]);
    expect(x.written + y.written).toBe(40);
    expect((await a.queryRaw({ deviceId: 'edge-1', from: T0, to: T0 + 1 })).points).toHaveLength(40);
    expect(await open().latest({ deviceId: 'edge-1' })).toHaveLength(40);
    expect(await partition(framePk('edge-1'))).toHaveLength(1);
  });

  it('lets exactly one of two racing writes of the same identity win, and counts the other', async () => {
    const [a, b] = [open(), open()];
    const [x, y] = await Promise.all([
      a.write([reading({ value: 'a' })]),
      b.write([reading({ value: 'b' })]),
    ]);
    expect(x.written + y.written).toBe(1);
    expect(x.duplicates + y.duplicates).toBe(1);
    const winner = x.written === 1 ? 'a' : 'b';
    expect(
      (await open().queryRaw({ deviceId: 'edge-1', from: T0, to: T0 + 1 })).points.map((p) => p.value),
    ).toEqual([winner]);
    expect((await open().latest({ deviceId: 'edge-1' })).map((p) => p.value)).toEqual([winner]);
  });

  it('decodes frames written with definitions a stale instance has not seen', async () => {
    const a = open();
    const b = open();
    await a.write([reading({ metric: 'one' })]);
    await b.write([reading({ metric: 'two', time: T0 + 1 }), reading({ metric: 'three', time: T0 + 1 })]);
    // a's cached catalog lacks two and three; its next write must not reuse their ids.
    await a.write([
      reading({ metric: 'four', time: T0 + 2 }),
      reading({ metric: 'two', time: T0 + 2, value: 2 }),
    ]);
    const { points } = await open().queryRaw({ deviceId: 'edge-1', from: T0, to: T0 + 3 });
    expect(points.map((p) => [p.time - T0, p.metric])).toEqual([
      [0, 'one'],
      [1, 'three'],
      [1, 'two'],
      [2, 'four'],
      [2, 'two'],
    ]);
    expect((await open().latest({ deviceId: 'edge-1' })).map((p) => [p.metric, p.time - T0])).toEqual([
      ['four', 2],
      ['one', 0],
      ['three', 1],
      ['two', 2],
    ]);
  });
});

describe('item size', () => {
  it('rejects a value too large for one item and stores the rest', async () => {
    const store = open();
    const huge = reading({ value: 'x'.repeat(400_000) });
    const res = await store.write([huge, reading({ time: T0 + 1 })]);
    expect(res.written).toBe(1);
    expect(res.rejected).toEqual([expect.objectContaining({ reading: huge, code: 'ITEM_TOO_LARGE' })]);
  });
});
