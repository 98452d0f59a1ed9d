/**
 * SenML (RFC 8428) in JSON (content format 110) and CBOR (112), with the LwM2M specifics of Core
 * §7.5.6/7.5.7: names are LwM2M paths starting with '/', `vlo` (object link "oid:iid") under the text
 * label "vlo" in both encodings, records without a value (path lists, SenML-ETCH) allowed.
 *
 * Resolution (RFC 8428 §4.5): a base field (bn, bt, bv, bs, bver) applies to its record and every later
 * record until redefined (bt survives a change of bn); name = bn + n, time = bt + t, value = bv + v,
 * sum = bs + s. A resolved time below 2^28 s is relative to the receipt time; at or above it is absolute
 * epoch seconds (fractional allowed). A record with neither t nor any bt so far has no time: it gets the
 * receipt time and `timed: false`. Times are rounded to whole milliseconds.
 *
 * Errors: DecodeError SENML_* with field `records[i].<label>` (or `records` / `records[i]`).
 */
import { CborReader, CborTagged, type CborValue, encodeCbor } from '../cbor/index.js';
import { DecodeError, ValidationError } from '../errors.js';

export type SenmlValue =
  | { kind: 'v'; value: number }
  | { kind: 'vs'; value: string }
  | { kind: 'vb'; value: boolean }
  | { kind: 'vd'; value: Uint8Array }
  | { kind: 'vlo'; value: string }
  | { kind: 'none' };

export interface ResolvedRecord {
  /** bn + n, e.g. "/3303/0/5700". */
  name: string;
  /** Epoch ms, resolved (relative times, < 2^28 s, added to receivedAt). */
  time: number;
  /** The record (or a base) carried a time → historical/"bulk" record stored at its own time. */
  timed: boolean;
  value: SenmlValue;
  sum?: number;
}

export interface SenmlRecordInput {
  bn?: string;
  bt?: number;
  bv?: number;
  bver?: number;
  n?: string;
  t?: number;
  v?: number;
  vs?: string;
  vb?: boolean;
  vd?: Uint8Array;
  vlo?: string;
  s?: number;
  u?: string;
  bu?: string;
}

/** RFC 8428 §6 CBOR labels. */
export const SenmlLabel = {
  bver: -1,
  bn: -2,
  bt: -3,
  bu: -4,
  bv: -5,
  bs: -6,
  n: 0,
  u: 1,
  v: 2,
  vs: 3,
  vb: 4,
  s: 5,
  t: 6,
  ut: 7,
  vd: 8,
} as const;

/** Resolved times at or above this many seconds are absolute (RFC 8428 §4.5.3). */
export const RELATIVE_TIME_LIMIT = 2 ** 28;
const RELATIVE_TIME_LIMIT_MS = RELATIVE_TIME_LIMIT * 1000;
const DEFAULT_MAX_RECORDS = 100_000;

type Label = keyof typeof SenmlLabel | 'vlo';
const STRING_LABELS = new Set<string>(['bn', 'bu', 'n', 'u', 'vs', 'vlo']);

/** One record's fields after parsing, before base resolution (a class: one stable shape). */
class RawRecord {
  bn: string | undefined = undefined;
  bt: number | undefined = undefined;
  bv: number | undefined = undefined;
  bs: number | undefined = undefined;
  n: string | undefined = undefined;
  t: number | undefined = undefined;
  v: number | undefined = undefined;
  vs: string | undefined = undefined;
  vb: boolean | undefined = undefined;
  vd: Uint8Array | undefined = undefined;
  vlo: string | undefined = undefined;
  s: number | undefined = undefined;
  /** How many value fields (v, vs, vb, vd, vlo) the record carried. */
  values = 0;
  /** Bit set of the CBOR labels seen (duplicate detection; JSON.parse already keeps one). */
  seen = 0;
}

function fail(code: string, message: string, field: string): never {
  throw new DecodeError(code, `SenML: ${message}`, { field });
}

function typeName(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (v instanceof Uint8Array) return 'a byte string';
  if (v instanceof Map) return 'a map';
  if (v instanceof CborTagged) return `tag ${v.tag}`;
  return typeof v;
}

function str(v: unknown, i: number, label: Label): string {
  if (typeof v === 'string') return v;
  const field = `records[${i}].${label}`;
  return fail('SENML_FIELD_TYPE', `${field} must be a string, got ${typeName(v)}`, field);
}

function num(v: unknown, i: number, label: Label): number {
  if (typeof v === 'number' && Number.isFinite(v)) return v;
  if (typeof v === 'bigint') return Number(v);
  const field = `records[${i}].${label}`;
  return fail('SENML_FIELD_TYPE', `${field} must be a finite number, got ${typeName(v)}`, field);
}

