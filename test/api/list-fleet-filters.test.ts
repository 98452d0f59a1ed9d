/**
 * The fleet filter on the device-scoped list routes (issue 18): GET /events and GET /alerts take
 * `group`, `tag`, `protocol`, `online` (as GET /devices) and return only items of matching devices;
 * bad values are 400 naming the parameter; more than MAX_FLEET_DEVICES matches is a 400; an
 * application key still sees only its types.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_FLEET_DEVICES } from '../../functions/api/routes/fleet-scope.js';
import type { AlertTransition } from '../../functions/core/rules/index.js';
import { type Api, createApi, device, T0 } from './fixture.js';

let api: Api;
// x0..x5 breakers, y0..y1 env-sensors. Even index: north, site:a; odd: south, site:b. x0, x1 online.
const FLEET = [
  ...Array.from({ length: 6 }, (_, i) => ({ id: `x${i}`, type: 'breaker', i })),
  ...Array.from({ length: 2 }, (_, i) => ({ id: `y${i}`, type: 'env-sensor', i })),
];

function opening(id: string, deviceId: string, deviceType: string, at: number): AlertTransition {
  return {
    id,
    alertId: id,
    kind: 'open',
    ruleId: 'r',
    ruleRevision: 1,
    ruleName: 'r',
    severity: 'major',
    series: `${deviceId}|Voltage`,
    deviceId,
    deviceType,
    metric: 'Voltage',
    at,
    value: 260,
    reason: 'value > 250',
    actions: [],
  };
}

beforeAll(async () => {
  api = await createApi();
  let n = 0;
  for (const { id, type, i } of FLEET) {
    await api.registry.putDevice(
      device(id, type, {
        group: i % 2 === 0 ? 'north' : 'south',
        tags: { site: i % 2 === 0 ? 'a' : 'b' },
        protocols: ['sparkplug'],
        sparkplug: { group: 'g', online: type === 'breaker' && i < 2, devices: {} },
      }),
    );
    n++;
    await api.events.append([
      {
        id: `${String(T0 + 10 + n).padStart(15, '0')}-fleet-${id}`,
        type: 'birth',
        protocol: 'sparkplug',
        deviceId: id,
        deviceType: type,
        time: T0 + 10 + n,
      },
    ]);
    await api.alerts.record(opening(`al-${id}`, id, type, T0 + 10 + n), T0);
  }
});
afterAll(async () => api.close());

const sorted = (xs: string[]) => [...xs].sort();

/** Device ids of every alert over all pages. */
async function alertDevices(query: Record<string, string>, key?: string): Promise<string[]> {
  const out: string[] = [];
  let nextToken: string | undefined;
  for (let i = 0; i < 50; i++) {
    const res = await api.call('GET', '/alerts', {
      ...(key ? { key } : {}),
      query: { ...query, ...(nextToken ? { nextToken } : {}) },
    });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    const body = res.body as unknown as { alerts: Array<{ deviceId: string }>; nextToken?: string };
    out.push(...body.alerts.map((a) => a.deviceId));
    nextToken = body.nextToken;
    if (!nextToken) break;
  }
  return sorted(out);
}

/** Device ids of every event over all pages. */
async function eventDevices(query: Record<string, string>, key?: string): Promise<string[]> {
  const out: string[] = [];
  let since: string | undefined;
  for (let i = 0; i < 50; i++) {
    const res = await api.call('GET', '/events', {
      ...(key ? { key } : {}),
      query: { ...query, ...(since ? { since } : {}) },
    });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    out.push(...res.body.events.map((e) => e.deviceId));
    since = res.body.nextCursor;
    if (!since) break;
  }
  return sorted(out);
}

