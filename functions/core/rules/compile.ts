/**
 * Turns a checked expression tree into closures. The closures see only an `EvalContext`: the reading's
 * value and time, the previous reading of the series, the series' window and its anomaly score.
 * There is no way to name anything else: the tree has no member access, no free identifiers and no
 * calls outside the whitelist (syntax.ts), and nothing is ever handed to eval/Function.
 *
 * Numbers follow IEEE arithmetic. A function without enough data (stddev of one sample, rate without
 * a previous reading) yields NaN; a comparison involving NaN is *unknown* (null), and the logic is
 * three-valued (Kleene): `unknown and false` is false, `unknown or true` is true, `not unknown` is
 * unknown. The engine leaves a series' state unchanged when a condition is unknown.
 */
import type { CompareOp, Expr, FunctionName } from './syntax.js';

export interface EvalContext {
  value: number;
  time: number;
  /** Previous reading of the series (undefined for the first). */
  prevValue: number | undefined;
  prevTime: number | undefined;
  /** The series' window, ascending time, the current reading last. */
  wt: number[];
  wv: number[];
  /** Anomaly score of the current reading (NaN when no detector runs or it is warming up). */
  score: number;
}

export type NumFn = (c: EvalContext) => number;
export type BoolFn = (c: EvalContext) => boolean | null;

export function compileBool(e: Expr): BoolFn {
  switch (e.k) {
    case 'bool': {
      const v = e.v;
      return () => v;
    }
    case 'not': {
      const f = compileBool(e.e);
      return (c) => {
        const v = f(c);
        return v === null ? null : !v;
      };
    }
    case 'logic': {
      const l = compileBool(e.l);
      const r = compileBool(e.r);
      if (e.op === 'and') {
        return (c) => {
          const a = l(c);
          if (a === false) return false;
          const b = r(c);
          if (b === false) return false;
          return a === null || b === null ? null : true;
        };
      }
      return (c) => {
        const a = l(c);
        if (a === true) return true;
        const b = r(c);
        if (b === true) return true;
        return a === null || b === null ? null : false;
      };
    }
    case 'cmp': {
      if (e.l.k === 'bool' || e.l.k === 'not' || e.l.k === 'logic' || e.l.k === 'cmp') {
        const l = compileBool(e.l);
        const r = compileBool(e.r);
        const eq = e.op === '==';
        return (c) => {
          const a = l(c);
          const b = r(c);
          return a === null || b === null ? null : (a === b) === eq;
        };
      }
      const l = compileNum(e.l);
      const r = compileNum(e.r);
      const cmp = COMPARE[e.op];
      return (c) => {
        const a = l(c);
        const b = r(c);
        return Number.isNaN(a) || Number.isNaN(b) ? null : cmp(a, b);
      };
    }
    default:
      throw new Error(`internal: ${e.k} is not a boolean expression`);
  }
}

const COMPARE: Record<CompareOp, (a: number, b: number) => boolean> = {
  '>': (a, b) => a > b,
  '>=': (a, b) => a >= b,
  '<': (a, b) => a < b,
  '<=': (a, b) => a <= b,
  '==': (a, b) => a === b,
  '!=': (a, b) => a !== b,
};

export function compileNum(e: Expr): NumFn {
  switch (e.k) {
    case 'num': {
      const v = e.v;
      return () => v;
    }
    case 'value':
      return (c) => c.value;
    case 'neg': {
      const f = compileNum(e.e);
      return (c) => -f(c);
    }
    case 'arith': {
      const l = compileNum(e.l);
      const r = compileNum(e.r);
      switch (e.op) {
        case '+':
          return (c) => l(c) + r(c);
        case '-':
          return (c) => l(c) - r(c);
        case '*':
          return (c) => l(c) * r(c);
        case '/':
          // x/0 is NaN here (not ±Infinity): "no meaningful value" makes comparisons unknown.
          return (c) => {
            const d = r(c);
            return d === 0 ? Number.NaN : l(c) / d;
          };
        case '%':
          return (c) => l(c) % r(c);
      }
      break;
    }
    case 'call':
      return compileCall(e.fn, e.args, e.window?.ms);
    default:
      break;
  }
  throw new Error(`internal: ${e.k} is not a numeric expression`);
}

