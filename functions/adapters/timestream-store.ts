/**
 * TelemetryStore on Timestream for LiveAnalytics (existing-customer accounts only: the service is closed
 * to new accounts since 2025-06-20, see ADR 0007).
 *
 * Record model: one multi-measure record (measure_name `reading`) per point.
 * - Dimensions (the identity, always present so the columns always exist): deviceId, subDevice ('/'
 *   for node level: '/' can never be a Sparkplug id), metric, ds_row and arr_index ('-1' when absent),
 *   plus deviceType and protocol, and site / sp_group when known.
 * - Measures (typed slots, fixed set, so the table never grows past 10 measure columns whatever the
 *   fleet's metric vocabulary): v_kind, v_num (DOUBLE numeric view), v_bigint, v_bool, v_text, r_type,
 *   r_quality, r_historical, r_unit, r_name.
 * - Requests: up to 100 records, sorted by series so CommonAttributes carry the dimensions every
 *   record in the request shares, with MeasureName, MULTI, TimeUnit MILLISECONDS and Version 1.
 * A constant Version makes a re-write identical, which Timestream accepts silently; a re-write of an
 * identity with a different value comes back as a rejection with ExistingVersion: the first write
 * wins and it counts as a duplicate (the same semantics as the DuckDB store).
 */
import {
  QueryCommand,
  type QueryCommandOutput,
  type TimestreamQueryClient,
} from '@aws-sdk/client-timestream-query';
import {
  type _Record,
  type Dimension,
  type MeasureValue,
  type RejectedRecord,
  type TimestreamWriteClient,
  WriteRecordsCommand,
} from '@aws-sdk/client-timestream-write';
import { TransientError } from '../core/errors.js';
import type { EnrichedReading, Protocol, Quality } from '../core/reading.js';
import {
  afterKeySql,
  type Bucket,
  type BucketQuery,
  checkBucketQuery,
  checkLatestQuery,
  checkRawQuery,
  decodeValue,
  encodeCursor,
  encodeValue,
  type LatestQuery,
  pickAggs,
  prepareWrite,
  type RawQuery,
  type StoredPoint,
  seriesKey,
  type TelemetryStore,
  type WriteResult,
} from '../core/telemetry.js';

export const MEASURE_NAME = 'reading';
export const RECORD_VERSION = 1;
export const MAX_RECORDS_PER_WRITE = 100;
export const MAX_RECORD_BYTES = 2048;
/** subDevice dimension value of node-level readings ('/' is illegal in Sparkplug ids). */
export const NODE_LEVEL = '/';

export interface TimestreamStoreOptions {
  writeClient: TimestreamWriteClient;
  queryClient: TimestreamQueryClient;
  database: string;
  table: string;
  /** WriteRecords calls in flight at once (default 8). */
  concurrency?: number;
  /** Attempts per call on throttling / 5xx before TransientError (default 5). */
  maxAttempts?: number;
  /** Backoff: full jitter over min(maxDelayMs, baseDelayMs · 2^attempt) (defaults 50 / 2000). */
  baseDelayMs?: number;
  maxDelayMs?: number;
  sleep?: (ms: number) => Promise<void>;
  random?: () => number;
  clock?: () => number;
  /** `latest` scans this far back when the query gives no `since` (default 7 days). */
  latestLookbackMs?: number;
  /**
   * The table's memory-store retention (hours). Readings older than it go to the magnetic store, which
   * Timestream accepts at once and may reject hours later into the rejects bucket: they are reported as
   * `pending`, never as written (ADR 0020). Undefined: every accepted reading counts as written.
   */
  memoryStoreRetentionHours?: number;
}

/** Readings this close to the memory-store boundary count as magnetic (clock skew, time in flight). */
export const MAGNETIC_MARGIN_MS = 5 * 60_000;

export interface Prepared {
  reading: EnrichedReading;
  dims: Dimension[];
  measures: MeasureValue[];
  time: string;
}

