/**
 * The Sparkplug B 3.0 host application, minus the MQTT session: it never publishes STATE, but does
 * everything else a correct host does (spec Ch.5/6), with its state behind a storage port so a
 * stateless Lambda can run it. See ADR 0003 for the rules and the sequence algorithm.
 */
import { ConflictError, DecodeError, ProtocolError } from '../../errors.js';
import type { Clock, InboundMessage, MessageProcessor } from '../../processor.js';
import type { LifecycleEvent, MessageOutcome, PublishAction, Reading } from '../../reading.js';
import { CachedSparkplugStateStore } from '../../state-cache.js';
import { parseSparkplugTopic, type SparkplugTopic, sparkplugTopic } from '../../topics.js';
import { decodePayload, encodePayload, parseStateMessage } from '../codec.js';
import { DataType, type SpMetric, type SpPayload, type SpTemplate } from '../types.js';
import { describeMetric, type FlattenContext, flattenInto, scalarParams, templateDef } from './flatten.js';
import {
  type DeviceKey,
  type DeviceRecord,
  lookup,
  type MetricDef,
  type NodeKey,
  type NodeRecord,
  type SparkplugStateStore,
  type TemplateDef,
} from './state.js';

export interface SparkplugHostOptions {
  store: SparkplugStateStore;
  clock: Clock;
  /** Minimum time between two rebirth requests to one node (Tahu: 5 s). */
  rebirthThrottleMs?: number;
  /** How long a seq gap may stay open before it counts as lost (spec "Reorder Timeout"). */
  reorderTimeoutMs?: number;
  /** Conflict retries when another writer changed the node concurrently. */
  conflictRetries?: number;
  /**
   * Keep state in a write-back cache over `store` (the ingest functions, ADR 0012): read once per key
   * per batch, written by commit() after the batch's readings are stored. Without it every change is
   * written at once (tests, one-off tools).
   */
  writeBack?: { checkpointMs?: number; maxEntries?: number };
}

/**
 * Bounds of one birth: its alias table and template definitions become one DynamoDB item (≤ 400 KB).
 * A birth above them is quarantined (BIRTH_TOO_LARGE) instead of failing every batch that would write
 * its state.
 */
export const MAX_BIRTH_METRICS = 5_000;
export const MAX_BIRTH_STATE_BYTES = 256 * 1024;

function checkBirthSize(metrics: SpMetric[], kind: 'NBIRTH' | 'DBIRTH'): void {
  let count = 0;
  let bytes = 0;
  const visit = (list: SpMetric[]) => {
    for (const m of list) {
      count++;
      // Name, alias, datatype and the record's own overhead, as the state item stores them.
      bytes += (m.name?.length ?? 0) + 32;
      const v = m.value as { metrics?: SpMetric[] } | null | undefined;
      if (v && typeof v === 'object' && Array.isArray(v.metrics)) visit(v.metrics);
    }
  };
  visit(metrics);
  if (count > MAX_BIRTH_METRICS || bytes > MAX_BIRTH_STATE_BYTES) {
    throw new ProtocolError(
      'BIRTH_TOO_LARGE',
      `${kind} with ${count} metrics (~${bytes} bytes of state) exceeds ${MAX_BIRTH_METRICS} metrics / ${MAX_BIRTH_STATE_BYTES} bytes`,
      { field: 'metrics' },
    );
  }
}

/** Topics remembered by a host (one or two per edge node and device). */
const MAX_TOPICS = 20_000;
/** Size of the window of recently received seqs used to recognise duplicates. */
const RECENT_SEQS = 32;

/**
 * A redriven DATA message is replayed against the stored session if that session's birth (device
 * clock) is at most this much later than the message's receipt (broker clock).
 */
export const REDRIVE_CLOCK_SKEW_MS = 5_000;
const REBIRTH_METRIC = 'Node Control/Rebirth';
/** Protocol plumbing, not telemetry. */
const isControlMetric = (name: string) => name === 'bdSeq' || name.startsWith('Node Control/');

