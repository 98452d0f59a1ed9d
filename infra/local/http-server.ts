/**
 * The local HTTP server: the same API router API Gateway serves, the dashboard page at /, and
 * /local/status (pipeline counters, admin only) for the dashboard's pipeline view.
 */
import { readFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import type { Principal } from '../../functions/api/auth.js';
import { type ApiRequest, errorResponse, type Router } from '../../functions/api/http.js';
import { stringifyLine } from '../cli/json.js';

const DASHBOARD = fileURLToPath(new URL('./dashboard/', import.meta.url));
const STATIC: Record<string, [string, string]> = {
  '/': ['index.html', 'text/html; charset=utf-8'],
  '/index.html': ['index.html', 'text/html; charset=utf-8'],
  '/dashboard/app.js': ['app.js', 'text/javascript; charset=utf-8'],
  '/dashboard/style.css': ['style.css', 'text/css; charset=utf-8'],
};
const MAX_BODY = 1024 * 1024;

export interface HttpServerOptions {
  port: number;
  host?: string;
  router: Router<Principal>;
  status: () => unknown;
  authenticate: (req: ApiRequest) => Promise<Principal>;
}

async function readBody(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY) throw Object.assign(new Error('body too large'), { status: 413 });
    chunks.push(chunk as Buffer);
  }
  if (size === 0) return undefined;
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw Object.assign(new Error('body is not valid JSON'), { status: 400 });
  }
}

function send(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const text = body === null || body === undefined ? '' : stringifyLine(body);
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store', ...headers });
  res.end(text);
}

export async function startHttpServer(
  o: HttpServerOptions,
): Promise<{ port: number; server: Server; close(): Promise<void> }> {
  const server = createServer(async (req, res) => {
    try {
      const url = new URL(req.url ?? '/', 'http://localhost');
      const asset = req.method === 'GET' ? STATIC[url.pathname] : undefined;
      if (asset) {
        res.writeHead(200, { 'content-type': asset[1], 'cache-control': 'no-store' });
        res.end(await readFile(`${DASHBOARD}${asset[0]}`));
        return;
      }
      const headers = Object.fromEntries(
        Object.entries(req.headers).map(([k, v]) => [k.toLowerCase(), Array.isArray(v) ? v[0] : v]),
      );
      const apiReq: ApiRequest = {
        method: req.method ?? 'GET',
        path: url.pathname,
        query: Object.fromEntries(url.searchParams),
        headers,
        body: undefined,
      };
      if (url.pathname === '/local/status') {
        const principal = await o.authenticate(apiReq);
        if (principal.kind !== 'admin')
          return send(res, 403, { error: { code: 'FORBIDDEN', message: 'admin only' } });
        return send(res, 200, o.status());
      }
      if (req.method === 'POST' || req.method === 'PUT') apiReq.body = await readBody(req);
      const out = await o.router.handle(apiReq);
      send(res, out.status, out.body, out.headers);
    } catch (error) {
      const status = (error as { status?: number }).status;
      if (status)
        return send(res, status, {
          error: { code: status === 413 ? 'TOO_LARGE' : 'BAD_JSON', message: (error as Error).message },
        });
      const out = errorResponse(error);
      send(res, out.status, out.body, out.headers);
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port, o.host ?? '127.0.0.1', () => resolve());
  });
  return {
    port: (server.address() as AddressInfo).port,
    server,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
