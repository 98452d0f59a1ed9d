/**
 * The local TelemetryStore: one embedded DuckDB file (`<dataDir>/telemetry.duckdb`), created with its
 * schema on open. Writes go through the Appender into a temporary staging table, then one
 * `INSERT ... SELECT` that anti-joins the staged rows with the stored rows of the same time window on
 * the point identity, so re-writes are idempotent and the duplicate count is exact. (A PRIMARY KEY with
 * ON CONFLICT DO NOTHING does the same but its ART index made inserts 3-5x slower and grew memory:
 * ADR 0007.) Uniqueness relies on this adapter being the only writer: DuckDB locks the file to one
 * process, and all statements run on one connection, serialised by a promise chain. `close()`
 * checkpoints so the file is complete after a restart.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import {
  BIGINT,
  BOOLEAN,
  DOUBLE,
  type DuckDBConnection,
  DuckDBDataChunk,
  DuckDBInstance,
  type DuckDBType,
  type DuckDBValue,
  INTEGER,
  VARCHAR,
} from '@duckdb/node-api';
import { DualpathError, TransientError } from '../../functions/core/errors.js';
import type { EnrichedReading, Protocol, Quality } from '../../functions/core/reading.js';
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
  type PointKey,
  pickAggs,
  prepareWrite,
  type RawQuery,
  type StoredPoint,
  type TelemetryStore,
  type WriteResult,
} from '../../functions/core/telemetry.js';

export interface DuckDbStoreOptions {
  /** Directory holding `telemetry.duckdb` (created if missing). */
  dataDir?: string;
  /** Explicit database path (overrides dataDir); ':memory:' for a throw-away store. */
  path?: string;
  /** DuckDB worker threads (default: DuckDB's choice, all cores). */
  threads?: number;
  /**
   * DuckDB's memory limit, e.g. '512MB' (default DEFAULT_MEMORY_LIMIT). DuckDB's own default is 80 % of
   * the machine's RAM, and its buffer pool keeps the blocks it appended until then: `npm run soak` saw
   * the stack's RSS grow ~85 MB a minute at 5,500 readings/s, all of it in duckdb_memory(). Under the
   * limit DuckDB evicts blocks already in the file and spills large query intermediates to disk.
   */
  memoryLimit?: string;
}

/** Enough for the local stack's write batches and queries over tens of millions of rows. */
export const DEFAULT_MEMORY_LIMIT = '512MB';

/** Column order of `readings` and of the staging table (the Appender writes in this order). */
const COLUMNS: ReadonlyArray<[name: string, sqlType: string, type: DuckDBType]> = [
  ['device_id', 'VARCHAR NOT NULL', VARCHAR],
  ['sub_device', 'VARCHAR NOT NULL', VARCHAR],
  ['metric', 'VARCHAR NOT NULL', VARCHAR],
  ['time', 'BIGINT NOT NULL', BIGINT],
  ['row_idx', 'INTEGER NOT NULL', INTEGER],
  ['elem_idx', 'INTEGER NOT NULL', INTEGER],
  ['kind', 'VARCHAR NOT NULL', VARCHAR],
  ['v_num', 'DOUBLE', DOUBLE],
  ['v_bigint', 'BIGINT', BIGINT],
  ['v_text', 'VARCHAR', VARCHAR],
  ['v_bool', 'BOOLEAN', BOOLEAN],
  ['type', 'VARCHAR NOT NULL', VARCHAR],
  ['quality', 'VARCHAR NOT NULL', VARCHAR],
  ['historical', 'BOOLEAN NOT NULL', BOOLEAN],
  ['protocol', 'VARCHAR NOT NULL', VARCHAR],
  ['device_type', 'VARCHAR NOT NULL', VARCHAR],
  ['site', 'VARCHAR', VARCHAR],
  ['grp', 'VARCHAR', VARCHAR],
  ['unit', 'VARCHAR', VARCHAR],
  ['name', 'VARCHAR', VARCHAR],
];
const TYPES = COLUMNS.map((c) => c[2]);
/** The point identity (ADR 0007): time first, the column rows arrive roughly sorted by. */
const KEY = 'time, device_id, sub_device, metric, row_idx, elem_idx';
const SELECT_POINT =
  'device_id, sub_device, metric, time, row_idx, elem_idx, kind, v_num, v_bigint, v_text, v_bool, ' +
  'type, quality, historical, protocol, device_type, site, grp, unit, name';
