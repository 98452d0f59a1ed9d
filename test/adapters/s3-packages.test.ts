/**
 * Firmware packages in S3 (ADR 0022 amendment): the objects written and read, the device's signed path
 * (short enough for /5/0/1), and the redirect the API answers it with — a pre-signed GET of the bytes, or
 * 403/404 without saying which check failed. S3 is aws-sdk-client-mock over an in-memory bucket; the deploy
 * harness runs the same adapter against its recording endpoint with the template's IAM.
 */

import {
  GetObjectCommand,
  ListObjectsV2Command,
  NoSuchKey,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { S3PackageStore } from '../../functions/adapters/s3-packages.js';
import type { FirmwarePackage } from '../../functions/core/operations/packages.js';
import { sha256Hex } from '../../functions/core/operations/packages.js';

const s3 = new S3Client({
  region: 'eu-west-1',
  credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'secret', sessionToken: 'token' },
});
const mock = mockClient(s3);
const objects = new Map<string, Buffer>();
const KEY = new Uint8Array(32).fill(7);
const API = 'https://abc123.execute-api.eu-west-1.amazonaws.com/v1';
let now = 1_700_000_000_000;

const store = (signingKey = KEY) =>
  new S3PackageStore({
    s3,
    bucket: 'fw-bucket',
    prefix: 'firmware/',
    signingKey: async () => signingKey,
    apiBaseUrl: API,
    clock: () => now,
  });

const bytes = Buffer.from('firmware 2.1.0 '.repeat(100));
const pkg: FirmwarePackage = {
  id: 'pkg-1',
  name: 'meter-2.1.0.bin',
  version: '2.1.0',
  size: bytes.length,
  sha256: sha256Hex(bytes),
  createdAt: 1000,
};

beforeEach(() => {
  objects.clear();
  mock.reset();
  mock.on(PutObjectCommand).callsFake(async (input) => {
    const body = input.Body;
    objects.set(input.Key, Buffer.from(typeof body === 'string' ? body : (body as Uint8Array)));
    return {};
  });
  mock.on(GetObjectCommand).callsFake(async (input) => {
    const object = objects.get(input.Key);
    if (!object) throw new NoSuchKey({ message: 'The specified key does not exist.', $metadata: {} });
    // The SDK's stream helpers, as the adapter uses them.
    const Body = {
      transformToString: async () => object.toString('utf8'),
      transformToByteArray: async () => new Uint8Array(object),
    };
    return { Body } as never;
  });
  mock.on(ListObjectsV2Command).callsFake(async (input) => ({
    Contents: [...objects.keys()].filter((k) => k.startsWith(input.Prefix ?? '')).map((Key) => ({ Key })),
    IsTruncated: false,
  }));
});
afterEach(() => mock.reset());

describe('S3 package store', () => {
  it('writes the bytes, then the metadata; reads and lists them', async () => {
    const s = store();
    await s.put(pkg, bytes);
    const puts = mock.commandCalls(PutObjectCommand).map((c) => c.args[0].input.Key);
    expect(puts).toEqual(['firmware/pkg-1.bin', 'firmware/pkg-1.json']);
    expect(objects.get('firmware/pkg-1.bin')).toEqual(bytes);
    expect(await s.get('pkg-1')).toEqual(pkg);
    expect(await s.get('nope')).toBeUndefined();
    expect(await s.get('../etc')).toBeUndefined();
    await s.put({ ...pkg, id: 'pkg-2', createdAt: 2000 }, bytes);
    expect((await s.list()).map((p) => p.id)).toEqual(['pkg-2', 'pkg-1']);
  });

  it("gives devices a signed API path that fits object 5's 255-byte Package URI", async () => {
    const uri = await store().downloadUri(pkg, now + 600_000);
    expect(uri).toMatch(
      new RegExp(
        `^${API}/packages/pkg-1/meter-2\\.1\\.0\\.bin\\?e=\\d+&s=[A-Za-z0-9_-]{43}#sha256=${pkg.sha256}$`,
      ),
    );
    expect(Buffer.byteLength(uri)).toBeLessThanOrEqual(255);
  });

  it('shortens a long name (not signed) so a real id on a real API URL still fits 255 bytes', async () => {
    const long = {
      ...pkg,
      id: '0b7c4a52-6f7e-4d36-9a7d-1f0b8f7d2c11',
      name: `${'flow-meter-firmware-'.repeat(3)}2.1.0.bin`,
    };
    const base = 'https://abcdefghij.execute-api.ap-southeast-2.amazonaws.com/v1';
    const s = new S3PackageStore({
      s3,
      bucket: 'fw-bucket',
      prefix: 'firmware/',
      signingKey: async () => KEY,
      apiBaseUrl: base,
      clock: () => now,
    });
    const uri = await s.downloadUri(long, now + 600_000);
    expect(Buffer.byteLength(uri)).toBe(255);
    expect(uri).toMatch(/\/packages\/0b7c4a52-6f7e-4d36-9a7d-1f0b8f7d2c11\/flow-meter-[a-z0-9.-]*\.bin\?e=/);
    // The shortened path still redirects (the signature covers the id and the expiry only).
    const q = Object.fromEntries(new URL(uri.split('#')[0]!).searchParams);
    objects.set('firmware/0b7c4a52-6f7e-4d36-9a7d-1f0b8f7d2c11.json', Buffer.from(JSON.stringify(long)));
    expect((await s.redirect(long.id, q)).status).toBe(302);
  });

  it('redirects a valid signed path to a pre-signed GET of the bytes that lives 5 minutes', async () => {
    const s = store();
    await s.put(pkg, bytes);
    const url = new URL((await s.downloadUri(pkg, now + 600_000)).split('#')[0]!);
    const query = Object.fromEntries(url.searchParams);
    const out = await s.redirect('pkg-1', query);
    expect(out.status).toBe(302);
    const location = new URL((out as { location: string }).location);
    expect(location.hostname).toBe('fw-bucket.s3.eu-west-1.amazonaws.com');
    expect(location.pathname).toBe('/firmware/pkg-1.bin');
    expect(location.searchParams.get('X-Amz-Expires')).toBe('300');
    expect(location.searchParams.get('X-Amz-Credential')).toMatch(/^AKIDEXAMPLE\//);
    expect(location.searchParams.get('X-Amz-Signature')).toMatch(/^[0-9a-f]{64}$/);
  });

  it('answers 403 for a wrong, foreign-key or expired signature and 404 for a package that is gone', async () => {
    const s = store();
    await s.put(pkg, bytes);
    const signed = async (st: S3PackageStore, expiresAt: number) =>
      Object.fromEntries(new URL((await st.downloadUri(pkg, expiresAt)).split('#')[0]!).searchParams);
    const good = await signed(s, now + 600_000);
    expect((await s.redirect('pkg-1', { ...good, s: `${good.s!.slice(0, -1)}A` })).status).toBe(403);
    expect((await s.redirect('pkg-1', { e: good.e })).status).toBe(403);
    expect((await s.redirect('pkg-2', good)).status).toBe(403); // signed for another package
    expect((await s.redirect('pkg-1', await signed(store(new Uint8Array(32)), now + 600_000))).status).toBe(
      403,
    );
    const soon = await signed(s, now + 1000);
    now += 5000;
    expect((await s.redirect('pkg-1', soon)).status).toBe(403);
    objects.clear();
    expect((await s.redirect('pkg-1', await signed(s, now + 600_000))).status).toBe(404);
  });
});
