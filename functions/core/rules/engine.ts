/**
 * The rule engine: per batch, evaluates the enabled rules over the batch's enriched readings and
 * lifecycle events, keeping per-(rule, series) state in a RuleStateStore with the processors' batch
 * write-back semantics (ADR 0012/0015):
 *
 *   engine.begin();                                   // a batch starts: nothing staged
 *   const transitions = await engine.evaluate({ readings, events, enrichmentOf });
 *   const toDeliver = await engine.commit();          // after the readings are stored
 *   // on giving the batch up instead:  engine.abort();
 *
 * `evaluate` is `collect` (sort the input into per-(rule, series) groups: no I/O) then `run` (load the
 * groups' states, evaluate each group once). The ingest path collects each stored chunk and runs once per
 * batch: a series whose readings are spread over the batch's chunks is loaded and evaluated once, not
 * once per chunk (ADR 0016 amendment 7).
 *
 * `commit` first records the batch's transitions in the AlertStore (idempotent on the transition id),
 * then writes every changed state conditional on the version it read. Transition ids are derived from
 * (rule, series, kind, time), so a batch redelivered after a failed or partial commit reproduces the
 * same ids and `record` applies each at most once; a batch redelivered after a complete commit finds
 * `lastTime` past its readings and skips them. `commit` returns the transitions whose actions are still
 * to be delivered (the AlertStore is their outbox): deliver them, then `alerts.markDispatched(...)`; a
 * crash in between leaves them in `alerts.listUndispatched(before)` for the timer.
 *
 * Absence, offline-for and auto-resolve need a clock: `evaluateClock(now)` (a scheduled function in
 * AWS, a timer locally), followed by `commit`, same as a batch.
 */
import { randomUUID } from 'node:crypto';
import type { Clock } from '../processor.js';
import type { EnrichedReading, Enrichment, LifecycleEvent, LifecycleEventType } from '../reading.js';
import { numberText } from '../reading.js';
import {
  type BoolFn,
  compileBool,
  type EvalContext,
  newWindowCache,
  requirements,
  type WindowCache,
  windowStart,
} from './compile.js';
import { type DetectorOptions, detectScore, newDetectorState } from './detector.js';
import { transitionId } from './hash.js';
import {
  type AlertTransition,
  globToRegExp,
  isGlob,
  type Rule,
  selectsDevice,
  selectsEvent,
  selectsReading,
} from './model.js';
import type { AlertStore, RuleState, RuleStateKey, RuleStateStore } from './store.js';
import type { Condition } from './syntax.js';
import { parseCondition } from './syntax.js';

export interface RuleSource {
  list(): Promise<Rule[]>;
}

export interface RuleEngineOptions {
  rules: RuleSource;
  state: RuleStateStore;
  alerts: AlertStore;
  clock: Clock;
  /** How long the rule list is cached (default 30 s). */
  rulesTtlMs?: number;
  /** Samples kept per series window (default 1,000); beyond it the oldest are dropped. */
  maxWindowSamples?: number;
  detector?: DetectorOptions;
  /** History reads in flight at once (default 16). */
  concurrency?: number;
  /**
   * Keep states across batches when the state port has claims and versions (`getClaims`, `claim`,
   * `getVersions`; default true): a batch then reads one claim per device it evaluates, the versions of
   * the cached states the clock may have written, and the states of the others. At most
   * `maxCachedStates` (default 100,000) are kept.
   */
  cacheAcrossBatches?: boolean;
  /** This engine's id in the state port's claims (default: a random UUID; unique per engine). */
  instanceId?: string;
  maxCachedStates?: number;
  /** (device, metric) selections memoised (default 100,000); beyond it the memo starts over. */
  maxSelections?: number;
  /**
   * Where the stored readings a state has not seen can be read back (the telemetry store). With it and
   * the cross-batch cache, a state whose change follows from its readings alone (last reading, window,
   * detector, hold, throttle bookkeeping) is written at most once per `stateFlushMs` of reading time
   * (ADR 0016 amendment 10); what `mustWrite` lists is written in its batch. A state read from the
   * store (cold start, another writer, a dropped cache) first replays the stored readings after its
   * last time. Without it, every changed state is written every batch. An absence state's due time is
   * written behind too: the clock's engine must be given the same history, to replay such a state
   * before it finds it due.
   */
  history?: RuleHistory;
  /** Default DEFAULT_STATE_FLUSH_MS; 0 writes every changed state every batch. */
  stateFlushMs?: number;
}

/** The stored readings of plain (device, metric) series, for states written behind (see `history`). */
export interface RuleHistory {
  /**
   * The numeric readings of a device's `metrics` stored after `after` (exclusive) up to `until`
   * (inclusive), per metric ascending by time (a metric without readings may be left out). One call per
   * device and time range: a device's frames hold all its metrics, so one read serves its series.
   */
  samples(q: {
    deviceId: string;
    metrics: readonly string[];
    after: number;
    until: number;
  }): Promise<Map<string, Samples>>;
}

export interface Samples {
  times: number[];
  values: number[];
}

export interface EvaluationInput {
  readings: EnrichedReading[];
  events?: LifecycleEvent[];
  /** Device facts for events (readings carry their own), e.g. the ingest enricher's cache. */
  enrichmentOf?: (deviceId: string) => Enrichment | undefined;
}

export interface EngineStats {
  readings: number;
  events: number;
  /** (rule, reading) and (rule, event) evaluations. */
  evaluations: number;
  statesLoaded: number;
  statesWritten: number;
  /** Stored readings evaluated again for states read back behind them (see `history`). */
  replayed: number;
  transitions: number;
}

interface Compiled {
  rule: Rule;
  cond: Condition;
  when?: BoolFn;
  clear?: BoolFn;
  holdMs: number;
  windowMs: number;
  anomaly: boolean;
  metricRe?: RegExp;
  /** Device-level series (absence without a metric, offline, events). */
  deviceSeries: boolean;
}

/**
 * The reading rules of one (device, metric), and the groups of its plain series (built once, kept
 * across calls: a call only re-activates them), `call` the last call that activated them.
 */
interface Selection {
  rules: Compiled[];
  call: number;
  groups: Group[];
  /** What the groups of its plain readings are made of (they are built in `run`, not from a reading). */
  deviceId: string;
  metric: string;
  deviceType: string | undefined;
  protocol: 'sparkplug' | 'lwm2m';
}

/** The reading rules of one device (its type, site and protocol): candidates, then per metric. */
interface DeviceSelection {
  type: string;
  site: string | undefined;
  protocol: 'sparkplug' | 'lwm2m';
  candidates: Compiled[];
  /** Per metric, the index of its Selection (an integer: looking it up touches no per-series object). */
  byMetric: Map<string, number>;
}

interface Entry {
  base: number | undefined;
  value: RuleState;
  dirty: boolean;
  /**
   * Trusted in this batch: its device's claim is this engine's and, if the clock may have written it,
   * its version is the cached one (always true without the cross-batch cache).
   */
  verified: boolean;
  /** Read from the store in this batch: its series replays the stored readings after its last time. */
  fresh: boolean;
  /** Its series can be replayed from the history (a plain (device, metric) series of a reading rule). */
  replayable: boolean;
  /** An absence rule's: its due time follows its last reading, and the clock replays before acting on it. */
  absence: boolean;
  /**
   * Written in this batch whatever else: a transition came from it (a replay must never repeat one), or
   * the store will not give all of this batch's readings back (a late, transient or unusable reading).
   */
  mustFlush: boolean;
  /** What the store has: `flushKey` of the state, its last time, due time and activity, as last written or read. */
  flushedKey: string;
  flushedTime: number;
  flushedDue: number | undefined;
  flushedActive: boolean;
}

/**
 * The fields whose change is written in its batch: the rule revision (a replay under a newer rule would
 * not reset where the evaluation did) and the alert (also written whenever a transition came from the
 * state — `Entry.mustFlush` — so a replay never produces one again). The rest — activity, hold start,
 * throttle bookkeeping, last reading, window, detector — follows from the readings, and a replay
 * rebuilds it; a due time forces its write on its own (the clock acts on the stored state).
 */
