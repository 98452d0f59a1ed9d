/**
 * The local TelemetryStore: one embedded DuckDB file (`<dataDir>/telemetry.duckdb`), created with its
 * schema on open. Writes go through the Appender into a temporary staging table, then one
 * `INSERT ... SELECT` that anti-joins the staged rows with the stored rows of the same time window on
 * the point identity, so re-writes are idempotent and the duplicate count is exact. (A PRIMARY KEY with
 * ON CONFLICT DO NOTHING does the same but its ART index made inserts 3-5x slower and grew memory:
 * ADR 0007.) Uniqueness relies on this adapter being the only writer: DuckDB locks the file to one
 * process, and all statements run on one connection, serialised by a promise chain. `close()`
 * checkpoints so the file is complete after a restart.
 *
 * Staging is shaped for the caller's thread, which the local stack's throughput hangs on: filling data
 * chunks and flushing the Appender are synchronous, node-api assigns each VARCHAR value with one native
 * call, and a NULL costs BigInt arithmetic in its validity mask. Staging all 20 columns of `readings`
 * (12 of them strings) took ~5 µs of that thread per reading. But the strings repeat: per device
 * (device_id, sub_device, protocol, device_type, site, grp) and per metric (metric, type, quality, unit,
 * name — the same across a fleet's devices). So two TEMP dimension tables hold each distinct string
 * tuple once, by id, appended to only when a write brings a new tuple, and the stage holds what changes
 * per reading, fixed-width and never NULL: the two ids, time, the numeric value and a flags byte (value
 * kind, historical). The common reading (a finite number, a boolean or null, no row or element index)
 * costs a handful of typed-array stores; the rest (bigint, text, bytes, arrays, NaN/Infinity, DataSet
 * rows, array elements: rare) goes through a second, general stage with the value columns as stored.
 * The one `INSERT ... SELECT` joins the stage(s) to the dimension tables before the anti-join.
 *
 * The JS side maps tuples to ids with Maps keyed on values that repeat (device id, sub-device, metric;
 * the other attributes compared in place, the previous reading's device tried first), so no key string
 * is built per reading. Dimension tables and maps belong to the connection, are never persisted, and
 * start over when they reach `dimensionLimit` tuples — memory stays bounded for a fleet that churns — or
 * after a failed write (the map may know ids the tables never got). A stage row whose id were missing
 * would get NULL strings and fail the NOT NULL constraints of `readings` rather than vanish. Stage tables
 * are re-created after each write, not emptied: DELETE leaves a temp table's row groups allocated (the
 * old 20-column stage added ~2.5 MB to duckdb_memory() per 10,000-reading write, up to the memory limit)
 * and makes later appends slower.
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
  UTINYINT,
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
  /**
   * DuckDB worker threads (default 1). The writes are serialised on one connection anyway, and on the
   * local stack's machine the broker, the emulators and the simulator want the other cores: with
   * DuckDB's default (all cores, 2 here) the same writes cost 7.4-9.0 µs of process CPU per reading,
   * with 1 thread 5.2-5.4 µs at an equal or higher write rate (`bench store --writes-only --rows
   * 1000000`, 3 alternating pairs, 2026-12-05).
   */
  threads?: number;
  /**
   * DuckDB's memory limit, e.g. '512MB' (default DEFAULT_MEMORY_LIMIT). DuckDB's own default is 80 % of
   * the machine's RAM, and its buffer pool keeps the blocks it appended until then: `npm run soak` saw
   * the stack's RSS grow ~85 MB a minute at 5,500 readings/s, all of it in duckdb_memory(). Under the
   * limit DuckDB evicts blocks already in the file and spills large query intermediates to disk.
   */
  memoryLimit?: string;
  /**
   * Distinct device and metric string tuples the write path keeps mapped to ids before it starts over
   * (default DEFAULT_DIMENSION_LIMIT). More live tuples than this still write correctly, only slower:
   * the map then starts over every few writes, and each write re-adds the tuples it uses.
   */
  dimensionLimit?: number;
}

