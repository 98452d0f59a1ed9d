/**
 * Rules and alerts: the documents the REST API takes and returns, their validation (ValidationError
 * naming the field; RuleSyntaxError naming the position in `condition`), and reading selection.
 */
import { ValidationError } from '../errors.js';
import type { EnrichedReading, Enrichment, LifecycleEvent, Protocol } from '../reading.js';
import { type Condition, parseCondition, RuleSyntaxError, UNIT_MS } from './syntax.js';

export const SEVERITIES = ['critical', 'major', 'minor', 'warning', 'info'] as const;
export type Severity = (typeof SEVERITIES)[number];

/** What to do on each transition. Descriptors only: the adapters that deliver them live outside core. */
export type ActionDescriptor =
  | { type: 'webhook'; url: string }
  | { type: 'sns'; topicArn: string }
  | { type: 'eventbridge'; eventBusName?: string; detailType?: string };

export interface RuleSelector {
  /** Device type id (enrichment.deviceType). */
  deviceType?: string;
  /** Device ids (thing names); any of them. */
  devices?: string[];
  /** Site / group: enrichment.site, else the Sparkplug group. */
  group?: string;
  /**
   * Device tags, all of which must match. Matched against `enrichment.tags` when the enrichment carries
   * them; today's Enrichment does not, so a rule with tags matches nothing until it does.
   */
  tags?: Record<string, string>;
  /** Metric name, LwM2M path or friendly name; a glob: `*` within one path segment, `**` across, `?` one char. */
  metric?: string;
  protocol?: Protocol;
}

/** The rule document of `POST /rules` / `PUT /rules/{id}`. Durations are strings like "30s". */
export interface RuleDocument {
  name: string;
  description?: string;
  enabled?: boolean;
  select: RuleSelector;
  condition: string;
  severity: Severity;
  /** Minimum time between two alerts opened for one series (default 0s). */
  throttle?: string;
  /** Event rules (`on ...`): the alert resolves itself after this long (default 5m). */
  autoResolve?: string;
  actions?: ActionDescriptor[];
}

/** A stored rule: the document, validated, with its parsed condition's source in canonical form. */
export interface Rule {
  id: string;
  name: string;
  description?: string;
  enabled: boolean;
  select: RuleSelector;
  condition: string;
  severity: Severity;
  throttleMs: number;
  autoResolveMs: number;
  actions: ActionDescriptor[];
  /** Bumped on every update; state built under an older revision restarts its condition. */
  revision: number;
  createdAt: number;
  updatedAt: number;
}

export type AlertStatus = 'open' | 'acknowledged' | 'resolved';

export interface Alert {
  /** = the id of the transition that opened it. */
  id: string;
  ruleId: string;
  ruleName: string;
  severity: Severity;
  /** deviceId[/subDevice][|metric] */
  series: string;
  deviceId: string;
  subDevice?: string;
  metric?: string;
  deviceType?: string;
  status: AlertStatus;
  openedAt: number;
  /** The reading or event that opened it. */
  value?: number;
  score?: number;
  reason: string;
  acknowledgedAt?: number;
  acknowledgedBy?: string;
  note?: string;
  resolvedAt?: number;
  /** 'rule' when the condition cleared, 'auto' after autoResolve, else the user. */
  resolvedBy?: string;
  resolveTransition?: string;
  /** Openings held back by the throttle before this one. */
  suppressed?: number;
  updatedAt: number;
}

/** What the engine decided for one (rule, series): deterministic id, so a replay yields the same one. */
export interface AlertTransition {
  id: string;
  alertId: string;
  kind: 'open' | 'resolve';
  ruleId: string;
  ruleRevision: number;
  ruleName: string;
  severity: Severity;
  series: string;
  deviceId: string;
  subDevice?: string;
  metric?: string;
  deviceType?: string;
  protocol?: Protocol;
  /** Reading / event time, or the clock time for absence and auto-resolve. */
  at: number;
  value?: number;
  score?: number;
  reason: string;
  resolvedBy?: string;
  suppressed?: number;
  actions: ActionDescriptor[];
}