type Kind = 'NBIRTH' | 'NDATA' | 'NDEATH' | 'DBIRTH' | 'DDATA' | 'DDEATH' | 'NCMD' | 'DCMD' | 'STATE';

interface Ctx {
  topic: Extract<SparkplugTopic, { kind: 'message' }>;
  msg: InboundMessage;
  payload: SpPayload;
  now: number;
  readings: Reading[];
  events: LifecycleEvent[];
  actions: PublishAction[];
}

export class SparkplugHost implements MessageProcessor {
  private readonly store: SparkplugStateStore;
  /** The write-back cache this host owns (with `writeBack`); `store` is then this cache. */
  private readonly cache: CachedSparkplugStateStore | undefined;
  private readonly clock: Clock;
  private readonly throttleMs: number;
  private readonly reorderMs: number;
  private readonly conflictRetries: number;
  /** Parsed topics of valid messages (a fleet repeats a few topics per node): parsed once each. */
  private readonly topics = new Map<string, SparkplugTopic>();

  constructor(opts: SparkplugHostOptions) {
    this.cache = opts.writeBack
      ? new CachedSparkplugStateStore(opts.store, { ...opts.writeBack, clock: opts.clock })
      : undefined;
    this.store = this.cache ?? opts.store;
    this.clock = opts.clock;
    this.throttleMs = opts.rebirthThrottleMs ?? 5000;
    this.reorderMs = opts.reorderTimeoutMs ?? 2000;
    this.conflictRetries = opts.conflictRetries ?? 3;
  }

  begin(): void {
    this.cache?.begin();
  }

  async commit(): Promise<void> {
    await this.cache?.flush();
  }

  abort(): void {
    this.cache?.clear();
  }

  /** Bulk-loads the state of every edge node and device the batch talks about (if the store can). */
  async prepare(messages: InboundMessage[]): Promise<void> {
    if (!this.store.prefetch) return;
    const nodes = new Map<string, NodeKey>();
    const devices = new Map<string, DeviceKey>();
    for (const m of messages) {
      let t: SparkplugTopic;
      try {
        t = this.parseTopic(m.topic);
      } catch {
        continue; // handle() quarantines it
      }
      if (t.kind !== 'message') continue;
      nodes.set(`${t.group}/${t.node}`, { group: t.group, node: t.node });
      if (t.device !== undefined) {
        devices.set(`${t.group}/${t.node}/${t.device}`, { group: t.group, node: t.node, device: t.device });
      }
    }
    await this.store.prefetch([...nodes.values()], [...devices.values()]);
  }

  /** parseSparkplugTopic, remembered for valid topics (bounded; the parsed topics are never changed). */
  private parseTopic(topic: string): SparkplugTopic {
    let parsed = this.topics.get(topic);
    if (parsed === undefined) {
      parsed = parseSparkplugTopic(topic);
      if (this.topics.size >= MAX_TOPICS) this.topics.clear();
      this.topics.set(topic, parsed);
    }
    return parsed;
  }

  async handle(msg: InboundMessage): Promise<MessageOutcome> {
    const topic = this.parseTopic(msg.topic);
    if (topic.kind === 'state') {
      // STATE is JSON from another host application: never protobuf.
      const state = parseStateMessage(msg.payload);
      return {
        protocol: 'sparkplug',
        kind: 'STATE',
        deviceId: topic.hostId,
        readings: [],
        events: [
          {
            type: 'state',
            protocol: 'sparkplug',
            deviceId: topic.hostId,
            time: msg.receivedAt,
            detail: `host ${topic.hostId} ${state.online ? 'online' : 'offline'}`,
            data: { online: state.online, timestamp: state.timestamp },
          },
        ],
        actions: [],
      };
    }
    const payload = decodePayload(msg.payload);
    for (let attempt = 0; ; attempt++) {
      const ctx: Ctx = { topic, msg, payload, now: this.clock(), readings: [], events: [], actions: [] };
      try {
        if (msg.redriveOf === undefined) await this.dispatch(ctx);
        else {
          await this.lateMessage(ctx);
          // A late message asks nothing of the device now: no rebirth request, no command.
          ctx.actions = [];
          ctx.events = ctx.events.filter((e) => e.type !== 'rebirth-requested');
        }
        const outcome: MessageOutcome = {
          protocol: 'sparkplug',
          kind: topic.type,
          deviceId: topic.node,
          group: topic.group,
          readings: ctx.readings,
          events: ctx.events,
          actions: ctx.actions,
        };
        if (topic.device !== undefined) outcome.subDevice = topic.device;
        return outcome;
      } catch (error) {
        // Another writer advanced the node between our read and write: read again and decide again.
        if (error instanceof ConflictError && attempt < this.conflictRetries) continue;
        throw error;
      }
    }
  }

