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
  /**
   * Where the window functions keep their incremental structures for this series (the engine keeps one
   * per series). Without it they are kept per window array in a WeakMap (same results, one lookup more).
   */
  cache?: WindowCache;
  /**
   * The start of the window beginning at `wsFrom` (the first index of `wt` at or after it), when the
   * caller keeps it incrementally (the engine, for its rule's longest window): a window function whose
   * own start `time - w` equals `wsFrom` takes it instead of searching. Absent: searched.
   */
  ws?: number;
  wsFrom?: number;
}

/** The incremental structures of one series' window (prefix sums, sorted copies per window length). */
export interface WindowCache {
  /** The window array they were built over: another one (a reloaded or restarted state) resets them. */
  wv: number[] | undefined;
  sums: Sums | undefined;
  /** Sorted windows and their lengths (ms), side by side (usually one). */
  sortedMs: number[];
  sorted: SortedWindow[];
}

export const newWindowCache = (): WindowCache => ({
  wv: undefined,
  sums: undefined,
  sortedMs: [],
  sorted: [],
});

const BY_ARRAY = new WeakMap<number[], WindowCache>();

function windowCache(c: EvalContext): WindowCache {
  let k = c.cache;
  if (k === undefined) {
    k = BY_ARRAY.get(c.wv);
    if (k === undefined) {
      k = newWindowCache();
      BY_ARRAY.set(c.wv, k);
    }
  }
  if (k.wv !== c.wv) {
    k.wv = c.wv;
    k.sums = undefined;
    k.sortedMs.length = 0;
    k.sorted.length = 0;
  }
  return k;
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
      if (e.r.k === 'num') return compareConst(e.op, e.l, e.r.v);
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

/**
 * `x op k` with a number literal `k` (most conditions): one closure, the comparison inline. For `value`
 * and for a call of a whitelisted function (`mean(1m) > 85`, `anomaly() > 5`, `abs(delta()) > 39`) the
 * number is computed inside that closure by a top-level function of the context, called from a call site
 * of its own: V8 inlines it, so the number is never boxed and there is one closure call per evaluation.
 * (A closure returning the number to a shared comparison closure — the general form below — was a second
 * call through a megamorphic site, every compared number a heap allocation.) Same results as the general
 * form: NaN on either side is unknown.
 */
function compareConst(op: CompareOp, left: Expr, k: number): BoolFn {
  if (Number.isNaN(k)) return () => null;
  if (left.k === 'value') {
    switch (op) {
      case '>':
        return (c) => (Number.isNaN(c.value) ? null : c.value > k);
      case '>=':
        return (c) => (Number.isNaN(c.value) ? null : c.value >= k);
      case '<':
        return (c) => (Number.isNaN(c.value) ? null : c.value < k);
      case '<=':
        return (c) => (Number.isNaN(c.value) ? null : c.value <= k);
      case '==':
        return (c) => (Number.isNaN(c.value) ? null : c.value === k);
      case '!=':
        return (c) => (Number.isNaN(c.value) ? null : c.value !== k);
    }
  }
  const o = OP_CODE[op];
  if (left.k === 'call') {
    const w = left.window?.ms ?? 0;
    switch (left.fn) {
      case 'abs': {
        const f = compileNum(left.args[0]!);
        return (c) => compareTo(o, Math.abs(f(c)), k);
      }
      case 'delta':
        return (c) => compareTo(o, deltaOf(c), k);
      case 'rate':
        return (c) => compareTo(o, rateOf(c, w), k);
      case 'anomaly':
        return (c) => compareTo(o, c.score, k);
      case 'count':
        return (c) => compareTo(o, countOf(c, w), k);
      case 'mean':
        return (c) => compareTo(o, meanOf(c, w), k);
      case 'stddev':
        return (c) => compareTo(o, stddevOf(c, w), k);
      case 'zscore':
        return (c) => compareTo(o, zscoreOf(c, w), k);
      case 'min':
        return (c) => compareTo(o, minOf(c, w), k);
      case 'max':
        return (c) => compareTo(o, maxOf(c, w), k);
      case 'median':
        return (c) => compareTo(o, sortedPercentile(c, c.time - w, w, 50), k);
      case 'percentile': {
        const rank = (left.args[0] as { v: number }).v;
        return (c) => compareTo(o, sortedPercentile(c, c.time - w, w, rank), k);
      }
    }
  }
  const l = compileNum(left);
  return (c) => compareTo(o, l(c), k);
}

const OP_CODE: Record<CompareOp, number> = { '>': 0, '>=': 1, '<': 2, '<=': 3, '==': 4, '!=': 5 };

/** `a op k` (op an OP_CODE), unknown when `a` is NaN. Small: inlined where it is called. */
function compareTo(op: number, a: number, k: number): boolean | null {
  if (Number.isNaN(a)) return null;
  switch (op) {
    case 0:
      return a > k;
    case 1:
      return a >= k;
    case 2:
      return a < k;
    case 3:
      return a <= k;
    case 4:
      return a === k;
    default:
      return a !== k;
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

/** The window's start for `from`: the caller's incremental one when it is for `from`, else searched. */
const startOf = (c: EvalContext, from: number): number =>
  c.wsFrom === from ? c.ws! : windowStart(c.wt, from);

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
      return (c) => deltaOf(c);
    case 'rate':
      return (c) => rateOf(c, w);
    case 'anomaly':
      return (c) => c.score;
    case 'count':
      return (c) => countOf(c, w);
    case 'mean':
      return (c) => meanOf(c, w);
    case 'stddev':
      return (c) => stddevOf(c, w);
    case 'zscore':
      return (c) => zscoreOf(c, w);
    case 'min':
      return (c) => minOf(c, w);
    case 'max':
      return (c) => maxOf(c, w);
    case 'median':
      return (c) => sortedPercentile(c, c.time - w, w, 50);
    case 'percentile': {
      const rank = (args[0] as { v: number }).v;
      return (c) => sortedPercentile(c, c.time - w, w, rank);
    }
  }
}

// The whitelisted functions over the context (w: the window in ms), shared by compileCall and
// compareConst.

function deltaOf(c: EvalContext): number {
  return c.prevValue === undefined ? Number.NaN : c.value - c.prevValue;
}

function rateOf(c: EvalContext, w: number): number {
  return c.prevValue === undefined || c.prevTime === undefined || c.time <= c.prevTime
    ? Number.NaN
    : ((c.value - c.prevValue) / (c.time - c.prevTime)) * w;
}

function countOf(c: EvalContext, w: number): number {
  return c.wt.length - startOf(c, c.time - w);
}

function meanOf(c: EvalContext, w: number): number {
  const s = startOf(c, c.time - w);
  const n = c.wv.length - s;
  if (n === 0) return Number.NaN;
  const p = sums(c);
  return p.ref + range(p.s1, s, c.wv.length) / n;
}

function stddevOf(c: EvalContext, w: number): number {
  const s = startOf(c, c.time - w);
  return sd(sums(c), s, c.wv.length);
}

/** The current reading against the window before it. */
function zscoreOf(c: EvalContext, w: number): number {
  const end = c.wv.length - 1;
  const s = startOf(c, c.time - w);
  if (end - s < 2) return Number.NaN;
  const p = sums(c);
  const mean = p.ref + range(p.s1, s, end) / (end - s);
  const dev = sd(p, s, end);
  return dev === 0 || Number.isNaN(dev) ? Number.NaN : (c.value - mean) / dev;
}

function minOf(c: EvalContext, w: number): number {
  let m = Number.POSITIVE_INFINITY;
  for (let i = startOf(c, c.time - w); i < c.wv.length; i++) if (c.wv[i]! < m) m = c.wv[i]!;
  return m === Number.POSITIVE_INFINITY ? Number.NaN : m;
}

function maxOf(c: EvalContext, w: number): number {
  let m = Number.NEGATIVE_INFINITY;
  for (let i = startOf(c, c.time - w); i < c.wv.length; i++) if (c.wv[i]! > m) m = c.wv[i]!;
  return m === Number.NEGATIVE_INFINITY ? Number.NaN : m;
}

/**
 * A window's values kept sorted, per (series, window length), updated as the window slides: each
 * reading inserts one value and removes those that left (binary search + shift), so a percentile costs
 * O(n) moves of a typed array at worst and no copy or selection. It keeps its own copy of the samples in
 * time order, in a ring (the window array may lose its head before the sorted copy learns of it).
 * Samples are identified by time: a window's times strictly ascend (the engine skips readings at or
 * before the series' last time). Anything unexpected (times going back) rebuilds it from the window.
 */
interface SortedWindow {
  /** Samples in the structure, in time order: ring slots head, head + 1, ... (mod capacity), n of them. */
  rt: Float64Array;
  rv: Float64Array;
  head: number;
  /** The values of those n samples, ascending: sorted[0, n). */
  sorted: Float64Array;
  n: number;
  /** The window start of the last call (starts only move forward; one further back rebuilds). */
  start: number;
}

const newSortedWindow = (start: number): SortedWindow => ({
  rt: new Float64Array(64),
  rv: new Float64Array(64),
  head: 0,
  sorted: new Float64Array(64),
  n: 0,
  start,
});

/** Appends a sample to the ring (its capacity, a power of two, doubles when full; so does `sorted`'s). */
function ringPush(sw: SortedWindow, t: number, v: number): void {
  const cap = sw.rt.length;
  if (sw.n === cap) {
    const rt = new Float64Array(cap * 2);
    const rv = new Float64Array(cap * 2);
    for (let i = 0; i < sw.n; i++) {
      rt[i] = sw.rt[(sw.head + i) & (cap - 1)]!;
      rv[i] = sw.rv[(sw.head + i) & (cap - 1)]!;
    }
    sw.rt = rt;
    sw.rv = rv;
    sw.head = 0;
    const sorted = new Float64Array(cap * 2);
    sorted.set(sw.sorted.subarray(0, sw.n));
    sw.sorted = sorted;
  }
  const at = (sw.head + sw.n) & (sw.rt.length - 1);
  sw.rt[at] = t;
  sw.rv[at] = v;
}

function sortedPercentile(c: EvalContext, from: number, w: number, rank: number): number {
  const wt = c.wt;
  const wv = c.wv;
  const k = windowCache(c);
  const ms = k.sortedMs;
  let at = 0;
  while (at < ms.length && ms[at] !== w) at++;
  let sw = at < ms.length ? k.sorted[at] : undefined;
  const len = wt.length;
  const lastIn =
    sw && sw.n > 0 ? sw.rt[(sw.head + sw.n - 1) & (sw.rt.length - 1)]! : Number.NEGATIVE_INFINITY;
  // The start: the window's, or the oldest sample the array still holds (it may have dropped more).
  const start = len > 0 && wt[0]! > from ? wt[0]! : from;
  if (!sw || start < sw.start || (len > 0 && wt[len - 1]! < lastIn) || (len === 0 && sw.n > 0)) {
    sw = newSortedWindow(start);
    if (at === ms.length) {
      ms.push(w);
      k.sorted.push(sw);
    } else k.sorted[at] = sw;
  }
  sw.start = start;
  // New samples at the end (usually one): those after the last one in the structure.
  const newest = sw.n > 0 ? lastIn : Number.NEGATIVE_INFINITY;
  let i = len;
  while (i > 0 && wt[i - 1]! > newest) i--;
  for (; i < len; i++) {
    if (wt[i]! < start) continue;
    const v = wv[i]!;
    ringPush(sw, wt[i]!, v);
    // The usual slide, one sample in and the oldest out: one move of the values between the two.
    if (sw.rt[sw.head]! < start) {
      sortedReplace(sw, sw.rv[sw.head]!, v);
      sw.head = (sw.head + 1) & (sw.rt.length - 1);
    } else {
      sortedInsert(sw, v);
      sw.n++;
    }
  }
  // Samples that left the window.
  while (sw.n > 0 && sw.rt[sw.head]! < start) {
    sortedRemove(sw, sw.rv[sw.head]!);
    sw.head = (sw.head + 1) & (sw.rt.length - 1);
    sw.n--;
  }
  const n = sw.n;
  if (n === 0) return Number.NaN;
  const h = ((n - 1) * rank) / 100;
  const lo = Math.floor(h);
  const a = sw.sorted[lo]!;
  if (h === lo) return a;
  return a + (h - lo) * (sw.sorted[lo + 1]! - a);
}

/** Inserts `v` into sorted[0, n) (the caller counts it). */
function sortedInsert(sw: SortedWindow, v: number): void {
  const a = sw.sorted;
  let lo = 0;
  let hi = sw.n;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (a[mid]! <= v) lo = mid + 1;
    else hi = mid;
  }
  a.copyWithin(lo + 1, lo, sw.n);
  a[lo] = v;
}

