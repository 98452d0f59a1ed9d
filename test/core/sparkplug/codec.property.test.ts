import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  decodePayload,
  encodePayload,
  type SpMetricInput,
  type SpPropertySetInput,
} from '../../../functions/core/sparkplug/codec.js';
import { DataType, type SpValue } from '../../../functions/core/sparkplug/types.js';

const RUNS = { numRuns: 120 };
const I64 = { min: -(2n ** 63n), max: 2n ** 63n - 1n };
const U64 = { min: 0n, max: 2n ** 64n - 1n };

/** What a decoded 64-bit value looks like: number when safe, else bigint. */
function norm(v: bigint | number): bigint | number {
  const b = BigInt(v);
  return b >= -BigInt(Number.MAX_SAFE_INTEGER) && b <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(b) : b;
}

const i64 = (r: { min: bigint; max: bigint }) =>
  fc.oneof(fc.bigInt(r), fc.integer({ min: r.min < 0n ? -1e9 : 0, max: 1e9 }));
const text = fc.string({ unit: 'binary', maxLength: 20 });

/** [arbitrary input value, expected decoded value] per basic datatype. */
const scalar: Record<number, fc.Arbitrary<[SpValue, SpValue]>> = {
  [DataType.Int8]: fc.integer({ min: -128, max: 127 }).map((v) => [v, v]),
  [DataType.Int16]: fc.integer({ min: -32768, max: 32767 }).map((v) => [v, v]),
  [DataType.Int32]: fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }).map((v) => [v, v]),
  [DataType.Int64]: i64(I64).map((v) => [v, norm(v)]),
  [DataType.UInt8]: fc.integer({ min: 0, max: 255 }).map((v) => [v, v]),
  [DataType.UInt16]: fc.integer({ min: 0, max: 65535 }).map((v) => [v, v]),
  [DataType.UInt32]: fc.integer({ min: 0, max: 2 ** 32 - 1 }).map((v) => [v, v]),
  [DataType.UInt64]: i64(U64).map((v) => [v, norm(v)]),
  [DataType.Float]: fc.float().map((v) => [v, v]),
  [DataType.Double]: fc.double().map((v) => [v, v]),
  [DataType.Boolean]: fc.boolean().map((v) => [v, v]),
  [DataType.String]: text.map((v) => [v, v]),
  [DataType.DateTime]: i64(I64).map((v) => [v, norm(v)]),
  [DataType.Text]: text.map((v) => [v, v]),
};
const other: Record<number, fc.Arbitrary<[SpValue, SpValue]>> = {
  [DataType.UUID]: fc.uuid().map((v) => [v, v]),
  [DataType.Bytes]: fc.uint8Array({ maxLength: 40 }).map((v) => [v, v]),
  [DataType.File]: fc.uint8Array({ maxLength: 40 }).map((v) => [v, v]),
};
const element: Record<number, fc.Arbitrary<[SpValue, SpValue]>> = {
  [DataType.Int8Array]: scalar[DataType.Int8]!,
  [DataType.Int16Array]: scalar[DataType.Int16]!,
  [DataType.Int32Array]: scalar[DataType.Int32]!,
  [DataType.Int64Array]: scalar[DataType.Int64]!,
  [DataType.UInt8Array]: scalar[DataType.UInt8]!,
  [DataType.UInt16Array]: scalar[DataType.UInt16]!,
  [DataType.UInt32Array]: scalar[DataType.UInt32]!,
  [DataType.UInt64Array]: scalar[DataType.UInt64]!,
  [DataType.FloatArray]: scalar[DataType.Float]!,
  [DataType.DoubleArray]: scalar[DataType.Double]!,
  [DataType.BooleanArray]: scalar[DataType.Boolean]!,
  [DataType.StringArray]: text.filter((s) => !s.includes('\0')).map((v) => [v, v]),
  [DataType.DateTimeArray]: scalar[DataType.DateTime]!,
};
const arrays: Record<number, fc.Arbitrary<[SpValue, SpValue]>> = Object.fromEntries(
  Object.entries(element).map(([dt, el]) => [
    dt,
    fc.array(el, { maxLength: 20 }).map((pairs) => [pairs.map((p) => p[0]), pairs.map((p) => p[1])]),
  ]),
);
const simple = { ...scalar, ...other, ...arrays };

const basicType = fc.constantFrom(...Object.keys(scalar).map(Number));
const anySimpleType = fc.constantFrom(...Object.keys(simple).map(Number));

function roundTripValue(datatype: number, input: SpValue): SpValue | undefined {
  return decodePayload(encodePayload({ metrics: [{ name: 'm', datatype, value: input }] })).metrics[0]!.value;
}