const flushKey = (s: RuleState): string => `${s.revision}|${s.alertId}|${s.openedAt}|${s.lastEvent}`;

/** The entry's record of what the store has: `s` as just written or read. */
function flushed(e: Entry, s: RuleState): void {
  e.flushedKey = flushKey(s);
  e.flushedTime = s.lastTime ?? Number.NEGATIVE_INFINITY;
  e.flushedDue = s.dueAt;
  e.flushedActive = s.active;
}

/** What one evaluate() call has for one (rule, series). */
interface Group {
  c: Compiled;
  key: string;
  /** The state port's key (built once: groups live as long as the rule list). */
  stateKey: RuleStateKey;
  series: string;
  /** What a new state of the series is made of (from the reading or event that first selected it). */
  deviceId: string;
  subDevice: string | undefined;
  metric: string | undefined;
  deviceType: string | undefined;
  protocol: 'sparkplug' | 'lwm2m';
  /**
   * This call's samples: its own times[0, n) and values[0, n) (arrays reused across calls), or, when
   * `shared` is set, the range [from, from + n) of the engine's sorted log (see `groupLogged`).
   */
  times: number[];
  values: number[];
  n: number;
  shared: SortedLog | undefined;
  from: number;
  /** The evaluate() call the samples belong to. */
  call: number;
  events?: LifecycleEvent[];
  /** The window functions' incremental structures for this series (rules with a window). */
  cache: WindowCache | undefined;
  /** A reading of this collection the store may not give back (transient, unusable): write the state. */
  force: boolean;
}

/** The collect log sorted by selection (`groupLogged`): each selection's samples in one range. */
interface SortedLog {
  times: Float64Array;
  values: Float64Array;
}

/**
 * Every state object gets the same fields in the same order (absent ones undefined, never deleted):
 * one hidden class, so the per-reading property accesses stay fast.
 */
function shaped(s: RuleState): RuleState {
  return {
    ruleId: s.ruleId,
    series: s.series,
    version: s.version,
    revision: s.revision,
    deviceId: s.deviceId,
    subDevice: s.subDevice,
    metric: s.metric,
    deviceType: s.deviceType,
    protocol: s.protocol,
    lastTime: s.lastTime,
    lastValue: s.lastValue,
    lastEvent: s.lastEvent,
    wt: s.wt,
    wv: s.wv,
    pendingSince: s.pendingSince,
    active: s.active,
    alertId: s.alertId,
    openedAt: s.openedAt,
    lastOpenedAt: s.lastOpenedAt,
    suppressed: s.suppressed,
    heldBack: s.heldBack,
    detector: s.detector,
    dueAt: s.dueAt,
    updatedAt: s.updatedAt,
  };
}

/** A group reading a range of the sorted log takes its samples into its own arrays. */
function ownSamples(g: Group): void {
  const log = g.shared!;
  for (let i = 0; i < g.n; i++) {
    g.times[i] = log.times[g.from + i]!;
    g.values[i] = log.values[g.from + i]!;
  }
  g.shared = undefined;
  g.from = 0;
}

/** Removes the first `n` elements in place (no array of removed elements, unlike splice). */
function dropHead(xs: number[], n: number): void {
  const len = xs.length - n;
  for (let i = 0; i < len; i++) xs[i] = xs[i + n]!;
  xs.length = len;
}

function ascending(times: ArrayLike<number>, from: number, to: number): boolean {
  for (let i = from + 1; i < to; i++) if (times[i]! < times[i - 1]!) return false;
  return true;
}

/** Sorts a group's samples by time (stable: equal times keep batch order), in place. */
function sortByTime(g: Group): void {
  const times = g.shared ? g.shared.times : g.times;
  const values = g.shared ? g.shared.values : g.values;
  const from = g.shared ? g.from : 0;
  const t = Array.from({ length: g.n }, (_, i) => times[from + i]!);
  const v = Array.from({ length: g.n }, (_, i) => values[from + i]!);
  const order = t.map((_, i) => i).sort((a, b) => t[a]! - t[b]! || a - b);
  // A shared range is its selection's: sorted once, the selection's other groups then find it sorted.
  order.forEach((k, i) => {
    times[from + i] = t[k]!;
    values[from + i] = v[k]!;
  });
}

const OFFLINE: ReadonlySet<LifecycleEventType> = new Set(['death', 'expired', 'deregister']);
const ONLINE: ReadonlySet<LifecycleEventType> = new Set(['birth', 'register', 'update']);
const MEMO_MAX = 100_000;
/**
 * Cached states whose stored due time is within this of now are checked by version before they are
 * trusted: the rules clock may act on them (it ticks every minute in AWS; the margin also covers the
 * functions' clocks being apart).
 */
const CLOCK_MARGIN_MS = 60_000;
/** How far a state may be written behind its readings, by default (ms of reading time). */
export const DEFAULT_STATE_FLUSH_MS = 300_000;
const EMPTY: number[] = [];

/** A group whose state was read from the store, and the last time that state has seen. */
interface Behind {
  g: Group;
  after: number;
}

/** The samples in (after, until] (ascending in, ascending out): a series' share of a device's read. */
function within(s: Samples | undefined, after: number, until: number): Samples {
  if (s === undefined) return { times: [], values: [] };
  let lo = 0;
  while (lo < s.times.length && s.times[lo]! <= after) lo++;
  let hi = lo;
  while (hi < s.times.length && s.times[hi]! <= until) hi++;
  return lo === 0 && hi === s.times.length
    ? s
    : { times: s.times.slice(lo, hi), values: s.values.slice(lo, hi) };
}

/** A reading's value as a number, or undefined when a rule cannot compare it. */
export function numericValue(r: Pick<EnrichedReading, 'quality' | 'value'>): number | undefined {
  if (r.quality === 'BAD' || r.quality === 'STALE') return undefined;
  const v = r.value;
  if (typeof v === 'number') return Number.isFinite(v) ? v : undefined;
  if (typeof v === 'bigint') return Number(v);
  if (typeof v === 'boolean') return v ? 1 : 0;
  return undefined;
}

export function readingSeries(r: EnrichedReading): string {
  let s = r.subDevice === undefined ? r.deviceId : `${r.deviceId}/${r.subDevice}`;
  s += `|${r.metric}`;
  if (r.row !== undefined) s += `#${r.row}`;
  if (r.index !== undefined) s += `[${r.index}]`;
  return s;
}

/** A reading rule's transition reason (built only for a transition: not for a step held back by the throttle). */
const valueReason = (c: Compiled, value: number | undefined) =>
  `${c.rule.condition} (value ${value === undefined ? value : numberText(value)})`;

/** A plain (device, metric) series — no sub-device, row or element: the history has its readings. */
const plain = (x: {
  series: string;
  deviceId: string;
  subDevice?: string | undefined;
  metric?: string | undefined;
}) => x.subDevice === undefined && x.metric !== undefined && x.series === `${x.deviceId}|${x.metric}`;

/** A group the history can replay: a plain series of a reading rule (not a device-level one). */
const replayable = (g: Group): boolean =>
  (g.c.cond.kind === 'expr' || g.c.cond.kind === 'absent') && !g.c.deviceSeries && plain(g);

const deviceSeries = (deviceId: string, subDevice: string | undefined) =>
  subDevice === undefined ? deviceId : `${deviceId}/${subDevice}`;

