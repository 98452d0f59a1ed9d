/**
 * Every route of the API router: happy paths, pagination, JSON-safe values, authentication failures
 * and field-named validation errors. In-process over the fixture (test/api/fixture.ts).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN, type Api, createApi, device, reading, T0 } from './fixture.js';

let api: Api;
beforeAll(async () => {
  api = await createApi();
});
afterAll(async () => api.close());

/** A concrete path for a route pattern. */
const concrete = (pattern: string) =>
  pattern
    .replace('{id}', 'b1')
    .replace('{cmdId}', 'cmd-x')
    .replace('{type}', 'breaker')
    .replace('{appId}', 'app-1');

describe('public routes', () => {
  it('serves /health without a credential, with the counts from deps', async () => {
    const res = await api.call('GET', '/health', { key: null });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ status: 'ok', time: T0, online: { sparkplug: 1, lwm2m: 0 } });
  });

  it('answers 503 degraded when the counts fail, and still needs no key', async () => {
    const saved = api.deps.health;
    api.deps.health = async () => {
      throw new Error('registry down');
    };
    try {
      const res = await api.call('GET', '/health', { key: null });
      expect(res.status).toBe(503);
      expect(res.body).toMatchObject({ status: 'degraded', error: { code: 'INTERNAL' } });
    } finally {
      api.deps.health = saved;
    }
  });

  it('serves /openapi.json without a credential', async () => {
    const res = await api.call('GET', '/openapi.json', { key: null });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ openapi: '3.1.0' });
  });
});

describe('authentication', () => {
  it('answers 401 on every non-public route without a key, and with a wrong key', async () => {
    const routes = api.router.list().filter((r) => !r.public);
    expect(routes.length).toBeGreaterThanOrEqual(18);
    for (const r of routes) {
      const none = await api.call(r.method, concrete(r.pattern), { key: null, body: {} });
      expect(none.status, `${r.method} ${r.pattern} without key`).toBe(401);
      expect(none.body.error.code).toBe('UNAUTHORIZED');
      const wrong = await api.call(r.method, concrete(r.pattern), { key: 'dp_app_wrong', body: {} });
      expect(wrong.status, `${r.method} ${r.pattern} wrong key`).toBe(401);
    }
  });

  it('accepts x-api-key as well as Authorization: Bearer, and rejects a malformed Authorization', async () => {
    const viaHeader = await api.router.handle({
      method: 'GET',
      path: '/devices',
      query: {},
      headers: { 'x-api-key': ADMIN },
      body: undefined,
    });
    expect(viaHeader.status).toBe(200);
    const basic = await api.router.handle({
      method: 'GET',
      path: '/devices',
      query: {},
      headers: { authorization: `Basic ${ADMIN}` },
      body: undefined,
    });
    expect(basic.status).toBe(401);
  });

  it('answers 403 to an application key on every admin-only route', async () => {
    const adminOnly: Array<[string, string]> = [
      ['PUT', '/devices/b1'],
      ['DELETE', '/devices/b1'],
      ['PUT', '/device-types/breaker'],
      ['DELETE', '/device-types/breaker'],
      ['GET', '/apps'],
      ['POST', '/apps'],
      ['PUT', `/apps/${api.appId}`],
      ['DELETE', `/apps/${api.appId}`],
      ['POST', `/apps/${api.appId}/rotate-key`],
    ];
    for (const [method, path] of adminOnly) {
      const res = await api.call(method, path, {
        key: api.appKey,
        body: { type: 'breaker', name: 'x', deviceTypes: ['breaker'] },
      });
      expect(res.status, `${method} ${path}`).toBe(403);
      expect(res.body.error.code).toBe('FORBIDDEN');
    }
    // Nothing changed behind the 403s.
    expect((await api.call('GET', '/devices/b1')).body.type).toBe('breaker');
    expect((await api.call('GET', `/apps/${api.appId}`)).body.name).toBe('Smart Grid Monitor');
  });

  it('answers 404 for an unknown route and 405 for a wrong method', async () => {
    expect((await api.call('GET', '/nowhere')).status).toBe(404);
    expect((await api.call('PATCH', '/devices')).status).toBe(405);
  });
});

