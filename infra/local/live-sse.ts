/**
 * The local stack's live endpoint (ADR 0023): GET /live?device=<id>&kinds=reading,alert as
 * Server-Sent Events from the in-process hub. Authenticated and scoped like REST
 * (authorizeSubscription); the dashboard reads it with fetch (EventSource cannot send Authorization).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Principal } from '../../functions/api/auth.js';
import { API_SECURITY_HEADERS, type ApiRequest } from '../../functions/api/http.js';
import { authorizeSubscription } from '../../functions/api/live.js';
import { toJsonSafe } from '../../functions/api/routes/context.js';
import type { LiveHub } from '../../functions/core/live.js';
import type { RegistryPort } from '../../functions/core/registry.js';

export const LIVE_PATH = '/live';
const HEARTBEAT_MS = 15_000;

export interface LiveEndpoint {
  hub: LiveHub;
  registry: Pick<RegistryPort, 'getDevice'>;
}

/** Bytes a subscriber may leave unread before its stream is closed. */
const MAX_BUFFERED_BYTES = 1 << 20;

/** Serves one subscription until the client goes away. Throws (before any byte is written) on 4xx. */
export async function serveLive(
  live: LiveEndpoint,
  req: IncomingMessage,
  res: ServerResponse,
  apiReq: ApiRequest,
  principal: Principal,
): Promise<void> {
  const sub = await authorizeSubscription(live.registry, principal, apiReq.query);
  // A client gone while we authorized has already fired its 'close': never subscribe for it.
  if (req.destroyed || res.destroyed || res.writableEnded || !res.socket || res.socket.destroyed) return;
  res.writeHead(200, {
    ...API_SECURITY_HEADERS,
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-store',
    connection: 'keep-alive',
  });
  // Tells the client the subscription is in place (events published from now on reach it).
  res.write(
    `event: ready\ndata: ${JSON.stringify({ device: sub.deviceId ?? null, kinds: sub.kinds ?? null })}\n\n`,
  );
  const heartbeat = setInterval(() => res.write(': keep-alive\n\n'), HEARTBEAT_MS);
  heartbeat.unref();
  let closed = false;
  const done = () => {
    if (closed) return;
    closed = true;
    clearInterval(heartbeat);
    unsubscribe();
  };
  const unsubscribe = live.hub.subscribe(sub, (e) => {
    // A client that stops reading is cut off rather than buffered without bound in the process that
    // also runs ingest; the dashboard reconnects (and polls meanwhile).
    if (res.writableLength > MAX_BUFFERED_BYTES) {
      done();
      res.destroy();
      return;
    }
    res.write(`event: ${e.kind}\ndata: ${JSON.stringify(toJsonSafe(e))}\n\n`);
  });
  res.once('close', done);
  res.on('error', done);
}
