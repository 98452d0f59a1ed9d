import { describe, expect, it } from 'vitest';
import { Enricher } from '../../functions/core/enrich.js';
import type { Reading } from '../../functions/core/reading.js';
import type { Device } from '../../functions/core/registry.js';
import { InMemoryRegistry } from '../../functions/core/registry-memory.js';

const T0 = 1_700_000_000_000;
const reading = (deviceId: string, metric = 'm'): Reading => ({
  protocol: 'sparkplug',
  deviceId,
  group: 'plant',
  metric,
  type: 'Double',
  value: 1,
  time: T0,
  historical: false,
  transient: false,
  quality: 'GOOD',
});
const device = (id: string, type: string, extra: Partial<Device> = {}): Device => ({
  id,
  type,
  tags: {},
  status: 'active',
  protocols: ['sparkplug'],
  createdAt: T0,
  updatedAt: T0,
  ...extra,
});

async function setup(opts: { autoRegister?: boolean } = {}) {
  let now = T0;
  const registry = new InMemoryRegistry();
  await registry.putDeviceType({
    id: 'breaker',
    name: 'Smart circuit breaker',
    category: 'energy',
    capabilities: ['trip'],
    units: {},
  });
  await registry.putDevice(device('b1', 'breaker', { group: 'site-a' }));
  await registry.putDevice(device('b2', 'breaker'));
  await registry.putApplication({
    id: 'grid',
    name: 'Smart Grid Monitor',
    deviceTypes: ['breaker'],
    keyHash: 'x',
    keyPrefix: 'dp_app_x',
    createdAt: T0,
  });
  const enricher = new Enricher({
    registry,
    clock: () => now,
    ttlMs: 60_000,
    autoRegister: { enabled: opts.autoRegister ?? false, defaultType: 'unclassified' },
  });
  for (const k of Object.keys(registry.calls)) delete registry.calls[k];
  return { registry, enricher, advance: (ms: number) => (now += ms) };
}

describe('Enricher', () => {
  it('costs one getDevices call for a cold batch and none for a warm one', async () => {
    const { registry, enricher } = await setup();
    const batch = Array.from({ length: 100 }, (_, i) => reading(i % 2 ? 'b1' : 'b2', `m${i}`));
    await enricher.prepare(['b1', 'b2']);
    expect(registry.calls).toEqual({ getDevices: 1, getTypeWithApps: 1 });
    const { enriched } = enricher.enrich(batch);
    expect(enriched).toHaveLength(100);
    await enricher.prepare(['b1', 'b2']);
    expect(registry.calls).toEqual({ getDevices: 1, getTypeWithApps: 1 });
  });

  it('attaches type, category, capabilities, site (registry group, else Sparkplug group) and applications', async () => {
    const { enricher } = await setup();
    await enricher.prepare(['b1', 'b2']);
    const [a, b] = enricher.enrich([reading('b1'), reading('b2')]).enriched;
    expect(a?.enrichment).toEqual({
      deviceType: 'breaker',
      typeName: 'Smart circuit breaker',
      category: 'energy',
      capabilities: ['trip'],
      applications: ['grid'],
      site: 'site-a',
    });
    expect(b?.enrichment.site).toBe('plant');
  });

  it('reloads after the TTL', async () => {
    const { registry, enricher, advance } = await setup();
    await enricher.prepare(['b1']);
    advance(61_000);
    await enricher.prepare(['b1']);
    expect(registry.calls.getDevices).toBe(2);
  });

  it('reports unknown devices when auto-registration is off, and registers them with the default type when on', async () => {
    const off = await setup();
    await off.enricher.prepare(['ghost', 'b1']);
    expect(off.enricher.enrich([reading('ghost'), reading('b1')])).toMatchObject({
      unknownDevices: ['ghost'],
    });

    const on = await setup({ autoRegister: true });
    await on.enricher.prepare(['newbie']);
    const { enriched, unknownDevices } = on.enricher.enrich([reading('newbie')]);
    expect(unknownDevices).toEqual([]);
    expect(enriched[0]?.enrichment.deviceType).toBe('unclassified');
    expect((await on.registry.getDevice('newbie'))?.autoRegistered).toBe(true);
    expect(await on.registry.getDeviceType('unclassified')).toBeDefined();
  });

  it('keeps the registry view of devices current with one write per device per batch', async () => {
    const { registry, enricher } = await setup();
    await enricher.prepare(['b1']);
    enricher.record(
      'b1',
      'sparkplug',
      T0 + 5,
      [{ type: 'birth', protocol: 'sparkplug', deviceId: 'b1', time: T0 + 5, data: { bdSeq: '3' } }],
      'plant',
    );
    enricher.record('b1', 'lwm2m', T0 + 6, [
      {
        type: 'register',
        protocol: 'lwm2m',
        deviceId: 'b1',
        time: T0 + 6,
        data: { lifetime: 300, version: '1.2' },
      },
    ]);
    await enricher.flush();
    expect(registry.calls.updateDevice).toBe(1);
    const d = await registry.getDevice('b1');
    expect(d).toMatchObject({
      protocols: ['sparkplug', 'lwm2m'],
      lastSeen: T0 + 6,
      sparkplug: { online: true, bdSeq: '3', group: 'plant' },
      lwm2m: { online: true, lifetime: 300, version: '1.2' },
    });
  });
});