  /** Not async itself: returning the handler's promise from an async function costs extra ticks per message. */
  private dispatch(ctx: Ctx): Promise<void> {
    switch (ctx.topic.type as Kind) {
      case 'NBIRTH':
        return this.nodeBirth(ctx);
      case 'NDEATH':
        return this.nodeDeath(ctx);
      case 'NCMD':
      case 'DCMD':
        // Commands are host → device; seeing one means our own (or another host's) publish came back.
        this.event(ctx, 'ignored', `${ctx.topic.type} is a command to the edge node, not data`);
        return Promise.resolve();
      default:
        return this.nodeMessage(ctx);
    }
  }

  // ---- redriven (late) messages (ADR 0017) -----------------------------------------------------

  /**
   * A redriven message arrives after the messages that followed it on the stream, so it must not move
   * the node's state (seq, session, aliases) backwards: it is replayed against the session it was sent
   * in, for its readings. A birth newer than the state, and NDEATH (honoured only for the bdSeq of the
   * current birth), take the normal path. DATA of a session that has since been replaced cannot be
   * resolved (its aliases are gone): it is quarantined with its payload, never dropped silently.
   */
  private async lateMessage(ctx: Ctx): Promise<void> {
    const { topic, payload, msg } = ctx;
    const type = topic.type as Kind;
    if (type === 'NDEATH' || type === 'NCMD' || type === 'DCMD') return this.dispatch(ctx);
    const node = await this.store.getNode(topic.group, topic.node);
    if (type === 'NBIRTH') {
      const birthTime = payload.timestamp ?? msg.receivedAt;
      if (!node || node.birthTime < birthTime) return this.nodeBirth(ctx);
      checkBirthSize(payload.metrics, 'NBIRTH');
      const templates: Record<string, TemplateDef> = {};
      for (const m of payload.metrics) {
        if (m.name !== undefined && m.datatype === DataType.Template && isDefinition(m))
          templates[m.name] = templateDef(m.value as SpTemplate);
      }
      const defs = collectDefs(payload.metrics, templates);
      this.event(ctx, 'duplicate', 'redriven NBIRTH not newer than the current birth: readings only');
      this.emitMetrics(ctx, payload.metrics, { ...node, templates }, undefined, defs);
      return;
    }
    if (!node || node.birthTime > msg.receivedAt + REDRIVE_CLOCK_SKEW_MS) {
      throw new ProtocolError(
        'REDRIVE_SESSION_ENDED',
        `redriven ${type}: the edge node's session it belongs to has been replaced, its aliases are unknown`,
        { field: 'topic' },
      );
    }
    if (type === 'NDATA') return this.emitMetrics(ctx, payload.metrics, node, undefined, node);
    const device = topic.device!;
    if (type === 'DBIRTH') {
      checkBirthSize(payload.metrics, 'DBIRTH');
      const defs = collectDefs(payload.metrics, node.templates);
      return this.emitMetrics(ctx, payload.metrics, node, device, defs);
    }
    const d = await this.store.getDevice(topic.group, topic.node, device);
    if (type === 'DDEATH') {
      if (node.online && d?.online && d.nodeBirthTime === node.birthTime) await this.deviceDeath(ctx, node);
      return;
    }
    if (!d || d.nodeBirthTime !== node.birthTime) {
      throw new ProtocolError(
        'REDRIVE_SESSION_ENDED',
        `redriven DDATA: device ${device}'s birth in this session is unknown`,
        { field: 'topic' },
      );
    }
    this.emitMetrics(ctx, payload.metrics, node, device, d);
  }

