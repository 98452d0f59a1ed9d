/**
 * Interop with npm `sparkplug-payload` (Eclipse Tahu JS, protobufjs 6) in both directions, and with the
 * static protobufjs code generated from our proto/sparkplug_b.proto.
 *
 * Peer bugs we do NOT exercise (reference/sparkplug-b.md §6), each skipped on purpose:
 *  1. UInt32 in int_value (our default, per spec) decodes to null there → we send UInt32 to the peer in
 *     long_value via `raw`, which is what Tahu itself encodes.
 *  2. Alias-only DATA without datatype decodes to null there → every metric sent to it has a datatype.
 *  3. DataSet columns Int8/16/32, UInt8/16, UInt64, DateTime, Text throw "Invalid DataSetValue" in its
 *     decoder → peer-decoded DataSets use Int64/Float/Double/Boolean/String columns only (its encoder
 *     handles all column types, so peer → ours covers every one).
 *  4. Array datatypes 22–34 are unsupported there → arrays are covered by our own golden vectors.
 *  5. It assumes 32-bit sign extension (unextended Int16 0xFFA9 → 65449) → we always send extended.
 *  6. Templates decode with version "" when unset → compared only when set.
 */
import sparkplug from 'sparkplug-payload';
import { describe, expect, it } from 'vitest';
import { decodePayload, encodePayload, type SpMetricInput } from '../../../functions/core/sparkplug/codec.js';
import { org } from '../../../functions/core/sparkplug/generated/sparkplug_b.js';
import { DataType, type SpValue } from '../../../functions/core/sparkplug/types.js';

interface PeerMetric {
  name?: string;
  alias?: unknown;
  timestamp?: unknown;
  type?: string;
  value: unknown;
  isHistorical?: boolean;
  isTransient?: boolean;
  isNull?: boolean;
  metadata?: Record<string, unknown>;
  properties?: Record<string, { type: string; value: unknown }>;
}
interface PeerCodec {
  encodePayload(p: unknown): Uint8Array;
  decodePayload(b: Uint8Array): { timestamp?: unknown; seq?: unknown; metrics?: PeerMetric[] };
}

const peer = (sparkplug as unknown as { get(ns: string): PeerCodec | null }).get('spBv1.0')!;
const T = 1_700_000_000_000;

/** A peer Long (or number) → bigint, read as `signed` or unsigned 64-bit. */
function big(v: unknown, signed = false): bigint {
  const b = BigInt(String(v));
  return signed ? BigInt.asIntN(64, b) : BigInt.asUintN(64, b);
}
const safe = (b: bigint): number | bigint => (b >= -(2n ** 53n - 1n) && b <= 2n ** 53n - 1n ? Number(b) : b);

/** Values both libraries agree on: [peer type name, our code, value as sent to the peer, our decoded value]. */
const scalars: Array<[string, number, unknown, SpValue]> = [
  ['Int8', DataType.Int8, -128, -128],
  ['Int8', DataType.Int8, 127, 127],
  ['Int16', DataType.Int16, -87, -87],
  ['Int32', DataType.Int32, -2147483648, -2147483648],
  ['Int64', DataType.Int64, -(2 ** 53 - 1), -(2 ** 53 - 1)],
  ['UInt8', DataType.UInt8, 255, 255],
  ['UInt16', DataType.UInt16, 65535, 65535],
  ['UInt32', DataType.UInt32, 4294967295, 4294967295],
  ['UInt64', DataType.UInt64, 2 ** 53 - 1, 2 ** 53 - 1],
  ['Float', DataType.Float, 12.1, Math.fround(12.1)],
  ['Double', DataType.Double, -0.1, -0.1],
  ['Boolean', DataType.Boolean, true, true],
  ['String', DataType.String, 'héllo 🙂', 'héllo 🙂'],
  ['Text', DataType.Text, 'long text', 'long text'],
  ['UUID', DataType.UUID, '8a0c1c44-2f52-4c4e-9d7c-0b7f5c9c6e1a', '8a0c1c44-2f52-4c4e-9d7c-0b7f5c9c6e1a'],
  ['DateTime', DataType.DateTime, T, T],
  ['Bytes', DataType.Bytes, Uint8Array.from([0, 255]), Uint8Array.from([0, 255])],
  ['File', DataType.File, Uint8Array.from([1]), Uint8Array.from([1])],
];

