/**
 * IAM by execution: the AWS calls a function made, evaluated against the identity-policy statements of
 * its execution role (scripts/verify-deploy/template.ts `policiesFor`), the way IAM evaluates an
 * identity policy inside one account:
 *
 * - a call is allowed when some Allow statement matches it and no Deny statement does (an explicit
 *   Deny always wins; no match at all is an implicit deny);
 * - a statement matches when its Action (or NotAction) matches `service:Action` — case-insensitive,
 *   `*` any run of characters, `?` one character — its Resource (or NotResource) matches the ARN —
 *   case-sensitive, the same wildcards, and a `*` spans `/` and `:` — and every condition holds;
 * - condition operators: String{Equals,NotEquals,EqualsIgnoreCase,NotEqualsIgnoreCase,Like,NotLike},
 *   Arn{Equals,Like,NotEquals,NotLike}, Bool, Null, Numeric*, the `IfExists` suffix, and the
 *   ForAllValues:/ForAnyValue: set qualifiers (multi-valued context keys as comma-separated strings).
 *   An operator it does not know makes its statement NOT match, with a warning naming it — an Allow
 *   that cannot be evaluated then shows up as a denied call rather than a silent pass.
 *
 * `excess` lists every (action pattern × resource pattern) of an Allow statement that no allowed call
 * used: the grant-but-never-called half of least privilege.
 */

/** One statement of an IAM policy document, as in the JSON (single strings or lists). */
export interface IamStatement {
  Sid?: string;
  Effect: 'Allow' | 'Deny';
  Action?: string | string[];
  NotAction?: string | string[];
  Resource?: string | string[];
  NotResource?: string | string[];
  Condition?: Record<string, Record<string, string | string[] | boolean | number>>;
  /** Where the statement came from (policy logical id or name), for messages. */
  source?: string;
}

/** One AWS call as the harness records it. */
export interface AwsCall {
  /** IAM service prefix: `dynamodb`, `kinesis`, `iot`, `secretsmanager`, `timestream`, ... */
  service: string;
  /** IAM action name without the prefix: `PutItem`. */
  action: string;
  /** The ARN the action is authorized on (`*` for actions without a resource type). */
  resource: string;
  /** Request context keys (`aws:SecureTransport`, `dynamodb:LeadingKeys`, ...). Multi-valued keys: comma-separated. */
  context?: Record<string, string>;
  /** Made by the function's own code, or by the service on its behalf (event source mapping polling). */
  via?: 'function' | 'service';
}

export interface Denial {
  call: AwsCall;
  reason: string;
  /** The Deny statement that matched, when the denial is explicit. */
  deniedBy?: { statementIndex: number; sid?: string };
}

export interface ExcessGrant {
  statementIndex: number;
  sid?: string;
  source?: string;
  action: string;
  resource: string;
}

export interface Evaluation {
  allowed: Array<{ call: AwsCall; statementIndex: number; sid?: string }>;
  denied: Denial[];
  excess: ExcessGrant[];
  /** Statements that could not be fully evaluated (unknown condition operators, ...). */
  warnings: string[];
}

export interface EvaluateOptions {
  /**
   * Only these grants count for `excess` (e.g. skip the event-source-mapping grants the service uses,
   * or a statement the harness cannot exercise). Returns true to include the pair.
   */
  excessFilter?: (grant: ExcessGrant, statement: IamStatement) => boolean;
}

const list = (v: string | string[] | undefined): string[] | undefined =>
  v === undefined ? undefined : Array.isArray(v) ? v : [v];

/** A wildcard pattern (`*`, `?`) as an anchored regular expression. */
export function wildcardRegExp(pattern: string, caseInsensitive: boolean): RegExp {
  let src = '';
  for (const ch of pattern) {
    if (ch === '*') src += '.*';
    else if (ch === '?') src += '.';
    else src += ch.replace(/[.+^${}()|[\]\\/-]/g, '\\$&');
  }
  return new RegExp(`^${src}$`, caseInsensitive ? 'is' : 's');
}

const regexCache = new Map<string, RegExp>();
function cachedRegExp(pattern: string, ci: boolean): RegExp {
  const key = `${ci ? 'i' : 's'}:${pattern}`;
  let re = regexCache.get(key);
  if (!re) {
    re = wildcardRegExp(pattern, ci);
    regexCache.set(key, re);
  }
  return re;
}

