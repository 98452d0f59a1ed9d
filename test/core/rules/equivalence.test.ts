/**
 * The engine's batched, cached evaluation (selection memo, per-series groups, per-reading numbers kept in
 * locals, cross-batch state cache, setDue once per series) against a plain reference written here from
 * the ADR's semantics: every (rule, reading) evaluated one at a time, in stream order, over the series'
 * whole history, with no caching of any kind. Random rules (conditions, selections, holds, clears,
 * throttles) over random interleaved multi-device streams (duplicates, sub-devices, BAD and
 * non-numeric readings), cut into random batches of random chunks: both must fire exactly the same
 * transitions (same ids, same order per series).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { EnrichedReading } from '../../../functions/core/reading.js';
import { compileBool, type EvalContext, requirements } from '../../../functions/core/rules/compile.js';
import { detectScore, newDetectorState } from '../../../functions/core/rules/detector.js';
import {
  type AlertTransition,
  InMemoryAlertStore,
  InMemoryRuleStateStore,
  InMemoryRuleStore,
  numericValue,
  type Rule,
  RuleEngine,
  transitionId,
  validateRule,
} from '../../../functions/core/rules/index.js';
import { parseCondition } from '../../../functions/core/rules/syntax.js';
import { fakeHistory } from './write-behind-helpers.js';

const T0 = 1_700_000_000_000;
const S = 1000;

const CONDITIONS = [
  'value > 80',
  'value > 70 for 20s clear < 60',
  'value < 30 for 5s',
  'value >= 40 for 15s',
  'abs(delta()) > 25',
  'rate(1m) > 600',
  'mean(30s) > 65 clear mean(30s) < 55',
  'stddev(1m) > 20',
  'percentile(90, 40s) > 85',
  'median(20s) < 40 or max(10s) > 95',
  'zscore(1m) > 2',
  'count(30s) >= 3 and min(30s) > 50',
  'anomaly() > 3',
  'not (value >= 20 and value <= 90)',
];
const DEVICES = ['d1', 'd2', 'd3'];
const METRICS = ['a/x', 'a/y', 'b'];

interface RuleDoc {
  condition: string;
  device?: string;
  metric?: string;
  throttle?: string;
}

const ruleDoc: fc.Arbitrary<RuleDoc> = fc.record(
  {
    condition: fc.constantFrom(...CONDITIONS),
    device: fc.constantFrom(...DEVICES),
    metric: fc.constantFrom('a/*', 'b', '**', 'a/x'),
    throttle: fc.constantFrom('30s', '2m'),
  },
  { requiredKeys: ['condition'] },
);

interface Sample {
  device: number;
  metric: number;
  sub: boolean;
  /** Seconds after the series' previous reading (0: a duplicate time). */
  step: number;
  value: number;
  /** 0 numeric, 1 BAD quality, 2 a string value. */
  odd: number;
}

const sample: fc.Arbitrary<Sample> = fc.record({
  device: fc.integer({ min: 0, max: DEVICES.length - 1 }),
  metric: fc.integer({ min: 0, max: METRICS.length - 1 }),
  sub: fc.boolean(),
  step: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 15 })),
  // Runs of high values often enough for holds to complete (and to span batch boundaries).
  value: fc.oneof(fc.integer({ min: 0, max: 100 }), fc.integer({ min: 55, max: 100 })),
  odd: fc.oneof(
    { weight: 12, arbitrary: fc.constant(0) },
    { weight: 1, arbitrary: fc.integer({ min: 1, max: 2 }) },
  ),
});

/** Readings whose times ascend per series (equal times are duplicates), series interleaved at random. */
function stream(samples: Sample[]): EnrichedReading[] {
  const last = new Map<string, number>();
  return samples.map((x) => {
    const deviceId = DEVICES[x.device]!;
    const subDevice = x.sub ? 'child' : undefined;
    const metric = METRICS[x.metric]!;
    const key = `${deviceId}/${subDevice}|${metric}`;
    const time = (last.get(key) ?? T0) + x.step * S;
    last.set(key, time);
    const r: EnrichedReading = {
      protocol: 'sparkplug',
      deviceId,
      group: 'plant',
      metric,
      type: 'Double',
      value: x.odd === 2 ? 'text' : x.value,
      time,
      historical: false,
      transient: false,
      quality: x.odd === 1 ? 'BAD' : 'GOOD',
      enrichment: { deviceType: 'pump', applications: [] },
    };
    if (subDevice !== undefined) r.subDevice = subDevice;
    return r;
  });
}

function globMatches(glob: string, metric: string): boolean {
  if (glob === '**') return true;
  if (glob.endsWith('/*')) {
    const prefix = glob.slice(0, -1);
    return metric.startsWith(prefix) && !metric.slice(prefix.length).includes('/');
  }
  return glob === metric;
}

interface RefSeries {
  wt: number[];
  wv: number[];
  lastTime?: number;
  lastValue?: number;
  pendingSince?: number;
  active: boolean;
  alertId?: string;
  lastOpenedAt?: number;
  detector: ReturnType<typeof newDetectorState>;
}

