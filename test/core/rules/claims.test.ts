/**
 * Claims (ADR 0016 amendment 11): ingest engines trust their cached states by a claim per device, and
 * check by version the states the rules clock may write. Schedules of several environments, cold
 * starts, clock ticks, rule revisions and failures with redelivery give exactly the transitions of an
 * engine writing every state every batch; and the race a review found between the clock's write and an
 * ingest batch converges.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { TransientError } from '../../../functions/core/errors.js';
import type { EnrichedReading, LifecycleEvent } from '../../../functions/core/reading.js';
import {
  type AlertTransition,
  InMemoryAlertStore,
  InMemoryRuleStateStore,
  InMemoryRuleStore,
  numericValue,
  RuleEngine,
  validateRule,
} from '../../../functions/core/rules/index.js';
import { fakeHistory, rd, S, T0 } from './write-behind-helpers.js';

function ev(type: 'death' | 'birth', t: number, deviceId = 'd1'): LifecycleEvent {
  return { type, protocol: 'sparkplug', deviceId, time: T0 + t * S } as LifecycleEvent;
}

type Doc = { condition: string; throttle?: string; autoResolve?: string; select?: Record<string, unknown> };

async function world(docs: Doc[], behind: boolean, maxCachedStates = 100_000) {
  const rules = new InMemoryRuleStore();
  for (const [i, d] of docs.entries())
    await rules.put(
      validateRule(
        { name: `r${i}`, severity: 'major', select: { metric: 'm*' }, ...d },
        { id: `r${i}`, now: T0 },
      ),
      'create',
    );
  const state = new InMemoryRuleStateStore();
  const alerts = new InMemoryAlertStore();
  const recorded: string[] = [];
  const seen = new Set<string>();
  const record = alerts.record.bind(alerts);
  alerts.record = async (t: AlertTransition, now: number) => {
    if (!seen.has(t.id)) {
      seen.add(t.id);
      recorded.push(`${t.kind} ${t.ruleId} ${t.series} @${(t.at - T0) / S}`);
    }
    return record(t, now);
  };
  const stored = new Map<string, Map<number, number>>();
  const history = fakeHistory(function* (deviceId, metric) {
    for (const [t, v] of stored.get(`${deviceId}|${metric}`) ?? []) yield [t, v];
  });
  const write = (rs: EnrichedReading[]) => {
    for (const r of rs) {
      if (r.subDevice !== undefined) continue;
      const k = `${r.deviceId}|${r.metric}`;
      const m = stored.get(k) ?? new Map<number, number>();
      stored.set(k, m);
      const v = numericValue(r);
      if (v !== undefined && !m.has(r.time)) m.set(r.time, v);
    }
  };
  let now = T0;
  const engine = () =>
    new RuleEngine({
      rules,
      state,
      alerts,
      clock: () => now,
      rulesTtlMs: 0,
      ...(behind ? { history, stateFlushMs: 60_000, maxCachedStates } : { cacheAcrossBatches: false }),
    });
  const batch = async (e: RuleEngine, rs: EnrichedReading[], events: LifecycleEvent[] = []) => {
    write(rs);
    e.begin();
    await e.prepare();
    e.collect({ readings: rs, events });
    await e.run();
    return e.commit();
  };
  const tick = async (e: RuleEngine, at: number) => {
    e.begin();
    await e.evaluateClock(at);
    return e.commit();
  };
  return {
    rules,
    engine,
    batch,
    tick,
    state,
    alerts,
    recorded,
    write,
    setNow: (t: number) => {
      now = T0 + t * S;
    },
  };
}

describe('claims: the rules clock beside the ingest', () => {
  it('an ingest batch between the clock finding a state due and its write converges on the next batch', async () => {
    const x = await world([{ condition: 'absent for 20s' }], true);
    const A = x.engine();
    const clock = x.engine();
    x.setNow(0);
    await x.batch(A, [rd(1, 0)]); // new state written: due at 20
    // The clock at 25 opens the absence (at 20). Just before its write lands, A takes a batch of d1
    // with a reading at 15 the device delivered late: A reads the old version and writes nothing.
    const put = x.state.put.bind(x.state);
    x.state.put = async (state, expected) => {
      x.state.put = put;
      x.setNow(26);
      await x.batch(A, [rd(1, 15)]);
      await put(state, expected);
    };
    x.setNow(25);
    await x.tick(clock, T0 + 25 * S);
    expect(x.recorded).toEqual(['open r0 d1|m @20']);
    // A reading at 40: A checks the state the clock may have written (its stored due time has come),
    // finds it moved, reads it again and replays the stored readings after it: the reading at 15
    // resolves the absence (no version conflict, no second open).
    x.setNow(40);
    await x.batch(A, [rd(1, 40)]);
    expect(x.recorded).toEqual(['open r0 d1|m @20', 'resolve r0 d1|m @15']);
    x.setNow(50);
    await x.batch(A, [rd(1, 50)]);
    expect(x.recorded).toHaveLength(2);
  });
});

type Item =
  | { kind: 'r'; dev: number; metric: number; value: number; dt: number; sub?: boolean; transient?: boolean }
  | { kind: 'e'; dev: number; death: boolean; dt: number };
type Step =
  | {
      kind: 'batch';
      env: number;
      items: Item[];
      fail?: { where: 'put' | 'claim' | 'record' | 'after'; to: number };
    }
  | { kind: 'tick'; dt: number; fail?: boolean }
  | { kind: 'cold'; env: number }
  | { kind: 'rule'; which: number };

const DEVS = ['d1', 'd2'];
const METRICS = ['ma', 'mb'];

const item: fc.Arbitrary<Item> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record(
      {
        kind: fc.constant('r' as const),
        dev: fc.integer({ min: 0, max: 1 }),
        metric: fc.integer({ min: 0, max: 1 }),
        value: fc.oneof(fc.integer({ min: 0, max: 100 }), fc.constant(95)),
        dt: fc.integer({ min: 0, max: 12 }),
        sub: fc.boolean(),
        transient: fc.boolean(),
      },
      { requiredKeys: ['kind', 'dev', 'metric', 'value', 'dt'] },
    ),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('e' as const),
      dev: fc.integer({ min: 0, max: 1 }),
      death: fc.boolean(),
      dt: fc.integer({ min: 0, max: 12 }),
    }),
  },
);
const step: fc.Arbitrary<Step> = fc.oneof(
  {
    weight: 8,
    arbitrary: fc.record(
      {
        kind: fc.constant('batch' as const),
        env: fc.integer({ min: 0, max: 2 }),
        items: fc.array(item, { minLength: 1, maxLength: 5 }),
        fail: fc.option(
          fc.record({
            where: fc.constantFrom('put' as const, 'claim' as const, 'record' as const, 'after' as const),
            to: fc.integer({ min: 0, max: 2 }),
          }),
          { nil: undefined, freq: 6 },
        ),
      },
      { requiredKeys: ['kind', 'env', 'items'] },
    ),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('tick' as const),
      dt: fc.integer({ min: 0, max: 20 }),
      fail: fc.boolean(),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constant('cold' as const), env: fc.integer({ min: 0, max: 2 }) }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constant('rule' as const), which: fc.integer({ min: 0, max: 3 }) }),
  },
);
const VARIANTS: Doc[] = [
  { condition: 'mean(30s) > 50' },
  { condition: 'value > 60 for 10s' },
  { condition: 'absent for 30s' },
  { condition: 'mean(30s) > 60 clear mean(30s) < 40' },
];

const DOCS: Doc[] = [
  { condition: 'absent for 20s' },
  { condition: 'value > 80', throttle: '30s' },
  { condition: 'mean(30s) > 60 clear mean(30s) < 40' },
  { condition: 'offline for 15s', select: {} },
  { condition: 'on death', autoResolve: '40s', select: {} },
];

async function play(steps: Step[], behind: boolean, maxCached: number) {
  const x = await world(DOCS, behind, maxCached);
  const envs = [x.engine(), x.engine(), x.engine()];
  const clock = x.engine();
  let t = 0;
  const errors: string[] = [];
  for (const s of steps) {
    if (s.kind === 'cold') {
      if (behind) envs[s.env] = x.engine();
      continue;
    }
    if (s.kind === 'rule') {
      const prev = (await x.rules.list()).find((r) => r.id === 'r2')!;
      const v = VARIANTS[s.which]!;
      await x.rules.put(
        validateRule({ name: 'r2', severity: 'major', select: { metric: 'm*' }, ...v }, {
          id: 'r2',
          now: T0 + t * S + 1,
          previous: prev,
        } as never),
        'update',
      );
      continue;
    }
    if (s.kind === 'tick') {
      t += s.dt;
      x.setNow(t);
      if (behind && s.fail) {
        // The clock's commit fails after its claim (its first put fails): given up, retried.
        const put = x.state.put.bind(x.state);
        x.state.put = async () => {
          throw new TransientError('INJECTED', 'injected');
        };
        try {
          await x.tick(clock, T0 + t * S);
        } catch {
          clock.abort();
        }
        x.state.put = put;
      }
      try {
        await x.tick(clock, T0 + t * S);
      } catch (e) {
        errors.push(`tick: ${(e as Error).message}`);
        clock.abort();
      }
      continue;
    }
    const rs: EnrichedReading[] = [];
    const es: LifecycleEvent[] = [];
    for (const i of s.items) {
      t += i.dt;
      if (i.kind === 'r')
        rs.push(
          rd(i.value, t, {
            deviceId: DEVS[i.dev]!,
            metric: METRICS[i.metric]!,
            ...(i.sub ? { subDevice: 'child' } : {}),
            ...(i.transient ? { transient: true } : {}),
          }),
        );
      else es.push(ev(i.death ? 'death' : 'birth', t, DEVS[i.dev]!));
    }
    x.setNow(t);
    const e = behind ? envs[s.env]! : envs[0]!;
    if (behind && s.fail) {
      const f = s.fail;
      const restore: Array<() => void> = [];
      const boom = () => {
        throw new TransientError('INJECTED', 'injected');
      };
      if (f.where === 'put') {
        const put = x.state.put.bind(x.state);
        let n = 0;
        x.state.put = async (...a) => (n++ === 0 ? put(...a) : boom());
        restore.push(() => (x.state.put = put));
      } else if (f.where === 'claim' && typeof x.state.claim === 'function') {
        const claim = x.state.claim.bind(x.state);
        x.state.claim = async () => boom();
        restore.push(() => (x.state.claim = claim));
      } else if (f.where === 'record') {
        const rec = x.alerts.record;
        x.alerts.record = async () => boom();
        restore.push(() => (x.alerts.record = rec));
      }
      try {
        await x.batch(e, rs, es);
        if (f.where === 'after') throw new Error('later');
      } catch {
        e.abort();
      }
      for (const r of restore) r();
      try {
        await x.batch(envs[f.to]!, rs, es); // the redelivery
      } catch (err) {
        errors.push(`batch: ${(err as Error).message}`);
        envs[f.to]!.abort();
      }
      continue;
    }
    try {
      await x.batch(e, rs, es);
    } catch (err) {
      errors.push(`batch: ${(err as Error).message}`);
      e.abort();
    }
  }
  return { recorded: [...x.recorded].sort(), errors };
}

describe('claims: several environments, cold starts, the clock, rule changes, failures', () => {
  it('property: the transitions of states written every batch, and no conflict', async () => {
    const kinds = new Map<string, number>();
    await fc.assert(
      fc.asyncProperty(
        fc.array(step, { minLength: 1, maxLength: 40 }),
        fc.constantFrom(2, 3, 100_000),
        async (steps, maxCached) => {
          const every = await play(steps, false, maxCached);
          const behind = await play(steps, true, maxCached);
          expect(every.errors).toEqual([]);
          expect(behind.errors).toEqual([]);
          expect(behind.recorded).toEqual(every.recorded);
          for (const r of every.recorded) {
            const kind = r.split(' ').slice(0, 2).join(' ');
            kinds.set(kind, (kinds.get(kind) ?? 0) + 1);
          }
        },
      ),
      { numRuns: 150 },
    );
    // Every rule opened and resolved alerts across the runs.
    for (let i = 0; i < DOCS.length; i++) {
      expect(kinds.get(`open r${i}`) ?? 0).toBeGreaterThan(10);
      if (DOCS[i]!.condition !== 'offline for 15s')
        expect(kinds.get(`resolve r${i}`) ?? 0).toBeGreaterThan(10);
    }
  });
});
