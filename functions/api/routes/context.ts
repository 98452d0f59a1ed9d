/**
 * What every route module shares: the dependencies the API is built from (the local stack and AWS
 * differ only in these), JSON-safe responses, and the access check for one device.
 */
import type { CommandService } from '../../core/commands.js';
import type { EventLog } from '../../core/events.js';
import type { LivePublisher } from '../../core/live.js';
import type { Clock } from '../../core/processor.js';
import { type Device, type RegistryPort, validateDeviceId } from '../../core/registry.js';
import type { ShadowService } from '../../core/shadow.js';
import type { SparkplugStateStore } from '../../core/sparkplug/host/state.js';
import type { TelemetryStore } from '../../core/telemetry.js';
import type { Authenticator, Principal } from '../auth.js';
import { type ApiRequest, type ApiResponse, badRequest, forbidden, notFound } from '../http.js';
import type { AlertsApiDeps } from './alerts.js';
import type { OperationsApiDeps } from './operations.js';
import type { RulesApiDeps } from './rules.js';

export interface HealthCounts {
  /** Devices online per protocol, and `devices`: physical devices online on at least one protocol. */
  online?: Partial<Record<'sparkplug' | 'lwm2m' | 'devices', number>>;
  /** Why the pipeline is degraded (a stuck forwarder, a lagging stream); absent or empty: it is not. */
  degraded?: string[];
  [key: string]: unknown;
}

export interface ApiDeps {
  registry: RegistryPort;
  store: TelemetryStore;
  events: EventLog;
  commands: CommandService;
  authenticator: Authenticator;
  clock: Clock;
  /** Counts for GET /health (devices online per protocol, ...). */
  health: () => Promise<HealthCounts>;
  /** Sparkplug host state, to show a node's metric catalog on GET /devices/{id} (optional). */
  sparkplugState?: Pick<SparkplugStateStore, 'getNode' | 'getDevice'>;
  /** Id generator for applications (default: random UUID). */
  newId?: () => string;
  /** Rules and alerts (ADR 0016): /rules and /alerts exist when these are given. */
  rulesApi?: RulesApiDeps;
  alertsApi?: AlertsApiDeps;
  /** Batch operations and firmware packages (ADR 0022): /operations and /firmware exist when given. */
  operationsApi?: OperationsApiDeps;
  /** Live updates (ADR 0023): publish operation progress with `live.publish([operationProgress(...)])`. */
  live?: LivePublisher;
  /** Device shadows (ADR 0023): /devices/{id}/shadow exists when given. */
  shadow?: ShadowService;
  /** Told of every request answered with a 5xx, with its cause (the response body does not carry it). */
  onError?: (error: unknown, req: ApiRequest) => void;
}

/**
 * JSON rendering of API values: integers beyond ±(2^53−1) (bigint) become decimal strings, bytes
 * become base64, non-finite numbers become their names, undefined members are dropped.
 */
export function toJsonSafe(value: unknown): unknown {
  if (typeof value === 'bigint') {
    return value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER)
      ? Number(value)
      : value.toString();
  }
  if (value instanceof Uint8Array)
    return Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('base64');
  if (Array.isArray(value)) return value.map(toJsonSafe);
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) if (v !== undefined) out[k] = toJsonSafe(v);
    return out;
  }
  if (typeof value === 'number' && !Number.isFinite(value)) return String(value);
  return value;
}

/** A JSON response whose body is already JSON-safe (both transports then only stringify). */
export function json(body: unknown, status = 200): ApiResponse {
  return { status, body: toJsonSafe(body) };
}

export const noContent = (): ApiResponse => ({ status: 204, body: null });

/**
 * The device `id`, if the principal may see it. An application gets 403 both for another type's device
 * and for a device that does not exist, so it cannot probe which ids exist (ADR 0010).
 */
export async function deviceFor(
  deps: ApiDeps,
  principal: Principal,
  id: string | undefined,
  field = 'id',
): Promise<Device> {
  const deviceId = validateDeviceId(id, field);
  const device = await deps.registry.getDevice(deviceId);
  if (principal.kind === 'app') {
    // One answer, word for word, whether the device is missing or of another type.
    if (!device || !principal.deviceTypes.includes(device.type)) throw deviceForbidden(principal, deviceId);
    return device;
  }
  if (!device) throw notFound(`device ${deviceId} not found`);
  return device;
}

/** The 403 an application gets for any device it may not see (missing or of another type alike). */
export function deviceForbidden(principal: Extract<Principal, { kind: 'app' }>, deviceId: string) {
  return forbidden(`application "${principal.name}" may not access device ${deviceId}`);
}

/** Reads an optional string query parameter with a length bound (400 naming it otherwise). */
export function queryString(
  query: Record<string, string | undefined>,
  field: string,
  max = 256,
): string | undefined {
  const v = query[field];
  if (v === undefined) return undefined;
  if (v.length === 0 || v.length > max) throw badRequest(`${field} must be 1-${max} characters`, field);
  return v;
}
