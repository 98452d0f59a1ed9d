/**
 * Sparkplug B 3.0 payload codec (spec Ch.6), written directly over the protobuf wire format.
 *
 * The schema lives in proto/sparkplug_b.proto (static protobufjs code is generated from it into
 * ./generated and used in tests to cross-check); this module is a hand-written decoder/encoder for the
 * same schema because the host needs datatype-aware values (sign, width, 64-bit without Long objects)
 * and decode throughput on the ingest path. See docs/adr/0002-sparkplug-number-representation.md.
 *
 * Decoding throws DecodeError only (code + a message naming the field); unknown fields and extensions
 * are skipped. Encoding throws ValidationError when a value does not fit its datatype.
 */
import { DecodeError, DualpathError, ValidationError } from '../errors.js';
import { ErrorCode, malformed, Reader, WireType } from './codec/reader.js';
import { Writer } from './codec/writer.js';
import {
  COMPRESSED_UUID,
  type CompressionAlgorithm,
  compressBytes,
  declaredAlgorithm,
  decompressBody,
} from './compression.js';
import { dataTypeName, interpretValueAt, plainInt32Pattern, toRawValue } from './datatypes.js';
import {
  DataType,
  type RawValue,
  type SpDataSet,
  type SpMetaData,
  type SpMetric,
  type SpParameter,
  type SpPayload,
  type SpPropertySet,
  type SpPropertyValue,
  type SpStateMessage,
  type SpTemplate,
  type SpValue,
} from './types.js';

export { COMPRESSED_UUID, dataTypeName, toRawValue };

// ---------------------------------------------------------------------------------------------------
// Limits
// ---------------------------------------------------------------------------------------------------

/** Default input limit: a Kinesis record is at most 1 MiB (IoT Core messages at most 128 KiB). */
export const DEFAULT_MAX_BYTES = 1024 * 1024;
/** Default limit for the inner payload of a compressed payload. */
export const DEFAULT_MAX_DECOMPRESSED_BYTES = 4 * 1024 * 1024;
/** Maximum nesting of Templates, DataSets, PropertySets and PropertySetLists. */
export const MAX_NESTING_DEPTH = 16;

export interface DecodeOptions {
  maxBytes?: number;
  maxDecompressedBytes?: number;
}

// ---------------------------------------------------------------------------------------------------
// Input model for encoding
// ---------------------------------------------------------------------------------------------------

/** Values accepted by the encoder: the interpreted SpValue forms plus the structured input forms. */
export type SpValueInput =
  | SpValue
  | SpDataSetInput
  | SpTemplateInput
  | SpPropertySetInput
  | SpPropertySetInput[]
  | SpValueInput[];

export interface SpMetaDataInput extends Omit<SpMetaData, 'size' | 'seq'> {
  size?: bigint | number;
  seq?: bigint | number;
}

export interface SpPropertyValueInput {
  /** DataType code of the property (e.g. DataType.Int32 for `Quality`). */
  type: number;
  value?: SpValueInput;
  isNull?: boolean;
  /** Forces the wire field (overrides `value`). */
  raw?: RawValue;
}

/** Parallel keys/values, as on the wire (a decoded SpPropertySet is a valid input). */
export interface SpPropertySetInput {
  keys: string[];
  values: SpPropertyValueInput[];
}

export interface SpDataSetInput {
  /** Defaults to columns.length. */
  numOfColumns?: bigint | number;
  columns: string[];
  /** One basic DataType code (1–14) per column. */
  types: number[];
  /** rows[r][c]: interpreted values of types[c]; null for an absent cell. */
  rows: SpValue[][];
}

export interface SpParameterInput {
  name: string;
  type: number;
  value?: SpValue;
  raw?: RawValue;
}

export interface SpTemplateInput {
  version?: string;
  metrics?: SpMetricInput[];
  parameters?: SpParameterInput[];
  templateRef?: string;
  isDefinition?: boolean;
}

export interface SpMetricInput {
  name?: string;
  alias?: bigint | number;
  timestamp?: number;
  datatype?: number;
  value?: SpValueInput;
  /** Defaults to true when `value` is null. */
  isNull?: boolean;
  isHistorical?: boolean;
  isTransient?: boolean;
  metadata?: SpMetaDataInput;
  properties?: SpPropertySetInput;
  /** Forces a wire field, e.g. UInt32 in long_value or an unextended signed pattern. */
  raw?: RawValue;
  /**
   * Encode the value by `datatype` but leave the datatype field off the wire, as the spec recommends
   * for DATA and CMD metrics that carry only an alias.
   */
  omitDatatype?: boolean;
}

export interface SpPayloadInput {
  timestamp?: number;
  metrics?: SpMetricInput[];
  seq?: bigint | number;
  uuid?: string;
  body?: Uint8Array;
}

