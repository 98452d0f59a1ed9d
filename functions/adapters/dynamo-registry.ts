/**
 * The registry on DynamoDB, single table (ADR 0008):
 *   device        pk DEVICE#{id}  sk META        gsi1pk TYPE#{type} gsi1sk DEVICE#{id}
 *   device type   pk TYPE#{id}    sk META        gsi1pk TYPES       gsi1sk {id}
 *   application   pk APP#{id}     sk META        gsi1pk APPS        gsi1sk {name}
 *   subscription  pk TYPE#{type}  sk APP#{id}    (one Query gives a type and its applications)
 *   key lookup    pk APPKEY#{sha256}  sk META    → application id
 *   command       pk DEVICE#{id}  sk CMD#{commandId}
 */
import {
  BatchGetCommand,
  BatchWriteCommand,
  DeleteCommand,
  type DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
  ScanCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import { ConflictError, TransientError } from '../core/errors.js';
import {
  type Application,
  type Command,
  type Device,
  type DeviceFilter,
  type DeviceType,
  decodePageToken,
  encodePageToken,
  type Page,
  type RegistryPort,
} from '../core/registry.js';
import { mapAwsError } from './dynamo-errors.js';

export interface DynamoRegistryOptions {
  client: DynamoDBDocumentClient;
  tableName: string;
  sleep?: (ms: number) => Promise<void>;
}

type Item = Record<string, unknown>;

export class DynamoRegistry implements RegistryPort {
  private readonly t: string;
  private readonly c: DynamoDBDocumentClient;
  private readonly sleep: (ms: number) => Promise<void>;

  constructor(o: DynamoRegistryOptions) {
    this.t = o.tableName;
    this.c = o.client;
    this.sleep = o.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms)));
  }

  private async call<T>(what: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (error) {
      throw mapAwsError(error, `registry.${what}`);
    }
  }

  private async get(pk: string, sk = 'META'): Promise<Item | undefined> {
    return this.call(
      'get',
      async () => (await this.c.send(new GetCommand({ TableName: this.t, Key: { pk, sk } }))).Item,
    );
  }

  // ---- devices ---------------------------------------------------------------------------------

  async getDevice(id: string): Promise<Device | undefined> {
    return (await this.get(`DEVICE#${id}`))?.device as Device | undefined;
  }

  async getDevices(ids: string[]): Promise<Map<string, Device>> {
    const out = new Map<string, Device>();
    const unique = [...new Set(ids)];
    for (let i = 0; i < unique.length; i += 100) {
      let keys: Item[] = unique.slice(i, i + 100).map((id) => ({ pk: `DEVICE#${id}`, sk: 'META' }));
      for (let attempt = 0; keys.length > 0; attempt++) {
        const res = await this.call('getDevices', () =>
          this.c.send(new BatchGetCommand({ RequestItems: { [this.t]: { Keys: keys } } })),
        );
        for (const item of res.Responses?.[this.t] ?? []) {
          const d = item.device as Device;
          out.set(d.id, d);
        }
        keys = (res.UnprocessedKeys?.[this.t]?.Keys ?? []) as Item[];
        if (keys.length > 0) {
          if (attempt >= 8)
            throw new TransientError('REGISTRY_UNPROCESSED', `${keys.length} device keys left unprocessed`);
          await this.sleep(20 * 2 ** attempt);
        }
      }
    }
    return out;
  }

  async putDevice(device: Device): Promise<void> {
    await this.call('putDevice', () =>
      this.c.send(
        new PutCommand({
          TableName: this.t,
          Item: {
            pk: `DEVICE#${device.id}`,
            sk: 'META',
            gsi1pk: `TYPE#${device.type}`,
            gsi1sk: `DEVICE#${device.id}`,
            device,
          },
        }),
      ),
    );
  }

  async updateDevice(id: string, patch: Partial<Omit<Device, 'id' | 'createdAt'>>): Promise<void> {
    const entries = Object.entries(patch).filter(([, v]) => v !== undefined);
    if (entries.length === 0) return;
    const names: Record<string, string> = { '#d': 'device' };
    const values: Record<string, unknown> = {};
    const sets = entries.map(([k, v], i) => {
      names[`#f${i}`] = k;
      values[`:v${i}`] = v;
      return `#d.#f${i} = :v${i}`;
    });
    if (patch.type !== undefined) {
      names['#g'] = 'gsi1pk';
      values[':g'] = `TYPE#${patch.type}`;
      sets.push('#g = :g');
    }
    try {
      await this.c.send(
        new UpdateCommand({
          TableName: this.t,
          Key: { pk: `DEVICE#${id}`, sk: 'META' },
          UpdateExpression: `SET ${sets.join(', ')}`,
          ConditionExpression: 'attribute_exists(pk)',
          ExpressionAttributeNames: names,
          ExpressionAttributeValues: values,
        }),
      );
    } catch (error) {
      const mapped = mapAwsError(error, 'registry.updateDevice');
      if (mapped instanceof ConflictError) return; // deleted meanwhile: nothing to update
      throw mapped;
    }
  }

  async deleteDevice(id: string): Promise<boolean> {
    const out = await this.call('deleteDevice', () =>
      this.c.send(
        new DeleteCommand({
          TableName: this.t,
          Key: { pk: `DEVICE#${id}`, sk: 'META' },
          ReturnValues: 'ALL_OLD',
        }),
      ),
    );
    return out.Attributes !== undefined;
  }

  async listDevices(filter: DeviceFilter): Promise<Page<Device>> {
    const limit = Math.min(filter.limit ?? 100, 1000);
    const start = filter.nextToken ? (decodePageToken(filter.nextToken) as Item) : undefined;
    const conds: string[] = [];
    const names: Record<string, string> = {};
    const values: Record<string, unknown> = {};
    if (filter.protocol) {
      conds.push('contains(#d.protocols, :p)');
      values[':p'] = filter.protocol;
    }
    if (filter.status) {
      conds.push('#d.#s = :s');
      names['#s'] = 'status';
      values[':s'] = filter.status;
    }
    if (filter.group) {
      conds.push('#d.#g = :g');
      names['#g'] = 'group';
      values[':g'] = filter.group;
    }
    if (conds.length > 0) names['#d'] = 'device';
    const items: Device[] = [];
    let cursor: Item | undefined = start;
    do {
      const base = {
        TableName: this.t,
        ExclusiveStartKey: cursor,
        Limit: limit - items.length,
        ...(conds.length > 0 ? { FilterExpression: conds.join(' AND ') } : {}),
      };
      const page = filter.type
        ? await this.call('listDevices', () =>
            this.c.send(
              new QueryCommand({
                ...base,
                IndexName: 'gsi1',
                KeyConditionExpression: 'gsi1pk = :t AND begins_with(gsi1sk, :dev)',
                ExpressionAttributeValues: { ...values, ':t': `TYPE#${filter.type}`, ':dev': 'DEVICE#' },
                ...(Object.keys(names).length > 0 ? { ExpressionAttributeNames: names } : {}),
              }),
            ),
          )
        : await this.call('listDevices', () =>
            this.c.send(
              new ScanCommand({
                ...base,
                FilterExpression: ['begins_with(pk, :dev) AND sk = :meta', ...conds].join(' AND '),
                ExpressionAttributeValues: { ...values, ':dev': 'DEVICE#', ':meta': 'META' },
                ...(Object.keys(names).length > 0 ? { ExpressionAttributeNames: names } : {}),
              }),
            ),
          );
      for (const item of page.Items ?? []) items.push(item.device as Device);
      cursor = page.LastEvaluatedKey;
    } while (cursor && items.length < limit);
    items.sort((a, b) => (a.id < b.id ? -1 : 1));
    return cursor ? { items, nextToken: encodePageToken(cursor) } : { items };
  }

  // ---- device types ----------------------------------------------------------------------------

  async getDeviceType(id: string): Promise<DeviceType | undefined> {
    return (await this.get(`TYPE#${id}`))?.deviceType as DeviceType | undefined;
  }

  async getTypeWithApps(id: string): Promise<{ type?: DeviceType; applications: string[] }> {
    const out = await this.call('getTypeWithApps', () =>
      this.c.send(
        new QueryCommand({
          TableName: this.t,
          KeyConditionExpression: 'pk = :pk',
          ExpressionAttributeValues: { ':pk': `TYPE#${id}` },
        }),
      ),
    );
    let type: DeviceType | undefined;
    const applications: string[] = [];
    for (const item of out.Items ?? []) {
      if (item.sk === 'META') type = item.deviceType as DeviceType;
      else if (typeof item.sk === 'string' && item.sk.startsWith('APP#')) applications.push(item.sk.slice(4));
    }
    return type ? { type, applications } : { applications };
  }

  async putDeviceType(type: DeviceType): Promise<void> {
    await this.call('putDeviceType', () =>
      this.c.send(
        new PutCommand({
          TableName: this.t,
          Item: { pk: `TYPE#${type.id}`, sk: 'META', gsi1pk: 'TYPES', gsi1sk: type.id, deviceType: type },
        }),
      ),
    );
  }

  async deleteDeviceType(id: string): Promise<boolean> {
    const used = await this.listDevices({ type: id, limit: 1 });
    if (used.items.length > 0)
      throw new ConflictError(`device type "${id}" is still used by devices`, { field: 'type' });
    const out = await this.call('deleteDeviceType', () =>
      this.c.send(
        new DeleteCommand({
          TableName: this.t,
          Key: { pk: `TYPE#${id}`, sk: 'META' },
          ReturnValues: 'ALL_OLD',
        }),
      ),
    );
    return out.Attributes !== undefined;
  }

  async listDeviceTypes(): Promise<DeviceType[]> {
    const out = await this.call('listDeviceTypes', () =>
      this.c.send(
        new QueryCommand({
          TableName: this.t,
          IndexName: 'gsi1',
          KeyConditionExpression: 'gsi1pk = :t',
          ExpressionAttributeValues: { ':t': 'TYPES' },
        }),
      ),
    );
    return (out.Items ?? []).map((i) => i.deviceType as DeviceType);
  }

  // ---- applications ----------------------------------------------------------------------------

  /**
   * Key lookup and subscriptions first, the application item last, so a reader never sees an
   * application whose key does not resolve. BatchWriteItem, not a transaction: dynalite (the local
   * emulator) has no TransactWriteItems, and each item is idempotent on replay (ADR 0008).
   */
  async putApplication(app: Application, previous?: Application): Promise<void> {
    const puts: Item[] = [
      { pk: `APPKEY#${app.keyHash}`, sk: 'META', appId: app.id },
      ...app.deviceTypes.map((t) => ({ pk: `TYPE#${t}`, sk: `APP#${app.id}`, appId: app.id })),
    ];
    const deletes: Item[] = [];
    if (previous) {
      if (previous.keyHash !== app.keyHash) deletes.push({ pk: `APPKEY#${previous.keyHash}`, sk: 'META' });
      for (const t of previous.deviceTypes.filter((x) => !app.deviceTypes.includes(x))) {
        deletes.push({ pk: `TYPE#${t}`, sk: `APP#${app.id}` });
      }
    }
    await this.batchWrite(puts, []);
    await this.call('putApplication', () =>
      this.c.send(
        new PutCommand({
          TableName: this.t,
          Item: { pk: `APP#${app.id}`, sk: 'META', gsi1pk: 'APPS', gsi1sk: app.name, application: app },
        }),
      ),
    );
    await this.batchWrite([], deletes);
  }

  private async batchWrite(puts: Item[], deletes: Item[]): Promise<void> {
    let requests: Item[] = [
      ...puts.map((Item) => ({ PutRequest: { Item } })),
      ...deletes.map((Key) => ({ DeleteRequest: { Key } })),
    ];
    while (requests.length > 0) {
      let chunk = requests.slice(0, 25);
      requests = requests.slice(25);
      for (let attempt = 0; chunk.length > 0; attempt++) {
        const out = await this.call('batchWrite', () =>
          this.c.send(new BatchWriteCommand({ RequestItems: { [this.t]: chunk as never } })),
        );
        chunk = (out.UnprocessedItems?.[this.t] ?? []) as Item[];
        if (chunk.length > 0) {
          if (attempt >= 8)
            throw new TransientError(
              'REGISTRY_UNPROCESSED',
              `${chunk.length} registry writes left unprocessed`,
            );
          await this.sleep(20 * 2 ** attempt);
        }
      }
    }
  }

  async getApplication(id: string): Promise<Application | undefined> {
    return (await this.get(`APP#${id}`))?.application as Application | undefined;
  }

  async findApplicationByKeyHash(keyHash: string): Promise<Application | undefined> {
    const ref = await this.get(`APPKEY#${keyHash}`);
    if (typeof ref?.appId !== 'string') return undefined;
    const app = await this.getApplication(ref.appId);
    // A rotated key's lookup item may briefly outlive the rotation: the application decides.
    return app?.keyHash === keyHash ? app : undefined;
  }

  async listApplications(filter: { deviceType?: string } = {}): Promise<Application[]> {
    if (filter.deviceType) {
      const { applications } = await this.getTypeWithApps(filter.deviceType);
      const apps = await Promise.all(applications.map((id) => this.getApplication(id)));
      return apps.filter((a): a is Application => a !== undefined);
    }
    const out = await this.call('listApplications', () =>
      this.c.send(
        new QueryCommand({
          TableName: this.t,
          IndexName: 'gsi1',
          KeyConditionExpression: 'gsi1pk = :a',
          ExpressionAttributeValues: { ':a': 'APPS' },
        }),
      ),
    );
    return (out.Items ?? []).map((i) => i.application as Application);
  }

  async deleteApplication(id: string): Promise<boolean> {
    const app = await this.getApplication(id);
    if (!app) return false;
    // The application item first: once it is gone its key no longer authenticates.
    await this.call('deleteApplication', () =>
      this.c.send(new DeleteCommand({ TableName: this.t, Key: { pk: `APP#${id}`, sk: 'META' } })),
    );
    await this.batchWrite(
      [],
      [
        { pk: `APPKEY#${app.keyHash}`, sk: 'META' },
        ...app.deviceTypes.map((t) => ({ pk: `TYPE#${t}`, sk: `APP#${id}` })),
      ],
    );
    return true;
  }

  // ---- commands --------------------------------------------------------------------------------

  async putCommand(command: Command): Promise<void> {
    await this.call('putCommand', () =>
      this.c.send(
        new PutCommand({
          TableName: this.t,
          Item: {
            pk: `DEVICE#${command.deviceId}`,
            sk: `CMD#${command.commandId}`,
            command,
            expiresAt: Math.floor(command.createdAt / 1000) + 30 * 86_400,
          },
        }),
      ),
    );
  }

  async getCommand(deviceId: string, commandId: string): Promise<Command | undefined> {
    return (await this.get(`DEVICE#${deviceId}`, `CMD#${commandId}`))?.command as Command | undefined;
  }

  async completeCommand(
    deviceId: string,
    commandId: string,
    patch: Pick<Command, 'status' | 'response' | 'updatedAt'>,
  ): Promise<void> {
    await this.call('completeCommand', () =>
      this.c.send(
        new UpdateCommand({
          TableName: this.t,
          Key: { pk: `DEVICE#${deviceId}`, sk: `CMD#${commandId}` },
          UpdateExpression: 'SET #c.#s = :s, #c.#r = :r, #c.#u = :u',
          ConditionExpression: '#c.#s = :pending',
          ExpressionAttributeNames: { '#c': 'command', '#s': 'status', '#r': 'response', '#u': 'updatedAt' },
          ExpressionAttributeValues: {
            ':s': patch.status,
            ':r': patch.response ?? {},
            ':u': patch.updatedAt,
            ':pending': 'pending',
          },
        }),
      ),
    );
  }

  async listCommands(deviceId: string, limit = 50): Promise<Command[]> {
    const out = await this.call('listCommands', () =>
      this.c.send(
        new QueryCommand({
          TableName: this.t,
          KeyConditionExpression: 'pk = :pk AND begins_with(sk, :c)',
          ExpressionAttributeValues: { ':pk': `DEVICE#${deviceId}`, ':c': 'CMD#' },
          ScanIndexForward: false,
          Limit: limit,
        }),
      ),
    );
    return (out.Items ?? []).map((i) => i.command as Command).sort((a, b) => b.createdAt - a.createdAt);
  }
}
