/**
 * Batch operations on DynamoDB, in the registry table (ADR 0022) next to the items of ADR 0008:
 *   operation  pk OP#{id}  sk META         gsi1pk OPS  gsi1sk {createdAt, 13 digits}#{id}  version
 *   target     pk OP#{id}  sk T#{deviceId}
 * One Query lists an operation's targets; one GSI Query lists operations newest first. The operation is
 * replaced under `version = :expected` (the worker loses to a concurrent cancel or retry). Operations and
 * their targets expire 90 days after creation (TTL `expiresAt`).
 */
import {
  BatchWriteCommand,
  type DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
  type QueryCommandInput,
} from '@aws-sdk/lib-dynamodb';
import { TransientError } from '../core/errors.js';
import type { Operation, Target } from '../core/operations/model.js';
import type { OperationStore } from '../core/operations/store.js';
import { mapAwsError } from './dynamo-errors.js';
import { queryAllPages } from './dynamo-query.js';

type Item = Record<string, unknown>;
const RETENTION_S = 90 * 86_400;
const BATCH = 25;

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

  async createOperation(op: Operation, targets: Target[]): Promise<void> {
    // Targets first: an operation item is only visible (and driven) once all its targets exist.
    await this.batchPut(
      'createOperation',
      targets.map((t) => this.targetItem(t, op.createdAt)),
    );
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
    return next;
  }

  async listOperations(limit: number): Promise<Operation[]> {
    const out = await this.call('listOperations', () =>
      this.c.send(
        new QueryCommand({
          TableName: this.t,
          IndexName: 'gsi1',
          KeyConditionExpression: 'gsi1pk = :p',
          ExpressionAttributeValues: { ':p': 'OPS' },
          ScanIndexForward: false,
          Limit: limit,
        }),
      ),
    );
    // The index is eventually consistent: read each operation's current item.
    const ops = await Promise.all((out.Items ?? []).map((i) => this.getOperation(String(i.pk).slice(3))));
    return ops.filter((o): o is Operation => o !== undefined);
  }

  async listActive(): Promise<Operation[]> {
    // Active operations are recent ones: the newest 100 are scanned.
    return (await this.listOperations(100)).filter(
      (o) => o.status === 'running' || o.status === 'cancelling',
    );
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

  private async batchPut(what: string, items: Item[]): Promise<void> {
    for (let i = 0; i < items.length; i += BATCH) {
      let pending: Item[] = items.slice(i, i + BATCH).map((Item) => ({ PutRequest: { Item } }));
      for (let attempt = 1; pending.length > 0; attempt++) {
        const out = await this.call(what, () =>
          this.c.send(new BatchWriteCommand({ RequestItems: { [this.t]: pending as never } })),
        );
        pending = (out.UnprocessedItems?.[this.t] ?? []) as Item[];
        if (pending.length > 0) {
          if (attempt >= this.maxAttempts)
            throw new TransientError(
              'OPERATIONS_UNPROCESSED',
              `${what}: ${pending.length} writes still unprocessed after ${attempt} attempts`,
            );
          await this.sleep(Math.min(1000, 25 * 2 ** attempt));
        }
      }
    }
  }
}