export interface AlertFilter {
  status?: AlertStatus;
  ruleId?: string;
  deviceId?: string;
  /** Alerts of any of these devices (the list routes' fleet filter resolved to ids; at most 1000). */
  deviceIds?: readonly string[];
  severity?: Severity;
  deviceType?: string;
  /** openedAt ≥ since, ≤ until (epoch ms). */
  since?: number;
  until?: number;
  /** 1-100, default 50. */
  limit?: number;
  nextToken?: string;
}

// ---- validation --------------------------------------------------------------------------------

export const RULE_LIMITS = {
  name: 128,
  description: 1024,
  devices: 100,
  tags: 20,
  metric: 256,
  actions: 10,
  url: 2048,
  /** Longest throttle / auto-resolve (7 days). */
  durationMs: 7 * 86_400_000,
} as const;

const RULE_ID = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;
const TYPE_ID = /^[a-z0-9][a-z0-9_.-]{0,63}$/;
const DEVICE_ID = /^[A-Za-z0-9_:.-]{1,128}$/;
const TOPIC_ARN = /^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,256}$/;
const BUS_NAME = /^[A-Za-z0-9/._-]{1,256}$|^arn:aws[a-z-]*:events:/;
// biome-ignore lint/suspicious/noControlCharactersInRegex: rejecting control characters is the point
const CONTROL = /[\u0000-\u001f\u007f]/;

function fail(field: string, message: string): never {
  throw new ValidationError(`${field} ${message}`, { field });
}

function text(v: unknown, field: string, max: number): string {
  if (typeof v !== 'string' || v.length === 0 || v.length > max || CONTROL.test(v)) {
    fail(field, `must be a string of 1-${max} characters without control characters`);
  }
  return v;
}

export function validateRuleId(id: unknown, field = 'id'): string {
  if (typeof id !== 'string' || !RULE_ID.test(id)) {
    fail(field, 'must be 1-64 characters of A-Z a-z 0-9 _ - starting with a letter or digit');
  }
  return id;
}

/** "30s", "5m", "1h": a duration string in ms, 0 allowed, at most `max`. */
export function parseDurationText(v: unknown, field: string, max: number = RULE_LIMITS.durationMs): number {
  const m = typeof v === 'string' ? /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/.exec(v) : null;
  if (!m) fail(field, 'must be a duration like 30s, 5m or 1h (units ms, s, m, h, d)');
  const ms = Number(m[1]) * UNIT_MS[m[2] as keyof typeof UNIT_MS];
  if (!Number.isInteger(ms) || ms > max)
    fail(field, `must be a whole number of ms up to ${max / 86_400_000} days`);
  return ms;
}

function validateSelector(v: unknown): RuleSelector {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) fail('select', 'must be an object');
  const s = v as Record<string, unknown>;
  const known = new Set(['deviceType', 'devices', 'group', 'tags', 'metric', 'protocol']);
  for (const k of Object.keys(s)) if (!known.has(k)) fail(`select.${k}`, 'is not a selector field');
  const out: RuleSelector = {};
  if (s.deviceType !== undefined) {
    if (typeof s.deviceType !== 'string' || !TYPE_ID.test(s.deviceType)) {
      fail('select.deviceType', 'must be a device type id (1-64 of a-z 0-9 _ . -)');
    }
    out.deviceType = s.deviceType;
  }
  if (s.devices !== undefined) {
    if (!Array.isArray(s.devices) || s.devices.length === 0 || s.devices.length > RULE_LIMITS.devices) {
      fail('select.devices', `must be a list of 1-${RULE_LIMITS.devices} device ids`);
    }
    out.devices = s.devices.map((d, i) => {
      if (typeof d !== 'string' || !DEVICE_ID.test(d)) fail(`select.devices[${i}]`, 'is not a device id');
      return d;
    });
  }
  if (s.group !== undefined) out.group = text(s.group, 'select.group', 128);
  if (s.tags !== undefined) {
    if (s.tags === null || typeof s.tags !== 'object' || Array.isArray(s.tags))
      fail('select.tags', 'must be an object');
    const entries = Object.entries(s.tags as Record<string, unknown>);
    if (entries.length > RULE_LIMITS.tags)
      fail('select.tags', `must have at most ${RULE_LIMITS.tags} entries`);
    out.tags = {};
    for (const [k, val] of entries)
      out.tags[text(k, 'select.tags', 128)] = text(val, `select.tags.${k}`, 256);
  }
  if (s.metric !== undefined) {
    out.metric = text(s.metric, 'select.metric', RULE_LIMITS.metric);
    if (/\*{3,}/.test(out.metric)) fail('select.metric', "may not contain '***'");
  }
  if (s.protocol !== undefined) {
    if (s.protocol !== 'sparkplug' && s.protocol !== 'lwm2m')
      fail('select.protocol', "must be 'sparkplug' or 'lwm2m'");
    out.protocol = s.protocol;
  }
  return out;
}

