/** RuleEngine semantics: hold, hysteresis, rate, windows, absence, device state, throttle, dedup, replay. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ConflictError, TransientError } from '../../../functions/core/errors.js';
import type { EnrichedReading, LifecycleEvent } from '../../../functions/core/reading.js';
import {
  type AlertTransition,
  fromStoredState,
  InMemoryAlertStore,
  InMemoryRuleStateStore,
  InMemoryRuleStore,
  type Rule,
  RuleEngine,
  type RuleEngineOptions,
  type RuleState,
  validateRule,
} from '../../../functions/core/rules/index.js';

const T0 = 1_700_000_000_000;
const S = 1000;

function reading(
  value: number | boolean | string,
  t: number,
  over: Partial<EnrichedReading> = {},
): EnrichedReading {
  return {
    protocol: 'sparkplug',
    deviceId: 'breaker-1',
    group: 'plant',
    metric: 'L1/current',
    type: 'Double',
    value,
    time: t,
    historical: false,
    transient: false,
    quality: 'GOOD',
    enrichment: { deviceType: 'breaker', applications: [] },
    ...over,
  };
}

function event(type: LifecycleEvent['type'], t: number, over: Partial<LifecycleEvent> = {}): LifecycleEvent {
  return { type, protocol: 'sparkplug', deviceId: 'breaker-1', time: t, ...over };
}

async function setup(
  docs: Array<Record<string, unknown>>,
  options: Pick<RuleEngineOptions, 'rulesTtlMs' | 'maxSelections'> = {},
) {
  const rules = new InMemoryRuleStore();
  let i = 0;
  for (const d of docs) {
    await rules.put(
      validateRule({ name: `r${i}`, severity: 'major', ...d }, { id: `r${i++}`, now: T0 }),
      'create',
    );
  }
  const state = new InMemoryRuleStateStore();
  const alerts = new InMemoryAlertStore();
  let now = T0;
  const engine = new RuleEngine({ rules, state, alerts, clock: () => now, ...options });
  /** One batch: begin, evaluate, commit; returns the transitions to deliver. */
  const batch = async (readings: EnrichedReading[], events: LifecycleEvent[] = []) => {
    engine.begin();
    await engine.evaluate({ readings, events });
    return engine.commit();
  };
  const clockTick = async (at: number) => {
    now = at;
    engine.begin();
    await engine.evaluateClock(at);
    return engine.commit();
  };
  return { rules, state, alerts, engine, batch, clockTick, setNow: (t: number) => (now = t) };
}

const kinds = (ts: AlertTransition[]) => ts.map((t) => `${t.kind}@${(t.at - T0) / S}`);

