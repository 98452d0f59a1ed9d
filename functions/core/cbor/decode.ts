/**
 * Strict RFC 8949 CBOR decoder. Every failure is a DecodeError with a `CBOR_*` code:
 *
 * - CBOR_TRUNCATED         input ends inside an item
 * - CBOR_TRAILING_BYTES    bytes left after the one top-level item
 * - CBOR_RESERVED          additional information 28..30, or 31 on a major type without indefinite form
 * - CBOR_LENGTH            a declared length/count larger than the bytes left (checked before allocating)
 * - CBOR_INVALID_UTF8      a text string that is not valid UTF-8
 * - CBOR_BREAK             a break (0xff) outside an indefinite-length item
 * - CBOR_CHUNK             an indefinite string chunk of another major type or itself indefinite
 * - CBOR_SIMPLE            simple value 0..31 in its two-byte form (not well-formed)
 * - CBOR_TOO_DEEP          nesting deeper than maxDepth
 * - CBOR_TOO_MANY_ITEMS    more data items than maxItems
 * - CBOR_DUPLICATE_KEY     a map repeats a number/string/bool/null key
 * - CBOR_TYPE              (CborReader only) the next item is not the container the caller expects
 */
import { DecodeError } from '../errors.js';
import { type CborDecodeOptions, CborSimple, CborTagged, type CborValue } from './types.js';

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
const TWO_32 = 4294967296;

/**
 * The decoder's cursor, exported for codecs that walk a known structure without building Maps (SenML).
 * Same strictness and limits as decodeCbor.
 */
export class CborReader {
  pos = 0;
  items = 0;
  view: DataView | undefined;
  constructor(
    readonly bytes: Uint8Array,
    readonly maxDepth: number,
    readonly maxItems: number,
  ) {}

  fail(code: string, message: string, cause?: unknown): never {
    throw new DecodeError(code, `CBOR: ${message} at byte ${this.pos}`, { field: 'cbor', cause });
  }

  need(n: number): void {
    if (this.bytes.length - this.pos < n) this.fail('CBOR_TRUNCATED', `input ends, ${n} more byte(s) needed`);
  }

  getView(): DataView {
    if (this.view === undefined) {
      this.view = new DataView(this.bytes.buffer, this.bytes.byteOffset, this.bytes.byteLength);
    }
    return this.view;
  }

  /** Reads the argument of a head with additional info `ai` (< 28). Returns number or bigint. */
  arg(ai: number): number | bigint {
    const b = this.bytes;
    if (ai < 24) return ai;
    let p = this.pos;
    switch (ai) {
      case 24:
        this.need(1);
        this.pos = p + 1;
        return b[p]!;
      case 25:
        this.need(2);
        this.pos = p + 2;
        return (b[p]! << 8) | b[p + 1]!;
      case 26:
        this.need(4);
        this.pos = p + 4;
        return b[p]! * 16777216 + ((b[p + 1]! << 16) | (b[p + 2]! << 8) | b[p + 3]!);
      case 27: {
        this.need(8);
        const hi = b[p]! * 16777216 + ((b[p + 1]! << 16) | (b[p + 2]! << 8) | b[p + 3]!);
        p += 4;
        const lo = b[p]! * 16777216 + ((b[p + 1]! << 16) | (b[p + 2]! << 8) | b[p + 3]!);
        this.pos = p + 4;
        if (hi < 0x200000) return hi * TWO_32 + lo; // ≤ 2^53 - 1
        return (BigInt(hi) << 32n) | BigInt(lo);
      }
      default:
        return this.fail('CBOR_RESERVED', `reserved additional information ${ai}`);
    }
  }

  /** A length: must fit in the remaining input given `unit` bytes per element at least. */
  length(ai: number, unit: number, what: string): number {
    const n = this.arg(ai);
    if (typeof n === 'bigint' || n * unit > this.bytes.length - this.pos) {
      this.fail(
        'CBOR_LENGTH',
        `${what} declares ${n} but only ${this.bytes.length - this.pos} byte(s) remain`,
      );
    }
    return n;
  }

  text(n: number): string {
    const b = this.bytes;
    const start = this.pos;
    const end = start + n;
    this.pos = end;
    if (n <= 24) {
      // ASCII fast path; falls back to the fatal decoder on the first non-ASCII byte.
      let s = '';
      for (let i = start; i < end; i++) {
        const c = b[i]!;
        if (c >= 0x80) return this.utf8(start, end);
        s += String.fromCharCode(c);
      }
      return s;
    }
    return this.utf8(start, end);
  }

