/**
 * DynamoTelemetryStore request shapes and failure handling, with aws-sdk-client-mock (no network): the
 * packed write (one conditional PutItem per frame), conflicts, error mapping and retries. The port's
 * semantics are in the contract suite (dynamo-telemetry.contract.test.ts).
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import {
  BatchGetCommand,
  DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import {
  DynamoTelemetryStore,
  type DynamoTelemetryStoreOptions,
} from '../../functions/adapters/dynamo-telemetry-store.js';
import { TransientError, ValidationError } from '../../functions/core/errors.js';
import type { EnrichedReading } from '../../functions/core/reading.js';

const T0 = 1_700_000_000_000;
const doc = DynamoDBDocumentClient.from(
  new DynamoDBClient({ region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'x' } }),
);
const mock = mockClient(doc);
let sleeps: number[];

function reading(i: number, over: Partial<EnrichedReading> = {}): EnrichedReading {
  return {
    protocol: 'lwm2m',
    deviceId: 'ep-1',
    metric: `/3303/0/${5700 + i}`,
    type: 'Float',
    value: i + 0.5,
    time: T0,
    historical: false,
    transient: false,
    quality: 'GOOD',
    enrichment: { deviceType: 'sensor', applications: [] },
    ...over,
  };
}

function open(over: Partial<DynamoTelemetryStoreOptions> = {}): DynamoTelemetryStore {
  return new DynamoTelemetryStore({
    client: doc,
    tableName: 'telemetry',
    clock: () => T0,
    random: () => 0.5,
    sleep: async (ms) => {
      sleeps.push(ms);
    },
    ...over,
  });
}

function awsError(name: string, status: number): Error {
  return Object.assign(new Error(`${name} happened`), { name, $metadata: { httpStatusCode: status } });
}
const conditionFailed = () => awsError('ConditionalCheckFailedException', 400);

const puts = (prefix: string) =>
  mock.commandCalls(PutCommand).filter((c) => String(c.args[0].input.Item?.sk).startsWith(prefix));

beforeEach(() => {
  mock.reset();
  sleeps = [];
});

describe('packed write', () => {
  it('writes a 50-reading message as one catalog, one frame and one latest PutItem, all conditional', async () => {
    mock.on(GetCommand).resolves({});
    mock.on(PutCommand).resolves({});
    const res = await open().write(Array.from({ length: 50 }, (_, i) => reading(i)));
    expect(res).toEqual({ written: 50, duplicates: 0, rejected: [], skipped: 0 });
    const calls = mock.commandCalls(PutCommand).map((c) => c.args[0].input);
    expect(calls.map((c) => [c.Item?.pk, String(c.Item?.sk).slice(0, 2), c.ConditionExpression])).toEqual([
      ['D#ep-1', 'C#', 'attribute_not_exists(pk)'],
      ['F#ep-1', '00', 'attribute_not_exists(pk)'],
      ['D#ep-1', 'L#', 'attribute_not_exists(pk)'],
    ]);
    const frame = calls[1]?.Item as Record<string, unknown>;
    expect(frame).toMatchObject({ sk: '0001700000000000#', s: '', t: T0, p: 'lwm2m', dt: 'sensor', v: 1 });
    expect(frame.expiresAt).toBe(Math.floor(T0 / 1000) + 30 * 86_400);
    // Plain numeric readings: their catalog definition ids in `x`, their values in the binary column `b`
    // (tag 1 + float32 here: 0.5, 1.5, ... are exact float32 values).
    expect(JSON.parse(frame.x as string)).toEqual(Array.from({ length: 50 }, (_, i) => i));
    const b = Buffer.from(frame.b as Uint8Array);
    expect(b.length).toBe(50 * 5);
    expect([b[0], b.readFloatBE(1), b[5], b.readFloatBE(6)]).toEqual([1, 0.5, 1, 1.5]);
    expect(Buffer.byteLength(frame.x as string) + b.length).toBeLessThan(1024);
    // Cold cache: one consistent read each of the catalog and the latest item.
    expect(
      mock.commandCalls(GetCommand).map((c) => [c.args[0].input.Key?.sk, c.args[0].input.ConsistentRead]),
    ).toEqual([
      ['C#', true],
      ['L#', true],
    ]);
  });

  it('with warm caches sends only the frame and the latest put (no reads, no catalog write)', async () => {
    mock.on(GetCommand).resolves({});
    mock.on(PutCommand).resolves({});
    const store = open();
    await store.write(Array.from({ length: 50 }, (_, i) => reading(i)));
    mock.resetHistory();
    await store.write(Array.from({ length: 50 }, (_, i) => reading(i, { time: T0 + 10_000 })));
    expect(mock.commandCalls(GetCommand)).toHaveLength(0);
    expect(
      mock
        .commandCalls(PutCommand)
        .map((c) => [String(c.args[0].input.Item?.sk).slice(0, 2), c.args[0].input.ConditionExpression]),
    ).toEqual([
      ['00', 'attribute_not_exists(pk)'],
      ['L#', 'v = :v'],
    ]);
  });

  it('merges into an existing frame: keeps stored entries, appends new identities, conditioned on the version', async () => {
    mock.on(GetCommand).resolves({});
    mock.on(PutCommand).resolves({});
    const store = open();
    await store.write([reading(0), reading(1)]);
    const stored = puts('00')[0]?.args[0].input.Item as Record<string, unknown>;
    mock.reset();
    mock.on(PutCommand).resolves({});
    mock.on(PutCommand, { ConditionExpression: 'attribute_not_exists(pk)' }).rejects(conditionFailed());
    mock.on(GetCommand).resolves({ Item: stored });
    const res = await store.write([reading(1, { value: 99 }), reading(2)]);
    expect(res).toMatchObject({ written: 1, duplicates: 1 });
    const merge = puts('00').at(-1)?.args[0].input;
    expect(merge).toMatchObject({ ConditionExpression: 'v = :v', ExpressionAttributeValues: { ':v': 1 } });
    expect(merge?.Item?.v).toBe(2);
    expect(JSON.parse(merge?.Item?.x as string)).toEqual([0, 1, 2]);
    const b = Buffer.from(merge?.Item?.b as Uint8Array);
    expect([b.readFloatBE(1), b.readFloatBE(6), b.readFloatBE(11)]).toEqual([0.5, 1.5, 2.5]);
  });

  it('re-reads and retries a frame another writer changed, then gives up with TELEMETRY_CONFLICT', async () => {
    mock.on(GetCommand, { Key: { pk: 'D#ep-1', sk: 'C#' } }).resolves({});
    mock.on(GetCommand, { Key: { pk: 'D#ep-1', sk: 'L#' } }).resolves({});
    mock.on(GetCommand).resolves({ Item: { pk: 'F#ep-1', sk: '0001700000000000#', v: 3, x: '[]' } });
    mock.on(PutCommand).resolves({});
    mock.on(PutCommand, { Item: { pk: 'F#ep-1' } as never }).rejects(conditionFailed());
    const err = await open({ maxAttempts: 3 })
      .write([reading(0)])
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TransientError);
    expect(err).toMatchObject({ code: 'TELEMETRY_CONFLICT', retryable: true });
    expect(puts('00')).toHaveLength(3);
  });

  it('reports the readings of a frame DynamoDB refuses and stores the others', async () => {
    mock.on(GetCommand).resolves({});
    mock.on(PutCommand).resolves({});
    mock
      .on(PutCommand, { Item: { pk: 'F#ep-1', t: T0 + 1 } as never })
      .rejects(awsError('ValidationException', 400));
    const res = await open().write([reading(0), reading(1, { time: T0 + 1 }), reading(2, { time: T0 + 2 })]);
    expect(res.written).toBe(2);
    expect(res.rejected).toEqual([
      expect.objectContaining({
        code: 'DYNAMODB_REJECTED',
        reason: expect.stringMatching(/ValidationException/),
      }),
    ]);
    expect(res.rejected[0]?.reading.time).toBe(T0 + 1);
  });

  it('rejects readings that would push a frame past the item limit, keeping the ones that fit', async () => {
    mock.on(GetCommand).resolves({});
    mock.on(PutCommand).resolves({});
    const big = 'x'.repeat(200_000);
    const res = await open().write([reading(0, { value: big }), reading(1, { value: big }), reading(2)]);
    expect(res.written).toBe(2);
    expect(res.rejected).toEqual([expect.objectContaining({ code: 'ITEM_TOO_LARGE' })]);
    expect(res.rejected[0]?.reading.metric).toBe('/3303/0/5701');
  });

  it('marks the chunk of a closed hour stale when a late reading lands in it', async () => {
    mock.on(GetCommand).resolves({});
    mock.on(PutCommand).resolves({});
    mock.on(UpdateCommand).resolves({});
    await open().write([reading(0, { time: T0 - 3 * 3_600_000, historical: true }), reading(1)]);
    const marks = mock.commandCalls(UpdateCommand).map((c) => c.args[0].input);
    const hour = Math.floor((T0 - 3 * 3_600_000) / 3_600_000) * 3_600_000;
    expect(marks).toEqual([
      expect.objectContaining({
        Key: { pk: 'K#ep-1', sk: `#/3303/0/5700#${String(hour).padStart(16, '0')}` },
        UpdateExpression: 'ADD dirty :one SET expiresAt = :e REMOVE x',
      }),
    ]);
  });
});

describe('errors and retries', () => {
  it('retries throttling with backoff, then fails with a retryable TELEMETRY_THROTTLED', async () => {
    mock.on(GetCommand).rejects(awsError('ProvisionedThroughputExceededException', 400));
    const err = await open({ maxAttempts: 3 })
      .write([reading(1)])
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TransientError);
    expect(err).toMatchObject({ code: 'TELEMETRY_THROTTLED', retryable: true });
    expect(mock.commandCalls(GetCommand)).toHaveLength(3);
    expect(sleeps).toEqual([38, 75]);
  });

  it('recovers when throttling passes', async () => {
    mock.on(GetCommand).resolves({});
    mock
      .on(PutCommand)
      .rejectsOnce(awsError('ThrottlingException', 400))
      .rejectsOnce(awsError('InternalServerError', 500))
      .resolves({});
    const res = await open().write([reading(1)]);
    expect(res.written).toBe(1);
    expect(sleeps).toHaveLength(2);
  });

  it('does not retry a missing table or denied access: a TransientError naming the cause', async () => {
    mock.on(GetCommand).rejects(awsError('ResourceNotFoundException', 400));
    await expect(open().write([reading(1)])).rejects.toMatchObject({
      code: 'TELEMETRY_UNAVAILABLE',
      retryable: true,
      message: expect.stringMatching(/ResourceNotFoundException/),
    });
    expect(mock.commandCalls(GetCommand)).toHaveLength(1);
    expect(sleeps).toEqual([]);
  });

  it('maps throttled queries to TransientError after retries', async () => {
    mock.on(QueryCommand).rejects(awsError('ThrottlingException', 400));
    await expect(open({ maxAttempts: 2 }).latest({ deviceId: 'ep-1' })).rejects.toMatchObject({
      code: 'TELEMETRY_THROTTLED',
      retryable: true,
    });
    expect(mock.commandCalls(QueryCommand)).toHaveLength(2);
  });

  it('re-asks BatchGetItem for UnprocessedKeys with backoff, then fails retryably', async () => {
    const catalog = {
      pk: 'D#ep-1',
      sk: 'C#',
      s: '',
      v: 1,
      c: JSON.stringify({ m: ['m'], d: [[0, 'Float', null, null]] }),
    };
    const latest = { pk: 'D#ep-1', sk: 'L#', s: '', v: 1, x: JSON.stringify({ [T0]: [0] }) };
    const frame = {
      pk: 'F#ep-1',
      sk: '0001700000000000#',
      s: '',
      t: T0,
      p: 'lwm2m',
      dt: 'sensor',
      v: 1,
      x: '[[0,7]]',
    };
    mock.on(QueryCommand).resolves({ Items: [catalog, latest] });
    mock
      .on(BatchGetCommand)
      .resolvesOnce({ UnprocessedKeys: { telemetry: { Keys: [{ pk: 'F#ep-1', sk: frame.sk }] } } })
      .resolves({ Responses: { telemetry: [frame] } });
    expect((await open().latest({ deviceId: 'ep-1' })).map((p) => [p.metric, p.value])).toEqual([['m', 7]]);
    expect(sleeps).toEqual([38]);
    mock.reset();
    mock.on(QueryCommand).resolves({ Items: [catalog, latest] });
    mock.on(BatchGetCommand).callsFake((input: { RequestItems: Record<string, unknown> }) => ({
      UnprocessedKeys: input.RequestItems,
    }));
    await expect(open({ maxAttempts: 2 }).latest({ deviceId: 'ep-1' })).rejects.toMatchObject({
      code: 'TELEMETRY_UNPROCESSED',
      retryable: true,
    });
  });

  it('follows LastEvaluatedKey pages of a frame query', async () => {
    const catalog = {
      pk: 'D#ep-1',
      sk: 'C#',
      s: '',
      v: 1,
      c: JSON.stringify({ m: ['m'], d: [[0, 'Float', null, null]] }),
    };
    const frame = (i: number) => ({
      pk: 'F#ep-1',
      sk: `${T0 + i}#`,
      s: '',
      t: T0 + i,
      p: 'lwm2m',
      dt: 'sensor',
      v: 1,
      x: `[[0,${i}]]`,
    });
    mock.on(QueryCommand, { ExpressionAttributeValues: { ':pk': 'D#ep-1' } }).resolves({ Items: [catalog] });
    mock
      .on(QueryCommand, { ExpressionAttributeValues: { ':pk': 'F#ep-1' } as never })
      .resolvesOnce({ Items: [frame(0), frame(1)], LastEvaluatedKey: { pk: 'F#ep-1', sk: 'x1' } })
      .resolves({ Items: [frame(2)] });
    const buckets = await open({ chunkGraceMs: false }).queryBuckets({
      deviceId: 'ep-1',
      metric: 'm',
      from: T0,
      to: T0 + 10,
      intervalMs: 10,
      aggs: ['sum'],
    });
    expect(buckets).toEqual([{ start: T0, count: 3, sum: 3 }]);
    const frameQueries = mock
      .commandCalls(QueryCommand)
      .filter((c) => c.args[0].input.ExpressionAttributeValues?.[':pk'] === 'F#ep-1');
    expect(frameQueries[1]?.args[0].input.ExclusiveStartKey).toEqual({ pk: 'F#ep-1', sk: 'x1' });
  });
});

describe('options', () => {
  it('rejects bad options with a ValidationError naming the field', () => {
    const base = { client: doc, tableName: 't' };
    expect(() => new DynamoTelemetryStore({ ...base, tableName: '' })).toThrow(ValidationError);
    for (const [field, over] of [
      ['tableName', { tableName: '' }],
      ['retentionDays', { retentionDays: 0 }],
      ['concurrency', { concurrency: 1.5 }],
      ['maxBucketPoints', { maxBucketPoints: -1 }],
      ['chunkGraceMs', { chunkGraceMs: -5 }],
    ] as const) {
      expect(() => new DynamoTelemetryStore({ ...base, ...over })).toThrow(
        expect.objectContaining({ field }),
      );
    }
  });
});
