/** The condition language: round trip, errors with positions, what it can and cannot name. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  compileBool,
  compileNum,
  type EvalContext,
  newWindowCache,
  percentile,
  stddev,
} from '../../../functions/core/rules/compile.js';
import {
  type Condition,
  type Expr,
  parseCondition,
  printCondition,
  RuleSyntaxError,
} from '../../../functions/core/rules/index.js';

const strip = (c: unknown) => JSON.parse(JSON.stringify(c, (k, v) => (k === 'pos' ? undefined : v)));

function syntaxError(source: string): RuleSyntaxError {
  try {
    parseCondition(source);
  } catch (error) {
    expect(error).toBeInstanceOf(RuleSyntaxError);
    return error as RuleSyntaxError;
  }
  throw new Error(`expected ${JSON.stringify(source)} to fail`);
}

const ctx = (value: number, over: Partial<EvalContext> = {}): EvalContext => ({
  value,
  time: 0,
  prevValue: undefined,
  prevTime: undefined,
  wt: [],
  wv: [],
  score: Number.NaN,
  ...over,
});

// ---- arbitraries: well-typed trees -------------------------------------------------------------

const dur = fc
  .tuple(fc.integer({ min: 1, max: 1440 }), fc.constantFrom('ms', 's', 'm'))
  .map(([n, u]) => ({ ms: n * (u === 'ms' ? 1 : u === 's' ? 1000 : 60_000), text: `${n}${u}` }));

const literal = fc.oneof(
  fc.integer({ min: 0, max: 1_000_000 }),
  fc.double({ min: 0, max: 1e12, noNaN: true, noDefaultInfinity: true }).filter((v) => !Object.is(v, -0)),
);

const { bool } = fc.letrec<{ num: Expr; bool: Expr }>((tie) => ({
  num: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    literal.map((v): Expr => ({ k: 'num', v, pos: 0 })),
    fc.constant<Expr>({ k: 'value', pos: 0 }),
    tie('num').map((e): Expr => ({ k: 'neg', e, pos: 0 })),
    fc
      .tuple(fc.constantFrom('+', '-', '*', '/', '%' as const), tie('num'), tie('num'))
      .map(([op, l, r]): Expr => ({ k: 'arith', op, l, r, pos: 0 })),
    fc
      .tuple(
        fc.constantFrom('mean', 'stddev', 'min', 'max', 'median', 'count', 'zscore', 'rate' as const),
        dur,
      )
      .map(([fn, window]): Expr => ({ k: 'call', fn, args: [], window, pos: 0 })),
    fc.tuple(fc.integer({ min: 0, max: 100 }), dur).map(
      ([p, window]): Expr => ({
        k: 'call',
        fn: 'percentile',
        args: [{ k: 'num', v: p, pos: 0 }],
        window,
        pos: 0,
      }),
    ),
    tie('num').map((a): Expr => ({ k: 'call', fn: 'abs', args: [a], pos: 0 })),
    fc.constantFrom<Expr>(
      { k: 'call', fn: 'anomaly', args: [], pos: 0 },
      { k: 'call', fn: 'delta', args: [], pos: 0 },
    ),
  ),
  bool: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc
      .tuple(fc.constantFrom('>', '>=', '<', '<=', '==', '!=' as const), tie('num'), tie('num'))
      .map(([op, l, r]): Expr => ({ k: 'cmp', op, l, r, pos: 0 })),
    fc.boolean().map((v): Expr => ({ k: 'bool', v, pos: 0 })),
    tie('bool').map((e): Expr => ({ k: 'not', e, pos: 0 })),
    fc
      .tuple(fc.constantFrom('and', 'or' as const), tie('bool'), tie('bool'))
      .map(([op, l, r]): Expr => ({ k: 'logic', op, l, r, pos: 0 })),
    fc
      .tuple(fc.constantFrom('==', '!=' as const), tie('bool'), tie('bool'))
      .map(([op, l, r]): Expr => ({ k: 'cmp', op, l, r, pos: 0 })),
  ),
}));

const condition: fc.Arbitrary<Condition> = fc.oneof(
  fc
    .tuple(bool, fc.option(dur, { nil: undefined }), fc.option(bool, { nil: undefined }))
    .map(([when, hold, clear]) => {
      const c: Condition = { kind: 'expr', when };
      if (hold) c.hold = hold;
      if (clear) c.clear = clear;
      return c;
    }),
  dur.map((after): Condition => ({ kind: 'absent', after })),
  fc
    .option(dur, { nil: undefined })
    .map((hold): Condition => (hold ? { kind: 'offline', hold } : { kind: 'offline' })),
  fc
    .constantFrom('birth', 'death', 'rebirth-requested', 'deregister', 'seq-gap' as const)
    .map((event): Condition => ({ kind: 'event', event })),
);

describe('rule condition language', () => {
  it('parse → print → parse gives the same tree (property)', () => {
    fc.assert(
      fc.property(condition, (c) => {
        const printed = printCondition(c);
        const parsed = parseCondition(printed);
        expect(strip(parsed)).toEqual(strip(c));
        expect(printCondition(parsed)).toBe(printed);
      }),
      { numRuns: 500 },
    );
  });

  it('prints canonically: spacing, parentheses only where needed, durations as written', () => {
    const cases: Array<[string, string]> = [
      ['value>80 for 30s clear<75', 'value > 80 for 30s clear value < 75'],
      ['((value + 1) * 2) > 3', '(value + 1) * 2 > 3'],
      ['value - (1 - 2) > 0', 'value - (1 - 2) > 0'],
      ['value > 1 and (value < 5 or value == 7)', 'value > 1 and (value < 5 or value == 7)'],
      ['not (value > 1) and true', 'not value > 1 and true'],
      ['percentile(95,5m)>=mean(1.5m)*2', 'percentile(95, 5m) >= mean(1.5m) * 2'],
      ['- -value < 0', '--value < 0'],
      ['ON rebirth'.toLowerCase(), 'on rebirth_requested'],
      ['absent for 60s', 'absent for 60s'],
      ['(value > 1) == (value < 2)', '(value > 1) == (value < 2)'],
    ];
    for (const [src, printed] of cases) expect(printCondition(parseCondition(src))).toBe(printed);
  });

  it('reports errors with a code and the position they refer to', () => {
    const cases: Array<[string, string, number]> = [
      ['value > ', 'RULE_UNEXPECTED_TOKEN', 8],
      ['value >> 3', 'RULE_UNEXPECTED_TOKEN', 7],
      ['value > 80 fore 30s', 'RULE_UNEXPECTED_TOKEN', 11],
      ['value > 80 for 30', 'RULE_UNEXPECTED_TOKEN', 15],
      ['value > 80 for 30 min', 'RULE_UNEXPECTED_TOKEN', 15],
      ['value > 80 for 30min', 'RULE_BAD_DURATION', 17],
      ['temperature > 3', 'RULE_UNKNOWN_IDENTIFIER', 0],
      ['process.exit(1) > 0', 'RULE_UNEXPECTED_CHARACTER', 7],
      ['value && true', 'RULE_UNEXPECTED_CHARACTER', 6],
      ['eval(1) > 0', 'RULE_UNKNOWN_FUNCTION', 0],
      ['constructor(1) > 0', 'RULE_UNKNOWN_FUNCTION', 0],
      ['mean(5) > 0', 'RULE_ARITY', 5],
      ['mean() > 0', 'RULE_ARITY', 5],
      ['mean(5m, 1m) > 0', 'RULE_ARITY', 9],
      ['percentile(value, 5m) > 1', 'RULE_TYPE', 11],
      ['percentile(101, 5m) > 1', 'RULE_RANGE', 11],
      ['value + 1', 'RULE_TYPE', 6],
      ['value > 1 + true', 'RULE_TYPE', 12],
      ['1 < value < 3', 'RULE_CHAINED_COMPARISON', 10],
      ['value > 1 and 3', 'RULE_TYPE', 14],
      ['(value > 1', 'RULE_UNEXPECTED_TOKEN', 10],
      ['value > 1)', 'RULE_UNEXPECTED_TOKEN', 9],
      ['value > 5s', 'RULE_TYPE', 8],
      ['absent 60s', 'RULE_UNEXPECTED_TOKEN', 7],
      ['absent for 2d', 'RULE_BAD_DURATION', 11],
      ['on reboot', 'RULE_UNKNOWN_EVENT', 3],
      ['value > 1 for 0.5ms', 'RULE_BAD_DURATION', 14],
      ['   ', 'RULE_EMPTY', 0],
      ['value["x"] > 1', 'RULE_UNEXPECTED_CHARACTER', 5],
      ['value > 1e999', 'RULE_BAD_NUMBER', 8],
    ];
    for (const [src, code, position] of cases) {
      const e = syntaxError(src);
      expect({ src, code: e.code, position: e.position }).toEqual({ src, code, position });
      expect(e.field).toBe('condition');
      expect(e.message).toContain(`at position ${position}`);
      expect(e.toJSON()).toMatchObject({ code, field: 'condition', position });
    }
  });

  it('bounds length and nesting', () => {
    expect(syntaxError(`value > ${'1'.repeat(1001)}`).code).toBe('RULE_TOO_LONG');
    expect(syntaxError(`${'('.repeat(40)}value > 1${')'.repeat(40)}`).code).toBe('RULE_TOO_DEEP');
    expect(syntaxError(`${'-'.repeat(40)}value > 1`).code).toBe('RULE_TOO_DEEP');
  });

  it('any input either parses or fails with a positioned RuleSyntaxError (never anything else)', () => {
    const alphabet = fc.constantFrom(...'value()<>=!+-*/%,. 0123456789smhd_abcdefornt&|[]"\''.split(''));
    fc.assert(
      fc.property(
        fc.array(alphabet, { maxLength: 60 }).map((cs) => cs.join('')),
        (src) => {
          try {
            const c = parseCondition(src);
            expect(strip(parseCondition(printCondition(c)))).toEqual(strip(c));
          } catch (error) {
            expect(error).toBeInstanceOf(RuleSyntaxError);
            const e = error as RuleSyntaxError;
            expect(e.position).toBeGreaterThanOrEqual(0);
            expect(e.position).toBeLessThanOrEqual(src.length);
          }
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('evaluates only over the context: the value, its predecessor, the window and the score', () => {
    const when = (src: string) => {
      const c = parseCondition(src);
      if (c.kind !== 'expr') throw new Error('not an expression');
      return compileBool(c.when);
    };
    expect(when('value > 80')(ctx(81))).toBe(true);
    expect(when('value > 80')(ctx(80))).toBe(false);
    expect(when('value % 2 == 1 and -value < 0')(ctx(3))).toBe(true);
    expect(when('delta() > 5')(ctx(20, { prevValue: 10, prevTime: 0, time: 1000 }))).toBe(true);
    expect(when('rate(1m) > 5')(ctx(20, { prevValue: 10, prevTime: 0, time: 60_000 }))).toBe(true);
    expect(when('rate(1m) > 5')(ctx(20, { prevValue: 10, prevTime: 0, time: 180_000 }))).toBe(false);
    const window = { wt: [0, 1000, 2000, 3000, 4000], wv: [1, 2, 3, 4, 10], time: 4000 };
    expect(when('mean(10s) == 4')(ctx(10, window))).toBe(true);
    expect(when('mean(2s) == 17 / 3')(ctx(10, window))).toBe(true); // t >= 2000: 3, 4, 10
    expect(when('min(10s) == 1 and max(10s) == 10 and count(10s) == 5')(ctx(10, window))).toBe(true);
    expect(
      when('median(10s) == 3 and percentile(100, 10s) == 10 and percentile(0, 10s) == 1')(ctx(10, window)),
    ).toBe(true);
    expect(when('percentile(50, 1500ms) == 7')(ctx(10, window))).toBe(true); // 4, 10
    // zscore: the current reading against the window before it (1..4: mean 2.5, sd 1.29)
    expect(when('zscore(10s) > 5.8 and zscore(10s) < 5.9')(ctx(10, window))).toBe(true);
    expect(when('anomaly() > 4')(ctx(1, { score: 4.5 }))).toBe(true);
  });

  it('is three-valued: missing data is unknown, not false', () => {
    const when = (src: string) => {
      const c = parseCondition(src);
      return compileBool((c as { when: Expr }).when);
    };
    expect(when('rate(1m) > 5')(ctx(1))).toBeNull(); // no previous reading
    expect(when('not rate(1m) > 5')(ctx(1))).toBeNull();
    expect(when('rate(1m) > 5 or value > 0')(ctx(1))).toBe(true);
    expect(when('rate(1m) > 5 and value > 10')(ctx(1))).toBe(false);
    expect(when('value / 0 > 1')(ctx(1))).toBeNull();
    expect(when('stddev(1m) > 1')(ctx(1, { wt: [0], wv: [1] }))).toBeNull();
    expect(when('anomaly() > 4')(ctx(1))).toBeNull();
  });

  it('window percentiles (selection) agree with sorting (property)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.double({ min: -1e6, max: 1e6, noNaN: true }), { minLength: 1, maxLength: 300 }),
        fc.integer({ min: 0, max: 100 }),
        fc.integer({ min: 1, max: 400 }),
        (values, rank, windowS) => {
          const wt = values.map((_, i) => i * 1000);
          const time = wt[wt.length - 1]!;
          const c = parseCondition(`percentile(${rank}, ${windowS}s) > 0`) as { when: { l: Expr } };
          const got = compileNum(c.when.l)(ctx(values[values.length - 1]!, { wt, wv: values.slice(), time }));
          const from = wt.findIndex((t) => t >= time - windowS * 1000);
          const want = percentile(values.slice(from), rank);
          expect(got).toBeCloseTo(want, 6);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('percentiles from the kept sorted window agree with sorting as a window grows and is trimmed (property)', () => {
    const num = (src: string) => compileNum((parseCondition(`${src} > 0`) as { when: { l: Expr } }).when.l);
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: -50, max: 50 }), { minLength: 1, maxLength: 150 }),
        fc.array(fc.integer({ min: 0, max: 30 }), { minLength: 1, maxLength: 10 }),
        fc.integer({ min: 0, max: 100 }),
        fc.integer({ min: 1, max: 40 }),
        fc.array(fc.integer({ min: 0, max: 4 }), { minLength: 1, maxLength: 10 }),
        (values, trims, rank, windowS, gaps) => {
          // Two windows over the same arrays (a rule with percentile(…, w) and median(2w), say).
          const p = num(`percentile(${rank}, ${windowS}s)`);
          const med = num(`median(${2 * windowS}s)`);
          const wt: number[] = [];
          const wv: number[] = [];
          let t = 0;
          for (const [i, v] of values.entries()) {
            t += 1000 * (1 + gaps[i % gaps.length]!);
            wt.push(t);
            wv.push(v);
            const trim = trims[i % trims.length]!;
            if (i % 7 === 6 && trim < wt.length) {
              wt.splice(0, trim);
              wv.splice(0, trim);
            }
            const c = ctx(v, { wt, wv, time: t });
            for (const [f, w, r] of [
              [p, windowS, rank],
              [med, 2 * windowS, 50],
            ] as const) {
              const from = wt.findIndex((x) => x >= t - w * 1000);
              expect(f(c)).toBeCloseTo(percentile(wv.slice(from), r), 9);
            }
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it('percentile, mean and stddev agree with direct computation over long slides, with and without a per-series cache (reloaded arrays reset it) (property)', () => {
    const num = (src: string) => compileNum((parseCondition(`${src} > 0`) as { when: { l: Expr } }).when.l);
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: -20, max: 20 }), { minLength: 300, maxLength: 800 }),
        fc.integer({ min: 0, max: 100 }),
        fc.integer({ min: 1, max: 30 }),
        fc.integer({ min: 40, max: 400 }),
        fc.boolean(),
        fc.integer({ min: 50, max: 400 }),
        (values, rank, windowS, keep, cached, reloadEvery) => {
          const p = num(`percentile(${rank}, ${windowS}s)`);
          const mean = num(`mean(${windowS}s)`);
          const sd = num(`stddev(${2 * windowS}s)`);
          const cache = cached ? newWindowCache() : undefined;
          let wt: number[] = [];
          let wv: number[] = [];
          for (const [i, v] of values.entries()) {
            const t = (i + 1) * 1000;
            // A state read again from the store, as another writer left it: new arrays, other values.
            if (i % reloadEvery === reloadEvery - 1) {
              wt = wt.slice();
              wv = wv.map((x) => x + 1);
            }
            wt.push(t);
            wv.push(v);
            // The engine's way: the array's head is dropped in bulk, at most `keep` samples are kept.
            if (wt.length > keep) {
              wt.splice(0, wt.length - keep);
              wv.splice(0, wv.length - keep);
            }
            const c = ctx(v, { wt, wv, time: t, cache });
            const from = wt.findIndex((x) => x >= t - windowS * 1000);
            expect(p(c)).toBeCloseTo(percentile(wv.slice(from), rank), 9);
            const xs = wv.slice(from);
            expect(mean(c)).toBeCloseTo(xs.reduce((a, b) => a + b, 0) / xs.length, 9);
            const from2 = wt.findIndex((x) => x >= t - 2 * windowS * 1000);
            const want = stddev(wv, from2, wv.length);
            if (Number.isNaN(want)) expect(sd(c)).toBeNaN();
            else expect(sd(c)).toBeCloseTo(want, 6);
          }
        },
      ),
      { numRuns: 60 },
    );
  });

  it('mean, stddev and zscore from cached prefix sums agree with direct sums as a window grows and is trimmed (property)', () => {
    const num = (src: string) => compileNum((parseCondition(`${src} > 0`) as { when: { l: Expr } }).when.l);
    const mean = num('mean(20s)');
    const sd = num('stddev(20s)');
    const z = num('zscore(20s)');
    fc.assert(
      fc.property(
        fc.array(fc.double({ min: -1e4, max: 1e4, noNaN: true }), { minLength: 1, maxLength: 120 }),
        fc.array(fc.integer({ min: 0, max: 30 }), { minLength: 1, maxLength: 10 }),
        (values, trims) => {
          const wt: number[] = [];
          const wv: number[] = [];
          for (const [i, v] of values.entries()) {
            wt.push(i * 1000);
            wv.push(v);
            const trim = trims[i % trims.length]!;
            if (i % 7 === 6 && trim < wt.length) {
              wt.splice(0, trim);
              wv.splice(0, trim);
            }
            const c = ctx(v, { wt, wv, time: i * 1000 });
            const from = wt.findIndex((t) => t >= i * 1000 - 20_000);
            const xs = wv.slice(from);
            const m = xs.reduce((a, b) => a + b, 0) / xs.length;
            expect(mean(c)).toBeCloseTo(m, 6);
            const want = stddev(wv, from, wv.length);
            if (Number.isNaN(want)) expect(sd(c)).toBeNaN();
            else expect(Math.abs(sd(c) - want)).toBeLessThan(1e-6 * Math.max(1, want) + 1e-6);
            const before = wv.slice(from, -1);
            if (before.length >= 2) {
              const bm = before.reduce((a, b) => a + b, 0) / before.length;
              const bs = stddev(before, 0, before.length);
              const got = z(c);
              if (bs > 1e-3) expect(got).toBeCloseTo((v - bm) / bs, 4);
            }
          }
        },
      ),
      { numRuns: 200 },
    );
  });
});
