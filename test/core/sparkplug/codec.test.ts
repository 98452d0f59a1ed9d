import { deflateRawSync, deflateSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { DecodeError, ValidationError } from '../../../functions/core/errors.js';
import {
  compressPayload,
  dataTypeName,
  decodePayload,
  encodePayload,
  interpretValue,
  parseStateMessage,
  type SpMetricInput,
} from '../../../functions/core/sparkplug/codec.js';
import { DataType, type RawValue, type SpMetric } from '../../../functions/core/sparkplug/types.js';

const T = 1_700_000_000_000;
function rawHex(raw: RawValue): string {
  if (raw.field !== 'bytes') throw new Error(`expected bytes_value, got ${raw.field}`);
  return Buffer.from(raw.value).toString('hex');
}

function roundTrip(metric: SpMetricInput): SpMetric {
  return decodePayload(encodePayload({ metrics: [metric] })).metrics[0]!;
}

function decodeRaw(datatype: number, raw: RawValue): SpMetric {
  return roundTrip({ name: 'm', datatype, raw });
}

function decodeError(fn: () => unknown): DecodeError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(DecodeError);
    return error as DecodeError;
  }
  throw new Error('expected a DecodeError');
}

describe('dataTypeName', () => {
  it('names spec codes and marks unknown ones', () => {
    expect(dataTypeName(2)).toBe('Int16');
    expect(dataTypeName(34)).toBe('DateTimeArray');
    expect(dataTypeName(0)).toBe('Unknown');
    expect(dataTypeName(99)).toBe('Unknown(99)');
  });
});

describe('integers: width and sign', () => {
  it('encodes Int8 -128/127 as sign-extended 32-bit patterns in int_value and decodes them back', () => {
    const lo = roundTrip({ name: 'a', datatype: DataType.Int8, value: -128 });
    const hi = roundTrip({ name: 'a', datatype: DataType.Int8, value: 127 });

    expect(lo.raw).toEqual({ field: 'int', value: 0xffffff80 });
    expect(lo.value).toBe(-128);
    expect(hi.value).toBe(127);
  });

  it('masks then sign-extends unextended patterns (Int16 0xFFA9 → -87, Int8 0x80 → -128)', () => {
    expect(decodeRaw(DataType.Int16, { field: 'int', value: 0xffa9 }).value).toBe(-87);
    expect(decodeRaw(DataType.Int16, { field: 'int', value: 0xffffffa9 }).value).toBe(-87);
    expect(decodeRaw(DataType.Int8, { field: 'int', value: 0x80 }).value).toBe(-128);
    expect(decodeRaw(DataType.Int32, { field: 'int', value: 0x80000000 }).value).toBe(-2147483648);
  });

  it('reads signed values from long_value, 64-bit sign-extended', () => {
    expect(decodeRaw(DataType.Int32, { field: 'long', value: 2n ** 64n - 1n }).value).toBe(-1);
    expect(decodeRaw(DataType.Int16, { field: 'long', value: 2n ** 64n - 87n }).value).toBe(-87);
  });

  it('masks unsigned types to their width', () => {
    expect(decodeRaw(DataType.UInt8, { field: 'int', value: 0xffffffff }).value).toBe(255);
    expect(decodeRaw(DataType.UInt16, { field: 'int', value: 0x1ffff }).value).toBe(0xffff);
  });

  it('reads UInt32 4294967295 from int_value (spec) and long_value (Tahu); encodes int_value by default', () => {
    const spec = roundTrip({ name: 'u', datatype: DataType.UInt32, value: 4294967295 });
    const tahu = roundTrip({
      name: 'u',
      datatype: DataType.UInt32,
      raw: { field: 'long', value: 4294967295n },
    });

    expect(spec.raw.field).toBe('int');
    expect(spec.value).toBe(4294967295);
    expect(tahu.raw.field).toBe('long');
    expect(tahu.value).toBe(4294967295);
  });

  it('keeps Int64 min/max and UInt64 max exact as bigint, safe values as number', () => {
    const min = roundTrip({ name: 'x', datatype: DataType.Int64, value: -(2n ** 63n) });
    const max = roundTrip({ name: 'x', datatype: DataType.Int64, value: 2n ** 63n - 1n });
    const umax = roundTrip({ name: 'x', datatype: DataType.UInt64, value: 2n ** 64n - 1n });
    const neg = roundTrip({ name: 'x', datatype: DataType.Int64, value: -1 });
    const safe = roundTrip({ name: 'x', datatype: DataType.UInt64, value: Number.MAX_SAFE_INTEGER });
    const unsafe = roundTrip({ name: 'x', datatype: DataType.UInt64, value: 2n ** 53n });

    expect(min.raw).toEqual({ field: 'long', value: 2n ** 63n });
    expect(min.value).toBe(-(2n ** 63n));
    expect(max.value).toBe(2n ** 63n - 1n);
    expect(umax.value).toBe(2n ** 64n - 1n);
    expect(neg.raw).toEqual({ field: 'long', value: 2n ** 64n - 1n });
    expect(neg.value).toBe(-1);
    expect(safe.value).toBe(Number.MAX_SAFE_INTEGER);
    expect(unsafe.value).toBe(2n ** 53n);
  });

  it('decodes DateTime as signed epoch ms', () => {
    expect(roundTrip({ name: 't', datatype: DataType.DateTime, value: T }).value).toBe(T);
    expect(roundTrip({ name: 't', datatype: DataType.DateTime, value: -86_400_000 }).value).toBe(-86_400_000);
  });

  it('rejects out-of-range and non-integer values when encoding', () => {
    expect(() => encodePayload({ metrics: [{ name: 'a', datatype: DataType.Int8, value: 128 }] })).toThrow(
      ValidationError,
    );
    expect(() => encodePayload({ metrics: [{ name: 'a', datatype: DataType.UInt64, value: -1 }] })).toThrow(
      /out of range/,
    );
    expect(() => encodePayload({ metrics: [{ name: 'a', datatype: DataType.Int32, value: 1.5 }] })).toThrow(
      /not an integer/,
    );
    expect(() => encodePayload({ metrics: [{ name: 'a', value: 1 }] })).toThrow(/needs a datatype/);
  });
});

