/**
 * Server → device requests of the OMA LwM2M 1.2 MQTT binding (Device Management and Information
 * Reporting interfaces): building the binding message for a request, and knowing which results a
 * device may answer it with. Token allocation lives in the PendingRequestStore (state.ts).
 */
import { ValidationError } from '../../errors.js';
import { compressRecords, encodeSenml, type SenmlValue } from '../../senml/index.js';
import { ContentFormat, encodePaths, type Lwm2mMessage, Operation } from '../message.js';
import { describePath, parsePath } from '../objects.js';

export type RequestOperation =
  | 'read'
  | 'read-composite'
  | 'discover'
  | 'write'
  | 'write-partial'
  | 'write-composite'
  | 'execute'
  | 'observe'
  | 'observe-composite'
  | 'cancel-observe'
  | 'write-attributes';

export type RequestValue = number | string | boolean;
export type AttributeName = 'pmin' | 'pmax' | 'gt' | 'st' | 'epmin' | 'epmax' | 'hqmax';

export interface RequestSpec {
  operation: RequestOperation;
  /** The target of a single-path operation (`/3/0/0`, `/3303/0`, `/3303`). */
  path?: string;
  /** The targets of Read-Composite / Observe-Composite (and of Cancel-Observe of a composite observation). */
  paths?: string[];
  /** Write / Write-Partial of one resource. */
  value?: RequestValue;
  /** Write-Composite (or a multi-resource Write-Partial): path → value. */
  values?: Record<string, RequestValue>;
  /** Write / Write-Composite with explicit SenML values (e.g. Opaque as `vd`). Wins over value/values. */
  records?: { name: string; value: SenmlValue }[];
  /** Write-Attributes (op 14): notification attributes of the binding table. */
  attributes?: Partial<Record<AttributeName, number>> & { edge?: boolean };
  /** Execute arguments, sent as a text payload (ct 0). */
  args?: string;
}

/** Operation code of each request. */
export const REQUEST_OPERATIONS: Readonly<Record<RequestOperation, number>> = {
  read: Operation.Read,
  'read-composite': Operation.ReadComposite,
  discover: Operation.Discover,
  write: Operation.WriteReplace,
  'write-partial': Operation.WritePartial,
  'write-composite': Operation.WriteComposite,
  execute: Operation.Execute,
  observe: Operation.Observe,
  'observe-composite': Operation.ObserveComposite,
  'cancel-observe': Operation.CancelObserve,
  'write-attributes': Operation.WriteAttributes,
};

/** Operation codes only a server sends: a device publishing one is impossible, so it is our own echo. */
export const SERVER_OPERATION_CODES: ReadonlySet<number> = new Set([
  9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 20, 21, 22,
]);

/**
 * Success results a device may give each request (CoAP 2.05 Content for the reading ones, 2.04
 * Changed for the writing ones; Cancel-Observe is a GET with Observe=1 over CoAP, so 2.05, but a
 * 2.04 is tolerated). Any 4.xx/5.xx is a valid (failed) answer to any request.
 */
const SUCCESS: Readonly<Record<RequestOperation, readonly number[]>> = {
  read: [205],
  'read-composite': [205],
  discover: [205],
  observe: [205],
  'observe-composite': [205],
  'cancel-observe': [205, 204],
  write: [204],
  'write-partial': [204],
  'write-composite': [204],
  execute: [204],
  'write-attributes': [204],
};

/** Whether `result` can be the device's answer to a pending request of this operation. */
export function isPlausibleResult(operation: string, result: number): boolean {
  if (result >= 400 && result < 600) return true;
  const ok = SUCCESS[operation as RequestOperation];
  return ok === undefined ? result >= 200 && result < 300 : ok.includes(result);
}

const ATTRIBUTES: readonly AttributeName[] = ['pmin', 'pmax', 'gt', 'st', 'epmin', 'epmax', 'hqmax'];
const UINT_ATTRIBUTES = new Set<AttributeName>(['pmin', 'pmax', 'epmin', 'epmax', 'hqmax']);

function invalid(message: string, field: string): ValidationError {
  return new ValidationError(message, { code: 'LWM2M_REQUEST', field });
}

function checkPath(path: unknown, field: string): string {
  if (typeof path !== 'string') throw invalid(`${field} must be an LwM2M path string`, field);
  try {
    parsePath(path);
  } catch (error) {
    throw invalid(`${field} "${path}" is not an LwM2M path: ${(error as Error).message}`, field);
  }
  return path;
}

/** The SenML value for a plain JS value written to `path` (Objlnk paths take "oid:iid" strings as `vlo`). */
export function senmlValueFor(path: string, v: RequestValue): SenmlValue {
  if (typeof v === 'boolean') return { kind: 'vb', value: v };
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) throw invalid(`value for ${path} must be a finite number`, 'value');
    return { kind: 'v', value: v };
  }
  return describePath(path).type === 'Objlnk' ? { kind: 'vlo', value: v } : { kind: 'vs', value: v };
}

