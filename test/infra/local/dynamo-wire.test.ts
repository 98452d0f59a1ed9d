/**
 * The wire document client against the SDK's, on the same dynalite: every operation it speaks returns
 * what the SDK returns (items written by one read back by the other), errors carry the same names and
 * statuses, the rest goes to the SDK, and calls are counted, hooked and retried as the SDK does.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  BatchGetCommand,
  BatchWriteCommand,
  DeleteCommand,
  type DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
  ScanCommand,
  TransactWriteCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mapAwsError } from '../../../functions/adapters/dynamo-errors.js';
import { ConflictError, TransientError } from '../../../functions/core/errors.js';
import type { CallCounts } from '../../../infra/local/aws-clients.js';
import {
  localDynamoClients,
  type WireDocumentClient,
  wireDocumentClient,
} from '../../../infra/local/dynamo-wire.js';
import { type LocalDynamo, startDynalite } from '../../helpers/dynalite.js';

let local: LocalDynamo;
let wire: WireDocumentClient;
let table: string;
const calls: CallCounts = {};

beforeAll(async () => {
  local = await startDynalite();
  table = local.tables.state!;
  wire = wireDocumentClient({ endpoint: local.endpoint, sdk: local.sdkDoc, region: 'us-east-1', calls });
});
afterAll(async () => {
  wire.destroy();
  await local.stop();
});

/** An item with every kind of attribute the adapters write. */
function richItem(pk: string) {
  return {
    pk,
    sk: 'META',
    n: 42,
    f: -1.5,
    big: 2 ** 52,
    s: 'héllo "quoted" \\ /',
    empty: '',
    yes: true,
    nothing: null,
    list: [1, 'two', { three: 3 }, [4]],
    map: { a: { b: { c: 'deep' } }, n: 0 },
    strings: new Set(['x', 'y']),
    numbers: new Set([1, 2, 3]),
    bytes: new Uint8Array([0, 1, 2, 254, 255]),
    dropped: undefined,
  };
}

async function both<T>(run: (doc: DynamoDBDocumentClient, tag: string) => Promise<T>): Promise<[T, T]> {
  return [await run(local.sdkDoc, 'sdk'), await run(wire.doc, 'wire')];
}

async function errorOf(p: Promise<unknown>): Promise<Error & { $metadata?: { httpStatusCode?: number } }> {
  return p.then(
    () => {
      throw new Error('expected a failure');
    },
    (e: Error) => e,
  );
}

