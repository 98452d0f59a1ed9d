/** /rules and /alerts (ADR 0016): CRUD, condition errors with positions, application-key scoping. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AlertTransition } from '../../functions/core/rules/index.js';
import { type Api, createApi } from './fixture.js';

let api: Api;
const ids = (list: unknown) => (list as Array<{ id: string }>).map((x) => x.id);
beforeAll(async () => {
  api = await createApi();
});
afterAll(async () => api.close());

const rule = (deviceType: string | undefined, extra: Record<string, unknown> = {}) => ({
  name: 'over-voltage',
  severity: 'major',
  condition: 'value > 250 for 30s clear < 245',
  select: deviceType === undefined ? {} : { deviceType },
  ...extra,
});

function opening(id: string, deviceId: string, deviceType: string, at: number): AlertTransition {
  return {
    id,
    alertId: id,
    kind: 'open',
    ruleId: 'r',
    ruleRevision: 1,
    ruleName: 'r',
    severity: 'major',
    series: `${deviceId}|Voltage`,
    deviceId,
    deviceType,
    metric: 'Voltage',
    at,
    value: 260,
    reason: 'value > 250',
    actions: [],
  };
}

describe('/rules', () => {
  it('creates, reads, replaces and deletes a rule (admin); the condition is stored canonically', async () => {
    const created = await api.call('POST', '/rules', { body: rule('breaker', { id: 'ov' }) });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({
      id: 'ov',
      revision: 1,
      condition: 'value > 250 for 30s clear value < 245',
    });
    expect((await api.call('POST', '/rules', { body: rule('breaker', { id: 'ov' }) })).status).toBe(409);
    const replaced = await api.call('PUT', '/rules/ov', { body: rule('breaker', { severity: 'critical' }) });
    expect(replaced.status).toBe(200);
    expect(replaced.body).toMatchObject({ revision: 2, severity: 'critical' });
    expect((await api.call('GET', '/rules/ov')).body).toMatchObject({ revision: 2 });
    expect((await api.call('DELETE', '/rules/ov')).status).toBe(204);
    expect((await api.call('GET', '/rules/ov')).status).toBe(404);
  });

  it('answers a syntax error with 400 naming the field and the position', async () => {
    const res = await api.call('POST', '/rules', {
      body: rule('breaker', { condition: 'value > 80 for 30' }),
    });
    expect(res.status).toBe(400);
    expect(res.body.error).toMatchObject({ field: 'condition', position: expect.any(Number) });
    const unknownFn = await api.call('POST', '/rules', {
      body: rule('breaker', { condition: 'process(1) > 0' }),
    });
    expect(unknownFn.status).toBe(400);
    expect(unknownFn.body.error).toMatchObject({ field: 'condition', position: 0 });
    const badField = await api.call('POST', '/rules', { body: { ...rule('breaker'), severity: 'loud' } });
    expect(badField.status).toBe(400);
    expect(badField.body.error).toMatchObject({ field: 'severity' });
  });

  it('lets an application manage only rules of its device types', async () => {
    const key = api.appKey; // breaker only
    expect((await api.call('POST', '/rules', { key, body: rule('env-sensor') })).status).toBe(403);
    expect((await api.call('POST', '/rules', { key, body: rule(undefined) })).status).toBe(403);
    const own = await api.call('POST', '/rules', { key, body: rule('breaker', { id: 'app-rule' }) });
    expect(own.status).toBe(201);
    await api.call('POST', '/rules', { body: rule('env-sensor', { id: 'env-rule' }) });
    await api.call('POST', '/rules', { body: rule(undefined, { id: 'any-rule' }) });

    const mine = await api.call('GET', '/rules', { key });
    expect(ids(mine.body.rules)).toEqual(['app-rule']);
    const all = await api.call('GET', '/rules');
    expect(ids(all.body.rules).sort()).toEqual(['any-rule', 'app-rule', 'env-rule']);
    // Another type's rule and a missing rule answer alike (no probing).
    expect((await api.call('GET', '/rules/env-rule', { key })).status).toBe(403);
    expect((await api.call('GET', '/rules/nope', { key })).status).toBe(403);
    expect((await api.call('DELETE', '/rules/any-rule', { key })).status).toBe(403);
    // Moving its own rule to another type is refused.
    expect((await api.call('PUT', '/rules/app-rule', { key, body: rule('env-sensor') })).status).toBe(403);
    expect((await api.call('GET', '/rules', { key, query: { deviceType: 'env-sensor' } })).status).toBe(403);
    expect((await api.call('DELETE', '/rules/app-rule', { key })).status).toBe(204);
  });
});

describe('/alerts', () => {
  it('lists, filters, acknowledges and resolves alerts; an application sees only its types', async () => {
    const t0 = api.clock.now;
    await api.alerts.record(opening('a-b1', 'b1', 'breaker', t0 + 1), t0);
    await api.alerts.record(opening('a-e1', 'e1', 'env-sensor', t0 + 2), t0);
    await api.alerts.record(opening('a-b1-2', 'b1', 'breaker', t0 + 3), t0);

    const all = await api.call('GET', '/alerts');
    expect(ids(all.body.alerts)).toEqual(['a-b1-2', 'a-e1', 'a-b1']);
    const page = await api.call('GET', '/alerts', { query: { limit: '2' } });
    expect(page.body.alerts).toHaveLength(2);
    const rest = await api.call('GET', '/alerts', { query: { limit: '2', nextToken: page.body.nextToken } });
    expect(ids(rest.body.alerts)).toEqual(['a-b1']);
    expect((await api.call('GET', '/alerts', { query: { status: 'bogus' } })).status).toBe(400);

    const key = api.appKey;
    const mine = await api.call('GET', '/alerts', { key });
    expect(ids(mine.body.alerts)).toEqual(['a-b1-2', 'a-b1']);
    expect((await api.call('GET', '/alerts', { key, query: { deviceType: 'env-sensor' } })).status).toBe(403);
    expect((await api.call('GET', '/alerts/a-e1', { key })).status).toBe(403);
    expect((await api.call('POST', '/alerts/a-e1/ack', { key })).status).toBe(403);

    api.clock.now = t0 + 10_000;
    const ack = await api.call('POST', '/alerts/a-b1/ack', { key, body: { note: 'crew sent' } });
    expect(ack.status).toBe(200);
    expect(ack.body).toMatchObject({
      status: 'acknowledged',
      acknowledgedBy: 'app:Smart Grid Monitor',
      acknowledgedAt: t0 + 10_000,
      note: 'crew sent',
    });
    expect((await api.call('POST', '/alerts/a-b1/ack', { key })).status).toBe(409);
    const resolved = await api.call('POST', '/alerts/a-b1/resolve');
    expect(resolved.body).toMatchObject({ status: 'resolved', resolvedBy: 'admin' });
    expect((await api.call('GET', '/alerts', { query: { status: 'open' } })).body.alerts).toHaveLength(2);
    expect((await api.call('GET', '/alerts/missing')).status).toBe(404);
  });
});
