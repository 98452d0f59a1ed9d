/**
 * Datatype-aware interpretation of Sparkplug B values (spec Ch.6 "Datatype Details") in both
 * directions: raw oneof value → interpreted value (decoder) and interpreted value → wire field (encoder).
 *
 * Integers: the wire fields are unsigned; signed values are two's complement. A decoder cannot rely on
 * the sender having sign-extended (Tahu sign-extends Int8/Int16 to 32 bits, some devices send 0xFFA9
 * for Int16 −87), so we mask to the datatype's width and then sign-extend. Integer datatypes accept
 * either `int_value` or `long_value` (UInt32 notably arrives in both: the spec says int_value, Tahu
 * encodes long_value). 64-bit results are numbers when |v| ≤ 2^53−1, otherwise bigint.
 */
import { DecodeError, ValidationError } from '../errors.js';
import { decodeArray, encodeArray, isArrayType, toSafeInteger } from './arrays.js';
import { ErrorCode } from './codec/reader.js';
import { DataType, type RawValue, type SpValue } from './types.js';

const NAMES: string[] = [];
for (const [name, code] of Object.entries(DataType)) NAMES[code] = name;

/** 'Int16', 'DateTimeArray', … or 'Unknown(99)' for a code outside the spec's enum. */
export function dataTypeName(code: number): string {
  return NAMES[code] ?? `Unknown(${code})`;
}

function mismatch(datatype: number, raw: RawValue, field: string): DecodeError {
  return new DecodeError(
    ErrorCode.valueMismatch,
    `Sparkplug ${field}: datatype ${dataTypeName(datatype)} cannot be carried in ${raw.field}_value`,
    { field },
  );
}

/** The low 32 bits of an integer wire value (int_value or long_value). */
function low32(datatype: number, raw: RawValue, field: string): number {
  if (raw.field === 'int') return raw.value >>> 0;
  if (raw.field === 'long') return Number(BigInt.asUintN(32, raw.value));
  throw mismatch(datatype, raw, field);
}

function int64(datatype: number, raw: RawValue, field: string, signed: boolean): number | bigint {
  if (raw.field === 'long') {
    return toSafeInteger(signed ? BigInt.asIntN(64, raw.value) : raw.value);
  }
  // A 64-bit type squeezed into uint32 int_value: signed types carry a 32-bit two's-complement pattern.
  if (raw.field === 'int') return signed ? raw.value | 0 : raw.value >>> 0;
  throw mismatch(datatype, raw, field);
}

/** The natural reading of a raw value when the datatype gives no guidance (Unknown or unrecognised). */
function natural(raw: RawValue): SpValue {
  switch (raw.field) {
    case 'none':
      return null;
    case 'long':
      return toSafeInteger(raw.value);
    default:
      return raw.value;
  }
}

/**
 * Interprets a raw oneof value with its datatype. `field` names the value in error messages.
 * An absent value (`none`) is null. A datatype/wire-field mismatch throws DecodeError
 * SPARKPLUG_VALUE_MISMATCH; a malformed array throws SPARKPLUG_ARRAY_LAYOUT.
 */
export function interpretValueAt(datatype: number, raw: RawValue, field: string): SpValue {
  if (raw.field === 'none') return null;
  switch (datatype) {
    case DataType.Int8:
      return (low32(datatype, raw, field) << 24) >> 24;
    case DataType.Int16:
      return (low32(datatype, raw, field) << 16) >> 16;
    case DataType.Int32:
      return low32(datatype, raw, field) | 0;
    case DataType.UInt8:
      return low32(datatype, raw, field) & 0xff;
    case DataType.UInt16:
      return low32(datatype, raw, field) & 0xffff;
    case DataType.UInt32:
      return low32(datatype, raw, field);
    case DataType.Int64:
    case DataType.DateTime:
      return int64(datatype, raw, field, true);
    case DataType.UInt64:
      return int64(datatype, raw, field, false);
    case DataType.Float:
    case DataType.Double:
      if (raw.field === 'float' || raw.field === 'double') return raw.value;
      throw mismatch(datatype, raw, field);
    case DataType.Boolean:
      if (raw.field === 'boolean') return raw.value;
      throw mismatch(datatype, raw, field);
    case DataType.String:
    case DataType.Text:
    case DataType.UUID:
      if (raw.field === 'string') return raw.value;
      throw mismatch(datatype, raw, field);
    case DataType.Bytes:
    case DataType.File:
      if (raw.field === 'bytes') return raw.value;
      throw mismatch(datatype, raw, field);
    case DataType.DataSet:
      if (raw.field === 'dataset') return raw.value;
      throw mismatch(datatype, raw, field);
    case DataType.Template:
      if (raw.field === 'template') return raw.value;
      throw mismatch(datatype, raw, field);
    case DataType.PropertySet:
      if (raw.field === 'propertyset') return raw.value;
      throw mismatch(datatype, raw, field);
    case DataType.PropertySetList:
      if (raw.field === 'propertysets') return raw.value;
      throw mismatch(datatype, raw, field);
    default:
      if (isArrayType(datatype)) {
        if (raw.field === 'bytes') return decodeArray(datatype, raw.value, field);
        throw mismatch(datatype, raw, field);
      }
      return natural(raw);
  }
}

