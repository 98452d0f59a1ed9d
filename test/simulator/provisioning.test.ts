/**
 * Onboarding end to end, offline: the device-side provisioning client against a local fake of the
 * AWS IoT fleet-provisioning MQTT API that enforces the stack's real claim policy, applies its real
 * template body and calls the real pre-provisioning hook through its composition root.
 */
import { X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, stat, writeFile } from 'node:fs/promises';
import { type AddressInfo, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Aedes } from 'aedes';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { InMemoryRegistry } from '../../functions/core/registry-memory.js';
import { composeProvisioningHook } from '../../functions/provisioning-hook/compose.js';
import { provisionCommand } from '../../infra/cli/provision.js';
import { type FleetOptions, startFleet } from '../../simulator/fleet.js';
import { onboardFromEnv, taskDeviceIds, taskTag } from '../../simulator/onboard-fleet.js';
import {
  connectClaim,
  ProvisioningRejected,
  provisionDevice,
  provisionFleet,
  readConnection,
} from '../../simulator/provisioning.js';
import {
  type FakeFleetProvisioning,
  startFakeFleetProvisioning,
} from '../helpers/fake-fleet-provisioning.js';

let registry: InMemoryRegistry;
let fake: FakeFleetProvisioning;
const logs: Array<Record<string, unknown>> = [];

beforeEach(async () => {
  registry = new InMemoryRegistry();
  logs.length = 0;
  const hook = composeProvisioningHook(
    { registry, clock: () => 1_000, log: (l) => logs.push(l) },
    { selfRegisterTypes: new Set(['env-sensor']) },
  );
  fake = await startFakeFleetProvisioning({ hook });
});
afterEach(async () => {
  await fake.close();
});

async function registered(id: string, type: string) {
  await registry.putDeviceType({ id: type, name: type, capabilities: [], units: {} }, 'create');
  await registry.putDevice(
    { id, type, tags: {}, status: 'active', protocols: [], createdAt: 1, updatedAt: 1 },
    'create',
  );
}

