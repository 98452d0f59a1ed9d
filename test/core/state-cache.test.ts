/**
 * The protocol state caches: how many reads and writes reach the backing store per batch, and what the
 * Sparkplug host decides when records move between instances (batch-scoped write-back vs write-behind).
 */
import { describe, expect, it } from 'vitest';
import { ConflictError, TransientError } from '../../functions/core/errors.js';
import { InMemoryEventLog } from '../../functions/core/events.js';
import { type IngestRecord, processBatch } from '../../functions/core/ingest.js';
import { encodeMessage, Operation } from '../../functions/core/lwm2m/message.js';
import { Lwm2mServer } from '../../functions/core/lwm2m/server/server.js';
import {
  InMemoryPendingRequestStore,
  InMemoryRegistrationStore,
  type Registration,
  type RegistrationStore,
} from '../../functions/core/lwm2m/server/state.js';
import type { InboundMessage } from '../../functions/core/processor.js';
import type { MessageOutcome } from '../../functions/core/reading.js';
import { encodePayload, type SpPayloadInput } from '../../functions/core/sparkplug/codec.js';
import { SparkplugHost } from '../../functions/core/sparkplug/host/host.js';
import {
  type DeviceKey,
  type DeviceRecord,
  InMemorySparkplugStateStore,
  type NodeKey,
  type NodeRecord,
  type SparkplugStateStore,
} from '../../functions/core/sparkplug/host/state.js';
import { DataType } from '../../functions/core/sparkplug/types.js';
import { keyFraction } from '../../functions/core/spread.js';
import { CachedRegistrationStore, CachedSparkplugStateStore } from '../../functions/core/state-cache.js';

const T0 = 1_700_000_000_000;
const G = 'plant';

// ---- backing stores that count what reaches them ------------------------------------------------

type Op = 'getNode' | 'putNode' | 'getDevice' | 'putDevice' | 'getMany' | 'getVersions';
const zero = (): Record<Op, number> => ({
  getNode: 0,
  putNode: 0,
  getDevice: 0,
  putDevice: 0,
  getMany: 0,
  getVersions: 0,
});
const nk = (k: NodeKey) => `${k.group}/${k.node}`;
const dk = (k: DeviceKey) => `${k.group}/${k.node}/${k.device}`;

/** Single-key port only (InMemorySparkplugStateStore as is): the cache runs batch-scoped. */
class Counting implements SparkplugStateStore {
  calls = zero();
  /** Keys of every bulk call, in order. */
  bulk: Array<{ op: 'getMany' | 'getVersions'; nodes: string[]; devices: string[] }> = [];
  constructor(readonly backing: InMemorySparkplugStateStore) {}
  reset(): void {
    this.calls = zero();
    this.bulk = [];
  }
  getNode(group: string, node: string) {
    this.calls.getNode++;
    return this.backing.getNode(group, node);
  }
  putNode(record: NodeRecord, expected: number | undefined) {
    this.calls.putNode++;
    return this.backing.putNode(record, expected);
  }
  getDevice(group: string, node: string, device: string) {
    this.calls.getDevice++;
    return this.backing.getDevice(group, node, device);
  }
  putDevice(record: DeviceRecord, expected: number | undefined) {
    this.calls.putDevice++;
    return this.backing.putDevice(record, expected);
  }
}

/** Adds a bulk read (still batch-scoped: no getVersions). */
class CountingBulk extends Counting {
  async getMany(nodes: NodeKey[], devices: DeviceKey[]) {
    this.calls.getMany++;
    this.bulk.push({ op: 'getMany', nodes: nodes.map(nk), devices: devices.map(dk) });
    const out = { nodes: [] as NodeRecord[], devices: [] as DeviceRecord[] };
    for (const k of nodes) {
      const r = await this.backing.getNode(k.group, k.node);
      if (r) out.nodes.push(r);
    }
    for (const k of devices) {
      const r = await this.backing.getDevice(k.group, k.node, k.device);
      if (r) out.devices.push(r);
    }
    return out;
  }
}

/** getVersions + getMany, like the DynamoDB adapter: the cache runs write-behind. */
class CountingVersioned extends CountingBulk {
  async getVersions(nodes: NodeKey[], devices: DeviceKey[]) {
    this.calls.getVersions++;
    this.bulk.push({ op: 'getVersions', nodes: nodes.map(nk), devices: devices.map(dk) });
    const out = { nodes: new Map<string, number>(), devices: new Map<string, number>() };
    for (const k of nodes) {
      const r = await this.backing.getNode(k.group, k.node);
      if (r) out.nodes.set(nk(k), r.version);
    }
    for (const k of devices) {
      const r = await this.backing.getDevice(k.group, k.node, k.device);
      if (r) out.devices.set(dk(k), r.version);
    }
    return out;
  }
}

/** getVersions without getMany: moved records are re-read one by one. */
class CountingVersionsOnly extends Counting {
  getVersions = CountingVersioned.prototype.getVersions;
}

// ---- messages and batches -----------------------------------------------------------------------