/** Action pattern (`dynamodb:*Item`, `*`) against `service:Action`, case-insensitively. */
export function actionMatches(pattern: string, action: string): boolean {
  return cachedRegExp(pattern, true).test(action);
}

/**
 * Resource pattern against an ARN, as IAM documents it: wildcards work within the segments of an
 * ARN (the parts separated by `:`); a `*` spans anything inside its segment, `/` included; a `*` that
 * is the LAST character of a segment may also expand beyond the colon boundary (so `arn:aws:s3:::b/*`
 * or `*` alone cover everything after them). `?` is one character other than `:`. Case-sensitive.
 */
export function resourceMatches(pattern: string, arn: string): boolean {
  if (pattern === '*') return true;
  return arnRegExp(pattern).test(arn);
}

const arnCache = new Map<string, RegExp>();
function arnRegExp(pattern: string): RegExp {
  let re = arnCache.get(pattern);
  if (re) return re;
  let src = '';
  for (let i = 0; i < pattern.length; i++) {
    const ch = pattern[i]!;
    if (ch === '*') {
      const next = pattern[i + 1];
      src += next === undefined || next === ':' ? '.*' : '[^:]*';
    } else if (ch === '?') src += '[^:]';
    else src += ch.replace(/[.+^${}()|[\]\\/-]/g, '\\$&');
  }
  re = new RegExp(`^${src}$`, 's');
  arnCache.set(pattern, re);
  return re;
}

/** The fully-qualified action of a call: `dynamodb:PutItem`. */
export function callAction(call: AwsCall): string {
  return `${call.service}:${call.action}`;
}

interface ConditionResult {
  matches: boolean;
  warnings: string[];
}

const KNOWN_BASE = new Set([
  'StringEquals',
  'StringNotEquals',
  'StringEqualsIgnoreCase',
  'StringNotEqualsIgnoreCase',
  'StringLike',
  'StringNotLike',
  'ArnEquals',
  'ArnLike',
  'ArnNotEquals',
  'ArnNotLike',
  'Bool',
  'Null',
  'NumericEquals',
  'NumericNotEquals',
  'NumericLessThan',
  'NumericLessThanEquals',
  'NumericGreaterThan',
  'NumericGreaterThanEquals',
]);

const NEGATED = new Set([
  'StringNotEquals',
  'StringNotEqualsIgnoreCase',
  'StringNotLike',
  'ArnNotEquals',
  'ArnNotLike',
  'NumericNotEquals',
]);

/** Evaluates a Condition block against a request context (all operators and keys must hold). */
export function conditionMatches(
  condition: IamStatement['Condition'],
  context: Record<string, string> = {},
  label = 'statement',
): ConditionResult {
  const warnings: string[] = [];
  if (!condition) return { matches: true, warnings };
  const ctx = new Map(Object.entries(context).map(([k, v]) => [k.toLowerCase(), v]));
  for (const [rawOp, block] of Object.entries(condition)) {
    let op = rawOp;
    let qualifier: 'all' | 'any' | undefined;
    if (op.startsWith('ForAllValues:')) {
      qualifier = 'all';
      op = op.slice('ForAllValues:'.length);
    } else if (op.startsWith('ForAnyValue:')) {
      qualifier = 'any';
      op = op.slice('ForAnyValue:'.length);
    }
    const ifExists = op.endsWith('IfExists') && op !== 'IfExists';
    if (ifExists) op = op.slice(0, -'IfExists'.length);
    if (!KNOWN_BASE.has(op) || (op === 'Null' && (ifExists || qualifier))) {
      warnings.push(
        `${label}: condition operator ${rawOp} is not supported by the harness; the statement does not match`,
      );
      return { matches: false, warnings };
    }
    for (const [key, rawValues] of Object.entries(block)) {
      const values = (Array.isArray(rawValues) ? rawValues : [rawValues]).map(String);
      const present = ctx.get(key.toLowerCase());
      if (op === 'Null') {
        const wantAbsent = values.some((v) => v.toLowerCase() === 'true');
        if (wantAbsent !== (present === undefined)) return { matches: false, warnings };
        continue;
      }
      if (present === undefined) {
        // A key missing from the request: IfExists passes; ForAllValues over the empty set is true,
        // ForAnyValue false; a negated operator (StringNotLike, ArnNotEquals, ...) is true, as IAM
        // documents; any other operator is false.
        if (ifExists || qualifier === 'all') continue;
        if (qualifier !== 'any' && NEGATED.has(op)) continue;
        return { matches: false, warnings };
      }
      const requestValues = qualifier ? present.split(',').map((v) => v.trim()) : [present];
      const one = (rv: string) => operatorHolds(op, rv, values);
      const ok =
        qualifier === 'all'
          ? requestValues.every(one)
          : qualifier === 'any'
            ? requestValues.some(one)
            : one(requestValues[0]!);
      if (!ok) return { matches: false, warnings };
    }
  }
  return { matches: true, warnings };
}

