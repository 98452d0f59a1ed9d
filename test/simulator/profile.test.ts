import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { thingName, typeAt } from '../../simulator/fleet.js';
import { credentialsFromEnv, optionsFromEnv, parseProfile } from '../../simulator/profile.js';

/** Every variable the README documents, a value, and what the code must make of it. */
const ENV_MAPPING: Record<string, [string, Record<string, unknown>]> = {
  SIM_DEVICES: ['250', { devices: 250 }],
  SIM_RATE: ['2', { rate: 2 }],
  SIM_SHAPE: ['burst', { shape: 'burst' }],
  SIM_LWM2M_RATE: ['0.05', { lwm2mRate: 0.05 }],
  SIM_READINGS_PER_MESSAGE: ['8', { readingsPerMessage: 8 }],
  SIM_METRICS_PER_DATA: ['50', { metricsPerData: 50 }],
  SIM_READINGS_PER_SEND: ['40', { readingsPerSend: 40 }],
  SIM_TYPES: ['breaker, pressure', { types: ['breaker', 'pressure'] }],
  SIM_LIFETIME: ['120', { lifetime: 120 }],
  SIM_PUBLISH_RATE: ['50', { publishRate: 50 }],
  SIM_BAD_RATIO: ['0.01', { badRatio: 0.01 }],
  SIM_SEED: ['7', { seed: 7 }],
  SIM_GROUP: ['plant-a', { group: 'plant-a' }],
  SIM_LWM2M_INGEST_RULE: ['Dualpath_dualpath_lwm2m', { lwm2mIngestRule: 'Dualpath_dualpath_lwm2m' }],
  SIM_THING_PREFIX: ['dualpath-sim-', { prefix: 'dualpath-sim-', naming: 'indexed' }],
  SIM_FIRST_INDEX: ['5000', { firstIndex: 5000 }],
  SIM_CONNECTS_PER_SECOND: ['400', { connectsPerSecond: 400 }],
  SIM_DURATION: ['600', { duration: 600 }],
  SIM_STOP_TIMEOUT: ['25', { stopTimeout: 25 }],
  MQTT_URL: ['mqtt://broker:1883', { url: 'mqtt://broker:1883' }],
  IOT_ENDPOINT: [
    'abc-ats.iot.eu-west-1.amazonaws.com',
    { url: 'mqtts://abc-ats.iot.eu-west-1.amazonaws.com:8883' },
  ],
};
const CREDENTIAL_VARS = [
  'DEVICE_CREDENTIALS',
  'DEVICE_CERTS_SECRET',
  'DEVICE_CERT_FILE',
  'DEVICE_KEY_FILE',
  'DEVICE_CA_FILE',
];
/** Read by simulator/onboard-fleet.ts (tested in provisioning.test.ts). */
const ONBOARDING_VARS = [
  'PROVISIONING_TEMPLATE',
  'CLAIM_CERTIFICATE_ID',
  'CLAIM_KEY_SECRET',
  'CLAIM_CERT_FILE',
  'CLAIM_KEY_FILE',
  'SIM_PROVISION_RATE',
  'SIM_CREDENTIALS_DIR',
  'SIM_TASK_ID',
];
const ENV_NAME =
  /\b(?:SIM_[A-Z0-9_]+[A-Z0-9]|MQTT_URL|IOT_ENDPOINT|DEVICE_[A-Z_]+[A-Z]|PROVISIONING_TEMPLATE|CLAIM_[A-Z_]+[A-Z])\b/g;

