import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  CborSimple,
  CborTagged,
  type CborValue,
  decodeCbor,
  encodeCbor,
} from '../../../functions/core/cbor/index.js';
import { DecodeError } from '../../../functions/core/errors.js';

const hex = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s.replace(/\s+/g, ''), 'hex'));
const toHex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

function decodeError(bytes: Uint8Array, opts?: { maxDepth?: number; maxItems?: number }): DecodeError {
  try {
    decodeCbor(bytes, opts);
  } catch (e) {
    if (e instanceof DecodeError) return e;
    throw new Error(`expected DecodeError, got ${String(e)}`);
  }
  throw new Error('expected DecodeError, decode succeeded');
}

// RFC 8949 Appendix A examples whose preferred serialisation is the listed bytes.
const ROUND_TRIP: [CborValue, string][] = [
  [0, '00'],
  [1, '01'],
  [10, '0a'],
  [23, '17'],
  [24, '1818'],
  [25, '1819'],
  [100, '1864'],
  [1000, '1903e8'],
  [1000000, '1a000f4240'],
  [1000000000000, '1b000000e8d4a51000'],
  [18446744073709551615n, '1bffffffffffffffff'],
  [-18446744073709551616n, '3bffffffffffffffff'],
  [-1, '20'],
  [-10, '29'],
  [-100, '3863'],
  [-1000, '3903e7'],
  [1.1, 'fb3ff199999999999a'],
  [1.5, 'f93e00'],
  [65504.0 + 0.5, 'fa477fe080'],
  [100000.5, 'fa47c35040'],
  [3.4028234663852886e38, 'fa7f7fffff'],
  [1.0e300, 'fb7e37e43c8800759c'],
  [2 ** -24, 'f90001'],
  [0.00006103515625, 'f90400'],
  [-4.1, 'fbc010666666666666'],
  [Number.POSITIVE_INFINITY, 'f97c00'],
  [Number.NEGATIVE_INFINITY, 'f9fc00'],
  [-0, 'f98000'],
  [false, 'f4'],
  [true, 'f5'],
  [null, 'f6'],
  [undefined, 'f7'],
  [new CborSimple(16), 'f0'],
  [new CborSimple(255), 'f8ff'],
  [new CborTagged(0, '2013-03-21T20:04:00Z'), 'c074323031332d30332d32315432303a30343a30305a'],
  [new CborTagged(1, 1363896240), 'c11a514b67b0'],
  [new CborTagged(1, 1363896240.5), 'c1fb41d452d9ec200000'],
  [new CborTagged(23, hex('01020304')), 'd74401020304'],
  [new CborTagged(32, 'http://www.example.com'), 'd82076687474703a2f2f7777772e6578616d706c652e636f6d'],
  [new Uint8Array(0), '40'],
  [hex('01020304'), '4401020304'],
  ['', '60'],
  ['a', '6161'],
  ['IETF', '6449455446'],
  ['"\\', '62225c'],
  ['\u00fc', '62c3bc'],
  ['\u6c34', '63e6b0b4'],
  ['\u{10151}', '64f0908591'],
  [[], '80'],
  [[1, 2, 3], '83010203'],
  [[1, [2, 3], [4, 5]], '8301820203820405'],
  [Array.from({ length: 25 }, (_, i) => i + 1), '98190102030405060708090a0b0c0d0e0f101112131415161718181819'],
  [new Map(), 'a0'],
  [
    new Map<CborValue, CborValue>([
      [1, 2],
      [3, 4],
    ]),
    'a201020304',
  ],
  [
    new Map<CborValue, CborValue>([
      ['a', 1],
      ['b', [2, 3]],
    ]),
    'a26161016162820203',
  ],
  [['a', new Map<CborValue, CborValue>([['b', 'c']])], '826161a161626163'],
];