const ORDER_ASC = 'time ASC, sub_device ASC, metric ASC, row_idx ASC, elem_idx ASC';
const ORDER_DESC = 'time DESC, sub_device DESC, metric DESC, row_idx DESC, elem_idx DESC';
/** DuckDB's vector size: the most rows one data chunk holds. */
const CHUNK_ROWS = 2048;

export const TELEMETRY_FILE = 'telemetry.duckdb';

export class DuckDbTelemetryStore implements TelemetryStore {
  private chain: Promise<unknown> = Promise.resolve();
  private closed = false;

  private constructor(
    private readonly instance: DuckDBInstance,
    private readonly connection: DuckDBConnection,
    /** Where the data lives (a file path or ':memory:'). */
    readonly path: string,
  ) {}

  static async open(options: DuckDbStoreOptions): Promise<DuckDbTelemetryStore> {
    let path = options.path;
    if (path === undefined) {
      if (options.dataDir === undefined) {
        throw new TransientError('DUCKDB_CONFIG', 'DuckDB store needs dataDir or path');
      }
      mkdirSync(options.dataDir, { recursive: true });
      path = join(options.dataDir, TELEMETRY_FILE);
    }
    const config: Record<string, string> = { memory_limit: options.memoryLimit ?? DEFAULT_MEMORY_LIMIT };
    if (options.threads !== undefined) config.threads = String(options.threads);
    let instance: DuckDBInstance;
    try {
      instance = await DuckDBInstance.create(path, config);
    } catch (cause) {
      throw new TransientError(
        'DUCKDB_OPEN_FAILED',
        `cannot open telemetry store ${path}: ${message(cause)}`,
        {
          cause,
        },
      );
    }
    const connection = await instance.connect();
    await connection.run(
      `CREATE TABLE IF NOT EXISTS readings (${COLUMNS.map(([n, t]) => `${n} ${t}`).join(', ')})`,
    );
    await connection.run(
      `CREATE OR REPLACE TEMP TABLE readings_stage AS SELECT ${COLUMNS.map((c) => c[0]).join(', ')} FROM readings WITH NO DATA`,
    );
    return new DuckDbTelemetryStore(instance, connection, path);
  }

  /** Runs `fn` after every earlier operation, so one connection is never used concurrently. */
  private serial<T>(what: string, fn: () => Promise<T>): Promise<T> {
    const run = async (): Promise<T> => {
      if (this.closed) throw new TransientError('STORE_CLOSED', `telemetry store is closed (${what})`);
      try {
        return await fn();
      } catch (error) {
        if (error instanceof DualpathError) throw error;
        throw new TransientError('DUCKDB_ERROR', `${what}: ${message(error)}`, { cause: error });
      }
    };
    const next = this.chain.then(run, run);
    this.chain = next.catch(() => undefined);
    return next;
  }

  async write(readings: EnrichedReading[]): Promise<WriteResult> {
    const prepared = prepareWrite(readings);
    const result: WriteResult = {
      written: 0,
      duplicates: prepared.duplicates,
      rejected: prepared.rejected,
      skipped: prepared.skipped,
    };
    if (prepared.accepted.length === 0) return result;
    const c = this.connection;
    let minT = Number.MAX_SAFE_INTEGER;
    let maxT = 0;
    for (const r of prepared.accepted) {
      if (r.time < minT) minT = r.time;
      if (r.time > maxT) maxT = r.time;
    }
    const inserted = await this.serial('write', async () => {
      await c.run('DELETE FROM readings_stage');
      const appender = await c.createAppender('readings_stage', 'main', 'temp');
      try {
        const rows = prepared.accepted;
        for (let off = 0; off < rows.length; off += CHUNK_ROWS) {
          const n = Math.min(CHUNK_ROWS, rows.length - off);
          const chunk = DuckDBDataChunk.create(TYPES, n);
          chunk.setColumns(toColumns(rows, off, n));
          appender.appendDataChunk(chunk);
        }
      } finally {
        appender.closeSync();
      }
      await c.run('BEGIN TRANSACTION');
      try {
        // minT/maxT are integers computed here, so inlining them is safe; they let zone maps prune.
        const res = await c.run(
          `INSERT INTO readings SELECT s.* FROM readings_stage s ANTI JOIN ` +
            `(SELECT ${KEY} FROM readings WHERE time BETWEEN ${minT} AND ${maxT}) r USING (${KEY})`,
        );
        await c.run('COMMIT');
        return res.rowsChanged;
      } catch (error) {
        await c.run('ROLLBACK').catch(() => undefined);
        throw error;
      } finally {
        await c.run('DELETE FROM readings_stage');
      }
    });
    result.written = inserted;
    result.duplicates += prepared.accepted.length - inserted;
    return result;
  }

