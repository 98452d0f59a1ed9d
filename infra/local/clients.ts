/**
 * AWS SDK clients for the local targets (embedded emulators or LocalStack) and idempotent creation of
 * the pipeline's streams and tables. Kinesis goes through a NodeHttpHandler: the SDK talks HTTP/2 by
 * default, which a plain http:// emulator does not.
 */
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

export function kinesisClient(endpoint: string): KinesisClient {
  return new KinesisClient({
    ...LOCAL,
    endpoint,
    requestHandler: new NodeHttpHandler({ connectionTimeout: 2000, requestTimeout: 10_000 }),
    maxAttempts: 5,
  });
}

export function dynamoClients(endpoint: string): { client: DynamoDBClient; doc: DynamoDBDocumentClient } {
  const client = new DynamoDBClient({
    ...LOCAL,
    endpoint,
    requestHandler: new NodeHttpHandler({ connectionTimeout: 2000, requestTimeout: 10_000 }),
    maxAttempts: 5,
  });
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
