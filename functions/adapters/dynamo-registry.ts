/**
 * The registry on DynamoDB, one table (ADR 0008). Items keep the domain object under one attribute
 * (`device`, `deviceType`, `application`, `command`) next to their keys:
 *   device        pk DEVICE#{id}      sk META             gsi1pk TYPE#{type}  gsi1sk DEVICE#{id}
 *   device type   pk TYPE#{id}        sk META             gsi1pk TYPES        gsi1sk {id}
 *   application   pk APP#{id}         sk META             gsi1pk APPS         gsi1sk {name}
 *   subscription  pk TYPE#{type}      sk APP#{id}         (one Query gives a type and its applications)
 *   key lookup    pk APPKEY#{sha256}  sk META             → application id
 *   command       pk DEVICE#{id}      sk CMD#{commandId}  expiresAt (TTL, epoch seconds)
 * A device item also has a top-level string set `protocols`: ingest adds to it with `ADD` (atomic, so
 * the two ingest paths never overwrite each other's protocol); a device read is `device` with
 * `device.protocols` merged with that set.
 * Errors: throttling / 5xx → TransientError, failed conditions → ConflictError (dynamo-errors.ts).
 */
import {
  BatchGetCommand,
  DeleteCommand,
  type DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
  type QueryCommandInput,
  ScanCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import { ConflictError, NotFoundError, TransientError, ValidationError } from '../core/errors.js';
import {
  type Application,
  type Command,
  type CommandPatch,
  commandExpiresAt,
  type Device,
  type DeviceFilter,
  type DeviceType,
  decodeKeyToken,
  encodePageToken,
  mergeProtocols,
  type Page,
  type RegistryPort,
  type WriteMode,
} from '../core/registry.js';
import { mapTransactionError } from './dynamo-errors.js';
import {
  backoffMs,
  batchWriteAll,
  queryAllPages,
  TRANSACT_WRITE_MAX,
  type TransactItem,
  type TransactionSupport,
  transactWrite,
} from './dynamo-query.js';

export interface DynamoRegistryOptions {
  client: DynamoDBDocumentClient;
  /** The registry table (injected from config, never hard-coded). */
  tableName: string;
  /**
   * Application writes are one TransactWriteItems call. `undefined` (default): use transactions and
   * fall back to ordered single-item writes if the endpoint does not know the operation (dynalite).
   */
  transactions?: boolean;
  /** Attempts for BatchGet/BatchWrite unprocessed items before a TransientError (default 8). */
  maxBatchAttempts?: number;
  sleep?: (ms: number) => Promise<void>;
}

type Item = Record<string, unknown>;

const META = 'META';
const BATCH_GET_MAX = 100;

const deviceKey = (id: string) => ({ pk: `DEVICE#${id}`, sk: META });
/** The top-level string set ingest adds protocols to (ADD works on top-level attributes only). */
const PROTOCOL_SET = 'protocols';

/** The device of a device item: its `device` map, with the protocols of the set merged in. */
function deviceOf(item: Item): Device {
  const device = item.device as Device;
  const set = item[PROTOCOL_SET];
  const added = set instanceof Set ? ([...set] as Device['protocols']) : [];
  return { ...device, protocols: mergeProtocols(device.protocols, added) };
}

export class DynamoRegistry implements RegistryPort {
  private readonly t: string;
  private readonly c: DynamoDBDocumentClient;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly maxAttempts: number;
  private readonly support: TransactionSupport;

  constructor(o: DynamoRegistryOptions) {
    this.t = o.tableName;
    this.c = o.client;
    this.support = { transactions: o.transactions };
    this.maxAttempts = o.maxBatchAttempts ?? 8;
    this.sleep = o.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms)));
  }

  private async call<T>(what: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (error) {
      throw mapTransactionError(error, `registry.${what}`);
    }
  }

  private async get(what: string, pk: string, sk = META): Promise<Item | undefined> {
    return this.call(
      what,
      async () => (await this.c.send(new GetCommand({ TableName: this.t, Key: { pk, sk } }))).Item,
    );
  }

  /** BatchGetItem in chunks of 100, retrying UnprocessedKeys with exponential backoff. */
  private async batchGet(what: string, keys: Item[]): Promise<Item[]> {
    const out: Item[] = [];
    for (let i = 0; i < keys.length; i += BATCH_GET_MAX) {
      let pending = keys.slice(i, i + BATCH_GET_MAX);
      for (let attempt = 1; pending.length > 0; attempt++) {
        const res = await this.call(what, () =>
          this.c.send(new BatchGetCommand({ RequestItems: { [this.t]: { Keys: pending } } })),
        );
        out.push(...(res.Responses?.[this.t] ?? []));
        pending = (res.UnprocessedKeys?.[this.t]?.Keys ?? []) as Item[];
        if (pending.length > 0) {
          if (attempt >= this.maxAttempts) {
            throw new TransientError(
              'REGISTRY_UNPROCESSED',
              `${what}: ${pending.length} keys still unprocessed after ${attempt} attempts`,
            );
          }
          await this.sleep(backoffMs(attempt));
        }
      }
    }
    return out;
  }

  /** BatchWriteItem in chunks of 25, retrying UnprocessedItems. */
  private batchWrite(what: string, puts: Item[], deletes: Item[]): Promise<void> {
    const requests: Item[] = [
      ...puts.map((Item) => ({ PutRequest: { Item } })),
      ...deletes.map((Key) => ({ DeleteRequest: { Key } })),
    ];
    return batchWriteAll(this.c, this.t, requests, {
      what,
      code: 'REGISTRY_UNPROCESSED',
      maxAttempts: this.maxAttempts,
      sleep: this.sleep,
      call: (fn) => this.call(what, fn),
    });
  }

  /** Every page of a query (the registry's lists are small: types, applications, one device's commands). */
  private queryAll(what: string, input: Omit<QueryCommandInput, 'TableName'>): Promise<Item[]> {
    return queryAllPages(this.c, this.t, input, (fn) => this.call(what, fn));
  }

  private async putItem(what: string, item: Item, mode: WriteMode, label: string): Promise<void> {
    const condition =
      mode === 'create'
        ? { ConditionExpression: 'attribute_not_exists(pk)' }
        : mode === 'update'
          ? { ConditionExpression: 'attribute_exists(pk)' }
          : {};
    try {
      await this.call(what, () =>
        this.c.send(new PutCommand({ TableName: this.t, Item: item, ...condition })),
      );
    } catch (error) {
      if (error instanceof ConflictError) {
        if (mode === 'update') throw new NotFoundError(`${label} not found`, { field: 'id', cause: error });
        throw new ConflictError(`${label} already exists`, { field: 'id', cause: error });
      }
      throw error;
    }
  }

  // ---- devices ---------------------------------------------------------------------------------

  async getDevice(id: string): Promise<Device | undefined> {
    const item = await this.get('getDevice', `DEVICE#${id}`);
    return item?.device ? deviceOf(item) : undefined;
  }

  async getDevices(ids: string[]): Promise<Map<string, Device>> {
    const out = new Map<string, Device>();
    const items = await this.batchGet('getDevices', [...new Set(ids)].map(deviceKey));
    for (const item of items) {
      const d = deviceOf(item);
      out.set(d.id, d);
    }
    return out;
  }

  async putDevice(device: Device, mode: WriteMode = 'upsert'): Promise<void> {
    const protocols = mergeProtocols(device.protocols);
    const item: Item = {
      ...deviceKey(device.id),
      gsi1pk: `TYPE#${device.type}`,
      gsi1sk: `DEVICE#${device.id}`,
      device: { ...device, protocols },
    };
    // A string set cannot be empty: the attribute appears with the first protocol.
    if (protocols.length > 0) item[PROTOCOL_SET] = new Set(protocols);
    await this.putItem('putDevice', item, mode, `device ${device.id}`);
  }

  async updateDevice(id: string, patch: Partial<Omit<Device, 'id' | 'createdAt'>>): Promise<void> {
    // `protocols` is not SET but ADDed to the top-level string set: atomic, never a lost update.
    const entries = Object.entries(patch).filter(
      ([k, v]) => v !== undefined && k !== 'id' && k !== 'createdAt' && k !== 'protocols',
    );
    const added = mergeProtocols(patch.protocols);
    if (entries.length === 0 && added.length === 0) return;
    const names: Record<string, string> = {};
    const values: Record<string, unknown> = {};
    const sets = entries.map(([k, v], i) => {
      names['#d'] = 'device';
      names[`#f${i}`] = k;
      values[`:v${i}`] = v;
      return `#d.#f${i} = :v${i}`;
    });
    if (patch.type !== undefined) {
      names['#g'] = 'gsi1pk';
      values[':g'] = `TYPE#${patch.type}`;
      sets.push('#g = :g');
    }
    const clauses = sets.length > 0 ? [`SET ${sets.join(', ')}`] : [];
    if (added.length > 0) {
      names['#ps'] = PROTOCOL_SET;
      values[':ps'] = new Set(added);
      clauses.push('ADD #ps :ps');
    }
    try {
      await this.call('updateDevice', () =>
        this.c.send(
          new UpdateCommand({
            TableName: this.t,
            Key: deviceKey(id),
            UpdateExpression: clauses.join(' '),
            ConditionExpression: 'attribute_exists(pk)',
            ExpressionAttributeNames: names,
            ExpressionAttributeValues: values,
          }),
        ),
      );
    } catch (error) {
      if (error instanceof ConflictError) return; // deleted meanwhile: nothing to update
      throw error;
    }
  }

  async deleteDevice(id: string): Promise<boolean> {
    const out = await this.call('deleteDevice', () =>
      this.c.send(new DeleteCommand({ TableName: this.t, Key: deviceKey(id), ReturnValues: 'ALL_OLD' })),
    );
    return out.Attributes !== undefined;
  }

  /**
   * With a type: a Query on gsi1 (TYPE#{type}); otherwise a Scan of device items. protocol, status and
   * group are FilterExpressions (server-side). Pages are filled up to `limit` across DynamoDB pages.
   */
  async listDevices(filter: DeviceFilter): Promise<Page<Device>> {
    const limit = Math.max(1, Math.min(filter.limit ?? 100, 1000));
    let cursor: Item | undefined;
    if (filter.nextToken) {
      cursor = decodeKeyToken(
        filter.nextToken,
        filter.type ? ['pk', 'sk', 'gsi1pk', 'gsi1sk'] : ['pk', 'sk'],
      );
      const fits = filter.type
        ? cursor.gsi1pk === `TYPE#${filter.type}`
        : String(cursor.pk).startsWith('DEVICE#');
      if (!fits) {
        throw new ValidationError('nextToken belongs to a different listing', { field: 'nextToken' });
      }
    }
    const conds: string[] = [];
    const names: Record<string, string> = {};
    const values: Record<string, unknown> = {};
    if (filter.protocol) {
      // Listed in the device map (written whole by putDevice) or added to the set by ingest.
      conds.push('(contains(#d.#p, :p) OR contains(#p, :p))');
      names['#p'] = 'protocols';
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
    if (filter.tags) {
      // A filter expression on the device map's tags (names and values as placeholders: any key is safe).
      names['#tags'] = 'tags';
      Object.entries(filter.tags).forEach(([k, v], i) => {
        names[`#tk${i}`] = k;
        if (v === undefined) conds.push(`attribute_exists(#d.#tags.#tk${i})`);
        else {
          conds.push(`#d.#tags.#tk${i} = :tv${i}`);
          values[`:tv${i}`] = v;
        }
      });
    }
    if (conds.length > 0) names['#d'] = 'device';
    const withNames = Object.keys(names).length > 0 ? { ExpressionAttributeNames: names } : {};
    const items: Device[] = [];
    do {
      const base = { TableName: this.t, ExclusiveStartKey: cursor, Limit: limit - items.length };
      const page = filter.type
        ? await this.call('listDevices', () =>
            this.c.send(
              new QueryCommand({
                ...base,
                IndexName: 'gsi1',
                KeyConditionExpression: 'gsi1pk = :t',
                ExpressionAttributeValues: { ...values, ':t': `TYPE#${filter.type}` },
                ...(conds.length > 0 ? { FilterExpression: conds.join(' AND ') } : {}),
                ...withNames,
              }),
            ),
          )
        : await this.call('listDevices', () =>
            this.c.send(
              new ScanCommand({
                ...base,
                FilterExpression: ['begins_with(pk, :dev) AND sk = :meta', ...conds].join(' AND '),
                ExpressionAttributeValues: { ...values, ':dev': 'DEVICE#', ':meta': META },
                ...withNames,
              }),
            ),
          );
      for (const item of page.Items ?? []) items.push(deviceOf(item));
      cursor = page.LastEvaluatedKey;
    } while (cursor && items.length < limit);
    return cursor ? { items, nextToken: encodePageToken(cursor) } : { items };
  }

  // ---- device types ----------------------------------------------------------------------------

  async getDeviceType(id: string): Promise<DeviceType | undefined> {
    return (await this.get('getDeviceType', `TYPE#${id}`))?.deviceType as DeviceType | undefined;
  }

  async getTypeWithApps(id: string): Promise<{ type?: DeviceType; applications: string[] }> {
    const items = await this.queryAll('getTypeWithApps', {
      KeyConditionExpression: 'pk = :pk',
      ExpressionAttributeValues: { ':pk': `TYPE#${id}` },
    });
    let type: DeviceType | undefined;
    const applications: string[] = [];
    for (const item of items) {
      if (item.sk === META) type = item.deviceType as DeviceType;
      else if (typeof item.sk === 'string' && item.sk.startsWith('APP#')) applications.push(item.sk.slice(4));
    }
    return type ? { type, applications } : { applications };
  }

  async putDeviceType(type: DeviceType, mode: WriteMode = 'upsert'): Promise<void> {
    const item = { pk: `TYPE#${type.id}`, sk: META, gsi1pk: 'TYPES', gsi1sk: type.id, deviceType: type };
    await this.putItem('putDeviceType', item, mode, `device type ${type.id}`);
  }

  async deleteDeviceType(id: string): Promise<boolean> {
    const used = await this.listDevices({ type: id, limit: 1 });
    if (used.items.length > 0) {
      throw new ConflictError(`device type "${id}" is still used by devices`, { field: 'type' });
    }
    const out = await this.call('deleteDeviceType', () =>
      this.c.send(
        new DeleteCommand({
          TableName: this.t,
          Key: { pk: `TYPE#${id}`, sk: META },
          ReturnValues: 'ALL_OLD',
        }),
      ),
    );
    return out.Attributes !== undefined;
  }

  async listDeviceTypes(): Promise<DeviceType[]> {
    const items = await this.queryAll('listDeviceTypes', {
      IndexName: 'gsi1',
      KeyConditionExpression: 'gsi1pk = :t',
      ExpressionAttributeValues: { ':t': 'TYPES' },
    });
    return items.map((i) => i.deviceType as DeviceType);
  }

  // ---- applications ----------------------------------------------------------------------------

  async putApplication(app: Application, previous?: Application): Promise<void> {
    const types = [...new Set(app.deviceTypes)];
    const appItem = { pk: `APP#${app.id}`, sk: META, gsi1pk: 'APPS', gsi1sk: app.name, application: app };
    const lookups: Item[] = [
      { pk: `APPKEY#${app.keyHash}`, sk: META, appId: app.id },
      ...types.map((t) => ({ pk: `TYPE#${t}`, sk: `APP#${app.id}`, appId: app.id })),
    ];
    const deletes: Item[] = [];
    if (previous) {
      if (previous.keyHash !== app.keyHash) deletes.push({ pk: `APPKEY#${previous.keyHash}`, sk: META });
      for (const t of new Set(previous.deviceTypes)) {
        if (!types.includes(t)) deletes.push({ pk: `TYPE#${t}`, sk: `APP#${app.id}` });
      }
    }
    // With `previous`, the write holds only if nobody changed the key since it was read.
    const guard = previous
      ? {
          ConditionExpression: '#a.#k = :prev',
          ExpressionAttributeNames: { '#a': 'application', '#k': 'keyHash' },
          ExpressionAttributeValues: { ':prev': previous.keyHash },
        }
      : {};
    const tx: TransactItem[] = [
      { Put: { TableName: this.t, Item: appItem, ...guard } },
      ...lookups.map((Item) => ({ Put: { TableName: this.t, Item } })),
      ...deletes.map((Key) => ({ Delete: { TableName: this.t, Key } })),
    ];
    if (await this.transact('putApplication', tx)) return;
    // Ordered fallback: lookups first and removals last, so a reader never sees an application whose
    // current key does not resolve; every step is idempotent on replay.
    await this.batchWrite('putApplication', lookups, []);
    await this.call('putApplication', () =>
      this.c.send(new PutCommand({ TableName: this.t, Item: appItem, ...guard })),
    );
    await this.batchWrite('putApplication', [], deletes);
  }

  /**
   * One TransactWriteItems call; false when transactions are off, unsupported by the endpoint
   * (remembered), or the write is larger than one transaction allows.
   */
  private transact(what: string, items: TransactItem[]): Promise<boolean> {
    if (items.length > TRANSACT_WRITE_MAX) return Promise.resolve(false);
    return transactWrite(this.c, items, this.support, `registry.${what}`);
  }

  async getApplication(id: string): Promise<Application | undefined> {
    return (await this.get('getApplication', `APP#${id}`))?.application as Application | undefined;
  }

  async findApplicationByKeyHash(keyHash: string): Promise<Application | undefined> {
    const ref = await this.get('findApplicationByKeyHash', `APPKEY#${keyHash}`);
    if (typeof ref?.appId !== 'string') return undefined;
    const app = await this.getApplication(ref.appId);
    // The application item decides: a lookup item left over from a rotation never authenticates.
    return app?.keyHash === keyHash ? app : undefined;
  }

  async listApplications(filter: { deviceType?: string } = {}): Promise<Application[]> {
    let apps: Application[];
    if (filter.deviceType) {
      const { applications } = await this.getTypeWithApps(filter.deviceType);
      const items = await this.batchGet(
        'listApplications',
        applications.map((id) => ({ pk: `APP#${id}`, sk: META })),
      );
      apps = items.map((i) => i.application as Application);
    } else {
      const items = await this.queryAll('listApplications', {
        IndexName: 'gsi1',
        KeyConditionExpression: 'gsi1pk = :a',
        ExpressionAttributeValues: { ':a': 'APPS' },
      });
      apps = items.map((i) => i.application as Application);
    }
    return apps.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : a.id < b.id ? -1 : 1));
  }

  async deleteApplication(id: string): Promise<boolean> {
    const app = await this.getApplication(id);
    if (!app) return false;
    const rest: Item[] = [
      { pk: `APPKEY#${app.keyHash}`, sk: META },
      ...[...new Set(app.deviceTypes)].map((t) => ({ pk: `TYPE#${t}`, sk: `APP#${id}` })),
    ];
    const tx: TransactItem[] = [
      { Delete: { TableName: this.t, Key: { pk: `APP#${id}`, sk: META } } },
      ...rest.map((Key) => ({ Delete: { TableName: this.t, Key } })),
    ];
    if (await this.transact('deleteApplication', tx)) return true;
    // Ordered fallback: the application item first, so its key stops authenticating at once.
    await this.call('deleteApplication', () =>
      this.c.send(new DeleteCommand({ TableName: this.t, Key: { pk: `APP#${id}`, sk: META } })),
    );
    await this.batchWrite('deleteApplication', [], rest);
    return true;
  }

  async rotateKey(
    id: string,
    key: { keyHash: string; keyPrefix: string; rotatedAt: number },
  ): Promise<Application> {
    const app = await this.getApplication(id);
    if (!app) throw new NotFoundError(`application ${id} not found`, { field: 'appId' });
    const next: Application = { ...app, ...key };
    await this.putApplication(next, app);
    return next;
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
            expiresAt: commandExpiresAt(command),
          },
        }),
      ),
    );
  }

  async getCommand(deviceId: string, commandId: string): Promise<Command | undefined> {
    return (await this.get('getCommand', `DEVICE#${deviceId}`, `CMD#${commandId}`))?.command as
      | Command
      | undefined;
  }

  async updateCommand(deviceId: string, commandId: string, patch: CommandPatch): Promise<void> {
    const names: Record<string, string> = { '#c': 'command', '#status': 'status' };
    const values: Record<string, unknown> = { ':pending': 'pending' };
    const sets: string[] = [];
    Object.entries(patch).forEach(([k, v], i) => {
      if (v === undefined) return;
      names[`#f${i}`] = k;
      values[`:v${i}`] = v;
      sets.push(`#c.#f${i} = :v${i}`);
    });
    try {
      await this.call('updateCommand', () =>
        this.c.send(
          new UpdateCommand({
            TableName: this.t,
            Key: { pk: `DEVICE#${deviceId}`, sk: `CMD#${commandId}` },
            UpdateExpression: `SET ${sets.join(', ')}`,
            ConditionExpression: '#c.#status = :pending',
            ExpressionAttributeNames: names,
            ExpressionAttributeValues: values,
          }),
        ),
      );
    } catch (error) {
      if (error instanceof ConflictError) {
        throw new ConflictError(`command ${commandId} is not pending`, { field: 'commandId', cause: error });
      }
      throw error;
    }
  }

  async completeCommand(
    deviceId: string,
    commandId: string,
    patch: Pick<Command, 'status' | 'response' | 'updatedAt'>,
  ): Promise<void> {
    await this.updateCommand(deviceId, commandId, patch);
  }

  /** Command ids are not time-ordered, so the device's commands are read whole (TTL keeps them few). */
  async listCommands(deviceId: string, limit = 50): Promise<Command[]> {
    const items = await this.queryAll('listCommands', {
      KeyConditionExpression: 'pk = :pk AND begins_with(sk, :c)',
      ExpressionAttributeValues: { ':pk': `DEVICE#${deviceId}`, ':c': 'CMD#' },
    });
    return items
      .map((i) => i.command as Command)
      .sort((a, b) => b.createdAt - a.createdAt || (a.commandId < b.commandId ? 1 : -1))
      .slice(0, limit);
  }
}
