/**
 * Rule states written behind (ADR 0016 amendment 10): the scenarios a review of the first version found
 * diverging from states written every batch — two Lambda environments on one series, late, transient
 * and unusable readings, a rule revision before a cold start, a throttled activation cleared without a
 * transition, and the clock meeting the ingest's writes. Each compares with an engine writing every batch.
 */
import { describe, expect, it } from 'vitest';
import type { EnrichedReading } from '../../../functions/core/reading.js';
import {
  InMemoryAlertStore,
  InMemoryRuleStateStore,
  InMemoryRuleStore,
  numericValue,
  RuleEngine,
  type RuleHistory,
  validateRule,
} from '../../../functions/core/rules/index.js';
import { fakeHistory, rd, S, T0 } from './write-behind-helpers.js';

/** Mimics the DynamoDB telemetry store: first write of an identity wins (whatever its value/quality); transient not stored. */
function telemetry() {
  const stored = new Map<string, Map<number, EnrichedReading>>();
  const fake = fakeHistory(function* (deviceId, metric) {
    for (const p of stored.get(`${deviceId}|${metric}`)?.values() ?? []) {
      const v = numericValue(p);
      if (v !== undefined) yield [p.time, v];
    }
  });
  /** The history's reads: device, metrics, range in seconds from T0. */
  const reads: string[] = [];
  const history: RuleHistory = {
    samples(q) {
      reads.push(
        `${q.deviceId} ${[...q.metrics].sort().join(',')} (${(q.after - T0) / S}, ${(q.until - T0) / S}]`,
      );
      return fake.samples(q);
    },
  };
  const write = (rs: EnrichedReading[]) => {
    for (const r of rs) {
      if (r.transient) continue;
      const k = `${r.deviceId}|${r.metric}`;
      const m = stored.get(k) ?? new Map();
      stored.set(k, m);
      if (!m.has(r.time)) m.set(r.time, r);
    }
  };
  return { history, write, reads };
}

async function setup(
  conditions: Array<{ condition: string; throttle?: string; select?: { metric: string } }>,
  behind: boolean,
) {
  const rules = new InMemoryRuleStore();
  for (const [i, d] of conditions.entries())
    await rules.put(
      validateRule(
        { name: `r${i}`, severity: 'major', select: { metric: 'm' }, ...d },
        { id: `r${i}`, now: T0 },
      ),
      'create',
    );
  const state = new InMemoryRuleStateStore();
  const alerts = new InMemoryAlertStore();
  const tel = telemetry();
  const engine = () =>
    new RuleEngine({
      rules,
      state,
      alerts,
      clock: () => T0,
      rulesTtlMs: 0,
      ...(behind ? { history: tel.history, stateFlushMs: 60_000 } : {}),
    });
  const ids: string[] = [];
  const batch = async (e: RuleEngine, rs: EnrichedReading[]) => {
    tel.write(rs);
    e.begin();
    await e.prepare();
    e.collect({ readings: rs });
    await e.run();
    ids.push(...(await e.commit()).map((t) => t.id));
  };
  return { engine, batch, ids, rules, state, reads: tel.reads };
}

