/**
 * The dashboard's WebSocket live transport in headless Chromium (ADR 0023, amendment "The dashboard in
 * AWS"): the page reads dashboard/config.json, connects with the key as the second subprotocol and
 * shows pushed readings. The WebSocket server here speaks API Gateway's part of the protocol (upgrade
 * refused on a non-2xx $connect, route responses sent back) and runs the AWS code itself: the
 * live-connections function's composition (functions/live-connections/compose.ts) over an in-memory
 * connection store, and the publishers' ConnectionFanout fed by the local stack's hub — so an MQTT
 * reading goes ingest → hub → fanout → WebSocket → page.
 */
import { randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import type { MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type WebSocket, WebSocketServer } from 'ws';
import type { StoredLiveConnection } from '../../functions/adapters/dynamo-live-connections.js';
import { hashKey } from '../../functions/api/auth.js';
import { ConnectionFanout } from '../../functions/core/live-fanout.js';
import { encodePayload } from '../../functions/core/sparkplug/codec.js';
import { DataType } from '../../functions/core/sparkplug/types.js';
import { composeLiveConnections } from '../../functions/live-connections/compose.js';
import { available, birthBreaker, Harness, type PageGlobals } from './harness.js';

const ADMIN = 'dp_admin_live-ws-browser-key-7c1e94b2a05d3f68';
const h = new Harness(ADMIN, 'dualpath-live-ws-ui-');
const ID = 'live-ws-ui';
let device: MqttClient;
let seq = 0;

// ---- a WebSocket endpoint running the live-connections function and the fanout ----------------------
const stored = new Map<string, StoredLiveConnection>();
const sockets = new Map<string, WebSocket>();
const offered: string[] = [];
const upgradeUrls: string[] = [];
let refuse = false;
const connections = composeLiveConnections({
  registry: {
    getDevice: (id) => h.stack.registry.getDevice(id),
    findApplicationByKeyHash: (hash) => h.stack.registry.findApplicationByKeyHash(hash),
  },
  adminKeyHash: hashKey(ADMIN),
  connections: {
    put: async (c) => void stored.set(c.id, c),
    get: async (id) => stored.get(id),
    remove: async (id) => void stored.delete(id),
  },
  clock: Date.now,
});
const fanout = new ConnectionFanout({
  connections: { list: async () => [...stored.values()], remove: async (id) => void stored.delete(id) },
  post: async (id, text) => {
    const ws = sockets.get(id);
    if (!ws) return 'gone';
    ws.send(text);
    return 'ok';
  },
  clock: Date.now,
  ttlMs: 0,
});
const wss = new WebSocketServer({
  host: '127.0.0.1',
  port: 0,
  handleProtocols: (protocols) => (protocols.has('dualpath') ? 'dualpath' : false),
  verifyClient: (info, done) => {
    const url = new URL(info.req.url ?? '/', 'ws://127.0.0.1');
    upgradeUrls.push(url.href);
    offered.push(String(info.req.headers['sec-websocket-protocol'] ?? ''));
    if (refuse) return done(false, 503);
    const id = randomUUID();
    const headers = Object.fromEntries(
      Object.entries(info.req.headers).map(([k, v]) => [k, Array.isArray(v) ? v[0] : v]),
    );
    void connections
      .handler({
        requestContext: { routeKey: '$connect', connectionId: id },
        headers,
        queryStringParameters: Object.fromEntries(url.searchParams),
      })
      .then((out) => {
        (info.req as { connectionId?: string }).connectionId = id;
        done(out.statusCode === 200, out.statusCode);
      });
  },
});
const listening = new Promise<void>((resolve) => wss.once('listening', () => resolve()));
wss.on('connection', (ws, req) => {
  const id = (req as { connectionId?: string }).connectionId!;
  sockets.set(id, ws);
  ws.on('message', async (data) => {
    const body = String(data);
    let action: unknown;
    try {
      action = (JSON.parse(body) as { action?: unknown }).action;
    } catch {}
    const out = await connections.handler({
      requestContext: { routeKey: action === 'subscribe' ? 'subscribe' : '$default', connectionId: id },
      body,
    });
    if (out.body) ws.send(out.body);
  });
  ws.on('close', () => {
    sockets.delete(id);
    void connections.handler({ requestContext: { routeKey: '$disconnect', connectionId: id } });
  });
});

const data = (value: number) =>
  device.publishAsync(
    `spBv1.0/grid/NDATA/${ID}`,
    Buffer.from(
      encodePayload({
        timestamp: Date.now(),
        seq: ++seq,
        metrics: [{ alias: 1, datatype: DataType.Float, value, omitDatatype: true, timestamp: Date.now() }],
      }),
    ),
    { qos: 1 },
  );

describe.skipIf(!available)('dashboard over the WebSocket live transport', { timeout: 120_000 }, () => {
  beforeAll(async () => {
    await listening;
    const port = (wss.address() as AddressInfo).port;
    const stack = await h.start({ dashboardLiveUrl: `ws://127.0.0.1:${port}/v1` });
    // The AWS publishers' code path: every event of the stack's hub goes through the fanout.
    stack.live.subscribe({ viewer: { kind: 'admin' } }, (e) => void fanout.publish([e]));
    device = await birthBreaker(stack, h.mqttUrl, ID);
    expect(await stack.drain()).toBe(true);
    await h.launch();
  }, 90_000);

  afterAll(async () => {
    device?.end(true);
    for (const ws of sockets.values()) ws.terminate();
    await new Promise((r) => wss.close(r));
    await h.stop();
  }, 60_000);

  it('serves config.json and a CSP that admits the WebSocket origin', async () => {
    const res = await fetch(`${h.base}/dashboard/config.json`);
    const port = (wss.address() as AddressInfo).port;
    expect(await res.json()).toEqual({ live: { transport: 'websocket', url: `ws://127.0.0.1:${port}/v1` } });
    const page = await fetch(`${h.base}/`);
    expect(page.headers.get('content-security-policy')).toContain(
      `connect-src 'self' ws://127.0.0.1:${port}`,
    );
  });

  it('connects with the key as subprotocol, shows pushed readings, and reconnects after a drop', async () => {
    const { page, errors } = await h.open({ httpErrors: true });
    const sse: string[] = [];
    const stateRequests: number[] = [];
    page.on('request', (r) => {
      if (new URL(r.url()).pathname === '/live') sse.push(r.url());
      if (r.url().includes(`/devices/${ID}/state`)) stateRequests.push(Date.now());
    });
    await page.waitForSelector(`#devices-table tbody tr[data-device="${ID}"]`, { timeout: 30_000 });
    await page.click('[data-tab="device"]');
    await page.selectOption('#device-select', ID);
    await page.waitForFunction(
      () => (globalThis as unknown as PageGlobals).document.body.dataset.live === 'connected',
      undefined,
      {
        timeout: 30_000,
      },
    );
    // The key only in Sec-WebSocket-Protocol, never in the URL; the subscription in the query string.
    expect(offered.at(-1)).toBe(`dualpath, ${ADMIN}`);
    expect(upgradeUrls.at(-1)).toContain(`/v1?device=${ID}&kinds=reading,lifecycle,alert`);
    expect(upgradeUrls.join(' ')).not.toContain(ADMIN);
    expect([...stored.values()].at(-1)?.sub.deviceId).toBe(ID);

    const voltage = (v: string) =>
      page.waitForFunction(
        (want) =>
          Array.from(
            (globalThis as unknown as PageGlobals).document.querySelectorAll('#state-table tbody tr'),
          ).some(
            (r) =>
              r.cells[0]?.textContent === 'Voltage' &&
              r.cells[2]?.textContent === want &&
              r.dataset.liveAt !== undefined,
          ),
        v,
        { timeout: 30_000, polling: 5 },
      );
    const latencies: number[] = [];
    for (const value of [241.5, 242.5, 243.5]) {
      const t0 = Date.now();
      await data(value);
      await voltage(String(value));
      latencies.push(Date.now() - t0);
    }
    console.info(`[live-ws] MQTT publish → on screen over WebSocket: ${latencies.join(', ')} ms`);

    // The endpoint drops every connection and refuses new ones: the page falls back to the 2 s poll.
    refuse = true;
    const beforeDrop = stateRequests.length;
    for (const ws of sockets.values()) ws.terminate();
    await page.waitForFunction(
      () => (globalThis as unknown as PageGlobals).document.body.dataset.live === 'disconnected',
      undefined,
      {
        timeout: 10_000,
      },
    );
    await new Promise((r) => setTimeout(r, 5_000));
    expect(stateRequests.length - beforeDrop).toBeGreaterThanOrEqual(1);
    const refused = upgradeUrls.length;
    // Back up: it reconnects by itself (backoff below 15 s) and readings are pushed again.
    refuse = false;
    await page.waitForFunction(
      () => (globalThis as unknown as PageGlobals).document.body.dataset.live === 'connected',
      undefined,
      {
        timeout: 20_000,
      },
    );
    expect(upgradeUrls.length).toBeGreaterThan(refused);
    await data(250.5);
    await voltage('250.5');
    expect(sse).toEqual([]);
    // The refused upgrades log a console error in Chromium; anything else is a failure.
    expect(errors.filter((e) => !/WebSocket/i.test(e))).toEqual([]);
    await page.close();
  });
});