let now = T0;
const at = (t: number) => {
  now = t;
};
function msg(type: string, payload: SpPayloadInput, node = 'edge-1', device?: string): InboundMessage {
  now += 10;
  const topic = `spBv1.0/${G}/${type}/${node}${device ? `/${device}` : ''}`;
  return { topic, payload: encodePayload(payload), receivedAt: now };
}
const nbirth = (bdSeq: number): SpPayloadInput => ({
  timestamp: T0,
  seq: 0,
  metrics: [
    { name: 'bdSeq', datatype: DataType.Int64, value: bdSeq, timestamp: T0 },
    { name: 'Temp', alias: 1, datatype: DataType.Float, value: 1.5, timestamp: T0 },
  ],
});
const ndata = (seq: number, value = 2.5): SpPayloadInput => ({
  timestamp: T0 + 1000 + seq,
  seq,
  metrics: [{ alias: 1, datatype: DataType.Float, value, omitDatatype: true }],
});
const ndeath = (bdSeq: number): SpPayloadInput => ({
  timestamp: T0 + 5000,
  metrics: [{ name: 'bdSeq', datatype: DataType.Int64, value: bdSeq }],
});
const dbirth = (seq: number): SpPayloadInput => ({
  timestamp: T0 + 1,
  seq,
  metrics: [{ name: 'Pressure', alias: 10, datatype: DataType.Int16, value: 3, timestamp: T0 + 1 }],
});
const ddata = (seq: number, value = 4): SpPayloadInput => ({
  timestamp: T0 + 2000 + seq,
  seq,
  metrics: [{ alias: 10, datatype: DataType.Int16, value, omitDatatype: true }],
});
/** A DATA metric whose alias the birth did not declare: the host asks for a rebirth (structural). */
const unknownAlias = (seq: number): SpPayloadInput => ({
  timestamp: T0 + 3000 + seq,
  seq,
  metrics: [{ alias: 99, datatype: DataType.Float, value: 1 }],
});

/** One instance of the ingest path: a host over a cache over a (shared) counted backing store. */
function instance(port: Counting, opts: { checkpointMs?: number; maxEntries?: number } = {}) {
  const clock = { t: T0 };
  const cache = new CachedSparkplugStateStore(port, { ...opts, clock: () => clock.t });
  const host = new SparkplugHost({ store: cache, clock: () => now, rebirthThrottleMs: 0 });
  /** As processBatch does it: begin, prepare, handle in order, flush (clear on a failed flush). */
  const batch = async (...messages: InboundMessage[]): Promise<MessageOutcome[]> => {
    port.reset();
    cache.begin();
    await host.prepare(messages);
    const out: MessageOutcome[] = [];
    for (const m of messages) out.push(await host.handle(m));
    try {
      await cache.flush();
    } catch (error) {
      cache.clear();
      throw error;
    }
    return out;
  };
  return { cache, host, batch, clock, port };
}

const eventsOf = (outs: MessageOutcome[], type: string) =>
  outs.flatMap((o) => o.events.filter((e) => e.type === type));
const rebirthsOf = (outs: MessageOutcome[]) =>
  outs.flatMap((o) => o.actions.filter((a) => a.topic.includes('/NCMD/')));
const values = (outs: MessageOutcome[]) => outs.flatMap((o) => o.readings.map((r) => r.value));

/** Another writer (another Lambda instance) changes a record behind the cache's back. */
async function bumpNode(
  store: InMemorySparkplugStateStore,
  node = 'edge-1',
  change: Partial<NodeRecord> = {},
) {
  const r = (await store.getNode(G, node))!;
  await store.putNode({ ...r, ...change }, r.version);
}

// ---- batch-scoped write-back ---------------------------------------------------------------------