/** Index of the first sample at or after `from` (binary search; wt ascending). */
export function windowStart(wt: number[], from: number): number {
  let lo = 0;
  let hi = wt.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (wt[mid]! < from) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function compileCall(fn: FunctionName, args: Expr[], windowMs: number | undefined): NumFn {
  const w = windowMs ?? 0;
  switch (fn) {
    case 'abs': {
      const f = compileNum(args[0]!);
      return (c) => Math.abs(f(c));
    }
    case 'delta':
      return (c) => (c.prevValue === undefined ? Number.NaN : c.value - c.prevValue);
    case 'rate':
      return (c) =>
        c.prevValue === undefined || c.prevTime === undefined || c.time <= c.prevTime
          ? Number.NaN
          : ((c.value - c.prevValue) / (c.time - c.prevTime)) * w;
    case 'anomaly':
      return (c) => c.score;
    case 'count':
      return (c) => c.wt.length - windowStart(c.wt, c.time - w);
    case 'mean':
      return (c) => {
        const s = windowStart(c.wt, c.time - w);
        const n = c.wv.length - s;
        if (n === 0) return Number.NaN;
        let sum = 0;
        for (let i = s; i < c.wv.length; i++) sum += c.wv[i]!;
        return sum / n;
      };
    case 'stddev':
      return (c) => stddev(c.wv, windowStart(c.wt, c.time - w), c.wv.length);
    case 'zscore':
      // The current reading against the window before it.
      return (c) => {
        const end = c.wv.length - 1;
        const s = windowStart(c.wt, c.time - w);
        if (end - s < 2) return Number.NaN;
        let sum = 0;
        for (let i = s; i < end; i++) sum += c.wv[i]!;
        const mean = sum / (end - s);
        const sd = stddev(c.wv, s, end);
        return sd === 0 ? Number.NaN : (c.value - mean) / sd;
      };
    case 'min':
      return (c) => {
        let m = Number.POSITIVE_INFINITY;
        for (let i = windowStart(c.wt, c.time - w); i < c.wv.length; i++) if (c.wv[i]! < m) m = c.wv[i]!;
        return m === Number.POSITIVE_INFINITY ? Number.NaN : m;
      };
    case 'max':
      return (c) => {
        let m = Number.NEGATIVE_INFINITY;
        for (let i = windowStart(c.wt, c.time - w); i < c.wv.length; i++) if (c.wv[i]! > m) m = c.wv[i]!;
        return m === Number.NEGATIVE_INFINITY ? Number.NaN : m;
      };
    case 'median':
      return (c) => windowPercentile(c.wv, windowStart(c.wt, c.time - w), 50);
    case 'percentile': {
      const rank = (args[0] as { v: number }).v;
      return (c) => windowPercentile(c.wv, windowStart(c.wt, c.time - w), rank);
    }
  }
}

let scratch = new Float64Array(1024);

/** Percentile of xs[from..] by selection on a scratch copy: O(n), no allocation, xs untouched. */
function windowPercentile(xs: number[], from: number, rank: number): number {
  const n = xs.length - from;
  if (n <= 0) return Number.NaN;
  if (scratch.length < n) scratch = new Float64Array(Math.max(n, scratch.length * 2));
  for (let i = 0; i < n; i++) scratch[i] = xs[from + i]!;
  const h = ((n - 1) * rank) / 100;
  const lo = Math.floor(h);
  const a = select(scratch, n, lo);
  if (h === lo) return a;
  // The next order statistic is the minimum of the part right of lo (select partitions around it).
  let b = Number.POSITIVE_INFINITY;
  for (let i = lo + 1; i < n; i++) if (scratch[i]! < b) b = scratch[i]!;
  return a + (h - lo) * (b - a);
}

/** Hoare's selection: the k-th smallest of a[0, n); leaves a partitioned around position k. */
function select(a: Float64Array, n: number, k: number): number {
  let left = 0;
  let right = n - 1;
  while (right > left) {
    const pivot = a[(left + right) >> 1]!;
    let i = left;
    let j = right;
    while (i <= j) {
      while (a[i]! < pivot) i++;
      while (a[j]! > pivot) j--;
      if (i <= j) {
        const t = a[i]!;
        a[i] = a[j]!;
        a[j] = t;
        i++;
        j--;
      }
    }
    if (k <= j) right = j;
    else if (k >= i) left = i;
    else break;
  }
  return a[k]!;
}

/** Sample standard deviation of xs[from, to) (NaN below two samples). */
function stddev(xs: number[], from: number, to: number): number {
  const n = to - from;
  if (n < 2) return Number.NaN;
  let sum = 0;
  for (let i = from; i < to; i++) sum += xs[i]!;
  const mean = sum / n;
  let sq = 0;
  for (let i = from; i < to; i++) sq += (xs[i]! - mean) ** 2;
  return Math.sqrt(sq / (n - 1));
}

/** Linear interpolation between closest ranks (the "R-7" definition); sorts `xs` in place. */
export function percentile(xs: number[], rank: number): number {
  if (xs.length === 0) return Number.NaN;
  xs.sort((a, b) => a - b);
  const h = ((xs.length - 1) * rank) / 100;
  const lo = Math.floor(h);
  const hi = Math.min(xs.length - 1, lo + 1);
  return xs[lo]! + (h - lo) * (xs[hi]! - xs[lo]!);
}

/** What a condition needs kept per series: the longest window, the previous reading, a detector. */
export function requirements(exprs: Array<Expr | undefined>): { windowMs: number; anomaly: boolean } {
  let windowMs = 0;
  let anomaly = false;
  const visit = (e: Expr): void => {
    switch (e.k) {
      case 'neg':
      case 'not':
        visit(e.e);
        break;
      case 'arith':
      case 'cmp':
      case 'logic':
        visit(e.l);
        visit(e.r);
        break;
      case 'call':
        if (e.fn === 'anomaly') anomaly = true;
        if (e.window && e.fn !== 'rate') windowMs = Math.max(windowMs, e.window.ms);
        e.args.forEach(visit);
        break;
      default:
        break;
    }
  };
  for (const e of exprs) if (e) visit(e);
  return { windowMs, anomaly };
}
