/**
 * Sparkplug B array datatypes 22–34, carried in `bytes_value` (spec Ch.6 "Datatype Details"):
 * fixed-width elements packed little-endian; BooleanArray = uint32 LE element count followed by the
 * bits packed MSB-first; StringArray = UTF-8 strings each terminated by NUL; DateTimeArray = int64 LE
 * epoch ms. 64-bit elements are numbers when safe, otherwise bigint (no precision loss).
 */
import { DecodeError, ValidationError } from '../errors.js';
import { decodeUtf8, ErrorCode } from './codec/reader.js';
import { DataType, type SpValue } from './types.js';

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);
const MIN_SAFE = -MAX_SAFE;

/** A 64-bit integer as a number when exactly representable (|v| ≤ 2^53−1), else the bigint. */
export function toSafeInteger(v: bigint): number | bigint {
  return v >= MIN_SAFE && v <= MAX_SAFE ? Number(v) : v;
}

const WIDTH: Record<number, number> = {
  [DataType.Int8Array]: 1,
  [DataType.UInt8Array]: 1,
  [DataType.Int16Array]: 2,
  [DataType.UInt16Array]: 2,
  [DataType.Int32Array]: 4,
  [DataType.UInt32Array]: 4,
  [DataType.FloatArray]: 4,
  [DataType.Int64Array]: 8,
  [DataType.UInt64Array]: 8,
  [DataType.DoubleArray]: 8,
  [DataType.DateTimeArray]: 8,
};

export function isArrayType(datatype: number): boolean {
  return datatype >= DataType.Int8Array && datatype <= DataType.DateTimeArray;
}

function layoutError(field: string, message: string): DecodeError {
  return new DecodeError(ErrorCode.arrayLayout, `Sparkplug ${field}: ${message}`, { field });
}

/** Decodes the bytes of an array datatype into its elements. */
export function decodeArray(datatype: number, bytes: Uint8Array, field: string): SpValue[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = bytes.length;
  if (datatype === DataType.BooleanArray) {
    if (n < 4) throw layoutError(field, `BooleanArray needs a 4-byte count, got ${n} bytes`);
    const count = view.getUint32(0, true);
    const need = 4 + Math.ceil(count / 8);
    if (n !== need) {
      throw layoutError(field, `BooleanArray of ${count} elements needs ${need} bytes, got ${n}`);
    }
    const out: boolean[] = new Array(count);
    for (let i = 0; i < count; i++) out[i] = ((bytes[4 + (i >> 3)]! >> (7 - (i & 7))) & 1) === 1;
    return out;
  }
  if (datatype === DataType.StringArray) {
    const out: string[] = [];
    let start = 0;
    for (let i = 0; i < n; i++) {
      if (bytes[i] === 0) {
        out.push(decodeUtf8(bytes, start, i, field));
        start = i + 1;
      }
    }
    // Lenient: a final string without its NUL terminator is still a string.
    if (start < n) out.push(decodeUtf8(bytes, start, n, field));
    return out;
  }
  const width = WIDTH[datatype];
  if (width === undefined) throw layoutError(field, `datatype ${datatype} is not an array type`);
  if (n % width !== 0) {
    throw layoutError(field, `${n} bytes is not a whole number of ${width}-byte elements`);
  }
  const count = n / width;
  const out: SpValue[] = new Array(count);
  for (let i = 0, off = 0; i < count; i++, off += width) {
    switch (datatype) {
      case DataType.Int8Array:
        out[i] = view.getInt8(off);
        break;
      case DataType.UInt8Array:
        out[i] = view.getUint8(off);
        break;
      case DataType.Int16Array:
        out[i] = view.getInt16(off, true);
        break;
      case DataType.UInt16Array:
        out[i] = view.getUint16(off, true);
        break;
      case DataType.Int32Array:
        out[i] = view.getInt32(off, true);
        break;
      case DataType.UInt32Array:
        out[i] = view.getUint32(off, true);
        break;
      case DataType.FloatArray:
        out[i] = view.getFloat32(off, true);
        break;
      case DataType.DoubleArray:
        out[i] = view.getFloat64(off, true);
        break;
      case DataType.UInt64Array:
        out[i] = toSafeInteger(view.getBigUint64(off, true));
        break;
      default: // Int64Array, DateTimeArray
        out[i] = toSafeInteger(view.getBigInt64(off, true));
    }
  }
  return out;
}