  // ---- births and deaths -----------------------------------------------------------------------

  private async nodeBirth(ctx: Ctx): Promise<void> {
    checkBirthSize(ctx.payload.metrics, 'NBIRTH');
    const { topic, payload, msg } = ctx;
    const existing = await this.store.getNode(topic.group, topic.node);
    const birthTime = payload.timestamp ?? msg.receivedAt;
    const bdSeq = bdSeqOf(payload.metrics);
    if (existing?.online && existing.birthTime > birthTime) {
      this.event(
        ctx,
        'ignored',
        `late NBIRTH (timestamp ${birthTime}) older than the current birth ${existing.birthTime}`,
      );
      return;
    }
    if (existing && !existing.online && existing.birthTime > 0 && existing.bdSeq === bdSeq) {
      if (birthTime <= existing.birthTime) {
        // A reconnect increments bdSeq: the same bdSeq and no newer timestamp is a redelivered birth
        // of a session whose death we already honoured. It must not bring the node back online.
        this.event(ctx, 'ignored', `NBIRTH of the dead session bdSeq ${bdSeq} (redelivered)`);
        return;
      }
    }
    if (existing?.online && existing.birthTime === birthTime && existing.bdSeq === bdSeq) {
      // The same NBIRTH again (QoS 0 duplicate or a retried batch): its values are re-emitted
      // (writes are idempotent) but the session, seq and aliases are not reset.
      this.event(ctx, 'duplicate', `NBIRTH bdSeq ${bdSeq ?? '?'} already received`);
      this.emitMetrics(ctx, payload.metrics, existing, undefined, existing);
      await this.store.putNode(existing, existing.version);
      return;
    }
    const templates: Record<string, TemplateDef> = {};
    for (const m of payload.metrics) {
      if (m.name !== undefined && m.datatype === DataType.Template && isDefinition(m)) {
        templates[m.name] = templateDef(m.value as SpTemplate);
      }
    }
    const defs = collectDefs(payload.metrics, templates);
    const seq = payload.seq === undefined ? 0 : Number(payload.seq % 256n);
    const record: NodeRecord = {
      group: topic.group,
      node: topic.node,
      version: existing?.version ?? 0,
      online: true,
      birthTime,
      lastSeen: msg.receivedAt,
      expectedSeq: (seq + 1) % 256,
      recentSeqs: [seq],
      aliases: defs.aliases,
      metrics: defs.metrics,
      templates,
      devices: existing?.devices ?? [],
    };
    if (bdSeq !== undefined) record.bdSeq = bdSeq;
    if (existing?.lastRebirthRequest !== undefined) record.lastRebirthRequest = existing.lastRebirthRequest;
    this.event(ctx, 'birth', `NBIRTH bdSeq ${bdSeq ?? '?'}`, {
      bdSeq,
      metrics: Object.keys(defs.metrics).length,
    });
    if (bdSeq === undefined) this.event(ctx, 'ignored', 'NBIRTH without a bdSeq metric');
    if (defs.duplicates.length > 0) {
      this.requestRebirth(ctx, record, `duplicate alias in NBIRTH: ${defs.duplicates.join(', ')}`);
    }
    this.emitMetrics(ctx, payload.metrics, record, undefined, {
      aliases: defs.aliases,
      metrics: defs.metrics,
    });
    await this.store.putNode(record, existing?.version);
  }

