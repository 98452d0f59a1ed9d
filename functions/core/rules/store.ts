/**
 * The rules' storage ports and their in-memory implementations (unit tests, benchmarks, the local
 * stack until the lead wires the DynamoDB adapters of functions/adapters/dynamo-rules.ts).
 *
 * - RuleStore: the rule documents (CRUD, list by device type).
 * - RuleStateStore: per (rule, series) evaluation state, versioned: every put is conditional on the
 *   version read, so two writers of one series cannot both win (ConflictError).
 * - AlertStore: alerts and their lifecycle. `record` is idempotent on the transition id, which is what
 *   makes a replayed batch harmless.
 */
import { ConflictError, DecodeError, NotFoundError, ValidationError } from '../errors.js';
import { decodePageToken, encodePageToken, type Page } from '../registry.js';
import type { DetectorState } from './detector.js';
import type { Alert, AlertFilter, AlertTransition, Rule } from './model.js';
import { decodeWindow, encodeWindow } from './window-codec.js';

export interface RuleStore {
  get(id: string): Promise<Rule | undefined>;
  /**
   * `create` fails with ConflictError if the id exists. `update` fails with NotFoundError if it does not
   * and with ConflictError unless the stored revision is `rule.revision - 1` (a concurrent update won).
   */
  put(rule: Rule, mode: 'create' | 'update'): Promise<void>;
  delete(id: string): Promise<boolean>;
  /** Ordered by id. `deviceType`: the rules selecting that type plus the rules selecting any type. */
  list(filter?: { deviceType?: string }): Promise<Rule[]>;
}

/** Evaluation state of one rule over one series. */
export interface RuleState {
  ruleId: string;
  series: string;
  /** Version in the store (0 before the first write). */
  version: number;
  /** The rule revision this state was built under. */
  revision: number;
  deviceId: string;
  subDevice?: string;
  metric?: string;
  deviceType?: string;
  protocol?: 'sparkplug' | 'lwm2m';
  /** Time of the last reading/event evaluated: anything at or before it is a replay and skipped. */
  lastTime?: number;
  lastValue?: number;
  /** `type@time` of the last event evaluated (several events may share a millisecond). */
  lastEvent?: string;
  /** Window samples (ascending time) and values, bounded. */
  wt?: number[];
  wv?: number[];
  /** Condition true (or device offline) since, waiting for the hold time. */
  pendingSince?: number;
  /** The condition holds (after hold time; until cleared). */
  active: boolean;
  /** The open alert of this series (dedup: at most one). */
  alertId?: string;
  openedAt?: number;
  lastOpenedAt?: number;
  /** Activations held back by the throttle since the last alert opened. */
  suppressed?: number;
  /** The current activation was held back (counted once). */
  heldBack?: boolean;
  detector?: DetectorState;
  /** When a clock evaluation may change this state (absence, offline hold, auto-resolve, throttle). */
  dueAt?: number;
  updatedAt: number;
}

export interface RuleStateKey {
  ruleId: string;
  series: string;
}

/** A state to write with version expected+1, if the stored version is `expected` (undefined: absent). */
export interface RuleStateWrite {
  state: RuleState;
  expected: number | undefined;
}

export interface RuleStateStore {
  /** The states that exist among `keys`. */
  getMany(keys: RuleStateKey[]): Promise<RuleState[]>;
  /** Writes `state` with version expected+1, if the stored version is `expected` (undefined: absent). */
  put(state: RuleState, expected: number | undefined): Promise<void>;
  /**
   * `put` for each write (keys distinct), in as few requests as the store allows: per write, undefined
   * when it was written, else the error `put` would have thrown (ConflictError: another version is
   * stored). Writes may land together or one by one; one that failed for another reason than its own
   * version may have been held back with the others of its request (never written in part).
   */
  putAll(writes: readonly RuleStateWrite[]): Promise<unknown[]>;
  /** The states of a rule with `dueAt <= now`. */
  listDue(ruleId: string, now: number): Promise<RuleState[]>;
  /**
   * Optional, all three or none: with them the engine keeps states across batches (ADR 0016 amendments
   * 10-11). `claim` records `owner` (an ingest engine's id) as the last to evaluate the devices' states,
   * unconditionally; `getClaims` gives each device's owner (devices never claimed missing): a device
   * whose claim is still an engine's own was not evaluated elsewhere since. `getVersions` gives the
   * stored versions of `keys` (absent ones missing), keyed `ruleId + "\u0000" + series`: the states the
   * rules clock may have written are checked by version.
   */
  getClaims?(deviceIds: string[]): Promise<Map<string, string>>;
  claim?(deviceIds: string[], owner: string): Promise<void>;
  getVersions?(keys: RuleStateKey[]): Promise<Map<string, number>>;
}