describe('fleet provisioning by claim (fake IoT API, real hook, template and claim policy)', () => {
  it('a registered device gets its own certificate, thing and the device policy', async () => {
    await registered('pump-7', 'breaker');
    const client = await connectClaim({ url: fake.url });
    try {
      const creds = await provisionDevice(client, {
        templateName: fake.templateName,
        deviceId: 'pump-7',
        deviceType: 'breaker',
      });
      expect(creds.thingName).toBe('pump-7');
      const cert = new X509Certificate(creds.certificatePem);
      expect(cert.verify(fake.caPublicKey)).toBe(true);
      // The certificate is for the key made on the device.
      expect(cert.checkPrivateKey((await import('node:crypto')).createPrivateKey(creds.privateKeyPem))).toBe(
        true,
      );
      expect(fake.things.get('pump-7')).toMatchObject({
        thingTypeName: 'test-thing-type',
        attributes: { deviceType: 'breaker' },
        principals: [creds.certificateId],
      });
      expect(fake.certificates.get(creds.certificateId)).toMatchObject({
        status: 'ACTIVE',
        policies: [fake.devicePolicyName],
      });
      expect(fake.hookCalls[0]?.parameters).toEqual({ DeviceId: 'pump-7', DeviceType: 'breaker' });
      expect(fake.denied).toEqual([]);
    } finally {
      await client.endAsync();
    }
  });

  it('refuses an unknown device of a type that does not self-register, and a wrong type', async () => {
    await registered('pump-8', 'breaker');
    const client = await connectClaim({ url: fake.url });
    try {
      await expect(
        provisionDevice(client, {
          templateName: fake.templateName,
          deviceId: 'ghost',
          deviceType: 'breaker',
        }),
      ).rejects.toMatchObject({ statusCode: 403, errorCode: 'AccessDenied' });
      await expect(
        provisionDevice(client, {
          templateName: fake.templateName,
          deviceId: 'pump-8',
          deviceType: 'env-sensor',
        }),
      ).rejects.toBeInstanceOf(ProvisioningRejected);
      expect(fake.things.size).toBe(0);
      expect(logs.map((l) => l.reason)).toEqual(['UNKNOWN_DEVICE', 'TYPE_MISMATCH']);
      expect(await registry.getDevice('ghost')).toBeUndefined();
    } finally {
      await client.endAsync();
    }
  });

  it('the claim policy lets a claim session do nothing but provision', async () => {
    // A client id outside provision-* is refused at CONNECT.
    await expect(connectClaim({ url: fake.url }, 'pump-7')).rejects.toThrow();
    const client = await connectClaim({ url: fake.url });
    try {
      // Publishing telemetry, or to another template, is refused (aedes closes the session).
      client.publish('spBv1.0/g/NDATA/pump-7', 'x');
      await new Promise<void>((r) => client.once('close', () => r()));
      expect(fake.denied).toContain('connect pump-7');
      expect(fake.denied).toContain('publish spBv1.0/g/NDATA/pump-7');
    } finally {
      await client.endAsync(true);
    }
  });

  it('a fleet provisions resumably, self-registers its type, paces and retries throttling', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'dualpath-prov-'));
    const devices = Array.from({ length: 6 }, (_, i) => ({ id: `sim-t1-${i}`, type: 'env-sensor' }));
    const slept: number[] = [];
    fake.throttleNext(2);
    const first = await provisionFleet({
      devices: devices.slice(0, 4),
      templateName: fake.templateName,
      claim: { url: fake.url },
      dir,
      deviceUrl: 'mqtts://example-ats.iot.us-east-1.amazonaws.com:8883',
      ratePerSecond: 1000,
      connections: 2,
      clientIdPrefix: 't1',
      sleep: async (ms) => {
        slept.push(ms);
      },
    });
    expect(first).toEqual({ provisioned: 4, skipped: 0, failed: [] });
    // Two throttled answers: two backoffs of 1 s (the first retry of each).
    expect(slept.filter((ms) => ms === 1000).length).toBe(2);
    const second = await provisionFleet({
      devices,
      templateName: fake.templateName,
      claim: { url: fake.url },
      dir,
      deviceUrl: 'mqtts://example-ats.iot.us-east-1.amazonaws.com:8883',
      ratePerSecond: 1000,
    });
    expect(second).toEqual({ provisioned: 2, skipped: 4, failed: [] });
    expect(fake.things.size).toBe(6);
    // Registered by the hook: the pipeline will not quarantine their readings.
    expect((await registry.getDevice('sim-t1-5'))?.type).toBe('env-sensor');
    expect((await registry.getDeviceType('env-sensor'))?.id).toBe('env-sensor');
    const { conn, cert, key } = await readConnection(join(dir, 'sim-t1-0.connection.json'));
    expect(conn).toMatchObject({ deviceId: 'sim-t1-0', clientId: 'sim-t1-0', thingName: 'sim-t1-0' });
    expect(new X509Certificate(cert).verify(fake.caPublicKey)).toBe(true);
    expect(key).toContain('PRIVATE KEY');
    expect((await stat(join(dir, 'sim-t1-0.key.pem'))).mode & 0o777).toBe(0o600);
    expect(await readFile(join(dir, 'sim-t1-0.cert.pem'), 'utf8')).toBe(cert);
  });

  it('dualpath provision writes credentials for a registered device and refuses an unknown one', async () => {
    await registered('pump-9', 'breaker');
    const dir = await mkdtemp(join(tmpdir(), 'dualpath-cli-'));
    // The claim as files (the fake broker is plain MQTT: TLS material is not used on mqtt://).
    await writeFile(join(dir, 'claim.cert.pem'), 'CLAIM CERT');
    await writeFile(join(dir, 'claim.key.pem'), 'CLAIM KEY');
    const args = ['--type', 'breaker', '--url', fake.url, '--template', fake.templateName];
    const claim = ['--claim-cert', join(dir, 'claim.cert.pem'), '--claim-key', join(dir, 'claim.key.pem')];
    const out = join(dir, 'out');
    expect(await provisionCommand.run(['pump-9', ...args, ...claim, '--out', out])).toBe(0);
    const { conn } = await readConnection(join(out, 'pump-9.connection.json'));
    expect(conn).toMatchObject({
      deviceId: 'pump-9',
      clientId: 'pump-9',
      deviceType: 'breaker',
      url: fake.url,
    });
    expect(await provisionCommand.run(['ghost-1', ...args, ...claim, '--out', out])).toBe(1);
    await expect(stat(join(out, 'ghost-1.connection.json'))).rejects.toThrow();
    await expect(provisionCommand.run(['pump-9', ...args, '--out', out])).rejects.toThrow(/claim/);
    await expect(provisionCommand.run(['a/b', ...args, ...claim])).rejects.toThrow(/device-id/);
  });

  it('the fleet connects each device with its own identity: explicit ids and per-device TLS options', async () => {
    const seen: Array<{ id: string; cert: unknown }> = [];
    const broker = await Aedes.createBroker();
    broker.on('client', (c) => seen.push({ id: c.id, cert: undefined }));
    const sockets = new Set<import('node:net').Socket>();
    const server = createServer((socket) => {
      sockets.add(socket);
      broker.handle(socket);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const url = `mqtt://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const asked: string[] = [];
    const fleet = await startFleet({
      url,
      devices: 2,
      types: ['env-sensor'],
      ids: ['sim-abc123-0000', 'sim-abc123-0001'],
      mqttFor: (id) => {
        asked.push(id);
        return { username: id };
      },
      connectsPerSecond: 1000,
      lwm2mRate: 0,
    });
    try {
      expect(fleet.devices.map((d) => d.id)).toEqual(['sim-abc123-0000', 'sim-abc123-0001']);
      expect(asked).toEqual(['sim-abc123-0000', 'sim-abc123-0001']);
      // Connects are asynchronous: wait for both (bounded), then check who connected.
      for (let i = 0; i < 1000 && seen.length < 2; i++) await new Promise((r) => setTimeout(r, 20));
      expect(seen.map((c) => c.id).sort()).toEqual(['sim-abc123-0000', 'sim-abc123-0001']);
    } finally {
      await fleet.stop();
      await new Promise<void>((r) => broker.close(() => r()));
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    }
  });

  it('a Fargate task onboards its share at start-up: task id in names, resumable, failures left out', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'dualpath-task-'));
    await writeFile(join(dir, 'claim.pem'), 'CLAIM CERT');
    await writeFile(join(dir, 'claim.key'), 'CLAIM KEY');
    // One device of the fleet is registered with another type: the hook refuses it.
    await registered('stack-sim-t7-0001', 'breaker');
    const env = {
      PROVISIONING_TEMPLATE: fake.templateName,
      CLAIM_CERT_FILE: join(dir, 'claim.pem'),
      CLAIM_KEY_FILE: join(dir, 'claim.key'),
      SIM_TASK_ID: 't7',
      SIM_CREDENTIALS_DIR: join(dir, 'creds'),
      SIM_PROVISION_RATE: '1000',
    };
    const opts: FleetOptions = { url: fake.url, devices: 3, prefix: 'stack-sim-', types: ['env-sensor'] };
    const lines: string[] = [];
    const r = await onboardFromEnv(env, opts, { log: (l) => lines.push(l) });
    expect(r).toEqual({ provisioned: 2, skipped: 0, failed: 1 });
    expect(opts.ids).toEqual(['stack-sim-t7-0000', 'stack-sim-t7-0002']);
    expect(opts.devices).toBe(2);
    expect(opts.mqttFor?.('stack-sim-t7-0002')?.cert).toContain('BEGIN CERTIFICATE');
    expect(opts.mqttFor?.('stack-sim-t7-0001')).toBeUndefined();
    expect(lines.join('\n')).toMatch(/stack-sim-t7-0001: .*AccessDenied/);
    // Restarted (same task id): nothing provisioned again.
    const again: FleetOptions = { url: fake.url, devices: 3, prefix: 'stack-sim-', types: ['env-sensor'] };
    expect(await onboardFromEnv(env, again, { log: () => undefined })).toEqual({
      provisioned: 0,
      skipped: 2,
      failed: 1,
    });
    // No template: nothing to do; a template without a claim: a clear error.
    expect(await onboardFromEnv({}, again)).toBeUndefined();
    await expect(onboardFromEnv({ PROVISIONING_TEMPLATE: 'x' }, again)).rejects.toThrow(
      /CLAIM_CERTIFICATE_ID/,
    );
  });

  it('task tags come from the ECS task id; names differ between tasks', async () => {
    const meta = { ECS_CONTAINER_METADATA_URI_V4: 'http://169.254.170.2/v4/abc' };
    const tag = await taskTag(meta, async () => ({
      TaskARN: 'arn:aws:ecs:eu-west-1:123456789012:task/cluster/0f3e9b1c2d4a4e5f8a7b6c5d4e3f2a1b',
    }));
    expect(tag).toBe('0f3e9b1c');
    expect(await taskTag({}, async () => ({}))).toMatch(/^[0-9a-f]{8}$/);
    await expect(taskTag({ SIM_TASK_ID: 'Bad!' })).rejects.toThrow(/SIM_TASK_ID/);
    const a = taskDeviceIds('s-', 'aaaa', 3);
    const b = taskDeviceIds('s-', 'bbbb', 3);
    expect(a).toEqual(['s-aaaa-0000', 's-aaaa-0001', 's-aaaa-0002']);
    expect(a.some((id) => b.includes(id))).toBe(false);
  });
});