const TRANSIENT = new Set([
  'ThrottlingException',
  'InternalServerException',
  'ServiceUnavailableException',
  'RequestTimeout',
  'RequestTimeoutException',
  'TimeoutError',
  'ECONNRESET',
  'ECONNREFUSED',
  'EPIPE',
  'ETIMEDOUT',
]);

export class TimestreamTelemetryStore implements TelemetryStore {
  private readonly concurrency: number;
  private readonly maxAttempts: number;
  private readonly baseDelayMs: number;
  private readonly maxDelayMs: number;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly random: () => number;
  private readonly clock: () => number;
  private readonly lookback: number;
  private readonly from: string;

  constructor(private readonly o: TimestreamStoreOptions) {
    this.concurrency = o.concurrency ?? 8;
    this.maxAttempts = o.maxAttempts ?? 5;
    this.baseDelayMs = o.baseDelayMs ?? 50;
    this.maxDelayMs = o.maxDelayMs ?? 2000;
    this.sleep = o.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms)));
    this.random = o.random ?? Math.random;
    this.clock = o.clock ?? Date.now;
    this.lookback = o.latestLookbackMs ?? 7 * 86_400_000;
    this.from = `${ident(o.database)}.${ident(o.table)}`;
  }

  // -------------------------------------------------------------------------------------------------
  // Writes

  async write(readings: EnrichedReading[]): Promise<WriteResult> {
    const prep = prepareWrite(readings);
    const result: WriteResult = {
      written: 0,
      duplicates: prep.duplicates,
      rejected: prep.rejected,
      skipped: prep.skipped,
    };
    const retention = this.o.memoryStoreRetentionHours;
    const magneticBefore =
      retention === undefined
        ? Number.NEGATIVE_INFINITY
        : this.clock() - retention * 3_600_000 + MAGNETIC_MARGIN_MS;
    const records: Prepared[] = [];
    for (const r of prep.accepted) {
      const rec = toRecord(r);
      const size = recordBytes(rec);
      if (size > MAX_RECORD_BYTES) {
        result.rejected.push({
          reading: r,
          code: 'RECORD_TOO_LARGE',
          reason: `record is ${size} bytes, over Timestream's ${MAX_RECORD_BYTES}-byte limit (value too large)`,
        });
        continue;
      }
      records.push(rec);
    }
    const chunks = planChunks(records);
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < chunks.length) {
        const chunk = chunks[next++] as Prepared[];
        const rejected = await this.writeChunk(chunk);
        let dup = 0;
        for (const rr of rejected) {
          const rec = chunk[rr.RecordIndex ?? -1];
          if (rec === undefined) continue;
          if (isDuplicate(rr)) {
            dup++;
          } else {
            result.rejected.push({
              reading: rec.reading,
              code: 'TIMESTREAM_REJECTED',
              reason: rr.Reason ?? 'rejected by Timestream',
            });
          }
        }
        result.duplicates += dup;
        const refused = new Set(rejected.map((rr) => rr.RecordIndex ?? -1));
        chunk.forEach((rec, i) => {
          if (refused.has(i)) return;
          // Accepted now, but a magnetic-store write is only confirmed when no rejection report comes.
          if (rec.reading.time < magneticBefore) result.pending = (result.pending ?? 0) + 1;
          else result.written++;
        });
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.concurrency, chunks.length) }, worker));
    return result;
  }

  /** One WriteRecords call with retries; returns the rejected records (empty when all were written). */
  private async writeChunk(chunk: Prepared[]): Promise<RejectedRecord[]> {
    const { common, records } = withCommonAttributes(chunk);
    const command = new WriteRecordsCommand({
      DatabaseName: this.o.database,
      TableName: this.o.table,
      CommonAttributes: common,
      Records: records,
    });
    try {
      await this.withRetry('WriteRecords', () => this.o.writeClient.send(command));
      return [];
    } catch (error) {
      if (error instanceof Error && error.name === 'RejectedRecordsException') {
        return (error as { RejectedRecords?: RejectedRecord[] }).RejectedRecords ?? [];
      }
      if (error instanceof Error && error.name === 'ValidationException') {
        // The request as a whole was refused: report every record with the service's reason.
        return chunk.map((_, i) => ({ RecordIndex: i, Reason: `ValidationException: ${error.message}` }));
      }
      throw error;
    }
  }

  private async withRetry<T>(what: string, fn: () => Promise<T>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await fn();
      } catch (error) {
        if (!isTransient(error)) {
          if (error instanceof Error && error.name === 'AccessDeniedException') {
            throw new TransientError(
              'TIMESTREAM_ACCESS_DENIED',
              `${what}: ${error.message} (Timestream for LiveAnalytics is closed to new accounts since 2025-06-20)`,
              { cause: error },
            );
          }
          if (error instanceof Error && error.name === 'ResourceNotFoundException') {
            throw new TransientError('TIMESTREAM_NOT_FOUND', `${what}: ${error.message} (${this.from})`, {
              cause: error,
            });
          }
          throw error;
        }
        if (attempt + 1 >= this.maxAttempts) {
          const name = error instanceof Error ? error.name : 'Error';
          throw new TransientError(
            'TIMESTREAM_THROTTLED',
            `${what}: ${name} after ${this.maxAttempts} attempts: ${error instanceof Error ? error.message : String(error)}`,
            { cause: error },
          );
        }
        const cap = Math.min(this.maxDelayMs, this.baseDelayMs * 2 ** attempt);
        await this.sleep(Math.floor(this.random() * cap));
      }
    }
  }

  // -------------------------------------------------------------------------------------------------
  // Queries

  /** Runs one query to completion (all pages), returning rows keyed by column name. */
  private async query(sql: string): Promise<Array<Record<string, string | null>>> {
    const out: Array<Record<string, string | null>> = [];
    let token: string | undefined;
    for (let page = 0; page < 1000; page++) {
      const res: QueryCommandOutput = await this.withRetry('Query', () =>
        this.o.queryClient.send(new QueryCommand({ QueryString: sql, NextToken: token })),
      );
      const names = (res.ColumnInfo ?? []).map((c) => c.Name ?? '');
      for (const row of res.Rows ?? []) {
        const rec: Record<string, string | null> = {};
        (row.Data ?? []).forEach((d, i) => {
          rec[names[i] ?? `_${i}`] =
            d.NullValue === true || d.ScalarValue === undefined ? null : d.ScalarValue;
        });
        out.push(rec);
      }
      token = res.NextToken;
      if (token === undefined) return out;
    }
    throw new TransientError('TIMESTREAM_QUERY_PAGES', 'query returned more than 1000 pages');
  }

  async queryRaw(q: RawQuery): Promise<{ points: StoredPoint[]; nextToken?: string }> {
    const { limit, order, after } = checkRawQuery(q);
    const where = [
      `measure_name = ${lit(MEASURE_NAME)}`,
      `deviceId = ${lit(q.deviceId)}`,
      `time >= from_milliseconds(${q.from})`,
      `time < from_milliseconds(${q.to})`,
    ];
    if (q.metric !== undefined) where.push(`metric = ${lit(q.metric)}`);
    if (q.subDevice !== undefined)
      where.push(`subDevice = ${lit(q.subDevice === '' ? NODE_LEVEL : q.subDevice)}`);
    if (after !== undefined) {
      where.push(
        afterKeySql(
          after,
          order,
          { time: 'to_milliseconds(time)', subDevice: SD, metric: 'metric', row: ROW, index: IDX },
          lit,
        ),
      );
    }
    const dir = order === 'asc' ? 'ASC' : 'DESC';
    const sql =
      `SELECT *, to_milliseconds(time) AS t_ms FROM ${this.from} WHERE ${where.join(' AND ')} ` +
      `ORDER BY time ${dir}, ${SD} ${dir}, metric ${dir}, ${ROW} ${dir}, ${IDX} ${dir} LIMIT ${limit + 1}`;
    const rows = await this.query(sql);
    const points = rows.slice(0, limit).map(toPoint);
    const last = points.at(-1);
    if (rows.length > limit && last !== undefined) {
      return {
        points,
        nextToken: encodeCursor({
          time: last.time,
          subDevice: last.subDevice ?? '',
          metric: last.metric,
          row: last.row ?? -1,
          index: last.index ?? -1,
        }),
      };
    }
    return { points };
  }

  async queryBuckets(q: BucketQuery): Promise<Bucket[]> {
    checkBucketQuery(q);
    const iv = q.intervalMs;
    const where = [
      `measure_name = ${lit(MEASURE_NAME)}`,
      `deviceId = ${lit(q.deviceId)}`,
      `metric = ${lit(q.metric)}`,
      `time >= from_milliseconds(${q.from})`,
      `time < from_milliseconds(${q.to})`,
    ];
    if (q.subDevice !== undefined)
      where.push(`subDevice = ${lit(q.subDevice === '' ? NODE_LEVEL : q.subDevice)}`);
    // Same as to_milliseconds(bin(time, <iv>ms)) for any interval, without interval-literal limits.
    const numTime = 'CASE WHEN v_num IS NULL THEN NULL ELSE to_milliseconds(time) END';
    const sql =
      `SELECT (to_milliseconds(time) / ${iv}) * ${iv} AS bucket, count(*) AS n, avg(v_num) AS avg_v, ` +
      `min(v_num) AS min_v, max(v_num) AS max_v, sum(v_num) AS sum_v, ` +
      `min_by(v_num, ${numTime}) AS first_v, max_by(v_num, ${numTime}) AS last_v ` +
      `FROM ${this.from} WHERE ${where.join(' AND ')} GROUP BY 1 ORDER BY 1`;
    let rows: Array<Record<string, string | null>>;
    try {
      rows = await this.query(sql);
    } catch (error) {
      // A table that never received a numeric reading has no v_num column yet.
      if (error instanceof Error && error.name === 'ValidationException' && /v_num/.test(error.message))
        return [];
      throw error;
    }
    return rows.map((r) => {
      const b: Bucket = { start: Number(r.bucket), count: Number(r.n ?? 0) };
      const put = (
        k: 'avg' | 'min' | 'max' | 'sum' | 'first' | 'last',
        v: string | null | undefined,
      ): void => {
        if (v !== null && v !== undefined) b[k] = Number(v);
      };
      put('avg', r.avg_v);
      put('min', r.min_v);
      put('max', r.max_v);
      put('sum', r.sum_v);
      put('first', r.first_v);
      put('last', r.last_v);
      return pickAggs(b, q.aggs);
    });
  }

  async latest(q: LatestQuery): Promise<StoredPoint[]> {
    checkLatestQuery(q);
    const since = q.since ?? this.clock() - this.lookback;
    const where = [
      `measure_name = ${lit(MEASURE_NAME)}`,
      `deviceId = ${lit(q.deviceId)}`,
      'r_historical = false',
      `time >= from_milliseconds(${since})`,
    ];
    if (q.subDevice !== undefined)
      where.push(`subDevice = ${lit(q.subDevice === '' ? NODE_LEVEL : q.subDevice)}`);
    const sql =
      'SELECT * FROM (SELECT *, to_milliseconds(time) AS t_ms, ' +
      `max(time) OVER (PARTITION BY subDevice, metric) AS latest_time FROM ${this.from} ` +
      `WHERE ${where.join(' AND ')}) WHERE time = latest_time ORDER BY ${SD}, metric, ${ROW}, ${IDX}`;
    return (await this.query(sql)).map(toPoint);
  }

  async close(): Promise<void> {
    // The SDK clients belong to the caller (shared across invocations); nothing to release here.
  }
}