/** A transition as the AlertStore keeps it: the alert's history, and the outbox of its actions. */
export interface TransitionRecord {
  transition: AlertTransition;
  recordedAt: number;
  /** When its actions were delivered (undefined: still to deliver). */
  dispatchedAt?: number;
}

export interface AlertStore {
  /**
   * Applies a transition: `open` creates the alert (id = alertId), `resolve` resolves it (an alert a user
   * resolved already, or one that no longer exists, stays as it is), and the transition is kept in the
   * alert's history. Idempotent on
   * the transition id: a second call changes nothing. Returns whether the transition's actions were
   * dispatched already (by an earlier attempt of the same batch): deliver only those that were not, then
   * call `markDispatched`.
   */
  record(t: AlertTransition, now: number): Promise<{ dispatched: boolean }>;
  /** `record` of each, in order (DynamoDB: the new records in one request per 25). */
  recordAll(transitions: readonly AlertTransition[], now: number): Promise<Array<{ dispatched: boolean }>>;
  /**
   * The transitions' actions were delivered: all of a batch's at once (DynamoDB: 25 per request for the
   * transitions this store recorded or listed). NotFoundError, once the others are marked, if one is
   * not recorded.
   */
  markDispatched(
    transitions: ReadonlyArray<Pick<AlertTransition, 'alertId' | 'id'>>,
    at: number,
  ): Promise<void>;
  /**
   * Transitions recorded before `before` whose actions were never marked dispatched, oldest first (a
   * crash between commit and delivery): the timer delivers them.
   */
  listUndispatched(before: number, limit?: number): Promise<TransitionRecord[]>;
  /** The transitions of an alert, oldest first. */
  history(alertId: string): Promise<TransitionRecord[]>;
  get(id: string): Promise<Alert | undefined>;
  /** Newest first (openedAt, then id). nextToken is opaque; a foreign one is a ValidationError. */
  list(filter: AlertFilter): Promise<Page<Alert>>;
  /** NotFoundError if missing; ConflictError unless open. */
  acknowledge(id: string, by: string, at: number, note?: string): Promise<Alert>;
  /** Manual resolution. NotFoundError if missing; ConflictError if resolved already. */
  resolve(id: string, by: string, at: number): Promise<Alert>;
}

// ---- helpers shared with the DynamoDB adapter ------------------------------------------------------

/** Sort key of an alert in listings: newest first = descending order of this string. */
export function alertSortKey(a: Pick<Alert, 'openedAt' | 'id'>): string {
  return `${String(a.openedAt).padStart(15, '0')}#${a.id}`;
}

export function alertFromOpen(t: AlertTransition, now: number): Alert {
  const a: Alert = {
    id: t.alertId,
    ruleId: t.ruleId,
    ruleName: t.ruleName,
    severity: t.severity,
    series: t.series,
    deviceId: t.deviceId,
    status: 'open',
    openedAt: t.at,
    reason: t.reason,
    updatedAt: now,
  };
  if (t.subDevice !== undefined) a.subDevice = t.subDevice;
  if (t.metric !== undefined) a.metric = t.metric;
  if (t.deviceType !== undefined) a.deviceType = t.deviceType;
  if (t.value !== undefined && Number.isFinite(t.value)) a.value = t.value;
  if (t.score !== undefined && Number.isFinite(t.score)) a.score = t.score;
  if (t.suppressed) a.suppressed = t.suppressed;
  return a;
}

