import { describe, expect, it } from 'vitest';
import { DEVICE_TYPE_IDS, DEVICE_TYPES } from '../../simulator/device-types.js';
import { diurnal, firstOrder, ou } from '../../simulator/generators/signals.js';
import { backoffMs, meanRate, nextEmissions } from '../../simulator/generators/traffic.js';
import { createRng, deriveSeed } from '../../simulator/rng.js';

const T0 = Date.UTC(2026, 0, 15, 0, 0, 0);

function run(typeId: string, seed: number, steps: number, dtS: number) {
  const type = DEVICE_TYPES[typeId]!;
  const rng = createRng(seed);
  const s = type.init(rng, T0);
  const out: Array<Record<string, unknown>> = [];
  for (let i = 1; i <= steps; i++) {
    type.step(s, T0 + i * dtS * 1000, dtS, rng);
    out.push({ ...s });
  }
  return out;
}

describe('rng', () => {
  it('is reproducible: same seed, same sequence; different seeds differ', () => {
    // Prepare
    const a = createRng(42);
    const b = createRng(42);
    const c = createRng(43);
    // Act
    const sa = Array.from({ length: 100 }, () => a.next());
    const sb = Array.from({ length: 100 }, () => b.next());
    const sc = Array.from({ length: 100 }, () => c.next());
    // Assess
    expect(sa).toEqual(sb);
    expect(sa).not.toEqual(sc);
    expect(sa.every((x) => x >= 0 && x < 1)).toBe(true);
  });

  it('has the right moments (normal, exponential, int bounds)', () => {
    const r = createRng(7);
    const n = 20_000;
    const normals = Array.from({ length: n }, () => r.normal());
    const mean = normals.reduce((x, y) => x + y, 0) / n;
    const variance = normals.reduce((x, y) => x + (y - mean) ** 2, 0) / n;
    expect(Math.abs(mean)).toBeLessThan(0.05);
    expect(Math.abs(variance - 1)).toBeLessThan(0.05);
    const exps = Array.from({ length: n }, () => r.exponential(10));
    expect(Math.abs(exps.reduce((x, y) => x + y, 0) / n - 10)).toBeLessThan(0.5);
    const ints = new Set(Array.from({ length: 1000 }, () => r.int(3, 8)));
    expect([...ints].sort()).toEqual([3, 4, 5, 6, 7, 8]);
  });

  it('derives independent, stable per-device seeds', () => {
    expect(deriveSeed(1, 0)).toBe(deriveSeed(1, 0));
    const seeds = new Set(Array.from({ length: 10_000 }, (_, i) => deriveSeed(1, i)));
    expect(seeds.size).toBe(10_000);
    expect(deriveSeed(1, 5)).not.toBe(deriveSeed(2, 5));
  });
});

describe('signal primitives', () => {
  it('ou reverts to its mean, firstOrder converges, diurnal peaks at its hour', () => {
    const r = createRng(1);
    let x = 100;
    for (let i = 0; i < 2000; i++) x = ou(x, 10, 0.5, 0.1, 0.1, r);
    expect(Math.abs(x - 10)).toBeLessThan(1);
    expect(firstOrder(0, 10, 5, 50)).toBeCloseTo(10, 3);
    expect(firstOrder(0, 10, 5, 5)).toBeCloseTo(10 * (1 - Math.exp(-1)), 6);
    expect(diurnal(Date.UTC(2026, 0, 1, 15), 2, 15)).toBeCloseTo(2, 9);
    expect(diurnal(Date.UTC(2026, 0, 1, 3), 2, 15)).toBeCloseTo(-2, 9);
  });
});

