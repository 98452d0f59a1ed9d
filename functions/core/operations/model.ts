/**
 * Batch operations (ADR 0022): one operation = a device filter + one action, run over every matching
 * device (its "targets") with bounded concurrency and rate. This module holds the types and the
 * validation of a request body; `target.ts` holds each target's state machine, `schedule.ts` the
 * admission, `service.ts` the orchestration over the ports.
 */
import { parseLwm2mCommand, parseSparkplugMetrics } from '../commands.js';
import { type DeviceQuery, parseDeviceQuery } from '../device-filter.js';
import { ValidationError } from '../errors.js';
import { validateDeviceId } from '../registry.js';
import type { Bucket, Limits } from './schedule.js';

/**
 * pending → sent → succeeded | failed | timed-out; pending → cancelled (cancel); a firmware target sent
 * but not yet Executed → cancelled (cancel: Execute /5/0/10); failed/timed-out → pending (retry).
 */
export type TargetStatus = 'pending' | 'sent' | 'succeeded' | 'failed' | 'timed-out' | 'cancelled';
export const TARGET_STATUSES: readonly TargetStatus[] = [
  'pending',
  'sent',
  'succeeded',
  'failed',
  'timed-out',
  'cancelled',
];

/** running → completed; running → cancelling (targets in flight) → cancelled; completed|cancelled → running (retry). */
export type OperationStatus = 'running' | 'cancelling' | 'cancelled' | 'completed';

/** Which devices: by type and/or explicit ids (both given: the ids of that type). */
/** The fleet filter of the list routes (device-filter.ts: type, group, tags, protocol, online) and/or ids. */
export interface TargetFilter extends DeviceQuery {
  deviceIds?: string[];
}

/** What to do on each device: any single-device command body, or a firmware update (LwM2M /5). */
export type Action =
  | { kind: 'command'; command: Record<string, unknown> }
  | { kind: 'firmware-update'; packageId: string };

export interface OperationSettings extends Limits {
  /** How long one target may take from its start to its end (ms). */
  targetTimeoutMs: number;
  /** Firmware updates: how often the device's /5/0/3 and /5/0/5 are read while it downloads/updates. */
  pollMs: number;
}

export const DEFAULT_SETTINGS: OperationSettings = {
  concurrency: 20,
  ratePerSecond: 10,
  targetTimeoutMs: 10 * 60_000,
  pollMs: 2000,
};

export const MAX_TARGETS = 10_000;

export interface Operation {
  id: string;
  status: OperationStatus;
  filter: TargetFilter;
  action: Action;
  settings: OperationSettings;
  total: number;
  counts: Record<TargetStatus, number>;
  /** Times the failed targets were retried. */
  retries: number;
  bucket: Bucket;
  createdAt: number;
  updatedAt: number;
  finishedAt?: number;
  /** The application whose key started it (its devices only); absent: started with the admin key. */
  appId?: string;
  /** Optimistic-concurrency version, bumped by every write. */
  version: number;
}

/** Who starts an operation: the admin (any device), or an application (its device types only). */
export type OperationOwner =
  | { kind: 'admin' }
  | { kind: 'app'; appId: string; deviceTypes: readonly string[] };

/** Why a target failed: `code` always; `updateResult` when the device reported LwM2M /5/0/5. */
export interface TargetReason {
  code: string;
  message: string;
  updateResult?: number;
  result?: number;
}

/** Where a firmware update stands on a device (ADR 0022). */
export type FirmwarePhase =
  | 'write-uri'
  | 'await-download'
  | 'execute'
  | 'await-update'
  /** Execute /5/0/10 Cancel in flight, then State/Update Result read until the device is Idle. */
  | 'cancel'
  | 'await-cancel';

export interface Target {
  operationId: string;
  deviceId: string;
  status: TargetStatus;
  /** Starts of this target (1 after the first run, +1 per retry). */
  attempts: number;
  startedAt?: number;
  /** The target times out at this epoch ms. */
  deadline?: number;
  /** The command in flight for this target (its answer decides the next step). */
  commandId?: string;
  /** No command in flight: the next one (a poll) is due at this epoch ms. */
  nextAt?: number;
  phase?: FirmwarePhase;
  /** The device refused the Package URI write (CoAP code): kept to explain an Idle state with no result. */
  rejected?: number;
  lastState?: number;
  /** The operation was cancelled while this firmware target was in flight: never Execute /5/0/2 now. */
  cancelRequested?: boolean;
  /** The device refused Execute /5/0/10 Cancel (CoAP code): kept to explain how the target ended. */
  cancelRefused?: number;
  reason?: TargetReason;
  /** The final command's response (single-command operations). */
  response?: Record<string, unknown>;
  updatedAt: number;
}

export interface CreateOperationInput {
  filter: TargetFilter;
  action: Action;
  settings: OperationSettings;
}

function invalid(message: string, field: string): ValidationError {
  return new ValidationError(message, { field });
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function num(v: unknown, field: string, min: number, max: number, dflt: number): number {
  if (v === undefined) return dflt;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max)
    throw invalid(`${field} must be a number from ${min} to ${max}`, field);
  return v;
}

