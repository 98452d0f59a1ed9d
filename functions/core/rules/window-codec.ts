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
 *   time encoding 1: n × f64 times (any time that is not an integer, or a gap beyond 2^53).
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
  let deltas = true;
  for (let i = 0; i < n && deltas; i++) {
    const t = times[i]!;
    // Every time a safe integer and none before the last: each delta, and each sum of them on decoding,
    // is then exact.
    if (!Number.isSafeInteger(t)) deltas = false;
    else if (i > 0 && !(t >= times[i - 1]! && t - times[i - 1]! <= Number.MAX_SAFE_INTEGER)) deltas = false;
  }
  // Upper bound: varints of at most 8 bytes (deltas ≤ 2^53 − 1: 8 groups of 7 bits).
  const bytes = new Uint8Array(1 + 10 + 1 + (deltas ? 8 + 8 * Math.max(0, n - 1) : 8 * n) + 8 * n);
  const view = new DataView(bytes.buffer);
  let p = 0;
  bytes[p++] = FORMAT;
  p = writeVarint(bytes, p, n);
  bytes[p++] = deltas ? DELTAS : RAW;
  if (deltas && n > 0) {
    view.setFloat64(p, times[0]!, true);
    p += 8;
    for (let i = 1; i < n; i++) p = writeVarint(bytes, p, times[i]! - times[i - 1]!);
  } else {
    for (let i = 0; i < n; i++, p += 8) view.setFloat64(p, times[i]!, true);
  }
  for (let i = 0; i < n; i++, p += 8) view.setFloat64(p, values[i]!, true);
  return bytes.subarray(0, p);
}

/** Decodes what encodeWindow wrote; a malformed value is a DecodeError (RULE_STATE_WINDOW) naming what is wrong. */
export function decodeWindow(bytes: Uint8Array): { wt: number[]; wv: number[] } {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const end = bytes.length;
  let p = 0;
  const need = (k: number, what: string) => {
    if (p + k > end) throw bad(`window truncated at byte ${p} (${what})`);
  };
  need(1, 'format');
  const format = bytes[p++];
  if (format !== FORMAT) throw bad(`window format ${format} is not known`);
  const [n, afterN] = readVarint(bytes, p);
  p = afterN;
  if (n > MAX_SAMPLES) throw bad(`window claims ${n} samples`);
  need(1, 'time encoding');
  const mode = bytes[p++];
  if (mode !== DELTAS && mode !== RAW) throw bad(`window time encoding ${mode} is not known`);
  const wt = new Array<number>(n);
  if (mode === DELTAS && n > 0) {
    need(8, 'first time');
    let t = view.getFloat64(p, true);
    p += 8;
    wt[0] = t;
    for (let i = 1; i < n; i++) {
      const [d, next] = readVarint(bytes, p);
      p = next;
      t += d;
      wt[i] = t;
    }
  } else if (mode === RAW) {
    need(8 * n, 'times');
    for (let i = 0; i < n; i++, p += 8) wt[i] = view.getFloat64(p, true);
  }
  need(8 * n, 'values');
  const wv = new Array<number>(n);
  for (let i = 0; i < n; i++, p += 8) wv[i] = view.getFloat64(p, true);
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

function readVarint(bytes: Uint8Array, p: number): [number, number] {
  let v = 0;
  let scale = 1;
  for (let k = 0; k < 8; k++) {
    if (p >= bytes.length) throw bad(`window truncated at byte ${p} (varint)`);
    const b = bytes[p++]!;
    v += (b & 0x7f) * scale;
    if (b < 0x80) return [v, p];
    scale *= 0x80;
  }
  throw bad(`window varint longer than 8 bytes at byte ${p}`);
}
