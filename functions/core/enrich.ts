/**
 * Enrichment (the seeds' model): every reading carries its device type, the type's name, category and
 * capabilities, the site/group, and the applications registered for the type (routing and access).
 *
 * Read budget: `prepare()` loads a batch's cold devices with ONE getDevices call (BatchGetItem) and each
 * cold type with one getTypeWithApps query; warm entries cost nothing. Entries live `ttlMs` (default
 * 60 s) in an LRU of `maxEntries` devices; unknown devices are remembered for `negativeTtlMs` only, so a
 * device registered through the API starts flowing within seconds.
 *
 * Write budget: what messages say about a device (last seen, protocols, online flags, LwM2M registration
 * summary, Sparkplug metric catalog) is collected by `touch()`/`record()`/`enrich()` and written by
 * `flush()` — at most one UpdateItem per device per batch, and a lastSeen-only change only when it
 * advanced by at least `lastSeenResolutionMs`. An auto-registered device is created by the same
 * `flush()`, with what its batch said about it, in one conditional PutItem (not a create in `prepare()`
 * and then an update): a connect storm of N new devices costs N writes per ingest path, not 2N.
 * Protocols are written as a set-add (RegistryPort), so the two ingest paths, each with its own cache,
 * never overwrite each other's protocol.
 */
import { ConflictError } from './errors.js';
import type { Clock } from './processor.js';
import type { EnrichedReading, Enrichment, LifecycleEvent, Protocol, Reading } from './reading.js';
import {
  autoRegisteredDevice,
  CATALOG_LIMITS,
  type Device,
  type DeviceType,
  ensureDeviceType,
  type MetricCatalog,
  type RegistryPort,
} from './registry.js';
import { keyFraction } from './spread.js';
import { isValidEndpoint } from './topics.js';

/**
 * Default resolution of the registry's lastSeen: 5 minutes (ADR 0012 amendment 2). Online state is
 * written when it changes (births, deaths, registrations); lastSeen only says "seen recently". At 30 s it
 * was the largest DynamoDB write load of a steady fleet: ~270 UpdateItem/s for 10,000 devices, and
 * ~27,000 WRU/s for 1,000,000.
 */
export const LAST_SEEN_RESOLUTION_MS = 300_000;

export interface EnricherOptions {
  registry: RegistryPort;
  clock: Clock;
  /** How long a device or type stays cached (default 60 s). */
  ttlMs?: number;
  /** How long an unknown device is remembered as unknown (default 5 s). */
  negativeTtlMs?: number;
  /** Devices kept in the LRU (default 10,000); types are bounded to a tenth of it (at least 100). */
  maxEntries?: number;
  /** Unknown devices are created with `defaultType` (and the type too, if missing) when enabled. */
  autoRegister: { enabled: boolean; defaultType: string };
  /**
   * Skip lastSeen-only updates more frequent than this (default LAST_SEEN_RESOLUTION_MS). Each device's
   * own interval is between 1 and 1.5 times it, fixed per device, so a fleet that connected together
   * does not update every lastSeen in the same batch.
   */
  lastSeenResolutionMs?: number;
  /** Registry writes in flight during flush() (updates and auto-registration creates; default 16). */
  flushConcurrency?: number;
}

export interface EnrichResult {
  enriched: EnrichedReading[];
  /** Devices whose readings were not enriched: unregistered (auto-registration off) or disabled. */
  unknownDevices: string[];
  /** The subset of unknownDevices that exist but are disabled. */
  disabledDevices: string[];
}

/** What one message says about its device, for touch(). */
export interface DeviceObservation {
  protocol: Protocol;
  /** When the device was seen (epoch ms). */
  lastSeen: number;
  /** Online flag for this protocol (Sparkplug node online / LwM2M registered), when the message says. */
  online?: boolean;
  /** Sparkplug group, when the message carries one. */
  group?: string;
}

export interface EnricherStats {
  hits: number;
  misses: number;
  negativeHits: number;
  autoRegistered: number;
  evictions: number;
  writes: number;
}

interface CachedDevice {
  device: Device | undefined;
  at: number;
  /** The enrichment last built for this entry, and what it was built from (reused while they hold). */
  enrichment?: Enrichment;
  enrichedDevice?: Device;
  enrichedType?: CachedType | undefined;
  enrichedGroup?: string | undefined;
}

interface CachedType {
  enrichment: Omit<Enrichment, 'site'>;
  at: number;
}

type Patch = Partial<Omit<Device, 'id' | 'createdAt'>>;
type SparkplugView = NonNullable<Device['sparkplug']>;
type Lwm2mView = NonNullable<Device['lwm2m']>;

