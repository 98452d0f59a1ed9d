/**
 * Batch operations on DynamoDB, in the registry table (ADR 0022) next to the items of ADR 0008:
 *   operation  pk OP#{id}  sk META         gsi1pk OPS  gsi1sk {createdAt, 13 digits}#{id}  version
 *   target     pk OP#{id}  sk T#{deviceId}
 *   active     pk OPS#ACTIVE  sk {id}     (present while the operation is running or cancelling)
 * One Query lists an operation's targets; one GSI Query lists operations newest first; one Query of the
 * active markers finds what the worker drives, however many newer operations exist. The operation is
 * replaced under `version = :expected` (the worker loses to a concurrent cancel or retry). Operations and
 * their targets expire 90 days after creation (TTL `expiresAt`).
 */
import {
  type DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
  type QueryCommandInput,
} from '@aws-sdk/lib-dynamodb';
import type { Operation, Target } from '../core/operations/model.js';
import type { OperationStore } from '../core/operations/store.js';
import { mapAwsError } from './dynamo-errors.js';
import { batchWriteAll, queryAllPages } from './dynamo-query.js';

type Item = Record<string, unknown>;

const ACTIVE_PK = 'OPS#ACTIVE';
const isActive = (op: Operation) => op.status === 'running' || op.status === 'cancelling';
const RETENTION_S = 90 * 86_400;

export interface DynamoOperationStoreOptions {
  client: DynamoDBDocumentClient;
  /** The registry table. */
  tableName: string;
  sleep?: (ms: number) => Promise<void>;
  maxBatchAttempts?: number;
}

export class DynamoOperationStore implements OperationStore {
  private readonly c: DynamoDBDocumentClient;
  private readonly t: string;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly maxAttempts: number;

