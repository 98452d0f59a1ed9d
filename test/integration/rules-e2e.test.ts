/**
 * Rules end to end on the local stack (issue 17, ADR 0016): a rule created over REST fires on the
 * crossing reading (MQTT → broker → kinesalite → ingest handler → rule engine → webhook), resolves with
 * hysteresis, is fired once only when the handler crashes after its batch (the stream redelivers it) and
 * when the runners lose their checkpoints (every batch redelivered), and its webhook receives exactly
 * one POST per transition. Application keys manage only rules of their device types.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodePayload } from '../../functions/core/sparkplug/codec.js';
import { DataType } from '../../functions/core/sparkplug/types.js';
import { type LocalStack, startLocalStack } from '../../infra/local/stack.js';

const ADMIN_KEY = 'dp_admin_rules-e2e-test-key-4c1d9e7a2b6f8035';
const NODE = 'rule-node-1';

interface Post {
  at: number;
  key: string;
  body: { kind: string; alertId: string; value?: number; ruleId: string; resolvedBy?: string };
}

let stack: LocalStack;
let dir: string;
let hook: Server;
let hookUrl: string;
const posts: Post[] = [];
let client: MqttClient;
let seq = 0;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'dualpath-rules-'));
  hook = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      posts.push({
        at: Date.now(),
        key: String(req.headers['idempotency-key']),
        body: JSON.parse(Buffer.concat(chunks).toString('utf8')),
      });
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((r) => hook.listen(0, '127.0.0.1', r));
  hookUrl = `http://127.0.0.1:${(hook.address() as AddressInfo).port}/alerts`;
  stack = await startLocalStack({
    dataDir: dir,
    mqttPort: 0,
    httpPort: 0,
    adminKey: ADMIN_KEY,
    // No crash unless asked for (failNext): a crash after the whole batch was processed.
    faults: { handlerCrash: { rate: 0, after: Number.POSITIVE_INFINITY } },
  });
  client = await mqtt.connectAsync(`mqtt://127.0.0.1:${stack.mqttPort}`, {
    clientId: NODE,
    reconnectPeriod: 0,
    protocolVersion: 4,
  });
}, 60_000);

afterAll(async () => {
  client?.end(true);
  await stack?.stop();
  await new Promise<void>((r) => (hook ? hook.close(() => r()) : r()));
  rmSync(dir, { recursive: true, force: true });
}, 60_000);

async function api(path: string, init: { method?: string; body?: unknown; key?: string } = {}) {
  const res = await fetch(`http://127.0.0.1:${stack.httpPort}${path}`, {
    method: init.method ?? 'GET',
    headers: { authorization: `Bearer ${init.key ?? ADMIN_KEY}`, 'content-type': 'application/json' },
    ...(init.body === undefined ? {} : { body: JSON.stringify(init.body) }),
  });
  // biome-ignore lint/suspicious/noExplicitAny: JSON bodies of several shapes, checked by the assertions
  return { status: res.status, body: (await res.json().catch(() => null)) as Record<string, any> };
}

async function current(value: number, birth = false): Promise<number> {
  const t = Date.now();
  const payload = birth
    ? encodePayload({
        timestamp: t,
        seq: 0,
        metrics: [
          { name: 'bdSeq', datatype: DataType.Int64, value: 0 },
          { name: 'Current/L1', alias: 1, datatype: DataType.Double, value, timestamp: t },
        ],
      })
    : encodePayload({
        timestamp: t,
        seq: ++seq % 256,
        metrics: [{ alias: 1, datatype: DataType.Double, value, omitDatatype: true, timestamp: t }],
      });
  await client.publishAsync(`spBv1.0/plant/${birth ? 'NBIRTH' : 'NDATA'}/${NODE}`, Buffer.from(payload), {
    qos: 1,
  });
  return t;
}

/** Waits (bounded) until the webhook has received `n` POSTs. */
async function postsReach(n: number, withinMs = 10_000): Promise<void> {
  const until = Date.now() + withinMs;
  while (posts.length < n && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
}

/** Lets the pipeline settle: every record processed, and a few clock ticks (outbox, due states). */
async function settle(): Promise<void> {
  expect(await stack.drain()).toBe(true);
  await new Promise((r) => setTimeout(r, 2500));
}

describe('rules on the local stack', () => {
  let ruleId: string;

  it('creates a rule over REST (conditions parsed, errors with positions, app keys scoped)', async () => {
    const bad = await api('/rules', {
      method: 'POST',
      body: { name: 'x', severity: 'major', condition: 'value > > 80', select: {} },
    });
    expect(bad.status).toBe(400);
    expect(bad.body.error).toMatchObject({ field: 'condition', position: 8 });

    const app = stack.demoApp!; // registered for device type "breaker"
    const foreign = await api('/rules', {
      method: 'POST',
      key: app.apiKey,
      body: { name: 'p', severity: 'minor', condition: 'value > 1', select: { deviceType: 'pressure' } },
    });
    expect(foreign.status).toBe(403);
    const anyType = await api('/rules', {
      method: 'POST',
      key: app.apiKey,
      body: { name: 'p', severity: 'minor', condition: 'value > 1', select: {} },
    });
    expect(anyType.status).toBe(403);
    const own = await api('/rules', {
      method: 'POST',
      key: app.apiKey,
      body: {
        id: 'app-own',
        name: 'trip',
        severity: 'minor',
        condition: 'on death',
        select: { deviceType: 'breaker' },
      },
    });
    expect(own.status).toBe(201);

    const created = await api('/rules', {
      method: 'POST',
      body: {
        id: 'overcurrent',
        name: 'L1 over-current',
        severity: 'major',
        select: { devices: [NODE], metric: 'Current/L1' },
        condition: 'value > 80 clear value < 75',
        actions: [{ type: 'webhook', url: hookUrl }],
      },
    });
    expect(created.status).toBe(201);
    ruleId = created.body.id;
    expect(created.body.condition).toBe('value > 80 clear value < 75');
    // The admin sees both rules; the application only its own.
    expect((await api('/rules')).body.rules.map((r: { id: string }) => r.id).sort()).toEqual([
      'app-own',
      'overcurrent',
    ]);
    expect((await api('/rules', { key: app.apiKey })).body.rules.map((r: { id: string }) => r.id)).toEqual([
      'app-own',
    ]);
    expect((await api(`/rules/${ruleId}`, { key: app.apiKey })).status).toBe(403);
  });

  it('fires once on the crossing reading, even when the handler crashes after the batch', async () => {
    await current(50, true);
    await current(70);
    await settle();
    expect(posts).toHaveLength(0);
    expect((await api('/alerts')).body.alerts).toHaveLength(0);

    // The batch carrying the crossing reading is processed whole, then the handler crashes: the
    // stream redelivers it, and the rule must not fire again.
    stack.faults!.failNext('handlerCrash', 1);
    const sent = await current(85);
    await postsReach(1);
    expect(posts).toHaveLength(1);
    const latency = posts[0]!.at - sent;
    // Printed, not asserted (no timed assertions on a shared machine): the target is < 2 s.
    console.log(`rules e2e: crossing reading → webhook POST in ${latency} ms`);
    await settle();
    expect(stack.status().faults!.handlerCrashes).toBe(1);
    expect(posts).toHaveLength(1);
    expect(posts[0]!.body).toMatchObject({ kind: 'open', ruleId, value: 85 });
    expect(posts[0]!.key).toBe((posts[0]!.body as { id?: string }).id);

    const open = await api('/alerts?status=open');
    expect(open.body.alerts).toHaveLength(1);
    expect(open.body.alerts[0]).toMatchObject({ ruleId, deviceId: NODE, severity: 'major', value: 85 });
  });

  it('resolves with hysteresis: stays open between the thresholds, resolves below the clear level', async () => {
    await current(78); // below 80 but above 75: still open
    await settle();
    expect(posts).toHaveLength(1);
    expect((await api('/alerts?status=open')).body.alerts).toHaveLength(1);

    await current(74);
    await postsReach(2);
    await settle();
    expect(posts).toHaveLength(2);
    expect(posts[1]!.body).toMatchObject({
      kind: 'resolve',
      resolvedBy: 'rule',
      alertId: posts[0]!.body.alertId,
    });
    const alert = (await api(`/alerts/${posts[0]!.body.alertId}`)).body;
    expect(alert.status).toBe('resolved');
    expect(alert.history.map((h: { kind: string }) => h.kind)).toEqual(['open', 'resolve']);
  });

  it('runners restarted as after a crash (in-flight checkpoints lost): nothing fires again', async () => {
    await stack.restartRunners({ crash: true });
    await settle();
    expect(posts).toHaveLength(2);
    expect(new Set(posts.map((p) => p.key)).size).toBe(2);
  });

  it('opens a new alert on the next crossing; a user acknowledges it (who and when), the event log has them', async () => {
    await current(95);
    await postsReach(3);
    await settle();
    expect(posts).toHaveLength(3);
    const id = posts[2]!.body.alertId;
    expect(id).not.toBe(posts[0]!.body.alertId);
    const ack = await api(`/alerts/${id}/ack`, { method: 'POST', body: { note: 'on it' } });
    expect(ack.status).toBe(200);
    expect(ack.body).toMatchObject({ status: 'acknowledged', acknowledgedBy: 'admin', note: 'on it' });
    expect(typeof ack.body.acknowledgedAt).toBe('number');
    expect((await api(`/alerts/${id}/ack`, { method: 'POST' })).status).toBe(409);
    const events = await api(`/events?type=alert&deviceId=${NODE}`);
    expect(events.body.events).toHaveLength(3);
    // An acknowledgement is not a transition: no POST for it.
    await settle();
    expect(posts).toHaveLength(3);
  });
});
