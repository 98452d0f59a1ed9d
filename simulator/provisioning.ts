/**
 * The device side of onboarding (ADR 0018): AWS IoT fleet provisioning by claim over one MQTT
 * connection authenticated with the stack's claim certificate.
 *   1. a fresh EC P-256 key is made on the device and a CSR sent to
 *      `$aws/certificates/create-from-csr/json` (the private key never leaves the device);
 *   2. the returned certificate's ownership token and the device's id and type go to
 *      `$aws/provisioning-templates/{template}/provision/json` (RegisterThing), where the stack's
 *      pre-provisioning hook checks the device against the registry;
 *   3. the key, the certificate and a connection file are written, and the device then connects with
 *      its own identity (client id = thing name).
 * Responses come back on the same connection only, and carry no request id, so one connection runs
 * one request at a time; `provisionFleet` runs several connections, paced below the account's
 * provisioning rate, skips devices whose credentials are already stored (resumable) and retries
 * throttled requests with backoff. Used by `dualpath provision` and by the simulator at start-up.
 */
import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { ValidationError } from '../functions/core/errors.js';
import { CLAIM_CLIENT_PREFIX, FLEET_TOPICS, PROVISIONING_PARAMETERS } from '../functions/core/onboarding.js';
import { createCsr } from '../functions/core/x509.js';

export { CLAIM_CLIENT_PREFIX, FLEET_TOPICS };

export interface DeviceCredentials {
  deviceId: string;
  deviceType: string;
  thingName: string;
  certificateId: string;
  certificatePem: string;
  privateKeyPem: string;
}

/** A RegisterThing or CreateCertificateFromCsr refusal, as IoT sends it. */
export class ProvisioningRejected extends Error {
  constructor(
    readonly operation: string,
    readonly statusCode: number | undefined,
    readonly errorCode: string | undefined,
    message: string,
  ) {
    super(`${operation} rejected: ${statusCode ?? '?'} ${errorCode ?? ''} ${message}`.trim());
    this.name = 'ProvisioningRejected';
  }
  /** Throttled or a server-side fault: worth another try later. */
  get retryable(): boolean {
    return this.statusCode === 429 || (this.statusCode !== undefined && this.statusCode >= 500);
  }
}

/** Sends one request and waits for its accepted/rejected answer on the same connection. */
async function request(
  client: MqttClient,
  topic: string,
  payload: unknown,
  timeoutMs: number,
): Promise<Record<string, unknown>> {
  const accepted = `${topic}/accepted`;
  const rejected = `${topic}/rejected`;
  await client.subscribeAsync([accepted, rejected], { qos: 1 });
  try {
    return await new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        cleanup();
        reject(new ProvisioningRejected(topic, undefined, 'Timeout', `no answer in ${timeoutMs} ms`));
      }, timeoutMs);
      const onMessage = (t: string, raw: Buffer) => {
        if (t !== accepted && t !== rejected) return;
        cleanup();
        let body: Record<string, unknown>;
        try {
          body = JSON.parse(raw.toString('utf8')) as Record<string, unknown>;
        } catch {
          reject(new ProvisioningRejected(topic, undefined, 'BadResponse', 'answer is not JSON'));
          return;
        }
        if (t === accepted) resolve(body);
        else
          reject(
            new ProvisioningRejected(
              topic,
              typeof body.statusCode === 'number' ? body.statusCode : undefined,
              typeof body.errorCode === 'string' ? body.errorCode : undefined,
              typeof body.errorMessage === 'string' ? body.errorMessage : '',
            ),
          );
      };
      const cleanup = () => {
        clearTimeout(timer);
        client.off('message', onMessage);
      };
      client.on('message', onMessage);
      client.publish(topic, JSON.stringify(payload), { qos: 1 }, (error) => {
        if (error) {
          cleanup();
          reject(error);
        }
      });
    });
  } finally {
    await client.unsubscribeAsync([accepted, rejected]).catch(() => undefined);
  }
}

export interface ProvisionOptions {
  templateName: string;
  deviceId: string;
  deviceType: string;
  timeoutMs?: number;
}

