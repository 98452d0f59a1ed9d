/**
 * GET /devices filters (issue 18): type, group, tag, protocol, online, over pages; tags and group set
 * with PUT /devices/{id} (errors name the field); an application key sees only its types' devices,
 * whatever the filter.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN, type Api, createApi, device, T0 } from './fixture.js';

let api: Api;
beforeAll(async () => {
  api = await createApi();
  for (const t of ['meter', 'breaker'])
    if (!(await api.registry.getDeviceType(t)))
      await api.registry.putDeviceType({ id: t, name: t, capabilities: [], units: {} });
  for (let i = 0; i < 30; i++) {
    await api.registry.putDevice(
      device(`f${String(i).padStart(2, '0')}`, i % 2 ? 'meter' : 'breaker', {
        group: i < 10 ? 'north' : 'south',
        tags: { tier: i % 3 === 0 ? 'gold' : 'silver' },
        protocols: i % 5 === 0 ? ['lwm2m'] : ['sparkplug'],
        // Every 4th online on Sparkplug; every 5th registered on LwM2M, half of those expired.
        ...(i % 4 === 0 ? { sparkplug: { group: 'g', online: true, devices: {} } } : {}),
        ...(i % 5 === 0
          ? { lwm2m: { online: true, lifetime: 60, lastUpdate: i % 10 === 0 ? T0 : T0 - 120_000 } }
          : {}),
      }),
    );
  }
});
afterAll(async () => api.close());

/** Every id over all pages of GET /devices with the query. */
async function all(query: Record<string, string>, key: string = ADMIN): Promise<string[]> {
  const ids: string[] = [];
  let nextToken: string | undefined;
  for (let i = 0; i < 100; i++) {
    const res = await api.call('GET', '/devices', {
      key,
      query: { ...query, ...(nextToken ? { nextToken } : {}) },
    });
    expect(res.status).toBe(200);
    ids.push(
      ...(res.body.devices as Array<{ id: string }>).map((d) => d.id).filter((id) => id.startsWith('f')),
    );
    nextToken = res.body.nextToken as string | undefined;
    if (!nextToken) break;
  }
  return ids;
}
const ids = (f: (i: number) => boolean) =>
  Array.from({ length: 30 }, (_, i) => i)
    .filter(f)
    .map((i) => `f${String(i).padStart(2, '0')}`);

describe('GET /devices filters', () => {
  it('filters by type, group, tag and protocol, across pages', async () => {
    expect(await all({ type: 'meter', limit: '4' })).toEqual(ids((i) => i % 2 === 1));
    expect(await all({ group: 'north', limit: '3' })).toEqual(ids((i) => i < 10));
    expect(await all({ tag: 'tier:gold', limit: '2' })).toEqual(ids((i) => i % 3 === 0));
    expect(await all({ tag: 'tier', group: 'south', limit: '7' })).toEqual(ids((i) => i >= 10));
    expect(await all({ protocol: 'lwm2m', type: 'breaker' })).toEqual(ids((i) => i % 5 === 0 && i % 2 === 0));
  });

  it('filters by online now (an expired LwM2M registration is offline), pages full but for the last', async () => {
    const online = ids((i) => i % 4 === 0 || i % 10 === 0);
    expect(await all({ online: 'true', limit: '3' })).toEqual(online);
    expect(await all({ online: 'false', limit: '5' })).toEqual(ids((i) => !(i % 4 === 0 || i % 10 === 0)));
    const first = await api.call('GET', '/devices', { query: { online: 'true', limit: '3' } });
    expect((first.body.devices as unknown[]).length).toBe(3);
    expect(await all({ online: 'true', tag: 'tier:gold', type: 'breaker' })).toEqual(
      online.filter((id) => Number(id.slice(1)) % 3 === 0 && Number(id.slice(1)) % 2 === 0),
    );
  });

  it('answers 400 naming the parameter of a bad filter', async () => {
    for (const [query, field] of [
      [{ protocol: 'coap' }, 'protocol'],
      [{ online: 'maybe' }, 'online'],
      [{ tag: 'a:1,a:2' }, 'tag'],
      [{ type: 'no spaces' }, 'type'],
    ] as const) {
      const res = await api.call('GET', '/devices', { query });
      expect(res.status).toBe(400);
      expect(res.body.error).toMatchObject({ field });
    }
  });

  it('sets tags and group with PUT /devices/{id}, and names the field of a bad one', async () => {
    const ok = await api.call('PUT', '/devices/f01', {
      body: { tags: { tier: 'platinum', site: 'x' }, group: 'east' },
    });
    expect(ok.status).toBe(200);
    expect(await all({ tag: 'tier:platinum' })).toEqual(['f01']);
    expect(await all({ group: 'east' })).toEqual(['f01']);
    const bad = await api.call('PUT', '/devices/f01', { body: { tags: { tier: 7 } } });
    expect(bad.status).toBe(400);
    expect(String(bad.body.error?.field)).toMatch(/^tags/);
  });

  it('an application key sees only its types, whatever the filter', async () => {
    // The fixture's application is registered for breakers only.
    const seen = await all({ online: 'true' }, api.appKey);
    expect(seen).toEqual(ids((i) => i % 2 === 0 && (i % 4 === 0 || i % 10 === 0)));
    expect(await all({ tag: 'tier:gold' }, api.appKey)).toEqual(ids((i) => i % 2 === 0 && i % 3 === 0));
    const other = await api.call('GET', '/devices', { key: api.appKey, query: { type: 'meter' } });
    expect(other.status).toBe(403);
  });
});
