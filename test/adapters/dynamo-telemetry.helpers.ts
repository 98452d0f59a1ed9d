/** dynalite with telemetry tables created from TELEMETRY_TABLE_SCHEMA, for the DynamoDB store's tests. */
import type { AddressInfo } from 'node:net';
import { CreateTableCommand, DescribeTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import dynalite from 'dynalite';
import { TELEMETRY_TABLE_SCHEMA } from '../../functions/adapters/dynamo-telemetry-store.js';
import { testDocumentClient } from '../helpers/dynalite.js';

export interface LocalTelemetryTable {
  client: DynamoDBClient;
  doc: DynamoDBDocumentClient;
  stop(): Promise<void>;
}

export async function startTelemetryDynalite(): Promise<LocalTelemetryTable> {
  const server = dynalite({ createTableMs: 0, deleteTableMs: 0 });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const port = (server.address() as AddressInfo).port;
  const client = new DynamoDBClient({
    endpoint: `http://127.0.0.1:${port}`,
    region: 'us-east-1',
    credentials: { accessKeyId: 'x', secretAccessKey: 'x' },
  });
  const marshallOptions = { removeUndefinedValues: true };
  const sdkDoc = DynamoDBDocumentClient.from(client, { marshallOptions: { ...marshallOptions } });
  const { doc, destroy } = testDocumentClient(`http://127.0.0.1:${port}`, sdkDoc, marshallOptions);
  return {
    client,
    doc,
    async stop() {
      destroy();
      client.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

let counter = 0;

/** A new, empty table with the adapter's schema; returns its name. */
export async function createTelemetryTable(local: LocalTelemetryTable): Promise<string> {
  const name = `telemetry-${++counter}`;
  await local.client.send(
    new CreateTableCommand({
      TableName: name,
      BillingMode: TELEMETRY_TABLE_SCHEMA.billingMode,
      KeySchema: [
        { AttributeName: TELEMETRY_TABLE_SCHEMA.partitionKey.name, KeyType: 'HASH' },
        { AttributeName: TELEMETRY_TABLE_SCHEMA.sortKey.name, KeyType: 'RANGE' },
      ],
      AttributeDefinitions: [
        {
          AttributeName: TELEMETRY_TABLE_SCHEMA.partitionKey.name,
          AttributeType: TELEMETRY_TABLE_SCHEMA.partitionKey.type,
        },
        {
          AttributeName: TELEMETRY_TABLE_SCHEMA.sortKey.name,
          AttributeType: TELEMETRY_TABLE_SCHEMA.sortKey.type,
        },
      ],
    }),
  );
  // dynalite answers CreateTable before the table is ACTIVE (even with createTableMs 0): under load a
  // first request could still find no table.
  for (let i = 0; i < 200; i++) {
    const d = await local.client.send(new DescribeTableCommand({ TableName: name }));
    if (d.Table?.TableStatus === 'ACTIVE') return name;
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  throw new Error(`table ${name} did not become ACTIVE`);
}