  private async nodeDeath(ctx: Ctx): Promise<void> {
    const { topic, payload, msg } = ctx;
    const node = await this.store.getNode(topic.group, topic.node);
    const bdSeq = bdSeqOf(payload.metrics);
    if (!node) {
      this.event(ctx, 'ignored', 'NDEATH for a node never born');
      return;
    }
    if (!node.online) {
      this.event(ctx, 'ignored', 'NDEATH for a node already offline');
      return;
    }
    if (bdSeq === undefined || bdSeq !== node.bdSeq) {
      // A late Will from an older session must not kill the current one.
      this.event(
        ctx,
        'ignored',
        `NDEATH bdSeq ${bdSeq ?? 'missing'} does not match the NBIRTH bdSeq ${node.bdSeq ?? '?'}`,
      );
      return;
    }
    node.online = false;
    node.lastSeen = msg.receivedAt;
    delete node.gap;
    // Stale at the host's receipt time (spec: NDEATH may be the broker's Will, with no useful time).
    this.event(ctx, 'death', `NDEATH bdSeq ${bdSeq}`, { bdSeq });
    this.event(ctx, 'stale', `node metrics stale: ${Object.keys(node.metrics).length}`, {
      // Birth-level names: a stale name covers its flattened readings (`name/...`). Template
      // definitions are state, not data, so they are not listed.
      metrics: Object.keys(node.metrics).filter(
        (n) => !isControlMetric(n) && lookup(node.templates, n) === undefined,
      ),
      devices: node.devices,
      at: msg.receivedAt,
    });
    for (const device of node.devices) {
      const d = await this.store.getDevice(topic.group, topic.node, device);
      if (!d?.online) continue;
      ctx.events.push({
        type: 'stale',
        protocol: 'sparkplug',
        deviceId: topic.node,
        subDevice: device,
        time: msg.receivedAt,
        detail: `device stale with its node: ${Object.keys(d.metrics).length} metrics`,
        data: { metrics: Object.keys(d.metrics), at: msg.receivedAt },
      });
      await this.store.putDevice({ ...d, online: false }, d.version);
    }
    await this.store.putNode(node, node.version);
  }

  // ---- DATA, DBIRTH, DDEATH (seq-checked) ------------------------------------------------------

  private async nodeMessage(ctx: Ctx): Promise<void> {
    const { topic, payload, msg } = ctx;
    const node = await this.store.getNode(topic.group, topic.node);
    if (!node?.online) {
      // No live session: keep (or start) a record so the rebirth throttle holds across messages.
      const record = node ?? placeholderNode(topic.group, topic.node, msg.receivedAt);
      this.event(ctx, 'ignored', `${topic.type} from ${node ? 'an offline' : 'an unknown'} edge node`);
      this.requestRebirth(ctx, record, `${topic.type} before NBIRTH`);
      await this.store.putNode(record, node?.version);
      return;
    }
    node.lastSeen = msg.receivedAt;
    this.checkSeq(ctx, node);

    switch (topic.type as Kind) {
      case 'NDATA':
        this.emitMetrics(ctx, payload.metrics, node, undefined, node);
        break;
      case 'DBIRTH':
        await this.deviceBirth(ctx, node);
        break;
      case 'DDATA':
        await this.deviceData(ctx, node);
        break;
      case 'DDEATH':
        await this.deviceDeath(ctx, node);
        break;
    }
    await this.store.putNode(node, node.version);
  }

  private async deviceBirth(ctx: Ctx, node: NodeRecord): Promise<void> {
    checkBirthSize(ctx.payload.metrics, 'DBIRTH');
    const device = ctx.topic.device!;
    const existing = await this.store.getDevice(ctx.topic.group, ctx.topic.node, device);
    const defs = collectDefs(ctx.payload.metrics, node.templates);
    const record: DeviceRecord = {
      group: ctx.topic.group,
      node: ctx.topic.node,
      device,
      version: existing?.version ?? 0,
      online: true,
      nodeBirthTime: node.birthTime,
      birthTime: ctx.payload.timestamp ?? ctx.msg.receivedAt,
      aliases: defs.aliases,
      metrics: defs.metrics,
    };
    // Never mutate nested state in place: a conflicting write must leave the stored record intact.
    if (!node.devices.includes(device)) node.devices = [...node.devices, device];
    ctx.events.push({
      type: 'birth',
      protocol: 'sparkplug',
      deviceId: ctx.topic.node,
      subDevice: device,
      time: ctx.msg.receivedAt,
      detail: `DBIRTH ${Object.keys(defs.metrics).length} metrics`,
    });
    if (defs.duplicates.length > 0)
      this.requestRebirth(ctx, node, `duplicate alias in DBIRTH: ${defs.duplicates.join(', ')}`);
    this.emitMetrics(ctx, ctx.payload.metrics, node, device, record);
    await this.store.putDevice(record, existing?.version);
  }