describe('RuleEngine', () => {
  it('threshold with hold time and hysteresis: value > 80 for 30s clear < 75', async () => {
    const { batch, alerts } = await setup([
      { condition: 'value > 80 for 30s clear < 75', select: { metric: 'L1/current' } },
    ]);
    const series = [70, 85, 85, 79, 85, 85, 85, 85, 78, 76, 74, 90];
    const out: AlertTransition[] = [];
    for (let i = 0; i < series.length; i++)
      out.push(...(await batch([reading(series[i]!, T0 + i * 10 * S)])));
    // 85@10,20 then 79@30 breaks the hold; 85@40..70 holds 30 s → opens at 70; 78, 76 stay above the
    // clear level; 74 clears at 100; 90@110 starts a new hold.
    expect(kinds(out)).toEqual(['open@70', 'resolve@100']);
    const alert = (await alerts.get(out[0]!.alertId))!;
    expect(alert).toMatchObject({
      status: 'resolved',
      resolvedBy: 'rule',
      value: 85,
      series: 'breaker-1|L1/current',
    });
  });

  it('without clear, the alert resolves as soon as the condition is false', async () => {
    const { batch } = await setup([{ condition: 'value > 80' }]);
    const out = await batch([80, 81, 81, 80].map((v, i) => reading(v, T0 + i * S)));
    expect(kinds(out)).toEqual(['open@1', 'resolve@3']);
  });

  it('rate of change per unit of time', async () => {
    const { batch } = await setup([{ condition: 'rate(1m) > 5' }]);
    // +1 per 10 s = 6 per minute; then flat.
    const out = await batch([10, 11, 12, 12].map((v, i) => reading(v, T0 + i * 10 * S)));
    expect(kinds(out)).toEqual(['open@10', 'resolve@30']);
  });

  it('statistical windows: mean over 1m, and the window survives between batches (state)', async () => {
    const { batch, state } = await setup([{ condition: 'mean(1m) > 50 clear mean(1m) < 40' }]);
    const out: AlertTransition[] = [];
    // Value 10·i at 10·i s; the 1-minute window [t − 60 s, t] holds 7 samples, mean 10·i − 30:
    // 50 at i = 8 (not above), 60 at i = 9.
    for (let i = 0; i < 12; i++) out.push(...(await batch([reading(i * 10, T0 + i * 10 * S)])));
    expect(kinds(out)).toEqual(['open@90']);
    // Samples older than the window are dropped in bulk: never more than twice the window here.
    const s = fromStoredState([...state.states.values()][0]!);
    expect(s.wt!.length).toBeLessThanOrEqual(14);
    expect(s.wt!.slice(-7)).toEqual([5, 6, 7, 8, 9, 10, 11].map((i) => T0 + i * 10 * S));
    for (let i = 12; i < 30; i++) out.push(...(await batch([reading(0, T0 + i * 10 * S)])));
    // Zeros from 120 s: at 150 s the window is 90, 100, 110, 0 ×4 (42.9); at 160 s 100, 110, 0 ×5 (30).
    expect(kinds(out)).toEqual(['open@90', 'resolve@160']);
    // The same readings in two batches: within a batch the window start moves forward incrementally
    // (the sample exactly at t − 60 s is in the window: a start one too far makes 50 at 80 s read 55).
    const whole = await setup([{ condition: 'mean(1m) > 50 clear mean(1m) < 40' }]);
    const values = Array.from({ length: 30 }, (_, i) => (i < 12 ? i * 10 : 0));
    const rs = values.map((v, i) => reading(v, T0 + i * 10 * S));
    const got = [...(await whole.batch(rs.slice(0, 12))), ...(await whole.batch(rs.slice(12)))];
    expect(kinds(got)).toEqual(['open@90', 'resolve@160']);
  });

  it('bounds the window: at most maxWindowSamples per series', async () => {
    const rules = new InMemoryRuleStore();
    await rules.put(
      validateRule({ name: 'w', severity: 'info', condition: 'count(1h) > 1000' }, { id: 'w', now: T0 }),
      'create',
    );
    const state = new InMemoryRuleStateStore();
    const engine = new RuleEngine({
      rules,
      state,
      alerts: new InMemoryAlertStore(),
      clock: () => T0,
      maxWindowSamples: 50,
    });
    engine.begin();
    await engine.evaluate({ readings: Array.from({ length: 200 }, (_, i) => reading(i, T0 + i * S)) });
    await engine.commit();
    const s = fromStoredState([...state.states.values()][0]!);
    expect(s.wt).toHaveLength(50);
    expect(s.wv![0]).toBe(150);
  });

  it('absence: opens at lastTime + N via the clock (deterministic id), resolves on the next reading', async () => {
    const { batch, clockTick, alerts } = await setup([
      { condition: 'absent for 60s', select: { deviceType: 'breaker' } },
    ]);
    expect(await batch([reading(1, T0), reading(2, T0 + S, { metric: 'other' })])).toEqual([]);
    expect(await clockTick(T0 + 60 * S)).toEqual([]); // last reading at T0+1s: due at 61 s
    const opened = await clockTick(T0 + 90 * S);
    expect(kinds(opened)).toEqual(['open@61']);
    expect(await clockTick(T0 + 120 * S)).toEqual([]); // dedup: still open, nothing new
    const resolved = await batch([reading(3, T0 + 130 * S)]);
    expect(kinds(resolved)).toEqual(['resolve@130']);
    expect((await alerts.get(opened[0]!.alertId))?.status).toBe('resolved');
    // A second engine (another instance / cold start) running the same tick finds nothing due.
    expect(await clockTick(T0 + 150 * S)).toEqual([]);
  });

  it('absence per metric when the rule names a metric', async () => {
    const { batch, clockTick } = await setup([
      { condition: 'absent for 60s', select: { metric: 'L*/current' } },
    ]);
    await batch([
      reading(1, T0),
      reading(1, T0 + 30 * S, { metric: 'L2/current' }),
      reading(1, T0, { metric: 'x' }),
    ]);
    const out = await clockTick(T0 + 75 * S);
    expect(out.map((t) => t.series)).toEqual(['breaker-1|L1/current']);
  });

  it('device state: offline on death / de-registration, online on birth; offline for 5m via the clock', async () => {
    const { batch, clockTick } = await setup([
      { condition: 'offline' },
      { condition: 'offline for 5m', select: { protocol: 'lwm2m' } },
    ]);
    const out = await batch([], [event('death', T0), event('birth', T0 + 10 * S)]);
    expect(out.map((t) => `${t.ruleId}:${t.kind}`)).toEqual(['r0:open', 'r0:resolve']);
    const lw = { protocol: 'lwm2m' as const, deviceId: 'ep-1' };
    expect(await batch([], [event('deregister', T0 + 20 * S, lw)])).toHaveLength(1); // r0 opens at once
    expect(await clockTick(T0 + 200 * S)).toEqual([]);
    const late = await clockTick(T0 + 400 * S);
    expect(late.map((t) => `${t.ruleId}:${t.kind}@${(t.at - T0) / S}`)).toEqual(['r1:open@320']);
    const back = await batch([], [event('register', T0 + 500 * S, lw)]);
    expect(back.map((t) => `${t.ruleId}:${t.kind}`).sort()).toEqual(['r0:resolve', 'r1:resolve']);
  });

  it('events: on rebirth opens once (dedup) and resolves itself after autoResolve', async () => {
    const { batch, clockTick } = await setup([{ condition: 'on rebirth', autoResolve: '10m' }]);
    const out = await batch(
      [],
      [event('rebirth-requested', T0), event('rebirth-requested', T0 + S), event('birth', T0 + 2 * S)],
    );
    expect(kinds(out)).toEqual(['open@0']);
    expect(kinds(await clockTick(T0 + 700 * S))).toEqual(['resolve@600']);
    expect(kinds(await batch([], [event('rebirth-requested', T0 + 800 * S)]))).toEqual(['open@800']);
  });

  it('selection: device type, devices, group, metric glob, protocol; non-numeric and BAD readings skipped', async () => {
    const { batch } = await setup([
      { condition: 'value > 0', select: { deviceType: 'pump' } },
      { condition: 'value > 0', select: { devices: ['breaker-2'] } },
      { condition: 'value > 0', select: { group: 'other' } },
      { condition: 'value > 0', select: { metric: 'L?/**' } },
      { condition: 'value > 0', select: { protocol: 'lwm2m' } },
    ]);
    const out = await batch([
      reading(1, T0, { metric: 'L1/phase/current' }), // r3 only
      reading('on', T0 + S, { metric: 'L2/x', deviceId: 'breaker-3' }),
      reading(1, T0 + S, { metric: 'L3/x', deviceId: 'breaker-4', quality: 'BAD' }),
      reading(true, T0 + S, { metric: 'L4/x', deviceId: 'breaker-5' }), // boolean = 1: r3
    ]);
    expect(out.map((t) => `${t.ruleId}:${t.series}`)).toEqual([
      'r3:breaker-1|L1/phase/current',
      'r3:breaker-5|L4/x',
    ]);
  });

  it('throttle: a re-opening within the throttle is held back, counted, and opened by the clock once due', async () => {
    const { batch, clockTick, alerts } = await setup([{ condition: 'value > 80', throttle: '10m' }]);
    const out = await batch([90, 70, 90, 70, 90].map((v, i) => reading(v, T0 + i * 60 * S)));
    expect(kinds(out)).toEqual(['open@0', 'resolve@60']); // re-activations at 120 and 240 held back
    expect(await clockTick(T0 + 500 * S)).toEqual([]);
    const reopened = await clockTick(T0 + 700 * S);
    expect(kinds(reopened)).toEqual(['open@600']);
    expect(reopened[0]!.suppressed).toBe(2);
    expect((await alerts.get(reopened[0]!.alertId))?.suppressed).toBe(2);
  });

  it('a redelivered batch after a complete commit changes nothing', async () => {
    const { batch, alerts } = await setup([{ condition: 'value > 80' }]);
    const readings = [90, 70, 90].map((v, i) => reading(v, T0 + i * S));
    const first = await batch(readings);
    expect(kinds(first)).toEqual(['open@0', 'resolve@1', 'open@2']);
    expect(await batch(readings)).toEqual([]);
    expect((await alerts.list({})).items).toHaveLength(2);
  });

  it('a failed state write: abort, redeliver → the same transition ids, recorded once, delivered once', async () => {
    const { state, alerts, engine } = await setup([{ condition: 'value > 80' }]);
    const put = state.put.bind(state);
    let failures = 1;
    state.put = async (s: RuleState, expected: number | undefined) => {
      if (failures-- > 0) throw new TransientError('AWS_TRANSIENT', 'throttled');
      return put(s, expected);
    };
    const readings = [reading(90, T0)];
    engine.begin();
    const first = await engine.evaluate({ readings });
    await expect(engine.commit()).rejects.toBeInstanceOf(TransientError);
    engine.abort();
    engine.begin();
    const second = await engine.evaluate({ readings });
    expect(second.map((t) => t.id)).toEqual(first.map((t) => t.id));
    const deliver = await engine.commit();
    expect(deliver.map((t) => t.id)).toEqual(first.map((t) => t.id)); // never delivered before
    await alerts.markDispatched([deliver[0]!], T0);
    expect((await alerts.list({})).items).toHaveLength(1);
    expect(await alerts.history(first[0]!.alertId)).toHaveLength(1);
    // Redelivered again (say the checkpoint was lost): the state is written, readings are skipped.
    engine.begin();
    expect(await engine.evaluate({ readings })).toEqual([]);
  });

  it('a transition delivered before a crash is not delivered again by the replay', async () => {
    const { state, alerts, engine } = await setup([{ condition: 'value > 80' }]);
    const readings = [reading(90, T0)];
    engine.begin();
    const [t] = await engine.evaluate({ readings });
    // Commit records the alert, the state write then fails; meanwhile the transition was delivered.
    state.put = async () => {
      throw new ConflictError('lost a race');
    };
    await expect(engine.commit()).rejects.toBeInstanceOf(ConflictError);
    await alerts.markDispatched([t!], T0);
    engine.abort();
    state.put = InMemoryRuleStateStore.prototype.put.bind(state);
    engine.begin();
    await engine.evaluate({ readings });
    expect(await engine.commit()).toEqual([]);
  });

  it('a commit retried after a failure writes only the rest', async () => {
    const { state, engine } = await setup([{ condition: 'value > 80' }]);
    const put = state.put.bind(state);
    let n = 0;
    state.put = async (s: RuleState, expected: number | undefined) => {
      if (n++ === 1) throw new TransientError('AWS_TRANSIENT', 'throttled');
      return put(s, expected);
    };
    engine.begin();
    await engine.evaluate({ readings: ['a', 'b', 'c'].map((d) => reading(90, T0, { deviceId: d })) });
    await expect(engine.commit()).rejects.toBeInstanceOf(TransientError);
    await engine.commit();
    expect([...state.states.values()].map((s) => s.version)).toEqual([1, 1, 1]);
  });

  it('a concurrent writer makes the commit fail with ConflictError (versions)', async () => {
    const { state, engine, setNow } = await setup([{ condition: 'value > 80' }]);
    const other = new RuleEngine({
      rules: new InMemoryRuleStore(),
      state,
      alerts: new InMemoryAlertStore(),
      clock: () => T0,
    });
    await (other as unknown as { o: { rules: InMemoryRuleStore } }).o.rules.put(
      validateRule({ name: 'r0', severity: 'major', condition: 'value > 80' }, { id: 'r0', now: T0 }),
      'create',
    );
    setNow(T0);
    engine.begin();
    other.begin();
    await engine.evaluate({ readings: [reading(90, T0)] });
    await other.evaluate({ readings: [reading(90, T0)] });
    await other.commit();
    await expect(engine.commit()).rejects.toBeInstanceOf(ConflictError);
  });

  it('a changed rule (new revision) restarts the condition but keeps the open alert', async () => {
    const { rules, batch, engine } = await setup([{ condition: 'value > 80' }]);
    expect(kinds(await batch([reading(90, T0)]))).toEqual(['open@0']);
    const previous = (await rules.get('r0'))!;
    await rules.put(
      validateRule(
        { name: 'r0', severity: 'major', condition: 'value > 95' },
        { id: 'r0', now: T0, previous },
      ),
      'update',
    );
    engine.invalidateRules();
    expect(kinds(await batch([reading(90, T0 + S)]))).toEqual(['resolve@1']);
  });

  it('anomaly(): a spike in a noisy series opens an alert with a score', async () => {
    const { batch } = await setup([{ condition: 'anomaly() > 6' }]);
    const values = Array.from({ length: 60 }, (_, i) => 50 + ((i * 7919) % 11) / 10 - 0.5);
    values[50] = 80;
    const out = await batch(values.map((v, i) => reading(v, T0 + i * 10 * S)));
    expect(kinds(out)).toEqual(['open@500', 'resolve@510']);
    expect(out[0]!.score).toBeGreaterThan(6);
  });

  it('property: splitting a series into batches, with every batch delivered twice, changes no transition', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.integer({ min: 60, max: 100 }), { minLength: 1, maxLength: 40 }),
        fc.array(fc.integer({ min: 1, max: 5 }), { minLength: 1, maxLength: 40 }),
        async (values, cuts) => {
          const readings = values.map((v, i) => reading(v, T0 + i * 10 * S));
          const doc = { condition: 'value > 80 for 20s clear < 75', throttle: '1m' };
          const one = await setup([doc]);
          const reference = await one.batch(readings);
          const two = await setup([doc]);
          const got: AlertTransition[] = [];
          let i = 0;
          for (let k = 0; i < readings.length; k++) {
            const chunk = readings.slice(i, i + cuts[k % cuts.length]!);
            i += chunk.length;
            got.push(...(await two.batch(chunk)));
            got.push(...(await two.batch(chunk))); // redelivered
          }
          expect(got.map((t) => t.id)).toEqual(reference.map((t) => t.id));
        },
      ),
      { numRuns: 100 },
    );
  });

  it('reads state once per series per batch and writes it once', async () => {
    const { state, engine } = await setup([{ condition: 'value > 80' }, { condition: 'mean(1m) > 80' }]);
    engine.begin();
    for (let chunk = 0; chunk < 3; chunk++) {
      await engine.evaluate({
        readings: [reading(1, T0 + chunk * S), reading(1, T0 + chunk * S, { deviceId: 'b2' })],
      });
    }
    await engine.commit();
    expect(state.calls.getMany).toBe(1); // 4 states, read in the first chunk; none exist yet after
    expect(state.calls.put).toBe(4);
  });

  it('validates rule documents with errors naming the field', () => {
    const bad: Array<[Record<string, unknown>, string]> = [
      [{ severity: 'major', condition: 'value > 1' }, 'name'],
      [{ name: 'x', severity: 'urgent', condition: 'value > 1' }, 'severity'],
      [{ name: 'x', severity: 'major', condition: 'value >' }, 'condition'],
      [
        { name: 'x', severity: 'major', condition: 'value > 1', select: { deviceType: 'Bad Type' } },
        'select.deviceType',
      ],
      [{ name: 'x', severity: 'major', condition: 'value > 1', select: { colour: 'red' } }, 'select.colour'],
      [{ name: 'x', severity: 'major', condition: 'value > 1', throttle: '5 minutes' }, 'throttle'],
      [
        {
          name: 'x',
          severity: 'major',
          condition: 'value > 1',
          actions: [{ type: 'webhook', url: 'ftp://x' }],
        },
        'actions[0].url',
      ],
      [
        { name: 'x', severity: 'major', condition: 'value > 1', actions: [{ type: 'sns', topicArn: 'x' }] },
        'actions[0].topicArn',
      ],
      [
        { name: 'x', severity: 'major', condition: 'value > 1', actions: [{ type: 'sms' }] },
        'actions[0].type',
      ],
      [{ name: 'x', severity: 'major', condition: 'offline', select: { metric: 'x' } }, 'select.metric'],
      [{ name: 'x', severity: 'major', condition: 'value > 1', extra: 1 }, 'extra'],
    ];
    for (const [doc, field] of bad) {
      expect(() => validateRule(doc, { id: 'r', now: T0 }), field).toThrow(
        expect.objectContaining({ field, retryable: false }),
      );
    }
    const ok: Rule = validateRule(
      {
        name: 'L1 over current',
        severity: 'critical',
        condition: 'value>80 for 30s clear<75',
        select: { deviceType: 'breaker', metric: 'L1/current' },
        throttle: '5m',
        actions: [
          { type: 'webhook', url: 'https://example.com/hook' },
          { type: 'sns', topicArn: 'arn:aws:sns:eu-west-1:123456789012:alerts' },
          { type: 'eventbridge' },
        ],
      },
      { id: 'l1', now: T0 },
    );
    expect(ok).toMatchObject({
      condition: 'value > 80 for 30s clear value < 75',
      throttleMs: 300_000,
      revision: 1,
    });
  });

  it("keeps states across batches while the device's claim is its own: a device another engine evaluated is read again", async () => {
    const { state, engine, batch } = await setup([{ condition: 'value > 80 for 20s' }]);
    await batch([reading(90, T0)]); // hold starts
    expect(state.calls).toMatchObject({ getMany: 1, getClaims: 1, claim: 1 });
    await batch([reading(90, T0 + 10 * S)]);
    expect(state.calls).toMatchObject({ getMany: 1, getClaims: 2, claim: 1 }); // one claim read, no state
    const mine = state.claims.get('breaker-1');
    // Another instance takes the series over for a while: it breaks the hold (value 70 at 15 s).
    const other = new RuleEngine({
      rules: (engine as unknown as { o: { rules: InMemoryRuleStore } }).o.rules,
      state,
      alerts: new InMemoryAlertStore(),
      clock: () => T0,
    });
    other.begin();
    await other.evaluate({ readings: [reading(70, T0 + 15 * S)] });
    await other.commit();
    expect(state.claims.get('breaker-1')).not.toBe(mine);
    // This engine's cached state (hold since 0 s) is stale: it must not open at 20 s.
    expect(await batch([reading(90, T0 + 20 * S)])).toEqual([]);
    expect(state.calls.getMany).toBe(3); // + the other engine's read and this engine's re-read
    expect(state.claims.get('breaker-1')).toBe(mine); // claimed back
    expect(kinds(await batch([reading(90, T0 + 40 * S)]))).toEqual(['open@40']); // hold from 20 s
  });

  it('without the cross-batch cache every batch reads its states', async () => {
    const rules = new InMemoryRuleStore();
    await rules.put(
      validateRule({ name: 'x', severity: 'info', condition: 'value > 1' }, { id: 'x', now: T0 }),
      'create',
    );
    const state = new InMemoryRuleStateStore();
    const engine = new RuleEngine({
      rules,
      state,
      alerts: new InMemoryAlertStore(),
      clock: () => T0,
      cacheAcrossBatches: false,
    });
    for (let i = 0; i < 3; i++) {
      engine.begin();
      await engine.evaluate({ readings: [reading(0, T0 + i * S)] });
      await engine.commit();
    }
    expect(state.calls).toMatchObject({ getMany: 3, getClaims: 0, claim: 0, put: 3 });
  });

  it('windowed rules: the same transitions when every batch reads its window back from the store; a damaged window starts over', async () => {
    const conditions = [
      'mean(1m) > 60 clear mean(1m) < 40',
      'stddev(2m) > 25',
      'percentile(90, 1m) > 90',
      'max(30s) - min(30s) > 20',
    ];
    // A value that moves through the thresholds: a triangle wave with noise-free steps.
    const values = Array.from({ length: 240 }, (_, i) =>
      i % 80 < 40 ? (i % 80) * 2.5 : (80 - (i % 80)) * 2.5,
    );
    const run = async (cacheAcrossBatches: boolean, damageAt?: number) => {
      const rules = new InMemoryRuleStore();
      for (const [i, condition] of conditions.entries()) {
        await rules.put(
          validateRule({ name: `w${i}`, severity: 'minor', condition }, { id: `w${i}`, now: T0 }),
          'create',
        );
      }
      const state = new InMemoryRuleStateStore();
      const engine = new RuleEngine({
        rules,
        state,
        alerts: new InMemoryAlertStore(),
        clock: () => T0,
        cacheAcrossBatches,
      });
      const out: AlertTransition[] = [];
      // Batches of 7 readings at 5 s.
      for (let from = 0; from < values.length; from += 7) {
        if (from === damageAt) {
          for (const s of state.states.values()) s.w = Uint8Array.from([1, 200, 0]);
        }
        engine.begin();
        await engine.evaluate({
          readings: values.slice(from, from + 7).map((v, k) => reading(v, T0 + (from + k) * 5 * S)),
        });
        out.push(...(await engine.commit()));
      }
      return { ids: out.map((t) => t.id), state };
    };
    const cached = await run(true);
    expect(cached.ids.length).toBeGreaterThan(8);
    expect((await run(false)).ids).toEqual(cached.ids);
    // Every stored window damaged mid-stream: the engine goes on, each series rebuilds its window.
    const damaged = await run(false, 119);
    expect(damaged.ids.length).toBeGreaterThan(0);
    for (const s of damaged.state.states.values()) {
      const back = fromStoredState(s);
      expect(back.wt!.length).toBeGreaterThan(0);
      expect(back.wt!.at(-1)).toBe(T0 + 239 * 5 * S);
    }
  });
});