function compileRule(rule: Rule): Compiled {
  const cond = parseCondition(rule.condition);
  const c: Compiled = {
    rule,
    cond,
    holdMs: 0,
    windowMs: 0,
    anomaly: false,
    deviceSeries: cond.kind !== 'expr' && !(cond.kind === 'absent' && rule.select.metric !== undefined),
  };
  if (rule.select.metric !== undefined && isGlob(rule.select.metric))
    c.metricRe = globToRegExp(rule.select.metric);
  if (cond.kind === 'expr') {
    c.when = compileBool(cond.when);
    if (cond.clear) c.clear = compileBool(cond.clear);
    c.holdMs = cond.hold?.ms ?? 0;
    const req = requirements([cond.when, cond.clear]);
    c.windowMs = req.windowMs;
    c.anomaly = req.anomaly;
  } else if (cond.kind === 'offline') {
    c.holdMs = cond.hold?.ms ?? 0;
  }
  return c;
}

/**
 * The engine's evaluation context: a class of its own (its own hidden class) whose number fields only
 * ever hold numbers (NaN for "no previous reading"), so V8 keeps them as unboxed doubles and a store
 * per reading allocates nothing (an `undefined` in any of them would box every later store).
 */
class Context implements EvalContext {
  value = 0.5;
  time = 0.5;
  prevValue = 0.5;
  prevTime = 0.5;
  wt: number[] = EMPTY;
  wv: number[] = EMPTY;
  score = 0.5;
  cache: WindowCache | undefined = undefined;
  /** The start (index into wt) of the rule's longest window, which begins at `wsFrom`: kept per series. */
  ws = 0;
  wsFrom = 0.5;
}

export class RuleEngine {
  private compiled: Compiled[] = [];
  private readingRules: Compiled[] = [];
  private eventRules: Compiled[] = [];
  private loadedAt = Number.NEGATIVE_INFINITY;
  /** A rule list was loaded once (a failed refresh may then keep it). */
  private everLoaded = false;
  private readonly memo = new Map<string, DeviceSelection>();
  /** The memo's entry of the last reading's device (readings of one message come together). */
  private lastDeviceId: string | undefined;
  private lastDevice: DeviceSelection | undefined;
  /** Groups by state key, kept across calls for their sample arrays (cleared with the rules). */
  private readonly groupCache = new Map<string, Group>();
  /**
   * Numbers the collections (the collects between two runs): a Selection's groups belong to the
   * collection that activated them.
   */
  private call = 0;
  /** The groups collected since the last run, by state key. */
  private collected = new Map<string, Group>();
  /** Every Selection by index; only reset when the log holds no index (see `clearMemo`). */
  private selections: Selection[] = [];
  private selectionsStale = false;
  /**
   * The plain readings collected since the last run, not yet in their groups: their selection's index,
   * time and value in arrival order. `run` puts them in their groups (ADR 0016 amendment 9).
   */
  private logSel = new Int32Array(4096);
  private logTime = new Float64Array(4096);
  private logValue = new Float64Array(4096);
  private logN = 0;
  /** `groupLogged`'s counting sort: per selection, then the samples in selection order. */
  private sortCount = new Int32Array(1024);
  private sorted: SortedLog = { times: new Float64Array(4096), values: new Float64Array(4096) };
  /** Groups whose samples are a range of `sorted` (copied out before `sorted` is written again). */
  private sharing: Group[] = [];
  /** Selections with a reading the store may not give back, in the log (see `collect`). */
  private readonly forced = new Set<number>();
  private memoSize = 0;
  private readonly staged = new Map<string, Entry>();
  /** The staged entries marked dirty in this batch (commit writes these: no scan of every cached state). */
  private dirty: Entry[] = [];
  private pending: Array<{ t: AlertTransition; recorded: boolean; dispatched: boolean }> = [];
  readonly stats: EngineStats = {
    readings: 0,
    events: 0,
    evaluations: 0,
    statesLoaded: 0,
    statesWritten: 0,
    replayed: 0,
    transitions: 0,
  };
  private readonly maxSamples: number;
  private readonly ttl: number;
  private readonly crossBatch: boolean;
  private readonly id: string;
  /** Devices whose claim this batch found to be this engine's: their cached states are trusted. */
  private owned = new Set<string>();
  /** Devices whose claim this batch checked (owned or not). */
  private checked = new Set<string>();
  /** Devices this batch evaluated without owning them: claimed by `commit`. */
  private toClaim = new Set<string>();
  private readonly maxCached: number;
  private readonly memoMax: number;
  /** Write-behind interval (0: none; see `RuleEngineOptions.history`). */
  private readonly flushMs: number;
  /** Reused for every evaluation (no allocation per reading; see `Context`). */
  private readonly ctx = new Context();

  constructor(private readonly o: RuleEngineOptions) {
    this.maxSamples = o.maxWindowSamples ?? 1000;
    this.ttl = o.rulesTtlMs ?? 30_000;
    this.crossBatch =
      (o.cacheAcrossBatches ?? true) &&
      typeof o.state.getClaims === 'function' &&
      typeof o.state.claim === 'function' &&
      typeof o.state.getVersions === 'function';
    this.id = o.instanceId ?? randomUUID();
    this.maxCached = o.maxCachedStates ?? 100_000;
    this.memoMax = o.maxSelections ?? MEMO_MAX;
    this.flushMs = o.history && this.crossBatch ? (o.stateFlushMs ?? DEFAULT_STATE_FLUSH_MS) : 0;
  }

  /** A batch starts: drops anything staged (a batch given up without abort() included). */
  begin(): void {
    this.dropCollected();
    this.pending = [];
    this.dropClaims();
    // Cross-batch cache (ports with claims): clean states stay, to be trusted once their device's claim
    // is found to be still this engine's. Anything dirty (a commit that failed, not aborted) is dropped.
    const keep = this.crossBatch && this.staged.size <= this.maxCached && this.dirty.every((e) => !e.dirty);
    this.dirty = [];
    if (!keep) {
      this.staged.clear();
      return;
    }
    for (const e of this.staged.values()) e.verified = false;
  }

  /** The batch is given up (it will be redelivered): nothing it staged survives. */
  abort(): void {
    this.dropCollected();
    this.dropClaims();
    this.staged.clear();
    this.dirty = [];
    this.pending = [];
  }

  private dropClaims(): void {
    this.owned = new Set();
    this.checked = new Set();
    this.toClaim = new Set();
  }

  /** Forces the rule list to be read again at the next evaluation (after a rule changed). */
  invalidateRules(): void {
    this.loadedAt = Number.NEGATIVE_INFINITY;
  }

  /**
   * Loads (or refreshes) the rule list. Called by the ingest path before a chunk is stored, so a rule
   * list that cannot be read fails the chunk before anything is written. A failed refresh keeps the
   * list already loaded for another TTL (the evaluations after the write then read nothing); only a
   * failure to load a first list throws.
   */
  async prepare(): Promise<void> {
    try {
      await this.ensureRules();
    } catch (error) {
      if (!this.everLoaded) throw error;
      this.loadedAt = this.o.clock();
    }
  }

  private async ensureRules(): Promise<void> {
    const now = this.o.clock();
    if (now - this.loadedAt < this.ttl) return;
    const rules = (await this.o.rules.list()).filter((r) => r.enabled);
    this.compiled = rules.map(compileRule);
    this.readingRules = this.compiled.filter((c) => c.cond.kind === 'expr' || c.cond.kind === 'absent');
    this.eventRules = this.compiled.filter((c) => c.cond.kind === 'offline' || c.cond.kind === 'event');
    this.clearMemo();
    this.groupCache.clear();
    this.loadedAt = now;
    this.everLoaded = true;
  }

  private clearMemo(): void {
    this.memo.clear();
    this.memoSize = 0;
    this.lastDeviceId = undefined;
    this.lastDevice = undefined;
    // The log's indices must stay valid until it is grouped: the list is reset then (settleSelections).
    if (this.logN === 0) this.selections = [];
    else this.selectionsStale = true;
  }

