import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type CborValue, encodeCbor } from '../../../functions/core/cbor/index.js';
import { DecodeError, ValidationError } from '../../../functions/core/errors.js';
import {
  compressRecords,
  decodeSenml,
  encodeSenml,
  type ResolvedRecord,
  type SenmlValue,
} from '../../../functions/core/senml/index.js';

interface Fixture {
  format: 110 | 112;
  receivedAt: number;
  json?: unknown;
  hex?: string;
  cbor?: Record<string, unknown>[];
  expected: { name: string; time: number; timed: boolean; value: Record<string, unknown> }[];
}
const fixtures = JSON.parse(
  readFileSync(new URL('../../fixtures/lwm2m/senml-examples.json', import.meta.url), 'utf8'),
) as Record<string, Fixture>;

/** Fixture CBOR packs are written as JSON: numeric-string keys become integer labels, "hex:.." bytes. */
function cborFromJson(records: Record<string, unknown>[]): Uint8Array {
  return encodeCbor(
    records.map(
      (r) =>
        new Map<CborValue, CborValue>(
          Object.entries(r).map(([k, v]) => [
            /^-?\d+$/.test(k) ? Number(k) : k,
            typeof v === 'string' && v.startsWith('hex:')
              ? Uint8Array.from(Buffer.from(v.slice(4), 'hex'))
              : (v as CborValue),
          ]),
        ),
    ),
  );
}

function payloadOf(f: Fixture): Uint8Array {
  if (f.hex !== undefined) return Uint8Array.from(Buffer.from(f.hex, 'hex'));
  if (f.cbor !== undefined) return cborFromJson(f.cbor);
  return new TextEncoder().encode(JSON.stringify(f.json));
}

function expectedRecords(f: Fixture): ResolvedRecord[] {
  return f.expected.map((e) => ({
    ...e,
    value: (e.value.kind === 'vd'
      ? { kind: 'vd', value: Uint8Array.from(Buffer.from(e.value.hex as string, 'hex')) }
      : e.value) as SenmlValue,
  }));
}

const json = (x: unknown): Uint8Array => new TextEncoder().encode(JSON.stringify(x));

function decodeFailure(bytes: Uint8Array, format: 110 | 112): DecodeError {
  try {
    decodeSenml(bytes, format, { receivedAt: 0 });
  } catch (e) {
    if (e instanceof DecodeError) return e;
    throw new Error(`expected DecodeError, got ${String(e)}`);
  }
  throw new Error('expected DecodeError');
}

describe('SenML golden examples (RFC 8428 §5/§6, LwM2M Core §7.5.6)', () => {
  it.each(Object.entries(fixtures).filter(([k]) => !k.startsWith('$')))('%s', (_name, f) => {
    // Prepare
    const bytes = payloadOf(f);
    // Act
    const records = decodeSenml(bytes, f.format, { receivedAt: f.receivedAt });
    // Assess
    expect(records).toEqual(expectedRecords(f));
  });

  it('decodes the RFC 8428 §6 CBOR example to the same records as its JSON twin (apart from the name typo)', () => {
    const f = fixtures['rfc8428-6-multiple-datapoints-cbor']!;
    const fromCbor = decodeSenml(payloadOf(f), 112, { receivedAt: 5 });
    const fromJson = decodeSenml(
      json([
        { bn: 'urn:dev:ow:10e2073a0108006:', n: 'voltage', u: 'V', v: 120.1 },
        { n: 'current', u: 'A', v: 1.2 },
      ]),
      110,
      { receivedAt: 5 },
    );
    expect(fromCbor).toEqual(fromJson);
  });
});