describe('floating point, boolean, strings, bytes', () => {
  it('widens Float from float32 (12.1 → 12.100000381469727) and keeps Double exact', () => {
    expect(roundTrip({ name: 'f', datatype: DataType.Float, value: 12.1 }).value).toBe(12.100000381469727);
    expect(roundTrip({ name: 'd', datatype: DataType.Double, value: 12.1 }).value).toBe(12.1);
  });

  it('carries NaN and ±Infinity', () => {
    for (const datatype of [DataType.Float, DataType.Double]) {
      expect(roundTrip({ name: 'x', datatype, value: Number.NaN }).value).toBeNaN();
      expect(roundTrip({ name: 'x', datatype, value: Number.POSITIVE_INFINITY }).value).toBe(Infinity);
      expect(roundTrip({ name: 'x', datatype, value: Number.NEGATIVE_INFINITY }).value).toBe(-Infinity);
    }
  });

  it('decodes Boolean, String, Text, UUID (unicode) and Bytes/File', () => {
    const bytes = Uint8Array.from([0, 1, 255]);

    expect(roundTrip({ name: 'b', datatype: DataType.Boolean, value: false }).value).toBe(false);
    expect(roundTrip({ name: 's', datatype: DataType.String, value: 'héllo 日本 🙂' }).value).toBe(
      'héllo 日本 🙂',
    );
    expect(roundTrip({ name: 's', datatype: DataType.Text, value: '' }).value).toBe('');
    expect(roundTrip({ name: 'u', datatype: DataType.UUID, value: 'a0b1' }).value).toBe('a0b1');
    expect(roundTrip({ name: 'y', datatype: DataType.Bytes, value: bytes }).value).toEqual(bytes);
    expect(roundTrip({ name: 'f', datatype: DataType.File, value: bytes }).value).toEqual(bytes);
  });

  it('copies Bytes out of a Buffer input (plain Uint8Array, no aliasing of the input)', () => {
    const input = Buffer.from(
      encodePayload({ metrics: [{ name: 'y', datatype: DataType.Bytes, value: Uint8Array.from([7, 8]) }] }),
    );

    const value = decodePayload(input).metrics[0]!.value as Uint8Array;
    input.fill(0);

    expect(value.constructor).toBe(Uint8Array);
    expect([...value]).toEqual([7, 8]);
  });

  it('throws VALUE_MISMATCH naming the field when the wire field cannot carry the datatype', () => {
    const bytes = encodePayload({
      metrics: [{ name: 'x', datatype: DataType.Int32, raw: { field: 'string', value: 'no' } }],
    });

    const err = decodeError(() => decodePayload(bytes));

    expect(err.code).toBe('SPARKPLUG_VALUE_MISMATCH');
    expect(err.field).toBe('Metric.value');
    expect(err.message).toMatch(/Int32.*string_value/);
  });
});

