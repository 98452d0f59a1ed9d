/**
 * PostToConnection on the WebSocket API's management endpoint (ADR 0023): the `LivePost` of the
 * ConnectionFanout in AWS. The SDK client is loaded on the first post (ADR 0025): a function whose
 * batches nobody watches never loads it. 410 Gone (the client left without $disconnect having run yet)
 * answers `gone`; anything else throws (the fan-out reports it and goes on).
 */
import type { LivePost } from '../core/live-fanout.js';

/**
 * The management endpoint: `LIVE_ENDPOINT` (`https://{api-id}.execute-api.{region}.amazonaws.com/{stage}`,
 * set by the stack). The SDK's standard override `AWS_ENDPOINT_URL_APIGATEWAYMANAGEMENTAPI` (an
 * emulator, the deploy harness) replaces its origin and keeps the stage path.
 */
export function managementEndpoint(liveEndpoint: string, env: NodeJS.ProcessEnv = process.env): string {
  const override = env.AWS_ENDPOINT_URL_APIGATEWAYMANAGEMENTAPI;
  const url = new URL(liveEndpoint);
  if (!override) return `${url.origin}${url.pathname.replace(/\/+$/, '')}`;
  return `${override.replace(/\/+$/, '')}${url.pathname.replace(/\/+$/, '')}`;
}

export function apiGatewayPost(liveEndpoint: string): LivePost {
  let client:
    | Promise<{
        send: (data: { ConnectionId: string; Data: Uint8Array }) => Promise<unknown>;
      }>
    | undefined;
  const endpoint = managementEndpoint(liveEndpoint);
  const load = () => {
    client ??= import('@aws-sdk/client-apigatewaymanagementapi')
      .then((m) => {
        const c = new m.ApiGatewayManagementApiClient({ endpoint });
        return {
          send: (input: { ConnectionId: string; Data: Uint8Array }) =>
            c.send(new m.PostToConnectionCommand(input)),
        };
      })
      .catch((error: unknown) => {
        client = undefined;
        throw error;
      });
    return client;
  };
  const encoder = new TextEncoder();
  return async (connectionId, data) => {
    const c = await load();
    try {
      await c.send({ ConnectionId: connectionId, Data: encoder.encode(data) });
      return 'ok';
    } catch (error) {
      const e = error as { name?: string; $metadata?: { httpStatusCode?: number } };
      if (e.name === 'GoneException' || e.$metadata?.httpStatusCode === 410) return 'gone';
      throw error;
    }
  };
}
