/**
 * The API's transport-neutral request/response model and a small router. API Gateway (proxy
 * integration) and the local HTTP server both translate to and from these, so the routes are served
 * identically in AWS and locally.
 */
import { DualpathError, ForbiddenError, NotFoundError, ValidationError } from '../core/errors.js';

export interface ApiRequest {
  method: string;
  path: string;
  query: Record<string, string | undefined>;
  headers: Record<string, string | undefined>;
  body: unknown;
  /**
   * Reads and parses the body. The router calls it only after authentication (and route match), so an
   * unauthenticated caller never makes the server read or parse a body; its result replaces `body`.
   * Throws HttpError (400 BAD_JSON, 413 TOO_LARGE) for a body it refuses.
   */
  readBody?: () => Promise<unknown>;
  /** Principal already established upstream (API Gateway authorizer context), if any. */
  authorizerContext?: Record<string, unknown>;
}

/** The realm every 401 names in its WWW-Authenticate challenge (RFC 6750). */
export const AUTH_CHALLENGE = 'Bearer realm="dualpath"';

/**
 * Headers on every API response, in AWS (handler.ts) and locally (http-server.ts): JSON is never a
 * document to render, frame or cache, and no referrer leaks a URL.
 */
export const API_SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'content-security-policy':
    "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-store',
};

export interface ApiResponse {
  status: number;
  headers?: Record<string, string>;
  body: unknown;
}

export class HttpError extends DualpathError {
  readonly retryable = false;
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    field?: string,
  ) {
    super(message, field === undefined ? {} : { field });
  }
}

export const unauthorized = (message = 'a valid credential is required') =>
  new HttpError(401, 'UNAUTHORIZED', message);
export const tooLarge = (message: string, field = 'body') => new HttpError(413, 'TOO_LARGE', message, field);
export const forbidden = (message: string) => new HttpError(403, 'FORBIDDEN', message);
export const notFound = (message: string) => new HttpError(404, 'NOT_FOUND', message);
export const conflict = (message: string, field?: string) => new HttpError(409, 'CONFLICT', message, field);
export const badRequest = (message: string, field?: string, code = 'VALIDATION_FAILED') =>
  new HttpError(400, code, message, field);

/** Maps any error to the JSON error shape {"error":{"code","message","field?"}} with the right status. */
export function errorResponse(error: unknown): ApiResponse {
  if (error instanceof HttpError) {
    const out: ApiResponse = { status: error.status, body: { error: error.toJSON() } };
    if (error.status === 401) out.headers = { 'www-authenticate': AUTH_CHALLENGE };
    return out;
  }
  if (error instanceof ValidationError) return { status: 400, body: { error: error.toJSON() } };
  if (error instanceof NotFoundError) return { status: 404, body: { error: error.toJSON() } };
  if (error instanceof ForbiddenError) return { status: 403, body: { error: error.toJSON() } };
  if (error instanceof DualpathError && error.code === 'CONFLICT')
    return { status: 409, body: { error: error.toJSON() } };
  if (error instanceof DualpathError && error.retryable) {
    return {
      status: 503,
      headers: { 'retry-after': '1' },
      body: { error: { code: error.code, message: 'temporarily unavailable' } },
    };
  }
  return { status: 500, body: { error: { code: 'INTERNAL', message: 'internal error' } } };
}

export type Handler<P> = (
  req: ApiRequest,
  params: Record<string, string>,
  principal: P,
) => Promise<ApiResponse>;

interface Route<P> {
  method: string;
  pattern: string;
  regex: RegExp;
  names: string[];
  handler: Handler<P>;
  public: boolean;
}

export class Router<P> {
  private readonly routes: Route<P>[] = [];

  /**
   * @param onError told of every error answered with a 5xx (an internal error or an unavailable
   * dependency): the response says only "internal error", so this is where the cause is logged.
   */
  constructor(
    private readonly authenticate: (req: ApiRequest) => Promise<P>,
    private readonly onError?: (error: unknown, req: ApiRequest) => void,
  ) {}

  add(method: string, pattern: string, handler: Handler<P>, opts: { public?: boolean } = {}): this {
    const names: string[] = [];
    const regex = new RegExp(
      `^${pattern.replace(/\{(\w+)\}/g, (_, name: string) => {
        names.push(name);
        return '([^/]+)';
      })}/?$`,
    );
    this.routes.push({ method, pattern, regex, names, handler, public: opts.public ?? false });
    return this;
  }

  list(): Array<{ method: string; pattern: string; public: boolean }> {
    return this.routes.map(({ method, pattern, public: p }) => ({ method, pattern, public: p }));
  }

