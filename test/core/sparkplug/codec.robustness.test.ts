import { deflateSync } from 'node:zlib';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DecodeError } from '../../../functions/core/errors.js';
import {
  DEFAULT_MAX_BYTES,
  decodePayload,
  encodePayload,
  MAX_NESTING_DEPTH,
  type SpMetricInput,
  type SpPayloadInput,
} from '../../../functions/core/sparkplug/codec.js';
import { DataType, type SpPayload } from '../../../functions/core/sparkplug/types.js';

const T = 1_700_000_000_000;

/** Decodes; returns the payload, or the DecodeError. Any other exception fails the test. */
function attempt(bytes: Uint8Array, opts?: Parameters<typeof decodePayload>[1]): SpPayload | DecodeError {
  try {
    return decodePayload(bytes, opts);
  } catch (error) {
    if (!(error instanceof DecodeError)) throw new Error(`non-DecodeError escaped: ${String(error)}`);
    expect(error.code).toMatch(/^SPARKPLUG_[A-Z0-9_]+$/);
    expect(error.message.length).toBeGreaterThan(10);
    return error;
  }
}

function codeOf(bytes: Uint8Array, opts?: Parameters<typeof decodePayload>[1]): string {
  const r = attempt(bytes, opts);
  if (!(r instanceof DecodeError)) throw new Error('expected a DecodeError');
  return r.code;
}

const richMetrics: SpMetricInput[] = [
  { name: 'i', alias: 1, timestamp: T, datatype: DataType.Int16, value: -87 },
  { name: 'l', alias: 2, timestamp: T, datatype: DataType.UInt64, value: 2n ** 64n - 1n },
  {
    name: 'f',
    datatype: DataType.Float,
    value: 1.5,
    properties: { keys: ['Quality'], values: [{ type: 3, value: 192 }] },
  },
  { name: 's', datatype: DataType.String, value: 'héllo', metadata: { description: 'd', size: 5 } },
  { name: 'a', datatype: DataType.BooleanArray, value: [true, false, true] },
  {
    name: 'ds',
    datatype: DataType.DataSet,
    value: {
      columns: ['x', 'y'],
      types: [3, 12],
      rows: [
        [1, 'a'],
        [null, 'b'],
      ],
    },
  },
  {
    name: 't',
    datatype: DataType.Template,
    value: {
      templateRef: 'T',
      parameters: [{ name: 'p', type: 12, value: 'v' }],
      metrics: [{ name: 'm', datatype: DataType.Double, value: 2.5 }],
    },
  },
];
const rich: SpPayloadInput = { timestamp: T, metrics: richMetrics, seq: 9 };

/** Nested templates `levels` deep (each template holds one metric holding the next template). */
function nestedTemplates(levels: number): Uint8Array {
  let metric: SpMetricInput = { name: 'leaf', datatype: DataType.Int32, value: 1 };
  for (let i = 0; i < levels; i++) {
    metric = { name: `t${i}`, datatype: DataType.Template, value: { templateRef: 'X', metrics: [metric] } };
  }
  return encodePayload({ metrics: [metric] });
}

/** Nested PropertySets `levels` deep, as raw protobuf (bypasses the encoder's own limit). */
function nestedPropertySets(levels: number): Uint8Array {
  // PropertySet { keys: ['k'], values: [PropertyValue { type: 20, propertyset_value: <inner> }] }
  let set = Uint8Array.from([]);
  for (let i = 0; i < levels; i++) {
    const value = Uint8Array.from([0x08, 20, 0x4a, ...varint(set.length), ...set]);
    set = Uint8Array.from([0x0a, 0x01, 0x6b, 0x12, ...varint(value.length), ...value]);
  }
  const metric = Uint8Array.from([0x0a, 0x01, 0x6d, 0x4a, ...varint(set.length), ...set]);
  return Uint8Array.from([0x12, ...varint(metric.length), ...metric]);
}

function varint(n: number): number[] {
  const out: number[] = [];
  while (n > 0x7f) {
    out.push((n & 0x7f) | 0x80);
    n >>>= 7;
  }
  out.push(n);
  return out;
}