// ---------------------------------------------------------------------------------------------------
// Decoder
// ---------------------------------------------------------------------------------------------------

const NONE: RawValue = Object.freeze({ field: 'none' }) as RawValue;

// Tags: (field number << 3) | wire type.
const VARINT = WireType.varint;
const I64 = WireType.fixed64;
const LEN = WireType.bytes;
const I32 = WireType.fixed32;
const t = (field: number, wire: number): number => (field << 3) | wire;

function tooDeep(field: string): DecodeError {
  return new DecodeError(
    ErrorCode.tooDeep,
    `Sparkplug ${field}: nesting deeper than ${MAX_NESTING_DEPTH} levels`,
    {
      field,
    },
  );
}

/** Skips an unknown field; a known field number with the wrong wire type is malformed. */
function other(r: Reader, tag: number, knownMax: number, message: string): void {
  const num = tag >>> 3;
  if (num <= knownMax) throw malformed(`${message} field ${num}`, `unexpected wire type ${tag & 7}`);
  r.skip(tag & 7, message);
}

/** Reads the raw oneof value shared by Metric/PropertyValue/Parameter/DataSetValue at `base`. */
function readScalar(r: Reader, wire: number, offset: number, message: string): RawValue | undefined {
  switch (offset) {
    case 0:
      return wire === VARINT ? { field: 'int', value: r.uint32(`${message}.int_value`) } : undefined;
    case 1:
      return wire === VARINT ? { field: 'long', value: r.uint64(`${message}.long_value`) } : undefined;
    case 2:
      return wire === I32 ? { field: 'float', value: r.float(`${message}.float_value`) } : undefined;
    case 3:
      return wire === I64 ? { field: 'double', value: r.double(`${message}.double_value`) } : undefined;
    case 4:
      return wire === VARINT ? { field: 'boolean', value: r.bool(`${message}.boolean_value`) } : undefined;
    case 5:
      return wire === LEN ? { field: 'string', value: r.string(`${message}.string_value`) } : undefined;
    default:
      return undefined;
  }
}

function readMetaData(r: Reader): SpMetaData {
  const end = r.delimited('Metric.metadata');
  const saved = r.end;
  r.end = end;
  const md: SpMetaData = {};
  while (r.pos < end) {
    const tag = r.tag('MetaData');
    switch (tag) {
      case t(1, VARINT):
        md.isMultiPart = r.bool('MetaData.is_multi_part');
        break;
      case t(2, LEN):
        md.contentType = r.string('MetaData.content_type');
        break;
      case t(3, VARINT):
        md.size = r.uint64('MetaData.size');
        break;
      case t(4, VARINT):
        md.seq = r.uint64('MetaData.seq');
        break;
      case t(5, LEN):
        md.fileName = r.string('MetaData.file_name');
        break;
      case t(6, LEN):
        md.fileType = r.string('MetaData.file_type');
        break;
      case t(7, LEN):
        md.md5 = r.string('MetaData.md5');
        break;
      case t(8, LEN):
        md.description = r.string('MetaData.description');
        break;
      default:
        other(r, tag, 8, 'MetaData');
    }
  }
  r.end = saved;
  return md;
}

function readPropertySetList(r: Reader, depth: number): SpPropertySet[] {
  if (depth > MAX_NESTING_DEPTH) throw tooDeep('PropertyValue.propertysets_value');
  const end = r.delimited('PropertyValue.propertysets_value');
  const saved = r.end;
  r.end = end;
  const list: SpPropertySet[] = [];
  while (r.pos < end) {
    const tag = r.tag('PropertySetList');
    if (tag === t(1, LEN)) list.push(readPropertySet(r, depth + 1, 'PropertySetList.propertyset'));
    else other(r, tag, 1, 'PropertySetList');
  }
  r.end = saved;
  return list;
}

function readPropertyValue(r: Reader, depth: number): SpPropertyValue {
  const end = r.delimited('PropertySet.values');
  const saved = r.end;
  r.end = end;
  let type = 0;
  let isNull = false;
  let raw: RawValue = NONE;
  while (r.pos < end) {
    const tag = r.tag('PropertyValue');
    const num = tag >>> 3;
    const wire = tag & 7;
    if (tag === t(1, VARINT)) type = r.uint32('PropertyValue.type');
    else if (tag === t(2, VARINT)) isNull = r.bool('PropertyValue.is_null');
    else if (num >= 3 && num <= 8) {
      const v = readScalar(r, wire, num - 3, 'PropertyValue');
      if (v === undefined) other(r, tag, 11, 'PropertyValue');
      else raw = v;
    } else if (tag === t(9, LEN)) {
      raw = { field: 'propertyset', value: readPropertySet(r, depth + 1, 'PropertyValue.propertyset_value') };
    } else if (tag === t(10, LEN)) {
      raw = { field: 'propertysets', value: readPropertySetList(r, depth + 1) };
    } else if (tag === t(11, LEN)) {
      raw = { field: 'extension', value: r.bytes('PropertyValue.extension_value') };
    } else other(r, tag, 11, 'PropertyValue');
  }
  r.end = saved;
  const value = isNull ? null : interpretValueAt(type, raw, 'PropertyValue.value');
  return { type, isNull, raw, value };
}

