/**
 * The telemetry store port and the pure helpers both adapters share: point identity (the dedupe key),
 * write preparation (validation, transient skipping, in-batch dedupe), value encoding into typed slots,
 * bucket math, the raw-range cursor, and a reference bucket aggregation.
 *
 * Semantics every adapter implements (ADR 0007):
 * - identity of a point = (deviceId, subDevice or '', metric, time, row or -1, index or -1); the first
 *   write of an identity wins, later writes of the same identity count as `duplicates`;
 * - transient readings (Sparkplug `is_transient`) are not historized: `write` skips and counts them;
 * - historical readings are stored but never answer `latest`;
 * - time ranges are half-open `[from, to)` in epoch milliseconds;
 * - `subDevice` in a query: undefined = any sub-device, '' = node-level readings only;
 * - buckets are aligned on multiples of `intervalMs` since the epoch (Timestream `bin()`), only non-empty
 *   buckets are returned, ascending; `count` counts every point in the bucket, while avg/min/max/sum/
 *   first/last use the numeric view of the value (numbers, bigints as doubles, booleans as 0/1);
 *   strings, bytes, arrays, nulls and non-finite numbers have no numeric view.
 */
import { ValidationError } from './errors.js';
import type { EnrichedReading, Protocol, Quality, ReadingValue } from './reading.js';

export type BucketAgg = 'avg' | 'min' | 'max' | 'count' | 'sum' | 'first' | 'last';

export interface RawQuery {
  deviceId: string;
  metric?: string;
  /** undefined = any sub-device; '' = node-level readings only. */
  subDevice?: string;
  from: number;
  to: number;
  limit?: number;
  nextToken?: string;
  order?: 'asc' | 'desc';
  /** Reads every write acknowledged before it (DynamoDB: ConsistentRead), where the store can. */
  consistent?: boolean;
}

export interface BucketQuery {
  deviceId: string;
  metric: string;
  /** undefined = any sub-device; '' = node-level readings only. */
  subDevice?: string;
  from: number;
  to: number;
  intervalMs: number;
  aggs: BucketAgg[];
}

export interface LatestQuery {
  deviceId: string;
  /** undefined = any sub-device; '' = node-level readings only. */
  subDevice?: string;
  /**
   * Only consider points at or after this time. Timestream scans by time, so its adapter applies a
   * configured look-back when this is absent; DuckDB considers all history.
   */
  since?: number;
}

export interface TelemetryStore {
  /** Idempotent: re-writing the same readings creates no duplicate rows. */
  write(readings: EnrichedReading[]): Promise<WriteResult>;
  queryRaw(q: RawQuery): Promise<{ points: StoredPoint[]; nextToken?: string }>;
  queryBuckets(q: BucketQuery): Promise<Bucket[]>;
  /** Latest non-historical value per (subDevice, metric): all points sharing that latest time. */
  latest(q: LatestQuery): Promise<StoredPoint[]>;
  /** Cheap total for status lines (DuckDB). */
  counts?(): Promise<{ readings: number }>;
  close(): Promise<void>;
}

export interface WriteResult {
  /** Points newly stored (Timestream cannot tell an identical re-write from a new point: see ADR 0007). */
  written: number;
  /** Points whose identity was already stored, or repeated in the same call. */
  duplicates: number;
  rejected: Array<{ reading: EnrichedReading; reason: string; code: string }>;
  /** Transient readings, not historized. */
  skipped?: number;
  /**
   * Points the store accepted but confirms only later, so they are NOT counted in `written`: Timestream
   * magnetic-store writes (older than the memory store's retention) are rejected asynchronously, into a
   * report bucket (ADR 0020). The alarm on AWS/Timestream MagneticStoreRejectedRecordCount covers them.
   */
  pending?: number;
}

export interface StoredPoint {
  deviceId: string;
  subDevice?: string;
  group?: string;
  metric: string;
  name?: string;
  unit?: string;
  time: number;
  value: ReadingValue;
  type: string;
  quality: Quality;
  historical: boolean;
  row?: number;
  index?: number;
  protocol: Protocol;
  deviceType: string;
  site?: string;
}

export interface Bucket {
  /** Bucket start, epoch ms, a multiple of intervalMs. */
  start: number;
  avg?: number;
  min?: number;
  max?: number;
  /** Points in the bucket (all values, numeric or not). */
  count: number;
  sum?: number;
  /** Numeric view of the earliest / latest point in the bucket that has one. */
  first?: number;
  last?: number;
}

