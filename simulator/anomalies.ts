/**
 * Labelled anomalies for a device's signal: an injector that turns a normal value stream into one with
 * spikes, level shifts, drifts, stuck values and dropouts, recording the ground truth (kind and time
 * span of each anomaly), and a scorer that measures precision and recall of a detector's alarms against
 * it. Deterministic: every random choice comes from the injected seeded RNG (simulator/rng.ts).
 *
 * The injector works one reading at a time (`apply(time, value)`), so the fleet simulator can wrap any
 * device's generator with it; `generateAnomalyStream` builds a whole labelled series for benchmarks.
 */
import { ou, round } from './generators/signals.js';
import { createRng, type Rng } from './rng.js';

export type AnomalyKind = 'spike' | 'level-shift' | 'drift' | 'stuck' | 'dropout';
export const ANOMALY_KINDS: readonly AnomalyKind[] = ['spike', 'level-shift', 'drift', 'stuck', 'dropout'];

export interface LabelledAnomaly {
  kind: AnomalyKind;
  /** First affected reading time (epoch ms). */
  start: number;
  /** Last time an alarm still counts as detecting it (epoch ms, inclusive). */
  end: number;
  /** Size in units of the signal's noise σ (spike, level shift, drift); length in readings otherwise. */
  magnitude: number;
}

export interface InjectorOptions {
  kinds: readonly AnomalyKind[];
  /** Noise σ of the clean signal: magnitudes are multiples of it. */
  sigma: number;
  /** Nominal interval between readings, ms (for label spans). */
  intervalMs: number;
  /** Chance that an anomaly starts at a given reading once the quiet period is over (default 1/150). */
  rate?: number;
  /** Readings after an anomaly before the next may start (default 120). */
  quiet?: number;
  /** Readings after a spike / the onset of a shift that still count as detecting it (default 5). */
  tolerance?: number;
}

type Active =
  | { kind: 'spike'; left: number }
  | { kind: 'level-shift'; left: number }
  | { kind: 'drift'; left: number; step: number }
  | { kind: 'stuck'; left: number; value: number }
  | { kind: 'dropout'; left: number };

/**
 * Injects anomalies into a stream of readings. `apply` returns the value to report, or undefined for a
 * reading lost in a dropout. `offset` keeps the permanent effect of level shifts and drifts.
 */
export class AnomalyInjector {
  readonly labels: LabelledAnomaly[] = [];
  private offset = 0;
  private active: Active | undefined;
  private quietLeft: number;
  private last: number | undefined;

  constructor(
    private readonly rng: Rng,
    private readonly o: InjectorOptions,
  ) {
    this.quietLeft = o.quiet ?? 120;
  }

  apply(time: number, value: number): number | undefined {
    const tolerance = (this.o.tolerance ?? 5) * this.o.intervalMs;
    if (!this.active) {
      if (this.quietLeft > 0) this.quietLeft--;
      else if (this.o.kinds.length > 0 && this.rng.chance(this.o.rate ?? 1 / 150))
        this.start(time, tolerance);
    }
    let out: number | undefined = value + this.offset;
    const a = this.active;
    if (a) {
      switch (a.kind) {
        case 'spike':
          out = value + this.offset + this.spikeSize;
          break;
        case 'level-shift':
          break;
        case 'drift':
          this.offset += a.step;
          out = value + this.offset;
          break;
        case 'stuck':
          out = a.value;
          break;
        case 'dropout':
          out = undefined;
          break;
      }
      if (--a.left <= 0) {
        this.active = undefined;
        this.quietLeft = this.o.quiet ?? 120;
      }
    }
    if (out !== undefined) this.last = out;
    return out;
  }

  private spikeSize = 0;

