/**
 * TelemetryStore on DynamoDB, packed: the default AWS store (ADR 0013; it replaces the one-item-per-
 * reading design of ADR 0011). Readings are stored as **frames**, one item per (device, sub-device,
 * time) — in practice one item per message — holding every reading of that message as a compact JSON
 * entry that refers to a per-(device, sub-device) **catalog** of metric definitions (metric, type,
 * unit, name) by id, plain numeric values in a binary column, so a 50-reading message is ~560 B:
 * 1 WRU (`npm run bench -- store --dynamodb`). A **latest** item per (device,
 * sub-device) maps each metric to its newest non-historical time. Bucket queries read closed hours
 * from **series hour chunks** (one series' numeric views for one hour), built from the frames the first
 * time a query needs them and invalidated by late writes; the open hour is read from the frames. Keys
 * and encodings: dynamo-telemetry-codec.ts.
 *
 * Port semantics (ADR 0007) as the other adapters: first write of an identity wins and later ones count
 * as duplicates (exact also under concurrent writers: every frame, catalog and latest write is
 * conditional), transient readings skipped, historical readings never in `latest`, half-open ranges, the
 * key cursor, buckets computed with the core reference aggregation (`aggregateBuckets`) over the exact
 * stored numeric views, so they equal the reference.
 *
 * DynamoDB actions (the IAM policy needs exactly these on the table, no index):
 * - write: `dynamodb:PutItem` (frames, catalog, latest; all conditional), `dynamodb:GetItem` (only after
 *   a failed condition or on a cold cache: consistent reads of a frame, catalog or latest item),
 *   `dynamodb:UpdateItem` (marks a series hour chunk stale when a reading arrives for an hour that
 *   closed more than `chunkGraceMs` ago);
 * - query: `dynamodb:Query` (device catalog + latest items, frames, chunks), `dynamodb:BatchGetItem`
 *   (frames for `latest`), `dynamodb:GetItem` (a catalog re-read when a frame is newer than the catalog
 *   the query loaded), `dynamodb:PutItem` (bucket queries store the chunks they build).
 */