  utf8(start: number, end: number): string {
    try {
      return utf8.decode(this.bytes.subarray(start, end));
    } catch (e) {
      this.pos = start;
      return this.fail('CBOR_INVALID_UTF8', 'text string is not valid UTF-8', e);
    }
  }

  item(depth: number): CborValue {
    const b = this.bytes;
    if (this.pos >= b.length) this.fail('CBOR_TRUNCATED', 'input ends where an item was expected');
    if (++this.items > this.maxItems) this.fail('CBOR_TOO_MANY_ITEMS', `more than ${this.maxItems} items`);
    const ib = b[this.pos++]!;
    const mt = ib >> 5;
    const ai = ib & 31;
    switch (mt) {
      case 0: {
        if (ai < 24) return ai;
        return this.arg(ai);
      }
      case 1: {
        if (ai < 24) return -1 - ai;
        const n = this.arg(ai);
        if (typeof n === 'bigint') return -1n - n;
        return n < Number.MAX_SAFE_INTEGER ? -1 - n : -1n - BigInt(n);
      }
      case 2: {
        if (ai === 31) return this.indefiniteBytes();
        const n = this.length(ai, 1, 'byte string');
        const start = this.pos;
        this.pos += n;
        return b.slice(start, start + n);
      }
      case 3: {
        if (ai === 31) return this.indefiniteText();
        return this.text(this.length(ai, 1, 'text string'));
      }
      case 4: {
        if (depth >= this.maxDepth) this.fail('CBOR_TOO_DEEP', `nesting deeper than ${this.maxDepth}`);
        if (ai === 31) {
          const out: CborValue[] = [];
          while (true) {
            if (this.pos >= b.length) this.fail('CBOR_TRUNCATED', 'indefinite array has no break');
            if (b[this.pos] === 0xff) {
              this.pos++;
              return out;
            }
            out.push(this.item(depth + 1));
          }
        }
        const n = this.length(ai, 1, 'array');
        const out = new Array<CborValue>(n);
        for (let i = 0; i < n; i++) out[i] = this.item(depth + 1);
        return out;
      }
      case 5: {
        if (depth >= this.maxDepth) this.fail('CBOR_TOO_DEEP', `nesting deeper than ${this.maxDepth}`);
        const out = new Map<CborValue, CborValue>();
        if (ai === 31) {
          while (true) {
            if (this.pos >= b.length) this.fail('CBOR_TRUNCATED', 'indefinite map has no break');
            if (b[this.pos] === 0xff) {
              this.pos++;
              return out;
            }
            this.entry(out, depth);
          }
        }
        const n = this.length(ai, 2, 'map');
        for (let i = 0; i < n; i++) this.entry(out, depth);
        return out;
      }
      case 6: {
        if (ai === 31) this.fail('CBOR_RESERVED', 'a tag cannot be indefinite');
        if (depth >= this.maxDepth) this.fail('CBOR_TOO_DEEP', `nesting deeper than ${this.maxDepth}`);
        const tag = this.arg(ai);
        return new CborTagged(tag, this.item(depth + 1));
      }
      default:
        return this.simple(ai);
    }
  }

  /** Major type of the next item, without consuming it. */
  peekMajor(): number {
    if (this.pos >= this.bytes.length) this.fail('CBOR_TRUNCATED', 'input ends where an item was expected');
    return this.bytes[this.pos]! >> 5;
  }

  /**
   * Consumes the head of an array (mt 4) or map (mt 5) at nesting `depth` and returns its count
   * (pairs for a map), or -1 when indefinite (then call `atBreak` before each element).
   */
  containerStart(mt: 4 | 5, depth: number): number {
    if (this.peekMajor() !== mt) this.fail('CBOR_TYPE', `expected ${mt === 4 ? 'an array' : 'a map'}`);
    if (++this.items > this.maxItems) this.fail('CBOR_TOO_MANY_ITEMS', `more than ${this.maxItems} items`);
    if (depth >= this.maxDepth) this.fail('CBOR_TOO_DEEP', `nesting deeper than ${this.maxDepth}`);
    const ai = this.bytes[this.pos++]! & 31;
    if (ai === 31) return -1;
    return this.length(ai, mt === 4 ? 1 : 2, mt === 4 ? 'array' : 'map');
  }

  /** In an indefinite container: consumes a break and returns true, or returns false. */
  atBreak(): boolean {
    if (this.pos >= this.bytes.length) this.fail('CBOR_TRUNCATED', 'indefinite item has no break');
    if (this.bytes[this.pos] !== 0xff) return false;
    this.pos++;
    return true;
  }