describe('alias-only DATA metrics and interpretValue', () => {
  it('leaves value undefined without a datatype and interprets the raw value with the birth datatype', () => {
    const m = roundTrip({ alias: 5n, datatype: DataType.Int16, value: -87, omitDatatype: true });

    expect(m.datatype).toBeUndefined();
    expect(m.alias).toBe(5n);
    expect(m.value).toBeUndefined();
    expect(interpretValue(DataType.Int16, m.raw)).toBe(-87);
    expect(interpretValue(DataType.UInt16, m.raw)).toBe(0xffa9);
  });

  it('returns null for an absent value and throws DecodeError on a mismatch', () => {
    expect(interpretValue(DataType.Double, { field: 'none' })).toBeNull();
    const err = decodeError(() => interpretValue(DataType.Boolean, { field: 'int', value: 1 }));
    expect(err.code).toBe('SPARKPLUG_VALUE_MISMATCH');
    expect(err.field).toBe('Metric.value');
  });

  it('gives Unknown/unrecognised datatypes their natural reading', () => {
    expect(interpretValue(0, { field: 'long', value: 5n })).toBe(5);
    expect(interpretValue(99, { field: 'string', value: 's' })).toBe('s');
  });
});

describe('arrays (22–34)', () => {
  const cases: Array<[number, unknown[]]> = [
    [DataType.Int8Array, [-128, 0, 127]],
    [DataType.Int16Array, [-32768, -87, 32767]],
    [DataType.Int32Array, [-2147483648, 2147483647]],
    [DataType.Int64Array, [-(2n ** 63n), -1, 2n ** 63n - 1n]],
    [DataType.UInt8Array, [0, 255]],
    [DataType.UInt16Array, [0, 65535]],
    [DataType.UInt32Array, [0, 4294967295]],
    [DataType.UInt64Array, [0, Number.MAX_SAFE_INTEGER, 2n ** 64n - 1n]],
    [DataType.FloatArray, [1.5, -0.25, Number.POSITIVE_INFINITY]],
    [DataType.DoubleArray, [12.1, -1e300, Number.NaN]],
    [DataType.BooleanArray, [true, false, true]],
    [DataType.StringArray, ['', 'a', 'ü 日本 🙂', '']],
    [DataType.DateTimeArray, [T, -1, 0]],
  ];

  it.each(cases)('round-trips datatype %i with edge values and as an empty array', (datatype, values) => {
    expect(roundTrip({ name: 'a', datatype, value: values as never }).value).toEqual(values);
    expect(roundTrip({ name: 'a', datatype, value: [] }).value).toEqual([]);
  });

  it('lays out packed little-endian elements', () => {
    expect(rawHex(roundTrip({ name: 'a', datatype: DataType.Int16Array, value: [-87, 1] }).raw)).toBe(
      'a9ff0100',
    );
    expect(rawHex(roundTrip({ name: 'a', datatype: DataType.FloatArray, value: [1] }).raw)).toBe('0000803f');
    expect(rawHex(roundTrip({ name: 'a', datatype: DataType.DateTimeArray, value: [T] }).raw)).toBe(
      '0068e5cf8b010000',
    );
  });

  it('packs BooleanArray as a uint32 LE count then MSB-first bits, for counts not a multiple of 8', () => {
    const nine = [true, false, true, true, false, false, false, false, true];
    const m = roundTrip({ name: 'b', datatype: DataType.BooleanArray, value: nine });

    expect(rawHex(m.raw)).toBe('09000000b080');
    expect(m.value).toEqual(nine);
    for (const n of [0, 1, 7, 8, 17]) {
      const values = Array.from({ length: n }, (_, i) => i % 3 === 0);
      expect(roundTrip({ name: 'b', datatype: DataType.BooleanArray, value: values }).value).toEqual(values);
    }
    expect(rawHex(roundTrip({ name: 'b', datatype: DataType.BooleanArray, value: [] }).raw)).toBe('00000000');
  });

  it('writes StringArray as NUL-terminated UTF-8 strings', () => {
    const m = roundTrip({ name: 's', datatype: DataType.StringArray, value: ['', 'a', 'ü'] });
    expect(rawHex(m.raw)).toBe('006100c3bc00');
  });

  it('rejects malformed array bytes with ARRAY_LAYOUT', () => {
    for (const [datatype, bytes] of [
      [DataType.Int32Array, [1, 2, 3]],
      [DataType.DoubleArray, [1, 2, 3, 4]],
      [DataType.BooleanArray, [9, 0, 0, 0, 0xff]],
      [DataType.BooleanArray, [0xff, 0xff, 0xff, 0xff]],
      [DataType.BooleanArray, [1, 0]],
    ] as Array<[number, number[]]>) {
      const payload = encodePayload({
        metrics: [{ name: 'a', datatype, raw: { field: 'bytes', value: Uint8Array.from(bytes) } }],
      });
      expect(decodeError(() => decodePayload(payload)).code).toBe('SPARKPLUG_ARRAY_LAYOUT');
    }
  });

  it('refuses NUL inside a StringArray element when encoding', () => {
    expect(() =>
      encodePayload({ metrics: [{ name: 's', datatype: DataType.StringArray, value: ['a\0b'] }] }),
    ).toThrow(ValidationError);
  });
});

