/**
 * A minimal protobuf wire writer for the Sparkplug B encoder: one growable buffer, canonical
 * (shortest) varints and length prefixes, so its bytes equal those of protobufjs for the same fields.
 */
const WT_VARINT = 0;
const WT_FIXED64 = 1;
const WT_BYTES = 2;
const WT_FIXED32 = 5;

const utf8 = new TextEncoder();

export class Writer {
  private buf = new Uint8Array(256);
  private view = new DataView(this.buf.buffer);
  pos = 0;

  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }

  /** An unsigned 32-bit varint. */
  varint32(v: number): void {
    this.ensure(5);
    v >>>= 0;
    while (v > 0x7f) {
      this.buf[this.pos++] = (v & 0x7f) | 0x80;
      v >>>= 7;
    }
    this.buf[this.pos++] = v;
  }

  /** An unsigned 64-bit varint (bigint taken modulo 2^64, number must be a non-negative integer). */
  varint64(v: bigint | number): void {
    if (typeof v === 'number' && v >= 0 && Number.isSafeInteger(v)) {
      if (v <= 0xffffffff) {
        this.varint32(v);
        return;
      }
      // Safe integer above 2^32 (epoch-ms timestamps): as two 32-bit halves, without BigInt.
      this.ensure(10);
      let lo = v >>> 0;
      let hi = (v - lo) / 4294967296;
      while (hi > 0) {
        this.buf[this.pos++] = (lo & 0x7f) | 0x80;
        lo = ((lo >>> 7) | (hi << 25)) >>> 0;
        hi >>>= 7;
      }
      while (lo > 0x7f) {
        this.buf[this.pos++] = (lo & 0x7f) | 0x80;
        lo >>>= 7;
      }
      this.buf[this.pos++] = lo;
      return;
    }
    let b = BigInt.asUintN(64, BigInt(v));
    this.ensure(10);
    while (b > 0x7fn) {
      this.buf[this.pos++] = Number(b & 0x7fn) | 0x80;
      b >>= 7n;
    }
    this.buf[this.pos++] = Number(b);
  }

  tag(field: number, wireType: number): void {
    this.varint32((field << 3) | wireType);
  }

  uint32Field(field: number, v: number): void {
    this.tag(field, WT_VARINT);
    this.varint32(v);
  }

  uint64Field(field: number, v: bigint | number): void {
    this.tag(field, WT_VARINT);
    this.varint64(v);
  }

  boolField(field: number, v: boolean): void {
    this.tag(field, WT_VARINT);
    this.varint32(v ? 1 : 0);
  }

  floatField(field: number, v: number): void {
    this.tag(field, WT_FIXED32);
    this.ensure(4);
    this.view.setFloat32(this.pos, v, true);
    this.pos += 4;
  }

  doubleField(field: number, v: number): void {
    this.tag(field, WT_FIXED64);
    this.ensure(8);
    this.view.setFloat64(this.pos, v, true);
    this.pos += 8;
  }

  stringField(field: number, s: string): void {
    this.tag(field, WT_BYTES);
    const n = s.length;
    let ascii = n < 128;
    for (let i = 0; ascii && i < n; i++) if (s.charCodeAt(i) >= 0x80) ascii = false;
    if (ascii) {
      this.ensure(1 + n);
      this.buf[this.pos++] = n;
      for (let i = 0; i < n; i++) this.buf[this.pos++] = s.charCodeAt(i);
      return;
    }
    const bytes = utf8.encode(s);
    this.varint32(bytes.length);
    this.raw(bytes);
  }

  bytesField(field: number, b: Uint8Array): void {
    this.tag(field, WT_BYTES);
    this.varint32(b.length);
    this.raw(b);
  }

  raw(b: Uint8Array): void {
    this.ensure(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
  }

  /** Starts a length-delimited sub-message for `field`; returns a mark for `ldelim`. */
  fork(field: number): number {
    this.tag(field, WT_BYTES);
    this.ensure(1);
    this.pos += 1; // one byte reserved for the length; `ldelim` widens it when needed
    return this.pos;
  }

  /** Closes a sub-message opened by `fork`, writing its canonical length prefix. */
  ldelim(mark: number): void {
    const len = this.pos - mark;
    if (len < 0x80) {
      this.buf[mark - 1] = len;
      return;
    }
    let extra = 0;
    for (let v = len >>> 7; v > 0; v >>>= 7) extra++;
    this.ensure(extra);
    this.buf.copyWithin(mark + extra, mark, this.pos);
    let p = mark - 1;
    let v = len;
    while (v > 0x7f) {
      this.buf[p++] = (v & 0x7f) | 0x80;
      v >>>= 7;
    }
    this.buf[p] = v;
    this.pos += extra;
  }

  finish(): Uint8Array {
    return this.buf.slice(0, this.pos);
  }

  /** Empties the writer for the next message, keeping its buffer (one buffer per encoder, not per call). */
  reset(): this {
    this.pos = 0;
    // A rare huge message does not pin its buffer for the process's life.
    if (this.buf.length > 1 << 20) {
      this.buf = new Uint8Array(256);
      this.view = new DataView(this.buf.buffer);
    }
    return this;
  }
}
