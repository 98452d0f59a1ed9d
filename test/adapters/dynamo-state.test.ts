/** The protocol state stores on DynamoDB (dynalite), driven through the real state machines. */
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  DynamoPendingRequestStore,
  DynamoRegistrationStore,
  DynamoSparkplugStateStore,
} from '../../functions/adapters/dynamo-state.js';
import { ConflictError } from '../../functions/core/errors.js';
import { encodeMessage, Operation } from '../../functions/core/lwm2m/message.js';
import { Lwm2mServer } from '../../functions/core/lwm2m/server/server.js';
import { encodePayload } from '../../functions/core/sparkplug/codec.js';
import { SparkplugHost } from '../../functions/core/sparkplug/host/host.js';
import type { DeviceRecord, NodeRecord } from '../../functions/core/sparkplug/host/state.js';
import { DataType } from '../../functions/core/sparkplug/types.js';
import { type LocalDynamo, startDynalite } from '../helpers/dynalite.js';

const T0 = 1_700_000_000_000;
let dynamo: LocalDynamo;
beforeAll(async () => {
  dynamo = await startDynalite();
});
afterAll(async () => {
  await dynamo.stop();
});
const opts = () => ({ client: dynamo.doc, tableName: dynamo.tables.state!, clock: () => T0 });

describe('DynamoDB protocol state', () => {
  it('rejects a write based on a stale version (a late writer cannot overwrite newer state)', async () => {
    const store = new DynamoSparkplugStateStore(opts());
    const rec: NodeRecord = {
      group: 'g',
      node: 'race',
      version: 0,
      online: true,
      birthTime: T0,
      lastSeen: T0,
      recentSeqs: [],
      aliases: {},
      metrics: {},
      templates: {},
      devices: [],
    };
    await store.putNode(rec, undefined);
    await expect(store.putNode(rec, undefined)).rejects.toBeInstanceOf(ConflictError);
    const read = (await store.getNode('g', 'race'))!;
    await store.putNode({ ...read, online: false }, read.version);
    await expect(store.putNode({ ...read, online: true }, read.version)).rejects.toBeInstanceOf(
      ConflictError,
    );
    expect((await store.getNode('g', 'race'))?.online).toBe(false);
  });

  it('carries Sparkplug host state across host instances (as across Lambda invocations)', async () => {
    const make = () => new SparkplugHost({ store: new DynamoSparkplugStateStore(opts()), clock: () => T0 });
    const birth = encodePayload({
      timestamp: T0,
      seq: 0,
      metrics: [
        { name: 'bdSeq', datatype: DataType.Int64, value: 1 },
        { name: 'Flow', alias: 4, datatype: DataType.Float, value: 1.5, timestamp: T0 },
      ],
    });
    await make().handle({ topic: 'spBv1.0/g/NBIRTH/edge', payload: birth, receivedAt: T0 });
    const data = encodePayload({
      timestamp: T0 + 1,
      seq: 1,
      metrics: [{ alias: 4, datatype: DataType.Float, value: 2.5, omitDatatype: true }],
    });
    const out = await make().handle({ topic: 'spBv1.0/g/NDATA/edge', payload: data, receivedAt: T0 + 1 });
    expect(out.readings[0]).toMatchObject({ metric: 'Flow', value: 2.5 });
    expect(out.actions).toEqual([]);
  });

  it('keeps LwM2M registrations and pending requests across server instances', async () => {
    const make = () =>
      new Lwm2mServer({
        registrations: new DynamoRegistrationStore(opts()),
        pending: new DynamoPendingRequestStore(opts()),
        clock: () => T0,
      });
    const reg = encodeMessage({
      operation: Operation.Register,
      token: 1,
      ep: 'ep9',
      lifetime: 60,
      version: '1.2',
      payload: new TextEncoder().encode('</3/0>'),
    });
    await make().handle({ topic: 'lwm2m/rd/ep9', payload: reg, receivedAt: T0 });
    const { token } = await make().buildRequest('ep9', { operation: 'read', path: '/3/0/9' }, 'cmd-9');
    const second = await make().buildRequest('ep9', { operation: 'read', path: '/3/0/9' });
    expect(second.token).not.toBe(token);
    const res = await make().handle({
      topic: 'lwm2m/rd/ep9',
      payload: encodeMessage({
        result: 205,
        token,
        contentFormat: 0,
        payload: new TextEncoder().encode('87'),
      }),
      receivedAt: T0 + 5,
    });
    expect(res.kind).toBe('response');
    expect(res.readings[0]).toMatchObject({ metric: '/3/0/9', value: 87 });
    expect(res.events[0]?.data).toMatchObject({ commandId: 'cmd-9' });
    const expired = await new DynamoPendingRequestStore(opts()).takeExpired(T0 + 120_000);
    expect(expired.map((p) => p.token)).toEqual([second.token]);
  });
});

// biome-ignore lint/suspicious/noExplicitAny: recorded command inputs are inspected loosely
type CommandInput = Record<string, any>;

/** The document client with every command's name and input recorded. */
function recording(): { client: DynamoDBDocumentClient; sent: Array<{ name: string; input: CommandInput }> } {
  const sent: Array<{ name: string; input: CommandInput }> = [];
  const client = {
    send(command: { constructor: { name: string }; input: unknown }) {
      sent.push({ name: command.constructor.name, input: command.input as CommandInput });
      return dynamo.doc.send(command as never);
    },
  } as unknown as DynamoDBDocumentClient;
  return { client, sent };
}

