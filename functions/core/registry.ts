/**
 * The device and application registry: domain types, input validation and the storage port. The
 * DynamoDB adapter (functions/adapters/dynamo-registry.ts) and the in-memory one implement the port.
 * Single-table layout and reasons: ADR 0008.
 */
import { ConflictError, ValidationError } from './errors.js';
import type { Protocol } from './reading.js';
import type { WritableSpec } from './shadow.js';
import { isValidEndpoint } from './topics.js';

/** Metrics seen for a node or sub-device: name → datatype (and unit). Bounded, see CATALOG_LIMITS. */
export type MetricCatalog = Record<string, { datatype: string; unit?: string }>;

/** Bounds on what one device item carries (a DynamoDB item is at most 400 KB). */
export const CATALOG_LIMITS = {
  /** Metric entries per device item, node and sub-devices together. */
  metrics: 512,
  /** Sparkplug sub-devices tracked per edge node. */
  subDevices: 128,
  /** LwM2M object entries in the registration summary. */
  objects: 256,
} as const;

export interface Device {
  /** Thing name = Sparkplug edge node id = LwM2M endpoint. */
  id: string;
  type: string;
  name?: string;
  /** Site / group (falls back to the Sparkplug group). */
  group?: string;
  tags: Record<string, string>;
  status: 'active' | 'disabled';
  /** Protocols this device has been seen speaking. */
  protocols: Protocol[];
  createdAt: number;
  updatedAt: number;
  lastSeen?: number;
  autoRegistered?: boolean;
  sparkplug?: {
    group: string;
    online: boolean;
    bdSeq?: string;
    lastBirth?: number;
    /** Node-level metrics seen (catalog only; the alias map lives in the state table). */
    metrics?: MetricCatalog;
    devices: Record<string, { online: boolean; metrics?: MetricCatalog }>;
  };
  lwm2m?: {
    online: boolean;
    lifetime?: number;
    version?: string;
    binding?: string;
    lastUpdate?: number;
    objects?: Array<{ id: number; version?: string; instances: number[] }>;
  };
}

export interface DeviceType {
  id: string;
  name: string;
  category?: string;
  capabilities: string[];
  /** Metric name or LwM2M path → unit. */
  units: Record<string, string>;
  description?: string;
  /** Fields a device shadow may set (ADR 0023): name → Sparkplug metric or LwM2M resource. */
  writable?: Record<string, WritableSpec>;
}

export interface Application {
  id: string;
  name: string;
  developer?: string;
  platform?: string;
  category?: string;
  deviceTypes: string[];
  contact?: string;
  /** SHA-256 (hex) of the API key; the key itself is never stored. */
  keyHash: string;
  /** The key's first characters, for display. */
  keyPrefix: string;
  createdAt: number;
  rotatedAt?: number;
}

export type CommandStatus = 'pending' | 'succeeded' | 'failed' | 'timed-out';

export interface Command {
  deviceId: string;
  commandId: string;
  protocol: Protocol;
  operation: string;
  request: Record<string, unknown>;
  token?: number;
  status: CommandStatus;
  response?: Record<string, unknown>;
  createdAt: number;
  updatedAt: number;
  /** Epoch ms after which a pending command reads as timed out. */
  deadline: number;
  /** Epoch SECONDS when the store may drop the item (DynamoDB TTL); default createdAt + 30 days. */
  expiresAt?: number;
}

/** The order `protocols` is reported in, whatever order the protocols were added in. */
const PROTOCOL_ORDER: readonly string[] = ['sparkplug', 'lwm2m'];

/** The union of protocol lists, without duplicates, in one canonical order (sparkplug, lwm2m). */
export function mergeProtocols(...lists: Array<Iterable<Protocol> | undefined>): Protocol[] {
  const all = new Set<Protocol>();
  for (const list of lists) for (const p of list ?? []) all.add(p);
  const rank = (p: string) => {
    const i = PROTOCOL_ORDER.indexOf(p);
    return i < 0 ? PROTOCOL_ORDER.length : i;
  };
  return [...all].sort((a, b) => rank(a) - rank(b) || (a < b ? -1 : a > b ? 1 : 0));
}

/** Default lifetime of a command item (DynamoDB TTL). */
export const COMMAND_RETENTION_S = 30 * 86_400;

export function commandExpiresAt(command: Command): number {
  return command.expiresAt ?? Math.floor(command.createdAt / 1000) + COMMAND_RETENTION_S;
}

