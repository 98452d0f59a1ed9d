import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ValidationError } from '../../functions/core/errors.js';
import type { EnrichedReading, ReadingValue } from '../../functions/core/reading.js';
import {
  afterKeySql,
  aggregateBuckets,
  bucketCount,
  bucketStart,
  checkBucketQuery,
  checkRawQuery,
  comparePointKeys,
  decodeCursor,
  decodeValue,
  encodeCursor,
  encodeValue,
  identityString,
  type PointKey,
  pointKeyOf,
  prepareWrite,
  type StoredPoint,
  seriesKey,
} from '../../functions/core/telemetry.js';

const T0 = 1_700_000_000_000;

function reading(over: Partial<EnrichedReading> = {}): EnrichedReading {
  return {
    protocol: 'lwm2m',
    deviceId: 'ep-1',
    metric: '/3303/0/5700',
    type: 'Float',
    value: 1,
    time: T0,
    historical: false,
    transient: false,
    quality: 'GOOD',
    enrichment: { deviceType: 'sensor', applications: [] },
    ...over,
  };
}

const valueArb: fc.Arbitrary<ReadingValue> = fc.letrec<{ v: ReadingValue }>((tie) => ({
  v: fc.oneof(
    { depthSize: 'small' },
    fc.double(),
    fc.bigInt({ min: -(2n ** 70n), max: 2n ** 70n }),
    fc.boolean(),
    fc.string(),
    fc.constant(null),
    fc.uint8Array({ maxLength: 16 }),
    fc.array(tie('v'), { maxLength: 4 }),
  ),
})).v;

describe('value encoding', () => {
  it('round-trips every ReadingValue through its typed slots', () => {
    fc.assert(
      fc.property(valueArb, (value) => {
        const e = encodeValue(value);
        const back = decodeValue(e.kind, { double: e.num, bigint: e.bigint, text: e.text, bool: e.bool });
        expect(back).toEqual(value);
      }),
      { numRuns: 500 },
    );
  });

  it('chooses the slot by value type and gives a numeric view only to numeric-like values', () => {
    expect(encodeValue(2.5)).toEqual({ kind: 'double', double: 2.5, num: 2.5 });
    expect(encodeValue(2n ** 63n - 1n)).toMatchObject({ kind: 'bigint', bigint: 2n ** 63n - 1n });
    expect(encodeValue(2n ** 63n)).toEqual({ kind: 'bigtext', text: '9223372036854775808', num: 2 ** 63 });
    expect(encodeValue(false)).toEqual({ kind: 'bool', bool: false, num: 0 });
    expect(encodeValue(Number.NaN)).toEqual({ kind: 'nonfinite', text: 'NaN' });
    expect(encodeValue('x').num).toBeUndefined();
    expect(encodeValue(new Uint8Array([255]))).toEqual({ kind: 'bytes', text: '/w==' });
    expect(encodeValue([1n, 'a'])).toEqual({ kind: 'json', text: '[{"$big":"1"},"a"]' });
    // -0 inside an array keeps its sign (JSON would print 0); found by the round-trip property.
    const negZero = encodeValue([-0, 0]);
    expect(negZero.text).toBe('[{"$num":"-0"},0]');
    expect(Object.is((decodeValue('json', { text: negZero.text }) as number[])[0], -0)).toBe(true);
  });
});

describe('point identity and cursor', () => {
  it('cursor round-trips a key and rejects forged tokens with a field', () => {
    const k: PointKey = { time: T0, subDevice: 'd/1', metric: 'a"b', row: 3, index: -1 };
    expect(decodeCursor(encodeCursor(k))).toEqual(k);
    for (const bad of [
      '',
      '!!!',
      Buffer.from('[1,2]').toString('base64url'),
      Buffer.from('{}').toString('base64url'),
    ]) {
      expect(() => decodeCursor(bad)).toThrow(ValidationError);
    }
  });

  it('afterKeySql expands to a lexicographic comparison over the five key fields', () => {
    const sql = afterKeySql(
      { time: 5, subDevice: '', metric: 'm', row: -1, index: 2 },
      'asc',
      { time: 't', subDevice: 's', metric: 'm', row: 'r', index: 'i' },
      (v) => (typeof v === 'number' ? String(v) : `'${v}'`),
    );
    expect(sql).toBe(
      "(t > 5 OR (t = 5 AND (s > '' OR (s = '' AND (m > 'm' OR (m = 'm' AND (r > -1 OR (r = -1 AND (i > 2)))))))))",
    );
  });

  it('orders keys by time, subDevice, metric, row, index', () => {
    const k = (time: number, subDevice: string, metric: string, row = -1, index = -1): PointKey => ({
      time,
      subDevice,
      metric,
      row,
      index,
    });
    const keys = [
      k(2, '', 'a'),
      k(1, 'z', 'a'),
      k(1, '', 'b'),
      k(1, '', 'a', 1),
      k(1, '', 'a', 0, 5),
      k(1, '', 'a', 0, 4),
    ];
    const sorted = [...keys].sort(comparePointKeys);
    expect(sorted).toEqual([keys[5], keys[4], keys[3], keys[2], keys[1], keys[0]]);
    expect(seriesKey('dev', '')).toBe(seriesKey('dev'));
    expect(seriesKey('dev', 'x')).not.toBe(seriesKey('dev'));
  });
});