function oneValue(rec: RawRecord, i: number, label: Label): void {
  if (++rec.values > 1) {
    fail('SENML_MULTIPLE_VALUES', `records[${i}] has more than one value field`, `records[${i}].${label}`);
  }
}

function setField(rec: RawRecord, label: Label, v: unknown, i: number, json: boolean): void {
  switch (label) {
    case 'bn':
      rec.bn = str(v, i, label);
      return;
    case 'n':
      rec.n = str(v, i, label);
      return;
    case 'bt':
      rec.bt = num(v, i, label);
      return;
    case 't':
      rec.t = num(v, i, label);
      return;
    case 'bv':
      rec.bv = num(v, i, label);
      return;
    case 'bs':
      rec.bs = num(v, i, label);
      return;
    case 's':
      rec.s = num(v, i, label);
      return;
    case 'v':
      oneValue(rec, i, label);
      rec.v = num(v, i, label);
      return;
    case 'vs':
      oneValue(rec, i, label);
      rec.vs = str(v, i, label);
      return;
    case 'vlo':
      oneValue(rec, i, label);
      rec.vlo = str(v, i, label);
      return;
    case 'vb':
      oneValue(rec, i, label);
      if (typeof v !== 'boolean') {
        fail(
          'SENML_FIELD_TYPE',
          `records[${i}].vb must be a boolean, got ${typeName(v)}`,
          `records[${i}].vb`,
        );
      }
      rec.vb = v;
      return;
    case 'vd': {
      oneValue(rec, i, label);
      const field = `records[${i}].vd`;
      if (json) {
        if (typeof v !== 'string') fail('SENML_FIELD_TYPE', `${field} must be a base64url string`, field);
        rec.vd = base64urlDecode(v, field);
      } else if (v instanceof Uint8Array) {
        rec.vd = v;
      } else {
        fail('SENML_FIELD_TYPE', `${field} must be a byte string, got ${typeName(v)}`, field);
      }
      return;
    }
    case 'bu':
    case 'u':
      str(v, i, label); // checked, not used by LwM2M (units come from the object model)
      return;
    case 'ut':
      num(v, i, label);
      return;
    case 'bver':
      if (!Number.isInteger(num(v, i, label))) {
        fail('SENML_FIELD_TYPE', `records[${i}].bver must be an integer`, `records[${i}].bver`);
      }
      return;
  }
}

const BASE64URL = /^[A-Za-z0-9_-]*={0,2}$/;

function base64urlDecode(s: string, field: string): Uint8Array {
  const body = s.replace(/=+$/, '');
  if (!BASE64URL.test(s) || body.length % 4 === 1 || (s.length !== body.length && s.length % 4 !== 0)) {
    fail('SENML_BASE64', `${field} is not base64url`, field);
  }
  return new Uint8Array(Buffer.from(body, 'base64url'));
}

function base64urlEncode(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('base64url');
}

function unknownLabel(label: string, i: number): void {
  // RFC 8428 §4.4: labels ending in '_' must be understood; others are ignored.
  if (label.endsWith('_')) {
    fail(
      'SENML_MUST_UNDERSTAND',
      `records[${i}] has must-understand label "${label}"`,
      `records[${i}].${label}`,
    );
  }
}

function parseJson(bytes: Uint8Array, maxRecords: number): RawRecord[] {
  let root: unknown;
  try {
    root = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8'));
  } catch (e) {
    throw new DecodeError('SENML_JSON', `SenML JSON does not parse: ${(e as Error).message}`, {
      field: 'records',
      cause: e,
    });
  }
  if (!Array.isArray(root))
    fail('SENML_NOT_ARRAY', `a pack must be an array, got ${typeName(root)}`, 'records');
  if (root.length > maxRecords) fail('SENML_TOO_MANY_RECORDS', `more than ${maxRecords} records`, 'records');
  const out: RawRecord[] = new Array(root.length);
  for (let i = 0; i < root.length; i++) {
    const obj = root[i] as unknown;
    if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) {
      fail('SENML_RECORD', `records[${i}] must be an object, got ${typeName(obj)}`, `records[${i}]`);
    }
    const rec = new RawRecord();
    for (const label in obj) {
      const v = (obj as Record<string, unknown>)[label];
      if (Object.hasOwn(SenmlLabel, label) || label === 'vlo') setField(rec, label as Label, v, i, true);
      else unknownLabel(label, i);
    }
    out[i] = rec;
  }
  return out;
}

/** CBOR label (-6..8) → label name, indexed by label + 6. */
const LABEL_BY_INDEX: (Label | undefined)[] = [];
for (const [name, key] of Object.entries(SenmlLabel)) LABEL_BY_INDEX[key + 6] = name as Label;
const VLO_BIT = 1 << 15;