describe('decoder robustness: only DecodeError, never a hang', () => {
  it('random garbage decodes or throws a DecodeError', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 600 }), (bytes) => {
        attempt(bytes);
      }),
      { numRuns: 2000 },
    );
  });

  it('random byte mutations of a valid payload decode or throw a DecodeError', () => {
    const valid = encodePayload(rich);
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat({ max: valid.length - 1 }), fc.integer({ min: 0, max: 255 })), {
          minLength: 1,
          maxLength: 4,
        }),
        (edits) => {
          const bytes = valid.slice();
          for (const [at, b] of edits) bytes[at] = b;
          attempt(bytes);
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('every truncation of a valid payload is a DecodeError unless it ends on a top-level field', () => {
    const full = encodePayload(rich);
    // Top-level field boundaries: after the timestamp and after each metric (seq comes last).
    const boundaries = new Set<number>([0, full.length]);
    for (let k = 0; k <= richMetrics.length; k++) {
      boundaries.add(encodePayload({ timestamp: T, metrics: richMetrics.slice(0, k) }).length);
    }
    let errors = 0;

    for (let n = 0; n < full.length; n++) {
      const r = attempt(full.subarray(0, n));
      if (boundaries.has(n)) expect(r).not.toBeInstanceOf(DecodeError);
      else {
        expect(r).toBeInstanceOf(DecodeError);
        expect((r as DecodeError).code).toBe('SPARKPLUG_TRUNCATED');
        errors++;
      }
    }
    expect(errors).toBe(full.length - (boundaries.size - 1));
  });

  it('rejects payloads over maxBytes (default 1 MiB) before parsing', () => {
    const big = new Uint8Array(DEFAULT_MAX_BYTES + 1);

    expect(codeOf(big)).toBe('SPARKPLUG_TOO_LARGE');
    expect(codeOf(encodePayload(rich), { maxBytes: 16 })).toBe('SPARKPLUG_TOO_LARGE');
    const valid = encodePayload(rich);
    expect(attempt(valid, { maxBytes: valid.length })).not.toBeInstanceOf(DecodeError);
  });

  it('bounds decompression: a bomb is DECOMPRESSED_TOO_LARGE', () => {
    const inner = encodePayload({
      metrics: [{ name: 'z', datatype: DataType.Bytes, value: new Uint8Array(6 << 20) }],
    });
    const bomb = encodePayload({ uuid: 'SPBV1.0_COMPRESSED', body: deflateSync(inner) });

    expect(bomb.length).toBeLessThan(16 * 1024);
    expect(codeOf(bomb)).toBe('SPARKPLUG_DECOMPRESSED_TOO_LARGE');
    expect(codeOf(bomb, { maxDecompressedBytes: 1024 })).toBe('SPARKPLUG_DECOMPRESSED_TOO_LARGE');
    expect(attempt(bomb, { maxDecompressedBytes: 8 << 20 })).not.toBeInstanceOf(DecodeError);
  });

  it('limits nesting of templates and property sets', () => {
    expect(attempt(nestedTemplates(MAX_NESTING_DEPTH))).not.toBeInstanceOf(DecodeError);
    expect(codeOf(nestedTemplates(MAX_NESTING_DEPTH + 1))).toBe('SPARKPLUG_TOO_DEEP');
    expect(codeOf(nestedTemplates(40))).toBe('SPARKPLUG_TOO_DEEP');
    expect(attempt(nestedPropertySets(5))).not.toBeInstanceOf(DecodeError);
    expect(codeOf(nestedPropertySets(200))).toBe('SPARKPLUG_TOO_DEEP');
  });

  it('limits nested groups in unknown fields', () => {
    const groups = Uint8Array.from([...Array(100).fill(0x33), ...Array(100).fill(0x34)]); // field 6 start/end
    expect(codeOf(groups)).toBe('SPARKPLUG_TOO_DEEP');
    expect(attempt(Uint8Array.from([0x33, 0x08, 0x01, 0x34]))).not.toBeInstanceOf(DecodeError);
  });

  it('rejects invalid UTF-8 naming the field', () => {
    const name = Uint8Array.from([0x12, 0x04, 0x0a, 0x02, 0xc3, 0x28]);
    const arr = encodePayload({
      metrics: [
        {
          name: 'a',
          datatype: DataType.StringArray,
          raw: { field: 'bytes', value: Uint8Array.from([0xff, 0]) },
        },
      ],
    });

    const err = attempt(name) as DecodeError;
    expect(err.code).toBe('SPARKPLUG_INVALID_UTF8');
    expect(err.field).toBe('Metric.name');
    expect(codeOf(arr)).toBe('SPARKPLUG_INVALID_UTF8');
  });

  it('rejects malformed wire data: long varints, bad wire types, field 0, wrong wire type, huge lengths', () => {
    expect(codeOf(Uint8Array.from([0x08, ...Array(10).fill(0xff), 0x01]))).toBe('SPARKPLUG_MALFORMED');
    expect(codeOf(Uint8Array.from([0x0f]))).toBe('SPARKPLUG_MALFORMED'); // wire type 7
    expect(codeOf(Uint8Array.from([0x00, 0x00]))).toBe('SPARKPLUG_MALFORMED'); // field 0
    expect(codeOf(Uint8Array.from([0x0a, 0x00]))).toBe('SPARKPLUG_MALFORMED'); // timestamp as bytes
    expect(codeOf(Uint8Array.from([0x12, 0xff, 0xff, 0xff, 0xff, 0x0f]))).toBe('SPARKPLUG_TRUNCATED');
  });

  it('rejects a BooleanArray count larger than its bytes without allocating it', () => {
    const bytes = encodePayload({
      metrics: [
        {
          name: 'b',
          datatype: DataType.BooleanArray,
          raw: { field: 'bytes', value: Uint8Array.from([255, 255, 255, 255]) },
        },
      ],
    });
    expect(codeOf(bytes)).toBe('SPARKPLUG_ARRAY_LAYOUT');
  });

  it('rejects input that is not bytes', () => {
    expect(codeOf('hello' as unknown as Uint8Array)).toBe('SPARKPLUG_MALFORMED');
  });
});