/** Provisions one device over a connected claim session. */
export async function provisionDevice(client: MqttClient, o: ProvisionOptions): Promise<DeviceCredentials> {
  const timeoutMs = o.timeoutMs ?? 30_000;
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const csr = createCsr(privateKey, o.deviceId);
  const cert = await request(
    client,
    FLEET_TOPICS.createFromCsr,
    { certificateSigningRequest: csr },
    timeoutMs,
  );
  const { certificateId, certificatePem, certificateOwnershipToken } = cert;
  if (
    typeof certificateId !== 'string' ||
    typeof certificatePem !== 'string' ||
    typeof certificateOwnershipToken !== 'string'
  ) {
    throw new ProvisioningRejected('CreateCertificateFromCsr', undefined, 'BadResponse', 'fields missing');
  }
  const registered = await request(
    client,
    FLEET_TOPICS.provision(o.templateName),
    {
      certificateOwnershipToken,
      parameters: {
        [PROVISIONING_PARAMETERS.deviceId]: o.deviceId,
        [PROVISIONING_PARAMETERS.deviceType]: o.deviceType,
      },
    },
    timeoutMs,
  );
  const thingName = typeof registered.thingName === 'string' ? registered.thingName : o.deviceId;
  return {
    deviceId: o.deviceId,
    deviceType: o.deviceType,
    thingName,
    certificateId,
    certificatePem,
    privateKeyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
  };
}

export interface ClaimConnection {
  url: string;
  /** TLS client certificate/key of the claim (and CA), for mqtts://. */
  tls?: Pick<IClientOptions, 'cert' | 'key' | 'ca'>;
}

/** Connects a claim session with a client id the claim policy allows. */
export async function connectClaim(
  c: ClaimConnection,
  clientId = `${CLAIM_CLIENT_PREFIX}${randomUUID()}`,
): Promise<MqttClient> {
  return mqtt.connectAsync(c.url, {
    clientId,
    protocolVersion: 4,
    clean: true,
    reconnectPeriod: 0,
    connectTimeout: 30_000,
    // TLS material only where there is TLS (mqtt:// to a local broker has none).
    ...(c.tls && /^(mqtts|wss):/.test(c.url) ? { ...c.tls, rejectUnauthorized: true } : {}),
  });
}

// ---- credentials on disk ------------------------------------------------------------------------

/** What a device (or `dualpath simulate --connection`) needs to connect as itself. */
export interface ConnectionFile {
  deviceId: string;
  deviceType: string;
  thingName: string;
  clientId: string;
  url: string;
  certificateId: string;
  certFile: string;
  keyFile: string;
  caFile?: string;
}

const SAFE_ID = /^[A-Za-z0-9_:.-]{1,128}$/;

function fileBase(dir: string, id: string): string {
  if (!SAFE_ID.test(id))
    throw new ValidationError(`device id ${id} is not a safe file name`, { field: 'deviceId' });
  return path.join(dir, id);
}

/** Writes `<id>.key.pem` (0600), `<id>.cert.pem` and `<id>.connection.json` atomically; returns the file. */
export async function writeCredentials(
  dir: string,
  creds: DeviceCredentials,
  url: string,
  caFile?: string,
): Promise<ConnectionFile> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const base = fileBase(dir, creds.deviceId);
  const conn: ConnectionFile = {
    deviceId: creds.deviceId,
    deviceType: creds.deviceType,
    thingName: creds.thingName,
    clientId: creds.thingName,
    url,
    certificateId: creds.certificateId,
    certFile: path.basename(`${base}.cert.pem`),
    keyFile: path.basename(`${base}.key.pem`),
    ...(caFile ? { caFile } : {}),
  };
  const put = async (file: string, data: string, mode: number) => {
    await writeFile(`${file}.tmp`, data, { mode });
    await rename(`${file}.tmp`, file);
  };
  await put(`${base}.key.pem`, creds.privateKeyPem, 0o600);
  await put(`${base}.cert.pem`, creds.certificatePem, 0o644);
  // The connection file last: its presence means the device is provisioned (resume skips it).
  await put(`${base}.connection.json`, `${JSON.stringify(conn, null, 2)}\n`, 0o644);
  return conn;
}

