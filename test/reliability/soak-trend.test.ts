import { describe, expect, it } from 'vitest';
import { afterWarmup, type Point, theilSenSlope, thirdMedians, trend } from '../../scripts/soak-trend.js';

/** Deterministic pseudo-noise in [-1, 1). */
function noise(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 31 - 1;
  };
}

const series = (n: number, every: number, f: (t: number, i: number) => number): Point[] =>
  Array.from({ length: n }, (_, i) => ({ t: i * every, v: f(i * every, i) }));

const MB = 1024 * 1024;
const heapRule = { minGrowth: 8 * MB, minRelative: 0.1 };

describe('theilSenSlope', () => {
  it('is the exact slope of a line', () => {
    expect(theilSenSlope(series(20, 10, (t) => 3 + 0.5 * t))).toBeCloseTo(0.5, 10);
  });

  it('ignores a few wild outliers that pull least squares away', () => {
    const pts = series(30, 10, (t) => 100 + 2 * t);
    pts[5]!.v = 1e6;
    pts[17]!.v = -1e6;
    pts[29]!.v = 5e5;
    expect(theilSenSlope(pts)).toBeCloseTo(2, 6);
  });

  it('is 0 for fewer than two distinct times', () => {
    expect(theilSenSlope([{ t: 1, v: 5 }])).toBe(0);
    expect(
      theilSenSlope([
        { t: 1, v: 5 },
        { t: 1, v: 9 },
      ]),
    ).toBe(0);
  });
});

describe('thirdMedians', () => {
  it('splits in time order, whatever the input order', () => {
    const pts = series(9, 1, (t) => t).reverse();
    expect(thirdMedians(pts)).toEqual([1, 4, 7]);
  });
});

describe('trend', () => {
  it('a leak under GC sawtooth and noise keeps growing', () => {
    const r = noise(1);
    // 60 samples 10 s apart: +2 MB/min on top of a 40 MB sawtooth of period 7 samples.
    const pts = series(60, 10, (t, i) => 200 * MB + (2 * MB * t) / 60 + (i % 7) * 6 * MB + r() * 3 * MB);
    const v = trend(pts, heapRule);
    expect(v.growing).toBe(true);
    expect(v.slopePerMinute / MB).toBeGreaterThan(1.5);
    expect(v.slopePerMinute / MB).toBeLessThan(2.5);
    expect(v.reason).toMatch(/grows/);
  });

  it('a flat heap with sawtooth and spikes is not growing', () => {
    const r = noise(2);
    const pts = series(
      60,
      10,
      (_t, i) => 200 * MB + (i % 7) * 6 * MB + r() * 3 * MB + (i % 19 === 0 ? 80 * MB : 0),
    );
    const v = trend(pts, heapRule);
    expect(v.growing).toBe(false);
    expect(Math.abs(v.growth)).toBeLessThan(20 * MB);
  });

  it('a step that levels off (a cache filling once) is not a leak', () => {
    const r = noise(3);
    // Rises over the first third, flat afterwards: positive slope, but the last two thirds are level.
    const pts = series(60, 10, (_t, i) => (i < 20 ? 200 * MB + i * 5 * MB : 300 * MB) + r() * MB);
    const v = trend(pts, heapRule);
    expect(v.growth).toBeGreaterThan(heapRule.minGrowth);
    expect(v.growing).toBe(false);
    expect(v.reason).toMatch(/levelled off/);
  });

  it('growth under the absolute floor is not growing', () => {
    const pts = series(60, 10, (t) => 200 * MB + (0.5 * MB * t) / 600);
    const v = trend(pts, heapRule);
    expect(v.growth).toBeGreaterThan(0);
    expect(v.growing).toBe(false);
    expect(v.reason).toMatch(/≤/);
  });

  it('growth under the relative floor is not growing', () => {
    // +20 MB over the window on 1 GB: above 8 MB, below 10 %.
    const pts = series(60, 10, (t) => 1024 * MB + (20 * MB * t) / 590);
    const v = trend(pts, heapRule);
    expect(v.growing).toBe(false);
    expect(v.reason).toMatch(/% of the starting level/);
  });

  it('a stream lag that climbs steadily from zero keeps growing (no relative floor)', () => {
    const r = noise(4);
    const pts = series(40, 15, (t) => Math.max(0, 30 * t + r() * 2_000));
    const v = trend(pts, { minGrowth: 5_000, minRelative: 0 });
    expect(v.growing).toBe(true);
  });

  it('a lag that hovers near zero is not growing', () => {
    const r = noise(5);
    const pts = series(40, 15, () => Math.max(0, 500 + r() * 500));
    expect(trend(pts, { minGrowth: 5_000, minRelative: 0 }).growing).toBe(false);
  });

  it('a falling series is not growing', () => {
    const pts = series(30, 10, (t) => 1_000 - t);
    expect(trend(pts, { minGrowth: 0, minRelative: 0 }).growing).toBe(false);
  });

  it('too few samples give no verdict', () => {
    const v = trend(
      series(5, 10, (t) => t * 1e9),
      heapRule,
    );
    expect(v.growing).toBe(false);
    expect(v.reason).toMatch(/too few samples/);
  });
});

describe('afterWarmup', () => {
  it('keeps the samples at or after the warm-up', () => {
    expect(
      afterWarmup(
        series(10, 10, (t) => t),
        50,
      ).map((p) => p.t),
    ).toEqual([50, 60, 70, 80, 90]);
  });
});