export interface Page<T> {
  items: T[];
  nextToken?: string;
}

export interface DeviceFilter {
  type?: string;
  protocol?: Protocol;
  status?: Device['status'];
  group?: string;
  /** Every listed tag present; an undefined value matches any value of that key. */
  tags?: Record<string, string | undefined>;
  limit?: number;
  nextToken?: string;
}

/**
 * How a put treats an existing item: `create` fails with ConflictError if it exists, `update` fails
 * with NotFoundError if it does not, `upsert` (default) writes either way.
 */
export type WriteMode = 'create' | 'update' | 'upsert';

/** The fields a command update may change (status, response, updatedAt, token). */
export type CommandPatch = Pick<Command, 'status' | 'updatedAt'> &
  Partial<Pick<Command, 'response' | 'token'>>;

export interface RegistryPort {
  getDevice(id: string): Promise<Device | undefined>;
  /** One round trip per 100 ids (BatchGetItem, unprocessed keys retried); missing ids are absent. */
  getDevices(ids: string[]): Promise<Map<string, Device>>;
  putDevice(device: Device, mode?: WriteMode): Promise<void>;
  /**
   * Partial update of top-level device attributes (one UpdateItem with SET per attribute), so writers
   * of different attributes never clobber each other. A missing device is left missing (no-op).
   * `protocols` is a set-add: the listed protocols are added atomically to what is stored (none is
   * removed), so two ingest paths that each add their own protocol at the same instant keep both.
   */
  updateDevice(id: string, patch: Partial<Omit<Device, 'id' | 'createdAt'>>): Promise<void>;
  deleteDevice(id: string): Promise<boolean>;
  /** nextToken is opaque; a token this store did not issue is a ValidationError on `nextToken`. */
  listDevices(filter: DeviceFilter): Promise<Page<Device>>;

  getDeviceType(id: string): Promise<DeviceType | undefined>;
  /** The type and the ids of the applications registered for it, in one query. */
  getTypeWithApps(id: string): Promise<{ type?: DeviceType; applications: string[] }>;
  putDeviceType(type: DeviceType, mode?: WriteMode): Promise<void>;
  /** ConflictError while devices still have the type; false if it did not exist. */
  deleteDeviceType(id: string): Promise<boolean>;
  listDeviceTypes(): Promise<DeviceType[]>;

  /**
   * Writes the application, its key lookup and one subscription item per device type, and removes
   * what `previous` had that `app` no longer has (old key hash, dropped types).
   */
  putApplication(app: Application, previous?: Application): Promise<void>;
  getApplication(id: string): Promise<Application | undefined>;
  findApplicationByKeyHash(keyHash: string): Promise<Application | undefined>;
  /** Ordered by name. */
  listApplications(filter?: { deviceType?: string }): Promise<Application[]>;
  deleteApplication(id: string): Promise<boolean>;
  /**
   * Replaces the key hash: the old key stops resolving at once. NotFoundError if the application does
   * not exist; ConflictError if its key changed since it was read (concurrent rotation).
   */
  rotateKey(id: string, key: { keyHash: string; keyPrefix: string; rotatedAt: number }): Promise<Application>;

  putCommand(command: Command): Promise<void>;
  getCommand(deviceId: string, commandId: string): Promise<Command | undefined>;
  /** Updates a pending command; ConflictError if it is missing or no longer pending. */
  updateCommand(deviceId: string, commandId: string, patch: CommandPatch): Promise<void>;
  /** Same as updateCommand (kept for existing callers). */
  completeCommand(
    deviceId: string,
    commandId: string,
    patch: Pick<Command, 'status' | 'response' | 'updatedAt'>,
  ): Promise<void>;
  /** Newest first. */
  listCommands(deviceId: string, limit?: number): Promise<Command[]>;
}

// ---- validation (API input) ----------------------------------------------------------------------
// Pure: each validator returns the cleaned value or throws ValidationError naming the field.

export const LIMITS = {
  tags: 50,
  tagKey: 128,
  tagValue: 256,
  name: 128,
  group: 128,
  description: 1024,
  shortText: 256,
  capabilities: 64,
  capability: 64,
  units: 512,
  unitKey: 256,
  unitValue: 32,
  /** Device types per application (each is one subscription item in the application's transaction). */
  appDeviceTypes: 32,
} as const;