function readPropertySet(r: Reader, depth: number, field: string): SpPropertySet {
  if (depth > MAX_NESTING_DEPTH) throw tooDeep(field);
  const end = r.delimited(field);
  const saved = r.end;
  r.end = end;
  const keys: string[] = [];
  const values: SpPropertyValue[] = [];
  while (r.pos < end) {
    const tag = r.tag('PropertySet');
    if (tag === t(1, LEN)) keys.push(r.string('PropertySet.keys'));
    else if (tag === t(2, LEN)) values.push(readPropertyValue(r, depth));
    else other(r, tag, 2, 'PropertySet');
  }
  r.end = saved;
  return { keys, values };
}

function readDataSetValue(r: Reader): RawValue {
  const end = r.delimited('DataSet.Row.elements');
  const saved = r.end;
  r.end = end;
  let raw: RawValue = NONE;
  while (r.pos < end) {
    const tag = r.tag('DataSetValue');
    const num = tag >>> 3;
    if (num >= 1 && num <= 6) {
      const v = readScalar(r, tag & 7, num - 1, 'DataSetValue');
      if (v === undefined) other(r, tag, 7, 'DataSetValue');
      else raw = v;
    } else if (tag === t(7, LEN))
      raw = { field: 'extension', value: r.bytes('DataSetValue.extension_value') };
    else other(r, tag, 7, 'DataSetValue');
  }
  r.end = saved;
  return raw;
}

function readRow(r: Reader): RawValue[] {
  const end = r.delimited('DataSet.rows');
  const saved = r.end;
  r.end = end;
  const cells: RawValue[] = [];
  while (r.pos < end) {
    const tag = r.tag('DataSet.Row');
    if (tag === t(1, LEN)) cells.push(readDataSetValue(r));
    else other(r, tag, 1, 'DataSet.Row');
  }
  r.end = saved;
  return cells;
}

function readDataSet(r: Reader, depth: number): SpDataSet {
  if (depth > MAX_NESTING_DEPTH) throw tooDeep('Metric.dataset_value');
  const end = r.delimited('Metric.dataset_value');
  const saved = r.end;
  r.end = end;
  let numOfColumns: bigint | undefined;
  const columns: string[] = [];
  const types: number[] = [];
  const rawRows: RawValue[][] = [];
  while (r.pos < end) {
    const tag = r.tag('DataSet');
    switch (tag) {
      case t(1, VARINT):
        numOfColumns = r.uint64('DataSet.num_of_columns');
        break;
      case t(2, LEN):
        columns.push(r.string('DataSet.columns'));
        break;
      case t(3, VARINT):
        types.push(r.uint32('DataSet.types'));
        break;
      case t(3, LEN): {
        // packed encoding of the repeated uint32 (parsers must accept both forms)
        const packedEnd = r.delimited('DataSet.types');
        while (r.pos < packedEnd) types.push(r.uint32('DataSet.types'));
        break;
      }
      case t(4, LEN):
        rawRows.push(readRow(r));
        break;
      default:
        other(r, tag, 4, 'DataSet');
    }
  }
  r.end = saved;
  const rows: SpValue[][] = rawRows.map((cells) =>
    cells.map((raw, c) => interpretValueAt(types[c] ?? DataType.Unknown, raw, 'DataSet.Row.elements')),
  );
  return { numOfColumns: numOfColumns ?? BigInt(columns.length), columns, types, rows };
}

function readParameter(r: Reader): SpParameter {
  const end = r.delimited('Template.parameters');
  const saved = r.end;
  r.end = end;
  let name = '';
  let type = 0;
  let raw: RawValue = NONE;
  while (r.pos < end) {
    const tag = r.tag('Template.Parameter');
    const num = tag >>> 3;
    if (tag === t(1, LEN)) name = r.string('Template.Parameter.name');
    else if (tag === t(2, VARINT)) type = r.uint32('Template.Parameter.type');
    else if (num >= 3 && num <= 8) {
      const v = readScalar(r, tag & 7, num - 3, 'Template.Parameter');
      if (v === undefined) other(r, tag, 9, 'Template.Parameter');
      else raw = v;
    } else if (tag === t(9, LEN))
      raw = { field: 'extension', value: r.bytes('Template.Parameter.extension_value') };
    else other(r, tag, 9, 'Template.Parameter');
  }
  r.end = saved;
  return { name, type, raw, value: interpretValueAt(type, raw, 'Template.Parameter.value') };
}