// ---------------------------------------------------------------------------------------------------
// Limits and validation

export const DEFAULT_RAW_LIMIT = 1000;
export const MAX_RAW_LIMIT = 10_000;
export const MAX_BUCKETS = 10_000;
const QUALITIES: readonly Quality[] = ['GOOD', 'BAD', 'STALE', 'UNCERTAIN'];

function checkRange(from: number, to: number): void {
  if (!Number.isSafeInteger(from))
    throw new ValidationError('from must be an integer epoch ms', { field: 'from' });
  if (!Number.isSafeInteger(to)) throw new ValidationError('to must be an integer epoch ms', { field: 'to' });
  if (to < from) throw new ValidationError(`to (${to}) must not be before from (${from})`, { field: 'to' });
}

function checkDevice(deviceId: unknown): void {
  if (typeof deviceId !== 'string' || deviceId.length === 0) {
    throw new ValidationError('deviceId must be a non-empty string', { field: 'deviceId' });
  }
}

/** Validates a raw query and returns its effective limit. */
export function checkRawQuery(q: RawQuery): { limit: number; order: 'asc' | 'desc'; after?: PointKey } {
  checkDevice(q.deviceId);
  checkRange(q.from, q.to);
  const limit = q.limit ?? DEFAULT_RAW_LIMIT;
  if (!Number.isSafeInteger(limit) || limit < 1 || limit > MAX_RAW_LIMIT) {
    throw new ValidationError(`limit must be an integer in [1, ${MAX_RAW_LIMIT}]`, { field: 'limit' });
  }
  const order = q.order ?? 'asc';
  if (order !== 'asc' && order !== 'desc') {
    throw new ValidationError('order must be asc or desc', { field: 'order' });
  }
  const after = q.nextToken === undefined ? undefined : decodeCursor(q.nextToken);
  return after === undefined ? { limit, order } : { limit, order, after };
}

export const BUCKET_AGGS: readonly BucketAgg[] = ['avg', 'min', 'max', 'count', 'sum', 'first', 'last'];

export function checkBucketQuery(q: BucketQuery): void {
  checkDevice(q.deviceId);
  if (typeof q.metric !== 'string' || q.metric.length === 0) {
    throw new ValidationError('metric must be a non-empty string', { field: 'metric' });
  }
  checkRange(q.from, q.to);
  if (!Number.isSafeInteger(q.intervalMs) || q.intervalMs < 1) {
    throw new ValidationError('intervalMs must be a positive integer', { field: 'intervalMs' });
  }
  const buckets = bucketCount(q.from, q.to, q.intervalMs);
  if (buckets > MAX_BUCKETS) {
    throw new ValidationError(
      `range/intervalMs gives ${buckets} buckets, more than ${MAX_BUCKETS}; widen intervalMs`,
      { field: 'intervalMs' },
    );
  }
  for (const agg of q.aggs) {
    if (!BUCKET_AGGS.includes(agg)) {
      throw new ValidationError(`unknown aggregation "${String(agg)}"`, { field: 'aggs' });
    }
  }
}

export function checkLatestQuery(q: LatestQuery): void {
  checkDevice(q.deviceId);
  if (q.since !== undefined && !Number.isSafeInteger(q.since)) {
    throw new ValidationError('since must be an integer epoch ms', { field: 'since' });
  }
}

// ---------------------------------------------------------------------------------------------------
// Identity

/** The dedupe identity of a point. Absent subDevice is '', absent row/index are -1. */
export interface PointKey {
  time: number;
  subDevice: string;
  metric: string;
  row: number;
  index: number;
}

export function pointKeyOf(r: {
  time: number;
  subDevice?: string | undefined;
  metric: string;
  row?: number | undefined;
  index?: number | undefined;
}): PointKey {
  return {
    time: r.time,
    subDevice: r.subDevice ?? '',
    metric: r.metric,
    row: r.row ?? -1,
    index: r.index ?? -1,
  };
}

/** One series per (device, sub-device): the Timestream dimension set shared by a device's readings. */
export function seriesKey(deviceId: string, subDevice?: string): string {
  return subDevice === undefined || subDevice === '' ? deviceId : `${deviceId}\u0000${subDevice}`;
}

