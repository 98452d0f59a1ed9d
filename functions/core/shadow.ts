/**
 * The device shadow (ADR 0023): desired values for the writable fields a device type declares, the
 * reported values (the latest stored reading of each field: derived from ingested readings, no extra
 * write on the ingest path), the delta, and reconciliation through the single-device command path
 * (CommandService) with each attempt's commands and outcome recorded.
 */
import { type CommandService, parseSparkplugMetrics, SPARKPLUG_WRITABLE_TYPES } from './commands.js';
import { ConflictError, ValidationError } from './errors.js';
import type { Clock } from './processor.js';
import type { Device, RegistryPort } from './registry.js';
import type { TelemetryStore } from './telemetry.js';

export const LWM2M_WRITABLE_TYPES = ['Integer', 'Float', 'Boolean', 'String'] as const;

export type WritableSpec =
  | {
      protocol: 'sparkplug';
      metric: string;
      /** Sparkplug device under the edge node (absent: a node metric, written by NCMD). */
      device?: string;
      datatype: (typeof SPARKPLUG_WRITABLE_TYPES)[number];
    }
  | { protocol: 'lwm2m'; path: string; type: (typeof LWM2M_WRITABLE_TYPES)[number] };

export type DesiredValue = string | number | boolean;

export interface Reconciliation {
  at: number;
  fields: string[];
  commandId?: string;
  status: string;
  error?: string;
}

export interface ShadowDoc {
  deviceId: string;
  desired: Record<string, DesiredValue>;
  version: number;
  updatedAt: number;
  /** Newest first, at most RECONCILIATIONS_KEPT. */
  reconciliations: Reconciliation[];
}

export interface ShadowStore {
  get(deviceId: string): Promise<ShadowDoc | undefined>;
  /** Writes `doc` if the stored version is `expectedVersion` (0: none stored); ConflictError otherwise. */
  put(doc: ShadowDoc, expectedVersion: number): Promise<void>;
}

export const RECONCILIATIONS_KEPT = 20;
const FIELD = /^[A-Za-z0-9_.-]{1,64}$/;
const LWM2M_RESOURCE = /^\/\d{1,5}\/\d{1,5}\/\d{1,5}$/;

function invalid(field: string, message: string): ValidationError {
  return new ValidationError(`${field} ${message}`, { field });
}

