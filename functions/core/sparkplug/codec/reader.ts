/**
 * A minimal, allocation-light protobuf wire reader for the Sparkplug B decoder.
 *
 * Every read is bounds-checked against the end of the current message, so garbage or truncated input
 * raises a DecodeError (never a RangeError or an infinite loop). 64-bit varints are read as two 32-bit
 * halves (`lo`, `hi`) so the caller chooses a number or a bigint without going through Long objects.
 */
import { Buffer } from 'node:buffer';
import { DecodeError } from '../../errors.js';

export const ErrorCode = {
  tooLarge: 'SPARKPLUG_TOO_LARGE',
  truncated: 'SPARKPLUG_TRUNCATED',
  malformed: 'SPARKPLUG_MALFORMED',
  invalidUtf8: 'SPARKPLUG_INVALID_UTF8',
  tooDeep: 'SPARKPLUG_TOO_DEEP',
  valueMismatch: 'SPARKPLUG_VALUE_MISMATCH',
  arrayLayout: 'SPARKPLUG_ARRAY_LAYOUT',
  compression: 'SPARKPLUG_COMPRESSION',
  decompressedTooLarge: 'SPARKPLUG_DECOMPRESSED_TOO_LARGE',
  stateInvalid: 'SPARKPLUG_STATE_INVALID',
} as const;

export const WireType = { varint: 0, fixed64: 1, bytes: 2, startGroup: 3, endGroup: 4, fixed32: 5 } as const;

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

// Buffer#latin1Slice is the native method behind toString('latin1') without its argument handling;
// it has existed on Buffer.prototype since Node 0.x. Fall back to toString if it ever disappears.
type Latin1 = { latin1Slice?: (start: number, end: number) => string };
const latin1 =
  typeof (Buffer.prototype as Latin1).latin1Slice === 'function'
    ? (b: Buffer, start: number, end: number): string => (b as Latin1).latin1Slice!(start, end)
    : (b: Buffer, start: number, end: number): string => b.toString('latin1', start, end);
const MAX_GROUP_DEPTH = 16;

export function truncated(field: string, pos: number): DecodeError {
  return new DecodeError(ErrorCode.truncated, `Sparkplug payload truncated at byte ${pos} reading ${field}`, {
    field,
  });
}

export function malformed(field: string, detail: string): DecodeError {
  return new DecodeError(ErrorCode.malformed, `Sparkplug payload malformed at ${field}: ${detail}`, {
    field,
  });
}

/** Decodes UTF-8 strictly (invalid sequences are a DecodeError naming `field`). */
export function decodeUtf8(buf: Uint8Array, start: number, end: number, field: string): string {
  if (start === end) return '';
  return decodeUtf8Slow(buf, start, end, field);
}

function decodeUtf8Slow(buf: Uint8Array, start: number, end: number, field: string): string {
  try {
    return utf8.decode(buf.subarray(start, end));
  } catch (cause) {
    throw new DecodeError(
      ErrorCode.invalidUtf8,
      `Sparkplug ${field} is not valid UTF-8 (bytes ${start}-${end})`,
      {
        field,
        cause,
      },
    );
  }
}

export class Reader {
  readonly buf: Uint8Array;
  readonly view: DataView;
  /** The same bytes as a Buffer, for its fast native latin1 slice on ASCII strings. */
  private readonly nb: Buffer;
  pos: number;
  end: number;
  /** Low / high 32 bits of the last varint read by `varint64` (unsigned). */
  lo = 0;
  hi = 0;

  constructor(buf: Uint8Array) {
    this.buf = buf;
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    this.nb = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
    this.pos = 0;
    this.end = buf.length;
  }

  /** Reads a varint into lo/hi. Accepts up to 10 bytes, as protobuf does. */
  varint64(field: string): void {
    const buf = this.buf;
    const end = this.end;
    let pos = this.pos;
    let lo = 0;
    let hi = 0;
    let b: number;
    for (let shift = 0; shift < 28; shift += 7) {
      if (pos >= end) throw truncated(field, pos);
      b = buf[pos++]!;
      lo |= (b & 0x7f) << shift;
      if (b < 0x80) {
        this.pos = pos;
        this.lo = lo >>> 0;
        this.hi = 0;
        return;
      }
    }
    if (pos >= end) throw truncated(field, pos);
    b = buf[pos++]!;
    lo |= (b & 0x0f) << 28;
    hi = (b & 0x7f) >> 4;
    if (b < 0x80) {
      this.pos = pos;
      this.lo = lo >>> 0;
      this.hi = hi;
      return;
    }
    for (let shift = 3; shift <= 31; shift += 7) {
      if (pos >= end) throw truncated(field, pos);
      b = buf[pos++]!;
      hi |= (b & 0x7f) << shift;
      if (b < 0x80) {
        this.pos = pos;
        this.lo = lo >>> 0;
        this.hi = hi >>> 0;
        return;
      }
    }
    throw malformed(field, `varint longer than 10 bytes at byte ${pos}`);
  }

