/**
 * The TelemetryStore contract (ADR 0007): one suite every adapter runs (DuckDB, Timestream against a
 * mocked service, DynamoDB against dynalite). Each adapter's *.contract.test.ts calls
 * `telemetryStoreContract` with a factory giving a fresh, empty store per test; adapter-specific
 * behaviour (error mapping, retries, item size limits, TTL) stays in the adapters' own test files.
 *
 * Times are recent relative to the store clock (`NOW`) so retention and look-back windows keep them.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ValidationError } from '../../functions/core/errors.js';
import type { EnrichedReading, ReadingValue } from '../../functions/core/reading.js';
import {
  aggregateBuckets,
  type Bucket,
  type BucketAgg,
  type StoredPoint,
  type TelemetryStore,
} from '../../functions/core/telemetry.js';

export const T0 = 1_700_000_000_000;
/** The clock adapters with one should be given. */
export const NOW = T0 + 3_600_000;

export interface ContractCapabilities {
  /**
   * `written` of an identical re-write is 0 and it counts as a duplicate. Timestream accepts an identical
   * re-write silently and cannot tell it apart (ADR 0007), so it counts it as written.
   */
  exactRewriteCounts: boolean;
  /** -0 reads back as -0 (Timestream keeps doubles in a DOUBLE measure written as text: "0"). */
  negativeZero: boolean;
  /**
   * first/last break ties at the same millisecond by (subDevice, row, index) like the reference.
   * Timestream's min_by/max_by pick one of the tied points.
   */
  firstLastTies: boolean;
  /** avg/sum equal the reference bit for bit (else compared to 12 significant digits). */
  exactSums: boolean;
}

export interface ContractHarness {
  store: TelemetryStore;
  /** Another store instance on the same data (a second writer), when the adapter has one. */
  another?: () => Promise<TelemetryStore>;
  teardown(): Promise<void>;
}