describe('CachedSparkplugStateStore, batch-scoped (port without getVersions)', () => {
  it('reads each key once and writes each changed record once per batch', async () => {
    const backing = new InMemorySparkplugStateStore();
    const a = instance(new Counting(backing));

    const first = await a.batch(
      msg('NBIRTH', nbirth(1)),
      msg('DBIRTH', dbirth(1), 'edge-1', 'pump'),
      msg('NDATA', ndata(2)),
      msg('DDATA', ddata(3), 'edge-1', 'pump'),
      msg('NDATA', ndata(4)),
    );
    expect(a.port.calls).toEqual({ ...zero(), getNode: 1, getDevice: 1, putNode: 1, putDevice: 1 });
    expect(eventsOf(first, 'seq-gap')).toEqual([]);
    expect(await backing.getNode(G, 'edge-1')).toMatchObject({
      version: 1,
      expectedSeq: 5,
      devices: ['pump'],
    });

    // The next batch reads again (nothing survives a batch) and writes the seq advance.
    const second = await a.batch(msg('NDATA', ndata(5)), msg('DDATA', ddata(6), 'edge-1', 'pump'));
    expect(a.port.calls).toEqual({ ...zero(), getNode: 1, getDevice: 1, putNode: 1 });
    expect(values(second)).toEqual([2.5, 4]);
    expect(await backing.getNode(G, 'edge-1')).toMatchObject({ version: 2, expectedSeq: 7 });
  });

  it('prefetches through getMany in one call when the port has it, and writes nothing unchanged', async () => {
    const backing = new InMemorySparkplugStateStore();
    const a = instance(new CountingBulk(backing));
    await a.batch(msg('NBIRTH', nbirth(1), 'n1'), msg('NBIRTH', nbirth(1), 'n2'));
    expect(a.port.calls).toEqual({ ...zero(), getMany: 1, putNode: 2 });

    const out = await a.batch(
      msg('NDATA', ndata(1), 'n1'),
      msg('NDATA', ndata(1), 'n2'),
      msg('NDATA', ndata(2), 'n1'),
    );
    expect(a.port.calls).toEqual({ ...zero(), getMany: 1, putNode: 2 });
    expect(a.port.bulk).toEqual([{ op: 'getMany', nodes: [`${G}/n1`, `${G}/n2`], devices: [] }]);
    expect(eventsOf(out, 'seq-gap')).toEqual([]);
  });

  it('fails the flush with ConflictError when another writer moved a record during the batch', async () => {
    const backing = new InMemorySparkplugStateStore();
    const a = instance(new Counting(backing));
    await a.batch(msg('NBIRTH', nbirth(1)));

    a.cache.begin();
    await a.host.prepare([msg('NDATA', ndata(1))]);
    await a.host.handle(msg('NDATA', ndata(1)));
    await bumpNode(backing);
    await expect(a.cache.flush()).rejects.toBeInstanceOf(ConflictError);
    expect((await backing.getNode(G, 'edge-1'))?.version).toBe(2);
  });
});

// ---- write-behind -----------------------------------------------------------------------------------