describe('devices', () => {
  it('lists with connectivity, filters by type, protocol, status and group', async () => {
    const all = await api.call('GET', '/devices');
    expect(all.body.devices.map((d) => d.id)).toEqual(['b1', 'e1']);
    expect(all.body.devices[0]!.connectivity).toEqual({ sparkplug: 'online', lwm2m: 'online' });
    const ids = async (query: Record<string, string>) =>
      (await api.call('GET', '/devices', { query })).body.devices.map((d) => d.id);
    expect(await ids({ type: 'breaker' })).toEqual(['b1']);
    expect(await ids({ protocol: 'sparkplug' })).toEqual(['b1']);
    expect(await ids({ protocol: 'lwm2m' })).toEqual(['b1', 'e1']);
    expect(await ids({ group: 'grid' })).toEqual(['b1']);
    expect(await ids({ status: 'disabled' })).toEqual([]);
  });

  it('pages with limit and nextToken until the end', async () => {
    for (const i of [1, 2, 3]) await api.registry.putDevice(device(`p${i}`, 'env-sensor'));
    const seen: string[] = [];
    let token: string | undefined;
    let pages = 0;
    do {
      const res = await api.call('GET', '/devices', {
        query: { limit: '2', type: 'env-sensor', ...(token ? { nextToken: token } : {}) },
      });
      expect(res.body.devices.length).toBeLessThanOrEqual(2);
      seen.push(...res.body.devices.map((d) => d.id));
      token = res.body.nextToken;
      pages++;
    } while (token);
    expect(seen).toEqual(['e1', 'p1', 'p2', 'p3']);
    expect(pages).toBe(2);
    for (const i of [1, 2, 3]) await api.registry.deleteDevice(`p${i}`);
  });

  it('shows an expired LwM2M registration as expired', async () => {
    api.clock.now = T0 + 301_000;
    try {
      expect((await api.call('GET', '/devices/e1')).body.connectivity).toEqual({ lwm2m: 'expired' });
    } finally {
      api.clock.now = T0;
    }
  });

  it('includes the Sparkplug metric catalog from the births', async () => {
    await api.sparkplugState.putNode(
      {
        group: 'grid',
        node: 'b1',
        version: 0,
        online: true,
        birthTime: T0,
        lastSeen: T0,
        recentSeqs: [],
        aliases: {},
        metrics: { Voltage: { name: 'Voltage', datatype: 10, unit: 'V' } },
        templates: {},
        devices: ['meter1'],
      },
      undefined,
    );
    const res = await api.call('GET', '/devices/b1');
    expect(res.body.sparkplugCatalog).toEqual({
      node: [{ name: 'Voltage', type: 'Double', unit: 'V' }],
      devices: { meter1: [] },
    });
  });

  it('creates (201), updates (200, partial: protocol state kept) and deletes (204) a device', async () => {
    const created = await api.call('PUT', '/devices/x9', {
      body: { type: 'env-sensor', name: 'Lab sensor', tags: { site: 'lab' } },
    });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ id: 'x9', type: 'env-sensor', status: 'active', protocols: [] });
    await api.registry.updateDevice('x9', { lastSeen: T0 + 5, protocols: ['lwm2m'] });
    const updated = await api.call('PUT', '/devices/x9', {
      body: { status: 'disabled', tags: { site: 'hq' } },
    });
    expect(updated.status).toBe(200);
    const stored = await api.registry.getDevice('x9');
    expect(stored).toMatchObject({
      name: 'Lab sensor',
      status: 'disabled',
      tags: { site: 'hq' },
      lastSeen: T0 + 5,
      protocols: ['lwm2m'],
    });
    expect((await api.call('DELETE', '/devices/x9')).status).toBe(204);
    expect((await api.call('GET', '/devices/x9')).status).toBe(404);
    expect((await api.call('DELETE', '/devices/x9')).status).toBe(404);
  });

  it('rejects bad device input naming the field', async () => {
    const cases: Array<[string, string, Record<string, string>, unknown, string]> = [
      ['GET', '/devices', { protocol: 'coap' }, undefined, 'protocol'],
      ['GET', '/devices', { status: 'gone' }, undefined, 'status'],
      ['GET', '/devices', { type: 'Bad Type' }, undefined, 'type'],
      ['GET', '/devices', { limit: '0' }, undefined, 'limit'],
      ['GET', '/devices', { limit: 'ten' }, undefined, 'limit'],
      ['GET', '/devices', { nextToken: '!!!' }, undefined, 'nextToken'],
      ['GET', '/devices/b%201', {}, undefined, 'id'],
      ['PUT', '/devices/new1', {}, {}, 'type'],
      ['PUT', '/devices/new1', {}, { type: 'missing-type' }, 'type'],
      ['PUT', '/devices/new1', {}, { type: 'breaker', tags: { k: 5 } }, 'tags.k'],
      ['PUT', '/devices/new1', {}, { type: 'breaker', status: 'on' }, 'status'],
      ['PUT', '/devices/new1', {}, { type: 'breaker', name: '' }, 'name'],
      ['PUT', '/devices/new1', {}, [1, 2], 'body'],
    ];
    for (const [method, path, query, body, field] of cases) {
      const res = await api.call(method, path, { query, body });
      expect(res.status, `${method} ${path} ${JSON.stringify(query)} ${JSON.stringify(body)}`).toBe(400);
      expect(res.body.error.field).toBe(field);
    }
    expect(await api.registry.getDevice('new1')).toBeUndefined();
  });
});