describe('SenML resolution rules', () => {
  it('adds bv to v and bs to s, keeping bases until redefined', () => {
    const records = decodeSenml(
      json([
        { bn: '/a/', bv: 10, bs: 100, n: 'x', v: 1, s: 5 },
        { n: 'y', v: 2 },
        { bv: 0, n: 'z', v: 3, s: 1 },
      ]),
      110,
      { receivedAt: 0 },
    );
    expect(records.map((r) => [r.name, r.value, r.sum])).toEqual([
      ['/a/x', { kind: 'v', value: 11 }, 105],
      ['/a/y', { kind: 'v', value: 12 }, undefined],
      ['/a/z', { kind: 'v', value: 3 }, 101],
    ]);
  });

  it('treats a resolved time of exactly 2^28 s as absolute and just below as relative', () => {
    const [abs, rel] = decodeSenml(
      json([
        { n: '/a', v: 1, t: 2 ** 28 },
        { n: '/a', v: 1, t: 2 ** 28 - 1 },
      ]),
      110,
      {
        receivedAt: 1000,
      },
    );
    expect(abs!.time).toBe(2 ** 28 * 1000);
    expect(rel!.time).toBe(1000 + (2 ** 28 - 1) * 1000);
  });

  it('applies the 2^28 threshold after rounding to ms, so float noise in bt + t does not flip it', () => {
    // 450852744.145 + -182417288.145 is 268435455.99999997 in doubles
    const [r] = decodeSenml(json([{ n: '/a', bt: 450852744.145, t: -182417288.145, v: 1 }]), 110, {
      receivedAt: 5,
    });
    expect(r!.time).toBe(2 ** 28 * 1000);
  });

  it('gives records without a value kind none (path lists)', () => {
    const records = decodeSenml(json([{ bn: '/3/0/', n: '0' }, { n: '1' }]), 110, { receivedAt: 7 });
    expect(records).toEqual([
      { name: '/3/0/0', time: 7, timed: false, value: { kind: 'none' } },
      { name: '/3/0/1', time: 7, timed: false, value: { kind: 'none' } },
    ]);
  });

  it('accepts padded base64url in JSON vd and ignores unknown labels without a trailing underscore', () => {
    const [r] = decodeSenml(json([{ n: '/5/0/0', vd: 'aGkgCg==', foo: 1 }]), 110, { receivedAt: 0 });
    expect(Buffer.from((r!.value as { value: Uint8Array }).value).toString()).toBe('hi \n');
  });
});