import {
  BatchGetCommand,
  type DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  type PutCommandInput,
  QueryCommand,
  type QueryCommandInput,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import { DualpathError, TransientError, ValidationError } from '../core/errors.js';
import type { EnrichedReading } from '../core/reading.js';
import {
  aggregateBuckets,
  type Bucket,
  type BucketQuery,
  checkBucketQuery,
  checkLatestQuery,
  checkRawQuery,
  comparePointKeys,
  encodeCursor,
  type LatestQuery,
  pointKeyOf,
  prepareWrite,
  type RawQuery,
  type StoredPoint,
  type TelemetryStore,
  type WriteResult,
} from '../core/telemetry.js';
import { mapAwsError } from './dynamo-errors.js';
import {
  type Catalog,
  type ChunkPoint,
  catalogSk,
  chunkPk,
  chunkPrefix,
  chunkSk,
  decodeEntry,
  defKey,
  devicePk,
  type Entry,
  emptyCatalog,
  encodeEntry,
  entryIdentity,
  entryMetric,
  extendCatalog,
  type FrameHeader,
  frameHeaderOfItem,
  framePk,
  frameSk,
  frameSkHigh,
  frameSkLow,
  fromChunkPoint,
  HOUR_MS,
  headerOf,
  hourOf,
  type InlineDef,
  latestSk,
  padTime,
  parseCatalog,
  parseLatest,
  readBinaryValues,
  readingIdentity,
  serializeCatalog,
  serializeLatest,
  toChunkPoint,
} from './dynamo-telemetry-codec.js';

export { escapeKeyPart, framePk, frameSk } from './dynamo-telemetry-codec.js';

/** The table this adapter needs (the CDK stack and the tests create it from this): no index. */
export const TELEMETRY_TABLE_SCHEMA = {
  partitionKey: { name: 'pk', type: 'S' },
  sortKey: { name: 'sk', type: 'S' },
  ttlAttribute: 'expiresAt',
  billingMode: 'PAY_PER_REQUEST',
} as const;

/** The IAM actions the adapter calls, for the deploy's policy (see the header comment). */
export const TELEMETRY_WRITE_ACTIONS = [
  'dynamodb:PutItem',
  'dynamodb:GetItem',
  'dynamodb:UpdateItem',
] as const;
export const TELEMETRY_QUERY_ACTIONS = [
  'dynamodb:Query',
  'dynamodb:BatchGetItem',
  'dynamodb:PutItem',
] as const;

export interface DynamoTelemetryStoreOptions {
  client: DynamoDBDocumentClient;
  tableName: string;
  /** Frames expire (DynamoDB TTL) this many days after their time; older readings are rejected. 30. */
  retentionDays?: number;
  /** Requests in flight per call. Default 16. */
  concurrency?: number;
  /** Most points a bucket query aggregates before asking for a narrower range. Default 200,000. */
  maxBucketPoints?: number;
  /** Attempts per request on throttling / 5xx / lost conditions before a TransientError. Default 5. */
  maxAttempts?: number;
  /**
   * Bucket queries read an hour from its series chunk once the hour closed this long ago (ms; default
   * 10 min); a write into an hour closed that long marks the hour's chunk stale. `false` disables chunks.
   */
  chunkGraceMs?: number | false;
  sleep?: (ms: number) => Promise<void>;
  /** Epoch ms now: retention, chunk eligibility, hiding points whose TTL passed but are not yet deleted. */
  clock?: () => number;
  /** [0, 1) for backoff jitter. */
  random?: () => number;
}

type Item = Record<string, unknown>;

/** 30 days: the retention the cost goal is stated for (ADR 0013); set `retentionDays` for longer. */
export const DEFAULT_RETENTION_DAYS = 30;
export const DEFAULT_MAX_BUCKET_POINTS = 200_000;
export const DEFAULT_CHUNK_GRACE_MS = 600_000;
const DAY_MS = 86_400_000;
/** DynamoDB's item limit is 400 KB; frames and chunks stay below this (keys and attributes included). */
export const MAX_PACKED_BYTES = 350_000;
/** Past this size a catalog stops growing and new definitions travel inline in the frames. */
const MAX_CATALOG_BYTES = 300_000;
const CACHE_LIMIT = 20_000;
/** Longest gap of missing hours a bucket query records as empty chunks (31 days). */
const MAX_EMPTY_CHUNK_HOURS = 744;

/** Runs `fn` over `items` with at most `limit` in flight; rejects with the first failure. */
async function pool<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const item = items[next++] as T;
      await fn(item);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

const isConditionFailure = (error: unknown): boolean =>
  (error as Error | undefined)?.name === 'ConditionalCheckFailedException';

interface PendingFrame {
  deviceId: string;
  sub: string;
  time: number;
  header: FrameHeader;
  readings: EnrichedReading[];
  entries: Array<Entry | number>;
  /** Binary-column bytes of each entry (undefined for the JSON forms). */
  bins: Array<Buffer | undefined>;
}

interface LatestState {
  v: number;
  times: Map<string, number>;
}

interface DeviceState {
  catalogs: Map<string, Catalog>;
  latest: Map<string, Item>;
}

export class DynamoTelemetryStore implements TelemetryStore {
  private readonly table: string;
  private readonly retentionMs: number;
  private readonly concurrency: number;
  private readonly maxBucketPoints: number;
  private readonly maxAttempts: number;
  private readonly grace: number | undefined;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly clock: () => number;
  private readonly random: () => number;
  /** Write-side caches per (device, sub-device): saves a consistent read per call while we own the item. */
  private readonly catalogs = new Map<string, Catalog>();
  private readonly latestStates = new Map<string, LatestState>();

  constructor(private readonly o: DynamoTelemetryStoreOptions) {
    if (o === null || typeof o !== 'object' || o.client === undefined) {
      throw new ValidationError('client must be a DynamoDBDocumentClient', { field: 'client' });
    }
    if (typeof o.tableName !== 'string' || o.tableName.length === 0) {
      throw new ValidationError('tableName must be a non-empty string', { field: 'tableName' });
    }
    const days = o.retentionDays ?? DEFAULT_RETENTION_DAYS;
    if (!Number.isFinite(days) || days <= 0) {
      throw new ValidationError('retentionDays must be a positive number', { field: 'retentionDays' });
    }
    const concurrency = o.concurrency ?? 16;
    if (!Number.isSafeInteger(concurrency) || concurrency < 1) {
      throw new ValidationError('concurrency must be a positive integer', { field: 'concurrency' });
    }
    const maxBucketPoints = o.maxBucketPoints ?? DEFAULT_MAX_BUCKET_POINTS;
    if (!Number.isSafeInteger(maxBucketPoints) || maxBucketPoints < 1) {
      throw new ValidationError('maxBucketPoints must be a positive integer', { field: 'maxBucketPoints' });
    }
    const grace = o.chunkGraceMs ?? DEFAULT_CHUNK_GRACE_MS;
    if (grace !== false && (!Number.isSafeInteger(grace) || grace < 0)) {
      throw new ValidationError('chunkGraceMs must be a non-negative integer or false', {
        field: 'chunkGraceMs',
      });
    }
    this.table = o.tableName;
    this.retentionMs = Math.round(days * DAY_MS);
    this.concurrency = concurrency;
    this.maxBucketPoints = maxBucketPoints;
    this.maxAttempts = Math.max(1, o.maxAttempts ?? 5);
    this.grace = grace === false ? undefined : grace;
    this.sleep = o.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms)));
    this.clock = o.clock ?? Date.now;
    this.random = o.random ?? Math.random;
  }

  /** TTL of data at `time`: epoch seconds. */
  private expiresAt(time: number): number {
    return Math.floor((time + this.retentionMs) / 1000);
  }

  /** True when data at `time` is past its TTL (DynamoDB deletes expired items lazily, days later). */
  private expired(time: number, nowSeconds: number): boolean {
    return this.expiresAt(time) <= nowSeconds;
  }

  private backoff(attempt: number): number {
    const cap = Math.min(2000, 50 * 2 ** attempt);
    return Math.round(cap / 2 + (cap / 2) * this.random());
  }

  /** Sends with retries on throttling / 5xx; condition failures are re-thrown as they are. */
  private async send<T>(what: string, call: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await call();
      } catch (error) {
        if (isConditionFailure(error)) throw error;
        const mapped = mapError(error, what);
        if (!(mapped instanceof TransientError) || mapped.code !== 'AWS_TRANSIENT') throw mapped;
        if (attempt >= this.maxAttempts) {
          throw new TransientError(
            'TELEMETRY_THROTTLED',
            `${what}: still failing after ${attempt} attempts: ${mapped.message}`,
            { cause: error },
          );
        }
        await this.sleep(this.backoff(attempt - 1));
      }
    }
  }

  private async getItem(what: string, pk: string, sk: string): Promise<Item | undefined> {
    const out = await this.send(what, () =>
      this.o.client.send(new GetCommand({ TableName: this.table, Key: { pk, sk }, ConsistentRead: true })),
    );
    return out.Item as Item | undefined;
  }

  /** A conditional put: true when written, false when the condition failed. */
  private async putIf(what: string, input: Omit<PutCommandInput, 'TableName'>): Promise<boolean> {
    try {
      await this.send(what, () => this.o.client.send(new PutCommand({ TableName: this.table, ...input })));
      return true;
    } catch (error) {
      if (isConditionFailure(error)) return false;
      throw error;
    }
  }

  private conflict(what: string): TransientError {
    return new TransientError(
      'TELEMETRY_CONFLICT',
      `${what}: the item kept changing under concurrent writers after ${this.maxAttempts} attempts`,
    );
  }

  // -------------------------------------------------------------------------------------------------
  // Write

  async write(readings: EnrichedReading[]): Promise<WriteResult> {
    const prepared = prepareWrite(readings);
    const result: WriteResult = {
      written: 0,
      duplicates: prepared.duplicates,
      rejected: prepared.rejected,
      skipped: prepared.skipped,
    };
    const now = this.clock();
    const horizon = now - this.retentionMs;
    const groups = new Map<string, { deviceId: string; sub: string; readings: EnrichedReading[] }>();
    for (const reading of prepared.accepted) {
      if (reading.time < horizon) {
        result.rejected.push({
          reading,
          code: 'OUTSIDE_RETENTION',
          reason: `time ${reading.time} is older than the ${this.retentionMs / DAY_MS}-day retention`,
        });
        continue;
      }
      const sub = reading.subDevice ?? '';
      const key = `${reading.deviceId}\u0000${sub}`;
      let g = groups.get(key);
      if (g === undefined) {
        g = { deviceId: reading.deviceId, sub, readings: [] };
        groups.set(key, g);
      }
      g.readings.push(reading);
    }
    if (groups.size === 0) return result;

    // 1. Catalogs (definitions must exist before a frame refers to them), then frames of every group.
    const frames: PendingFrame[] = [];
    const cats = new Map<string, Catalog>();
    await pool([...groups.entries()], this.concurrency, async ([key, g]) => {
      const cat = await this.ensureCatalog(g.deviceId, g.sub, g.readings);
      cats.set(key, cat);
      const byTime = new Map<number, PendingFrame>();
      for (const r of g.readings) {
        let f = byTime.get(r.time);
        if (f === undefined) {
          f = {
            deviceId: g.deviceId,
            sub: g.sub,
            time: r.time,
            header: headerOf(r),
            readings: [],
            entries: [],
            bins: [],
          };
          byTime.set(r.time, f);
        }
        let encoded: ReturnType<typeof encodeEntry>;
        try {
          encoded = encodeEntry(r, defRef(cat, r), f.header);
        } catch (error) {
          const reason = error instanceof DualpathError ? error.message : String(error);
          result.rejected.push({ reading: r, code: 'INVALID_READING', reason });
          continue;
        }
        f.readings.push(r);
        f.entries.push(encoded.entry);
        f.bins.push(encoded.bin);
      }
      for (const f of byTime.values()) if (f.entries.length > 0) frames.push(f);
    });
    const stored: EnrichedReading[] = [];
    await pool(frames, this.concurrency, async (f) => {
      const key = `${f.deviceId}\u0000${f.sub}`;
      const out = await this.putFrame(f, cats.get(key) as Catalog, result);
      stored.push(...out);
    });

    // 2. Latest items (after the frames they point to), 3. stale chunk marks for late readings.
    await pool([...groups.entries()], this.concurrency, async ([key, g]) => {
      const times = new Map<string, number>();
      for (const r of g.readings) {
        if (r.historical) continue;
        if ((times.get(r.metric) ?? -1) < r.time) times.set(r.metric, r.time);
      }
      if (times.size > 0) await this.updateLatest(g.deviceId, g.sub, cats.get(key) as Catalog, times);
    });
    await this.markLateChunks(stored, now);
    return result;
  }

  /** The catalog for (device, sub) holding every definition the readings use (appends what is new). */
  private async ensureCatalog(deviceId: string, sub: string, readings: EnrichedReading[]): Promise<Catalog> {
    const key = `${deviceId}\u0000${sub}`;
    let cat =
      this.catalogs.get(key) ??
      parseCatalog(await this.getItem('telemetry.catalog', devicePk(deviceId), catalogSk(sub)));
    for (let attempt = 1; ; attempt++) {
      const missing = new Map<
        string,
        { metric: string; type: string; unit: string | null; name: string | null }
      >();
      for (const r of readings) {
        const d = { metric: r.metric, type: r.type, unit: r.unit ?? null, name: r.name ?? null };
        const k = defKey(d.metric, d.type, d.unit, d.name);
        if (!cat.defIds.has(k)) missing.set(k, d);
      }
      if (missing.size === 0) break;
      const next = extendCatalog(cat, [...missing.values()]);
      // A full catalog stops growing: readings with new definitions carry them inline.
      if (next.bytes > MAX_CATALOG_BYTES) break;
      const ok = await this.putIf('telemetry.catalog', {
        Item: { pk: devicePk(deviceId), sk: catalogSk(sub), s: sub, c: serializeCatalog(next), v: next.v },
        ConditionExpression: cat.v === 0 ? 'attribute_not_exists(pk)' : 'v = :v',
        ...(cat.v === 0 ? {} : { ExpressionAttributeValues: { ':v': cat.v } }),
      });
      if (ok) {
        cat = next;
        break;
      }
      if (attempt >= this.maxAttempts) throw this.conflict('telemetry.catalog');
      cat = parseCatalog(await this.getItem('telemetry.catalog', devicePk(deviceId), catalogSk(sub)));
    }
    if (this.catalogs.size >= CACHE_LIMIT) this.catalogs.clear();
    this.catalogs.set(key, cat);
    return cat;
  }

  /**
   * Writes a frame: a new one with `attribute_not_exists(pk)`; when it exists (a redelivery, or other
   * readings with the same time), reads it, keeps its entries (first write wins), appends the entries
   * of identities it does not hold and puts it back conditioned on its version. Returns the readings
   * newly stored.
   */
  private async putFrame(f: PendingFrame, cat: Catalog, result: WriteResult): Promise<EnrichedReading[]> {
    const pk = framePk(f.deviceId);
    const sk = frameSk(f.time, f.sub);
    const base: Item = {
      pk,
      sk,
      s: f.sub,
      t: f.time,
      p: f.header.p,
      dt: f.header.dt,
      expiresAt: this.expiresAt(f.time),
    };
    if (f.header.g !== undefined) base.g = f.header.g;
    if (f.header.si !== undefined) base.si = f.header.si;
    const fixed = itemBytes(base) + 8;
    let existing: Item | undefined;
    let catalog = cat;
    for (let attempt = 1; ; attempt++) {
      let entries: Array<Entry | number> = [];
      let column: Uint8Array = new Uint8Array(0);
      let fresh: Array<{ reading: EnrichedReading; entry: Entry | number; bin: Buffer | undefined }> = [];
      let duplicates = 0;
      let version = 0;
      const all = f.readings.map((reading, i) => ({
        reading,
        entry: f.entries[i] as Entry | number,
        bin: f.bins[i],
      }));
      if (existing !== undefined) {
        entries = JSON.parse(existing.x as string) as Array<Entry | number>;
        if (existing.b instanceof Uint8Array) column = existing.b;
        version = existing.v as number;
        const held = new Set<string>();
        for (const e of entries) {
          let metric = entryMetric(e, catalog);
          if (metric === undefined) {
            // Another writer appended definitions this instance has not seen yet.
            catalog = parseCatalog(
              await this.getItem('telemetry.write', devicePk(f.deviceId), catalogSk(f.sub)),
            );
            metric = entryMetric(e, catalog);
          }
          if (metric !== undefined) held.add(entryIdentity(metric, e));
        }
        for (const x of all) {
          if (held.has(readingIdentity(x.reading))) duplicates++;
          else fresh.push(x);
        }
      } else {
        fresh = all;
      }
      // Keep the frame under DynamoDB's item size: entries that do not fit are rejected.
      let bytes = fixed + Buffer.byteLength(JSON.stringify(entries), 'utf8') + column.byteLength;
      const fits: typeof fresh = [];
      const tooLarge: WriteResult['rejected'] = [];
      for (const x of fresh) {
        const size = Buffer.byteLength(JSON.stringify(x.entry), 'utf8') + 1 + (x.bin?.length ?? 0);
        if (bytes + size > MAX_PACKED_BYTES) {
          tooLarge.push({
            reading: x.reading,
            code: 'ITEM_TOO_LARGE',
            reason: `the readings of ${f.deviceId} at ${f.time} would exceed DynamoDB's 400 KB item limit`,
          });
          continue;
        }
        bytes += size;
        fits.push(x);
      }
      if (fits.length === 0) {
        result.duplicates += duplicates;
        result.rejected.push(...tooLarge);
        return [];
      }
      // Binary values stay in entry order: the stored ones, then the new ones.
      const b = Buffer.concat([column, ...fits.flatMap((x) => (x.bin === undefined ? [] : [x.bin]))]);
      const item: Item = {
        ...base,
        v: version + 1,
        x: JSON.stringify([...entries, ...fits.map((x) => x.entry)]),
      };
      if (b.length > 0) item.b = new Uint8Array(b);
      let ok: boolean;
      try {
        ok = await this.putIf('telemetry.write', {
          Item: item,
          ConditionExpression: existing === undefined ? 'attribute_not_exists(pk)' : 'v = :v',
          ...(existing === undefined ? {} : { ExpressionAttributeValues: { ':v': version } }),
        });
      } catch (error) {
        if (error instanceof DualpathError) throw error;
        // DynamoDB refused the item (ValidationException): report its readings, keep the rest.
        for (const x of fits)
          result.rejected.push({ reading: x.reading, code: 'DYNAMODB_REJECTED', reason: describe(error) });
        result.rejected.push(...tooLarge);
        result.duplicates += duplicates;
        return [];
      }
      if (ok) {
        result.written += fits.length;
        result.duplicates += duplicates;
        result.rejected.push(...tooLarge);
        return fits.map((x) => x.reading);
      }
      if (attempt >= this.maxAttempts) throw this.conflict('telemetry.write');
      existing = await this.getItem('telemetry.write', pk, sk);
    }
  }

  private async updateLatest(deviceId: string, sub: string, cat: Catalog, times: Map<string, number>) {
    const key = `${deviceId}\u0000${sub}`;
    const read = async (): Promise<LatestState> => {
      const item = await this.getItem('telemetry.latest', devicePk(deviceId), latestSk(sub));
      if (item === undefined) return { v: 0, times: new Map() };
      const catalog = await this.catalogFor(deviceId, sub, cat, item.x);
      return { v: item.v as number, times: parseLatest(item.x, catalog) };
    };
    let state = this.latestStates.get(key) ?? (await read());
    for (let attempt = 1; ; attempt++) {
      const next = new Map(state.times);
      let changed = false;
      for (const [metric, time] of times) {
        if ((next.get(metric) ?? -1) < time) {
          next.set(metric, time);
          changed = true;
        }
      }
      if (!changed) break;
      const ok = await this.putIf('telemetry.latest', {
        Item: {
          pk: devicePk(deviceId),
          sk: latestSk(sub),
          s: sub,
          v: state.v + 1,
          x: serializeLatest(next, cat),
        },
        ConditionExpression: state.v === 0 ? 'attribute_not_exists(pk)' : 'v = :v',
        ...(state.v === 0 ? {} : { ExpressionAttributeValues: { ':v': state.v } }),
      });
      if (ok) {
        state = { v: state.v + 1, times: next };
        break;
      }
      if (attempt >= this.maxAttempts) throw this.conflict('telemetry.latest');
      state = await read();
    }
    if (this.latestStates.size >= CACHE_LIMIT) this.latestStates.clear();
    this.latestStates.set(key, state);
  }

  /** A catalog that resolves every metric id in a latest item (re-read when ours is behind). */
  private async catalogFor(deviceId: string, sub: string, cat: Catalog, latestX: unknown): Promise<Catalog> {
    if (typeof latestX !== 'string') return cat;
    const ids = Object.values(JSON.parse(latestX) as Record<string, Array<number | string>>).flat();
    if (ids.every((id) => typeof id === 'string' || id < cat.metrics.length)) return cat;
    return parseCatalog(await this.getItem('telemetry.catalog', devicePk(deviceId), catalogSk(sub)));
  }

  /** Readings stored into an hour that closed more than the grace ago make that hour's chunk stale. */
  private async markLateChunks(stored: EnrichedReading[], now: number): Promise<void> {
    if (this.grace === undefined) return;
    const limit = now - this.grace;
    const marks = new Map<string, { deviceId: string; sub: string; metric: string; hour: number }>();
    for (const r of stored) {
      const hour = hourOf(r.time);
      if (hour + HOUR_MS > limit) continue;
      const sub = r.subDevice ?? '';
      marks.set(chunkPk(r.deviceId) + chunkSk(sub, r.metric, hour), {
        deviceId: r.deviceId,
        sub,
        metric: r.metric,
        hour,
      });
    }
    await pool([...marks.values()], this.concurrency, async (m) => {
      await this.send('telemetry.write', () =>
        this.o.client.send(
          new UpdateCommand({
            TableName: this.table,
            Key: { pk: chunkPk(m.deviceId), sk: chunkSk(m.sub, m.metric, m.hour) },
            UpdateExpression: 'ADD dirty :one SET expiresAt = :e REMOVE x',
            ExpressionAttributeValues: { ':one': 1, ':e': this.expiresAt(m.hour + HOUR_MS) },
          }),
        ),
      );
    });
  }

  // -------------------------------------------------------------------------------------------------
  // Reads

  /** Every item of a Query (all pages), without points whose TTL has passed. */
  private async *pages(what: string, input: Omit<QueryCommandInput, 'TableName'>): AsyncGenerator<Item[]> {
    const q = { ...input, TableName: this.table };
    for (;;) {
      const out = await this.send(what, () => this.o.client.send(new QueryCommand(q)));
      yield (out.Items ?? []) as Item[];
      if (out.LastEvaluatedKey === undefined) return;
      q.ExclusiveStartKey = out.LastEvaluatedKey;
    }
  }

  /**
   * A catalog read again on the query path (another writer extended it since the device's Query): a
   * consistent Query of its one key, so reads need only the Query permission the API already has.
   */
  private async readCatalog(deviceId: string, sub: string): Promise<Item | undefined> {
    for await (const items of this.pages('telemetry.query', {
      KeyConditionExpression: 'pk = :pk AND sk = :sk',
      ExpressionAttributeValues: { ':pk': devicePk(deviceId), ':sk': catalogSk(sub) },
      ConsistentRead: true,
    }))
      if (items[0]) return items[0];
    return undefined;
  }

  /** The device's catalogs and latest items, by sub-device (one Query). */
  private async device(deviceId: string, consistent = false): Promise<DeviceState> {
    const state: DeviceState = { catalogs: new Map(), latest: new Map() };
    const input: Omit<QueryCommandInput, 'TableName'> = {
      KeyConditionExpression: 'pk = :pk',
      ExpressionAttributeValues: { ':pk': devicePk(deviceId) },
      ...(consistent ? { ConsistentRead: true } : {}),
    };
    for await (const items of this.pages('telemetry.query', input)) {
      for (const item of items) {
        const sk = item.sk as string;
        if (sk.startsWith('C#')) state.catalogs.set(item.s as string, parseCatalog(item));
        else if (sk.startsWith('L#')) state.latest.set(item.s as string, item);
      }
    }
    return state;
  }

  /** Points of a frame item (all metrics), sorted by (metric, row, index); re-reads a stale catalog. */
  private async framePoints(deviceId: string, item: Item, dev: DeviceState): Promise<StoredPoint[]> {
    const sub = item.s as string;
    const frame = { deviceId, sub, time: item.t as number, header: frameHeaderOfItem(item) };
    const entries = JSON.parse(item.x as string) as Array<Entry | number>;
    const values = readBinaryValues(entries, item.b instanceof Uint8Array ? item.b : undefined);
    let cat = dev.catalogs.get(sub) ?? emptyCatalog();
    const out: StoredPoint[] = [];
    for (const [i, e] of entries.entries()) {
      let p = decodeEntry(e, frame, cat, values[i]);
      if (p === undefined) {
        cat = parseCatalog(await this.readCatalog(deviceId, sub));
        dev.catalogs.set(sub, cat);
        p = decodeEntry(e, frame, cat, values[i]);
        if (p === undefined) {
          throw new TransientError(
            'TELEMETRY_CATALOG',
            `no definition ${String(typeof e === 'number' ? e : e[0])}`,
          );
        }
      }
      out.push(p);
    }
    return out.sort((a, b) => comparePointKeys(pointKeyOf(a), pointKeyOf(b)));
  }

  async queryRaw(q: RawQuery): Promise<{ points: StoredPoint[]; nextToken?: string }> {
    const { limit, order, after } = checkRawQuery(q);
    if (q.to <= q.from) return { points: [] };
    const dev = await this.device(q.deviceId, q.consistent === true);
    if (dev.catalogs.size === 0) return { points: [] };
    let lo = frameSkLow(q.from);
    let hi = frameSkHigh(q.to - 1);
    if (after !== undefined) {
      // The cursor's frame is read again (its later points follow the cursor); earlier ones are skipped.
      const bound = frameSk(after.time, after.subDevice);
      if (order === 'asc' && bound > lo) lo = bound;
      if (order === 'desc' && bound < hi) hi = bound;
    }
    if (lo > hi) return { points: [] };
    const input: Omit<QueryCommandInput, 'TableName'> = {
      KeyConditionExpression: 'pk = :pk AND sk BETWEEN :lo AND :hi',
      ExpressionAttributeValues: { ':pk': framePk(q.deviceId), ':lo': lo, ':hi': hi },
      ScanIndexForward: order === 'asc',
      ...(q.consistent ? { ConsistentRead: true } : {}),
    };
    if (q.subDevice !== undefined) {
      input.FilterExpression = 's = :s';
      (input.ExpressionAttributeValues as Item)[':s'] = q.subDevice;
    }
    // Every frame holds at least one point: without a metric filter, limit + 1 frames are enough.
    if (q.metric === undefined) input.Limit = Math.min(limit + 1, 1000);
    const sign = order === 'asc' ? 1 : -1;
    const nowSeconds = Math.floor(this.clock() / 1000);
    const out: StoredPoint[] = [];
    scan: for await (const items of this.pages('telemetry.query', input)) {
      for (const item of items) {
        if (this.expired(item.t as number, nowSeconds)) continue;
        const points = await this.framePoints(q.deviceId, item, dev);
        if (order === 'desc') points.reverse();
        for (const p of points) {
          if (q.metric !== undefined && p.metric !== q.metric) continue;
          if (after !== undefined && sign * comparePointKeys(pointKeyOf(p), after) <= 0) continue;
          out.push(p);
          if (out.length > limit) break scan;
        }
      }
    }
    const points = out.slice(0, limit);
    const last = points.at(-1);
    return out.length > limit && last !== undefined
      ? { points, nextToken: encodeCursor(pointKeyOf(last)) }
      : { points };
  }

  async queryBuckets(q: BucketQuery): Promise<Bucket[]> {
    checkBucketQuery(q);
    if (q.to <= q.from) return [];
    const dev = await this.device(q.deviceId);
    const subs = [...dev.catalogs.entries()]
      .filter(([sub, cat]) =>
        q.subDevice !== undefined
          ? sub === q.subDevice
          : cat.metricIds.has(q.metric) || cat.bytes + 4096 > MAX_CATALOG_BYTES,
      )
      .map(([sub]) => sub);
    if (subs.length === 0) return [];
    const now = this.clock();
    const nowSeconds = Math.floor(now / 1000);
    // Hours closed longer than the grace come from chunks; the rest of the range from frames.
    const firstHour = hourOf(q.from);
    let openFrom = q.from;
    const closed: number[] = [];
    if (this.grace !== undefined) {
      for (let h = firstHour; h < q.to && h + HOUR_MS <= now - this.grace; h += HOUR_MS) closed.push(h);
      if (closed.length > 0) openFrom = Math.max(q.from, (closed.at(-1) as number) + HOUR_MS);
    }
    const points: StoredPoint[] = [];
    const cap = this.maxBucketPoints;
    const add = (ps: StoredPoint[]): void => {
      for (const p of ps) {
        if (p.time < q.from || p.time >= q.to || this.expired(p.time, nowSeconds)) continue;
        points.push(p);
      }
      if (points.length > cap) {
        throw new ValidationError(
          `the range holds more than ${cap} points for this metric; narrow from/to (the DynamoDB store ` +
            'aggregates in the function)',
          { field: 'from', code: 'RANGE_TOO_LARGE' },
        );
      }
    };
    await pool(subs, this.concurrency, async (sub) => {
      if (closed.length > 0) add(await this.chunkPoints(q.deviceId, sub, q.metric, closed, dev));
      if (openFrom < q.to) {
        add(await this.seriesFromFrames(q.deviceId, sub, q.metric, openFrom, q.to, dev));
      }
    });
    return aggregateBuckets(points, q);
  }

  /** One series' points in [from, to), read from the frames. */
  private async seriesFromFrames(
    deviceId: string,
    sub: string,
    metric: string,
    from: number,
    to: number,
    dev: DeviceState,
  ): Promise<StoredPoint[]> {
    const input: Omit<QueryCommandInput, 'TableName'> = {
      KeyConditionExpression: 'pk = :pk AND sk BETWEEN :lo AND :hi',
      FilterExpression: 's = :s',
      ExpressionAttributeValues: {
        ':pk': framePk(deviceId),
        ':lo': frameSkLow(from),
        ':hi': frameSkHigh(to - 1),
        ':s': sub,
      },
    };
    const out: StoredPoint[] = [];
    for await (const items of this.pages('telemetry.buckets', input)) {
      for (const item of items) {
        for (const p of await this.framePoints(deviceId, item, dev)) if (p.metric === metric) out.push(p);
        if (out.length > this.maxBucketPoints) return out;
      }
    }
    return out;
  }

  /** One series' points in the given closed hours: from their chunks, building the missing ones. */
  private async chunkPoints(
    deviceId: string,
    sub: string,
    metric: string,
    hours: number[],
    dev: DeviceState,
  ): Promise<StoredPoint[]> {
    const prefix = chunkPrefix(sub, metric);
    const found = new Map<number, Item>();
    const input: Omit<QueryCommandInput, 'TableName'> = {
      KeyConditionExpression: 'pk = :pk AND sk BETWEEN :lo AND :hi',
      ExpressionAttributeValues: {
        ':pk': chunkPk(deviceId),
        ':lo': prefix + padTime(hours[0] as number),
        ':hi': prefix + padTime(hours.at(-1) as number),
      },
    };
    for await (const items of this.pages('telemetry.buckets', input)) {
      for (const item of items) found.set(Number((item.sk as string).slice(prefix.length)), item);
    }
    const out: StoredPoint[] = [];
    const missing: number[] = [];
    for (const h of hours) {
      const item = found.get(h);
      if (item !== undefined && typeof item.x === 'string') {
        for (const c of JSON.parse(item.x) as ChunkPoint[])
          out.push(fromChunkPoint(c, h, deviceId, sub, metric));
      } else missing.push(h);
    }
    // Missing hours are read from the frames in runs of consecutive hours, each run split into at most
    // `concurrency` parallel Queries; then every hour read is stored as a chunk (empty hours too, unless
    // the gap is longer than MAX_EMPTY_CHUNK_HOURS: a sparse series then stays on the frames).
    const pieces: Array<[number, number]> = [];
    for (let i = 0; i < missing.length; ) {
      let j = i;
      while (j + 1 < missing.length && (missing[j + 1] as number) === (missing[j] as number) + HOUR_MS) j++;
      const run = j - i + 1;
      const per = Math.ceil(run / this.concurrency);
      for (let k = i; k <= j; k += per) pieces.push([missing[k] as number, Math.min(k + per - 1, j) - k + 1]);
      i = j + 1;
    }
    const keepEmpty = missing.length <= MAX_EMPTY_CHUNK_HOURS;
    await pool(pieces, this.concurrency, async ([start, count]) => {
      const points = await this.seriesFromFrames(deviceId, sub, metric, start, start + count * HOUR_MS, dev);
      out.push(...points);
      if (out.length > this.maxBucketPoints) return;
      const byHour = new Map<number, StoredPoint[]>();
      for (let h = start; h < start + count * HOUR_MS; h += HOUR_MS) if (keepEmpty) byHour.set(h, []);
      for (const p of points) {
        const h = hourOf(p.time);
        const list = byHour.get(h) ?? [];
        list.push(p);
        byHour.set(h, list);
      }
      await pool([...byHour.entries()], this.concurrency, async ([h, ps]) => {
        const x = JSON.stringify(ps.map((p) => toChunkPoint(p, h)));
        if (x.length > MAX_PACKED_BYTES) return; // too dense to cache: this hour stays on the frames
        const dirty = found.get(h)?.dirty;
        // Stored only if no late write marked the hour since we looked (the mark bumps `dirty`). A cache:
        // when the put fails (throttled, denied) the query still answers from the points it read.
        await this.putIf('telemetry.buckets', {
          Item: {
            pk: chunkPk(deviceId),
            sk: chunkSk(sub, metric, h),
            x,
            ...(dirty === undefined ? {} : { dirty }),
            expiresAt: this.expiresAt(h + HOUR_MS),
          },
          ConditionExpression:
            dirty === undefined ? 'attribute_not_exists(pk)' : 'attribute_not_exists(x) AND dirty = :d',
          ...(dirty === undefined ? {} : { ExpressionAttributeValues: { ':d': dirty } }),
        }).catch(() => false);
      });
    });
    return out;
  }

  async latest(q: LatestQuery): Promise<StoredPoint[]> {
    checkLatestQuery(q);
    const dev = await this.device(q.deviceId);
    const nowSeconds = Math.floor(this.clock() / 1000);
    const wanted = new Map<string, { sub: string; time: number; metrics: Set<string> }>();
    for (const [sub, item] of dev.latest) {
      if (q.subDevice !== undefined && sub !== q.subDevice) continue;
      let cat = dev.catalogs.get(sub) ?? emptyCatalog();
      cat = await this.catalogFor(q.deviceId, sub, cat, item.x);
      for (const [metric, time] of parseLatest(item.x, cat)) {
        if (q.since !== undefined && time < q.since) continue;
        if (this.expired(time, nowSeconds)) continue;
        const key = frameSk(time, sub);
        let w = wanted.get(key);
        if (w === undefined) {
          w = { sub, time, metrics: new Set() };
          wanted.set(key, w);
        }
        w.metrics.add(metric);
      }
    }
    const frames = await this.batchGetFrames(q.deviceId, [...wanted.keys()]);
    const out: StoredPoint[] = [];
    for (const item of frames) {
      const w = wanted.get(item.sk as string);
      if (w === undefined) continue;
      for (const p of await this.framePoints(q.deviceId, item, dev)) {
        if (!p.historical && w.metrics.has(p.metric)) out.push(p);
      }
    }
    return out.sort((a, b) => {
      const ka = pointKeyOf(a);
      const kb = pointKeyOf(b);
      if (ka.subDevice !== kb.subDevice) return ka.subDevice < kb.subDevice ? -1 : 1;
      if (ka.metric !== kb.metric) return ka.metric < kb.metric ? -1 : 1;
      return ka.row - kb.row || ka.index - kb.index;
    });
  }

  /** Frame items by sort key (BatchGetItem of ≤ 100, eventually consistent; unprocessed keys re-sent). */
  private async batchGetFrames(deviceId: string, sks: string[]): Promise<Item[]> {
    const pk = framePk(deviceId);
    const chunks: string[][] = [];
    for (let i = 0; i < sks.length; i += 100) chunks.push(sks.slice(i, i + 100));
    const out: Item[] = [];
    await pool(chunks, this.concurrency, async (chunk) => {
      let keys: Item[] = chunk.map((sk) => ({ pk, sk }));
      for (let attempt = 1; ; attempt++) {
        const request = keys;
        const res = await this.send('telemetry.latest', () =>
          this.o.client.send(new BatchGetCommand({ RequestItems: { [this.table]: { Keys: request } } })),
        );
        out.push(...((res.Responses?.[this.table] ?? []) as Item[]));
        keys = (res.UnprocessedKeys?.[this.table]?.Keys ?? []) as Item[];
        if (keys.length === 0) return;
        if (attempt >= this.maxAttempts) {
          throw new TransientError(
            'TELEMETRY_UNPROCESSED',
            `telemetry.latest: ${keys.length} keys still unprocessed after ${attempt} BatchGetItem attempts`,
          );
        }
        await this.sleep(this.backoff(attempt - 1));
      }
    });
    return out;
  }

  async close(): Promise<void> {}
}

/** The catalog id of a reading's definition, or the definition inline when the catalog lacks it. */
function defRef(cat: Catalog, r: EnrichedReading): number | InlineDef {
  const unit = r.unit ?? null;
  const name = r.name ?? null;
  return cat.defIds.get(defKey(r.metric, r.type, unit, name)) ?? [r.metric, r.type, unit, name];
}

/** Upper estimate of an item's stored size (attribute names + UTF-8 values; numbers as 21 bytes). */
function itemBytes(item: Item): number {
  let n = 0;
  for (const [k, v] of Object.entries(item)) {
    n += k.length + (typeof v === 'string' ? Buffer.byteLength(v, 'utf8') : 21);
  }
  return n;
}

function mapError(error: unknown, what: string): unknown {
  const name = (error as Error | undefined)?.name;
  if (name === 'ResourceNotFoundException' || name === 'AccessDeniedException') {
    return new TransientError('TELEMETRY_UNAVAILABLE', `${what}: ${name}: ${(error as Error).message}`, {
      cause: error,
    });
  }
  return mapAwsError(error, what);
}

function describe(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}
