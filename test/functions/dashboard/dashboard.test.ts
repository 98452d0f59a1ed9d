import { fileURLToPath } from 'node:url';
import type { APIGatewayProxyEvent } from 'aws-lambda';
import { describe, expect, it } from 'vitest';
import {
  DASHBOARD_FILES,
  dashboardConfig,
  dashboardSecurityHeaders,
} from '../../../functions/dashboard/config.js';
import { createDashboardHandler } from '../../../functions/dashboard/handler.js';

const DIR = fileURLToPath(new URL('../../../infra/local/dashboard/', import.meta.url));
const LIVE = 'wss://abc123.execute-api.eu-west-1.amazonaws.com/v1';
const get = (path: string, full = `/v1${path}`, method = 'GET') =>
  ({ httpMethod: method, path, requestContext: { path: full } }) as unknown as APIGatewayProxyEvent;

describe('dashboardConfig', () => {
  it('is SSE at /live without a URL, the WebSocket API with one', () => {
    expect(dashboardConfig()).toEqual({ live: { transport: 'sse', url: 'live' } });
    expect(dashboardConfig(`${LIVE}/`)).toEqual({ live: { transport: 'websocket', url: LIVE } });
    expect(dashboardConfig('ws://127.0.0.1:9000/v1').live.transport).toBe('websocket');
  });
  it('refuses plain ws:// off loopback, non-URLs, queries and credentials, naming liveUrl', () => {
    expect(() => dashboardConfig('ws://example.com/v1')).toThrow(/liveUrl must be a wss:\/\//);
    expect(() => dashboardConfig('https://example.com/v1')).toThrow(/liveUrl must be a wss:\/\//);
    expect(() => dashboardConfig('not a url')).toThrow(/liveUrl is not a URL/);
    expect(() => dashboardConfig(`${LIVE}?key=x`)).toThrow(/liveUrl must have no query/);
    expect(() => dashboardConfig('wss://u:p@example.com/v1')).toThrow(/credentials/);
  });
  it("admits the WebSocket origin in connect-src, and only 'self' without one", () => {
    const ws = dashboardSecurityHeaders(dashboardConfig(LIVE))['content-security-policy'];
    expect(ws).toContain("connect-src 'self' wss://abc123.execute-api.eu-west-1.amazonaws.com;");
    expect(ws).toContain("script-src 'self'");
    expect(dashboardSecurityHeaders(dashboardConfig())['content-security-policy']).toContain(
      "connect-src 'self';",
    );
  });
});

describe('the dashboard function', () => {
  const handler = createDashboardHandler({ dir: DIR, liveUrl: LIVE });

  it('serves every dashboard file with its type and the page headers', async () => {
    for (const [path, [, type]] of Object.entries(DASHBOARD_FILES)) {
      const out = await handler(get(path));
      expect(out.statusCode, path).toBe(200);
      expect(out.headers?.['content-type'], path).toBe(type);
      expect(out.headers?.['content-security-policy'], path).toContain('wss://abc123');
      expect(out.headers?.['x-content-type-options']).toBe('nosniff');
      expect(out.body.length, path).toBeGreaterThan(100);
    }
    expect((await handler(get('/'))).body).toContain('src="dashboard/app.js"');
  });
  it('serves config.json naming the WebSocket API', async () => {
    const out = await handler(get('/dashboard/config.json'));
    expect(JSON.parse(out.body)).toEqual({ live: { transport: 'websocket', url: LIVE } });
  });
  it('redirects the stage without its slash, 404s unknown files, 405s other methods', async () => {
    const r = await handler(get('/', '/v1'));
    expect(r.statusCode).toBe(301);
    expect(r.headers?.location).toBe('/v1/');
    const missing = await handler(get('/dashboard/..%2Fhandler.js'));
    expect(missing.statusCode).toBe(404);
    expect(JSON.parse(missing.body).error.field).toBe('path');
    expect((await handler(get('/', '/v1/', 'POST'))).statusCode).toBe(405);
  });
  it('refuses to start without a live URL', () => {
    expect(() => createDashboardHandler({ dir: DIR, liveUrl: '' })).toThrow(/DASHBOARD_LIVE_URL is required/);
  });
});
