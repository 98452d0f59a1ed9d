/** Lambda entry point for API Gateway (REST, proxy integration): the same router the local stack serves. */
import { randomUUID } from 'node:crypto';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import type { APIGatewayProxyEvent, APIGatewayProxyResult } from 'aws-lambda';
import { stringifyLine } from '../../infra/cli/json.js';
import { CommandService } from '../core/commands.js';
import {
  awsClients,
  iotPublisher,
  loadConfig,
  lwm2mServer,
  registryAndEvents,
  telemetryStore,
} from '../shared/aws.js';
import { createApiRouter } from './app.js';
import { Authenticator, hashKey } from './auth.js';
import type { ApiRequest } from './http.js';

let router: ReturnType<typeof createApiRouter> | undefined;

export async function adminKeyHash(): Promise<string> {
  const arn = process.env.ADMIN_KEY_SECRET_ARN;
  if (!arn) throw new Error('ADMIN_KEY_SECRET_ARN is not set');
  const out = await new SecretsManagerClient({}).send(new GetSecretValueCommand({ SecretId: arn }));
  return hashKey(out.SecretString ?? '');
}

async function build() {
  const config = loadConfig();
  const { doc } = awsClients();
  const { registry, events } = registryAndEvents(config, doc);
  const publisher = iotPublisher(config);
  const commands = new CommandService({
    registry,
    lwm2m: lwm2mServer(config, doc),
    publish: (a) => publisher.publish(a),
    clock: Date.now,
    newId: randomUUID,
  });
  return createApiRouter({
    registry,
    store: await telemetryStore(config, doc),
    events,
    commands,
    authenticator: new Authenticator(await adminKeyHash(), registry),
    clock: Date.now,
  });
}

export function toApiRequest(event: APIGatewayProxyEvent): ApiRequest {
  let body: unknown;
  if (event.body) {
    const text = event.isBase64Encoded ? Buffer.from(event.body, 'base64').toString('utf8') : event.body;
    try {
      body = JSON.parse(text);
    } catch {
      body = Symbol.for('invalid-json');
    }
  }
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
  const ctx = event.requestContext?.authorizer;
  if (ctx && typeof ctx.principal === 'string') req.authorizerContext = { principal: ctx.principal };
  return req;
}

export async function handler(event: APIGatewayProxyEvent): Promise<APIGatewayProxyResult> {
  router ??= await build();
  const req = toApiRequest(event);
  if (req.body === Symbol.for('invalid-json')) {
    return {
      statusCode: 400,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ error: { code: 'BAD_JSON', message: 'body is not valid JSON', field: 'body' } }),
    };
  }
  const out = await router.handle(req);
  return {
    statusCode: out.status,
    headers: { 'content-type': 'application/json', ...(out.headers ?? {}) },
    body: out.body === null || out.body === undefined ? '' : stringifyLine(out.body),
  };
}