  /** A uint32 field: the low 32 bits of the varint (a 10-byte negative int32 keeps its pattern). */
  uint32(field: string): number {
    const buf = this.buf;
    const pos = this.pos;
    if (pos < this.end) {
      const b = buf[pos]!;
      if (b < 0x80) {
        this.pos = pos + 1;
        return b;
      }
    }
    this.varint64(field);
    return this.lo;
  }

  /** A uint64 field as an unsigned bigint. */
  uint64(field: string): bigint {
    const pos = this.pos;
    if (pos < this.end) {
      const b = this.buf[pos]!;
      if (b < 0x80) {
        this.pos = pos + 1;
        return BigInt(b);
      }
    }
    this.varint64(field);
    return this.hi === 0 ? BigInt(this.lo) : (BigInt(this.hi) << 32n) | BigInt(this.lo);
  }

  /** A uint64 field as a number (used for epoch-ms timestamps; exact up to 2^53). */
  uint64Number(field: string): number {
    this.varint64(field);
    return this.hi * 4294967296 + this.lo;
  }

  bool(field: string): boolean {
    this.varint64(field);
    return this.lo !== 0 || this.hi !== 0;
  }

  float(field: string): number {
    if (this.pos + 4 > this.end) throw truncated(field, this.pos);
    const v = this.view.getFloat32(this.pos, true);
    this.pos += 4;
    return v;
  }

  double(field: string): number {
    if (this.pos + 8 > this.end) throw truncated(field, this.pos);
    const v = this.view.getFloat64(this.pos, true);
    this.pos += 8;
    return v;
  }

  /** Reads a length prefix and returns the end offset of the delimited bytes (bounds-checked). */
  delimited(field: string): number {
    const len = this.uint32(field);
    const end = this.pos + len;
    if (end > this.end) throw truncated(field, this.end);
    return end;
  }

  string(field: string): string {
    const end = this.delimited(field);
    const start = this.pos;
    this.pos = end;
    const buf = this.buf;
    for (let i = start; i < end; i++) {
      if (buf[i]! >= 0x80) return decodeUtf8Slow(buf, start, end, field);
    }
    // ASCII only: latin1 and UTF-8 agree, and Buffer's native latin1 slice is the fastest path.
    return start === end ? '' : latin1(this.nb, start, end);
  }

  /** Bytes as a copy, so decoded values never alias (or pin) the input buffer. */
  bytes(field: string): Uint8Array {
    const end = this.delimited(field);
    // Uint8Array#slice copies; Buffer#slice (when the input is a Buffer) would alias, so copy explicitly
    // and return a plain Uint8Array either way.
    const out = new Uint8Array(end - this.pos);
    out.set(this.buf.subarray(this.pos, end));
    this.pos = end;
    return out;
  }

  /** Reads a tag; returns field number * 8 + wire type (the raw tag) after validating it. */
  tag(message: string): number {
    const tag = this.uint32(message);
    if (tag >>> 3 === 0) throw malformed(message, `field number 0 at byte ${this.pos}`);
    return tag;
  }

  /** Skips a field of any wire type (unknown fields and extensions). */
  skip(wireType: number, message: string, groupDepth = 0): void {
    switch (wireType) {
      case WireType.varint:
        this.varint64(message);
        return;
      case WireType.fixed64:
        if (this.pos + 8 > this.end) throw truncated(message, this.pos);
        this.pos += 8;
        return;
      case WireType.bytes:
        this.pos = this.delimited(message);
        return;
      case WireType.fixed32:
        if (this.pos + 4 > this.end) throw truncated(message, this.pos);
        this.pos += 4;
        return;
      case WireType.startGroup: {
        if (groupDepth >= MAX_GROUP_DEPTH) {
          throw new DecodeError(
            ErrorCode.tooDeep,
            `Sparkplug ${message}: groups nested deeper than ${MAX_GROUP_DEPTH}`,
            {
              field: message,
            },
          );
        }
        for (;;) {
          const t = this.tag(message);
          if ((t & 7) === WireType.endGroup) return;
          this.skip(t & 7, message, groupDepth + 1);
        }
      }
      default:
        throw malformed(message, `invalid wire type ${wireType} at byte ${this.pos}`);
    }
  }

  /** Throws unless a known field arrived with the wire type the schema gives it. */
  expect(tag: number, wireType: number, field: string): void {
    if ((tag & 7) !== wireType) {
      throw malformed(field, `wire type ${tag & 7}, expected ${wireType} (byte ${this.pos})`);
    }
  }
}