  private async liveDevice(ctx: Ctx, node: NodeRecord): Promise<DeviceRecord | undefined> {
    const device = ctx.topic.device!;
    const d = await this.store.getDevice(ctx.topic.group, ctx.topic.node, device);
    if (d?.online && d.nodeBirthTime === node.birthTime) return d;
    this.event(ctx, 'ignored', `${ctx.topic.type} for device ${device} without a DBIRTH in this session`);
    this.requestRebirth(ctx, node, `${ctx.topic.type} for device ${device} without DBIRTH`);
    return undefined;
  }

  private async deviceData(ctx: Ctx, node: NodeRecord): Promise<void> {
    const d = await this.liveDevice(ctx, node);
    if (d) this.emitMetrics(ctx, ctx.payload.metrics, node, d.device, d);
  }

  private async deviceDeath(ctx: Ctx, node: NodeRecord): Promise<void> {
    const d = await this.liveDevice(ctx, node);
    if (!d) return;
    const at = ctx.payload.timestamp ?? ctx.msg.receivedAt;
    ctx.events.push(
      {
        type: 'death',
        protocol: 'sparkplug',
        deviceId: ctx.topic.node,
        subDevice: d.device,
        time: at,
        detail: 'DDEATH',
      },
      {
        type: 'stale',
        protocol: 'sparkplug',
        deviceId: ctx.topic.node,
        subDevice: d.device,
        time: at,
        detail: `device metrics stale: ${Object.keys(d.metrics).length}`,
        data: { metrics: Object.keys(d.metrics), at },
      },
    );
    await this.store.putDevice({ ...d, online: false }, d.version);
  }

  /**
   * One seq counter per node (0-255, shared by N* and D* except NDEATH). In order: advance. Ahead by
   * 1..127: record the skipped seqs as missing with a deadline (messages may be reordered) and advance.
   * Otherwise the seq is behind: it fills a missing seq (late), or it was received already
   * (duplicate). A gap still open when a message arrives after its deadline asks for a rebirth; if that
   * request is throttled the gap stays open, so the next message after the throttle window asks again.
   * See ADR 0003.
   */
  private checkSeq(ctx: Ctx, node: NodeRecord): void {
    const seqRaw = ctx.payload.seq;
    if (seqRaw === undefined) {
      this.event(ctx, 'seq-gap', `${ctx.topic.type} without seq`);
      return;
    }
    const seq = Number(seqRaw % 256n);
    const now = ctx.msg.receivedAt;
    const expected = node.expectedSeq ?? seq;
    const ahead = (seq - expected + 256) % 256;
    let gap = node.gap;
    if (gap?.missing.includes(seq)) {
      gap = { ...gap, missing: gap.missing.filter((s) => s !== seq) };
      this.event(ctx, 'seq-gap', `late seq ${seq} filled the gap`, { seq, missing: gap.missing });
    } else if (ahead === 0) {
      node.expectedSeq = (seq + 1) % 256;
    } else if (ahead < 128 && !node.recentSeqs.includes(seq)) {
      const missing = Array.from({ length: ahead }, (_, i) => (expected + i) % 256);
      // Bounded: at most 255 distinct seqs can be missing; a seq we now receive is not missing.
      const all = new Set([...(gap?.missing ?? []), ...missing]);
      all.delete(seq);
      gap = { missing: [...all].slice(-255), deadline: gap?.deadline ?? now + this.reorderMs };
      node.expectedSeq = (seq + 1) % 256;
      this.event(ctx, 'seq-gap', `expected seq ${expected}, got ${seq}`, { seq, expected, missing });
    } else {
      const seen = node.recentSeqs.includes(seq);
      this.event(
        ctx,
        'duplicate',
        seen ? `seq ${seq} already received` : `old seq ${seq} (expected ${expected})`,
        {
          seq,
          expected,
        },
      );
    }
    // A new array (stored state is never mutated in place), built in one pass: this runs per message.
    const previous = node.recentSeqs;
    const recent: number[] = [];
    for (let i = 0; i < previous.length; i++) if (previous[i] !== seq) recent.push(previous[i]!);
    recent.push(seq);
    if (recent.length > RECENT_SEQS) recent.splice(0, recent.length - RECENT_SEQS);
    node.recentSeqs = recent;
    if (gap && gap.missing.length === 0) gap = undefined;
    if (gap && now > gap.deadline) {
      const sent = this.requestRebirth(
        ctx,
        node,
        `seq gap not recovered within ${this.reorderMs} ms: missing ${gap.missing.join(', ')}`,
      );
      if (sent) gap = undefined;
    }
    if (gap) node.gap = gap;
    else delete node.gap;
  }

