/**
 * DynamoTelemetryStore against a real dynalite in-process: the port's semantics, checked with the same
 * expectations as the DuckDB suite (test/infra/local/duckdb-store.test.ts) where they apply.
 */
import type { AddressInfo } from 'node:net';
import { CreateTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, GetCommand } from '@aws-sdk/lib-dynamodb';
import dynalite from 'dynalite';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  DynamoTelemetryStore,
  type DynamoTelemetryStoreOptions,
  pointPk,
  pointSk,
  TELEMETRY_TABLE_SCHEMA,
} from '../../functions/adapters/dynamo-telemetry-store.js';
import { ValidationError } from '../../functions/core/errors.js';
import type { EnrichedReading, ReadingValue } from '../../functions/core/reading.js';
import { aggregateBuckets, type StoredPoint } from '../../functions/core/telemetry.js';

const T0 = 1_700_000_000_000;
const NOW = T0 + 3_600_000;

let server: ReturnType<typeof dynalite>;
let client: DynamoDBClient;
let doc: DynamoDBDocumentClient;
let tableCounter = 0;
let table: string;
let store: DynamoTelemetryStore;

function reading(over: Partial<EnrichedReading> = {}): EnrichedReading {
  return {
    protocol: 'sparkplug',
    deviceId: 'edge-1',
    group: 'plant',
    metric: 'temp',
    type: 'Double',
    value: 20.5,
    time: T0,
    historical: false,
    transient: false,
    quality: 'GOOD',
    unit: 'Cel',
    enrichment: { deviceType: 'pump', site: 'site-a', applications: ['app-1'] },
    ...over,
  };
}

function open(over: Partial<DynamoTelemetryStoreOptions> = {}): DynamoTelemetryStore {
  return new DynamoTelemetryStore({ client: doc, tableName: table, clock: () => NOW, ...over });
}

beforeAll(async () => {
  server = dynalite({ createTableMs: 0 });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const port = (server.address() as AddressInfo).port;
  client = new DynamoDBClient({
    endpoint: `http://127.0.0.1:${port}`,
    region: 'us-east-1',
    credentials: { accessKeyId: 'x', secretAccessKey: 'x' },
  });
  doc = DynamoDBDocumentClient.from(client, { marshallOptions: { removeUndefinedValues: true } });
});

