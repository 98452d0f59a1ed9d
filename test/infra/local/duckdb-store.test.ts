import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DuckDBConnection } from '@duckdb/node-api';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ValidationError } from '../../../functions/core/errors.js';
import type { EnrichedReading, ReadingValue } from '../../../functions/core/reading.js';
import { aggregateBuckets, type StoredPoint } from '../../../functions/core/telemetry.js';
import { DuckDbTelemetryStore, TELEMETRY_FILE } from '../../../infra/local/duckdb-store.js';

const T0 = 1_700_000_000_000;

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

let dir: string;
let store: DuckDbTelemetryStore;

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'dualpath-duck-'));
  store = await DuckDbTelemetryStore.open({ dataDir: dir, threads: 1 });
});

afterEach(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('DuckDbTelemetryStore write', () => {
  it('stores readings and reports written counts', async () => {
    // Prepare
    const readings = [0, 1, 2].map((i) => reading({ time: T0 + i * 1000, value: i }));
    // Act
    const result = await store.write(readings);
    // Assess
    expect(result).toEqual({ written: 3, duplicates: 0, rejected: [], skipped: 0 });
    expect(await store.counts()).toEqual({ readings: 3, distinct: 3 });
    expect(store.path).toBe(join(dir, TELEMETRY_FILE));
  });

  it('is idempotent: re-writing the same readings adds no rows and counts duplicates', async () => {
    const readings = [0, 1, 2].map((i) => reading({ time: T0 + i, value: i }));
    await store.write(readings);
    const again = await store.write([...readings, reading({ time: T0 + 3, value: 3 })]);
    expect(again).toMatchObject({ written: 1, duplicates: 3 });
    expect(await store.counts()).toEqual({ readings: 4, distinct: 4 });
  });

  it('keeps the first value when an identity is re-written with a different value', async () => {
    await store.write([reading({ value: 1 })]);
    const res = await store.write([reading({ value: 2 })]);
    expect(res).toMatchObject({ written: 0, duplicates: 1 });
    const { points } = await store.queryRaw({ deviceId: 'edge-1', from: T0, to: T0 + 1 });
    expect(points.map((p) => p.value)).toEqual([1]);
  });

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

  it('handles more rows than one data chunk (2048) in one call', async () => {
    const readings = Array.from({ length: 5000 }, (_, i) => reading({ time: T0 + i, value: i }));
    const res = await store.write(readings);
    expect(res.written).toBe(5000);
    const b = await store.queryBuckets({
      deviceId: 'edge-1',
      metric: 'temp',
      from: T0,
      to: T0 + 5000,
      intervalMs: 10_000,
      aggs: ['sum', 'count', 'min', 'max'],
    });
    expect(b).toHaveLength(1);
    expect(b[0]).toMatchObject({ count: 5000, sum: (4999 * 5000) / 2, min: 0, max: 4999 });
  });
});

describe('DuckDbTelemetryStore values', () => {
  const values: Array<[string, ReadingValue]> = [
    ['double', 3.25],
    ['integer number', 42],
    ['negative integer', -5],
    ['int64 bigint', -(2n ** 63n)],
    ['uint64 beyond int64', 2n ** 64n - 1n],
    ['NaN', Number.NaN],
    ['Infinity', Number.POSITIVE_INFINITY],
    ['boolean', true],
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
    expect(points[0]?.value).toEqual(value);
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

describe('DuckDbTelemetryStore queryRaw', () => {
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
    const all = await store.queryRaw({ deviceId: 'edge-1', from: T0, to: T0 + 1000 });
    expect(all.points).toHaveLength(30);
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

  it('rejects a forged nextToken and bad ranges with ValidationError', async () => {
    await expect(
      store.queryRaw({ deviceId: 'edge-1', from: T0, to: T0 + 1, nextToken: 'garbage' }),
    ).rejects.toThrow(ValidationError);
    await expect(store.queryRaw({ deviceId: 'edge-1', from: T0 + 1, to: T0 })).rejects.toMatchObject({
      field: 'to',
    });
    await expect(
      store.queryRaw({ deviceId: 'edge-1', from: T0, to: T0 + 1, limit: 0 }),
    ).rejects.toMatchObject({
      field: 'limit',
    });
  });
});

describe('DuckDbTelemetryStore queryBuckets', () => {
  it('aggregates numeric values per epoch-aligned bucket, counting non-numeric points', async () => {
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

  it('matches the reference aggregation on a mixed data set (sub-devices, rows, ties)', async () => {
    const rs: EnrichedReading[] = [];
    let x = 7;
    for (let i = 0; i < 400; i++) {
      x = (x * 1103515245 + 12345) % 2147483648;
      const value: ReadingValue = i % 17 === 0 ? 'text' : i % 13 === 0 ? x % 2 === 0 : (x % 1000) / 10;
      rs.push(
        reading({ time: T0 + (x % 50_000), value, subDevice: i % 3 === 0 ? 'd1' : undefined, row: i % 5 }),
      );
    }
    await store.write(rs);
    const { points } = await store.queryRaw({ deviceId: 'edge-1', from: T0, to: T0 + 60_000, limit: 10_000 });
    for (const subDevice of [undefined, '', 'd1']) {
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
      expect(actual.map((b) => ({ ...b, avg: b.avg?.toFixed(9), sum: b.sum?.toFixed(6) }))).toEqual(
        expected.map((b) => ({ ...b, avg: b.avg?.toFixed(9), sum: b.sum?.toFixed(6) })),
      );
    }
  });

  it('refuses more than 10,000 buckets', async () => {
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
  });
});

describe('DuckDbTelemetryStore latest', () => {
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
    const recent = await store.latest({ deviceId: 'edge-1', since: T0 + 6 });
    expect(recent.map((p) => p.metric)).toEqual(['table/col', 'table/col', 'temp']);
  });
});

describe('DuckDbTelemetryStore durability', () => {
  it('keeps data across close and reopen, and stays idempotent after restart', async () => {
    const readings = Array.from({ length: 100 }, (_, i) => reading({ time: T0 + i, value: i }));
    await store.write(readings);
    await store.close();
    store = await DuckDbTelemetryStore.open({ dataDir: dir, threads: 1 });
    expect(await store.counts()).toEqual({ readings: 100, distinct: 100 });
    const again = await store.write(readings);
    expect(again).toMatchObject({ written: 0, duplicates: 100 });
    const { points } = await store.queryRaw({ deviceId: 'edge-1', from: T0 + 98, to: T0 + 200 });
    expect(points.map((p) => p.value)).toEqual([98, 99]);
  });

  it('serialises concurrent writes and queries on one connection', async () => {
    const batches = Array.from({ length: 8 }, (_, b) =>
      Array.from({ length: 300 }, (_, i) => reading({ time: T0 + b * 1000 + i, value: i })),
    );
    const results = await Promise.all([
      ...batches.map((rs) => store.write(rs)),
      store.queryRaw({ deviceId: 'edge-1', from: T0, to: T0 + 10_000 }),
    ]);
    expect(results.slice(0, 8).every((r) => 'written' in r && r.written === 300)).toBe(true);
    expect(await store.counts()).toEqual({ readings: 2400, distinct: 2400 });
  });

  it('fails calls after close with a retryable error', async () => {
    await store.close();
    await expect(store.counts()).rejects.toMatchObject({ code: 'STORE_CLOSED', retryable: true });
    store = await DuckDbTelemetryStore.open({ dataDir: dir, threads: 1 });
  });
});

/** The store's private parts a few tests look at (its dimension maps, its connection). */
function internals(s: DuckDbTelemetryStore): { dims: { size: number }; connection: DuckDBConnection } {
  return s as unknown as { dims: { size: number }; connection: DuckDBConnection };
}

/** The point a reading should come back as (what the store keeps of it). */
function pointOf(r: EnrichedReading): StoredPoint {
  const p: StoredPoint = {
    deviceId: r.deviceId,
    metric: r.metric,
    time: r.time,
    value: r.value,
    type: r.type,
    quality: r.quality,
    historical: r.historical,
    protocol: r.protocol,
    deviceType: r.enrichment.deviceType,
  };
  if (r.subDevice !== undefined && r.subDevice !== '') p.subDevice = r.subDevice;
  if (r.group !== undefined) p.group = r.group;
  if (r.name !== undefined) p.name = r.name;
  if (r.unit !== undefined) p.unit = r.unit;
  if (r.row !== undefined) p.row = r.row;
  if (r.index !== undefined) p.index = r.index;
  if (r.enrichment.site !== undefined) p.site = r.enrichment.site;
  return p;
}

/** Every stored point of the given devices, in a stable order (device, time, sub-device, metric, ...). */
async function stored(s: DuckDbTelemetryStore, deviceIds: string[]): Promise<StoredPoint[]> {
  const out: StoredPoint[] = [];
  for (const deviceId of deviceIds) {
    const { points } = await s.queryRaw({ deviceId, from: 0, to: T0 + 10_000_000, limit: 10_000 });
    out.push(...points);
  }
  return out;
}

function expected(rs: EnrichedReading[]): StoredPoint[] {
  const key = (p: StoredPoint) => [p.time, p.subDevice ?? '', p.metric, p.row ?? -1, p.index ?? -1] as const;
  const cmp = (a: StoredPoint, b: StoredPoint): number => {
    if (a.deviceId !== b.deviceId) return a.deviceId < b.deviceId ? -1 : 1;
    const ka = key(a);
    const kb = key(b);
    for (let i = 0; i < ka.length; i++) {
      if (ka[i] !== kb[i]) return (ka[i] as number | string) < (kb[i] as number | string) ? -1 : 1;
    }
    return 0;
  };
  return rs.map(pointOf).sort(cmp);
}

describe('DuckDbTelemetryStore write staging (device and metric tuples)', () => {
  it('mixes tuples new to the store with known ones in one write', async () => {
    const first = [reading(), reading({ metric: 'rpm', unit: 'rpm', value: 1200 })];
    await store.write(first);
    const second = [
      reading({ time: T0 + 1 }), // known device, known metric
      reading({ time: T0 + 1, metric: 'pressure', unit: 'kPa', name: 'Pressure' }), // new metric
      reading({ time: T0 + 1, deviceId: 'edge-2', group: 'yard' }), // new device, known metric
      reading({ time: T0 + 1, subDevice: 'd1' }), // new sub-device
      reading({ time: T0 + 1, metric: 'rpm', unit: 'rpm', value: 1300 }), // known
      reading({
        time: T0 + 1,
        deviceId: 'lw-1',
        protocol: 'lwm2m',
        group: undefined,
        metric: '/3303/0/5700',
        type: 'Float',
        enrichment: { deviceType: 'sensor', applications: [] },
      }), // new device without site or group
    ];
    const res = await store.write(second);
    expect(res).toEqual({ written: 6, duplicates: 0, rejected: [], skipped: 0 });
    expect(await stored(store, ['edge-1', 'edge-2', 'lw-1'])).toEqual(expected([...first, ...second]));
  });

  it('stores values of every kind, DataSet rows and array elements in one write', async () => {
    const values: ReadingValue[] = [
      3.25,
      -0,
      42,
      true,
      false,
      null,
      -(2n ** 63n),
      2n ** 64n - 1n,
      Number.NaN,
      Number.NEGATIVE_INFINITY,
      'héllo',
      '',
      new Uint8Array([0, 255]),
      [1, 2.5, null, 'x'],
    ];
    const rs = values.map((value, i) =>
      reading({ time: T0 + i, value, historical: i % 3 === 0, quality: i % 4 === 0 ? 'BAD' : 'GOOD' }),
    );
    rs.push(reading({ time: T0, metric: 'table/col', row: 0, value: 7 }));
    rs.push(reading({ time: T0, metric: 'table/col', row: 1, value: 'b' }));
    rs.push(reading({ time: T0, metric: 'arr', index: 0, value: true }));
    rs.push(reading({ time: T0, metric: 'arr', index: 1, value: null, subDevice: 'd1' }));
    rs.push(reading({ time: T0, metric: 'tbl', row: 2, index: 3, value: 1.5 }));
    const res = await store.write(rs);
    expect(res).toMatchObject({ written: rs.length, duplicates: 0 });
    const points = await stored(store, ['edge-1']);
    expect(points).toEqual(expected(rs));
    expect(Object.is(points.find((p) => p.time === T0 + 1 && p.metric === 'temp')?.value, -0)).toBe(true);
  });

  it('keeps each write’s attributes when a device’s or metric’s strings change between writes', async () => {
    const v1 = reading();
    const v2 = reading({
      time: T0 + 1,
      group: undefined,
      unit: 'K',
      name: 'Temperature',
      quality: 'STALE',
      type: 'Float',
      enrichment: { deviceType: 'valve', site: 'site-b', applications: [] },
    });
    const v3 = reading({ time: T0 + 2 }); // back to the first tuple
    await store.write([v1]);
    await store.write([v2]);
    await store.write([v3]);
    // Two variants of the same device and metric within one write too.
    const both = [
      reading({ time: T0 + 3, enrichment: { deviceType: 'pump', site: 'site-c', applications: [] } }),
      reading({ time: T0 + 4, unit: undefined }),
      reading({ time: T0 + 5 }),
    ];
    await store.write(both);
    expect(await stored(store, ['edge-1'])).toEqual(expected([v1, v2, v3, ...both]));
  });

  it('stays idempotent with exact duplicate counts once the tuples are known', async () => {
    const rs = [0, 1, 2].flatMap((i) => [
      reading({ time: T0 + i, value: i }),
      reading({ time: T0 + i, deviceId: 'edge-2', metric: 'text', value: `t${i}` }),
      reading({ time: T0 + i, metric: 'table/col', row: i, value: i }),
    ]);
    expect(await store.write(rs)).toMatchObject({ written: 9, duplicates: 0 });
    expect(await store.write(rs)).toMatchObject({ written: 0, duplicates: 9 });
    const more = [...rs, reading({ time: T0 + 3 }), reading({ time: T0 + 3, deviceId: 'edge-3' }), rs[0]!];
    expect(await store.write(more)).toMatchObject({ written: 2, duplicates: 10 });
    expect(await store.counts()).toEqual({ readings: 11, distinct: 11 });
  });

  it('starts over when the dimension limit is reached, storing the same rows (a churning fleet)', async () => {
    await store.close();
    store = await DuckDbTelemetryStore.open({ dataDir: dir, threads: 1, dimensionLimit: 3 });
    const batches = Array.from({ length: 6 }, (_, b) =>
      Array.from({ length: 4 }, (_, i) =>
        reading({ time: T0 + b, deviceId: `edge-${b + i}`, metric: `m${i % 2}`, value: b * 10 + i }),
      ),
    );
    for (const rs of batches) {
      expect(await store.write(rs)).toMatchObject({ written: 4, duplicates: 0 });
      // Bounded: at most the limit plus what one write brings (4 devices, 2 metrics), in JS and in DuckDB.
      const { dims, connection } = internals(store);
      expect(dims.size).toBeLessThanOrEqual(3 + 6);
      const rows = await connection.runAndReadAll(
        'SELECT (SELECT count(*) FROM readings_dev) + (SELECT count(*) FROM readings_met)',
      );
      expect(Number(rows.getRows()[0]?.[0])).toBe(dims.size);
    }
    // Concurrent writes mixing old and new tuples, then every batch again.
    const concurrent = await Promise.all(
      [0, 1, 2].map((k) =>
        store.write([reading({ time: T0 + 100 + k, deviceId: `edge-new-${k}` }), reading()]),
      ),
    );
    expect(concurrent.map((r) => r.written)).toEqual([2, 1, 1]);
    for (const rs of batches) expect(await store.write(rs)).toMatchObject({ written: 0, duplicates: 4 });
    const all = batches.flat();
    const ids = [...new Set([...all.map((r) => r.deviceId), 'edge-new-0', 'edge-new-1', 'edge-new-2'])];
    const extra = [0, 1, 2].map((k) => reading({ time: T0 + 100 + k, deviceId: `edge-new-${k}` }));
    expect(await stored(store, ids.sort())).toEqual(expected([...all, ...extra, reading()]));
  });

  it('rejects a bad dimensionLimit', async () => {
    await expect(DuckDbTelemetryStore.open({ path: ':memory:', dimensionLimit: 0 })).rejects.toMatchObject({
      code: 'DUCKDB_CONFIG',
    });
  });

  it('after reopening (a fresh process-level map) stores known and new tuples correctly', async () => {
    const before = [reading(), reading({ deviceId: 'edge-2', metric: 'rpm', value: 5 })];
    await store.write(before);
    await store.close();
    store = await DuckDbTelemetryStore.open({ dataDir: dir, threads: 1 });
    const after = [
      reading({ time: T0 + 1 }),
      reading({ time: T0 + 1, deviceId: 'edge-2', metric: 'rpm', value: 6, unit: 'rpm' }),
      reading({ time: T0 + 1, deviceId: 'edge-3' }),
    ];
    expect(await store.write([...before, ...after])).toMatchObject({ written: 3, duplicates: 2 });
    expect(await stored(store, ['edge-1', 'edge-2', 'edge-3'])).toEqual(expected([...before, ...after]));
  });

  it('starts over after a write fails, wherever it failed', async () => {
    await store.write([reading()]);
    // Lose a dimension table: the next write fails appending to it, after appending the other one.
    await internals(store).connection.run('DROP TABLE readings_met');
    const rs = [reading({ time: T0 + 1, deviceId: 'edge-7', metric: 'new' })];
    await expect(store.write(rs)).rejects.toMatchObject({ code: 'DUCKDB_ERROR', retryable: true });
    expect(await store.write(rs)).toMatchObject({ written: 1, duplicates: 0 });
    expect(await store.write([reading(), ...rs])).toMatchObject({ written: 0, duplicates: 2 });
    expect(await stored(store, ['edge-1', 'edge-7'])).toEqual(expected([reading(), ...rs]));
  });

  it('after a failed write, the tuples it introduced are stored correctly by the next', async () => {
    // A row index beyond INTEGER fails the write after a new device was given its id.
    const bad = [
      reading({ deviceId: 'edge-9', value: 1 }),
      reading({ metric: 'tbl/c', row: 2 ** 31, value: 2 }),
    ];
    await expect(store.write(bad)).rejects.toMatchObject({ code: 'DUCKDB_ERROR', retryable: true });
    const good = [reading({ deviceId: 'edge-9', value: 1 }), reading({ time: T0 + 1, value: 3 })];
    expect(await store.write(good)).toMatchObject({ written: 2, duplicates: 0 });
    expect(await stored(store, ['edge-1', 'edge-9'])).toEqual(expected(good));
  });
});