function invalid(field: string, message: string): ValidationError {
  return new ValidationError(`Sparkplug ${field}: ${message}`, { field, code: 'SPARKPLUG_ENCODE_INVALID' });
}

const INT_RANGE: Record<number, [bigint, bigint]> = {
  [DataType.Int8Array]: [-128n, 127n],
  [DataType.UInt8Array]: [0n, 255n],
  [DataType.Int16Array]: [-32768n, 32767n],
  [DataType.UInt16Array]: [0n, 65535n],
  [DataType.Int32Array]: [-2147483648n, 2147483647n],
  [DataType.UInt32Array]: [0n, 4294967295n],
  [DataType.Int64Array]: [-(2n ** 63n), 2n ** 63n - 1n],
  [DataType.DateTimeArray]: [-(2n ** 63n), 2n ** 63n - 1n],
  [DataType.UInt64Array]: [0n, 2n ** 64n - 1n],
};

function integerElement(datatype: number, v: SpValue, field: string): bigint {
  let b: bigint;
  if (typeof v === 'bigint') b = v;
  else if (typeof v === 'number' && Number.isInteger(v)) b = BigInt(v);
  else throw invalid(field, `array element ${String(v)} is not an integer`);
  const range = INT_RANGE[datatype]!;
  if (b < range[0] || b > range[1]) throw invalid(field, `array element ${b} is out of range`);
  return b;
}

/** Encodes the elements of an array datatype into its bytes. */
export function encodeArray(datatype: number, values: readonly SpValue[], field: string): Uint8Array {
  if (datatype === DataType.BooleanArray) {
    const out = new Uint8Array(4 + Math.ceil(values.length / 8));
    new DataView(out.buffer).setUint32(0, values.length, true);
    values.forEach((v, i) => {
      if (typeof v !== 'boolean') throw invalid(field, `BooleanArray element ${i} is not a boolean`);
      if (v) out[4 + (i >> 3)]! |= 0x80 >> (i & 7);
    });
    return out;
  }
  if (datatype === DataType.StringArray) {
    const enc = new TextEncoder();
    const parts = values.map((v, i) => {
      if (typeof v !== 'string') throw invalid(field, `StringArray element ${i} is not a string`);
      if (v.includes('\0')) throw invalid(field, `StringArray element ${i} contains NUL`);
      return enc.encode(v);
    });
    const out = new Uint8Array(parts.reduce((n, p) => n + p.length + 1, 0));
    let off = 0;
    for (const p of parts) {
      out.set(p, off);
      off += p.length + 1; // the NUL terminator is already 0
    }
    return out;
  }
  const width = WIDTH[datatype];
  if (width === undefined) throw invalid(field, `datatype ${datatype} is not an array type`);
  const out = new Uint8Array(values.length * width);
  const view = new DataView(out.buffer);
  values.forEach((v, i) => {
    const off = i * width;
    if (datatype === DataType.FloatArray || datatype === DataType.DoubleArray) {
      if (typeof v !== 'number') throw invalid(field, `array element ${i} is not a number`);
      if (datatype === DataType.FloatArray) view.setFloat32(off, v, true);
      else view.setFloat64(off, v, true);
      return;
    }
    const b = integerElement(datatype, v, field);
    switch (width) {
      case 1:
        view.setUint8(off, Number(BigInt.asUintN(8, b)));
        break;
      case 2:
        view.setUint16(off, Number(BigInt.asUintN(16, b)), true);
        break;
      case 4:
        view.setUint32(off, Number(BigInt.asUintN(32, b)), true);
        break;
      default:
        view.setBigUint64(off, BigInt.asUintN(64, b), true);
    }
  });
  return out;
}