function readTemplate(r: Reader, depth: number): SpTemplate {
  if (depth > MAX_NESTING_DEPTH) throw tooDeep('Metric.template_value');
  const end = r.delimited('Metric.template_value');
  const saved = r.end;
  r.end = end;
  const tpl: SpTemplate = { metrics: [], parameters: [], isDefinition: false };
  while (r.pos < end) {
    const tag = r.tag('Template');
    switch (tag) {
      case t(1, LEN):
        tpl.version = r.string('Template.version');
        break;
      case t(2, LEN):
        tpl.metrics.push(readMetric(r, depth, 'Template.metrics'));
        break;
      case t(3, LEN):
        tpl.parameters.push(readParameter(r));
        break;
      case t(4, LEN):
        tpl.templateRef = r.string('Template.template_ref');
        break;
      case t(5, VARINT):
        tpl.isDefinition = r.bool('Template.is_definition');
        break;
      default:
        other(r, tag, 5, 'Template');
    }
  }
  r.end = saved;
  return tpl;
}

function readMetric(r: Reader, depth: number, field: string): SpMetric {
  const end = r.delimited(field);
  const saved = r.end;
  r.end = end;
  let name: string | undefined;
  let alias: bigint | undefined;
  let timestamp: number | undefined;
  let datatype: number | undefined;
  let isHistorical = false;
  let isTransient = false;
  let isNull = false;
  let metadata: SpMetaData | undefined;
  let properties: SpPropertySet | undefined;
  let raw: RawValue = NONE;
  while (r.pos < end) {
    const tag = r.tag('Metric');
    switch (tag) {
      case t(1, LEN):
        name = r.string('Metric.name');
        break;
      case t(2, VARINT):
        alias = r.uint64('Metric.alias');
        break;
      case t(3, VARINT):
        timestamp = r.uint64Number('Metric.timestamp');
        break;
      case t(4, VARINT):
        datatype = r.uint32('Metric.datatype');
        break;
      case t(5, VARINT):
        isHistorical = r.bool('Metric.is_historical');
        break;
      case t(6, VARINT):
        isTransient = r.bool('Metric.is_transient');
        break;
      case t(7, VARINT):
        isNull = r.bool('Metric.is_null');
        break;
      case t(8, LEN):
        metadata = readMetaData(r);
        break;
      case t(9, LEN):
        properties = readPropertySet(r, depth + 1, 'Metric.properties');
        break;
      case t(10, VARINT):
        raw = { field: 'int', value: r.uint32('Metric.int_value') };
        break;
      case t(11, VARINT):
        raw = { field: 'long', value: r.uint64('Metric.long_value') };
        break;
      case t(12, I32):
        raw = { field: 'float', value: r.float('Metric.float_value') };
        break;
      case t(13, I64):
        raw = { field: 'double', value: r.double('Metric.double_value') };
        break;
      case t(14, VARINT):
        raw = { field: 'boolean', value: r.bool('Metric.boolean_value') };
        break;
      case t(15, LEN):
        raw = { field: 'string', value: r.string('Metric.string_value') };
        break;
      case t(16, LEN):
        raw = { field: 'bytes', value: r.bytes('Metric.bytes_value') };
        break;
      case t(17, LEN):
        raw = { field: 'dataset', value: readDataSet(r, depth + 1) };
        break;
      case t(18, LEN):
        raw = { field: 'template', value: readTemplate(r, depth + 1) };
        break;
      case t(19, LEN):
        raw = { field: 'extension', value: r.bytes('Metric.extension_value') };
        break;
      default:
        other(r, tag, 19, 'Metric');
    }
  }
  r.end = saved;
  const value = isNull
    ? null
    : datatype === undefined
      ? undefined
      : interpretValueAt(datatype, raw, 'Metric.value');
  return {
    name,
    alias,
    timestamp,
    datatype,
    isHistorical,
    isTransient,
    isNull,
    metadata,
    properties,
    raw,
    value,
  };
}