/** Enough for the local stack's write batches and queries over tens of millions of rows. */
export const DEFAULT_MEMORY_LIMIT = '512MB';

/**
 * Rows between two checkpoints (write() runs them). DuckDB's own trigger (a 16 MB WAL, ~125,000 of
 * these rows) checkpoints inside the commit of the write that crosses it, and that write took 0.5-0.8 s
 * against ~0.1 s for the others: a stall every ~2.5 s at 50,000 readings/s. An explicit CHECKPOINT of
 * the same rows took 0.13-0.19 s (25,000-reading writes into a file store, this machine).
 * Every 491,520 rows (four of DuckDB's 122,880-row row groups) instead of 100,000: a checkpoint
 * re-compresses the table's last, partly filled row group, so fewer of them cost less in all — process
 * CPU 10.2 → 8.2 µs per reading and +25-48 % write rate over 1,000,000 readings (`bench store
 * --writes-only --rows 1000000`, 4 alternating pairs, 2026-12-05).
 */
const CHECKPOINT_EVERY_ROWS = 491_520;
/** DuckDB's WAL size trigger, left as a backstop above what CHECKPOINT_EVERY_ROWS lets accumulate. */
const WAL_BACKSTOP = '1GB';
/**
 * 50 × the 1,000 devices (and 50 metrics) of the end-to-end benchmark. A device tuple holds ~400 bytes of
 * JS heap with its strings, so ~20 MB when full.
 */
export const DEFAULT_DIMENSION_LIMIT = 50_000;

/** Columns of `readings`, in order. */
const COLUMNS: ReadonlyArray<[name: string, sqlType: string]> = [
  ['device_id', 'VARCHAR NOT NULL'],
  ['sub_device', 'VARCHAR NOT NULL'],
  ['metric', 'VARCHAR NOT NULL'],
  ['time', 'BIGINT NOT NULL'],
  ['row_idx', 'INTEGER NOT NULL'],
  ['elem_idx', 'INTEGER NOT NULL'],
  ['kind', 'VARCHAR NOT NULL'],
  ['v_num', 'DOUBLE'],
  ['v_bigint', 'BIGINT'],
  ['v_text', 'VARCHAR'],
  ['v_bool', 'BOOLEAN'],
  ['type', 'VARCHAR NOT NULL'],
  ['quality', 'VARCHAR NOT NULL'],
  ['historical', 'BOOLEAN NOT NULL'],
  ['protocol', 'VARCHAR NOT NULL'],
  ['device_type', 'VARCHAR NOT NULL'],
  ['site', 'VARCHAR'],
  ['grp', 'VARCHAR'],
  ['unit', 'VARCHAR'],
  ['name', 'VARCHAR'],
];

/**
 * The per-reading stage, for the common reading: a finite number, a boolean or null, with no row or
 * element index. Five fixed-width columns, never NULL (each column costs the caller's thread per row,
 * filling it and in the Appender's flush): the device and metric ids, time as a DOUBLE (exact for epoch
 * ms, and a Float64 store where BIGINT needs a BigInt per row; cast back in the insert), the numeric
 * value (a boolean as 1/0, null as 0) and `f` = value kind × 2 + historical.
 */
const STAGE_TYPES: DuckDBType[] = [INTEGER, INTEGER, DOUBLE, DOUBLE, UTINYINT];
const CREATE_STAGE =
  'CREATE OR REPLACE TEMP TABLE readings_stage (dev INTEGER, met INTEGER, time DOUBLE, v_num DOUBLE, f UTINYINT)';
const K_DOUBLE = 0;
const K_BOOL = 1;
const K_NULL = 2;
const FROM_STAGE =
  "SELECT dev, met, CAST(time AS BIGINT) AS time, -1 AS row_idx, -1 AS elem_idx, CASE f >> 1 WHEN 0 THEN 'double' " +
  "WHEN 1 THEN 'bool' ELSE 'null' END AS kind, CASE WHEN f < 4 THEN v_num END AS v_num, NULL::BIGINT AS v_bigint, " +
  'NULL::VARCHAR AS v_text, CASE WHEN f >> 1 = 1 THEN v_num <> 0 END AS v_bool, f & 1 = 1 AS historical ' +
  'FROM readings_stage';