  constructor(o: DynamoOperationStoreOptions) {
    this.c = o.client;
    this.t = o.tableName;
    this.sleep = o.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms)));
    this.maxAttempts = o.maxBatchAttempts ?? 8;
  }

  private async call<T>(what: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (error) {
      throw mapAwsError(error, `operations.${what}`);
    }
  }

  private opItem(op: Operation): Item {
    return {
      pk: `OP#${op.id}`,
      sk: 'META',
      gsi1pk: 'OPS',
      gsi1sk: `${String(op.createdAt).padStart(13, '0')}#${op.id}`,
      version: op.version,
      ...(op.appId !== undefined ? { appId: op.appId } : {}),
      operation: op,
      expiresAt: Math.floor(op.createdAt / 1000) + RETENTION_S,
    };
  }

  private targetItem(t: Target, createdAt: number): Item {
    return {
      pk: `OP#${t.operationId}`,
      sk: `T#${t.deviceId}`,
      target: t,
      expiresAt: Math.floor(createdAt / 1000) + RETENTION_S,
    };
  }

  private activeItem(op: Operation): Item {
    return { pk: ACTIVE_PK, sk: op.id, expiresAt: Math.floor(op.createdAt / 1000) + RETENTION_S };
  }

  async createOperation(op: Operation, targets: Target[]): Promise<void> {
    // Targets (and the active marker) first: an operation item is only visible, and driven, once all
    // its targets exist; a marker without its operation is skipped by listActive.
    await this.batchPut('createOperation', [
      ...targets.map((t) => this.targetItem(t, op.createdAt)),
      ...(isActive(op) ? [this.activeItem(op)] : []),
    ]);
    await this.call('createOperation', () =>
      this.c.send(
        new PutCommand({
          TableName: this.t,
          Item: this.opItem(op),
          ConditionExpression: 'attribute_not_exists(pk)',
        }),
      ),
    );
  }

  async getOperation(id: string): Promise<Operation | undefined> {
    const out = await this.call('getOperation', () =>
      this.c.send(
        new GetCommand({ TableName: this.t, Key: { pk: `OP#${id}`, sk: 'META' }, ConsistentRead: true }),
      ),
    );
    return out.Item?.operation as Operation | undefined;
  }

  async putOperation(op: Operation, expectedVersion: number): Promise<Operation> {
    const next = { ...op, version: expectedVersion + 1 };
    // An operation becoming active (a retry) is marked before the flip, one finishing is unmarked after
    // it: a failure in between leaves at most a marker too many, which listActive skips and removes.
    if (isActive(next)) await this.batchPut('putOperation', [this.activeItem(next)]);
    await this.call('putOperation', () =>
      this.c.send(
        new PutCommand({
          TableName: this.t,
          Item: this.opItem(next),
          ConditionExpression: 'version = :v',
          ExpressionAttributeValues: { ':v': expectedVersion },
        }),
      ),
    );
    if (!isActive(next)) await this.unmark([next.id]);
    return next;
  }

  private async unmark(ids: string[]): Promise<void> {
    if (ids.length === 0) return;
    await this.batchWrite(
      'unmarkActive',
      ids.map((id) => ({ DeleteRequest: { Key: { pk: ACTIVE_PK, sk: id } } })),
    );
  }

  async listOperations(limit: number, appId?: string): Promise<Operation[]> {
    // An application's: filtered on the item's top-level appId, page after page until `limit` match
    // (a page may hold none of them).
    const keys: Item[] = [];
    let start: Item | undefined;
    do {
      const out = await this.call('listOperations', () =>
        this.c.send(
          new QueryCommand({
            TableName: this.t,
            IndexName: 'gsi1',
            KeyConditionExpression: 'gsi1pk = :p',
            ...(appId === undefined
              ? { ExpressionAttributeValues: { ':p': 'OPS' } }
              : { FilterExpression: 'appId = :a', ExpressionAttributeValues: { ':p': 'OPS', ':a': appId } }),
            ScanIndexForward: false,
            Limit: appId === undefined ? limit : Math.max(limit, 100),
            ...(start ? { ExclusiveStartKey: start } : {}),
          }),
        ),
      );
      keys.push(...((out.Items ?? []) as Item[]));
      start = out.LastEvaluatedKey as Item | undefined;
    } while (appId !== undefined && start && keys.length < limit);
    // The index is eventually consistent: read each operation's current item.
    const ops = await Promise.all(keys.slice(0, limit).map((i) => this.getOperation(String(i.pk).slice(3))));
    return ops.filter((o): o is Operation => o !== undefined);
  }

  async listActive(): Promise<Operation[]> {
    const markers = await this.queryAll('listActive', {
      KeyConditionExpression: 'pk = :p',
      ExpressionAttributeValues: { ':p': ACTIVE_PK },
      ConsistentRead: true,
    });
    const ops = await Promise.all(markers.map((m) => this.getOperation(String(m.sk))));
    const active = ops.filter((o): o is Operation => o !== undefined && isActive(o));
    // Markers of finished operations (an unmark that failed) are removed; a marker whose operation is
    // not written yet (a create in progress) is kept.
    await this.unmark(ops.filter((o): o is Operation => o !== undefined && !isActive(o)).map((o) => o.id));
    return active.sort((a, b) => b.createdAt - a.createdAt);
  }

  async listTargets(operationId: string): Promise<Target[]> {
    const items = await this.queryAll('listTargets', {
      KeyConditionExpression: 'pk = :p AND begins_with(sk, :t)',
      ExpressionAttributeValues: { ':p': `OP#${operationId}`, ':t': 'T#' },
      ConsistentRead: true,
    });
    return items.map((i) => i.target as Target);
  }

  async putTargets(targets: Target[]): Promise<void> {
    if (targets.length === 0) return;
    // The TTL follows the operation's creation; one read finds it.
    const created = new Map<string, number>();
    for (const id of new Set(targets.map((t) => t.operationId))) {
      const op = await this.getOperation(id);
      created.set(id, op?.createdAt ?? Date.now());
    }
    await this.batchPut(
      'putTargets',
      targets.map((t) => this.targetItem(t, created.get(t.operationId)!)),
    );
  }

  private queryAll(what: string, input: Omit<QueryCommandInput, 'TableName'>): Promise<Item[]> {
    return queryAllPages(this.c, this.t, input, (fn) => this.call(what, fn));
  }

  private batchPut(what: string, items: Item[]): Promise<void> {
    return this.batchWrite(
      what,
      items.map((Item) => ({ PutRequest: { Item } })),
    );
  }

  private batchWrite(what: string, requests: Item[]): Promise<void> {
    return batchWriteAll(this.c, this.t, requests, {
      what,
      code: 'OPERATIONS_UNPROCESSED',
      maxAttempts: this.maxAttempts,
      sleep: this.sleep,
      call: (fn) => this.call(what, fn),
    });
  }
}
