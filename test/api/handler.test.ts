/**
 * The AWS entry points: API Gateway proxy events ↔ ApiRequest/ApiResponse, the REQUEST authorizer's
 * policies, and reading the admin key from Secrets Manager (aws-sdk-client-mock, no network).
 */
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import type { APIGatewayProxyEvent, APIGatewayRequestAuthorizerEvent } from 'aws-lambda';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { Authenticator, hashKey } from '../../functions/api/auth.js';
import { createAuthorizer, stageWildcard } from '../../functions/api/authorizer.js';
import { createApiHandler } from '../../functions/api/handler.js';
import { createApiRouter } from '../../functions/api/router.js';
import { TransientError } from '../../functions/core/errors.js';
import { adminKeyHashFromSecret } from '../../functions/shared/aws.js';
import { ADMIN, type Api, createApi, reading, T0 } from './fixture.js';

let api: Api;
beforeAll(async () => {
  api = await createApi();
});
afterAll(async () => api.close());

const ARN = 'arn:aws:execute-api:eu-west-1:123456789012:abc123/prod/GET/devices/b1';

function proxyEvent(over: Partial<APIGatewayProxyEvent>): APIGatewayProxyEvent {
  return {
    httpMethod: 'GET',
    path: '/devices',
    headers: {},
    multiValueHeaders: {},
    queryStringParameters: null,
    multiValueQueryStringParameters: null,
    pathParameters: null,
    stageVariables: null,
    body: null,
    isBase64Encoded: false,
    resource: '/{proxy+}',
    requestContext: {} as APIGatewayProxyEvent['requestContext'],
    ...over,
  };
}

describe('API Gateway proxy handler', () => {
  it('behind the authorizer (no admin key hash): trusts its decision only, a request without one is 401', async () => {
    const authenticator = new Authenticator(undefined, api.registry);
    const handler = createApiHandler(async () => createApiRouter({ ...api.deps, authenticator }));
    const principal = JSON.stringify({ kind: 'admin' });
    const ok = await handler(
      proxyEvent({
        requestContext: { authorizer: { principal } } as unknown as APIGatewayProxyEvent['requestContext'],
      }),
    );
    expect(ok.statusCode).toBe(200);
    // The admin key itself, without the authorizer's decision, is not checked here.
    const direct = await handler(proxyEvent({ headers: { authorization: `Bearer ${ADMIN}` } }));
    expect(direct.statusCode).toBe(401);
    await expect(authenticator.authenticateKey(ADMIN)).rejects.toMatchObject({ status: 401 });
    // Public routes need no decision.
    expect((await handler(proxyEvent({ path: '/health' }))).statusCode).toBe(200);
  });

  it('serves the router: query, authorizer context, JSON body and status', async () => {
    const handler = createApiHandler(async () => createApiRouter(api.deps));
    const principal = JSON.stringify({ kind: 'admin' });
    const res = await handler(
      proxyEvent({
        path: '/devices',
        queryStringParameters: { type: 'breaker' },
        requestContext: { authorizer: { principal } } as unknown as APIGatewayProxyEvent['requestContext'],
      }),
    );
    expect(res.statusCode).toBe(200);
    expect(res.headers).toMatchObject({ 'content-type': 'application/json' });
    expect(JSON.parse(res.body).devices.map((d: { id: string }) => d.id)).toEqual(['b1']);

    const created = await handler(
      proxyEvent({
        httpMethod: 'PUT',
        path: '/device-types/meter',
        headers: { Authorization: `Bearer ${ADMIN}` },
        body: Buffer.from(JSON.stringify({ name: 'Meter' })).toString('base64'),
        isBase64Encoded: true,
      }),
    );
    expect(created.statusCode).toBe(201);
    expect(JSON.parse(created.body)).toMatchObject({ id: 'meter', name: 'Meter' });
    const deleted = await handler(
      proxyEvent({
        httpMethod: 'DELETE',
        path: '/device-types/meter',
        headers: { authorization: `Bearer ${ADMIN}` },
      }),
    );
    expect(deleted.statusCode).toBe(204);
    expect(deleted.body).toBe('');
  });

  it('renders bigints as strings in the HTTP body', async () => {
    await api.store.write([reading('b1', 'breaker', 'Big', 2n ** 62n + 1n, T0 + 500, { type: 'Int64' })]);
    const handler = createApiHandler(async () => createApiRouter(api.deps));
    const res = await handler(
      proxyEvent({
        path: '/devices/b1/telemetry',
        headers: { authorization: `Bearer ${ADMIN}` },
        queryStringParameters: { metric: 'Big', from: String(T0), to: String(T0 + 1000) },
      }),
    );
    expect(res.body).toContain('"value":"4611686018427387905"');
  });

  it('answers 400 naming body for invalid JSON, and 401 without a credential', async () => {
    const handler = createApiHandler(async () => createApiRouter(api.deps));
    const bad = await handler(
      proxyEvent({
        httpMethod: 'POST',
        path: '/apps',
        headers: { authorization: `Bearer ${ADMIN}` },
        body: '{nope',
      }),
    );
    expect(bad.statusCode).toBe(400);
    expect(JSON.parse(bad.body)).toEqual({
      error: { code: 'BAD_JSON', message: 'body is not valid JSON', field: 'body' },
    });
    expect((await handler(proxyEvent({ path: '/devices' }))).statusCode).toBe(401);
  });

  it('answers 503 when the dependencies cannot be built, and retries on the next request', async () => {
    const err = vi.spyOn(console, 'error').mockImplementation(() => {});
    let attempts = 0;
    const handler = createApiHandler(async () => {
      attempts++;
      if (attempts === 1) throw new TransientError('THROTTLED', 'secrets manager throttled');
      return createApiRouter(api.deps);
    });
    const first = await handler(proxyEvent({ path: '/health' }));
    expect(first.statusCode).toBe(503);
    expect(first.headers).toMatchObject({ 'retry-after': '1' });
    expect((await handler(proxyEvent({ path: '/health' }))).statusCode).toBe(200);
    expect(attempts).toBe(2);
    err.mockRestore();
  });
});

