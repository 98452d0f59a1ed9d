/**
 * Just enough X.509 for device onboarding (ADR 0018), on node:crypto alone: DER encoding, a PKCS#10
 * certificate signing request for an EC P-256 key (what `$aws/certificates/create-from-csr` signs, so
 * the private key never leaves the device), and a CSR reader that checks the request's own signature.
 */
import { createPublicKey, type KeyObject, sign, verify } from 'node:crypto';
import { ValidationError } from './errors.js';

// ---- DER writer ----------------------------------------------------------------------------------

function length(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

export function der(tag: number, ...parts: Buffer[]): Buffer {
  const body = Buffer.concat(parts);
  return Buffer.concat([Buffer.from([tag]), length(body.length), body]);
}

export const seq = (...parts: Buffer[]) => der(0x30, ...parts);
export const set = (...parts: Buffer[]) => der(0x31, ...parts);
export const utf8 = (s: string) => der(0x0c, Buffer.from(s, 'utf8'));
export const bitString = (b: Buffer) => der(0x03, Buffer.from([0]), b);

export function oid(dotted: string): Buffer {
  const [a, b, ...rest] = dotted.split('.').map(Number) as [number, number, ...number[]];
  const out = [40 * a + b];
  for (const n of rest) {
    const chunk = [n & 0x7f];
    for (let v = Math.floor(n / 128); v > 0; v = Math.floor(v / 128)) chunk.unshift(0x80 | (v & 0x7f));
    out.push(...chunk);
  }
  return der(0x06, Buffer.from(out));
}

export function integer(value: Buffer | number): Buffer {
  let b = typeof value === 'number' ? Buffer.from([value]) : value;
  while (b.length > 1 && b[0] === 0 && (b[1]! & 0x80) === 0) b = b.subarray(1);
  if ((b[0]! & 0x80) !== 0) b = Buffer.concat([Buffer.from([0]), b]);
  return der(0x02, b);
}

export const OID = {
  commonName: '2.5.4.3',
  ecdsaWithSha256: '1.2.840.10045.4.3.2',
} as const;

/** A Name with one CN attribute. */
export function nameCN(commonName: string): Buffer {
  return seq(set(seq(oid(OID.commonName), utf8(commonName))));
}

export function toPem(label: string, body: Buffer): string {
  const b64 = body
    .toString('base64')
    .replace(/(.{64})/g, '$1\n')
    .replace(/\n$/, '');
  return `-----BEGIN ${label}-----\n${b64}\n-----END ${label}-----\n`;
}

export function fromPem(label: string, pem: string): Buffer {
  const m = new RegExp(`-----BEGIN ${label}-----([\\s\\S]*?)-----END ${label}-----`).exec(pem);
  if (!m) throw new ValidationError(`not a PEM ${label}`, { field: 'pem' });
  return Buffer.from(m[1]!.replace(/\s+/g, ''), 'base64');
}

/** A PKCS#10 CSR (PEM) for an EC P-256 key pair, subject CN=commonName, signed with ECDSA-SHA256. */
export function createCsr(privateKey: KeyObject, commonName: string): string {
  if (privateKey.asymmetricKeyType !== 'ec' || privateKey.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
    throw new ValidationError('the key must be an EC P-256 private key', { field: 'key' });
  }
  const spki = createPublicKey(privateKey).export({ type: 'spki', format: 'der' });
  const info = seq(integer(0), nameCN(commonName), spki, der(0xa0));
  const signature = sign('sha256', info, { key: privateKey, dsaEncoding: 'der' });
  return toPem('CERTIFICATE REQUEST', seq(info, seq(oid(OID.ecdsaWithSha256)), bitString(signature)));
}

// ---- DER reader (CSR only) -----------------------------------------------------------------------

interface Node {
  tag: number;
  /** The whole element (tag, length, body). */
  raw: Buffer;
  body: Buffer;
}

function read(buf: Buffer, at: number): Node & { end: number } {
  const tag = buf[at];
  let len = buf[at + 1];
  if (tag === undefined || len === undefined) throw new ValidationError('truncated DER', { field: 'csr' });
  let off = at + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n < 1 || n > 4) throw new ValidationError('bad DER length', { field: 'csr' });
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + (buf[off + i] ?? 0);
    off += n;
  }
  const end = off + len;
  if (end > buf.length) throw new ValidationError('truncated DER', { field: 'csr' });
  return { tag, raw: buf.subarray(at, end), body: buf.subarray(off, end), end };
}

function children(node: Node): Node[] {
  const out: Node[] = [];
  for (let at = 0; at < node.body.length; ) {
    const c = read(node.body, at);
    out.push(c);
    at = c.end;
  }
  return out;
}

export interface ParsedCsr {
  commonName: string | undefined;
  /** SubjectPublicKeyInfo, DER. */
  spki: Buffer;
  publicKey: KeyObject;
}

/** Reads a PEM CSR and checks its self-signature (proof of possession); ValidationError otherwise. */
export function parseCsr(pem: string): ParsedCsr {
  const top = read(fromPem('CERTIFICATE REQUEST', pem), 0);
  const [info, , sigBits] = children(top);
  if (!info || !sigBits || info.tag !== 0x30 || sigBits.tag !== 0x03) {
    throw new ValidationError('not a PKCS#10 certification request', { field: 'certificateSigningRequest' });
  }
  const [, subject, spki] = children(info);
  if (!subject || !spki)
    throw new ValidationError('CSR without subject or key', { field: 'certificateSigningRequest' });
  let commonName: string | undefined;
  for (const rdn of children(subject)) {
    for (const atv of children(rdn)) {
      const [type, value] = children(atv);
      if (type && value && type.raw.equals(oid(OID.commonName))) commonName = value.body.toString('utf8');
    }
  }
  const publicKey = createPublicKey({ key: spki.raw, format: 'der', type: 'spki' });
  const ok = verify('sha256', info.raw, { key: publicKey, dsaEncoding: 'der' }, sigBits.body.subarray(1));
  if (!ok)
    throw new ValidationError('the CSR signature does not verify', { field: 'certificateSigningRequest' });
  return { commonName, spki: Buffer.from(spki.raw), publicKey };
}
