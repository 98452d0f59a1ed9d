import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  admit,
  burstOf,
  fullBucket,
  type Limits,
  msUntilToken,
} from '../../../functions/core/operations/schedule.js';

const limitsArb = fc.record({
  concurrency: fc.integer({ min: 1, max: 50 }),
  ratePerSecond: fc.double({ min: 0.1, max: 200, noNaN: true }),
});
// A worker's passes: time steps, and how many in-flight targets finished since the last pass.
const passesArb = fc.array(fc.record({ dt: fc.integer({ min: 0, max: 3000 }), done: fc.nat(60) }), {
  minLength: 1,
  maxLength: 80,
});

function run(l: Limits, pending0: number, passes: Array<{ dt: number; done: number }>) {
  let now = 1_000_000;
  let bucket = fullBucket(l, now);
  let inFlight = 0;
  let pending = pending0;
  const starts: Array<{ at: number; count: number; inFlight: number }> = [];
  for (const p of passes) {
    now += p.dt;
    inFlight -= Math.min(inFlight, p.done);
    const a = admit(l, bucket, inFlight, pending, now);
    bucket = a.bucket;
    starts.push({ at: now, count: a.count, inFlight });
    inFlight += a.count;
    pending -= a.count;
  }
  return { starts, pending, bucket, now, inFlight };
}

describe('admission (property)', () => {
  it('never exceeds the concurrency, nor the pending targets', () => {
    fc.assert(
      fc.property(limitsArb, fc.nat(500), passesArb, (l, pending, passes) => {
        const { starts } = run(l, pending, passes);
        let total = 0;
        for (const s of starts) {
          expect(s.count).toBeGreaterThanOrEqual(0);
          expect(s.inFlight + s.count).toBeLessThanOrEqual(l.concurrency);
          total += s.count;
        }
        expect(total).toBeLessThanOrEqual(pending);
      }),
    );
  });

  it('never exceeds burst + rate × window over any window of passes', () => {
    fc.assert(
      fc.property(limitsArb, passesArb, (l, passes) => {
        const { starts } = run(l, 100_000, passes);
        for (let i = 0; i < starts.length; i++) {
          let sum = 0;
          for (let j = i; j < starts.length; j++) {
            sum += starts[j]!.count;
            const window = starts[j]!.at - starts[i]!.at;
            expect(sum).toBeLessThanOrEqual(burstOf(l) + (l.ratePerSecond * window) / 1000 + 1e-9);
          }
        }
      }),
    );
  });

  it('does not starve: with a token, a free slot and a pending target, something starts', () => {
    fc.assert(
      fc.property(limitsArb, fc.nat(1000), fc.integer({ min: 0, max: 10_000 }), (l, pending, dt) => {
        const b = { tokens: 0, at: 0 };
        const wait = msUntilToken(l, b, 0);
        const a = admit(l, b, 0, pending + 1, Math.max(wait, dt));
        expect(a.count).toBeGreaterThanOrEqual(1);
      }),
    );
  });

  it('finishes a fleet: 100 targets at 10/s and concurrency 20, each taking 1 s', () => {
    const l = { concurrency: 20, ratePerSecond: 10 };
    let now = 0;
    let bucket = fullBucket(l, now);
    const ends: number[] = [];
    let pending = 100;
    while (pending > 0 || ends.length > 0) {
      now += 100;
      for (let i = ends.length - 1; i >= 0; i--) if (ends[i]! <= now) ends.splice(i, 1);
      const a = admit(l, bucket, ends.length, pending, now);
      bucket = a.bucket;
      pending -= a.count;
      for (let i = 0; i < a.count; i++) ends.push(now + 1000);
      expect(ends.length).toBeLessThanOrEqual(20);
    }
    // Rate-bound: 10 in the first burst, then 10/s for the remaining 90 → about 9 s, plus the last second.
    expect(now).toBeGreaterThanOrEqual(9000);
    expect(now).toBeLessThanOrEqual(11_000);
  });

  it('a clock that goes backwards neither mints tokens nor rewinds the bucket', () => {
    const l = { concurrency: 5, ratePerSecond: 1 };
    const a = admit(l, { tokens: 0.5, at: 10_000 }, 0, 5, 5_000);
    expect(a.count).toBe(0);
    expect(a.bucket.at).toBe(10_000);
  });
});
