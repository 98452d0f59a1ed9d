/**
 * The local HTTP server over real sockets (127.0.0.1, a free port): security headers on the dashboard
 * and the API, bodies read only after authentication, malformed path escapes, 401 challenges. The
 * router is the real one over the API test fixture's in-memory ports.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createApiRouter } from '../../../functions/api/router.js';
import { startCommand } from '../../../infra/cli/start.js';
import { DASHBOARD_SECURITY_HEADERS, startHttpServer } from '../../../infra/local/http-server.js';
import { startLocalStack } from '../../../infra/local/stack.js';
import { ADMIN, type Api, createApi } from '../../api/fixture.js';

let api: Api;
let server: Awaited<ReturnType<typeof startHttpServer>>;

beforeAll(async () => {
  api = await createApi();
  server = await startHttpServer({
    port: 0,
    router: createApiRouter(api.deps),
    status: () => ({ ok: true }),
    authenticate: (req) => api.deps.authenticator.authenticate(req),
  });
});
afterAll(async () => {
  await server.close();
  await api.close();
});

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
}

/** One raw request (the path is sent as given, so malformed escapes reach the server). */
function send(
  method: string,
  path: string,
  opts: { key?: string; body?: string | Buffer; headers?: Record<string, string> } = {},
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { ...opts.headers };
    if (opts.key) headers.authorization = `Bearer ${opts.key}`;
    if (opts.body !== undefined) headers['content-length'] = String(Buffer.byteLength(opts.body));
    const req = httpRequest({ host: '127.0.0.1', port: server.port, method, path, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          text: Buffer.concat(chunks).toString(),
        }),
      );
    });
    // The server may answer and close before the whole body is sent: that is the point of some tests.
    req.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code !== 'EPIPE' && error.code !== 'ECONNRESET') reject(error);
    });
    if (opts.body !== undefined) req.write(opts.body);
    req.end();
  });
}