/** Removes `out` (present) and inserts `v`: moves only the values between their two positions. */
function sortedReplace(sw: SortedWindow, out: number, v: number): void {
  const a = sw.sorted;
  const n = sw.n;
  // Position of `out` (its first occurrence).
  let lo = 0;
  let hi = n;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (a[mid]! < out) lo = mid + 1;
    else hi = mid;
  }
  let p = lo;
  if (v >= out) {
    // Shift left the values in (p, q) where q is the first value > v, then place v at q - 1.
    let q = p + 1;
    while (q < n && a[q]! <= v) {
      a[q - 1] = a[q]!;
      q++;
    }
    a[q - 1] = v;
  } else {
    // Shift right the values greater than v below p, then place v.
    while (p > 0 && a[p - 1]! > v) {
      a[p] = a[p - 1]!;
      p--;
    }
    a[p] = v;
  }
}

/** Removes `v` (present) from sorted[0, n) (the caller counts it). */
function sortedRemove(sw: SortedWindow, v: number): void {
  const a = sw.sorted;
  let lo = 0;
  let hi = sw.n;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (a[mid]! < v) lo = mid + 1;
    else hi = mid;
  }
  // a[lo] === v: every value removed was inserted.
  a.copyWithin(lo, lo + 1, sw.n);
}