export function matchesAlertFilter(a: Alert, f: AlertFilter): boolean {
  return (
    (f.status === undefined || a.status === f.status) &&
    (f.ruleId === undefined || a.ruleId === f.ruleId) &&
    (f.deviceId === undefined || a.deviceId === f.deviceId) &&
    (f.deviceIds === undefined || f.deviceIds.includes(a.deviceId)) &&
    (f.severity === undefined || a.severity === f.severity) &&
    (f.deviceType === undefined || a.deviceType === f.deviceType) &&
    (f.since === undefined || a.openedAt >= f.since) &&
    (f.until === undefined || a.openedAt <= f.until)
  );
}

export function alertLimit(f: AlertFilter): number {
  const limit = f.limit ?? 50;
  if (!Number.isInteger(limit) || limit < 1 || limit > 100) {
    throw new ValidationError('limit must be an integer between 1 and 100', { field: 'limit' });
  }
  return limit;
}

/**
 * A state as the state stores keep it (ADR 0016 amendment 10): its window as one binary value `w`
 * (window-codec.ts) instead of the two lists `wt`/`wv` (a 5-minute window at 1 Hz: 30 instead of
 * 404 µs to marshal and serialize the state, a 4.4 instead of 14.6 KiB request). States stored before
 * it, with the lists, are read as they are.
 */
export type StoredRuleState = Omit<RuleState, 'wt' | 'wv'> & {
  w?: Uint8Array;
  wt?: number[];
  wv?: number[];
};

/** The stored form of a state (a copy: the engine goes on changing its own). */
export function toStoredState(s: RuleState): StoredRuleState {
  const { wt, wv, ...rest } = s;
  const stored: StoredRuleState = rest;
  if (wt && wv) stored.w = encodeWindow(wt, wv);
  if (s.detector) stored.detector = { ...s.detector, recent: s.detector.recent.slice() };
  return stored;
}

/**
 * A stored state as the engine uses it. A window that cannot be decoded is dropped (its windowed
 * functions start over, as after a rule change): one damaged item must not stop its series for good.
 */
export function fromStoredState(stored: StoredRuleState, onDamaged?: (error: unknown) => void): RuleState {
  const { w, ...rest } = stored;
  const s: RuleState = rest;
  if (s.wt !== undefined || s.wv !== undefined) {
    // The list form (stored before the binary one): used only when it is a window (an unusable one
    // would fail every later put of the series, at its encoding).
    const { wt, wv } = s;
    if (isNumbers(wt) && isNumbers(wv) && wt.length === wv.length) {
      s.wt = wt.slice();
      s.wv = wv.slice();
    } else {
      s.wt = undefined;
      s.wv = undefined;
      onDamaged?.(
        new DecodeError('RULE_STATE_WINDOW', 'window lists are not two number lists of one length', {
          field: 'wt',
        }),
      );
    }
  }
  if (w !== undefined) {
    try {
      const window = decodeWindow(w);
      s.wt = window.wt;
      s.wv = window.wv;
    } catch (error) {
      onDamaged?.(error);
    }
  }
  if (s.detector) s.detector = { ...s.detector, recent: s.detector.recent.slice() };
  return s;
}

const isNumbers = (xs: unknown): xs is number[] =>
  Array.isArray(xs) && xs.every((x) => typeof x === 'number');

// ---- in-memory implementations -------------------------------------------------------------------

export class InMemoryRuleStore implements RuleStore {
  private readonly rules = new Map<string, Rule>();

  async get(id: string): Promise<Rule | undefined> {
    const r = this.rules.get(id);
    return r ? structuredClone(r) : undefined;
  }

  async put(rule: Rule, mode: 'create' | 'update'): Promise<void> {
    const existing = this.rules.get(rule.id);
    if (mode === 'create' && existing)
      throw new ConflictError(`rule ${rule.id} already exists`, { field: 'id' });
    if (mode === 'update') {
      if (!existing) throw new NotFoundError(`rule ${rule.id} not found`, { field: 'id' });
      if (existing.revision !== rule.revision - 1) {
        throw new ConflictError(`rule ${rule.id} changed since it was read`, { field: 'revision' });
      }
    }
    this.rules.set(rule.id, structuredClone(rule));
  }

