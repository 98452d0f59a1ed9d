/**
 * Traffic shapes: when a device emits its next message(s). Pure: a shape and an RNG in, delays out.
 *  - steady: every 1/rate s, with ±jitter;
 *  - burst (the seeds' mode): a random 3-8 s gap, and now and then a burst of several messages
 *    a few hundred ms apart.
 */
import type { Rng } from '../rng.js';

export type TrafficShape =
  | { kind: 'steady'; rate: number; jitter?: number }
  | {
      kind: 'burst';
      minGapS?: number;
      maxGapS?: number;
      burstProbability?: number;
      burstMin?: number;
      burstMax?: number;
      burstSpacingMs?: number;
    };

/**
 * The delays (ms, relative to now) of the next emission(s): one entry for a single message, several for
 * a burst. Always at least one entry, every entry ≥ 1 ms, ascending.
 */
export function nextEmissions(shape: TrafficShape, rng: Rng): number[] {
  if (shape.kind === 'steady') {
    const period = 1000 / Math.max(1e-6, shape.rate);
    const j = shape.jitter ?? 0.1;
    return [Math.max(1, period * (1 + j * (rng.next() * 2 - 1)))];
  }
  const gap = rng.uniform(shape.minGapS ?? 3, shape.maxGapS ?? 8) * 1000;
  if (!rng.chance(shape.burstProbability ?? 0.1)) return [gap];
  const n = rng.int(shape.burstMin ?? 3, shape.burstMax ?? 8);
  const spacing = shape.burstSpacingMs ?? 200;
  return Array.from({ length: n }, (_, i) => gap + i * spacing);
}

/** Mean messages per second of a shape (for planning and the progress line). */
export function meanRate(shape: TrafficShape): number {
  if (shape.kind === 'steady') return shape.rate;
  const gap = ((shape.minGapS ?? 3) + (shape.maxGapS ?? 8)) / 2;
  const p = shape.burstProbability ?? 0.1;
  const burst = ((shape.burstMin ?? 3) + (shape.burstMax ?? 8)) / 2;
  return (1 - p + p * burst) / gap;
}

/** Exponential backoff with full jitter: attempt 0 → [0.5, 1]·base, capped at max. */
export function backoffMs(attempt: number, baseMs: number, maxMs: number, rng: Rng): number {
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.min(attempt, 30));
  return Math.round(ceiling * (0.5 + 0.5 * rng.next()));
}
