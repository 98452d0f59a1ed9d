/**
 * flattenMetric (pure): metric → readings. Metrics are built with the project's encoder and decoded
 * back, so they have exactly the shape the host sees.
 */
import { describe, expect, it } from 'vitest';
import { DecodeError } from '../../../functions/core/errors.js';
import type { Reading } from '../../../functions/core/reading.js';
import { decodePayload, encodePayload, type SpMetricInput } from '../../../functions/core/sparkplug/codec.js';
import {
  type FlattenContext,
  flattenMetric,
  qualityOf,
  staticProps,
  templateDef,
  unitOf,
} from '../../../functions/core/sparkplug/host/flatten.js';
import type { TemplateDef } from '../../../functions/core/sparkplug/host/state.js';
import { DataType, type SpMetric, type SpTemplate } from '../../../functions/core/sparkplug/types.js';

const T = 1_700_000_000_000;

function metricOf(input: SpMetricInput): SpMetric {
  const [m] = decodePayload(encodePayload({ timestamp: T, metrics: [input] })).metrics;
  if (!m) throw new Error('no metric');
  return m;
}

function ctx(over: Partial<FlattenContext> = {}): FlattenContext {
  return { deviceId: 'edge-1', group: 'plant', defaultTime: T + 5, templates: {}, ...over };
}

const flatten = (input: SpMetricInput, c: FlattenContext = ctx()): Reading[] => {
  const m = metricOf(input);
  return flattenMetric(m, m.name ?? 'unnamed', m.datatype ?? input.datatype ?? 0, c);
};

const quality = (q: number) => ({ keys: ['Quality'], values: [{ type: DataType.Int32, value: q }] });

describe('flattenMetric: scalars and arrays', () => {
  it('gives one reading with every field of the model', () => {
    const readings = flatten(
      { name: 'Temp', datatype: DataType.Double, value: 21.5, timestamp: T + 1 },
      ctx({ subDevice: 'pump' }),
    );
    expect(readings).toEqual([
      {
        protocol: 'sparkplug',
        deviceId: 'edge-1',
        group: 'plant',
        subDevice: 'pump',
        metric: 'Temp',
        type: 'Double',
        value: 21.5,
        time: T + 1,
        historical: false,
        transient: false,
        quality: 'GOOD',
      },
    ]);
  });

  it('takes the time from the metric timestamp, else the context default (payload time or receipt)', () => {
    const m = flatten({ name: 'A', datatype: DataType.Int32, value: 1 });
    expect(m[0]?.time).toBe(T + 5);
  });

  it('keeps 64-bit integers exact (bigint beyond 2^53) and sign-interprets Int16 patterns', () => {
    const big = flatten({ name: 'Big', datatype: DataType.UInt64, value: 2n ** 64n - 1n });
    expect(big[0]?.value).toBe(2n ** 64n - 1n);
    const raw = metricOf({
      alias: 4,
      datatype: DataType.Int16,
      raw: { field: 'int', value: 0xffa9 },
      omitDatatype: true,
    });
    // Alias-only: the datatype comes from the birth, the codec left the value uninterpreted.
    expect(raw.value).toBeUndefined();
    expect(flattenMetric(raw, 'Pressure', DataType.Int16, ctx())[0]).toMatchObject({
      type: 'Int16',
      value: -87,
    });
  });

  it('throws the codec DecodeError when the wire field does not fit the resolved datatype', () => {
    const m = metricOf({ alias: 4, datatype: DataType.String, value: 'x', omitDatatype: true });
    expect(() => flattenMetric(m, 'Pressure', DataType.Int16, ctx())).toThrow(DecodeError);
  });

  it('gives an array one reading whose value is the JS array', () => {
    const r = flatten({ name: 'Vib', datatype: DataType.Int16Array, value: [-1, 2, 300] });
    expect(r).toHaveLength(1);
    expect(r[0]).toMatchObject({ metric: 'Vib', type: 'Int16Array', value: [-1, 2, 300] });
    const b = flatten({ name: 'Flags', datatype: DataType.BooleanArray, value: [true, false, true] });
    expect(b[0]?.value).toEqual([true, false, true]);
  });

  it('maps is_null to a null value, and keeps is_historical / is_transient as flags', () => {
    expect(flatten({ name: 'N', datatype: DataType.Int32, value: null })[0]?.value).toBeNull();
    const h = flatten({
      name: 'H',
      datatype: DataType.Float,
      value: 1,
      isHistorical: true,
      isTransient: true,
    });
    expect(h[0]).toMatchObject({ historical: true, transient: true });
  });
});

