/**
 * A bundled subset of the OMA LwM2M object registry: objects 0-7 and the IPSO sensors 3300, 3303,
 * 3304, 3316, 3317, 3323, 3328, 3331 (data in registry/objects-data.ts). Used to give readings a
 * friendly name, a type and a unit, and to type values in formats that do not carry one.
 */
import { ProtocolError } from '../errors.js';
import {
  CORE_OBJECTS,
  DEFAULT_UNIT_RESOURCES,
  IPSO_OBJECTS,
  type ObjectRow,
} from './registry/objects-data.js';

export type ResourceType =
  | 'String'
  | 'Integer'
  | 'Unsigned Integer'
  | 'Float'
  | 'Boolean'
  | 'Opaque'
  | 'Time'
  | 'Objlnk'
  | 'Corelnk'
  | 'none';

export interface ResourceDef {
  id: number;
  name: string;
  type: ResourceType;
  operations: 'R' | 'W' | 'RW' | 'E' | '';
  multiple: boolean;
  mandatory: boolean;
  unit?: string;
}

export interface ObjectDef {
  id: number;
  name: string;
  version: string;
  multiple: boolean;
  resources: ReadonlyMap<number, ResourceDef>;
  defaultUnit?: string;
}

function build(row: ObjectRow): ObjectDef {
  const resources = new Map<number, ResourceDef>();
  for (const [id, name, type, operations, multiple, mandatory, unit] of row.resources) {
    const def: ResourceDef = { id, name, type: type as ResourceType, operations, multiple, mandatory };
    const u = unit ?? (DEFAULT_UNIT_RESOURCES.has(id) ? row.defaultUnit : undefined);
    if (u !== undefined) def.unit = u;
    resources.set(id, Object.freeze(def));
  }
  const obj: ObjectDef = {
    id: row.id,
    name: row.name,
    version: row.version,
    multiple: row.multiple,
    resources,
  };
  if (row.defaultUnit !== undefined) obj.defaultUnit = row.defaultUnit;
  return Object.freeze(obj);
}

const REGISTRY = new Map<number, ObjectDef>(
  [...CORE_OBJECTS, ...IPSO_OBJECTS].map((row) => [row.id, build(row)]),
);

export function getObject(id: number): ObjectDef | undefined {
  return REGISTRY.get(id);
}

/** Ids of every bundled object, ascending. */
export function listObjectIds(): number[] {
  return [...REGISTRY.keys()].sort((a, b) => a - b);
}

const MAX_ID = 65535;

/**
 * Parses an LwM2M path "/oid[/iid[/rid[/riid]]]" (each 0..65535; "/" alone is not a path).
 * ProtocolError LWM2M_PATH (field "path") on anything else.
 */
export function parsePath(path: string): {
  objectId: number;
  instanceId?: number;
  resourceId?: number;
  resourceInstanceId?: number;
} {
  const bad = (why: string): never => {
    throw new ProtocolError('LWM2M_PATH', `LwM2M path "${path}" ${why}`, { field: 'path' });
  };
  if (typeof path !== 'string' || path.charCodeAt(0) !== 47) bad('must start with "/"');
  const parts = path.slice(1).split('/');
  if (parts.length > 4) bad('has more than 4 segments');
  const ids = parts.map((p) => {
    if (!/^(0|[1-9]\d{0,4})$/.test(p)) bad(`has a segment "${p}" that is not a decimal id`);
    const n = Number(p);
    if (n > MAX_ID) bad(`has a segment ${n} above ${MAX_ID}`);
    return n;
  });
  const out: { objectId: number; instanceId?: number; resourceId?: number; resourceInstanceId?: number } = {
    objectId: ids[0]!,
  };
  if (ids.length > 1) out.instanceId = ids[1]!;
  if (ids.length > 2) out.resourceId = ids[2]!;
  if (ids.length > 3) out.resourceInstanceId = ids[3]!;
  return out;
}

/**
 * Friendly description of a path from the bundled registry: object name, and for resource (instance)
 * paths the resource name, type and unit. Unknown objects/resources or malformed paths give fewer
 * (or no) fields; this never throws.
 */
export function describePath(path: string): {
  objectName?: string;
  name?: string;
  type?: ResourceType;
  unit?: string;
} {
  let parsed: ReturnType<typeof parsePath>;
  try {
    parsed = parsePath(path);
  } catch {
    return {};
  }
  const obj = REGISTRY.get(parsed.objectId);
  if (obj === undefined) return {};
  if (parsed.resourceId === undefined) return { objectName: obj.name };
  const res = obj.resources.get(parsed.resourceId);
  if (res === undefined) return { objectName: obj.name };
  const out: { objectName?: string; name?: string; type?: ResourceType; unit?: string } = {
    objectName: obj.name,
    name: res.name,
    type: res.type,
  };
  if (res.unit !== undefined) out.unit = res.unit;
  return out;
}