  async queryRaw(q: RawQuery): Promise<{ points: StoredPoint[]; nextToken?: string }> {
    const { limit, order, after } = checkRawQuery(q);
    const params: DuckDBValue[] = [q.deviceId, BigInt(q.from), BigInt(q.to)];
    const where = ['device_id = $1', 'time >= $2', 'time < $3'];
    const p = (v: DuckDBValue): string => {
      params.push(v);
      return `$${params.length}`;
    };
    if (q.metric !== undefined) where.push(`metric = ${p(q.metric)}`);
    if (q.subDevice !== undefined) where.push(`sub_device = ${p(q.subDevice)}`);
    if (after !== undefined) {
      where.push(
        afterKeySql(
          after,
          order,
          { time: 'time', subDevice: 'sub_device', metric: 'metric', row: 'row_idx', index: 'elem_idx' },
          (v) => p(typeof v === 'number' ? BigInt(v) : v),
        ),
      );
    }
    const sql =
      `SELECT ${SELECT_POINT} FROM readings WHERE ${where.join(' AND ')} ` +
      `ORDER BY ${order === 'asc' ? ORDER_ASC : ORDER_DESC} LIMIT ${limit + 1}`;
    const rows = await this.serial('queryRaw', async () =>
      (await this.connection.runAndReadAll(sql, params)).getRows(),
    );
    const points = rows.slice(0, limit).map(toPoint);
    const last = points.at(-1);
    if (rows.length > limit && last !== undefined) {
      return { points, nextToken: encodeCursor(keyOf(last)) };
    }
    return { points };
  }

  async queryBuckets(q: BucketQuery): Promise<Bucket[]> {
    checkBucketQuery(q);
    const params: DuckDBValue[] = [q.deviceId, q.metric, BigInt(q.from), BigInt(q.to), BigInt(q.intervalMs)];
    let where = 'device_id = $1 AND metric = $2 AND time >= $3 AND time < $4';
    if (q.subDevice !== undefined) {
      params.push(q.subDevice);
      where += ' AND sub_device = $6';
    }
    const order = '(time, sub_device, row_idx, elem_idx)';
    const sql =
      'SELECT (time // $5) * $5 AS start, count(*) AS n, avg(v_num), min(v_num), max(v_num), sum(v_num), ' +
      `arg_min(v_num, ${order}) FILTER (WHERE v_num IS NOT NULL), ` +
      `arg_max(v_num, ${order}) FILTER (WHERE v_num IS NOT NULL) ` +
      `FROM readings WHERE ${where} GROUP BY 1 ORDER BY 1`;
    const rows = await this.serial('queryBuckets', async () =>
      (await this.connection.runAndReadAll(sql, params)).getRows(),
    );
    return rows.map((r) => {
      const b: Bucket = { start: Number(r[0]), count: Number(r[1]) };
      const [avg, min, max, sum, first, last] = r.slice(2).map(num);
      if (avg !== undefined) b.avg = avg;
      if (min !== undefined) b.min = min;
      if (max !== undefined) b.max = max;
      if (sum !== undefined) b.sum = sum;
      if (first !== undefined) b.first = first;
      if (last !== undefined) b.last = last;
      return pickAggs(b, q.aggs);
    });
  }

  async latest(q: LatestQuery): Promise<StoredPoint[]> {
    checkLatestQuery(q);
    const params: DuckDBValue[] = [q.deviceId];
    let where = 'device_id = $1 AND NOT historical';
    if (q.subDevice !== undefined) {
      params.push(q.subDevice);
      where += ` AND sub_device = $${params.length}`;
    }
    if (q.since !== undefined) {
      params.push(BigInt(q.since));
      where += ` AND time >= $${params.length}`;
    }
    const sql =
      `SELECT ${SELECT_POINT} FROM readings WHERE ${where} ` +
      'QUALIFY time = max(time) OVER (PARTITION BY sub_device, metric) ' +
      'ORDER BY sub_device, metric, row_idx, elem_idx';
    const rows = await this.serial('latest', async () =>
      (await this.connection.runAndReadAll(sql, params)).getRows(),
    );
    return rows.map(toPoint);
  }

  /** Stored rows, and distinct point identities among them (equal unless a duplicate slipped in). */
  async counts(): Promise<{ readings: number; distinct: number }> {
    const rows = await this.serial('counts', async () =>
      (
        await this.connection.runAndReadAll(
          'SELECT count(*), count(DISTINCT (device_id, sub_device, metric, time, row_idx, elem_idx)) FROM readings',
        )
      ).getRows(),
    );
    return { readings: Number(rows[0]?.[0] ?? 0), distinct: Number(rows[0]?.[1] ?? 0) };
  }