describe('device types', () => {
  it.each(DEVICE_TYPE_IDS)('%s: same seed → same values; another seed → different', (id) => {
    expect(run(id, 9, 200, 1)).toEqual(run(id, 9, 200, 1));
    expect(run(id, 9, 200, 1)).not.toEqual(run(id, 10, 200, 1));
  });

  it('env-sensor stays plausible over a simulated day', () => {
    const rows = run('env-sensor', 3, 24 * 60, 60);
    for (const r of rows) {
      expect(r.temperature as number).toBeGreaterThan(10);
      expect(r.temperature as number).toBeLessThan(32);
      expect(r.humidity as number).toBeGreaterThanOrEqual(5);
      expect(r.humidity as number).toBeLessThanOrEqual(95);
    }
    const temps = rows.map((r) => r.temperature as number);
    expect(Math.max(...temps) - Math.min(...temps)).toBeGreaterThan(3); // the daily cycle is visible
  });

  it('pressure stays around its set point', () => {
    for (const r of run('pressure', 4, 3600, 1)) {
      expect(r.pressure as number).toBeGreaterThan(250);
      expect(r.pressure as number).toBeLessThan(600);
    }
  });

  it('flow meter: flow follows the pump, the totaliser only grows, a stopped pump draws no current', () => {
    const type = DEVICE_TYPES['flow-meter']!;
    const rng = createRng(5);
    const s = type.init(rng, T0);
    let total = s.totaliser as number;
    for (let i = 1; i <= 120; i++) {
      type.step(s, T0 + i * 1000, 1, rng);
      expect(s.totaliser as number).toBeGreaterThanOrEqual(total);
      total = s.totaliser as number;
    }
    expect(s.flow as number).toBeGreaterThan(25);
    expect(s.motorCurrent as number).toBeGreaterThan(5);
    expect(type.write(s, 'running', false, T0)).toBe(true);
    expect(type.write(s, 'running', 'yes', T0)).toBe(false);
    expect(type.write(s, 'speed', 150, T0)).toBe(false);
    for (let i = 121; i <= 240; i++) type.step(s, T0 + i * 1000, 1, rng);
    expect(s.flow as number).toBeLessThan(0.01);
    expect(s.motorCurrent as number).toBeLessThan(0.01);
  });

  it('breaker: 3-phase values near 230 V / 50 Hz, power consistent with V·I, trip by command', () => {
    const type = DEVICE_TYPES.breaker!;
    const rng = createRng(6);
    const s = type.init(rng, T0);
    for (let i = 1; i <= 600; i++) type.step(s, T0 + i * 1000, 1, rng);
    for (const p of [1, 2, 3]) {
      expect(Math.abs((s[`voltage${p}`] as number) - 230)).toBeLessThan(10);
      expect(s[`current${p}`] as number).toBeGreaterThan(0);
    }
    expect(Math.abs((s.frequency as number) - 50)).toBeLessThan(0.2);
    const vi = [1, 2, 3].reduce((a, p) => a + (s[`voltage${p}`] as number) * (s[`current${p}`] as number), 0);
    expect((s.power as number) / vi).toBeGreaterThan(0.85);
    expect((s.power as number) / vi).toBeLessThan(1);
    const trips = s.tripCount as number;
    expect(type.write(s, 'trip', true, T0)).toBe(true);
    type.step(s, T0 + 601_000, 1, rng);
    expect(s.status).toBe('OPEN');
    expect(s.tripCount).toBe(trips + 1);
    expect([s.current1, s.current2, s.current3]).toEqual([0, 0, 0]);
    expect(type.write(s, 'trip', false, T0)).toBe(true);
    expect(s.status).toBe('CLOSED');
  });
});

describe('traffic shapes', () => {
  it('steady: one emission per period with bounded jitter', () => {
    const r = createRng(1);
    for (let i = 0; i < 100; i++) {
      const [d, ...more] = nextEmissions({ kind: 'steady', rate: 4, jitter: 0.1 }, r);
      expect(more).toEqual([]);
      expect(d).toBeGreaterThanOrEqual(225);
      expect(d).toBeLessThanOrEqual(275);
    }
  });

  it('burst (the seeds): 3-8 s gaps, sometimes several messages 200 ms apart', () => {
    const r = createRng(2);
    let bursts = 0;
    for (let i = 0; i < 500; i++) {
      const ds = nextEmissions({ kind: 'burst', burstProbability: 0.2 }, r);
      expect(ds[0]).toBeGreaterThanOrEqual(3000);
      expect(ds[0]).toBeLessThan(8000);
      if (ds.length > 1) {
        bursts++;
        expect(ds.length).toBeGreaterThanOrEqual(3);
        expect(ds.length).toBeLessThanOrEqual(8);
        expect(ds[1]! - ds[0]!).toBe(200);
      }
    }
    expect(bursts).toBeGreaterThan(60);
    expect(bursts).toBeLessThan(140);
    expect(meanRate({ kind: 'burst' })).toBeCloseTo((0.9 + 0.1 * 5.5) / 5.5, 9);
  });

  it('backoff grows exponentially with jitter and is capped', () => {
    const r = createRng(3);
    expect(backoffMs(0, 1000, 60_000, r)).toBeGreaterThanOrEqual(500);
    expect(backoffMs(0, 1000, 60_000, r)).toBeLessThanOrEqual(1000);
    expect(backoffMs(3, 1000, 60_000, r)).toBeGreaterThanOrEqual(4000);
    expect(backoffMs(20, 1000, 60_000, r)).toBeLessThanOrEqual(60_000);
  });
});