  /** Fails unless the whole input was consumed. */
  finish(): void {
    if (this.pos !== this.bytes.length) {
      this.fail('CBOR_TRAILING_BYTES', `${this.bytes.length - this.pos} byte(s) after the top-level item`);
    }
  }

  entry(out: Map<CborValue, CborValue>, depth: number): void {
    const at = this.pos;
    const key = this.item(depth + 1);
    const value = this.item(depth + 1);
    const kt = typeof key;
    if ((kt !== 'object' || key === null) && out.has(key)) {
      this.pos = at;
      this.fail('CBOR_DUPLICATE_KEY', `map repeats key ${String(key)}`);
    }
    out.set(key, value);
  }

  simple(ai: number): CborValue {
    switch (ai) {
      case 20:
        return false;
      case 21:
        return true;
      case 22:
        return null;
      case 23:
        return undefined;
      case 24: {
        this.need(1);
        const v = this.bytes[this.pos++]!;
        if (v < 32) this.fail('CBOR_SIMPLE', `simple value ${v} in two-byte form`);
        return new CborSimple(v);
      }
      case 25: {
        this.need(2);
        const p = this.pos;
        this.pos += 2;
        return halfToNumber((this.bytes[p]! << 8) | this.bytes[p + 1]!);
      }
      case 26: {
        this.need(4);
        const v = this.getView().getFloat32(this.pos);
        this.pos += 4;
        return v;
      }
      case 27: {
        this.need(8);
        const v = this.getView().getFloat64(this.pos);
        this.pos += 8;
        return v;
      }
      case 28:
      case 29:
      case 30:
        return this.fail('CBOR_RESERVED', `reserved additional information ${ai}`);
      case 31:
        this.pos--;
        return this.fail('CBOR_BREAK', 'break outside an indefinite-length item');
      default:
        return new CborSimple(ai);
    }
  }

  /** Chunks of an indefinite string: definite strings of major type `mt`, then a break. */
  chunks(mt: number, onChunk: (start: number, end: number) => void): void {
    const b = this.bytes;
    while (true) {
      if (this.pos >= b.length) this.fail('CBOR_TRUNCATED', 'indefinite string has no break');
      const ib = b[this.pos]!;
      if (ib === 0xff) {
        this.pos++;
        return;
      }
      if (ib >> 5 !== mt || (ib & 31) === 31) {
        this.fail('CBOR_CHUNK', 'indefinite string chunk must be a definite string of the same type');
      }
      if (++this.items > this.maxItems) this.fail('CBOR_TOO_MANY_ITEMS', `more than ${this.maxItems} items`);
      this.pos++;
      const n = this.length(ib & 31, 1, 'string chunk');
      const start = this.pos;
      this.pos += n;
      onChunk(start, start + n);
    }
  }

  indefiniteBytes(): Uint8Array {
    const parts: [number, number][] = [];
    let total = 0;
    this.chunks(2, (s, e) => {
      parts.push([s, e]);
      total += e - s;
    });
    const out = new Uint8Array(total);
    let o = 0;
    for (const [s, e] of parts) {
      out.set(this.bytes.subarray(s, e), o);
      o += e - s;
    }
    return out;
  }

  indefiniteText(): string {
    let s = '';
    this.chunks(3, (start, end) => {
      s += this.utf8(start, end);
    });
    return s;
  }
}

function halfToNumber(h: number): number {
  const exp = (h >> 10) & 0x1f;
  const mant = h & 0x3ff;
  let v: number;
  if (exp === 0) v = mant * 2 ** -24;
  else if (exp === 31) v = mant === 0 ? Number.POSITIVE_INFINITY : Number.NaN;
  else v = (mant + 1024) * 2 ** (exp - 25);
  return h & 0x8000 ? -v : v;
}

/** Decodes exactly one CBOR data item that spans the whole input. */
export function decodeCbor(bytes: Uint8Array, opts: CborDecodeOptions = {}): CborValue {
  const r = new CborReader(bytes, opts.maxDepth ?? 32, opts.maxItems ?? 1 << 20);
  const value = r.item(0);
  r.finish();
  return value;
}

/**
 * Decodes one item starting at `offset` and returns it with the offset after it (for sequences and
 * for codecs that read a CBOR prefix). Same strictness as decodeCbor except trailing bytes are allowed.
 */
export function decodeCborPrefix(
  bytes: Uint8Array,
  offset = 0,
  opts: CborDecodeOptions = {},
): { value: CborValue; end: number } {
  const r = new CborReader(bytes, opts.maxDepth ?? 32, opts.maxItems ?? 1 << 20);
  r.pos = offset;
  const value = r.item(0);
  return { value, end: r.pos };
}