  /**
   * The reading rules of a reading's device, memoised per device: built, or rebuilt when its type, site
   * or protocol moved. Per metric: `byMetric`, else `newSelection`.
   */
  private deviceSelection(r: EnrichedReading): DeviceSelection {
    const type = r.enrichment.deviceType;
    const site = r.enrichment.site ?? r.group;
    // A message's readings come together: the last device's entry first, then the memo.
    let d = r.deviceId === this.lastDeviceId ? this.lastDevice : this.memo.get(r.deviceId);
    if (!d || d.type !== type || d.site !== site || d.protocol !== r.protocol) {
      if (this.memoSize >= this.memoMax) this.clearMemo();
      // Device-level selection once per device; the metric test per metric (newSelection).
      const candidates = this.readingRules.filter((c) =>
        selectsDevice(c.rule.select, r.deviceId, r.protocol, r.enrichment, r.group),
      );
      d = { type, site, protocol: r.protocol, candidates, byMetric: new Map() };
      this.memo.set(r.deviceId, d);
    }
    this.lastDeviceId = r.deviceId;
    this.lastDevice = d;
    return d;
  }

  /** The (device, metric) entry of a reading the device's memo has no entry for yet. */
  private newSelection(d: DeviceSelection, r: EnrichedReading): number {
    const index = this.selections.length;
    const sel: Selection = {
      rules: d.candidates.filter((c) => selectsReading(c.rule.select, r, c.metricRe)),
      call: -1,
      groups: [],
      deviceId: r.deviceId,
      metric: r.metric,
      deviceType: r.enrichment.deviceType,
      protocol: r.protocol,
    };
    this.selections.push(sel);
    d.byMetric.set(r.metric, index);
    this.memoSize++;
    return index;
  }

  /** The next collection starts empty (its groups' samples are dropped, not evaluated). */
  private dropCollected(): void {
    if (this.collected.size > 0) this.collected = new Map();
    this.logN = 0;
    this.forced.clear();
    this.settleSelections();
    this.call++;
  }

  /** Evaluates readings and events (with any collected before); returns the transitions (applied at commit). */
  async evaluate(input: EvaluationInput): Promise<AlertTransition[]> {
    await this.ensureRules();
    this.collect(input);
    return this.run();
  }

  /**
   * Sorts readings and events into the groups of the rules selecting them, to be evaluated by the next
   * `run` (or `evaluate`), against the rule list of the last `prepare()`. Synchronous (no state is read):
   * the ingest path calls it per stored chunk.
   */
  collect(input: EvaluationInput): void {
    if (this.groupCache.size > this.memoMax && this.collected.size === 0 && this.logN === 0) {
      // The selections hold groups: they go with them (one group object per key, always).
      this.groupCache.clear();
      this.clearMemo();
    }
    if (this.readingRules.length > 0) {
      // Per reading, only what the reading itself and its device's memo entry tell: the selection of a
      // plain reading (no sub-device, row or index) is logged with its time and value, and `run` puts
      // the log into the groups once per batch. Here, between the chunks' decoding, the per-series
      // selections, groups and sample arrays are out of the CPU caches; in `run` they are not.
      // Others build their series string and join their groups here.
      const bySeries = new Map<string, { rules: Compiled[]; groups: Group[] }>();
      const readings = input.readings;
      let logN = this.logN;
      for (let ri = 0; ri < readings.length; ri++) {
        const r = readings[ri]!;
        // deviceSelection's first case inline (the last reading's device): the call allocated ~40 bytes
        // per reading here (measured, V8 12.4), the inline test nothing.
        let d = this.lastDevice;
        if (
          d === undefined ||
          r.deviceId !== this.lastDeviceId ||
          d.type !== r.enrichment.deviceType ||
          d.site !== (r.enrichment.site ?? r.group) ||
          d.protocol !== r.protocol
        ) {
          // The log's length first: a memo that fills up here must see the indices it holds.
          this.logN = logN;
          d = this.deviceSelection(r);
        }
        if (d.candidates.length === 0) continue;
        const value = numericValue(r);
        if (value === undefined || r.transient) {
          // The telemetry store keeps no transient reading, and for a time it already has (an unusable
          // reading first) it keeps that: a replay would not see what is evaluated here.
          if (this.flushMs > 0) this.forced.add(d.byMetric.get(r.metric) ?? this.newSelection(d, r));
          if (value === undefined) continue;
        }
        const index = d.byMetric.get(r.metric) ?? this.newSelection(d, r);
        if (r.subDevice === undefined && r.row === undefined && r.index === undefined) {
          if (logN === this.logTime.length) this.growLog();
          this.logSel[logN] = index;
          this.logTime[logN] = r.time;
          this.logValue[logN++] = value;
          continue;
        }
        const rules = this.selections[index]!.rules;
        if (rules.length === 0) continue;
        this.stats.readings++;
        const series = readingSeries(r);
        let entry = bySeries.get(series);
        if (entry?.rules !== rules) {
          entry = {
            rules,
            groups: this.groupsOf(
              rules,
              series,
              r.deviceId,
              r.subDevice,
              r.metric,
              r.enrichment.deviceType,
              r.protocol,
            ),
          };
          bySeries.set(series, entry);
        }
        const gs = entry.groups;
        for (let i = 0; i < gs.length; i++) {
          const g = gs[i]!;
          if (g.shared) ownSamples(g); // (a series of plain readings only: not expected here)
          g.times[g.n] = r.time;
          g.values[g.n++] = value;
        }
      }
      this.logN = logN;
    }
    if (this.eventRules.length > 0 && input.events) {
      // The readings logged so far join their groups before the events' groups do.
      this.groupLogged();
      const fromReadings = new Map<string, Enrichment>();
      for (const r of input.readings) fromReadings.set(r.deviceId, r.enrichment);
      for (const e of input.events) {
        const enrichment = input.enrichmentOf?.(e.deviceId) ?? fromReadings.get(e.deviceId);
        let counted = false;
        for (const c of this.eventRules) {
          if (c.cond.kind === 'event' && c.cond.event !== e.type) continue;
          if (c.cond.kind === 'offline' && !OFFLINE.has(e.type) && !ONLINE.has(e.type)) continue;
          if (!selectsEvent(c.rule.select, e, enrichment)) continue;
          if (!counted) {
            this.stats.events++;
            counted = true;
          }
          const series = deviceSeries(e.deviceId, e.subDevice);
          const g = this.groupOf(
            c,
            series,
            e.deviceId,
            e.subDevice,
            undefined,
            enrichment?.deviceType,
            e.protocol,
          );
          g.events ??= [];
          g.events.push(e);
        }
      }
    }
  }

  /** Doubles the log's capacity (the arrays are kept across batches). */
  private growLog(): void {
    const n = this.logTime.length * 2;
    const sel = new Int32Array(n);
    sel.set(this.logSel);
    this.logSel = sel;
    const time = new Float64Array(n);
    time.set(this.logTime);
    this.logTime = time;
    const value = new Float64Array(n);
    value.set(this.logValue);
    this.logValue = value;
  }