/** The full identity as one string (for in-memory sets). */
export function identityString(deviceId: string, k: PointKey): string {
  return `${deviceId}\u0000${k.subDevice}\u0000${k.metric}\u0000${k.time}\u0000${k.row}\u0000${k.index}`;
}

/**
 * Total order used by raw queries (ascending): time, subDevice, metric, row, index. Strings compare by
 * UTF-16 code units here; adapters must sort the same way (ASCII names compare identically everywhere).
 */
export function comparePointKeys(a: PointKey, b: PointKey): number {
  if (a.time !== b.time) return a.time < b.time ? -1 : 1;
  if (a.subDevice !== b.subDevice) return a.subDevice < b.subDevice ? -1 : 1;
  if (a.metric !== b.metric) return a.metric < b.metric ? -1 : 1;
  if (a.row !== b.row) return a.row - b.row;
  return a.index - b.index;
}

// ---------------------------------------------------------------------------------------------------
// Cursor (nextToken): the key of the last point returned, opaque to callers.

export function encodeCursor(k: PointKey): string {
  const json = JSON.stringify([k.time, k.subDevice, k.metric, k.row, k.index]);
  return Buffer.from(json, 'utf8').toString('base64url');
}

export function decodeCursor(token: string): PointKey {
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(token, 'base64url').toString('utf8'));
  } catch (cause) {
    throw new ValidationError('nextToken is not a token returned by this store', {
      field: 'nextToken',
      cause,
    });
  }
  if (
    !Array.isArray(parsed) ||
    parsed.length !== 5 ||
    !Number.isSafeInteger(parsed[0]) ||
    typeof parsed[1] !== 'string' ||
    typeof parsed[2] !== 'string' ||
    !Number.isSafeInteger(parsed[3]) ||
    !Number.isSafeInteger(parsed[4])
  ) {
    throw new ValidationError('nextToken is not a token returned by this store', { field: 'nextToken' });
  }
  return {
    time: parsed[0] as number,
    subDevice: parsed[1] as string,
    metric: parsed[2] as string,
    row: parsed[3] as number,
    index: parsed[4] as number,
  };
}

/**
 * SQL predicate "key strictly after `k`" in the given order, expanded into AND/OR so it works on
 * engines without row-value comparison (Timestream). `col` maps key fields to SQL expressions and
 * `lit` renders a literal.
 */
export function afterKeySql(
  k: PointKey,
  order: 'asc' | 'desc',
  col: Record<keyof PointKey, string>,
  lit: (v: string | number) => string,
): string {
  const op = order === 'asc' ? '>' : '<';
  const fields: Array<keyof PointKey> = ['time', 'subDevice', 'metric', 'row', 'index'];
  let sql = `${col.index} ${op} ${lit(k.index)}`;
  for (let i = fields.length - 2; i >= 0; i--) {
    const f = fields[i] as keyof PointKey;
    sql = `${col[f]} ${op} ${lit(k[f])} OR (${col[f]} = ${lit(k[f])} AND (${sql}))`;
  }
  return `(${sql})`;
}

// ---------------------------------------------------------------------------------------------------
// Write preparation

export interface PreparedWrite {
  /** Valid, non-transient readings, first occurrence of each identity, in input order. */
  accepted: EnrichedReading[];
  rejected: WriteResult['rejected'];
  /** Repeats of an identity within this call. */
  duplicates: number;
  skipped: number;
}

function invalidReason(r: EnrichedReading): string | undefined {
  if (r === null || typeof r !== 'object') return 'reading must be an object';
  if (typeof r.deviceId !== 'string' || r.deviceId.length === 0) return 'deviceId must be a non-empty string';
  if (typeof r.metric !== 'string' || r.metric.length === 0) return 'metric must be a non-empty string';
  if (!Number.isSafeInteger(r.time) || r.time < 0)
    return `time must be a non-negative integer epoch ms (got ${r.time})`;
  if (r.subDevice !== undefined && typeof r.subDevice !== 'string') return 'subDevice must be a string';
  if (r.row !== undefined && (!Number.isSafeInteger(r.row) || r.row < 0))
    return 'row must be a non-negative integer';
  if (r.index !== undefined && (!Number.isSafeInteger(r.index) || r.index < 0))
    return 'index must be a non-negative integer';
  if (typeof r.type !== 'string') return 'type must be a string';
  if (!QUALITIES.includes(r.quality)) return `quality must be one of ${QUALITIES.join(', ')}`;
  if (r.protocol !== 'sparkplug' && r.protocol !== 'lwm2m') return 'protocol must be sparkplug or lwm2m';
  if (r.enrichment === undefined || typeof r.enrichment.deviceType !== 'string')
    return 'enrichment.deviceType must be a string';
  return undefined;
}