describe('DataSet', () => {
  it('decodes every basic column type with null cells', () => {
    const types = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14];
    const row1 = [
      -128,
      -87,
      -5,
      -(2n ** 63n),
      255,
      65535,
      4294967295,
      2n ** 64n - 1n,
      12.1,
      0.1,
      true,
      's',
      T,
      'txt',
    ];
    const row2 = types.map(() => null);
    const m = roundTrip({
      name: 'ds',
      datatype: DataType.DataSet,
      value: { columns: types.map((t) => `c${t}`), types, rows: [row1, row2] },
    });

    expect(m.value).toEqual({
      numOfColumns: 14n,
      columns: types.map((t) => `c${t}`),
      types,
      rows: [[...row1.slice(0, 8), Math.fround(12.1), ...row1.slice(9)], row2],
    });
  });

  it('accepts packed `types` and derives num_of_columns when absent', () => {
    // DataSet { columns: ['a'], types: packed [3], rows: [[int 7]] } written by hand
    const ds = [0x12, 0x01, 0x61, 0x1a, 0x01, 0x03, 0x22, 0x04, 0x0a, 0x02, 0x08, 0x07];
    const metric = [0x0a, 0x01, 0x78, 0x20, 0x10, 0x8a, 0x01, ds.length, ...ds];
    const m = decodePayload(Uint8Array.from([0x12, metric.length, ...metric])).metrics[0]!;

    expect(m.value).toEqual({ numOfColumns: 1n, columns: ['a'], types: [3], rows: [[7]] });
  });

  it('refuses rows whose length differs from the columns when encoding', () => {
    expect(() =>
      encodePayload({
        metrics: [
          { name: 'd', datatype: DataType.DataSet, value: { columns: ['a'], types: [3], rows: [[1, 2]] } },
        ],
      }),
    ).toThrow(/row length/);
  });
});

