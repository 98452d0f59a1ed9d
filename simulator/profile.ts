/**
 * Fleet profiles (YAML or JSON files) and the environment (Fargate): both map onto FleetOptions.
 * Unknown keys fail loudly. TLS material for AWS IoT Core comes from files, environment variables or a
 * Secrets Manager JSON secret {certificatePem, privateKey, endpoint, caPem?, thingPrefix?}.
 */
import { readFile } from 'node:fs/promises';
import { parse as parseYaml } from 'yaml';
import { ValidationError } from '../functions/core/errors.js';
import type { FleetOptions } from './fleet.js';

const KEYS = new Set([
  'url',
  'devices',
  'rate',
  'shape',
  'lwm2mRate',
  'readingsPerMessage',
  'metricsPerData',
  'readingsPerSend',
  'seed',
  'group',
  'prefix',
  'naming',
  'firstIndex',
  'types',
  'lifetime',
  'badRatio',
  'churn',
  'connectsPerSecond',
  'publishRate',
  'publishBurst',
  'sparkplugQos',
  'ndataEveryS',
  'keepalive',
  'registerTimeoutMs',
  'maxBuffered',
  'pmin',
  'pmax',
  'firmwareDownloadMs',
  'firmwareUpdateMs',
  'firmwareFailures',
  'backoff',
  'duration',
  'stopTimeout',
]);

/** duration: stop after that many seconds; stopTimeout: bound (s) on the clean stop. */
export type Profile = Partial<FleetOptions> & { duration?: number; stopTimeout?: number };

export function parseProfile(text: string, source: string): Profile {
  let doc: unknown;
  try {
    doc = source.endsWith('.json') ? JSON.parse(text) : parseYaml(text);
  } catch (error) {
    throw new ValidationError(`profile ${source}: ${(error as Error).message}`, { field: 'profile' });
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) {
    throw new ValidationError(`profile ${source} must be a map of options`, { field: 'profile' });
  }
  for (const key of Object.keys(doc)) {
    if (!KEYS.has(key)) {
      throw new ValidationError(`profile ${source}: unknown key "${key}"`, { field: key });
    }
  }
  return doc as Profile;
}

export async function loadProfile(path: string): Promise<Profile> {
  return parseProfile(await readFile(path, 'utf8'), path);
}

export interface DeviceCredentials {
  certificatePem: string;
  privateKey: string;
  endpoint?: string;
  caPem?: string;
  thingPrefix?: string;
}

/**
 * Device credentials from, in order: DEVICE_CREDENTIALS (JSON, as ECS injects a secret),
 * DEVICE_CERTS_SECRET (a Secrets Manager id/ARN holding that JSON), or DEVICE_CERT_FILE /
 * DEVICE_KEY_FILE / DEVICE_CA_FILE. Undefined when none is set.
 */
export async function credentialsFromEnv(env: NodeJS.ProcessEnv): Promise<DeviceCredentials | undefined> {
  const fromJson = (raw: string, field: string): DeviceCredentials => {
    let v: Partial<DeviceCredentials>;
    try {
      v = JSON.parse(raw) as Partial<DeviceCredentials>;
    } catch {
      throw new ValidationError(`${field} is not JSON`, { field });
    }
    if (typeof v.certificatePem !== 'string' || typeof v.privateKey !== 'string') {
      throw new ValidationError(`${field} needs certificatePem and privateKey`, { field });
    }
    return v as DeviceCredentials;
  };
  if (env.DEVICE_CREDENTIALS) return fromJson(env.DEVICE_CREDENTIALS, 'DEVICE_CREDENTIALS');
  if (env.DEVICE_CERTS_SECRET) {
    const { SecretsManagerClient, GetSecretValueCommand } = await import('@aws-sdk/client-secrets-manager');
    const out = await new SecretsManagerClient({}).send(
      new GetSecretValueCommand({ SecretId: env.DEVICE_CERTS_SECRET }),
    );
    return fromJson(out.SecretString ?? '', 'DEVICE_CERTS_SECRET');
  }
  if (env.DEVICE_CERT_FILE && env.DEVICE_KEY_FILE) {
    const creds: DeviceCredentials = {
      certificatePem: await readFile(env.DEVICE_CERT_FILE, 'utf8'),
      privateKey: await readFile(env.DEVICE_KEY_FILE, 'utf8'),
    };
    if (env.DEVICE_CA_FILE) creds.caPem = await readFile(env.DEVICE_CA_FILE, 'utf8');
    if (env.IOT_ENDPOINT) creds.endpoint = env.IOT_ENDPOINT;
    return creds;
  }
  return undefined;
}

/** FleetOptions from the environment (the Fargate task): SIM_*, MQTT_URL, IOT_ENDPOINT. */
export function optionsFromEnv(env: NodeJS.ProcessEnv): Profile {
  const out: Profile = {};
  const num = (name: string): number | undefined => {
    const raw = env[name];
    if (raw === undefined || raw === '') return undefined;
    const n = Number(raw);
    if (!Number.isFinite(n)) throw new ValidationError(`${name} must be a number`, { field: name });
    return n;
  };
  const set = <K extends keyof Profile>(key: K, v: Profile[K] | undefined) => {
    if (v !== undefined) out[key] = v;
  };
  set('devices', num('SIM_DEVICES'));
  set('rate', num('SIM_RATE'));
  set('lwm2mRate', num('SIM_LWM2M_RATE'));
  set('readingsPerMessage', num('SIM_READINGS_PER_MESSAGE'));
  set('badRatio', num('SIM_BAD_RATIO'));
  set('seed', num('SIM_SEED'));
  set('firstIndex', num('SIM_FIRST_INDEX'));
  set('connectsPerSecond', num('SIM_CONNECTS_PER_SECOND'));
  set('metricsPerData', num('SIM_METRICS_PER_DATA'));
  set('readingsPerSend', num('SIM_READINGS_PER_SEND'));
  set('lifetime', num('SIM_LIFETIME'));
  set('publishRate', num('SIM_PUBLISH_RATE'));
  set('duration', num('SIM_DURATION'));
  set('stopTimeout', num('SIM_STOP_TIMEOUT'));
  if (env.SIM_TYPES) {
    out.types = env.SIM_TYPES.split(',')
      .map((t) => t.trim())
      .filter((t) => t !== '');
  }
  if (env.SIM_GROUP) out.group = env.SIM_GROUP;
  if (env.SIM_LWM2M_INGEST_RULE) out.lwm2mIngestRule = env.SIM_LWM2M_INGEST_RULE;
  if (env.SIM_THING_PREFIX) {
    out.prefix = env.SIM_THING_PREFIX;
    out.naming = 'indexed';
  }
  if (env.SIM_SHAPE !== undefined && env.SIM_SHAPE !== '') {
    if (env.SIM_SHAPE !== 'burst' && env.SIM_SHAPE !== 'steady')
      throw new ValidationError('SIM_SHAPE must be steady or burst', { field: 'SIM_SHAPE' });
    out.shape = env.SIM_SHAPE;
  }
  if (env.MQTT_URL) out.url = env.MQTT_URL;
  else if (env.IOT_ENDPOINT) out.url = `mqtts://${env.IOT_ENDPOINT}:8883`;
  return out;
}
