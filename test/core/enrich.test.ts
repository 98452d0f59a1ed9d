import { describe, expect, it, vi } from 'vitest';
import { Enricher, type EnricherOptions } from '../../functions/core/enrich.js';
import { TransientError } from '../../functions/core/errors.js';
import type { Reading } from '../../functions/core/reading.js';
import { CATALOG_LIMITS, type Device } from '../../functions/core/registry.js';
import { InMemoryRegistry } from '../../functions/core/registry-memory.js';

const T0 = 1_700_000_000_000;
const reading = (deviceId: string, metric = 'm', extra: Partial<Reading> = {}): Reading => ({
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
  ...extra,
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

async function setup(
  opts: Partial<EnricherOptions> & { autoRegister?: EnricherOptions['autoRegister'] } = {},
) {
  let now = T0;
  const registry = new InMemoryRegistry();
  await registry.putDeviceType({
    id: 'breaker',
    name: 'Smart circuit breaker',
    category: 'energy',
    capabilities: ['trip'],
    units: {},
  });
  await registry.putDeviceType({ id: 'meter', name: 'Meter', capabilities: [], units: {} });
  await registry.putDevice(device('b1', 'breaker', { group: 'site-a' }));
  await registry.putDevice(device('b2', 'breaker'));
  await registry.putDevice(device('m1', 'meter'));
  const app = { keyPrefix: 'dp_app_x', createdAt: T0 };
  await registry.putApplication({
    ...app,
    id: 'grid',
    name: 'Grid',
    deviceTypes: ['breaker'],
    keyHash: 'h1',
  });
  await registry.putApplication({
    ...app,
    id: 'billing',
    name: 'Bill',
    deviceTypes: ['meter'],
    keyHash: 'h2',
  });
  await registry.putApplication({
    ...app,
    id: 'audit',
    name: 'Audit',
    deviceTypes: ['breaker', 'meter'],
    keyHash: 'h3',
  });
  const enricher = new Enricher({
    registry,
    clock: () => now,
    ttlMs: 60_000,
    autoRegister: { enabled: false, defaultType: 'unclassified' },
    ...opts,
  });
  registry.resetCalls();
  return { registry, enricher, advance: (ms: number) => (now += ms) };
}

describe('Enricher read budget', () => {
  it('N readings from M devices: one getDevices call with the M ids when cold, none when warm', async () => {
    // Prepare
    const { registry, enricher } = await setup();
    const spy = vi.spyOn(registry, 'getDevices');
    const ids = ['b1', 'b2', 'm1'];
    const batch = Array.from({ length: 300 }, (_, i) => reading(ids[i % 3]!, `m${i}`));
    // Act
    await enricher.prepare(batch.map((r) => r.deviceId));
    const cold = { ...registry.calls };
    const { enriched } = enricher.enrich(batch);
    await enricher.prepare(batch.map((r) => r.deviceId));
    // Assess
    expect(spy).toHaveBeenCalledTimes(1);
    expect(spy.mock.calls[0]?.[0].sort()).toEqual(['b1', 'b2', 'm1']);
    expect(cold).toEqual({ getDevices: 1, getTypeWithApps: 2 });
    expect(registry.calls).toEqual(cold);
    expect(enriched).toHaveLength(300);
    expect(enricher.stats).toMatchObject({ misses: 3, hits: 3 });
  });

  it('reads only the cold devices of a partly warm batch', async () => {
    const { registry, enricher } = await setup();
    const spy = vi.spyOn(registry, 'getDevices');
    await enricher.prepare(['b1']);
    await enricher.prepare(['b1', 'b2', 'm1']);
    expect(spy.mock.calls.map((c) => c[0])).toEqual([['b1'], ['b2', 'm1']]);
    // breaker was already warm from b1: only meter is queried the second time.
    expect(registry.calls.getTypeWithApps).toBe(2);
  });

  it('reloads a device and its type once the TTL has passed, not before', async () => {
    const { registry, enricher, advance } = await setup();
    await enricher.prepare(['b1']);
    advance(59_999);
    await enricher.prepare(['b1']);
    expect(registry.calls).toEqual({ getDevices: 1, getTypeWithApps: 1 });
    advance(1);
    await enricher.prepare(['b1']);
    expect(registry.calls).toEqual({ getDevices: 2, getTypeWithApps: 2 });
  });

  it('picks up registry changes after the TTL (type renamed, application added)', async () => {
    const { registry, enricher, advance } = await setup();
    await enricher.prepare(['m1']);
    await registry.putDeviceType({ id: 'meter', name: 'Power meter', capabilities: [], units: {} });
    await registry.putApplication({
      id: 'ops',
      name: 'Ops',
      deviceTypes: ['meter'],
      keyHash: 'h4',
      keyPrefix: 'x',
      createdAt: T0,
    });
    expect(enricher.enrich([reading('m1')]).enriched[0]?.enrichment.typeName).toBe('Meter');
    advance(60_000);
    await enricher.prepare(['m1']);
    expect(enricher.enrich([reading('m1')]).enriched[0]?.enrichment).toMatchObject({
      typeName: 'Power meter',
      applications: ['audit', 'billing', 'ops'],
    });
  });

  it('remembers unknown devices only for the negative TTL', async () => {
    const { registry, enricher, advance } = await setup({ negativeTtlMs: 5_000 });
    await enricher.prepare(['ghost']);
    await enricher.prepare(['ghost']);
    expect(registry.calls.getDevices).toBe(1);
    await registry.putDevice(device('ghost', 'meter'));
    advance(5_000);
    await enricher.prepare(['ghost']);
    expect(registry.calls.getDevices).toBe(2);
    expect(enricher.enrich([reading('ghost')]).enriched[0]?.enrichment.deviceType).toBe('meter');
  });

  it('is an LRU bounded by maxEntries: the least recently used device is evicted and read again', async () => {
    const { registry, enricher } = await setup({ maxEntries: 2 });
    const spy = vi.spyOn(registry, 'getDevices');
    await enricher.prepare(['b1', 'b2']);
    await enricher.prepare(['b1']); // b1 is now the most recent
    await enricher.prepare(['m1']); // evicts b2
    await enricher.prepare(['b1']); // still cached
    await enricher.prepare(['b2']); // read again
    expect(spy.mock.calls.map((c) => c[0])).toEqual([['b1', 'b2'], ['m1'], ['b2']]);
    expect(enricher.stats.evictions).toBe(2);
  });
});

/** b1's enrichment: its type's, with its registry group as the site. */
const B1_ENRICHMENT = {
  deviceType: 'breaker',
  typeName: 'Smart circuit breaker',
  category: 'energy',
  capabilities: ['trip'],
  applications: ['audit', 'grid'],
  site: 'site-a',
};

describe('Enricher output', () => {
  it('attaches type, category, capabilities, site (registry group, else Sparkplug group) and applications', async () => {
    const { enricher } = await setup();
    await enricher.prepare(['b1', 'b2', 'm1']);
    const [a, b, m] = enricher.enrich([
      reading('b1'),
      reading('b2'),
      reading('m1', 'x', { group: undefined }),
    ]).enriched;
    expect(a?.enrichment).toEqual(B1_ENRICHMENT);
    expect(b?.enrichment.site).toBe('plant');
    expect(m?.enrichment).toEqual({
      deviceType: 'meter',
      typeName: 'Meter',
      capabilities: [],
      applications: ['audit', 'billing'],
    });
  });

  it('shares one enrichment per device across calls until the device, its type or the group changes', async () => {
    const { enricher, advance, registry } = await setup();
    await enricher.prepare(['b2']);
    const first = enricher.enrich([reading('b2'), reading('b2', 'n')]).enriched;
    expect(first[0]?.enrichment).toBe(first[1]?.enrichment);
    const again = enricher.enrich([reading('b2')]).enriched[0]!;
    expect(again.enrichment).toBe(first[0]?.enrichment);
    const other = enricher.enrich([reading('b2', 'm', { group: 'yard' })]).enriched[0]!;
    expect(other.enrichment.site).toBe('yard');
    expect(first[0]?.enrichment.site).toBe('plant');
    await registry.putDevice(device('b2', 'meter', { group: 'site-q' }), 'upsert');
    advance(60_000);
    await enricher.prepare(['b2']);
    expect(enricher.enrich([reading('b2')]).enriched[0]?.enrichment).toMatchObject({
      deviceType: 'meter',
      site: 'site-q',
    });
    expect(first[0]?.enrichment).toMatchObject({ deviceType: 'breaker', site: 'plant' });
  });

  it("enrichmentOf(): what the device's readings carry; from the cached device before any reading; unknown: none", async () => {
    const { enricher } = await setup();
    await enricher.prepare(['b1', 'b2', 'nobody']);
    // b1 before any of its readings: its type's enrichment and its registry group as the site.
    expect(enricher.enrichmentOf('b1')).toEqual(B1_ENRICHMENT);
    const [r] = enricher.enrich([reading('b2', 'm', { group: 'yard' })]).enriched;
    expect(enricher.enrichmentOf('b2')).toBe(r?.enrichment);
    expect(enricher.enrichmentOf('b2')?.site).toBe('yard');
    expect(enricher.enrichmentOf('nobody')).toBeUndefined();
    expect(enricher.enrichmentOf('never-prepared')).toBeUndefined();
  });

  it('enriches a device whose type has no definition with the bare type id', async () => {
    const { registry, enricher } = await setup();
    await registry.putDevice(device('orphan', 'gone'));
    await enricher.prepare(['orphan']);
    expect(enricher.enrich([reading('orphan')]).enriched[0]?.enrichment).toEqual({
      deviceType: 'gone',
      applications: [],
      site: 'plant',
    });
  });

  it('reports readings of disabled devices as unknown (quarantined), naming them as disabled', async () => {
    const { registry, enricher } = await setup();
    await registry.putDevice(device('off', 'meter', { status: 'disabled' }));
    await enricher.prepare(['off', 'b1']);
    const out = enricher.enrich([reading('off'), reading('b1'), reading('off')]);
    expect(out.enriched.map((r) => r.deviceId)).toEqual(['b1']);
    expect(out.unknownDevices).toEqual(['off']);
    expect(out.disabledDevices).toEqual(['off']);
  });
});

describe('Enricher auto-registration', () => {
  it('off: unknown devices are reported and nothing is written', async () => {
    const { registry, enricher } = await setup();
    await enricher.prepare(['ghost', 'b1']);
    expect(enricher.enrich([reading('ghost'), reading('b1'), reading('ghost')])).toMatchObject({
      unknownDevices: ['ghost'],
    });
    expect(await registry.getDevice('ghost')).toBeUndefined();
    expect(registry.calls.putDevice).toBeUndefined();
  });

  it('on: creates each unknown device once with the default type (at flush, with what its batch said), and the type once', async () => {
    const { registry, enricher, advance } = await setup({
      autoRegister: { enabled: true, defaultType: 'unclassified' },
    });
    await enricher.prepare(['new1', 'new2']);
    // The readings are enriched at once; nothing is written before the batch's flush.
    const { enriched, unknownDevices } = enricher.enrich([reading('new1'), reading('new2')]);
    expect(registry.calls.putDevice).toBeUndefined();
    enricher.record('new1', 'sparkplug', T0 + 5, [
      { type: 'birth', protocol: 'sparkplug', deviceId: 'new1', time: T0 + 5, data: { bdSeq: 0 } },
    ]);
    await enricher.flush();
    advance(120_000);
    await enricher.prepare(['new1', 'new2']);
    expect(unknownDevices).toEqual([]);
    expect(enriched.map((r) => r.enrichment.deviceType)).toEqual(['unclassified', 'unclassified']);
    // One write per device: the create carries the batch's birth (no create-then-update).
    expect(registry.calls.putDevice).toBe(2);
    expect(registry.calls.updateDevice).toBeUndefined();
    expect(registry.calls.putDeviceType).toBe(1);
    expect(await registry.getDevice('new1')).toMatchObject({
      type: 'unclassified',
      autoRegistered: true,
      protocols: ['sparkplug'],
      sparkplug: { online: true, lastBirth: T0 + 5, bdSeq: '0' },
    });
    expect(await registry.getDevice('new2')).toMatchObject({ type: 'unclassified', autoRegistered: true });
    expect(await registry.getDeviceType('unclassified')).toMatchObject({ category: 'auto-registered' });
    expect(enricher.stats.autoRegistered).toBe(2);
  });

  it('on: keeps an existing default type as the operator defined it', async () => {
    const { registry, enricher } = await setup({ autoRegister: { enabled: true, defaultType: 'meter' } });
    await enricher.prepare(['new1']);
    expect(registry.calls.putDeviceType).toBeUndefined();
    expect((await registry.getDeviceType('meter'))?.name).toBe('Meter');
    expect(enricher.enrich([reading('new1')]).enriched[0]?.enrichment.applications).toEqual([
      'audit',
      'billing',
    ]);
  });

  it('on: if another writer registered the device first, its record wins (patched, not replaced) and is served from then on', async () => {
    const { registry, enricher, advance } = await setup({
      autoRegister: { enabled: true, defaultType: 'unclassified' },
    });
    await enricher.prepare(['racer']);
    enricher.enrich([reading('racer')]);
    // Another writer (the other protocol's path, an operator) creates it before our flush.
    await registry.putDevice(device('racer', 'breaker', { group: 'site-z' }));
    enricher.record('racer', 'lwm2m', T0 + 5, [
      { type: 'register', protocol: 'lwm2m', deviceId: 'racer', time: T0 + 5, data: { lifetime: 60 } },
    ]);
    await enricher.flush();
    const stored = await registry.getDevice('racer');
    expect(stored).toMatchObject({ type: 'breaker', group: 'site-z', lwm2m: { online: true, lifetime: 60 } });
    expect(stored?.autoRegistered).toBeUndefined();
    expect(enricher.stats.autoRegistered).toBe(0);
    advance(1000);
    await enricher.prepare(['racer']);
    expect(enricher.enrich([reading('racer')]).enriched[0]?.enrichment).toMatchObject({
      deviceType: 'breaker',
      site: 'site-z',
    });
  });
});

describe('Enricher connect storm', () => {
  it('creates the unknown devices of a batch concurrently at flush, bounded by flushConcurrency', async () => {
    const { registry, enricher } = await setup({
      autoRegister: { enabled: true, defaultType: 'unclassified' },
      flushConcurrency: 8,
    });
    let inFlight = 0;
    let peak = 0;
    const put = registry.putDevice.bind(registry);
    vi.spyOn(registry, 'putDevice').mockImplementation(async (d, mode) => {
      inFlight++;
      peak = Math.max(peak, inFlight);
      await new Promise((r) => setImmediate(r));
      inFlight--;
      return put(d, mode);
    });
    const ids = Array.from({ length: 100 }, (_, i) => `storm-${i}`);
    await enricher.prepare(ids);
    expect(enricher.enrich(ids.map((id) => reading(id))).unknownDevices).toEqual([]);
    await enricher.flush();
    expect(peak).toBe(8);
    expect(enricher.stats.autoRegistered).toBe(100);
    expect(await registry.getDevice('storm-99')).toMatchObject({ autoRegistered: true });
  });

  it('a failed create keeps the devices created, and the next flush creates only the rest', async () => {
    const { registry, enricher } = await setup({
      autoRegister: { enabled: true, defaultType: 'unclassified' },
    });
    const put = registry.putDevice.bind(registry);
    const spy = vi.spyOn(registry, 'putDevice').mockImplementation(async (d, mode) => {
      if (d.id === 'n3') throw new TransientError('Throttled', 'throttled');
      return put(d, mode);
    });
    const ids = ['n1', 'n2', 'n3', 'n4'];
    await enricher.prepare(ids);
    await expect(enricher.flush()).rejects.toThrow('throttled');
    expect(enricher.stats.autoRegistered).toBe(3);
    spy.mockImplementation(put);
    spy.mockClear();
    // A later batch (the device still served from the cache) flushes again: only n3 is written.
    await enricher.prepare(ids);
    expect(enricher.enrich(ids.map((id) => reading(id))).unknownDevices).toEqual([]);
    await enricher.flush();
    expect(spy.mock.calls.map(([d]) => d.id)).toEqual(['n3']);
    expect(await registry.getDevice('n3')).toMatchObject({ autoRegistered: true });
  });

  it('a device still to create that left the cache is created once, not twice', async () => {
    const { registry, enricher, advance } = await setup({
      autoRegister: { enabled: true, defaultType: 'unclassified' },
    });
    const put = registry.putDevice.bind(registry);
    const spy = vi
      .spyOn(registry, 'putDevice')
      .mockRejectedValueOnce(new TransientError('Throttled', 'throttled'));
    await enricher.prepare(['late']);
    await expect(enricher.flush()).rejects.toThrow('throttled');
    advance(120_000); // the cache entry expired: the next batch reads the registry (not there yet)
    spy.mockImplementation(put);
    await enricher.prepare(['late']);
    await enricher.flush();
    expect(spy.mock.calls.filter(([d]) => d.id === 'late')).toHaveLength(2); // the failed one, then one
    expect(await registry.getDevice('late')).toMatchObject({ autoRegistered: true });
    expect(enricher.stats.autoRegistered).toBe(1);
  });
});

describe('Enricher device bookkeeping', () => {
  it('touch(): one UpdateItem per device per batch, and lastSeen only when it advanced by the device interval (1-1.5 × the resolution)', async () => {
    const { registry, enricher } = await setup({ lastSeenResolutionMs: 30_000 });
    await registry.updateDevice('b1', { lastSeen: T0 });
    await enricher.prepare(['b1', 'b2']);
    const spy = vi.spyOn(registry, 'updateDevice');
    // b1 was seen 10 s ago: nothing to write. b2 was never seen: written once for three touches.
    enricher.touch('b1', { protocol: 'sparkplug', lastSeen: T0 + 10_000 });
    for (const dt of [1, 2, 3]) enricher.touch('b2', { protocol: 'sparkplug', lastSeen: T0 + dt });
    await enricher.flush();
    expect(spy.mock.calls.map((c) => c[0])).toEqual(['b2']);
    expect((await registry.getDevice('b2'))?.lastSeen).toBe(T0 + 3);
    // Next batch: b1 40 s after its last write → written.
    enricher.touch('b1', { protocol: 'sparkplug', lastSeen: T0 + 45_000 });
    enricher.touch('b2', { protocol: 'sparkplug', lastSeen: T0 + 4 });
    await enricher.flush();
    expect(spy.mock.calls.map((c) => c[0])).toEqual(['b2', 'b1']);
    expect((await registry.getDevice('b1'))?.lastSeen).toBe(T0 + 45_000);
  });

  it('touch(): adds a newly seen protocol and its online flag', async () => {
    const { registry, enricher } = await setup();
    await enricher.prepare(['b1']);
    enricher.touch('b1', { protocol: 'lwm2m', lastSeen: T0, online: true });
    await enricher.flush();
    expect(await registry.getDevice('b1')).toMatchObject({
      protocols: ['sparkplug', 'lwm2m'],
      lwm2m: { online: true },
    });
    enricher.touch('b1', { protocol: 'lwm2m', lastSeen: T0 + 1, online: true });
    expect(enricher.pendingWrites()).toBe(0);
  });

  it('record(): births and registrations become one write per device', async () => {
    const { registry, enricher } = await setup();
    await enricher.prepare(['b1']);
    enricher.record(
      'b1',
      'sparkplug',
      T0 + 5,
      [
        { type: 'birth', protocol: 'sparkplug', deviceId: 'b1', time: T0 + 5, data: { bdSeq: '3' } },
        { type: 'birth', protocol: 'sparkplug', deviceId: 'b1', subDevice: 'relay', time: T0 + 5 },
      ],
      'plant',
    );
    enricher.record('b1', 'lwm2m', T0 + 6, [
      {
        type: 'register',
        protocol: 'lwm2m',
        deviceId: 'b1',
        time: T0 + 6,
        data: { lifetime: 300, version: '1.2', binding: 'M', objects: [{ id: 3, instances: [0] }] },
      },
    ]);
    await enricher.flush();
    expect(registry.calls.updateDevice).toBe(1);
    expect(await registry.getDevice('b1')).toMatchObject({
      protocols: ['sparkplug', 'lwm2m'],
      lastSeen: T0 + 6,
      sparkplug: {
        online: true,
        bdSeq: '3',
        group: 'plant',
        lastBirth: T0 + 5,
        devices: { relay: { online: true } },
      },
      lwm2m: {
        online: true,
        lifetime: 300,
        version: '1.2',
        binding: 'M',
        objects: [{ id: 3, instances: [0] }],
      },
    });
    // A node death takes its devices offline too.
    enricher.record('b1', 'sparkplug', T0 + 7, [
      { type: 'death', protocol: 'sparkplug', deviceId: 'b1', time: T0 + 7 },
    ]);
    await enricher.flush();
    expect((await registry.getDevice('b1'))?.sparkplug).toMatchObject({
      online: false,
      devices: { relay: { online: false } },
    });
  });

  it('keeps a bounded Sparkplug metric catalog, written once per new metric', async () => {
    const { registry, enricher } = await setup();
    await enricher.prepare(['b1']);
    enricher.enrich([
      reading('b1', 'Voltage', { unit: 'V' }),
      reading('b1', 'Voltage', { unit: 'V' }),
      reading('b1', 'State', { subDevice: 'relay', type: 'Boolean', value: true }),
    ]);
    await enricher.flush();
    expect((await registry.getDevice('b1'))?.sparkplug).toMatchObject({
      metrics: { Voltage: { datatype: 'Double', unit: 'V' } },
      devices: { relay: { metrics: { State: { datatype: 'Boolean' } } } },
    });
    enricher.enrich([reading('b1', 'Voltage', { unit: 'V' })]);
    expect(enricher.pendingWrites()).toBe(0);

    const many = Array.from({ length: CATALOG_LIMITS.metrics + 50 }, (_, i) => reading('b1', `x${i}`));
    enricher.enrich(many);
    await enricher.flush();
    const sp = (await registry.getDevice('b1'))?.sparkplug;
    const size = Object.keys(sp?.metrics ?? {}).length + Object.keys(sp?.devices.relay?.metrics ?? {}).length;
    expect(size).toBe(CATALOG_LIMITS.metrics);
  });

  it('flush(): a failed write stays pending and is retried alone', async () => {
    const { registry, enricher } = await setup();
    await enricher.prepare(['b1', 'b2']);
    enricher.touch('b1', { protocol: 'lwm2m', lastSeen: T0 });
    enricher.touch('b2', { protocol: 'lwm2m', lastSeen: T0 });
    const spy = vi
      .spyOn(registry, 'updateDevice')
      .mockRejectedValueOnce(new TransientError('AWS_TRANSIENT', 'throttled'));
    await expect(enricher.flush()).rejects.toBeInstanceOf(TransientError);
    expect(enricher.pendingWrites()).toBe(1);
    await enricher.flush();
    expect(spy).toHaveBeenCalledTimes(3);
    expect(enricher.pendingWrites()).toBe(0);
    expect((await registry.getDevice('b1'))?.protocols).toContain('lwm2m');
    expect((await registry.getDevice('b2'))?.protocols).toContain('lwm2m');
  });
});