describe('Templates', () => {
  it('decodes definitions with parameters and nested instances', () => {
    const payload = decodePayload(
      encodePayload({
        metrics: [
          {
            name: 'Motor',
            datatype: DataType.Template,
            value: {
              version: '1.0',
              isDefinition: true,
              parameters: [
                { name: 'rated', type: DataType.UInt32, value: 4294967295 },
                { name: 'label', type: DataType.String, value: 'M' },
                { name: 'gain', type: DataType.Float, value: 0.5 },
              ],
              metrics: [{ name: 'rpm', datatype: DataType.Int16, value: 0 }],
            },
          },
          {
            name: 'm1',
            datatype: DataType.Template,
            value: {
              templateRef: 'Motor',
              metrics: [
                {
                  name: 'inner',
                  datatype: DataType.Template,
                  value: {
                    templateRef: 'Sub',
                    metrics: [{ name: 'deep', datatype: DataType.Int8, value: -1 }],
                  },
                },
              ],
            },
          },
        ],
      }),
    );

    const def = payload.metrics[0]!.value as {
      version: string;
      isDefinition: boolean;
      parameters: unknown[];
    };
    expect(def.version).toBe('1.0');
    expect(def.isDefinition).toBe(true);
    expect(def.parameters).toMatchObject([
      { name: 'rated', type: 7, value: 4294967295 },
      { name: 'label', type: 12, value: 'M' },
      { name: 'gain', type: 9, value: 0.5 },
    ]);
    expect(payload.metrics[1]!.value).toMatchObject({
      templateRef: 'Motor',
      isDefinition: false,
      metrics: [{ name: 'inner', value: { templateRef: 'Sub', metrics: [{ name: 'deep', value: -1 }] } }],
    });
  });
});

describe('PropertySets, MetaData, flags and timestamps', () => {
  it('decodes nested PropertySets and PropertySetLists', () => {
    const m = roundTrip({
      name: 'p',
      datatype: DataType.Int32,
      value: 1,
      properties: {
        keys: ['Quality', 'eng', 'list', 'missing'],
        values: [
          { type: DataType.Int32, value: 192 },
          {
            type: DataType.PropertySet,
            value: { keys: ['unit'], values: [{ type: DataType.String, value: 'm' }] },
          },
          {
            type: DataType.PropertySetList,
            value: [
              { keys: ['a'], values: [{ type: DataType.Int64, value: -(2n ** 63n) }] },
              {
                keys: ['nested'],
                values: [
                  {
                    type: DataType.PropertySetList,
                    value: [{ keys: ['b'], values: [{ type: DataType.Boolean, value: true }] }],
                  },
                ],
              },
            ],
          },
          { type: DataType.Double, value: null },
        ],
      },
    });

    expect(m.properties?.keys).toEqual(['Quality', 'eng', 'list', 'missing']);
    expect(m.properties?.values.map((v) => v.value)).toMatchObject([
      192,
      { keys: ['unit'], values: [{ value: 'm' }] },
      [
        { keys: ['a'], values: [{ value: -(2n ** 63n) }] },
        { keys: ['nested'], values: [{ value: [{ keys: ['b'], values: [{ value: true }] }] }] },
      ],
      null,
    ]);
    expect(m.properties?.values[3]?.isNull).toBe(true);
  });

  it('decodes MetaData, flags, metric and payload timestamps, seq, uuid and body', () => {
    const body = Uint8Array.from([1, 2, 3]);
    const payload = decodePayload(
      encodePayload({
        timestamp: T,
        seq: 255,
        uuid: 'u-1',
        body,
        metrics: [
          {
            name: 'f',
            alias: 2n ** 64n - 1n,
            timestamp: T + 1,
            datatype: DataType.File,
            isHistorical: true,
            isTransient: true,
            metadata: {
              isMultiPart: true,
              contentType: 'application/json',
              size: 2n ** 40n,
              seq: 3,
              fileName: 'a.json',
              fileType: 'json',
              md5: 'd41d8cd98f00b204e9800998ecf8427e',
              description: 'config',
            },
            value: body,
          },
          { name: 'n', datatype: DataType.Double, value: null },
        ],
      }),
    );

    expect(payload).toMatchObject({ timestamp: T, seq: 255n, uuid: 'u-1', body });
    expect(payload.metrics[0]).toMatchObject({
      alias: 2n ** 64n - 1n,
      timestamp: T + 1,
      isHistorical: true,
      isTransient: true,
      isNull: false,
      metadata: {
        isMultiPart: true,
        contentType: 'application/json',
        size: 2n ** 40n,
        seq: 3n,
        fileName: 'a.json',
        fileType: 'json',
        md5: 'd41d8cd98f00b204e9800998ecf8427e',
        description: 'config',
      },
    });
    expect(payload.metrics[1]).toMatchObject({ isNull: true, value: null, raw: { field: 'none' } });
  });

  it('skips unknown fields and extensions at every level', () => {
    const metric = encodePayload({ metrics: [{ name: 'x', datatype: DataType.Int32, value: 3 }] }).slice(2);
    // metric + unknown varint field 25 + unknown fixed32 field 30; payload + extension field 6 (bytes)
    const ext = [...metric, 0xc8, 0x01, 0x05, 0xf5, 0x01, 1, 2, 3, 4];
    const bytes = Uint8Array.from([0x12, ext.length, ...ext, 0x32, 0x02, 0xaa, 0xbb, 0x18, 0x09]);

    const p = decodePayload(bytes);

    expect(p.metrics[0]).toMatchObject({ name: 'x', value: 3 });
    expect(p.seq).toBe(9n);
  });
});