describe('CachedSparkplugStateStore, write-behind (port with getVersions)', () => {
  it('keeps a warm node across batches: one getVersions, no full read, no write for DATA', async () => {
    at(T0);
    const backing = new InMemorySparkplugStateStore();
    const a = instance(new CountingVersioned(backing));
    await a.batch(msg('NBIRTH', nbirth(1)));
    // Nothing cached yet: no version check, one bulk read, the birth written.
    expect(a.port.calls).toEqual({ ...zero(), getMany: 1, putNode: 1 });

    const second = await a.batch(msg('NDATA', ndata(1)), msg('NDATA', ndata(2)), msg('NDATA', ndata(3)));
    expect(a.port.calls).toEqual({ ...zero(), getVersions: 1 });
    expect(a.port.bulk).toEqual([{ op: 'getVersions', nodes: [`${G}/edge-1`], devices: [] }]);
    expect(values(second)).toEqual([2.5, 2.5, 2.5]);
    // The store still holds the birth; the seq advance lives in the cache only.
    expect(await backing.getNode(G, 'edge-1')).toMatchObject({ version: 1, expectedSeq: 1 });

    // The cached seq window is used: the next message in order is no gap, a skipped seq is one.
    const third = await a.batch(msg('NDATA', ndata(4)));
    expect(eventsOf(third, 'seq-gap')).toEqual([]);
    const fourth = await a.batch(msg('NDATA', ndata(6)));
    expect(eventsOf(fourth, 'seq-gap')).toEqual([
      expect.objectContaining({ data: expect.objectContaining({ expected: 5, missing: [5] }) }),
    ]);
    // An open gap is a volatile change: still no write.
    expect(a.port.calls).toEqual({ ...zero(), getVersions: 1 });
  });

  it('writes structural changes in their batch: a rebirth request, a death, a device birth', async () => {
    at(T0);
    const backing = new InMemorySparkplugStateStore();
    const a = instance(new CountingVersioned(backing));
    await a.batch(msg('NBIRTH', nbirth(1)));

    const rebirth = await a.batch(msg('NDATA', ndata(1)), msg('NDATA', unknownAlias(2)));
    expect(rebirthsOf(rebirth)).toHaveLength(1);
    expect(a.port.calls).toEqual({ ...zero(), getVersions: 1, putNode: 1 });
    const stored = (await backing.getNode(G, 'edge-1'))!;
    expect(stored).toMatchObject({ version: 2, lastRebirthRequest: now, expectedSeq: 3 });

    await a.batch(msg('DBIRTH', dbirth(3), 'edge-1', 'pump'));
    expect(a.port.calls).toEqual({ ...zero(), getVersions: 1, getMany: 1, putNode: 1, putDevice: 1 });
    expect(await backing.getNode(G, 'edge-1')).toMatchObject({ version: 3, devices: ['pump'] });

    await a.batch(msg('NDEATH', ndeath(1)));
    expect(a.port.calls.putNode).toBe(1);
    expect(a.port.calls.putDevice).toBe(1); // the device goes offline with its node
    expect(await backing.getNode(G, 'edge-1')).toMatchObject({ version: 4, online: false });
    expect(await backing.getDevice(G, 'edge-1', 'pump')).toMatchObject({ online: false });
  });

  it("writes a checkpoint once the node's period (half to all of checkpointMs) has passed since the last write", async () => {
    at(T0);
    // The node's own period, fixed by its key: between 30 s and 60 s.
    const P = Math.ceil(60_000 * (0.5 + keyFraction(`${G}/edge-1`) / 2));
    const backing = new InMemorySparkplugStateStore();
    const a = instance(new CountingVersioned(backing), { checkpointMs: 60_000 });
    a.clock.t = T0;
    await a.batch(msg('NBIRTH', nbirth(1)));

    a.clock.t = T0 + P - 1;
    await a.batch(msg('NDATA', ndata(1)));
    expect(a.port.calls.putNode).toBe(0);

    a.clock.t = T0 + P;
    await a.batch(msg('NDATA', ndata(2)));
    expect(a.port.calls.putNode).toBe(1);
    expect(await backing.getNode(G, 'edge-1')).toMatchObject({
      version: 2,
      expectedSeq: 3,
      recentSeqs: [0, 1, 2],
      lastSeen: now,
    });

    // The checkpoint restarts the period, and the cache carries the new version (no conflict).
    a.clock.t = T0 + 2 * P - 1;
    await a.batch(msg('NDATA', ndata(3)));
    expect(a.port.calls).toEqual({ ...zero(), getVersions: 1 });
    a.clock.t = T0 + 2 * P;
    await a.batch(msg('NDATA', ndata(4)));
    expect(a.port.calls).toEqual({ ...zero(), getVersions: 1, putNode: 1 });
    expect(await backing.getNode(G, 'edge-1')).toMatchObject({ version: 3, expectedSeq: 5 });
  });

  it('spreads the checkpoint periods of many nodes over half to all of checkpointMs', () => {
    const periods = Array.from(
      { length: 1000 },
      (_, i) => 60_000 * (0.5 + keyFraction(`${G}/edge-${i}`) / 2),
    );
    expect(Math.min(...periods)).toBeGreaterThanOrEqual(30_000);
    expect(Math.max(...periods)).toBeLessThan(60_000);
    // Roughly uniform: each 5-second band holds some (a burst would put them all in one).
    for (let lo = 30_000; lo < 60_000; lo += 5_000) {
      const n = periods.filter((p) => p >= lo && p < lo + 5_000).length;
      expect([lo, n > 100 && n < 240]).toEqual([lo, true]);
    }
  });

  it('re-reads a record another writer moved, restarts its seq window and writes it back', async () => {
    at(T0);
    const backing = new InMemorySparkplugStateStore();
    const a = instance(new CountingVersioned(backing));
    await a.batch(msg('NBIRTH', nbirth(1)));
    await a.batch(msg('NDATA', ndata(1)), msg('NDATA', ndata(2)));
    // Another instance handled seqs 3..5 and wrote the node (its version moves to 2).
    await bumpNode(backing, 'edge-1', { expectedSeq: 6, recentSeqs: [3, 4, 5] });

    const out = await a.batch(msg('NDATA', ndata(6)), msg('NDATA', ndata(7)));
    expect(a.port.calls).toEqual({ ...zero(), getVersions: 1, getMany: 1, putNode: 1 });
    expect(a.port.bulk.map((b) => b.op)).toEqual(['getVersions', 'getMany']);
    // A's own cache expected 3: trusting it would have reported 3, 4, 5 missing.
    expect(eventsOf(out, 'seq-gap')).toEqual([]);
    expect(eventsOf(out, 'duplicate')).toEqual([]);
    expect(rebirthsOf(out)).toEqual([]);
    expect(values(out)).toEqual([2.5, 2.5]);
    // Written back with the window restarted at the first message after the cold read.
    expect(await backing.getNode(G, 'edge-1')).toMatchObject({
      version: 3,
      expectedSeq: 8,
      recentSeqs: [6, 7],
    });

    // Warm again afterwards.
    await a.batch(msg('NDATA', ndata(8)));
    expect(a.port.calls).toEqual({ ...zero(), getVersions: 1 });
  });

  it('drops a pending gap on a cold read (the window restarts) rather than asking for a rebirth', async () => {
    at(T0);
    const backing = new InMemorySparkplugStateStore();
    const a = instance(new CountingVersioned(backing));
    await a.batch(msg('NBIRTH', nbirth(1)));
    // Stored by another writer: an open gap whose deadline has long passed.
    await bumpNode(backing, 'edge-1', {
      expectedSeq: 9,
      recentSeqs: [8],
      gap: { missing: [5], deadline: T0 },
    });
    const out = await a.batch(msg('NDATA', ndata(20)));
    expect(eventsOf(out, 'seq-gap')).toEqual([]);
    expect(rebirthsOf(out)).toEqual([]);
    const stored = (await backing.getNode(G, 'edge-1'))!;
    expect(stored.gap).toBeUndefined();
    expect(stored).toMatchObject({ expectedSeq: 21, recentSeqs: [20] });
  });

  it('after a flush fails with ConflictError and the batch is given up (clear), the next batch reads everything again', async () => {
    at(T0);
    const backing = new InMemorySparkplugStateStore();
    const a = instance(new CountingVersioned(backing));
    await a.batch(msg('NBIRTH', nbirth(1)), msg('NBIRTH', nbirth(1), 'other'));

    // A structural change (rebirth request) while another writer moves the record mid-batch.
    a.port.reset();
    a.cache.begin();
    const batch = [msg('NDATA', unknownAlias(1))];
    await a.host.prepare(batch);
    await a.host.handle(batch[0]!);
    await bumpNode(backing);
    await expect(a.cache.flush()).rejects.toBeInstanceOf(ConflictError);
    a.cache.clear(); // what processBatch does when it hands the batch back

    const out = await a.batch(msg('NDATA', ndata(2)), msg('NDATA', ndata(1), 'other'));
    // Nothing cached: no version check, both nodes read in bulk (cold) and written back.
    expect(a.port.calls).toEqual({ ...zero(), getMany: 1, putNode: 2 });
    expect(a.port.bulk[0]).toEqual({ op: 'getMany', nodes: [`${G}/edge-1`, `${G}/other`], devices: [] });
    expect(eventsOf(out, 'seq-gap')).toEqual([]);
  });

  it('verifies devices the same way: kept across batches, re-read when another writer moved them', async () => {
    at(T0);
    const backing = new InMemorySparkplugStateStore();
    const a = instance(new CountingVersioned(backing));
    await a.batch(msg('NBIRTH', nbirth(1)), msg('DBIRTH', dbirth(1), 'edge-1', 'pump'));

    const warm = await a.batch(
      msg('DDATA', ddata(2), 'edge-1', 'pump'),
      msg('DDATA', ddata(3, 5), 'edge-1', 'pump'),
    );
    expect(a.port.calls).toEqual({ ...zero(), getVersions: 1 });
    expect(a.port.bulk).toEqual([
      { op: 'getVersions', nodes: [`${G}/edge-1`], devices: [`${G}/edge-1/pump`] },
    ]);
    expect(values(warm)).toEqual([4, 5]);

    // Another writer marks the device offline (as a DDEATH elsewhere would).
    const d = (await backing.getDevice(G, 'edge-1', 'pump'))!;
    await backing.putDevice({ ...d, online: false }, d.version);

    const after = await a.batch(msg('DDATA', ddata(4), 'edge-1', 'pump'));
    expect(a.port.bulk).toEqual([
      { op: 'getVersions', nodes: [`${G}/edge-1`], devices: [`${G}/edge-1/pump`] },
      { op: 'getMany', nodes: [], devices: [`${G}/edge-1/pump`] },
    ]);
    expect(a.port.calls.getDevice).toBe(0);
    // The re-read device is offline: its DATA is not trusted and a rebirth is requested.
    expect(values(after)).toEqual([]);
    expect(rebirthsOf(after)).toHaveLength(1);
  });

  it('re-reads moved records one by one when the port has getVersions but no getMany', async () => {
    at(T0);
    const backing = new InMemorySparkplugStateStore();
    const a = instance(new CountingVersionsOnly(backing));
    await a.batch(msg('NBIRTH', nbirth(1)), msg('NBIRTH', nbirth(1), 'other'));
    expect(a.port.calls).toEqual({ ...zero(), getNode: 2, putNode: 2 });

    await bumpNode(backing, 'other', { expectedSeq: 50 });
    const out = await a.batch(msg('NDATA', ndata(1)), msg('NDATA', ndata(60), 'other'));
    expect(a.port.calls).toEqual({ ...zero(), getVersions: 1, getNode: 1, putNode: 1 });
    expect(eventsOf(out, 'seq-gap')).toEqual([]);
  });

  it('clears everything at begin() once more than maxEntries records are cached', async () => {
    at(T0);
    const backing = new InMemorySparkplugStateStore();
    const small = instance(new CountingVersioned(backing), { maxEntries: 2 });
    await small.batch(msg('NBIRTH', nbirth(1), 'n1'), msg('NBIRTH', nbirth(1), 'n2'));
    await small.batch(msg('NDATA', ndata(1), 'n1'), msg('NDATA', ndata(1), 'n2'));
    // Two entries: within the limit, still warm.
    expect(small.port.calls).toEqual({ ...zero(), getVersions: 1 });

    await small.batch(msg('NBIRTH', nbirth(1), 'n3'));
    // Three entries now: the next batch starts from nothing.
    const out = await small.batch(msg('NDATA', ndata(2), 'n1'), msg('NDATA', ndata(1), 'n3'));
    expect(small.port.calls).toEqual({ ...zero(), getMany: 1, putNode: 2 });
    expect(small.port.bulk).toEqual([{ op: 'getMany', nodes: [`${G}/n1`, `${G}/n3`], devices: [] }]);
    // The unwritten seq advance of n1 was lost with the cache: the cold read restarts the window.
    expect(eventsOf(out, 'seq-gap')).toEqual([]);
  });
});

