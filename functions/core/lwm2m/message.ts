/**
 * The OMA LwM2M 1.2 MQTT binding message (Transport §8, Table 8.7-1): one CBOR map with integer keys
 * per MQTT publish, in both directions on `lwm2m/rd/{endpoint}`. A request carries key 1 (operation);
 * a response carries key 18 (result); a message with both or neither is rejected.
 *
 * Keys this module does not know are kept in `unknown`: integer keys outside the table and text-string
 * keys (forward compatibility). A key of any other CBOR type (float, bytes, array, map, bool, null, tag)
 * is not a valid key for this binding and is rejected with LWM2M_KEY. A known key whose value has the
 * wrong type is rejected with LWM2M_KEY_TYPE and `field` = the key's name.
 */
import { CborTagged, type CborValue, decodeCbor, encodeCbor } from '../cbor/index.js';
import { DecodeError, ValidationError } from '../errors.js';

export const MessageKey = {
  operation: 1,
  token: 2,
  ep: 3,
  pct: 4,
  uri: 5,
  paths: 6,
  payload: 7,
  lifetime: 8,
  version: 9,
  binding: 10,
  sms: 11,
  pmin: 12,
  pmax: 13,
  gt: 14,
  st: 15,
  epmin: 16,
  epmax: 17,
  result: 18,
  contentFormat: 19,
  edge: 20,
  hqmax: 21,
  depth: 22,
} as const;

export const Operation = {
  BootstrapRequest: 0,
  Register: 6,
  Update: 7,
  Deregister: 8,
  Read: 9,
  ReadComposite: 10,
  Discover: 11,
  WriteReplace: 12,
  WritePartial: 13,
  WriteAttributes: 14,
  WriteComposite: 15,
  Execute: 16,
  Create: 17,
  Delete: 18,
  Observe: 20,
  ObserveComposite: 21,
  CancelObserve: 22,
  Notify: 23,
  Send: 24,
} as const;

export const ContentFormat = {
  Text: 0,
  LinkFormat: 40,
  Opaque: 42,
  Cbor: 60,
  SenmlJson: 110,
  SenmlCbor: 112,
  SenmlEtchJson: 320,
  SenmlEtchCbor: 322,
  Tlv: 11542,
  Lwm2mJson: 11543,
  Lwm2mCbor: 11544,
} as const;

export interface Lwm2mMessage {
  operation?: number;
  token?: number | bigint;
  ep?: string;
  pct?: number;
  uri?: string;
  /** SenML-ETCH CBOR bytes listing paths. */
  paths?: Uint8Array;
  /** A text-string payload on the wire (spec example defect) is accepted and UTF-8 encoded. */
  payload?: Uint8Array;
  lifetime?: number;
  version?: string;
  binding?: string;
  sms?: string;
  pmin?: number;
  pmax?: number;
  gt?: number;
  st?: number;
  epmin?: number;
  epmax?: number;
  result?: number;
  contentFormat?: number;
  edge?: boolean;
  hqmax?: number;
  depth?: number;
  /** Unknown keys kept. */
  unknown?: Map<CborValue, CborValue>;
}

type FieldName = Exclude<keyof Lwm2mMessage, 'unknown'>;
type Kind = 'uint' | 'token' | 'text' | 'bytes' | 'payload' | 'number' | 'bool';

/** Value type of each known key (the binding's table; pmin..epmax/hqmax/depth are attribute integers). */
const FIELD_KIND: Record<FieldName, Kind> = {
  operation: 'uint',
  token: 'token',
  ep: 'text',
  pct: 'uint',
  uri: 'text',
  paths: 'bytes',
  payload: 'payload',
  lifetime: 'uint',
  version: 'text',
  binding: 'text',
  sms: 'text',
  pmin: 'uint',
  pmax: 'uint',
  gt: 'number',
  st: 'number',
  epmin: 'uint',
  epmax: 'uint',
  result: 'uint',
  contentFormat: 'uint',
  edge: 'bool',
  hqmax: 'uint',
  depth: 'uint',
};

const KIND_TEXT: Record<Kind, string> = {
  uint: 'an unsigned integer',
  token: 'an unsigned integer',
  text: 'a text string',
  bytes: 'a byte string',
  payload: 'a byte string (or text string)',
  number: 'a number',
  bool: 'a boolean',
};

