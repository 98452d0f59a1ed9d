/**
 * LwM2M server state behind two ports: registrations (one item per endpoint, versioned so concurrent
 * writers cannot overwrite newer state) and pending server→device requests (by endpoint + token).
 */
import { ConflictError } from '../../errors.js';
import type { ObjectList } from '../link-format.js';

export interface Observation {
  token: number;
  paths: string[];
  commandId?: string;
  since: number;
}

export interface Registration {
  endpoint: string;
  version: number;
  lwm2mVersion: string;
  /** Seconds; 0 = never expires. */
  lifetime: number;
  binding: string;
  queueMode: boolean;
  sms?: string;
  objects: ObjectList;
  registeredAt: number;
  lastUpdate: number;
  /** Active observations by token (decimal string). */
  observations: Record<string, Observation>;
}

export interface PendingRequest {
  endpoint: string;
  token: number;
  operation: string;
  paths: string[];
  commandId?: string;
  createdAt: number;
  deadline: number;
}

export interface RegistrationStore {
  get(endpoint: string): Promise<Registration | undefined>;
  /** Writes with version = expectedVersion + 1; ConflictError if the stored version differs. */
  put(registration: Registration, expectedVersion: number | undefined): Promise<void>;
  delete(endpoint: string): Promise<void>;
  /** Optional bulk read (one round trip per 100 endpoints): the registrations that exist. */
  getMany?(endpoints: string[]): Promise<Registration[]>;
  /** Optional hint before a batch: load these registrations now, in bulk (the batch cache implements it). */
  prefetch?(endpoints: string[]): Promise<void>;
}

export interface PendingRequestStore {
  /** A token unique among the endpoint's pending requests (uint32, wraps). */
  allocateToken(endpoint: string): Promise<number>;
  put(request: PendingRequest): Promise<void>;
  /** Removes and returns the pending request, if any. */
  take(endpoint: string, token: number): Promise<PendingRequest | undefined>;
  /** Removes and returns the requests whose deadline has passed. */
  takeExpired(now: number): Promise<PendingRequest[]>;
  deleteEndpoint(endpoint: string): Promise<void>;
}

export function isRegistrationAlive(reg: Registration, now: number): boolean {
  return reg.lifetime === 0 || reg.lastUpdate + reg.lifetime * 1000 > now;
}

export class InMemoryRegistrationStore implements RegistrationStore {
  private readonly items = new Map<string, Registration>();

  async get(endpoint: string): Promise<Registration | undefined> {
    const r = this.items.get(endpoint);
    // Shallow copy with its own observations map: cheap, and a caller's edits stay its own until put.
    return r ? { ...r, observations: { ...r.observations } } : undefined;
  }

  async put(registration: Registration, expectedVersion: number | undefined): Promise<void> {
    const stored = this.items.get(registration.endpoint)?.version;
    if (stored !== expectedVersion) {
      throw new ConflictError(
        `registration ${registration.endpoint}: version ${stored ?? 'none'} ≠ ${expectedVersion ?? 'none'}`,
      );
    }
    this.items.set(
      registration.endpoint,
      structuredClone({ ...registration, version: (expectedVersion ?? 0) + 1 }),
    );
  }

  async delete(endpoint: string): Promise<void> {
    this.items.delete(endpoint);
  }

  all(): Registration[] {
    return [...this.items.values()].map((r) => structuredClone(r));
  }
}

export class InMemoryPendingRequestStore implements PendingRequestStore {
  private readonly pending = new Map<string, PendingRequest>();
  private readonly counters = new Map<string, number>();

  async allocateToken(endpoint: string): Promise<number> {
    let token = this.counters.get(endpoint) ?? 0;
    do token = (token % 0xffff_ffff) + 1;
    while (this.pending.has(`${endpoint}\u0000${token}`));
    this.counters.set(endpoint, token);
    return token;
  }

  async put(request: PendingRequest): Promise<void> {
    this.pending.set(`${request.endpoint}\u0000${request.token}`, { ...request });
  }

  async take(endpoint: string, token: number): Promise<PendingRequest | undefined> {
    const k = `${endpoint}\u0000${token}`;
    const r = this.pending.get(k);
    this.pending.delete(k);
    return r;
  }

  async takeExpired(now: number): Promise<PendingRequest[]> {
    const out: PendingRequest[] = [];
    for (const [k, r] of this.pending) {
      if (r.deadline <= now) {
        out.push(r);
        this.pending.delete(k);
      }
    }
    return out;
  }

  async deleteEndpoint(endpoint: string): Promise<void> {
    for (const [k, r] of this.pending) if (r.endpoint === endpoint) this.pending.delete(k);
  }
}
