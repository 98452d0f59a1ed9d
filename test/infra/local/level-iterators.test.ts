/**
 * dynalite closes its Query/Scan iterators through `iterator.return()`, which abstract-level iterators
 * lack: without infra/local/level-iterators.mjs every Query and Scan leaves an iterator open for the
 * life of the database (on LevelDB it pins memtables: the soak's dynalite RSS grew ~5 MB/min). Counts
 * the iterators the database holds open (attachResource / detachResource) around real requests, on both
 * of dynalite's backends.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateTableCommand, type DynamoDBClient, waitUntilTableExists } from '@aws-sdk/client-dynamodb';
import {
  BatchWriteCommand,
  type DynamoDBDocumentClient,
  QueryCommand,
  ScanCommand,
} from '@aws-sdk/lib-dynamodb';
import dynalite from 'dynalite';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createDynamoClients } from '../../../infra/local/aws-clients.js';
import { abstractLevelCopies, closeLevelIteratorsOnReturn } from '../../../infra/local/level-iterators.mjs';

/** Iterators currently attached to any abstract-level database in this process. */
const open = new Set<object>();

beforeAll(() => {
  for (const m of abstractLevelCopies()) {
    const proto = m.AbstractLevel.prototype;
    const isIterator = (r: object) =>
      r instanceof m.AbstractIterator ||
      r instanceof m.AbstractKeyIterator ||
      r instanceof m.AbstractValueIterator;
    const attach = proto.attachResource;
    const detach = proto.detachResource;
    proto.attachResource = function (this: unknown, r: object) {
      if (isIterator(r)) open.add(r);
      return attach.call(this, r);
    };
    proto.detachResource = function (this: unknown, r: object) {
      open.delete(r);
      return detach.call(this, r);
    };
  }
});

describe('closeLevelIteratorsOnReturn', () => {
  it('patches each iterator class once, and only where return() is missing', () => {
    const first = closeLevelIteratorsOnReturn();
    expect(first).toBeGreaterThan(0);
    expect(closeLevelIteratorsOnReturn()).toBe(0);
    for (const m of abstractLevelCopies()) {
      for (const C of [m.AbstractIterator, m.AbstractKeyIterator, m.AbstractValueIterator]) {
        expect(typeof (C.prototype as { return?: unknown }).return).toBe('function');
      }
    }
  });
});

describe.each([
  ['LevelDB (classic-level)', true],
  ['memory-level', false],
])('dynalite on %s', (_name, persisted) => {
  let dir: string | undefined;
  let server: ReturnType<typeof dynalite>;
  let client: DynamoDBClient;
  let doc: DynamoDBDocumentClient;
  const table = 'iterators';

  beforeAll(async () => {
    closeLevelIteratorsOnReturn();
    dir = persisted ? mkdtempSync(join(tmpdir(), 'dualpath-level-')) : undefined;
    server = dynalite({
      createTableMs: 0,
      deleteTableMs: 0,
      updateTableMs: 0,
      ...(dir ? { path: dir } : {}),
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
    ({ client, doc } = createDynamoClients({
      endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    }));
    await client.send(
      new CreateTableCommand({
        TableName: table,
        BillingMode: 'PAY_PER_REQUEST',
        KeySchema: [
          { AttributeName: 'pk', KeyType: 'HASH' },
          { AttributeName: 'sk', KeyType: 'RANGE' },
        ],
        AttributeDefinitions: [
          { AttributeName: 'pk', AttributeType: 'S' },
          { AttributeName: 'sk', AttributeType: 'S' },
        ],
      }),
    );
    // CreateTable answers CREATING; on LevelDB the table turns ACTIVE a moment later.
    await waitUntilTableExists({ client, maxWaitTime: 30, minDelay: 1, maxDelay: 1 }, { TableName: table });
    await doc.send(
      new BatchWriteCommand({
        RequestItems: {
          [table]: Array.from({ length: 20 }, (_, i) => ({
            PutRequest: { Item: { pk: 'P', sk: String(i).padStart(3, '0'), v: i } },
          })),
        },
      }),
    );
  });

  afterAll(async () => {
    client?.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('closes the iterator of every Query and Scan, read to the end or stopped by a Limit', async () => {
    await vi.waitFor(() => expect(open.size).toBe(0));
    for (let i = 0; i < 10; i++) {
      const all = await doc.send(
        new QueryCommand({
          TableName: table,
          KeyConditionExpression: 'pk = :p',
          ExpressionAttributeValues: { ':p': 'P' },
        }),
      );
      expect(all.Items).toHaveLength(20);
      const page = await doc.send(
        new QueryCommand({
          TableName: table,
          KeyConditionExpression: 'pk = :p',
          ExpressionAttributeValues: { ':p': 'P' },
          Limit: 5,
        }),
      );
      expect(page.Items).toHaveLength(5);
      expect(page.LastEvaluatedKey).toBeDefined();
      expect((await doc.send(new ScanCommand({ TableName: table }))).Items).toHaveLength(20);
      expect((await doc.send(new ScanCommand({ TableName: table, Limit: 3 }))).Items).toHaveLength(3);
    }
    // A stream closes its iterator just after the response: wait for the closes, not for a time.
    await vi.waitFor(() => expect(open.size).toBe(0));
  });
});