  /**
   * Puts the logged plain readings into their groups (see `collect`): a counting sort by selection
   * (stable: each selection's samples keep their arrival order), then each selection's run of samples
   * copied into its groups in one pass. Per reading this touches only the log and a counter, never a
   * per-series object: those are touched once per selection.
   */
  private groupLogged(): void {
    const n = this.logN;
    if (n === 0) return;
    this.logN = 0;
    const call = this.call;
    // Groups of this collection still reading an earlier sort's ranges keep them in their own arrays.
    for (const g of this.sharing) if (g.shared && g.call === call) ownSamples(g);
    this.sharing = [];
    const selections = this.selections;
    const m = selections.length;
    const { logSel, logTime, logValue } = this;
    if (this.sortCount.length < m + 1)
      this.sortCount = new Int32Array(Math.max(m + 1, this.sortCount.length * 2));
    if (this.sorted.times.length < n) {
      const size = this.logTime.length;
      this.sorted = { times: new Float64Array(size), values: new Float64Array(size) };
    }
    const count = this.sortCount;
    const sorted = this.sorted;
    const sortTime = sorted.times;
    const sortValue = sorted.values;
    count.fill(0, 0, m + 1);
    for (let k = 0; k < n; k++) count[logSel[k]! + 1]!++;
    for (let i = 1; i <= m; i++) count[i]! += count[i - 1]!;
    // count[i]: where selection i's samples start; after placing, where they end.
    for (let k = 0; k < n; k++) {
      const p = count[logSel[k]!]!++;
      sortTime[p] = logTime[k]!;
      sortValue[p] = logValue[k]!;
    }
    let selected = 0;
    let start = 0;
    for (let i = 0; i < m; i++) {
      const end = count[i]!;
      if (end === start) continue;
      const from = start;
      start = end;
      const sel = selections[i]!;
      const rules = sel.rules;
      if (rules.length === 0) continue;
      selected += end - from;
      const force = this.forced.size > 0 && this.forced.has(i);
      let gs = sel.groups;
      if (sel.call !== call) {
        if (gs.length > 0) {
          // Built in an earlier call: its groups join this one (a device-level group may already have).
          for (let j = 0; j < gs.length; j++) if (gs[j]!.call !== call) this.activate(gs[j]!);
        } else {
          gs = this.groupsOf(
            rules,
            `${sel.deviceId}|${sel.metric}`, // readingSeries of a plain reading
            sel.deviceId,
            undefined,
            sel.metric,
            sel.deviceType,
            sel.protocol,
          );
          sel.groups = gs;
        }
        sel.call = call;
      }
      for (let j = 0; j < gs.length; j++) {
        const g = gs[j]!;
        if (force) g.force = true;
        if (g.n === 0 && !g.c.deviceSeries) {
          // The series' samples are this range: read in place, no copy (a (device, metric) series has
          // only this selection's samples).
          g.shared = sorted;
          g.from = from;
          g.n = end - from;
          this.sharing.push(g);
          continue;
        }
        // A device-level series (samples from each of the device's metrics), or one with samples already.
        if (g.shared) ownSamples(g);
        const times = g.times;
        const values = g.values;
        let at = g.n;
        for (let q = from; q < end; q++) {
          times[at] = sortTime[q]!;
          values[at++] = sortValue[q]!;
        }
        g.n = at;
      }
    }
    this.stats.readings += selected;
    this.forced.clear();
    this.settleSelections();
  }

  /** A memo cleared while the log held indices: cleared again now that it holds none (see `clearMemo`). */
  private settleSelections(): void {
    if (!this.selectionsStale || this.logN > 0) return;
    this.selectionsStale = false;
    // The device entries made since point into the old list too: they go with it.
    this.clearMemo();
  }

  /** The groups of a reading series for each of its rules (a device-level rule's: its device's series). */
  private groupsOf(
    rules: Compiled[],
    series: string,
    deviceId: string,
    subDevice: string | undefined,
    metric: string,
    deviceType: string | undefined,
    protocol: 'sparkplug' | 'lwm2m',
  ): Group[] {
    return rules.map((c) =>
      c.deviceSeries
        ? this.groupOf(
            c,
            deviceSeries(deviceId, subDevice),
            deviceId,
            subDevice,
            undefined,
            deviceType,
            protocol,
          )
        : this.groupOf(c, series, deviceId, subDevice, metric, deviceType, protocol),
    );
  }

  /** The group of (rule, series) in this collection: joined (no samples yet) when not already in it. */
  private groupOf(
    c: Compiled,
    series: string,
    deviceId: string,
    subDevice: string | undefined,
    metric: string | undefined,
    deviceType: string | undefined,
    protocol: 'sparkplug' | 'lwm2m',
  ): Group {
    const key = `${c.rule.id}\u0000${series}`;
    let g = this.collected.get(key);
    if (!g) {
      // Reused from an earlier call (its sample arrays keep their capacity), or new.
      g = this.groupCache.get(key);
      if (!g) {
        g = {
          c,
          key,
          stateKey: { ruleId: c.rule.id, series },
          series,
          deviceId,
          subDevice,
          metric,
          deviceType,
          protocol,
          times: [],
          values: [],
          n: 0,
          shared: undefined,
          from: 0,
          call: this.call,
          events: undefined,
          cache: undefined,
          force: false,
        };
        this.groupCache.set(key, g);
      }
      g.c = c;
      g.deviceType = deviceType;
      g.protocol = protocol;
      this.activate(g);
    }
    return g;
  }

  /** A group joins this collection (no samples yet). */
  private activate(g: Group): void {
    g.n = 0;
    g.shared = undefined;
    g.call = this.call;
    g.events = undefined;
    this.collected.set(g.key, g);
  }

  /**
   * Evaluates what was collected: each group's state loaded (cached states trusted while their device's
   * claim is this engine's), its samples in time order, then its events. A failed load keeps the
   * collection for a retried run.
   */
  async run(): Promise<AlertTransition[]> {
    this.groupLogged();
    const groups = this.collected;
    const out: AlertTransition[] = [];
    if (groups.size === 0) return out;
    const now = this.o.clock();
    await this.load(groups);
    const replays = await this.readReplays(groups);
    this.collected = new Map();
    this.call++;
    for (const g of groups.values()) {
      const entry =
        this.staged.get(g.key) ??
        this.stage(
          g.key,
          this.newState(g.c, g.series, now, g.deviceId, g.subDevice, g.metric, g.deviceType, g.protocol),
          undefined,
        );
      const s = entry.value;
      const c = g.c;
      entry.replayable = replayable(g);
      entry.absence = g.c.cond.kind === 'absent';
      entry.fresh = false;
      // Evaluated here, perhaps ahead of the store: another engine caching the device must let it go.
      if (this.crossBatch && !this.owned.has(g.deviceId)) this.toClaim.add(g.deviceId);
      const transitions = this.stats.transitions;
      // Read under another revision: its unwritten readings were evaluated under the old rule (a batch
      // that met the new one wrote the state), so a replay only moves its last reading forward.
      const oldRevision = s.revision !== c.rule.revision;
      this.checkRevision(c, s);
      if (g.force) {
        entry.mustFlush = true;
        g.force = false;
      }
      if (g.n > 0) {
        const log = g.shared;
        const times = log ? log.times : g.times;
        const values = log ? log.values : g.values;
        const from = log ? g.from : 0;
        if (!ascending(times, from, from + g.n)) sortByTime(g);
        if (c.windowMs > 0) g.cache ??= newWindowCache();
        this.ctx.cache = c.windowMs > 0 ? g.cache : undefined;
        // A reading at or before the last one evaluated is skipped, but a replay would evaluate it. (A
        // state read from the store this batch is written anyway; its replay covers this batch too.)
        if (entry.replayable && s.lastTime !== undefined && times[from]! <= s.lastTime)
          entry.mustFlush = true;
        const replay = replays?.get(g);
        if (replay && replay.times.length > 0) {
          // Every stored reading after the stored state's last time, in time order: the earlier
          // batches' the state was written behind, and this batch's own (stored before they are
          // evaluated), which then come again below and are skipped as replays. For a time stored
          // twice the store kept the first, as the evaluation did.
          const k = replay.times.length;
          if (oldRevision) {
            // Up to this batch's own readings (the store has them already): those meet the new rule.
            let j = k - 1;
            while (j >= 0 && replay.times[j]! >= times[from]!) j--;
            if (j >= 0) {
              s.lastTime = replay.times[j]!;
              s.lastValue = replay.values[j]!;
            }
          } else {
            this.onReadings(c, s, replay.times, replay.values, 0, k, out);
            this.stats.evaluations += k;
          }
          this.stats.replayed += k;
        }
        this.onReadings(c, s, times, values, from, from + g.n, out);
        this.stats.evaluations += g.n;
      }
      if (g.events) {
        // Per series, in time order (stable for equal times: batch order).
        const events = g.events.slice().sort((a, b) => a.time - b.time);
        for (const e of events) this.onEvent(c, s, e, out);
        this.stats.evaluations += events.length;
      }
      s.updatedAt = now;
      // Transitions that net out within the batch (open, then resolve) leave the alert fields as they
      // were: the count tells.
      if (this.stats.transitions !== transitions) entry.mustFlush = true;
      this.markDirty(entry);
    }
    return out;
  }

