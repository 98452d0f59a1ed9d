/**
 * Firmware packages in S3 (ADR 0022, amendment 2026-12-05): `{prefix}{id}.bin` (the bytes) and
 * `{prefix}{id}.json` (the metadata, written second, so a listed package always has its bytes). Devices
 * get a short signed API path (object 5's Package URI holds 255 bytes; a pre-signed S3 URL with a session
 * token is ~1,300), and the API's public GET /packages/{id}/{name} answers it with a 302 to a pre-signed
 * GET of the bytes that lives 5 minutes — signed at that moment, so neither the Lambda's expiring role
 * credentials nor a long campaign can outlive it.
 */
import {
  GetObjectCommand,
  ListObjectsV2Command,
  NoSuchKey,
  PutObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import {
  type FirmwarePackage,
  PACKAGE_ID,
  type PackageRedirect,
  type PackageStore,
  signedPackagePath,
  verifyPackageSignature,
  withDigest,
} from '../core/operations/packages.js';

/** LwM2M object 5, resource 1 (Package URI): String, 0-255 bytes. */
const PACKAGE_URI_MAX = 255;

export interface S3PackageStoreOptions {
  s3: S3Client;
  bucket: string;
  /** Key prefix of the packages, e.g. `firmware/`. */
  prefix: string;
  /** The HMAC key of the signed paths (a Secrets Manager secret in AWS), read once. */
  signingKey: () => Promise<Uint8Array>;
  /** Where devices reach the API, e.g. https://abc.execute-api.eu-west-1.amazonaws.com/v1 (no trailing /). */
  apiBaseUrl: string;
  clock?: () => number;
  /** Lifetime of the pre-signed S3 GET a device is redirected to (default 300 s). */
  presignSeconds?: number;
}

export class S3PackageStore implements PackageStore {
  private key?: Promise<Uint8Array>;

  constructor(private readonly o: S3PackageStoreOptions) {}

  private signingKey(): Promise<Uint8Array> {
    this.key ??= this.o.signingKey().catch((error) => {
      this.key = undefined; // a throttled secret read is tried again next time
      throw error;
    });
    return this.key;
  }

  private objectKey(id: string, ext: 'bin' | 'json'): string {
    return `${this.o.prefix}${id}.${ext}`;
  }

  async put(pkg: FirmwarePackage, bytes: Uint8Array): Promise<void> {
    if (!PACKAGE_ID.test(pkg.id)) throw new Error(`bad package id ${pkg.id}`);
    await this.o.s3.send(
      new PutObjectCommand({
        Bucket: this.o.bucket,
        Key: this.objectKey(pkg.id, 'bin'),
        Body: bytes,
        ContentType: 'application/octet-stream',
      }),
    );
    await this.o.s3.send(
      new PutObjectCommand({
        Bucket: this.o.bucket,
        Key: this.objectKey(pkg.id, 'json'),
        Body: JSON.stringify(pkg),
        ContentType: 'application/json',
      }),
    );
  }

  async get(id: string): Promise<FirmwarePackage | undefined> {
    if (!PACKAGE_ID.test(id)) return undefined;
    try {
      const res = await this.o.s3.send(
        new GetObjectCommand({ Bucket: this.o.bucket, Key: this.objectKey(id, 'json') }),
      );
      return JSON.parse((await res.Body?.transformToString()) ?? '') as FirmwarePackage;
    } catch (error) {
      if (error instanceof NoSuchKey || (error as { name?: string }).name === 'NoSuchKey') return undefined;
      throw error;
    }
  }

  async list(): Promise<FirmwarePackage[]> {
    const ids: string[] = [];
    let token: string | undefined;
    do {
      const page = await this.o.s3.send(
        new ListObjectsV2Command({
          Bucket: this.o.bucket,
          Prefix: this.o.prefix,
          ...(token ? { ContinuationToken: token } : {}),
        }),
      );
      for (const o of page.Contents ?? [])
        if (o.Key?.endsWith('.json')) ids.push(o.Key.slice(this.o.prefix.length, -'.json'.length));
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    const all = await Promise.all(ids.map((id) => this.get(id)));
    return all.filter((p): p is FirmwarePackage => p !== undefined).sort((a, b) => b.createdAt - a.createdAt);
  }

  async downloadUri(pkg: FirmwarePackage, expiresAt: number): Promise<string> {
    const key = await this.signingKey();
    const uri = (name: string) =>
      withDigest(`${this.o.apiBaseUrl}${signedPackagePath(key, { ...pkg, name }, expiresAt)}`, pkg.sha256);
    // Object 5's Package URI holds 255 bytes. The name segment is not signed (only the id is), so a long
    // name is shortened, keeping its extension: with a 36-character id and an execute-api base URL the
    // rest takes ~235 bytes.
    const full = uri(pkg.name);
    const over = Buffer.byteLength(full) - PACKAGE_URI_MAX;
    if (over <= 0) return full;
    const ext = /\.[A-Za-z0-9]{1,8}$/.exec(pkg.name)?.[0] ?? '';
    const stem = pkg.name.slice(0, pkg.name.length - ext.length);
    return uri(`${stem.slice(0, Math.max(1, stem.length - over))}${ext}`);
  }

  async redirect(id: string, query: Record<string, string | undefined>): Promise<PackageRedirect> {
    const now = (this.o.clock ?? Date.now)();
    if (!PACKAGE_ID.test(id) || !verifyPackageSignature(await this.signingKey(), id, query.e, query.s, now))
      return { status: 403 };
    if (!(await this.get(id))) return { status: 404 };
    const location = await getSignedUrl(
      this.o.s3,
      new GetObjectCommand({ Bucket: this.o.bucket, Key: this.objectKey(id, 'bin') }),
      { expiresIn: this.o.presignSeconds ?? 300 },
    );
    return { status: 302, location };
  }
}