// ---- hand-over between instances ----------------------------------------------------------------

describe('write-behind hand-over between two host instances sharing one store', () => {
  it('raises no seq gap or rebirth at the hand-over, and the first instance re-reads when it gets the node back', async () => {
    at(T0);
    const backing = new InMemorySparkplugStateStore();
    const a = instance(new CountingVersioned(backing));
    const b = instance(new CountingVersioned(backing));

    const outs: MessageOutcome[] = [];
    outs.push(...(await a.batch(msg('NBIRTH', nbirth(1)), msg('DBIRTH', dbirth(1), 'edge-1', 'pump'))));
    outs.push(...(await a.batch(msg('NDATA', ndata(2)), msg('DDATA', ddata(3), 'edge-1', 'pump'))));
    expect(a.port.calls).toEqual({ ...zero(), getVersions: 1 });

    // The shard moves to B: it has never seen the node, reads it cold and claims it.
    const atB = await b.batch(msg('NDATA', ndata(4)), msg('DDATA', ddata(5), 'edge-1', 'pump'));
    outs.push(...atB);
    expect(b.port.calls).toEqual({ ...zero(), getMany: 1, putNode: 1 });
    expect(values(atB)).toEqual([2.5, 4]);
    const claimed = (await backing.getNode(G, 'edge-1'))!;
    expect(claimed).toMatchObject({ version: 2, expectedSeq: 6 });
    await b.batch(msg('NDATA', ndata(6)), msg('NDATA', ndata(7)));
    expect(b.port.calls).toEqual({ ...zero(), getVersions: 1 });

    // Back to A, which still caches the node expecting seq 4: the version check sends it to the store.
    const back = await a.batch(msg('NDATA', ndata(8)), msg('DDATA', ddata(9), 'edge-1', 'pump'));
    outs.push(...back);
    expect(a.port.bulk).toEqual([
      { op: 'getVersions', nodes: [`${G}/edge-1`], devices: [`${G}/edge-1/pump`] },
      { op: 'getMany', nodes: [`${G}/edge-1`], devices: [] },
    ]);
    expect(a.port.calls.putNode).toBe(1);
    expect(values(back)).toEqual([2.5, 4]);
    expect(await backing.getNode(G, 'edge-1')).toMatchObject({ version: 3, expectedSeq: 10 });

    expect(eventsOf(outs, 'seq-gap')).toEqual([]);
    expect(eventsOf(outs, 'duplicate')).toEqual([]);
    expect(rebirthsOf(outs)).toEqual([]);

    // B lost the node: when it gets it again it re-reads too (no conflict, no false gap).
    const again = await b.batch(msg('NDATA', ndata(10)));
    expect(b.port.calls).toEqual({ ...zero(), getVersions: 1, getMany: 1, putNode: 1 });
    expect(eventsOf(again, 'seq-gap')).toEqual([]);

    // The window works again after the cold read: a real gap is reported.
    const gap = await b.batch(msg('NDATA', ndata(12)));
    expect(eventsOf(gap, 'seq-gap')).toHaveLength(1);
  });

  it('does not fail a later batch of the previous holder when its checkpoint of the lost node is due', async () => {
    at(T0);
    const backing = new InMemorySparkplugStateStore();
    const a = instance(new CountingVersioned(backing), { checkpointMs: 60_000 });
    const b = instance(new CountingVersioned(backing), { checkpointMs: 60_000 });
    await a.batch(msg('NBIRTH', nbirth(1)), msg('NBIRTH', nbirth(1), 'other'));
    await a.batch(msg('NDATA', ndata(1)), msg('NDATA', ndata(1), 'other'));

    // edge-1 moves to B (which writes it); A keeps only "other" in its shard.
    await b.batch(msg('NDATA', ndata(2)));
    a.clock.t = T0 + 120_000;
    const out = await a.batch(msg('NDATA', ndata(2), 'other'));
    expect(values(out)).toEqual([2.5]);
    // B's claim stands: A wrote nothing over it.
    expect((await backing.getNode(G, 'edge-1'))?.version).toBe(2);
    expect(a.port.bulk.map((x) => x.op)).toEqual(['getVersions']);
    expect(a.port.calls.putNode).toBe(1); // the checkpoint of "other"
  });
});

