/**
 * Lambda entry point for API Gateway (REST API, proxy integration): translates the proxy event to the
 * transport-neutral ApiRequest and back, and serves the router of the composition root (compose.ts),
 * as the local stack does, over the AWS adapters — built at the first request of a cold start.
 */

import { randomUUID } from 'node:crypto';
import type { APIGatewayProxyEvent, APIGatewayProxyResult } from 'aws-lambda';
import { DynamoOperationStore } from '../adapters/dynamo-operations.js';
import { DynamoShadowStore } from '../adapters/dynamo-shadow.js';
import { awsRuleStores, dynamoPorts, iotPublisher, loadConfig, telemetryStore } from '../shared/aws.js';
import { awsPackageStore } from '../shared/aws-firmware.js';
import { functionLogger, lambdaEntry } from '../shared/lambda-entry.js';
import type { Principal } from './auth.js';
import { composeApi } from './compose.js';
import { API_SECURITY_HEADERS, type ApiRequest, badRequest, type Router, tooLarge } from './http.js';

const MAX_BODY = 256 * 1024;

/**
 * The proxy event as an ApiRequest. The body is decoded and parsed only when the router asks for it,
 * after authentication (`readBody`): an invalid or oversized body is then a 400/413 naming `body`.
 */
export function toApiRequest(event: APIGatewayProxyEvent): ApiRequest {
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
    body: undefined,
  };
  const raw = event.body;
  if (raw) req.readBody = async () => parseBody(raw, event.isBase64Encoded);
  // The REQUEST authorizer already checked the key; its decision travels in the context.
  const ctx = event.requestContext?.authorizer;
  if (ctx && typeof ctx.principal === 'string') req.authorizerContext = { principal: ctx.principal };
  return req;
}

function parseBody(raw: string, base64: boolean): unknown {
  const text = base64 ? Buffer.from(raw, 'base64').toString('utf8') : raw;
  if (Buffer.byteLength(text) > MAX_BODY) throw tooLarge(`body is larger than ${MAX_BODY} bytes`);
  try {
    return JSON.parse(text);
  } catch {
    throw badRequest('body is not valid JSON', 'body', 'BAD_JSON');
  }
}

/** A proxy result with the API's security headers (CSP, nosniff, no referrer, no caching). */
function respond(status: number, body: unknown, headers: Record<string, string> = {}): APIGatewayProxyResult {
  return {
    statusCode: status,
    headers: { 'content-type': 'application/json', ...API_SECURITY_HEADERS, ...headers },
    body: body === null || body === undefined ? '' : JSON.stringify(body),
  };
}

/** The handler over any router factory (tests pass a router over in-memory ports). */
export function createApiHandler(
  makeRouter: () => Promise<Router<Principal>>,
  logError: (message: string, error: unknown) => void = (message, error) =>
    console.error(JSON.stringify({ level: 'ERROR', message, error: String(error) })),
) {
  let router: Promise<Router<Principal>> | undefined;
  return async (event: APIGatewayProxyEvent): Promise<APIGatewayProxyResult> => {
    router ??= makeRouter();
    let r: Router<Principal>;
    try {
      r = await router;
    } catch (error) {
      router = undefined; // the next request tries again (e.g. Secrets Manager throttled)
      logError('API dependencies failed', error);
      return respond(
        503,
        { error: { code: 'UNAVAILABLE', message: 'temporarily unavailable' } },
        { 'retry-after': '1' },
      );
    }
    const out = await r.handle(toApiRequest(event));
    return respond(out.status, out.body, out.headers);
  };
}

const logger = functionLogger();

export const handler = lambdaEntry(
  logger,
  createApiHandler(
    async () => {
      const config = loadConfig();
      const dynamo = dynamoPorts(config);
      const packages = awsPackageStore(config);
      return composeApi({
        ...dynamo,
        store: telemetryStore(config, dynamo.doc),
        publisher: iotPublisher(config),
        clock: Date.now,
        newId: randomUUID,
        // Every route but the public ones is behind the REST authorizer, which checks the key (admin
        // or application) and passes its decision in the request context: this function trusts that
        // decision only, so it neither reads the admin key secret nor calls Secrets Manager on its
        // first request (ADR 0025 amendment 2).
        adminKeyHash: undefined,
        ...(config.RULES_ENABLED ? { rules: awsRuleStores(config, dynamo.doc) } : {}),
        // Batch operations (ADR 0022), driven by the operations worker; firmware packages in S3.
        operations: {
          store: new DynamoOperationStore({ client: dynamo.doc, tableName: config.REGISTRY_TABLE }),
          ...(packages ? { packages } : {}),
        },
        // Device shadows (ADR 0023) on the registry table (Get/Put, already the API's grants).
        shadows: new DynamoShadowStore({ client: dynamo.doc, tableName: config.REGISTRY_TABLE }),
        // The cause of a 5xx goes to the log with the request id (the response says only "internal error").
        onError: (error, req) =>
          logger.error('request failed', {
            method: req.method,
            path: req.path,
            error: error instanceof Error ? error : String(error),
          }),
      }).router;
    },
    (message, error) => logger.error(message, error instanceof Error ? error : String(error)),
  ),
);