export interface BuiltRequest {
  /** The binding message without its token (the caller allocates and sets it). */
  message: Lwm2mMessage;
  /** The request's path(s), kept with the pending request (readings of a text/opaque answer use it). */
  paths: string[];
}

/**
 * Validates a request and builds its binding message: {1: op, 5: uri} for single-path operations,
 * {1: op, 6: SenML-ETCH path list} for composite ones, {19: 112, 7: SenML CBOR} for writes,
 * {19: 0, 7: args} for Execute with arguments, attribute keys 12-17/20/21 for Write-Attributes.
 * Throws ValidationError (code LWM2M_REQUEST, field named) for a request that cannot be sent.
 */
export function buildRequestMessage(spec: RequestSpec): BuiltRequest {
  const op = REQUEST_OPERATIONS[spec.operation];
  if (op === undefined) throw invalid(`unknown operation "${String(spec.operation)}"`, 'operation');
  const message: Lwm2mMessage = { operation: op };
  switch (spec.operation) {
    case 'read-composite':
    case 'observe-composite': {
      const paths = (spec.paths ?? (spec.path === undefined ? [] : [spec.path])).map((p, i) =>
        checkPath(p, `paths[${i}]`),
      );
      if (paths.length === 0) throw invalid(`${spec.operation} needs at least one path`, 'paths');
      message.paths = encodePaths(paths);
      return { message, paths };
    }
    case 'write-composite': {
      const records = writeRecords(spec, undefined);
      message.contentFormat = ContentFormat.SenmlCbor;
      message.payload = encodeSenml(compressRecords(records), ContentFormat.SenmlCbor);
      return { message, paths: records.map((r) => r.name) };
    }
    case 'cancel-observe': {
      // A composite observation is cancelled by its path list, a single one by its URI.
      if (spec.paths !== undefined && spec.paths.length > 1) {
        const paths = spec.paths.map((p, i) => checkPath(p, `paths[${i}]`));
        message.paths = encodePaths(paths);
        return { message, paths };
      }
      break;
    }
    default:
      break;
  }
  const path = checkPath(spec.path ?? (spec.paths?.length === 1 ? spec.paths[0] : undefined), 'path');
  message.uri = path;
  if (spec.operation === 'write' || spec.operation === 'write-partial') {
    const records = writeRecords(spec, path);
    message.contentFormat = ContentFormat.SenmlCbor;
    message.payload = encodeSenml(compressRecords(records), ContentFormat.SenmlCbor);
  } else if (spec.operation === 'execute') {
    if (spec.args !== undefined) {
      if (typeof spec.args !== 'string') throw invalid('args must be text', 'args');
      message.contentFormat = ContentFormat.Text;
      message.payload = new TextEncoder().encode(spec.args);
    }
  } else if (spec.operation === 'write-attributes') {
    const a = spec.attributes ?? {};
    let n = 0;
    for (const name of ATTRIBUTES) {
      const v = a[name];
      if (v === undefined) continue;
      const uint = UINT_ATTRIBUTES.has(name);
      if (typeof v !== 'number' || !Number.isFinite(v) || (uint && (!Number.isInteger(v) || v < 0)))
        throw invalid(
          `attributes.${name} must be ${uint ? 'a non-negative integer' : 'a finite number'}`,
          `attributes.${name}`,
        );
      message[name] = v;
      n++;
    }
    if (a.edge !== undefined) {
      if (typeof a.edge !== 'boolean') throw invalid('attributes.edge must be a boolean', 'attributes.edge');
      message.edge = a.edge;
      n++;
    }
    if (n === 0) throw invalid('write-attributes needs at least one attribute', 'attributes');
  }
  return { message, paths: [path] };
}

/** Records of a write: explicit records, else values (path → value), else one value at `path`. */
function writeRecords(spec: RequestSpec, path: string | undefined): { name: string; value: SenmlValue }[] {
  let records: { name: string; value: SenmlValue }[];
  if (spec.records !== undefined) {
    records = spec.records.map((r, i) => ({ name: checkPath(r.name, `records[${i}].name`), value: r.value }));
  } else if (spec.values !== undefined) {
    records = Object.entries(spec.values).map(([p, v]) => ({
      name: checkPath(p, `values.${p}`),
      value: senmlValueFor(p, v),
    }));
  } else if (spec.value !== undefined && path !== undefined) {
    records = [{ name: path, value: senmlValueFor(path, spec.value) }];
  } else {
    throw invalid(
      `${spec.operation} needs ${path === undefined ? 'values (path → value)' : 'a value'}`,
      path === undefined ? 'values' : 'value',
    );
  }
  if (records.length === 0) throw invalid(`${spec.operation} needs at least one value`, 'values');
  if (path !== undefined) {
    for (const r of records) {
      if (r.name !== path && !r.name.startsWith(`${path}/`))
        throw invalid(`${r.name} is outside the written path ${path}`, 'values');
    }
  }
  return records;
}