  // ---- metrics ---------------------------------------------------------------------------------

  private emitMetrics(
    ctx: Ctx,
    metrics: SpMetric[],
    node: NodeRecord,
    device: string | undefined,
    scope: { aliases: Record<string, MetricDef>; metrics: Record<string, MetricDef> },
  ): void {
    const unknown: string[] = [];
    const defaultTime = ctx.payload.timestamp ?? ctx.msg.receivedAt;
    const fctx: FlattenContext = {
      deviceId: ctx.topic.node,
      group: ctx.topic.group,
      defaultTime,
      templates: node.templates,
      unresolved: unknown,
    };
    if (device !== undefined) fctx.subDevice = device;
    const aliases = aliasMap(scope.aliases);
    for (const m of metrics) {
      let def: MetricDef | undefined;
      if (m.name !== undefined) def = lookup(scope.metrics, m.name);
      else if (m.alias !== undefined) def = aliases.get(m.alias);
      const name = m.name ?? def?.name;
      const datatype = m.datatype ?? def?.datatype;
      if (name === undefined || datatype === undefined || (m.name !== undefined && def === undefined)) {
        unknown.push(m.name ?? `alias ${m.alias ?? '?'}`);
        continue;
      }
      if (isControlMetric(name)) continue;
      if (datatype === DataType.Template && isDefinition(m)) continue;
      const before = ctx.readings.length;
      try {
        flattenInto(ctx.readings, m, name, datatype, fctx, def, 0);
      } catch (error) {
        ctx.readings.length = before; // a template that failed halfway adds none of its members
        // The datatype came from our copy of the birth and the wire value does not fit it: the edge
        // node's metric set changed without a birth we saw. Not a malformed payload: ask again.
        if (m.datatype !== undefined || !(error instanceof DecodeError)) throw error;
        unknown.push(`${name} (value does not fit the birth datatype)`);
      }
    }
    if (unknown.length > 0) {
      this.event(ctx, 'ignored', `metrics not in the birth: ${unknown.slice(0, 10).join(', ')}`, { unknown });
      this.requestRebirth(ctx, node, `unknown metric or alias: ${unknown.slice(0, 3).join(', ')}`);
    }
  }

  // ---- rebirth requests ------------------------------------------------------------------------

  /** Returns whether a request was sent (false: throttled, an event only). */
  private requestRebirth(ctx: Ctx, node: NodeRecord, reason: string): boolean {
    const now = ctx.now;
    if (node.lastRebirthRequest !== undefined && now - node.lastRebirthRequest < this.throttleMs) {
      this.event(ctx, 'rebirth-requested', `throttled: ${reason}`, { throttled: true });
      return false;
    }
    node.lastRebirthRequest = now;
    ctx.actions.push(rebirthAction(ctx.topic.group, ctx.topic.node, now, reason));
    this.event(ctx, 'rebirth-requested', reason, { throttled: false });
    return true;
  }

  private event(
    ctx: Ctx,
    type: LifecycleEvent['type'],
    detail: string,
    data?: Record<string, unknown>,
  ): void {
    const e: LifecycleEvent = {
      type,
      protocol: 'sparkplug',
      deviceId: ctx.topic.node,
      time: ctx.msg.receivedAt,
      detail,
    };
    if (ctx.topic.device !== undefined) e.subDevice = ctx.topic.device;
    if (data) e.data = data;
    ctx.events.push(e);
  }
}

