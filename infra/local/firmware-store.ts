/**
 * Firmware packages on the local stack (ADR 0022): bytes and metadata in `{dataDir}/firmware/`, handed
 * to devices as HMAC-signed, expiring URLs of the local HTTP server —
 * `{base}/packages/{id}/{name}?e={expiry, epoch s}&s={HMAC-SHA256(key, id + "\n" + e), base64url}` plus
 * `#sha256={hex}` for the device's integrity check. The key (32 random bytes) is created once in the
 * data directory with mode 0600, so URLs survive a restart until they expire; it never leaves the host.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  type FirmwarePackage,
  PACKAGE_ID as ID,
  type PackageStore,
  signedPackagePath,
  verifyPackageSignature,
  withDigest,
} from '../../functions/core/operations/packages.js';

export class LocalPackageStore implements PackageStore {
  private readonly dir: string;
  private readonly key: Buffer;

  constructor(
    dataDir: string,
    /** The HTTP server's base URL devices reach it by, e.g. http://127.0.0.1:8080 (known once it listens). */
    private readonly baseUrl: () => string,
    private readonly clock: () => number = Date.now,
  ) {
    this.dir = join(dataDir, 'firmware');
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    const keyFile = join(this.dir, 'signing.key');
    if (!existsSync(keyFile)) writeFileSync(keyFile, randomBytes(32), { mode: 0o600 });
    this.key = readFileSync(keyFile);
  }

  async put(pkg: FirmwarePackage, bytes: Uint8Array): Promise<void> {
    if (!ID.test(pkg.id)) throw new Error(`bad package id ${pkg.id}`);
    await writeFile(join(this.dir, `${pkg.id}.bin`), bytes);
    await writeFile(join(this.dir, `${pkg.id}.json`), JSON.stringify(pkg));
  }

  async get(id: string): Promise<FirmwarePackage | undefined> {
    if (!ID.test(id)) return undefined;
    try {
      return JSON.parse(await readFile(join(this.dir, `${id}.json`), 'utf8')) as FirmwarePackage;
    } catch {
      return undefined;
    }
  }

  async list(): Promise<FirmwarePackage[]> {
    const ids = readdirSync(this.dir)
      .filter((f) => f.endsWith('.json'))
      .map((f) => f.slice(0, -5));
    const all = await Promise.all(ids.map((id) => this.get(id)));
    return all.filter((p): p is FirmwarePackage => p !== undefined).sort((a, b) => b.createdAt - a.createdAt);
  }

  async downloadUri(pkg: FirmwarePackage, expiresAt: number): Promise<string> {
    return withDigest(`${this.baseUrl()}${signedPackagePath(this.key, pkg, expiresAt)}`, pkg.sha256);
  }

  /**
   * Serves GET /packages/{id}/{name}?e&s: 200 with the bytes for a valid, unexpired signature; 403 for a
   * missing, wrong or expired one (the same answer, so a caller learns nothing); 404 for no package.
   */
  async serve(path: string, query: URLSearchParams): Promise<{ status: number; body?: Uint8Array }> {
    const m = /^\/packages\/([A-Za-z0-9_-]{1,64})\/[^/]+$/.exec(path);
    if (!m) return { status: 404 };
    const id = m[1]!;
    if (
      !verifyPackageSignature(
        this.key,
        id,
        query.get('e') ?? undefined,
        query.get('s') ?? undefined,
        this.clock(),
      )
    )
      return { status: 403 };
    try {
      return { status: 200, body: await readFile(join(this.dir, `${id}.bin`)) };
    } catch {
      return { status: 404 };
    }
  }
}
