/**
 * The local certificate authority behind `dualpath start --tls`: the local stand-in for IoT Core's
 * device certificates. Pure JS (@peculiar/x509 over Node's WebCrypto, ECDSA P-256): no openssl needed.
 * Everything lives in the data directory, never in the repository:
 *
 *   <dataDir>/tls/ca.crt, ca.key            the CA (key 0600); trust ca.crt to reach the broker
 *   <dataDir>/tls/server.crt, server.key    the broker's certificate (localhost, 127.0.0.1, ::1)
 *   <dataDir>/tls/devices/<id>.crt, .key    device certificates (CN = thing name = MQTT client id)
 *
 * A device certificate's subject CN is the thing name; the TLS listener accepts a client only when
 * its certificate chains to this CA and its CN equals its MQTT client id (ADR 0019).
 */
import { webcrypto } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
// @peculiar/x509 resolves its algorithm providers through tsyringe, which needs the Reflect metadata
// polyfill loaded first (ES imports evaluate in order).
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { ValidationError } from '../../functions/core/errors.js';
import { isValidEndpoint } from '../../functions/core/topics.js';

const crypto = webcrypto;
x509.cryptoProvider.set(crypto as never);

const ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const DAY_MS = 86_400_000;
/** Device and server certificates: valid 1 year; the CA: 10 years. */
export const LEAF_DAYS = 365;
export const CA_DAYS = 3650;

export interface PemPair {
  cert: string;
  key: string;
}

export interface CaPaths {
  dir: string;
  caCert: string;
  caKey: string;
  serverCert: string;
  serverKey: string;
  devicesDir: string;
}

export interface DeviceCertFiles {
  cert: string;
  key: string;
  ca: string;
}

export const caPaths = (dataDir: string): CaPaths => {
  const dir = join(dataDir, 'tls');
  return {
    dir,
    caCert: join(dir, 'ca.crt'),
    caKey: join(dir, 'ca.key'),
    serverCert: join(dir, 'server.crt'),
    serverKey: join(dir, 'server.key'),
    devicesDir: join(dir, 'devices'),
  };
};

function keyToPem(der: ArrayBuffer): string {
  const b64 = Buffer.from(der).toString('base64');
  return `-----BEGIN PRIVATE KEY-----\n${b64.match(/.{1,64}/g)!.join('\n')}\n-----END PRIVATE KEY-----\n`;
}

function pemToDer(pem: string): Buffer {
  const body = pem.replace(/-----(BEGIN|END) [A-Z ]+-----/g, '').replace(/\s+/g, '');
  return Buffer.from(body, 'base64');
}

const randomSerial = () => {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  bytes[0] = bytes[0]! & 0x7f; // positive
  return Buffer.from(bytes).toString('hex');
};