describe('SenML errors', () => {
  it.each([
    ['JSON that does not parse', new TextEncoder().encode('[{'), 110, 'SENML_JSON', 'records'],
    ['a JSON object instead of an array', json({ n: 'x' }), 110, 'SENML_NOT_ARRAY', 'records'],
    ['a record that is not an object', json([{ n: '/a', v: 1 }, 5]), 110, 'SENML_RECORD', 'records[1]'],
    ['v as a string', json([{ n: '/a', v: '1' }]), 110, 'SENML_FIELD_TYPE', 'records[0].v'],
    ['bn as a number', json([{ bn: 3, n: 'a', v: 1 }]), 110, 'SENML_FIELD_TYPE', 'records[0].bn'],
    ['two value fields', json([{ n: '/a', v: 1, vs: 'x' }]), 110, 'SENML_MULTIPLE_VALUES', 'records[0].vs'],
    [
      'a must-understand label',
      json([{ n: '/a', v: 1, foo_: 1 }]),
      110,
      'SENML_MUST_UNDERSTAND',
      'records[0].foo_',
    ],
    ['an empty resolved name', json([{ n: '/a', v: 1 }, { v: 2 }]), 110, 'SENML_EMPTY_NAME', 'records[1].n'],
    [
      'vd that is not base64url',
      json([{ n: '/a' }, {}, {}, { n: '/b', vd: 'a+b/' }]),
      110,
      'SENML_BASE64',
      'records[3].vd',
    ],
    ['vd of impossible length', json([{ n: '/a', vd: 'abcde' }]), 110, 'SENML_BASE64', 'records[0].vd'],
    ['CBOR vd as text', cborFromJson([{ '0': '/a', '8': 'aGk' }]), 112, 'SENML_FIELD_TYPE', 'records[0].vd'],
    [
      'CBOR v as a byte string',
      cborFromJson([{ '0': '/a', '2': 'hex:01' }]),
      112,
      'SENML_FIELD_TYPE',
      'records[0].v',
    ],
    [
      'CBOR vb as an integer',
      cborFromJson([{ '0': '/a', '4': 1 }]),
      112,
      'SENML_FIELD_TYPE',
      'records[0].vb',
    ],
    [
      'CBOR vlo as an integer',
      cborFromJson([{ '0': '/a', vlo: 66 }]),
      112,
      'SENML_FIELD_TYPE',
      'records[0].vlo',
    ],
    [
      'CBOR must-understand text label',
      cborFromJson([{ '0': '/a', x_: 1 }]),
      112,
      'SENML_MUST_UNDERSTAND',
      'records[0].x_',
    ],
    ['a CBOR map instead of an array', encodeCbor(new Map([[0, '/a']])), 112, 'SENML_NOT_ARRAY', 'records'],
    ['a CBOR record that is an array', encodeCbor([[0, '/a']]), 112, 'SENML_RECORD', 'records[0]'],
    [
      'CBOR NaN value',
      cborFromJson([{ '0': '/a', '2': Number.NaN }]),
      112,
      'SENML_FIELD_TYPE',
      'records[0].v',
    ],
  ] as [string, Uint8Array, 110 | 112, string, string][])('rejects %s', (_n, bytes, format, code, field) => {
    const e = decodeFailure(bytes, format);
    expect(e.code).toBe(code);
    expect(e.field).toBe(field);
    expect(e.message).toContain(field.startsWith('records[') ? field.split('.')[0]! : 'SenML');
  });

  it('rejects a CBOR record that repeats a label, and accepts indefinite-length arrays and maps', () => {
    // [{0: "/a", 2: 1, 2: 2}]
    const dup = Uint8Array.from(Buffer.from('81a300622f610201020 2'.replace(/\s/g, ''), 'hex'));
    const e = decodeFailure(dup, 112);
    expect(e.code).toBe('SENML_DUPLICATE_LABEL');
    expect(e.field).toBe('records[0].v');
    // [_ {_ 0: "/a", 2: 1.5}, {0: "/b", 4: true} ]
    const indefinite = Uint8Array.from(Buffer.from('9fbf00622f6102f93e00ffa200622f6204f5ff', 'hex'));
    expect(decodeSenml(indefinite, 112, { receivedAt: 3 }).map((r) => [r.name, r.value])).toEqual([
      ['/a', { kind: 'v', value: 1.5 }],
      ['/b', { kind: 'vb', value: true }],
    ]);
    expect(decodeFailure(Uint8Array.from([0x9f, 0xa0]), 112).code).toBe('CBOR_TRUNCATED');
    expect(decodeFailure(Uint8Array.from([0x81, 0xa0, 0x00]), 112).code).toBe('CBOR_TRAILING_BYTES');
  });

  it('rejects more records than maxRecords', () => {
    expect(() =>
      decodeSenml(json([{ n: '/a' }, { n: '/b' }]), 110, { receivedAt: 0, maxRecords: 1 }),
    ).toThrow(expect.objectContaining({ code: 'SENML_TOO_MANY_RECORDS' }));
  });

  it('throws only DecodeError on random bytes, on every truncation and on 128 KB of noise', () => {
    const valid = payloadOf(fixtures['lwm2m-send-objlnk-and-bn-change']!);
    for (let n = 0; n < valid.length; n++)
      expect(decodeFailure(valid.subarray(0, n), 112)).toBeInstanceOf(DecodeError);
    const jsonValid = payloadOf(fixtures['rfc8428-5.1.3-multiple-measurements']!);
    for (let n = 0; n < jsonValid.length; n++) {
      expect(decodeFailure(jsonValid.subarray(0, n), 110)).toBeInstanceOf(DecodeError);
    }
    const noise = Uint8Array.from({ length: 128 * 1024 }, (_, i) => (i * 31 + 7) & 0xff);
    expect(decodeFailure(noise, 112)).toBeInstanceOf(DecodeError);
    expect(decodeFailure(noise, 110)).toBeInstanceOf(DecodeError);
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 60 }),
        fc.constantFrom(110 as const, 112 as const),
        (bytes, format) => {
          try {
            decodeSenml(bytes, format, { receivedAt: 0 });
          } catch (e) {
            return e instanceof DecodeError;
          }
          return true;
        },
      ),
      { numRuns: 2000 },
    );
  });
});