describe('compressed payloads (SPBV1.0_COMPRESSED)', () => {
  const inner = {
    timestamp: T,
    seq: 4,
    metrics: [{ name: 'x', alias: 1, datatype: DataType.Int16, value: -87 }],
  };

  it.each(['DEFLATE', 'GZIP'] as const)('unwraps %s', (algorithm) => {
    const bytes = compressPayload(inner, algorithm);

    const outer = decodePayload(bytes, { maxDecompressedBytes: 1024 });

    expect(outer.compressed).toBe(algorithm);
    expect(outer.seq).toBe(4n);
    expect(outer.metrics[0]).toMatchObject({ name: 'x', value: -87 });
  });

  it('accepts raw DEFLATE streams and a missing algorithm metric (default DEFLATE)', () => {
    for (const body of [deflateRawSync(encodePayload(inner)), deflateSync(encodePayload(inner))]) {
      const p = decodePayload(encodePayload({ uuid: 'SPBV1.0_COMPRESSED', body }));
      expect(p.compressed).toBe('DEFLATE');
      expect(p.metrics[0]!.value).toBe(-87);
    }
  });

  it('rejects an unknown algorithm, a corrupt body and a missing body', () => {
    const unknown = encodePayload({
      uuid: 'SPBV1.0_COMPRESSED',
      body: deflateSync(encodePayload(inner)),
      metrics: [{ name: 'algorithm', datatype: DataType.String, value: 'LZ4' }],
    });
    const corrupt = encodePayload({
      uuid: 'SPBV1.0_COMPRESSED',
      body: Uint8Array.from([0x78, 0x9c, 1, 2, 3]),
    });
    const missing = encodePayload({ uuid: 'SPBV1.0_COMPRESSED' });

    expect(decodeError(() => decodePayload(unknown)).message).toMatch(/LZ4/);
    expect(decodeError(() => decodePayload(corrupt)).code).toBe('SPARKPLUG_COMPRESSION');
    expect(decodeError(() => decodePayload(missing)).field).toBe('Payload.body');
  });
});

describe('STATE messages (JSON)', () => {
  const json = (s: string): Uint8Array => new TextEncoder().encode(s);

  it('parses {"online": bool, "timestamp": ms}', () => {
    expect(parseStateMessage(json(`{"online":true,"timestamp":${T}}`))).toEqual({
      online: true,
      timestamp: T,
    });
    expect(parseStateMessage(json(`{"timestamp":0,"online":false,"x":1}`))).toEqual({
      online: false,
      timestamp: 0,
    });
  });

  it.each([
    ['not JSON', 'ONLINE', 'STATE'],
    ['an array', '[true]', 'STATE'],
    ['online as a string', '{"online":"true","timestamp":1}', 'STATE.online'],
    ['a missing timestamp', '{"online":true}', 'STATE.timestamp'],
    ['a fractional timestamp', '{"online":true,"timestamp":1.5}', 'STATE.timestamp'],
    ['a negative timestamp', '{"online":true,"timestamp":-1}', 'STATE.timestamp'],
  ])('rejects %s', (_label, text, field) => {
    const err = decodeError(() => parseStateMessage(json(text)));
    expect(err.code).toBe('SPARKPLUG_STATE_INVALID');
    expect(err.field).toBe(field);
  });

  it('rejects invalid UTF-8', () => {
    expect(decodeError(() => parseStateMessage(Uint8Array.from([0x7b, 0xff, 0x7d]))).code).toBe(
      'SPARKPLUG_STATE_INVALID',
    );
  });
});