describe('state and telemetry', () => {
  it('returns the latest value of every metric', async () => {
    const res = await api.call('GET', '/devices/b1/state');
    expect(res.body.deviceId).toBe('b1');
    expect(res.body.points.map((p) => [p.metric, p.value])).toEqual([['Voltage', 233]]);
  });

  it('returns raw points in [from, to) with a cursor, ascending or descending', async () => {
    const q = { metric: 'Voltage', from: String(T0), to: String(T0 + 10_000) };
    const first = await api.call('GET', '/devices/b1/telemetry', { query: { ...q, limit: '3' } });
    expect(first.body.points.map((p) => p.value)).toEqual([230, 231, 232]);
    const rest = await api.call('GET', '/devices/b1/telemetry', {
      query: { ...q, nextToken: first.body.nextToken },
    });
    expect(rest.body.points.map((p) => p.value)).toEqual([233]);
    expect(rest.body.nextToken).toBeUndefined();
    const desc = await api.call('GET', '/devices/b1/telemetry', {
      query: { ...q, order: 'desc', limit: '2' },
    });
    expect(desc.body.points.map((p) => p.value)).toEqual([233, 232]);
    const iso = await api.call('GET', '/devices/b1/telemetry', {
      query: { from: new Date(T0 + 2000).toISOString(), to: new Date(T0 + 3000).toISOString() },
    });
    expect(iso.body.points.map((p) => p.value)).toEqual([232]);
  });

  it('returns buckets with the requested aggregations', async () => {
    const res = await api.call('GET', '/devices/b1/telemetry', {
      query: {
        metric: 'Voltage',
        from: String(T0),
        to: String(T0 + 4000),
        interval: '2s',
        agg: 'avg,min,max,count',
      },
    });
    expect(res.body.buckets).toEqual([
      { start: T0, count: 2, avg: 230.5, min: 230, max: 231 },
      { start: T0 + 2000, count: 2, avg: 232.5, min: 232, max: 233 },
    ]);
    const sums = await api.call('GET', '/devices/b1/telemetry', {
      query: { metric: 'Voltage', from: String(T0), to: String(T0 + 4000), interval: '1m', agg: 'sum' },
    });
    expect(sums.body.buckets).toEqual([{ start: T0 - (T0 % 60_000), count: 4, sum: 926 }]);
  });

  it('renders 64-bit integers beyond 2^53 as strings and bytes as base64', async () => {
    await api.store.write([
      reading('b1', 'breaker', 'Counter', 2n ** 63n + 5n, T0 + 100, { type: 'UInt64' }),
      reading('b1', 'breaker', 'Blob', new Uint8Array([1, 2, 255]), T0 + 100, { type: 'Bytes' }),
      reading('b1', 'breaker', 'Small', 42n, T0 + 100, { type: 'Int64' }),
    ]);
    const res = await api.call('GET', '/devices/b1/telemetry', {
      query: { from: String(T0 + 100), to: String(T0 + 101) },
    });
    const byMetric = Object.fromEntries(res.body.points.map((p) => [p.metric, p.value]));
    expect(byMetric).toEqual({ Counter: '9223372036854775813', Blob: 'AQL/', Small: 42 });
    // The body is plain JSON: it survives a stringify round trip unchanged.
    expect(JSON.parse(JSON.stringify(res.body))).toEqual(res.body);
  });

  it('rejects bad telemetry queries naming the field', async () => {
    const cases: Array<[Record<string, string>, string]> = [
      [{ interval: 'fast', metric: 'Voltage' }, 'interval'],
      [{ interval: '1m' }, 'metric'],
      [{ interval: '1m', metric: 'Voltage', agg: 'avg,median' }, 'agg'],
      [{ interval: '1s', metric: 'Voltage', from: '0', to: String(T0) }, 'interval'],
      [{ interval: '1m', metric: 'Voltage', limit: '5' }, 'limit'],
      [{ agg: 'avg' }, 'interval'],
      [{ from: 'yesterday' }, 'from'],
      [{ from: String(T0 + 10), to: String(T0) }, 'to'],
      [{ order: 'random' }, 'order'],
      [{ limit: '10001' }, 'limit'],
      [{ nextToken: 'not-a-token' }, 'nextToken'],
    ];
    for (const [query, field] of cases) {
      const res = await api.call('GET', '/devices/b1/telemetry', { query });
      expect(res.status, JSON.stringify(query)).toBe(400);
      expect(res.body.error.field, JSON.stringify(query)).toBe(field);
    }
  });

  it('answers 404 for the state of an unknown device (admin)', async () => {
    expect((await api.call('GET', '/devices/nobody/state')).status).toBe(404);
    expect((await api.call('GET', '/devices/nobody/telemetry')).status).toBe(404);
  });
});

