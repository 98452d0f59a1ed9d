/**
 * A small evaluator of AWS IoT policy documents (Allow statements, `*`/`?` wildcards, the policy
 * variables our policies use, Bool conditions): enough to check our documents for least privilege
 * and to let the fake fleet-provisioning broker enforce the real claim policy.
 */
export interface PolicyContext {
  clientId?: string;
  thingName?: string;
  /** iot:Connection.Thing.IsAttached */
  attached?: boolean;
}

type Statement = {
  Effect: string;
  Action: string | string[];
  Resource: string | string[];
  Condition?: Record<string, Record<string, string>>;
};

const list = <T>(v: T | T[]) => (Array.isArray(v) ? v : [v]);

function substitute(pattern: string, ctx: PolicyContext): string | undefined {
  let unresolved = false;
  const out = pattern.replace(/\$\{([^}]+)\}/g, (_, name: string) => {
    const v =
      name === 'iot:ClientId'
        ? ctx.clientId
        : name === 'iot:Connection.Thing.ThingName'
          ? ctx.thingName
          : undefined;
    if (v === undefined) unresolved = true;
    return v ?? '';
  });
  return unresolved ? undefined : out;
}

function globToRegExp(glob: string): RegExp {
  const esc = glob
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replace(/\*/g, '.*')
    .replace(/\?/g, '.');
  return new RegExp(`^${esc}$`);
}

export function isAllowed(
  policy: Record<string, unknown>,
  action: string,
  resource: string,
  ctx: PolicyContext = {},
): boolean {
  for (const st of policy.Statement as Statement[]) {
    if (st.Effect !== 'Allow') continue;
    if (!list(st.Action).some((a) => globToRegExp(a).test(action))) continue;
    const bool = st.Condition?.Bool?.['iot:Connection.Thing.IsAttached'];
    if (bool !== undefined && String(ctx.attached === true) !== bool) continue;
    for (const r of list(st.Resource)) {
      const concrete = substitute(r, ctx);
      if (concrete !== undefined && globToRegExp(concrete).test(resource)) return true;
    }
  }
  return false;
}

export const iotArn = (region: string, account: string) => (kind: string, rest: string) =>
  `arn:aws:iot:${region}:${account}:${kind}/${rest}`;
