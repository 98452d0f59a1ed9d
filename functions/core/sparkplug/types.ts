/**
 * The Sparkplug B 3.0 payload model shared by the codec (decode/encode) and the host state machine.
 *
 * The codec is datatype-aware but stateless: a DATA metric that carries only an alias (and, as the spec
 * recommends, no datatype) cannot be interpreted by the codec alone, so every metric keeps its raw
 * oneof value (`raw`) and the codec fills `value` only when it knows the datatype. The host resolves
 * alias → {name, datatype} from the birth and then calls `interpretValue(datatype, raw)`.
 */

/** Sparkplug B DataType enum (spec Ch.6). Kept as numbers because the wire fields are uint32. */
export const DataType = {
  Unknown: 0,
  Int8: 1,
  Int16: 2,
  Int32: 3,
  Int64: 4,
  UInt8: 5,
  UInt16: 6,
  UInt32: 7,
  UInt64: 8,
  Float: 9,
  Double: 10,
  Boolean: 11,
  String: 12,
  DateTime: 13,
  Text: 14,
  UUID: 15,
  DataSet: 16,
  Bytes: 17,
  File: 18,
  Template: 19,
  PropertySet: 20,
  PropertySetList: 21,
  Int8Array: 22,
  Int16Array: 23,
  Int32Array: 24,
  Int64Array: 25,
  UInt8Array: 26,
  UInt16Array: 27,
  UInt32Array: 28,
  UInt64Array: 29,
  FloatArray: 30,
  DoubleArray: 31,
  BooleanArray: 32,
  StringArray: 33,
  DateTimeArray: 34,
} as const;
export type DataTypeName = keyof typeof DataType;
export type DataTypeCode = (typeof DataType)[DataTypeName];

/** The metric/property/dataset value as it arrived: which oneof field, with its raw wire value. */
export type RawValue =
  | { field: 'none' }
  | { field: 'int'; value: number } // uint32 int_value
  | { field: 'long'; value: bigint } // uint64 long_value, always unsigned here
  | { field: 'float'; value: number }
  | { field: 'double'; value: number }
  | { field: 'boolean'; value: boolean }
  | { field: 'string'; value: string }
  | { field: 'bytes'; value: Uint8Array }
  | { field: 'dataset'; value: SpDataSet }
  | { field: 'template'; value: SpTemplate }
  | { field: 'propertyset'; value: SpPropertySet }
  | { field: 'propertysets'; value: SpPropertySet[] }
  | { field: 'extension'; value: Uint8Array };

/**
 * An interpreted value. Integers: number when |v| ≤ 2^53−1, otherwise bigint (Int64/UInt64/DateTime
 * never lose precision). DateTime is epoch ms. Arrays are JS arrays of the element type. Bytes/File are
 * Uint8Array. DataSet/Template/PropertySet values are their structured forms.
 */
export type SpValue =
  | null
  | number
  | bigint
  | boolean
  | string
  | Uint8Array
  | SpValue[]
  | SpDataSet
  | SpTemplate
  | SpPropertySet
  | SpPropertySet[];

export interface SpMetaData {
  isMultiPart?: boolean;
  contentType?: string;
  size?: bigint;
  seq?: bigint;
  fileName?: string;
  fileType?: string;
  md5?: string;
  description?: string;
}

export interface SpPropertyValue {
  type: number;
  isNull: boolean;
  raw: RawValue;
  /** Interpreted from `type` and `raw` (null when isNull). */
  value: SpValue;
}

/** Parallel keys/values as on the wire, in order. */
export interface SpPropertySet {
  keys: string[];
  values: SpPropertyValue[];
}

export interface SpDataSet {
  numOfColumns: bigint;
  columns: string[];
  types: number[];
  /** rows[r][c], interpreted with types[c]; null for an absent cell. */
  rows: SpValue[][];
}

export interface SpParameter {
  name: string;
  type: number;
  raw: RawValue;
  value: SpValue;
}

export interface SpTemplate {
  version?: string;
  metrics: SpMetric[];
  parameters: SpParameter[];
  templateRef?: string;
  isDefinition: boolean;
}

export interface SpMetric {
  name?: string;
  alias?: bigint;
  /** Epoch ms (metric timestamp), when present. */
  timestamp?: number;
  /** The datatype field when present on the wire (DATA often omits it). */
  datatype?: number;
  isHistorical: boolean;
  isTransient: boolean;
  isNull: boolean;
  metadata?: SpMetaData;
  properties?: SpPropertySet;
  raw: RawValue;
  /**
   * Interpreted value when `datatype` is known from the wire; `undefined` when it must come from the
   * birth (the host fills it); null when isNull.
   */
  value: SpValue | undefined;
}

export interface SpPayload {
  /** Epoch ms. */
  timestamp?: number;
  metrics: SpMetric[];
  seq?: bigint;
  uuid?: string;
  body?: Uint8Array;
  /** True when this payload was unwrapped from the SPBV1.0_COMPRESSED convention. */
  compressed?: 'DEFLATE' | 'GZIP';
}

/** STATE (spBv1.0/STATE/{host}) is JSON: {"online": bool, "timestamp": ms}. */
export interface SpStateMessage {
  online: boolean;
  timestamp: number;
}