function operatorHolds(op: string, requestValue: string, policyValues: string[]): boolean {
  const anyOf = (f: (v: string) => boolean) => policyValues.some(f);
  switch (op) {
    case 'StringEquals':
      return anyOf((v) => v === requestValue);
    case 'StringNotEquals':
      return !anyOf((v) => v === requestValue);
    case 'StringEqualsIgnoreCase':
      return anyOf((v) => v.toLowerCase() === requestValue.toLowerCase());
    case 'StringNotEqualsIgnoreCase':
      return !anyOf((v) => v.toLowerCase() === requestValue.toLowerCase());
    case 'StringLike':
      return anyOf((v) => cachedRegExp(v, false).test(requestValue));
    case 'StringNotLike':
      return !anyOf((v) => cachedRegExp(v, false).test(requestValue));
    case 'ArnEquals':
    case 'ArnLike':
      return anyOf((v) => resourceMatches(v, requestValue));
    case 'ArnNotEquals':
    case 'ArnNotLike':
      return !anyOf((v) => resourceMatches(v, requestValue));
    case 'Bool':
      return anyOf((v) => v.toLowerCase() === requestValue.toLowerCase());
    default: {
      const n = Number(requestValue);
      if (Number.isNaN(n)) return false;
      const cmp = (v: string, f: (a: number, b: number) => boolean) => f(n, Number(v));
      switch (op) {
        case 'NumericEquals':
          return anyOf((v) => cmp(v, (a, b) => a === b));
        case 'NumericNotEquals':
          return !anyOf((v) => cmp(v, (a, b) => a === b));
        case 'NumericLessThan':
          return anyOf((v) => cmp(v, (a, b) => a < b));
        case 'NumericLessThanEquals':
          return anyOf((v) => cmp(v, (a, b) => a <= b));
        case 'NumericGreaterThan':
          return anyOf((v) => cmp(v, (a, b) => a > b));
        case 'NumericGreaterThanEquals':
          return anyOf((v) => cmp(v, (a, b) => a >= b));
      }
      return false;
    }
  }
}

/** Does the statement's action/resource/condition scope cover the call? (Effect not considered.) */
export function statementMatches(
  st: IamStatement,
  call: AwsCall,
  label = 'statement',
): { matches: boolean; warnings: string[] } {
  const action = callAction(call);
  const actions = list(st.Action);
  const notActions = list(st.NotAction);
  if (actions && !actions.some((p) => actionMatches(p, action))) return { matches: false, warnings: [] };
  if (notActions?.some((p) => actionMatches(p, action))) return { matches: false, warnings: [] };
  if (!actions && !notActions)
    return { matches: false, warnings: [`${label}: has neither Action nor NotAction`] };
  const resources = list(st.Resource);
  const notResources = list(st.NotResource);
  if (resources && !resources.some((p) => resourceMatches(p, call.resource)))
    return { matches: false, warnings: [] };
  if (notResources?.some((p) => resourceMatches(p, call.resource))) return { matches: false, warnings: [] };
  if (!resources && !notResources)
    return { matches: false, warnings: [`${label}: has neither Resource nor NotResource`] };
  return conditionMatches(st.Condition, call.context, label);
}

function statementLabel(st: IamStatement, index: number): string {
  return `statement ${index}${st.Sid ? ` (${st.Sid})` : ''}${st.source ? ` of ${st.source}` : ''}`;
}