describe('profiles and environment', () => {
  it('parses the bundled profiles and rejects unknown keys loudly', () => {
    for (const f of ['local-demo.yaml', 'seeds-burst.yaml', 'load-10k.yaml']) {
      const p = parseProfile(readFileSync(`simulator/profiles/${f}`, 'utf8'), f);
      expect(p.devices).toBeGreaterThan(0);
    }
    expect(() => parseProfile('devices: 3\nrat: 2\n', 'x.yaml')).toThrow(/unknown key "rat"/);
    expect(() => parseProfile('[1, 2]', 'x.json')).toThrow(/map of options/);
  });

  it('reads the Fargate environment; SIM_THING_PREFIX selects provisioner naming', () => {
    const o = optionsFromEnv({
      SIM_DEVICES: '250',
      SIM_RATE: '2',
      SIM_THING_PREFIX: 'dualpath-sim-',
      IOT_ENDPOINT: 'abc-ats.iot.eu-west-1.amazonaws.com',
    });
    expect(o).toMatchObject({
      devices: 250,
      rate: 2,
      prefix: 'dualpath-sim-',
      naming: 'indexed',
      url: 'mqtts://abc-ats.iot.eu-west-1.amazonaws.com:8883',
    });
    expect(() => optionsFromEnv({ SIM_DEVICES: 'many' })).toThrow(/SIM_DEVICES/);
  });

  it('every environment variable the README and the Dockerfile document is read, as documented', async () => {
    // Prepare
    const readme = readFileSync('simulator/README.md', 'utf8');
    const table = readme.slice(readme.indexOf('### Environment'), readme.indexOf('### Stopping'));
    const documented = new Set(table.match(ENV_NAME));
    const dockerfile = new Set(readFileSync('simulator/Dockerfile', 'utf8').match(ENV_NAME));
    // Assess: the same names in both, all of them known here
    expect([...dockerfile].sort()).toEqual([...documented].sort());
    expect([...documented].sort()).toEqual(
      [...Object.keys(ENV_MAPPING), ...CREDENTIAL_VARS, ...ONBOARDING_VARS].sort(),
    );
    for (const [name, [value, expected]] of Object.entries(ENV_MAPPING)) {
      expect(optionsFromEnv({ [name]: value }), name).toEqual(expected);
    }
    expect(optionsFromEnv({ MQTT_URL: 'mqtt://a:1883', IOT_ENDPOINT: 'x' }).url).toBe('mqtt://a:1883');
    expect(() => optionsFromEnv({ SIM_SHAPE: 'bursty' })).toThrow(/SIM_SHAPE/);
    // Credentials: inline JSON, and files (with the CA and the endpoint)
    const creds = { certificatePem: 'CERT', privateKey: 'KEY', endpoint: 'e-ats', thingPrefix: 'p-' };
    expect(await credentialsFromEnv({ DEVICE_CREDENTIALS: JSON.stringify(creds) })).toEqual(creds);
    await expect(credentialsFromEnv({ DEVICE_CREDENTIALS: '{"certificatePem":"x"}' })).rejects.toThrow(
      /certificatePem and privateKey/,
    );
    const dir = mkdtempSync(join(tmpdir(), 'sim-creds-'));
    writeFileSync(join(dir, 'c.pem'), 'CERT');
    writeFileSync(join(dir, 'k.pem'), 'KEY');
    writeFileSync(join(dir, 'ca.pem'), 'CA');
    expect(
      await credentialsFromEnv({
        DEVICE_CERT_FILE: join(dir, 'c.pem'),
        DEVICE_KEY_FILE: join(dir, 'k.pem'),
        DEVICE_CA_FILE: join(dir, 'ca.pem'),
        IOT_ENDPOINT: 'e-ats',
      }),
    ).toEqual({ certificatePem: 'CERT', privateKey: 'KEY', caPem: 'CA', endpoint: 'e-ats' });
    expect(await credentialsFromEnv({})).toBeUndefined();
  });

  it('indexed thing names: prefix and a zero-padded index (at least 4 digits)', () => {
    const o = { url: 'mqtts://x:8883', devices: 12_345, prefix: 'dualpath-sim-', naming: 'indexed' as const };
    expect(thingName(o, 0, 'breaker')).toBe('dualpath-sim-00000');
    expect(thingName(o, 12_344, 'breaker')).toBe('dualpath-sim-12344');
    expect(thingName({ ...o, devices: 10 }, 9, 'breaker')).toBe('dualpath-sim-0009');
    expect(thingName({ url: 'mqtt://x', devices: 3 }, 2, 'breaker')).toBe('sim-breaker-00002');
  });

  it('type weights are honoured and deterministic', () => {
    const o = { url: 'mqtt://x', devices: 4000, types: { breaker: 3, 'env-sensor': 1 }, seed: 5 };
    const types = Array.from({ length: 4000 }, (_, i) => typeAt(o, i));
    expect(types).toEqual(Array.from({ length: 4000 }, (_, i) => typeAt(o, i)));
    const breakers = types.filter((t) => t === 'breaker').length;
    expect(breakers / 4000).toBeGreaterThan(0.7);
    expect(breakers / 4000).toBeLessThan(0.8);
    expect(() => typeAt({ url: 'mqtt://x', devices: 1, types: ['toaster'] }, 0)).toThrow(
      /unknown device type/,
    );
  });
});