describe('flattenMetric: properties', () => {
  it('maps Quality 0/192/500 to BAD/GOOD/STALE, others to UNCERTAIN, absent to GOOD', () => {
    const q = (p?: ReturnType<typeof quality>) =>
      flatten({ name: 'Q', datatype: DataType.Int32, value: 1, ...(p ? { properties: p } : {}) })[0]?.quality;
    expect([q(quality(0)), q(quality(192)), q(quality(500)), q(quality(7)), q()]).toEqual([
      'BAD',
      'GOOD',
      'STALE',
      'UNCERTAIN',
      'GOOD',
    ]);
  });

  it('takes the unit from the engUnit property, else from the birth hint; properties are not readings', () => {
    const withProp = flatten({
      name: 'P',
      datatype: DataType.Float,
      value: 1,
      properties: {
        keys: ['engUnit', 'engHigh'],
        values: [
          { type: DataType.String, value: 'bar' },
          { type: DataType.Float, value: 10 },
        ],
      },
    });
    expect(withProp).toHaveLength(1);
    expect(withProp[0]?.unit).toBe('bar');
    const m = metricOf({ name: 'P', datatype: DataType.Float, value: 1 });
    expect(flattenMetric(m, 'P', DataType.Float, ctx(), { unit: 'kPa' })[0]?.unit).toBe('kPa');
    expect(unitOf(undefined)).toBeUndefined();
    expect(qualityOf(undefined)).toBe('GOOD');
  });

  it('keeps static birth properties as bounded scalar metadata, without Quality or nested sets', () => {
    const m = metricOf({
      name: 'P',
      datatype: DataType.Float,
      value: 1,
      properties: {
        keys: ['engUnit', 'engLow', 'engHigh', 'Quality', 'big', 'nested', 'desc'],
        values: [
          { type: DataType.String, value: 'bar' },
          { type: DataType.Float, value: -1.5 },
          { type: DataType.Int32, value: 10 },
          { type: DataType.Int32, value: 192 },
          { type: DataType.UInt64, value: 2n ** 64n - 1n },
          {
            type: DataType.PropertySet,
            value: { keys: ['x'], values: [{ type: DataType.Int32, value: 1 }] },
          },
          { type: DataType.String, value: 'y'.repeat(1000) },
        ],
      },
    });
    const props = staticProps(m.properties);
    expect(props).toEqual({
      engUnit: 'bar',
      engLow: -1.5,
      engHigh: 10,
      big: '18446744073709551615',
      desc: 'y'.repeat(256),
    });
    const many = {
      keys: Array.from({ length: 40 }, (_, i) => `k${i}`),
      values: Array.from({ length: 40 }, (_, i) => ({ type: DataType.Int32, value: i })),
    };
    expect(
      Object.keys(
        staticProps(
          metricOf({ name: 'M', datatype: DataType.Int32, value: 1, properties: many }).properties,
        ) ?? {},
      ),
    ).toHaveLength(16);
    expect(staticProps(undefined)).toBeUndefined();
  });

  it('gives a PropertySet metric no reading (metadata, not a series)', () => {
    // Metric has no wire field for a PropertySet value (only PropertyValue does): build it directly.
    const props = {
      keys: ['a'],
      values: [{ type: DataType.Int32, isNull: false, raw: { field: 'int' as const, value: 1 }, value: 1 }],
    };
    const m: SpMetric = {
      name: 'Props',
      datatype: DataType.PropertySet,
      isHistorical: false,
      isTransient: false,
      isNull: false,
      raw: { field: 'propertyset', value: props },
      value: props,
    };
    expect(flattenMetric(m, 'Props', DataType.PropertySet, ctx())).toEqual([]);
  });
});

describe('flattenMetric: DataSets', () => {
  it('gives one reading per cell named {metric}/{column} with its row and the column type', () => {
    const r = flatten({
      name: 'Batch',
      datatype: DataType.DataSet,
      timestamp: T + 2,
      value: {
        columns: ['step', 'temp', 'ok'],
        types: [DataType.Int32, DataType.Double, DataType.Boolean],
        rows: [
          [1, 20.5, true],
          [2, null, false],
        ],
      },
    });
    expect(r.map((x) => [x.metric, x.row, x.type, x.value, x.time])).toEqual([
      ['Batch/step', 0, 'Int32', 1, T + 2],
      ['Batch/temp', 0, 'Double', 20.5, T + 2],
      ['Batch/ok', 0, 'Boolean', true, T + 2],
      ['Batch/step', 1, 'Int32', 2, T + 2],
      ['Batch/temp', 1, 'Double', null, T + 2],
      ['Batch/ok', 1, 'Boolean', false, T + 2],
    ]);
  });

  it('gives an empty DataSet no readings', () => {
    expect(
      flatten({
        name: 'E',
        datatype: DataType.DataSet,
        value: { columns: ['a'], types: [DataType.Int32], rows: [] },
      }),
    ).toEqual([]);
  });
});