/** NCMD `Node Control/Rebirth` = true: QoS 0, a timestamp, no seq (spec Ch.5 Commands). */
export function rebirthAction(group: string, node: string, now: number, reason: string): PublishAction {
  const payload = encodePayload({
    timestamp: now,
    metrics: [{ name: REBIRTH_METRIC, datatype: DataType.Boolean, value: true, timestamp: now }],
  });
  return {
    kind: 'publish',
    topic: sparkplugTopic(group, 'NCMD', node),
    payload,
    qos: 0,
    reason: `rebirth: ${reason}`,
    describe: { metrics: [{ name: REBIRTH_METRIC, type: 'Boolean', value: true }], timestamp: now },
  };
}

function placeholderNode(group: string, node: string, now: number): NodeRecord {
  return {
    group,
    node,
    version: 0,
    online: false,
    birthTime: 0,
    lastSeen: now,
    recentSeqs: [],
    aliases: {},
    metrics: {},
    templates: {},
    devices: [],
  };
}

function isDefinition(m: SpMetric): boolean {
  const v = m.value as SpTemplate | undefined | null;
  return typeof v === 'object' && v !== null && 'isDefinition' in v && v.isDefinition === true;
}

function bdSeqOf(metrics: SpMetric[]): string | undefined {
  const m = metrics.find((x) => x.name === 'bdSeq');
  if (!m) return undefined;
  const raw = m.raw;
  if (raw.field === 'long') return raw.value.toString();
  if (raw.field === 'int') return String(raw.value);
  const v = m.value;
  return typeof v === 'number' || typeof v === 'bigint' ? v.toString() : undefined;
}

function collectDefs(
  metrics: SpMetric[],
  templates: Record<string, TemplateDef>,
): {
  aliases: Record<string, MetricDef>;
  metrics: Record<string, MetricDef>;
  duplicates: string[];
} {
  const aliases: Record<string, MetricDef> = {};
  const byName: Record<string, MetricDef> = {};
  const duplicates: string[] = [];
  for (const m of metrics) {
    if (m.name === undefined) continue;
    if (m.datatype === undefined) {
      throw new ProtocolError('SPARKPLUG_BIRTH_DATATYPE', `birth metric "${m.name}" has no datatype`, {
        field: `metrics.${m.name}.datatype`,
      });
    }
    const def = describeMetric(m, m.name, m.datatype);
    if (def.templateRef !== undefined && !isDefinition(m)) {
      // Parameters are attributes: the definition's defaults overridden by the instance's values.
      const params = scalarParams((m.value as SpTemplate).parameters, {
        ...lookup(templates, def.templateRef)?.params,
      });
      if (Object.keys(params).length > 0) def.params = params;
    }
    byName[m.name] = def;
    if (m.alias !== undefined) {
      const a = m.alias.toString();
      const seen = lookup(aliases, a);
      if (seen && seen.name !== m.name) duplicates.push(a);
      aliases[a] = def;
    }
  }
  return { aliases, metrics: byName, duplicates };
}

/**
 * A birth's alias table keyed by the wire's bigint alias, built once per table: DATA messages name
 * their metrics by alias, and tables are replaced (never changed in place) by births. Only keys
 * written the way a bigint prints are taken: no other key could match `alias.toString()`.
 */
const aliasMaps = new WeakMap<Record<string, MetricDef>, Map<bigint, MetricDef>>();

function aliasMap(aliases: Record<string, MetricDef>): Map<bigint, MetricDef> {
  let map = aliasMaps.get(aliases);
  if (map === undefined) {
    map = new Map();
    for (const key of Object.keys(aliases)) {
      if (!/^(0|[1-9][0-9]*)$/.test(key)) continue;
      map.set(BigInt(key), aliases[key]!);
    }
    aliasMaps.set(aliases, map);
  }
  return map;
}