export class Enricher {
  private readonly devices = new Map<string, CachedDevice>();
  private readonly types = new Map<string, CachedType>();
  private readonly dirty = new Map<string, Patch>();
  /**
   * Auto-registered devices not written yet: the next flush() creates each with its batch's patch (a
   * failed flush leaves them here for the next one; the cache serves them meanwhile).
   */
  private readonly creating = new Map<string, Device>();
  /** Latest time each device was seen in this batch (folded into writes that happen anyway). */
  private readonly latest = new Map<string, number>();
  /** Devices whose metric catalog reached CATALOG_LIMITS (checked without counting on the hot path). */
  private readonly catalogFull = new Set<string>();
  private readonly ttlMs: number;
  private readonly negativeTtlMs: number;
  private readonly maxEntries: number;
  private readonly maxTypes: number;
  private readonly resolutionMs: number;
  private readonly concurrency: number;
  private defaultTypeReady = false;
  readonly stats: EnricherStats = {
    hits: 0,
    misses: 0,
    negativeHits: 0,
    autoRegistered: 0,
    evictions: 0,
    writes: 0,
  };

  constructor(private readonly opts: EnricherOptions) {
    this.ttlMs = opts.ttlMs ?? 60_000;
    this.negativeTtlMs = Math.min(opts.negativeTtlMs ?? 5_000, this.ttlMs);
    this.maxEntries = Math.max(1, opts.maxEntries ?? 10_000);
    this.maxTypes = Math.max(100, Math.floor(this.maxEntries / 10));
    this.resolutionMs = opts.lastSeenResolutionMs ?? LAST_SEEN_RESOLUTION_MS;
    this.concurrency = Math.max(1, opts.flushConcurrency ?? 16);
  }

  /** Loads every cold device of the batch (one getDevices call) and every cold type (one query each). */
  async prepare(deviceIds: string[]): Promise<void> {
    const now = this.opts.clock();
    const cold: string[] = [];
    for (const id of new Set(deviceIds)) {
      const c = this.devices.get(id);
      if (c && now - c.at < (c.device ? this.ttlMs : this.negativeTtlMs)) {
        if (c.device) this.stats.hits++;
        else this.stats.negativeHits++;
        this.devices.delete(id); // LRU: a hit becomes the most recent entry
        this.devices.set(id, c);
      } else cold.push(id);
    }
    if (cold.length > 0) {
      this.stats.misses += cold.length;
      const found = new Map(await this.opts.registry.getDevices(cold));
      const unknown = this.opts.autoRegister.enabled
        ? cold.filter((id) => !found.has(id) && isValidEndpoint(id))
        : [];
      if (unknown.length > 0) {
        // The default type must exist before any device of it (a failure fails the batch: retried).
        await this.ensureDefaultType();
        const type = this.opts.autoRegister.defaultType;
        for (const id of unknown) {
          // Already pending from an earlier batch whose flush failed: the same device, still to create.
          const device = this.creating.get(id) ?? autoRegisteredDevice(id, type, now);
          this.creating.set(id, device);
          found.set(id, device);
        }
      }
      for (const id of cold) this.remember(id, { device: found.get(id), at: now });
    }
    const coldTypes = new Set<string>();
    for (const id of deviceIds) {
      const type = this.devices.get(id)?.device?.type;
      if (type === undefined || coldTypes.has(type)) continue;
      const t = this.types.get(type);
      if (!t || now - t.at >= this.ttlMs) coldTypes.add(type);
    }
    await Promise.all(
      [...coldTypes].map(async (type) => {
        const { type: def, applications } = await this.opts.registry.getTypeWithApps(type);
        this.rememberType(type, { enrichment: typeEnrichment(type, def, applications), at: now });
      }),
    );
  }