describe('sparkplug-payload → ours', () => {
  it('decodes every scalar datatype to the same value (UInt32 arrives in long_value, as Tahu encodes it)', () => {
    const bytes = peer.encodePayload({
      timestamp: T,
      seq: 3,
      metrics: scalars.map(([type, , value], i) => ({
        name: `m${i}`,
        alias: i + 1,
        timestamp: T + i,
        type,
        value,
      })),
    });

    const p = decodePayload(bytes);

    expect(p.timestamp).toBe(T);
    expect(p.seq).toBe(3n);
    expect(p.metrics.map((m) => m.value)).toEqual(scalars.map((s) => s[3]));
    expect(p.metrics.map((m) => m.alias)).toEqual(scalars.map((_, i) => BigInt(i + 1)));
    expect(p.metrics.find((m) => m.datatype === DataType.UInt32)?.raw.field).toBe('long');
  });

  it('decodes 64-bit extremes without precision loss', () => {
    const Long = (
      peer.decodePayload(peer.encodePayload({ timestamp: 1 })).timestamp as { constructor: unknown }
    ).constructor as { fromString(s: string, unsigned?: boolean): unknown };
    const bytes = peer.encodePayload({
      metrics: [
        { name: 'min', type: 'Int64', value: Long.fromString('-9223372036854775808') },
        { name: 'max', type: 'UInt64', value: Long.fromString('18446744073709551615', true) },
      ],
    });

    expect(decodePayload(bytes).metrics.map((m) => m.value)).toEqual([-(2n ** 63n), 2n ** 64n - 1n]);
  });

  it('decodes DataSets of every column type, Templates, PropertySets, MetaData and flags', () => {
    const types = ['Int8', 'Int16', 'Int32', 'Int64', 'UInt8', 'UInt16', 'UInt32', 'UInt64'];
    const more = ['Float', 'Double', 'Boolean', 'String', 'DateTime', 'Text'];
    const bytes = peer.encodePayload({
      metrics: [
        {
          name: 'ds',
          type: 'DataSet',
          value: {
            numOfColumns: 14,
            columns: [...types, ...more],
            types: [...types, ...more],
            rows: [[-8, -16, -32, -64, 8, 16, 4294967295, 64, 0.5, 0.25, true, 's', T, 't']],
          },
        },
        {
          name: 'tpl',
          type: 'Template',
          value: {
            version: 'v2',
            isDefinition: false,
            templateRef: 'Def',
            metrics: [{ name: 'inner', type: 'Int16', value: -2 }],
            parameters: [{ name: 'p', type: 'String', value: 'x' }],
          },
        },
        {
          name: 'level',
          type: 'Double',
          value: 1.5,
          isHistorical: true,
          isTransient: true,
          metadata: { contentType: 'text/plain', description: 'd' },
          properties: {
            Quality: { type: 'Int32', value: 192 },
            eng: { type: 'PropertySet', value: { unit: { type: 'String', value: 'm' } } },
            list: { type: 'PropertySetList', value: [{ k: { type: 'Boolean', value: true } }] },
          },
        },
        { name: 'gone', type: 'Int32', value: null },
      ],
    });

    const [ds, tpl, level, gone] = decodePayload(bytes).metrics;

    expect((ds!.value as { rows: unknown }).rows).toEqual([
      [-8, -16, -32, -64, 8, 16, 4294967295, 64, 0.5, 0.25, true, 's', T, 't'],
    ]);
    expect(tpl!.value).toMatchObject({
      version: 'v2',
      templateRef: 'Def',
      isDefinition: false,
      metrics: [{ name: 'inner', value: -2 }],
      parameters: [{ name: 'p', type: DataType.String, value: 'x' }],
    });
    expect(level).toMatchObject({
      value: 1.5,
      isHistorical: true,
      isTransient: true,
      metadata: { contentType: 'text/plain', description: 'd' },
      properties: { keys: ['Quality', 'eng', 'list'] },
    });
    expect(level!.properties!.values.map((v) => v.value)).toMatchObject([
      192,
      { keys: ['unit'], values: [{ value: 'm' }] },
      [{ keys: ['k'], values: [{ value: true }] }],
    ]);
    expect(gone).toMatchObject({ isNull: true, value: null });
  });
});

