import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parsePackageUpload } from '../../../functions/core/operations/packages.js';
import { LocalPackageStore } from '../../../infra/local/firmware-store.js';

const dir = mkdtempSync(join(tmpdir(), 'dualpath-fw-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let now = 1_800_000_000_000;
const store = new LocalPackageStore(
  dir,
  () => 'http://127.0.0.1:9',
  () => now,
);
const bytes = new TextEncoder().encode('image bytes');

async function fetchVia(s: LocalPackageStore, uri: string) {
  const u = new URL(uri);
  return s.serve(u.pathname, u.searchParams);
}

describe('local firmware packages', () => {
  it('stores a package, signs an expiring URL carrying its SHA-256, serves the bytes to it', async () => {
    const { pkg } = parsePackageUpload(
      { name: 'm-2.0.0.bin', version: '2.0.0', contentBase64: Buffer.from(bytes).toString('base64') },
      'p1',
      now,
    );
    expect(pkg.sha256).toBe(createHash('sha256').update(bytes).digest('hex'));
    await store.put(pkg, bytes);
    expect(await store.get('p1')).toEqual(pkg);
    expect((await store.list()).map((p) => p.id)).toEqual(['p1']);
    const uri = await store.downloadUri(pkg, now + 60_000);
    expect(uri).toMatch(
      /^http:\/\/127\.0\.0\.1:9\/packages\/p1\/m-2\.0\.0\.bin\?e=\d+&s=[\w-]{43}#sha256=[0-9a-f]{64}$/,
    );
    expect(uri.length).toBeLessThanOrEqual(255); // the Package URI resource is a string of at most 255 bytes
    const ok = await fetchVia(store, uri);
    expect(ok.status).toBe(200);
    expect(Buffer.from(ok.body!).equals(Buffer.from(bytes))).toBe(true);
    // The key is private to the data directory.
    expect(statSync(join(dir, 'firmware', 'signing.key')).mode & 0o077).toBe(0);
  });

  it('refuses a tampered, foreign, expired or missing signature alike (403)', async () => {
    const pkg = (await store.get('p1'))!;
    const uri = await store.downloadUri(pkg, now + 60_000);
    const u = new URL(uri);
    const tampered = new URL(uri);
    tampered.searchParams.set('e', String(Number(u.searchParams.get('e')) + 3600));
    expect((await fetchVia(store, tampered.toString())).status).toBe(403);
    const noSig = new URL(uri);
    noSig.searchParams.delete('s');
    expect((await fetchVia(store, noSig.toString())).status).toBe(403);
    // Another data directory = another key.
    const other = new LocalPackageStore(
      mkdtempSync(join(tmpdir(), 'dualpath-fw2-')),
      () => 'http://x',
      () => now,
    );
    expect((await other.serve(u.pathname, u.searchParams)).status).toBe(403);
    // Signed for p1, asked for p2.
    expect((await store.serve(u.pathname.replace('/p1/', '/p2/'), u.searchParams)).status).toBe(403);
    now += 61_000;
    expect((await fetchVia(store, uri)).status).toBe(403);
    expect((await store.serve('/packages/../etc', new URLSearchParams())).status).toBe(404);
  });

  it('refuses bad uploads naming the field', () => {
    const ok = { name: 'a.bin', version: '1.0.0', contentBase64: 'AAEC' };
    for (const [body, field] of [
      [{ ...ok, name: '../x' }, 'name'],
      [{ ...ok, version: '' }, 'version'],
      [{ ...ok, contentBase64: 'not base64!' }, 'contentBase64'],
      [{ ...ok, contentBase64: Buffer.alloc(600_000).toString('base64') }, 'contentBase64'],
    ] as const) {
      expect(() => parsePackageUpload(body, 'p', 0)).toThrow(expect.objectContaining({ field }));
    }
  });
});
