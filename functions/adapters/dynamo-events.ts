/**
 * Event log on DynamoDB (the `events` table): pk `EVT#{UTC day}`, sk = time-ordered event id, TTL on
 * `expiresAt`. Listing walks day partitions from the cursor forward, so /events?since= is a few Queries.
 */
import {
  BatchWriteCommand,
  type DynamoDBDocumentClient,
  QueryCommand,
  type QueryCommandOutput,
} from '@aws-sdk/lib-dynamodb';
import { TransientError } from '../core/errors.js';
import { type EventLog, type EventQuery, eventTime, type StoredEvent } from '../core/events.js';
import { mapAwsError } from './dynamo-errors.js';

const DAY_MS = 86_400_000;

export interface DynamoEventLogOptions {
  client: DynamoDBDocumentClient;
  tableName: string;
  retentionDays?: number;
  clock?: () => number;
  sleep?: (ms: number) => Promise<void>;
}

function day(time: number): string {
  return new Date(Math.floor(time / DAY_MS) * DAY_MS).toISOString().slice(0, 10);
}

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
          pk: `EVT#${day(e.time)}`,
          sk: e.id,
          expiresAt: Math.floor(e.time / 1000) + this.retentionDays * 86_400,
          event: e,
        },
      },
    }));
    for (let i = 0; i < items.length; i += 25) {
      let pending: typeof items = items.slice(i, i + 25);
      for (let attempt = 0; pending.length > 0; attempt++) {
        try {
          const out = await this.options.client.send(
            new BatchWriteCommand({ RequestItems: { [this.options.tableName]: pending } }),
          );
          pending = (out.UnprocessedItems?.[this.options.tableName] ?? []) as typeof items;
        } catch (error) {
          throw mapAwsError(error, 'events.append');
        }
        if (pending.length > 0) {
          if (attempt >= 8) {
            throw new TransientError('EVENTS_UNPROCESSED', `${pending.length} events left unprocessed`);
          }
          await this.sleep(25 * 2 ** attempt);
        }
      }
    }
  }

  async list(query: EventQuery): Promise<{ events: StoredEvent[]; nextCursor?: string }> {
    const limit = Math.min(Math.max(query.limit ?? 100, 1), 1000);
    const now = this.clock();
    const start = query.since ? eventTime(query.since) : now - this.retentionDays * DAY_MS;
    const out: StoredEvent[] = [];
    for (let t = Math.floor(start / DAY_MS) * DAY_MS; t <= now && out.length < limit; t += DAY_MS) {
      let exclusiveStartKey: Record<string, unknown> | undefined;
      do {
        let page: QueryCommandOutput;
        try {
          page = await this.options.client.send(
            new QueryCommand({
              TableName: this.options.tableName,
              KeyConditionExpression: query.since ? 'pk = :pk AND sk > :since' : 'pk = :pk',
              ExpressionAttributeValues: query.since
                ? { ':pk': `EVT#${day(t)}`, ':since': query.since }
                : { ':pk': `EVT#${day(t)}` },
              ExclusiveStartKey: exclusiveStartKey,
              Limit: 500,
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
          if (out.length >= limit) break;
        }
        exclusiveStartKey = out.length < limit ? page.LastEvaluatedKey : undefined;
      } while (exclusiveStartKey);
    }
    const last = out.at(-1);
    return out.length >= limit && last ? { events: out, nextCursor: last.id } : { events: out };
  }
}