let scratch = new Float64Array(1024);

/** Percentile of xs[from..] by selection (the reference for the sorted windows) on a scratch copy: O(n), no allocation, xs untouched. */
export function windowPercentile(xs: number[], from: number, rank: number): number {
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

/**
 * Prefix sums of a window's values (shifted by `ref`, the first value when built, against
 * cancellation), kept per series (EvalContext.cache): mean, stddev and zscore cost O(log n), not O(n).
 * Windows only grow at the end (push) or lose their head (which moves wt[0]): the sums are extended in
 * the first case and rebuilt in the second, in place in their typed arrays (capacity doubles as needed),
 * so a window that slides allocates nothing. A rebuild gives the same numbers as fresh sums would.
 */
interface Sums {
  t0: number;
  ref: number;
  /** Prefix entries in use: n + 1 for n values summed. */
  len: number;
  /** s1[i] = Σ_{j < i} (v_j − ref); s2 likewise of squares; entries [0, len). */
  s1: Float64Array;
  s2: Float64Array;
}

function sums(c: EvalContext): Sums {
  const wt = c.wt;
  const wv = c.wv;
  const k = windowCache(c);
  let p = k.sums;
  if (!p) {
    const cap = Math.max(64, wv.length + 1);
    p = { t0: wt[0]!, ref: wv[0] ?? 0, len: 1, s1: new Float64Array(cap), s2: new Float64Array(cap) };
    k.sums = p;
  } else if (p.t0 !== wt[0] || p.len - 1 > wv.length) {
    // The head moved (or the window shrank): rebuilt in place, against the new first value.
    p.t0 = wt[0]!;
    p.ref = wv[0] ?? 0;
    p.len = 1;
  }
  const n = wv.length;
  if (p.len - 1 < n) {
    if (p.s1.length < n + 1) {
      const cap = Math.max(n + 1, p.s1.length * 2);
      const s1 = new Float64Array(cap);
      const s2 = new Float64Array(cap);
      s1.set(p.s1.subarray(0, p.len));
      s2.set(p.s2.subarray(0, p.len));
      p.s1 = s1;
      p.s2 = s2;
    }
    const s1 = p.s1;
    const s2 = p.s2;
    const ref = p.ref;
    for (let i = p.len - 1; i < n; i++) {
      const d = wv[i]! - ref;
      s1[i + 1] = s1[i]! + d;
      s2[i + 1] = s2[i]! + d * d;
    }
    p.len = n + 1;
  }
  return p;
}

const range = (prefix: Float64Array, from: number, to: number) => prefix[to]! - prefix[from]!;

/** Sample standard deviation of the window's values [from, to) from prefix sums (NaN below two). */
function sd(p: Sums, from: number, to: number): number {
  const n = to - from;
  if (n < 2) return Number.NaN;
  const a = range(p.s1, from, to);
  const b = range(p.s2, from, to);
  return Math.sqrt(Math.max(0, (b - (a * a) / n) / (n - 1)));
}

/** Sample standard deviation of xs[from, to) (NaN below two samples), two passes: the reference. */
export function stddev(xs: number[], from: number, to: number): number {
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