  /** Memory DuckDB accounts for (buffer pool, hash tables, ...), in bytes: soak runs watch it. */
  async memoryBytes(): Promise<number> {
    const rows = await this.serial('memory', async () =>
      (await this.connection.runAndReadAll('SELECT sum(memory_usage_bytes) FROM duckdb_memory()')).getRows(),
    );
    return Number(rows[0]?.[0] ?? 0);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    await this.serial('close', async () => {
      await this.connection.run('CHECKPOINT');
    }).catch(() => undefined);
    this.closed = true;
    this.connection.closeSync();
    this.instance.closeSync();
  }
}

export function openDuckDbStore(options: DuckDbStoreOptions): Promise<DuckDbTelemetryStore> {
  return DuckDbTelemetryStore.open(options);
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function num(v: DuckDBValue | undefined): number | undefined {
  if (v === null || v === undefined) return undefined;
  return typeof v === 'bigint' ? Number(v) : (v as number);
}

/** Column arrays for one data chunk of the staging table (same order as COLUMNS). */
function toColumns(rows: EnrichedReading[], off: number, n: number): DuckDBValue[][] {
  const cols: DuckDBValue[][] = TYPES.map(() => new Array<DuckDBValue>(n));
  const [deviceId, subDevice, metric, time, rowIdx, elemIdx, kind, vNum, vBigint, vText, vBool] = cols as [
    DuckDBValue[],
    DuckDBValue[],
    DuckDBValue[],
    DuckDBValue[],
    DuckDBValue[],
    DuckDBValue[],
    DuckDBValue[],
    DuckDBValue[],
    DuckDBValue[],
    DuckDBValue[],
    DuckDBValue[],
  ];
  const rest = cols.slice(11) as DuckDBValue[][];
  const [type, quality, historical, protocol, deviceType, site, grp, unit, name] = rest as [
    DuckDBValue[],
    DuckDBValue[],
    DuckDBValue[],
    DuckDBValue[],
    DuckDBValue[],
    DuckDBValue[],
    DuckDBValue[],
    DuckDBValue[],
    DuckDBValue[],
  ];
  for (let i = 0; i < n; i++) {
    const r = rows[off + i] as EnrichedReading;
    const v = encodeValue(r.value);
    deviceId[i] = r.deviceId;
    subDevice[i] = r.subDevice ?? '';
    metric[i] = r.metric;
    time[i] = BigInt(r.time);
    rowIdx[i] = r.row ?? -1;
    elemIdx[i] = r.index ?? -1;
    kind[i] = v.kind;
    vNum[i] = v.num ?? null;
    vBigint[i] = v.bigint ?? null;
    vText[i] = v.text ?? null;
    vBool[i] = v.bool ?? null;
    type[i] = r.type;
    quality[i] = r.quality;
    historical[i] = r.historical;
    protocol[i] = r.protocol;
    deviceType[i] = r.enrichment.deviceType;
    site[i] = r.enrichment.site ?? null;
    grp[i] = r.group ?? null;
    unit[i] = r.unit ?? null;
    name[i] = r.name ?? null;
  }
  return cols;
}

function keyOf(p: StoredPoint): PointKey {
  return {
    time: p.time,
    subDevice: p.subDevice ?? '',
    metric: p.metric,
    row: p.row ?? -1,
    index: p.index ?? -1,
  };
}

function toPoint(r: DuckDBValue[]): StoredPoint {
  const kind = r[6] as string;
  const p: StoredPoint = {
    deviceId: r[0] as string,
    metric: r[2] as string,
    time: Number(r[3]),
    value: decodeValue(kind, {
      double: r[7] as number | null,
      bigint: r[8] as bigint | null,
      text: r[9] as string | null,
      bool: r[10] as boolean | null,
    }),
    type: r[11] as string,
    quality: r[12] as Quality,
    historical: r[13] as boolean,
    protocol: r[14] as Protocol,
    deviceType: r[15] as string,
  };
  if (r[1] !== '') p.subDevice = r[1] as string;
  if ((r[4] as number) >= 0) p.row = r[4] as number;
  if ((r[5] as number) >= 0) p.index = r[5] as number;
  if (r[16] !== null) p.site = r[16] as string;
  if (r[17] !== null) p.group = r[17] as string;
  if (r[18] !== null) p.unit = r[18] as string;
  if (r[19] !== null) p.name = r[19] as string;
  return p;
}