/** A new CA (self-signed, path length 0). In memory: ensureLocalCa() stores one in the data dir. */
export async function createCa(commonName = 'Dualpath local CA'): Promise<PemPair> {
  const keys = (await crypto.subtle.generateKey(ALG, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
  const now = Date.now();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerial(),
    name: [{ CN: [commonName] }, { O: ['Dualpath (local development only)'] }],
    notBefore: new Date(now - 60_000),
    notAfter: new Date(now + CA_DAYS * DAY_MS),
    signingAlgorithm: ALG,
    keys,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return {
    cert: cert.toString('pem'),
    key: keyToPem(await crypto.subtle.exportKey('pkcs8', keys.privateKey)),
  };
}

export interface IssueOptions {
  /** Subject CN: the thing name for a device, a host name for the server. */
  commonName: string;
  usage: 'client' | 'server';
  /** Server only: DNS names and IP addresses (default localhost, 127.0.0.1, ::1). */
  altNames?: Array<{ type: 'dns' | 'ip'; value: string }>;
  days?: number;
}

/** A certificate signed by `ca`, with a fresh key. */
export async function issueCert(ca: PemPair, o: IssueOptions): Promise<PemPair> {
  const caCert = new x509.X509Certificate(ca.cert);
  const caKey = await crypto.subtle.importKey('pkcs8', pemToDer(ca.key), ALG, false, ['sign']);
  const keys = (await crypto.subtle.generateKey(ALG, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
  const now = Date.now();
  const extensions: x509.Extension[] = [
    new x509.BasicConstraintsExtension(false, undefined, true),
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
    new x509.ExtendedKeyUsageExtension(
      [o.usage === 'client' ? x509.ExtendedKeyUsage.clientAuth : x509.ExtendedKeyUsage.serverAuth],
      false,
    ),
    await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    await x509.AuthorityKeyIdentifierExtension.create(caCert),
  ];
  if (o.usage === 'server') {
    const names = o.altNames ?? [
      { type: 'dns', value: 'localhost' },
      { type: 'ip', value: '127.0.0.1' },
      { type: 'ip', value: '::1' },
    ];
    extensions.push(new x509.SubjectAlternativeNameExtension(names));
  }
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: randomSerial(),
    subject: [{ CN: [o.commonName] }],
    issuer: caCert.subjectName,
    notBefore: new Date(now - 60_000),
    notAfter: new Date(now + (o.days ?? LEAF_DAYS) * DAY_MS),
    signingAlgorithm: ALG,
    publicKey: keys.publicKey,
    signingKey: caKey,
    extensions,
  });
  return {
    cert: cert.toString('pem'),
    key: keyToPem(await crypto.subtle.exportKey('pkcs8', keys.privateKey)),
  };
}

function writeKey(path: string, pem: string): void {
  writeFileSync(path, pem, { mode: 0o600 });
  chmodSync(path, 0o600);
}

/**
 * The data directory's CA and the broker's server certificate, created on first use. Returns the
 * paths and the PEM contents (for the TLS listener).
 */
export async function ensureLocalCa(
  dataDir: string,
): Promise<{ paths: CaPaths; ca: PemPair; server: PemPair; created: boolean }> {
  const paths = caPaths(dataDir);
  mkdirSync(paths.devicesDir, { recursive: true, mode: 0o700 });
  let created = false;
  if (!existsSync(paths.caCert) || !existsSync(paths.caKey)) {
    const ca = await createCa();
    writeKey(paths.caKey, ca.key);
    writeFileSync(paths.caCert, ca.cert);
    created = true;
  }
  const ca = { cert: readFileSync(paths.caCert, 'utf8'), key: readFileSync(paths.caKey, 'utf8') };
  if (created || !existsSync(paths.serverCert) || !existsSync(paths.serverKey)) {
    const server = await issueCert(ca, { commonName: 'localhost', usage: 'server' });
    writeKey(paths.serverKey, server.key);
    writeFileSync(paths.serverCert, server.cert);
  }
  const server = {
    cert: readFileSync(paths.serverCert, 'utf8'),
    key: readFileSync(paths.serverKey, 'utf8'),
  };
  return { paths, ca, server, created };
}

/**
 * Issues (or re-issues) the certificate of device `deviceId` from the data directory's CA (created
 * if missing) and writes <dataDir>/tls/devices/<id>.crt and .key (0600). Returns the file paths.
 */
export async function issueDeviceCert(dataDir: string, deviceId: string): Promise<DeviceCertFiles> {
  if (!isValidEndpoint(deviceId))
    throw new ValidationError(
      `device id "${deviceId}" is not a valid thing name (1-128 of A-Z a-z 0-9 _ : . -)`,
      { field: 'deviceId', code: 'INVALID_DEVICE_ID' },
    );
  const { paths, ca } = await ensureLocalCa(dataDir);
  const issued = await issueCert(ca, { commonName: deviceId, usage: 'client' });
  const cert = join(paths.devicesDir, `${deviceId}.crt`);
  const key = join(paths.devicesDir, `${deviceId}.key`);
  writeKey(key, issued.key);
  writeFileSync(cert, issued.cert);
  return { cert, key, ca: paths.caCert };
}

/**
 * TLS client options for each device id (its own certificate, issued now from the data directory's
 * CA): what a simulated fleet needs to reach the local TLS listener (FleetOptions.mqttFor).
 */
export async function deviceTlsOptions(
  dataDir: string,
  deviceIds: readonly string[],
): Promise<(deviceId: string) => { cert: string; key: string; ca: string; rejectUnauthorized: true }> {
  const byId = new Map<string, { cert: string; key: string; ca: string; rejectUnauthorized: true }>();
  for (const id of deviceIds) {
    const f = await issueDeviceCert(dataDir, id);
    byId.set(id, {
      cert: readFileSync(f.cert, 'utf8'),
      key: readFileSync(f.key, 'utf8'),
      ca: readFileSync(f.ca, 'utf8'),
      rejectUnauthorized: true,
    });
  }
  return (deviceId) => {
    const options = byId.get(deviceId);
    if (!options)
      throw new ValidationError(`no certificate was issued for device "${deviceId}"`, { field: 'deviceId' });
    return options;
  };
}
