/**
 * A streaming anomaly detector per series: O(1) time and a few numbers of state per reading, kept in
 * the rule state so it survives cold starts. It scores each reading against the series' own recent
 * behaviour and returns the largest of four components, in "robust sigmas":
 *
 * - level: |x − m| / σ, where m is an EWMA baseline of the inliers, updated with residuals clipped at
 *   `clip`·σ and σ = 1.2533 · EWMA(|clipped residual|) (mean absolute deviation → σ for normal
 *   noise). Spikes and the onset of a level shift score here.
 * - drift: 4 · |m − m_slow| / σ, m_slow a ten-times-slower EWMA: a ramp drags the fast baseline away
 *   from the slow one while each single reading still looks normal.
 * - stuck: the number of consecutive exactly repeated values, for a series that normally varies.
 * - gap: the time since the previous reading in typical intervals (EWMA of the interval), from 3 up.
 *
 * After `shiftAfter` consecutive outliers on the same side the detector accepts a level shift: both
 * baselines move to the median of those readings (one alert episode per shift, not hours of them).
 * The first `warmup` readings only learn (score NaN).
 */
export interface DetectorState {
  n: number;
  mean: number;
  slow: number;
  dev: number;
  /** EWMA of the interval between readings, ms. */
  dt: number;
  lastT: number;
  lastV: number;
  run: number;
  /** Consecutive outliers on one side: +n above, −n below. */
  streak: number;
  /** The values of the current outlier streak. */
  recent: number[];
}

export interface DetectorOptions {
  /** Weight of a new reading in the baseline (default 0.05 ≈ the last 20 readings). */
  alpha?: number;
  /** Readings before scores are given (default 30). */
  warmup?: number;
  /** Residuals are clipped at clip·σ when updating the baseline (default 3). */
  clip?: number;
  /** Outliers in a row, on one side, that are taken as a new level (default 5). */
  shiftAfter?: number;
}

export type AnomalyComponent = 'level' | 'drift' | 'stuck' | 'gap';

export interface AnomalyScore {
  score: number;
  component: AnomalyComponent;
}

const SIGMA_PER_MAD = 1.2533;
const OUTLIER_Z = 3.5;
const CONTINUE_Z = 2;
/** A drift this large is reported, then accepted: the slow baseline jumps to the fast one. */
const DRIFT_ACCEPT = 6;

export function newDetectorState(): DetectorState {
  return { n: 0, mean: 0, slow: 0, dev: 0, dt: 0, lastT: 0, lastV: 0, run: 0, streak: 0, recent: [] };
}

/** Scores (time, value) and updates `s` in place. Readings must come in ascending time. */
export function detect(s: DetectorState, t: number, v: number, o: DetectorOptions = {}): AnomalyScore {
  const score = detectScore(s, t, v, o);
  return { score, component: lastComponent };
}

/** The component of the last `detectScore` call (module state: the engine's hot path allocates nothing). */
let lastComponent: AnomalyComponent = 'level';
const NO_OPTIONS: DetectorOptions = {};

/**
 * `detect` without the result object: returns the score and leaves the component in `lastComponent`.
 * Used per reading by the rule engine.
 */
export function detectScore(s: DetectorState, t: number, v: number, o: DetectorOptions = NO_OPTIONS): number {
  const alpha = o.alpha ?? 0.05;
  const warmup = o.warmup ?? 30;
  const clip = o.clip ?? 3;
  const shiftAfter = o.shiftAfter ?? 5;

  if (s.n === 0) {
    s.n = 1;
    s.mean = v;
    s.slow = v;
    s.lastT = t;
    s.lastV = v;
    lastComponent = 'level';
    return Number.NaN;
  }
  const interval = t - s.lastT;
  const repeat = v === s.lastV;
  s.run = repeat ? s.run + 1 : 0;
  const sigma = Math.max(SIGMA_PER_MAD * s.dev, 1e-9 * Math.max(1, Math.abs(s.mean)));
  const r = v - s.mean;
  let score = Number.NaN;
  let component: AnomalyComponent = 'level';

  if (s.n < warmup) {
    // Learn fast: a running mean that turns into the EWMA.
    const a = Math.max(alpha, 1 / (s.n + 1));
    s.mean += a * r;
    s.slow = s.mean;
    s.dev += a * (Math.abs(r) - s.dev);
    s.dt = s.dt === 0 ? interval : s.dt + a * (interval - s.dt);
  } else {
    const level = Math.abs(r) / sigma;
    const drift = (4 * Math.abs(s.mean - s.slow)) / sigma;
    const stuck = s.dev > 0 ? s.run : 0;
    const gap = s.dt > 0 && interval > 3 * s.dt ? interval / s.dt : 0;
    score = level;
    if (drift > score) {
      score = drift;
      component = 'drift';
    }
    if (stuck > score) {
      score = stuck;
      component = 'stuck';
    }
    if (gap > score) {
      score = gap;
      component = 'gap';
    }

    // A streak starts above OUTLIER_Z and continues above CONTINUE_Z on the same side (noise on a
    // shifted level dips below the first now and then).
    const sign = Math.sign(r);
    const side =
      level > OUTLIER_Z || (level > CONTINUE_Z && s.streak !== 0 && Math.sign(s.streak) === sign) ? sign : 0;
    if (side !== 0 && Math.sign(s.streak) === side) {
      s.streak += side;
      s.recent.push(v);
    } else if (side !== 0) {
      s.streak = side;
      s.recent = [v];
    } else {
      s.streak = 0;
      if (s.recent.length > 0) s.recent = [];
    }
    if (Math.abs(s.streak) >= shiftAfter) {
      const sorted = [...s.recent].sort((a, b) => a - b);
      s.mean = sorted[sorted.length >> 1]!;
      s.slow = s.mean;
      s.streak = 0;
      s.recent = [];
    } else if (side === 0 && !repeat) {
      // Outliers (held until they prove to be a new level) and repeats (a stuck sensor) teach the
      // baseline nothing.
      const rc = Math.max(-clip * sigma, Math.min(clip * sigma, r));
      s.mean += alpha * rc;
      s.slow += (alpha / 10) * (s.mean - s.slow);
      s.dev += alpha * (Math.abs(rc) - s.dev);
    }
    if (drift >= DRIFT_ACCEPT) s.slow = s.mean;
    // Interval: ignore gaps in the typical-interval estimate (a dropout must not teach "slow").
    if (gap === 0) s.dt += alpha * (interval - s.dt);
  }
  s.n++;
  s.lastT = t;
  s.lastV = v;
  lastComponent = component;
  return score;
}
