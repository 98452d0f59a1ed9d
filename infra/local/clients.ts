/**
 * AWS SDK clients for the local targets (embedded emulators or LocalStack) and idempotent creation of
 * the pipeline's streams and tables. Kinesis goes through a NodeHttpHandler: the SDK talks HTTP/2 by
 * default, which a plain http:// emulator does not.
 */
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import {
  CreateTableCommand,
  DescribeTableCommand,
  DynamoDBClient,
  type KeySchemaElement,
} from '@aws-sdk/client-dynamodb';
import { CreateStreamCommand, DescribeStreamSummaryCommand, KinesisClient } from '@aws-sdk/client-kinesis';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import type { TableDef } from '../pipeline.js';

const LOCAL = {
  region: process.env.AWS_REGION ?? 'us-east-1',
  credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
};

export function kinesisClient(endpoint: string, calls?: CallCounts): KinesisClient {
  const client = new KinesisClient({
    ...LOCAL,
    endpoint,
    requestHandler: new NodeHttpHandler({ connectionTimeout: 2000, requestTimeout: 10_000 }),
    maxAttempts: 5,
  });
  if (calls) countCalls(client, calls);
  return client;
}

/** AWS calls by operation (GetItem, PutRecords, ...): the efficiency counters of the local run. */
export type CallCounts = Record<string, number>;

/** Counts every call a client makes, by operation, into `calls`. */
export function countCalls(client: DynamoDBClient | KinesisClient, calls: CallCounts): void {
  (client.middlewareStack as DynamoDBClient['middlewareStack']).add(
    (next, context) => (args) => {
      const op = String(context.commandName ?? 'unknown').replace(/Command$/, '');
      calls[op] = (calls[op] ?? 0) + 1;
      return next(args);
    },
    { step: 'initialize', name: 'dualpathCallCounter' },
  );
}

export function dynamoClients(
  endpoint: string,
  calls?: CallCounts,
): { client: DynamoDBClient; doc: DynamoDBDocumentClient } {
  const client = new DynamoDBClient({
    ...LOCAL,
    endpoint,
    requestHandler: new NodeHttpHandler({ connectionTimeout: 2000, requestTimeout: 10_000 }),
    maxAttempts: 5,
  });
  if (calls) countCalls(client, calls);
  return { client, doc: documentClient(client) };
}

export function documentClient(client: DynamoDBClient): DynamoDBDocumentClient {
  return DynamoDBDocumentClient.from(client, {
    marshallOptions: { removeUndefinedValues: true, convertClassInstanceToMap: true },
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Creates the table if missing (pk/sk strings, GSIs) and waits for ACTIVE. TTL is an AWS-side setting. */
export async function ensureTable(client: DynamoDBClient, name: string, def: TableDef): Promise<void> {
  try {
    await client.send(new DescribeTableCommand({ TableName: name }));
  } catch (error) {
    if ((error as Error).name !== 'ResourceNotFoundException') throw error;
    const keys: KeySchemaElement[] = [
      { AttributeName: 'pk', KeyType: 'HASH' },
      { AttributeName: 'sk', KeyType: 'RANGE' },
    ];
    const attrs = new Set(['pk', 'sk']);
    for (const g of def.gsis ?? []) {
      attrs.add(g.partitionKey);
      attrs.add(g.sortKey);
    }
    await client.send(
      new CreateTableCommand({
        TableName: name,
        BillingMode: 'PAY_PER_REQUEST',
        KeySchema: keys,
        AttributeDefinitions: [...attrs].map((a) => ({ AttributeName: a, AttributeType: 'S' })),
        ...(def.gsis && def.gsis.length > 0
          ? {
              GlobalSecondaryIndexes: def.gsis.map((g) => ({
                IndexName: g.name,
                KeySchema: [
                  { AttributeName: g.partitionKey, KeyType: 'HASH' },
                  { AttributeName: g.sortKey, KeyType: 'RANGE' },
                ],
                Projection: { ProjectionType: 'ALL' },
              })),
            }
          : {}),
      }),
    );
  }
  for (let i = 0; i < 100; i++) {
    const d = await client.send(new DescribeTableCommand({ TableName: name }));
    if (d.Table?.TableStatus === 'ACTIVE') return;
    await sleep(50);
  }
  throw new Error(`table ${name} did not become ACTIVE`);
}

export async function ensureStream(client: KinesisClient, name: string, shardCount: number): Promise<void> {
  try {
    await client.send(new DescribeStreamSummaryCommand({ StreamName: name }));
  } catch (error) {
    if ((error as Error).name !== 'ResourceNotFoundException') throw error;
    await client.send(new CreateStreamCommand({ StreamName: name, ShardCount: shardCount }));
  }
  for (let i = 0; i < 100; i++) {
    const d = await client.send(new DescribeStreamSummaryCommand({ StreamName: name }));
    if (d.StreamDescriptionSummary?.StreamStatus === 'ACTIVE') return;
    await sleep(50);
  }
  throw new Error(`stream ${name} did not become ACTIVE`);
}

/** An emulator running in its own process (see emulator-process.mjs). */
export interface EmulatorProcess {
  endpoint: string;
  stop(): Promise<void>;
}

/** Starts kinesalite or dynalite (persisted at `path`) in a child process on a free 127.0.0.1 port. */
export async function startEmulatorProcess(
  kind: 'kinesalite' | 'dynalite',
  path?: string,
): Promise<EmulatorProcess> {
  const entry = fileURLToPath(new URL('./emulator-process.mjs', import.meta.url));
  const child = fork(entry, path ? [kind, path] : [kind], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const port = await new Promise<number>((resolve, reject) => {
    child.once('message', (m) => resolve((m as { port: number }).port));
    child.once('exit', (code) => reject(new Error(`${kind} exited with code ${code} before listening`)));
  });
  return {
    endpoint: `http://127.0.0.1:${port}`,
    async stop() {
      if (child.exitCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}
