/**
 * The local broker's IoT-Core-like trust (issue #16 part 3, ADR 0019): mutual TLS with the local CA
 * (CN = client id), MQTT over WebSocket, retained and oversized publishes refused, the per-connection
 * publish limit, and the plain 127.0.0.1 listener as the zero-setup default.
 */
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GetRecordsCommand, GetShardIteratorCommand, ListShardsCommand } from '@aws-sdk/client-kinesis';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { certCommand } from '../../../infra/cli/cert.js';
import { createBroker, type LocalBroker } from '../../../infra/local/broker.js';
import {
  caPaths,
  createCa,
  deviceTlsOptions,
  ensureLocalCa,
  issueCert,
  issueDeviceCert,
} from '../../../infra/local/ca.js';
import { type LocalEmulators, startEmulators } from '../../../infra/local/emulators.js';
import { pipeline, type StreamKey } from '../../../infra/pipeline.js';
import { type FleetOptions, plannedDevices, startFleet } from '../../../simulator/fleet.js';

const T0 = 1_750_000_000_000;
let dataDir: string;
let emu: LocalEmulators;
let broker: LocalBroker;
let caPem: string;
const refusals: string[] = [];
const clients: MqttClient[] = [];

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'dualpath-trust-'));
  emu = await startEmulators({ env: {} });
  const { ca, server } = await ensureLocalCa(dataDir);
  caPem = ca.cert;
  broker = await createBroker({
    port: 0,
    tls: { port: 0, ca: ca.cert, cert: server.cert, key: server.key },
    ws: { port: 0 },
    rules: pipeline.rules,
    kinesis: emu.kinesis,
    streamNames: emu.streamNames,
    clock: () => T0,
    onRefused: (id, what) => refusals.push(`${id}: ${what}`),
  });
});
afterEach(() => {
  for (const c of clients.splice(0)) c.end(true);
});
afterAll(async () => {
  await broker?.close();
  await emu?.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

/** Connects; resolves 'connected' or the reason the connection failed (error or close first). */
function attempt(url: string, opts: IClientOptions): Promise<{ client: MqttClient; outcome: string }> {
  const client = mqtt.connect(url, { reconnectPeriod: 0, connectTimeout: 5000, ...opts });
  clients.push(client);
  return new Promise((resolve) => {
    client.once('connect', () => resolve({ client, outcome: 'connected' }));
    client.once('error', (e) => resolve({ client, outcome: `error: ${e.message}` }));
    client.once('close', () => resolve({ client, outcome: 'closed' }));
  });
}

async function connected(url: string, opts: IClientOptions): Promise<MqttClient> {
  const { client, outcome } = await attempt(url, opts);
  expect(outcome).toBe('connected');
  return client;
}

async function deviceTls(id: string) {
  const files = await issueDeviceCert(dataDir, id);
  return {
    cert: readFileSync(files.cert, 'utf8'),
    key: readFileSync(files.key, 'utf8'),
    ca: readFileSync(files.ca, 'utf8'),
  };
}

async function readStream(stream: StreamKey) {
  const name = emu.streamNames[stream];
  const shard = (await emu.kinesis.send(new ListShardsCommand({ StreamName: name }))).Shards![0]!.ShardId!;
  let it = (
    await emu.kinesis.send(
      new GetShardIteratorCommand({ StreamName: name, ShardId: shard, ShardIteratorType: 'TRIM_HORIZON' }),
    )
  ).ShardIterator;
  const out: Array<Record<string, unknown>> = [];
  for (let i = 0; i < 50 && it; i++) {
    const res = await emu.kinesis.send(new GetRecordsCommand({ ShardIterator: it }));
    for (const r of res.Records ?? []) out.push(JSON.parse(Buffer.from(r.Data!).toString()));
    if ((res.Records ?? []).length === 0) break;
    it = res.NextShardIterator;
  }
  return out;
}

const closedOnce = (c: MqttClient) => new Promise<void>((resolve) => c.once('close', () => resolve()));

describe('local CA', () => {
  it('keeps one CA per data directory, issues device certificates with CN = thing name, keys 0600', async () => {
    // Act
    const first = await ensureLocalCa(dataDir);
    const files = await issueDeviceCert(dataDir, 'edge-ca-1');
    const again = await ensureLocalCa(dataDir);

    // Assess
    expect(again.ca.cert).toBe(first.ca.cert);
    expect(again.created).toBe(false);
    expect(files.ca).toBe(caPaths(dataDir).caCert);
    const { X509Certificate } = await import('node:crypto');
    const cert = new X509Certificate(readFileSync(files.cert));
    expect(cert.subject).toBe('CN=edge-ca-1');
    expect(cert.checkIssued(new X509Certificate(first.ca.cert))).toBe(true);
    expect(statSync(files.key).mode & 0o777).toBe(0o600);
    expect(statSync(caPaths(dataDir).caKey).mode & 0o777).toBe(0o600);
  });

  it('refuses a device id that is not a valid thing name, naming the field', async () => {
    await expect(issueDeviceCert(dataDir, 'bad/id')).rejects.toMatchObject({
      code: 'INVALID_DEVICE_ID',
      field: 'deviceId',
    });
  });
});

describe('local broker: mutual TLS (CN = client id)', () => {
  it('accepts a client whose certificate CN equals its client id; its publish reaches the stream', async () => {
    // Prepare
    const c = await connected(broker.tlsUrl!, { clientId: 'edge-tls-1', ...(await deviceTls('edge-tls-1')) });

    // Act: QoS 1 is acknowledged once the record is in Kinesis.
    await c.publishAsync('lwm2m/rd/edge-tls-1', Buffer.from([0xa1, 0x00, 0x07]), { qos: 1 });

    // Assess
    expect(broker.tlsUrl).toMatch(/^mqtts:\/\/127\.0\.0\.1:\d+$/);
    const lw = (await readStream('lwm2m')).filter((r) => r.clientId === 'edge-tls-1');
    expect(lw).toHaveLength(1);
  });

  it('refuses a client whose certificate CN differs from its client id (CONNACK 5), counted and reported', async () => {
    // Prepare: edge-tls-2's certificate, presented as edge-tls-3.
    const tls = await deviceTls('edge-tls-2');
    const before = broker.counters.refusedConnects;

    // Act
    const { outcome } = await attempt(broker.tlsUrl!, { clientId: 'edge-tls-3', ...tls });

    // Assess
    expect(outcome).toMatch(/^error: .*Not authorized/i);
    expect(broker.counters.refusedConnects).toBe(before + 1);
    expect(refusals).toContain(
      "edge-tls-3: connect over TLS: the client id differs from the certificate's CN (edge-tls-2)",
    );
  });

  it('refuses a certificate from another CA, and a client without a certificate, at the handshake', async () => {
    // Prepare: a certificate with the right CN, signed by a CA the broker does not trust.
    const otherCa = await createCa('Someone else');
    const foreign = await issueCert(otherCa, { commonName: 'edge-tls-4', usage: 'client' });
    const before = broker.counters.refusedConnects;

    // Act
    const a = await attempt(broker.tlsUrl!, { clientId: 'edge-tls-4', ...foreign, ca: caPem });
    const b = await attempt(broker.tlsUrl!, { clientId: 'edge-tls-5', ca: caPem });

    // Assess
    expect(a.outcome).not.toBe('connected');
    expect(b.outcome).not.toBe('connected');
    expect(broker.counters.refusedConnects).toBe(before + 2);
    expect(
      refusals.filter((r) => r.startsWith('unknown: TLS handshake refused')).length,
    ).toBeGreaterThanOrEqual(2);
  });

  it('authorizes topics as the IoT policy does: the certified device may not publish as another', async () => {
    // Prepare
    const c = await connected(broker.tlsUrl!, { clientId: 'edge-tls-6', ...(await deviceTls('edge-tls-6')) });
    const closed = closedOnce(c);

    // Act
    c.publish('spBv1.0/plant/NDATA/edge-tls-7', Buffer.from('x'), { qos: 1 });
    await closed;

    // Assess
    expect(refusals).toContain('edge-tls-6: publish to spBv1.0/plant/NDATA/edge-tls-7');
  });
});

describe('local broker: the IoT policy refusals', () => {
  it('refuses a retained publish (no iot:RetainPublish): connection closed, counted, nothing forwarded', async () => {
    // Prepare
    const c = await connected(broker.tlsUrl!, { clientId: 'edge-ret', ...(await deviceTls('edge-ret')) });
    const before = { ...broker.counters };
    const closed = closedOnce(c);

    // Act
    c.publish('spBv1.0/plant/NBIRTH/edge-ret', Buffer.from([1, 2, 3]), { qos: 1, retain: true });
    await closed;

    // Assess
    expect(broker.counters.refusedRetained).toBe(before.refusedRetained + 1);
    expect(broker.counters.refusedPublishes).toBe(before.refusedPublishes + 1);
    expect(refusals).toContain(
      'edge-ret: publish to spBv1.0/plant/NBIRTH/edge-ret: retained publishes are not allowed',
    );
    await broker.flush();
    expect((await readStream('sparkplug')).some((r) => r.clientId === 'edge-ret')).toBe(false);
  });

  it('refuses a retained publish on the plain listener too', async () => {
    const c = await connected(broker.url, { clientId: 'edge-ret-plain' });
    const before = broker.counters.refusedRetained;
    const closed = closedOnce(c);
    c.publish('lwm2m/rd/edge-ret-plain', Buffer.from([0xa1]), { qos: 0, retain: true });
    await closed;
    expect(broker.counters.refusedRetained).toBe(before + 1);
  });

  it('refuses a 200 KB publish over TLS (IoT Core: 128 KB), counted and reported', async () => {
    // Prepare
    const c = await connected(broker.tlsUrl!, {
      clientId: 'edge-big-tls',
      ...(await deviceTls('edge-big-tls')),
    });
    const before = broker.counters.refusedTooLarge;
    const closed = closedOnce(c);

    // Act
    c.publish('spBv1.0/plant/NDATA/edge-big-tls', Buffer.alloc(200 * 1024, 7), { qos: 1 });
    await closed;

    // Assess
    expect(broker.counters.refusedTooLarge).toBe(before + 1);
    expect(refusals).toContain(
      'edge-big-tls: publish to spBv1.0/plant/NDATA/edge-big-tls: payload of 204800 bytes is above the 131072-byte limit',
    );
  });
});

describe('local broker: per-connection publish limit (token bucket)', () => {
  it('accepts the burst, refuses the publish beyond it (connection closed), and refills with time', async () => {
    // Prepare: 1 publish/s, burst 3, on a clock the test moves.
    let now = T0;
    const limited = await createBroker({
      port: 0,
      rules: pipeline.rules,
      kinesis: emu.kinesis,
      streamNames: emu.streamNames,
      clock: () => now,
      publishLimit: { perSecond: 1, burst: 3 },
      onRefused: (id, what) => refusals.push(`${id}: ${what}`),
    });
    try {
      const c = await connected(limited.url, { clientId: 'edge-rate' });

      // Act: three publishes in the same instant are the burst; the fourth has no token.
      for (let i = 0; i < 3; i++)
        await c.publishAsync('lwm2m/rd/edge-rate', Buffer.from([0xa1, i]), { qos: 1 });
      const closed = closedOnce(c);
      c.publish('lwm2m/rd/edge-rate', Buffer.from([0xa1, 3]), { qos: 1 });
      await closed;

      // Assess
      expect(limited.counters.refusedRateLimited).toBe(1);
      expect(limited.counters.devicePublishes).toBe(3);
      expect(refusals).toContain(
        'edge-rate: publish to lwm2m/rd/edge-rate: above the per-connection limit of 1 publishes/s (burst 3)',
      );

      // A new connection starts with a full bucket; one second later one more token is there.
      const d = await connected(limited.url, { clientId: 'edge-rate' });
      for (let i = 0; i < 3; i++)
        await d.publishAsync('lwm2m/rd/edge-rate', Buffer.from([0xa1, i]), { qos: 1 });
      now += 1000;
      await d.publishAsync('lwm2m/rd/edge-rate', Buffer.from([0xa1, 9]), { qos: 1 });
      expect(limited.counters.devicePublishes).toBe(7);
      expect(limited.counters.refusedRateLimited).toBe(1);
    } finally {
      for (const c of clients.splice(0)) c.end(true);
      await limited.close();
    }
  });

  it('defaults to 100/s with a burst of 200, and can be turned off', async () => {
    const frozen = {
      port: 0,
      rules: pipeline.rules,
      kinesis: emu.kinesis,
      streamNames: emu.streamNames,
      clock: () => T0,
    };
    const def = await createBroker(frozen);
    const off = await createBroker({ ...frozen, publishLimit: false });
    try {
      const a = await connected(def.url, { clientId: 'edge-def' });
      const b = await connected(off.url, { clientId: 'edge-off' });
      // QoS 0, pipelined: 201 publishes in one instant (the clock does not move).
      const closed = closedOnce(a);
      for (let i = 0; i < 201; i++) a.publish('lwm2m/rd/edge-def', Buffer.from([0xa1]), { qos: 0 });
      await closed;
      for (let i = 0; i < 250; i++) b.publish('lwm2m/rd/edge-off', Buffer.from([0xa1]), { qos: 0 });
      await b.publishAsync('lwm2m/rd/edge-off', Buffer.from([0xa1]), { qos: 1 });

      expect(def.counters.devicePublishes).toBe(200);
      expect(def.counters.refusedRateLimited).toBe(1);
      expect(off.counters.devicePublishes).toBe(251);
      expect(off.counters.refusedRateLimited).toBe(0);
    } finally {
      for (const c of clients.splice(0)) c.end(true);
      await def.close();
      await off.close();
    }
  });
});

describe('local broker: MQTT over WebSocket, and the plain default', () => {
  it('a publish over ws:// reaches the pipeline, under the same device ACL', async () => {
    // Prepare
    const c = await connected(broker.wsUrl!, { clientId: 'edge-ws' });

    // Act
    await c.publishAsync('spBv1.0/plant/NBIRTH/edge-ws', Buffer.from([0x08, 0x01]), { qos: 1 });
    const closed = closedOnce(c);
    c.publish('spBv1.0/plant/NDATA/edge-other', Buffer.from('x'), { qos: 1 });
    await closed;

    // Assess
    expect(broker.wsUrl).toMatch(/^ws:\/\/127\.0\.0\.1:\d+\/mqtt$/);
    const sp = (await readStream('sparkplug')).filter((r) => r.clientId === 'edge-ws');
    expect(sp.map((r) => r.topic)).toEqual(['spBv1.0/plant/NBIRTH/edge-ws']);
    expect(refusals).toContain('edge-ws: publish to spBv1.0/plant/NDATA/edge-other');
  });

  it('without options: only plain MQTT on 127.0.0.1, no certificate needed, no TLS or WebSocket listener', async () => {
    const plain = await createBroker({
      port: 0,
      rules: pipeline.rules,
      kinesis: emu.kinesis,
      streamNames: emu.streamNames,
    });
    try {
      expect(plain.url).toMatch(/^mqtt:\/\/127\.0\.0\.1:\d+$/);
      expect(plain.tlsUrl).toBeUndefined();
      expect(plain.wsUrl).toBeUndefined();
      const c = await connected(plain.url, { clientId: 'edge-plain' });
      await c.publishAsync('lwm2m/rd/edge-plain', Buffer.from([0xa1, 0x00]), { qos: 1 });
      expect(plain.counters.devicePublishes).toBe(1);
    } finally {
      for (const c of clients.splice(0)) c.end(true);
      await plain.close();
    }
  });
});

describe('device certificates in practice', () => {
  it('`dualpath cert issue <id> --json` writes the files; an invalid id exits 2 naming the code', async () => {
    const stdout = vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
    const stderr = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    try {
      expect(await certCommand.run(['issue', 'edge-cli', '--data-dir', dataDir, '--json'])).toBe(0);
      const printed = JSON.parse(String(stdout.mock.calls.at(-1)![0]));
      expect(printed).toEqual({
        deviceId: 'edge-cli',
        cert: join(dataDir, 'tls', 'devices', 'edge-cli.crt'),
        key: join(dataDir, 'tls', 'devices', 'edge-cli.key'),
        ca: caPaths(dataDir).caCert,
      });
      expect(await certCommand.run(['issue', '../x', '--data-dir', dataDir])).toBe(2);
      expect(String(stderr.mock.calls.at(-1)![0])).toContain('INVALID_DEVICE_ID');
    } finally {
      stdout.mockRestore();
      stderr.mockRestore();
    }
  });

  it('a simulated fleet reaches the TLS listener with a certificate per device (mqttFor)', async () => {
    // Prepare
    const o: FleetOptions = { url: broker.tlsUrl!, devices: 2, prefix: 'tlsfleet-', rate: 1, seed: 3 };
    const planned = plannedDevices(o);
    o.mqttFor = await deviceTlsOptions(
      dataDir,
      planned.map((d) => d.id),
    );
    const before = broker.counters.refusedConnects;

    // Act
    const fleet = await startFleet(o);
    try {
      // (No LwM2M server behind the bare broker, so wait for the MQTT sessions, not registration.)
      for (let i = 0; i < 200 && fleet.stats().connected < 2; i++)
        await new Promise((r) => setTimeout(r, 50));

      // Assess
      expect(fleet.devices).toEqual(planned);
      expect(fleet.stats().connected).toBe(2);
      expect(broker.counters.refusedConnects).toBe(before);
    } finally {
      await fleet.stop();
    }
  });
});