function readPayload(bytes: Uint8Array): SpPayload {
  const r = new Reader(bytes);
  let timestamp: number | undefined;
  let seq: bigint | undefined;
  let uuid: string | undefined;
  let body: Uint8Array | undefined;
  const metrics: SpMetric[] = [];
  while (r.pos < r.end) {
    const tag = r.tag('Payload');
    switch (tag) {
      case t(1, VARINT):
        timestamp = r.uint64Number('Payload.timestamp');
        break;
      case t(2, LEN):
        metrics.push(readMetric(r, 0, 'Payload.metrics'));
        break;
      case t(3, VARINT):
        seq = r.uint64('Payload.seq');
        break;
      case t(4, LEN):
        uuid = r.string('Payload.uuid');
        break;
      case t(5, LEN):
        body = r.bytes('Payload.body');
        break;
      default:
        other(r, tag, 5, 'Payload');
    }
  }
  const payload: SpPayload = { timestamp, metrics, seq, uuid, body };
  return payload;
}

function checkSize(bytes: Uint8Array, max: number, what: string): void {
  if (bytes.length > max) {
    throw new DecodeError(
      ErrorCode.tooLarge,
      `Sparkplug ${what} is ${bytes.length} bytes, over the ${max}-byte limit`,
      {
        field: 'Payload',
      },
    );
  }
}

/**
 * Decodes a Sparkplug B payload. Every metric keeps its raw oneof value; `value` is interpreted when the
 * metric carries its datatype. A payload using the SPBV1.0_COMPRESSED convention is unwrapped and the
 * inner payload returned with `compressed` set. Throws DecodeError only.
 */
export function decodePayload(bytes: Uint8Array, opts: DecodeOptions = {}): SpPayload {
  try {
    if (!(bytes instanceof Uint8Array)) {
      throw new DecodeError(ErrorCode.malformed, 'Sparkplug payload must be bytes (Uint8Array)', {
        field: 'Payload',
      });
    }
    checkSize(bytes, opts.maxBytes ?? DEFAULT_MAX_BYTES, 'payload');
    const outer = readPayload(bytes);
    if (outer.uuid !== COMPRESSED_UUID) return outer;
    const algorithm = declaredAlgorithm(outer);
    if (outer.body === undefined) {
      throw new DecodeError(ErrorCode.compression, 'Sparkplug compressed payload has no Payload.body', {
        field: 'Payload.body',
      });
    }
    const limit = opts.maxDecompressedBytes ?? DEFAULT_MAX_DECOMPRESSED_BYTES;
    const inner = readPayload(decompressBody(outer.body, algorithm, limit));
    if (inner.uuid === COMPRESSED_UUID) {
      throw new DecodeError(
        ErrorCode.compression,
        'Sparkplug compressed payload wraps another compressed payload',
        {
          field: 'Payload.body',
        },
      );
    }
    inner.compressed = algorithm;
    return inner;
  } catch (error) {
    if (error instanceof DecodeError) throw error;
    // Defensive: nothing but a DecodeError may leave the decoder.
    throw new DecodeError(ErrorCode.malformed, `Sparkplug payload could not be decoded: ${String(error)}`, {
      field: 'Payload',
      cause: error,
    });
  }
}

/**
 * Interprets a raw oneof value with a datatype (the host calls this for alias-only DATA metrics with
 * the datatype from the birth). Throws DecodeError SPARKPLUG_VALUE_MISMATCH (field `Metric.value`) when
 * the wire field cannot carry the datatype, SPARKPLUG_ARRAY_LAYOUT for malformed array bytes.
 */
export function interpretValue(datatype: number, raw: RawValue): SpValue {
  try {
    return interpretValueAt(datatype, raw, 'Metric.value');
  } catch (error) {
    if (error instanceof DecodeError) throw error;
    throw new DecodeError(ErrorCode.valueMismatch, `Sparkplug Metric.value: ${String(error)}`, {
      field: 'Metric.value',
      cause: error,
    });
  }
}

// ---------------------------------------------------------------------------------------------------
// Encoder
// ---------------------------------------------------------------------------------------------------

/** Field numbers of the value oneof in each message that has one. */
interface ValueFields {
  int: number;
  long: number;
  float: number;
  double: number;
  boolean: number;
  string: number;
  bytes?: number;
  dataset?: number;
  template?: number;
  propertyset?: number;
  propertysets?: number;
  extension: number;
}

const METRIC: ValueFields = {
  int: 10,
  long: 11,
  float: 12,
  double: 13,
  boolean: 14,
  string: 15,
  bytes: 16,
  dataset: 17,
  template: 18,
  extension: 19,
};
const PROPERTY: ValueFields = {
  int: 3,
  long: 4,
  float: 5,
  double: 6,
  boolean: 7,
  string: 8,
  propertyset: 9,
  propertysets: 10,
  extension: 11,
};
const PARAMETER: ValueFields = { int: 3, long: 4, float: 5, double: 6, boolean: 7, string: 8, extension: 9 };
const DATASET_VALUE: ValueFields = {
  int: 1,
  long: 2,
  float: 3,
  double: 4,
  boolean: 5,
  string: 6,
  extension: 7,
};
const MAX_ENCODE_DEPTH = 64;