describe('CBOR codec: RFC 8949 Appendix A', () => {
  it.each(ROUND_TRIP.map(([v, h]) => [h, v] as const))('decodes and re-encodes %s', (h, value) => {
    // Prepare
    const bytes = hex(h);
    // Act
    const decoded = decodeCbor(bytes);
    const encoded = encodeCbor(value);
    // Assess
    expect(decoded).toEqual(value);
    expect(toHex(encoded)).toBe(h);
  });

  it('decodes non-preferred forms and special floats', () => {
    expect(decodeCbor(hex('f90000'))).toBe(0);
    expect(decodeCbor(hex('f93c00'))).toBe(1);
    expect(decodeCbor(hex('f97bff'))).toBe(65504);
    expect(decodeCbor(hex('fa47c35000'))).toBe(100000);
    expect(decodeCbor(hex('f9c400'))).toBe(-4);
    expect(decodeCbor(hex('f97e00'))).toBeNaN();
    expect(decodeCbor(hex('fa7fc00000'))).toBeNaN();
    expect(decodeCbor(hex('fa7f800000'))).toBe(Number.POSITIVE_INFINITY);
    expect(decodeCbor(hex('fbfff0000000000000'))).toBe(Number.NEGATIVE_INFINITY);
    expect(decodeCbor(hex('1b0000000000000001'))).toBe(1);
    expect(toHex(encodeCbor(Number.NaN))).toBe('f97e00');
  });

  it('decodes integers to number up to 2^53-1 and bigint beyond', () => {
    expect(decodeCbor(hex('1b001fffffffffffff'))).toBe(Number.MAX_SAFE_INTEGER);
    expect(decodeCbor(hex('1b0020000000000000'))).toBe(2n ** 53n);
    expect(decodeCbor(hex('3b001ffffffffffffe'))).toBe(-Number.MAX_SAFE_INTEGER);
    expect(decodeCbor(hex('3b001fffffffffffff'))).toBe(-(2n ** 53n));
    expect(toHex(encodeCbor(2n ** 53n))).toBe('1b0020000000000000');
    expect(toHex(encodeCbor(5n))).toBe('05');
  });

  it('encodes bigints beyond 64 bits as bignum tags and decodes those as tagged bytes', () => {
    const big = 18446744073709551616n; // 2^64
    expect(toHex(encodeCbor(big))).toBe('c249010000000000000000');
    expect(toHex(encodeCbor(-big - 1n))).toBe('c349010000000000000000');
    const decoded = decodeCbor(hex('c249010000000000000000'));
    expect(decoded).toBeInstanceOf(CborTagged);
    expect((decoded as CborTagged).tag).toBe(2);
  });

  it('decodes indefinite-length items (RFC 8949 Appendix A)', () => {
    expect(decodeCbor(hex('5f42010243030405ff'))).toEqual(hex('0102030405'));
    expect(decodeCbor(hex('7f657374726561646d696e67ff'))).toBe('streaming');
    expect(decodeCbor(hex('9fff'))).toEqual([]);
    expect(decodeCbor(hex('9f018202039f0405ffff'))).toEqual([1, [2, 3], [4, 5]]);
    expect(decodeCbor(hex('83018202039f0405ff'))).toEqual([1, [2, 3], [4, 5]]);
    expect(decodeCbor(hex('bf61610161629f0203ffff'))).toEqual(
      new Map<CborValue, CborValue>([
        ['a', 1],
        ['b', [2, 3]],
      ]),
    );
    expect(decodeCbor(hex('bf6346756ef563416d7421ff'))).toEqual(
      new Map<CborValue, CborValue>([
        ['Fun', true],
        ['Amt', -2],
      ]),
    );
  });

  it('keeps a byte order mark in a text string', () => {
    expect(decodeCbor(hex('63efbbbf'))).toBe('\ufeff');
  });
});