/** Reads a connection file and the files it names (relative to the connection file). */
export async function readConnection(
  file: string,
): Promise<{ conn: ConnectionFile; cert: string; key: string; ca?: string }> {
  const conn = JSON.parse(await readFile(file, 'utf8')) as ConnectionFile;
  for (const k of ['deviceId', 'clientId', 'url', 'certFile', 'keyFile'] as const) {
    if (typeof conn[k] !== 'string' || conn[k] === '')
      throw new ValidationError(`${file}: ${k} is missing`, { field: k });
  }
  const dir = path.dirname(file);
  const at = (f: string) => path.resolve(dir, f);
  return {
    conn,
    cert: await readFile(at(conn.certFile), 'utf8'),
    key: await readFile(at(conn.keyFile), 'utf8'),
    ...(conn.caFile ? { ca: await readFile(at(conn.caFile), 'utf8') } : {}),
  };
}

async function storedConnection(dir: string, id: string): Promise<boolean> {
  try {
    await readFile(`${fileBase(dir, id)}.connection.json`);
    return true;
  } catch {
    return false;
  }
}

// ---- many devices -------------------------------------------------------------------------------

export interface FleetProvisioningOptions {
  devices: ReadonlyArray<{ id: string; type: string }>;
  templateName: string;
  claim: ClaimConnection;
  /** Where credentials are kept; devices already there are skipped (resumable). */
  dir: string;
  /** The URL devices connect to afterwards (written into each connection file). */
  deviceUrl: string;
  /** RegisterThing requests per second, over all connections (default 10). */
  ratePerSecond?: number;
  /** Claim connections at once (default 4). */
  connections?: number;
  /** Attempts per device on throttling or faults (default 6, backoff from 1 s doubling to 30 s). */
  attempts?: number;
  timeoutMs?: number;
  /** Prefix for claim client ids, e.g. the task's id, so tasks never share one. */
  clientIdPrefix?: string;
  sleep?: (ms: number) => Promise<void>;
  onProgress?: (done: number, total: number) => void;
}

export interface FleetProvisioningResult {
  provisioned: number;
  skipped: number;
  failed: Array<{ id: string; error: string }>;
}

export async function provisionFleet(o: FleetProvisioningOptions): Promise<FleetProvisioningResult> {
  const sleep = o.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const rate = o.ratePerSecond ?? 10;
  if (!(rate > 0)) throw new ValidationError('ratePerSecond must be > 0', { field: 'ratePerSecond' });
  const result: FleetProvisioningResult = { provisioned: 0, skipped: 0, failed: [] };
  const todo: Array<{ id: string; type: string }> = [];
  for (const d of o.devices) {
    if (await storedConnection(o.dir, d.id)) result.skipped++;
    else todo.push(d);
  }
  // Pacing: request slots spaced 1/rate apart, shared by all connections.
  let nextSlot = Date.now();
  const slot = async () => {
    const at = Math.max(nextSlot, Date.now());
    nextSlot = at + 1000 / rate;
    if (at > Date.now()) await sleep(at - Date.now());
  };
  let cursor = 0;
  const attempts = o.attempts ?? 6;
  const worker = async (n: number) => {
    let client: MqttClient | undefined;
    try {
      while (cursor < todo.length) {
        const d = todo[cursor++]!;
        for (let attempt = 1; ; attempt++) {
          try {
            client ??= await connectClaim(
              o.claim,
              `${CLAIM_CLIENT_PREFIX}${o.clientIdPrefix ?? randomUUID()}-${n}`,
            );
            await slot();
            const creds = await provisionDevice(client, {
              templateName: o.templateName,
              deviceId: d.id,
              deviceType: d.type,
              ...(o.timeoutMs ? { timeoutMs: o.timeoutMs } : {}),
            });
            await writeCredentials(o.dir, creds, o.deviceUrl);
            result.provisioned++;
            o.onProgress?.(result.provisioned + result.skipped, o.devices.length);
            break;
          } catch (error) {
            const retry =
              attempt < attempts &&
              (!(error instanceof ProvisioningRejected) || error.retryable || error.errorCode === 'Timeout');
            if (!(error instanceof ProvisioningRejected)) {
              // A broken connection: a new one for the next attempt.
              await client?.endAsync(true).catch(() => undefined);
              client = undefined;
            }
            if (!retry) {
              result.failed.push({ id: d.id, error: (error as Error).message });
              break;
            }
            await sleep(Math.min(30_000, 1000 * 2 ** (attempt - 1)));
          }
        }
      }
    } finally {
      await client?.endAsync().catch(() => undefined);
    }
  };
  const n = Math.max(1, Math.min(o.connections ?? 4, todo.length));
  await Promise.all(Array.from({ length: todo.length === 0 ? 0 : n }, (_, i) => worker(i)));
  return result;
}