/** Walks the CBOR pack with a cursor: no Map per record, same strictness as decodeCbor. */
function parseCbor(bytes: Uint8Array, maxRecords: number): RawRecord[] {
  const r = new CborReader(bytes, 8, 1 << 20);
  if (r.peekMajor() !== 4) {
    const root = r.item(0);
    r.finish();
    fail('SENML_NOT_ARRAY', `a pack must be an array, got ${typeName(root)}`, 'records');
  }
  const count = r.containerStart(4, 0);
  if (count > maxRecords) fail('SENML_TOO_MANY_RECORDS', `more than ${maxRecords} records`, 'records');
  const out: RawRecord[] = count >= 0 ? new Array(count) : [];
  for (let i = 0; count < 0 ? !r.atBreak() : i < count; i++) {
    if (i >= maxRecords) fail('SENML_TOO_MANY_RECORDS', `more than ${maxRecords} records`, 'records');
    if (r.peekMajor() !== 5) {
      const item = r.item(1);
      fail('SENML_RECORD', `records[${i}] must be a map, got ${typeName(item)}`, `records[${i}]`);
    }
    const pairs = r.containerStart(5, 1);
    const rec = new RawRecord();
    for (let k = 0; pairs < 0 ? !r.atBreak() : k < pairs; k++) {
      const key = r.item(2);
      const value = r.item(2);
      let label: Label | undefined;
      let bit = 0;
      if (typeof key === 'number') {
        label = key >= -6 && key <= 8 && Number.isInteger(key) ? LABEL_BY_INDEX[key + 6] : undefined;
        bit = label === undefined ? 0 : 1 << (key + 6);
      } else if (typeof key === 'string') {
        if (key === 'vlo') {
          label = 'vlo';
          bit = VLO_BIT;
        } else unknownLabel(key, i);
      } else if (typeof key !== 'bigint') {
        fail('SENML_LABEL', `records[${i}] has a label of type ${typeName(key)}`, `records[${i}]`);
      }
      if (label === undefined) continue;
      if (rec.seen & bit)
        fail('SENML_DUPLICATE_LABEL', `records[${i}] repeats label ${label}`, `records[${i}].${label}`);
      rec.seen |= bit;
      setField(rec, label, value, i, false);
    }
    out[i] = rec;
  }
  r.finish();
  return out;
}

function resolve(raw: RawRecord[], receivedAt: number): ResolvedRecord[] {
  let bn = '';
  let bt = 0;
  let hasBt = false;
  let bv = 0;
  let bs = 0;
  const out: ResolvedRecord[] = new Array(raw.length);
  for (let i = 0; i < raw.length; i++) {
    const r = raw[i]!;
    if (r.bn !== undefined) bn = r.bn;
    if (r.bt !== undefined) {
      bt = r.bt;
      hasBt = true;
    }
    if (r.bv !== undefined) bv = r.bv;
    if (r.bs !== undefined) bs = r.bs;
    const name = r.n === undefined ? bn : bn + r.n;
    if (name === '') fail('SENML_EMPTY_NAME', `records[${i}] resolves to an empty name`, `records[${i}].n`);
    let time = receivedAt;
    let timed = false;
    if (r.t !== undefined || hasBt) {
      timed = true;
      // Round to ms before the 2^28 s test, so float noise in bt + t cannot flip a time across it.
      const ms = Math.round((bt + (r.t ?? 0)) * 1000);
      time = ms < RELATIVE_TIME_LIMIT_MS ? receivedAt + ms : ms;
    }
    let value: SenmlValue;
    if (r.v !== undefined) value = { kind: 'v', value: bv === 0 ? r.v : bv + r.v };
    else if (r.vs !== undefined) value = { kind: 'vs', value: r.vs };
    else if (r.vb !== undefined) value = { kind: 'vb', value: r.vb };
    else if (r.vd !== undefined) value = { kind: 'vd', value: r.vd };
    else if (r.vlo !== undefined) value = { kind: 'vlo', value: r.vlo };
    else value = NONE;
    const rec: ResolvedRecord = { name, time, timed, value };
    if (r.s !== undefined) rec.sum = bs + r.s;
    out[i] = rec;
  }
  return out;
}

const NONE: SenmlValue = Object.freeze({ kind: 'none' });

/** Decodes and resolves a SenML pack. */
export function decodeSenml(
  bytes: Uint8Array,
  contentFormat: 110 | 112,
  opts: { receivedAt: number; maxRecords?: number },
): ResolvedRecord[] {
  const max = opts.maxRecords ?? DEFAULT_MAX_RECORDS;
  if (contentFormat === 112) return resolve(parseCbor(bytes, max), opts.receivedAt);
  if (contentFormat === 110) return resolve(parseJson(bytes, max), opts.receivedAt);
  throw new DecodeError(
    'SENML_CONTENT_FORMAT',
    `SenML content format must be 110 or 112, got ${contentFormat}`,
    {
      field: 'contentFormat',
    },
  );
}