describe('GET /alerts with the fleet filter', () => {
  it('returns only alerts of matching devices, across pages', async () => {
    expect(await alertDevices({ group: 'north', limit: '2' })).toEqual(['x0', 'x2', 'x4', 'y0']);
    expect(await alertDevices({ group: 'north', tag: 'site:a' })).toEqual(['x0', 'x2', 'x4', 'y0']);
    expect(await alertDevices({ tag: 'site:b', deviceType: 'breaker' })).toEqual(['x1', 'x3', 'x5']);
    expect(await alertDevices({ online: 'true' })).toEqual(['x0', 'x1']);
    expect(await alertDevices({ online: 'false', group: 'south' })).toEqual(['x3', 'x5', 'y1']);
    // Without a fleet filter nothing changes: every alert, the fixture's included.
    expect((await alertDevices({})).length).toBe(FLEET.length);
  });

  it('returns nothing for a filter no device matches, or a deviceId outside it', async () => {
    expect(await alertDevices({ group: 'nowhere' })).toEqual([]);
    expect(await alertDevices({ tag: 'site:a,site2' })).toEqual([]);
    expect(await alertDevices({ protocol: 'lwm2m' })).toEqual([]);
    expect(await alertDevices({ deviceId: 'x1', group: 'north' })).toEqual([]);
    expect(await alertDevices({ deviceId: 'x1', group: 'south' })).toEqual(['x1']);
  });

  it('answers 400 naming the parameter', async () => {
    for (const [query, field] of [
      [{ group: '' }, 'group'],
      [{ tag: 'a:1,a:2' }, 'tag'],
      [{ protocol: 'coap' }, 'protocol'],
      [{ online: 'maybe' }, 'online'],
    ] as const) {
      const res = await api.call('GET', '/alerts', { query });
      expect(res.status, JSON.stringify(query)).toBe(400);
      expect(res.body.error).toMatchObject({ code: 'VALIDATION_FAILED', field });
    }
  });

  it('an application key sees only its types, whatever the fleet filter', async () => {
    expect(await alertDevices({ group: 'north' }, api.appKey)).toEqual(['x0', 'x2', 'x4']);
    expect(await alertDevices({ tag: 'site:b' }, api.appKey)).toEqual(['x1', 'x3', 'x5']);
    const other = await api.call('GET', '/alerts', {
      key: api.appKey,
      query: { group: 'north', deviceType: 'env-sensor' },
    });
    expect(other.status).toBe(403);
  });
});

describe('GET /events with the fleet filter', () => {
  it('returns only events of matching devices, across pages', async () => {
    expect(await eventDevices({ group: 'north', limit: '2' })).toEqual(['x0', 'x2', 'x4', 'y0']);
    expect(await eventDevices({ tag: 'site:b', deviceType: 'breaker' })).toEqual(['x1', 'x3', 'x5']);
    // The fixture's b1 is an online breaker with a birth event too.
    expect(await eventDevices({ online: 'true', type: 'birth' })).toEqual(['b1', 'x0', 'x1']);
    expect(await eventDevices({ deviceType: 'env-sensor', group: 'south' })).toEqual(['y1']);
    expect(await eventDevices({ deviceId: 'x2', tag: 'site:a' })).toEqual(['x2']);
  });

  it('returns nothing for a filter no device matches, or a deviceId outside it', async () => {
    expect(await eventDevices({ group: 'nowhere' })).toEqual([]);
    expect(await eventDevices({ deviceId: 'x2', tag: 'site:b' })).toEqual([]);
  });

  it('answers 400 naming the parameter', async () => {
    for (const [query, field] of [
      [{ group: 'x'.repeat(1000) }, 'group'],
      [{ tag: ',' }, 'tag'],
      [{ protocol: 'coap' }, 'protocol'],
      [{ online: 'yes' }, 'online'],
      [{ deviceType: 'Not A Type' }, 'deviceType'],
    ] as const) {
      const res = await api.call('GET', '/events', { query });
      expect(res.status, JSON.stringify(query)).toBe(400);
      expect(res.body.error).toMatchObject({ code: 'VALIDATION_FAILED', field });
    }
  });

  it('an application key sees only its types, whatever the fleet filter', async () => {
    expect(await eventDevices({ group: 'north' }, api.appKey)).toEqual(['x0', 'x2', 'x4']);
    expect(await eventDevices({ online: 'false', group: 'south' }, api.appKey)).toEqual(['x3', 'x5']);
    const other = await api.call('GET', '/events', {
      key: api.appKey,
      query: { group: 'north', deviceType: 'env-sensor' },
    });
    expect(other.status).toBe(403);
  });
});

describe('the bound on matching devices', () => {
  it(`answers 400 naming the parameter when more than ${MAX_FLEET_DEVICES} devices match`, async () => {
    for (let i = 0; i <= MAX_FLEET_DEVICES; i++)
      await api.registry.putDevice(device(`big${i}`, 'env-sensor', { group: 'big' }));
    for (const path of ['/alerts', '/events']) {
      const res = await api.call('GET', path, { query: { group: 'big' } });
      expect(res.status, path).toBe(400);
      expect(res.body.error.field).toBe('group');
      expect(res.body.error.message).toContain(`more than ${MAX_FLEET_DEVICES}`);
    }
    // Exactly the bound is fine.
    await api.registry.deleteDevice('big0');
    expect((await api.call('GET', '/alerts', { query: { group: 'big' } })).status).toBe(200);
  });
});