// ---------------------------------------------------------------------------------------------------
// Helpers

const SD = `CASE WHEN subDevice = '${NODE_LEVEL}' THEN '' ELSE subDevice END`;
const ROW = 'cast(ds_row AS bigint)';
const IDX = 'cast(arr_index AS bigint)';

/** SQL string literal or number. */
export function lit(v: string | number): string {
  if (typeof v === 'number') return String(v);
  return `'${v.replaceAll("'", "''")}'`;
}

function ident(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function seriesOf(p: Prepared): string {
  return seriesKey(p.reading.deviceId, p.reading.subDevice);
}

function isTransient(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  const e = error as Error & { $metadata?: { httpStatusCode?: number }; $retryable?: unknown; code?: string };
  const status = e.$metadata?.httpStatusCode ?? 0;
  return (
    TRANSIENT.has(e.name) ||
    (e.code !== undefined && TRANSIENT.has(e.code)) ||
    status >= 500 ||
    status === 429 ||
    e.$retryable !== undefined
  );
}

/**
 * A rejection for an identity already stored: Timestream reports ExistingVersion (the point exists
 * with our constant Version and another value) or says so in the reason. First write wins.
 */
export function isDuplicate(rr: RejectedRecord): boolean {
  if (rr.ExistingVersion !== undefined && rr.ExistingVersion !== null) return true;
  return /duplicate|already exists|same dimensions|version/i.test(rr.Reason ?? '');
}

function dim(name: string, value: string | undefined): Dimension[] {
  return value === undefined || value === ''
    ? []
    : [{ Name: name, Value: value, DimensionValueType: 'VARCHAR' }];
}

export function toRecord(r: EnrichedReading): Prepared {
  const dims: Dimension[] = [
    ...dim('deviceId', r.deviceId),
    ...dim('subDevice', r.subDevice === undefined || r.subDevice === '' ? NODE_LEVEL : r.subDevice),
    ...dim('deviceType', r.enrichment.deviceType),
    ...dim('protocol', r.protocol),
    ...dim('site', r.enrichment.site),
    ...dim('sp_group', r.group),
    ...dim('metric', r.metric),
    ...dim('ds_row', String(r.row ?? -1)),
    ...dim('arr_index', String(r.index ?? -1)),
  ];
  const v = encodeValue(r.value);
  const measures: MeasureValue[] = [{ Name: 'v_kind', Value: v.kind, Type: 'VARCHAR' }];
  if (v.num !== undefined) measures.push({ Name: 'v_num', Value: String(v.num), Type: 'DOUBLE' });
  if (v.bigint !== undefined) measures.push({ Name: 'v_bigint', Value: v.bigint.toString(), Type: 'BIGINT' });
  if (v.bool !== undefined) measures.push({ Name: 'v_bool', Value: String(v.bool), Type: 'BOOLEAN' });
  // Measure values cannot be empty: an empty string/bytes is v_kind text/bytes with no v_text.
  if (v.text !== undefined && v.text !== '')
    measures.push({ Name: 'v_text', Value: v.text, Type: 'VARCHAR' });
  if (r.type !== '') measures.push({ Name: 'r_type', Value: r.type, Type: 'VARCHAR' });
  measures.push({ Name: 'r_quality', Value: r.quality, Type: 'VARCHAR' });
  measures.push({ Name: 'r_historical', Value: String(r.historical), Type: 'BOOLEAN' });
  if (r.unit !== undefined && r.unit !== '')
    measures.push({ Name: 'r_unit', Value: r.unit, Type: 'VARCHAR' });
  if (r.name !== undefined && r.name !== '')
    measures.push({ Name: 'r_name', Value: r.name, Type: 'VARCHAR' });
  return { reading: r, dims, measures, time: String(r.time) };
}

/** Bytes a record occupies (names and values of dimensions and measures, measure name, time). */
export function recordBytes(p: { dims: Dimension[]; measures: MeasureValue[] }): number {
  let n = MEASURE_NAME.length + 8;
  for (const d of p.dims) n += Buffer.byteLength(d.Name ?? '') + Buffer.byteLength(d.Value ?? '');
  for (const m of p.measures) n += Buffer.byteLength(m.Name ?? '') + Buffer.byteLength(m.Value ?? '');
  return n;
}

/**
 * The WriteRecords requests for these records, in order: a device's records together (sorted by series)
 * so CommonAttributes can carry its dimensions, at most 100 per request. The cost model uses it too.
 */
export function planChunks<T extends Prepared>(records: T[]): T[][] {
  const sorted = [...records].sort((a, b) => cmp(seriesOf(a), seriesOf(b)));
  const chunks: T[][] = [];
  for (let i = 0; i < sorted.length; i += MAX_RECORDS_PER_WRITE) {
    chunks.push(sorted.slice(i, i + MAX_RECORDS_PER_WRITE));
  }
  return chunks;
}

/**
 * Bytes Timestream meters for one WriteRecords request of `chunk` as this adapter sends it (sorted, with
 * CommonAttributes): the shared dimensions and measure name once, then each record's own dimensions,
 * measure names and values and its 8-byte time. Billed in 1 KiB units per request (the cost model).
 */
export function requestBytes(
  chunk: Array<{ dims: Dimension[]; measures: MeasureValue[]; time: string }>,
): number {
  const { common, records } = withCommonAttributes(chunk);
  const pairs = (xs: Array<{ Name?: string; Value?: string }> | undefined) =>
    (xs ?? []).reduce((n, x) => n + Buffer.byteLength(x.Name ?? '') + Buffer.byteLength(x.Value ?? ''), 0);
  let n = Buffer.byteLength(common.MeasureName ?? '') + pairs(common.Dimensions);
  for (const r of records) n += pairs(r.Dimensions) + pairs(r.MeasureValues) + 8;
  return n;
}

/** Moves the dimensions every record shares into CommonAttributes. */
export function withCommonAttributes(
  chunk: Array<{ dims: Dimension[]; measures: MeasureValue[]; time: string }>,
): {
  common: _Record;
  records: _Record[];
} {
  const first = chunk[0];
  const shared = (first?.dims ?? []).filter((d) =>
    chunk.every((p) => p.dims.some((x) => x.Name === d.Name && x.Value === d.Value)),
  );
  const sharedNames = new Set(shared.map((d) => d.Name));
  const common: _Record = {
    MeasureName: MEASURE_NAME,
    MeasureValueType: 'MULTI',
    TimeUnit: 'MILLISECONDS',
    Version: RECORD_VERSION,
  };
  if (shared.length > 0) common.Dimensions = shared;
  const records = chunk.map((p) => {
    const rec: _Record = { MeasureValues: p.measures, Time: p.time };
    const own = p.dims.filter((d) => !sharedNames.has(d.Name));
    if (own.length > 0) rec.Dimensions = own;
    return rec;
  });
  return { common, records };
}

function toPoint(r: Record<string, string | null>): StoredPoint {
  const kind = r.v_kind ?? 'null';
  const text = r.v_text ?? (kind === 'text' || kind === 'bytes' ? '' : null);
  const p: StoredPoint = {
    deviceId: r.deviceId ?? '',
    metric: r.metric ?? '',
    time: Number(r.t_ms),
    value: decodeValue(kind, {
      double: r.v_num === null || r.v_num === undefined ? null : Number(r.v_num),
      bigint: r.v_bigint === null || r.v_bigint === undefined ? null : BigInt(r.v_bigint),
      text,
      bool: r.v_bool === null || r.v_bool === undefined ? null : r.v_bool === 'true',
    }),
    type: r.r_type ?? '',
    quality: (r.r_quality ?? 'GOOD') as Quality,
    historical: r.r_historical === 'true',
    protocol: (r.protocol ?? 'sparkplug') as Protocol,
    deviceType: r.deviceType ?? '',
  };
  if (r.subDevice && r.subDevice !== NODE_LEVEL) p.subDevice = r.subDevice;
  const row = Number(r.ds_row ?? -1);
  const index = Number(r.arr_index ?? -1);
  if (row >= 0) p.row = row;
  if (index >= 0) p.index = index;
  if (r.site) p.site = r.site;
  if (r.sp_group) p.group = r.sp_group;
  if (r.r_unit) p.unit = r.r_unit;
  if (r.r_name) p.name = r.r_name;
  return p;
}