/**
 * The identities seen in one write. Most readings have no sub-device, row or index, so those are kept
 * as device → metric → time(s) without building an identity string per reading (which cost ~0.5 µs a
 * reading on the ingest path); the other shapes use the full identity string.
 */
class IdentitySet {
  private readonly plain = new Map<string, Map<string, number | Set<number>>>();
  private readonly keyed = new Set<string>();

  /** Adds the reading's identity; false if it was already there. */
  add(r: EnrichedReading): boolean {
    if ((r.subDevice === undefined || r.subDevice === '') && r.row === undefined && r.index === undefined) {
      let metrics = this.plain.get(r.deviceId);
      if (metrics === undefined) {
        metrics = new Map();
        this.plain.set(r.deviceId, metrics);
      }
      const times = metrics.get(r.metric);
      if (times === undefined) {
        metrics.set(r.metric, r.time);
        return true;
      }
      if (typeof times === 'number') {
        if (times === r.time) return false;
        metrics.set(r.metric, new Set([times, r.time]));
        return true;
      }
      if (times.has(r.time)) return false;
      times.add(r.time);
      return true;
    }
    const id = identityString(r.deviceId, pointKeyOf(r));
    if (this.keyed.has(id)) return false;
    this.keyed.add(id);
    return true;
  }
}

