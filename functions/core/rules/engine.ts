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
import type { Clock } from '../processor.js';
import type { EnrichedReading, Enrichment, LifecycleEvent, LifecycleEventType } from '../reading.js';
import { type BoolFn, compileBool, type EvalContext, requirements, windowStart } from './compile.js';
import { type DetectorOptions, detect, newDetectorState } from './detector.js';
import { transitionId } from './hash.js';
import {
  type AlertTransition,
  globToRegExp,
  isGlob,
  type Rule,
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
  /** States written at once during commit (default 16). */
  concurrency?: number;
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

interface Entry {
  base: number | undefined;
  value: RuleState;
  dirty: boolean;
}

type Work =
  | { rule: Compiled; kind: 'reading'; time: number; value: number; r: EnrichedReading }
  | { rule: Compiled; kind: 'event'; time: number; e: LifecycleEvent; enrichment?: Enrichment };

const OFFLINE: ReadonlySet<LifecycleEventType> = new Set(['death', 'expired', 'deregister']);
const ONLINE: ReadonlySet<LifecycleEventType> = new Set(['birth', 'register', 'update']);
const MEMO_MAX = 100_000;

/** A reading's value as a number, or undefined when a rule cannot compare it. */
export function numericValue(r: EnrichedReading): number | undefined {
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

export class RuleEngine {
  private compiled: Compiled[] = [];
  private readingRules: Compiled[] = [];
  private eventRules: Compiled[] = [];
  private loadedAt = Number.NEGATIVE_INFINITY;
  private readonly memo = new Map<string, Compiled[]>();
  private readonly staged = new Map<string, Entry>();
  private pending: Array<{ t: AlertTransition; recorded: boolean; dispatched: boolean }> = [];
  readonly stats: EngineStats = {
    readings: 0,
    events: 0,
    evaluations: 0,
    statesLoaded: 0,
    statesWritten: 0,
    transitions: 0,
  };
  private readonly maxSamples: number;
  private readonly ttl: number;

  constructor(private readonly o: RuleEngineOptions) {
    this.maxSamples = o.maxWindowSamples ?? 1000;
    this.ttl = o.rulesTtlMs ?? 30_000;
  }

  /** A batch starts: drops anything staged (a batch given up without abort() included). */
  begin(): void {
    this.staged.clear();
    this.pending = [];
  }

  /** The batch is given up (it will be redelivered): nothing it staged survives. */
  abort(): void {
    this.begin();
  }

  /** Forces the rule list to be read again at the next evaluation (after a rule changed). */
  invalidateRules(): void {
    this.loadedAt = Number.NEGATIVE_INFINITY;
  }

  private async ensureRules(): Promise<void> {
    const now = this.o.clock();
    if (now - this.loadedAt < this.ttl) return;
    const rules = (await this.o.rules.list()).filter((r) => r.enabled);
    this.compiled = rules.map(compileRule);
    this.readingRules = this.compiled.filter((c) => c.cond.kind === 'expr' || c.cond.kind === 'absent');
    this.eventRules = this.compiled.filter((c) => c.cond.kind === 'offline' || c.cond.kind === 'event');
    this.memo.clear();
    this.loadedAt = now;
  }

  private rulesFor(r: EnrichedReading): Compiled[] {
    const key = `${r.deviceId}\u0001${r.metric}\u0001${r.enrichment.deviceType}\u0001${r.enrichment.site ?? r.group ?? ''}`;
    let rules = this.memo.get(key);
    if (!rules) {
      rules = this.readingRules.filter((c) => selectsReading(c.rule.select, r, c.metricRe));
      if (this.memo.size >= MEMO_MAX) this.memo.clear();
      this.memo.set(key, rules);
    }
    return rules;
  }

  /** Evaluates the batch's readings and events; returns the transitions (applied at commit). */
  async evaluate(input: EvaluationInput): Promise<AlertTransition[]> {
    await this.ensureRules();
    const work = new Map<string, Work[]>();
    const keys = new Map<string, RuleStateKey & { seed: () => RuleState }>();
    const add = (c: Compiled, series: string, w: Work, seed: () => RuleState) => {
      const key = `${c.rule.id}\u0000${series}`;
      let list = work.get(key);
      if (!list) {
        list = [];
        work.set(key, list);
        keys.set(key, { ruleId: c.rule.id, series, seed });
      }
      list.push(w);
    };
    const now = this.o.clock();
    if (this.readingRules.length > 0) {
      for (const r of input.readings) {
        const rules = this.rulesFor(r);
        if (rules.length === 0) continue;
        const value = numericValue(r);
        if (value === undefined) continue;
        this.stats.readings++;
        for (const c of rules) {
          const series = c.deviceSeries ? deviceSeries(r.deviceId, r.subDevice) : readingSeries(r);
          add(c, series, { rule: c, kind: 'reading', time: r.time, value, r }, () =>
            this.newState(
              c,
              series,
              now,
              r.deviceId,
              r.subDevice,
              c.deviceSeries ? undefined : r.metric,
              r.enrichment.deviceType,
              r.protocol,
            ),
          );
        }
      }
    }
    if (this.eventRules.length > 0 && input.events) {
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
          const w: Work = enrichment
            ? { rule: c, kind: 'event', time: e.time, e, enrichment }
            : { rule: c, kind: 'event', time: e.time, e };
          add(c, series, w, () =>
            this.newState(
              c,
              series,
              now,
              e.deviceId,
              e.subDevice,
              undefined,
              enrichment?.deviceType,
              e.protocol,
            ),
          );
        }
      }
    }
    await this.load(
      [...keys.entries()].filter(([k]) => !this.staged.has(k)).map(([k, v]) => ({ key: k, ...v })),
    );
    const out: AlertTransition[] = [];
    for (const [key, list] of work) {
      const entry = this.staged.get(key) ?? this.stage(key, keys.get(key)!.seed(), undefined);
      const s = entry.value;
      const c = list[0]!.rule;
      this.checkRevision(c, s);
      // Per series, in time order (stable for equal times: batch order).
      for (let i = 1; i < list.length; i++) {
        if (list[i]!.time < list[i - 1]!.time) {
          list.sort((a, b) => a.time - b.time);
          break;
        }
      }
      for (const w of list) {
        this.stats.evaluations++;
        if (w.kind === 'reading') this.onReading(c, s, w.time, w.value, out);
        else this.onEvent(c, s, w.e, out);
      }
      s.updatedAt = now;
      entry.dirty = true;
    }
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
        const entry = this.staged.get(key) ?? this.stage(key, stored, stored.version);
        const s = entry.value;
        if (s.dueAt === undefined || s.dueAt > now) continue;
        this.checkRevision(c, s);
        this.onClock(c, s, now, out);
        s.updatedAt = this.o.clock();
        entry.dirty = true;
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
    for (const p of this.pending) {
      if (p.recorded) continue;
      p.dispatched = (await this.o.alerts.record(p.t, now)).dispatched;
      p.recorded = true;
    }
    const dirty = [...this.staged.values()].filter((e) => e.dirty);
    const limit = this.o.concurrency ?? 16;
    let next = 0;
    let failure: unknown;
    const worker = async () => {
      while (next < dirty.length && failure === undefined) {
        const e = dirty[next++]!;
        try {
          await this.o.state.put(e.value, e.base);
          e.base = (e.base ?? 0) + 1;
          e.value.version = e.base;
          e.dirty = false;
          this.stats.statesWritten++;
        } catch (error) {
          failure ??= error;
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(limit, dirty.length) }, worker));
    if (failure !== undefined) throw failure;
    const toDispatch = this.pending.filter((p) => !p.dispatched).map((p) => p.t);
    this.begin();
    return toDispatch;
  }

  // ---- internals -------------------------------------------------------------------------------

  private async load(missing: Array<{ key: string } & RuleStateKey>): Promise<void> {
    if (missing.length === 0) return;
    const found = await this.o.state.getMany(missing.map(({ ruleId, series }) => ({ ruleId, series })));
    this.stats.statesLoaded += found.length;
    for (const s of found) this.stage(`${s.ruleId}\u0000${s.series}`, s, s.version);
  }

  private stage(key: string, value: RuleState, base: number | undefined): Entry {
    const e: Entry = { base, value, dirty: false };
    this.staged.set(key, e);
    return e;
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
    const s: RuleState = {
      ruleId: c.rule.id,
      series,
      version: 0,
      revision: c.rule.revision,
      deviceId,
      active: false,
      protocol,
      updatedAt: now,
    };
    if (subDevice !== undefined) s.subDevice = subDevice;
    if (metric !== undefined) s.metric = metric;
    if (deviceType !== undefined) s.deviceType = deviceType;
    return s;
  }

  /** A rule changed since this state was built: its condition starts over (an open alert stays open). */
  private checkRevision(c: Compiled, s: RuleState): void {
    if (s.revision === c.rule.revision) return;
    s.revision = c.rule.revision;
    delete s.pendingSince;
    delete s.wt;
    delete s.wv;
    delete s.detector;
    delete s.heldBack;
    s.active = s.alertId !== undefined;
    this.setDue(c, s);
  }

  private onReading(c: Compiled, s: RuleState, t: number, v: number, out: AlertTransition[]): void {
    if (s.lastTime !== undefined && t <= s.lastTime) return; // replay, duplicate or out of order
    if (c.cond.kind === 'absent') {
      s.lastTime = t;
      s.lastValue = v;
      if (s.active) {
        s.active = false;
        this.alertStep(c, s, t, v, undefined, `reading at ${new Date(t).toISOString()}`, out);
      }
      this.setDue(c, s);
      return;
    }
    const prevValue = s.lastValue;
    const prevTime = s.lastTime;
    let wt = s.wt;
    let wv = s.wv;
    if (c.windowMs > 0) {
      wt ??= [];
      wv ??= [];
      wt.push(t);
      wv.push(v);
      let drop = windowStart(wt, t - c.windowMs);
      if (wt.length - drop > this.maxSamples) drop = wt.length - this.maxSamples;
      if (drop > 0) {
        wt.splice(0, drop);
        wv.splice(0, drop);
      }
      s.wt = wt;
      s.wv = wv;
    }
    let score = Number.NaN;
    if (c.anomaly) {
      s.detector ??= newDetectorState();
      score = detect(s.detector, t, v, this.o.detector).score;
    }
    const ctx: EvalContext = { value: v, time: t, prevValue, prevTime, wt: wt ?? [], wv: wv ?? [], score };
    s.lastTime = t;
    s.lastValue = v;
    const cond = c.when!(ctx);
    if (!s.active) {
      if (cond === true) {
        s.pendingSince ??= t;
        if (t - s.pendingSince >= c.holdMs) {
          s.active = true;
          delete s.pendingSince;
        }
      } else if (cond === false) {
        delete s.pendingSince;
      }
    } else {
      const clr = c.clear ? c.clear(ctx) : cond === null ? null : !cond;
      if (clr === true) s.active = false;
    }
    this.alertStep(c, s, t, v, score, `${c.rule.condition} (value ${v})`, out);
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
      delete s.heldBack;
    } else if (OFFLINE.has(e.type)) {
      if (!s.active && s.pendingSince === undefined) {
        s.pendingSince = t;
        if (c.holdMs === 0) {
          s.active = true;
          delete s.pendingSince;
        }
      }
      this.alertStep(c, s, t, undefined, undefined, reason, out);
    } else if (ONLINE.has(e.type)) {
      delete s.pendingSince;
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
      delete s.pendingSince;
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
    reason: string,
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
      const t = this.transition(c, s, 'open', id, id, at, reason);
      if (value !== undefined) t.value = value;
      if (score !== undefined && Number.isFinite(score)) t.score = score;
      if (s.suppressed) t.suppressed = s.suppressed;
      s.alertId = id;
      s.openedAt = at;
      s.lastOpenedAt = at;
      delete s.suppressed;
      delete s.heldBack;
      this.emit(t, out);
    } else if (!s.active && s.alertId !== undefined) {
      this.resolve(c, s, at, 'rule', value, out, reason);
    }
    if (!s.active) delete s.heldBack;
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
    delete s.alertId;
    delete s.openedAt;
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
    if (due === undefined) delete s.dueAt;
    else s.dueAt = due;
  }
}