describe('SenML encoding and compression', () => {
  it('encodes JSON with RFC labels and vd as unpadded base64url', () => {
    const bytes = encodeSenml(
      [
        { bn: '/5/0/', n: '0', vd: Uint8Array.from([0xfb, 0xff]) },
        { n: '1', vlo: '3:0' },
      ],
      110,
    );
    expect(new TextDecoder().decode(bytes)).toBe('[{"bn":"/5/0/","n":"0","vd":"-_8"},{"n":"1","vlo":"3:0"}]');
  });

  it('encodes CBOR with integer labels and the text label "vlo"', () => {
    const bytes = encodeSenml(
      [
        { bn: '/3/0/', bt: 1.5, n: '7', v: 1 },
        { n: '8', vlo: '3:0' },
      ],
      112,
    );
    expect(Buffer.from(bytes).toString('hex')).toBe(
      `82a4${'21652f332f302f'}${'22f93e00'}${'006137'}${'0201'}a2${'006138'}${'63766c6f63333a30'}`,
    );
  });

  it('refuses to encode two values in one record or a wrong type', () => {
    expect(() => encodeSenml([{ n: '/a', v: 1, vb: true }], 112)).toThrow(ValidationError);
    expect(() => encodeSenml([{ n: 5 as unknown as string }], 110)).toThrow(/records\[0\]\.n/);
  });

  it('factors out the common path prefix and the base time', () => {
    const t = 1_700_000_000_000;
    const out = compressRecords([
      { name: '/3303/0/5700', time: t, value: { kind: 'v', value: 1 } },
      { name: '/3303/1/5700', time: t + 1500, value: { kind: 'v', value: 2 } },
    ]);
    expect(out).toEqual([
      { bn: '/3303/', bt: 1_700_000_000, n: '0/5700', v: 1 },
      { n: '1/5700', t: 1.5, v: 2 },
    ]);
  });

  const path = fc
    .tuple(
      fc.constantFrom(3, 3303, 3304, 6),
      fc.nat(3),
      fc.constantFrom(0, 1, 5700, 5701),
      fc.option(fc.nat(2)),
    )
    .map(([o, i, r, ri]) => (ri === null ? `/${o}/${i}/${r}` : `/${o}/${i}/${r}/${ri}`));
  const value: fc.Arbitrary<SenmlValue> = fc.oneof(
    fc.double({ noNaN: true, noDefaultInfinity: true }).map((v) => ({ kind: 'v' as const, value: v })),
    fc.integer().map((v) => ({ kind: 'v' as const, value: v })),
    fc.string().map((v) => ({ kind: 'vs' as const, value: v })),
    fc.boolean().map((v) => ({ kind: 'vb' as const, value: v })),
    fc.uint8Array({ maxLength: 16 }).map((v) => ({ kind: 'vd' as const, value: v })),
    fc.tuple(fc.nat(65534), fc.nat(65534)).map(([a, b]) => ({ kind: 'vlo' as const, value: `${a}:${b}` })),
    fc.constant({ kind: 'none' as const }),
  );
  const epochMs = fc.integer({ min: 2 ** 28 * 1000, max: 4_102_444_800_000 });
  const record = fc.record({ name: path, time: fc.option(epochMs, { nil: undefined }), value });

  it.each([110, 112] as const)(
    'round-trips resolved records through compress + encode + decode (%i)',
    (format) => {
      fc.assert(
        fc.property(fc.array(record, { minLength: 1, maxLength: 12 }), fc.boolean(), (records, allTimed) => {
          // Prepare: either all records timed, or a mix
          const input = allTimed
            ? records.map((r, i) => ({ ...r, time: r.time ?? 2 ** 28 * 1000 + i }))
            : records;
          const receivedAt = 1_800_000_000_000;
          // Act
          const decoded = decodeSenml(encodeSenml(compressRecords(input), format), format, { receivedAt });
          // Assess
          expect(decoded).toEqual(
            input.map((r) => ({
              name: r.name,
              time: r.time ?? receivedAt,
              timed: r.time !== undefined,
              // JSON has no negative zero: -0 is written as 0
              value:
                format === 110 && r.value.kind === 'v' && Object.is(r.value.value, -0)
                  ? { kind: 'v', value: 0 }
                  : r.value,
            })),
          );
        }),
        { numRuns: 500 },
      );
    },
  );
});