describe('rule list loading for the ingest path (prepare)', () => {
  it('fails while no list was ever loaded, then keeps the loaded list when a refresh fails', async () => {
    const rules = new InMemoryRuleStore();
    let now = 1_000;
    let failing = true;
    const list = rules.list.bind(rules);
    rules.list = async () => {
      if (failing) throw new TransientError('AWS_TRANSIENT', 'throttled');
      return list();
    };
    const engine = new RuleEngine({
      rules,
      state: new InMemoryRuleStateStore(),
      alerts: new InMemoryAlertStore(),
      clock: () => now,
      rulesTtlMs: 100,
    });
    await expect(engine.prepare()).rejects.toBeInstanceOf(TransientError);
    failing = false;
    await engine.prepare();
    failing = true;
    now += 1_000; // past the TTL: the refresh fails, the loaded list stays
    await expect(engine.prepare()).resolves.toBeUndefined();
    // ... and the evaluation after the write does not read the list again within the TTL.
    engine.begin();
    await expect(engine.evaluate({ readings: [] })).resolves.toBeDefined();
  });

  it('selects by protocol per reading, also when one device id speaks both protocols', async () => {
    const { batch } = await setup([
      { condition: 'value > 80', select: { protocol: 'lwm2m', metric: 'L1/current' } },
    ]);
    // The Sparkplug reading comes first and builds the device's selection; the LwM2M one must not reuse it.
    const out = await batch([reading(90, T0), reading(91, T0 + S, { protocol: 'lwm2m' })]);
    expect(kinds(out)).toEqual(['open@1']);
  });

  it('readings collected over several chunks, plain and with sub-devices, run once in time order', async () => {
    const { engine } = await setup([
      { condition: 'value > 80 for 2s', select: { metric: 'L1/current' } },
      { condition: 'absent for 1m' },
    ]);
    engine.begin();
    await engine.prepare();
    // Chunk 2 holds the earlier times of the plain series: `run` evaluates each series in time order.
    engine.collect({ readings: [reading(85, T0 + 2 * S), reading(85, T0 + 2 * S, { subDevice: 'child' })] });
    engine.collect({ readings: [reading(85, T0), reading(70, T0 + S, { subDevice: 'child' })] });
    engine.collect({ readings: [reading(85, T0 + 3 * S)] });
    const out = await engine.run();
    await engine.commit();
    // The plain series holds from 0 s to 2 s (open at 2 s); the sub-device's series never holds 2 s.
    expect(out.map((t) => `${t.series}:${t.kind}@${(t.at - T0) / S}`)).toEqual([
      'breaker-1|L1/current:open@2',
    ]);
    expect(engine.stats.readings).toBe(5);
  });

  it('a rule list reloaded between the chunks of a batch: the same transitions as a list kept', async () => {
    /** Three batches of three chunks; the list is read again before chunk `reloadAt` (counting from 0). */
    const run = async (reloadAt: number | undefined) => {
      const { engine, setNow } = await setup([{ condition: 'value > 80 for 2s' }], { rulesTtlMs: 60_000 });
      let now = T0;
      const out: string[] = [];
      for (let b = 0; b < 3; b++) {
        engine.begin();
        for (let c = 0; c < 3; c++) {
          // The TTL runs out: this prepare reads the list again.
          if (b * 3 + c === reloadAt) {
            now += 120_000;
            setNow(now);
          }
          await engine.prepare();
          const t = T0 + (b * 3 + c) * S;
          engine.collect({
            readings: [
              reading(90, t),
              reading(90, t, { deviceId: `d${c}` }),
              reading(70, t, { metric: 'L2' }),
            ],
          });
        }
        for (const x of await engine.run()) out.push(`${x.series}:${x.kind}@${(x.at - T0) / S}`);
        await engine.commit();
      }
      return out.sort();
    };
    const kept = await run(undefined);
    // breaker-1 holds from 0 s; d<c> reports once per batch, in chunk c (at c, c + 3, c + 6 s).
    expect(kept).toEqual([
      'breaker-1|L1/current:open@2',
      'd0|L1/current:open@3',
      'd1|L1/current:open@4',
      'd2|L1/current:open@5',
    ]);
    // Reloaded mid-batch (the log holds selections made before and after), at a batch's start, at its end.
    for (const at of [1, 3, 5]) expect(await run(at)).toEqual(kept);
  });

  it('readings collected before and after a collection of events: one series, evaluated whole', async () => {
    // Collecting events groups the readings logged so far (their samples a range of the sorted log);
    // readings collected after that are sorted again into the same series, which keeps both.
    const docs = [
      { condition: 'value > 80 for 3s clear < 70', select: { metric: 'L1/current' } },
      { condition: 'offline' },
    ];
    const values = [85, 85, 85, 85, 60, 90, 90, 90, 90];
    const split = await setup(docs);
    split.engine.begin();
    await split.engine.prepare();
    split.engine.collect({ readings: values.slice(0, 3).map((v, i) => reading(v, T0 + i * S)) });
    split.engine.collect({ readings: [], events: [event('death', T0 + 2 * S)] });
    split.engine.collect({ readings: values.slice(3, 6).map((v, i) => reading(v, T0 + (3 + i) * S)) });
    split.engine.collect({ readings: [], events: [event('birth', T0 + 5 * S)] });
    split.engine.collect({ readings: values.slice(6).map((v, i) => reading(v, T0 + (6 + i) * S)) });
    const got = await split.engine.run();
    await split.engine.commit();
    const whole = await setup(docs);
    const want = await whole.batch(
      values.map((v, i) => reading(v, T0 + i * S)),
      [event('death', T0 + 2 * S), event('birth', T0 + 5 * S)],
    );
    const ids = (ts: AlertTransition[]) => ts.map((t) => `${t.ruleId}:${t.kind}@${(t.at - T0) / S}`).sort();
    expect(ids(got)).toEqual(['r0:open@3', 'r0:open@8', 'r0:resolve@4', 'r1:open@2', 'r1:resolve@5']);
    expect(ids(got)).toEqual(ids(want));
  });

  it('a selection memo that fills up in the middle of a chunk keeps every logged reading on its series', async () => {
    const { engine } = await setup([{ condition: 'value > 80', select: { metric: 'm' } }], {
      maxSelections: 3,
    });
    const batch = async (readings: EnrichedReading[]) => {
      engine.begin();
      await engine.prepare();
      engine.collect({ readings });
      const out = await engine.run();
      await engine.commit();
      return out.map((t) => `${t.series}:${t.kind}@${(t.at - T0) / S}`);
    };
    // The first batch fills the memo; in the second, d0's reading is logged before d9, a new device,
    // finds the memo full and starts it over.
    await batch(['d0', 'd1', 'd2'].map((deviceId) => reading(10, T0, { deviceId, metric: 'm' })));
    const got = await batch([
      reading(99, T0 + S, { deviceId: 'd0', metric: 'm' }),
      reading(1, T0 + S, { deviceId: 'd9', metric: 'm' }),
      reading(95, T0 + 2 * S, { deviceId: 'd1', metric: 'm' }),
    ]);
    expect(got.sort()).toEqual(['d0|m:open@1', 'd1|m:open@2']);
  });
});