function validateAction(v: unknown, i: number): ActionDescriptor {
  const field = `actions[${i}]`;
  if (v === null || typeof v !== 'object' || Array.isArray(v)) fail(field, 'must be an object');
  const a = v as Record<string, unknown>;
  switch (a.type) {
    case 'webhook': {
      const url = text(a.url, `${field}.url`, RULE_LIMITS.url);
      let parsed: URL;
      try {
        parsed = new URL(url);
      } catch {
        fail(`${field}.url`, 'must be an absolute http(s) URL');
      }
      if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') {
        fail(`${field}.url`, 'must be an absolute http(s) URL');
      }
      if (parsed.username || parsed.password) fail(`${field}.url`, 'must not carry credentials');
      return { type: 'webhook', url };
    }
    case 'sns': {
      if (typeof a.topicArn !== 'string' || !TOPIC_ARN.test(a.topicArn)) {
        fail(`${field}.topicArn`, 'must be an SNS topic ARN');
      }
      return { type: 'sns', topicArn: a.topicArn };
    }
    case 'eventbridge': {
      const out: ActionDescriptor = { type: 'eventbridge' };
      if (a.eventBusName !== undefined) {
        if (typeof a.eventBusName !== 'string' || !BUS_NAME.test(a.eventBusName)) {
          fail(`${field}.eventBusName`, 'must be an event bus name or ARN');
        }
        out.eventBusName = a.eventBusName;
      }
      if (a.detailType !== undefined) out.detailType = text(a.detailType, `${field}.detailType`, 128);
      return out;
    }
    default:
      fail(`${field}.type`, "must be 'webhook', 'sns' or 'eventbridge'");
  }
}

/**
 * Validates a rule document. `previous` (an update) keeps id and createdAt and bumps the revision.
 * The condition is parsed (RuleSyntaxError with the position) and stored in canonical form.
 */
export function validateRule(
  body: unknown,
  o: { id: string; now: number; previous?: Rule },
  canonical: (c: Condition) => string,
): Rule {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) fail('body', 'must be a JSON object');
  const b = body as Record<string, unknown>;
  const known = new Set([
    'name',
    'description',
    'enabled',
    'select',
    'condition',
    'severity',
    'throttle',
    'autoResolve',
    'actions',
    'id',
  ]);
  for (const k of Object.keys(b)) if (!known.has(k)) fail(k, 'is not a rule field');
  const id = validateRuleId(o.id);
  if (b.id !== undefined && b.id !== id) fail('id', 'does not match the rule being written');
  const name = text(b.name, 'name', RULE_LIMITS.name);
  if (typeof b.condition !== 'string') fail('condition', 'must be a string');
  let condition: Condition;
  try {
    condition = parseCondition(b.condition);
  } catch (error) {
    if (error instanceof RuleSyntaxError) throw error;
    throw new ValidationError(`condition: ${(error as Error).message}`, { field: 'condition', cause: error });
  }
  if (!SEVERITIES.includes(b.severity as Severity))
    fail('severity', `must be one of ${SEVERITIES.join(', ')}`);
  const select = validateSelector(b.select ?? {});
  if ((condition.kind === 'offline' || condition.kind === 'event') && select.metric !== undefined) {
    fail('select.metric', 'does not apply to device state and event conditions');
  }
  if (b.enabled !== undefined && typeof b.enabled !== 'boolean') fail('enabled', 'must be true or false');
  if (b.actions !== undefined && (!Array.isArray(b.actions) || b.actions.length > RULE_LIMITS.actions)) {
    fail('actions', `must be a list of at most ${RULE_LIMITS.actions} actions`);
  }
  const rule: Rule = {
    id,
    name,
    enabled: b.enabled ?? true,
    select,
    condition: canonical(condition),
    severity: b.severity as Severity,
    throttleMs: b.throttle === undefined ? 0 : parseDurationText(b.throttle, 'throttle'),
    autoResolveMs: b.autoResolve === undefined ? 300_000 : parseDurationText(b.autoResolve, 'autoResolve'),
    actions: ((b.actions as unknown[] | undefined) ?? []).map(validateAction),
    revision: (o.previous?.revision ?? 0) + 1,
    createdAt: o.previous?.createdAt ?? o.now,
    updatedAt: o.now,
  };
  if (b.description !== undefined)
    rule.description = text(b.description, 'description', RULE_LIMITS.description);
  if (condition.kind === 'event' && rule.autoResolveMs === 0) fail('autoResolve', 'must be more than 0s');
  return rule;
}