/** The general stage (other values, DataSet rows, array elements): the value columns as stored. */
const STAGE_ANY_TYPES: DuckDBType[] = [
  INTEGER,
  INTEGER,
  BIGINT,
  INTEGER,
  INTEGER,
  VARCHAR,
  DOUBLE,
  BIGINT,
  VARCHAR,
  BOOLEAN,
  BOOLEAN,
];
const CREATE_STAGE_ANY =
  'CREATE OR REPLACE TEMP TABLE readings_stage_any (dev INTEGER, met INTEGER, time BIGINT, row_idx INTEGER, ' +
  'elem_idx INTEGER, kind VARCHAR, v_num DOUBLE, v_bigint BIGINT, v_text VARCHAR, v_bool BOOLEAN, historical BOOLEAN)';
const FROM_STAGE_ANY =
  'SELECT dev, met, time, row_idx, elem_idx, kind, v_num, v_bigint, v_text, v_bool, historical FROM readings_stage_any';
/** The dimension tables: each distinct device and metric string tuple once, by id. */
const DEV_TYPES: DuckDBType[] = [INTEGER, VARCHAR, VARCHAR, VARCHAR, VARCHAR, VARCHAR, VARCHAR];
const CREATE_DEV =
  'CREATE OR REPLACE TEMP TABLE readings_dev ' +
  '(id INTEGER, device_id VARCHAR, sub_device VARCHAR, protocol VARCHAR, device_type VARCHAR, site VARCHAR, grp VARCHAR)';
const MET_TYPES: DuckDBType[] = [INTEGER, VARCHAR, VARCHAR, VARCHAR, VARCHAR, VARCHAR];
const CREATE_MET =
  'CREATE OR REPLACE TEMP TABLE readings_met ' +
  '(id INTEGER, metric VARCHAR, type VARCHAR, quality VARCHAR, unit VARCHAR, name VARCHAR)';