function invalid(field: string, message: string): ValidationError {
  return new ValidationError(`Sparkplug ${field}: ${message}`, { field, code: 'SPARKPLUG_ENCODE_INVALID' });
}

function fieldFor(map: ValueFields, key: keyof ValueFields, field: string): number {
  const n = map[key];
  if (n === undefined) throw invalid(field, `a ${key} value cannot be carried here`);
  return n;
}

function writeRaw(w: Writer, raw: RawValue, map: ValueFields, field: string, depth: number): void {
  switch (raw.field) {
    case 'none':
      return;
    case 'int':
      w.uint32Field(map.int, raw.value);
      return;
    case 'long':
      w.uint64Field(map.long, raw.value);
      return;
    case 'float':
      w.floatField(map.float, raw.value);
      return;
    case 'double':
      w.doubleField(map.double, raw.value);
      return;
    case 'boolean':
      w.boolField(map.boolean, raw.value);
      return;
    case 'string':
      w.stringField(map.string, raw.value);
      return;
    case 'bytes':
      w.bytesField(fieldFor(map, 'bytes', field), raw.value);
      return;
    case 'extension':
      w.bytesField(map.extension, raw.value);
      return;
    case 'dataset':
      writeDataSet(w, fieldFor(map, 'dataset', field), raw.value, field, depth);
      return;
    case 'template':
      writeTemplate(w, fieldFor(map, 'template', field), raw.value, field, depth);
      return;
    case 'propertyset':
      writePropertySet(w, fieldFor(map, 'propertyset', field), raw.value, field, depth);
      return;
    case 'propertysets':
      writePropertySetList(w, fieldFor(map, 'propertysets', field), raw.value, field, depth);
      return;
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array);
}

function writeTyped(
  w: Writer,
  datatype: number,
  value: SpValueInput,
  map: ValueFields,
  field: string,
  depth: number,
): void {
  switch (datatype) {
    case DataType.DataSet:
      if (!isObject(value)) throw invalid(field, 'DataSet value is not a DataSet');
      writeDataSet(w, fieldFor(map, 'dataset', field), value as unknown as SpDataSetInput, field, depth);
      return;
    case DataType.Template:
      if (!isObject(value)) throw invalid(field, 'Template value is not a Template');
      writeTemplate(w, fieldFor(map, 'template', field), value as SpTemplateInput, field, depth);
      return;
    case DataType.PropertySet:
      if (!isObject(value)) throw invalid(field, 'PropertySet value is not a PropertySet');
      writePropertySet(
        w,
        fieldFor(map, 'propertyset', field),
        value as unknown as SpPropertySetInput,
        field,
        depth,
      );
      return;
    case DataType.PropertySetList:
      if (!Array.isArray(value)) throw invalid(field, 'PropertySetList value is not an array');
      writePropertySetList(
        w,
        fieldFor(map, 'propertysets', field),
        value as SpPropertySetInput[],
        field,
        depth,
      );
      return;
    default:
      writeRaw(w, toRawValue(datatype, value as SpValue, field), map, field, depth);
  }
}

function writeMetaData(w: Writer, md: SpMetaDataInput): void {
  const mark = w.fork(8);
  if (md.isMultiPart !== undefined) w.boolField(1, md.isMultiPart);
  if (md.contentType !== undefined) w.stringField(2, md.contentType);
  if (md.size !== undefined) w.uint64Field(3, md.size);
  if (md.seq !== undefined) w.uint64Field(4, md.seq);
  if (md.fileName !== undefined) w.stringField(5, md.fileName);
  if (md.fileType !== undefined) w.stringField(6, md.fileType);
  if (md.md5 !== undefined) w.stringField(7, md.md5);
  if (md.description !== undefined) w.stringField(8, md.description);
  w.ldelim(mark);
}

function writePropertySet(
  w: Writer,
  fieldNo: number,
  ps: SpPropertySetInput,
  field: string,
  depth: number,
): void {
  if (depth > MAX_ENCODE_DEPTH) throw invalid(field, 'nested too deeply');
  if (!Array.isArray(ps.keys) || !Array.isArray(ps.values) || ps.keys.length !== ps.values.length) {
    throw invalid(field, 'PropertySet needs parallel keys and values arrays of equal length');
  }
  const mark = w.fork(fieldNo);
  for (const key of ps.keys) w.stringField(1, key);
  ps.values.forEach((pv, i) => {
    const where = `${field}.${ps.keys[i]}`;
    const m = w.fork(2);
    w.uint32Field(1, pv.type);
    const isNull = pv.isNull ?? (pv.raw === undefined && (pv.value === null || pv.value === undefined));
    if (isNull) w.boolField(2, true);
    if (pv.raw !== undefined) writeRaw(w, pv.raw, PROPERTY, where, depth + 1);
    else if (!isNull && pv.value !== undefined) writeTyped(w, pv.type, pv.value, PROPERTY, where, depth + 1);
    w.ldelim(m);
  });
  w.ldelim(mark);
}

