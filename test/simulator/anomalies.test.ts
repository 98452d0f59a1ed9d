/** The labelled anomaly generator: deterministic, and its labels describe what it did to the signal. */
import { describe, expect, it } from 'vitest';
import {
  ANOMALY_KINDS,
  AnomalyInjector,
  generateAnomalyStream,
  type LabelledAnomaly,
  scoreDetections,
} from '../../simulator/anomalies.js';
import { createRng } from '../../simulator/rng.js';

const IV = 10_000;

describe('anomaly generator', () => {
  it('is deterministic per seed and differs between seeds', () => {
    const a = generateAnomalyStream({ seed: 7, kinds: ANOMALY_KINDS, count: 3000 });
    const b = generateAnomalyStream({ seed: 7, kinds: ANOMALY_KINDS, count: 3000 });
    const c = generateAnomalyStream({ seed: 8, kinds: ANOMALY_KINDS, count: 3000 });
    expect(a).toEqual(b);
    expect(a.readings).not.toEqual(c.readings);
    expect(a.anomalies.length).toBeGreaterThan(5);
  });

  it('labels spikes and level shifts where the signal jumps by their magnitude', () => {
    const clean = generateAnomalyStream({ seed: 3, kinds: [], count: 6000 });
    for (const kind of ['spike', 'level-shift'] as const) {
      const s = generateAnomalyStream({ seed: 3, kinds: [kind], count: 6000 });
      expect(s.anomalies.length).toBeGreaterThan(10);
      // Same seed: the clean signal draws the same numbers until the first anomaly, then the injector's
      // own draws shift the stream, so compare each anomaly against its neighbours instead.
      const byTime = new Map(s.readings.map((r) => [r.time, r.value]));
      for (const a of s.anomalies) {
        const at = byTime.get(a.start)!;
        const before = byTime.get(a.start - IV)!;
        expect(a.magnitude).toBeGreaterThanOrEqual(kind === 'spike' ? 6 : 5);
        expect(Math.abs(at - before)).toBeGreaterThan(a.magnitude - 4); // σ = 1: jump ≈ magnitude ± noise
        if (kind === 'spike') expect(Math.abs(byTime.get(a.start + IV)! - before)).toBeLessThan(5);
        else expect(Math.abs(byTime.get(a.start + IV)! - before)).toBeGreaterThan(a.magnitude - 4);
      }
      expect(clean.anomalies).toEqual([]);
    }
  });

  it('stuck values repeat and dropouts leave holes of the labelled length', () => {
    const stuck = generateAnomalyStream({ seed: 5, kinds: ['stuck'], count: 6000 });
    const values = new Map(stuck.readings.map((r) => [r.time, r.value]));
    for (const a of stuck.anomalies) {
      const first = values.get(a.start)!;
      for (let k = 0; k < a.magnitude; k++) expect(values.get(a.start + k * IV)).toBe(first);
    }
    const drop = generateAnomalyStream({ seed: 5, kinds: ['dropout'], count: 6000 });
    const times = new Set(drop.readings.map((r) => r.time));
    for (const a of drop.anomalies) {
      for (let k = 0; k < a.magnitude; k++) expect(times.has(a.start + k * IV)).toBe(false);
      expect(times.has(a.start + a.magnitude * IV)).toBe(true);
    }
  });

  it('the injector wraps any value stream one reading at a time', () => {
    const inj = new AnomalyInjector(createRng(1), {
      kinds: ['spike'],
      sigma: 1,
      intervalMs: IV,
      rate: 1,
      quiet: 2,
    });
    const out = Array.from({ length: 6 }, (_, i) => inj.apply(i * IV, 10));
    expect(out.slice(0, 2)).toEqual([10, 10]); // quiet
    expect(Math.abs(out[2]! - 10)).toBeGreaterThanOrEqual(6); // rate 1: a spike as soon as allowed
    expect(out[3]).toBe(10);
    expect(inj.labels[0]).toMatchObject({ kind: 'spike', start: 2 * IV });
  });
});

describe('scoreDetections', () => {
  const labels: LabelledAnomaly[] = [
    { kind: 'spike', start: 100, end: 150, magnitude: 7 },
    { kind: 'spike', start: 1000, end: 1050, magnitude: 7 },
  ];

  it('counts alarm episodes, true positives and detected anomalies', () => {
    // Episode 1: 100, 110 (TP); episode 2: 500 (FP); anomaly 2 missed.
    expect(scoreDetections(labels, [100, 110, 500], 20)).toEqual({
      anomalies: 2,
      detected: 1,
      episodes: 2,
      truePositives: 1,
      precision: 0.5,
      recall: 0.5,
    });
    expect(scoreDetections(labels, [], 20)).toMatchObject({ precision: 1, recall: 0 });
    expect(scoreDetections(labels, [140, 1000], 20)).toMatchObject({ precision: 1, recall: 1, episodes: 2 });
  });
});
