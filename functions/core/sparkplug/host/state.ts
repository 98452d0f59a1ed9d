/**
 * Sparkplug host state behind a storage port. One item per edge node and one per device (births can
 * be large: DynamoDB items are capped at 400 KB). Every record carries a `version`; a write states the
 * version it read (undefined = must not exist) so concurrent or stale writers fail with ConflictError
 * instead of overwriting newer state.
 */
import { ConflictError } from '../../errors.js';

export interface MetricDef {
  name: string;
  datatype: number;
  unit?: string;
  /** Template instances: the definition (NBIRTH metric name) they instantiate. */
  templateRef?: string;
  /**
   * Static metadata from the birth's PropertySet (engineering ranges, descriptions, ...): scalar
   * values only, at most 16 keys; `Quality` is per reading, not static, and is not kept here.
   */
  props?: Record<string, string | number | boolean>;
  /** Template instances: parameter values (the definition's defaults overridden by the instance's). */
  params?: Record<string, string | number | boolean>;
}

/**
 * A Template definition from the NBIRTH, reduced to what the host needs to resolve instances: small and
 * JSON-safe (no raw values, no bigint), so every adapter stores it as is.
 */
export interface TemplateDef {
  version?: string;
  /** Member name → datatype, unit, nested template reference, static properties. */
  members: Record<string, MetricDef>;
  /** Default parameter values (scalars). */
  params?: Record<string, string | number | boolean>;
}

/** Own-property lookup: metric names such as "constructor" must not hit Object.prototype. */
export function lookup<T>(record: Record<string, T> | undefined, key: string): T | undefined {
  return record !== undefined && Object.hasOwn(record, key) ? record[key] : undefined;
}

export interface SeqGap {
  missing: number[];
  /** Epoch ms after which an unfilled gap triggers a rebirth request. */
  deadline: number;
}

export interface NodeRecord {
  group: string;
  node: string;
  version: number;
  online: boolean;
  /** bdSeq of the current NBIRTH (string: Int64/UInt64 without precision loss). */
  bdSeq?: string;
  /** NBIRTH payload timestamp (epoch ms); identifies the session. */
  birthTime: number;
  /** Receipt time of the last message from the node. */
  lastSeen: number;
  expectedSeq?: number;
  /** The last few seqs received, for duplicate detection (bounded). */
  recentSeqs: number[];
  gap?: SeqGap;
  /** alias (decimal string) → metric; node-level. */
  aliases: Record<string, MetricDef>;
  /** metric name → definition; node-level. */
  metrics: Record<string, MetricDef>;
  /** Template definitions from the NBIRTH, by name (state, not data). */
  templates: Record<string, TemplateDef>;
  devices: string[];
  lastRebirthRequest?: number;
}

/**
 * Every NodeRecord field, and whether it changes with (almost) every DATA message (volatile) or only
 * with births, deaths, rebirth requests and devices (structural). Typed over keyof NodeRecord, so a new
 * field does not compile until it is classified here — and copyNodeRecord's test checks it is copied.
 */
export const NODE_FIELDS: Readonly<Record<keyof NodeRecord, 'volatile' | 'structural'>> = {
  group: 'structural',
  node: 'structural',
  version: 'volatile',
  online: 'structural',
  bdSeq: 'structural',
  birthTime: 'structural',
  lastSeen: 'volatile',
  expectedSeq: 'volatile',
  recentSeqs: 'volatile',
  gap: 'volatile',
  aliases: 'structural',
  metrics: 'structural',
  templates: 'structural',
  devices: 'structural',
  lastRebirthRequest: 'structural',
};

/**
 * A shallow copy (the host never mutates nested state in place). Runs twice per message: an explicit
 * literal is ~20x cheaper than `{ ...r }` for a record this wide (V8's spread clone falls back to a
 * generic path), and optional fields stay absent rather than present-and-undefined.
 */
export function copyNodeRecord(r: NodeRecord): NodeRecord {
  const c: NodeRecord = {
    group: r.group,
    node: r.node,
    version: r.version,
    online: r.online,
    birthTime: r.birthTime,
    lastSeen: r.lastSeen,
    recentSeqs: r.recentSeqs,
    aliases: r.aliases,
    metrics: r.metrics,
    templates: r.templates,
    devices: r.devices,
  };
  if (r.bdSeq !== undefined) c.bdSeq = r.bdSeq;
  if (r.expectedSeq !== undefined) c.expectedSeq = r.expectedSeq;
  if (r.gap !== undefined) c.gap = r.gap;
  if (r.lastRebirthRequest !== undefined) c.lastRebirthRequest = r.lastRebirthRequest;
  return c;
}

/**
 * Whether a structural field (NODE_FIELDS) differs — reference equality, as the host never mutates
 * nested state in place. Runs per message: spelled out rather than looped over NODE_FIELDS (a keyed
 * load per field cost ~2 % of the Sparkplug handler); its test checks it against NODE_FIELDS.
 */
