/**
 * ONE contract for every RegistryPort adapter, run against the in-memory registry and the DynamoDB
 * adapter on a real dynalite started in-process (127.0.0.1, random port). Each test gets a fresh
 * store: a new in-memory registry, or a new DynamoDB table created here with the SDK.
 */
import type { AddressInfo } from 'node:net';
import { CreateTableCommand, DescribeTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import dynalite from 'dynalite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DynamoRegistry } from '../../functions/adapters/dynamo-registry.js';
import { Enricher } from '../../functions/core/enrich.js';
import { ConflictError, NotFoundError, ValidationError } from '../../functions/core/errors.js';
import type { Application, Command, Device, RegistryPort } from '../../functions/core/registry.js';
import { InMemoryRegistry } from '../../functions/core/registry-memory.js';
import { testDocumentClient } from '../helpers/dynalite.js';

const T0 = 1_700_000_000_000;
const device = (id: string, type: string, extra: Partial<Device> = {}): Device => ({
  id,
  type,
  tags: {},
  status: 'active',
  protocols: ['sparkplug'],
  createdAt: T0,
  updatedAt: T0,
  ...extra,
});
const app = (id: string, types: string[], keyHash: string, name = `app ${id}`): Application => ({
  id,
  name,
  deviceTypes: types,
  keyHash,
  keyPrefix: 'dp_app_x',
  createdAt: T0,
});
const command = (commandId: string, createdAt: number, extra: Partial<Command> = {}): Command => ({
  deviceId: 'dev',
  commandId,
  protocol: 'lwm2m',
  operation: 'read',
  request: { path: '/3/0/0' },
  status: 'pending',
  createdAt,
  updatedAt: createdAt,
  deadline: createdAt + 60_000,
  ...extra,
});

let server: ReturnType<typeof dynalite>;
let client: DynamoDBClient;
let doc: DynamoDBDocumentClient;
let destroyDoc: () => void;
let tables = 0;

beforeAll(async () => {
  server = dynalite({ createTableMs: 0, deleteTableMs: 0 });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.address() as AddressInfo;
  client = new DynamoDBClient({
    endpoint: `http://127.0.0.1:${port}`,
    region: 'us-east-1',
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
  });
  const marshallOptions = { removeUndefinedValues: true };
  const sdkDoc = DynamoDBDocumentClient.from(client, { marshallOptions: { ...marshallOptions } });
  ({ doc, destroy: destroyDoc } = testDocumentClient(`http://127.0.0.1:${port}`, sdkDoc, marshallOptions));
});

afterAll(async () => {
  destroyDoc();
  client.destroy();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

/** A fresh registry table: pk/sk strings and GSI gsi1 on gsi1pk/gsi1sk, as the stack defines it. */
async function freshTable(): Promise<string> {
  const name = `registry-${++tables}`;
  await client.send(
    new CreateTableCommand({
      TableName: name,
      BillingMode: 'PAY_PER_REQUEST',
      KeySchema: [
        { AttributeName: 'pk', KeyType: 'HASH' },
        { AttributeName: 'sk', KeyType: 'RANGE' },
      ],
      AttributeDefinitions: ['pk', 'sk', 'gsi1pk', 'gsi1sk'].map((a) => ({
        AttributeName: a,
        AttributeType: 'S',
      })),
      GlobalSecondaryIndexes: [
        {
          IndexName: 'gsi1',
          KeySchema: [
            { AttributeName: 'gsi1pk', KeyType: 'HASH' },
            { AttributeName: 'gsi1sk', KeyType: 'RANGE' },
          ],
          Projection: { ProjectionType: 'ALL' },
        },
      ],
    }),
  );
  // dynalite makes a table ACTIVE on a timer, even with createTableMs 0: a write before that fails
  // with ResourceNotFoundException (this suite flaked so, 1 run in 3).
  while ((await client.send(new DescribeTableCommand({ TableName: name }))).Table?.TableStatus !== 'ACTIVE')
    await new Promise((r) => setTimeout(r, 5));
  return name;
}

const adapters: Array<[string, () => Promise<RegistryPort>]> = [
  ['in-memory', async () => new InMemoryRegistry()],
  ['dynamodb (dynalite)', async () => new DynamoRegistry({ client: doc, tableName: await freshTable() })],
];

async function listAll(
  r: RegistryPort,
  filter: Parameters<RegistryPort['listDevices']>[0],
): Promise<string[]> {
  const seen: string[] = [];
  let nextToken: string | undefined;
  let pages = 0;
  do {
    const page = await r.listDevices({ ...filter, ...(nextToken ? { nextToken } : {}) });
    expect(page.items.length).toBeLessThanOrEqual(filter.limit ?? 100);
    seen.push(...page.items.map((d) => d.id));
    nextToken = page.nextToken;
    if (++pages > 50) throw new Error('pagination does not terminate');
  } while (nextToken);
  return seen.sort();
}

describe.each(adapters)('RegistryPort contract: %s', (_name, make) => {
  describe('devices', () => {
    it('stores and reads devices one at a time and in batches larger than one BatchGetItem', async () => {
      // Prepare
      const r = await make();
      const ids = Array.from({ length: 230 }, (_, i) => `dev-${String(i).padStart(3, '0')}`);
      for (const id of ids) await r.putDevice(device(id, 'sensor', { tags: { n: id } }));
      // Act
      const many = await r.getDevices([...ids, 'missing', ids[0]!]);
      const one = await r.getDevice('dev-007');
      // Assess
      expect(many.size).toBe(230);
      expect(many.has('missing')).toBe(false);
      expect(many.get('dev-229')?.tags).toEqual({ n: 'dev-229' });
      expect(one).toEqual(device('dev-007', 'sensor', { tags: { n: 'dev-007' } }));
      expect(await r.getDevice('missing')).toBeUndefined();
      expect((await r.getDevices([])).size).toBe(0);
    });

    it('create fails on an existing device, update on a missing one, upsert never', async () => {
      const r = await make();
      await r.putDevice(device('d1', 'sensor'), 'create');
      await expect(r.putDevice(device('d1', 'meter'), 'create')).rejects.toBeInstanceOf(ConflictError);
      await expect(r.putDevice(device('d2', 'meter'), 'update')).rejects.toBeInstanceOf(NotFoundError);
      await r.putDevice(device('d1', 'meter', { name: 'renamed' }), 'update');
      await r.putDevice(device('d3', 'meter'));
      await r.putDevice(device('d3', 'sensor'));
      expect((await r.getDevice('d1'))?.name).toBe('renamed');
      expect(await r.getDevice('d2')).toBeUndefined();
      expect((await r.getDevice('d3'))?.type).toBe('sensor');
    });

    it('updates only the given attributes; concurrent writers of different attributes both land', async () => {
      const r = await make();
      await r.putDevice(device('d1', 'sensor', { group: 'site-a', tags: { a: '1' } }));
      await Promise.all([
        r.updateDevice('d1', { lastSeen: T0 + 5 }),
        r.updateDevice('d1', { protocols: ['sparkplug', 'lwm2m'] }),
        r.updateDevice('d1', { lwm2m: { online: true, lifetime: 300 } }),
      ]);
      expect(await r.getDevice('d1')).toEqual({
        ...device('d1', 'sensor', { group: 'site-a', tags: { a: '1' } }),
        lastSeen: T0 + 5,
        protocols: ['sparkplug', 'lwm2m'],
        lwm2m: { online: true, lifetime: 300 },
      });
      await r.updateDevice('ghost', { lastSeen: T0 });
      expect(await r.getDevice('ghost')).toBeUndefined();
    });

    it('adds protocols atomically: two writers with stale views each adding one keep both', async () => {
      // Prepare: both writers saw the device with no protocol.
      const r = await make();
      await r.putDevice(device('d1', 'sensor', { protocols: [] }));
      // Act: each writes what it believes the whole list is, at the same instant.
      await Promise.all([
        r.updateDevice('d1', { protocols: ['lwm2m'], lastSeen: T0 + 1 }),
        r.updateDevice('d1', { protocols: ['sparkplug'], lastSeen: T0 + 1 }),
      ]);
      await r.updateDevice('d1', { protocols: ['lwm2m'] }); // a repeat adds nothing
      // Assess
      expect((await r.getDevice('d1'))?.protocols).toEqual(['sparkplug', 'lwm2m']);
      expect((await r.getDevices(['d1'])).get('d1')?.protocols).toEqual(['sparkplug', 'lwm2m']);
      expect(await listAll(r, { protocol: 'lwm2m', limit: 10 })).toEqual(['d1']);
      expect(await listAll(r, { protocol: 'sparkplug', type: 'sensor', limit: 10 })).toEqual(['d1']);
    });

    it('keeps both protocols when both ingest paths record a device at the same instant from stale caches', async () => {
      // Prepare: a device registered by the operator; each ingest path's enricher caches it (no protocol).
      const r = await make();
      await r.putDevice(device('edge-1', 'sensor', { protocols: [] }));
      await r.putDevice(device('edge-2', 'sensor', { protocols: ['sparkplug'] }));
      const clock = () => T0;
      const autoRegister = { enabled: false, defaultType: 'unclassified' };
      const sparkplug = new Enricher({ registry: r, clock, autoRegister });
      const lwm2m = new Enricher({ registry: r, clock, autoRegister });
      await Promise.all([sparkplug.prepare(['edge-1', 'edge-2']), lwm2m.prepare(['edge-1', 'edge-2'])]);

      // Act: a birth on one path and a Register on the other, flushed concurrently.
      for (const id of ['edge-1', 'edge-2']) {
        sparkplug.record(id, 'sparkplug', T0, [
          { type: 'birth', protocol: 'sparkplug', deviceId: id, time: T0 },
        ]);
        lwm2m.record(id, 'lwm2m', T0, [
          { type: 'register', protocol: 'lwm2m', deviceId: id, time: T0, data: { lifetime: 300 } },
        ]);
      }
      await Promise.all([sparkplug.flush(), lwm2m.flush()]);

      // Assess: both protocols listed, and the protocol filter finds the device either way.
      for (const id of ['edge-1', 'edge-2']) {
        expect(await r.getDevice(id)).toMatchObject({
          protocols: ['sparkplug', 'lwm2m'],
          sparkplug: { online: true },
          lwm2m: { online: true, lifetime: 300 },
        });
      }
      expect(await listAll(r, { protocol: 'lwm2m', limit: 10 })).toEqual(['edge-1', 'edge-2']);
      expect(await listAll(r, { protocol: 'sparkplug', limit: 10 })).toEqual(['edge-1', 'edge-2']);
    });

    it('moves a device between type listings when its type changes', async () => {
      const r = await make();
      await r.putDevice(device('d1', 'sensor'));
      await r.updateDevice('d1', { type: 'meter' });
      expect(await listAll(r, { type: 'sensor', limit: 10 })).toEqual([]);
      expect(await listAll(r, { type: 'meter', limit: 10 })).toEqual(['d1']);
    });

    it('deletes a device once', async () => {
      const r = await make();
      await r.putDevice(device('d1', 'sensor'));
      expect(await r.deleteDevice('d1')).toBe(true);
      expect(await r.getDevice('d1')).toBeUndefined();
      expect(await r.deleteDevice('d1')).toBe(false);
    });

    it('lists every device exactly once across pages, with and without filters', async () => {
      const r = await make();
      for (let i = 0; i < 23; i++) {
        await r.putDevice(
          device(`d${String(i).padStart(2, '0')}`, i % 3 === 0 ? 'meter' : 'sensor', {
            protocols: i % 2 ? ['lwm2m'] : ['sparkplug', 'lwm2m'],
            status: i === 4 ? 'disabled' : 'active',
            ...(i < 5 ? { group: 'north' } : {}),
          }),
        );
      }
      // Commands and other items share the table; they must never show up as devices.
      await r.putCommand({ ...command('c1', T0), deviceId: 'd01' });
      const all = Array.from({ length: 23 }, (_, i) => `d${String(i).padStart(2, '0')}`);
      expect(await listAll(r, { limit: 4 })).toEqual(all);
      expect(await listAll(r, { type: 'meter', limit: 3 })).toEqual([
        'd00',
        'd03',
        'd06',
        'd09',
        'd12',
        'd15',
        'd18',
        'd21',
      ]);
      expect(await listAll(r, { type: 'sensor', protocol: 'sparkplug', limit: 2 })).toEqual(
        all.filter((_, i) => i % 3 !== 0 && i % 2 === 0),
      );
      expect(await listAll(r, { status: 'disabled', limit: 5 })).toEqual(['d04']);
      expect(await listAll(r, { group: 'north', status: 'active', limit: 100 })).toEqual([
        'd00',
        'd01',
        'd02',
        'd03',
      ]);
    });

    it('filters by tags (key:value and key present), across pages, with a type query', async () => {
      const r = await make();
      for (let i = 0; i < 12; i++) {
        await r.putDevice(
          device(`t${String(i).padStart(2, '0')}`, i % 2 ? 'meter' : 'sensor', {
            tags: {
              site: i < 6 ? 'north' : 'south',
              ...(i % 3 === 0 ? { critical: 'yes' } : {}),
              // A key that is not a valid expression name: placeholders keep it safe.
              'rack.no #1': String(i % 4),
            },
          }),
        );
      }
      const ids = (f: (i: number) => boolean) =>
        Array.from({ length: 12 }, (_, i) => i)
          .filter(f)
          .map((i) => `t${String(i).padStart(2, '0')}`);
      expect(await listAll(r, { tags: { site: 'north' }, limit: 2 })).toEqual(ids((i) => i < 6));
      expect(await listAll(r, { tags: { critical: undefined }, limit: 3 })).toEqual(ids((i) => i % 3 === 0));
      expect(await listAll(r, { tags: { site: 'south', critical: 'yes' }, limit: 5 })).toEqual([
        't06',
        't09',
      ]);
      expect(await listAll(r, { type: 'meter', tags: { 'rack.no #1': '1' }, limit: 1 })).toEqual(
        ids((i) => i % 2 === 1 && i % 4 === 1),
      );
      expect(await listAll(r, { tags: { site: 'east' }, limit: 10 })).toEqual([]);
    });

    it('rejects page tokens it did not issue', async () => {
      const r = await make();
      await r.putDevice(device('d1', 'sensor'));
      await expect(r.listDevices({ nextToken: 'bm90IGEgdG9rZW4' })).rejects.toBeInstanceOf(ValidationError);
      await expect(r.listDevices({ nextToken: '!!!' })).rejects.toMatchObject({ field: 'nextToken' });
    });
  });

  describe('device types', () => {
    it('stores, lists in id order, and refuses to delete a type still in use', async () => {
      const r = await make();
      await r.putDeviceType({ id: 'meter', name: 'Meter', capabilities: [], units: { P: 'W' } });
      await r.putDeviceType({
        id: 'breaker',
        name: 'Breaker',
        category: 'energy',
        capabilities: ['trip'],
        units: {},
      });
      await expect(
        r.putDeviceType({ id: 'meter', name: 'Other', capabilities: [], units: {} }, 'create'),
      ).rejects.toBeInstanceOf(ConflictError);
      await r.putDevice(device('m1', 'meter'));
      expect((await r.listDeviceTypes()).map((t) => t.id)).toEqual(['breaker', 'meter']);
      expect(await r.getDeviceType('meter')).toEqual({
        id: 'meter',
        name: 'Meter',
        capabilities: [],
        units: { P: 'W' },
      });
      await expect(r.deleteDeviceType('meter')).rejects.toBeInstanceOf(ConflictError);
      expect(await r.deleteDeviceType('breaker')).toBe(true);
      expect(await r.deleteDeviceType('breaker')).toBe(false);
      await r.deleteDevice('m1');
      expect(await r.deleteDeviceType('meter')).toBe(true);
      expect(await r.listDeviceTypes()).toEqual([]);
    });

    it('returns a type with the ids of its applications in one call', async () => {
      const r = await make();
      await r.putDeviceType({ id: 'breaker', name: 'Breaker', capabilities: ['trip'], units: {} });
      await r.putApplication(app('grid', ['breaker'], 'h1'));
      await r.putApplication(app('audit', ['breaker', 'meter'], 'h2'));
      await r.putApplication(app('billing', ['meter'], 'h3'));
      expect(await r.getTypeWithApps('breaker')).toEqual({
        type: { id: 'breaker', name: 'Breaker', capabilities: ['trip'], units: {} },
        applications: ['audit', 'grid'],
      });
      // Subscriptions to a type not (yet) defined are kept.
      expect(await r.getTypeWithApps('meter')).toEqual({ applications: ['audit', 'billing'] });
      expect(await r.getTypeWithApps('nothing')).toEqual({ applications: [] });
    });
  });

  describe('applications', () => {
    it('finds applications by key hash and lists them by name, optionally per device type', async () => {
      const r = await make();
      await r.putApplication(app('a1', ['breaker'], 'hash1', 'Zeta'));
      await r.putApplication(app('a2', ['meter', 'breaker'], 'hash2', 'Alpha'));
      expect((await r.findApplicationByKeyHash('hash1'))?.id).toBe('a1');
      expect(await r.findApplicationByKeyHash('nope')).toBeUndefined();
      expect(await r.getApplication('a2')).toEqual(app('a2', ['meter', 'breaker'], 'hash2', 'Alpha'));
      expect((await r.listApplications()).map((a) => a.name)).toEqual(['Alpha', 'Zeta']);
      expect((await r.listApplications({ deviceType: 'breaker' })).map((a) => a.id)).toEqual(['a2', 'a1']);
      expect((await r.listApplications({ deviceType: 'meter' })).map((a) => a.id)).toEqual(['a2']);
    });

    it('re-subscribes when the device types change', async () => {
      const r = await make();
      const first = app('a1', ['breaker', 'meter'], 'h1');
      await r.putApplication(first);
      await r.putApplication({ ...first, deviceTypes: ['meter', 'valve'] }, first);
      expect((await r.getTypeWithApps('breaker')).applications).toEqual([]);
      expect((await r.getTypeWithApps('meter')).applications).toEqual(['a1']);
      expect((await r.getTypeWithApps('valve')).applications).toEqual(['a1']);
    });

    it('rotates a key: the old hash stops resolving, the new one resolves', async () => {
      const r = await make();
      await r.putApplication(app('a1', ['t'], 'old'));
      const rotated = await r.rotateKey('a1', { keyHash: 'new', keyPrefix: 'dp_app_n', rotatedAt: T0 + 1 });
      expect(rotated).toMatchObject({ id: 'a1', keyHash: 'new', keyPrefix: 'dp_app_n', rotatedAt: T0 + 1 });
      expect(await r.findApplicationByKeyHash('old')).toBeUndefined();
      expect((await r.findApplicationByKeyHash('new'))?.rotatedAt).toBe(T0 + 1);
      await expect(
        r.rotateKey('ghost', { keyHash: 'x', keyPrefix: 'x', rotatedAt: T0 }),
      ).rejects.toBeInstanceOf(NotFoundError);
    });

    it('deletes an application with its key and subscriptions', async () => {
      const r = await make();
      await r.putApplication(app('a1', ['breaker'], 'h1'));
      expect(await r.deleteApplication('a1')).toBe(true);
      expect(await r.getApplication('a1')).toBeUndefined();
      expect(await r.findApplicationByKeyHash('h1')).toBeUndefined();
      expect((await r.getTypeWithApps('breaker')).applications).toEqual([]);
      expect(await r.listApplications()).toEqual([]);
      expect(await r.deleteApplication('a1')).toBe(false);
    });
  });

  describe('commands', () => {
    it('updates a pending command once; a finished or missing one is a conflict', async () => {
      const r = await make();
      await r.putCommand(command('c1', T0, { token: 7 }));
      await r.updateCommand('dev', 'c1', {
        status: 'succeeded',
        response: { result: 205 },
        updatedAt: T0 + 1,
      });
      expect(await r.getCommand('dev', 'c1')).toEqual({
        ...command('c1', T0, { token: 7 }),
        status: 'succeeded',
        response: { result: 205 },
        updatedAt: T0 + 1,
      });
      await expect(
        r.updateCommand('dev', 'c1', { status: 'failed', updatedAt: T0 + 2 }),
      ).rejects.toBeInstanceOf(ConflictError);
      await expect(
        r.completeCommand('dev', 'nope', { status: 'failed', updatedAt: T0 }),
      ).rejects.toBeInstanceOf(ConflictError);
      expect(await r.getCommand('dev', 'nope')).toBeUndefined();
    });

    it('lists a device’s commands newest first, whatever their ids', async () => {
      const r = await make();
      await r.putCommand(command('zz', T0));
      await r.putCommand(command('aa', T0 + 2));
      await r.putCommand(command('mm', T0 + 1));
      await r.putCommand({ ...command('other', T0 + 9), deviceId: 'dev2' });
      expect((await r.listCommands('dev')).map((c) => c.commandId)).toEqual(['aa', 'mm', 'zz']);
      expect((await r.listCommands('dev', 2)).map((c) => c.commandId)).toEqual(['aa', 'mm']);
      // Commands do not disturb the device item under the same partition key.
      expect(await r.getDevice('dev')).toBeUndefined();
    });
  });
});
