/**
 * TelemetryStore on DynamoDB: the telemetry option that deploys in every AWS account (Timestream for
 * LiveAnalytics is closed to accounts that were not customers before 2025-06-20). ADR 0011.
 *
 * One table (pk S, sk S, TTL `expiresAt` in epoch seconds), three item kinds:
 *   point   pk `P#{dev}#{sub}#{metric}`  sk `{time:16}#{row+1}{index+1}`    one item per reading
 *   latest  pk `D#{dev}`  sk `L#{sub}#{metric}#{row+1}{index+1}`           newest non-historical point
 *   series  pk `D#{dev}`  sk `H#{sub}#{metric}`                            a series seen in history
 * `{dev}` and `{sub}` are escaped (`%` → `%25`, `#` → `%23`) and the metric comes last, so no two
 * identities share a key whatever the names hold; `{row+1}` and `{index+1}` are length-prefixed decimals
 * (`1`..`g` then the digits), so the lexical order of sk is the (time, row, index) order.
 *
 * Port semantics (ADR 0007) as the other adapters: first write of an identity wins and later ones count
 * as duplicates (default `checked` mode: BatchGetItem finds stored identities, BatchWriteItem writes the
 * rest; `conditional` and `batch` modes trade speed and exactness differently, ADR 0011),
 * transient readings skipped, historical readings never in `latest`, half-open ranges, the key cursor,
 * buckets computed with the core reference aggregation over the range (bounded).
 */
import {
  BatchGetCommand,
  BatchWriteCommand,
  type DynamoDBDocumentClient,
  PutCommand,
  type PutCommandInput,
  QueryCommand,
  type QueryCommandInput,
} from '@aws-sdk/lib-dynamodb';
import { DualpathError, TransientError, ValidationError } from '../core/errors.js';
import type { EnrichedReading, Protocol, Quality } from '../core/reading.js';
import {
  aggregateBuckets,
  type Bucket,
  type BucketQuery,
  checkBucketQuery,
  checkLatestQuery,
  checkRawQuery,
  comparePointKeys,
  decodeValue,
  encodeCursor,
  encodeValue,
  type LatestQuery,
  type PointKey,
  pointKeyOf,
  prepareWrite,
  type RawQuery,
  type StoredPoint,
  type TelemetryStore,
  type WriteResult,
} from '../core/telemetry.js';
import { mapAwsError } from './dynamo-errors.js';

/** The table this adapter needs (the CDK stack and the local stack create it from this). */
export const TELEMETRY_TABLE_SCHEMA = {
  partitionKey: { name: 'pk', type: 'S' },
  sortKey: { name: 'sk', type: 'S' },
  ttlAttribute: 'expiresAt',
  billingMode: 'PAY_PER_REQUEST',
} as const;

export type DynamoTelemetryWriteMode = 'checked' | 'conditional' | 'batch';

export interface DynamoTelemetryStoreOptions {
  client: DynamoDBDocumentClient;
  tableName: string;
  /** Points expire (DynamoDB TTL) this many days after their time; older readings are rejected. 365. */
  retentionDays?: number;
  /** Requests in flight per call (PutItem or BatchWriteItem of 25, Query per series). Default 16. */
  concurrency?: number;
  /**
   * How points are written (ADR 0011):
   * - `checked` (default): BatchGetItem (100 keys, consistent read) finds identities already stored, then
   *   BatchWriteItem (25) writes the rest: first write wins and duplicates are counted, at batch speed;
   *   two writers racing on the same new identity both write it (last wins).
   * - `conditional`: one PutItem per point with `attribute_not_exists(pk)`: exact even under races,
   *   one request per point.
   * - `batch`: BatchWriteItem only: a re-write overwrites the stored point and counts as written.
   */
  writeMode?: DynamoTelemetryWriteMode;
  /** Most points a bucket query reads before asking for a narrower range. Default 200,000. */
  maxBucketPoints?: number;
  /** Attempts per request on throttling / 5xx / unprocessed items before a TransientError. Default 5. */
  maxAttempts?: number;
  sleep?: (ms: number) => Promise<void>;
  /** Epoch ms now: retention checks and hiding points whose TTL passed but are not yet deleted. */
  clock?: () => number;
  /** [0, 1) for backoff jitter. */
  random?: () => number;
}