describe('encode → decode is the identity (fast-check)', () => {
  for (const [dt, arb] of Object.entries(simple)) {
    it(`datatype ${dt}`, () => {
      fc.assert(
        fc.property(arb, ([input, expected]) => {
          expect(roundTripValue(Number(dt), input)).toEqual(expected);
        }),
        RUNS,
      );
    });
  }

  it('DataSets with random column types and null cells', () => {
    const dataset = fc
      .array(basicType, { minLength: 1, maxLength: 5 })
      .chain((types) =>
        fc.tuple(
          fc.constant(types),
          fc.array(fc.tuple(...types.map((t) => fc.option(scalar[t]!, { nil: null }))), { maxLength: 4 }),
        ),
      );
    fc.assert(
      fc.property(dataset, ([types, rows]) => {
        const columns = types.map((_, i) => `c${i}`);
        const input = rows.map((r) => r.map((cell) => (cell === null ? null : cell[0])));
        const expected = rows.map((r) => r.map((cell) => (cell === null ? null : cell[1])));

        expect(roundTripValue(DataType.DataSet, { columns, types, rows: input } as never)).toEqual({
          numOfColumns: BigInt(types.length),
          columns,
          types,
          rows: expected,
        });
      }),
      RUNS,
    );
  });

  it('nested PropertySets and PropertySetLists', () => {
    type Pair = [SpPropertySetInput, unknown];
    const { set } = fc.letrec<{ set: Pair; value: [unknown, unknown] }>((tie) => ({
      value: fc.oneof(
        { depthSize: 'small', withCrossShrink: true },
        basicType.chain((t) => scalar[t]!.map(([i, e]) => [{ type: t, value: i }, e] as [unknown, unknown])),
        tie('set').map(([i, e]) => [{ type: DataType.PropertySet, value: i }, e] as [unknown, unknown]),
        fc
          .array(tie('set'), { maxLength: 2 })
          .map(
            (sets) =>
              [{ type: DataType.PropertySetList, value: sets.map((s) => s[0]) }, sets.map((s) => s[1])] as [
                unknown,
                unknown,
              ],
          ),
      ),
      set: fc
        .uniqueArray(fc.tuple(fc.string({ maxLength: 6 }), tie('value')), {
          maxLength: 3,
          selector: (e) => e[0],
        })
        .map((entries) => [
          { keys: entries.map((e) => e[0]), values: entries.map((e) => e[1][0]) } as SpPropertySetInput,
          { keys: entries.map((e) => e[0]), values: entries.map((e) => ({ value: e[1][1] })) },
        ]),
    }));
    fc.assert(
      fc.property(set, ([input, expected]) => {
        const m = decodePayload(
          encodePayload({ metrics: [{ name: 'p', datatype: DataType.Int8, value: 1, properties: input }] }),
        ).metrics[0]!;
        expect(m.properties).toMatchObject(expected as object);
      }),
      RUNS,
    );
  });

  it('nested Templates with parameters', () => {
    type Pair = [SpMetricInput, unknown];
    const leaf: fc.Arbitrary<Pair> = anySimpleType.chain((t) =>
      simple[t]!.map(([i, e]) => [
        { name: `m${t}`, datatype: t, value: i },
        { name: `m${t}`, datatype: t, value: e },
      ]),
    );
    const { metric } = fc.letrec<{ metric: Pair }>((tie) => ({
      metric: fc.oneof(
        { depthSize: 'small', withCrossShrink: true },
        leaf,
        fc
          .tuple(
            fc.array(tie('metric'), { maxLength: 3 }),
            fc.array(
              basicType.chain((t) => scalar[t]!.map(([i, e]) => ({ t, i, e }))),
              { maxLength: 2 },
            ),
            fc.boolean(),
          )
          .map(([members, params, isDefinition]) => {
            const tpl = {
              isDefinition,
              templateRef: isDefinition ? undefined : 'Def',
              metrics: members.map((m) => m[0]),
              parameters: params.map((p, k) => ({ name: `p${k}`, type: p.t, value: p.i })),
            };
            const expected = {
              isDefinition,
              ...(isDefinition ? {} : { templateRef: 'Def' }),
              metrics: members.map((m) => m[1]),
              parameters: params.map((p, k) => ({ name: `p${k}`, type: p.t, value: p.e })),
            };
            return [
              { name: 'tpl', datatype: DataType.Template, value: tpl },
              { name: 'tpl', datatype: DataType.Template, value: expected },
            ] as Pair;
          }),
      ),
    }));
    fc.assert(
      fc.property(metric, ([input, expected]) => {
        expect(decodePayload(encodePayload({ metrics: [input] })).metrics[0]).toMatchObject(
          expected as object,
        );
      }),
      RUNS,
    );
  });

  it('whole payloads: timestamps, seq, aliases, flags and mixed datatypes', () => {
    const metric = fc.record({
      name: fc.option(fc.string({ maxLength: 12 }), { nil: undefined }),
      alias: fc.option(fc.bigInt(U64), { nil: undefined }),
      timestamp: fc.option(fc.integer({ min: 0, max: 2 ** 45 }), { nil: undefined }),
      isHistorical: fc.boolean(),
      isTransient: fc.boolean(),
      typed: anySimpleType.chain((t) => fc.option(simple[t]!, { nil: null }).map((v) => ({ t, v }))),
    });
    fc.assert(
      fc.property(
        fc.option(fc.integer({ min: 0, max: 2 ** 45 }), { nil: undefined }),
        fc.option(fc.integer({ min: 0, max: 255 }), { nil: undefined }),
        fc.array(metric, { maxLength: 8 }),
        (timestamp, seq, metrics) => {
          const input = metrics.map((m) => ({
            name: m.name,
            alias: m.alias,
            timestamp: m.timestamp,
            isHistorical: m.isHistorical,
            isTransient: m.isTransient,
            datatype: m.typed.t,
            value: m.typed.v === null ? null : m.typed.v[0],
          }));
          const decoded = decodePayload(encodePayload({ timestamp, seq, metrics: input }));

          expect(decoded.timestamp).toBe(timestamp);
          expect(decoded.seq).toBe(seq === undefined ? undefined : BigInt(seq));
          expect(decoded.metrics).toHaveLength(metrics.length);
          decoded.metrics.forEach((d, k) => {
            const m = metrics[k]!;
            expect(d).toMatchObject({
              name: m.name,
              alias: m.alias,
              timestamp: m.timestamp,
              isHistorical: m.isHistorical,
              isTransient: m.isTransient,
              isNull: m.typed.v === null,
              datatype: m.typed.t,
            });
            expect(d.value).toEqual(m.typed.v === null ? null : m.typed.v[1]);
          });
        },
      ),
      RUNS,
    );
  });
});