describe('device types', () => {
  it('creates, reads, replaces, lists and deletes a type; refuses to delete one in use', async () => {
    const put = await api.call('PUT', '/device-types/meter', {
      body: { name: 'Meter', category: 'energy', capabilities: ['energy'], units: { Energy: 'Wh' } },
    });
    expect(put.status).toBe(201);
    expect((await api.call('GET', '/device-types/meter')).body).toEqual({
      id: 'meter',
      name: 'Meter',
      category: 'energy',
      capabilities: ['energy'],
      units: { Energy: 'Wh' },
    });
    const replaced = await api.call('PUT', '/device-types/meter', { body: { name: 'Energy meter' } });
    expect(replaced.status).toBe(200);
    expect((await api.call('GET', '/device-types/meter')).body).toEqual({
      id: 'meter',
      name: 'Energy meter',
      capabilities: [],
      units: {},
    });
    expect((await api.call('GET', '/device-types')).body.deviceTypes.map((t) => t.id)).toEqual([
      'breaker',
      'env-sensor',
      'meter',
    ]);
    const inUse = await api.call('DELETE', '/device-types/breaker');
    expect(inUse.status).toBe(409);
    expect(inUse.body.error.code).toBe('CONFLICT');
    expect((await api.call('DELETE', '/device-types/meter')).status).toBe(204);
    expect((await api.call('GET', '/device-types/meter')).status).toBe(404);
    expect((await api.call('DELETE', '/device-types/meter')).status).toBe(404);
  });

  it('rejects bad type input naming the field', async () => {
    const cases: Array<[string, unknown, string]> = [
      ['/device-types/Bad!', { name: 'x' }, 'type'],
      ['/device-types/ok', {}, 'name'],
      ['/device-types/ok', { name: 'x', capabilities: 'all' }, 'capabilities'],
      ['/device-types/ok', { name: 'x', units: { V: 1 } }, 'units.V'],
    ];
    for (const [path, body, field] of cases) {
      const res = await api.call('PUT', path, { body });
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(res.body.error.field).toBe(field);
    }
  });
});