/** key number → field name, as a dense array for the decode loop. */
const NAME_BY_KEY: (FieldName | undefined)[] = [];
for (const [name, key] of Object.entries(MessageKey)) NAME_BY_KEY[key] = name as FieldName;

const OPERATION_NAMES = new Map<number, string>(Object.entries(Operation).map(([n, v]) => [v, n]));

const utf8 = new TextEncoder();

function describe(v: CborValue): string {
  if (v === null) return 'null';
  if (v instanceof Uint8Array) return 'a byte string';
  if (Array.isArray(v)) return 'an array';
  if (v instanceof Map) return 'a map';
  if (v instanceof CborTagged) return `tag ${v.tag}`;
  if (typeof v === 'number') return Number.isInteger(v) ? `the integer ${v}` : `the float ${v}`;
  if (typeof v === 'bigint') return `the integer ${v}`;
  if (typeof v === 'string') return 'a text string';
  return typeof v;
}

function typeError(name: string, key: number, kind: Kind, v: CborValue): never {
  throw new DecodeError(
    'LWM2M_KEY_TYPE',
    `LwM2M message key ${key} (${name}) must be ${KIND_TEXT[kind]}, got ${describe(v)}`,
    { field: name },
  );
}

function convert(name: FieldName, key: number, kind: Kind, v: CborValue): Lwm2mMessage[FieldName] {
  switch (kind) {
    case 'uint':
      if (typeof v === 'number' && Number.isInteger(v) && v >= 0) return v;
      return typeError(name, key, kind, v);
    case 'token':
      if ((typeof v === 'number' && Number.isInteger(v) && v >= 0) || (typeof v === 'bigint' && v >= 0n))
        return v;
      return typeError(name, key, kind, v);
    case 'text':
      if (typeof v === 'string') return v;
      return typeError(name, key, kind, v);
    case 'bytes':
      if (v instanceof Uint8Array) return v;
      return typeError(name, key, kind, v);
    case 'payload':
      if (v instanceof Uint8Array) return v;
      if (typeof v === 'string') return utf8.encode(v);
      return typeError(name, key, kind, v);
    case 'number':
      if (typeof v === 'number' && Number.isFinite(v)) return v;
      return typeError(name, key, kind, v);
    case 'bool':
      if (typeof v === 'boolean') return v;
      return typeError(name, key, kind, v);
  }
}

/**
 * Decodes one binding message. Errors (all DecodeError): CBOR_* from the CBOR layer, LWM2M_NOT_MAP,
 * LWM2M_KEY (a key that is neither integer nor text), LWM2M_KEY_TYPE (field = key name),
 * LWM2M_NO_OP_OR_RESULT, LWM2M_BOTH_OP_AND_RESULT.
 */
export function decodeMessage(bytes: Uint8Array): Lwm2mMessage {
  const root = decodeCbor(bytes, { maxDepth: 16 });
  if (!(root instanceof Map)) {
    throw new DecodeError('LWM2M_NOT_MAP', `LwM2M message must be a CBOR map, got ${describe(root)}`, {
      field: 'message',
    });
  }
  const msg: Lwm2mMessage = {};
  const out = msg as Record<string, unknown>;
  for (const [k, v] of root) {
    if (typeof k === 'number' && Number.isInteger(k)) {
      const name = k >= 0 ? NAME_BY_KEY[k] : undefined;
      if (name !== undefined) {
        out[name] = convert(name, k, FIELD_KIND[name], v);
        continue;
      }
    } else if (typeof k !== 'string' && typeof k !== 'bigint') {
      throw new DecodeError('LWM2M_KEY', `LwM2M message keys must be integers, got ${describe(k)}`, {
        field: 'key',
      });
    }
    if (msg.unknown === undefined) msg.unknown = new Map();
    msg.unknown.set(k, v);
  }
  if (msg.operation !== undefined && msg.result !== undefined) {
    throw new DecodeError(
      'LWM2M_BOTH_OP_AND_RESULT',
      'LwM2M message carries both operation (key 1) and result (key 18)',
      { field: 'operation' },
    );
  }
  if (msg.operation === undefined && msg.result === undefined) {
    throw new DecodeError(
      'LWM2M_NO_OP_OR_RESULT',
      'LwM2M message carries neither operation (key 1) nor result (key 18)',
      { field: 'operation' },
    );
  }
  return msg;
}