describe('REQUEST authorizer', () => {
  const authEvent = (headers: Record<string, string>): APIGatewayRequestAuthorizerEvent =>
    ({ type: 'REQUEST', methodArn: ARN, headers }) as unknown as APIGatewayRequestAuthorizerEvent;

  it('allows the admin key on the whole stage with the principal in the context', async () => {
    const authorize = createAuthorizer(async () => new Authenticator(hashKey(ADMIN), api.registry));
    const out = await authorize(authEvent({ Authorization: `Bearer ${ADMIN}` }));
    expect(out.principalId).toBe('admin');
    expect(out.policyDocument.Statement).toEqual([
      {
        Action: 'execute-api:Invoke',
        Effect: 'Allow',
        Resource: 'arn:aws:execute-api:eu-west-1:123456789012:abc123/prod/*',
      },
    ]);
    expect(JSON.parse(String(out.context?.principal))).toEqual({ kind: 'admin' });
  });

  it('allows an application key with its types, which the router then enforces', async () => {
    const authorize = createAuthorizer(async () => new Authenticator(hashKey(ADMIN), api.registry));
    const out = await authorize(authEvent({ authorization: `Bearer ${api.appKey}` }));
    expect(out.principalId).toBe(`app:${api.appId}`);
    const principal = String(out.context?.principal);
    expect(JSON.parse(principal)).toMatchObject({ kind: 'app', deviceTypes: ['breaker'] });
    const handler = createApiHandler(async () => createApiRouter(api.deps));
    const ctx = { authorizer: { principal } } as unknown as APIGatewayProxyEvent['requestContext'];
    expect((await handler(proxyEvent({ path: '/devices/b1', requestContext: ctx }))).statusCode).toBe(200);
    expect((await handler(proxyEvent({ path: '/devices/e1', requestContext: ctx }))).statusCode).toBe(403);
  });

  it('is Unauthorized without a key or with an unknown key, and never logs the key', async () => {
    const log = vi.spyOn(console, 'error').mockImplementation(() => {});
    const authorize = createAuthorizer(async () => new Authenticator(hashKey(ADMIN), api.registry));
    await expect(authorize(authEvent({}))).rejects.toThrow(/^Unauthorized$/);
    await expect(authorize(authEvent({ authorization: 'Bearer dp_app_stolen' }))).rejects.toThrow(
      /^Unauthorized$/,
    );
    expect(log).not.toHaveBeenCalled();
    log.mockRestore();
  });

  it('fails (500, not Allow and not 401) when the registry is down', async () => {
    const log = vi.spyOn(console, 'error').mockImplementation(() => {});
    const authorize = createAuthorizer(
      async () =>
        new Authenticator(hashKey(ADMIN), {
          findApplicationByKeyHash: async () => {
            throw new TransientError('THROTTLED', 'dynamodb throttled');
          },
        }),
    );
    await expect(authorize(authEvent({ authorization: 'Bearer dp_app_somekey' }))).rejects.toThrow(
      'dynamodb throttled',
    );
    expect(JSON.stringify(log.mock.calls)).not.toContain('dp_app_somekey');
    log.mockRestore();
  });

  it('builds the wildcard resource from the method ARN', () => {
    expect(stageWildcard('arn:aws:execute-api:us-east-1:1:api/dev/POST/apps/x/rotate-key')).toBe(
      'arn:aws:execute-api:us-east-1:1:api/dev/*',
    );
  });
});

describe('admin key from Secrets Manager', () => {
  const sm = mockClient(SecretsManagerClient);
  afterAll(() => sm.restore());

  it('hashes a plain-text or JSON secret, asking for the configured ARN', async () => {
    sm.reset();
    sm.on(GetSecretValueCommand, { SecretId: 'arn:secret:a' }).resolves({ SecretString: 'k1' });
    sm.on(GetSecretValueCommand, { SecretId: 'arn:secret:b' }).resolves({ SecretString: '{"key":"k2"}' });
    const client = new SecretsManagerClient({ region: 'eu-west-1' });
    expect(await adminKeyHashFromSecret(client, 'arn:secret:a')).toBe(hashKey('k1'));
    expect(await adminKeyHashFromSecret(client, 'arn:secret:b')).toBe(hashKey('k2'));
    expect(sm.commandCalls(GetSecretValueCommand).map((c) => c.args[0].input.SecretId)).toEqual([
      'arn:secret:a',
      'arn:secret:b',
    ]);
  });

  it('refuses an empty secret', async () => {
    sm.reset();
    sm.on(GetSecretValueCommand).resolves({ SecretString: '' });
    await expect(
      adminKeyHashFromSecret(new SecretsManagerClient({ region: 'eu-west-1' }), 'arn:x'),
    ).rejects.toMatchObject({
      field: 'ADMIN_KEY_SECRET_ARN',
    });
  });
});
