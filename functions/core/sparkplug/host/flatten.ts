/**
 * Metric → readings. Scalars and arrays give one reading; a DataSet gives one reading per cell named
 * `{metric}/{column}` with its `row`; a Template instance is flattened recursively to
 * `{instance}/{member}` (members take the definition's datatype when the instance omits it). Property
 * sets are metadata: `Quality` (0 BAD, 192 GOOD, 500 STALE) becomes the reading's quality and an
 * engineering-unit property its unit.
 */
import type { Quality, Reading, ReadingValue } from '../../reading.js';
import { dataTypeName, interpretValue } from '../codec.js';
import {
  DataType,
  type SpDataSet,
  type SpMetric,
  type SpPropertySet,
  type SpTemplate,
  type SpValue,
} from '../types.js';
import { lookup, type MetricDef, type TemplateDef } from './state.js';

export interface FlattenContext {
  deviceId: string;
  group: string;
  subDevice?: string;
  /** Reading time when the metric has no timestamp: payload timestamp, else receipt time. */
  defaultTime: number;
  /** Template definitions from the NBIRTH. */
  templates: Record<string, TemplateDef>;
  /**
   * Filled with the paths of template members whose datatype cannot be known (no datatype on the
   * wire and no definition member to take it from); they produce no reading.
   */
  unresolved?: string[];
}

/** What the birth said about a metric, for DATA messages that repeat neither properties nor refs. */
export interface BirthHint {
  unit?: string;
  /** For a Template instance: the definition it instantiates. */
  templateRef?: string;
}

const UNIT_KEYS = new Set(['engunit', 'engunits', 'unit', 'units', 'engineeringunits']);

export function propertyValue(props: SpPropertySet | undefined, name: string): SpValue | undefined {
  if (!props) return undefined;
  const i = props.keys.findIndex((k) => k.toLowerCase() === name.toLowerCase());
  return i < 0 ? undefined : props.values[i]?.value;
}

export function unitOf(props: SpPropertySet | undefined): string | undefined {
  if (!props) return undefined;
  const i = props.keys.findIndex((k) => UNIT_KEYS.has(k.toLowerCase().replace(/[\s_-]/g, '')));
  const v = i < 0 ? undefined : props.values[i]?.value;
  return typeof v === 'string' && v.length > 0 ? v : undefined;
}

const MAX_STATIC_PROPS = 16;
const MAX_PROP_STRING = 256;

/**
 * A birth's static metric properties as a small flat record (scalars only, bounded): kept in state as
 * the metric's metadata. Quality (per reading) and nested property sets are left out.
 */
export function staticProps(
  props: SpPropertySet | undefined,
): Record<string, string | number | boolean> | undefined {
  if (!props) return undefined;
  const out: Record<string, string | number | boolean> = {};
  let n = 0;
  props.keys.forEach((key, i) => {
    if (n >= MAX_STATIC_PROPS || key.toLowerCase() === 'quality') return;
    const v = props.values[i]?.value;
    let kept: string | number | boolean | undefined;
    if (typeof v === 'number' || typeof v === 'boolean') kept = v;
    else if (typeof v === 'bigint') kept = Number.isSafeInteger(Number(v)) ? Number(v) : v.toString();
    else if (typeof v === 'string') kept = v.slice(0, MAX_PROP_STRING);
    if (kept === undefined || (typeof kept === 'number' && !Number.isFinite(kept))) return;
    out[key] = kept;
    n++;
  });
  return n === 0 ? undefined : out;
}

export function qualityOf(props: SpPropertySet | undefined): Quality {
  const q = propertyValue(props, 'Quality');
  if (q === undefined || q === null) return 'GOOD';
  const n = typeof q === 'bigint' ? Number(q) : typeof q === 'number' ? q : Number.NaN;
  if (n === 192) return 'GOOD';
  if (n === 500) return 'STALE';
  if (n === 0) return 'BAD';
  return 'UNCERTAIN';
}

/** What a birth says about one metric (name, datatype, unit, template reference, static properties). */
export function describeMetric(m: SpMetric, name: string, datatype: number): MetricDef {
  const def: MetricDef = { name, datatype };
  const unit = unitOf(m.properties);
  if (unit !== undefined) def.unit = unit;
  const props = staticProps(m.properties);
  if (props !== undefined) def.props = props;
  if (datatype === DataType.Template && isTemplate(m.value) && typeof m.value.templateRef === 'string') {
    def.templateRef = m.value.templateRef;
  }
  return def;
}

/** Scalar parameter values of a template, by name (bigint beyond 2^53 as a decimal string). */
export function scalarParams(
  params: SpTemplate['parameters'],
  into: Record<string, string | number | boolean> = {},
): Record<string, string | number | boolean> {
  for (const p of params) {
    const v = p.value;
    if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'string') into[p.name] = v;
    else if (typeof v === 'bigint') into[p.name] = Number.isSafeInteger(Number(v)) ? Number(v) : v.toString();
  }
  return into;
}

