/**
 * Onboarding end to end, offline: the device-side provisioning client against a local fake of the
 * AWS IoT fleet-provisioning MQTT API that enforces the stack's real claim policy, applies its real
 * template body and calls the real pre-provisioning hook through its composition root.
 */
import { X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { InMemoryRegistry } from '../../functions/core/registry-memory.js';
import { composeProvisioningHook } from '../../functions/provisioning-hook/compose.js';
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
});