describe('ours → sparkplug-payload', () => {
  it('decodes every scalar datatype to the same value', () => {
    const metrics: SpMetricInput[] = scalars.map(([, datatype, , value], i) =>
      datatype === DataType.UInt32
        ? {
            name: `m${i}`,
            alias: i + 1,
            timestamp: T,
            datatype,
            raw: { field: 'long', value: BigInt(value as number) },
          } // peer bug 1
        : { name: `m${i}`, alias: i + 1, timestamp: T, datatype, value },
    );

    const p = peer.decodePayload(encodePayload({ timestamp: T, seq: 200, metrics }));

    expect(big(p.timestamp)).toBe(BigInt(T));
    expect(big(p.seq)).toBe(200n);
    p.metrics!.forEach((m, i) => {
      const [type, datatype, , expected] = scalars[i]!;
      expect(m.type).toBe(type);
      expect(big(m.alias)).toBe(BigInt(i + 1));
      const signed = datatype === DataType.Int64 || datatype === DataType.DateTime;
      const got =
        typeof m.value === 'object' && m.value !== null && 'low' in m.value
          ? safe(big(m.value, signed))
          : m.value;
      expect(got).toEqual(expected);
    });
  });

  it('decodes 64-bit extremes, DataSets (columns it supports), Templates, PropertySets and flags', () => {
    const bytes = encodePayload({
      metrics: [
        { name: 'min', datatype: DataType.Int64, value: -(2n ** 63n) },
        { name: 'umax', datatype: DataType.UInt64, value: 2n ** 64n - 1n },
        {
          name: 'ds',
          datatype: DataType.DataSet,
          value: { columns: ['f', 'd', 'b', 's'], types: [9, 10, 11, 12], rows: [[0.5, 0.1, false, 'x']] },
        },
        {
          name: 'tpl',
          datatype: DataType.Template,
          value: {
            version: 'v1',
            templateRef: 'Def',
            isDefinition: false,
            metrics: [{ name: 'inner', datatype: DataType.Int16, value: -2 }],
            parameters: [{ name: 'p', type: DataType.Double, value: 2.5 }],
          },
        },
        {
          name: 'level',
          datatype: DataType.Double,
          value: 1.5,
          isHistorical: true,
          isTransient: true,
          metadata: { contentType: 'text/plain' },
          properties: {
            keys: ['Quality', 'eng'],
            values: [
              { type: DataType.Int32, value: 500 },
              {
                type: DataType.PropertySet,
                value: { keys: ['unit'], values: [{ type: DataType.String, value: 'm' }] },
              },
            ],
          },
        },
      ],
    });

    const [min, umax, ds, tpl, level] = peer.decodePayload(bytes).metrics!;

    expect(big(min!.value, true)).toBe(-(2n ** 63n));
    expect(big(umax!.value)).toBe(2n ** 64n - 1n);
    expect(ds!.value).toMatchObject({ columns: ['f', 'd', 'b', 's'], rows: [[0.5, 0.1, false, 'x']] });
    expect(tpl!.value).toMatchObject({
      version: 'v1',
      templateRef: 'Def',
      isDefinition: false,
      metrics: [{ name: 'inner', type: 'Int16', value: -2 }],
      parameters: [{ name: 'p', type: 'Double', value: 2.5 }],
    });
    expect(level).toMatchObject({
      value: 1.5,
      isHistorical: true,
      isTransient: true,
      metadata: { contentType: 'text/plain' },
      properties: {
        Quality: { type: 'Int32', value: 500 },
        eng: { type: 'PropertySet', value: { unit: { value: 'm' } } },
      },
    });
  });
});

describe('generated static code (proto/sparkplug_b.proto) reads our encoding', () => {
  it('agrees field by field', () => {
    const bytes = encodePayload({
      timestamp: T,
      seq: 1,
      metrics: [
        { name: 'u', alias: 7, datatype: DataType.UInt32, value: 4294967295 },
        { name: 'a', datatype: DataType.Int16Array, value: [-87] },
        { name: 'n', datatype: DataType.String, value: null },
      ],
    });

    const decoded = org.eclipse.tahu.protobuf.Payload.toObject(
      org.eclipse.tahu.protobuf.Payload.decode(bytes),
      {
        longs: String,
        bytes: Array,
      },
    );

    expect(decoded).toEqual({
      timestamp: String(T),
      seq: '1',
      metrics: [
        { name: 'u', alias: '7', datatype: 7, intValue: 4294967295 },
        { name: 'a', datatype: 23, bytesValue: [0xa9, 0xff] },
        { name: 'n', datatype: 12, isNull: true },
      ],
    });
  });
});
