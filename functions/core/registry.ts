/**
 * The device and application registry: domain types, input validation and the storage port. The
 * DynamoDB adapter (functions/adapters/dynamo-registry.ts) and the in-memory one implement the port.
 * Single-table layout and reasons: ADR 0008.
 */
import { ValidationError } from './errors.js';
import type { Protocol } from './reading.js';
import { isValidEndpoint } from './topics.js';

export interface Device {
  /** Thing name = Sparkplug edge node id = LwM2M endpoint. */
  id: string;
  type: string;
  name?: string;
  /** Site / group (falls back to the Sparkplug group). */
  group?: string;
  tags: Record<string, string>;
  status: 'active' | 'disabled';
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
    devices: Record<string, { online: boolean }>;
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
  units: Record<string, string>;
  description?: string;
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
  deadline: number;
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
  limit?: number;
  nextToken?: string;
}

export interface RegistryPort {
  getDevice(id: string): Promise<Device | undefined>;
  /** One round trip for many devices (BatchGetItem); missing ids are absent from the map. */
  getDevices(ids: string[]): Promise<Map<string, Device>>;
  putDevice(device: Device): Promise<void>;
  /** Partial update of top-level attributes (SET): concurrent writers of other fields don't clash. */
  updateDevice(id: string, patch: Partial<Omit<Device, 'id' | 'createdAt'>>): Promise<void>;
  deleteDevice(id: string): Promise<boolean>;
  listDevices(filter: DeviceFilter): Promise<Page<Device>>;

  getDeviceType(id: string): Promise<DeviceType | undefined>;
  /** The type and the ids of the applications registered for it, in one query. */
  getTypeWithApps(id: string): Promise<{ type?: DeviceType; applications: string[] }>;
  putDeviceType(type: DeviceType): Promise<void>;
  deleteDeviceType(id: string): Promise<boolean>;
  listDeviceTypes(): Promise<DeviceType[]>;

  putApplication(app: Application, previous?: Application): Promise<void>;
  getApplication(id: string): Promise<Application | undefined>;
  findApplicationByKeyHash(keyHash: string): Promise<Application | undefined>;
  listApplications(filter?: { deviceType?: string }): Promise<Application[]>;
  deleteApplication(id: string): Promise<boolean>;

  putCommand(command: Command): Promise<void>;
  getCommand(deviceId: string, commandId: string): Promise<Command | undefined>;
  /** Updates a pending command; ConflictError if it is no longer pending. */
  completeCommand(
    deviceId: string,
    commandId: string,
    patch: Pick<Command, 'status' | 'response' | 'updatedAt'>,
  ): Promise<void>;
  listCommands(deviceId: string, limit?: number): Promise<Command[]>;
}

// ---- validation (API input) ----------------------------------------------------------------------

const TYPE_ID = /^[a-z0-9][a-z0-9_.-]{0,63}$/;

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

export function validateTags(tags: unknown, field = 'tags'): Record<string, string> {
  if (tags === undefined) return {};
  if (tags === null || typeof tags !== 'object' || Array.isArray(tags))
    throw new ValidationError(`${field} must be an object`, { field });
  const entries = Object.entries(tags as Record<string, unknown>);
  if (entries.length > 50) throw new ValidationError(`${field} may hold at most 50 entries`, { field });
  for (const [k, v] of entries) {
    if (k.length === 0 || k.length > 128 || typeof v !== 'string' || v.length > 256) {
      throw new ValidationError(`${field}.${k} must be a string of at most 256 characters (key ≤ 128)`, {
        field: `${field}.${k}`,
      });
    }
  }
  return Object.fromEntries(entries) as Record<string, string>;
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
