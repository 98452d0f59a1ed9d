/**
 * Is a series that a soak run sampled still growing? Pure functions, no I/O (scripts/soak.ts samples,
 * test/reliability/soak-trend.test.ts checks the verdicts).
 *
 * Memory and lag are noisy: the JS heap saws up and down with garbage collection, lag jumps with each
 * batch. A least-squares slope is pulled around by single spikes, so the slope here is Theil–Sen (the
 * median of the slopes between every pair of samples), which ignores up to ~29 % outliers. A series
 * "keeps growing" only when all of these hold over the samples after the warm-up:
 * - the Theil–Sen slope, projected over the window, exceeds an absolute floor (below it the growth is
 *   too small to matter: a few MB of heap, a second of traffic);
 * - that projected growth is also a real share of the starting level (relative floor; 0 for lag, whose
 *   healthy level is ~0);
 * - the medians of the window's three thirds rise one after another, each by a quarter of its share of
 *   that growth at least — a single step (a cache filling once, a GC policy change) rises once and then
 *   stays flat, and is not a leak.
 */

export interface Point {
  /** Seconds since the start of the run. */
  t: number;
  v: number;
}

export interface GrowthRule {
  /** Growth over the window (in the series' unit) at or below which the series is not growing. */
  minGrowth: number;
  /** Growth as a share of the first third's median at or below which it is not growing (0: none). */
  minRelative: number;
}

export interface Trend {
  samples: number;
  /** Theil–Sen slope per minute, in the series' unit. */
  slopePerMinute: number;
  /** The slope projected over the window: slope × (last t − first t). */
  growth: number;
  /** Medians of the first, middle and last thirds of the window. */
  thirds: [number, number, number];
  growing: boolean;
  /** Why it is (or is not) growing, in words. */
  reason: string;
}

function median(values: number[]): number {
  if (values.length === 0) return Number.NaN;
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** Theil–Sen slope (units per second): the median of the slopes between every pair of samples. */
export function theilSenSlope(points: readonly Point[]): number {
  const slopes: number[] = [];
  for (let i = 0; i < points.length; i++) {
    for (let j = i + 1; j < points.length; j++) {
      const a = points[i]!;
      const b = points[j]!;
      if (b.t !== a.t) slopes.push((b.v - a.v) / (b.t - a.t));
    }
  }
  return slopes.length === 0 ? 0 : median(slopes);
}

/** Medians of three consecutive, near-equal slices of the samples (in time order). */
export function thirdMedians(points: readonly Point[]): [number, number, number] {
  const sorted = [...points].sort((a, b) => a.t - b.t).map((p) => p.v);
  const n = sorted.length;
  const cut1 = Math.round(n / 3);
  const cut2 = Math.round((2 * n) / 3);
  return [median(sorted.slice(0, cut1)), median(sorted.slice(cut1, cut2)), median(sorted.slice(cut2))];
}

/** Minimum samples for a verdict: fewer cannot tell a trend from noise. */
export const MIN_SAMPLES = 6;

export function trend(points: readonly Point[], rule: GrowthRule): Trend {
  const samples = points.length;
  if (samples < MIN_SAMPLES) {
    return {
      samples,
      slopePerMinute: 0,
      growth: 0,
      thirds: [Number.NaN, Number.NaN, Number.NaN],
      growing: false,
      reason: `too few samples for a verdict (${samples} < ${MIN_SAMPLES})`,
    };
  }
  const ts = points.map((p) => p.t);
  const span = Math.max(...ts) - Math.min(...ts);
  const slope = theilSenSlope(points);
  const growth = slope * span;
  const thirds = thirdMedians(points);
  const [m1, m2, m3] = thirds;
  const relativeFloor = rule.minRelative * Math.abs(m1);
  const base = { samples, slopePerMinute: slope * 60, growth, thirds };
  if (growth <= rule.minGrowth) {
    return {
      ...base,
      growing: false,
      reason: `growth over the window ${fmt(growth)} ≤ ${fmt(rule.minGrowth)}`,
    };
  }
  if (growth <= relativeFloor) {
    return {
      ...base,
      growing: false,
      reason: `growth ${fmt(growth)} ≤ ${Math.round(rule.minRelative * 100)} % of the starting level ${fmt(m1)}`,
    };
  }
  // Each third must rise by a quarter of its share of the projected growth at least: a flat tail whose
  // medians differ by noise does not count as rising.
  const step = growth / 12;
  if (!(m2 - m1 > step && m3 - m2 > step)) {
    return {
      ...base,
      growing: false,
      reason: `rose then levelled off (thirds ${fmt(m1)} / ${fmt(m2)} / ${fmt(m3)})`,
    };
  }
  return {
    ...base,
    growing: true,
    reason: `grows ${fmt(slope * 60)}/min, ${fmt(growth)} over the window (thirds ${fmt(m1)} / ${fmt(m2)} / ${fmt(m3)})`,
  };
}

function fmt(x: number): string {
  if (!Number.isFinite(x)) return String(x);
  const a = Math.abs(x);
  return a >= 100 ? Math.round(x).toLocaleString('en-US') : a >= 1 ? x.toFixed(1) : x.toFixed(3);
}

/** The samples at or after `fromT` (the warm-up is not the steady state). */
export function afterWarmup(points: readonly Point[], fromT: number): Point[] {
  return points.filter((p) => p.t >= fromT);
}
