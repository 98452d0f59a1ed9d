/**
 * /rules (ADR 0016): CRUD of alert rules. The admin manages every rule; an application key manages only
 * rules whose `select.deviceType` is one of its device types (a rule over every type, or another
 * application's type, is 403 — for a missing id too, so ids cannot be probed). Conditions are parsed on
 * write: a syntax error is a 400 naming the field and the position.
 */

import type { Rule, RuleStore } from '../../core/rules/index.js';
import { ruleToDocument, validateRule, validateRuleId } from '../../core/rules/index.js';
import type { Principal } from '../auth.js';
import { forbidden, notFound, type Router, requireObject } from '../http.js';
import { type ApiDeps, json, noContent } from './context.js';

export interface RulesApiDeps {
  rules: RuleStore;
  /** A rule changed (the local stack refreshes its engines at once; in AWS they re-read within 30 s). */
  onChange?: () => void;
}

function mayManage(principal: Principal, rule: Pick<Rule, 'select'>): boolean {
  if (principal.kind === 'admin') return true;
  const t = rule.select.deviceType;
  return t !== undefined && principal.deviceTypes.includes(t);
}

function ruleForbidden(principal: Extract<Principal, { kind: 'app' }>, what: string) {
  return forbidden(
    `application "${principal.name}" may manage only rules whose select.deviceType is one of its device types (${what})`,
  );
}

export function registerRuleRoutes(r: Router<Principal>, deps: ApiDeps & { rulesApi?: RulesApiDeps }): void {
  const api = deps.rulesApi;
  if (!api) return;
  const { rules } = api;
  const newId = deps.newId ?? (() => crypto.randomUUID());

  const owned = async (principal: Principal, raw: string | undefined): Promise<Rule> => {
    const id = validateRuleId(raw);
    const rule = await rules.get(id);
    if (principal.kind === 'app') {
      if (!rule || !mayManage(principal, rule)) throw ruleForbidden(principal, `rule ${id}`);
      return rule;
    }
    if (!rule) throw notFound(`rule ${id} not found`);
    return rule;
  };

  r.add('GET', '/rules', async (req, _p, principal) => {
    const deviceType = req.query.deviceType;
    if (deviceType !== undefined && principal.kind === 'app' && !principal.deviceTypes.includes(deviceType)) {
      throw ruleForbidden(principal, `device type ${deviceType}`);
    }
    const all = await rules.list(deviceType !== undefined ? { deviceType } : undefined);
    return json({ rules: all.filter((x) => mayManage(principal, x)).map(ruleToDocument) });
  });

  r.add('POST', '/rules', async (req, _p, principal) => {
    const body = requireObject(req.body);
    const id = body.id === undefined ? newId() : validateRuleId(body.id);
    const rule = validateRule(body, { id, now: deps.clock() });
    if (principal.kind === 'app' && !mayManage(principal, rule)) {
      throw ruleForbidden(principal, `select.deviceType ${rule.select.deviceType ?? '(any)'}`);
    }
    await rules.put(rule, 'create');
    api.onChange?.();
    return json(ruleToDocument(rule), 201);
  });

  r.add('GET', '/rules/{id}', async (_req, p, principal) =>
    json(ruleToDocument(await owned(principal, p.id))),
  );

  r.add('PUT', '/rules/{id}', async (req, p, principal) => {
    const id = validateRuleId(p.id);
    const previous = await rules.get(id);
    if (principal.kind === 'app' && previous && !mayManage(principal, previous)) {
      throw ruleForbidden(principal, `rule ${id}`);
    }
    const rule = validateRule(requireObject(req.body), {
      id,
      now: deps.clock(),
      ...(previous ? { previous } : {}),
    });
    if (principal.kind === 'app' && !mayManage(principal, rule)) {
      throw ruleForbidden(principal, `select.deviceType ${rule.select.deviceType ?? '(any)'}`);
    }
    await rules.put(rule, previous ? 'update' : 'create');
    api.onChange?.();
    return json(ruleToDocument(rule), previous ? 200 : 201);
  });

  r.add('DELETE', '/rules/{id}', async (_req, p, principal) => {
    const rule = await owned(principal, p.id);
    await rules.delete(rule.id);
    api.onChange?.();
    return noContent();
  });
}
