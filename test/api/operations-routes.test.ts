/** /operations and /firmware through the router: key scoping, errors named, the command path reused. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Principal } from '../../functions/api/auth.js';
import { Router } from '../../functions/api/http.js';
import { registerOperationRoutes } from '../../functions/api/routes/operations.js';
import type { PackageStore } from '../../functions/core/operations/packages.js';
import type { OperationService } from '../../functions/core/operations/service.js';
import { type Api, createApi } from './fixture.js';

let api: Api;
beforeAll(async () => {
  api = await createApi();
});
afterAll(async () => api.close());

describe('operations routes', () => {
  it('need a key (401 without); only the admin uploads firmware, any key reads package metadata', async () => {
    for (const [method, path] of [
      ['GET', '/operations'],
      ['POST', '/operations'],
      ['GET', '/operations/x'],
      ['POST', '/operations/x/cancel'],
      ['GET', '/firmware'],
    ] as const)
      expect((await api.call(method, path, { key: null })).status, `${method} ${path}`).toBe(401);
    const upload = await api.call('POST', '/firmware', {
      key: api.appKey,
      body: { name: 'a.bin', version: '1', contentBase64: 'AA==' },
    });
    expect(upload.status).toBe(403);
    expect((await api.call('GET', '/firmware', { key: api.appKey })).status).toBe(200);
  });

  it('an application key runs operations on its device types only and sees only its own', async () => {
    const rebirth = { kind: 'command', command: { protocol: 'sparkplug', operation: 'rebirth' } };
    // Another type in the filter: 403 naming it; another type's device: as unknown as a missing one.
    const otherType = await api.call('POST', '/operations', {
      key: api.appKey,
      body: { filter: { type: 'env-sensor' }, operation: rebirth },
    });
    expect(otherType.status).toBe(403);
    expect(otherType.body.error).toMatchObject({ code: 'FORBIDDEN', field: 'filter.type' });
    const otherDevice = await api.call('POST', '/operations', {
      key: api.appKey,
      body: { filter: { deviceIds: ['e1'] }, operation: rebirth },
    });
    expect(otherDevice.status).toBe(400);
    expect(otherDevice.body.error.field).toBe('filter.deviceIds');
    expect(otherDevice.body.error.message).toContain('unknown device: e1');
    // No type in the filter: its types only (e1 speaks LwM2M too, but is an env-sensor).
    const mine = await api.call('POST', '/operations', {
      key: api.appKey,
      body: { filter: { protocol: 'lwm2m' }, operation: rebirth },
    });
    expect(mine.status).toBe(202);
    expect(mine.body).toMatchObject({ total: 1, appId: expect.any(String) });
    const targets = await api.call('GET', `/operations/${mine.body.id}/targets`, { key: api.appKey });
    expect((targets.body.targets as Array<{ deviceId: string }>).map((t) => t.deviceId)).toEqual(['b1']);

    // The admin's operation is invisible to the application (404, as if absent), the reverse is not.
    const admins = await api.call('POST', '/operations', {
      body: { filter: { deviceIds: ['e1'] }, operation: rebirth },
    });
    expect(admins.status).toBe(202);
    expect(admins.body.appId).toBeUndefined();
    for (const [method, path] of [
      ['GET', `/operations/${admins.body.id}`],
      ['GET', `/operations/${admins.body.id}/targets`],
      ['POST', `/operations/${admins.body.id}/cancel`],
      ['POST', `/operations/${admins.body.id}/retry`],
    ] as const)
      expect((await api.call(method, path, { key: api.appKey })).status, `${method} ${path}`).toBe(404);
    const appList = (await api.call('GET', '/operations', { key: api.appKey })).body.operations as Array<{
      id: string;
    }>;
    expect(appList.map((o) => o.id)).toContain(mine.body.id);
    expect(appList.map((o) => o.id)).not.toContain(admins.body.id);
    const adminList = (await api.call('GET', '/operations')).body.operations as Array<{ id: string }>;
    expect(adminList.map((o) => o.id)).toEqual(expect.arrayContaining([mine.body.id, admins.body.id]));
    // Its own it may cancel.
    const cancel = await api.call('POST', `/operations/${mine.body.id}/cancel`, { key: api.appKey });
    expect(cancel).toMatchObject({ status: 202, body: { status: 'cancelling' } });
  });

  it('creates a batch command over explicit devices, reads, lists and cancels it', async () => {
    const created = await api.call('POST', '/operations', {
      body: {
        filter: { deviceIds: ['e1'] },
        operation: { kind: 'command', command: { protocol: 'lwm2m', operation: 'read', path: '/3/0/0' } },
      },
    });
    expect(created.status).toBe(202);
    expect(created.headers?.location).toBe(`/operations/${created.body.id}`);
    expect(created.body).toMatchObject({
      status: 'running',
      total: 1,
      counts: { pending: 1 },
      progress: { finished: 0, total: 1, percent: 0 },
    });
    const got = await api.call('GET', `/operations/${created.body.id}`);
    expect(got.body.id).toBe(created.body.id);
    const targets = await api.call('GET', `/operations/${created.body.id}/targets`, {
      query: { status: 'pending' },
    });
    expect(targets.body.targets).toEqual([expect.objectContaining({ deviceId: 'e1', status: 'pending' })]);
    const list = await api.call('GET', '/operations');
    expect((list.body.operations as Array<{ id: string }>).map((o) => o.id)).toContain(created.body.id);
    const cancel = await api.call('POST', `/operations/${created.body.id}/cancel`);
    expect(cancel).toMatchObject({ status: 202, body: { status: 'cancelling' } });
    expect((await api.call('POST', `/operations/${created.body.id}/cancel`)).status).toBe(409);
    expect((await api.call('POST', `/operations/${created.body.id}/retry`)).status).toBe(409);
  });

  it('answers 404 for an unknown operation and 400 naming the field for bad input', async () => {
    expect((await api.call('GET', '/operations/nope')).status).toBe(404);
    expect((await api.call('GET', '/operations/nope/targets')).status).toBe(404);
    expect((await api.call('POST', '/operations/nope/retry')).status).toBe(404);
    const cases: Array<[unknown, string]> = [
      [
        {
          filter: { deviceIds: ['ghost'] },
          operation: { kind: 'command', command: { protocol: 'lwm2m', operation: 'read', path: '/3/0/0' } },
        },
        'filter.deviceIds',
      ],
      [
        {
          filter: { type: 'breaker' },
          operation: { kind: 'command', command: { protocol: 'lwm2m', operation: 'read', path: 'x' } },
        },
        'operation.command.path',
      ],
      [{ filter: { type: 'breaker' }, operation: { kind: 'firmware-update', packageId: 'p1' } }, 'operation'],
      [
        { filter: { type: 'breaker', color: 'red' }, operation: { kind: 'command', command: {} } },
        'filter.color',
      ],
    ];
    for (const [body, field] of cases) {
      const r = await api.call('POST', '/operations', { body });
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(r.body.error.field).toBe(field);
    }
    const created = await api.call('POST', '/operations', {
      body: {
        filter: { type: 'breaker' },
        operation: { kind: 'command', command: { protocol: 'sparkplug', operation: 'rebirth' } },
      },
    });
    const bad = await api.call('GET', `/operations/${created.body.id}/targets`, {
      query: { status: 'weird' },
    });
    expect(bad.status).toBe(400);
    expect(bad.body.error.field).toBe('status');
    // No package store here (as in AWS today): uploads are refused, the list is empty.
    expect(
      (await api.call('POST', '/firmware', { body: { name: 'a.bin', version: '1', contentBase64: 'AA==' } }))
        .status,
    ).toBe(404);
    expect((await api.call('GET', '/firmware')).body).toEqual({ packages: [] });
  });
});

describe('GET /packages/{id}/{name} (a device fetching firmware by its signed path)', () => {
  const redirects: Array<[string, Record<string, string | undefined>]> = [];
  const packages: PackageStore = {
    put: async () => {},
    get: async () => undefined,
    list: async () => [],
    downloadUri: async () => '',
    redirect: async (id, query) => {
      redirects.push([id, query]);
      if (query.s === 'good')
        return { status: 302, location: 'https://bucket.s3.amazonaws.com/firmware/p1.bin?X-Amz-Signature=1' };
      return query.s === 'gone' ? { status: 404 } : { status: 403 };
    },
  };
  const router = new Router<Principal>(async () => {
    throw new Error('the route is public: no credential is asked for');
  });
  registerOperationRoutes(router, {
    operations: {} as OperationService,
    packages,
    newId: () => 'x',
    clock: () => 0,
  });
  const get = (s: string) =>
    router.handle({
      method: 'GET',
      path: '/packages/p1/fw.bin',
      query: { e: '99', s },
      headers: {},
      body: undefined,
    });

  it('redirects to the bytes with no credential, and never caches the redirect', async () => {
    const out = await get('good');
    expect(out.status).toBe(302);
    expect(out.headers).toMatchObject({
      location: 'https://bucket.s3.amazonaws.com/firmware/p1.bin?X-Amz-Signature=1',
      'cache-control': 'no-store',
    });
    expect(redirects.at(-1)).toEqual(['p1', { e: '99', s: 'good' }]);
  });

  it('answers 403 for a bad or expired signature and 404 for a missing package', async () => {
    expect(await get('bad')).toMatchObject({ status: 403, body: { error: { code: 'FORBIDDEN' } } });
    expect(await get('gone')).toMatchObject({ status: 404, body: { error: { code: 'NOT_FOUND' } } });
  });

  it('answers 404 where packages are served by the local server itself (no redirect)', async () => {
    const out = await api.call('GET', '/packages/p1/fw.bin', { key: null, query: { e: '1', s: 'x' } });
    expect(out.status).toBe(404);
  });
});