const TYPE_ID = /^[a-z0-9][a-z0-9_.-]{0,63}$/;
const APP_ID = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;
const KEY_HASH = /^[0-9a-f]{64}$/;
// biome-ignore lint/suspicious/noControlCharactersInRegex: rejecting control characters is the point
const CONTROL = /[\u0000-\u001f\u007f]/;

type Body = Record<string, unknown>;

function fail(field: string, message: string): never {
  throw new ValidationError(`${field} ${message}`, { field });
}

export function validateDeviceId(id: unknown, field = 'id'): string {
  if (typeof id !== 'string' || !isValidEndpoint(id)) {
    throw new ValidationError(`${field} must be 1-128 characters of A-Z a-z 0-9 _ : . -`, { field });
  }
  return id;
}

export function validateTypeId(id: unknown, field = 'type'): string {
  if (typeof id !== 'string' || !TYPE_ID.test(id)) {
    throw new ValidationError(
      `${field} must be 1-64 lowercase characters of a-z 0-9 _ . - starting with a letter or digit`,
      { field },
    );
  }
  return id;
}

export function validateApplicationId(id: unknown, field = 'appId'): string {
  if (typeof id !== 'string' || !APP_ID.test(id)) {
    fail(field, 'must be 1-64 characters of A-Z a-z 0-9 _ - starting with a letter or digit');
  }
  return id;
}

export function validateKeyHash(hash: unknown, field = 'keyHash'): string {
  if (typeof hash !== 'string' || !KEY_HASH.test(hash)) fail(field, 'must be 64 lowercase hex characters');
  return hash;
}

/** A required single-line string of 1..max characters. */
export function validateText(value: unknown, field: string, max: number): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > max || CONTROL.test(value)) {
    fail(field, `must be a string of 1-${max} characters without control characters`);
  }
  return value;
}

function optionalText(body: Body, field: string, max: number): string | undefined {
  const v = body[field];
  return v === undefined || v === null ? undefined : validateText(v, field, max);
}

function stringMap(
  value: unknown,
  field: string,
  limits: { entries: number; key: number; value: number },
): Record<string, string> {
  if (value === undefined) return {};
  if (value === null || typeof value !== 'object' || Array.isArray(value)) fail(field, 'must be an object');
  const entries = Object.entries(value as Record<string, unknown>);
  if (entries.length > limits.entries) fail(field, `may hold at most ${limits.entries} entries`);
  const out: Record<string, string> = {};
  for (const [k, v] of entries) {
    if (k.length === 0 || k.length > limits.key || CONTROL.test(k)) {
      fail(`${field}.${k}`, `key must be 1-${limits.key} characters`);
    }
    if (typeof v !== 'string' || v.length > limits.value) {
      fail(`${field}.${k}`, `must be a string of at most ${limits.value} characters`);
    }
    out[k] = v;
  }
  return out;
}

export function validateTags(tags: unknown, field = 'tags'): Record<string, string> {
  return stringMap(tags, field, { entries: LIMITS.tags, key: LIMITS.tagKey, value: LIMITS.tagValue });
}

export function validateStatus(status: unknown, field = 'status'): Device['status'] {
  if (status !== 'active' && status !== 'disabled') fail(field, 'must be active or disabled');
  return status;
}

function requireBody(body: unknown, field = 'body'): Body {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) fail(field, 'must be a JSON object');
  return body as Body;
}

function rejectUnknown(body: Body, allowed: readonly string[]): void {
  for (const k of Object.keys(body)) {
    if (!allowed.includes(k)) fail(k, `is not a known field (allowed: ${allowed.join(', ')})`);
  }
}

/** The writable fields of a device (PUT /devices/{id}); id, timestamps and protocol views are not. */
export interface DeviceInput {
  type: string;
  name?: string;
  group?: string;
  tags: Record<string, string>;
  status?: Device['status'];
}

export function validateDeviceInput(body: unknown): DeviceInput {
  const b = requireBody(body);
  rejectUnknown(b, ['type', 'name', 'group', 'tags', 'status']);
  const out: DeviceInput = { type: validateTypeId(b.type, 'type'), tags: validateTags(b.tags) };
  const name = optionalText(b, 'name', LIMITS.name);
  if (name !== undefined) out.name = name;
  const group = optionalText(b, 'group', LIMITS.group);
  if (group !== undefined) out.group = group;
  if (b.status !== undefined) out.status = validateStatus(b.status);
  return out;
}

