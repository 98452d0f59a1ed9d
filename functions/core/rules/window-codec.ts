/**
 * The stored form of a rule state's window (ADR 0016 amendment 10): one binary value instead of two
 * lists of numbers. As DynamoDB lists, a 5-minute window of 1 Hz readings (300 samples) cost ~400 µs of
 * CPU per state to marshal and serialize (each number an `{N: "…"}` string) and a 14.6 KiB request —
 * per series, per batch. Binary it is 3 KB, one base64 string: 30 µs and 4.4 KiB with the state's
 * other fields.
 *
 * Format (little-endian), version 1:
 *   u8 format (1) · varint n · u8 time encoding · times · n × f64 values
 *   time encoding 0: f64 first time, then n−1 varint deltas (integer milliseconds, ascending times);
 *   time encoding 1: n × f64 times (otherwise: a time that is not a safe integer — fractional, NaN,
 *   ±Infinity, beyond 2^53 — a time before the one preceding it, or −0 after the first).
 * Values stay f64: exact, as the window functions need them.
 */
import { DecodeError } from '../errors.js';

const FORMAT = 1;
const DELTAS = 0;
const RAW = 1;
const MAX_SAMPLES = 1_000_000;

const bad = (message: string) => new DecodeError('RULE_STATE_WINDOW', message, { field: 'w' });

/** Encodes a window (times ascending, one value per time). */
export function encodeWindow(times: ArrayLike<number>, values: ArrayLike<number>): Uint8Array {
  const n = times.length;
  if (values.length !== n) {
    throw new Error(`internal: window has ${n} times and ${values.length} values`);
  }
  // Every time a safe integer and none before the last: each delta, and each sum of them on decoding,
  // is then exact. The deltas' varint bytes are counted on the way (the value is allocated once, exact).
  let deltas = true;
  let deltaBytes = 0;
  for (let i = 0; i < n && deltas; i++) {
    const t = times[i]!;
    // (−0 after the first time would come back as +0 from a delta of 0.)
    if (!Number.isSafeInteger(t) || (i > 0 && Object.is(t, -0))) deltas = false;
    else if (i > 0) {
      const d = t - times[i - 1]!;
      if (!(d >= 0 && d <= Number.MAX_SAFE_INTEGER)) deltas = false;
      else deltaBytes += varintLength(d);
    }
  }
  const timeBytes = n === 0 ? 0 : deltas ? 8 + deltaBytes : 8 * n;
  const bytes = new Uint8Array(1 + varintLength(n) + 1 + timeBytes + 8 * n);
  let p = 0;
  bytes[p++] = FORMAT;
  p = writeVarint(bytes, p, n);
  bytes[p++] = deltas ? DELTAS : RAW;
  if (deltas && n > 0) {
    p = putFloat64s(bytes, p, times, 0, 1);
    for (let i = 1; i < n; i++) p = writeVarint(bytes, p, times[i]! - times[i - 1]!);
  } else {
    p = putFloat64s(bytes, p, times, 0, n);
  }
  putFloat64s(bytes, p, values, 0, n);
  return bytes;
}

/** Little-endian f64s, copied as a block (the host's order is little-endian on every Lambda and PC). */
function putFloat64s(bytes: Uint8Array, p: number, xs: ArrayLike<number>, from: number, n: number): number {
  const block = new Float64Array(n);
  for (let i = 0; i < n; i++) block[i] = xs[from + i]!;
  if (LITTLE_ENDIAN) bytes.set(new Uint8Array(block.buffer), p);
  else {
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    for (let i = 0; i < n; i++) view.setFloat64(p + 8 * i, block[i]!, true);
  }
  return p + 8 * n;
}

/** n little-endian f64s from byte p, pushed onto `into`. */
function getFloat64s(bytes: Uint8Array, p: number, n: number, into: number[]): void {
  if (LITTLE_ENDIAN) {
    // A copy of exactly these bytes into a buffer of their own (aligned): `bytes` may be a view into a
    // larger one (the SDK's responses are), or a Buffer, whose `slice` is a view, not a copy.
    const block = new Float64Array(new Uint8Array(bytes.buffer, bytes.byteOffset + p, 8 * n).slice().buffer);
    for (let i = 0; i < n; i++) into.push(block[i]!);
  } else {
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    for (let i = 0; i < n; i++) into.push(view.getFloat64(p + 8 * i, true));
  }
}

const LITTLE_ENDIAN = new Uint8Array(new Float64Array([1]).buffer)[7] === 0x3f;

/** Decodes what encodeWindow wrote; a malformed value is a DecodeError (RULE_STATE_WINDOW) naming what is wrong. */
export function decodeWindow(bytes: Uint8Array): { wt: number[]; wv: number[] } {
  const end = bytes.length;
  let p = 0;
  const need = (k: number, what: string) => {
    if (p + k > end) throw bad(`window truncated at byte ${p} (${what})`);
  };
  need(1, 'format');
  const format = bytes[p++];
  if (format !== FORMAT) throw bad(`window format ${format} is not known`);
  const n = readVarint(bytes, p);
  p = varintEnd;
  if (n > MAX_SAMPLES) throw bad(`window claims ${n} samples`);
  need(1, 'time encoding');
  const mode = bytes[p++];
  if (mode !== DELTAS && mode !== RAW) throw bad(`window time encoding ${mode} is not known`);
  // Arrays filled by push stay packed (the engine goes on pushing into them).
  const wt: number[] = [];
  if (mode === DELTAS && n > 0) {
    need(8, 'first time');
    getFloat64s(bytes, p, 1, wt);
    p += 8;
    let t = wt[0]!;
    if (!Number.isSafeInteger(t)) throw bad(`window first time ${t} is not an integer (time encoding 0)`);
    for (let i = 1; i < n; i++) {
      t += readVarint(bytes, p);
      p = varintEnd;
      if (t > Number.MAX_SAFE_INTEGER) throw bad(`window time ${i} is beyond 2^53 (time encoding 0)`);
      wt.push(t);
    }
  } else if (mode === RAW) {
    need(8 * n, 'times');
    getFloat64s(bytes, p, n, wt);
    p += 8 * n;
  }
  need(8 * n, 'values');
  const wv: number[] = [];
  getFloat64s(bytes, p, n, wv);
  p += 8 * n;
  if (p !== end) throw bad(`window has ${end - p} bytes after its values`);
  return { wt, wv };
}

/** Unsigned LEB128 of an integer in [0, 2^53) (arithmetic, not 32-bit shifts). */
function writeVarint(bytes: Uint8Array, p: number, v: number): number {
  while (v >= 0x80) {
    bytes[p++] = (v % 0x80) | 0x80;
    v = Math.floor(v / 0x80);
  }
  bytes[p++] = v;
  return p;
}

function varintLength(v: number): number {
  let k = 1;
  while (v >= 0x80) {
    v = Math.floor(v / 0x80);
    k++;
  }
  return k;
}

/** Where the last readVarint stopped (a module variable: no tuple allocated per sample). */
let varintEnd = 0;

function readVarint(bytes: Uint8Array, p: number): number {
  let v = 0;
  let scale = 1;
  for (let k = 0; k < 8; k++) {
    if (p >= bytes.length) throw bad(`window truncated at byte ${p} (varint)`);
    const b = bytes[p++]!;
    v += (b & 0x7f) * scale;
    if (b < 0x80) {
      varintEnd = p;
      return v;
    }
    scale *= 0x80;
  }
  throw bad(`window varint longer than 8 bytes at byte ${p}`);
}
