/** /operations and /firmware through the router: admin only, errors named, the command path reused. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Api, createApi } from './fixture.js';

let api: Api;
beforeAll(async () => {
  api = await createApi();
});
afterAll(async () => api.close());

describe('operations routes', () => {
  it('are admin only: an application key gets 403, no key 401', async () => {
    for (const [method, path] of [
      ['GET', '/operations'],
      ['POST', '/operations'],
      ['GET', '/operations/x'],
      ['POST', '/operations/x/cancel'],
      ['GET', '/firmware'],
    ] as const) {
      expect((await api.call(method, path, { key: api.appKey, body: {} })).status, `${method} ${path}`).toBe(
        403,
      );
      expect((await api.call(method, path, { key: null })).status).toBe(401);
    }
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