function writePropertySetList(
  w: Writer,
  fieldNo: number,
  list: readonly SpPropertySetInput[],
  field: string,
  depth: number,
): void {
  if (depth > MAX_ENCODE_DEPTH) throw invalid(field, 'nested too deeply');
  const mark = w.fork(fieldNo);
  for (const ps of list) writePropertySet(w, 1, ps, field, depth + 1);
  w.ldelim(mark);
}

function writeDataSet(w: Writer, fieldNo: number, ds: SpDataSetInput, field: string, depth: number): void {
  if (!Array.isArray(ds.columns) || !Array.isArray(ds.types) || !Array.isArray(ds.rows)) {
    throw invalid(field, 'DataSet needs columns, types and rows arrays');
  }
  if (ds.types.length !== ds.columns.length)
    throw invalid(field, 'DataSet types and columns differ in length');
  const mark = w.fork(fieldNo);
  w.uint64Field(1, ds.numOfColumns ?? ds.columns.length);
  for (const c of ds.columns) w.stringField(2, c);
  for (const type of ds.types) w.uint32Field(3, type);
  ds.rows.forEach((row, r) => {
    if (row.length !== ds.columns.length)
      throw invalid(`${field}.rows[${r}]`, 'row length differs from columns');
    const rm = w.fork(4);
    row.forEach((cell, c) => {
      const em = w.fork(1);
      if (cell !== null) writeTyped(w, ds.types[c]!, cell, DATASET_VALUE, `${field}.rows[${r}][${c}]`, depth);
      w.ldelim(em);
    });
    w.ldelim(rm);
  });
  w.ldelim(mark);
}

function writeTemplate(w: Writer, fieldNo: number, tpl: SpTemplateInput, field: string, depth: number): void {
  if (depth > MAX_ENCODE_DEPTH) throw invalid(field, 'nested too deeply');
  const mark = w.fork(fieldNo);
  if (tpl.version !== undefined) w.stringField(1, tpl.version);
  tpl.metrics?.forEach((m, i) => {
    writeMetric(w, 2, m, `${field}.metrics[${i}]`, depth + 1);
  });
  tpl.parameters?.forEach((p, i) => {
    const where = `${field}.parameters[${i}]`;
    const pm = w.fork(3);
    w.stringField(1, p.name);
    w.uint32Field(2, p.type);
    if (p.raw !== undefined) writeRaw(w, p.raw, PARAMETER, where, depth);
    else if (p.value !== undefined && p.value !== null)
      writeTyped(w, p.type, p.value, PARAMETER, where, depth);
    w.ldelim(pm);
  });
  if (tpl.templateRef !== undefined) w.stringField(4, tpl.templateRef);
  if (tpl.isDefinition !== undefined) w.boolField(5, tpl.isDefinition);
  w.ldelim(mark);
}

function writeMetric(w: Writer, fieldNo: number, m: SpMetricInput, field: string, depth: number): void {
  const mark = w.fork(fieldNo);
  if (m.name !== undefined) w.stringField(1, m.name);
  if (m.alias !== undefined) w.uint64Field(2, m.alias);
  if (m.timestamp !== undefined) w.uint64Field(3, m.timestamp);
  if (m.datatype !== undefined && !m.omitDatatype) w.uint32Field(4, m.datatype);
  if (m.isHistorical) w.boolField(5, true);
  if (m.isTransient) w.boolField(6, true);
  const isNull = m.isNull ?? (m.raw === undefined && m.value === null);
  if (isNull) w.boolField(7, true);
  if (m.metadata !== undefined) writeMetaData(w, m.metadata);
  if (m.properties !== undefined) writePropertySet(w, 9, m.properties, `${field}.properties`, depth + 1);
  if (m.raw !== undefined) writeRaw(w, m.raw, METRIC, `${field}.value`, depth);
  else if (!isNull && m.value !== undefined && m.value !== null) {
    if (m.datatype === undefined) throw invalid(`${field}.datatype`, 'a value needs a datatype (or raw)');
    if (!writePlainScalar(w, m.datatype, m.value))
      writeTyped(w, m.datatype, m.value, METRIC, `${field}.value`, depth);
  }
  w.ldelim(mark);
}

/**
 * The common case of a metric value — a number, boolean or string of the matching scalar datatype —
 * written straight to its field. Returns false for anything else, which takes the general path
 * (and its validation errors). The simulator's encode hot path.
 */