export function reading(over: Partial<EnrichedReading> = {}): EnrichedReading {
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

const ALL_AGGS: BucketAgg[] = ['avg', 'min', 'max', 'count', 'sum', 'first', 'last'];

export function telemetryStoreContract(
  name: string,
  setup: () => Promise<ContractHarness>,
  caps: ContractCapabilities,
): void {
  describe(`${name}: TelemetryStore contract`, () => {
    let h: ContractHarness;
    let store: TelemetryStore;

    beforeEach(async () => {
      h = await setup();
      store = h.store;
    });
    afterEach(async () => {
      await h.teardown();
    });

    async function all(deviceId = 'edge-1'): Promise<StoredPoint[]> {
      const { points } = await store.queryRaw({ deviceId, from: 0, to: NOW, limit: 10_000 });
      return points;
    }

    function expectBuckets(actual: Bucket[], expected: Bucket[]): void {
      expect(actual.map((b) => [b.start, b.count])).toEqual(expected.map((b) => [b.start, b.count]));
      for (const [i, e] of expected.entries()) {
        const a = actual[i] as Bucket;
        expect(a.min).toEqual(e.min);
        expect(a.max).toEqual(e.max);
        if (caps.firstLastTies) {
          expect(a.first).toEqual(e.first);
          expect(a.last).toEqual(e.last);
        }
        for (const k of ['avg', 'sum'] as const) {
          if (caps.exactSums || e[k] === undefined) expect(a[k]).toEqual(e[k]);
          else expect(a[k]).toBeCloseTo(e[k] as number, 9);
        }
      }
    }

    describe('write', () => {
      it('stores readings and reports written counts', async () => {
        const res = await store.write([0, 1, 2].map((i) => reading({ time: T0 + i * 1000, value: i })));
        expect(res).toEqual({ written: 3, duplicates: 0, rejected: [], skipped: 0 });
        expect((await all()).map((p) => p.value)).toEqual([0, 1, 2]);
      });

      it('is idempotent: re-writing the same readings adds no points', async () => {
        const rs = [0, 1, 2].map((i) => reading({ time: T0 + i, value: i }));
        await store.write(rs);
        const again = await store.write([...rs, reading({ time: T0 + 3, value: 3 })]);
        if (caps.exactRewriteCounts) expect(again).toMatchObject({ written: 1, duplicates: 3 });
        expect((await all()).map((p) => p.value)).toEqual([0, 1, 2, 3]);
      });

      it('keeps the first value when an identity is re-written with another value, and counts it', async () => {
        await store.write([reading({ value: 1 })]);
        const res = await store.write([reading({ value: 2 })]);
        expect(res).toMatchObject({ written: 0, duplicates: 1 });
        expect((await all()).map((p) => p.value)).toEqual([1]);
        expect((await store.latest({ deviceId: 'edge-1' })).map((p) => p.value)).toEqual([1]);
      });

      it('counts repeats within one call as duplicates (first occurrence wins)', async () => {
        const res = await store.write([reading({ value: 1 }), reading({ value: 2 }), reading({ value: 3 })]);
        expect(res).toMatchObject({ written: 1, duplicates: 2 });
        expect((await all()).map((p) => p.value)).toEqual([1]);
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
        expect(await all()).toHaveLength(6);
      });

      it('skips transient readings and rejects invalid ones with a reason naming the field', async () => {
        const bad = reading({ time: Number.NaN });
        const res = await store.write([
          reading({ transient: true }),
          bad,
          reading({ metric: '' }),
          reading({ quality: 'MEH' as never }),
          reading(),
        ]);
        expect(res.written).toBe(1);
        expect(res.skipped).toBe(1);
        expect(res.rejected.map((r) => r.code)).toEqual([
          'INVALID_READING',
          'INVALID_READING',
          'INVALID_READING',
        ]);
        expect(res.rejected[0]?.reading).toBe(bad);
        expect(res.rejected[0]?.reason).toMatch(/time/);
        expect(res.rejected[1]?.reason).toMatch(/metric/);
        expect(res.rejected[2]?.reason).toMatch(/quality/);
      });

      it('writes a large call (many devices × metrics sharing timestamps) completely', async () => {
        const rs: EnrichedReading[] = [];
        for (let d = 0; d < 12; d++)
          for (let t = 0; t < 5; t++)
            for (let m = 0; m < 50; m++)
              rs.push(
                reading({ deviceId: `dev-${d}`, metric: `m/${m}`, time: T0 + t * 10_000, value: d * m + t }),
              );
        const res = await store.write(rs);
        expect(res).toMatchObject({ written: 3000, duplicates: 0 });
        const [b] = await store.queryBuckets({
          deviceId: 'dev-7',
          metric: 'm/3',
          from: T0,
          to: T0 + 50_000,
          intervalMs: 3_600_000,
          aggs: ['sum', 'count', 'min', 'max'],
        });
        expect(b).toMatchObject({ count: 5, sum: 21 * 5 + 10, min: 21, max: 25 });
        expect((await store.latest({ deviceId: 'dev-11' })).length).toBe(50);
        const again = await store.write(rs);
        if (caps.exactRewriteCounts) expect(again).toMatchObject({ written: 0, duplicates: 3000 });
      });
    });

    describe('values', () => {
      const values: Array<[string, ReadingValue]> = [
        ['double', 3.25],
        ['integer number', 42],
        ['negative integer', -5],
        ...(caps.negativeZero ? ([['negative zero', -0]] as Array<[string, ReadingValue]>) : []),
        ['double beyond DynamoDB number range', 1e300],
        ['smallest subnormal', 5e-324],
        ['integral double beyond 2^53', 2 ** 60],
        ['float32 widened to a double (Sparkplug Float)', Math.fround(23.4)],
        ['float32 subnormal', Math.fround(1e-40)],
        ['float32 maximum', 3.4028234663852886e38],
        ['double with 17 significant digits', 0.1 + 0.2],
        ['int64 just beyond 2^53', 2n ** 53n + 1n],
        ['int64 minimum', -(2n ** 63n)],
        ['int64 maximum', 2n ** 63n - 1n],
        ['uint64 beyond int64', 2n ** 64n - 1n],
        ['NaN', Number.NaN],
        ['Infinity', Number.POSITIVE_INFINITY],
        ['-Infinity', Number.NEGATIVE_INFINITY],
        ['boolean true', true],
        ['boolean false', false],
        ['string', 'héllo \u{1F600} "quoted", [bracketed]'],
        ['empty string', ''],
        ['bytes', new Uint8Array([0, 255, 1, 2])],
        ['null', null],
        ['array', [1, 2.5, -3]],
        [
          'nested array with bigint, bytes, NaN',
          [1n << 70n, new Uint8Array([9]), Number.NaN, null, 'x', [true]],
        ],
      ];

      it.each(values)('round-trips %s exactly (raw and latest)', async (_label, value) => {
        await store.write([reading({ value })]);
        const { points } = await store.queryRaw({ deviceId: 'edge-1', from: T0, to: T0 + 1 });
        expect(points).toHaveLength(1);
        if (typeof value === 'number') expect(Object.is(points[0]?.value, value)).toBe(true);
        expect(points[0]?.value).toEqual(value);
        const [latest] = await store.latest({ deviceId: 'edge-1' });
        expect(latest?.value).toEqual(value);
      });

      it('keeps values of every kind apart when they share one message', async () => {
        const rs = values.map(([, value], i) =>
          reading({ metric: `k/${String(i).padStart(2, '0')}`, value }),
        );
        expect((await store.write(rs)).written).toBe(values.length);
        const { points } = await store.queryRaw({ deviceId: 'edge-1', from: T0, to: T0 + 1 });
        expect(points.map((p) => p.value)).toEqual(values.map(([, v]) => v));
      });

      it('returns every stored attribute of a point', async () => {
        await store.write([
          reading({
            subDevice: 'd1',
            row: 2,
            index: 3,
            name: 'Temperature',
            historical: true,
            quality: 'STALE',
          }),
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

      it('keeps per-reading attributes that differ within one message', async () => {
        await store.write([
          reading({ metric: 'a', unit: 'V', name: 'Volts', type: 'Float' }),
          reading({
            metric: 'b',
            unit: undefined,
            name: undefined,
            type: 'Int64',
            value: 7n,
            protocol: 'lwm2m',
          }),
          reading({
            metric: 'c',
            quality: 'BAD',
            group: undefined,
            enrichment: { deviceType: 'x', applications: [] },
          }),
        ]);
        const { points } = await store.queryRaw({ deviceId: 'edge-1', from: T0, to: T0 + 1 });
        expect(
          points.map((p) => [
            p.metric,
            p.unit,
            p.name,
            p.type,
            p.protocol,
            p.quality,
            p.group,
            p.deviceType,
            p.site,
          ]),
        ).toEqual([
          ['a', 'V', 'Volts', 'Float', 'sparkplug', 'GOOD', 'plant', 'pump', 'site-a'],
          ['b', undefined, undefined, 'Int64', 'lwm2m', 'GOOD', 'plant', 'pump', 'site-a'],
          ['c', 'Cel', undefined, 'Double', 'sparkplug', 'BAD', undefined, 'x', undefined],
        ]);
      });
    });

    describe('queryRaw', () => {
      beforeEach(async () => {
        const rs: EnrichedReading[] = [];
        for (let i = 0; i < 10; i++) {
          rs.push(reading({ time: T0 + i * 100, value: i }));
          rs.push(reading({ time: T0 + i * 100, metric: 'rpm', value: i * 10 }));
          rs.push(reading({ time: T0 + i * 100, subDevice: 'd1', value: -i - 1 }));
        }
        rs.push(reading({ deviceId: 'edge-2', value: 99 }));
        await store.write(rs);
      });

      it('filters by device, metric, sub-device and the half-open range', async () => {
        const every = await store.queryRaw({ deviceId: 'edge-1', from: T0, to: T0 + 1000 });
        expect(every.points).toHaveLength(30);
        const temps = await store.queryRaw({
          deviceId: 'edge-1',
          metric: 'temp',
          from: T0 + 100,
          to: T0 + 300,
        });
        expect(temps.points.map((p) => [p.time - T0, p.subDevice ?? '', p.value])).toEqual([
          [100, '', 1],
          [100, 'd1', -2],
          [200, '', 2],
          [200, 'd1', -3],
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
        expect(d1.points.map((p) => p.value)).toEqual([-1, -2, -3, -4, -5, -6, -7, -8, -9, -10]);
        expect((await store.queryRaw({ deviceId: 'edge-1', from: T0 + 5, to: T0 + 5 })).points).toEqual([]);
        expect((await store.queryRaw({ deviceId: 'edge-1', from: T0 + 901, to: T0 + 1000 })).points).toEqual(
          [],
        );
        expect((await store.queryRaw({ deviceId: 'nobody', from: T0, to: T0 + 1000 })).points).toEqual([]);
      });

      it('orders points by (time, subDevice, metric) and pages with nextToken without gaps or repeats', async () => {
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
            [0, 1, 2].flatMap((row) => [
              reading({ time: T0 + t, metric: 'ds/c', row, value: row }),
              reading({ time: T0 + t, metric: 'ds/c', subDevice: 'd1', row, value: row }),
            ]),
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
            keys.push(...page.points.map((p) => `${p.time - T0}:${p.subDevice ?? ''}:${p.row}`));
            token = page.nextToken;
          } while (token !== undefined);
          const asc = [0, 1, 2].flatMap((t) =>
            ['', 'd1'].flatMap((s) => [0, 1, 2].map((r) => `${t}:${s}:${r}`)),
          );
          expect(keys).toEqual(order === 'asc' ? asc : [...asc].reverse());
        }
      });

      it('finds series that only have historical points', async () => {
        await store.write([reading({ metric: 'backlog', time: T0 + 50, value: 7, historical: true })]);
        const { points } = await store.queryRaw({ deviceId: 'edge-1', from: T0 + 50, to: T0 + 51 });
        expect(points.map((p) => [p.metric, p.subDevice ?? '', p.value])).toEqual([['backlog', '', 7]]);
        const backlog = await store.queryRaw({
          deviceId: 'edge-1',
          metric: 'backlog',
          from: T0,
          to: T0 + 1000,
        });
        expect(backlog.points.map((p) => p.historical)).toEqual([true]);
        expect((await store.latest({ deviceId: 'edge-1' })).map((p) => p.metric)).not.toContain('backlog');
      });

      it('rejects a forged nextToken and bad ranges with a ValidationError naming the field', async () => {
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
        await expect(store.queryRaw({ deviceId: '', from: T0, to: T0 + 1 })).rejects.toMatchObject({
          field: 'deviceId',
        });
      });
    });

    describe('queryBuckets', () => {
      it('aggregates numeric values per epoch-aligned bucket, counting non-numeric points', async () => {
        const m0 = Math.floor(T0 / 600_000) * 600_000;
        await store.write([
          reading({ time: m0 + 5, value: 1 }),
          reading({ time: m0 + 6, value: 3 }),
          reading({ time: m0 + 7, value: 'n/a' }),
          reading({ time: m0 + 60_000 + 1, value: true }),
          reading({ time: m0 + 60_000 + 2, value: 5n }),
          reading({ time: m0 + 180_000, value: null }),
        ]);
        const buckets = await store.queryBuckets({
          deviceId: 'edge-1',
          metric: 'temp',
          from: m0 - 600_000,
          to: m0 + 600_000,
          intervalMs: 60_000,
          aggs: ALL_AGGS,
        });
        expect(buckets).toEqual([
          { start: m0, count: 3, avg: 2, min: 1, max: 3, sum: 4, first: 1, last: 3 },
          { start: m0 + 60_000, count: 2, avg: 3, min: 1, max: 5, sum: 6, first: 1, last: 5 },
          { start: m0 + 180_000, count: 1 },
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
        const points = (
          await store.queryRaw({ deviceId: 'edge-1', from: T0, to: T0 + 60_000, limit: 10_000 })
        ).points;
        expect(points.length).toBeGreaterThan(300);
        for (const subDevice of [undefined, '', 'd1', 'd2']) {
          for (const intervalMs of [7000, 60_000]) {
            const q = {
              deviceId: 'edge-1',
              metric: 'temp',
              subDevice,
              from: T0 + 1000,
              to: T0 + 45_000,
              intervalMs,
              aggs: ALL_AGGS,
            };
            const mine = points.filter((p) => subDevice === undefined || (p.subDevice ?? '') === subDevice);
            const actual = await store.queryBuckets(q);
            expect(actual.length).toBeGreaterThan(0);
            expectBuckets(actual, aggregateBuckets(mine, q));
          }
        }
      });

      it('answers the API query (24 h at 1-minute buckets) equal to the reference', async () => {
        const end = Math.floor(NOW / 60_000) * 60_000;
        const from = end - 86_400_000;
        const rs: EnrichedReading[] = [];
        for (let t = from + 7_000; t < end; t += 170_000) {
          rs.push(reading({ time: t, value: Math.sin(t / 1e6) * 100 }));
          rs.push(reading({ time: t, metric: 'other', value: 1 }));
        }
        await store.write(rs);
        const q = {
          deviceId: 'edge-1',
          metric: 'temp',
          subDevice: '',
          from,
          to: end,
          intervalMs: 60_000,
          aggs: ALL_AGGS,
        };
        const points = (
          await store.queryRaw({ deviceId: 'edge-1', metric: 'temp', from, to: end, limit: 10_000 })
        ).points;
        expect(points).toHaveLength(rs.length / 2);
        const actual = await store.queryBuckets(q);
        expect(actual).toHaveLength(points.length);
        expectBuckets(actual, aggregateBuckets(points, q));
        // A second query (stores with caches answer it from them) gives the same buckets.
        expect(await store.queryBuckets(q)).toEqual(actual);
      });

      it('refuses more than 10,000 buckets with a ValidationError naming intervalMs', async () => {
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
        await expect(
          store.queryBuckets({
            deviceId: 'edge-1',
            metric: 'temp',
            from: 0,
            to: 1,
            intervalMs: 1,
            aggs: ['median' as never],
          }),
        ).rejects.toMatchObject({ field: 'aggs' });
      });
    });

    describe('latest', () => {
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
        expect((await store.latest({ deviceId: 'edge-1', subDevice: 'd1' })).map((p) => p.value)).toEqual([
          50,
        ]);
        const node = await store.latest({ deviceId: 'edge-1', subDevice: '' });
        expect(node.map((p) => p.metric)).toEqual(['rpm', 'table/col', 'table/col', 'temp']);
        const recent = await store.latest({ deviceId: 'edge-1', since: T0 + 6 });
        expect(recent.map((p) => p.metric)).toEqual(['table/col', 'table/col', 'temp']);
        expect(await store.latest({ deviceId: 'nobody' })).toEqual([]);
      });

      it('never lets a historical or older point (a later call, a late delivery) replace a newer one', async () => {
        await store.write([reading({ time: T0 + 10, value: 'new' })]);
        await store.write([reading({ time: T0 + 5, value: 'late' })]);
        await store.write([reading({ time: T0 + 50, value: 'backfill', historical: true })]);
        expect(await store.latest({ deviceId: 'edge-1' })).toEqual([
          expect.objectContaining({ time: T0 + 10, value: 'new' }),
        ]);
        await store.write([reading({ time: T0 + 11, value: 'newer' })]);
        expect((await store.latest({ deviceId: 'edge-1' }))[0]).toMatchObject({
          time: T0 + 11,
          value: 'newer',
        });
      });

      it('answers concurrent writers with the newest point', async () => {
        const writers = await Promise.all(
          Array.from(
            { length: 8 },
            async (_, w) => (w > 0 && h.another ? await h.another() : store) as TelemetryStore,
          ),
        );
        const results = await Promise.all(
          writers.map((s, w) =>
            s.write(
              Array.from({ length: 20 }, (_, i) => reading({ time: T0 + i * 8 + w, value: i * 8 + w })),
            ),
          ),
        );
        expect(results.reduce((n, r) => n + r.written, 0)).toBe(160);
        expect((await store.latest({ deviceId: 'edge-1' })).map((p) => p.value)).toEqual([159]);
        expect(await all()).toHaveLength(160);
      });
    });
  });
}