describe('prepareWrite', () => {
  it('skips transients, drops in-call repeats (first wins) and rejects invalid readings with reasons', () => {
    const first = reading({ value: 1 });
    const out = prepareWrite([
      first,
      reading({ value: 2 }),
      reading({ transient: true, time: T0 + 1 }),
      reading({ deviceId: '' }),
      reading({ quality: 'MEH' as never }),
      reading({ row: -2 }),
      reading({ subDevice: 'd', value: 3 }),
    ]);
    expect(out.accepted).toEqual([first, reading({ subDevice: 'd', value: 3 })]);
    expect(out.duplicates).toBe(1);
    expect(out.skipped).toBe(1);
    expect(out.rejected.map((r) => r.reason)).toEqual([
      'deviceId must be a non-empty string',
      'quality must be one of GOOD, BAD, STALE, UNCERTAIN',
      'row must be a non-negative integer',
    ]);
  });
});

describe('prepareWrite identities', () => {
  it('keeps exactly the first reading of each full identity (property: against the identity string)', () => {
    const readingArb = fc.record({
      deviceId: fc.constantFrom('a', 'b', 'a\u0000'),
      metric: fc.constantFrom('m', 'n', 'm\u0000'),
      time: fc.integer({ min: T0, max: T0 + 3 }),
      subDevice: fc.option(fc.constantFrom('', 's', 't'), { nil: undefined, freq: 1 }),
      row: fc.option(fc.integer({ min: 0, max: 1 }), { nil: undefined, freq: 1 }),
      index: fc.option(fc.integer({ min: 0, max: 1 }), { nil: undefined, freq: 1 }),
    });
    fc.assert(
      fc.property(fc.array(readingArb, { maxLength: 60 }), (shapes) => {
        const input = shapes.map((s) => {
          const r = reading({ deviceId: s.deviceId, metric: s.metric, time: s.time });
          if (s.subDevice !== undefined) r.subDevice = s.subDevice;
          if (s.row !== undefined) r.row = s.row;
          if (s.index !== undefined) r.index = s.index;
          return r;
        });
        const seen = new Set<string>();
        const expected = input.filter((r) => {
          const id = identityString(r.deviceId, pointKeyOf(r));
          if (seen.has(id)) return false;
          seen.add(id);
          return true;
        });
        const out = prepareWrite(input);
        expect(out.accepted).toEqual(expected);
        expect(out.accepted.every((r, i) => r === expected[i])).toBe(true);
        expect(out.duplicates).toBe(input.length - expected.length);
      }),
      { numRuns: 500 },
    );
  });
});

describe('query validation and bucket math', () => {
  it('aligns buckets on epoch multiples of the interval', () => {
    expect(bucketStart(T0 + 59_999, 60_000)).toBe(Math.floor((T0 + 59_999) / 60_000) * 60_000);
    expect(bucketStart(120_000, 60_000)).toBe(120_000);
    expect(bucketCount(0, 120_000, 60_000)).toBe(2);
    expect(bucketCount(59_999, 60_001, 60_000)).toBe(2);
    expect(bucketCount(5, 5, 60_000)).toBe(0);
  });

  it('names the offending field', () => {
    const base = { deviceId: 'd', metric: 'm', from: 0, to: 1000, intervalMs: 10, aggs: ['avg' as const] };
    expect(() => checkBucketQuery({ ...base, intervalMs: 0 })).toThrow(
      expect.objectContaining({ field: 'intervalMs' }),
    );
    expect(() => checkBucketQuery({ ...base, metric: '' })).toThrow(
      expect.objectContaining({ field: 'metric' }),
    );
    expect(() => checkBucketQuery({ ...base, aggs: ['median' as never] })).toThrow(
      expect.objectContaining({ field: 'aggs' }),
    );
    expect(() => checkRawQuery({ deviceId: 'd', from: 1.5, to: 2 })).toThrow(
      expect.objectContaining({ field: 'from' }),
    );
    expect(checkRawQuery({ deviceId: 'd', from: 0, to: 2 })).toEqual({ limit: 1000, order: 'asc' });
  });

  it('aggregateBuckets: count counts all points, numeric aggregates use the numeric view', () => {
    const p = (time: number, value: ReadingValue): StoredPoint => ({
      deviceId: 'd',
      metric: 'm',
      time,
      value,
      type: 'x',
      quality: 'GOOD',
      historical: false,
      protocol: 'lwm2m',
      deviceType: 't',
    });
    const buckets = aggregateBuckets(
      [p(15, 4), p(11, true), p(12, 'str'), p(25, Number.NaN), p(31, 7n), p(99, 1)],
      {
        deviceId: 'd',
        metric: 'm',
        from: 10,
        to: 40,
        intervalMs: 10,
        aggs: ['avg', 'min', 'max', 'count', 'sum', 'first', 'last'],
      },
    );
    expect(buckets).toEqual([
      { start: 10, count: 3, avg: 2.5, min: 1, max: 4, sum: 5, first: 1, last: 4 },
      { start: 20, count: 1 },
      { start: 30, count: 1, avg: 7, min: 7, max: 7, sum: 7, first: 7, last: 7 },
    ]);
  });
});
