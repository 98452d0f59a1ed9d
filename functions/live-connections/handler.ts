/**
 * Lambda entry point of live-connections (API Gateway WebSocket API: $connect, $disconnect, subscribe,
 * $default): the composition root (compose.ts) over the registry, the admin key's hash and the live
 * connections table.
 */
import { DynamoLiveConnections } from '../adapters/dynamo-live-connections.js';
import { DynamoRegistry } from '../adapters/dynamo-registry.js';
import { ValidationError } from '../core/errors.js';
import { adminKeyHash, dynamoDocumentClient, loadConfig } from '../shared/aws-base.js';
import { functionLogger, lambdaEntry } from '../shared/lambda-entry.js';
import { lazyHandler } from '../shared/lazy-handler.js';
import { composeLiveConnections } from './compose.js';

export const handler = lambdaEntry(
  functionLogger(),
  lazyHandler(async () => {
    const config = loadConfig();
    if (!config.LIVE_CONNECTIONS_TABLE)
      throw new ValidationError('LIVE_CONNECTIONS_TABLE is not set', { field: 'LIVE_CONNECTIONS_TABLE' });
    const doc = dynamoDocumentClient();
    return composeLiveConnections({
      registry: new DynamoRegistry({ client: doc, tableName: config.REGISTRY_TABLE }),
      adminKeyHash: await adminKeyHash(),
      connections: new DynamoLiveConnections({ client: doc, tableName: config.LIVE_CONNECTIONS_TABLE }),
      clock: Date.now,
    }).handler;
  }),
);