describe('rule states written behind: the cases a review found', () => {
  it('A: two environments interleaving on one series (Lambda env pooling)', async () => {
    const cond = [{ condition: 'mean(30s) > 50' }];
    const go = async (behind: boolean) => {
      const x = await setup(cond, behind);
      const A = x.engine();
      const B = x.engine();
      await x.batch(A, [rd(0, 0)]); // new state: written (v1)
      await x.batch(A, [rd(0, 2)]); // A ahead of the store
      await x.batch(B, [rd(100, 4), rd(100, 6)]); // B loads v1, replays, evaluates: mean 50 -> not > 50; not written
      await x.batch(A, [rd(100, 8)]); // A trusts its cache (v1 unchanged): window lacks B's 100s
      return x.ids;
    };
    const every = await go(false);
    const behind = await go(true);
    expect(behind).toEqual(every);
  });

  it('B: late reading in a later batch, then a cold start', async () => {
    const go = async (behind: boolean) => {
      const x = await setup([{ condition: 'value > 80' }], behind);
      let e = x.engine();
      await x.batch(e, [rd(10, 0)]);
      await x.batch(e, [rd(10, 3)]);
      await x.batch(e, [rd(99, 2)]); // late: skipped by the engine (2 <= 3), stored by the store
      e = x.engine(); // cold start
      await x.batch(e, [rd(10, 5)]);
      return x.ids;
    };
    const every = await go(false);
    const behind = await go(true);
    expect(behind).toEqual(every);
  });

  it('C: transient readings are evaluated but not stored', async () => {
    const go = async (behind: boolean) => {
      const x = await setup([{ condition: 'mean(30s) > 50' }], behind);
      let e = x.engine();
      await x.batch(e, [rd(0, 0, { transient: true })]);
      await x.batch(e, [rd(100, 2, { transient: true })]); // mean 50
      e = x.engine();
      await x.batch(e, [rd(100, 4, { transient: true })]); // ref: mean 66 > 50 opens; behind: replay lacks t=2
      return x.ids;
    };
    const every = await go(false);
    const behind = await go(true);
    expect(behind).toEqual(every);
  });

  it('D: BAD at a time, then GOOD at the same time (store keeps the BAD one)', async () => {
    const go = async (behind: boolean) => {
      const x = await setup([{ condition: 'mean(30s) > 50' }], behind);
      let e = x.engine();
      await x.batch(e, [rd(0, 0)]);
      await x.batch(e, [rd(0, 2, { quality: 'BAD' }), rd(100, 2)]); // engine: 100@2 evaluated; store: BAD@2
      e = x.engine();
      await x.batch(e, [rd(100, 4)]);
      return x.ids;
    };
    const every = await go(false);
    const behind = await go(true);
    expect(behind).toEqual(every);
  });

  it('E: rule revision change between a write-behind and a cold start', async () => {
    const go = async (behind: boolean) => {
      const x = await setup([{ condition: 'value > 80' }], behind);
      let e = x.engine();
      await x.batch(e, [rd(10, 0)]);
      await x.batch(e, [rd(50, 2)]);
      const r = (await x.rules.list())[0]!;
      await x.rules.put(
        validateRule({ name: 'r0', severity: 'major', select: { metric: 'm' }, condition: 'value > 40' }, {
          id: 'r0',
          now: T0 + 1,
          previous: r,
        } as never),
        'update',
      );
      e = x.engine();
      await x.batch(e, [rd(50, 4)]);
      return x.ids;
    };
    const every = await go(false);
    const behind = await go(true);
    expect(behind).toEqual(every);
  });

  it("H: a device's series read back at once, each from its own last time", async () => {
    const go = async (behind: boolean) => {
      const x = await setup([{ condition: 'mean(30s) > 50', select: { metric: 'm*' } }], behind);
      let e = x.engine();
      const a = (v: number, t: number) => rd(v, t, { metric: 'ma' });
      const b = (v: number, t: number) => rd(v, t, { metric: 'mb' });
      await x.batch(e, [a(0, 0), b(0, 0)]); // both new: written at 0
      await x.batch(e, [a(0, 10), a(0, 20), a(0, 30)]);
      await x.batch(e, [b(100, 40)]); // mb opens: written at 40
      await x.batch(e, [a(0, 50), b(100, 70), b(100, 90)]); // behind: ma since 0, mb since 40
      e = x.engine(); // cold start: ma replays (0, 60], mb (40, 100]: one read of (0, 100]
      await x.batch(e, [a(0, 100), b(0, 100)]); // mb's mean over (70, 100] is 66.7: stays open
      return x;
    };
    const every = await go(false);
    const behind = await go(true);
    expect(behind.ids).toEqual(every.ids);
    expect(behind.reads).toEqual(['d1 ma,mb (0, 100]']);
  });

  it('I: an engine taking a device back first drops what it cached before another engine had it', async () => {
    const go = async (behind: boolean) => {
      const x = await setup([{ condition: 'value > 80', select: { metric: 'm*' } }], behind);
      const A = x.engine();
      const B = x.engine();
      const m = (metric: string, v: number, t: number) => rd(v, t, { metric });
      await x.batch(A, [m('ma', 0, 0), m('mb', 0, 0)]); // A caches both
      await x.batch(B, [m('ma', 90, 2)]); // B opens ma's alert: A's copy of ma is stale
      await x.batch(A, [m('mc', 0, 4)]); // A evaluates only a new series of the device, and claims it
      await x.batch(A, [m('ma', 95, 6)]); // still open: no second open (nor a version conflict)
      return x.ids;
    };
    const every = await go(false);
    const behind = await go(true);
    expect(every).toHaveLength(1);
    expect(behind).toEqual(every);
  });
});