// ---- registrations ----------------------------------------------------------------------------------

function registration(endpoint: string): Registration {
  return {
    endpoint,
    version: 0,
    lwm2mVersion: '1.2',
    lifetime: 60,
    binding: 'U',
    queueMode: false,
    objects: { objects: [] },
    registeredAt: T0,
    lastUpdate: T0,
    observations: {},
  };
}

class CountingRegistrations implements RegistrationStore {
  calls = { get: 0, put: 0, delete: 0, getMany: 0 };
  manyArgs: string[][] = [];
  constructor(readonly backing: InMemoryRegistrationStore) {}
  get(ep: string) {
    this.calls.get++;
    return this.backing.get(ep);
  }
  put(r: Registration, v: number | undefined) {
    this.calls.put++;
    return this.backing.put(r, v);
  }
  delete(ep: string) {
    this.calls.delete++;
    return this.backing.delete(ep);
  }
}
class CountingRegistrationsBulk extends CountingRegistrations {
  async getMany(endpoints: string[]) {
    this.calls.getMany++;
    this.manyArgs.push(endpoints);
    const out: Registration[] = [];
    for (const ep of endpoints) {
      const r = await this.backing.get(ep);
      if (r) out.push(r);
    }
    return out;
  }
}

describe('CachedRegistrationStore prefetch', () => {
  it('reads the batch in one getMany; later gets (found or not) do not reach the store', async () => {
    const backing = new InMemoryRegistrationStore();
    await backing.put(registration('ep1'), undefined);
    await backing.put(registration('ep2'), undefined);
    const port = new CountingRegistrationsBulk(backing);
    const cache = new CachedRegistrationStore(port);

    await cache.prefetch(['ep1', 'ep2', 'ep3']);
    expect(port.manyArgs).toEqual([['ep1', 'ep2', 'ep3']]);
    expect((await cache.get('ep1'))?.version).toBe(1);
    expect(await cache.get('ep3')).toBeUndefined();
    await cache.prefetch(['ep1', 'ep2']); // already loaded
    expect(port.calls).toEqual({ get: 0, put: 0, delete: 0, getMany: 1 });

    // A prefetched record is the version condition of the flush.
    const r = (await cache.get('ep2'))!;
    await cache.put({ ...r, lastUpdate: T0 + 1 }, r.version);
    await cache.put(registration('ep3'), undefined);
    await cache.flush();
    expect(port.calls.put).toBe(2);
    expect(await backing.get('ep2')).toMatchObject({ version: 2, lastUpdate: T0 + 1 });
    expect(await backing.get('ep3')).toMatchObject({ version: 1 });
  });

  it('does not prefetch an endpoint deleted in this batch', async () => {
    const backing = new InMemoryRegistrationStore();
    await backing.put(registration('ep1'), undefined);
    await backing.put(registration('ep2'), undefined);
    const port = new CountingRegistrationsBulk(backing);
    const cache = new CachedRegistrationStore(port);

    await cache.delete('ep1');
    await cache.prefetch(['ep1', 'ep2']);
    expect(port.manyArgs).toEqual([['ep2']]);
    expect(await cache.get('ep1')).toBeUndefined();
    await cache.prefetch(['ep1']);
    expect(port.calls.getMany).toBe(1);
    await cache.flush();
    expect(await backing.get('ep1')).toBeUndefined();
    expect(port.calls.get).toBe(0);
  });

  it('falls back to one get per endpoint without getMany, still once per batch', async () => {
    const backing = new InMemoryRegistrationStore();
    await backing.put(registration('ep1'), undefined);
    const port = new CountingRegistrations(backing);
    const cache = new CachedRegistrationStore(port);

    await cache.prefetch(['ep1', 'ep2']);
    expect(port.calls.get).toBe(2);
    expect((await cache.get('ep1'))?.version).toBe(1);
    expect(await cache.get('ep2')).toBeUndefined();
    expect(port.calls.get).toBe(2);

    // A new batch (flush clears) reads again.
    await cache.flush();
    await cache.prefetch(['ep1']);
    expect(port.calls.get).toBe(3);
  });

  it('is driven by Lwm2mServer.prepare: one bulk read for the endpoints of a batch, malformed topics skipped', async () => {
    const backing = new InMemoryRegistrationStore();
    const port = new CountingRegistrationsBulk(backing);
    const cache = new CachedRegistrationStore(port);
    const server = new Lwm2mServer({
      registrations: cache,
      pending: new InMemoryPendingRequestStore(),
      clock: () => T0,
    });
    const register = (ep: string): InboundMessage => ({
      topic: `lwm2m/rd/${ep}`,
      payload: encodeMessage({
        operation: Operation.Register,
        token: 1,
        ep,
        lifetime: 60,
        version: '1.2',
        payload: new TextEncoder().encode('</3/0>'),
      }),
      receivedAt: T0,
    });
    const batch = [
      register('a'),
      register('b'),
      register('a'),
      { topic: 'nope', payload: new Uint8Array(), receivedAt: T0 },
    ];
    cache.clear();
    await server.prepare(batch);
    expect(port.manyArgs).toEqual([['a', 'b']]);
    for (const m of batch.slice(0, 2)) await server.handle(m);
    await cache.flush();
    expect(port.calls).toEqual({ get: 0, put: 2, delete: 0, getMany: 1 });
    expect(
      backing
        .all()
        .map((r) => r.endpoint)
        .sort(),
    ).toEqual(['a', 'b']);
  });
});

