/**
 * TelemetryStore on DynamoDB — the telemetry option that deploys in every AWS account (Timestream for
 * LiveAnalytics is closed to new ones). ADR 0011.
 *   point   pk `S#{device}#{subDevice}#{metric}`  sk `{time:15}#{row+1:6}#{index+1:6}`  (TTL)
 *   latest  pk `L#{device}`                        sk `{subDevice}#{metric}` (newest non-historical)
 * Writes are BatchWriteItem (25 per call, bounded parallel, unprocessed items retried); an identical
 * re-write is harmless (same item), so redelivered batches create no duplicates. Queries share the
 * port's semantics: half-open ranges, cursor pagination, buckets computed with the reference
 * aggregation over the range (bounded).
 */
import {
  BatchWriteCommand,
  type DynamoDBDocumentClient,
  QueryCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import { TransientError, ValidationError } from '../core/errors.js';
import type { EnrichedReading } from '../core/reading.js';
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

export interface DynamoTelemetryStoreOptions {
  client: DynamoDBDocumentClient;
  tableName: string;
  retentionDays?: number;
  concurrency?: number;
  /** Most points a bucket query may scan. */
  maxBucketPoints?: number;
  sleep?: (ms: number) => Promise<void>;
}

type Item = Record<string, unknown>;
const pad = (n: number, w: number) => String(n).padStart(w, '0');
const seriesPk = (device: string, sub: string, metric: string) => `S#${device}#${sub}#${metric}`;
const sortKey = (k: PointKey) => `${pad(k.time, 15)}#${pad(k.row + 1, 6)}#${pad(k.index + 1, 6)}`;

function toItem(r: EnrichedReading, ttl: number): Item {
  const k = pointKeyOf(r);
  const v = encodeValue(r.value);
  const item: Item = {
    pk: seriesPk(r.deviceId, k.subDevice, r.metric),
    sk: sortKey(k),
    d: r.deviceId,
    s: k.subDevice,
    m: r.metric,
    t: r.time,
    r: k.row,
    i: k.index,
    vk: v.kind,
    ty: r.type,
    q: r.quality,
    h: r.historical,
    p: r.protocol,
    dt: r.enrichment.deviceType,
    expiresAt: Math.floor(r.time / 1000) + ttl,
  };
  if (v.double !== undefined) item.vd = v.double;
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
      double: (i.vd as number | undefined) ?? null,
      bigint: typeof i.vb === 'string' ? BigInt(i.vb) : null,
      text: (i.vt as string | undefined) ?? null,
      bool: (i.vo as boolean | undefined) ?? null,
    }),
    type: i.ty as string,
    quality: i.q as StoredPoint['quality'],
    historical: i.h === true,
    protocol: i.p as StoredPoint['protocol'],
    deviceType: i.dt as string,
  };
  if (i.s !== '') p.subDevice = i.s as string;
  if ((i.r as number) >= 0) p.row = i.r as number;
  if ((i.i as number) >= 0) p.index = i.i as number;
  if (i.u !== undefined) p.unit = i.u as string;
  if (i.n !== undefined) p.name = i.n as string;
  if (i.g !== undefined) p.group = i.g as string;
  if (i.si !== undefined) p.site = i.si as string;
  return p;
}

export class DynamoTelemetryStore implements TelemetryStore {
  private readonly ttl: number;
  private readonly sleep: (ms: number) => Promise<void>;