describe('CBOR decoder: strictness', () => {
  it.each([
    ['empty input', '', 'CBOR_TRUNCATED'],
    ['truncated uint16', '19 01', 'CBOR_TRUNCATED'],
    ['truncated array', '83 01 02', 'CBOR_LENGTH'],
    ['truncated nested array', '82 82 01 02', 'CBOR_TRUNCATED'],
    ['truncated double', 'fb 3ff1', 'CBOR_TRUNCATED'],
    ['trailing bytes', '01 02', 'CBOR_TRAILING_BYTES'],
    ['reserved ai 28', '1c', 'CBOR_RESERVED'],
    ['reserved ai 30 on a text string', '7e', 'CBOR_RESERVED'],
    ['indefinite uint', '1f', 'CBOR_RESERVED'],
    ['indefinite tag', 'df', 'CBOR_RESERVED'],
    ['reserved simple ai 29', 'fd', 'CBOR_RESERVED'],
    ['lone break', 'ff', 'CBOR_BREAK'],
    ['break inside a definite array', '82 01 ff', 'CBOR_BREAK'],
    ['two-byte simple below 32', 'f8 14', 'CBOR_SIMPLE'],
    ['invalid UTF-8 (lone continuation byte)', '61 80', 'CBOR_INVALID_UTF8'],
    ['invalid UTF-8 (overlong)', '62 c0 af', 'CBOR_INVALID_UTF8'],
    ['invalid UTF-8 (surrogate)', '63 ed a0 80', 'CBOR_INVALID_UTF8'],
    ['invalid UTF-8 in a long string', `78 1e ${'41'.repeat(29)}ff`, 'CBOR_INVALID_UTF8'],
    ['huge byte string length', '5b 7fffffffffffffff', 'CBOR_LENGTH'],
    ['huge text length', '7a ffffffff 41', 'CBOR_LENGTH'],
    ['huge array count', '9b 00000000ffffffff', 'CBOR_LENGTH'],
    ['map count larger than input pairs', 'a3 01 02 03 04', 'CBOR_LENGTH'],
    ['bigint-sized length', '5b ffffffffffffffff', 'CBOR_LENGTH'],
    ['indefinite string with a chunk of another type', '5f 61 61 ff', 'CBOR_CHUNK'],
    ['nested indefinite chunk', '7f 7f ff ff', 'CBOR_CHUNK'],
    ['indefinite array without break', '9f 01 02', 'CBOR_TRUNCATED'],
    ['duplicate map key', 'a2 01 02 01 03', 'CBOR_DUPLICATE_KEY'],
    ['duplicate text key', 'a2 61 61 01 61 61 02', 'CBOR_DUPLICATE_KEY'],
  ])('rejects %s', (_name, h, code) => {
    expect(decodeError(hex(h)).code).toBe(code);
  });

  it('rejects nesting deeper than maxDepth (default 32) and accepts exactly the limit', () => {
    const nested = (n: number): Uint8Array => Uint8Array.from([...Array(n).fill(0x81), 0x01]);
    expect(decodeError(nested(33)).code).toBe('CBOR_TOO_DEEP');
    expect(() => decodeCbor(nested(32))).not.toThrow();
    expect(decodeError(nested(5), { maxDepth: 4 }).code).toBe('CBOR_TOO_DEEP');
    // 100k nested tags do not blow the stack: the depth limit stops them first.
    expect(decodeError(new Uint8Array(100_000).fill(0xc1)).code).toBe('CBOR_TOO_DEEP');
  });

  it('rejects more items than maxItems', () => {
    const bytes = Uint8Array.from([0x8a, ...Array(10).fill(0x00)]);
    expect(decodeError(bytes, { maxItems: 10 }).code).toBe('CBOR_TOO_MANY_ITEMS');
    expect(decodeCbor(bytes, { maxItems: 11 })).toHaveLength(10);
  });

  it('names the byte offset in its message', () => {
    const e = decodeError(hex('82 01 61 ff'));
    expect(e.message).toMatch(/not valid UTF-8 at byte 3/);
    expect(e.field).toBe('cbor');
    expect(e.retryable).toBe(false);
  });

  it('throws only DecodeError on random bytes and on every truncation of a valid item', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        try {
          decodeCbor(bytes);
        } catch (e) {
          return e instanceof DecodeError && typeof e.code === 'string';
        }
        return true;
      }),
      { numRuns: 3000 },
    );
    const valid = encodeCbor(
      new Map<CborValue, CborValue>([
        [1, 'text é'],
        [2, [1.5, 100000.5, 1.1, -5, 2n ** 60n]],
        ['k', hex('00ff')],
        [3, new CborTagged(1, 1700000000)],
      ]),
    );
    for (let n = 0; n < valid.length; n++) {
      expect(['CBOR_TRUNCATED', 'CBOR_LENGTH']).toContain(decodeError(valid.subarray(0, n)).code);
    }
  });
});

const cborValue: fc.Arbitrary<CborValue> = fc.letrec<{ value: CborValue }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small' },
    fc.integer(),
    fc.maxSafeInteger(),
    fc.bigInt({ min: -(2n ** 64n), max: 2n ** 64n - 1n }).filter((b) => b > 2n ** 53n || b < -(2n ** 53n)),
    fc.double().filter((d) => !Number.isNaN(d)),
    fc.string({ unit: 'binary' }),
    fc.uint8Array({ maxLength: 20 }),
    fc.boolean(),
    fc.constant(null),
    fc.constant(undefined),
    fc.array(tie('value'), { maxLength: 5 }),
    fc
      .uniqueArray(fc.tuple(fc.oneof(fc.integer(), fc.string()), tie('value')), {
        maxLength: 5,
        selector: ([k]) => k,
      })
      .map((entries) => new Map<CborValue, CborValue>(entries)),
    fc.tuple(fc.nat(), tie('value')).map(([t, v]) => new CborTagged(t, v)),
  ),
})).value;

describe('CBOR codec: properties', () => {
  it('decode(encode(x)) equals x', () => {
    fc.assert(
      fc.property(cborValue, (v) => {
        expect(decodeCbor(encodeCbor(v))).toEqual(v);
      }),
      { numRuns: 1000 },
    );
  });

  it('encodes every double in the shortest float that round-trips', () => {
    fc.assert(
      fc.property(fc.double({ noNaN: true }), (d) => {
        const bytes = encodeCbor(d);
        expect(Object.is(decodeCbor(bytes), d)).toBe(true);
        if (!Number.isInteger(d) || Object.is(d, -0) || Math.abs(d) > Number.MAX_SAFE_INTEGER) {
          const size = bytes.length;
          if (size === 9) expect(Math.fround(d)).not.toBe(d);
          if (size === 5) expect(decodeCbor(encodeCbor(d))).toBe(d);
        }
      }),
      { numRuns: 2000 },
    );
  });
});
