/**
 * The API's request handling order and security details (issue 15, point 6), through the router and
 * the API Gateway handler: route → credential → path parameters → body → handler; 401 with a
 * WWW-Authenticate challenge; security headers on every response; admin key strength.
 */
import type { APIGatewayProxyEvent } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { checkAdminKeyStrength, newApiKey } from '../../functions/api/auth.js';
import { createApiHandler } from '../../functions/api/handler.js';
import { API_SECURITY_HEADERS, type ApiRequest } from '../../functions/api/http.js';
import { createApiRouter } from '../../functions/api/router.js';
import { ValidationError } from '../../functions/core/errors.js';
import { ADMIN, type Api, createApi } from './fixture.js';

let api: Api;
beforeAll(async () => {
  api = await createApi();
});
afterAll(async () => api.close());

const request = (over: Partial<ApiRequest>): ApiRequest => ({
  method: 'GET',
  path: '/devices',
  query: {},
  headers: {},
  body: undefined,
  ...over,
});
const admin = { authorization: `Bearer ${ADMIN}` };

describe('router: order of checks', () => {
  it('answers a malformed %-escape in a path with 400 naming the parameter, after authentication', async () => {
    // Prepare
    const router = createApiRouter(api.deps);
    // Act
    const anonymous = await router.handle(request({ path: '/devices/%E0%A4%A' }));
    const authenticated = await router.handle(request({ path: '/devices/%zz', headers: admin }));
    const cut = await router.handle(request({ path: '/devices/b1/commands/%E0%A4%A', headers: admin }));
    // Assess
    expect(anonymous.status).toBe(401);
    expect(authenticated).toMatchObject({
      status: 400,
      body: { error: { code: 'BAD_PATH', field: 'id' } },
    });
    expect(cut).toMatchObject({ status: 400, body: { error: { code: 'BAD_PATH', field: 'cmdId' } } });
  });

  it('reads the body only after the caller is authenticated', async () => {
    // Prepare
    const router = createApiRouter(api.deps);
    const readBody = vi.fn(async () => ({ name: 'Meter' }));
    // Act
    const anonymous = await router.handle(request({ method: 'PUT', path: '/device-types/meter', readBody }));
    const wrongKey = await router.handle(
      request({
        method: 'PUT',
        path: '/device-types/meter',
        headers: { authorization: 'Bearer not-a-key' },
        readBody,
      }),
    );
    // Assess
    expect([anonymous.status, wrongKey.status]).toEqual([401, 401]);
    expect(readBody).not.toHaveBeenCalled();
    const created = await router.handle(
      request({ method: 'PUT', path: '/device-types/meter', headers: admin, readBody }),
    );
    expect(created.status).toBe(201);
    expect(readBody).toHaveBeenCalledTimes(1);
    await router.handle(request({ method: 'DELETE', path: '/device-types/meter', headers: admin }));
  });

  it('challenges with WWW-Authenticate on every 401', async () => {
    const router = createApiRouter(api.deps);
    for (const headers of [{}, { authorization: 'Bearer wrong' }, { authorization: 'Basic abc' }]) {
      const res = await router.handle(request({ headers }));
      expect(res.status).toBe(401);
      expect(res.headers).toMatchObject({ 'www-authenticate': 'Bearer realm="dualpath"' });
    }
    const ok = await router.handle(request({ headers: admin }));
    expect(ok.headers?.['www-authenticate']).toBeUndefined();
  });
});

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