/** The reference: one (rule, reading) at a time, whole history, nothing cached. */
function reference(rules: Rule[], readings: EnrichedReading[]): string[] {
  const out: string[] = [];
  const states = new Map<string, RefSeries>();
  for (const r of readings) {
    const v = numericValue(r);
    if (v === undefined) continue;
    for (const rule of rules) {
      if (rule.select.devices && !rule.select.devices.includes(r.deviceId)) continue;
      if (rule.select.metric && !globMatches(rule.select.metric, r.metric)) continue;
      const cond = parseCondition(rule.condition);
      if (cond.kind !== 'expr') throw new Error('expression rules only');
      const series = `${r.subDevice === undefined ? r.deviceId : `${r.deviceId}/${r.subDevice}`}|${r.metric}`;
      const key = `${rule.id}|${series}`;
      let s = states.get(key);
      if (!s) {
        s = { wt: [], wv: [], active: false, detector: newDetectorState() };
        states.set(key, s);
      }
      if (s.lastTime !== undefined && r.time <= s.lastTime) continue;
      const req = requirements([cond.when, cond.clear]);
      if (req.windowMs > 0) {
        s.wt.push(r.time);
        s.wv.push(v);
      }
      const ctx: EvalContext = {
        value: v,
        time: r.time,
        prevValue: s.lastValue,
        prevTime: s.lastTime,
        // Fresh copies: the window functions' per-array caches start from scratch every time.
        wt: s.wt.slice(),
        wv: s.wv.slice(),
        score: req.anomaly ? detectScore(s.detector, r.time, v) : Number.NaN,
      };
      s.lastTime = r.time;
      s.lastValue = v;
      const when = compileBool(cond.when)(ctx);
      if (!s.active) {
        if (when === true) {
          s.pendingSince ??= r.time;
          if (r.time - s.pendingSince >= (cond.hold?.ms ?? 0)) {
            s.active = true;
            s.pendingSince = undefined;
          }
        } else if (when === false) s.pendingSince = undefined;
      } else {
        const clear = cond.clear ? compileBool(cond.clear)(ctx) : when === null ? null : !when;
        if (clear === true) s.active = false;
      }
      if (s.active && s.alertId === undefined) {
        if (s.lastOpenedAt === undefined || r.time - s.lastOpenedAt >= rule.throttleMs) {
          s.alertId = transitionId(rule.id, series, 'open', r.time);
          s.lastOpenedAt = r.time;
          out.push(s.alertId);
        }
      } else if (!s.active && s.alertId !== undefined) {
        out.push(transitionId(rule.id, series, 'resolve', r.time, s.alertId));
        s.alertId = undefined;
      }
    }
  }
  return out;
}

/** The rules of generated documents. */
const rulesOf = (docs: RuleDoc[]): Rule[] =>
  docs.map((d, i) =>
    validateRule(
      {
        name: `r${i}`,
        severity: 'minor',
        condition: d.condition,
        select: {
          ...(d.device ? { devices: [d.device] } : {}),
          ...(d.metric ? { metric: d.metric } : {}),
        },
        ...(d.throttle ? { throttle: d.throttle } : {}),
      },
      { id: `r${i}`, now: T0 },
    ),
  );

