/** DynamoTelemetryStore request shapes and failure handling, with aws-sdk-client-mock (no network). */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import {
  BatchGetCommand,
  BatchWriteCommand,
  DynamoDBDocumentClient,
  PutCommand,
  QueryCommand,
} from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import {
  DynamoTelemetryStore,
  type DynamoTelemetryStoreOptions,
} from '../../functions/adapters/dynamo-telemetry-store.js';
import { TransientError } from '../../functions/core/errors.js';
import type { EnrichedReading } from '../../functions/core/reading.js';

const T0 = 1_700_000_000_000;
type Item = { pk: string; sk: string };
const doc = DynamoDBDocumentClient.from(
  new DynamoDBClient({ region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'x' } }),
);
const mock = mockClient(doc);
let sleeps: number[];

function reading(i: number, over: Partial<EnrichedReading> = {}): EnrichedReading {
  return {
    protocol: 'lwm2m',
    deviceId: 'ep-1',
    metric: '/3303/0/5700',
    type: 'Float',
    value: i,
    time: T0 + i,
    historical: true, // no latest items: only point writes are sent
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

beforeEach(() => {
  mock.reset();
  sleeps = [];
});

describe('batch write mode', () => {
  it('sends BatchWriteItem in chunks of 25 with the point items', async () => {
    mock.on(BatchWriteCommand).resolves({});
    mock.on(PutCommand).resolves({});
    const res = await open({ writeMode: 'batch', concurrency: 2 }).write(
      Array.from({ length: 60 }, (_, i) => reading(i)),
    );
    expect(res).toEqual({ written: 60, duplicates: 0, rejected: [], skipped: 0 });
    const calls = mock.commandCalls(BatchWriteCommand);
    expect(calls.map((c) => c.args[0].input.RequestItems?.telemetry?.length)).toEqual([25, 25, 10]);
    const first = calls[0]?.args[0].input.RequestItems?.telemetry?.[0]?.PutRequest?.Item;
    expect(first).toMatchObject({
      pk: 'P#ep-1##/3303/0/5700',
      sk: '0001700000000000#1010',
      d: 'ep-1',
      s: '',
      m: '/3303/0/5700',
      t: T0,
      vk: 'double',
      vd: '0',
      h: true,
      expiresAt: Math.floor(T0 / 1000) + 365 * 86_400,
    });
    // The one series item for the historical series (no latest items for historical points).
    expect(mock.commandCalls(PutCommand).map((c) => c.args[0].input.Item?.sk)).toEqual(['H##/3303/0/5700']);
  });

  it('re-sends UnprocessedItems with backoff until they are written', async () => {
    let calls = 0;
    mock.on(BatchWriteCommand).callsFake((input: { RequestItems: Record<string, unknown[]> }) => {
      calls++;
      const items = input.RequestItems.telemetry ?? [];
      // First call: the service processes only the first 5 items.
      return calls === 1 ? { UnprocessedItems: { telemetry: items.slice(5) } } : {};
    });
    mock.on(PutCommand).resolves({});
    const res = await open({ writeMode: 'batch' }).write(Array.from({ length: 20 }, (_, i) => reading(i)));
    expect(res.written).toBe(20);
    const sent = mock
      .commandCalls(BatchWriteCommand)
      .map((c) => c.args[0].input.RequestItems?.telemetry?.length);
    expect(sent).toEqual([20, 15]);
    expect(sleeps).toEqual([38]); // 50 ms cap, half fixed + half jitter (random 0.5)
  });

  it('gives up with a retryable TransientError when items stay unprocessed', async () => {
    mock.on(BatchWriteCommand).callsFake((input: { RequestItems: Record<string, unknown[]> }) => ({
      UnprocessedItems: input.RequestItems,
    }));
    const err = await open({ writeMode: 'batch', maxAttempts: 4 })
      .write([reading(1)])
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TransientError);
    expect(err).toMatchObject({ code: 'TELEMETRY_UNPROCESSED', retryable: true });
    expect(mock.commandCalls(BatchWriteCommand)).toHaveLength(4);
    expect(sleeps).toEqual([38, 75, 150]);
  });

  it('isolates an item DynamoDB refuses by re-sending its chunk item by item', async () => {
    mock.on(BatchWriteCommand).rejects(awsError('ValidationException', 400));
    mock.on(PutCommand).callsFake((input: { Item: { t: number; sk: string } }) => {
      if (input.Item.sk.startsWith('H#')) return {};
      if (input.Item.t === T0 + 1) throw awsError('ValidationException', 400);
      return {};
    });
    const res = await open({ writeMode: 'batch' }).write([reading(0), reading(1), reading(2)]);
    expect(res.written).toBe(2);
    expect(res.rejected).toEqual([
      expect.objectContaining({
        code: 'DYNAMODB_REJECTED',
        reason: expect.stringMatching(/ValidationException/),
      }),
    ]);
    expect(res.rejected[0]?.reading.time).toBe(T0 + 1);
  });
});

describe('checked write mode (default)', () => {
  it('reads stored keys (100 per BatchGetItem, consistent) and batch-writes only the new points', async () => {
    mock.on(BatchGetCommand).callsFake((input: { RequestItems: Record<string, { Keys: Item[] }> }) => {
      const keys = input.RequestItems.telemetry?.Keys ?? [];
      // Points at even times are already stored.
      return { Responses: { telemetry: keys.filter((k) => Number(k.sk.slice(0, 16)) % 2 === 0) } };
    });
    mock.on(BatchWriteCommand).resolves({});
    mock.on(PutCommand).resolves({});
    const res = await open().write(Array.from({ length: 150 }, (_, i) => reading(i)));
    expect(res).toEqual({ written: 75, duplicates: 75, rejected: [], skipped: 0 });
    const gets = mock.commandCalls(BatchGetCommand).map((c) => c.args[0].input.RequestItems?.telemetry);
    expect(gets.map((g) => g?.Keys?.length)).toEqual([100, 50]);
    expect(gets[0]).toMatchObject({ ConsistentRead: true, ProjectionExpression: 'pk, sk' });
    const written = mock
      .commandCalls(BatchWriteCommand)
      .flatMap((c) => c.args[0].input.RequestItems?.telemetry ?? [])
      .map((w) => (w.PutRequest?.Item?.t as number) - T0);
    expect(written).toHaveLength(75);
    expect(written.every((t) => t % 2 === 1)).toBe(true);
  });

  it('re-asks for UnprocessedKeys with backoff, then fails retryably if they stay unprocessed', async () => {
    mock
      .on(BatchGetCommand)
      .resolvesOnce({ UnprocessedKeys: { telemetry: { Keys: [{ pk: 'P#ep-1##/3303/0/5700', sk: 'k' }] } } })
      .resolves({ Responses: { telemetry: [] } });
    mock.on(BatchWriteCommand).resolves({});
    mock.on(PutCommand).resolves({});
    expect((await open().write([reading(0), reading(1)])).written).toBe(2);
    expect(mock.commandCalls(BatchGetCommand)[1]?.args[0].input.RequestItems?.telemetry?.Keys).toEqual([
      { pk: 'P#ep-1##/3303/0/5700', sk: 'k' },
    ]);
    expect(sleeps).toEqual([38]);
    mock.reset();
    mock.on(BatchGetCommand).callsFake((input: { RequestItems: Record<string, unknown> }) => ({
      UnprocessedKeys: input.RequestItems,
    }));
    await expect(open({ maxAttempts: 2 }).write([reading(0)])).rejects.toMatchObject({
      code: 'TELEMETRY_UNPROCESSED',
      retryable: true,
    });
    expect(mock.commandCalls(BatchWriteCommand)).toHaveLength(0);
  });
});

describe('conditional write mode', () => {
  it('puts each point with attribute_not_exists(pk) and counts a failed condition as a duplicate', async () => {
    mock.on(PutCommand).resolves({});
    mock
      .on(PutCommand, { ConditionExpression: 'attribute_not_exists(pk)' })
      .callsFake((input: { Item: { t: number } }) => {
        if (input.Item.t === T0 + 1) {
          throw Object.assign(new Error('The conditional request failed'), {
            name: 'ConditionalCheckFailedException',
          });
        }
        return {};
      });
    const res = await open({ writeMode: 'conditional' }).write([reading(0), reading(1), reading(2)]);
    expect(res).toEqual({ written: 2, duplicates: 1, rejected: [], skipped: 0 });
    const points = mock
      .commandCalls(PutCommand)
      .filter((c) => c.args[0].input.ConditionExpression === 'attribute_not_exists(pk)');
    expect(points).toHaveLength(3);
  });

  it('updates latest items with a strictly-older condition, once per series in a call', async () => {
    mock.on(PutCommand).resolves({});
    await open({ writeMode: 'conditional' }).write([
      reading(0, { historical: false }),
      reading(5, { historical: false }),
      reading(3, { historical: false }),
    ]);
    const latest = mock.commandCalls(PutCommand).filter((c) => c.args[0].input.Item?.pk === 'D#ep-1');
    expect(latest).toHaveLength(1);
    expect(latest[0]?.args[0].input).toMatchObject({
      Item: { sk: 'L##/3303/0/5700#1010', t: T0 + 5, vd: '5' },
      ConditionExpression: 'attribute_not_exists(pk) OR t < :t',
      ExpressionAttributeValues: { ':t': T0 + 5 },
    });
  });

  it('retries throttling with backoff, then fails with a retryable TransientError', async () => {
    mock.on(PutCommand).rejects(awsError('ProvisionedThroughputExceededException', 400));
    const err = await open({ writeMode: 'conditional', maxAttempts: 3 })
      .write([reading(1)])
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TransientError);
    expect(err).toMatchObject({ code: 'TELEMETRY_THROTTLED', retryable: true });
    expect(mock.commandCalls(PutCommand)).toHaveLength(3);
    expect(sleeps).toEqual([38, 75]);
  });

  it('recovers when throttling passes', async () => {
    mock
      .on(PutCommand)
      .rejectsOnce(awsError('ThrottlingException', 400))
      .rejectsOnce(awsError('InternalServerError', 500))
      .resolves({});
    const res = await open({ writeMode: 'conditional' }).write([reading(1)]);
    expect(res.written).toBe(1);
    expect(sleeps).toHaveLength(2);
  });

  it('does not retry a missing table or denied access: a TransientError naming the cause', async () => {
    mock.on(PutCommand).rejects(awsError('ResourceNotFoundException', 400));
    await expect(open({ writeMode: 'conditional' }).write([reading(1)])).rejects.toMatchObject({
      code: 'TELEMETRY_UNAVAILABLE',
      retryable: true,
      message: expect.stringMatching(/ResourceNotFoundException/),
    });
    expect(mock.commandCalls(PutCommand)).toHaveLength(1);
    expect(sleeps).toEqual([]);
  });
});

