/**
 * Live updates on the local stack (ADR 0023), at the API level: /live is authenticated and scoped like
 * REST — an application key cannot subscribe to another type's device (same 403 as for a missing one),
 * and a fleet-wide application subscription never carries another type's events — while the admin and
 * an application of the right type receive readings pushed from the ingest path (MQTT → Kinesis →
 * handler → hub), without polling.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodePayload } from '../../functions/core/sparkplug/codec.js';
import { DataType } from '../../functions/core/sparkplug/types.js';
import { type LocalStack, startLocalStack } from '../../infra/local/stack.js';

const ADMIN = 'dp_admin_live-test-key-7b3e91c0d54a8f26';
let stack: LocalStack;
let dir: string;
let envKey: string;
const clients: MqttClient[] = [];

interface Stream {
  events: Array<{ event: string; data: Record<string, unknown> }>;
  next(pred: (e: { event: string; data: Record<string, unknown> }) => boolean, ms?: number): Promise<void>;
  close(): void;
}

async function open(query: string, key: string): Promise<Response & { stream?: Stream }> {
  const controller = new AbortController();
  const res = await fetch(`http://127.0.0.1:${stack.httpPort}/live${query}`, {
    headers: { authorization: `Bearer ${key}` },
    signal: controller.signal,
  });
  if (!res.ok) return res;
  const events: Stream['events'] = [];
  const waiters: Array<() => void> = [];
  void (async () => {
    const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
    let buf = '';
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        buf += value;
        let i = buf.indexOf('\n\n');
        while (i >= 0) {
          const frame = buf.slice(0, i);
          buf = buf.slice(i + 2);
          i = buf.indexOf('\n\n');
          const ev = /^event: (.*)$/m.exec(frame)?.[1];
          const data = /^data: (.*)$/m.exec(frame)?.[1];
          if (ev && data) events.push({ event: ev, data: JSON.parse(data) });
          for (const w of waiters.splice(0)) w();
        }
      }
    } catch {
      // aborted
    }
  })();
  const stream: Stream = {
    events,
    async next(pred, ms = 20_000) {
      const until = Date.now() + ms;
      while (!events.some(pred)) {
        if (Date.now() > until) throw new Error(`no matching event in ${ms} ms: ${JSON.stringify(events)}`);
        await new Promise<void>((r) => {
          waiters.push(r);
          setTimeout(r, 200);
        });
      }
    },
    close: () => controller.abort(),
  };
  return Object.assign(res, { stream });
}

async function device(id: string, type: string): Promise<MqttClient> {
  const now = Date.now();
  await stack.registry.putDevice({
    id,
    type,
    tags: {},
    status: 'active',
    protocols: [],
    createdAt: now,
    updatedAt: now,
  });
  const c = await mqtt.connectAsync(`mqtt://127.0.0.1:${stack.mqttPort}`, {
    clientId: id,
    reconnectPeriod: 0,
  });
  clients.push(c);
  return c;
}

const birth = (c: MqttClient, id: string, value: number) =>
  c.publishAsync(
    `spBv1.0/live/NBIRTH/${id}`,
    Buffer.from(
      encodePayload({
        timestamp: Date.now(),
        seq: 0,
        metrics: [
          { name: 'bdSeq', datatype: DataType.Int64, value: 0 },
          { name: 'Voltage', alias: 1, datatype: DataType.Float, value, timestamp: Date.now() },
        ],
      }),
    ),
    { qos: 1 },
  );

describe('live updates over /live (Server-Sent Events)', { timeout: 60_000 }, () => {
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'dualpath-live-'));
    stack = await startLocalStack({ dataDir: dir, mqttPort: 0, httpPort: 0, adminKey: ADMIN });
    const res = await fetch(`http://127.0.0.1:${stack.httpPort}/apps`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'Env live', deviceTypes: ['env-sensor'] }),
    });
    envKey = ((await res.json()) as { apiKey: string }).apiKey;
  }, 60_000);

  afterAll(async () => {
    for (const c of clients) c.end(true);
    await stack?.stop();
    rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  it('refuses an application key for another type’s device and for a missing device alike', async () => {
    await device('live-brk', 'breaker');
    const other = await open('?device=live-brk', envKey);
    expect(other.status).toBe(403);
    const otherBody = (await other.json()) as { error: { code: string; message: string } };
    expect(otherBody.error.code).toBe('FORBIDDEN');
    const missing = await open('?device=no-such-device', envKey);
    expect(missing.status).toBe(403);
    expect(((await missing.json()) as { error: { message: string } }).error.message).toBe(
      otherBody.error.message.replace('live-brk', 'no-such-device'),
    );
    const anonymous = await fetch(`http://127.0.0.1:${stack.httpPort}/live?device=live-brk`);
    expect(anonymous.status).toBe(401);
    const badKinds = await open('?kinds=reading,bogus', ADMIN);
    expect(badKinds.status).toBe(400);
    expect(((await badKinds.json()) as { error: { field: string } }).error.field).toBe('kinds');
  });

  it('pushes stored readings; an application fleet stream never carries another type’s events', async () => {
    const env = await device('live-env', 'env-sensor');
    const brk = clients[0]!;
    const adminDevice = (await open('?device=live-brk', ADMIN)).stream!;
    const appDevice = (await open('?device=live-env', envKey)).stream!;
    const appFleet = (await open('', envKey)).stream!;
    for (const s of [adminDevice, appDevice, appFleet]) await s.next((e) => e.event === 'ready');
    await birth(brk, 'live-brk', 231.5);
    await birth(env, 'live-env', 21.25);
    await adminDevice.next((e) => e.event === 'reading' && e.data.value === 231.5);
    await appDevice.next((e) => e.event === 'reading' && e.data.value === 21.25);
    await appFleet.next((e) => e.event === 'reading' && e.data.deviceId === 'live-env');
    expect(await stack.drain()).toBe(true);
    // Lifecycle events (the births) reach the subscriptions too, scoped the same way.
    await appDevice.next((e) => e.event === 'lifecycle' && e.data.deviceId === 'live-env');
    expect(appFleet.events.filter((e) => e.data.deviceId === 'live-brk')).toEqual([]);
    expect(appFleet.events.every((e) => e.event === 'ready' || e.data.deviceType === 'env-sensor')).toBe(
      true,
    );
    expect(adminDevice.events.every((e) => e.event === 'ready' || e.data.deviceId === 'live-brk')).toBe(true);
    for (const s of [adminDevice, appDevice, appFleet]) s.close();
  });
});
