/** DynamoDB protocol state bulk reads: UnprocessedKeys handling, with aws-sdk-client-mock (dynalite never returns any). */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { BatchGetCommand, DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import { DynamoRegistrationStore, DynamoSparkplugStateStore } from '../../functions/adapters/dynamo-state.js';
import { TransientError } from '../../functions/core/errors.js';

const T0 = 1_700_000_000_000;
const TABLE = 'state';
const doc = DynamoDBDocumentClient.from(
  new DynamoDBClient({ region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'x' } }),
);
const mock = mockClient(doc);
beforeEach(() => mock.reset());

type Key = { pk: string; sk: string };
const keysOf = (call: number) =>
  (mock.commandCalls(BatchGetCommand)[call]!.args[0].input.RequestItems![TABLE]!.Keys as Key[]).map(
    (k) => `${k.pk}|${k.sk}`,
  );
const nodeItem = (node: string, version: number) => ({
  pk: `SP#g/${node}`,
  sk: 'NODE',
  version,
  data: { group: 'g', node, version, online: true },
});

describe('DynamoSparkplugStateStore bulk reads: UnprocessedKeys', () => {
  it('retries only the unprocessed keys and returns everything found', async () => {
    mock
      .on(BatchGetCommand)
      .resolvesOnce({
        Responses: { [TABLE]: [nodeItem('a', 3)] },
        UnprocessedKeys: {
          [TABLE]: {
            Keys: [
              { pk: 'SP#g/b', sk: 'NODE' },
              { pk: 'SP#g/a', sk: 'DEV#pump' },
            ],
          },
        },
      })
      .resolvesOnce({
        Responses: {
          [TABLE]: [
            nodeItem('b', 1),
            {
              pk: 'SP#g/a',
              sk: 'DEV#pump',
              version: 7,
              data: { group: 'g', node: 'a', device: 'pump', version: 7, online: true },
            },
          ],
        },
      });
    const store = new DynamoSparkplugStateStore({ client: doc, tableName: TABLE, clock: () => T0 });
    const found = await store.getMany(
      [
        { group: 'g', node: 'a' },
        { group: 'g', node: 'b' },
      ],
      [{ group: 'g', node: 'a', device: 'pump' }],
    );
    expect(found.nodes.map((n) => [n.node, n.version])).toEqual([
      ['a', 3],
      ['b', 1],
    ]);
    expect(found.devices.map((d) => [d.device, d.version])).toEqual([['pump', 7]]);
    expect(mock.commandCalls(BatchGetCommand)).toHaveLength(2);
    expect(keysOf(0)).toEqual(['SP#g/a|NODE', 'SP#g/b|NODE', 'SP#g/a|DEV#pump']);
    expect(keysOf(1)).toEqual(['SP#g/b|NODE', 'SP#g/a|DEV#pump']);
  });

  it('retries unprocessed keys of getVersions with the projection kept', async () => {
    mock
      .on(BatchGetCommand)
      .resolvesOnce({
        Responses: { [TABLE]: [] },
        UnprocessedKeys: { [TABLE]: { Keys: [{ pk: 'SP#g/a', sk: 'NODE' }] } },
      })
      .resolvesOnce({ Responses: { [TABLE]: [{ pk: 'SP#g/a', sk: 'NODE', version: 4 }] } });
    const store = new DynamoSparkplugStateStore({ client: doc, tableName: TABLE });
    const v = await store.getVersions([{ group: 'g', node: 'a' }], []);
    expect(v.nodes).toEqual(new Map([['g/a', 4]]));
    for (const call of mock.commandCalls(BatchGetCommand)) {
      expect(call.args[0].input.RequestItems![TABLE]!.ProjectionExpression).toBe('pk, sk, version');
    }
    expect(mock.commandCalls(BatchGetCommand)).toHaveLength(2);
  });

  it('gives up with a retryable TransientError when keys stay unprocessed', async () => {
    mock.on(BatchGetCommand).resolves({
      Responses: { [TABLE]: [] },
      UnprocessedKeys: { [TABLE]: { Keys: [{ pk: 'LW#ep', sk: 'REG' }] } },
    });
    const store = new DynamoRegistrationStore({ client: doc, tableName: TABLE });
    const error = await store.getMany(['ep']).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TransientError);
    expect((error as TransientError).retryable).toBe(true);
    expect(mock.commandCalls(BatchGetCommand)).toHaveLength(5);
  });

  it('reads a large key set in concurrent calls of 100 keys, at most 4 in flight, and returns every record', async () => {
    // Arrange: 950 nodes → 10 calls; each answers after a tick, finding every key it was asked for
    let inFlight = 0;
    let maxInFlight = 0;
    mock.on(BatchGetCommand).callsFake(async (input: { RequestItems: Record<string, { Keys: Key[] }> }) => {
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      await new Promise((r) => setTimeout(r, 5));
      inFlight--;
      const keys = input.RequestItems[TABLE]!.Keys;
      return { Responses: { [TABLE]: keys.map((k) => nodeItem(k.pk.slice('SP#g/'.length), 1)) } };
    });
    const store = new DynamoSparkplugStateStore({ client: doc, tableName: TABLE });
    const nodes = Array.from({ length: 950 }, (_, i) => ({ group: 'g', node: `n${i}` }));

    // Act
    const found = await store.getMany(nodes, []);

    // Assert
    expect(mock.commandCalls(BatchGetCommand)).toHaveLength(10);
    expect(maxInFlight).toBe(4);
    expect(found.nodes.map((n) => n.node).sort()).toEqual(nodes.map((n) => n.node).sort());
  });

  it('stops starting calls after one fails, and fails the read once every call in flight settled', async () => {
    // Arrange: the second call fails for good
    let calls = 0;
    let settled = 0;
    mock.on(BatchGetCommand).callsFake(async () => {
      const n = ++calls;
      await new Promise((r) => setTimeout(r, n === 2 ? 1 : 20));
      settled++;
      if (n === 2) throw Object.assign(new Error('boom'), { name: 'ValidationException' });
      return { Responses: { [TABLE]: [] } };
    });
    const store = new DynamoSparkplugStateStore({ client: doc, tableName: TABLE });
    const nodes = Array.from({ length: 1000 }, (_, i) => ({ group: 'g', node: `n${i}` }));

    // Act
    const error = await store.getMany(nodes, []).catch((e: unknown) => e);

    // Assert: 4 started, the failure stopped the rest (10 chunks in all), nothing left running
    expect(error).toBeInstanceOf(Error);
    expect(calls).toBe(4);
    expect(settled).toBe(calls);
  });
});