  constructor(private readonly o: DynamoTelemetryStoreOptions) {
    this.ttl = (o.retentionDays ?? 365) * 86_400;
    this.sleep = o.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms)));
  }

  async write(readings: EnrichedReading[]): Promise<WriteResult> {
    const prepared = prepareWrite(readings);
    const items = prepared.accepted.map((r) => toItem(r, this.ttl));
    const chunks: Item[][] = [];
    for (let i = 0; i < items.length; i += 25) chunks.push(items.slice(i, i + 25));
    const workers = Array.from({ length: Math.min(this.o.concurrency ?? 8, chunks.length) }, async () => {
      for (let chunk = chunks.shift(); chunk; chunk = chunks.shift()) await this.batchWrite(chunk);
    });
    await Promise.all(workers);
    // Latest value per series: newest non-historical point of this batch, never older than stored.
    const latest = new Map<string, EnrichedReading>();
    for (const r of prepared.accepted) {
      if (r.historical) continue;
      const key = `${r.deviceId}\u0000${r.subDevice ?? ''}\u0000${r.metric}`;
      const cur = latest.get(key);
      if (!cur || r.time >= cur.time) latest.set(key, r);
    }
    await Promise.all([...latest.values()].map((r) => this.updateLatest(r)));
    return {
      written: items.length,
      duplicates: prepared.duplicates,
      rejected: prepared.rejected,
      skipped: prepared.skipped,
    };
  }

  private async batchWrite(chunk: Item[]): Promise<void> {
    let pending = chunk.map((Item) => ({ PutRequest: { Item } }));
    for (let attempt = 0; pending.length > 0; attempt++) {
      try {
        const out = await this.o.client.send(
          new BatchWriteCommand({ RequestItems: { [this.o.tableName]: pending } }),
        );
        pending = (out.UnprocessedItems?.[this.o.tableName] ?? []) as typeof pending;
      } catch (error) {
        const mapped = mapAwsError(error, 'telemetry.write');
        if (!(mapped instanceof TransientError) || attempt >= 6) throw mapped;
      }
      if (pending.length > 0) {
        if (attempt >= 6)
          throw new TransientError(
            'TELEMETRY_UNPROCESSED',
            `${pending.length} telemetry items left unprocessed`,
          );
        await this.sleep(Math.min(2000, 25 * 2 ** attempt));
      }
    }
  }

  private async updateLatest(r: EnrichedReading): Promise<void> {
    const item = toItem(r, this.ttl);
    const names: Record<string, string> = {};
    const values: Record<string, unknown> = {};
    const sets = Object.entries(item)
      .filter(([k]) => k !== 'pk' && k !== 'sk')
      .map(([k, v], n) => {
        names[`#a${n}`] = k;
        values[`:v${n}`] = v;
        return `#a${n} = :v${n}`;
      });
    names['#t'] = 't';
    values[':t'] = r.time;
    try {
      await this.o.client.send(
        new UpdateCommand({
          TableName: this.o.tableName,
          Key: { pk: `L#${r.deviceId}`, sk: `${r.subDevice ?? ''}#${r.metric}` },
          UpdateExpression: `SET ${sets.join(', ')}`,
          ConditionExpression: 'attribute_not_exists(#t) OR #t <= :t',
          ExpressionAttributeNames: names,
          ExpressionAttributeValues: values,
        }),
      );
    } catch (error) {
      if ((error as Error).name === 'ConditionalCheckFailedException') return; // a newer value is stored
      throw mapAwsError(error, 'telemetry.latest');
    }
  }

  private async query(
    pk: string,
    from: number,
    to: number,
    order: 'asc' | 'desc',
    cap: number,
  ): Promise<Item[]> {
    const out: Item[] = [];
    let start: Record<string, unknown> | undefined;
    do {
      const page = await this.o.client
        .send(
          new QueryCommand({
            TableName: this.o.tableName,
            KeyConditionExpression: 'pk = :pk AND sk BETWEEN :a AND :b',
            ExpressionAttributeValues: { ':pk': pk, ':a': pad(from, 15), ':b': `${pad(to - 1, 15)}#~` },
            ScanIndexForward: order === 'asc',
            ExclusiveStartKey: start,
            Limit: Math.min(1000, cap - out.length),
          }),
        )
        .catch((error: unknown) => {
          throw mapAwsError(error, 'telemetry.query');
        });
      out.push(...((page.Items ?? []) as Item[]));
      start = page.LastEvaluatedKey;
    } while (start && out.length < cap);
    return out;
  }

  /** The device's series, from its latest items (optionally one metric / one sub-device). */
  private async series(
    deviceId: string,
    metric?: string,
    subDevice?: string,
  ): Promise<Array<{ sub: string; metric: string }>> {
    const page = await this.o.client
      .send(
        new QueryCommand({
          TableName: this.o.tableName,
          KeyConditionExpression: 'pk = :pk',
          ExpressionAttributeValues: { ':pk': `L#${deviceId}` },
        }),
      )
      .catch((error: unknown) => {
        throw mapAwsError(error, 'telemetry.series');
      });
    const all = (page.Items ?? []).map((i) => ({ sub: i.s as string, metric: i.m as string }));
    const filtered = all.filter(
      (s) =>
        (metric === undefined || s.metric === metric) && (subDevice === undefined || s.sub === subDevice),
    );
    // A metric with only historical points has no latest item: still query its node-level series.
    if (metric !== undefined && filtered.length === 0) filtered.push({ sub: subDevice ?? '', metric });
    return filtered;
  }

  async queryRaw(q: RawQuery): Promise<{ points: StoredPoint[]; nextToken?: string }> {
    const { limit, order, after } = checkRawQuery(q);
    const series = await this.series(q.deviceId, q.metric, q.subDevice);
    const from = after && order === 'asc' ? after.time : q.from;
    const to = after && order === 'desc' ? after.time + 1 : q.to;
    const items = (
      await Promise.all(
        series.map((s) => this.query(seriesPk(q.deviceId, s.sub, s.metric), from, to, order, limit + 1000)),
      )
    ).flat();
    const sign = order === 'asc' ? 1 : -1;
    let points = items.map(fromItem).sort((a, b) => sign * comparePointKeys(pointKeyOf(a), pointKeyOf(b)));
    if (after) points = points.filter((p) => sign * comparePointKeys(pointKeyOf(p), after) > 0);
    const page = points.slice(0, limit);
    const last = page.at(-1);
    return points.length > limit && last
      ? { points: page, nextToken: encodeCursor(pointKeyOf(last)) }
      : { points: page };
  }

  async queryBuckets(q: BucketQuery): Promise<Bucket[]> {
    checkBucketQuery(q);
    const cap = this.o.maxBucketPoints ?? 200_000;
    const series = await this.series(q.deviceId, q.metric, q.subDevice);
    const items = (
      await Promise.all(
        series.map((s) => this.query(seriesPk(q.deviceId, s.sub, s.metric), q.from, q.to, 'asc', cap + 1)),
      )
    ).flat();
    if (items.length > cap) {
      throw new ValidationError(`the range holds more than ${cap} points; narrow from/to`, { field: 'from' });
    }
    return aggregateBuckets(items.map(fromItem), q);
  }

  async latest(q: LatestQuery): Promise<StoredPoint[]> {
    checkLatestQuery(q);
    const page = await this.o.client
      .send(
        new QueryCommand({
          TableName: this.o.tableName,
          KeyConditionExpression: 'pk = :pk',
          ExpressionAttributeValues: { ':pk': `L#${q.deviceId}` },
        }),
      )
      .catch((error: unknown) => {
        throw mapAwsError(error, 'telemetry.latest');
      });
    return (page.Items ?? [])
      .map(fromItem)
      .filter(
        (p) =>
          (q.subDevice === undefined || (p.subDevice ?? '') === q.subDevice) &&
          (q.since === undefined || p.time >= q.since),
      );
  }

  async close(): Promise<void> {}
}
