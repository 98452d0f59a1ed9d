/** Starts an in-process dynalite (DynamoDB API) on 127.0.0.1 with the pipeline's tables. */
import type { AddressInfo } from 'node:net';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { marshallOptions } from '@aws-sdk/util-dynamodb';
import dynalite from 'dynalite';
import { createDynamoClients } from '../../infra/local/aws-clients.js';
import { wireDocumentClient } from '../../infra/local/dynamo-wire.js';
import { ensureTable } from '../../infra/local/emulators.js';
import { pipeline } from '../../infra/pipeline.js';

export interface LocalDynamo {
  endpoint: string;
  client: DynamoDBClient;
  /** The adapters' client under test: the SDK's, or the wire client (see testDocumentClient). */
  doc: DynamoDBDocumentClient;
  /** Always the SDK's document client. */
  sdkDoc: DynamoDBDocumentClient;
  tables: Record<string, string>;
  stop(): Promise<void>;
}

/**
 * The document client the adapter suites run on: the SDK's (the Lambda functions' client) by default;
 * with DUALPATH_TEST_DYNAMO=wire the local stack's wire client over it (.ci/run's second pass).
 */
export function testDocumentClient(
  endpoint: string,
  sdkDoc: DynamoDBDocumentClient,
  marshallOptions?: marshallOptions,
): { doc: DynamoDBDocumentClient; destroy(): void } {
  if (process.env.DUALPATH_TEST_DYNAMO !== 'wire') return { doc: sdkDoc, destroy: () => {} };
  const wire = wireDocumentClient({
    endpoint,
    sdk: sdkDoc,
    region: 'us-east-1',
    ...(marshallOptions ? { marshallOptions } : {}),
  });
  return { doc: wire.doc, destroy: () => wire.destroy() };
}

let counter = 0;

export async function startDynalite(opts: { path?: string } = {}): Promise<LocalDynamo> {
  const server = dynalite({
    createTableMs: 0,
    deleteTableMs: 0,
    updateTableMs: 0,
    ...(opts.path ? { path: opts.path } : {}),
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const { client, doc: sdkDoc } = createDynamoClients({ endpoint });
  const { doc, destroy } = testDocumentClient(endpoint, sdkDoc);
  const suffix = `t${++counter}`;
  const tables: Record<string, string> = {};
  for (const [name, def] of Object.entries(pipeline.tables)) {
    tables[name] = `${name}-${suffix}`;
    await ensureTable(client, tables[name], def);
  }
  return {
    endpoint,
    client,
    doc,
    tables,
    sdkDoc,
    async stop() {
      destroy();
      client.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