describe('local HTTP server: security headers', () => {
  it('serves the dashboard with a CSP that allows only its own scripts, styles and API calls', async () => {
    for (const path of ['/', '/dashboard/app.js', '/dashboard/style.css']) {
      const res = await send('GET', path);
      expect(res.status, path).toBe(200);
      expect(res.headers, path).toMatchObject(DASHBOARD_SECURITY_HEADERS);
    }
    const csp = DASHBOARD_SECURITY_HEADERS['content-security-policy']!;
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).toContain("script-src 'self'");
    expect(csp).not.toContain('unsafe-inline');
    expect(csp).not.toContain('unsafe-eval');
  });

  it('serves dashboard/config.json: SSE at /live on the local stack', async () => {
    const res = await send('GET', '/dashboard/config.json');
    expect(JSON.parse(res.text)).toEqual({ live: { transport: 'sse', url: 'live' } });
  });

  it('loads nothing the CSP would block: no inline script or style, only same-origin files', async () => {
    const html = (await send('GET', '/')).text;
    const js = (await send('GET', '/dashboard/app.js')).text;
    // Every <script> has a same-origin src and no body; no style attributes or <style> elements.
    const scripts = [...html.matchAll(/<script\b([^>]*)>([\s\S]*?)<\/script>/g)];
    expect(scripts.length).toBeGreaterThan(0);
    for (const [, attrs, body] of scripts) {
      // Relative to the page (the API base: `/` here, the stage `/v1/` under API Gateway).
      expect(attrs).toMatch(/src="dashboard\/[^"/:]+"/);
      expect(body!.trim()).toBe('');
    }
    expect(html).not.toMatch(/<style\b|\sstyle=|\son[a-z]+=/i);
    // Same-origin files only; the one exception is the empty icon (`data:,`, no content) that stops the
    // browser's /favicon.ico request.
    expect(
      html.match(/(?:href|src)="([^"]+)"/g)?.every((m) => /="dashboard\//.test(m) || m === 'href="data:,"'),
    ).toBe(true);
    // The script neither builds style attributes or inline handlers nor evaluates strings.
    expect(js).not.toMatch(/\sstyle=|\.style\b|\son[a-z]+=|\beval\(|new Function\(/);
    // Nor does any other module of the page (those it loads and those they import), each served.
    for (const file of ['operations', 'live', 'shadow', 'events', 'filters', 'common']) {
      const res = await send('GET', `/dashboard/${file}.js`);
      expect(res.status, file).toBe(200);
      expect(res.text, file).not.toMatch(/\sstyle=|\.style\b|\son[a-z]+=|\beval\(|new Function\(/);
    }
  });

  it('sends the API headers on every API answer, and a WWW-Authenticate challenge with 401', async () => {
    const health = await send('GET', '/health');
    const denied = await send('GET', '/devices');
    const status = await send('GET', '/local/status');
    const devices = await send('GET', '/devices', { key: ADMIN });
    expect([health.status, denied.status, status.status, devices.status]).toEqual([200, 401, 401, 200]);
    for (const res of [health, denied, status, devices]) {
      expect(res.headers).toMatchObject({
        'x-content-type-options': 'nosniff',
        'referrer-policy': 'no-referrer',
        'cache-control': 'no-store',
      });
      expect(res.headers['content-security-policy']).toContain("frame-ancestors 'none'");
    }
    expect(denied.headers['www-authenticate']).toBe('Bearer realm="dualpath"');
    expect(status.headers['www-authenticate']).toBe('Bearer realm="dualpath"');
  });
});

describe('local HTTP server: request order', () => {
  it('does not read a body before authentication: invalid or oversized bodies of anonymous callers get 401', async () => {
    const invalid = await send('POST', '/apps', { body: '{nope' });
    const huge = await send('POST', '/apps', { body: Buffer.alloc(2 * 1024 * 1024, 0x20) });
    expect(invalid.status).toBe(401);
    expect(huge.status).toBe(401);
    // Authenticated, the same bodies are read and refused with their own errors.
    const bad = await send('POST', '/apps', { key: ADMIN, body: '{nope' });
    expect(bad.status).toBe(400);
    expect(JSON.parse(bad.text).error).toMatchObject({ code: 'BAD_JSON', field: 'body' });
    const big = await send('POST', '/apps', { key: ADMIN, body: Buffer.alloc(2 * 1024 * 1024, 0x20) });
    expect(big.status).toBe(413);
    expect(JSON.parse(big.text).error).toMatchObject({ code: 'TOO_LARGE', field: 'body' });
  });

  it('answers a malformed %-escape in the path with 400 naming the parameter once authenticated, 401 before', async () => {
    const anonymous = await send('GET', '/devices/%E0%A4%A');
    const authenticated = await send('GET', '/devices/%E0%A4%A', { key: ADMIN });
    const commands = await send('GET', '/devices/b1/commands/%zz', { key: ADMIN });
    expect(anonymous.status).toBe(401);
    expect(authenticated.status).toBe(400);
    expect(JSON.parse(authenticated.text).error).toMatchObject({ code: 'BAD_PATH', field: 'id' });
    expect(commands.status).toBe(400);
    expect(JSON.parse(commands.text).error).toMatchObject({ code: 'BAD_PATH', field: 'cmdId' });
  });

  it('still serves authenticated writes with a JSON body', async () => {
    const created = await send('PUT', '/device-types/meter', {
      key: ADMIN,
      body: JSON.stringify({ name: 'Meter' }),
      headers: { 'content-type': 'application/json' },
    });
    expect(created.status).toBe(201);
    expect(JSON.parse(created.text)).toMatchObject({ id: 'meter', name: 'Meter' });
    expect((await send('DELETE', '/device-types/meter', { key: ADMIN })).status).toBe(204);
  });
});

describe('a chosen admin key', () => {
  it('the local stack refuses a weak adminKey before starting anything, naming the option', async () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'dualpath-weak-')), 'data');
    await expect(
      startLocalStack({
        dataDir: dir,
        mqttPort: 0,
        httpPort: 0,
        adminKey: 'admin-admin-admin-admin-admin-admin',
      }),
    ).rejects.toMatchObject({ code: 'WEAK_ADMIN_KEY', field: 'adminKey' });
    expect(existsSync(dir)).toBe(false);
    rmSync(join(dir, '..'), { recursive: true, force: true });
  });

  it('`dualpath start` refuses a weak DUALPATH_ADMIN_KEY with a message naming it, and exit code 2', async () => {
    const stderr = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    vi.stubEnv('DUALPATH_ADMIN_KEY', 'password');
    try {
      const code = await startCommand.run(['--no-simulator', '--port', '0', '--mqtt-port', '0']);
      expect(code).toBe(2);
      const written = stderr.mock.calls.map((c) => String(c[0])).join('');
      expect(written).toContain('DUALPATH_ADMIN_KEY is too weak');
      expect(written).not.toContain('password');
    } finally {
      vi.unstubAllEnvs();
      stderr.mockRestore();
    }
  });
});
