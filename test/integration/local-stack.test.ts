/**
 * The real path, in-process: MQTT publish → broker ACL → topic rules → kinesalite → event-source runner
 * → the ingest handlers → DuckDB / dynalite, read back through the REST API.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ContentFormat,
  decodeMessage,
  encodeMessage,
  Operation,
} from '../../functions/core/lwm2m/message.js';
import { compressRecords, encodeSenml } from '../../functions/core/senml/index.js';
import { encodePayload } from '../../functions/core/sparkplug/codec.js';
import { DataType } from '../../functions/core/sparkplug/types.js';
import { type LocalStack, startLocalStack } from '../../infra/local/stack.js';

let stack: LocalStack;
let dir: string;
const clients: MqttClient[] = [];
const ADMIN_KEY = 'dp_admin_integration-test-key-7f3a9c21e4b8d05f';

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'dualpath-it-'));
  stack = await startLocalStack({
    dataDir: dir,
    mqttPort: 0,
    httpPort: 0,
    adminKey: ADMIN_KEY,
  });
}, 60_000);

afterAll(async () => {
  for (const c of clients) c.end(true);
  await stack?.stop();
  rmSync(dir, { recursive: true, force: true });
}, 60_000);

async function connect(clientId: string): Promise<MqttClient> {
  const c = await mqtt.connectAsync(`mqtt://127.0.0.1:${stack.mqttPort}`, {
    clientId,
    reconnectPeriod: 0,
    protocolVersion: 4,
  });
  clients.push(c);
  return c;
}

async function api(path: string, init: { method?: string; body?: unknown; key?: string } = {}) {
  const res = await fetch(`http://127.0.0.1:${stack.httpPort}${path}`, {
    method: init.method ?? 'GET',
    headers: { authorization: `Bearer ${init.key ?? ADMIN_KEY}`, 'content-type': 'application/json' },
    ...(init.body === undefined ? {} : { body: JSON.stringify(init.body) }),
  });
  return { status: res.status, body: (await res.json().catch(() => null)) as Record<string, unknown> };
}

const T = Date.now();

describe('local stack: both protocols on one MQTT session', () => {
  it('stores Sparkplug births and alias-only data, LwM2M registrations and bulk Sends, and quarantines garbage', async () => {
    const dev = await connect('breaker-1');
    const lwm2mIn: Buffer[] = [];
    await dev.subscribeAsync('lwm2m/rd/breaker-1', { qos: 1 });
    dev.on('message', (topic, payload) => {
      if (topic === 'lwm2m/rd/breaker-1') lwm2mIn.push(payload);
    });
    await dev.publishAsync(
      'spBv1.0/grid/NBIRTH/breaker-1',
      Buffer.from(
        encodePayload({
          timestamp: T,
          seq: 0,
          metrics: [
            { name: 'bdSeq', datatype: DataType.Int64, value: 0 },
            { name: 'Voltage/L1', alias: 1, datatype: DataType.Float, value: 230.5, timestamp: T },
          ],
        }),
      ),
      { qos: 1 },
    );
    await dev.publishAsync(
      'spBv1.0/grid/NDATA/breaker-1',
      Buffer.from(
        encodePayload({
          timestamp: T + 1000,
          seq: 1,
          metrics: [
            { alias: 1, datatype: DataType.Float, value: 231.25, omitDatatype: true, timestamp: T + 1000 },
          ],
        }),
      ),
      { qos: 1 },
    );
    await dev.publishAsync(
      'lwm2m/rd/breaker-1',
      Buffer.from(
        encodeMessage({
          operation: Operation.Register,
          token: 1,
          ep: 'breaker-1',
          lifetime: 300,
          version: '1.2',
          binding: 'M',
          payload: new TextEncoder().encode('</3/0>,</3316/0>'),
        }),
      ),
      { qos: 1 },
    );
    await stack.drain();
    await dev.publishAsync(
      'lwm2m/rd/breaker-1',
      Buffer.from(
        encodeMessage({
          operation: Operation.Send,
          token: 2,
          contentFormat: ContentFormat.SenmlCbor,
          payload: encodeSenml(
            compressRecords([
              { name: '/3316/0/5700', time: T - 2000, value: { kind: 'v', value: 229 } },
              { name: '/3316/0/5700', time: T - 1000, value: { kind: 'v', value: 230 } },
            ]),
            112,
          ),
        }),
      ),
      { qos: 1 },
    );
    await dev.publishAsync('spBv1.0/grid/NDATA/breaker-1', Buffer.from([0xff, 0x00, 0x13]), { qos: 1 });
    expect(await stack.drain()).toBe(true);

    const voltage = await api(
      `/devices/breaker-1/telemetry?metric=Voltage%2FL1&from=${T - 1}&to=${T + 5000}`,
    );
    expect(voltage.status).toBe(200);
    expect((voltage.body.points as Array<{ value: number }>).map((p) => p.value)).toEqual([230.5, 231.25]);

    const bulk = await api(`/devices/breaker-1/telemetry?metric=%2F3316%2F0%2F5700&from=${T - 5000}&to=${T}`);
    expect(bulk.body.points).toEqual([
      expect.objectContaining({ value: 229, time: T - 2000, historical: true, unit: 'V' }),
      expect.objectContaining({ value: 230, time: T - 1000 }),
    ]);

    const device = await api('/devices/breaker-1');
    expect(device.body).toMatchObject({
      id: 'breaker-1',
      sparkplug: { online: true, group: 'grid' },
      lwm2m: { online: true, lifetime: 300 },
    });

    const quarantined = await api('/events?type=quarantined');
    expect((quarantined.body.events as Array<{ deviceId: string }>).map((e) => e.deviceId)).toContain(
      'breaker-1',
    );

    // The server's answers reached the device on its topic: 201 for Register, 204 for Send.
    const results = lwm2mIn
      .map((b) => decodeMessage(new Uint8Array(b)))
      .filter((m) => m.result !== undefined)
      .map((m) => m.result);
    expect(results).toEqual(expect.arrayContaining([201, 204]));
  });

  it('refuses a device publishing on another device’s topics', async () => {
    const before = stack.status().refused;
    const intruder = await connect('intruder-1');
    await intruder.publishAsync('spBv1.0/grid/NDATA/breaker-1', Buffer.from([0]), { qos: 0 }).catch(() => {});
    await new Promise((r) => setTimeout(r, 200));
    expect(stack.status().refused).toBeGreaterThan(before);
  });

  it('round-trips an LwM2M Read command from the API to the device and back', async () => {
    const dev = await connect('sensor-7');
    await dev.subscribeAsync('lwm2m/rd/sensor-7', { qos: 1 });
    dev.on('message', (_t, payload) => {
      const m = decodeMessage(new Uint8Array(payload));
      if (m.operation === Operation.Read) {
        void dev.publishAsync(
          'lwm2m/rd/sensor-7',
          Buffer.from(
            encodeMessage({
              result: 205,
              token: m.token!,
              contentFormat: ContentFormat.Text,
              payload: new TextEncoder().encode('ACME'),
            }),
          ),
          { qos: 1 },
        );
      }
    });
    await dev.publishAsync(
      'lwm2m/rd/sensor-7',
      Buffer.from(
        encodeMessage({
          operation: Operation.Register,
          token: 1,
          ep: 'sensor-7',
          lifetime: 300,
          version: '1.2',
          payload: new TextEncoder().encode('</3/0>'),
        }),
      ),
      { qos: 1 },
    );
    await stack.drain();
    const created = await api('/devices/sensor-7/commands', {
      method: 'POST',
      body: { protocol: 'lwm2m', operation: 'read', path: '/3/0/0' },
    });
    expect(created.status).toBe(202);
    let cmd: Record<string, unknown> = {};
    for (let i = 0; i < 50 && cmd.status !== 'succeeded'; i++) {
      await new Promise((r) => setTimeout(r, 100));
      cmd = (await api(`/devices/sensor-7/commands/${created.body.commandId}`)).body;
    }
    expect(cmd).toMatchObject({
      status: 'succeeded',
      response: { result: 205, readings: [expect.objectContaining({ metric: '/3/0/0', value: 'ACME' })] },
    });
  });

  it('keeps an application key to its device types', async () => {
    const created = await api('/apps', {
      method: 'POST',
      body: { name: 'Env app', deviceTypes: ['env-sensor'] },
    });
    expect(created.status).toBe(201);
    const key = created.body.apiKey as string;
    expect((await api('/devices/breaker-1', { key })).status).toBe(403);
    expect((await api('/devices/breaker-1/telemetry?metric=x', { key })).status).toBe(403);
    expect((await api('/devices?type=breaker', { key })).status).toBe(403);
    expect((await api('/devices', { key: 'wrong' })).status).toBe(401);
    expect((await api('/health', { key: '' })).status).toBe(200);
  });
});
