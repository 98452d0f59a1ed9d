/**
 * Signal primitives: small pure functions of (previous value, time, step, RNG). Device types compose
 * them; nothing here reads a clock or Math.random.
 */
import type { Rng } from '../rng.js';

const DAY_MS = 86_400_000;

/** Ornstein-Uhlenbeck step: mean-reverting noise (sensor drift that stays near a set point). */
export function ou(prev: number, mean: number, theta: number, sigma: number, dtS: number, rng: Rng): number {
  const dt = Math.max(0, dtS);
  return prev + theta * (mean - prev) * dt + sigma * Math.sqrt(dt) * rng.normal();
}

/** A daily cycle in [-amplitude, amplitude], peaking at `peakHour` UTC. */
export function diurnal(timeMs: number, amplitude: number, peakHour: number): number {
  const phase = ((((timeMs - peakHour * 3_600_000) % DAY_MS) + DAY_MS) % DAY_MS) / DAY_MS;
  return amplitude * Math.cos(2 * Math.PI * phase);
}

/** First-order lag towards `target` with time constant `tauS` (thermal mass, motor spin-up). */
export function firstOrder(prev: number, target: number, tauS: number, dtS: number): number {
  if (tauS <= 0) return target;
  return target + (prev - target) * Math.exp(-Math.max(0, dtS) / tauS);
}

export function clamp(v: number, min: number, max: number): number {
  return Math.max(min, Math.min(max, v));
}

/** Rounds to `digits` decimals (what a real instrument reports). */
export function round(v: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(v * f) / f;
}
