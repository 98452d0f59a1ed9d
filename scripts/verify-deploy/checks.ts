/**
 * The harness's verdicts on what it observed: IAM (every call allowed by the function's role, every
 * grant used) and environment (every variable the code read is set by the template or by Lambda).
 */
import { ingestConfigSpec } from '../../functions/core/config.js';
import type { RecordedCall } from './aws-endpoint.js';
import type { IamStatement } from './iam.js';
import { LAMBDA_PROVIDED } from './lambda-process.js';

const list = (v: string | string[] | undefined): string[] =>
  v === undefined ? [] : Array.isArray(v) ? v : [v];

function globToRegExp(glob: string, caseInsensitive: boolean): RegExp {
  const body = glob
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replace(/\*/g, '.*')
    .replace(/\?/g, '.');
  return new RegExp(`^${body}$`, caseInsensitive ? 'i' : '');
}

export const actionMatches = (pattern: string, action: string) => globToRegExp(pattern, true).test(action);
export const resourceMatches = (pattern: string, resource: string) =>
  globToRegExp(pattern, false).test(resource);

export interface Grant {
  statement: IamStatement & { policy: string };
  action: string;
  resource: string;
}

export interface IamVerdict {
  denied: Array<{ call: RecordedCall; reason: string }>;
  /** Action × resource pairs of Allow statements no call used. */
  excess: Grant[];
  allowed: RecordedCall[];
}

function statementApplies(st: IamStatement, call: RecordedCall): boolean {
  const actionOk = st.Action
    ? list(st.Action).some((a) => actionMatches(a, call.action))
    : !list(st.NotAction).some((a) => actionMatches(a, call.action));
  const resourceOk = st.Resource
    ? list(st.Resource).some((r) => resourceMatches(r, call.resource))
    : !list(st.NotResource).some((r) => resourceMatches(r, call.resource));
  return actionOk && resourceOk;
}

/**
 * IAM evaluation of recorded calls against one role's statements: explicit Deny wins, then any Allow;
 * statements with conditions are counted as not applying (the harness cannot prove a condition) and
 * are reported when a call needed them.
 */
export function evaluate(
  statements: Array<IamStatement & { policy: string }>,
  calls: RecordedCall[],
): IamVerdict {
  const denied: IamVerdict['denied'] = [];
  const allowed: RecordedCall[] = [];
  const used = new Set<string>();
  for (const call of calls) {
    const deny = statements.find((s) => s.Effect === 'Deny' && statementApplies(s, call));
    if (deny) {
      denied.push({ call, reason: `explicitly denied by ${deny.policy}${deny.Sid ? `/${deny.Sid}` : ''}` });
      continue;
    }
    const allows = statements.filter((s) => s.Effect === 'Allow' && statementApplies(s, call));
    const unconditional = allows.filter((s) => !s.Condition);
    if (unconditional.length === 0) {
      denied.push({
        call,
        reason:
          allows.length > 0
            ? `only conditional statements match (${allows.map((s) => s.Sid ?? s.policy).join(', ')}); conditions are not proven`
            : 'no statement of the role allows it',
      });
      continue;
    }
    allowed.push(call);
    for (const s of unconditional) {
      for (const a of list(s.Action)) {
        for (const r of list(s.Resource)) {
          if (actionMatches(a, call.action) && resourceMatches(r, call.resource)) used.add(grantKey(s, a, r));
        }
      }
    }
  }
  const excess: Grant[] = [];
  for (const s of statements) {
    if (s.Effect !== 'Allow') continue;
    for (const a of list(s.Action)) {
      for (const r of list(s.Resource)) {
        if (!used.has(grantKey(s, a, r))) excess.push({ statement: s, action: a, resource: r });
      }
    }
  }
  return { denied, excess, allowed };
}

function grantKey(s: IamStatement & { policy: string }, action: string, resource: string): string {
  return `${s.policy}|${s.Sid ?? ''}|${action}|${resource}`;
}

export function describeGrant(g: Grant): string {
  return `${g.action} on ${g.resource} (${g.statement.policy}${g.statement.Sid ? ` statement ${g.statement.Sid}` : ''})`;
}

/**
 * Variables read that need no template entry: the Lambda-provided ones, the SDK's and Node's own
 * settings, Powertools' optional settings, and the optional keys of the functions' config spec
 * (they have defaults or are only needed with another setting, which then fails loudly).
 */
/**
 * Names the bundled libraries read on their own, none of which a function needs: Node's
 * (WATCH_REPORT_DEPENDENCIES), the AWS SDK's home-directory lookup for ~/.aws files (HOME, USERPROFILE,
 * HOMEPATH, HOMEDRIVE), Powertools' fallbacks (LOG_LEVEL, ENVIRONMENT).
 */
export const LIBRARY_READS = new Set([
  'WATCH_REPORT_DEPENDENCIES',
  'HOME',
  'USERPROFILE',
  'HOMEPATH',
  'HOMEDRIVE',
  'LOG_LEVEL',
  'ENVIRONMENT',
]);

export function isOptionalRead(name: string): boolean {
  if (LAMBDA_PROVIDED.has(name) || LIBRARY_READS.has(name)) return true;
  if (/^(AWS_|_X_AMZN|POWERTOOLS_|NODE_|UV_|OPENSSL_|SSL_|NO_COLOR|FORCE_COLOR|DEBUG)/.test(name))
    return true;
  const spec = (ingestConfigSpec as Record<string, { required?: boolean }>)[name];
  if (spec && !spec.required) return true;
  return false;
}

export interface EnvVerdict {
  /** Read by the code, set neither by the template nor by Lambda, and not optional. */
  missing: string[];
  /** Read, not set, optional (reported for information). */
  optional: string[];
}

export function checkEnvReads(reads: readonly string[], templateEnv: Record<string, string>): EnvVerdict {
  const missing: string[] = [];
  const optional: string[] = [];
  for (const name of reads) {
    if (name in templateEnv) continue;
    if (isOptionalRead(name)) {
      if (!LAMBDA_PROVIDED.has(name) && !LIBRARY_READS.has(name) && !/^(AWS_|NODE_|FORCE_COLOR)/.test(name))
        optional.push(name);
    } else missing.push(name);
  }
  return { missing, optional };
}
