/**
 * The stored form of a rule state's window (functions/core/rules/window-codec.ts): exact round trips
 * of any window, compact for the usual one, and clear errors for a damaged value.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DecodeError } from '../../../functions/core/errors.js';
import { fromStoredState, toStoredState } from '../../../functions/core/rules/store.js';
import { decodeWindow, encodeWindow } from '../../../functions/core/rules/window-codec.js';

const T0 = 1_700_000_000_000;

/** A window as the engine keeps it: ascending times (equal ones allowed), any doubles as values. */
const windows = fc
  .tuple(
    fc.oneof(fc.constant(T0), fc.constant(-0), fc.integer({ min: -1e15, max: 1e15 }), fc.double()),
    fc.array(
      fc.tuple(
        fc.oneof(
          fc.integer({ min: 0, max: 3_600_000 }),
          fc.constant(0),
          fc.double({ min: 0, max: 1e6, noNaN: true }),
          fc.constant(Number.MAX_SAFE_INTEGER),
          fc.constant(-5), // a time before the one preceding it (never from the engine; kept as given)
        ),
        fc.double(), // NaN, ±Infinity, −0 and subnormals included
        fc.constantFrom('step', 'step', 'step', 'minus zero', 'NaN'),
      ),
      { maxLength: 400 },
    ),
  )
  .map(([start, steps]) => {
    const wt: number[] = [];
    const wv: number[] = [];
    let t = start;
    for (const [d, v, odd] of steps) {
      t += d;
      wt.push(odd === 'step' ? t : odd === 'NaN' ? Number.NaN : -0);
      wv.push(v);
    }
    return { wt, wv };
  });

const sameNumbers = (a: number[], b: number[]) =>
  a.length === b.length && a.every((x, i) => Object.is(x, b[i]));

describe('rule state window codec', () => {
  it('decodes exactly what it encoded (times ascending, any values)', () => {
    fc.assert(
      fc.property(windows, ({ wt, wv }) => {
        const bytes = encodeWindow(wt, wv);
        // Object.is per element: −0 and NaN must come back as they went in. Decoded from the value
        // itself, from a view at an odd offset into a larger buffer (the SDK hands back views into its
        // response buffer) and from a pooled Buffer (whose `slice` is a view, not a copy).
        const inLarger = new Uint8Array(bytes.length + 11);
        inLarger.set(bytes, 7);
        const pooled = Buffer.from(Buffer.from(bytes).toString('base64'), 'base64');
        for (const from of [bytes, inLarger.subarray(7, 7 + bytes.length), pooled]) {
          const back = decodeWindow(from);
          expect(sameNumbers(back.wt, wt)).toBe(true);
          expect(sameNumbers(back.wv, wv)).toBe(true);
        }
      }),
      { numRuns: 300 },
    );
    // The cases a random stream may miss, spelled out.
    for (const wt of [
      [0, -0],
      [-1, -0],
      [-0, -0],
      [T0, Number.NaN],
      [T0, T0 - 1],
      [T0, 2 ** 60],
    ]) {
      const back = decodeWindow(encodeWindow(wt, [1, 2]));
      expect(sameNumbers(back.wt, wt)).toBe(true);
    }
  });

  it('is compact for the usual window: 300 samples at 1 s in about 3 KB (10.4 bytes per sample)', () => {
    const wt = Array.from({ length: 300 }, (_, i) => T0 + i * 1000);
    const wv = Array.from({ length: 300 }, (_, i) => 50 + Math.sin(i) * 30);
    const bytes = encodeWindow(wt, wv);
    // 1 format + 2 count + 1 encoding + 8 first time + 299 × 2 (deltas of 1000 ms) + 300 × 8 values.
    expect(bytes.length).toBe(1 + 2 + 1 + 8 + 299 * 2 + 300 * 8);
    // Times that are not integer milliseconds are kept whole (8 bytes each).
    const fractional = encodeWindow([T0 + 0.5, T0 + 1.25], [1, 2]);
    expect(fractional.length).toBe(1 + 1 + 1 + 16 + 16);
    expect(decodeWindow(fractional)).toEqual({ wt: [T0 + 0.5, T0 + 1.25], wv: [1, 2] });
    expect(decodeWindow(encodeWindow([], []))).toEqual({ wt: [], wv: [] });
  });

  it('names what is wrong with a damaged value (DecodeError RULE_STATE_WINDOW, field w)', () => {
    const good = encodeWindow([T0, T0 + 1000], [1, 2]);
    const cases: Array<[Uint8Array, RegExp]> = [
      [good.subarray(0, good.length - 3), /truncated at byte \d+ \(values\)/],
      [good.subarray(0, 5), /truncated at byte \d+ \(first time\)/],
      [new Uint8Array([]), /truncated at byte 0 \(format\)/],
      [Uint8Array.from([9, ...good.subarray(1)]), /format 9 is not known/],
      [Uint8Array.from([1, 2, 7]), /time encoding 7 is not known/],
      [Uint8Array.from([...good, 0]), /1 bytes after its values/],
      [Uint8Array.from([1, 0xff, 0xff, 0xff, 0x7f, 0]), /claims \d+ samples/],
      [Uint8Array.from([1, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0]), /varint longer than 8 bytes/],
      [
        Uint8Array.from([1, 1, 0, ...new Uint8Array(new Float64Array([0.5]).buffer), 0, 0, 0, 0, 0, 0, 0, 0]),
        /first time 0.5 is not an integer/,
      ],
    ];
    for (const [bytes, message] of cases) {
      let caught: unknown;
      try {
        decodeWindow(bytes);
      } catch (error) {
        caught = error;
      }
      expect(caught).toBeInstanceOf(DecodeError);
      expect(caught).toMatchObject({ code: 'RULE_STATE_WINDOW', field: 'w' });
      expect((caught as Error).message).toMatch(message);
    }
  });
});

