import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CborTagged, type CborValue, encodeCbor } from '../../../functions/core/cbor/index.js';
import { DecodeError, ProtocolError, ValidationError } from '../../../functions/core/errors.js';
import { decodeLwm2mCbor, encodeLwm2mCbor } from '../../../functions/core/lwm2m/lwm2m-cbor.js';
import type { SenmlValue } from '../../../functions/core/senml/index.js';

const hex = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s.replace(/\s+/g, ''), 'hex'));
const m = (entries: [CborValue, CborValue][]): Map<CborValue, CborValue> => new Map(entries);
const R = 1_700_000_000_000;

function failure(bytes: Uint8Array): DecodeError {
  try {
    decodeLwm2mCbor(bytes, { receivedAt: R });
  } catch (e) {
    if (e instanceof DecodeError) return e;
    throw new Error(`expected DecodeError, got ${String(e)}`);
  }
  throw new Error('expected DecodeError');
}

describe('LwM2M CBOR (11544)', () => {
  it('decodes a hand-encoded payload mixing key arrays and nested maps', () => {
    // Prepare: {[3303, 0, 5700]: 22.5, 3: {0: {0: "Open Mobile Alliance", 7: {0: 3800, 1: 5000}, 13: 1(1700000000)}}}
    const bytes = hex(`a2
      83 19 0ce7 00 19 1644  f9 4da0
      03 a1 00 a3
        00 74 ${Buffer.from('Open Mobile Alliance').toString('hex')}
        07 a2 00 19 0ed8 01 19 1388
        0d c1 1a 6553f100`);
    // Act
    const records = decodeLwm2mCbor(bytes, { receivedAt: R });
    // Assess
    expect(records).toEqual([
      { name: '/3303/0/5700', time: R, timed: false, value: { kind: 'v', value: 22.5 } },
      { name: '/3/0/0', time: R, timed: false, value: { kind: 'vs', value: 'Open Mobile Alliance' } },
      { name: '/3/0/7/0', time: R, timed: false, value: { kind: 'v', value: 3800 } },
      { name: '/3/0/7/1', time: R, timed: false, value: { kind: 'v', value: 5000 } },
      { name: '/3/0/13', time: R, timed: false, value: { kind: 'v', value: 1700000000 } },
    ]);
  });

  it('treats {[3,0,0]: x}, {3:{0:{0:x}}} and {3:{[0,0]: x}} alike', () => {
    const forms = [m([[[3, 0, 0], 'x']]), m([[3, m([[0, m([[0, 'x']])]])]]), m([[3, m([[[0, 0], 'x']])]])];
    const decoded = forms.map((f) => decodeLwm2mCbor(encodeCbor(f), { receivedAt: 1 }));
    expect(decoded[0]).toEqual([
      { name: '/3/0/0', time: 1, timed: false, value: { kind: 'vs', value: 'x' } },
    ]);
    expect(decoded[1]).toEqual(decoded[0]);
    expect(decoded[2]).toEqual(decoded[0]);
  });

  it('types text at an Objlnk resource as vlo, and keeps booleans, bytes and null', () => {
    const bytes = encodeCbor(
      m([
        [[0, 1, 26], '24:0'],
        [[1, 0, 23], false],
        [[5, 0, 0], Uint8Array.from([1, 2])],
        [[3303, 0, 5701], null],
      ]),
    );
    expect(decodeLwm2mCbor(bytes, { receivedAt: 0 }).map((r) => r.value)).toEqual([
      { kind: 'vlo', value: '24:0' },
      { kind: 'vb', value: false },
      { kind: 'vd', value: Uint8Array.from([1, 2]) },
      { kind: 'none' },
    ]);
  });

  it.each([
    ['not a map', encodeCbor([1]), 'LWM2M_CBOR_NOT_MAP', 'root'],
    ['a text key', encodeCbor(m([['3', 1]])), 'LWM2M_CBOR_KEY', 'root'],
    ['a negative key', encodeCbor(m([[3, m([[-1, 1]])]])), 'LWM2M_CBOR_KEY', '/3'],
    ['an empty key array', encodeCbor(m([[[], 1]])), 'LWM2M_CBOR_KEY', 'root'],
    ['a key above 65535', encodeCbor(m([[[3, 0, 70000], 1]])), 'LWM2M_CBOR_KEY', 'root'],
    ['a path deeper than 4', encodeCbor(m([[[3, 0, 7, 0, 1], 1]])), 'LWM2M_CBOR_PATH', '/3/0/7/0/1'],
    ['a value at an instance path', encodeCbor(m([[[3, 0], 1]])), 'LWM2M_CBOR_PATH', '/3/0'],
    ['an array value', encodeCbor(m([[[3, 0, 0], [1]]])), 'LWM2M_CBOR_VALUE', '/3/0/0'],
    ['an unknown tag', encodeCbor(m([[[3, 0, 0], new CborTagged(2, 1)]])), 'LWM2M_CBOR_VALUE', '/3/0/0'],
    ['a bad object link', encodeCbor(m([[[0, 1, 26], 'x']])), 'LWM2M_CBOR_VALUE', '/0/1/26'],
    [
      'a path given twice',
      encodeCbor(
        m([
          [[3, 0, 0], 1],
          [3, m([[[0, 0], 2]])],
        ]),
      ),
      'LWM2M_CBOR_DUPLICATE',
      '/3/0/0',
    ],
  ] as [string, Uint8Array, string, string][])('rejects %s', (_n, bytes, code, field) => {
    const e = failure(bytes);
    expect(e.code).toBe(code);
    expect(e.field).toBe(field);
  });

  it('throws only DecodeError on garbage and every truncation', () => {
    const valid = encodeLwm2mCbor([
      { name: '/3303/0/5700', value: { kind: 'v', value: 21.25 } },
      { name: '/3/0/0', value: { kind: 'vs', value: 'ACME' } },
    ]);
    for (let n = 0; n < valid.length; n++) expect(failure(valid.subarray(0, n))).toBeInstanceOf(DecodeError);
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 60 }), (bytes) => {
        try {
          decodeLwm2mCbor(bytes, { receivedAt: 0 });
        } catch (e) {
          return e instanceof DecodeError;
        }
        return true;
      }),
      { numRuns: 2000 },
    );
  });

  it('encodes nested maps and round-trips records', () => {
    const bytes = encodeLwm2mCbor([
      { name: '/3/0/0', value: { kind: 'vs', value: 'a' } },
      { name: '/3/0/7/1', value: { kind: 'v', value: 5 } },
    ]);
    expect(Buffer.from(bytes).toString('hex')).toBe('a103a100a2006161' + '07a10105');
    const path = fc
      .tuple(fc.constantFrom(3, 3303, 5, 6), fc.nat(3), fc.nat(20), fc.option(fc.nat(3)))
      .map(([o, i, r, ri]) => (ri === null ? `/${o}/${i}/${r}` : `/${o}/${i}/${r}/${ri}`));
    const value: fc.Arbitrary<SenmlValue> = fc.oneof(
      fc.double({ noNaN: true, noDefaultInfinity: true }).map((v) => ({ kind: 'v' as const, value: v })),
      fc.string().map((v) => ({ kind: 'vs' as const, value: `s${v}` })),
      fc.boolean().map((v) => ({ kind: 'vb' as const, value: v })),
      fc.uint8Array({ maxLength: 8 }).map((v) => ({ kind: 'vd' as const, value: v })),
    );
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.record({ name: path, value }), {
          selector: (r) => r.name.split('/').slice(0, 4).join('/'),
          maxLength: 10,
        }),
        (records) => {
          const decoded = decodeLwm2mCbor(encodeLwm2mCbor(records), { receivedAt: 9 });
          expect(new Map(decoded.map((r) => [r.name, r.value]))).toEqual(
            new Map(records.map((r) => [r.name, r.value])),
          );
          expect(decoded.every((r) => r.time === 9 && !r.timed)).toBe(true);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('refuses to encode a bad path, a duplicate, or a value that is also a parent', () => {
    const v: SenmlValue = { kind: 'v', value: 1 };
    expect(() => encodeLwm2mCbor([{ name: '3/0/0', value: v }])).toThrow(ProtocolError);
    expect(() =>
      encodeLwm2mCbor([
        { name: '/3/0/0', value: v },
        { name: '/3/0/0', value: v },
      ]),
    ).toThrow(ValidationError);
    expect(() =>
      encodeLwm2mCbor([
        { name: '/3/0/7', value: v },
        { name: '/3/0/7/0', value: v },
      ]),
    ).toThrow(ValidationError);
  });
});
