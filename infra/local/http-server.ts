/**
 * The local HTTP server: the same API router API Gateway serves, the dashboard page at /, and
 * /local/status (pipeline counters, admin only) for the dashboard's pipeline view.
 */
import { readFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import type { Principal } from '../../functions/api/auth.js';
import {
  API_SECURITY_HEADERS,
  type ApiRequest,
  badRequest,
  errorResponse,
  type Router,
  tooLarge,
} from '../../functions/api/http.js';
import {
  DASHBOARD_CONFIG_PATH,
  DASHBOARD_FILES,
  dashboardConfig,
  dashboardSecurityHeaders,
} from '../../functions/dashboard/config.js';
import { stringifyLine } from '../cli/json.js';
import { LIVE_PATH, type LiveEndpoint, serveLive } from './live-sse.js';

const DASHBOARD = fileURLToPath(new URL('./dashboard/', import.meta.url));
const MAX_BODY = 1024 * 1024;

/** The dashboard's headers with the local SSE transport (functions/dashboard/config.ts). */
export const DASHBOARD_SECURITY_HEADERS: Readonly<Record<string, string>> = dashboardSecurityHeaders(
  dashboardConfig(),
);

export interface HttpServerOptions {
  port: number;
  host?: string;
  router: Router<Principal>;
  status: () => unknown;
  authenticate: (req: ApiRequest) => Promise<Principal>;
  /** Signed firmware downloads, GET /packages/... (ADR 0022): the URL's signature is the credential. */
  packages?: (path: string, query: URLSearchParams) => Promise<{ status: number; body?: Uint8Array }>;
  /** Live updates as Server-Sent Events at /live (ADR 0023). */
  live?: LiveEndpoint;
  /**
   * The dashboard's live transport (dashboard/config.json): a WebSocket URL speaking the AWS
   * live-connections protocol instead of /live (tests); SSE at /live when absent.
   */
  dashboardLiveUrl?: string;
}

/** The JSON body, read only when the router asks (after authentication); bounded to MAX_BODY bytes. */
async function readBody(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY) throw tooLarge(`body is larger than ${MAX_BODY} bytes`);
    chunks.push(chunk as Buffer);
  }
  if (size === 0) return undefined;
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw badRequest('body is not valid JSON', 'body', 'BAD_JSON');
  }
}

function send(
  req: IncomingMessage,
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const text = body === null || body === undefined ? '' : stringifyLine(body);
  const out: Record<string, string> = {
    'content-type': 'application/json',
    ...API_SECURITY_HEADERS,
    ...headers,
  };
  // A body left unread (refused before it was read, or too large) is not drained: the connection ends.
  if (!req.complete) out.connection = 'close';
  res.writeHead(status, out);
  res.end(text);
}

export async function startHttpServer(
  o: HttpServerOptions,
): Promise<{ port: number; server: Server; close(): Promise<void> }> {
  const config = dashboardConfig(o.dashboardLiveUrl);
  const pageHeaders = dashboardSecurityHeaders(config);
  const server = createServer(async (req, res) => {
    try {
      const url = new URL(req.url ?? '/', 'http://localhost');
      const asset = req.method === 'GET' ? DASHBOARD_FILES[url.pathname] : undefined;
      if (req.method === 'GET' && url.pathname === DASHBOARD_CONFIG_PATH) {
        res.writeHead(200, { 'content-type': 'application/json', ...pageHeaders });
        res.end(JSON.stringify(config));
        return;
      }
      if (asset) {
        res.writeHead(200, { 'content-type': asset[1], ...pageHeaders });
        res.end(await readFile(`${DASHBOARD}${asset[0]}`));
        return;
      }
      if (o.packages && req.method === 'GET' && url.pathname.startsWith('/packages/')) {
        const out = await o.packages(url.pathname, url.searchParams);
        if (out.body === undefined)
          return send(req, res, out.status, {
            error: {
              code: out.status === 403 ? 'FORBIDDEN' : 'NOT_FOUND',
              message: out.status === 403 ? 'invalid or expired signature' : 'no such package',
            },
          });
        res.writeHead(200, {
          'content-type': 'application/octet-stream',
          'content-length': String(out.body.length),
          ...API_SECURITY_HEADERS,
        });
        res.end(out.body);
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
          return send(req, res, 403, { error: { code: 'FORBIDDEN', message: 'admin only' } });
        return send(req, res, 200, o.status());
      }
      if (url.pathname === LIVE_PATH && o.live && req.method === 'GET') {
        return await serveLive(o.live, req, res, apiReq, await o.authenticate(apiReq));
      }
      // Read by the router once the caller is authenticated, never before.
      if (req.method === 'POST' || req.method === 'PUT') apiReq.readBody = () => readBody(req);
      const out = await o.router.handle(apiReq);
      send(req, res, out.status, out.body, out.headers);
    } catch (error) {
      const out = errorResponse(error);
      send(req, res, out.status, out.body, out.headers);
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