/** Encodes a message as a CBOR map in key order (then the unknown keys). */
export function encodeMessage(message: Lwm2mMessage): Uint8Array {
  if ((message.operation === undefined) === (message.result === undefined)) {
    throw new ValidationError('LwM2M message needs exactly one of operation and result', {
      field: 'operation',
      code: 'LWM2M_NO_OP_OR_RESULT',
    });
  }
  const map = new Map<CborValue, CborValue>();
  const src = message as Record<string, unknown>;
  for (let key = 1; key < NAME_BY_KEY.length; key++) {
    const name = NAME_BY_KEY[key];
    if (name === undefined) continue;
    const v = src[name];
    if (v === undefined) continue;
    const kind = FIELD_KIND[name];
    const ok =
      kind === 'uint'
        ? typeof v === 'number' && Number.isInteger(v) && v >= 0
        : kind === 'token'
          ? (typeof v === 'number' && Number.isInteger(v) && v >= 0) || (typeof v === 'bigint' && v >= 0n)
          : kind === 'text'
            ? typeof v === 'string'
            : kind === 'bytes' || kind === 'payload'
              ? v instanceof Uint8Array
              : kind === 'number'
                ? typeof v === 'number' && Number.isFinite(v)
                : typeof v === 'boolean';
    if (!ok) {
      throw new ValidationError(`LwM2M message ${name} must be ${KIND_TEXT[kind]}`, {
        field: name,
        code: 'LWM2M_KEY_TYPE',
      });
    }
    map.set(key, v as CborValue);
  }
  if (message.unknown) for (const [k, v] of message.unknown) if (!map.has(k)) map.set(k, v);
  return encodeCbor(map);
}

export function isRequest(m: Lwm2mMessage): boolean {
  return m.operation !== undefined;
}

export function isResponse(m: Lwm2mMessage): boolean {
  return m.result !== undefined;
}

/** 'Register', 'Send', ... or 'Unknown(99)'. Code 6 is named Register (the `rd` interface). */
export function operationName(op: number): string {
  return OPERATION_NAMES.get(op) ?? `Unknown(${op})`;
}

/** SenML-ETCH CBOR (322) path list: `[{0: "/3/0/0"}, ...]`. */
export function encodePaths(paths: string[]): Uint8Array {
  return encodeCbor(paths.map((p) => new Map<CborValue, CborValue>([[0, p]])));
}

/**
 * Decodes a SenML-ETCH CBOR path list: an array of maps with a name (0) and optionally a base name
 * (-2, applying to later records too, as in RFC 8428). Errors: DecodeError LWM2M_PATHS (field paths[i]).
 */
export function decodePaths(bytes: Uint8Array): string[] {
  const root = decodeCbor(bytes, { maxDepth: 8 });
  if (!Array.isArray(root)) {
    throw new DecodeError('LWM2M_PATHS', `path list must be a CBOR array, got ${describe(root)}`, {
      field: 'paths',
    });
  }
  let bn = '';
  const out: string[] = [];
  root.forEach((rec, i) => {
    if (!(rec instanceof Map)) {
      throw new DecodeError('LWM2M_PATHS', `path list record ${i} must be a map, got ${describe(rec)}`, {
        field: `paths[${i}]`,
      });
    }
    const b = rec.get(-2);
    const n = rec.get(0);
    if (b !== undefined) {
      if (typeof b !== 'string') {
        throw new DecodeError('LWM2M_PATHS', `path list record ${i} base name must be text`, {
          field: `paths[${i}].bn`,
        });
      }
      bn = b;
    }
    if (n !== undefined && typeof n !== 'string') {
      throw new DecodeError('LWM2M_PATHS', `path list record ${i} name must be text`, {
        field: `paths[${i}].n`,
      });
    }
    const name = bn + (n ?? '');
    if (name === '') {
      throw new DecodeError('LWM2M_PATHS', `path list record ${i} has an empty name`, {
        field: `paths[${i}].n`,
      });
    }
    out.push(name);
  });
  return out;
}
