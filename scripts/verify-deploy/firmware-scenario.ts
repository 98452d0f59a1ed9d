/**
 * Firmware packages in the deploy harness (ADR 0022, amendment 2026-12-05): the API uploads a package
 * to the packages bucket and lists it; a firmware-update operation over the scenario's device makes the
 * scheduled operations worker read the package and write a signed Package URI to the device (LwM2M
 * Write /5/0/1); the device fetches that URI from the API's public route, is redirected to a pre-signed
 * S3 GET (signed with the API's role) and gets the very bytes, whose SHA-256 the URI carries. Every S3
 * and secret grant of the API and the worker is used on the way. The operation is cancelled at the end.
 */
import { createHash } from 'node:crypto';
import { decodeMessage, Operation } from '../../functions/core/lwm2m/message.js';
import type { ApiResponse } from './deployment.js';
import type { ScenarioContext } from './scenario.js';

export async function runFirmwareScenario(ctx: ScenarioContext, o: { device: string }): Promise<void> {
  const { d } = ctx;
  const key = ctx.adminKey;
  const fail = (msg: string) => ctx.fail(`scenario firmware: ${msg}`);
  const ok = (step: string, res: ApiResponse, status: number) => {
    if (res.status === status) return true;
    fail(`${step}: HTTP ${res.status} (expected ${status}): ${res.raw.slice(0, 300)}`);
    return false;
  };
  const bytes = Buffer.from('meter firmware 2.1.0 '.repeat(64));
  const up = await d.api('POST', '/firmware', {
    key,
    body: { name: 'meter-2.1.0.bin', version: '2.1.0', contentBase64: bytes.toString('base64') },
  });
  if (!ok('POST /firmware', up, 201)) return;
  const packageId = String(up.body.id);
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  if (up.body.sha256 !== sha256) fail(`the package's sha256 is ${String(up.body.sha256)}, not ${sha256}`);
  const list = await d.api('GET', '/firmware', { key });
  if (ok('GET /firmware', list, 200)) {
    const ids = (list.body.packages as Array<{ id: string }> | undefined)?.map((p) => p.id) ?? [];
    if (!ids.includes(packageId)) fail(`GET /firmware lists ${JSON.stringify(ids)}, not ${packageId}`);
  }

  // The Package URI the worker writes to the device (LwM2M Write /5/0/1 on its request topic).
  const uris: string[] = [];
  d.subscribe((topic, payload) => {
    if (topic !== `lwm2m/rd/${o.device}`) return;
    const m = decodeMessage(new Uint8Array(payload));
    if ((m.operation !== Operation.WriteReplace && m.operation !== Operation.WritePartial) || !m.payload)
      return;
    const found = /https:\/\/[^\s"#]+\/packages\/[^\s"#]+#sha256=[0-9a-f]{64}/.exec(
      Buffer.from(m.payload).toString('latin1'),
    );
    if (found) uris.push(found[0]);
  });
  const op = await d.api('POST', '/operations', {
    key,
    body: {
      filter: { deviceIds: [o.device] },
      operation: { kind: 'firmware-update', packageId },
      settings: { pollMs: 100 },
    },
  });
  if (!ok('POST /operations firmware-update', op, 202)) return;
  const worker = (id: string) => id.startsWith('OperationsWorkerFunction');
  await d.runSchedules(worker);
  await d.drain();
  const uri = uris[0];
  if (!uri) return fail('the worker wrote no Package URI to the device');
  if (Buffer.byteLength(uri) > 255)
    fail(`the Package URI is ${Buffer.byteLength(uri)} bytes (object 5 allows 255)`);
  if (!uri.endsWith(`#sha256=${sha256}`)) fail(`the Package URI ${uri} does not carry the package's SHA-256`);

  // The device's GET: the API's public route (no key), then the redirect to S3.
  const url = new URL(uri.split('#')[0]!);
  const path = url.pathname.replace(/^\/[^/]+/, ''); // without the stage
  const redirect = await d.api('GET', `${path}${url.search}`);
  if (ok('GET /packages/{id}/{name}', redirect, 302)) {
    const location = redirect.headers?.location;
    if (!location) fail('the redirect has no location');
    else {
      const res = await fetch(location);
      const got = Buffer.from(await res.arrayBuffer());
      if (res.status !== 200 || !got.equals(bytes))
        fail(
          `the pre-signed GET answered ${res.status} with ${got.length} bytes, not the package's ${bytes.length}`,
        );
    }
  }
  // A tampered signature or an unknown package: no redirect.
  const tampered = await d.api('GET', `${path}${url.search.replace(/s=[^&]+/, 's=AAAA')}`);
  ok('GET /packages with a wrong signature', tampered, 403);
  ok(
    'cancel the firmware operation',
    await d.api('POST', `/operations/${String(op.body.id)}/cancel`, { key }),
    202,
  );
}