/** Staged rows joined to their strings, in the column order of `readings`. */
const JOINED =
  'SELECT d.device_id, d.sub_device, m.metric, s.time, s.row_idx, s.elem_idx, s.kind, s.v_num, s.v_bigint, ' +
  's.v_text, s.v_bool, m.type, m.quality, s.historical, d.protocol, d.device_type, d.site, d.grp, m.unit, m.name ' +
  'FROM (%STAGED%) s LEFT JOIN readings_dev d ON d.id = s.dev LEFT JOIN readings_met m ON m.id = s.met';
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
  /** Rows committed since the last checkpoint. */
  private sinceCheckpoint = 0;
  private closed = false;
  /** String tuples known to readings_dev and readings_met, by id (only touched inside `serial`). */
  private dims = new Dimensions();
  /** The stage tables may hold rows of a write that failed before emptying them. */
  private stageDirty = false;

  private constructor(
    private readonly instance: DuckDBInstance,
    private readonly connection: DuckDBConnection,
    /** Where the data lives (a file path or ':memory:'). */
    readonly path: string,
    private readonly dimensionLimit: number,
  ) {}

  static async open(options: DuckDbStoreOptions): Promise<DuckDbTelemetryStore> {
    const limit = options.dimensionLimit ?? DEFAULT_DIMENSION_LIMIT;
    if (!Number.isSafeInteger(limit) || limit < 1) {
      throw new TransientError('DUCKDB_CONFIG', 'dimensionLimit must be a positive integer');
    }
    let path = options.path;
    if (path === undefined) {
      if (options.dataDir === undefined) {
        throw new TransientError('DUCKDB_CONFIG', 'DuckDB store needs dataDir or path');
      }
      mkdirSync(options.dataDir, { recursive: true });
      path = join(options.dataDir, TELEMETRY_FILE);
    }
    const config: Record<string, string> = {
      memory_limit: options.memoryLimit ?? DEFAULT_MEMORY_LIMIT,
      // write() checkpoints every CHECKPOINT_EVERY_ROWS itself; the WAL size trigger is only a backstop.
      checkpoint_threshold: WAL_BACKSTOP,
    };
    config.threads = String(options.threads ?? 1);
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
    await connection.run(CREATE_STAGE);
    await connection.run(CREATE_STAGE_ANY);
    await connection.run(CREATE_DEV);
    await connection.run(CREATE_MET);
    return new DuckDbTelemetryStore(instance, connection, path, limit);
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
    const inserted = await this.serial('write', async () => {
      if (this.stageDirty) {
        await c.run(CREATE_STAGE);
        await c.run(CREATE_STAGE_ANY);
        this.stageDirty = false;
      }
      if (this.dims.broken || this.dims.size >= this.dimensionLimit) {
        // Start over. Marked broken first: if this fails, the next write tries again.
        this.dims.broken = true;
        await c.run(CREATE_DEV);
        await c.run(CREATE_MET);
        this.dims = new Dimensions();
      }
      const dims = this.dims;
      try {
        // Synchronous up to the first append: ids handed out, every chunk filled.
        const { chunks, general, minT, maxT } = stage(prepared.accepted, dims);
        if (dims.newDevices.length > 0) {
          await append(c, 'readings_dev', chunked(dims.newDevices, DEV_TYPES, devRow));
          dims.newDevices = [];
        }
        if (dims.newMetrics.length > 0) {
          await append(c, 'readings_met', chunked(dims.newMetrics, MET_TYPES, metRow));
          dims.newMetrics = [];
        }
        this.stageDirty = true;
        const from: string[] = [];
        if (chunks.length > 0) {
          await append(c, 'readings_stage', chunks);
          from.push(FROM_STAGE);
        }
        if (general.length > 0) {
          await append(c, 'readings_stage_any', general);
          from.push(FROM_STAGE_ANY);
        }
        await c.run('BEGIN TRANSACTION');
        let res: { rowsChanged: number };
        try {
          // minT/maxT are integers computed here, so inlining them is safe; they let zone maps prune.
          res = await c.run(
            `INSERT INTO readings SELECT x.* FROM (${JOINED.replace('%STAGED%', from.join(' UNION ALL '))}) x ` +
              `ANTI JOIN (SELECT ${KEY} FROM readings WHERE time BETWEEN ${minT} AND ${maxT}) r USING (${KEY})`,
          );
          await c.run('COMMIT');
        } catch (error) {
          await c.run('ROLLBACK').catch(() => undefined);
          throw error;
        }
        if (chunks.length > 0) await c.run(CREATE_STAGE);
        if (general.length > 0) await c.run(CREATE_STAGE_ANY);
        this.stageDirty = false;
        this.sinceCheckpoint += res.rowsChanged;
        if (this.sinceCheckpoint >= CHECKPOINT_EVERY_ROWS) {
          // The rows are committed (in the WAL) either way: a failed checkpoint is retried next time.
          await c.run('CHECKPOINT').then(
            () => {
              this.sinceCheckpoint = 0;
            },
            () => undefined,
          );
        }
        return res.rowsChanged;
      } catch (error) {
        // The maps may hold ids their tables never got: both start over on the next write.
        dims.broken = true;
        throw error;
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

/** A device tuple (readings_dev): the strings that identify and describe one (sub-)device. */
interface DeviceDim {
  id: number;
  protocol: string;
  deviceType: string;
  site: string | undefined;
  group: string | undefined;
  /** Another tuple with the same device id and sub-device (its attributes changed). */
  next: DeviceDim | undefined;
}

/** A metric tuple (readings_met). */
interface MetricDim {
  id: number;
  type: string;
  quality: string;
  unit: string | undefined;
  name: string | undefined;
  /** Another tuple with the same metric name (other attributes). */
  next: MetricDim | undefined;
}

/**
 * The JS side of readings_dev and readings_met: maps a reading's strings to the two tuple ids. Maps on
 * the values that repeat (device id, then sub-device; metric name), the other attributes compared in
 * place along a short chain of variants, so a lookup builds no key string; the previous reading's
 * device is tried first, as readings arrive grouped by message.
 */
class Dimensions {
  private readonly devices = new Map<string, Map<string, DeviceDim>>();
  private readonly metrics = new Map<string, MetricDim>();
  private lastDeviceId: string | undefined;
  private lastSub: string | undefined;
  private last: DeviceDim | undefined;
  /** Tuples handed out, devices and metrics (each numbered from 0). */
  size = 0;
  private devCount = 0;
  private metCount = 0;
  /** Tuples handed out but not yet appended to their table, as [id, reading that introduced it]. */
  newDevices: Array<[number, EnrichedReading]> = [];
  newMetrics: Array<[number, EnrichedReading]> = [];
  /** The maps may know ids the tables do not: start over before the next write. */
  broken = false;

  device(r: EnrichedReading): number {
    const e = r.enrichment;
    const d = this.last;
    if (
      d !== undefined &&
      r.deviceId === this.lastDeviceId &&
      r.subDevice === this.lastSub &&
      d.protocol === r.protocol &&
      d.deviceType === e.deviceType &&
      d.site === e.site &&
      d.group === r.group
    ) {
      return d.id;
    }
    const found = this.findDevice(r);
    this.last = found;
    this.lastDeviceId = r.deviceId;
    this.lastSub = r.subDevice;
    return found.id;
  }

  private findDevice(r: EnrichedReading): DeviceDim {
    const e = r.enrichment;
    const sub = r.subDevice ?? '';
    let subs = this.devices.get(r.deviceId);
    if (subs === undefined) {
      subs = new Map();
      this.devices.set(r.deviceId, subs);
    }
    const head = subs.get(sub);
    for (let d = head; d !== undefined; d = d.next) {
      if (
        d.protocol === r.protocol &&
        d.deviceType === e.deviceType &&
        d.site === e.site &&
        d.group === r.group
      ) {
        return d;
      }
    }
    const d: DeviceDim = {
      id: this.devCount++,
      protocol: r.protocol,
      deviceType: e.deviceType,
      site: e.site,
      group: r.group,
      next: head,
    };
    this.size++;
    subs.set(sub, d);
    this.newDevices.push([d.id, r]);
    return d;
  }

  metric(r: EnrichedReading): number {
    const head = this.metrics.get(r.metric);
    for (let m = head; m !== undefined; m = m.next) {
      if (m.type === r.type && m.quality === r.quality && m.unit === r.unit && m.name === r.name) return m.id;
    }
    const m: MetricDim = {
      id: this.metCount++,
      type: r.type,
      quality: r.quality,
      unit: r.unit,
      name: r.name,
      next: head,
    };
    this.size++;
    this.metrics.set(r.metric, m);
    this.newMetrics.push([m.id, r]);
    return m.id;
  }
}

function devRow([id, r]: [number, EnrichedReading]): DuckDBValue[] {
  return [
    id,
    r.deviceId,
    r.subDevice ?? '',
    r.protocol,
    r.enrichment.deviceType,
    r.enrichment.site ?? null,
    r.group ?? null,
  ];
}

function metRow([id, r]: [number, EnrichedReading]): DuckDBValue[] {
  return [id, r.metric, r.type, r.quality, r.unit ?? null, r.name ?? null];
}

/** Whether a reading goes to the per-reading stage (see CREATE_STAGE). */
function simple(r: EnrichedReading): boolean {
  const v = r.value;
  return (
    ((typeof v === 'number' && Number.isFinite(v)) ||
      typeof v === 'boolean' ||
      v === null ||
      v === undefined) &&
    r.row === undefined &&
    r.index === undefined
  );
}

interface Staged {
  /** Data chunks of readings_stage. */
  chunks: DuckDBDataChunk[];
  /** Data chunks of readings_stage_any. */
  general: DuckDBDataChunk[];
  minT: number;
  maxT: number;
}

/**
 * Fills the data chunks of both stages, handing out dimension ids. The per-reading stage's values go
 * straight into the chunk's vectors: no per-column JS arrays, no BigInt, no validity mask.
 */
function stage(rows: EnrichedReading[], dims: Dimensions): Staged {
  let minT = Number.MAX_SAFE_INTEGER;
  let maxT = 0;
  let other: EnrichedReading[] | undefined;
  for (const r of rows) {
    if (r.time < minT) minT = r.time;
    if (r.time > maxT) maxT = r.time;
    if (simple(r)) continue;
    other ??= [];
    other.push(r);
  }
  const fast = other === undefined ? rows : rows.filter(simple);
  const chunks: DuckDBDataChunk[] = [];
  for (let off = 0; off < fast.length; off += CHUNK_ROWS) {
    const n = Math.min(CHUNK_ROWS, fast.length - off);
    const chunk = DuckDBDataChunk.create(STAGE_TYPES, n);
    const dev = chunk.getColumnVector(0);
    const met = chunk.getColumnVector(1);
    const time = chunk.getColumnVector(2);
    const vNum = chunk.getColumnVector(3);
    const flags = chunk.getColumnVector(4);
    for (let i = 0; i < n; i++) {
      const r = fast[off + i] as EnrichedReading;
      const v = r.value;
      dev.setItem(i, dims.device(r));
      met.setItem(i, dims.metric(r));
      time.setItem(i, r.time);
      let kind: number;
      if (typeof v === 'number') {
        kind = K_DOUBLE;
        vNum.setItem(i, v);
      } else if (typeof v === 'boolean') {
        kind = K_BOOL;
        vNum.setItem(i, v ? 1 : 0);
      } else {
        kind = K_NULL;
        vNum.setItem(i, 0);
      }
      flags.setItem(i, r.historical ? kind * 2 + 1 : kind * 2);
    }
    dev.flush();
    met.flush();
    time.flush();
    vNum.flush();
    flags.flush();
    chunks.push(chunk);
  }
  return { chunks, general: other === undefined ? [] : anyChunks(other, dims), minT, maxT };
}

/** Data chunks of the general stage (CREATE_STAGE_ANY's column order); hands out dimension ids. */
function anyChunks(rows: EnrichedReading[], dims: Dimensions): DuckDBDataChunk[] {
  return chunked(rows, STAGE_ANY_TYPES, (r) => {
    const v = encodeValue(r.value);
    return [
      dims.device(r),
      dims.metric(r),
      BigInt(r.time),
      r.row ?? -1,
      r.index ?? -1,
      v.kind,
      v.num ?? null,
      v.bigint ?? null,
      v.text ?? null,
      v.bool ?? null,
      r.historical,
    ];
  });
}

/** Data chunks of `types` from one row of values per item (the general path: rare or new rows only). */
function chunked<T>(items: T[], types: DuckDBType[], row: (item: T) => DuckDBValue[]): DuckDBDataChunk[] {
  const chunks: DuckDBDataChunk[] = [];
  for (let off = 0; off < items.length; off += CHUNK_ROWS) {
    const n = Math.min(CHUNK_ROWS, items.length - off);
    const chunk = DuckDBDataChunk.create(types, n);
    const rows: DuckDBValue[][] = new Array(n);
    for (let i = 0; i < n; i++) rows[i] = row(items[off + i] as T);
    chunk.setRows(rows);
    chunks.push(chunk);
  }
  return chunks;
}

/** Appends data chunks to a temp table through one Appender. */
async function append(c: DuckDBConnection, table: string, chunks: DuckDBDataChunk[]): Promise<void> {
  const appender = await c.createAppender(table, 'main', 'temp');
  try {
    for (const chunk of chunks) appender.appendDataChunk(chunk);
  } finally {
    appender.closeSync();
  }
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