afterAll(async () => {
  client.destroy();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

beforeEach(async () => {
  // A fresh table per test (dynalite creates it at once): tests cannot see each other's items.
  table = `telemetry-${++tableCounter}`;
  await client.send(
    new CreateTableCommand({
      TableName: table,
      BillingMode: TELEMETRY_TABLE_SCHEMA.billingMode,
      KeySchema: [
        { AttributeName: TELEMETRY_TABLE_SCHEMA.partitionKey.name, KeyType: 'HASH' },
        { AttributeName: TELEMETRY_TABLE_SCHEMA.sortKey.name, KeyType: 'RANGE' },
      ],
      AttributeDefinitions: [
        { AttributeName: 'pk', AttributeType: 'S' },
        { AttributeName: 'sk', AttributeType: 'S' },
      ],
    }),
  );
  store = open();
});

async function all(deviceId = 'edge-1', over: { from?: number; to?: number } = {}): Promise<StoredPoint[]> {
  const { points } = await store.queryRaw({
    deviceId,
    from: over.from ?? 0,
    to: over.to ?? NOW,
    limit: 10_000,
  });
  return points;
}

describe('DynamoTelemetryStore write', () => {
  it('stores readings and reports written counts', async () => {
    const readings = [0, 1, 2].map((i) => reading({ time: T0 + i * 1000, value: i }));
    const result = await store.write(readings);
    expect(result).toEqual({ written: 3, duplicates: 0, rejected: [], skipped: 0 });
    expect((await all()).map((p) => p.value)).toEqual([0, 1, 2]);
  });

  it.each(['checked', 'conditional'] as const)(
    'is idempotent (%s): re-writing the same readings adds no items and counts duplicates',
    async (writeMode) => {
      store = open({ writeMode });
      const readings = [0, 1, 2].map((i) => reading({ time: T0 + i, value: i }));
      await store.write(readings);
      const again = await store.write([...readings, reading({ time: T0 + 3, value: 3 })]);
      expect(again).toMatchObject({ written: 1, duplicates: 3 });
      expect((await all()).map((p) => p.value)).toEqual([0, 1, 2, 3]);
    },
  );

  it.each(['checked', 'conditional'] as const)(
    'keeps the first value when an identity is re-written with a different value (%s)',
    async (writeMode) => {
      store = open({ writeMode });
      await store.write([reading({ value: 1 })]);
      const res = await store.write([reading({ value: 2 })]);
      expect(res).toMatchObject({ written: 0, duplicates: 1 });
      expect((await all()).map((p) => p.value)).toEqual([1]);
      expect((await store.latest({ deviceId: 'edge-1' })).map((p) => p.value)).toEqual([1]);
    },
  );

  it('treats subDevice, row and index as part of the identity', async () => {
    const res = await store.write([
      reading(),
      reading({ subDevice: 'd1' }),
      reading({ row: 0 }),
      reading({ row: 1 }),
      reading({ index: 0 }),
      reading({ row: 0, index: 0 }),
      reading({ row: 0 }), // repeat within the call
    ]);
    expect(res).toMatchObject({ written: 6, duplicates: 1 });
    expect(await all()).toHaveLength(6);
  });

  it('skips transient readings and rejects invalid ones with a reason', async () => {
    const bad = reading({ time: Number.NaN });
    const res = await store.write([reading({ transient: true }), bad, reading({ metric: '' }), reading()]);
    expect(res.written).toBe(1);
    expect(res.skipped).toBe(1);
    expect(res.rejected).toHaveLength(2);
    expect(res.rejected[0]).toMatchObject({ reading: bad, code: 'INVALID_READING' });
    expect(res.rejected[0]?.reason).toMatch(/time/);
    expect(res.rejected[1]?.reason).toMatch(/metric/);
  });

  it('sets the TTL from the point time and rejects points already past retention', async () => {
    store = open({ retentionDays: 30 });
    const old = reading({ time: NOW - 31 * 86_400_000 });
    const res = await store.write([old, reading()]);
    expect(res).toMatchObject({ written: 1 });
    expect(res.rejected).toEqual([expect.objectContaining({ reading: old, code: 'OUTSIDE_RETENTION' })]);
    const got = await doc.send(
      new GetCommand({
        TableName: table,
        Key: { pk: pointPk('edge-1', '', 'temp'), sk: pointSk({ time: T0, row: -1, index: -1 }) },
      }),
    );
    expect(got.Item?.expiresAt).toBe(Math.floor(T0 / 1000) + 30 * 86_400);
  });

  it('hides points whose TTL passed even before DynamoDB deletes them', async () => {
    await store.write([reading(), reading({ time: T0 + 10 * 86_400_000, value: 2 })]);
    store = open({ clock: () => T0 + 366 * 86_400_000 });
    expect((await all('edge-1', { to: T0 + 400 * 86_400_000 })).map((p) => p.value)).toEqual([2]);
    expect((await store.latest({ deviceId: 'edge-1' })).map((p) => p.value)).toEqual([2]);
  });

  it('rejects a value too large for one DynamoDB item and stores the rest', async () => {
    const huge = reading({ value: 'x'.repeat(400_000) });
    const res = await store.write([huge, reading({ time: T0 + 1 })]);
    expect(res.written).toBe(1);
    expect(res.rejected).toEqual([expect.objectContaining({ reading: huge, code: 'ITEM_TOO_LARGE' })]);
  });

  it('writes more items than one BatchWriteItem holds in one call, in either mode', async () => {
    for (const writeMode of ['checked', 'conditional', 'batch'] as const) {
      store = open({ writeMode });
      const deviceId = `many-${writeMode}`;
      const readings = Array.from({ length: 260 }, (_, i) => reading({ deviceId, time: T0 + i, value: i }));
      const res = await store.write(readings);
      expect(res.written).toBe(260);
      const [b] = await store.queryBuckets({
        deviceId,
        metric: 'temp',
        from: T0,
        to: T0 + 260,
        intervalMs: 10_000,
        aggs: ['sum', 'count', 'min', 'max'],
      });
      expect(b).toMatchObject({ count: 260, sum: (259 * 260) / 2, min: 0, max: 259 });
    }
  });

  it('batch mode: an identical re-write stores no second item; a different value overwrites', async () => {
    store = open({ writeMode: 'batch' });
    await store.write([reading({ value: 1 }), reading({ time: T0 + 1, value: 5 })]);
    const again = await store.write([reading({ value: 1 }), reading({ time: T0 + 1, value: 6 })]);
    expect(again).toMatchObject({ written: 2, duplicates: 0 });
    expect((await all()).map((p) => p.value)).toEqual([1, 6]);
  });
});

describe('DynamoTelemetryStore keys', () => {
  it('keeps identities apart whatever separators the names contain', async () => {
    const tricky: Array<Partial<EnrichedReading>> = [
      { deviceId: 'a', subDevice: 'b#c', metric: 'm' },
      { deviceId: 'a', subDevice: 'b', metric: 'c#m' },
      { deviceId: 'a#b', subDevice: 'c', metric: 'm' },
      { deviceId: 'a', subDevice: 'b%23c', metric: 'm' },
      { deviceId: 'a', metric: 'b#c#m' },
      { deviceId: 'a', metric: 'Node Control/Rebirth' },
      { deviceId: 'a', metric: 'L#x' },
    ];
    const res = await store.write(tricky.map((t, i) => reading({ ...t, value: i })));
    expect(res.written).toBe(tricky.length);
    const a = await all('a');
    expect(a.map((p) => [p.subDevice ?? '', p.metric, p.value])).toEqual([
      ['', 'L#x', 6],
      ['', 'Node Control/Rebirth', 5],
      ['', 'b#c#m', 4],
      ['b', 'c#m', 1],
      ['b#c', 'm', 0],
      ['b%23c', 'm', 3],
    ]);
    expect((await all('a#b')).map((p) => p.value)).toEqual([2]);
    const sub = await store.latest({ deviceId: 'a', subDevice: 'b' });
    expect(sub.map((p) => p.metric)).toEqual(['c#m']);
  });

  it('orders sort keys lexically as (time, row, index) across digit counts', () => {
    const keys = [
      { time: 0, row: -1, index: -1 },
      { time: 0, row: -1, index: 0 },
      { time: 0, row: -1, index: 9 },
      { time: 0, row: -1, index: 10 },
      { time: 0, row: 0, index: -1 },
      { time: 0, row: 99_999_999, index: -1 },
      { time: 1, row: -1, index: -1 },
      { time: Number.MAX_SAFE_INTEGER, row: Number.MAX_SAFE_INTEGER - 1, index: 3 },
    ];
    const sks = keys.map(pointSk);
    expect([...sks].sort()).toEqual(sks);
    expect(new Set(sks).size).toBe(sks.length);
  });
});

describe('DynamoTelemetryStore values', () => {
  const values: Array<[string, ReadingValue]> = [
    ['double', 3.25],
    ['integer number', 42],
    ['negative integer', -5],
    ['negative zero', -0],
    ['double beyond DynamoDB number range', 1e300],
    ['smallest subnormal', 5e-324],
    ['integral double beyond 2^53', 2 ** 60],
    ['int64 bigint', -(2n ** 63n)],
    ['uint64 beyond int64', 2n ** 64n - 1n],
    ['NaN', Number.NaN],
    ['Infinity', Number.POSITIVE_INFINITY],
    ['boolean true', true],
    ['boolean false', false],
    ['string', 'héllo \u{1F600}'],
    ['empty string', ''],
    ['bytes', new Uint8Array([0, 255, 1, 2])],
    ['null', null],
    ['array', [1, 2.5, -3]],
    ['nested array with bigint, bytes, NaN', [1n << 70n, new Uint8Array([9]), Number.NaN, null, 'x', [true]]],
  ];

  it.each(values)('round-trips %s exactly', async (_label, value) => {
    await store.write([reading({ value })]);
    const { points } = await store.queryRaw({ deviceId: 'edge-1', from: T0, to: T0 + 1 });
    expect(points).toHaveLength(1);
    if (typeof value === 'number') expect(Object.is(points[0]?.value, value)).toBe(true);
    expect(points[0]?.value).toEqual(value);
    const [latest] = await store.latest({ deviceId: 'edge-1' });
    expect(latest?.value).toEqual(value);
  });

  it('returns every stored attribute of a point', async () => {
    await store.write([
      reading({ subDevice: 'd1', row: 2, index: 3, name: 'Temperature', historical: true, quality: 'STALE' }),
    ]);
    const { points } = await store.queryRaw({ deviceId: 'edge-1', from: T0, to: T0 + 1 });
    expect(points[0]).toEqual<StoredPoint>({
      deviceId: 'edge-1',
      subDevice: 'd1',
      group: 'plant',
      metric: 'temp',
      name: 'Temperature',
      unit: 'Cel',
      time: T0,
      value: 20.5,
      type: 'Double',
      quality: 'STALE',
      historical: true,
      row: 2,
      index: 3,
      protocol: 'sparkplug',
      deviceType: 'pump',
      site: 'site-a',
    });
  });
});

describe('DynamoTelemetryStore queryRaw', () => {
  beforeEach(async () => {
    const rs: EnrichedReading[] = [];
    for (let i = 0; i < 10; i++) {
      rs.push(reading({ time: T0 + i * 100, value: i }));
      rs.push(reading({ time: T0 + i * 100, metric: 'rpm', value: i * 10 }));
      rs.push(reading({ time: T0 + i * 100, subDevice: 'd1', value: -i }));
    }
    rs.push(reading({ deviceId: 'edge-2', value: 99 }));
    await store.write(rs);
  });

  it('filters by device, metric, sub-device and the half-open range', async () => {
    const every = await store.queryRaw({ deviceId: 'edge-1', from: T0, to: T0 + 1000 });
    expect(every.points).toHaveLength(30);
    const temps = await store.queryRaw({ deviceId: 'edge-1', metric: 'temp', from: T0 + 100, to: T0 + 300 });
    expect(temps.points.map((p) => [p.time - T0, p.subDevice ?? '', p.value])).toEqual([
      [100, '', 1],
      [100, 'd1', -1],
      [200, '', 2],
      [200, 'd1', -2],
    ]);
    const node = await store.queryRaw({
      deviceId: 'edge-1',
      metric: 'temp',
      subDevice: '',
      from: T0,
      to: T0 + 1000,
    });
    expect(node.points.every((p) => p.subDevice === undefined)).toBe(true);
    expect(node.points).toHaveLength(10);
    const d1 = await store.queryRaw({ deviceId: 'edge-1', subDevice: 'd1', from: T0, to: T0 + 1000 });
    expect(d1.points.map((p) => p.value)).toEqual([-0, -1, -2, -3, -4, -5, -6, -7, -8, -9]);
    const empty = await store.queryRaw({ deviceId: 'edge-1', from: T0 + 5, to: T0 + 5 });
    expect(empty.points).toEqual([]);
    const unknown = await store.queryRaw({ deviceId: 'nobody', from: T0, to: T0 + 1000 });
    expect(unknown.points).toEqual([]);
  });

  it('pages with nextToken without gaps or repeats, ascending and descending', async () => {
    for (const order of ['asc', 'desc'] as const) {
      const seen: string[] = [];
      let token: string | undefined;
      let pages = 0;
      do {
        const page = await store.queryRaw({
          deviceId: 'edge-1',
          from: T0,
          to: T0 + 1000,
          limit: 7,
          order,
          nextToken: token,
        });
        seen.push(...page.points.map((p) => `${p.time}/${p.subDevice ?? ''}/${p.metric}`));
        token = page.nextToken;
        pages++;
      } while (token !== undefined);
      expect(pages).toBe(5);
      expect(new Set(seen).size).toBe(30);
      const sorted = [...seen].sort();
      expect(seen).toEqual(order === 'asc' ? sorted : sorted.reverse());
    }
  });

  it('pages one metric across sub-devices, with rows, in both orders', async () => {
    await store.write(
      [0, 1, 2].flatMap((t) =>
        [0, 1, 2].map((row) => reading({ time: T0 + t, metric: 'ds/c', row, value: row })),
      ),
    );
    for (const order of ['asc', 'desc'] as const) {
      const keys: string[] = [];
      let token: string | undefined;
      do {
        const page = await store.queryRaw({
          deviceId: 'edge-1',
          metric: 'ds/c',
          from: T0,
          to: T0 + 3,
          limit: 2,
          order,
          nextToken: token,
        });
        keys.push(...page.points.map((p) => `${p.time - T0}:${p.row}`));
        token = page.nextToken;
      } while (token !== undefined);
      const asc = ['0:0', '0:1', '0:2', '1:0', '1:1', '1:2', '2:0', '2:1', '2:2'];
      expect(keys).toEqual(order === 'asc' ? asc : [...asc].reverse());
    }
  });

  it('finds series that only have historical points', async () => {
    await store.write([reading({ metric: 'backlog', time: T0 + 50, value: 7, historical: true })]);
    const { points } = await store.queryRaw({ deviceId: 'edge-1', from: T0 + 50, to: T0 + 51 });
    expect(points.map((p) => [p.metric, p.subDevice ?? '', p.value])).toEqual([['backlog', '', 7]]);
    const backlog = await store.queryRaw({ deviceId: 'edge-1', metric: 'backlog', from: T0, to: T0 + 1000 });
    expect(backlog.points.map((p) => p.historical)).toEqual([true]);
    expect((await store.latest({ deviceId: 'edge-1' })).map((p) => p.metric)).not.toContain('backlog');
  });

  it('rejects a forged nextToken and bad ranges with ValidationError', async () => {
    await expect(
      store.queryRaw({ deviceId: 'edge-1', from: T0, to: T0 + 1, nextToken: 'garbage' }),
    ).rejects.toThrow(ValidationError);
    await expect(store.queryRaw({ deviceId: 'edge-1', from: T0 + 1, to: T0 })).rejects.toMatchObject({
      field: 'to',
    });
    await expect(
      store.queryRaw({ deviceId: 'edge-1', from: T0, to: T0 + 1, limit: 0 }),
    ).rejects.toMatchObject({ field: 'limit' });
  });
});

describe('DynamoTelemetryStore queryBuckets', () => {
  it('aggregates numeric values per epoch-aligned bucket, counting non-numeric points', async () => {
    store = open({ clock: () => 60_000 * 30 });
    await store.write([
      reading({ time: 60_000 * 10 + 5, value: 1 }),
      reading({ time: 60_000 * 10 + 6, value: 3 }),
      reading({ time: 60_000 * 10 + 7, value: 'n/a' }),
      reading({ time: 60_000 * 11 + 1, value: true }),
      reading({ time: 60_000 * 11 + 2, value: 5n }),
      reading({ time: 60_000 * 13, value: null }),
    ]);
    const buckets = await store.queryBuckets({
      deviceId: 'edge-1',
      metric: 'temp',
      from: 0,
      to: 60_000 * 20,
      intervalMs: 60_000,
      aggs: ['avg', 'min', 'max', 'count', 'sum', 'first', 'last'],
    });
    expect(buckets).toEqual([
      { start: 600_000, count: 3, avg: 2, min: 1, max: 3, sum: 4, first: 1, last: 3 },
      { start: 660_000, count: 2, avg: 3, min: 1, max: 5, sum: 6, first: 1, last: 5 },
      { start: 780_000, count: 1 },
    ]);
  });

  it('returns only the requested aggregations', async () => {
    await store.write([reading({ value: 4 }), reading({ time: T0 + 1, value: 6 })]);
    const [b] = await store.queryBuckets({
      deviceId: 'edge-1',
      metric: 'temp',
      from: T0,
      to: T0 + 10,
      intervalMs: 1000,
      aggs: ['max'],
    });
    expect(b).toEqual({ start: Math.floor(T0 / 1000) * 1000, count: 2, max: 6 });
  });

  it('matches the reference aggregation on a mixed data set (sub-devices, rows, ties, history)', async () => {
    const rs: EnrichedReading[] = [];
    let x = 7;
    for (let i = 0; i < 400; i++) {
      x = (x * 1103515245 + 12345) % 2147483648;
      const value: ReadingValue = i % 17 === 0 ? 'text' : i % 13 === 0 ? x % 2 === 0 : (x % 1000) / 10;
      rs.push(
        reading({
          time: T0 + (x % 50_000),
          value,
          subDevice: i % 3 === 0 ? 'd1' : i % 7 === 0 ? 'd2' : undefined,
          row: i % 5,
          historical: i % 11 === 0,
        }),
      );
    }
    await store.write(rs);
    const points = await all('edge-1', { from: T0, to: T0 + 60_000 });
    expect(points.length).toBeGreaterThan(300);
    for (const subDevice of [undefined, '', 'd1', 'd2']) {
      const q = {
        deviceId: 'edge-1',
        metric: 'temp',
        subDevice,
        from: T0 + 1000,
        to: T0 + 45_000,
        intervalMs: 7000,
        aggs: ['avg', 'min', 'max', 'count', 'sum', 'first', 'last'] as const,
      };
      const mine = points.filter((p) => subDevice === undefined || (p.subDevice ?? '') === subDevice);
      const expected = aggregateBuckets(mine, { ...q, aggs: [...q.aggs] });
      const actual = await store.queryBuckets({ ...q, aggs: [...q.aggs] });
      expect(actual.length).toBeGreaterThan(3);
      expect(actual).toEqual(expected);
    }
  });

  it('refuses more than 10,000 buckets and ranges holding more points than the cap', async () => {
    await expect(
      store.queryBuckets({
        deviceId: 'edge-1',
        metric: 'temp',
        from: 0,
        to: 10_001,
        intervalMs: 1,
        aggs: ['avg'],
      }),
    ).rejects.toMatchObject({ field: 'intervalMs' });
    store = open({ maxBucketPoints: 50 });
    await store.write(Array.from({ length: 51 }, (_, i) => reading({ time: T0 + i, value: i })));
    const q = { deviceId: 'edge-1', metric: 'temp', from: T0, intervalMs: 1000, aggs: ['avg' as const] };
    await expect(store.queryBuckets({ ...q, to: T0 + 51 })).rejects.toMatchObject({
      code: 'RANGE_TOO_LARGE',
      field: 'from',
      retryable: false,
    });
    expect(await store.queryBuckets({ ...q, to: T0 + 50 })).toEqual([
      { start: Math.floor(T0 / 1000) * 1000, count: 50, avg: 24.5 },
    ]);
  });
});

describe('DynamoTelemetryStore latest', () => {
  it('returns the latest non-historical points per (subDevice, metric), all rows at that time', async () => {
    await store.write([
      reading({ time: T0, value: 1 }),
      reading({ time: T0 + 10, value: 2 }),
      reading({ time: T0 + 20, value: 3, historical: true }), // newer but historical: ignored
      reading({ time: T0 + 5, metric: 'rpm', value: 100 }),
      reading({ time: T0 + 1, subDevice: 'd1', value: 50 }),
      reading({ time: T0 + 7, metric: 'table/col', row: 0, value: 'a' }),
      reading({ time: T0 + 7, metric: 'table/col', row: 1, value: 'b' }),
      reading({ time: T0 + 3, metric: 'table/col', row: 2, value: 'old' }),
      reading({ deviceId: 'edge-2', time: T0 + 99, value: 9 }),
    ]);
    const latest = await store.latest({ deviceId: 'edge-1' });
    expect(latest.map((p) => [p.subDevice ?? '', p.metric, p.row ?? -1, p.value])).toEqual([
      ['', 'rpm', -1, 100],
      ['', 'table/col', 0, 'a'],
      ['', 'table/col', 1, 'b'],
      ['', 'temp', -1, 2],
      ['d1', 'temp', -1, 50],
    ]);
    const d1 = await store.latest({ deviceId: 'edge-1', subDevice: 'd1' });
    expect(d1.map((p) => p.value)).toEqual([50]);
    const node = await store.latest({ deviceId: 'edge-1', subDevice: '' });
    expect(node.map((p) => p.metric)).toEqual(['rpm', 'table/col', 'table/col', 'temp']);
    const recent = await store.latest({ deviceId: 'edge-1', since: T0 + 6 });
    expect(recent.map((p) => p.metric)).toEqual(['table/col', 'table/col', 'temp']);
  });

  it('never lets an older point (a later call, or a late delivery) replace a newer latest value', async () => {
    await store.write([reading({ time: T0 + 10, value: 'new' })]);
    await store.write([reading({ time: T0 + 5, value: 'late' })]);
    const [p] = await store.latest({ deviceId: 'edge-1' });
    expect(p).toMatchObject({ time: T0 + 10, value: 'new' });
    await store.write([reading({ time: T0 + 11, value: 'newer' })]);
    expect((await store.latest({ deviceId: 'edge-1' }))[0]).toMatchObject({ time: T0 + 11, value: 'newer' });
  });

  it('answers concurrent writers with the newest point', async () => {
    const writers = Array.from({ length: 8 }, (_, w) =>
      open().write(Array.from({ length: 20 }, (_, i) => reading({ time: T0 + i * 8 + w, value: i * 8 + w }))),
    );
    const results = await Promise.all(writers);
    expect(results.reduce((n, r) => n + r.written, 0)).toBe(160);
    expect((await store.latest({ deviceId: 'edge-1' })).map((p) => p.value)).toEqual([159]);
  });
});
