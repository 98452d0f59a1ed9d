/**
 * Batch-scoped write-back caches for protocol state. Within one Kinesis batch the records of a key
 * (one edge node, one endpoint) are processed in order by one invocation, so state can be read once,
 * changed in memory, and written once at the end of the batch — with the version read at the start as
 * the condition, so a concurrent writer still makes the flush fail (ConflictError → the batch is
 * retried). This turns two state round trips per message into two per key per batch.
 */
import { ConflictError } from './errors.js';
import type { PendingRequestStore, Registration, RegistrationStore } from './lwm2m/server/state.js';
import type { DeviceRecord, NodeRecord, SparkplugStateStore } from './sparkplug/host/state.js';

interface Entry<T> {
  /** Version in the backing store when loaded (undefined: did not exist). */
  base: number | undefined;
  value: T | undefined;
  dirty: boolean;
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

  protected async flushWith(write: (value: T, base: number | undefined) => Promise<void>): Promise<void> {
    for (const e of this.entries.values()) {
      if (e.dirty && e.value) await write(e.value, e.base);
    }
    this.entries.clear();
  }

  /** Drops everything (start of a batch, or after a failed flush). */
  clear(): void {
    this.entries.clear();
  }
}

export class CachedSparkplugStateStore extends WriteBack<NodeRecord> implements SparkplugStateStore {
  private readonly devices = new Map<string, Entry<DeviceRecord>>();

  constructor(private readonly inner: SparkplugStateStore) {
    super();
  }

  getNode(group: string, node: string): Promise<NodeRecord | undefined> {
    return this.load(`${group}/${node}`, () => this.inner.getNode(group, node));
  }

  async putNode(record: NodeRecord, expectedVersion: number | undefined): Promise<void> {
    this.stage(`${record.group}/${record.node}`, record, expectedVersion, 'node');
  }

  async getDevice(group: string, node: string, device: string): Promise<DeviceRecord | undefined> {
    const key = `${group}/${node}/${device}`;
    let e = this.devices.get(key);
    if (!e) {
      const value = await this.inner.getDevice(group, node, device);
      e = { base: value?.version, value, dirty: false };
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
    });
  }

  async flush(): Promise<void> {
    try {
      await this.flushWith((v, base) => this.inner.putNode(v, base));
      for (const e of this.devices.values())
        if (e.dirty && e.value) await this.inner.putDevice(e.value, e.base);
    } finally {
      this.clear();
      this.devices.clear();
    }
  }
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

  async flush(): Promise<void> {
    try {
      for (const endpoint of this.deleted) await this.inner.delete(endpoint);
      await this.flushWith((v, base) => this.inner.put(v, base));
    } finally {
      this.clear();
      this.deleted.clear();
    }
  }
}

export type { PendingRequestStore };