  /**
   * Synchronous after prepare(). Readings of unregistered or disabled devices are left out and their
   * device ids returned in unknownDevices (the handler quarantines them). Sparkplug readings also feed
   * the device's metric catalog (written by flush()).
   */
  enrich(readings: Reading[]): EnrichResult {
    const enriched: EnrichedReading[] = [];
    const unknown = new Set<string>();
    const disabled = new Set<string>();
    const perDevice = new Map<string, { e: Enrichment | null; device: Device | undefined }>();
    // The readings of one message are contiguous: the device is looked up when it changes.
    let lastId: string | undefined;
    let e: Enrichment | null = null;
    let device: Device | undefined;
    // The Sparkplug metric catalog the last reading was checked against (undefined: look it up again).
    let catalog: MetricCatalog | undefined;
    let catalogSub: string | undefined;
    for (const r of readings) {
      if (r.deviceId !== lastId) {
        lastId = r.deviceId;
        catalog = undefined;
        let seen = perDevice.get(r.deviceId);
        if (seen === undefined) {
          const cached = this.devices.get(r.deviceId);
          const d = cached?.device;
          seen = {
            e: cached && d && d.status !== 'disabled' ? this.enrichmentFor(cached, d, r.group) : null,
            device: d,
          };
          if (d?.status === 'disabled') disabled.add(r.deviceId);
          perDevice.set(r.deviceId, seen);
        }
        e = seen.e;
        device = seen.device;
      }
      if (e === null) {
        unknown.add(r.deviceId);
        continue;
      }
      if (r.protocol === 'sparkplug') {
        if (catalog === undefined || catalogSub !== r.subDevice) {
          catalog = this.catalogOf(r.deviceId, device!, r.subDevice);
          catalogSub = r.subDevice;
        }
        const known = catalog !== undefined ? catalog[r.metric] : undefined;
        if (!(known && known.datatype === r.type && known.unit === r.unit)) {
          this.catalog(r, device!);
          catalog = undefined; // the catalog (or the patch holding it) may have changed
        }
      }
      // Readings are fresh objects from the decoders: attach in place instead of copying each one.
      (r as EnrichedReading).enrichment = e;
      enriched.push(r as EnrichedReading);
    }
    return { enriched, unknownDevices: [...unknown], disabledDevices: [...disabled] };
  }

  /** The cached type of a device (events carry it), if the device is known. */
  deviceType(deviceId: string): string | undefined {
    return this.devices.get(deviceId)?.device?.type;
  }

  /**
   * The enrichment of a known device as its readings carry it (the cached one; built from the cached
   * device and type when none of its readings was enriched yet). Lifecycle events take theirs from here.
   */
  enrichmentOf(deviceId: string): Enrichment | undefined {
    const cached = this.devices.get(deviceId);
    if (!cached?.device) return undefined;
    return cached.enrichment ?? this.enrichmentFor(cached, cached.device, undefined);
  }

  /** Forgets a device (after an API write), so the next batch reads it again. */
  invalidate(deviceId: string): void {
    this.devices.delete(deviceId);
  }

  /** Notes that a device was seen; written by flush() (once per device per batch). */
  touch(deviceId: string, seen: DeviceObservation): void {
    const device = this.devices.get(deviceId)?.device;
    if (!device) return;
    const patch = this.dirty.get(deviceId) ?? {};
    this.notice(device, patch, seen.protocol, seen.lastSeen);
    if (seen.online !== undefined) {
      if (seen.protocol === 'sparkplug') {
        const current = patch.sparkplug ?? device.sparkplug;
        if (current?.online !== seen.online || (seen.group !== undefined && current.group !== seen.group)) {
          this.sparkplugOf(device, patch, seen.group).online = seen.online;
        }
      } else if ((patch.lwm2m ?? device.lwm2m)?.online !== seen.online) {
        this.lwm2mOf(device, patch).online = seen.online;
      }
    }
    if (Object.keys(patch).length > 0) this.dirty.set(deviceId, patch);
  }

  /** Notes what a message and its lifecycle events said about its device (births, registrations). */
  record(deviceId: string, protocol: Protocol, time: number, events: LifecycleEvent[], group?: string): void {
    const device = this.devices.get(deviceId)?.device;
    if (!device) return;
    const patch = this.dirty.get(deviceId) ?? {};
    this.notice(device, patch, protocol, time);
    for (const e of events) {
      if (protocol === 'sparkplug' && (e.type === 'birth' || e.type === 'death')) {
        const sp = this.sparkplugOf(device, patch, group);
        const born = e.type === 'birth';
        if (e.subDevice === undefined) {
          sp.online = born;
          if (born) {
            sp.lastBirth = e.time;
            const bdSeq = e.data?.bdSeq;
            if (typeof bdSeq === 'string' || typeof bdSeq === 'number') sp.bdSeq = String(bdSeq);
          }
          // A node birth or death ends its devices' sessions (they re-announce with DBIRTH).
          for (const d of Object.values(sp.devices)) d.online = false;
        } else {
          const d = sp.devices[e.subDevice];
          if (d) d.online = born;
          else if (Object.keys(sp.devices).length < CATALOG_LIMITS.subDevices) {
            sp.devices[e.subDevice] = { online: born };
          }
        }
      }
      if (protocol === 'lwm2m' && ['register', 'update', 'deregister', 'expired'].includes(e.type)) {
        const lw = this.lwm2mOf(device, patch);
        lw.online = e.type === 'register' || e.type === 'update';
        if (lw.online) lw.lastUpdate = e.time;
        const d = e.data ?? {};
        if (typeof d.lifetime === 'number') lw.lifetime = d.lifetime;
        if (typeof d.version === 'string') lw.version = d.version;
        if (typeof d.binding === 'string') lw.binding = d.binding;
        if (Array.isArray(d.objects)) {
          lw.objects = (d.objects as NonNullable<Lwm2mView['objects']>).slice(0, CATALOG_LIMITS.objects);
        }
      }
    }
    if (Object.keys(patch).length > 0) this.dirty.set(deviceId, patch);
  }