describe('flattenMetric: Templates', () => {
  const definitions = (): Record<string, TemplateDef> => {
    const motor = metricOf({
      name: 'Motor',
      datatype: DataType.Template,
      value: {
        isDefinition: true,
        metrics: [
          {
            name: 'Speed',
            datatype: DataType.Float,
            value: 0,
            properties: { keys: ['engUnit'], values: [{ type: DataType.String, value: 'rpm' }] },
          },
          { name: 'Count', datatype: DataType.UInt32, value: 0 },
          {
            name: 'Bearing',
            datatype: DataType.Template,
            value: { isDefinition: false, templateRef: 'BearingDef', metrics: [] },
          },
        ],
        parameters: [{ name: 'RatedKW', type: DataType.Double, value: 0 }],
      },
    });
    const bearing = metricOf({
      name: 'BearingDef',
      datatype: DataType.Template,
      value: { isDefinition: true, metrics: [{ name: 'Temp', datatype: DataType.Double, value: 0 }] },
    });
    return {
      Motor: templateDef(motor.value as SpTemplate),
      BearingDef: templateDef(bearing.value as SpTemplate),
    };
  };

  const instance = (over: Partial<SpMetricInput> = {}): SpMetricInput => ({
    name: 'Pump1',
    datatype: DataType.Template,
    timestamp: T + 3,
    value: {
      isDefinition: false,
      templateRef: 'Motor',
      metrics: [
        { name: 'Speed', datatype: DataType.Float, value: 1450, omitDatatype: true },
        {
          name: 'Count',
          datatype: DataType.UInt32,
          raw: { field: 'long', value: 4_000_000_000n },
          omitDatatype: true,
        },
        {
          name: 'Bearing',
          datatype: DataType.Template,
          value: {
            isDefinition: false,
            templateRef: 'BearingDef',
            metrics: [
              { name: 'Temp', datatype: DataType.Double, value: 55.5, omitDatatype: true, timestamp: T + 9 },
            ],
          },
        },
      ],
      parameters: [{ name: 'RatedKW', type: DataType.Double, value: 7.5 }],
    },
    ...over,
  });

  it('flattens members recursively to {instance}/{member}, with the definition datatypes and units', () => {
    const r = flatten(instance(), ctx({ templates: definitions() }));
    expect(r.map((x) => [x.metric, x.type, x.value, x.unit, x.time])).toEqual([
      ['Pump1/Speed', 'Float', 1450, 'rpm', T + 3],
      ['Pump1/Count', 'UInt32', 4_000_000_000, undefined, T + 3],
      ['Pump1/Bearing/Temp', 'Double', 55.5, undefined, T + 9],
    ]);
    // Parameters are attributes, never series.
    expect(r.some((x) => x.metric.includes('RatedKW'))).toBe(false);
  });

  it('takes the definition from the birth hint when a DATA instance omits template_ref', () => {
    const m = metricOf({
      alias: 20,
      datatype: DataType.Template,
      omitDatatype: true,
      value: {
        isDefinition: false,
        metrics: [{ name: 'Speed', datatype: DataType.Float, value: 3, omitDatatype: true }],
      },
    });
    const withHint = flattenMetric(m, 'Pump1', DataType.Template, ctx({ templates: definitions() }), {
      templateRef: 'Motor',
    });
    expect(withHint.map((x) => [x.metric, x.type, x.value])).toEqual([['Pump1/Speed', 'Float', 3]]);
  });

  it('passes is_historical / is_transient of the instance down to its members', () => {
    const r = flatten(instance({ isHistorical: true, isTransient: true }), ctx({ templates: definitions() }));
    expect(r.every((x) => x.historical && x.transient)).toBe(true);
  });

  it('reports members whose datatype cannot be known instead of guessing', () => {
    const unresolved: string[] = [];
    const r = flatten(instance(), ctx({ templates: {}, unresolved }));
    expect(r).toEqual([]);
    expect(unresolved).toEqual(['Pump1/Speed', 'Pump1/Count', 'Pump1/Bearing/Temp']);
  });

  it('reduces a definition to small JSON-safe state: typed members, units, nested refs, defaults', () => {
    const defs = definitions();
    expect(defs.Motor).toEqual({
      members: {
        Speed: { name: 'Speed', datatype: DataType.Float, unit: 'rpm', props: { engUnit: 'rpm' } },
        Count: { name: 'Count', datatype: DataType.UInt32 },
        Bearing: { name: 'Bearing', datatype: DataType.Template, templateRef: 'BearingDef' },
      },
      params: { RatedKW: 0 },
    });
    expect(JSON.parse(JSON.stringify(defs))).toEqual(defs);
  });

  it('never resolves a member through Object.prototype (a member named "constructor")', () => {
    const unresolved: string[] = [];
    const m = metricOf({
      name: 'Pump1',
      datatype: DataType.Template,
      value: {
        isDefinition: false,
        templateRef: 'Motor',
        metrics: [{ name: 'constructor', datatype: DataType.Int32, value: 1, omitDatatype: true }],
      },
    });
    expect(
      flattenMetric(m, 'Pump1', DataType.Template, ctx({ templates: definitions(), unresolved })),
    ).toEqual([]);
    expect(unresolved).toEqual(['Pump1/constructor']);
  });

  it('gives a definition no readings (definitions are state, not data)', () => {
    const defs = definitions();
    const m = metricOf({
      name: 'Motor',
      datatype: DataType.Template,
      value: { isDefinition: true, metrics: [{ name: 'Speed', datatype: DataType.Float, value: 1 }] },
    });
    expect(flattenMetric(m, 'Motor', DataType.Template, ctx({ templates: defs }))).toEqual([]);
  });
});