describe('stored rule states', () => {
  const base = {
    ruleId: 'r',
    series: 'd|m',
    version: 3,
    revision: 1,
    deviceId: 'd',
    active: false,
    updatedAt: T0,
  };

  it('keep the window as one binary value, and copy (the engine goes on changing its state)', () => {
    const s = { ...base, wt: [T0, T0 + 1000], wv: [4, 5], detector: { recent: [1] } as never };
    const stored = toStoredState(s);
    expect(stored).not.toHaveProperty('wt');
    expect(stored).not.toHaveProperty('wv');
    expect(stored.w).toBeInstanceOf(Uint8Array);
    s.wt.push(T0 + 2000);
    (s.detector as { recent: number[] }).recent.push(2);
    const back = fromStoredState(stored);
    expect(back).toEqual({ ...base, wt: [T0, T0 + 1000], wv: [4, 5], detector: { recent: [1] } });
    back.wt!.push(0);
    expect(fromStoredState(stored).wt).toEqual([T0, T0 + 1000]);
  });

  it('read states stored with the window as lists, and drop a damaged window (reported)', () => {
    expect(fromStoredState({ ...base, wt: [1, 2], wv: [3, 4] })).toEqual({ ...base, wt: [1, 2], wv: [3, 4] });
    // Lists that are not a window would fail every later put of the series (at its encoding): dropped.
    for (const lists of [{ wt: [1, 2], wv: [3] }, { wt: [1, 'x'], wv: [3, 4] }, { wt: [1, 2] }] as Array<{
      wt?: number[];
      wv?: number[];
    }>) {
      const dropped: unknown[] = [];
      const s = fromStoredState({ ...base, ...lists }, (e) => dropped.push(e));
      expect(s.wt).toBeUndefined();
      expect(s.wv).toBeUndefined();
      expect(dropped).toEqual([expect.objectContaining({ code: 'RULE_STATE_WINDOW' })]);
      expect(() => toStoredState(s)).not.toThrow();
    }
    const damaged: unknown[] = [];
    const s = fromStoredState({ ...base, w: Uint8Array.from([1, 5, 0]) }, (e) => damaged.push(e));
    expect(s).toEqual(base);
    expect(damaged).toHaveLength(1);
    expect(damaged[0]).toMatchObject({ code: 'RULE_STATE_WINDOW' });
  });
});