/** Validates a device type's `writable` declaration (errors name writable.<field>.<member>). */
export function validateWritable(raw: unknown): Record<string, WritableSpec> | undefined {
  if (raw === undefined) return undefined;
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw))
    throw invalid('writable', 'must be an object');
  const entries = Object.entries(raw as Record<string, unknown>);
  if (entries.length > 64) throw invalid('writable', 'may declare at most 64 fields');
  const out: Record<string, WritableSpec> = {};
  for (const [name, spec] of entries) {
    const f = `writable.${name}`;
    if (!FIELD.test(name)) throw invalid(f, 'name must be 1-64 characters of A-Z a-z 0-9 _ . -');
    if (spec === null || typeof spec !== 'object' || Array.isArray(spec))
      throw invalid(f, 'must be an object');
    const s = spec as Record<string, unknown>;
    if (s.protocol === 'sparkplug') {
      if (typeof s.metric !== 'string' || s.metric.length === 0 || s.metric.length > 512)
        throw invalid(`${f}.metric`, 'must be a Sparkplug metric name of 1-512 characters');
      if (!(SPARKPLUG_WRITABLE_TYPES as readonly unknown[]).includes(s.datatype))
        throw invalid(`${f}.datatype`, `must be one of ${SPARKPLUG_WRITABLE_TYPES.join(', ')}`);
      if (s.device !== undefined && (typeof s.device !== 'string' || !/^[^+/#]{1,256}$/.test(s.device)))
        throw invalid(`${f}.device`, 'must be a Sparkplug device id (no +, / or #)');
      out[name] = {
        protocol: 'sparkplug',
        metric: s.metric,
        datatype: s.datatype as (typeof SPARKPLUG_WRITABLE_TYPES)[number],
        ...(s.device !== undefined ? { device: s.device as string } : {}),
      };
    } else if (s.protocol === 'lwm2m') {
      if (typeof s.path !== 'string' || !LWM2M_RESOURCE.test(s.path))
        throw invalid(`${f}.path`, 'must be an LwM2M resource path such as /3311/0/5850');
      if (!(LWM2M_WRITABLE_TYPES as readonly unknown[]).includes(s.type))
        throw invalid(`${f}.type`, `must be one of ${LWM2M_WRITABLE_TYPES.join(', ')}`);
      out[name] = { protocol: 'lwm2m', path: s.path, type: s.type as (typeof LWM2M_WRITABLE_TYPES)[number] };
    } else {
      throw invalid(`${f}.protocol`, 'must be sparkplug or lwm2m');
    }
  }
  return out;
}

/** Checks one desired value against its declaration; errors name desired.<field>. */
export function validateDesiredValue(name: string, spec: WritableSpec, value: unknown): DesiredValue {
  const f = `desired.${name}`;
  if (spec.protocol === 'sparkplug') {
    try {
      parseSparkplugMetrics([{ name: spec.metric, type: spec.datatype, value }]);
    } catch (error) {
      if (!(error instanceof ValidationError)) throw error;
      throw invalid(f, error.message.replace(/^metrics\[0\]\.value /, ''));
    }
    if (typeof value !== 'string' && typeof value !== 'number' && typeof value !== 'boolean')
      throw invalid(f, 'must be a string, a number or a boolean');
    return value;
  }
  const ok =
    spec.type === 'Integer'
      ? Number.isSafeInteger(value)
      : spec.type === 'Float'
        ? typeof value === 'number' && Number.isFinite(value)
        : spec.type === 'Boolean'
          ? typeof value === 'boolean'
          : typeof value === 'string' && value.length <= 65_536;
  if (!ok) throw invalid(f, `must be ${spec.type === 'Integer' ? 'an' : 'a'} ${spec.type} value`);
  return value as DesiredValue;
}

/** Equal enough: a Sparkplug Float travels as 32 bits, so 42.7 comes back as 42.70000076. */
export function sameValue(desired: DesiredValue, reported: unknown): boolean {
  if (typeof desired === 'number' && (typeof reported === 'number' || typeof reported === 'bigint')) {
    const r = Number(reported);
    return desired === r || Math.abs(desired - r) <= 1e-6 * Math.max(1, Math.abs(desired));
  }
  return desired === reported;
}

export interface ShadowView {
  deviceId: string;
  version: number;
  desired: Record<string, DesiredValue>;
  reported: Record<string, { value: unknown; time: number }>;
  /** Desired fields the device does not report yet. */
  delta: Record<string, DesiredValue>;
  writable: Record<string, WritableSpec>;
  reconciliations: Reconciliation[];
}

export interface ShadowDeps {
  registry: Pick<RegistryPort, 'getDeviceType'>;
  telemetry: Pick<TelemetryStore, 'latest'>;
  commands: Pick<CommandService, 'create' | 'get'>;
  shadows: ShadowStore;
  clock: Clock;
}

export class ShadowService {
  constructor(private readonly d: ShadowDeps) {}

  private async writable(device: Device): Promise<Record<string, WritableSpec>> {
    return (await this.d.registry.getDeviceType(device.type))?.writable ?? {};
  }

  async get(device: Device): Promise<ShadowView> {
    const writable = await this.writable(device);
    const doc = await this.d.shadows.get(device.id);
    const points =
      Object.keys(writable).length > 0 ? await this.d.telemetry.latest({ deviceId: device.id }) : [];
    const reported: ShadowView['reported'] = {};
    for (const [name, spec] of Object.entries(writable)) {
      const p = points.find((pt) =>
        spec.protocol === 'sparkplug'
          ? pt.protocol === 'sparkplug' &&
            pt.metric === spec.metric &&
            (pt.subDevice ?? '') === (spec.device ?? '')
          : pt.protocol === 'lwm2m' && pt.metric === spec.path,
      );
      if (p) reported[name] = { value: p.value, time: p.time };
    }
    const desired = doc?.desired ?? {};
    const delta: Record<string, DesiredValue> = {};
    for (const [k, v] of Object.entries(desired)) if (!sameValue(v, reported[k]?.value)) delta[k] = v;
    // The outcome of each attempt, as the command now stands (a pending LwM2M write completes later).
    const reconciliations = await Promise.all(
      (doc?.reconciliations ?? []).map(async (r) => {
        if (!r.commandId || r.status !== 'pending') return r;
        const c = await this.d.commands.get(device.id, r.commandId);
        return c ? { ...r, status: c.status } : r;
      }),
    );
    return {
      deviceId: device.id,
      version: doc?.version ?? 0,
      desired,
      reported,
      delta,
      writable,
      reconciliations,
    };
  }

  /**
   * Sets (or, with null, clears) desired values, validated against the type's writable fields, then
   * reconciles: the commands for the delta are sent and recorded. `expectedVersion` guards lost updates.
   */
  async setDesired(device: Device, body: unknown, expectedVersion?: number): Promise<ShadowView> {
    if (body === null || typeof body !== 'object' || Array.isArray(body))
      throw invalid('desired', 'must be an object of field → value (null clears a field)');
    const writable = await this.writable(device);
    const names = Object.keys(writable);
    const doc = (await this.d.shadows.get(device.id)) ?? {
      deviceId: device.id,
      desired: {},
      version: 0,
      updatedAt: 0,
      reconciliations: [],
    };
    if (expectedVersion !== undefined && expectedVersion !== doc.version)
      throw new ConflictError(
        `the shadow of ${device.id} is at version ${doc.version}, not ${expectedVersion}`,
      );
    const desired = { ...doc.desired };
    const entries = Object.entries(body as Record<string, unknown>);
    if (entries.length === 0) throw invalid('desired', 'must name at least one field');
    for (const [k, v] of entries) {
      // Own fields only: `constructor` or `toString` are not writable fields of any type.
      const spec = Object.hasOwn(writable, k) ? writable[k] : undefined;
      if (!spec)
        throw invalid(
          `desired.${k}`,
          names.length > 0
            ? `is not a writable field of device type ${device.type} (writable: ${names.join(', ')})`
            : `is not writable: device type ${device.type} declares no writable fields`,
        );
      if (v === null) delete desired[k];
      else desired[k] = validateDesiredValue(k, spec, v);
    }
    const next: ShadowDoc = { ...doc, desired, version: doc.version + 1, updatedAt: this.d.clock() };
    await this.d.shadows.put(next, doc.version);
    return this.reconcile(device);
  }

  /** Sends the commands for the current delta and records them on the shadow. */
  async reconcile(device: Device): Promise<ShadowView> {
    const view = await this.get(device);
    const fields = Object.keys(view.delta);
    if (fields.length === 0) return view;
    const bodies: Array<{ fields: string[]; body: Record<string, unknown> }> = [];
    const bySub = new Map<string, string[]>();
    for (const k of fields) {
      const spec = view.writable[k]!;
      if (spec.protocol === 'lwm2m') {
        bodies.push({
          fields: [k],
          body: { protocol: 'lwm2m', operation: 'write', path: spec.path, value: view.delta[k] },
        });
      } else {
        const key = spec.device ?? '';
        bySub.set(key, [...(bySub.get(key) ?? []), k]);
      }
    }
    for (const [sub, ks] of bySub) {
      const metrics = ks.map((k) => {
        const s = view.writable[k] as Extract<WritableSpec, { protocol: 'sparkplug' }>;
        return { name: s.metric, type: s.datatype, value: view.delta[k] };
      });
      bodies.push({
        fields: ks,
        body: { protocol: 'sparkplug', operation: 'write', ...(sub ? { device: sub } : {}), metrics },
      });
    }
    const records: Reconciliation[] = [];
    for (const b of bodies) {
      const at = this.d.clock();
      try {
        const c = await this.d.commands.create(device, b.body);
        records.push({ at, fields: b.fields, commandId: c.commandId, status: c.status });
      } catch (error) {
        // The device cannot take the command now (no session yet, ...): recorded, retried by the next call.
        if (!(error instanceof ValidationError)) throw error;
        records.push({ at, fields: b.fields, status: 'not-sent', error: error.message });
      }
    }
    // Recorded with a retry on a concurrent writer (the desired values are re-read each time).
    const newestFirst = records.reverse();
    for (let attempt = 0; attempt < 3; attempt++) {
      const doc = await this.d.shadows.get(device.id);
      if (!doc) break;
      const next = {
        ...doc,
        version: doc.version + 1,
        reconciliations: [...newestFirst, ...doc.reconciliations].slice(0, RECONCILIATIONS_KEPT),
      };
      try {
        await this.d.shadows.put(next, doc.version);
        break;
      } catch (error) {
        if (!(error instanceof ConflictError) || attempt === 2) throw error;
      }
    }
    return this.get(device);
  }
}

export class InMemoryShadowStore implements ShadowStore {
  private readonly docs = new Map<string, ShadowDoc>();
  async get(deviceId: string) {
    const d = this.docs.get(deviceId);
    return d && structuredClone(d);
  }
  async put(doc: ShadowDoc, expectedVersion: number) {
    if ((this.docs.get(doc.deviceId)?.version ?? 0) !== expectedVersion)
      throw new ConflictError(`the shadow of ${doc.deviceId} changed meanwhile`);
    this.docs.set(doc.deviceId, structuredClone(doc));
  }
}