  /**
   * Writes the noted device changes: one UpdateItem per changed device, `flushConcurrency` at a time.
   * A device whose write failed stays pending, so calling flush() again retries only what failed.
   */
  async flush(): Promise<void> {
    const now = this.opts.clock();
    const pending = [...this.dirty.entries()];
    // Devices to create that no message of the batch said anything about are created as they are.
    for (const id of this.creating.keys()) if (!this.dirty.has(id)) pending.push([id, {}]);
    for (const [id, patch] of pending) {
      // A write happens anyway: let it carry the newest lastSeen too.
      const seen = this.latest.get(id);
      const known = patch.lastSeen ?? this.devices.get(id)?.device?.lastSeen ?? 0;
      if (seen !== undefined && seen > known) patch.lastSeen = seen;
    }
    this.latest.clear();
    let failure: unknown;
    let next = 0;
    const worker = async () => {
      while (next < pending.length) {
        const [id, patch] = pending[next++]!;
        try {
          const creating = this.creating.get(id);
          const created = creating ? await this.create(id, creating, patch, now) : undefined;
          if (!created && Object.keys(patch).length > 0) {
            await this.opts.registry.updateDevice(id, { ...patch, updatedAt: now });
            this.stats.writes++;
          }
          if (this.dirty.get(id) === patch) this.dirty.delete(id);
          const cached = this.devices.get(id);
          if (created) {
            if (cached?.device) cached.device = created;
          } else if (creating) {
            // Someone else created it first (the other protocol's path, an operator): theirs wins and
            // this instance serves their record from now on (its type, group, status).
            this.remember(id, { device: await this.opts.registry.getDevice(id), at: now });
          } else if (cached?.device) cached.device = { ...cached.device, ...patch, updatedAt: now };
        } catch (error) {
          failure ??= error;
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.concurrency, pending.length) }, worker));
    if (failure !== undefined) throw failure;
  }

  /** Devices with changes not yet written (for tests and diagnostics). */
  pendingWrites(): number {
    return this.dirty.size;
  }

  // ---- internals ---------------------------------------------------------------------------------

  /**
   * The enrichment of a device's readings: one object shared by its readings, rebuilt only when the
   * device, its type's cache entry or the group it is built with changed.
   */
  private enrichmentFor(cached: CachedDevice, device: Device, group: string | undefined): Enrichment {
    const typeEntry = this.types.get(device.type);
    if (
      cached.enrichment !== undefined &&
      cached.enrichedDevice === device &&
      cached.enrichedType === typeEntry &&
      cached.enrichedGroup === group
    ) {
      return cached.enrichment;
    }
    const type = typeEntry?.enrichment ?? { deviceType: device.type, applications: [] };
    const site = device.group ?? group;
    const e = site === undefined ? { ...type } : { ...type, site };
    cached.enrichment = e;
    cached.enrichedDevice = device;
    cached.enrichedType = typeEntry;
    cached.enrichedGroup = group;
    return e;
  }

  /** lastSeen (at the configured resolution) and the protocol list. */
  private notice(device: Device, patch: Patch, protocol: Protocol, time: number): void {
    if (time > (this.latest.get(device.id) ?? 0)) this.latest.set(device.id, time);
    const known = patch.protocols ?? device.protocols;
    if (!known.includes(protocol)) patch.protocols = [...known, protocol];
    const last = patch.lastSeen ?? device.lastSeen;
    if (
      last === undefined ||
      time - last >= this.resolutionMs * (1 + keyFraction(device.id) / 2) ||
      (patch.lastSeen !== undefined && time > last)
    ) {
      patch.lastSeen = Math.max(last ?? 0, time);
    }
  }

  private sparkplugOf(device: Device, patch: Patch, group?: string): SparkplugView {
    if (!patch.sparkplug) {
      patch.sparkplug = device.sparkplug
        ? structuredClone(device.sparkplug)
        : { group: group ?? '', online: false, devices: {} };
    }
    if (group !== undefined && patch.sparkplug.group !== group) patch.sparkplug.group = group;
    return patch.sparkplug;
  }

  private lwm2mOf(device: Device, patch: Patch): Lwm2mView {
    patch.lwm2m ??= device.lwm2m ? structuredClone(device.lwm2m) : { online: false };
    return patch.lwm2m;
  }

  /** The metric catalog a device's readings are checked against: its pending patch's, else its own. */
  private catalogOf(
    deviceId: string,
    device: Device,
    subDevice: string | undefined,
  ): MetricCatalog | undefined {
    const sp = this.dirty.get(deviceId)?.sparkplug ?? device.sparkplug;
    return subDevice === undefined ? sp?.metrics : sp?.devices[subDevice]?.metrics;
  }

  /** Adds a Sparkplug metric (name → datatype, unit) to the device's bounded catalog when it is new. */
  private catalog(r: Reading, device: Device): void {
    const patch = this.dirty.get(r.deviceId);
    const sp = patch?.sparkplug ?? device.sparkplug;
    const current = r.subDevice === undefined ? sp?.metrics : sp?.devices[r.subDevice]?.metrics;
    const known = current?.[r.metric];
    if (known && known.datatype === r.type && known.unit === r.unit) return;
    if (!known && this.catalogFull.has(r.deviceId)) return;
    if (!known && sp && catalogSize(sp) >= CATALOG_LIMITS.metrics) {
      this.catalogFull.add(r.deviceId);
      return;
    }
    if (!known && r.subDevice !== undefined && sp && !sp.devices[r.subDevice]) {
      if (Object.keys(sp.devices).length >= CATALOG_LIMITS.subDevices) return;
    }
    const p = patch ?? {};
    const view = this.sparkplugOf(device, p, r.group);
    let owner: { metrics?: MetricCatalog } = view;
    if (r.subDevice !== undefined) {
      const sub = view.devices[r.subDevice] ?? { online: true };
      view.devices[r.subDevice] = sub;
      owner = sub;
    }
    const target = owner.metrics ?? {};
    owner.metrics = target;
    target[r.metric] = r.unit === undefined ? { datatype: r.type } : { datatype: r.type, unit: r.unit };
    if (!patch) this.dirty.set(r.deviceId, p);
  }

  private async ensureDefaultType(): Promise<void> {
    const type = this.opts.autoRegister.defaultType;
    if (!this.defaultTypeReady) {
      await ensureDeviceType(this.opts.registry, {
        id: type,
        name: type,
        category: 'auto-registered',
        capabilities: [],
        units: {},
        description: 'Default type for devices registered on their first message',
      });
      this.defaultTypeReady = true;
    }
  }

  /**
   * Creates an auto-registered device with its batch's patch, if nobody did first: the device written,
   * or undefined when another writer had (ConflictError; the caller then applies the patch as an update).
   * Either way it is no longer to create; any other failure leaves it to the next flush().
   */
  private async create(id: string, device: Device, patch: Patch, now: number): Promise<Device | undefined> {
    const created: Device = { ...device, ...patch, updatedAt: now };
    try {
      await this.opts.registry.putDevice(created, 'create');
    } catch (error) {
      if (!(error instanceof ConflictError)) throw error;
      this.creating.delete(id);
      return undefined;
    }
    this.creating.delete(id);
    this.stats.autoRegistered++;
    this.stats.writes++;
    return created;
  }

  private remember(id: string, entry: CachedDevice): void {
    this.catalogFull.delete(id);
    this.devices.delete(id);
    this.devices.set(id, entry);
    while (this.devices.size > this.maxEntries) {
      const oldest = this.devices.keys().next().value;
      if (oldest === undefined) break;
      this.devices.delete(oldest);
      this.stats.evictions++;
    }
  }

  private rememberType(id: string, entry: CachedType): void {
    this.types.delete(id);
    this.types.set(id, entry);
    while (this.types.size > this.maxTypes) {
      const oldest = this.types.keys().next().value;
      if (oldest === undefined) break;
      this.types.delete(oldest);
    }
  }
}

function typeEnrichment(
  type: string,
  def: DeviceType | undefined,
  applications: string[],
): Omit<Enrichment, 'site'> {
  const e: Omit<Enrichment, 'site'> = { deviceType: type, applications };
  if (def) {
    e.typeName = def.name;
    if (def.category !== undefined) e.category = def.category;
    e.capabilities = def.capabilities;
  }
  return e;
}

function catalogSize(sp: SparkplugView): number {
  let n = Object.keys(sp.metrics ?? {}).length;
  for (const d of Object.values(sp.devices)) n += Object.keys(d.metrics ?? {}).length;
  return n;
}
