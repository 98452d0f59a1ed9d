/**
 * The dashboard's runtime configuration (ADR 0023, amendment "The dashboard in AWS"): which live
 * transport the page uses, served as `dashboard/config.json` next to its scripts, and the page's
 * security headers, whose CSP `connect-src` must admit the WebSocket URL when there is one.
 *
 *   local stack   {"live":{"transport":"sse","url":"live"}}            (relative to the API base)
 *   AWS           {"live":{"transport":"websocket","url":"wss://…/v1"}} (the stack's LiveUrl)
 *
 * Pure: no secret, nothing read from the environment here (the caller passes the URL).
 */

/**
 * The dashboard's files (infra/local/dashboard/) by the path they are served at, relative to the API
 * base (`/` locally, `/v1/` under API Gateway), with their content type. The one list both servers use.
 */
export const DASHBOARD_FILES: Readonly<Record<string, readonly [file: string, contentType: string]>> = {
  '/': ['index.html', 'text/html; charset=utf-8'],
  '/index.html': ['index.html', 'text/html; charset=utf-8'],
  '/dashboard/style.css': ['style.css', 'text/css; charset=utf-8'],
  ...Object.fromEntries(
    ['app', 'operations', 'live', 'common', 'filters', 'shadow', 'events'].map((m) => [
      `/dashboard/${m}.js`,
      [`${m}.js`, 'text/javascript; charset=utf-8'] as const,
    ]),
  ),
};

/** Where the config is served (next to the scripts: live.js fetches `config.json` relative to itself). */
export const DASHBOARD_CONFIG_PATH = '/dashboard/config.json';

export interface DashboardConfig {
  live: { transport: 'sse' | 'websocket'; url: string };
}

/** The config for a WebSocket live URL (wss://, or ws:// for a loopback test server), or SSE without. */
export function dashboardConfig(liveUrl?: string): DashboardConfig {
  if (liveUrl === undefined || liveUrl === '') return { live: { transport: 'sse', url: 'live' } };
  let url: URL;
  try {
    url = new URL(liveUrl);
  } catch {
    throw new Error(`liveUrl is not a URL: ${JSON.stringify(liveUrl)}`);
  }
  const loopback = url.hostname === '127.0.0.1' || url.hostname === 'localhost' || url.hostname === '[::1]';
  if (url.protocol !== 'wss:' && !(url.protocol === 'ws:' && loopback))
    throw new Error(`liveUrl must be a wss:// URL (ws:// only on loopback): ${JSON.stringify(liveUrl)}`);
  if (url.search || url.hash || url.username || url.password)
    throw new Error(`liveUrl must have no query, fragment or credentials: ${JSON.stringify(liveUrl)}`);
  return { live: { transport: 'websocket', url: url.href.replace(/\/$/, '') } };
}

/**
 * The dashboard's pages: its own scripts, styles and API calls only (no inline script or style, so
 * none is allowed), the live WebSocket's origin if any, never framed, no referrer, no MIME sniffing.
 */
export function dashboardSecurityHeaders(config: DashboardConfig): Record<string, string> {
  const connect = ["'self'"];
  if (config.live.transport === 'websocket') connect.push(new URL(config.live.url).origin);
  return {
    'content-security-policy': [
      "default-src 'none'",
      "script-src 'self'",
      "style-src 'self'",
      "img-src 'self' data:",
      `connect-src ${connect.join(' ')}`,
      "form-action 'self'",
      "base-uri 'none'",
      "frame-ancestors 'none'",
    ].join('; '),
    'x-content-type-options': 'nosniff',
    'referrer-policy': 'no-referrer',
    'cache-control': 'no-store',
  };
}
