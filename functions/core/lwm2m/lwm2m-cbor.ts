/**
 * LwM2M CBOR (content format 11544, LwM2M Core 1.2 §7.4.7): nested CBOR maps keyed by path components
 * (object, instance, resource, resource instance). A key is an unsigned integer or an array of them
 * standing for several levels at once, so `{[3,0,0]: x}` ≡ `{3:{0:{0:x}}}` ≡ `{3:{[0,0]: x}}`. Leaves
 * are CBOR primitives: numbers (Integer/Unsigned/Float/Time, Time possibly under tag 1), text (String,
 * Corelnk, and Objlnk as "oid:iid"), booleans, byte strings (Opaque); null stands for "no value".
 *
 * The format carries no time: decoded records get the receipt time with timed=false. Text at a path the
 * bundled registry types as Objlnk is returned as a `vlo` value.
 *
 * Errors: DecodeError LWM2M_CBOR_* with `field` = the path reached so far.
 */
import { CborTagged, type CborValue, decodeCbor, encodeCbor } from '../cbor/index.js';
import { DecodeError, ValidationError } from '../errors.js';
import type { ResolvedRecord, SenmlValue } from '../senml/index.js';
import { describePath, parsePath } from './objects.js';

const MAX_ID = 65535;
const OBJLNK = /^(0|[1-9]\d{0,4}):(0|[1-9]\d{0,4})$/;

function fail(code: string, message: string, path: number[]): never {
  const field = path.length === 0 ? 'root' : `/${path.join('/')}`;
  throw new DecodeError(code, `LwM2M CBOR: ${message} at ${field}`, { field });
}

function isId(v: CborValue): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= MAX_ID;
}

function leaf(v: CborValue, path: number[], name: string): SenmlValue {
  if (
    v instanceof CborTagged &&
    v.tag === 1 &&
    (typeof v.value === 'number' || typeof v.value === 'bigint')
  ) {
    v = v.value;
  }
  switch (typeof v) {
    case 'number':
      if (!Number.isFinite(v)) fail('LWM2M_CBOR_VALUE', 'a value must be a finite number', path);
      return { kind: 'v', value: v };
    case 'bigint':
      return { kind: 'v', value: Number(v) };
    case 'boolean':
      return { kind: 'vb', value: v };
    case 'string':
      if (describePath(name).type === 'Objlnk') {
        if (!OBJLNK.test(v)) fail('LWM2M_CBOR_VALUE', `object link "${v}" is not "oid:iid"`, path);
        return { kind: 'vlo', value: v };
      }
      return { kind: 'vs', value: v };
    default:
      break;
  }
  if (v instanceof Uint8Array) return { kind: 'vd', value: v };
  if (v === null) return { kind: 'none' };
  return fail('LWM2M_CBOR_VALUE', 'a value must be a number, text, boolean, byte string or null', path);
}

function walk(
  map: Map<CborValue, CborValue>,
  path: number[],
  out: ResolvedRecord[],
  receivedAt: number,
): void {
  for (const [key, value] of map) {
    const sub = path.slice();
    if (isId(key)) {
      sub.push(key);
    } else if (Array.isArray(key) && key.length > 0 && key.every(isId)) {
      sub.push(...(key as number[]));
    } else {
      fail('LWM2M_CBOR_KEY', 'a key must be a path component (0..65535) or a non-empty array of them', path);
    }
    if (sub.length > 4) fail('LWM2M_CBOR_PATH', 'path is deeper than /oid/iid/rid/riid', sub);
    if (value instanceof Map) {
      walk(value, sub, out, receivedAt);
      continue;
    }
    const name = `/${sub.join('/')}`;
    const v = leaf(value, sub, name);
    if (v.kind !== 'none' && sub.length < 3)
      fail('LWM2M_CBOR_PATH', 'a value must be at a resource path', sub);
    out.push({ name, time: receivedAt, timed: false, value: v });
  }
}

/** Decodes an 11544 payload to records (receipt time, timed=false), in document order. */
export function decodeLwm2mCbor(bytes: Uint8Array, opts: { receivedAt: number }): ResolvedRecord[] {
  const root = decodeCbor(bytes, { maxDepth: 12 });
  if (!(root instanceof Map)) fail('LWM2M_CBOR_NOT_MAP', 'the payload must be a CBOR map', []);
  const out: ResolvedRecord[] = [];
  walk(root, [], out, opts.receivedAt);
  const seen = new Set<string>();
  for (const r of out) {
    if (seen.has(r.name)) {
      throw new DecodeError('LWM2M_CBOR_DUPLICATE', `LwM2M CBOR: path ${r.name} appears twice`, {
        field: r.name,
      });
    }
    seen.add(r.name);
  }
  return out;
}

function toCbor(value: SenmlValue, name: string): CborValue {
  switch (value.kind) {
    case 'v':
    case 'vs':
    case 'vb':
    case 'vd':
      return value.value;
    case 'vlo':
      if (!OBJLNK.test(value.value)) {
        throw new ValidationError(`LwM2M CBOR: object link "${value.value}" at ${name} is not "oid:iid"`, {
          field: name,
          code: 'LWM2M_CBOR_VALUE',
        });
      }
      return value.value;
    case 'none':
      return null;
  }
}

/**
 * Encodes records as nested maps ({oid: {iid: {rid: value}}}, resource instances one level deeper).
 * ProtocolError LWM2M_PATH for a bad path; ValidationError when a path is both a value and a parent.
 */
export function encodeLwm2mCbor(records: { name: string; value: SenmlValue }[]): Uint8Array {
  const root = new Map<CborValue, CborValue>();
  for (const rec of records) {
    const p = parsePath(rec.name);
    const ids = [p.objectId, p.instanceId, p.resourceId, p.resourceInstanceId].filter(
      (x): x is number => x !== undefined,
    );
    let node = root;
    for (let i = 0; i < ids.length - 1; i++) {
      let next = node.get(ids[i]!);
      if (next === undefined) {
        next = new Map<CborValue, CborValue>();
        node.set(ids[i]!, next);
      } else if (!(next instanceof Map)) {
        throw new ValidationError(`LwM2M CBOR: ${rec.name} is below a path that already has a value`, {
          field: rec.name,
          code: 'LWM2M_CBOR_PATH',
        });
      }
      node = next;
    }
    const last = ids[ids.length - 1]!;
    if (node.has(last)) {
      throw new ValidationError(`LwM2M CBOR: ${rec.name} is given twice or is a parent of another path`, {
        field: rec.name,
        code: 'LWM2M_CBOR_PATH',
      });
    }
    node.set(last, toCbor(rec.value, rec.name));
  }
  return encodeCbor(root);
}
