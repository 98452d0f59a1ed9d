/**
 * The simulated device's firmware update (LwM2M object 5) with a real download: the package bytes are
 * fetched from the Package URI and checked against the URI's #sha256; devices can be told to fail.
 */
import { createHash } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  decodeMessage,
  encodeMessage,
  type Lwm2mMessage,
  Operation,
} from '../../functions/core/lwm2m/message.js';
import { decodeSenml } from '../../functions/core/senml/index.js';
import { DEVICE_TYPES } from '../../simulator/device-types.js';
import { failsFirmware } from '../../simulator/fleet.js';
import {
  downloadAndCheck,
  type FirmwareFailure,
  fetchPackage,
  Lwm2mClient,
} from '../../simulator/lwm2m-client.js';

const bytes = new TextEncoder().encode('firmware image 2.0.1 '.repeat(100));
const digest = createHash('sha256').update(bytes).digest('hex');
let base = '';
let gets = 0;
const server = createServer((req, res) => {
  gets++;
  if (req.url?.split('?')[0] === '/fw/meter-2.0.1.bin') {
    res.writeHead(200);
    res.end(bytes);
  } else if (req.url?.startsWith('/packages/p1/')) {
    // As the API answers in AWS: a redirect to a pre-signed GET elsewhere (ADR 0022).
    res.writeHead(302, { location: '/fw/meter-2.0.1.bin?X-Amz-Signature=abc' });
    res.end();
  } else {
    res.writeHead(403);
    res.end();
  }
});
beforeAll(async () => {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

function device(failure?: FirmwareFailure) {
  let now = 1_700_000_000_000;
  const timers: Array<{ at: number; fn: () => void }> = [];
  const client = new Lwm2mClient({
    endpoint: 'm-1',
    type: DEVICE_TYPES.breaker!,
    lifetime: 120,
    clock: () => now,
    schedule: (ms, fn) => timers.push({ at: now + ms, fn }),
    read: () => undefined,
    info: { manufacturer: 'D', model: 'M', serial: 'S', firmware: '1.4.2', hardware: 'h', software: 's' },
    download: (url) => fetchPackage(url, 5000),
    ...(failure ? { firmwareFailure: failure } : {}),
  });
  let token = 1;
  const req = (m: Lwm2mMessage) =>
    decodeMessage(client.receive(encodeMessage({ ...m, token: ++token })).replies[0]!.bytes);
  const read = (uri: string) =>
    (
      decodeSenml(req({ operation: Operation.Read, uri }).payload!, 112, { receivedAt: now })[0]!.value as {
        value: number;
      }
    ).value;
  const advance = async (ms: number) => {
    now += ms;
    for (const t of timers.splice(0))
      if (t.at <= now) t.fn();
      else timers.push(t);
    // Let a download's promise settle.
    for (let i = 0; i < 50 && client.fw.state === 1; i++) await new Promise((r) => setTimeout(r, 10));
  };
  const write = (uri: string) =>
    req({
      operation: Operation.WriteReplace,
      uri: '/5/0/1',
      contentFormat: 0,
      payload: new TextEncoder().encode(uri),
    });
  return { client, read, advance, write, req };
}

describe('simulated firmware update with a real download', () => {
  it('downloads, checks the SHA-256, updates to the version named by the package', async () => {
    const d = device();
    const before = gets;
    expect(d.write(`${base}/fw/meter-2.0.1.bin?sig=x#sha256=${digest}`)).toMatchObject({ result: 204 });
    expect(d.read('/5/0/3')).toBe(1);
    await d.advance(2500);
    expect(gets).toBe(before + 1);
    expect(d.read('/5/0/3')).toBe(2);
    expect(d.req({ operation: Operation.Execute, uri: '/5/0/2' })).toMatchObject({ result: 204 });
    await d.advance(3500);
    expect([d.read('/5/0/3'), d.read('/5/0/5')]).toEqual([0, 1]);
    expect(d.client.info.firmware).toBe('2.0.1');
  });

  it.each([
    ['a wrong digest', `#sha256=${'0'.repeat(64)}`, undefined, 5],
    ['a corrupted download', `#sha256=${digest}`, 'integrity' as const, 5],
    ['too little storage', `#sha256=${digest}`, 'not-enough-storage' as const, 2],
    ['an invalid URI', `#sha256=${digest}`, 'invalid-uri' as const, 7],
  ])('%s ends the download Idle with its Update Result', async (_n, frag, failure, result) => {
    const d = device(failure);
    d.write(`${base}/fw/meter-2.0.1.bin${frag}`);
    await d.advance(2500);
    expect([d.read('/5/0/3'), d.read('/5/0/5')]).toEqual([0, result]);
    expect(d.req({ operation: Operation.Execute, uri: '/5/0/2' })).toMatchObject({ result: 405 });
  });

  it('follows the redirect to the bytes and checks them against the SHA-256 of the URI it was given', async () => {
    const uri = `${base}/packages/p1/meter-2.0.1.bin?e=1&s=x`;
    expect(await downloadAndCheck(fetchPackage, `${uri}#sha256=${digest}`)).toBe(0);
    expect(await downloadAndCheck(fetchPackage, `${uri}#sha256=${'0'.repeat(64)}`)).toBe(5);
  });

  it('a refused URL (expired signature → 403) is Update Result 7; a dead host 4; coap 9', async () => {
    expect(await downloadAndCheck(fetchPackage, `${base}/expired#sha256=${digest}`)).toBe(7);
    expect(await downloadAndCheck(() => Promise.reject(new Error('ECONNRESET')), 'http://h/x')).toBe(4);
    expect(await downloadAndCheck(fetchPackage, 'coap://h/x')).toBe(9);
  });

  it('an update that does not take leaves the package Downloaded with Update Result 8', async () => {
    const d = device('update-failed');
    d.write(`${base}/fw/meter-2.0.1.bin#sha256=${digest}`);
    await d.advance(2500);
    expect(d.read('/5/0/3')).toBe(2);
    d.req({ operation: Operation.Execute, uri: '/5/0/2' });
    await d.advance(3500);
    expect([d.read('/5/0/3'), d.read('/5/0/5')]).toEqual([2, 8]);
    expect(d.client.info.firmware).toBe('1.4.2');
  });

  it('Cancel (/5/0/10): Downloading or Downloaded → Idle with Update Result 10; Idle and Updating refuse 4.05', async () => {
    const cancel = (d: ReturnType<typeof device>) => d.req({ operation: Operation.Execute, uri: '/5/0/10' });
    // Idle: nothing to cancel.
    const idle = device();
    expect(cancel(idle)).toMatchObject({ result: 405 });
    expect([idle.read('/5/0/3'), idle.read('/5/0/5')]).toEqual([0, 0]);

    // Downloading: abandoned at once; the download finishing later changes nothing.
    const downloading = device();
    const before = gets;
    downloading.write(`${base}/fw/meter-2.0.1.bin#sha256=${digest}`);
    expect(downloading.read('/5/0/3')).toBe(1);
    expect(cancel(downloading)).toMatchObject({ result: 204 });
    expect([downloading.read('/5/0/3'), downloading.read('/5/0/5')]).toEqual([0, 10]);
    await downloading.advance(2500);
    await new Promise((r) => setTimeout(r, 100));
    expect([downloading.read('/5/0/3'), downloading.read('/5/0/5')]).toEqual([0, 10]);
    expect(gets - before).toBeLessThanOrEqual(1);
    expect(downloading.req({ operation: Operation.Execute, uri: '/5/0/2' })).toMatchObject({ result: 405 });
    expect(downloading.client.info.firmware).toBe('1.4.2');

    // Downloaded: the package is dropped, Update is no longer allowed; a new download may start.
    const downloaded = device();
    downloaded.write(`${base}/fw/meter-2.0.1.bin#sha256=${digest}`);
    await downloaded.advance(2500);
    expect(downloaded.read('/5/0/3')).toBe(2);
    expect(cancel(downloaded)).toMatchObject({ result: 204 });
    expect([downloaded.read('/5/0/3'), downloaded.read('/5/0/5')]).toEqual([0, 10]);
    expect(downloaded.req({ operation: Operation.Execute, uri: '/5/0/2' })).toMatchObject({ result: 405 });
    expect(downloaded.write(`${base}/fw/meter-2.0.1.bin#sha256=${digest}`)).toMatchObject({ result: 204 });
    expect(downloaded.read('/5/0/3')).toBe(1);

    // Updating: too late — refused, and the update completes.
    const updating = device();
    updating.write(`${base}/fw/meter-2.0.1.bin#sha256=${digest}`);
    await updating.advance(2500);
    updating.req({ operation: Operation.Execute, uri: '/5/0/2' });
    expect(updating.read('/5/0/3')).toBe(3);
    expect(cancel(updating)).toMatchObject({ result: 405 });
    await updating.advance(3500);
    expect([updating.read('/5/0/3'), updating.read('/5/0/5')]).toEqual([0, 1]);
    expect(updating.client.info.firmware).toBe('2.0.1');
  });

  it('fleet failure selection: listed ids, and a deterministic fraction', () => {
    const ids = Array.from({ length: 2000 }, (_, i) => `sim-meter-${i}`);
    const o = { seed: 4, firmwareFailures: { ids: ['x'], fraction: 0.05, kind: 'integrity' as const } };
    const chosen = ids.filter((id) => failsFirmware(o, id));
    expect(chosen.length).toBeGreaterThan(60);
    expect(chosen.length).toBeLessThan(140);
    expect(ids.filter((id) => failsFirmware(o, id))).toEqual(chosen);
    expect(failsFirmware(o, 'x')).toBe(true);
    expect(failsFirmware({ seed: 4 }, 'x')).toBe(false);
  });
});

describe('--firmware-fail', () => {
  it('parses KIND:FRACTION and KIND:IDS, refusing anything else naming the flag', async () => {
    const { parseFirmwareFailures } = await import('../../simulator/fleet.js');
    expect(parseFirmwareFailures('integrity:0.05')).toEqual({ kind: 'integrity', fraction: 0.05 });
    expect(parseFirmwareFailures('update-failed:a,b')).toEqual({ kind: 'update-failed', ids: ['a', 'b'] });
    for (const bad of ['integrity', 'nope:0.1', 'integrity:', 'integrity:a,,b'])
      expect(() => parseFirmwareFailures(bad), bad).toThrow(
        expect.objectContaining({ field: 'firmware-fail' }),
      );
  });
});