/** Evaluates every call against the statements; see the module comment for the rules. */
export function evaluate(
  statements: readonly IamStatement[],
  calls: readonly AwsCall[],
  opts: EvaluateOptions = {},
): Evaluation {
  const warnings = new Set<string>();
  const allowed: Evaluation['allowed'] = [];
  const denied: Denial[] = [];
  /** For each Allow statement: which (action pattern, resource pattern) pairs some allowed call used. */
  const used = statements.map(() => new Set<string>());

  for (const call of calls) {
    let deny: { index: number; st: IamStatement } | undefined;
    const allows: number[] = [];
    statements.forEach((st, i) => {
      const r = statementMatches(st, call, statementLabel(st, i));
      for (const w of r.warnings) warnings.add(w);
      if (!r.matches) return;
      if (st.Effect === 'Deny') deny ??= { index: i, st };
      else if (st.Effect === 'Allow') allows.push(i);
      else warnings.add(`${statementLabel(st, i)}: Effect ${String(st.Effect)} is neither Allow nor Deny`);
    });
    if (deny) {
      const { index, st } = deny;
      denied.push({
        call,
        reason: `explicitly denied by ${statementLabel(st, index)}`,
        deniedBy: { statementIndex: index, ...(st.Sid ? { sid: st.Sid } : {}) },
      });
      continue;
    }
    if (allows.length === 0) {
      denied.push({ call, reason: 'no statement allows it (implicit deny)' });
      continue;
    }
    const first = allows[0]!;
    const firstSt = statements[first]!;
    allowed.push({ call, statementIndex: first, ...(firstSt.Sid ? { sid: firstSt.Sid } : {}) });
    const action = callAction(call);
    for (const i of allows) {
      const st = statements[i]!;
      const aps = list(st.Action) ?? [`NotAction:${(list(st.NotAction) ?? []).join(',')}`];
      const rps = list(st.Resource) ?? [`NotResource:${(list(st.NotResource) ?? []).join(',')}`];
      for (const ap of aps) {
        if (list(st.Action) && !actionMatches(ap, action)) continue;
        for (const rp of rps) {
          if (list(st.Resource) && !resourceMatches(rp, call.resource)) continue;
          used[i]!.add(`${ap}\u0000${rp}`);
        }
      }
    }
  }

  const excess: ExcessGrant[] = [];
  statements.forEach((st, i) => {
    if (st.Effect !== 'Allow') return;
    const aps = list(st.Action) ?? [`NotAction:${(list(st.NotAction) ?? []).join(',')}`];
    const rps = list(st.Resource) ?? [`NotResource:${(list(st.NotResource) ?? []).join(',')}`];
    for (const ap of aps) {
      for (const rp of rps) {
        if (used[i]!.has(`${ap}\u0000${rp}`)) continue;
        const grant: ExcessGrant = {
          statementIndex: i,
          ...(st.Sid ? { sid: st.Sid } : {}),
          ...(st.source ? { source: st.source } : {}),
          action: ap,
          resource: rp,
        };
        if (opts.excessFilter && !opts.excessFilter(grant, st)) continue;
        excess.push(grant);
      }
    }
  });
  return { allowed, denied, excess, warnings: [...warnings] };
}

/** `SparkplugIngestFunction: dynamodb:PutItem on arn:...:table/X is not allowed by its role (...)` */
export function formatDenial(functionName: string, d: Denial): string {
  const via = d.call.via === 'service' ? ' (called by the service on its behalf)' : '';
  return `${functionName}: ${callAction(d.call)} on ${d.call.resource}${via} is not allowed by its role — ${d.reason}`;
}

/** `ApiFunction: grant dynamodb:DeleteItem on arn:... never used (excess)` */
export function formatExcess(functionName: string, e: ExcessGrant): string {
  const where = `statement ${e.statementIndex}${e.sid ? ` (${e.sid})` : ''}${e.source ? ` of ${e.source}` : ''}`;
  return `${functionName}: grant ${e.action} on ${e.resource} never used (excess; ${where})`;
}

/** Every message of an evaluation: denials, then excess grants, then warnings, each naming the function. */
export function formatEvaluation(functionName: string, ev: Evaluation): string[] {
  return [
    ...ev.denied.map((d) => formatDenial(functionName, d)),
    ...ev.excess.map((e) => formatExcess(functionName, e)),
    ...ev.warnings.map((w) => `${functionName}: ${w}`),
  ];
}
