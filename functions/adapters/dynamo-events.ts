/**
 * Event log on DynamoDB (the `events` table): pk `EVT#{UTC day}#{shard}`, sk = time-ordered event id,
 * TTL on `expiresAt`. The shard (0..EVENT_SHARDS-1) is a hash of the device id: a day's events spread
 * over EVENT_SHARDS partitions (each takes ~1,000 writes/s), so a quarantine flood or a fleet-wide
 * rebirth does not throttle on one key, and one device's events stay in one partition. Listing walks day
 * partitions from the cursor forward and merges the shards of a day (only the device's shard when the
 * query names devices).
 */
import { type DynamoDBDocumentClient, QueryCommand, type QueryCommandOutput } from '@aws-sdk/lib-dynamodb';
import { type EventLog, type EventQuery, eventTime, type StoredEvent } from '../core/events.js';
import { mapAwsError } from './dynamo-errors.js';
import { batchWriteAll } from './dynamo-query.js';

const DAY_MS = 86_400_000;

export interface DynamoEventLogOptions {
  client: DynamoDBDocumentClient;
  tableName: string;
  retentionDays?: number;
  clock?: () => number;
  sleep?: (ms: number) => Promise<void>;
}

/** Partitions per day. */
export const EVENT_SHARDS = 16;

function day(time: number): string {
  return new Date(Math.floor(time / DAY_MS) * DAY_MS).toISOString().slice(0, 10);
}

/** FNV-1a of the device id, modulo EVENT_SHARDS. */
export function eventShard(deviceId: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < deviceId.length; i++) {
    h ^= deviceId.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0) % EVENT_SHARDS;
}

const partitionKey = (time: number, shard: number) => `EVT#${day(time)}#${shard}`;

export class DynamoEventLog implements EventLog {
  private readonly retentionDays: number;
  private readonly clock: () => number;
  private readonly sleep: (ms: number) => Promise<void>;

  constructor(private readonly options: DynamoEventLogOptions) {
    this.retentionDays = options.retentionDays ?? 7;
    this.clock = options.clock ?? Date.now;
    this.sleep = options.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms)));
  }

  async append(events: StoredEvent[]): Promise<void> {
    const unique = new Map(events.map((e) => [e.id, e]));
    const items = [...unique.values()].map((e) => ({
      PutRequest: {
        Item: {
          pk: partitionKey(e.time, eventShard(e.deviceId)),
          sk: e.id,
          expiresAt: Math.floor(e.time / 1000) + this.retentionDays * 86_400,
          event: e,
        },
      },
    }));
    await batchWriteAll(this.options.client, this.options.tableName, items, {
      what: 'events.append',
      code: 'EVENTS_UNPROCESSED',
      maxAttempts: 9,
      sleep: this.sleep,
      call: async (fn) => {
        try {
          return await fn();
        } catch (error) {
          throw mapAwsError(error, 'events.append');
        }
      },
    });
  }

  async list(query: EventQuery): Promise<{ events: StoredEvent[]; nextCursor?: string }> {
    const limit = Math.min(Math.max(query.limit ?? 100, 1), 1000);
    const now = this.clock();
    const start = query.since ? eventTime(query.since) : now - this.retentionDays * DAY_MS;
    // A device's events live in its shard only.
    const shards = query.deviceIds
      ? [...new Set(query.deviceIds.map(eventShard))]
      : Array.from({ length: EVENT_SHARDS }, (_, i) => i);
    const out: StoredEvent[] = [];
    for (let t = Math.floor(start / DAY_MS) * DAY_MS; t <= now && out.length < limit; t += DAY_MS) {
      // Each shard's first `wanted` matches in id order; their merge holds the day's first `wanted`.
      const wanted = limit - out.length;
      const perShard = await Promise.all(shards.map((shard) => this.listShard(t, shard, query, wanted)));
      const merged = perShard.flat().sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
      for (const e of merged.slice(0, wanted)) out.push(e);
    }
    const last = out.at(-1);
    return out.length >= limit && last ? { events: out, nextCursor: last.id } : { events: out };
  }

  /** The first `wanted` events of one day's shard that match the query, in id order. */
  private async listShard(
    dayStart: number,
    shard: number,
    query: EventQuery,
    wanted: number,
  ): Promise<StoredEvent[]> {
    const out: StoredEvent[] = [];
    const pk = partitionKey(dayStart, shard);
    let exclusiveStartKey: Record<string, unknown> | undefined;
    do {
      let page: QueryCommandOutput;
      try {
        page = await this.options.client.send(
          new QueryCommand({
            TableName: this.options.tableName,
            KeyConditionExpression: query.since ? 'pk = :pk AND sk > :since' : 'pk = :pk',
            ExpressionAttributeValues: query.since ? { ':pk': pk, ':since': query.since } : { ':pk': pk },
            ExclusiveStartKey: exclusiveStartKey,
            Limit: Math.min(500, Math.max(wanted, 25)),
          }),
        );
      } catch (error) {
        throw mapAwsError(error, 'events.list');
      }
      for (const item of page.Items ?? []) {
        const e = item.event as StoredEvent;
        if (query.types && !query.types.includes(e.type)) continue;
        if (query.deviceIds && !query.deviceIds.includes(e.deviceId)) continue;
        if (query.deviceTypes && (e.deviceType === undefined || !query.deviceTypes.includes(e.deviceType)))
          continue;
        out.push(e);
        if (out.length >= wanted) break;
      }
      exclusiveStartKey = out.length < wanted ? page.LastEvaluatedKey : undefined;
    } while (exclusiveStartKey);
    return out;
  }
}
