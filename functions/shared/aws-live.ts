/**
 * The AWS live publisher (ADR 0023): a ConnectionFanout over the live connections table and the
 * WebSocket API's PostToConnection, when the stack set LIVE_CONNECTIONS_TABLE and LIVE_ENDPOINT
 * (undefined otherwise: the function publishes nothing and pays nothing). The SDK client for the posts
 * loads on the first post (functions/adapters/apigw-live.ts).
 */
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { apiGatewayPost } from '../adapters/apigw-live.js';
import { DynamoLiveConnections } from '../adapters/dynamo-live-connections.js';
import type { IngestConfig } from '../core/config.js';
import { ConnectionFanout } from '../core/live-fanout.js';

export function awsLivePublisher(
  config: IngestConfig,
  doc: DynamoDBDocumentClient,
  onError: (what: string, error: unknown) => void = (what, error) =>
    console.warn(JSON.stringify({ level: 'WARN', message: `live: ${what} failed`, error: String(error) })),
): ConnectionFanout | undefined {
  if (!config.LIVE_CONNECTIONS_TABLE || !config.LIVE_ENDPOINT) return undefined;
  return new ConnectionFanout({
    connections: new DynamoLiveConnections({ client: doc, tableName: config.LIVE_CONNECTIONS_TABLE }),
    post: apiGatewayPost(config.LIVE_ENDPOINT),
    clock: Date.now,
    ttlMs: config.LIVE_CACHE_TTL_MS,
    onError,
  });
}