const ORDER: (keyof SenmlRecordInput)[] = [
  'bver',
  'bn',
  'bt',
  'bu',
  'bv',
  'n',
  'u',
  'v',
  'vs',
  'vb',
  'vd',
  'vlo',
  's',
  't',
];

function checkInput(rec: SenmlRecordInput, i: number): void {
  let values = 0;
  for (const key of ORDER) {
    const v = rec[key];
    if (v === undefined) continue;
    const field = `records[${i}].${key}`;
    const ok =
      key === 'vb'
        ? typeof v === 'boolean'
        : key === 'vd'
          ? v instanceof Uint8Array
          : STRING_LABELS.has(key)
            ? typeof v === 'string'
            : typeof v === 'number' && Number.isFinite(v);
    if (!ok)
      throw new ValidationError(`SenML: ${field} has the wrong type`, { field, code: 'SENML_FIELD_TYPE' });
    if (key === 'v' || key === 'vs' || key === 'vb' || key === 'vd' || key === 'vlo') values++;
  }
  if (values > 1) {
    throw new ValidationError(`SenML: records[${i}] has more than one value`, {
      field: `records[${i}]`,
      code: 'SENML_MULTIPLE_VALUES',
    });
  }
}

/** Encodes records as given (no resolution, no compression): JSON with RFC labels, CBOR with integer labels. */
export function encodeSenml(records: SenmlRecordInput[], contentFormat: 110 | 112): Uint8Array {
  records.forEach(checkInput);
  if (contentFormat === 110) {
    const out = records.map((rec) => {
      const o: Record<string, unknown> = {};
      for (const key of ORDER) {
        const v = rec[key];
        if (v !== undefined) o[key] = v instanceof Uint8Array ? base64urlEncode(v) : v;
      }
      return o;
    });
    return new Uint8Array(Buffer.from(JSON.stringify(out), 'utf8'));
  }
  if (contentFormat === 112) {
    const out = records.map((rec) => {
      const m = new Map<CborValue, CborValue>();
      for (const key of ORDER) {
        const v = rec[key];
        if (v !== undefined) m.set(key === 'vlo' ? 'vlo' : SenmlLabel[key], v);
      }
      return m;
    });
    return encodeCbor(out);
  }
  throw new ValidationError(`SenML content format must be 110 or 112, got ${String(contentFormat)}`, {
    field: 'contentFormat',
    code: 'SENML_CONTENT_FORMAT',
  });
}

function commonPrefix(names: string[]): string {
  if (names.length === 0) return '';
  let prefix = names[0]!;
  for (const name of names) {
    let k = 0;
    const max = Math.min(prefix.length, name.length);
    while (k < max && prefix.charCodeAt(k) === name.charCodeAt(k)) k++;
    prefix = prefix.slice(0, k);
  }
  // Cut back to a '/' boundary (a path prefix, never half a segment).
  return prefix.slice(0, prefix.lastIndexOf('/') + 1);
}

function valueFields(value: SenmlValue): SenmlRecordInput {
  switch (value.kind) {
    case 'v':
      return { v: value.value };
    case 'vs':
      return { vs: value.value };
    case 'vb':
      return { vb: value.value };
    case 'vd':
      return { vd: value.value };
    case 'vlo':
      return { vlo: value.value };
    case 'none':
      return {};
  }
}

/**
 * Builds compressed records (bn/bt factored out) from resolved ones: the inverse of resolution.
 * bn = the longest common path prefix ending in '/', on the first record. bt = the first record's time
 * (seconds) when every record has a time; when some records have none, timed records carry their
 * absolute time in `t` and untimed ones carry no time (a base time would make them timed). Times are
 * epoch ms and must be ≥ 2^28 s (1978) to stay absolute after a round trip.
 */
export function compressRecords(
  records: { name: string; time?: number /* epoch ms */; value: SenmlValue }[],
): SenmlRecordInput[] {
  const bn = commonPrefix(records.map((r) => r.name));
  const allTimed = records.length > 0 && records.every((r) => r.time !== undefined);
  const baseMs = allTimed ? records[0]!.time! : 0;
  return records.map((r, i) => {
    const out: SenmlRecordInput = {};
    if (i === 0 && bn !== '') out.bn = bn;
    if (i === 0 && allTimed) out.bt = baseMs / 1000;
    out.n = r.name.slice(bn.length);
    Object.assign(out, valueFields(r.value));
    if (r.time !== undefined) {
      if (allTimed) {
        if (r.time !== baseMs) out.t = (r.time - baseMs) / 1000;
      } else {
        out.t = r.time / 1000;
      }
    }
    return out;
  });
}
