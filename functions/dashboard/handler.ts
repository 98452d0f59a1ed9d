/**
 * The dashboard in AWS (ADR 0023, amendment "The dashboard in AWS"): the REST API's public GET routes
 * `/` and `/dashboard/{file}` serve the same files the local stack serves (infra/local/dashboard/,
 * copied beside this bundle at synth), with the same security headers, and `dashboard/config.json`
 * naming the WebSocket live transport (DASHBOARD_LIVE_URL, the stack's LiveUrl). The page holds no
 * secret: it asks for the key and calls the API relative to where it was served (the stage prefix).
 * Its own small function, not the API's: no authorizer, no table, no SDK, nothing on the API's cold start.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { APIGatewayProxyEvent, APIGatewayProxyResult } from 'aws-lambda';
import {
  DASHBOARD_CONFIG_PATH,
  DASHBOARD_FILES,
  dashboardConfig,
  dashboardSecurityHeaders,
} from './config.js';

export interface DashboardHandlerOptions {
  /** The directory holding index.html, app.js, ... */
  dir: string;
  /** The live WebSocket URL (wss://…/v1). */
  liveUrl: string;
}

export function createDashboardHandler(o: DashboardHandlerOptions) {
  const config = dashboardConfig(o.liveUrl);
  if (config.live.transport !== 'websocket') throw new Error('DASHBOARD_LIVE_URL is required');
  const headers = dashboardSecurityHeaders(config);
  const files = new Map<string, Promise<string>>();
  const text = (name: string) => {
    let f = files.get(name);
    if (!f) {
      f = readFile(join(o.dir, name), 'utf8');
      f.catch(() => files.delete(name));
      files.set(name, f);
    }
    return f;
  };
  const answer = (status: number, contentType: string, body: string, extra: Record<string, string> = {}) => ({
    statusCode: status,
    headers: { 'content-type': contentType, ...headers, ...extra },
    body,
  });
  return async (event: APIGatewayProxyEvent): Promise<APIGatewayProxyResult> => {
    if (event.httpMethod !== 'GET')
      return answer(
        405,
        'application/json',
        JSON.stringify({ error: { code: 'METHOD_NOT_ALLOWED', message: 'GET only' } }),
        { allow: 'GET' },
      );
    const path = event.path || '/';
    // `https://…/v1` (no slash): relative URLs would resolve above the stage; send the page to `/v1/`.
    const full = event.requestContext?.path;
    if (path === '/' && full && !full.endsWith('/'))
      return answer(301, 'text/plain', '', { location: `${full}/` });
    if (path === DASHBOARD_CONFIG_PATH) return answer(200, 'application/json', JSON.stringify(config));
    const asset = DASHBOARD_FILES[path];
    if (!asset)
      return answer(
        404,
        'application/json',
        JSON.stringify({ error: { code: 'NOT_FOUND', message: 'no such dashboard file', field: 'path' } }),
      );
    return answer(200, asset[1], await text(asset[0]));
  };
}

let served: ReturnType<typeof createDashboardHandler> | undefined;

/** Lambda entry: the files are in `dashboard/` beside the bundle (constructs/dashboard.ts copies them). */
export const handler = (event: APIGatewayProxyEvent): Promise<APIGatewayProxyResult> => {
  served ??= createDashboardHandler({
    dir: fileURLToPath(new URL('./dashboard/', import.meta.url)),
    liveUrl: process.env.DASHBOARD_LIVE_URL ?? '',
  });
  return served(event);
};