  async delete(id: string): Promise<boolean> {
    return this.rules.delete(id);
  }

  async list(filter: { deviceType?: string } = {}): Promise<Rule[]> {
    return [...this.rules.values()]
      .filter(
        (r) =>
          filter.deviceType === undefined ||
          r.select.deviceType === undefined ||
          r.select.deviceType === filter.deviceType,
      )
      .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
      .map((r) => structuredClone(r));
  }
}

/** Keeps states in their stored form, as the DynamoDB port does (the window encoded on every put). */
export class InMemoryRuleStateStore implements RuleStateStore {
  readonly states = new Map<string, StoredRuleState>();
  /** Calls, for tests that check how many round trips a batch costs. */
  readonly calls = { getMany: 0, put: 0, putAll: 0, listDue: 0, getClaims: 0, claim: 0, getVersions: 0 };
  /** Device id → the engine that last claimed its states. */
  readonly claims = new Map<string, string>();

  async getClaims(deviceIds: string[]): Promise<Map<string, string>> {
    this.calls.getClaims++;
    const out = new Map<string, string>();
    for (const d of deviceIds) {
      const owner = this.claims.get(d);
      if (owner !== undefined) out.set(d, owner);
    }
    return out;
  }

  async claim(deviceIds: string[], owner: string): Promise<void> {
    this.calls.claim++;
    for (const d of deviceIds) this.claims.set(d, owner);
  }

  async getVersions(keys: RuleStateKey[]): Promise<Map<string, number>> {
    this.calls.getVersions++;
    const out = new Map<string, number>();
    for (const k of keys) {
      const key = `${k.ruleId}\u0000${k.series}`;
      const s = this.states.get(key);
      if (s) out.set(key, s.version);
    }
    return out;
  }

  async getMany(keys: RuleStateKey[]): Promise<RuleState[]> {
    this.calls.getMany++;
    const out: RuleState[] = [];
    for (const k of keys) {
      const s = this.states.get(`${k.ruleId}\u0000${k.series}`);
      if (s) out.push(fromStoredState(s));
    }
    return out;
  }

  async put(state: RuleState, expected: number | undefined): Promise<void> {
    this.calls.put++;
    const key = `${state.ruleId}\u0000${state.series}`;
    const current = this.states.get(key)?.version;
    if (current !== expected) {
      throw new ConflictError(`rule state ${key}: version ${current ?? 'none'} ≠ ${expected ?? 'none'}`);
    }
    const stored = toStoredState(state);
    stored.version = (expected ?? 0) + 1;
    this.states.set(key, stored);
  }

  /**
   * One call; the writes land one by one through `put` (a conflict leaves the others written; `put`
   * counts each, and a test that wraps `put` wraps these too).
   */
  async putAll(writes: readonly RuleStateWrite[]): Promise<unknown[]> {
    this.calls.putAll++;
    const out: unknown[] = [];
    for (const w of writes) {
      try {
        await this.put(w.state, w.expected);
        out.push(undefined);
      } catch (error) {
        out.push(error);
      }
    }
    return out;
  }

  async listDue(ruleId: string, now: number): Promise<RuleState[]> {
    this.calls.listDue++;
    return [...this.states.values()]
      .filter((s) => s.ruleId === ruleId && s.dueAt !== undefined && s.dueAt <= now)
      .map((s) => fromStoredState(s));
  }
}

export class InMemoryAlertStore implements AlertStore {
  private readonly alerts = new Map<string, Alert>();
  private readonly transitions = new Map<string, TransitionRecord[]>();
  private readonly byId = new Map<string, TransitionRecord>();

  async recordAll(
    transitions: readonly AlertTransition[],
    now: number,
  ): Promise<Array<{ dispatched: boolean }>> {
    const out: Array<{ dispatched: boolean }> = [];
    for (const t of transitions) out.push(await this.record(t, now));
    return out;
  }

