/**
 * Batch-scoped write-back caches for protocol state. Within one Kinesis batch the records of a key
 * (one edge node, one endpoint) are processed in order by one invocation, so state can be read once,
 * changed in memory, and written once at the end of the batch — with the version read at the start as
 * the condition, so a concurrent writer still makes the flush fail (ConflictError → the batch is
 * retried). This turns two state round trips per message into two per key per batch.
 */
import { ConflictError } from './errors.js';
import type { PendingRequestStore, Registration, RegistrationStore } from './lwm2m/server/state.js';
import {
  copyNodeRecord,
  type DeviceKey,
  type DeviceRecord,
  type NodeKey,
  type NodeRecord,
  nodeStructureChanged,
  type SparkplugStateStore,
} from './sparkplug/host/state.js';
import { keyFraction } from './spread.js';

/** Writes in flight while a batch's state is flushed. */
const FLUSH_CONCURRENCY = 16;

/** Runs `fn` over `items`, at most `limit` at a time; the first failure rejects (after the rest settle). */
async function eachLimited<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failure: unknown;
  const worker = async () => {
    while (next < items.length && failure === undefined) {
      const item = items[next++]!;
      try {
        await fn(item);
      } catch (error) {
        failure ??= error;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (failure !== undefined) throw failure;
}

interface Entry<T> {
  /** Version in the backing store when loaded (undefined: did not exist). */
  base: number | undefined;
  value: T | undefined;
  dirty: boolean;
  /** Checked against the store in this batch (write-behind mode). */
  verified?: boolean;
}

abstract class WriteBack<T extends { version: number }> {
  protected readonly entries = new Map<string, Entry<T>>();

  protected async load(key: string, read: () => Promise<T | undefined>): Promise<T | undefined> {
    let e = this.entries.get(key);
    if (!e) {
      const value = await read();
      e = { base: value?.version, value, dirty: false };
      this.entries.set(key, e);
    }
    return e.value ? { ...e.value } : undefined;
  }

  protected stage(key: string, value: T, expected: number | undefined, what: string): void {
    const e = this.entries.get(key);
    const current = e?.value?.version;
    if (current !== expected) {
      throw new ConflictError(`${what}: cached version ${current ?? 'none'} ≠ ${expected ?? 'none'}`);
    }
    // Keep the version number of the backing store; the flush increments it once.
    this.entries.set(key, { base: e?.base, value: { ...value, version: expected ?? 0 }, dirty: true });
  }

  /** Remembers what a bulk read found (and what it did not) for keys not cached yet. */
  protected seed(key: string, value: T | undefined): void {
    if (!this.entries.has(key)) this.entries.set(key, { base: value?.version, value, dirty: false });
  }

  /** Writes the dirty entries; each written one is marked clean, so a retry after a failure writes only the rest. */
  protected async flushWith(write: (value: T, base: number | undefined) => Promise<void>): Promise<void> {
    const dirty = [...this.entries.values()].filter((e) => e.dirty && e.value);
    await eachLimited(dirty, FLUSH_CONCURRENCY, async (e) => {
      await write(e.value!, e.base);
      const version = (e.base ?? 0) + 1;
      e.base = version;
      e.value = { ...e.value!, version };
      e.dirty = false;
    });
    this.entries.clear();
  }

  /** Drops everything (start of a batch, or after a failed flush). */
  clear(): void {
    this.entries.clear();
  }
}

const nodeKey = (k: NodeKey) => `${k.group}/${k.node}`;
const deviceKey = (k: DeviceKey) => `${k.group}/${k.node}/${k.device}`;

/**
 * Default period of a Sparkplug node-state checkpoint in write-behind mode: 5 minutes (ADR 0012
 * amendment 2). A checkpoint only refreshes the stored seq and lastSeen, which nothing decides on (a
 * record read by another instance restarts its seq window anyway); at 60 s it was one PutItem per node
 * per 30-60 s, the second-largest write load of a steady fleet.
 */
export const NODE_CHECKPOINT_MS = 300_000;

/**
 * The Sparkplug host's state cache. Two modes, chosen by the backing port:
 *
 * - Batch-scoped write-back (ports without `getVersions`): every batch reads its keys once and writes
 *   every changed record once, conditional on the version it read.
 * - Write-behind (ports with `getVersions`, i.e. DynamoDB; ADR 0012): records stay cached across
 *   batches. At the start of a batch one bulk read of the versions of the batch's keys shows whether
 *   another writer (another Lambda instance) moved a record since; such records, and uncached ones, are
 *   read again. Only structural changes (birth, death, aliases, rebirth requests, devices) and a
 *   periodic checkpoint are written; seq and lastSeen updates of DATA messages stay in memory. A record
 *   read from the store may therefore carry an old seq: it is read "cold" — the seq window restarts
 *   at the next message — and written back at the end of the batch, which bumps its version so the
 *   previous holder sees the move. A gap exactly at a hand-over between instances goes unnoticed;
 *   in exchange a steady fleet costs no state write per message.
 */
export class CachedSparkplugStateStore implements SparkplugStateStore {
  private readonly nodes = new Map<string, NodeEntry>();
  private readonly devices = new Map<string, Entry<DeviceRecord>>();
  private readonly writeBehind: boolean;
  private readonly checkpointMs: number;
  private readonly maxEntries: number;
  private readonly clock: () => number;

  constructor(
    private readonly inner: SparkplugStateStore,
    opts: { checkpointMs?: number; maxEntries?: number; clock?: () => number } = {},
  ) {
    this.writeBehind = typeof inner.getVersions === 'function';
    this.checkpointMs = opts.checkpointMs ?? NODE_CHECKPOINT_MS;
    this.maxEntries = opts.maxEntries ?? 50_000;
    this.clock = opts.clock ?? Date.now;
  }

  /** Start of a batch: nothing cached is trusted until prefetch() has checked its version. */
  begin(): void {
    if (!this.writeBehind || this.nodes.size + this.devices.size > this.maxEntries) {
      this.clear();
      return;
    }
    for (const e of this.nodes.values()) e.verified = false;
    for (const e of this.devices.values()) e.verified = false;
  }

  /** Drops everything (after a failed flush: the next batch reads the store again). */
  clear(): void {
    this.nodes.clear();
    this.devices.clear();
  }

  async getNode(group: string, node: string): Promise<NodeRecord | undefined> {
    const key = `${group}/${node}`;
    let e = this.nodes.get(key);
    if (!e?.verified) {
      e = this.coldNode(key, await this.inner.getNode(group, node));
      this.nodes.set(key, e);
    }
    return e.value ? copyNodeRecord(e.value) : undefined;
  }

  async putNode(record: NodeRecord, expectedVersion: number | undefined): Promise<void> {
    const key = `${record.group}/${record.node}`;
    const e = this.nodes.get(key);
    if (e?.value?.version !== expectedVersion) {
      throw new ConflictError(
        `node: cached version ${e?.value?.version ?? 'none'} ≠ ${expectedVersion ?? 'none'}`,
      );
    }
    const value = copyNodeRecord(record);
    value.version = expectedVersion ?? 0;
    const structural = !e?.value || nodeStructureChanged(e.value, value);
    this.nodes.set(key, {
      base: e?.base,
      value,
      dirty: true,
      verified: true,
      mustWrite: (e?.mustWrite ?? false) || structural || !this.writeBehind,
      writtenAt: e?.writtenAt ?? 0,
      periodMs: e?.periodMs ?? this.periodOf(key),
    });
  }

  async getDevice(group: string, node: string, device: string): Promise<DeviceRecord | undefined> {
    const key = `${group}/${node}/${device}`;
    let e = this.devices.get(key);
    if (!e?.verified) {
      const value = await this.inner.getDevice(group, node, device);
      e = { base: value?.version, value, dirty: false, verified: true };
      this.devices.set(key, e);
    }
    return e.value ? { ...e.value } : undefined;
  }

  async putDevice(record: DeviceRecord, expectedVersion: number | undefined): Promise<void> {
    const key = `${record.group}/${record.node}/${record.device}`;
    const e = this.devices.get(key);
    if (e?.value?.version !== expectedVersion) {
      throw new ConflictError('device: cached version mismatch');
    }
    this.devices.set(key, {
      base: e?.base,
      value: { ...record, version: expectedVersion ?? 0 },
      dirty: true,
      verified: true,
    });
  }

  /**
   * Loads what the batch needs: in write-behind mode, checks the versions of cached records in bulk and
   * reads the moved and uncached ones; otherwise reads the batch's records (in bulk when the port can).
   */
  async prefetch(nodes: NodeKey[], devices: DeviceKey[]): Promise<void> {
    let staleNodes = nodes.filter((k) => !this.nodes.get(nodeKey(k))?.verified);
    let staleDevices = devices.filter((k) => !this.devices.get(deviceKey(k))?.verified);
    if (this.writeBehind) {
      const cachedNodes = staleNodes.filter((k) => this.nodes.has(nodeKey(k)));
      const cachedDevices = staleDevices.filter((k) => this.devices.has(deviceKey(k)));
      if (cachedNodes.length + cachedDevices.length > 0) {
        const versions = await this.inner.getVersions!(cachedNodes, cachedDevices);
        for (const k of cachedNodes) {
          const e = this.nodes.get(nodeKey(k))!;
          if (versions.nodes.get(nodeKey(k)) === e.base) e.verified = true;
        }
        for (const k of cachedDevices) {
          const e = this.devices.get(deviceKey(k))!;
          if (versions.devices.get(deviceKey(k)) === e.base) e.verified = true;
        }
        staleNodes = staleNodes.filter((k) => !this.nodes.get(nodeKey(k))?.verified);
        staleDevices = staleDevices.filter((k) => !this.devices.get(deviceKey(k))?.verified);
      }
    }
    if (staleNodes.length + staleDevices.length === 0) return;
    if (!this.inner.getMany) {
      await eachLimited(
        staleNodes,
        FLUSH_CONCURRENCY,
        async (k) => void (await this.getNode(k.group, k.node)),
      );
      await eachLimited(
        staleDevices,
        FLUSH_CONCURRENCY,
        async (k) => void (await this.getDevice(k.group, k.node, k.device)),
      );
      return;
    }
    const found = await this.inner.getMany(staleNodes, staleDevices);
    const foundNodes = new Map(found.nodes.map((r) => [nodeKey(r), r]));
    const foundDevices = new Map(found.devices.map((r) => [deviceKey(r), r]));
    for (const k of staleNodes)
      this.nodes.set(nodeKey(k), this.coldNode(nodeKey(k), foundNodes.get(nodeKey(k))));
    for (const k of staleDevices) {
      const value = foundDevices.get(deviceKey(k));
      this.devices.set(deviceKey(k), { base: value?.version, value, dirty: false, verified: true });
    }
  }

  /**
   * Writes what must be written — every change in batch mode; in write-behind mode structural changes,
   * records read cold, and checkpoints older than `checkpointMs` — conditional on the version read.
   */
  async flush(): Promise<void> {
    const now = this.clock();
    // Only records this batch checked: a cached node absent from the batch may have moved to another
    // instance since, and its checkpoint would fail the batch on a version it never verified.
    const nodes = [...this.nodes.values()].filter(
      (e) => e.dirty && e.value && e.verified && (e.mustWrite || now - e.writtenAt >= e.periodMs),
    );
    const devices = [...this.devices.values()].filter((e) => e.dirty && e.value);
    await eachLimited(nodes, FLUSH_CONCURRENCY, async (e) => {
      await this.inner.putNode(e.value!, e.base);
      const version = (e.base ?? 0) + 1;
      e.base = version;
      e.value = copyNodeRecord(e.value!);
      e.value.version = version;
      e.dirty = false;
      e.mustWrite = false;
      e.writtenAt = now;
    });
    await eachLimited(devices, FLUSH_CONCURRENCY, async (e) => {
      await this.inner.putDevice(e.value!, e.base);
      const version = (e.base ?? 0) + 1;
      e.base = version;
      e.value = { ...e.value!, version };
      e.dirty = false;
    });
    // On failure the written entries are clean already and the rest stays dirty for a retry;
    // processBatch clears the cache when it gives the batch up.
    if (!this.writeBehind) this.clear();
  }

  /** A node record read from the store. In write-behind mode its seq may be old: restart the window. */
  private coldNode(key: string, value: NodeRecord | undefined): NodeEntry {
    const periodMs = this.periodOf(key);
    if (!value || !this.writeBehind) {
      return {
        base: value?.version,
        value,
        dirty: false,
        verified: true,
        mustWrite: false,
        writtenAt: 0,
        periodMs,
      };
    }
    const { expectedSeq: _seq, gap: _gap, ...rest } = value;
    // Written back at the end of the batch even without a change: the version moves, so an instance
    // that still caches this node reads it again instead of trusting its own (now older) seq.
    return {
      base: value.version,
      value: { ...rest, recentSeqs: [] },
      dirty: true,
      verified: true,
      mustWrite: true,
      writtenAt: 0,
      periodMs,
    };
  }

  /** Between half and all of checkpointMs, fixed per node: checkpoints of a fleet born together spread out. */
  private periodOf(key: string): number {
    return this.checkpointMs * (0.5 + keyFraction(key) / 2);
  }
}

interface NodeEntry extends Entry<NodeRecord> {
  verified: boolean;
  /** A change that cannot wait for the checkpoint (structural, or a cold read to claim). */
  mustWrite: boolean;
  writtenAt: number;
  /** This node's checkpoint period: between half and all of checkpointMs, fixed per node (spread). */
  periodMs: number;
}

export class CachedRegistrationStore extends WriteBack<Registration> implements RegistrationStore {
  private readonly deleted = new Set<string>();

  constructor(private readonly inner: RegistrationStore) {
    super();
  }

  get(endpoint: string): Promise<Registration | undefined> {
    if (this.deleted.has(endpoint)) return Promise.resolve(undefined);
    return this.load(endpoint, () => this.inner.get(endpoint)).then((r) =>
      r ? { ...r, observations: { ...r.observations } } : r,
    );
  }

  async put(registration: Registration, expectedVersion: number | undefined): Promise<void> {
    if (this.deleted.has(registration.endpoint)) {
      // Re-registering after a De-register in the same batch: the stored item is gone.
      this.deleted.delete(registration.endpoint);
      await this.inner.delete(registration.endpoint);
      this.entries.set(registration.endpoint, { base: undefined, value: undefined, dirty: false });
    }
    this.stage(registration.endpoint, registration, expectedVersion, 'registration');
  }

  async delete(endpoint: string): Promise<void> {
    this.entries.delete(endpoint);
    this.deleted.add(endpoint);
  }

  /** Loads the batch's registrations in bulk (getMany), or one by one when the port has no bulk read. */
  async prefetch(endpoints: string[]): Promise<void> {
    const missing = endpoints.filter((ep) => !this.entries.has(ep) && !this.deleted.has(ep));
    if (missing.length === 0) return;
    if (!this.inner.getMany) {
      await eachLimited(missing, FLUSH_CONCURRENCY, async (ep) => void (await this.get(ep)));
      return;
    }
    const found = new Map((await this.inner.getMany(missing)).map((r) => [r.endpoint, r]));
    for (const ep of missing) this.seed(ep, found.get(ep));
  }

  /** Deletes, then writes; on failure what is still unwritten stays for the next flush() (or clear()). */
  async flush(): Promise<void> {
    await eachLimited([...this.deleted], FLUSH_CONCURRENCY, async (endpoint) => {
      await this.inner.delete(endpoint);
      this.deleted.delete(endpoint);
    });
    await this.flushWith((v, base) => this.inner.put(v, base));
  }

  override clear(): void {
    super.clear();
    this.deleted.clear();
  }
}

export type { PendingRequestStore };