describe('wire document client: parity with the SDK document client', () => {
  it('writes and reads every attribute kind the same way, across the two clients', async () => {
    // Arrange
    await wire.doc.send(new PutCommand({ TableName: table, Item: richItem('by-wire') }));
    await local.sdkDoc.send(new PutCommand({ TableName: table, Item: richItem('by-sdk') }));

    // Act: each client reads the other's item
    const bySdk = await local.sdkDoc.send(
      new GetCommand({ TableName: table, Key: { pk: 'by-wire', sk: 'META' } }),
    );
    const byWire = await wire.doc.send(
      new GetCommand({ TableName: table, Key: { pk: 'by-sdk', sk: 'META' } }),
    );

    // Assert
    const { dropped: _, ...expected } = richItem('x');
    expect(bySdk.Item).toEqual({ ...expected, pk: 'by-wire' });
    expect(byWire.Item).toEqual({ ...expected, pk: 'by-sdk' });
    expect(byWire.Item?.bytes).toBeInstanceOf(Uint8Array);
    expect(byWire.$metadata.httpStatusCode).toBe(200);
  });

  it('answers a missing item with no Item, as the SDK does', async () => {
    const [sdk, wired] = await both((doc) =>
      doc.send(new GetCommand({ TableName: table, Key: { pk: 'absent', sk: 'META' } })),
    );
    expect(sdk.Item).toBeUndefined();
    expect(wired.Item).toBeUndefined();
  });

  it('updates, deletes and returns the same attributes', async () => {
    // Arrange
    const [sdk, wired] = await both(async (doc, tag) => {
      await doc.send(
        new PutCommand({ TableName: table, Item: { pk: `u-${tag}`, sk: 'S', version: 1, tags: ['a'] } }),
      );
      // Act
      const updated = await doc.send(
        new UpdateCommand({
          TableName: table,
          Key: { pk: `u-${tag}`, sk: 'S' },
          UpdateExpression: 'SET version = version + :one, tags = list_append(tags, :more), #m = :m',
          ConditionExpression: 'version = :v',
          ExpressionAttributeNames: { '#m': 'meta' },
          ExpressionAttributeValues: { ':one': 1, ':v': 1, ':more': ['b'], ':m': { at: 5, by: 'me' } },
          ReturnValues: 'ALL_NEW',
        }),
      );
      const deleted = await doc.send(
        new DeleteCommand({ TableName: table, Key: { pk: `u-${tag}`, sk: 'S' }, ReturnValues: 'ALL_OLD' }),
      );
      return { updated: updated.Attributes, deleted: deleted.Attributes };
    });

    // Assert
    expect(wired.updated).toEqual({ ...sdk.updated, pk: 'u-wire' });
    expect(wired.updated).toEqual({
      pk: 'u-wire',
      sk: 'S',
      version: 2,
      tags: ['a', 'b'],
      meta: { at: 5, by: 'me' },
    });
    expect(wired.deleted).toEqual(wired.updated);
  });

  it('pages a Query and a Scan with the same items and keys', async () => {
    // Arrange
    for (let i = 0; i < 5; i++)
      await wire.doc.send(new PutCommand({ TableName: table, Item: { pk: 'q', sk: `s${i}`, i } }));

    // Act
    const pages = await both(async (doc) => {
      const out: unknown[] = [];
      let start: Record<string, unknown> | undefined;
      do {
        const page = await doc.send(
          new QueryCommand({
            TableName: table,
            KeyConditionExpression: 'pk = :pk AND sk > :after',
            ExpressionAttributeValues: { ':pk': 'q', ':after': 's0' },
            Limit: 2,
            ...(start ? { ExclusiveStartKey: start } : {}),
          }),
        );
        out.push({ items: page.Items, last: page.LastEvaluatedKey, count: page.Count });
        start = page.LastEvaluatedKey;
      } while (start);
      return out;
    });
    const scans = await both(async (doc) => {
      const page = await doc.send(
        new ScanCommand({
          TableName: table,
          FilterExpression: 'i >= :two',
          ExpressionAttributeValues: { ':two': 2 },
        }),
      );
      return page.Items?.map((item) => item.i).sort();
    });

    // Assert
    expect(pages[1]).toEqual(pages[0]);
    expect(pages[1]).toHaveLength(3); // 2 + 2 + an empty last page, as DynamoDB pages
    expect(scans[1]).toEqual(scans[0]);
    expect(scans[1]).toEqual([2, 3, 4]);
  });

  it('batches writes and reads with the same results', async () => {
    const [sdk, wired] = await both(async (doc, tag) => {
      await doc.send(
        new BatchWriteCommand({
          RequestItems: {
            [table]: [
              { PutRequest: { Item: { pk: `b-${tag}`, sk: '1', v: new Set(['x']) } } },
              { PutRequest: { Item: { pk: `b-${tag}`, sk: '2', v: [1] } } },
            ],
          },
        }),
      );
      await doc.send(
        new BatchWriteCommand({
          RequestItems: { [table]: [{ DeleteRequest: { Key: { pk: `b-${tag}`, sk: '2' } } }] },
        }),
      );
      const got = await doc.send(
        new BatchGetCommand({
          RequestItems: {
            [table]: {
              Keys: ['1', '2'].map((sk) => ({ pk: `b-${tag}`, sk })),
              ProjectionExpression: 'sk, v',
            },
          },
        }),
      );
      return { items: got.Responses?.[table], unprocessed: got.UnprocessedKeys };
    });
    expect(wired).toEqual(sdk);
    expect(wired.items).toEqual([{ sk: '1', v: new Set(['x']) }]);
  });
});

