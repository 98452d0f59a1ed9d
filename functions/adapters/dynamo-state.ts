/**
 * Protocol state on DynamoDB (the `state` table, pk/sk, TTL on `expiresAt`): the Sparkplug host's node
 * and device records and the LwM2M server's registrations and pending requests. Records are stored
 * whole under `data` with a `version`; every put is conditional on the version the writer read, so a
 * stale death or a late birth from another invocation fails with ConflictError instead of
 * overwriting newer state (the state machines re-read and decide again).
 */
import {
  BatchGetCommand,
  DeleteCommand,
  type DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
  ScanCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import { TransientError } from '../core/errors.js';
import type {
  PendingRequest,
  PendingRequestStore,
  Registration,
  RegistrationStore,
} from '../core/lwm2m/server/state.js';
import type {
  DeviceKey,
  DeviceRecord,
  NodeKey,
  NodeRecord,
  SparkplugStateStore,
} from '../core/sparkplug/host/state.js';
import { mapAwsError } from './dynamo-errors.js';

/** BatchGetItem takes at most 100 keys per call. */
const BATCH_GET_MAX = 100;
/** BatchGetItem calls of one bulk read in flight at once. */
const BATCH_GET_CONCURRENCY = 4;
const BATCH_GET_ATTEMPTS = 5;

export interface DynamoStateOptions {
  client: DynamoDBDocumentClient;
  tableName: string;
  /** Protocol state of a silent device expires after this many days (TTL). */
  ttlDays?: number;
  clock?: () => number;
}

abstract class VersionedItems {
  protected readonly ttlSeconds: number;
  protected readonly clock: () => number;

  constructor(protected readonly o: DynamoStateOptions) {
    this.ttlSeconds = (o.ttlDays ?? 30) * 86_400;
    this.clock = o.clock ?? Date.now;
  }

  protected async getData<T>(pk: string, sk: string, what: string): Promise<T | undefined> {
    try {
      const out = await this.o.client.send(
        new GetCommand({ TableName: this.o.tableName, Key: { pk, sk }, ConsistentRead: true }),
      );
      if (!out.Item) return undefined;
      return { ...(out.Item.data as T), version: out.Item.version as number };
    } catch (error) {
      throw mapAwsError(error, what);
    }
  }

  /**
   * Strongly consistent bulk read (BatchGetItem, 100 keys per call, unprocessed keys retried with
   * backoff): the records that exist among `keys`, in no particular order.
   */
  protected async getManyData<T>(
    keys: Array<{ pk: string; sk: string }>,
    what: string,
    versionsOnly = false,
  ): Promise<T[]> {
    const out: T[] = [];
    const chunks: Array<Array<{ pk: string; sk: string }>> = [];
    for (let i = 0; i < keys.length; i += BATCH_GET_MAX) chunks.push(keys.slice(i, i + BATCH_GET_MAX));
    // The calls of one batch run BATCH_GET_CONCURRENCY at a time: a 500-record batch names ~700 keys, and
    // one call after another made the handler wait for 7 round trips before it could decode anything.
    let next = 0;
    let failing = false;
    const worker = async () => {
      while (next < chunks.length && !failing) {
        try {
          await readChunk(chunks[next++]!);
        } catch (error) {
          failing = true;
          throw error;
        }
      }
    };
    const readChunk = async (chunk: Array<{ pk: string; sk: string }>) => {
      let pending: Array<Record<string, unknown>> = chunk;
      for (let attempt = 1; pending.length > 0; attempt++) {
        if (attempt > BATCH_GET_ATTEMPTS) {
          throw new TransientError('AWS_UNPROCESSED', `${what}: ${pending.length} keys left unprocessed`);
        }
        if (attempt > 1) await new Promise((r) => setTimeout(r, 25 * 2 ** attempt));
        try {
          const res = await this.o.client.send(
            new BatchGetCommand({
              RequestItems: {
                [this.o.tableName]: {
                  Keys: pending,
                  ConsistentRead: true,
                  ...(versionsOnly ? { ProjectionExpression: 'pk, sk, version' } : {}),
                },
              },
            }),
          );
          for (const item of res.Responses?.[this.o.tableName] ?? []) {
            out.push(
              versionsOnly
                ? ({ pk: item.pk, sk: item.sk, version: item.version } as T)
                : { ...(item.data as T), version: item.version as number },
            );
          }
          pending = res.UnprocessedKeys?.[this.o.tableName]?.Keys ?? [];
        } catch (error) {
          throw mapAwsError(error, what);
        }
      }
    };
    const workers = Array.from({ length: Math.min(BATCH_GET_CONCURRENCY, chunks.length) }, worker);
    // Every call settles before the outcome is known (no call left running after a failure).
    const results = await Promise.allSettled(workers);
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
    return out;
  }

  protected async putVersioned(
    pk: string,
    sk: string,
    data: { version: number },
    expected: number | undefined,
    what: string,
  ): Promise<void> {
    const version = (expected ?? 0) + 1;
    try {
      await this.o.client.send(
        new PutCommand({
          TableName: this.o.tableName,
          Item: {
            pk,
            sk,
            version,
            data: { ...data, version },
            expiresAt: Math.floor(this.clock() / 1000) + this.ttlSeconds,
          },
          ConditionExpression: expected === undefined ? 'attribute_not_exists(pk)' : 'version = :v',
          ...(expected === undefined ? {} : { ExpressionAttributeValues: { ':v': expected } }),
        }),
      );
    } catch (error) {
      throw mapAwsError(error, what);
    }
  }
}

export class DynamoSparkplugStateStore extends VersionedItems implements SparkplugStateStore {
  getNode(group: string, node: string): Promise<NodeRecord | undefined> {
    return this.getData<NodeRecord>(`SP#${group}/${node}`, 'NODE', 'sparkplug.getNode');
  }

  putNode(record: NodeRecord, expectedVersion: number | undefined): Promise<void> {
    return this.putVersioned(
      `SP#${record.group}/${record.node}`,
      'NODE',
      record,
      expectedVersion,
      'sparkplug.putNode',
    );
  }

  getDevice(group: string, node: string, device: string): Promise<DeviceRecord | undefined> {
    return this.getData<DeviceRecord>(`SP#${group}/${node}`, `DEV#${device}`, 'sparkplug.getDevice');
  }

  async getMany(
    nodes: NodeKey[],
    devices: DeviceKey[],
  ): Promise<{ nodes: NodeRecord[]; devices: DeviceRecord[] }> {
    const keys = [
      ...nodes.map((k) => ({ pk: `SP#${k.group}/${k.node}`, sk: 'NODE' })),
      ...devices.map((k) => ({ pk: `SP#${k.group}/${k.node}`, sk: `DEV#${k.device}` })),
    ];
    const found = await this.getManyData<NodeRecord | DeviceRecord>(keys, 'sparkplug.getMany');
    return {
      nodes: found.filter((r): r is NodeRecord => !('device' in r)),
      devices: found.filter((r): r is DeviceRecord => 'device' in r),
    };
  }

  async getVersions(
    nodes: NodeKey[],
    devices: DeviceKey[],
  ): Promise<{ nodes: Map<string, number>; devices: Map<string, number> }> {
    const keys = [
      ...nodes.map((k) => ({ pk: `SP#${k.group}/${k.node}`, sk: 'NODE' })),
      ...devices.map((k) => ({ pk: `SP#${k.group}/${k.node}`, sk: `DEV#${k.device}` })),
    ];
    const found = await this.getManyData<{ pk: string; sk: string; version: number }>(
      keys,
      'sparkplug.getVersions',
      true,
    );
    const out = { nodes: new Map<string, number>(), devices: new Map<string, number>() };
    for (const item of found) {
      const path = item.pk.slice(3); // "SP#group/node"
      if (item.sk === 'NODE') out.nodes.set(path, item.version);
      else out.devices.set(`${path}/${item.sk.slice(4)}`, item.version); // "DEV#device"
    }
    return out;
  }

  putDevice(record: DeviceRecord, expectedVersion: number | undefined): Promise<void> {
    return this.putVersioned(
      `SP#${record.group}/${record.node}`,
      `DEV#${record.device}`,
      record,
      expectedVersion,
      'sparkplug.putDevice',
    );
  }
}

export class DynamoRegistrationStore extends VersionedItems implements RegistrationStore {
  get(endpoint: string): Promise<Registration | undefined> {
    return this.getData<Registration>(`LW#${endpoint}`, 'REG', 'lwm2m.getRegistration');
  }

  getMany(endpoints: string[]): Promise<Registration[]> {
    return this.getManyData<Registration>(
      endpoints.map((ep) => ({ pk: `LW#${ep}`, sk: 'REG' })),
      'lwm2m.getRegistrations',
    );
  }

  put(registration: Registration, expectedVersion: number | undefined): Promise<void> {
    return this.putVersioned(
      `LW#${registration.endpoint}`,
      'REG',
      registration,
      expectedVersion,
      'lwm2m.putRegistration',
    );
  }

  async delete(endpoint: string): Promise<void> {
    try {
      await this.o.client.send(
        new DeleteCommand({ TableName: this.o.tableName, Key: { pk: `LW#${endpoint}`, sk: 'REG' } }),
      );
    } catch (error) {
      throw mapAwsError(error, 'lwm2m.deleteRegistration');
    }
  }
}

export class DynamoPendingRequestStore extends VersionedItems implements PendingRequestStore {
  async allocateToken(endpoint: string): Promise<number> {
    try {
      // An atomic counter per endpoint; tokens wrap within uint32 (a wrapped token that is still
      // pending is astronomically unlikely: requests time out within minutes).
      const out = await this.o.client.send(
        new UpdateCommand({
          TableName: this.o.tableName,
          Key: { pk: `LW#${endpoint}`, sk: 'TOKEN' },
          UpdateExpression: 'ADD #n :one',
          ExpressionAttributeNames: { '#n': 'next' },
          ExpressionAttributeValues: { ':one': 1 },
          ReturnValues: 'UPDATED_NEW',
        }),
      );
      return ((Number(out.Attributes?.next ?? 1) - 1) % 0xffff_ffff) + 1;
    } catch (error) {
      throw mapAwsError(error, 'lwm2m.allocateToken');
    }
  }

  async put(request: PendingRequest): Promise<void> {
    try {
      await this.o.client.send(
        new PutCommand({
          TableName: this.o.tableName,
          Item: {
            pk: `LW#${request.endpoint}`,
            sk: `REQ#${request.token}`,
            data: request,
            deadline: request.deadline,
            expiresAt: Math.floor(request.deadline / 1000) + 86_400,
          },
        }),
      );
    } catch (error) {
      throw mapAwsError(error, 'lwm2m.putPending');
    }
  }

  async take(endpoint: string, token: number): Promise<PendingRequest | undefined> {
    try {
      const out = await this.o.client.send(
        new DeleteCommand({
          TableName: this.o.tableName,
          Key: { pk: `LW#${endpoint}`, sk: `REQ#${token}` },
          ReturnValues: 'ALL_OLD',
        }),
      );
      return out.Attributes?.data as PendingRequest | undefined;
    } catch (error) {
      throw mapAwsError(error, 'lwm2m.takePending');
    }
  }

  /** A sweep (Scan with a filter): meant for a periodic timer, not the hot path. */
  async takeExpired(now: number): Promise<PendingRequest[]> {
    const out: PendingRequest[] = [];
    let start: Record<string, unknown> | undefined;
    try {
      do {
        const page = await this.o.client.send(
          new ScanCommand({
            TableName: this.o.tableName,
            FilterExpression: 'begins_with(sk, :req) AND deadline <= :now',
            ExpressionAttributeValues: { ':req': 'REQ#', ':now': now },
            ExclusiveStartKey: start,
          }),
        );
        for (const item of page.Items ?? []) {
          const taken = await this.take(
            (item.data as PendingRequest).endpoint,
            (item.data as PendingRequest).token,
          );
          if (taken) out.push(taken);
        }
        start = page.LastEvaluatedKey;
      } while (start);
    } catch (error) {
      throw mapAwsError(error, 'lwm2m.takeExpired');
    }
    return out;
  }

  async deleteEndpoint(endpoint: string): Promise<void> {
    try {
      const page = await this.o.client.send(
        new QueryCommand({
          TableName: this.o.tableName,
          KeyConditionExpression: 'pk = :pk AND begins_with(sk, :req)',
          ExpressionAttributeValues: { ':pk': `LW#${endpoint}`, ':req': 'REQ#' },
        }),
      );
      for (const item of page.Items ?? []) {
        await this.o.client.send(
          new DeleteCommand({ TableName: this.o.tableName, Key: { pk: item.pk, sk: item.sk } }),
        );
      }
    } catch (error) {
      throw mapAwsError(error, 'lwm2m.deleteEndpoint');
    }
  }
}