/** Validates, skips transient readings and removes in-call repeats (first occurrence wins). */
export function prepareWrite(readings: EnrichedReading[]): PreparedWrite {
  const seen = new IdentitySet();
  const out: PreparedWrite = { accepted: [], rejected: [], duplicates: 0, skipped: 0 };
  for (const r of readings) {
    const reason = invalidReason(r);
    if (reason !== undefined) {
      out.rejected.push({ reading: r, reason, code: 'INVALID_READING' });
      continue;
    }
    if (r.transient) {
      out.skipped++;
      continue;
    }
    if (!seen.add(r)) {
      out.duplicates++;
      continue;
    }
    out.accepted.push(r);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------
// Value encoding into typed slots

/**
 * How a value is stored:
 * - `double`: a finite JS number (every JS number is an IEEE double, so this is lossless);
 * - `bigint`: a bigint within signed 64-bit range (BIGINT);
 * - `bigtext`: a bigint outside signed 64-bit (e.g. UInt64 ≥ 2^63), stored as decimal text;
 * - `nonfinite`: NaN / Infinity / -Infinity, stored as text, no numeric view;
 * - `bool`, `text`; `bytes` (base64 text); `json` (arrays, tagged JSON); `null`.
 */
export type ValueKind =
  | 'double'
  | 'bigint'
  | 'bigtext'
  | 'nonfinite'
  | 'bool'
  | 'text'
  | 'bytes'
  | 'json'
  | 'null';

export interface EncodedValue {
  kind: ValueKind;
  double?: number;
  bigint?: bigint;
  text?: string;
  bool?: boolean;
  /** Numeric view for aggregations, when the value has one. */
  num?: number;
}

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

export function encodeValue(value: ReadingValue): EncodedValue {
  if (value === null || value === undefined) return { kind: 'null' };
  switch (typeof value) {
    case 'number':
      return Number.isFinite(value)
        ? { kind: 'double', double: value, num: value }
        : { kind: 'nonfinite', text: String(value) };
    case 'bigint':
      return value >= INT64_MIN && value <= INT64_MAX
        ? { kind: 'bigint', bigint: value, num: Number(value) }
        : { kind: 'bigtext', text: value.toString(), num: Number(value) };
    case 'boolean':
      return { kind: 'bool', bool: value, num: value ? 1 : 0 };
    case 'string':
      return { kind: 'text', text: value };
    default:
      if (value instanceof Uint8Array) return { kind: 'bytes', text: Buffer.from(value).toString('base64') };
      if (Array.isArray(value)) return { kind: 'json', text: JSON.stringify(value.map(toJsonElement)) };
      throw new ValidationError(`unsupported reading value of type ${typeof value}`, { field: 'value' });
  }
}

function toJsonElement(v: ReadingValue): unknown {
  if (v === null || typeof v === 'string' || typeof v === 'boolean') return v;
  if (typeof v === 'number') {
    // JSON has no -0 (it prints "0"), nor NaN/Infinity: those keep their identity as text.
    if (Object.is(v, -0)) return { $num: '-0' };
    return Number.isFinite(v) ? v : { $num: String(v) };
  }
  if (typeof v === 'bigint') return { $big: v.toString() };
  if (v instanceof Uint8Array) return { $b64: Buffer.from(v).toString('base64') };
  return v.map(toJsonElement);
}

function fromJsonElement(v: unknown): ReadingValue {
  if (v === null || typeof v === 'string' || typeof v === 'boolean' || typeof v === 'number') return v;
  if (Array.isArray(v)) return v.map(fromJsonElement);
  const o = v as { $num?: string; $big?: string; $b64?: string };
  if (o.$num !== undefined) return Number(o.$num);
  if (o.$big !== undefined) return BigInt(o.$big);
  if (o.$b64 !== undefined) return new Uint8Array(Buffer.from(o.$b64, 'base64'));
  return null;
}

/** Rebuilds a value from its stored slots (the inverse of encodeValue). */
export function decodeValue(
  kind: string,
  slots: { double?: number | null; bigint?: bigint | null; text?: string | null; bool?: boolean | null },
): ReadingValue {
  switch (kind) {
    case 'double':
      return slots.double ?? null;
    case 'bigint': {
      const b = slots.bigint;
      if (b === undefined || b === null) return null;
      return b;
    }
    case 'bigtext':
      return slots.text === undefined || slots.text === null ? null : BigInt(slots.text);
    case 'nonfinite':
      return Number(slots.text);
    case 'bool':
      return slots.bool ?? null;
    case 'text':
      return slots.text ?? null;
    case 'bytes':
      return slots.text === undefined || slots.text === null
        ? null
        : new Uint8Array(Buffer.from(slots.text, 'base64'));
    case 'json':
      return slots.text === undefined || slots.text === null ? null : fromJsonElement(JSON.parse(slots.text));
    default:
      return null;
  }
}

// ---------------------------------------------------------------------------------------------------
// Buckets

/** Start of the bucket holding `time`: floor to a multiple of intervalMs since the epoch (bin()). */
export function bucketStart(time: number, intervalMs: number): number {
  return Math.floor(time / intervalMs) * intervalMs;
}

/** Number of buckets intersecting [from, to). */
export function bucketCount(from: number, to: number, intervalMs: number): number {
  if (to <= from) return 0;
  return (bucketStart(to - 1, intervalMs) - bucketStart(from, intervalMs)) / intervalMs + 1;
}

/** Keeps only the requested aggregations (count is always present). */
export function pickAggs(b: Bucket, aggs: readonly BucketAgg[]): Bucket {
  const out: Bucket = { start: b.start, count: b.count };
  for (const a of aggs) {
    if (a === 'count') continue;
    const v = b[a];
    if (v !== undefined) out[a] = v;
  }
  return out;
}

/**
 * Reference aggregation over points in memory (the semantics both adapters must match). Points are
 * assumed already filtered to the query's device, metric and sub-device.
 */
export function aggregateBuckets(points: StoredPoint[], q: BucketQuery): Bucket[] {
  const sorted = points
    .filter((p) => p.time >= q.from && p.time < q.to)
    .sort((a, b) => comparePointKeys(pointKeyOf(a), pointKeyOf(b)));
  const byStart = new Map<number, Bucket & { n: number }>();
  for (const p of sorted) {
    const start = bucketStart(p.time, q.intervalMs);
    let b = byStart.get(start);
    if (b === undefined) {
      b = { start, count: 0, n: 0 };
      byStart.set(start, b);
    }
    b.count++;
    const num = encodeValue(p.value).num;
    if (num === undefined) continue;
    b.n++;
    b.sum = (b.sum ?? 0) + num;
    b.min = b.min === undefined ? num : Math.min(b.min, num);
    b.max = b.max === undefined ? num : Math.max(b.max, num);
    if (b.first === undefined) b.first = num;
    b.last = num;
  }
  return [...byStart.values()]
    .sort((a, b) => a.start - b.start)
    .map(({ n, ...b }) => pickAggs(n > 0 && b.sum !== undefined ? { ...b, avg: b.sum / n } : b, q.aggs));
}
