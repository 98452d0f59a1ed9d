/**
 * Enrichment (the seeds' model): every reading carries its device type, the type's name, category and
 * capabilities, the site/group, the protocol, and the applications registered for the type. Lookups
 * are cached with a TTL; a cold batch costs one getDevices call (BatchGetItem) for all its unknown
 * devices plus one query per cold device type — never more than one read per device per batch.
 * The enricher also keeps the registry's view of each device (last seen, protocols, online flags,
 * LwM2M registration) current, with at most one update per device per batch.
 */
import type { Clock } from './processor.js';
import type { EnrichedReading, Enrichment, LifecycleEvent, Protocol, Reading } from './reading.js';
import type { Device, RegistryPort } from './registry.js';

export interface EnricherOptions {
  registry: RegistryPort;
  clock: Clock;
  ttlMs?: number;
  maxEntries?: number;
  autoRegister: { enabled: boolean; defaultType: string };
  /** Skip lastSeen-only updates more frequent than this. */
  lastSeenResolutionMs?: number;
}

interface CachedDevice {
  device: Device | undefined;
  at: number;
}

interface CachedType {
  enrichment: Omit<Enrichment, 'site'>;
  at: number;
}

export class Enricher {
  private readonly devices = new Map<string, CachedDevice>();
  private readonly types = new Map<string, CachedType>();
  private readonly dirty = new Map<string, Partial<Device>>();
  private readonly ttlMs: number;
  private readonly maxEntries: number;
  private readonly resolutionMs: number;

  constructor(private readonly opts: EnricherOptions) {
    this.ttlMs = opts.ttlMs ?? 60_000;
    this.maxEntries = opts.maxEntries ?? 10_000;
    this.resolutionMs = opts.lastSeenResolutionMs ?? 30_000;
  }

  /** Loads (at most once per TTL) every device of the batch and their types. */
  async prepare(deviceIds: string[]): Promise<void> {
    const now = this.opts.clock();
    const cold = deviceIds.filter((id) => {
      const c = this.devices.get(id);
      return !c || now - c.at > this.ttlMs;
    });
    if (cold.length > 0) {
      const found = await this.opts.registry.getDevices(cold);
      for (const id of cold) {
        let device = found.get(id);
        if (!device && this.opts.autoRegister.enabled) device = await this.autoRegister(id, now);
        this.remember(id, { device, at: now });
      }
    }
    const coldTypes = new Set<string>();
    for (const id of deviceIds) {
      const type = this.devices.get(id)?.device?.type;
      if (type === undefined) continue;
      const t = this.types.get(type);
      if (!t || now - t.at > this.ttlMs) coldTypes.add(type);
    }
    for (const type of coldTypes) {
      const { type: def, applications } = await this.opts.registry.getTypeWithApps(type);
      const enrichment: Omit<Enrichment, 'site'> = { deviceType: type, applications };
      if (def) {
        enrichment.typeName = def.name;
        if (def.category !== undefined) enrichment.category = def.category;
        enrichment.capabilities = def.capabilities;
      }
      this.types.set(type, { enrichment, at: now });
    }
  }

  /** Synchronous after prepare(). Readings of unregistered devices come back as unknownDevices. */
  enrich(readings: Reading[]): { enriched: EnrichedReading[]; unknownDevices: string[] } {
    const enriched: EnrichedReading[] = [];
    const unknown = new Set<string>();
    const perDevice = new Map<string, Enrichment | null>();
    for (const r of readings) {
      let e = perDevice.get(r.deviceId);
      if (e === undefined) {
        e = this.enrichmentFor(r.deviceId, r.group);
        perDevice.set(r.deviceId, e);
      }
      if (e === null) {
        unknown.add(r.deviceId);
        continue;
      }
      // Readings are fresh objects from the decoders: attach in place instead of copying each one.
      (r as EnrichedReading).enrichment = e;
      enriched.push(r as EnrichedReading);
    }
    return { enriched, unknownDevices: [...unknown] };
  }

  deviceType(deviceId: string): string | undefined {
    return this.devices.get(deviceId)?.device?.type;
  }