describe('wire document client: errors', () => {
  it('names a failed condition as the SDK does, so the adapters map it to a conflict', async () => {
    // Arrange
    await wire.doc.send(new PutCommand({ TableName: table, Item: { pk: 'c', sk: 'C' } }));
    const put = (doc: DynamoDBDocumentClient) =>
      doc.send(
        new PutCommand({
          TableName: table,
          Item: { pk: 'c', sk: 'C' },
          ConditionExpression: 'attribute_not_exists(pk)',
        }),
      );

    // Act
    const [sdk, wired] = [await errorOf(put(local.sdkDoc)), await errorOf(put(wire.doc))];

    // Assert
    expect(wired.name).toBe('ConditionalCheckFailedException');
    expect(wired.name).toBe(sdk.name);
    expect(wired.$metadata?.httpStatusCode).toBe(400);
    expect(mapAwsError(wired, 'test')).toBeInstanceOf(ConflictError);
  });

  it('reports a validation error with the service message, not retried', async () => {
    // Arrange
    const before = calls.UpdateItem ?? 0;
    const bad = (doc: DynamoDBDocumentClient) =>
      doc.send(
        new UpdateCommand({
          TableName: table,
          Key: { pk: 'v', sk: 'V' },
          UpdateExpression: 'SET #a = :missing',
        }),
      );

    // Act
    const [sdk, wired] = [await errorOf(bad(local.sdkDoc)), await errorOf(bad(wire.doc))];

    // Assert
    expect(wired.name).toBe('ValidationException');
    expect(wired.name).toBe(sdk.name);
    expect(wired.message).toBe(sdk.message);
    expect(calls.UpdateItem).toBe(before + 1);
  });

  it('sends what it does not speak (transactions) to the SDK client', async () => {
    // dynalite has no TransactWriteItems: both answer with the SDK's UnknownOperationException.
    const tx = (doc: DynamoDBDocumentClient) =>
      doc.send(
        new TransactWriteCommand({
          TransactItems: [{ Put: { TableName: table, Item: { pk: 't', sk: 'T' } } }],
        }),
      );
    const [sdk, wired] = [await errorOf(tx(local.sdkDoc)), await errorOf(tx(wire.doc))];
    expect(wired.name).toBe(sdk.name);
    expect(calls.TransactWriteItems).toBeUndefined();
  });
});

describe('wire document client: hooks, counting, retries', () => {
  it('runs hooks around its own calls and the SDK-routed ones', async () => {
    // Arrange
    const dynamo = await startDynalite();
    const client = wireDocumentClient({ endpoint: dynamo.endpoint, sdk: dynamo.sdkDoc, region: 'us-east-1' });
    let seen = 0;
    client.hook(async (run) => {
      seen++;
      if (seen === 2) throw Object.assign(new Error('injected'), { name: 'InternalServerError' });
      return run();
    });

    // Act
    await client.doc.send(new PutCommand({ TableName: dynamo.tables.state!, Item: { pk: 'h', sk: 'H' } }));
    const injected = await errorOf(
      client.doc.send(new GetCommand({ TableName: dynamo.tables.state!, Key: { pk: 'h', sk: 'H' } })),
    );
    await errorOf(
      client.doc.send(
        new TransactWriteCommand({
          TransactItems: [{ Put: { TableName: dynamo.tables.state!, Item: { pk: 'h', sk: 'I' } } }],
        }),
      ),
    );
    client.destroy();
    await dynamo.stop();

    // Assert
    expect(injected.message).toBe('injected');
    expect(seen).toBe(3);
  });

  it('retries 5xx and throttling like the SDK, up to its attempts, and not client errors', async () => {
    // Arrange: a fake endpoint answering from a script
    const script: Array<[number, object]> = [
      [500, { __type: 'com.amazonaws.dynamodb.v20120810#InternalServerError', message: 'boom' }],
      [
        400,
        {
          __type: 'com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException',
          message: 'slow down',
        },
      ],
      [200, { Item: { pk: { S: 'r' }, n: { N: '7' } } }],
      [400, { __type: 'com.amazon.coral.validate#ValidationException', message: 'bad' }],
    ];
    const targets: string[] = [];
    const server = await fakeEndpoint((req, res) => {
      targets.push(String(req.headers['x-amz-target']));
      const [status, body] = script.shift() ?? [500, {}];
      res.writeHead(status, { 'content-type': 'application/x-amz-json-1.0' }).end(JSON.stringify(body));
    });
    const client = wireDocumentClient({ endpoint: server.endpoint, sdk: local.sdkDoc, region: 'us-east-1' });

    // Act
    const got = await client.doc.send(new GetCommand({ TableName: 't', Key: { pk: 'r' } }));
    const refused = await errorOf(client.doc.send(new GetCommand({ TableName: 't', Key: { pk: 'r' } })));
    client.destroy();
    await server.close();

    // Assert
    expect(got.Item).toEqual({ pk: 'r', n: 7 });
    expect(got.$metadata).toMatchObject({ httpStatusCode: 200, attempts: 3 });
    expect(refused.name).toBe('ValidationException');
    expect(targets).toEqual(Array(4).fill('DynamoDB_20120810.GetItem'));
  });

  it('gives up after the attempts, with an error the adapters see as transient', async () => {
    // Arrange
    const server = await fakeEndpoint((_req, res) => res.writeHead(503).end('<html>unavailable</html>'));
    const client = wireDocumentClient({
      endpoint: server.endpoint,
      sdk: local.sdkDoc,
      region: 'us-east-1',
      maxAttempts: 2,
    });

    // Act
    const error = await errorOf(client.doc.send(new PutCommand({ TableName: 't', Item: { pk: 'x' } })));
    client.destroy();
    await server.close();

    // Assert
    expect(server.hits()).toBe(2);
    expect(mapAwsError(error, 'test')).toBeInstanceOf(TransientError);
  });

  it('names a reset connection TimeoutError, as the SDK does, so it stays transient after the attempts', async () => {
    // Arrange: every connection is dropped before an answer
    const server = await fakeEndpoint((req) => req.socket.destroy());
    const client = wireDocumentClient({
      endpoint: server.endpoint,
      sdk: local.sdkDoc,
      region: 'us-east-1',
      maxAttempts: 2,
    });

    // Act
    const error = (await errorOf(
      client.doc.send(new GetCommand({ TableName: 't', Key: { pk: 'x' } })),
    )) as Error & {
      code?: string;
    };
    client.destroy();
    await server.close();

    // Assert
    expect(error.code).toBe('ECONNRESET');
    expect(error.name).toBe('TimeoutError');
    expect(server.hits()).toBe(2);
    expect(mapAwsError(error, 'test')).toBeInstanceOf(TransientError);
  });

  it("keeps an exception's own members and survives an answer that is not an object", async () => {
    // Arrange
    const answers: Array<[number, string]> = [
      [
        400,
        JSON.stringify({
          __type: 'x#ConditionalCheckFailedException',
          message: 'no',
          Item: { pk: { S: 'old' } },
        }),
      ],
      [400, 'null'],
    ];
    const server = await fakeEndpoint((_req, res) => {
      const [status, body] = answers.shift()!;
      res.writeHead(status).end(body);
    });
    const client = wireDocumentClient({ endpoint: server.endpoint, sdk: local.sdkDoc, region: 'us-east-1' });

    // Act
    const failed = await errorOf(client.doc.send(new PutCommand({ TableName: 't', Item: { pk: 'x' } })));
    const odd = await errorOf(client.doc.send(new PutCommand({ TableName: 't', Item: { pk: 'x' } })));
    client.destroy();
    await server.close();

    // Assert
    expect(failed.name).toBe('ConditionalCheckFailedException');
    expect((failed as unknown as { Item: unknown }).Item).toEqual({ pk: { S: 'old' } });
    expect(odd.name).toBe('UnknownError');
    expect(odd.$metadata?.httpStatusCode).toBe(400);
  });

  it('runs the first hook added outermost, as the SDK middleware stack does', async () => {
    // Arrange
    const order: string[] = [];
    const client = wireDocumentClient({ endpoint: local.endpoint, sdk: local.sdkDoc, region: 'us-east-1' });
    for (const name of ['first', 'second'])
      client.hook(async (run) => {
        order.push(`${name} in`);
        const out = await run();
        order.push(`${name} out`);
        return out;
      });

    // Act
    await client.doc.send(new GetCommand({ TableName: table, Key: { pk: 'none', sk: 'x' } }));
    client.destroy();

    // Assert
    expect(order).toEqual(['first in', 'second in', 'second out', 'first out']);
  });
});

