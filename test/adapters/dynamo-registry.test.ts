/** The DynamoDB registry's SDK call shapes and error mapping, checked with aws-sdk-client-mock. */
import { ConditionalCheckFailedException, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import {
  BatchGetCommand,
  BatchWriteCommand,
  DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
  TransactWriteCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import { DynamoRegistry } from '../../functions/adapters/dynamo-registry.js';
import { ConflictError, TransientError, ValidationError } from '../../functions/core/errors.js';
import type { Application, Device } from '../../functions/core/registry.js';

const T0 = 1_700_000_000_000;
const doc = DynamoDBDocumentClient.from(new DynamoDBClient({ region: 'us-east-1' }));
const ddb = mockClient(DynamoDBDocumentClient);
const sleeps: number[] = [];
const registry = (o: { transactions?: boolean; maxBatchAttempts?: number } = {}) =>
  new DynamoRegistry({
    client: doc,
    tableName: 'reg-table',
    sleep: async (ms) => {
      sleeps.push(ms);
    },
    ...o,
  });
const device = (id: string, extra: Partial<Device> = {}): Device => ({
  id,
  type: 'sensor',
  tags: {},
  status: 'active',
  protocols: [],
  createdAt: T0,
  updatedAt: T0,
  ...extra,
});
const app: Application = {
  id: 'a1',
  name: 'Grid',
  deviceTypes: ['breaker', 'meter'],
  keyHash: 'new',
  keyPrefix: 'dp_app_n',
  createdAt: T0,
};
const awsError = (name: string, status: number, extra: Record<string, unknown> = {}) =>
  Object.assign(new Error(`${name} happened`), { name, $metadata: { httpStatusCode: status }, ...extra });

beforeEach(() => {
  ddb.reset();
  sleeps.length = 0;
});

describe('DynamoRegistry SDK calls', () => {
  it('getDevices: chunks of at most 100 keys, duplicates removed, the injected table name', async () => {
    // Prepare
    ddb.on(BatchGetCommand).callsFake((input) => ({
      Responses: {
        'reg-table': input.RequestItems['reg-table'].Keys.map((k: { pk: string }) => ({
          ...k,
          device: device(k.pk.slice(7)),
        })),
      },
    }));
    const ids = Array.from({ length: 250 }, (_, i) => `d${i}`);
    // Act
    const out = await registry().getDevices([...ids, 'd0', 'd1']);
    // Assess
    const calls = ddb.commandCalls(BatchGetCommand);
    expect(calls.map((c) => c.args[0].input.RequestItems?.['reg-table']?.Keys?.length)).toEqual([
      100, 100, 50,
    ]);
    expect(calls[0]?.args[0].input.RequestItems?.['reg-table']?.Keys?.[0]).toEqual({
      pk: 'DEVICE#d0',
      sk: 'META',
    });
    expect(out.size).toBe(250);
  });

  it('getDevices: retries UnprocessedKeys with backoff until they are processed', async () => {
    ddb
      .on(BatchGetCommand)
      .resolvesOnce({
        Responses: { 'reg-table': [{ device: device('a') }] },
        UnprocessedKeys: { 'reg-table': { Keys: [{ pk: 'DEVICE#b', sk: 'META' }] } },
      })
      .resolvesOnce({ Responses: { 'reg-table': [{ device: device('b') }] } });
    const out = await registry().getDevices(['a', 'b']);
    const calls = ddb.commandCalls(BatchGetCommand);
    expect(calls).toHaveLength(2);
    expect(calls[1]?.args[0].input.RequestItems?.['reg-table']?.Keys).toEqual([
      { pk: 'DEVICE#b', sk: 'META' },
    ]);
    expect([...out.keys()].sort()).toEqual(['a', 'b']);
    expect(sleeps).toEqual([20]);
  });

  it('getDevices: keys still unprocessed after the attempts are a TransientError', async () => {
    ddb.on(BatchGetCommand).resolves({
      Responses: { 'reg-table': [] },
      UnprocessedKeys: { 'reg-table': { Keys: [{ pk: 'DEVICE#b', sk: 'META' }] } },
    });
    await expect(registry({ maxBatchAttempts: 3 }).getDevices(['b'])).rejects.toMatchObject({
      code: 'REGISTRY_UNPROCESSED',
      retryable: true,
    });
    expect(ddb.commandCalls(BatchGetCommand)).toHaveLength(3);
    expect(sleeps).toEqual([20, 40]);
  });

  it('maps throttling and 5xx to TransientError, ConditionalCheckFailed to ConflictError', async () => {
    ddb.on(BatchGetCommand).rejects(awsError('ProvisionedThroughputExceededException', 400));
    await expect(registry().getDevices(['a'])).rejects.toBeInstanceOf(TransientError);
    ddb.on(QueryCommand).rejects(awsError('InternalServerError', 500));
    await expect(registry().getTypeWithApps('t')).rejects.toBeInstanceOf(TransientError);
    ddb
      .on(PutCommand)
      .rejects(
        new ConditionalCheckFailedException({ message: 'exists', $metadata: { httpStatusCode: 400 } }),
      );
    await expect(registry().putDevice(device('a'), 'create')).rejects.toBeInstanceOf(ConflictError);
    ddb.on(UpdateCommand).rejects(awsError('ValidationException', 400));
    await expect(registry().updateDevice('a', { lastSeen: 1 })).rejects.toMatchObject({
      name: 'ValidationException',
    });
  });

  it('putDevice: create and update are conditional on the item, upsert is not; gsi1 keys by type', async () => {
    ddb.on(PutCommand).resolves({});
    const r = registry();
    await r.putDevice(device('a'), 'create');
    await r.putDevice(device('a'), 'update');
    await r.putDevice(device('a'));
    const inputs = ddb.commandCalls(PutCommand).map((c) => c.args[0].input);
    expect(inputs.map((i) => i.ConditionExpression)).toEqual([
      'attribute_not_exists(pk)',
      'attribute_exists(pk)',
      undefined,
    ]);
    expect(inputs[0]?.Item).toMatchObject({
      pk: 'DEVICE#a',
      sk: 'META',
      gsi1pk: 'TYPE#sensor',
      gsi1sk: 'DEVICE#a',
    });
  });

  it('updateDevice: one UpdateItem with SET per attribute, conditional on existence, gsi1 moved with the type', async () => {
    ddb.on(UpdateCommand).resolves({});
    await registry().updateDevice('a', { lastSeen: 5, type: 'meter', name: undefined });
    const input = ddb.commandCalls(UpdateCommand)[0]?.args[0].input;
    expect(input).toMatchObject({
      TableName: 'reg-table',
      Key: { pk: 'DEVICE#a', sk: 'META' },
      UpdateExpression: 'SET #d.#f0 = :v0, #d.#f1 = :v1, #g = :g',
      ConditionExpression: 'attribute_exists(pk)',
      ExpressionAttributeNames: { '#d': 'device', '#f0': 'lastSeen', '#f1': 'type', '#g': 'gsi1pk' },
      ExpressionAttributeValues: { ':v0': 5, ':v1': 'meter', ':g': 'TYPE#meter' },
    });
  });

  it('updateDevice: protocols are ADDed to a top-level string set in the same UpdateItem, never SET', async () => {
    ddb.on(UpdateCommand).resolves({});
    await registry().updateDevice('a', { lastSeen: 5, protocols: ['lwm2m'] });
    await registry().updateDevice('b', { protocols: ['sparkplug'] });
    const [first, second] = ddb.commandCalls(UpdateCommand).map((c) => c.args[0].input);
    expect(first).toMatchObject({
      Key: { pk: 'DEVICE#a', sk: 'META' },
      UpdateExpression: 'SET #d.#f0 = :v0 ADD #ps :ps',
      ConditionExpression: 'attribute_exists(pk)',
      ExpressionAttributeNames: { '#d': 'device', '#f0': 'lastSeen', '#ps': 'protocols' },
      ExpressionAttributeValues: { ':v0': 5, ':ps': new Set(['lwm2m']) },
    });
    expect(second).toMatchObject({
      UpdateExpression: 'ADD #ps :ps',
      ExpressionAttributeNames: { '#ps': 'protocols' },
      ExpressionAttributeValues: { ':ps': new Set(['sparkplug']) },
    });
  });

  it('reads a device with the protocols of its set merged into the listed ones', async () => {
    ddb.on(GetCommand).resolves({
      Item: { device: device('a', { protocols: ['lwm2m'] }), protocols: new Set(['sparkplug', 'lwm2m']) },
    });
    expect((await registry().getDevice('a'))?.protocols).toEqual(['sparkplug', 'lwm2m']);
  });

  it('listDevices by type: a Query on gsi1 with server-side filters and a round-tripping token', async () => {
    const lek = { pk: 'DEVICE#a', sk: 'META', gsi1pk: 'TYPE#sensor', gsi1sk: 'DEVICE#a' };
    ddb.on(QueryCommand).resolves({ Items: [{ device: device('a') }], LastEvaluatedKey: lek });
    const r = registry();
    const page = await r.listDevices({ type: 'sensor', protocol: 'lwm2m', status: 'active', limit: 1 });
    const input = ddb.commandCalls(QueryCommand)[0]?.args[0].input;
    expect(input).toMatchObject({
      IndexName: 'gsi1',
      KeyConditionExpression: 'gsi1pk = :t',
      FilterExpression: '(contains(#d.#p, :p) OR contains(#p, :p)) AND #d.#s = :s',
      ExpressionAttributeValues: { ':t': 'TYPE#sensor', ':p': 'lwm2m', ':s': 'active' },
      Limit: 1,
    });
    expect(page.nextToken).toBeDefined();
    await r.listDevices({ type: 'sensor', limit: 1, nextToken: page.nextToken! });
    expect(ddb.commandCalls(QueryCommand)[1]?.args[0].input.ExclusiveStartKey).toEqual(lek);
    await expect(r.listDevices({ type: 'meter', nextToken: page.nextToken! })).rejects.toBeInstanceOf(
      ValidationError,
    );
  });

  it('putApplication: one transaction — guarded application item, key lookup, subscriptions, removals', async () => {
    ddb.on(TransactWriteCommand).resolves({});
    const previous: Application = { ...app, keyHash: 'old', deviceTypes: ['breaker', 'valve'] };
    await registry().putApplication(app, previous);
    const items = ddb.commandCalls(TransactWriteCommand)[0]?.args[0].input.TransactItems ?? [];
    expect(items[0]?.Put).toMatchObject({
      TableName: 'reg-table',
      Item: { pk: 'APP#a1', sk: 'META', gsi1pk: 'APPS', gsi1sk: 'Grid' },
      ConditionExpression: '#a.#k = :prev',
      ExpressionAttributeValues: { ':prev': 'old' },
    });
    expect(items.slice(1).map((i) => (i.Put ? ['put', i.Put.Item] : ['delete', i.Delete?.Key]))).toEqual([
      ['put', { pk: 'APPKEY#new', sk: 'META', appId: 'a1' }],
      ['put', { pk: 'TYPE#breaker', sk: 'APP#a1', appId: 'a1' }],
      ['put', { pk: 'TYPE#meter', sk: 'APP#a1', appId: 'a1' }],
      ['delete', { pk: 'APPKEY#old', sk: 'META' }],
      ['delete', { pk: 'TYPE#valve', sk: 'APP#a1' }],
    ]);
    expect(ddb.commandCalls(BatchWriteCommand)).toHaveLength(0);
  });

  it('putApplication: a cancelled transaction on the guard is a ConflictError (concurrent key rotation)', async () => {
    ddb.on(TransactWriteCommand).rejects(
      awsError('TransactionCanceledException', 400, {
        CancellationReasons: [{ Code: 'ConditionalCheckFailed' }, { Code: 'None' }],
      }),
    );
    await expect(registry().putApplication(app, { ...app, keyHash: 'old' })).rejects.toBeInstanceOf(
      ConflictError,
    );
    ddb.on(TransactWriteCommand).rejects(
      awsError('TransactionCanceledException', 400, {
        CancellationReasons: [{ Code: 'TransactionConflict' }],
      }),
    );
    await expect(registry().putApplication(app)).rejects.toBeInstanceOf(TransientError);
  });

  it('putApplication: falls back to ordered writes once the endpoint lacks transactions, and remembers', async () => {
    ddb.on(TransactWriteCommand).rejects(awsError('UnknownOperationException', 400));
    ddb.on(BatchWriteCommand).resolves({});
    ddb.on(PutCommand).resolves({});
    const r = registry();
    await r.putApplication(app, { ...app, keyHash: 'old' });
    await r.putApplication(app);
    expect(ddb.commandCalls(TransactWriteCommand)).toHaveLength(1);
    // Lookups before the application item, removals after it.
    const order = ddb.calls().map((c) => c.args[0].constructor.name);
    expect(order).toEqual([
      'TransactWriteCommand',
      'BatchWriteCommand',
      'PutCommand',
      'BatchWriteCommand',
      'BatchWriteCommand',
      'PutCommand',
    ]);
    const removal = ddb.commandCalls(BatchWriteCommand)[1]?.args[0].input.RequestItems?.['reg-table'];
    expect(removal).toEqual([{ DeleteRequest: { Key: { pk: 'APPKEY#old', sk: 'META' } } }]);
    expect(ddb.commandCalls(PutCommand)[0]?.args[0].input.ConditionExpression).toBe('#a.#k = :prev');
  });

  it('putApplication: with transactions off, never calls TransactWriteItems', async () => {
    ddb.on(BatchWriteCommand).resolves({});
    ddb.on(PutCommand).resolves({});
    await registry({ transactions: false }).putApplication(app);
    expect(ddb.commandCalls(TransactWriteCommand)).toHaveLength(0);
    expect(ddb.commandCalls(PutCommand)).toHaveLength(1);
  });

  it('updateCommand: SET of the given fields, conditional on status pending', async () => {
    ddb.on(UpdateCommand).resolves({});
    await registry().updateCommand('dev', 'c1', {
      status: 'failed',
      updatedAt: 9,
      response: { result: 404 },
    });
    expect(ddb.commandCalls(UpdateCommand)[0]?.args[0].input).toMatchObject({
      Key: { pk: 'DEVICE#dev', sk: 'CMD#c1' },
      UpdateExpression: 'SET #c.#f0 = :v0, #c.#f1 = :v1, #c.#f2 = :v2',
      ConditionExpression: '#c.#status = :pending',
      ExpressionAttributeValues: { ':pending': 'pending', ':v0': 'failed', ':v1': 9, ':v2': { result: 404 } },
    });
  });

  it('putCommand: the item carries the TTL attribute in epoch seconds', async () => {
    ddb.on(PutCommand).resolves({});
    await registry().putCommand({
      deviceId: 'dev',
      commandId: 'c1',
      protocol: 'lwm2m',
      operation: 'read',
      request: {},
      status: 'pending',
      createdAt: T0,
      updatedAt: T0,
      deadline: T0 + 1,
    });
    expect(ddb.commandCalls(PutCommand)[0]?.args[0].input.Item).toMatchObject({
      pk: 'DEVICE#dev',
      sk: 'CMD#c1',
      expiresAt: T0 / 1000 + 30 * 86_400,
    });
  });
});