/** Reduces an NBIRTH Template definition to the state the host keeps (members typed, defaults). */
export function templateDef(t: SpTemplate): TemplateDef {
  const members: Record<string, MetricDef> = {};
  for (const m of t.metrics) {
    if (m.name === undefined || m.datatype === undefined) continue;
    members[m.name] = describeMetric(m, m.name, m.datatype);
  }
  const def: TemplateDef = { members };
  if (t.version !== undefined && t.version !== '') def.version = t.version;
  const params = scalarParams(t.parameters);
  if (Object.keys(params).length > 0) def.params = params;
  return def;
}

function toReadingValue(v: SpValue): ReadingValue {
  if (v === null || typeof v !== 'object' || v instanceof Uint8Array) return v as ReadingValue;
  if (Array.isArray(v)) return v as ReadingValue[];
  return null;
}

function isDataSet(v: unknown): v is SpDataSet {
  return typeof v === 'object' && v !== null && 'columns' in v && 'rows' in v;
}

function isTemplate(v: unknown): v is SpTemplate {
  return typeof v === 'object' && v !== null && 'metrics' in v && 'isDefinition' in v;
}

/**
 * Flattens one metric whose name and datatype are resolved. `birth` is what the birth said about it
 * (unit, template reference), since DATA messages seldom repeat properties. Pure: throws only the
 * codec's DecodeError when the raw value does not fit the datatype.
 */
export function flattenMetric(
  metric: SpMetric,
  name: string,
  datatype: number,
  ctx: FlattenContext,
  birth?: BirthHint,
): Reading[] {
  const out: Reading[] = [];
  flattenInto(out, metric, name, datatype, ctx, birth, 0);
  return out;
}

/** As flattenMetric, appending to `out`: the host's hot path allocates no array per metric. */
export function flattenInto(
  out: Reading[],
  metric: SpMetric,
  name: string,
  datatype: number,
  ctx: FlattenContext,
  birth: BirthHint | undefined,
  depth: number,
): void {
  const time = metric.timestamp ?? ctx.defaultTime;
  const quality = metric.properties === undefined ? 'GOOD' : qualityOf(metric.properties);
  const resolvedUnit = unitOf(metric.properties) ?? birth?.unit;
  const value: SpValue = metric.isNull
    ? null
    : metric.value !== undefined
      ? metric.value
      : interpretValue(datatype, metric.raw);

  if (datatype === DataType.DataSet && isDataSet(value)) {
    value.rows.forEach((row, r) => {
      value.columns.forEach((column, c) => {
        const cell = row[c];
        const reading: Reading = {
          protocol: 'sparkplug',
          deviceId: ctx.deviceId,
          group: ctx.group,
          metric: `${name}/${column}`,
          type: dataTypeName(value.types[c] ?? DataType.Unknown),
          value: toReadingValue(cell === undefined ? null : cell),
          time,
          historical: metric.isHistorical,
          transient: metric.isTransient,
          quality,
          row: r,
        };
        if (ctx.subDevice !== undefined) reading.subDevice = ctx.subDevice;
        out.push(reading);
      });
    });
    return;
  }
  if (datatype === DataType.Template && isTemplate(value)) {
    // Definitions are state (kept from the NBIRTH), not data; parameters are attributes, not series.
    if (value.isDefinition || depth > 16) return;
    const ref = value.templateRef ?? birth?.templateRef;
    const definition = ref === undefined ? undefined : lookup(ctx.templates, ref);
    for (const member of value.metrics) {
      if (member.name === undefined) continue;
      const def = lookup(definition?.members, member.name);
      const memberType = member.datatype ?? def?.datatype;
      if (memberType === undefined) {
        ctx.unresolved?.push(`${name}/${member.name}`);
        continue;
      }
      const inherited: SpMetric = {
        ...member,
        timestamp: member.timestamp ?? time,
        isHistorical: member.isHistorical || metric.isHistorical,
        isTransient: member.isTransient || metric.isTransient,
      };
      const hint: BirthHint = {};
      if (def?.unit !== undefined) hint.unit = def.unit;
      if (def?.templateRef !== undefined) hint.templateRef = def.templateRef;
      flattenInto(out, inherited, `${name}/${member.name}`, memberType, ctx, hint, depth + 1);
    }
    return;
  }
  if (datatype === DataType.PropertySet || datatype === DataType.PropertySetList) return;
  // Hot path (every scalar metric of every DATA message): one object literal, no spreads.
  const reading: Reading = {
    protocol: 'sparkplug',
    deviceId: ctx.deviceId,
    group: ctx.group,
    metric: name,
    type: dataTypeName(datatype),
    value: toReadingValue(value),
    time,
    historical: metric.isHistorical,
    transient: metric.isTransient,
    quality,
  };
  if (ctx.subDevice !== undefined) reading.subDevice = ctx.subDevice;
  if (resolvedUnit !== undefined) reading.unit = resolvedUnit;
  out.push(reading);
}