/** Validates a POST /operations body; errors name the field. */
export function parseCreateOperation(body: unknown, defaults = DEFAULT_SETTINGS): CreateOperationInput {
  if (!isObject(body)) throw invalid('body must be a JSON object', 'body');
  const f = body.filter;
  if (!isObject(f))
    throw invalid('filter must be an object (type, group, tag, protocol, online and/or deviceIds)', 'filter');
  const filter: TargetFilter = parseFleetFilter(f);
  if (f.deviceIds !== undefined) {
    if (!Array.isArray(f.deviceIds) || f.deviceIds.length === 0 || f.deviceIds.length > MAX_TARGETS)
      throw invalid(`filter.deviceIds must be an array of 1-${MAX_TARGETS} device ids`, 'filter.deviceIds');
    filter.deviceIds = [
      ...new Set(f.deviceIds.map((id, i) => validateDeviceId(id, `filter.deviceIds[${i}]`))),
    ];
  }
  if (Object.keys(filter).length === 0)
    throw invalid('filter needs at least one of type, group, tag, protocol, online or deviceIds', 'filter');

  const a = body.operation;
  if (!isObject(a)) throw invalid('operation must be an object', 'operation');
  let action: Action;
  if (a.kind === 'firmware-update') {
    if (typeof a.packageId !== 'string' || !/^[A-Za-z0-9_-]{1,64}$/.test(a.packageId))
      throw invalid('operation.packageId must name an uploaded firmware package', 'operation.packageId');
    action = { kind: 'firmware-update', packageId: a.packageId };
  } else if (a.kind === 'command') {
    const c = a.command;
    if (!isObject(c)) throw invalid('operation.command must be a device command body', 'operation.command');
    // The same validation a single-device command gets, up front: one bad body fails the request,
    // not 100 targets.
    try {
      if (c.protocol === 'lwm2m') parseLwm2mCommand(c);
      else if (c.protocol === 'sparkplug') {
        if (c.operation === 'write') parseSparkplugMetrics(c.metrics);
        else if (c.operation !== 'rebirth') throw invalid('operation must be write or rebirth', 'operation');
      } else throw invalid('protocol must be lwm2m or sparkplug', 'protocol');
    } catch (error) {
      if (error instanceof ValidationError) {
        const field = `operation.command.${error.field ?? 'body'}`;
        throw new ValidationError(error.message, { field, cause: error });
      }
      throw error;
    }
    action = { kind: 'command', command: { ...c } };
  } else {
    throw invalid('operation.kind must be command or firmware-update', 'operation.kind');
  }

  const s = body.settings === undefined ? {} : body.settings;
  if (!isObject(s)) throw invalid('settings must be an object', 'settings');
  const settings: OperationSettings = {
    concurrency: Math.floor(num(s.concurrency, 'settings.concurrency', 1, 1000, defaults.concurrency)),
    ratePerSecond: num(s.ratePerSecond, 'settings.ratePerSecond', 0.1, 1000, defaults.ratePerSecond),
    targetTimeoutMs: Math.floor(
      num(s.targetTimeoutMs, 'settings.targetTimeoutMs', 1000, 86_400_000, defaults.targetTimeoutMs),
    ),
    pollMs: Math.floor(num(s.pollMs, 'settings.pollMs', 100, 600_000, defaults.pollMs)),
  };
  return { filter, action, settings };
}

export function emptyCounts(): Record<TargetStatus, number> {
  return { pending: 0, sent: 0, succeeded: 0, failed: 0, 'timed-out': 0, cancelled: 0 };
}

export function countTargets(targets: Iterable<Pick<Target, 'status'>>): Record<TargetStatus, number> {
  const c = emptyCounts();
  for (const t of targets) c[t.status]++;
  return c;
}

export function isFinal(s: TargetStatus): boolean {
  return s === 'succeeded' || s === 'failed' || s === 'timed-out' || s === 'cancelled';
}

/**
 * The fleet part of an operation's filter, with the list routes' syntax and rules (device-filter.ts):
 * `type`, `group`, `tag` ("key:value,key"), `protocol` and `online` (a boolean here); errors name
 * `filter.<field>`.
 */
function parseFleetFilter(f: Record<string, unknown>): TargetFilter {
  const query: Record<string, string> = {};
  for (const [k, v] of Object.entries(f)) {
    if (k === 'deviceIds') continue;
    if (k === 'online') {
      if (typeof v !== 'boolean') throw invalid('filter.online must be true or false', 'filter.online');
      query.online = String(v);
    } else if (k === 'type' || k === 'group' || k === 'tag' || k === 'protocol') {
      if (typeof v !== 'string') throw invalid(`filter.${k} must be a string`, `filter.${k}`);
      query[k] = v;
    } else throw invalid(`unknown filter ${k}`, `filter.${k}`);
  }
  try {
    return parseDeviceQuery(query);
  } catch (e) {
    if (e instanceof ValidationError && e.field) throw invalid(`filter.${e.message}`, `filter.${e.field}`);
    throw e;
  }
}