describe('applications', () => {
  it('creates an app with its key shown once, never exposing the hash', async () => {
    const res = await api.call('POST', '/apps', {
      body: {
        name: 'Climate Dashboard',
        developer: 'Acme',
        platform: 'web',
        category: 'hvac',
        contact: 'ops@acme.test',
        deviceTypes: ['env-sensor'],
      },
    });
    expect(res.status).toBe(201);
    expect(res.body.apiKey).toMatch(/^dp_app_[A-Za-z0-9_-]{43}$/);
    expect(res.body.app).toMatchObject({
      name: 'Climate Dashboard',
      deviceTypes: ['env-sensor'],
      platform: 'web',
    });
    expect(res.body.app.keyPrefix).toBe(res.body.apiKey.slice(0, 12));
    expect(res.body.app).not.toHaveProperty('keyHash');
    const read = await api.call('GET', `/apps/${res.body.app.id}`);
    expect(read.body).not.toHaveProperty('keyHash');
    expect(read.body).not.toHaveProperty('apiKey');
    // The new key works and sees its own type.
    const list = await api.call('GET', '/devices', { key: res.body.apiKey });
    expect(list.body.devices.map((d) => d.id)).toEqual(['e1']);
    await api.call('DELETE', `/apps/${res.body.app.id}`);
  });

  it('lists apps, filtered by device type', async () => {
    const all = await api.call('GET', '/apps');
    expect(all.body.apps.map((a) => a.name)).toContain('Smart Grid Monitor');
    for (const a of all.body.apps) expect(a).not.toHaveProperty('keyHash');
    expect(
      (await api.call('GET', '/apps', { query: { deviceType: 'breaker' } })).body.apps.map((a) => a.name),
    ).toEqual(['Smart Grid Monitor']);
    expect((await api.call('GET', '/apps', { query: { deviceType: 'env-sensor' } })).body.apps).toEqual([]);
    expect((await api.call('GET', '/apps', { query: { deviceType: 'Bad Type' } })).body.error.field).toBe(
      'deviceType',
    );
  });

  it('replaces, rotates (old key stops working) and deletes an app', async () => {
    const tmp = await api.call('POST', '/apps', {
      body: { name: 'Temp', deviceTypes: ['env-sensor'], contact: 'a@b' },
    });
    const id = tmp.body.app.id;
    const oldKey = tmp.body.apiKey;
    const put = await api.call('PUT', `/apps/${id}`, {
      body: { name: 'Temp 2', deviceTypes: ['env-sensor', 'breaker'] },
    });
    expect(put.status).toBe(200);
    expect(put.body).toMatchObject({ name: 'Temp 2', deviceTypes: ['env-sensor', 'breaker'] });
    expect(put.body).not.toHaveProperty('contact');
    expect((await api.call('GET', '/devices', { key: oldKey })).body.devices.map((d) => d.id)).toEqual([
      'b1',
      'e1',
    ]);
    const rotated = await api.call('POST', `/apps/${id}/rotate-key`);
    expect(rotated.status).toBe(200);
    expect(rotated.body.apiKey).not.toBe(oldKey);
    expect(rotated.body.app.rotatedAt).toBe(T0);
    expect((await api.call('GET', '/devices', { key: oldKey })).status).toBe(401);
    expect((await api.call('GET', '/devices', { key: rotated.body.apiKey })).status).toBe(200);
    expect((await api.call('DELETE', `/apps/${id}`)).status).toBe(204);
    expect((await api.call('GET', '/devices', { key: rotated.body.apiKey })).status).toBe(401);
    expect((await api.call('GET', `/apps/${id}`)).status).toBe(404);
    expect(
      (await api.call('PUT', `/apps/${id}`, { body: { name: 'x', deviceTypes: ['breaker'] } })).status,
    ).toBe(404);
    expect((await api.call('POST', `/apps/${id}/rotate-key`)).status).toBe(404);
    expect((await api.call('DELETE', `/apps/${id}`)).status).toBe(404);
  });

  it('lets an app read itself but no other app', async () => {
    expect((await api.call('GET', `/apps/${api.appId}`, { key: api.appKey })).body.name).toBe(
      'Smart Grid Monitor',
    );
    const other = await api.call('POST', '/apps', { body: { name: 'Other', deviceTypes: ['breaker'] } });
    expect((await api.call('GET', `/apps/${other.body.app.id}`, { key: api.appKey })).status).toBe(403);
    await api.call('DELETE', `/apps/${other.body.app.id}`);
  });

  it('rejects bad app input naming the field', async () => {
    const cases: Array<[unknown, string]> = [
      [{ deviceTypes: ['breaker'] }, 'name'],
      [{ name: 'x' }, 'deviceTypes'],
      [{ name: 'x', deviceTypes: [] }, 'deviceTypes'],
      [{ name: 'x', deviceTypes: ['no-such-type'] }, 'deviceTypes'],
      [{ name: 'x', deviceTypes: ['breaker'], contact: 7 }, 'contact'],
      ['just a string', 'body'],
    ];
    const before = (await api.call('GET', '/apps')).body.apps.length;
    for (const [body, field] of cases) {
      const res = await api.call('POST', '/apps', { body });
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(res.body.error.field).toBe(field);
    }
    expect((await api.call('GET', '/apps')).body.apps.length).toBe(before);
    expect((await api.call('GET', '/apps/bad%20id')).body.error.field).toBe('id');
  });
});