  /** Notes what a message told us about its device; written by flush() (once per device per batch). */
  record(deviceId: string, protocol: Protocol, time: number, events: LifecycleEvent[], group?: string): void {
    const device = this.devices.get(deviceId)?.device;
    if (!device) return;
    const patch = this.dirty.get(deviceId) ?? {};
    if (!device.protocols.includes(protocol) && !(patch.protocols ?? []).includes(protocol)) {
      patch.protocols = [...new Set([...(patch.protocols ?? device.protocols), protocol])];
    }
    if (device.lastSeen === undefined || time - device.lastSeen >= this.resolutionMs) {
      patch.lastSeen = Math.max(patch.lastSeen ?? 0, time);
    }
    for (const e of events) {
      if (protocol === 'sparkplug' && (e.type === 'birth' || e.type === 'death')) {
        const sp = patch.sparkplug ??
          structuredClone(device.sparkplug) ?? { group: group ?? '', online: false, devices: {} };
        if (e.subDevice === undefined) {
          sp.online = e.type === 'birth';
          if (e.type === 'birth') {
            sp.lastBirth = e.time;
            const bdSeq = e.data?.bdSeq;
            if (typeof bdSeq === 'string') sp.bdSeq = bdSeq;
            for (const d of Object.values(sp.devices)) d.online = false;
          } else for (const d of Object.values(sp.devices)) d.online = false;
        } else {
          sp.devices[e.subDevice] = { online: e.type === 'birth' };
        }
        if (group !== undefined) sp.group = group;
        patch.sparkplug = sp;
      }
      if (protocol === 'lwm2m' && ['register', 'update', 'deregister', 'expired'].includes(e.type)) {
        const lw = patch.lwm2m ?? structuredClone(device.lwm2m) ?? { online: false };
        lw.online = e.type === 'register' || e.type === 'update';
        if (e.type === 'register' || e.type === 'update') lw.lastUpdate = e.time;
        const d = e.data ?? {};
        if (typeof d.lifetime === 'number') lw.lifetime = d.lifetime;
        if (typeof d.version === 'string') lw.version = d.version;
        if (typeof d.binding === 'string') lw.binding = d.binding;
        if (Array.isArray(d.objects)) lw.objects = d.objects as NonNullable<Device['lwm2m']>['objects'];
        patch.lwm2m = lw;
      }
    }
    if (Object.keys(patch).length > 0) this.dirty.set(deviceId, patch);
  }

  /** Writes the noted device changes: one UpdateItem per changed device. */
  async flush(): Promise<void> {
    const now = this.opts.clock();
    const pending = [...this.dirty.entries()];
    this.dirty.clear();
    for (const [id, patch] of pending) {
      await this.opts.registry.updateDevice(id, { ...patch, updatedAt: now });
      const cached = this.devices.get(id);
      if (cached?.device) cached.device = { ...cached.device, ...patch };
    }
  }

  private enrichmentFor(deviceId: string, group: string | undefined): Enrichment | null {
    const device = this.devices.get(deviceId)?.device;
    if (!device || device.status === 'disabled') return null;
    const type = this.types.get(device.type)?.enrichment ?? { deviceType: device.type, applications: [] };
    const site = device.group ?? group;
    return site === undefined ? { ...type } : { ...type, site };
  }

  private async autoRegister(id: string, now: number): Promise<Device> {
    const type = this.opts.autoRegister.defaultType;
    if (!(await this.opts.registry.getDeviceType(type))) {
      await this.opts.registry.putDeviceType({
        id: type,
        name: type,
        category: 'auto-registered',
        capabilities: [],
        units: {},
        description: 'Default type for devices registered on first message',
      });
    }
    const device: Device = {
      id,
      type,
      tags: {},
      status: 'active',
      protocols: [],
      createdAt: now,
      updatedAt: now,
      autoRegistered: true,
    };
    await this.opts.registry.putDevice(device);
    return device;
  }

  private remember(id: string, entry: CachedDevice): void {
    this.devices.delete(id);
    this.devices.set(id, entry);
    // LRU by insertion order: evict the oldest entries beyond the bound.
    while (this.devices.size > this.maxEntries) {
      const oldest = this.devices.keys().next().value;
      if (oldest === undefined) break;
      this.devices.delete(oldest);
    }
  }
}