function invalid(field: string, message: string): ValidationError {
  return new ValidationError(`Sparkplug ${field}: ${message}`, { field, code: 'SPARKPLUG_ENCODE_INVALID' });
}

const RANGES: Record<number, [bigint, bigint]> = {
  [DataType.Int8]: [-128n, 127n],
  [DataType.Int16]: [-32768n, 32767n],
  [DataType.Int32]: [-2147483648n, 2147483647n],
  [DataType.UInt8]: [0n, 255n],
  [DataType.UInt16]: [0n, 65535n],
  [DataType.UInt32]: [0n, 4294967295n],
  [DataType.Int64]: [-(2n ** 63n), 2n ** 63n - 1n],
  [DataType.DateTime]: [-(2n ** 63n), 2n ** 63n - 1n],
  [DataType.UInt64]: [0n, 2n ** 64n - 1n],
};

const RANGES32: Record<number, [number, number]> = {
  [DataType.Int8]: [-128, 127],
  [DataType.Int16]: [-32768, 32767],
  [DataType.Int32]: [-2147483648, 2147483647],
  [DataType.UInt8]: [0, 255],
  [DataType.UInt16]: [0, 65535],
  [DataType.UInt32]: [0, 4294967295],
};

/** An 8/16/32-bit integer as its 32-bit pattern (signed types sign-extended, as Tahu does). */
/**
 * The int_value pattern of a plain in-range number for an 8/16/32-bit datatype, or undefined when
 * the value needs the general path (bigint, non-integer, out of range: which then reports the error).
 */
export function plainInt32Pattern(datatype: number, value: number): number | undefined {
  const range = RANGES32[datatype];
  if (range === undefined || !Number.isInteger(value) || value < range[0] || value > range[1])
    return undefined;
  return value >>> 0;
}

function int32Pattern(datatype: number, value: SpValue, field: string): number {
  if (typeof value === 'number' && Number.isInteger(value)) {
    const range = RANGES32[datatype]!;
    if (value >= range[0] && value <= range[1]) return value >>> 0;
  }
  return Number(BigInt.asUintN(32, integer(datatype, value, field)));
}

function integer(datatype: number, value: SpValue, field: string): bigint {
  let b: bigint;
  if (typeof value === 'bigint') b = value;
  else if (typeof value === 'number' && Number.isInteger(value)) b = BigInt(value);
  else throw invalid(field, `${dataTypeName(datatype)} value ${String(value)} is not an integer`);
  const range = RANGES[datatype]!;
  if (b < range[0] || b > range[1]) {
    throw invalid(field, `${dataTypeName(datatype)} value ${b} is out of range [${range[0]}, ${range[1]}]`);
  }
  return b;
}

/**
 * The wire field for a scalar, Bytes/File or array value of `datatype` (spec Ch.6): 8/16/32-bit
 * integers (UInt32 included) → int_value as a 32-bit pattern, sign-extended like Tahu does; Int64,
 * UInt64, DateTime → long_value (two's complement); Float → float_value; Double → double_value;
 * Boolean; String/Text/UUID → string_value; Bytes/File/arrays → bytes_value.
 * DataSet/Template/PropertySet(List) are structured and encoded by the codec itself.
 * Throws ValidationError (SPARKPLUG_ENCODE_INVALID) when the value does not fit the datatype.
 */
export function toRawValue(datatype: number, value: SpValue, field = 'value'): RawValue {
  if (value === null) return { field: 'none' };
  switch (datatype) {
    case DataType.Int8:
    case DataType.Int16:
    case DataType.Int32:
    case DataType.UInt8:
    case DataType.UInt16:
    case DataType.UInt32:
      return { field: 'int', value: int32Pattern(datatype, value, field) };
    case DataType.Int64:
    case DataType.UInt64:
    case DataType.DateTime:
      return { field: 'long', value: BigInt.asUintN(64, integer(datatype, value, field)) };
    case DataType.Float:
    case DataType.Double:
      if (typeof value !== 'number') throw invalid(field, `${dataTypeName(datatype)} value is not a number`);
      return { field: datatype === DataType.Float ? 'float' : 'double', value };
    case DataType.Boolean:
      if (typeof value !== 'boolean') throw invalid(field, 'Boolean value is not a boolean');
      return { field: 'boolean', value };
    case DataType.String:
    case DataType.Text:
    case DataType.UUID:
      if (typeof value !== 'string') throw invalid(field, `${dataTypeName(datatype)} value is not a string`);
      return { field: 'string', value };
    case DataType.Bytes:
    case DataType.File:
      if (!(value instanceof Uint8Array))
        throw invalid(field, `${dataTypeName(datatype)} value is not bytes`);
      return { field: 'bytes', value };
    default:
      if (isArrayType(datatype)) {
        if (!Array.isArray(value)) throw invalid(field, `${dataTypeName(datatype)} value is not an array`);
        return { field: 'bytes', value: encodeArray(datatype, value as SpValue[], field) };
      }
      throw invalid(field, `cannot encode a ${dataTypeName(datatype)} value as a scalar`);
  }
}
