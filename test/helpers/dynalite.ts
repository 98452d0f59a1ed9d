/** Starts an in-process dynalite (DynamoDB API) on 127.0.0.1 with the pipeline's tables. */
import type { AddressInfo } from 'node:net';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import dynalite from 'dynalite';
import { createDynamoClients } from '../../infra/local/aws-clients.js';
import { ensureTable } from '../../infra/local/emulators.js';
import { pipeline } from '../../infra/pipeline.js';

export interface LocalDynamo {
  endpoint: string;
  client: DynamoDBClient;
  doc: DynamoDBDocumentClient;
  tables: Record<string, string>;
  stop(): Promise<void>;
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
  const { client, doc } = createDynamoClients({ endpoint });
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
    async stop() {
      client.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