  /**
   * The stored readings the states read from the store this batch have not seen (written behind:
   * `RuleEngineOptions.history`), per group with readings. Undefined without a history.
   */
  private async readReplays(groups: Map<string, Group>): Promise<Map<Group, Samples> | undefined> {
    const history = this.o.history;
    if (!history || this.flushMs === 0) return undefined;
    const wanted = new Map<string, Behind[]>();
    for (const g of groups.values()) {
      if (g.n === 0 || !replayable(g)) continue;
      const e = this.staged.get(g.key);
      if (!e?.fresh || e.value.lastTime === undefined) continue;
      const of = wanted.get(g.deviceId);
      if (of) of.push({ g, after: e.value.lastTime });
      else wanted.set(g.deviceId, [{ g, after: e.value.lastTime }]);
    }
    if (wanted.size === 0) return undefined;
    // What a state written behind has not seen lies within `flushMs` after its last time (it is written
    // once its readings reach that far). A device's ranges that overlap are read at once: never more
    // reading time than the ranges one by one, and one read for series that move together.
    const reads: Array<{ deviceId: string; after: number; until: number; of: Behind[] }> = [];
    for (const [deviceId, of] of wanted) {
      of.sort((a, b) => a.after - b.after);
      let read = { deviceId, after: of[0]!.after, until: of[0]!.after + this.flushMs, of: [of[0]!] };
      reads.push(read);
      for (const x of of.slice(1)) {
        if (x.after <= read.until) {
          read.until = Math.max(read.until, x.after + this.flushMs);
          read.of.push(x);
        } else {
          read = { deviceId, after: x.after, until: x.after + this.flushMs, of: [x] };
          reads.push(read);
        }
      }
    }
    const out = new Map<Group, Samples>();
    let next = 0;
    const worker = async () => {
      while (next < reads.length) {
        const r = reads[next++]!;
        const metrics = [...new Set(r.of.map((x) => x.g.metric!))];
        const found = await history.samples({
          deviceId: r.deviceId,
          metrics,
          after: r.after,
          until: r.until,
        });
        for (const { g, after } of r.of) {
          out.set(g, within(found.get(g.metric!), after, after + this.flushMs));
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.o.concurrency ?? 16, reads.length) }, worker));
    return out;
  }

  /** Clock-driven evaluation: absence, offline-for, auto-resolve and throttled openings that fall due. */
  async evaluateClock(now: number): Promise<AlertTransition[]> {
    await this.ensureRules();
    const out: AlertTransition[] = [];
    for (const c of this.compiled) {
      if (c.cond.kind === 'expr' && c.rule.throttleMs === 0) continue;
      const due = await this.o.state.listDue(c.rule.id, now);
      for (const stored of due) {
        const key = `${stored.ruleId}\u0000${stored.series}`;
        let entry = this.staged.get(key);
        if (!entry || (!entry.dirty && entry.base !== stored.version)) {
          // Fresh: should the ingest path use it next, it replays what the store has after it.
          entry = this.stage(key, stored, stored.version, true);
        } else if (!entry.dirty) {
          entry.verified = true; // the cached copy is the stored version
        }
        const s = entry.value;
        if (s.dueAt === undefined || s.dueAt > now) continue;
        if (c.cond.kind === 'absent' && !s.active && this.o.history && plain(s) && s.lastTime !== undefined) {
          // Written behind by the ingest path (amendment 10): the readings stored after it come first.
          const after = s.lastTime;
          const until = after + (this.o.stateFlushMs ?? DEFAULT_STATE_FLUSH_MS);
          const h = within(
            (await this.o.history.samples({ deviceId: s.deviceId, metrics: [s.metric!], after, until })).get(
              s.metric!,
            ),
            after,
            until,
          );
          if (h.times.length > 0) {
            this.checkRevision(c, s);
            this.onReadings(c, s, h.times, h.values, 0, h.times.length, out);
            this.stats.replayed += h.times.length;
            // Not due after all: nothing to write (the ingest writes it; a write here would only meet
            // the ingest's own in a version conflict).
            if (s.dueAt === undefined || s.dueAt > now) continue;
            s.updatedAt = this.o.clock();
            this.markDirty(entry);
          }
        }
        this.checkRevision(c, s);
        this.onClock(c, s, now, out);
        s.updatedAt = this.o.clock();
        this.markDirty(entry);
      }
    }
    return out;
  }

  /**
   * Applies the batch: records its transitions (in order, idempotently), then writes the changed states
   * conditional on their versions. Returns the transitions this commit applied (dispatch their actions).
   * Retryable: what was recorded or written stays done, a retry does the rest.
   */
  async commit(): Promise<AlertTransition[]> {
    const now = this.o.clock();
    const toRecord = this.pending.filter((p) => !p.recorded);
    if (toRecord.length > 0) {
      const recorded = await this.o.alerts.recordAll(
        toRecord.map((p) => p.t),
        now,
      );
      toRecord.forEach((p, i) => {
        p.dispatched = recorded[i]!.dispatched;
        p.recorded = true;
      });
    }
    const dirty: Entry[] = [];
    for (const e of this.dirty) {
      if (!e.dirty) continue;
      if (this.mustWrite(e)) dirty.push(e);
      else e.dirty = false; // ahead of the store, kept in the cache (written behind)
    }
    this.dirty = dirty;
    if (this.crossBatch) {
      // Claimed before anything is recorded or written: an engine caching these devices finds them
      // moved and reads their states again.
      if (this.toClaim.size > 0) {
        await this.o.state.claim!([...this.toClaim], this.id);
        for (const d of this.toClaim) this.owned.add(d);
        this.toClaim = new Set();
      }
    }
    // One putAll: the store writes them in as few requests as it can (25 a request in DynamoDB).
    let failure: unknown;
    const results =
      dirty.length === 0
        ? []
        : await this.o.state.putAll(dirty.map((e) => ({ state: e.value, expected: e.base })));
    dirty.forEach((e, i) => {
      const error = results[i];
      if (error !== undefined) {
        failure ??= error;
        return;
      }
      e.base = (e.base ?? 0) + 1;
      e.value.version = e.base;
      e.dirty = false;
      e.mustFlush = false;
      flushed(e, e.value);
      this.stats.statesWritten++;
    });
    if (failure !== undefined) {
      this.dirty = dirty.filter((e) => e.dirty);
      throw failure;
    }
    this.dirty = [];
    const toDispatch = this.pending.filter((p) => !p.dispatched).map((p) => p.t);
    this.pending = [];
    if (!this.crossBatch) this.staged.clear();
    return toDispatch;
  }

  // ---- internals -------------------------------------------------------------------------------

  /**
   * Makes sure every group of this call has its state staged: the claims of the devices not yet checked
   * in this batch are read (one bulk read); cached states of devices still this engine's are trusted,
   * the others read (one bulk read). One pass over the groups, one staged lookup per group.
   */
  private async load(groups: Map<string, Group>): Promise<void> {
    const read: Group[] = [];
    const cached: Group[] = [];
    const devices = new Set<string>();
    for (const g of groups.values()) {
      // Every device this batch evaluates, cached or not: claiming one back without a check would
      // trust the states cached before another engine had it.
      if (this.crossBatch && !this.checked.has(g.deviceId)) devices.add(g.deviceId);
      const e = this.staged.get(g.key);
      if (e === undefined) read.push(g);
      else if (!e.verified) cached.push(g);
    }
    if (devices.size > 0) {
      // One claim per device: a device nobody else claimed since this engine did has not been evaluated
      // or written elsewhere, so its cached states are the stored ones or ahead of them.
      const claims = await this.o.state.getClaims!([...devices]);
      const lost = new Set<string>();
      for (const d of devices) {
        this.checked.add(d);
        if (claims.get(d) === this.id) this.owned.add(d);
        else lost.add(d);
      }
      // Another engine (or the clock) had the device: every cached state of it may be behind.
      if (lost.size > 0)
        for (const [k, e] of this.staged) if (lost.has(e.value.deviceId)) this.staged.delete(k);
    }
    // Still staged: its device is this engine's (a lost device's states were dropped just above). The
    // rules clock writes states without claiming (it runs beside the ingest, so a claim would not
    // fence it): a state whose stored due time has come, or comes within CLOCK_MARGIN_MS, is checked
    // by version.
    const dueBy = this.o.clock() + CLOCK_MARGIN_MS;
    const check: Entry[] = [];
    const checkGroups: Group[] = [];
    for (const g of cached) {
      const e = this.staged.get(g.key);
      if (e === undefined) read.push(g);
      else if (e.flushedDue !== undefined && e.flushedDue <= dueBy) {
        check.push(e);
        checkGroups.push(g);
      } else e.verified = true;
    }
    if (check.length > 0) {
      const versions = await this.o.state.getVersions!(checkGroups.map((g) => g.stateKey));
      check.forEach((e, i) => {
        const g = checkGroups[i]!;
        if (versions.get(g.key) === e.base) e.verified = true;
        else {
          this.staged.delete(g.key);
          read.push(g);
        }
      });
    }
    if (read.length === 0) return;
    const found = await this.o.state.getMany(read.map((g) => g.stateKey));
    this.stats.statesLoaded += found.length;
    for (const st of found) this.stage(`${st.ruleId}\u0000${st.series}`, st, st.version, true);
  }

  private markDirty(e: Entry): void {
    if (e.dirty) return;
    e.dirty = true;
    this.dirty.push(e);
  }

  private stage(key: string, value: RuleState, base: number | undefined, fresh = false): Entry {
    const e: Entry = {
      base,
      value: shaped(value),
      dirty: false,
      verified: true,
      fresh,
      replayable: false,
      absence: false,
      mustFlush: false,
      flushedKey: '',
      flushedTime: 0,
      flushedDue: undefined,
      flushedActive: false,
    };
    flushed(e, value);
    this.staged.set(key, e);
    return e;
  }

  /** Whether a changed state is written in this batch (else it stays ahead of the store, in the cache). */
  private mustWrite(e: Entry): boolean {
    if (this.flushMs === 0 || e.base === undefined || !e.replayable || e.mustFlush) return true;
    const s = e.value;
    // The clock acts on the stored copy: its due time must be the state's, except for an absence state
    // inactive in both, whose due time only follows its last reading (the clock replays it first) —
    // as long as the stored due time is still ahead of the readings (else the clock would find it due
    // while the device reports, replay it every tick, and meet the ingest's writes).
    const quietAbsence = e.absence && !s.active && !e.flushedActive;
    if (s.dueAt !== e.flushedDue && !quietAbsence) return true;
    if (s.dueAt !== undefined && !quietAbsence) return true;
    if (quietAbsence && e.flushedDue !== undefined && s.lastTime !== undefined && e.flushedDue <= s.lastTime)
      return true;
    if (flushKey(s) !== e.flushedKey) return true;
    return (s.lastTime ?? Number.NEGATIVE_INFINITY) - e.flushedTime >= this.flushMs;
  }

  private newState(
    c: Compiled,
    series: string,
    now: number,
    deviceId: string,
    subDevice: string | undefined,
    metric: string | undefined,
    deviceType: string | undefined,
    protocol: 'sparkplug' | 'lwm2m',
  ): RuleState {
    return shaped({
      ruleId: c.rule.id,
      series,
      version: 0,
      revision: c.rule.revision,
      deviceId,
      subDevice,
      metric,
      deviceType,
      protocol,
      active: false,
      updatedAt: now,
    });
  }

  /** A rule changed since this state was built: its condition starts over (an open alert stays open). */
  private checkRevision(c: Compiled, s: RuleState): void {
    if (s.revision === c.rule.revision) return;
    s.revision = c.rule.revision;
    s.pendingSince = undefined;
    s.wt = undefined;
    s.wv = undefined;
    s.detector = undefined;
    s.heldBack = undefined;
    s.active = s.alertId !== undefined;
    this.setDue(c, s);
  }

  /**
   * One series' readings of this call, in time order. The per-reading numbers (last time and value, hold
   * start, active) live in locals and are written to the state when an alert step needs them and once at
   * the end: a state's optional number fields hold boxed numbers, so writing them per reading allocated
   * one heap number per field per reading. `setDue` depends only on the final state: it runs once.
   */
  private onReadings(
    c: Compiled,
    s: RuleState,
    times: ArrayLike<number>,
    values: ArrayLike<number>,
    from: number,
    to: number,
    out: AlertTransition[],
  ): void {
    // NaN stands for "none" in the locals: every comparison with it is false, as `undefined` was.
    let lastTime = s.lastTime ?? Number.NaN;
    let lastValue = s.lastValue ?? Number.NaN;
    let i = from;
    // Replays, duplicates and readings out of order: at or before the series' last time.
    while (i < to && times[i]! <= lastTime) i++;
    if (i === to) return;
    if (c.cond.kind === 'absent') {
      for (; i < to; i++) {
        const t = times[i]!;
        if (t <= lastTime) continue;
        lastTime = t;
        lastValue = values[i]!;
        if (s.active) {
          s.active = false;
          s.lastTime = t;
          s.lastValue = lastValue;
          this.alertStep(c, s, t, lastValue, undefined, `reading at ${new Date(t).toISOString()}`, out);
        }
      }
      s.lastTime = lastTime;
      s.lastValue = lastValue;
      this.setDue(c, s);
      return;
    }
    const ctx = this.ctx;
    const when = c.when!;
    const clear = c.clear;
    const holdMs = c.holdMs;
    const windowed = c.windowMs > 0;
    let wt = EMPTY;
    let wv = EMPTY;
    if (windowed) {
      s.wt ??= [];
      s.wv ??= [];
      wt = s.wt;
      wv = s.wv;
    }
    ctx.wt = wt;
    ctx.wv = wv;
    ctx.wsFrom = Number.NaN; // no window start known (never equal to a window function's start)
    const windowMs = c.windowMs;
    // The window's start index: searched once per call, then moved forward as the times ascend.
    let ws = -1;
    let active = s.active;
    let pending = s.pendingSince ?? Number.NaN;
    let alertOpen = s.alertId !== undefined;
    for (; i < to; i++) {
      const t = times[i]!;
      if (t <= lastTime) continue; // out of order within the batch (sorted: equal times)
      const v = values[i]!;
      ctx.prevValue = lastValue;
      ctx.prevTime = lastTime;
      ctx.value = v;
      ctx.time = t;
      ctx.score = Number.NaN;
      if (windowed) {
        wt.push(t);
        wv.push(v);
        const from = t - windowMs;
        if (ws < 0) ws = windowStart(wt, from);
        else while (wt[ws]! < from) ws++; // stops at the sample just pushed at the latest (t >= from)
        // Samples older than the window are dropped in bulk, a quarter of the array at a time: V8 gives
        // back an array's spare capacity when its length falls below about half of it, and the next
        // push then allocates and copies it again (the former "64 or half" reallocated both arrays of
        // a 1-minute window every 64 readings, ~2 MB per 100,000 readings in the bench).
        const drop = Math.max(ws, wt.length - this.maxSamples);
        if (drop > 0 && (drop * 4 >= wt.length || wt.length > this.maxSamples)) {
          dropHead(wt, drop);
          dropHead(wv, drop);
          ws = 0; // drop >= ws: the window now starts at the head
        }
        // The window functions of this length take their start from here instead of searching it.
        ctx.ws = ws;
        ctx.wsFrom = from;
      }
      if (c.anomaly) {
        s.detector ??= newDetectorState();
        ctx.score = detectScore(s.detector, t, v, this.o.detector);
      }
      lastTime = t;
      lastValue = v;
      const cond = when(ctx);
      if (!active) {
        if (cond === true) {
          if (Number.isNaN(pending)) pending = t; // no hold yet
          if (t - pending >= holdMs) {
            active = true;
            pending = Number.NaN;
          }
        } else if (cond === false) {
          pending = Number.NaN;
        }
      } else {
        const clr = clear ? clear(ctx) : cond === null ? null : !cond;
        if (clr === true) active = false;
      }
      if (active !== alertOpen) {
        s.lastTime = t;
        s.lastValue = v;
        s.active = active;
        s.pendingSince = Number.isNaN(pending) ? undefined : pending;
        this.alertStep(c, s, t, v, ctx.score, undefined, out);
        alertOpen = s.alertId !== undefined;
      } else if (!active && s.heldBack) s.heldBack = undefined;
    }
    s.lastTime = lastTime;
    s.lastValue = lastValue;
    s.active = active;
    s.pendingSince = Number.isNaN(pending) ? undefined : pending;
    this.setDue(c, s);
  }

  private onEvent(c: Compiled, s: RuleState, e: LifecycleEvent, out: AlertTransition[]): void {
    const t = e.time;
    const tag = `${e.type}@${t}`;
    if (s.lastTime !== undefined && (t < s.lastTime || (t === s.lastTime && s.lastEvent === tag))) return;
    s.lastTime = t;
    s.lastEvent = tag;
    const reason = `${e.type}${e.detail ? `: ${e.detail}` : ''}`;
    if (c.cond.kind === 'event') {
      // Auto-resolve first when it fell due before this event, then open (dedup: one open alert).
      if (s.alertId !== undefined && s.openedAt !== undefined && s.openedAt + c.rule.autoResolveMs <= t) {
        this.resolve(c, s, s.openedAt + c.rule.autoResolveMs, 'auto', undefined, out);
      }
      s.active = true;
      this.alertStep(c, s, t, undefined, undefined, reason, out);
      s.active = false;
      s.heldBack = undefined;
    } else if (OFFLINE.has(e.type)) {
      if (!s.active && s.pendingSince === undefined) {
        s.pendingSince = t;
        if (c.holdMs === 0) {
          s.active = true;
          s.pendingSince = undefined;
        }
      }
      this.alertStep(c, s, t, undefined, undefined, reason, out);
    } else if (ONLINE.has(e.type)) {
      s.pendingSince = undefined;
      s.active = false;
      this.alertStep(c, s, t, undefined, undefined, reason, out);
    }
    this.setDue(c, s);
  }

  private onClock(c: Compiled, s: RuleState, now: number, out: AlertTransition[]): void {
    const cond = c.cond;
    if (
      cond.kind === 'absent' &&
      !s.active &&
      s.lastTime !== undefined &&
      s.lastTime + cond.after.ms <= now
    ) {
      const at = s.lastTime + cond.after.ms;
      s.active = true;
      this.alertStep(c, s, at, undefined, undefined, `no reading for ${cond.after.text}`, out);
    } else if (cond.kind === 'offline' && s.pendingSince !== undefined && s.pendingSince + c.holdMs <= now) {
      const at = s.pendingSince + c.holdMs;
      s.active = true;
      s.pendingSince = undefined;
      this.alertStep(c, s, at, undefined, undefined, `offline for ${cond.hold?.text ?? '0s'}`, out);
    } else if (cond.kind === 'event' && s.alertId !== undefined && s.openedAt !== undefined) {
      const at = s.openedAt + c.rule.autoResolveMs;
      if (at <= now) this.resolve(c, s, at, 'auto', undefined, out);
    } else if (s.active && s.alertId === undefined && s.lastOpenedAt !== undefined) {
      // Held back by the throttle, still active: open once the throttle has passed.
      const at = s.lastOpenedAt + c.rule.throttleMs;
      if (at <= now)
        this.alertStep(c, s, at, s.lastValue, undefined, `${c.rule.condition} (still active)`, out);
    }
    this.setDue(c, s);
  }

  /** Opens an alert for an active series without one (throttle permitting); resolves one when inactive. */
  private alertStep(
    c: Compiled,
    s: RuleState,
    at: number,
    value: number | undefined,
    score: number | undefined,
    reason: string | undefined,
    out: AlertTransition[],
  ): void {
    if (s.active && s.alertId === undefined) {
      if (s.lastOpenedAt !== undefined && at - s.lastOpenedAt < c.rule.throttleMs) {
        if (!s.heldBack) {
          s.suppressed = (s.suppressed ?? 0) + 1;
          s.heldBack = true;
        }
        return;
      }
      const id = transitionId(c.rule.id, s.series, 'open', at);
      const t = this.transition(c, s, 'open', id, id, at, reason ?? valueReason(c, value));
      if (value !== undefined) t.value = value;
      if (score !== undefined && Number.isFinite(score)) t.score = score;
      if (s.suppressed) t.suppressed = s.suppressed;
      s.alertId = id;
      s.openedAt = at;
      s.lastOpenedAt = at;
      s.suppressed = undefined;
      s.heldBack = undefined;
      this.emit(t, out);
    } else if (!s.active && s.alertId !== undefined) {
      this.resolve(c, s, at, 'rule', value, out, reason ?? valueReason(c, value));
    }
    if (!s.active) s.heldBack = undefined;
  }

  private resolve(
    c: Compiled,
    s: RuleState,
    at: number,
    by: string,
    value: number | undefined,
    out: AlertTransition[],
    reason = 'auto-resolved',
  ): void {
    const alertId = s.alertId!;
    const t = this.transition(
      c,
      s,
      'resolve',
      transitionId(c.rule.id, s.series, 'resolve', at, alertId),
      alertId,
      at,
      reason,
    );
    t.resolvedBy = by;
    if (value !== undefined) t.value = value;
    s.alertId = undefined;
    s.openedAt = undefined;
    this.emit(t, out);
  }

  private transition(
    c: Compiled,
    s: RuleState,
    kind: 'open' | 'resolve',
    id: string,
    alertId: string,
    at: number,
    reason: string,
  ): AlertTransition {
    const t: AlertTransition = {
      id,
      alertId,
      kind,
      ruleId: c.rule.id,
      ruleRevision: c.rule.revision,
      ruleName: c.rule.name,
      severity: c.rule.severity,
      series: s.series,
      deviceId: s.deviceId,
      at,
      reason,
      actions: c.rule.actions,
    };
    if (s.subDevice !== undefined) t.subDevice = s.subDevice;
    if (s.metric !== undefined) t.metric = s.metric;
    if (s.deviceType !== undefined) t.deviceType = s.deviceType;
    if (s.protocol !== undefined) t.protocol = s.protocol;
    return t;
  }

  private emit(t: AlertTransition, out: AlertTransition[]): void {
    this.stats.transitions++;
    this.pending.push({ t, recorded: false, dispatched: false });
    out.push(t);
  }

  /** The earliest time a clock evaluation could change this state (undefined: only data can). */
  private setDue(c: Compiled, s: RuleState): void {
    let due: number | undefined;
    const cond = c.cond;
    if (cond.kind === 'absent' && !s.active && s.lastTime !== undefined) due = s.lastTime + cond.after.ms;
    else if (cond.kind === 'offline' && s.pendingSince !== undefined) due = s.pendingSince + c.holdMs;
    else if (cond.kind === 'event' && s.alertId !== undefined && s.openedAt !== undefined) {
      due = s.openedAt + c.rule.autoResolveMs;
    }
    if (s.active && s.alertId === undefined && s.lastOpenedAt !== undefined && c.rule.throttleMs > 0) {
      const t = s.lastOpenedAt + c.rule.throttleMs;
      due = due === undefined ? t : Math.min(due, t);
    }
    if (due === undefined) s.dueAt = undefined;
    else s.dueAt = due;
  }
}