async function engineRun(
  rules: Rule[],
  readings: EnrichedReading[],
  cuts: number[],
  chunks: number,
  redeliver: boolean,
  /** As the ingest path: `collect` per chunk, one `run` per batch (else one `evaluate` per chunk). */
  runOnce: boolean,
  /**
   * States written behind (`history`, a flush interval), and the batches after which the engine is
   * replaced by a new one on the same stores (a cold start: its cache, ahead of the store, is lost).
   */
  behind?: {
    flushMs: number;
    coldAfter: Set<number>;
    /** Lambda environments taking the batches in turn (each with its own cache). */
    envs?: number;
    counts?: { replayed: number; puts: number };
  },
): Promise<string[]> {
  const store = new InMemoryRuleStore();
  for (const r of rules) await store.put(r, 'create');
  const state = new InMemoryRuleStateStore();
  const alerts = new InMemoryAlertStore();
  // The telemetry store as the history sees it: plain numeric readings, the first of a (series, time).
  const stored = new Map<string, Map<number, number>>();
  const history = fakeHistory((deviceId, metric) => stored.get(`${deviceId}|${metric}`) ?? []);
  const store_ = (rs: EnrichedReading[]) => {
    for (const r of rs) {
      if (r.subDevice !== undefined || r.row !== undefined || r.index !== undefined) continue;
      const v = numericValue(r);
      const series = stored.get(`${r.deviceId}|${r.metric}`) ?? new Map<number, number>();
      stored.set(`${r.deviceId}|${r.metric}`, series);
      if (v !== undefined && !series.has(r.time)) series.set(r.time, v);
    }
  };
  const newEngine = () =>
    new RuleEngine({
      rules: store,
      state,
      alerts,
      clock: () => T0,
      ...(behind ? { history, stateFlushMs: behind.flushMs } : {}),
    });
  const engines = Array.from({ length: behind?.envs ?? 1 }, newEngine);
  let engine = engines[0]!;
  const got: AlertTransition[] = [];
  const batch = async (rs: EnrichedReading[]) => {
    if (behind) store_(rs); // stored before they are evaluated, as on the ingest path
    engine.begin();
    // Several chunks per batch, as the ingest path makes.
    const size = Math.max(1, Math.ceil(rs.length / chunks));
    if (runOnce) {
      await engine.prepare();
      for (let i = 0; i < rs.length; i += size) engine.collect({ readings: rs.slice(i, i + size) });
      got.push(...(await engine.run()));
    } else {
      for (let i = 0; i < rs.length; i += size)
        got.push(...(await engine.evaluate({ readings: rs.slice(i, i + size) })));
    }
    await engine.commit();
  };
  let i = 0;
  for (let k = 0; i < readings.length; k++) {
    const chunk = readings.slice(i, i + cuts[k % cuts.length]!);
    i += chunk.length;
    engine = engines[k % engines.length]!;
    await batch(chunk);
    if (behind?.coldAfter.has(k)) {
      if (behind.counts) behind.counts.replayed += engine.stats.replayed;
      engine = newEngine();
      engines[k % engines.length] = engine;
    }
    if (redeliver) await batch(chunk); // a redelivery after a complete commit: nothing new
  }
  if (behind?.counts) {
    for (const e of engines) behind.counts.replayed += e.stats.replayed;
    behind.counts.puts += state.calls.put;
  }
  return got.map((t) => t.id);
}

describe('RuleEngine against a plain reference evaluation', () => {
  let transitions = 0;
  it('property: random rules over random streams and batch cuts fire exactly the reference transitions', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(ruleDoc, { minLength: 1, maxLength: 6, size: 'max' }),
        fc.array(sample, { minLength: 20, maxLength: 200, size: 'max' }),
        fc.array(fc.integer({ min: 1, max: 60 }), { minLength: 1, maxLength: 8 }),
        fc.integer({ min: 1, max: 3 }),
        fc.boolean(),
        fc.boolean(),
        async (docs, samples, cuts, chunks, redeliver, runOnce) => {
          const rules = rulesOf(docs);
          const readings = stream(samples);
          const want = reference(rules, readings);
          const got = await engineRun(rules, readings, cuts, chunks, redeliver, runOnce);
          // Same transitions; within a batch the engine emits series by series, so compare as multisets
          // and per series in order (the id embeds rule, series, kind and time).
          expect([...got].sort()).toEqual([...want].sort());
          expect(got.length).toBe(want.length);
          transitions += want.length;
        },
      ),
      { numRuns: 150 },
    );
    // The streams do make rules fire (a property over runs that never fire would prove nothing).
    expect(transitions).toBeGreaterThan(1000);
  });

  it('property: states written behind (history), with cold starts and several environments, fire exactly the reference transitions', async () => {
    let fired = 0;
    const behindCounts = { replayed: 0, puts: 0 };
    const everyBatch = { replayed: 0, puts: 0 };
    await fc.assert(
      fc.asyncProperty(
        fc.array(ruleDoc, { minLength: 1, maxLength: 6, size: 'max' }),
        fc.array(sample, { minLength: 20, maxLength: 200, size: 'max' }),
        fc.array(fc.integer({ min: 1, max: 60 }), { minLength: 1, maxLength: 8 }),
        fc.integer({ min: 1, max: 3 }),
        fc.boolean(),
        fc.constantFrom(1, 10_000, 60_000, 3_600_000),
        fc.array(fc.integer({ min: 0, max: 40 }), { maxLength: 8 }),
        fc.constantFrom(1, 1, 2, 3),
        async (docs, samples, cuts, chunks, redeliver, flushMs, cold, envs) => {
          const rules = rulesOf(docs);
          const readings = stream(samples);
          const want = reference(rules, readings);
          const coldAfter = new Set(cold);
          const got = await engineRun(rules, readings, cuts, chunks, redeliver, true, {
            flushMs,
            coldAfter,
            envs,
            counts: behindCounts,
          });
          expect([...got].sort()).toEqual([...want].sort());
          expect(got.length).toBe(want.length);
          fired += want.length;
          // The same run writing every changed state every batch, for the count of writes saved.
          await engineRun(rules, readings, cuts, chunks, redeliver, true, {
            flushMs: 0,
            coldAfter,
            envs,
            counts: everyBatch,
          });
        },
      ),
      { numRuns: 150 },
    );
    expect(fired).toBeGreaterThan(1000);
    // The property exercised what it is about: states were written behind, and read back by replaying.
    expect(behindCounts.replayed).toBeGreaterThan(100);
    expect(behindCounts.puts).toBeLessThan(everyBatch.puts);
  });
});