// ---- through processBatch ---------------------------------------------------------------------------

describe('write-behind cache wired into processBatch', () => {
  function ingest(port: Counting, opts: { failWrites?: number } = {}) {
    let failWrites = opts.failWrites ?? 0;
    // The host owns its write-back cache; processBatch begins, commits and aborts it.
    const host = new SparkplugHost({ store: port, clock: () => now, rebirthThrottleMs: 0, writeBack: {} });
    const stored: unknown[] = [];
    let seq = 0;
    const run = (...messages: InboundMessage[]) => {
      port.reset();
      const records: IngestRecord[] = messages.map((m) => ({
        sequenceNumber: String(++seq).padStart(8, '0'),
        partitionKey: m.topic.split('/')[3]!,
        data: Buffer.from(
          JSON.stringify({
            topic: m.topic,
            payload: Buffer.from(m.payload).toString('base64'),
            receivedAt: m.receivedAt,
          }),
        ),
      }));
      return processBatch(records, {
        protocol: 'sparkplug',
        processor: host,
        enricher: {
          async prepare() {},
          enrich: (readings) => ({
            enriched: readings.map((r) => ({ ...r, enrichment: { deviceType: 'x', applications: [] } })),
            unknownDevices: [],
          }),
        },
        store: {
          async write(readings) {
            if (failWrites-- > 0) throw new TransientError('TEST_STORE', 'store unavailable');
            stored.push(...readings);
            return { written: readings.length, duplicates: 0, rejected: [] };
          },
        },
        publisher: { async publish() {} },
        events: new InMemoryEventLog(),
        clock: () => now,
        sleep: async () => {},
      });
    };
    return { run, stored };
  }

  it('a batch whose store write fails is redelivered against the state it started from (DATA before a death is not lost)', async () => {
    at(T0);
    const port = new CountingVersioned(new InMemorySparkplugStateStore());
    // The store fails all three attempts of the second batch, then recovers.
    const { run, stored } = ingest(port, { failWrites: 0 });
    expect((await run(msg('NBIRTH', nbirth(1)))).batchItemFailures).toEqual([]);
    const failing = ingest(port, { failWrites: 3 });
    const batch = [msg('NDATA', ndata(1, 7.5)), msg('NDEATH', ndeath(1))];
    expect((await failing.run(...batch)).batchItemFailures).toHaveLength(1);
    expect(failing.stored).toEqual([]);
    // Redelivered: the death was not persisted by the failed attempt, so the DATA before it still counts.
    const retried = await failing.run(...batch);
    expect(retried.batchItemFailures).toEqual([]);
    expect(failing.stored.map((r) => (r as { value: unknown }).value)).toEqual([7.5]);
    expect(stored).toHaveLength(1); // the birth's reading, from the first handler
  });

  it('a throttled state write is retried within the batch: only what is still unwritten is written again', async () => {
    at(T0);
    const backing = new InMemorySparkplugStateStore();
    const port = new CountingVersioned(backing);
    const { run } = ingest(port);
    const original = port.putNode.bind(port);
    let throttles = 1;
    port.putNode = async (record, expected) => {
      if (record.node === 'edge-2' && throttles-- > 0)
        throw new TransientError('TEST_THROTTLED', 'slow down');
      return original(record, expected);
    };
    const out = await run(msg('NBIRTH', nbirth(1)), msg('NBIRTH', nbirth(1), 'edge-2'));
    expect(out.batchItemFailures).toEqual([]);
    expect(out.stats.retries).toBeGreaterThanOrEqual(1);
    // edge-1 written once (not again on the retry), edge-2 on the second attempt.
    expect((await backing.getNode(G, 'edge-1'))?.version).toBe(1);
    expect((await backing.getNode(G, 'edge-2'))?.version).toBe(1);
  });

  it('keeps state across batches, and a flush conflict redelivers the batch and re-reads', async () => {
    at(T0);
    const backing = new InMemorySparkplugStateStore();
    const port = new CountingVersioned(backing);
    const { run, stored } = ingest(port);
    expect((await run(msg('NBIRTH', nbirth(1)))).batchItemFailures).toEqual([]);

    const warm = await run(msg('NDATA', ndata(1)), msg('NDATA', ndata(2)));
    expect(warm.batchItemFailures).toEqual([]);
    expect(port.calls).toEqual({ ...zero(), getVersions: 1 });

    // Another writer moves the node while this batch (with a structural change) runs.
    const original = port.getVersions.bind(port);
    port.getVersions = async (nodes, devices) => {
      const out = await original(nodes, devices);
      await bumpNode(backing);
      return out;
    };
    const batch = [msg('NDATA', ndata(3)), msg('NDATA', unknownAlias(4))];
    const before = stored.length;
    const conflicted = await run(...batch);
    expect(conflicted.batchItemFailures).toHaveLength(1);
    // Readings are stored before state is flushed: the redelivery re-writes them (idempotent).
    expect(stored.length).toBeGreaterThan(before);
    const afterConflict = stored.length;
    port.getVersions = original;

    // Redelivered: nothing is cached any more, the node is read in bulk (cold) and written.
    const retried = await run(...batch);
    expect(retried.batchItemFailures).toEqual([]);
    expect(port.calls).toEqual({ ...zero(), getMany: 1, putNode: 1 });
    expect(retried.stats.rebirthsRequested).toBe(1);
    expect(retried.stats.readingsStored + retried.stats.duplicates).toBe(stored.length - afterConflict);
  });
});
