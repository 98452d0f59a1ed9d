/**
 * Firmware packages: bytes with a name, a version and their SHA-256, stored once and handed to devices
 * as an expiring signed download URL (S3 pre-signed GET in AWS; an HMAC-signed URL of the local HTTP
 * server locally). The URL carries the package digest in its fragment (`#sha256=<hex>`): the fragment
 * never reaches the server (so it cannot disturb a signature) and the device checks the downloaded
 * bytes against it (LwM2M object 5 has no digest resource).
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { ValidationError } from '../errors.js';

export interface FirmwarePackage {
  id: string;
  name: string;
  version: string;
  size: number;
  /** Hex SHA-256 of the bytes. */
  sha256: string;
  createdAt: number;
}

export interface PackageStore {
  put(pkg: FirmwarePackage, bytes: Uint8Array): Promise<void>;
  get(id: string): Promise<FirmwarePackage | undefined>;
  list(): Promise<FirmwarePackage[]>;
  /** A URL the device may GET the bytes from until `expiresAt` (epoch ms), with `#sha256=` appended. */
  downloadUri(pkg: FirmwarePackage, expiresAt: number): Promise<string>;
  /**
   * Stores whose bytes live elsewhere (S3): checks a signed download path's signature and answers where
   * the bytes are now (a short-lived pre-signed URL) — the API's public GET /packages/{id}/{name}
   * redirects there. Absent: the server that signed the URL serves the bytes itself (local stack).
   */
  redirect?(id: string, query: Record<string, string | undefined>): Promise<PackageRedirect>;
}

/** The answer to a device's GET of a signed package path (never says which check failed). */
export type PackageRedirect = { status: 302; location: string } | { status: 403 | 404 };

/**
 * The signed download path of a package, short enough for object 5's Package URI (0-255 bytes):
 * `/packages/{id}/{name}?e={expiry, epoch s}&s={HMAC-SHA256(key, id + "\n" + e), base64url}`.
 */
export function signedPackagePath(key: Uint8Array, pkg: FirmwarePackage, expiresAt: number): string {
  const e = Math.ceil(expiresAt / 1000);
  return `/packages/${pkg.id}/${encodeURIComponent(pkg.name)}?e=${e}&s=${packageSignature(key, pkg.id, e)}`;
}

function packageSignature(key: Uint8Array, id: string, e: number): string {
  return createHmac('sha256', key).update(`${id}\n${e}`).digest('base64url');
}

/** Is `s` the signature of package `id` with expiry `e` (epoch s), and `e` not past `now` (epoch ms)? */
export function verifyPackageSignature(
  key: Uint8Array,
  id: string,
  e: string | undefined,
  s: string | undefined,
  now: number,
): boolean {
  const expiry = Number(e);
  if (!Number.isSafeInteger(expiry) || expiry * 1000 < now) return false;
  const expected = Buffer.from(packageSignature(key, id, expiry));
  const given = Buffer.from(s ?? '');
  return given.length === expected.length && timingSafeEqual(given, expected);
}

/** Where packages live in the AWS bucket; the functions' grants are scoped to it. */
export const FIRMWARE_PREFIX = 'firmware/';

/** Package ids as the API makes them (path-safe). */
export const PACKAGE_ID = /^[A-Za-z0-9_-]{1,64}$/;

export const MAX_PACKAGE_BYTES = 512 * 1024;

export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** Validates a POST /firmware body: {name, version, contentBase64}. */
export function parsePackageUpload(
  body: unknown,
  id: string,
  now: number,
): { pkg: FirmwarePackage; bytes: Uint8Array } {
  const b = (body ?? {}) as Record<string, unknown>;
  const name = b.name;
  if (typeof name !== 'string' || !/^[A-Za-z0-9._-]{1,64}$/.test(name))
    throw new ValidationError('name must be 1-64 characters of A-Z a-z 0-9 . _ -', { field: 'name' });
  const version = b.version;
  if (typeof version !== 'string' || !/^[0-9A-Za-z.+-]{1,32}$/.test(version))
    throw new ValidationError('version must be 1-32 characters such as 1.2.3', { field: 'version' });
  const content = b.contentBase64;
  if (typeof content !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(content) || content.length === 0)
    throw new ValidationError('contentBase64 must be the package bytes in base64', {
      field: 'contentBase64',
    });
  const bytes = new Uint8Array(Buffer.from(content, 'base64'));
  if (bytes.length > MAX_PACKAGE_BYTES)
    throw new ValidationError(`the package is larger than ${MAX_PACKAGE_BYTES} bytes`, {
      field: 'contentBase64',
    });
  return {
    pkg: { id, name, version, size: bytes.length, sha256: sha256Hex(bytes), createdAt: now },
    bytes,
  };
}

export function withDigest(url: string, sha256: string): string {
  return `${url}#sha256=${sha256}`;
}
