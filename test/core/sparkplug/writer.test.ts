import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Writer } from '../../../functions/core/sparkplug/codec/writer.js';

/** The reference: a 64-bit varint written 7 bits at a time over a BigInt. */
function varintOf(v: bigint): number[] {
  let b = BigInt.asUintN(64, v);
  const out: number[] = [];
  while (b > 0x7fn) {
    out.push(Number(b & 0x7fn) | 0x80);
    b >>= 7n;
  }
  out.push(Number(b));
  return out;
}

describe('Writer.varint64', () => {
  it('writes safe integers above 2^32 (the two-halves path) as the BigInt reference does', () => {
    fc.assert(
      fc.property(fc.integer({ min: 2 ** 32, max: Number.MAX_SAFE_INTEGER }), (v) => {
        const w = new Writer();
        w.varint64(v);
        expect([...w.finish()]).toEqual(varintOf(BigInt(v)));
      }),
      { numRuns: 2000 },
    );
  });

  it('is exact at the edges: 2^32 - 1, 2^32, 2^35, 2^53 - 1 and an epoch-ms timestamp', () => {
    for (const v of [2 ** 32 - 1, 2 ** 32, 2 ** 35, Number.MAX_SAFE_INTEGER, 1_700_000_000_123]) {
      const w = new Writer();
      w.varint64(v);
      expect([...w.finish()], String(v)).toEqual(varintOf(BigInt(v)));
    }
  });
});

describe('Writer.reset', () => {
  it('starts the next message empty and keeps earlier results intact', () => {
    const w = new Writer();
    w.uint32Field(1, 300);
    const first = w.finish();
    w.reset().uint32Field(2, 1);
    expect([...first]).toEqual([0x08, 0xac, 0x02]);
    expect([...w.finish()]).toEqual([0x10, 0x01]);
  });

  it('gives back a buffer grown past 1 MiB', () => {
    const w = new Writer();
    w.bytesField(1, new Uint8Array(2 << 20));
    expect(w.finish().length).toBeGreaterThan(2 << 20);
    w.reset().uint32Field(1, 7);
    expect([...w.finish()]).toEqual([0x08, 0x07]);
    expect((w as unknown as { buf: Uint8Array }).buf.length).toBe(256);
  });
});
