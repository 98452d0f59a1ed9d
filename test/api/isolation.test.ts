/**
 * Data isolation: the Smart Grid Monitor (registered for breakers) sees breakers only. Another type's
 * device is 403 by EVERY route — never a silently empty answer — and lists are filtered.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Api, createApi, device } from './fixture.js';

let api: Api;
beforeAll(async () => {
  api = await createApi();
  // An admin command on e1, so there is something to (not) see.
  await api.call('POST', '/devices/e1/commands', {
    body: { protocol: 'lwm2m', operation: 'read', path: '/3/0/0' },
  });
});
afterAll(async () => api.close());

describe('application isolation', () => {
  it('lists only its types (and pages across them), and reads its own devices by every route', async () => {
    const list = await api.call('GET', '/devices', { key: api.appKey });
    expect(list.body.devices.map((d) => d.id)).toEqual(['b1']);
    for (const path of [
      '/devices/b1',
      '/devices/b1/state',
      '/devices/b1/telemetry',
      '/devices/b1/commands',
    ]) {
      expect((await api.call('GET', path, { key: api.appKey })).status, path).toBe(200);
    }
    expect((await api.call('GET', '/devices/b1/state', { key: api.appKey })).body.points).toHaveLength(1);
    expect(
      (await api.call('GET', '/device-types', { key: api.appKey })).body.deviceTypes.map((t) => t.id),
    ).toEqual(['breaker']);
  });

  it('pages across several registered types with one cursor', async () => {
    const app = await api.call('POST', '/apps', {
      body: { name: 'Both', deviceTypes: ['env-sensor', 'breaker'] },
    });
    await api.registry.putDevice(device('b2', 'breaker'));
    await api.registry.putDevice(device('e2', 'env-sensor'));
    const seen: string[] = [];
    let token: string | undefined;
    do {
      const res = await api.call('GET', '/devices', {
        key: app.body.apiKey,
        query: { limit: '3', ...(token ? { nextToken: token } : {}) },
      });
      expect(res.status).toBe(200);
      expect(res.body.devices.length).toBeLessThanOrEqual(3);
      seen.push(...res.body.devices.map((d) => d.id));
      token = res.body.nextToken;
    } while (token);
    expect(seen).toEqual(['b1', 'b2', 'e1', 'e2']);
    // A cursor cannot be forged to reach a type the app is not registered for.
    const forged = Buffer.from(JSON.stringify({ t: 5 })).toString('base64url');
    const res = await api.call('GET', '/devices', { key: api.appKey, query: { nextToken: forged } });
    expect(res.status).toBe(400);
    expect(res.body.error.field).toBe('nextToken');
    await api.registry.deleteDevice('b2');
    await api.registry.deleteDevice('e2');
    await api.call('DELETE', `/apps/${app.body.app.id}`);
  });

  it("gets 403 for another type's device by every route, never a silently empty answer", async () => {
    const denied: Array<[string, string, Record<string, string>]> = [
      ['GET', '/devices', { type: 'env-sensor' }],
      ['GET', '/devices/e1', {}],
      ['GET', '/devices/e1/state', {}],
      ['GET', '/devices/e1/telemetry', {}],
      ['GET', '/devices/e1/telemetry', { metric: '/3303/0/5700', interval: '1m' }],
      ['GET', '/devices/e1/commands', {}],
      ['POST', '/devices/e1/commands', {}],
      ['GET', '/devices/e1/commands/cmd-1', {}],
      ['GET', '/events', { deviceId: 'e1' }],
      ['GET', '/device-types/env-sensor', {}],
    ];
    for (const [method, path, query] of denied) {
      const res = await api.call(method, path, {
        key: api.appKey,
        query,
        body: { protocol: 'lwm2m', operation: 'read', path: '/3/0/0' },
      });
      expect(res.status, `${method} ${path} ${JSON.stringify(query)}`).toBe(403);
      expect(res.body.error.code).toBe('FORBIDDEN');
    }
    // The denied POST published nothing and recorded no command.
    expect(api.published).toHaveLength(1);
    expect(await api.registry.listCommands('e1')).toHaveLength(1);
  });

  it('cannot tell a missing device from a forbidden one: same status, code and message by every route', async () => {
    // Prepare: the same device-specific routes for a device of another type and for no device at all.
    const routes: Array<[string, string, Record<string, string>]> = [
      ['GET', '/devices/{id}', {}],
      ['GET', '/devices/{id}/state', {}],
      ['GET', '/devices/{id}/telemetry', {}],
      ['GET', '/devices/{id}/commands', {}],
      ['POST', '/devices/{id}/commands', {}],
      ['GET', '/devices/{id}/commands/cmd-1', {}],
      ['GET', '/events', { deviceId: '{id}' }],
    ];
    const ask = async (id: string, [method, path, query]: (typeof routes)[number]) => {
      const res = await api.call(method, path.replace('{id}', id), {
        key: api.appKey,
        query: Object.fromEntries(Object.entries(query).map(([k, v]) => [k, v.replace('{id}', id)])),
        body: { protocol: 'lwm2m', operation: 'read', path: '/3/0/0' },
      });
      // The answers may differ only by the id they name.
      return { status: res.status, body: JSON.stringify(res.body).replaceAll(id, '<id>') };
    };
    for (const route of routes) {
      // Act
      const other = await ask('e1', route);
      const missing = await ask('no-such-device', route);
      // Assess
      expect(other.status, route.join(' ')).toBe(403);
      expect(missing, route.join(' ')).toEqual(other);
    }
  });

  it("sees only its types' events, while the admin sees all", async () => {
    const app = await api.call('GET', '/events', { key: api.appKey });
    expect(app.body.events.map((e) => `${e.type}:${e.deviceId}`)).toEqual(['birth:b1', 'death:b1']);
    const filtered = await api.call('GET', '/events', { key: api.appKey, query: { type: 'register' } });
    expect(filtered.body.events).toEqual([]);
    const admin = await api.call('GET', '/events');
    expect(admin.body.events).toHaveLength(3);
  });

  it('may command its own devices', async () => {
    const res = await api.call('POST', '/devices/b1/commands', {
      key: api.appKey,
      body: { protocol: 'sparkplug', operation: 'rebirth' },
    });
    expect(res.status).toBe(202);
    expect(api.published.at(-1)!.topic).toBe('spBv1.0/grid/NCMD/b1');
  });
});
