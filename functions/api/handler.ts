/**
 * Lambda entry point for API Gateway (REST API, proxy integration): translates the proxy event to the
 * transport-neutral ApiRequest and back, and serves the router of the composition root (compose.ts),
 * as the local stack does, over the AWS adapters — built at the first request of a cold start.
 */

import { randomUUID } from 'node:crypto';
import type { APIGatewayProxyEvent, APIGatewayProxyResult } from 'aws-lambda';
import { adminKeyHash, dynamoPorts, iotPublisher, loadConfig, telemetryStore } from '../shared/aws.js';
import type { Principal } from './auth.js';
import { composeApi } from './compose.js';
import type { ApiRequest, Router } from './http.js';

const INVALID_JSON = Symbol('invalid-json');
const MAX_BODY = 256 * 1024;

export function toApiRequest(event: APIGatewayProxyEvent): ApiRequest | { invalid: string } {
  let body: unknown;
  if (event.body) {
    const text = event.isBase64Encoded ? Buffer.from(event.body, 'base64').toString('utf8') : event.body;
    if (text.length > MAX_BODY) return { invalid: `body is larger than ${MAX_BODY} bytes` };
    try {
      body = JSON.parse(text);
    } catch {
      body = INVALID_JSON;
    }
  }
  if (body === INVALID_JSON) return { invalid: 'body is not valid JSON' };
  const headers = Object.fromEntries(
    Object.entries(event.headers ?? {}).map(([k, v]) => [k.toLowerCase(), v ?? undefined]),
  );
  const req: ApiRequest = {
    method: event.httpMethod,
    path: event.path,
    query: Object.fromEntries(
      Object.entries(event.queryStringParameters ?? {}).map(([k, v]) => [k, v ?? undefined]),
    ),
    headers,
    body,
  };
  // The REQUEST authorizer already checked the key; its decision travels in the context.
  const ctx = event.requestContext?.authorizer;
  if (ctx && typeof ctx.principal === 'string') req.authorizerContext = { principal: ctx.principal };
  return req;
}

function respond(status: number, body: unknown, headers: Record<string, string> = {}): APIGatewayProxyResult {
  return {
    statusCode: status,
    headers: { 'content-type': 'application/json', ...headers },
    body: body === null || body === undefined ? '' : JSON.stringify(body),
  };
}

/** The handler over any router factory (tests pass a router over in-memory ports). */
export function createApiHandler(makeRouter: () => Promise<Router<Principal>>) {
  let router: Promise<Router<Principal>> | undefined;
  return async (event: APIGatewayProxyEvent): Promise<APIGatewayProxyResult> => {
    router ??= makeRouter();
    let r: Router<Principal>;
    try {
      r = await router;
    } catch (error) {
      router = undefined; // the next request tries again (e.g. Secrets Manager throttled)
      console.error(
        JSON.stringify({ level: 'ERROR', message: 'API dependencies failed', error: String(error) }),
      );
      return respond(
        503,
        { error: { code: 'UNAVAILABLE', message: 'temporarily unavailable' } },
        { 'retry-after': '1' },
      );
    }
    const req = toApiRequest(event);
    if ('invalid' in req)
      return respond(400, { error: { code: 'BAD_JSON', message: req.invalid, field: 'body' } });
    const out = await r.handle(req);
    return respond(out.status, out.body, out.headers);
  };
}

export const handler = createApiHandler(async () => {
  const config = loadConfig();
  const dynamo = dynamoPorts(config);
  return composeApi({
    ...dynamo,
    store: telemetryStore(config, dynamo.doc),
    publisher: iotPublisher(config),
    clock: Date.now,
    newId: randomUUID,
    adminKeyHash: await adminKeyHash(),
  }).router;
});