/** The document form of a rule (what GET /rules/{id} returns besides id and timestamps). */
export function ruleToDocument(
  rule: Rule,
): RuleDocument & { id: string; revision: number; createdAt: number; updatedAt: number } {
  const doc: RuleDocument & { id: string; revision: number; createdAt: number; updatedAt: number } = {
    id: rule.id,
    name: rule.name,
    enabled: rule.enabled,
    select: rule.select,
    condition: rule.condition,
    severity: rule.severity,
    throttle: `${rule.throttleMs}ms`,
    autoResolve: `${rule.autoResolveMs}ms`,
    actions: rule.actions,
    revision: rule.revision,
    createdAt: rule.createdAt,
    updatedAt: rule.updatedAt,
  };
  if (rule.description !== undefined) doc.description = rule.description;
  return doc;
}

// ---- selection ---------------------------------------------------------------------------------

/** Compiles a metric glob: `**` any characters, `*` any except '/', `?` one character except '/'. */
export function globToRegExp(glob: string): RegExp {
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === '*') {
      if (glob[i + 1] === '*') {
        re += '.*';
        i++;
      } else re += '[^/]*';
    } else if (c === '?') re += '[^/]';
    else re += c.replace(/[\\^$.|+()[\]{}]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

export function isGlob(metric: string): boolean {
  return /[*?]/.test(metric);
}

type TaggedEnrichment = Enrichment & { tags?: Record<string, string> };

/** Whether a selector takes a device (everything but the metric). */
export function selectsDevice(
  s: RuleSelector,
  deviceId: string,
  protocol: Protocol | undefined,
  enrichment: Enrichment | undefined,
  group: string | undefined,
): boolean {
  if (s.protocol !== undefined && protocol !== s.protocol) return false;
  if (s.devices !== undefined && !s.devices.includes(deviceId)) return false;
  if (s.deviceType !== undefined && enrichment?.deviceType !== s.deviceType) return false;
  if (s.group !== undefined && (enrichment?.site ?? group) !== s.group) return false;
  if (s.tags !== undefined) {
    const tags = (enrichment as TaggedEnrichment | undefined)?.tags;
    if (!tags) return false;
    for (const [k, v] of Object.entries(s.tags)) if (tags[k] !== v) return false;
  }
  return true;
}

export function selectsReading(s: RuleSelector, r: EnrichedReading, metric: RegExp | undefined): boolean {
  if (!selectsDevice(s, r.deviceId, r.protocol, r.enrichment, r.group)) return false;
  if (s.metric === undefined) return true;
  if (metric) return metric.test(r.metric) || (r.name !== undefined && metric.test(r.name));
  return r.metric === s.metric || r.name === s.metric;
}

export function selectsEvent(
  s: RuleSelector,
  e: LifecycleEvent,
  enrichment: Enrichment | undefined,
): boolean {
  return selectsDevice(s, e.deviceId, e.protocol, enrichment, undefined);
}
