/**
 * The deploy harness's emulation of the DynamoDB operations dynalite lacks, as the adapters meet it:
 * TransactWriteItems all or nothing (and refused with two operations on one item, as DynamoDB does),
 * BatchExecuteStatement applied statement by statement with DynamoDB's per-statement codes, and IAM
 * recorded per item / statement.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, GetCommand, PutCommand, TransactWriteCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DynamoRuleStateStore } from '../../functions/adapters/dynamo-rules.js';
import { ConflictError } from '../../functions/core/errors.js';
import type { RuleState } from '../../functions/core/rules/index.js';
import { RecordingEndpoint } from '../../scripts/verify-deploy/aws-endpoint.js';
import { type LocalDynamo, startDynalite } from '../helpers/dynalite.js';

const T0 = 1_700_000_000_000;
let dynamo: LocalDynamo;
let endpoint: RecordingEndpoint;
let doc: DynamoDBDocumentClient;
/** A client signed as the function `fn` (the harness tells callers apart by their credentials). */
const clientOf = (fn: string) =>
  DynamoDBDocumentClient.from(
    new DynamoDBClient({
      region: 'us-east-1',
      endpoint: endpoint.httpUrl,
      credentials: endpoint.credentialsFor(fn),
      maxAttempts: 1,
    }),
    { marshallOptions: { removeUndefinedValues: true, convertClassInstanceToMap: true } },
  );
beforeAll(async () => {
  dynamo = await startDynalite();
  endpoint = new RecordingEndpoint({
    dir: fs.mkdtempSync(path.join(os.tmpdir(), 'harness-dynamo-')),
    dynamoEndpoint: () => dynamo.endpoint,
    tableArn: (name) => `arn:aws:dynamodb:us-east-1:123456789012:table/${name}`,
    secrets: new Map(),
    onPublish: () => {},
  });
  await endpoint.start();
  doc = clientOf('Fn');
}, 60_000);
afterAll(async () => {
  await endpoint?.stop();
  await dynamo?.stop();
});

const stored = async (TableName: string, pk: string, sk: string) =>
  (await dynamo.doc.send(new GetCommand({ TableName, Key: { pk, sk }, ConsistentRead: true }))).Item;
const outcome = (p: Promise<unknown>) =>
  p.then(
    () => 'landed',
    (e: Error) => e.name,
  );

describe('deploy harness: TransactWriteItems', () => {
  it('refuses two operations on one item, as DynamoDB does: nothing written', async () => {
    const TableName = dynamo.tables.registry!;
    const key = { pk: 'ALERT#twice', sk: 'META' };
    const sent = new TransactWriteCommand({
      TransactItems: [
        {
          Put: {
            TableName,
            Item: { ...key, status: 'open' },
            ConditionExpression: 'attribute_not_exists(pk)',
          },
        },
        {
          Update: {
            TableName,
            Key: key,
            UpdateExpression: 'SET #s = :r',
            ExpressionAttributeNames: { '#s': 'status' },
            ExpressionAttributeValues: { ':r': 'resolved' },
          },
        },
      ],
    });
    expect(await outcome(doc.send(sent))).toBe('ValidationException');
    expect(await stored(TableName, key.pk, key.sk)).toBeUndefined();
  });

  it('lands whole or not at all: a later failed condition puts back what the earlier items wrote', async () => {
    const TableName = dynamo.tables.registry!;
    await dynamo.doc.send(new PutCommand({ TableName, Item: { pk: 'X#2', sk: 'META', v: 'old' } }));
    const sent = new TransactWriteCommand({
      TransactItems: [
        { Put: { TableName, Item: { pk: 'X#1', sk: 'META', v: 'new' } } },
        { Put: { TableName, Item: { pk: 'X#2', sk: 'META', v: 'new' } } },
        { Put: { TableName, Item: { pk: 'X#2b', sk: 'META' }, ConditionExpression: 'attribute_exists(pk)' } },
      ],
    });
    expect(await outcome(doc.send(sent))).toBe('TransactionCanceledException');
    expect(await stored(TableName, 'X#1', 'META')).toBeUndefined();
    expect(await stored(TableName, 'X#2', 'META')).toMatchObject({ v: 'old' });
  });
});

describe('deploy harness: BatchExecuteStatement (the rule state store through it)', () => {
  const state = (series: string, over: Partial<RuleState> = {}): RuleState => ({
    ruleId: 'r',
    series,
    version: 0,
    revision: 1,
    deviceId: 'dev',
    active: false,
    updatedAt: T0,
    ...over,
  });

  it('applies INSERT and UPDATE as DynamoDB would, per statement, and records them as PartiQL actions', async () => {
    const tableName = dynamo.tables.state!;
    const store = new DynamoRuleStateStore({ client: clientOf('States'), tableName, clock: () => T0 });
    const first = await store.putAll([
      { state: state('a|m', { dueAt: T0 + 5 }), expected: undefined },
      { state: state('b|m', { wt: [T0, T0 + 1], wv: [1, 2] }), expected: undefined },
    ]);
    expect(first).toEqual([undefined, undefined]);
    const second = await store.putAll([
      { state: state('a|m', { active: true }), expected: 1 }, // dueAt removed
      { state: state('b|m'), expected: undefined }, // exists: DuplicateItem
      { state: state('c|m'), expected: 3 }, // missing: ConditionalCheckFailed
    ]);
    expect(second.map((e) => (e === undefined ? 'written' : (e as Error).constructor.name))).toEqual([
      'written',
      'ConflictError',
      'ConflictError',
    ]);
    expect(second[1]).toBeInstanceOf(ConflictError);
    const [a, b] = (
      await store.getMany([
        { ruleId: 'r', series: 'a|m' },
        { ruleId: 'r', series: 'b|m' },
      ])
    ).sort((x, y) => x.series.localeCompare(y.series));
    expect(a).toMatchObject({ series: 'a|m', version: 2, active: true });
    expect(a!.dueAt).toBeUndefined();
    expect(b).toMatchObject({ series: 'b|m', version: 1, wt: [T0, T0 + 1], wv: [1, 2] });
    const actions = endpoint.calls.filter((c) => c.function === 'States').map((c) => c.action);
    expect(actions).toContain('dynamodb:PartiQLInsert');
    expect(actions).toContain('dynamodb:PartiQLUpdate');
    expect(actions).not.toContain('dynamodb:PutItem');
    expect(endpoint.unhandled).toEqual([]);
  });
});