export function nodeStructureChanged(a: NodeRecord, b: NodeRecord): boolean {
  return (
    a.group !== b.group ||
    a.node !== b.node ||
    a.online !== b.online ||
    a.bdSeq !== b.bdSeq ||
    a.birthTime !== b.birthTime ||
    a.aliases !== b.aliases ||
    a.metrics !== b.metrics ||
    a.templates !== b.templates ||
    a.devices !== b.devices ||
    a.lastRebirthRequest !== b.lastRebirthRequest
  );
}

export interface DeviceRecord {
  group: string;
  node: string;
  device: string;
  version: number;
  online: boolean;
  /** The node session (NBIRTH birthTime) this DBIRTH belongs to. */
  nodeBirthTime: number;
  birthTime: number;
  aliases: Record<string, MetricDef>;
  metrics: Record<string, MetricDef>;
}

/**
 * The host's state port. Reads return a record the caller may change (top-level fields only: the host
 * never mutates nested objects it read) and write back with the version it read as the condition.
 * Adapters: in-memory (below), DynamoDB (`functions/adapters/dynamo-state.ts`, conditional puts),
 * batch write-back cache (`functions/core/state-cache.ts`). See ADR 0003.
 */
export interface NodeKey {
  group: string;
  node: string;
}

export interface DeviceKey extends NodeKey {
  device: string;
}

export interface SparkplugStateStore {
  getNode(group: string, node: string): Promise<NodeRecord | undefined>;
  /**
   * Writes `record` with version = (expectedVersion ?? 0) + 1. `expectedVersion` undefined means the
   * record must not exist yet. Throws ConflictError when the stored version differs: the caller
   * re-reads and decides again (a late birth or a stale death then loses on the fresh state).
   */
  putNode(record: NodeRecord, expectedVersion: number | undefined): Promise<void>;
  getDevice(group: string, node: string, device: string): Promise<DeviceRecord | undefined>;
  /** As putNode, for the per-device item (births can exceed 400 KB, so devices are separate items). */
  putDevice(record: DeviceRecord, expectedVersion: number | undefined): Promise<void>;
  /** Optional bulk read (one round trip per 100 keys): the records that exist among the keys. */
  getMany?(nodes: NodeKey[], devices: DeviceKey[]): Promise<{ nodes: NodeRecord[]; devices: DeviceRecord[] }>;
  /** Optional hint before a batch: load these records now, in bulk (the batch cache implements it). */
  prefetch?(nodes: NodeKey[], devices: DeviceKey[]): Promise<void>;
  /**
   * Optional bulk read of versions only (keys `group/node` and `group/node/device`; absent = no
   * record): lets a cache keep records across batches and notice when another writer moved one.
   */
  getVersions?(
    nodes: NodeKey[],
    devices: DeviceKey[],
  ): Promise<{ nodes: Map<string, number>; devices: Map<string, number> }>;
}

/**
 * In-memory adapter (tests, `dualpath decode`, benchmarks). Single-threaded: it hands out its records
 * without copying (a structuredClone per message cost more than the whole decode), and versions still
 * guard against a writer that read an older record.
 */
export class InMemorySparkplugStateStore implements SparkplugStateStore {
  // Keyed group → node (→ device): no key string built per message, and the ids (the same strings
  // message after message) hash once.
  private readonly nodes = new Map<string, Map<string, NodeRecord>>();
  private readonly devices = new Map<string, Map<string, Map<string, DeviceRecord>>>();

  async getNode(group: string, node: string): Promise<NodeRecord | undefined> {
    const r = this.nodes.get(group)?.get(node);
    return r ? copyNodeRecord(r) : undefined;
  }

  async putNode(record: NodeRecord, expectedVersion: number | undefined): Promise<void> {
    let nodes = this.nodes.get(record.group);
    const stored = nodes?.get(record.node)?.version;
    if (stored !== expectedVersion)
      throw conflict(`node ${record.group}/${record.node}`, stored, expectedVersion);
    const copy = copyNodeRecord(record);
    copy.version = (expectedVersion ?? 0) + 1;
    if (!nodes) {
      nodes = new Map();
      this.nodes.set(record.group, nodes);
    }
    nodes.set(record.node, copy);
  }

  async getDevice(group: string, node: string, device: string): Promise<DeviceRecord | undefined> {
    const r = this.devices.get(group)?.get(node)?.get(device);
    return r ? { ...r } : undefined;
  }

  async putDevice(record: DeviceRecord, expectedVersion: number | undefined): Promise<void> {
    let nodes = this.devices.get(record.group);
    let devices = nodes?.get(record.node);
    const stored = devices?.get(record.device)?.version;
    if (stored !== expectedVersion) {
      throw conflict(`device ${record.group}/${record.node}/${record.device}`, stored, expectedVersion);
    }
    const copy = { ...record };
    copy.version = (expectedVersion ?? 0) + 1;
    if (!nodes) {
      nodes = new Map();
      this.devices.set(record.group, nodes);
    }
    if (!devices) {
      devices = new Map();
      nodes.set(record.node, devices);
    }
    devices.set(record.device, copy);
  }
}

function conflict(what: string, stored: number | undefined, expected: number | undefined): ConflictError {
  return new ConflictError(
    `${what}: stored version ${stored ?? 'none'} is not the expected ${expected ?? 'none'}`,
  );
}