describe('localDynamoClients', () => {
  it("takes the wire path for the stack's own dynalite and the SDK for an external endpoint", async () => {
    // Arrange
    const embeddedCalls: CallCounts = {};
    const externalCalls: CallCounts = {};
    const embedded = localDynamoClients({ endpoint: local.endpoint, embedded: true, calls: embeddedCalls });
    const external = localDynamoClients({ endpoint: local.endpoint, embedded: false, calls: externalCalls });
    let hooked = 0;
    for (const c of [embedded, external])
      c.hook((run) => {
        hooked++;
        return run();
      });

    // Act
    for (const c of [embedded, external])
      await c.doc.send(new PutCommand({ TableName: table, Item: { pk: 'l', sk: String(hooked) } }));
    embedded.destroy();
    external.destroy();

    // Assert: both counted and hooked once; only the SDK client is a real DynamoDBDocumentClient
    expect(embeddedCalls).toEqual({ PutItem: 1 });
    expect(externalCalls).toEqual({ PutItem: 1 });
    expect(hooked).toBe(2);
    expect('middlewareStack' in embedded.doc).toBe(false);
    expect('middlewareStack' in external.doc).toBe(true);
  });
});

/** An HTTP endpoint answering with `respond`, counting requests. */
async function fakeEndpoint(respond: (req: IncomingMessage, res: ServerResponse) => void) {
  let hits = 0;
  const server = createServer((req, res) => {
    hits++;
    req.resume();
    req.on('end', () => respond(req, res));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    hits: () => hits,
    close: () => new Promise((r) => server.close(r)),
  };
}