describe('queries', () => {
  it('maps throttled queries to TransientError after retries', async () => {
    mock.on(QueryCommand).rejects(awsError('ThrottlingException', 400));
    await expect(open({ maxAttempts: 2 }).latest({ deviceId: 'ep-1' })).rejects.toMatchObject({
      code: 'TELEMETRY_THROTTLED',
      retryable: true,
    });
    expect(mock.commandCalls(QueryCommand)).toHaveLength(2);
  });

  it('reads one series with a key range and no listing when metric and subDevice are given', async () => {
    mock.on(QueryCommand).resolves({ Items: [] });
    await open().queryRaw({ deviceId: 'ep#1', metric: 'a#b', subDevice: '', from: T0, to: T0 + 1000 });
    const calls = mock.commandCalls(QueryCommand);
    expect(calls).toHaveLength(1);
    expect(calls[0]?.args[0].input).toMatchObject({
      KeyConditionExpression: 'pk = :pk AND sk BETWEEN :lo AND :hi',
      ExpressionAttributeValues: {
        ':pk': 'P#ep%231##a#b',
        ':lo': '0001700000000000',
        ':hi': '0001700000000999~',
      },
      ScanIndexForward: true,
    });
  });

  it('follows LastEvaluatedKey pages of a bucket query and stops at the point cap', async () => {
    const item = (i: number) => ({
      pk: 'P#ep-1##m',
      sk: `x${i}`,
      d: 'ep-1',
      s: '',
      m: 'm',
      t: T0 + i,
      r: -1,
      i: -1,
      vk: 'double',
      vd: String(i),
      ty: 'Float',
      q: 'GOOD',
      h: false,
      p: 'lwm2m',
      dt: 'sensor',
      expiresAt: Math.floor(T0 / 1000) + 86_400,
    });
    mock
      .on(QueryCommand)
      .resolvesOnce({ Items: [item(0), item(1)], LastEvaluatedKey: { pk: 'P#ep-1##m', sk: 'x1' } })
      .resolves({ Items: [item(2)] });
    const q = {
      deviceId: 'ep-1',
      metric: 'm',
      subDevice: '',
      from: T0,
      to: T0 + 10,
      intervalMs: 10,
      aggs: ['sum' as const],
    };
    const buckets = await open().queryBuckets(q);
    expect(buckets).toEqual([{ start: T0, count: 3, sum: 3 }]);
    expect(mock.commandCalls(QueryCommand)[1]?.args[0].input.ExclusiveStartKey).toEqual({
      pk: 'P#ep-1##m',
      sk: 'x1',
    });
    mock.reset();
    mock.on(QueryCommand).resolves({ Items: [item(0), item(1)] });
    await expect(open({ maxBucketPoints: 1 }).queryBuckets(q)).rejects.toMatchObject({
      code: 'RANGE_TOO_LARGE',
    });
  });
});