  private start(time: number, tolerance: number): void {
    const kind = this.o.kinds[this.rng.int(0, this.o.kinds.length - 1)]!;
    const sign = this.rng.chance(0.5) ? 1 : -1;
    const sigma = this.o.sigma;
    const iv = this.o.intervalMs;
    switch (kind) {
      case 'spike': {
        const m = this.rng.uniform(6, 10);
        this.spikeSize = sign * m * sigma;
        this.active = { kind, left: 1 };
        this.labels.push({ kind, start: time, end: time + tolerance, magnitude: m });
        break;
      }
      case 'level-shift': {
        const m = this.rng.uniform(5, 8);
        this.offset += sign * m * sigma;
        this.active = { kind, left: 1 };
        this.labels.push({ kind, start: time, end: time + tolerance, magnitude: m });
        break;
      }
      case 'drift': {
        const m = this.rng.uniform(6, 10);
        const n = this.rng.int(100, 200);
        this.active = { kind, left: n, step: (sign * m * sigma) / n };
        this.labels.push({ kind, start: time, end: time + n * iv + tolerance, magnitude: m });
        break;
      }
      case 'stuck': {
        const n = this.rng.int(20, 60);
        this.active = { kind, left: n, value: this.last ?? 0 };
        this.labels.push({ kind, start: time, end: time + n * iv, magnitude: n });
        break;
      }
      case 'dropout': {
        const n = this.rng.int(10, 30);
        this.active = { kind, left: n };
        this.labels.push({ kind, start: time, end: time + (n + 2) * iv, magnitude: n });
        break;
      }
    }
  }
}

export interface AnomalyStreamOptions {
  seed: number;
  kinds: readonly AnomalyKind[];
  /** Readings to produce (dropouts leave holes). Default 20,000. */
  count?: number;
  start?: number;
  intervalMs?: number;
  /** Set point, noise σ, daily cycle amplitude, decimals reported. */
  level?: number;
  sigma?: number;
  diurnal?: number;
  decimals?: number;
  rate?: number;
  quiet?: number;
}

export interface AnomalyStream {
  readings: Array<{ time: number; value: number }>;
  anomalies: LabelledAnomaly[];
}

/**
 * A labelled series: a set point with a slow daily cycle, mean-reverting wander and white noise,
 * reported at `decimals` decimals, with anomalies of `kinds` injected.
 */
export function generateAnomalyStream(o: AnomalyStreamOptions): AnomalyStream {
  const rng = createRng(o.seed);
  const count = o.count ?? 20_000;
  const start = o.start ?? Date.UTC(2026, 0, 1);
  const iv = o.intervalMs ?? 10_000;
  const level = o.level ?? 50;
  const sigma = o.sigma ?? 1;
  const amplitude = o.diurnal ?? 3;
  const decimals = o.decimals ?? 2;
  const injector = new AnomalyInjector(rng, {
    kinds: o.kinds,
    sigma,
    intervalMs: iv,
    ...(o.rate === undefined ? {} : { rate: o.rate }),
    ...(o.quiet === undefined ? {} : { quiet: o.quiet }),
  });
  const readings: Array<{ time: number; value: number }> = [];
  let wander = 0;
  for (let i = 0; i < count; i++) {
    const time = start + i * iv;
    wander = ou(wander, 0, 0.01, 0.05 * sigma, iv / 1000, rng);
    const clean = level + amplitude * Math.sin((2 * Math.PI * (time % 86_400_000)) / 86_400_000) + wander;
    const v = injector.apply(time, clean + sigma * rng.normal());
    if (v !== undefined) readings.push({ time, value: round(v, decimals) });
  }
  return { readings, anomalies: injector.labels };
}

export interface DetectionScore {
  anomalies: number;
  detected: number;
  /** Alarm episodes: runs of alarmed readings with no more than `mergeMs` between them. */
  episodes: number;
  truePositives: number;
  precision: number;
  recall: number;
}

/**
 * Event-level scoring: an anomaly is detected when an alarm falls inside its labelled span; alarms
 * close together (≤ mergeMs apart) form one episode, and an episode is a true positive when any of its
 * alarms falls inside a labelled span. precision = true episodes / episodes; recall = detected / labelled.
 */
export function scoreDetections(
  anomalies: LabelledAnomaly[],
  alarmTimes: number[],
  mergeMs: number,
): DetectionScore {
  const inLabel = (t: number) => anomalies.findIndex((a) => t >= a.start && t <= a.end);
  const detected = new Set<number>();
  let episodes = 0;
  let truePositives = 0;
  let i = 0;
  while (i < alarmTimes.length) {
    let hit = false;
    let j = i;
    for (; j < alarmTimes.length && (j === i || alarmTimes[j]! - alarmTimes[j - 1]! <= mergeMs); j++) {
      const k = inLabel(alarmTimes[j]!);
      if (k >= 0) {
        hit = true;
        detected.add(k);
      }
    }
    episodes++;
    if (hit) truePositives++;
    i = j;
  }
  return {
    anomalies: anomalies.length,
    detected: detected.size,
    episodes,
    truePositives,
    precision: episodes === 0 ? 1 : truePositives / episodes,
    recall: anomalies.length === 0 ? 1 : detected.size / anomalies.length,
  };
}