  /**
   * Order: route (404/405), then the credential (401/403) unless the route is public, then the path
   * parameters (a malformed %-escape is 400 naming the parameter), then the body, then the handler.
   */
  async handle(req: ApiRequest): Promise<ApiResponse> {
    try {
      let pathMatched = false;
      for (const route of this.routes) {
        const m = route.regex.exec(req.path);
        if (!m) continue;
        pathMatched = true;
        if (route.method !== req.method) continue;
        const principal = route.public ? (undefined as P) : await this.authenticate(req);
        const params: Record<string, string> = {};
        route.names.forEach((name, i) => {
          params[name] = decodeParam(m[i + 1]!, name);
        });
        if (req.readBody) req.body = await req.readBody();
        return await route.handler(req, params, principal);
      }
      if (pathMatched)
        return {
          status: 405,
          body: {
            error: {
              code: 'METHOD_NOT_ALLOWED',
              message: `${req.method} is not allowed on ${printablePath(req.path)}`,
            },
          },
        };
      throw notFound(`no route for ${req.method} ${printablePath(req.path)}`);
    } catch (error) {
      const out = errorResponse(error);
      if (out.status >= 500) this.onError?.(error, req);
      return out;
    }
  }
}

/** A %-decoded path segment; a malformed escape (`%zz`, a cut UTF-8 sequence) is a 400 naming it. */
function decodeParam(raw: string, name: string): string {
  try {
    return decodeURIComponent(raw);
  } catch {
    throw badRequest(`${name} in the path has a malformed %-escape`, name, 'BAD_PATH');
  }
}

/** The path as echoed in an error message: bounded, control characters replaced. */
function printablePath(path: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: replacing control characters is the point
  const clean = path.replace(/[\u0000-\u001f\u007f]/g, '?');
  return clean.length > 200 ? `${clean.slice(0, 200)}…` : clean;
}

// ---- small validators for query strings and bodies (each names the field it rejects) ----

export function requireObject(body: unknown, field = 'body'): Record<string, unknown> {
  if (body === null || typeof body !== 'object' || Array.isArray(body))
    throw badRequest(`${field} must be a JSON object`, field);
  return body as Record<string, unknown>;
}

export function optionalString(obj: Record<string, unknown>, field: string, max = 256): string | undefined {
  const v = obj[field];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string' || v.length === 0 || v.length > max)
    throw badRequest(`${field} must be a string of 1-${max} characters`, field);
  return v;
}

export function requireString(obj: Record<string, unknown>, field: string, max = 256): string {
  const v = optionalString(obj, field, max);
  if (v === undefined) throw badRequest(`${field} is required`, field);
  return v;
}

export function optionalStringArray(
  obj: Record<string, unknown>,
  field: string,
  maxItems = 100,
): string[] | undefined {
  const v = obj[field];
  if (v === undefined || v === null) return undefined;
  if (
    !Array.isArray(v) ||
    v.length > maxItems ||
    v.some((x) => typeof x !== 'string' || x.length === 0 || x.length > 128)
  ) {
    throw badRequest(`${field} must be an array of at most ${maxItems} non-empty strings`, field);
  }
  return v as string[];
}

export function queryInt(
  query: ApiRequest['query'],
  field: string,
  opts: { min?: number; max?: number; default?: number } = {},
): number | undefined {
  const raw = query[field];
  if (raw === undefined || raw === '') return opts.default;
  if (!/^-?\d+$/.test(raw)) throw badRequest(`${field} must be an integer`, field);
  const n = Number(raw);
  if ((opts.min !== undefined && n < opts.min) || (opts.max !== undefined && n > opts.max)) {
    throw badRequest(`${field} must be between ${opts.min ?? '-∞'} and ${opts.max ?? '∞'}`, field);
  }
  return n;
}

/** Epoch ms or an ISO-8601 date. */
export function queryTime(query: ApiRequest['query'], field: string, fallback: number): number {
  const raw = query[field];
  if (raw === undefined || raw === '') return fallback;
  if (/^\d+$/.test(raw)) return Number(raw);
  const t = Date.parse(raw);
  if (Number.isNaN(t)) throw badRequest(`${field} must be epoch milliseconds or an ISO-8601 time`, field);
  return t;
}

const UNITS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Parses intervals such as 30s, 1m, 15m, 1h, 1d. */
export function parseInterval(raw: string, field = 'interval'): number {
  const m = /^(\d+)([smhd])$/.exec(raw);
  if (!m) throw badRequest(`${field} must look like 30s, 1m, 1h or 1d`, field);
  const ms = Number(m[1]) * UNITS[m[2]!]!;
  if (ms < 1000 || ms > 31 * 86_400_000) throw badRequest(`${field} must be between 1s and 31d`, field);
  return ms;
}

export function ok(body: unknown, status = 200): ApiResponse {
  return { status, body };
}

export { ValidationError };