type Item = Record<string, unknown>;

export const DEFAULT_RETENTION_DAYS = 365;
export const DEFAULT_MAX_BUCKET_POINTS = 200_000;
const DAY_MS = 86_400_000;
/** DynamoDB's item limit is 400 KB; leave room for names, keys and attribute overhead. */
const MAX_ITEM_BYTES = 380_000;
const QUERY_PAGE_MAX = 1000;
/** Upper bound sentinel: sorts after every character a sort key holds after its time prefix. */
const HIGH = '~';

// ---------------------------------------------------------------------------------------------------
// Keys

/** Escapes `%` and `#` so a device or sub-device id never contains the key separator. */
export function escapeKeyPart(s: string): string {
  return s.replace(/%/g, '%25').replace(/#/g, '%23');
}

const padTime = (t: number): string => String(t).padStart(16, '0');

/** Order-preserving decimal for a non-negative safe integer: its digit count in base 36, then digits. */
function ordinal(n: number): string {
  const digits = String(n);
  return digits.length.toString(36) + digits;
}

export function pointPk(deviceId: string, subDevice: string, metric: string): string {
  return `P#${escapeKeyPart(deviceId)}#${escapeKeyPart(subDevice)}#${metric}`;
}

export function pointSk(k: Pick<PointKey, 'time' | 'row' | 'index'>): string {
  return `${padTime(k.time)}#${ordinal(k.row + 1)}${ordinal(k.index + 1)}`;
}

export function devicePk(deviceId: string): string {
  return `D#${escapeKeyPart(deviceId)}`;
}

function latestSk(k: PointKey): string {
  return `L#${escapeKeyPart(k.subDevice)}#${k.metric}#${ordinal(k.row + 1)}${ordinal(k.index + 1)}`;
}

function seriesSk(subDevice: string, metric: string): string {
  return `H#${escapeKeyPart(subDevice)}#${metric}`;
}

// ---------------------------------------------------------------------------------------------------
// Items

/**
 * Attributes (short names: they are stored in every item): d device, s sub-device ('' = node level),
 * m metric, t time (ms), r row, i index (-1 = absent), vk value kind, vd double as shortest round-trip
 * text, vb int64 as decimal text, vt text slot, vo bool slot, ty type, q quality, h historical,
 * p protocol, dt device type, u unit, n name, g group, si site, expiresAt TTL (epoch s).
 * Numbers in values are stored as strings: DynamoDB numbers cannot hold every double (range ±1e126,
 * -0) and the document client refuses integers beyond 2^53.
 */
function toItem(r: EnrichedReading, expiresAt: number): Item {
  const k = pointKeyOf(r);
  const v = encodeValue(r.value);
  const item: Item = {
    pk: pointPk(r.deviceId, k.subDevice, k.metric),
    sk: pointSk(k),
    d: r.deviceId,
    s: k.subDevice,
    m: k.metric,
    t: k.time,
    r: k.row,
    i: k.index,
    vk: v.kind,
    ty: r.type,
    q: r.quality,
    h: r.historical,
    p: r.protocol,
    dt: r.enrichment.deviceType,
    expiresAt,
  };
  if (v.double !== undefined) item.vd = Object.is(v.double, -0) ? '-0' : String(v.double);
  if (v.bigint !== undefined) item.vb = v.bigint.toString();
  if (v.text !== undefined) item.vt = v.text;
  if (v.bool !== undefined) item.vo = v.bool;
  if (r.unit !== undefined) item.u = r.unit;
  if (r.name !== undefined) item.n = r.name;
  if (r.group !== undefined) item.g = r.group;
  if (r.enrichment.site !== undefined) item.si = r.enrichment.site;
  return item;
}

function fromItem(i: Item): StoredPoint {
  const p: StoredPoint = {
    deviceId: i.d as string,
    metric: i.m as string,
    time: i.t as number,
    value: decodeValue(i.vk as string, {
      double: typeof i.vd === 'string' ? Number(i.vd) : null,
      bigint: typeof i.vb === 'string' ? BigInt(i.vb) : null,
      text: typeof i.vt === 'string' ? i.vt : null,
      bool: typeof i.vo === 'boolean' ? i.vo : null,
    }),
    type: i.ty as string,
    quality: i.q as Quality,
    historical: i.h === true,
    protocol: i.p as Protocol,
    deviceType: i.dt as string,
  };
  if (i.s !== '') p.subDevice = i.s as string;
  if (typeof i.g === 'string') p.group = i.g;
  if (typeof i.n === 'string') p.name = i.n;
  if (typeof i.u === 'string') p.unit = i.u;
  if ((i.r as number) >= 0) p.row = i.r as number;
  if ((i.i as number) >= 0) p.index = i.i as number;
  if (typeof i.si === 'string') p.site = i.si;
  return p;
}

/** Upper estimate of an item's stored size (attribute names + UTF-8 values). */
function itemBytes(item: Item): number {
  let n = 0;
  for (const [k, v] of Object.entries(item)) {
    n += k.length + (typeof v === 'string' ? Buffer.byteLength(v, 'utf8') : 22);
  }
  return n;
}

const keyOfPoint = (p: StoredPoint): PointKey => pointKeyOf(p);

/** (subDevice, metric) order as comparePointKeys uses it. */
function compareSeries(a: { sub: string; metric: string }, b: { sub: string; metric: string }): number {
  if (a.sub !== b.sub) return a.sub < b.sub ? -1 : 1;
  if (a.metric !== b.metric) return a.metric < b.metric ? -1 : 1;
  return 0;
}

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

interface Series {
  sub: string;
  metric: string;
}

/** One series' share of a raw query: a key range read page by page, in the query's order. */
interface SeriesReader {
  series: Series;
  input: QueryCommandInput;
  buffer: StoredPoint[];
  pos: number;
  done: boolean;
}

// ---------------------------------------------------------------------------------------------------

export class DynamoTelemetryStore implements TelemetryStore {
  private readonly table: string;
  private readonly retentionMs: number;
  private readonly concurrency: number;
  private readonly writeMode: DynamoTelemetryWriteMode;
  private readonly maxBucketPoints: number;
  private readonly maxAttempts: number;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly clock: () => number;
  private readonly random: () => number;
  /** Series items already written by this instance, with their expiry (skips repeated writes). */
  private readonly knownSeries = new Map<string, number>();

  constructor(private readonly o: DynamoTelemetryStoreOptions) {
    const days = o.retentionDays ?? DEFAULT_RETENTION_DAYS;
    if (!Number.isFinite(days) || days <= 0) {
      throw new ValidationError('retentionDays must be a positive number', { field: 'retentionDays' });
    }
    const concurrency = o.concurrency ?? 16;
    if (!Number.isSafeInteger(concurrency) || concurrency < 1) {
      throw new ValidationError('concurrency must be a positive integer', { field: 'concurrency' });
    }
    const mode = o.writeMode ?? 'checked';
    if (mode !== 'checked' && mode !== 'conditional' && mode !== 'batch') {
      throw new ValidationError('writeMode must be checked, conditional or batch', { field: 'writeMode' });
    }
    if (typeof o.tableName !== 'string' || o.tableName.length === 0) {
      throw new ValidationError('tableName must be a non-empty string', { field: 'tableName' });
    }
    this.table = o.tableName;
    this.retentionMs = Math.round(days * DAY_MS);
    this.concurrency = concurrency;
    this.writeMode = mode;
    this.maxBucketPoints = o.maxBucketPoints ?? DEFAULT_MAX_BUCKET_POINTS;
    this.maxAttempts = Math.max(1, o.maxAttempts ?? 5);
    this.sleep = o.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms)));
    this.clock = o.clock ?? Date.now;
    this.random = o.random ?? Math.random;
  }

  /** TTL of a point at `time`: epoch seconds. */
  private expiresAt(time: number): number {
    return Math.floor((time + this.retentionMs) / 1000);
  }

  private backoff(attempt: number): number {
    const cap = Math.min(2000, 50 * 2 ** attempt);
    return Math.round(cap / 2 + (cap / 2) * this.random());
  }

  /** Sends with retries on throttling / 5xx; other errors are mapped and thrown at once. */
  private async send<T>(what: string, call: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await call();
      } catch (error) {
        if ((error as Error | undefined)?.name === 'ConditionalCheckFailedException') throw error;
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
    const horizon = this.clock() - this.retentionMs;
    const rows: Array<{ reading: EnrichedReading; item: Item }> = [];
    for (const reading of prepared.accepted) {
      if (reading.time < horizon) {
        result.rejected.push({
          reading,
          code: 'OUTSIDE_RETENTION',
          reason: `time ${reading.time} is older than the ${this.retentionMs / DAY_MS}-day retention`,
        });
        continue;
      }
      let item: Item;
      try {
        item = toItem(reading, this.expiresAt(reading.time));
      } catch (error) {
        const reason = error instanceof DualpathError ? error.message : String(error);
        result.rejected.push({ reading, code: 'INVALID_READING', reason });
        continue;
      }
      const bytes = itemBytes(item);
      if (bytes > MAX_ITEM_BYTES) {
        result.rejected.push({
          reading,
          code: 'ITEM_TOO_LARGE',
          reason: `value makes a ${bytes}-byte item; DynamoDB items are limited to 400 KB`,
        });
        continue;
      }
      rows.push({ reading, item });
    }
    if (rows.length === 0) return result;

    if (this.writeMode === 'conditional') await this.putConditional(rows, result);
    else if (this.writeMode === 'batch') await this.putBatches(rows, result);
    else {
      const stored = await this.storedKeys(rows.map((row) => row.item));
      const fresh = rows.filter((row) => !stored.has(`${row.item.pk}\u0000${row.item.sk}`));
      result.duplicates += rows.length - fresh.length;
      await this.putBatches(fresh, result);
    }

    await this.updateSeriesItems(rows.map((row) => row.reading));
    return result;
  }

  private async putConditional(
    rows: Array<{ reading: EnrichedReading; item: Item }>,
    result: WriteResult,
  ): Promise<void> {
    await pool(rows, this.concurrency, async ({ reading, item }) => {
      try {
        await this.send('telemetry.write', () =>
          this.o.client.send(
            new PutCommand({
              TableName: this.table,
              Item: item,
              ConditionExpression: 'attribute_not_exists(pk)',
            }),
          ),
        );
        result.written++;
      } catch (error) {
        if ((error as Error).name === 'ConditionalCheckFailedException') {
          result.duplicates++;
          return;
        }
        if (error instanceof DualpathError) throw error;
        // DynamoDB refused this one item (ValidationException): report it, keep the rest.
        result.rejected.push({ reading, code: 'DYNAMODB_REJECTED', reason: describe(error) });
      }
    });
  }

  private async putBatches(
    rows: Array<{ reading: EnrichedReading; item: Item }>,
    result: WriteResult,
  ): Promise<void> {
    const chunks: Array<typeof rows> = [];
    for (let i = 0; i < rows.length; i += 25) chunks.push(rows.slice(i, i + 25));
    await pool(chunks, this.concurrency, async (chunk) => {
      try {
        await this.batchWrite(chunk.map((row) => row.item));
        result.written += chunk.length;
      } catch (error) {
        if (error instanceof DualpathError) throw error;
        // One bad item fails its whole BatchWriteItem: isolate it with single puts.
        for (const { reading, item } of chunk) {
          try {
            await this.send('telemetry.write', () =>
              this.o.client.send(new PutCommand({ TableName: this.table, Item: item })),
            );
            result.written++;
          } catch (single) {
            if (single instanceof DualpathError) throw single;
            result.rejected.push({ reading, code: 'DYNAMODB_REJECTED', reason: describe(single) });
          }
        }
      }
    });
  }

  /** Keys (`pk\0sk`) of the given items already in the table: BatchGetItem of ≤ 100, consistent reads. */
  private async storedKeys(items: Item[]): Promise<Set<string>> {
    const found = new Set<string>();
    const chunks: Item[][] = [];
    for (let i = 0; i < items.length; i += 100) chunks.push(items.slice(i, i + 100));
    await pool(chunks, this.concurrency, async (chunk) => {
      let keys: Array<Record<string, unknown>> = chunk.map((item) => ({ pk: item.pk, sk: item.sk }));
      for (let attempt = 1; ; attempt++) {
        const request = keys;
        const out = await this.send('telemetry.write', () =>
          this.o.client.send(
            new BatchGetCommand({
              RequestItems: {
                [this.table]: { Keys: request, ConsistentRead: true, ProjectionExpression: 'pk, sk' },
              },
            }),
          ),
        );
        for (const got of out.Responses?.[this.table] ?? []) found.add(`${got.pk}\u0000${got.sk}`);
        keys = out.UnprocessedKeys?.[this.table]?.Keys ?? [];
        if (keys.length === 0) break;
        if (attempt >= this.maxAttempts) {
          throw new TransientError(
            'TELEMETRY_UNPROCESSED',
            `telemetry.write: ${keys.length} keys still unprocessed after ${attempt} BatchGetItem attempts`,
          );
        }
        await this.sleep(this.backoff(attempt - 1));
      }
    });
    return found;
  }

  /** BatchWriteItem of ≤ 25 items; UnprocessedItems are re-sent with backoff. */
  private async batchWrite(items: Item[]): Promise<void> {
    let pending: Array<{ PutRequest: { Item: Item } }> = items.map((Item) => ({ PutRequest: { Item } }));
    for (let attempt = 1; ; attempt++) {
      const batch = pending;
      const out = await this.send('telemetry.write', () =>
        this.o.client.send(new BatchWriteCommand({ RequestItems: { [this.table]: batch } })),
      );
      pending = (out.UnprocessedItems?.[this.table] ?? []) as typeof pending;
      if (pending.length === 0) return;
      if (attempt >= this.maxAttempts) {
        throw new TransientError(
          'TELEMETRY_UNPROCESSED',
          `telemetry.write: ${pending.length} items still unprocessed after ${attempt} BatchWriteItem attempts`,
        );
      }
      await this.sleep(this.backoff(attempt - 1));
    }
  }

  /**
   * Latest items (newest non-historical point per series, row and index; a put conditioned on a strictly
   * older stored time, so a late or repeated point never replaces a newer one) and series items for
   * series seen in historical points (so device-wide queries find series that have no latest item).
   */
  private async updateSeriesItems(readings: EnrichedReading[]): Promise<void> {
    const latest = new Map<string, EnrichedReading>();
    const history = new Map<string, { sub: string; metric: string; deviceId: string; expiresAt: number }>();
    for (const r of readings) {
      const k = pointKeyOf(r);
      if (r.historical) {
        const id = `${r.deviceId}\u0000${k.subDevice}\u0000${k.metric}`;
        const expiresAt = this.expiresAt(r.time);
        const cur = history.get(id);
        if (cur === undefined || cur.expiresAt < expiresAt) {
          history.set(id, { sub: k.subDevice, metric: k.metric, deviceId: r.deviceId, expiresAt });
        }
        continue;
      }
      const id = `${r.deviceId}\u0000${k.subDevice}\u0000${k.metric}\u0000${k.row}\u0000${k.index}`;
      const cur = latest.get(id);
      if (cur === undefined || r.time > cur.time) latest.set(id, r);
    }
    const puts: PutCommandInput[] = [];
    for (const r of latest.values()) {
      const item = toItem(r, this.expiresAt(r.time));
      puts.push({
        TableName: this.table,
        Item: { ...item, pk: devicePk(r.deviceId), sk: latestSk(pointKeyOf(r)) },
        ConditionExpression: 'attribute_not_exists(pk) OR t < :t',
        ExpressionAttributeValues: { ':t': r.time },
      });
    }
    const seriesIds: Array<[string, number]> = [];
    for (const [id, s] of history) {
      if ((this.knownSeries.get(id) ?? -1) >= s.expiresAt) continue;
      seriesIds.push([id, s.expiresAt]);
      puts.push({
        TableName: this.table,
        Item: {
          pk: devicePk(s.deviceId),
          sk: seriesSk(s.sub, s.metric),
          s: s.sub,
          m: s.metric,
          expiresAt: s.expiresAt,
        },
        ConditionExpression: 'attribute_not_exists(pk) OR expiresAt < :e',
        ExpressionAttributeValues: { ':e': s.expiresAt },
      });
    }
    await pool(puts, this.concurrency, async (input) => {
      try {
        await this.send('telemetry.latest', () => this.o.client.send(new PutCommand(input)));
      } catch (error) {
        if ((error as Error).name !== 'ConditionalCheckFailedException')
          throw mapError(error, 'telemetry.latest');
      }
    });
    if (this.knownSeries.size > 50_000) this.knownSeries.clear();
    for (const [id, expiresAt] of seriesIds) this.knownSeries.set(id, expiresAt);
  }

  // -------------------------------------------------------------------------------------------------
  // Reads

  /** Items of one Query page, without points whose TTL has passed but are not yet deleted. */
  private async queryPage(
    what: string,
    input: QueryCommandInput,
  ): Promise<{ items: Item[]; next?: Record<string, unknown> }> {
    const out = await this.send(what, () => this.o.client.send(new QueryCommand(input)));
    const now = Math.floor(this.clock() / 1000);
    const items = ((out.Items ?? []) as Item[]).filter(
      (i) => typeof i.expiresAt !== 'number' || i.expiresAt > now,
    );
    return out.LastEvaluatedKey ? { items, next: out.LastEvaluatedKey } : { items };
  }

  /** All items of the device partition whose sk starts with `prefix`. */
  private async deviceItems(deviceId: string, prefix: string): Promise<Item[]> {
    const input: QueryCommandInput = {
      TableName: this.table,
      KeyConditionExpression: 'pk = :pk AND begins_with(sk, :prefix)',
      ExpressionAttributeValues: { ':pk': devicePk(deviceId), ':prefix': prefix },
    };
    const items: Item[] = [];
    for (;;) {
      const page = await this.queryPage('telemetry.series', input);
      items.push(...page.items);
      if (page.next === undefined) return items;
      input.ExclusiveStartKey = page.next;
    }
  }

  /** The series a query covers: given directly when metric and subDevice are fixed, else listed. */
  private async seriesOf(deviceId: string, metric?: string, subDevice?: string): Promise<Series[]> {
    if (metric !== undefined && subDevice !== undefined) return [{ sub: subDevice, metric }];
    const items = await this.deviceItems(deviceId, '');
    const seen = new Map<string, Series>();
    for (const i of items) {
      const s = { sub: i.s as string, metric: i.m as string };
      if (typeof s.sub !== 'string' || typeof s.metric !== 'string') continue;
      if (metric !== undefined && s.metric !== metric) continue;
      if (subDevice !== undefined && s.sub !== subDevice) continue;
      seen.set(`${s.sub}\u0000${s.metric}`, s);
    }
    return [...seen.values()];
  }

  async queryRaw(q: RawQuery): Promise<{ points: StoredPoint[]; nextToken?: string }> {
    const { limit, order, after } = checkRawQuery(q);
    if (q.to <= q.from) return { points: [] };
    const series = await this.seriesOf(q.deviceId, q.metric, q.subDevice);
    const sign = order === 'asc' ? 1 : -1;
    const firstPage = Math.min(
      QUERY_PAGE_MAX,
      Math.max(25, Math.ceil((limit + 1) / Math.max(1, series.length)) + 1),
    );
    const readers: SeriesReader[] = [];
    for (const s of series) {
      const range = keyRange(s, q.from, q.to, order, after);
      if (range === undefined) continue;
      readers.push({
        series: s,
        input: {
          TableName: this.table,
          KeyConditionExpression: 'pk = :pk AND sk BETWEEN :lo AND :hi',
          ExpressionAttributeValues: {
            ':pk': pointPk(q.deviceId, s.sub, s.metric),
            ':lo': range.lo,
            ':hi': range.hi,
          },
          ScanIndexForward: order === 'asc',
          Limit: firstPage,
        },
        buffer: [],
        pos: 0,
        done: false,
      });
    }
    const fill = async (r: SeriesReader, want: number): Promise<void> => {
      r.input.Limit = Math.min(QUERY_PAGE_MAX, Math.max(25, want));
      const page = await this.queryPage('telemetry.query', r.input);
      let points = page.items.map(fromItem);
      if (after !== undefined)
        points = points.filter((p) => sign * comparePointKeys(keyOfPoint(p), after) > 0);
      r.buffer = points;
      r.pos = 0;
      if (page.next === undefined) r.done = true;
      else r.input.ExclusiveStartKey = page.next;
    };
    await pool(readers, this.concurrency, (r) => fill(r, firstPage));

    // k-way merge in key order; a reader is refilled only when its head is needed.
    const out: StoredPoint[] = [];
    for (;;) {
      let best: SeriesReader | undefined;
      for (const r of readers) {
        while (r.pos >= r.buffer.length && !r.done) await fill(r, limit + 1 - out.length);
        const head = r.buffer[r.pos];
        if (head === undefined) continue;
        const bestHead = best?.buffer[best.pos];
        if (bestHead === undefined || sign * comparePointKeys(keyOfPoint(head), keyOfPoint(bestHead)) < 0) {
          best = r;
        }
      }
      if (best === undefined) break;
      out.push(best.buffer[best.pos++] as StoredPoint);
      if (out.length > limit) break;
    }
    const points = out.slice(0, limit);
    const last = points.at(-1);
    return out.length > limit && last !== undefined
      ? { points, nextToken: encodeCursor(keyOfPoint(last)) }
      : { points };
  }

  async queryBuckets(q: BucketQuery): Promise<Bucket[]> {
    checkBucketQuery(q);
    if (q.to <= q.from) return [];
    const series = await this.seriesOf(q.deviceId, q.metric, q.subDevice);
    const points: StoredPoint[] = [];
    const cap = this.maxBucketPoints;
    const tooMany = () =>
      new ValidationError(
        `the range holds more than ${cap} points for this metric; narrow from/to (the DynamoDB store ` +
          'aggregates in the function)',
        { field: 'from', code: 'RANGE_TOO_LARGE' },
      );
    await pool(series, this.concurrency, async (s) => {
      const input: QueryCommandInput = {
        TableName: this.table,
        KeyConditionExpression: 'pk = :pk AND sk BETWEEN :lo AND :hi',
        ExpressionAttributeValues: {
          ':pk': pointPk(q.deviceId, s.sub, s.metric),
          ':lo': padTime(q.from),
          ':hi': padTime(q.to - 1) + HIGH,
        },
      };
      for (;;) {
        const page = await this.queryPage('telemetry.buckets', input);
        for (const i of page.items) points.push(fromItem(i));
        if (points.length > cap) throw tooMany();
        if (page.next === undefined) return;
        input.ExclusiveStartKey = page.next;
      }
    });
    return aggregateBuckets(points, q);
  }

  async latest(q: LatestQuery): Promise<StoredPoint[]> {
    checkLatestQuery(q);
    const prefix = q.subDevice === undefined ? 'L#' : `L#${escapeKeyPart(q.subDevice)}#`;
    const items = await this.deviceItems(q.deviceId, prefix);
    const newest = new Map<string, number>();
    const points = items.map(fromItem);
    for (const p of points) {
      const id = `${p.subDevice ?? ''}\u0000${p.metric}`;
      if ((newest.get(id) ?? -1) < p.time) newest.set(id, p.time);
    }
    return points
      .filter(
        (p) =>
          newest.get(`${p.subDevice ?? ''}\u0000${p.metric}`) === p.time &&
          (q.since === undefined || p.time >= q.since),
      )
      .sort((a, b) => {
        const ka = keyOfPoint(a);
        const kb = keyOfPoint(b);
        return (
          compareSeries({ sub: ka.subDevice, metric: ka.metric }, { sub: kb.subDevice, metric: kb.metric }) ||
          ka.row - kb.row ||
          ka.index - kb.index
        );
      });
  }

  async close(): Promise<void> {}
}

/**
 * The sk range of one series for a raw query: [from, to) narrowed to keys after the cursor. Within a
 * series keys sort by (time, row, index); across series the cursor's (subDevice, metric) decides whether
 * points at the cursor's time are before or after it.
 */
function keyRange(
  s: Series,
  from: number,
  to: number,
  order: 'asc' | 'desc',
  after: PointKey | undefined,
): { lo: string; hi: string } | undefined {
  let lo = padTime(from);
  let hi = padTime(to - 1) + HIGH;
  if (after !== undefined) {
    const c = compareSeries(s, { sub: after.subDevice, metric: after.metric });
    if (order === 'asc') {
      // Strictly after the cursor: the cursor's own key is filtered out after reading.
      const bound = c === 0 ? pointSk(after) : c > 0 ? padTime(after.time) : padTime(after.time + 1);
      if (bound > lo) lo = bound;
    } else {
      if (c > 0 && after.time === 0) return undefined;
      const bound =
        c === 0 ? pointSk(after) : c < 0 ? padTime(after.time) + HIGH : padTime(after.time - 1) + HIGH;
      if (bound < hi) hi = bound;
    }
  }
  return lo <= hi ? { lo, hi } : undefined;
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