describe('rule states written behind: the clock and the ingest', () => {
  it('F: the clock does not write a reporting series it only replayed, so an ingest write in between meets no conflict', async () => {
    const x = await setup([{ condition: 'absent for 20s' }], true);
    const ing = x.engine();
    const clock = x.engine();
    // d1 reports every 10 s; d2 reported once then went silent.
    await x.batch(ing, [rd(1, 0), rd(1, 0, { deviceId: 'd2' })]);
    for (let t = 10; t <= 50; t += 10) await x.batch(ing, [rd(1, t)]);
    clock.begin();
    const out = await clock.evaluateClock(T0 + 55 * S);
    // d2 is absent (opened at 20 s); d1 is not, whatever its stored copy says.
    expect(out.map((t) => `${t.kind} ${t.series}`)).toEqual(['open d2|m']);
    await x.batch(ing, [rd(1, 60)]);
    await expect(clock.commit()).resolves.toHaveLength(1);
  });
});

describe('rule states written behind: throttle and clock', () => {
  it('G: a throttled activation cleared without a transition is written: the clock does not open from a stale copy', async () => {
    const go = async (behind: boolean) => {
      const rules = new InMemoryRuleStore();
      await rules.put(
        validateRule(
          { name: 'r', severity: 'major', condition: 'value > 80', throttle: '30s', select: { metric: 'm' } },
          { id: 'r', now: T0 },
        ),
        'create',
      );
      const state = new InMemoryRuleStateStore();
      const alerts = new InMemoryAlertStore();
      const stored: Array<[number, number]> = [];
      const history = fakeHistory(() => stored);
      let now = T0;
      const opts = { rules, state, alerts, clock: () => now, rulesTtlMs: 0, ...(behind ? { history } : {}) };
      const ing = new RuleEngine(opts);
      const clk = new RuleEngine(opts);
      const ids: string[] = [];
      for (const [v, t] of [
        [90, 0],
        [10, 10],
        [90, 20],
        [10, 25],
      ] as const) {
        now = T0 + t * S;
        stored.push([now, v]);
        ing.begin();
        await ing.evaluate({ readings: [rd(v, t)] });
        ids.push(...(await ing.commit()).map((x) => `ingest ${x.kind}@${(x.at - T0) / S}`));
      }
      now = T0 + 40 * S;
      clk.begin();
      await clk.evaluateClock(now);
      ids.push(...(await clk.commit()).map((x) => `clock ${x.kind}@${(x.at - T0) / S}`));
      now = T0 + 45 * S;
      stored.push([now, 10]);
      ing.begin();
      await ing.evaluate({ readings: [rd(10, 45)] });
      ids.push(...(await ing.commit()).map((x) => `ingest ${x.kind}@${(x.at - T0) / S}`));
      return ids;
    };
    const every = await go(false);
    const behind = await go(true);
    expect(behind).toEqual(every);
  });
});

describe('rule states written behind: a reading stored by an earlier batch comes again', () => {
  // From the second review of a replay that left out "the batch's own" readings by time and value: a
  // copy of a reading stored earlier is indistinguishable from one stored with its batch, so such a
  // replay lost the original. The replay keeps every stored reading in time order.
  const cond = [{ condition: 'mean(30s) > 50' }];

  it('R1: a device re-sends a reading (same time, same value) after later ones, to another environment', async () => {
    const go = async (behind: boolean) => {
      const x = await setup(cond, behind);
      const A = x.engine();
      const B = x.engine();
      await x.batch(A, [rd(0, 0)]); // new: written
      await x.batch(A, [rd(100, 2), rd(0, 3)]); // mean 33; written behind
      await x.batch(B, [rd(100, 2), rd(100, 5), rd(100, 6)]); // the re-sent 100@2 is late: {0,100,0,100,100} = 60 opens
      return x.ids;
    };
    const every = await go(false);
    const behind = await go(true);
    expect(every).toHaveLength(1);
    expect(behind).toEqual(every);
  });

  it('R2: a batch bisected after a complete commit, its halves retried in another environment', async () => {
    const go = async (behind: boolean) => {
      const x = await setup(cond, behind);
      const A = x.engine();
      const B = x.engine();
      await x.batch(A, [rd(0, 0)]);
      await x.batch(A, [rd(100, 2), rd(0, 3)]); // committed (written behind), then the invocation fails
      await x.batch(B, [rd(100, 2)]); // first half
      await x.batch(B, [rd(0, 3)]); // second half
      await x.batch(B, [rd(100, 5)]);
      await x.batch(B, [rd(100, 6)]); // {0,100,0,100,100} = 60 opens
      return x.ids;
    };
    const every = await go(false);
    const behind = await go(true);
    expect(every).toHaveLength(1);
    expect(behind).toEqual(every);
  });
});
