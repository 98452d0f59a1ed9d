/**
 * Rule states written behind (ADR 0016 amendment 10) with the clock in the loop: absence rules whose
 * due time is written behind by the ingest path, found due by the clock from a stale stored state, are
 * replayed from the history first — no false absence while the device reports, the same absences when
 * it is silent — across cold starts of the ingest engine.
 */
import { describe, expect, it } from 'vitest';
import type { EnrichedReading } from '../../../functions/core/reading.js';
import {
  InMemoryAlertStore,
  InMemoryRuleStateStore,
  InMemoryRuleStore,
  numericValue,
  RuleEngine,
  validateRule,
} from '../../../functions/core/rules/index.js';
import { fakeHistory } from './write-behind-helpers.js';

const T0 = 1_700_000_000_000;
const S = 1000;

function reading(value: number, t: number, metric = 'L1/current'): EnrichedReading {
  return {
    protocol: 'sparkplug',
    deviceId: 'breaker-1',
    group: 'plant',
    metric,
    type: 'Double',
    value,
    time: t,
    historical: false,
    transient: false,
    quality: 'GOOD',
    enrichment: { deviceType: 'breaker', applications: [] },
  };
}

/** Readings every 5 s with two silences: 200-260 s and 400-700 s. */
function stream(): EnrichedReading[] {
  const out: EnrichedReading[] = [];
  for (let t = 0; t <= 800; t += 5) {
    if ((t > 200 && t < 260) || (t > 400 && t < 700)) continue;
    out.push(reading((t * 7) % 100, T0 + t * S), reading((t * 3) % 100, T0 + t * S, 'L2/current'));
  }
  return out;
}

const FLUSH_MS = 60_000;

async function run(writeBehind: boolean, clockFlushMs = FLUSH_MS) {
  const rules = new InMemoryRuleStore();
  const docs = [
    { condition: 'absent for 20s', select: { metric: 'L*' } },
    { condition: 'absent for 3m', select: { metric: 'L1/*' } },
    { condition: 'value > 80 clear < 50', select: { metric: 'L2/*' } },
  ];
  for (const [i, d] of docs.entries()) {
    await rules.put(
      validateRule({ name: `r${i}`, severity: 'major', ...d }, { id: `r${i}`, now: T0 }),
      'create',
    );
  }
  const state = new InMemoryRuleStateStore();
  const alerts = new InMemoryAlertStore();
  const stored = new Map<string, Array<[number, number]>>();
  const history = fakeHistory((deviceId, metric) => stored.get(`${deviceId}|${metric}`) ?? []);
  let now = T0;
  const ingest = () =>
    new RuleEngine({
      rules,
      state,
      alerts,
      clock: () => now,
      rulesTtlMs: 0,
      ...(writeBehind ? { history, stateFlushMs: FLUSH_MS } : {}),
    });
  let engine = ingest();
  const clock = new RuleEngine({
    rules,
    state,
    alerts,
    clock: () => now,
    rulesTtlMs: 0,
    // As deployed: the clock replays as far as the ingest writes behind (RULES_STATE_FLUSH_MS of both).
    ...(writeBehind ? { history, stateFlushMs: clockFlushMs } : {}),
  });
  const ids: string[] = [];
  const tick = async (at: number) => {
    now = at;
    clock.begin();
    await clock.evaluateClock(at);
    ids.push(...(await clock.commit()).map((t) => t.id));
  };
  const readings = stream();
  let b = 0;
  let last = T0;
  for (let from = 0; from < readings.length; from += 4, b++) {
    const batch = readings.slice(from, from + 4);
    const end = batch.at(-1)!.time;
    // Clock ticks every 10 s up to this batch (the silences included).
    for (let t = last + 10 * S; t < end; t += 10 * S) await tick(t);
    last = end;
    now = end;
    for (const r of batch) {
      const series = stored.get(`${r.deviceId}|${r.metric}`) ?? [];
      stored.set(`${r.deviceId}|${r.metric}`, series);
      series.push([r.time, numericValue(r)!]);
    }
    engine.begin();
    await engine.evaluate({ readings: batch });
    ids.push(...(await engine.commit()).map((t) => t.id));
    await tick(end);
    if (b % 9 === 8) engine = ingest(); // a cold start: the states ahead of the store are lost
  }
  return { ids, puts: state.calls.put, replayedByClock: clock.stats.replayed };
}

describe('rule states written behind, with the clock', () => {
  it('absence: the same transitions as states written every batch, with fewer writes', async () => {
    const every = await run(false);
    const behind = await run(true);
    // Both silences are found, by both rules where they last long enough.
    expect(every.ids.length).toBeGreaterThanOrEqual(6);
    expect(behind.ids).toEqual(every.ids);
    // The clock did find stale absence states due while the device reported, and replayed them.
    expect(behind.replayedByClock).toBeGreaterThan(0);
    expect(behind.puts).toBeLessThan(every.puts * 0.8);
  });

  it('absence: a clock that replays less than the ingest writes behind reports a reporting device absent', async () => {
    // Why the clock must be given the ingest functions' interval (functions/rules-clock/handler.ts).
    const every = await run(false);
    const short = await run(true, 1_000);
    expect(short.ids).not.toEqual(every.ids);
  });
});