  async record(t: AlertTransition, now: number): Promise<{ dispatched: boolean }> {
    const history = this.transitions.get(t.alertId) ?? [];
    const seen = this.byId.get(t.id);
    if (seen) return { dispatched: seen.dispatchedAt !== undefined };
    const existing = this.alerts.get(t.alertId);
    if (t.kind === 'open') {
      if (!existing) this.alerts.set(t.alertId, alertFromOpen(t, now));
    } else {
      // A missing alert (expired, or never recorded) is not an error: a redelivered batch must not
      // fail on it forever. The transition is still kept in the history.
      if (existing && existing.status !== 'resolved') {
        existing.status = 'resolved';
        existing.resolvedAt = t.at;
        existing.resolvedBy = t.resolvedBy ?? 'rule';
        existing.resolveTransition = t.id;
        existing.updatedAt = now;
      }
    }
    const record: TransitionRecord = { transition: { ...t }, recordedAt: now };
    history.push(record);
    this.byId.set(t.id, record);
    this.transitions.set(t.alertId, history);
    return { dispatched: false };
  }

  async markDispatched(
    transitions: ReadonlyArray<Pick<AlertTransition, 'alertId' | 'id'>>,
    at: number,
  ): Promise<void> {
    let missing: string | undefined;
    for (const t of transitions) {
      const r = this.transitions.get(t.alertId)?.find((x) => x.transition.id === t.id);
      if (r) r.dispatchedAt ??= at;
      else missing ??= t.id;
    }
    if (missing !== undefined)
      throw new NotFoundError(`transition ${missing} not found`, { field: 'transitionId' });
  }

  async listUndispatched(before: number, limit = 100): Promise<TransitionRecord[]> {
    return [...this.transitions.values()]
      .flat()
      .filter((r) => r.dispatchedAt === undefined && r.recordedAt < before)
      .sort((a, b) => a.transition.at - b.transition.at || (a.transition.id < b.transition.id ? -1 : 1))
      .slice(0, limit)
      .map((r) => structuredClone(r));
  }

  async history(alertId: string): Promise<TransitionRecord[]> {
    return structuredClone(this.transitions.get(alertId) ?? []);
  }

  async get(id: string): Promise<Alert | undefined> {
    const a = this.alerts.get(id);
    return a ? { ...a } : undefined;
  }

  async list(filter: AlertFilter): Promise<Page<Alert>> {
    const limit = alertLimit(filter);
    let after: string | undefined;
    if (filter.nextToken !== undefined) {
      const v = decodePageToken(filter.nextToken);
      if (typeof v !== 'object' || v === null || typeof (v as { s?: unknown }).s !== 'string') {
        throw new ValidationError('nextToken is not a token returned by this API', { field: 'nextToken' });
      }
      after = (v as { s: string }).s;
    }
    const sorted = [...this.alerts.values()]
      .filter((a) => matchesAlertFilter(a, filter))
      .map((a) => ({ a, k: alertSortKey(a) }))
      .filter((x) => after === undefined || x.k < after)
      .sort((x, y) => (x.k < y.k ? 1 : x.k > y.k ? -1 : 0));
    const items = sorted.slice(0, limit).map((x) => ({ ...x.a }));
    const page: Page<Alert> = { items };
    if (sorted.length > limit) page.nextToken = encodePageToken({ s: sorted[limit - 1]!.k });
    return page;
  }

  async acknowledge(id: string, by: string, at: number, note?: string): Promise<Alert> {
    const a = this.alerts.get(id);
    if (!a) throw new NotFoundError(`alert ${id} not found`, { field: 'id' });
    if (a.status !== 'open') throw new ConflictError(`alert ${id} is ${a.status}`, { field: 'status' });
    a.status = 'acknowledged';
    a.acknowledgedAt = at;
    a.acknowledgedBy = by;
    if (note !== undefined) a.note = note;
    a.updatedAt = at;
    return { ...a };
  }

  async resolve(id: string, by: string, at: number): Promise<Alert> {
    const a = this.alerts.get(id);
    if (!a) throw new NotFoundError(`alert ${id} not found`, { field: 'id' });
    if (a.status === 'resolved') throw new ConflictError(`alert ${id} is resolved`, { field: 'status' });
    a.status = 'resolved';
    a.resolvedAt = at;
    a.resolvedBy = by;
    a.updatedAt = at;
    return { ...a };
  }
}