function writePlainScalar(w: Writer, datatype: number, value: SpValueInput): boolean {
  switch (typeof value) {
    case 'number':
      if (datatype === DataType.Double) w.doubleField(METRIC.double, value);
      else if (datatype === DataType.Float) w.floatField(METRIC.float, value);
      else if (
        (datatype === DataType.Int64 || datatype === DataType.UInt64 || datatype === DataType.DateTime) &&
        Number.isSafeInteger(value) &&
        value >= 0
      ) {
        w.uint64Field(METRIC.long, value);
      } else {
        const pattern = plainInt32Pattern(datatype, value);
        if (pattern === undefined) return false;
        w.uint32Field(METRIC.int, pattern);
      }
      return true;
    case 'boolean':
      if (datatype !== DataType.Boolean) return false;
      w.boolField(METRIC.boolean, value);
      return true;
    case 'string':
      if (datatype !== DataType.String && datatype !== DataType.Text && datatype !== DataType.UUID)
        return false;
      w.stringField(METRIC.string, value);
      return true;
    default:
      return false;
  }
}

/** `Payload.metrics[i]`, made once per index: a field path is only read when an error names it. */
const metricPaths: string[] = [];
function metricPath(i: number): string {
  if (i >= 4096) return `Payload.metrics[${i}]`;
  let path = metricPaths[i];
  if (path === undefined) {
    path = `Payload.metrics[${i}]`;
    metricPaths[i] = path;
  }
  return path;
}

/**
 * Encodes a payload. Values are written in the wire field the spec gives their datatype (UInt32 in
 * int_value); `raw` forces a field. Throws ValidationError (SPARKPLUG_ENCODE_INVALID) on bad input.
 */
// Encoding never yields, so one writer serves every call; `finish` copies the bytes out.
const sharedWriter = new Writer();

export function encodePayload(payload: SpPayloadInput): Uint8Array {
  const w = sharedWriter.reset();
  try {
    if (payload.timestamp !== undefined) w.uint64Field(1, payload.timestamp);
    const metrics = payload.metrics;
    if (metrics !== undefined)
      for (let i = 0; i < metrics.length; i++) writeMetric(w, 2, metrics[i]!, metricPath(i), 0);
    if (payload.seq !== undefined) w.uint64Field(3, payload.seq);
    if (payload.uuid !== undefined) w.stringField(4, payload.uuid);
    if (payload.body !== undefined) w.bytesField(5, payload.body);
  } catch (error) {
    if (error instanceof DualpathError) throw error;
    throw invalid('Payload', String(error));
  }
  return w.finish();
}

/**
 * Encodes `inner` and wraps it in the SPBV1.0_COMPRESSED convention: uuid, body = DEFLATE (zlib
 * stream, as Tahu/pako) or GZIP, and the String metric `algorithm`.
 */
export function compressPayload(
  inner: SpPayloadInput,
  algorithm: CompressionAlgorithm = 'DEFLATE',
): Uint8Array {
  const body = compressBytes(encodePayload(inner), algorithm);
  return encodePayload({
    uuid: COMPRESSED_UUID,
    body,
    metrics: [{ name: 'algorithm', datatype: DataType.String, value: algorithm }],
  });
}

// ---------------------------------------------------------------------------------------------------
// STATE (JSON, spBv1.0/STATE/{host_id})
// ---------------------------------------------------------------------------------------------------

const MAX_STATE_BYTES = 64 * 1024;
const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

function stateError(message: string, field = 'STATE', cause?: unknown): DecodeError {
  return new DecodeError(ErrorCode.stateInvalid, `Sparkplug STATE ${message}`, { field, cause });
}

/** Parses a Sparkplug 3.0 STATE message: JSON `{"online": boolean, "timestamp": epoch ms}`. */
export function parseStateMessage(bytes: Uint8Array): SpStateMessage {
  if (!(bytes instanceof Uint8Array)) throw stateError('must be bytes');
  if (bytes.length > MAX_STATE_BYTES) throw stateError(`is ${bytes.length} bytes, over ${MAX_STATE_BYTES}`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(strictUtf8.decode(bytes));
  } catch (cause) {
    throw stateError('is not UTF-8 JSON', 'STATE', cause);
  }
  if (!isObject(parsed)) throw stateError('is not a JSON object');
  const { online, timestamp } = parsed;
  if (typeof online !== 'boolean') throw stateError('field "online" must be a boolean', 'STATE.online');
  if (typeof timestamp !== 'number' || !Number.isSafeInteger(timestamp) || timestamp < 0) {
    throw stateError('field "timestamp" must be a non-negative integer (epoch ms)', 'STATE.timestamp');
  }
  return { online, timestamp };
}