describe('events', () => {
  it('pages oldest first with nextCursor → since, and filters by type and device', async () => {
    const first = await api.call('GET', '/events', { query: { limit: '2' } });
    expect(first.body.events.map((e) => e.type)).toEqual(['birth', 'register']);
    const rest = await api.call('GET', '/events', { query: { limit: '2', since: first.body.nextCursor } });
    expect(rest.body.events.map((e) => e.type)).toEqual(['death']);
    expect(rest.body.nextCursor).toBeUndefined();
    const births = await api.call('GET', '/events', { query: { type: 'birth,death' } });
    expect(births.body.events.map((e) => e.type)).toEqual(['birth', 'death']);
    const e1 = await api.call('GET', '/events', { query: { deviceId: 'e1' } });
    expect(e1.body.events.map((e) => e.type)).toEqual(['register']);
  });

  it('rejects bad event queries naming the field', async () => {
    const cases: Array<[Record<string, string>, string]> = [
      [{ type: 'birth,explosion' }, 'type'],
      [{ since: 'yesterday' }, 'since'],
      [{ limit: '1001' }, 'limit'],
      [{ deviceId: 'a b' }, 'deviceId'],
    ];
    for (const [query, field] of cases) {
      const res = await api.call('GET', '/events', { query });
      expect(res.status, JSON.stringify(query)).toBe(400);
      expect(res.body.error.field).toBe(field);
    }
  });
});