export function validateDeviceTypeInput(id: unknown, body: unknown): DeviceType {
  const b = requireBody(body);
  rejectUnknown(b, ['id', 'name', 'category', 'capabilities', 'units', 'description']);
  const typeId = validateTypeId(id, 'type');
  if (b.id !== undefined && b.id !== typeId) fail('id', `must match the path (${typeId})`);
  const out: DeviceType = {
    id: typeId,
    name: validateText(b.name, 'name', LIMITS.name),
    capabilities: [],
    units: stringMap(b.units, 'units', {
      entries: LIMITS.units,
      key: LIMITS.unitKey,
      value: LIMITS.unitValue,
    }),
  };
  if (b.capabilities !== undefined) {
    if (!Array.isArray(b.capabilities) || b.capabilities.length > LIMITS.capabilities) {
      fail('capabilities', `must be an array of at most ${LIMITS.capabilities} strings`);
    }
    const caps = b.capabilities.map((c, i) => validateText(c, `capabilities[${i}]`, LIMITS.capability));
    out.capabilities = [...new Set(caps)];
  }
  const category = optionalText(b, 'category', LIMITS.shortText);
  if (category !== undefined) out.category = category;
  const description = optionalText(b, 'description', LIMITS.description);
  if (description !== undefined) out.description = description;
  return out;
}

/** The writable fields of an application (POST /apps, PUT /apps/{id}); key and timestamps are not. */
export type ApplicationInput = Pick<Application, 'name' | 'deviceTypes'> &
  Partial<Pick<Application, 'developer' | 'platform' | 'category' | 'contact'>>;

export function validateApplicationInput(body: unknown): ApplicationInput {
  const b = requireBody(body);
  rejectUnknown(b, ['name', 'developer', 'platform', 'category', 'contact', 'deviceTypes']);
  const types = b.deviceTypes;
  if (!Array.isArray(types) || types.length === 0 || types.length > LIMITS.appDeviceTypes) {
    fail('deviceTypes', `must list 1-${LIMITS.appDeviceTypes} device types`);
  }
  const out: ApplicationInput = {
    name: validateText(b.name, 'name', LIMITS.name),
    deviceTypes: [...new Set(types.map((t, i) => validateTypeId(t, `deviceTypes[${i}]`)))],
  };
  for (const f of ['developer', 'platform', 'category', 'contact'] as const) {
    const v = optionalText(b, f, LIMITS.shortText);
    if (v !== undefined) out[f] = v;
  }
  return out;
}

/** Page tokens are opaque: base64url JSON of the store's own cursor. */
export function encodePageToken(key: unknown): string {
  return Buffer.from(JSON.stringify(key), 'utf8').toString('base64url');
}

export function decodePageToken(token: string, field = 'nextToken'): unknown {
  try {
    return JSON.parse(Buffer.from(token, 'base64url').toString('utf8'));
  } catch (cause) {
    throw new ValidationError(`${field} is not a token returned by this API`, { field, cause });
  }
}

/** Decodes a token that must be a flat object of string attributes named `keys` (a DynamoDB key). */
export function decodeKeyToken(
  token: string,
  keys: readonly string[],
  field = 'nextToken',
): Record<string, string> {
  const v = decodePageToken(token, field);
  const ok =
    v !== null &&
    typeof v === 'object' &&
    !Array.isArray(v) &&
    Object.keys(v).length === keys.length &&
    keys.every((k) => typeof (v as Record<string, unknown>)[k] === 'string');
  if (!ok) throw new ValidationError(`${field} is not a token returned by this API`, { field });
  return v as Record<string, string>;
}

/** A device the pipeline registers itself (first message, or onboarding): active, no protocols yet. */
export function autoRegisteredDevice(
  id: string,
  type: string,
  now: number,
  tags: Record<string, string> = {},
): Device {
  return {
    id,
    type,
    tags,
    status: 'active',
    protocols: [],
    createdAt: now,
    updatedAt: now,
    autoRegistered: true,
  };
}

/** Creates `type` unless it exists; a concurrent creation (ConflictError) is as good as ours. */
export async function ensureDeviceType(registry: RegistryPort, type: DeviceType): Promise<void> {
  if (await registry.getDeviceType(type.id)) return;
  try {
    await registry.putDeviceType(type, 'create');
  } catch (error) {
    if (!(error instanceof ConflictError)) throw error;
  }
}
