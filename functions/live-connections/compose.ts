/**
 * The live-connections function, whole — its one composition root (ADR 0023, AWS transport). It serves
 * the WebSocket API's routes:
 *
 *   $connect     authenticate the key (the REST Authenticator: admin key hash, application key hashes in
 *                the registry), authorize the subscription (`authorizeSubscription`, the REST scoping:
 *                an application asking for another type's device gets the same 403 as GET /devices/{id})
 *                and store the connection; any non-2xx answer makes API Gateway refuse the upgrade.
 *   subscribe    `{"action":"subscribe","device":"pump-7","kinds":"reading,alert"}` changes the
 *                subscription of an open connection, authorized again with the stored principal.
 *   $default     `{"action":"ping"}` answers a pong (keeps a quiet connection under the 10-minute idle
 *                limit); anything else a 400 naming `action`.
 *   $disconnect  forget the connection.
 *
 * The key travels in `Sec-WebSocket-Protocol` (`new WebSocket(url, ['dualpath', key])`: browsers cannot
 * set Authorization on a WebSocket, and a key in the URL would land in access logs); the answer selects
 * `dualpath`. Non-browser clients may send `Authorization: Bearer <key>` instead. The device and kinds
 * travel in the query string (not secret). Events reach connections from the publishers
 * (core/live-fanout.ts), never from here.
 */

import type { StoredLiveConnection } from '../adapters/dynamo-live-connections.js';
import { Authenticator, type Principal } from '../api/auth.js';
import { errorResponse, HttpError, unauthorized } from '../api/http.js';
import { authorizeSubscription } from '../api/live.js';
import type { Clock } from '../core/processor.js';
import type { RegistryPort } from '../core/registry.js';

/** The subprotocol a client offers (with its key as the second one) and the server selects. */
export const LIVE_SUBPROTOCOL = 'dualpath';

export interface LiveConnectionStore {
  put(c: StoredLiveConnection): Promise<void>;
  get(id: string): Promise<StoredLiveConnection | undefined>;
  remove(id: string): Promise<void>;
}

export interface LiveConnectionsPorts {
  registry: Pick<RegistryPort, 'getDevice' | 'findApplicationByKeyHash'>;
  adminKeyHash: string;
  connections: LiveConnectionStore;
  clock: Clock;
}

/** The WebSocket event API Gateway sends a Lambda (proxy integration), the parts read here. */
export interface WebSocketEvent {
  requestContext: { routeKey?: string; eventType?: string; connectionId?: string };
  headers?: Record<string, string | undefined> | null;
  queryStringParameters?: Record<string, string | undefined> | null;
  body?: string | null;
  isBase64Encoded?: boolean;
}

export interface WebSocketResult {
  statusCode: number;
  headers?: Record<string, string>;
  body?: string;
}

export interface LiveConnections {
  handler: (event: WebSocketEvent) => Promise<WebSocketResult>;
}

/** The key of a $connect request: second subprotocol after `dualpath`, or Authorization / x-api-key. */
export function connectKey(headers: Record<string, string | undefined>): {
  key: string | undefined;
  subprotocol: boolean;
} {
  const offered = (headers['sec-websocket-protocol'] ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
  if (offered.includes(LIVE_SUBPROTOCOL)) {
    const key = offered.find((s) => s !== LIVE_SUBPROTOCOL);
    return { key, subprotocol: true };
  }
  const auth = headers.authorization;
  const bearer = auth ? /^Bearer\s+(\S+)$/i.exec(auth)?.[1] : undefined;
  return { key: bearer ?? headers['x-api-key'], subprotocol: false };
}

export function composeLiveConnections(ports: LiveConnectionsPorts): LiveConnections {
  const authenticator = new Authenticator(ports.adminKeyHash, ports.registry);
  const fail = (error: unknown): WebSocketResult => {
    const out = errorResponse(error);
    if (out.status >= 500)
      console.error(
        JSON.stringify({ level: 'ERROR', message: 'live connection failed', error: String(error) }),
      );
    return { statusCode: out.status, body: JSON.stringify(out.body) };
  };
  const connect = async (id: string, event: WebSocketEvent): Promise<WebSocketResult> => {
    const headers = Object.fromEntries(
      Object.entries(event.headers ?? {}).map(([k, v]) => [k.toLowerCase(), v ?? undefined]),
    );
    const { key, subprotocol } = connectKey(headers);
    try {
      if (!key) throw unauthorized();
      const principal = await authenticator.authenticateKey(key);
      const query = Object.fromEntries(
        Object.entries(event.queryStringParameters ?? {}).map(([k, v]) => [k, v ?? undefined]),
      );
      const sub = await authorizeSubscription(ports.registry, principal, query);
      await ports.connections.put({ id, sub, principal, connectedAt: ports.clock() });
    } catch (error) {
      return fail(error);
    }
    return {
      statusCode: 200,
      ...(subprotocol ? { headers: { 'Sec-WebSocket-Protocol': LIVE_SUBPROTOCOL } } : {}),
    };
  };
  const message = async (id: string, route: string, event: WebSocketEvent): Promise<WebSocketResult> => {
    let body: Record<string, unknown>;
    try {
      const text = event.isBase64Encoded
        ? Buffer.from(event.body ?? '', 'base64').toString('utf8')
        : (event.body ?? '');
      const parsed = JSON.parse(text) as unknown;
      if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('not an object');
      body = parsed as Record<string, unknown>;
    } catch {
      return fail(new HttpError(400, 'BAD_JSON', 'a message is a JSON object with an action', 'body'));
    }
    if (route === 'subscribe' || body.action === 'subscribe') {
      try {
        const current = await ports.connections.get(id);
        if (!current) throw unauthorized('this connection is not known (reconnect)');
        const query: Record<string, string | undefined> = {};
        for (const f of ['device', 'kinds'] as const) {
          const v = body[f];
          if (v === undefined || v === null) continue;
          if (f === 'kinds' && Array.isArray(v) && v.every((x) => typeof x === 'string'))
            query.kinds = v.join(',');
          else if (typeof v === 'string') query[f] = v;
          else throw new HttpError(400, 'VALIDATION_FAILED', `${f} must be a string`, f);
        }
        const principal: Principal = current.principal;
        const sub = await authorizeSubscription(ports.registry, principal, query);
        await ports.connections.put({ ...current, sub });
        return {
          statusCode: 200,
          body: JSON.stringify({
            type: 'subscribed',
            ...(sub.deviceId !== undefined ? { device: sub.deviceId } : {}),
            ...(sub.kinds !== undefined ? { kinds: sub.kinds } : {}),
          }),
        };
      } catch (error) {
        return fail(error);
      }
    }
    if (body.action === 'ping') return { statusCode: 200, body: JSON.stringify({ type: 'pong' }) };
    return fail(new HttpError(400, 'VALIDATION_FAILED', 'action must be "subscribe" or "ping"', 'action'));
  };
  return {
    handler: async (event) => {
      const id = event.requestContext.connectionId;
      const route = event.requestContext.routeKey ?? '$default';
      if (!id) return fail(new HttpError(400, 'VALIDATION_FAILED', 'no connection id', 'connectionId'));
      if (route === '$connect') return connect(id, event);
      if (route === '$disconnect') {
        try {
          await ports.connections.remove(id);
        } catch (error) {
          return fail(error);
        }
        return { statusCode: 200 };
      }
      return message(id, route, event);
    },
  };
}