describe('API Gateway handler: security headers and body handling', () => {
  it('sends CSP (frame-ancestors none), nosniff, no-referrer and no-store on every response', async () => {
    const handler = createApiHandler(async () => createApiRouter(api.deps));
    const responses = [
      await handler(proxyEvent({ path: '/health' })),
      await handler(proxyEvent({ path: '/devices', headers: admin })),
      await handler(proxyEvent({ path: '/devices' })),
      await handler(proxyEvent({ path: '/nowhere', headers: admin })),
    ];
    expect(responses.map((r) => r.statusCode)).toEqual([200, 200, 401, 404]);
    for (const res of responses) {
      expect(res.headers).toMatchObject({
        'x-content-type-options': 'nosniff',
        'referrer-policy': 'no-referrer',
        'cache-control': 'no-store',
      });
      expect(String(res.headers?.['content-security-policy'])).toContain("frame-ancestors 'none'");
      expect(String(res.headers?.['content-security-policy'])).toContain("default-src 'none'");
    }
    expect(responses[2]!.headers).toMatchObject({ 'www-authenticate': 'Bearer realm="dualpath"' });
  });

  it('does not parse a body before authentication: invalid JSON without a credential is 401, with one 400', async () => {
    const handler = createApiHandler(async () => createApiRouter(api.deps));
    const anonymous = await handler(proxyEvent({ httpMethod: 'POST', path: '/apps', body: '{nope' }));
    const tooBig = await handler(
      proxyEvent({ httpMethod: 'POST', path: '/apps', body: `"${'x'.repeat(300 * 1024)}"` }),
    );
    expect([anonymous.statusCode, tooBig.statusCode]).toEqual([401, 401]);
    const bad = await handler(
      proxyEvent({ httpMethod: 'POST', path: '/apps', headers: admin, body: '{nope' }),
    );
    expect(bad.statusCode).toBe(400);
    expect(JSON.parse(bad.body)).toEqual({
      error: { code: 'BAD_JSON', message: 'body is not valid JSON', field: 'body' },
    });
    const big = await handler(
      proxyEvent({ httpMethod: 'POST', path: '/apps', headers: admin, body: `"${'x'.repeat(300 * 1024)}"` }),
    );
    expect(big.statusCode).toBe(413);
    expect(JSON.parse(big.body).error).toMatchObject({ code: 'TOO_LARGE', field: 'body' });
  });

  it('answers a malformed %-escape with 400, not 500', async () => {
    const handler = createApiHandler(async () => createApiRouter(api.deps));
    const res = await handler(proxyEvent({ path: '/devices/%zz/telemetry', headers: admin }));
    expect(res.statusCode).toBe(400);
    expect(res.headers).toMatchObject(API_SECURITY_HEADERS);
  });
});

describe('admin key strength', () => {
  it('accepts a generated key and long random-looking keys', () => {
    expect(() => checkAdminKeyStrength(newApiKey('admin'), 'DUALPATH_ADMIN_KEY')).not.toThrow();
    expect(() => checkAdminKeyStrength('Xq7-pL2v_9sKd0TzR4mWb8Nc1Yh6Jf3G', 'adminKey')).not.toThrow();
  });

  it.each([
    ['short', 'admin-secret'],
    ['31 characters', 'Xq7-pL2v_9sKd0TzR4mWb8Nc1Yh6Jf3'],
    ['one character repeated', 'a'.repeat(64)],
    ['a short sequence repeated', 'abc123'.repeat(8)],
    ['few distinct characters', 'ab12'.repeat(4) + 'ba21'.repeat(5)],
  ])('refuses a key that is %s, naming the setting and never echoing the key', (_why, key) => {
    let error: unknown;
    try {
      checkAdminKeyStrength(key, 'DUALPATH_ADMIN_KEY');
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ValidationError);
    expect(error).toMatchObject({ code: 'WEAK_ADMIN_KEY', field: 'DUALPATH_ADMIN_KEY' });
    expect((error as Error).message).toMatch(/^DUALPATH_ADMIN_KEY is too weak: /);
    expect((error as Error).message).not.toContain(key);
  });
});

describe('router: the cause of a 5xx is reported, never sent', () => {
  it('tells onError of an internal error (500) and of an unavailable dependency (503), not of a 4xx', async () => {
    // Prepare: the registry fails one way per request.
    const seen: Array<{ error: unknown; path: string }> = [];
    const failures = [new Error('disk on fire'), new ValidationError('bad', { field: 'x' })];
    const registry = Object.create(api.deps.registry);
    registry.listDevices = async () => {
      throw failures.shift();
    };
    const router = createApiRouter({
      ...api.deps,
      registry,
      onError: (error, req) => seen.push({ error, path: req.path }),
    });
    // Act
    const internal = await router.handle(request({ headers: admin }));
    const invalid = await router.handle(request({ headers: admin }));
    // Assess
    expect(internal.status).toBe(500);
    expect(JSON.stringify(internal.body)).not.toContain('disk on fire');
    expect(invalid.status).toBe(400);
    expect(seen).toHaveLength(1);
    expect(seen[0]?.error).toBeInstanceOf(Error);
    expect(String((seen[0]?.error as Error | undefined)?.message)).toBe('disk on fire');
    expect(seen[0]?.path).toBe('/devices');
  });
});
