/** The protocol state stores on DynamoDB (dynalite), driven through the real state machines. */
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
import type { NodeRecord } from '../../functions/core/sparkplug/host/state.js';
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
