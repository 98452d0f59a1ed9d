/**
 * The live connections table (ADR 0023, AWS WebSocket transport): one item per open connection, all in
 * one partition (`pk = WATCH`, `sk = CONN#<connectionId>`), so the publishers read every subscription
 * with one Query (cached per function instance) and need no index. The item holds the principal (to
 * re-authorize a `subscribe` message; never the key), the authorized subscription and a TTL
 * (`expiresAt`, epoch seconds: API Gateway closes a connection after 2 hours at most, the TTL removes
 * items whose $disconnect never ran).
 *
 * Calls: put (PutItem), get (GetItem), remove (DeleteItem), list (Query).
 */
import {
  DeleteCommand,
  type DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
} from '@aws-sdk/lib-dynamodb';
import type { Principal } from '../api/auth.js';
import { type LiveKind, type LiveSubscription, liveViewer } from '../core/live.js';
import type { LiveConnection, LiveConnectionSource } from '../core/live-fanout.js';

const PK = 'WATCH';
const sk = (id: string) => `CONN#${id}`;

/** API Gateway's limit on a WebSocket connection's duration: the item outlives it by a minute. */
export const LIVE_CONNECTION_TTL_S = 2 * 3600 + 60;

export interface StoredLiveConnection extends LiveConnection {
  principal: Principal;
  connectedAt: number;
}

interface Item {
  pk: string;
  sk: string;
  id: string;
  principal: string;
  deviceId?: string;
  kinds?: string[];
  connectedAt: number;
  expiresAt: number;
}

export class DynamoLiveConnections implements LiveConnectionSource {
  constructor(private readonly o: { client: DynamoDBDocumentClient; tableName: string }) {}

  async put(c: StoredLiveConnection): Promise<void> {
    const item: Item = {
      pk: PK,
      sk: sk(c.id),
      id: c.id,
      principal: JSON.stringify(c.principal),
      connectedAt: c.connectedAt,
      expiresAt: Math.floor(c.connectedAt / 1000) + LIVE_CONNECTION_TTL_S,
      ...(c.sub.deviceId !== undefined ? { deviceId: c.sub.deviceId } : {}),
      ...(c.sub.kinds !== undefined ? { kinds: [...c.sub.kinds] } : {}),
    };
    await this.o.client.send(new PutCommand({ TableName: this.o.tableName, Item: item }));
  }

  async get(id: string): Promise<StoredLiveConnection | undefined> {
    const out = await this.o.client.send(
      new GetCommand({ TableName: this.o.tableName, Key: { pk: PK, sk: sk(id) } }),
    );
    return out.Item ? fromItem(out.Item as Item) : undefined;
  }

  async remove(id: string): Promise<void> {
    await this.o.client.send(new DeleteCommand({ TableName: this.o.tableName, Key: { pk: PK, sk: sk(id) } }));
  }

  /** Every connection not past its TTL (DynamoDB deletes expired items late; they are skipped here). */
  async list(now = Date.now()): Promise<StoredLiveConnection[]> {
    const out: StoredLiveConnection[] = [];
    let start: Record<string, unknown> | undefined;
    do {
      const page = await this.o.client.send(
        new QueryCommand({
          TableName: this.o.tableName,
          KeyConditionExpression: 'pk = :pk',
          ExpressionAttributeValues: { ':pk': PK },
          ...(start ? { ExclusiveStartKey: start } : {}),
        }),
      );
      for (const item of (page.Items ?? []) as Item[])
        if (item.expiresAt * 1000 > now) out.push(fromItem(item));
      start = page.LastEvaluatedKey;
    } while (start);
    return out;
  }
}

function fromItem(item: Item): StoredLiveConnection {
  const principal = JSON.parse(item.principal) as Principal;
  const sub: LiveSubscription = {
    viewer: liveViewer(principal),
  };
  if (item.deviceId !== undefined) sub.deviceId = item.deviceId;
  if (item.kinds !== undefined) sub.kinds = item.kinds as LiveKind[];
  return { id: item.id, sub, principal, connectedAt: item.connectedAt };
}