const nodeRecord = (group: string, node: string): NodeRecord => ({
  group,
  node,
  version: 0,
  online: true,
  birthTime: T0,
  lastSeen: T0,
  expectedSeq: 1,
  recentSeqs: [0],
  aliases: {},
  metrics: { Temp: { name: 'Temp', datatype: DataType.Float } },
  templates: {},
  devices: [],
});
const deviceRecord = (group: string, node: string, device: string): DeviceRecord => ({
  group,
  node,
  device,
  version: 0,
  online: true,
  nodeBirthTime: T0,
  birthTime: T0,
  aliases: {},
  metrics: {},
});

describe('DynamoDB protocol state: bulk reads', () => {
  it('getMany reads more than 100 keys in chunks of 100 and leaves missing keys out', async () => {
    const seed = new DynamoSparkplugStateStore(opts());
    const group = 'bulk';
    for (let i = 0; i < 130; i++) await seed.putNode(nodeRecord(group, `n${i}`), undefined);
    for (let i = 0; i < 40; i++) await seed.putDevice(deviceRecord(group, `n${i}`, `d${i}`), undefined);
    // A node written twice: the version comes back with the record.
    const n0 = (await seed.getNode(group, 'n0'))!;
    await seed.putNode({ ...n0, online: false }, n0.version);

    const { client, sent } = recording();
    const store = new DynamoSparkplugStateStore({ ...opts(), client });
    const nodes = Array.from({ length: 150 }, (_, i) => ({ group, node: `n${i}` })); // 20 missing
    const devices = Array.from({ length: 45 }, (_, i) => ({ group, node: `n${i}`, device: `d${i}` })); // 5 missing
    const found = await store.getMany(nodes, devices);

    expect(found.nodes.map((r) => r.node).sort()).toEqual(
      Array.from({ length: 130 }, (_, i) => `n${i}`).sort(),
    );
    expect(found.devices.map((r) => r.device).sort()).toEqual(
      Array.from({ length: 40 }, (_, i) => `d${i}`).sort(),
    );
    expect(found.nodes.find((r) => r.node === 'n0')).toMatchObject({ version: 2, online: false });
    expect(found.nodes.find((r) => r.node === 'n1')).toMatchObject({
      version: 1,
      expectedSeq: 1,
      metrics: { Temp: { name: 'Temp', datatype: DataType.Float } },
    });
    expect(found.devices.find((r) => r.device === 'd3')).toMatchObject({ version: 1, node: 'n3' });
    expect(found.devices.every((r) => 'device' in r)).toBe(true);
    expect(found.nodes.every((r) => !('device' in r))).toBe(true);

    const gets = sent.filter((s) => s.name === 'BatchGetCommand');
    expect(gets).toHaveLength(2);
    const sizes = gets.map(
      (g) => Object.values(g.input.RequestItems as Record<string, { Keys: unknown[] }>)[0]!.Keys.length,
    );
    expect(sizes).toEqual([100, 95]);
    for (const g of gets) {
      const req = g.input.RequestItems[dynamo.tables.state!];
      expect(req.ConsistentRead).toBe(true);
      expect(req.ProjectionExpression).toBeUndefined();
    }
  });

  it('getMany with no keys makes no call', async () => {
    const { client, sent } = recording();
    const store = new DynamoSparkplugStateStore({ ...opts(), client });
    expect(await store.getMany([], [])).toEqual({ nodes: [], devices: [] });
    expect(sent).toEqual([]);
  });

  it('getVersions returns versions only, keyed group/node and group/node/device', async () => {
    const seed = new DynamoSparkplugStateStore(opts());
    await seed.putNode(nodeRecord('vg', 'a'), undefined);
    const a = (await seed.getNode('vg', 'a'))!;
    await seed.putNode(a, a.version);
    await seed.putNode(nodeRecord('vg', 'b'), undefined);
    await seed.putDevice(deviceRecord('vg', 'a', 'pump'), undefined);

    const { client, sent } = recording();
    const store = new DynamoSparkplugStateStore({ ...opts(), client });
    const v = await store.getVersions(
      [
        { group: 'vg', node: 'a' },
        { group: 'vg', node: 'b' },
        { group: 'vg', node: 'missing' },
      ],
      [
        { group: 'vg', node: 'a', device: 'pump' },
        { group: 'vg', node: 'a', device: 'missing' },
      ],
    );
    expect(v.nodes).toEqual(
      new Map([
        ['vg/a', 2],
        ['vg/b', 1],
      ]),
    );
    expect(v.devices).toEqual(new Map([['vg/a/pump', 1]]));
    expect(sent).toHaveLength(1);
    expect(sent[0]!.input.RequestItems[dynamo.tables.state!]).toMatchObject({
      ConsistentRead: true,
      ProjectionExpression: 'pk, sk, version',
    });
  });

  it('DynamoRegistrationStore.getMany returns the registrations that exist', async () => {
    const store = new DynamoRegistrationStore(opts());
    const reg = (endpoint: string) => ({
      endpoint,
      version: 0,
      lwm2mVersion: '1.2',
      lifetime: 60,
      binding: 'U',
      queueMode: false,
      objects: { objects: [] },
      registeredAt: T0,
      lastUpdate: T0,
      observations: {},
    });
    for (let i = 0; i < 105; i++) await store.put(reg(`bulk-ep${i}`), undefined);
    const found = await store.getMany(Array.from({ length: 110 }, (_, i) => `bulk-ep${i}`));
    expect(found.map((r) => r.endpoint).sort()).toEqual(
      Array.from({ length: 105 }, (_, i) => `bulk-ep${i}`).sort(),
    );
    expect(found.every((r) => r.version === 1)).toBe(true);
  });
});
