/**
 * RFC 8949 CBOR encoder with preferred serialisation (§4.1): shortest argument for every head,
 * definite lengths only, integral numbers in the safe range as integers, other numbers as the
 * shortest of half/single/double that round-trips exactly (NaN as f97e00). Maps keep their
 * insertion order (callers build them in the order they want; LwM2M/SenML do not need sorted keys).
 * Bigints beyond 64 bits become tag 2/3 bignums.
 */
import { ValidationError } from '../errors.js';
import { CborSimple, CborTagged, type CborValue } from './types.js';

const TWO_32 = 4294967296;
const f32 = new Float32Array(1);
const f32b = new Uint8Array(f32.buffer);
const LITTLE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

class Writer {
  buf = new Uint8Array(256);
  pos = 0;
  view = new DataView(this.buf.buffer);

  ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }

  head(mt: number, n: number): void {
    this.ensure(9);
    const b = this.buf;
    const m = mt << 5;
    if (n < 24) {
      b[this.pos++] = m | n;
    } else if (n < 0x100) {
      b[this.pos++] = m | 24;
      b[this.pos++] = n;
    } else if (n < 0x10000) {
      b[this.pos++] = m | 25;
      b[this.pos++] = n >> 8;
      b[this.pos++] = n & 0xff;
    } else if (n < TWO_32) {
      b[this.pos++] = m | 26;
      this.view.setUint32(this.pos, n);
      this.pos += 4;
    } else {
      b[this.pos++] = m | 27;
      this.view.setUint32(this.pos, Math.floor(n / TWO_32));
      this.view.setUint32(this.pos + 4, n % TWO_32);
      this.pos += 8;
    }
  }

  headBig(mt: number, n: bigint): void {
    if (n < 0x20000000000000n) {
      this.head(mt, Number(n));
      return;
    }
    this.ensure(9);
    this.buf[this.pos++] = (mt << 5) | 27;
    this.view.setBigUint64(this.pos, n);
    this.pos += 8;
  }

  bytes(data: Uint8Array): void {
    this.ensure(data.length);
    this.buf.set(data, this.pos);
    this.pos += data.length;
  }

  text(s: string): void {
    const n = s.length;
    // ASCII fast path for short strings (names, paths): one pass, head size known from length.
    if (n < 24) {
      this.ensure(n + 1);
      const b = this.buf;
      const start = this.pos;
      b[start] = 0x60 | n;
      let i = 0;
      for (; i < n; i++) {
        const c = s.charCodeAt(i);
        if (c >= 0x80) break;
        b[start + 1 + i] = c;
      }
      if (i === n) {
        this.pos = start + 1 + n;
        return;
      }
    }
    const encoded = Buffer.from(s, 'utf8');
    this.head(3, encoded.length);
    this.bytes(encoded);
  }

  float(v: number): void {
    this.ensure(9);
    const b = this.buf;
    if (Number.isNaN(v)) {
      b[this.pos++] = 0xf9;
      b[this.pos++] = 0x7e;
      b[this.pos++] = 0x00;
      return;
    }
    const half = toHalf(v);
    if (half !== -1) {
      b[this.pos++] = 0xf9;
      b[this.pos++] = half >> 8;
      b[this.pos++] = half & 0xff;
      return;
    }
    f32[0] = v;
    if (f32[0] === v) {
      b[this.pos++] = 0xfa;
      if (LITTLE) {
        b[this.pos++] = f32b[3]!;
        b[this.pos++] = f32b[2]!;
        b[this.pos++] = f32b[1]!;
        b[this.pos++] = f32b[0]!;
      } else {
        b.set(f32b, this.pos);
        this.pos += 4;
      }
      return;
    }
    b[this.pos++] = 0xfb;
    this.view.setFloat64(this.pos, v);
    this.pos += 8;
  }

  value(v: CborValue): void {
    switch (typeof v) {
      case 'number':
        if (
          Number.isInteger(v) &&
          !Object.is(v, -0) &&
          v <= Number.MAX_SAFE_INTEGER &&
          v >= -Number.MAX_SAFE_INTEGER
        ) {
          if (v >= 0) this.head(0, v);
          else this.head(1, -1 - v);
        } else {
          this.float(v);
        }
        return;
      case 'string':
        this.text(v);
        return;
      case 'boolean':
        this.ensure(1);
        this.buf[this.pos++] = v ? 0xf5 : 0xf4;
        return;
      case 'undefined':
        this.ensure(1);
        this.buf[this.pos++] = 0xf7;
        return;
      case 'bigint':
        this.bigint(v);
        return;
      default:
        break;
    }
    if (v === null) {
      this.ensure(1);
      this.buf[this.pos++] = 0xf6;
    } else if (v instanceof Uint8Array) {
      this.head(2, v.length);
      this.bytes(v);
    } else if (Array.isArray(v)) {
      this.head(4, v.length);
      for (const item of v) this.value(item);
    } else if (v instanceof Map) {
      this.head(5, v.size);
      for (const [k, item] of v) {
        this.value(k);
        this.value(item);
      }
    } else if (v instanceof CborTagged) {
      if (typeof v.tag === 'bigint') this.headBig(6, v.tag);
      else this.head(6, v.tag);
      this.value(v.value);
    } else if (v instanceof CborSimple) {
      const s = v.value;
      if (!Number.isInteger(s) || s < 0 || s > 255 || (s >= 20 && s < 32)) {
        throw new ValidationError(`CBOR: simple value ${s} cannot be encoded as CborSimple`, {
          field: 'simple',
          code: 'CBOR_SIMPLE',
        });
      }
      this.head(7, s);
    } else {
      throw new ValidationError(`CBOR: cannot encode a value of type ${typeof v}`, { code: 'CBOR_TYPE' });
    }
  }

  bigint(v: bigint): void {
    const mt = v < 0n ? 1 : 0;
    const n = v < 0n ? -1n - v : v;
    if (n <= 0xffffffffffffffffn) {
      this.headBig(mt, n);
      return;
    }
    let hex = n.toString(16);
    if (hex.length % 2) hex = `0${hex}`;
    this.head(6, mt === 0 ? 2 : 3);
    this.head(2, hex.length / 2);
    this.bytes(Buffer.from(hex, 'hex'));
  }
}

/** Returns the IEEE 754 half bits if `v` is exactly representable as a half, else -1. */
function toHalf(v: number): number {
  if (v === 0) return Object.is(v, -0) ? 0x8000 : 0;
  if (!Number.isFinite(v)) return v > 0 ? 0x7c00 : 0xfc00;
  const sign = v < 0 ? 0x8000 : 0;
  const a = Math.abs(v);
  if (a > 65504 || a < 2 ** -24) return -1;
  let exp = Math.floor(Math.log2(a));
  // Math.log2 may be off by one at boundaries; fix up.
  if (2 ** exp > a) exp--;
  else if (2 ** (exp + 1) <= a) exp++;
  if (exp < -14) {
    // subnormal: a = mant * 2^-24
    const mant = a / 2 ** -24;
    return Number.isInteger(mant) ? sign | mant : -1;
  }
  const mant = (a / 2 ** exp - 1) * 1024;
  if (!Number.isInteger(mant)) return -1;
  return sign | ((exp + 15) << 10) | mant;
}

/** Encodes one value with preferred serialisation. */
export function encodeCbor(value: CborValue): Uint8Array {
  const w = new Writer();
  w.value(value);
  return w.buf.slice(0, w.pos);
}
