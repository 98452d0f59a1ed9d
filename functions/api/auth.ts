/**
 * API credentials. Two kinds of principal:
 * - admin: manages everything. The admin key is compared by SHA-256 hash in constant time (locally
 *   DUALPATH_ADMIN_KEY, generated and printed at start when unset; in AWS a Secrets Manager secret
 *   generated at deploy time, see ADR 0010).
 * - application: sees only devices, telemetry, state, events and commands of the device types it
 *   registered for. Its key is shown once at creation; the registry keeps only its SHA-256 hash.
 * Keys travel as `Authorization: Bearer <key>` (or `x-api-key: <key>`).
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { type ApiRequest, forbidden, unauthorized } from './http.js';

export type Principal =
  | { kind: 'admin' }
  | { kind: 'app'; appId: string; name: string; deviceTypes: string[] };

export interface AppKeyLookup {
  /** The application whose key hash this is, or undefined. */
  findApplicationByKeyHash(
    keyHash: string,
  ): Promise<{ id: string; name: string; deviceTypes: string[] } | undefined>;
}

export function hashKey(key: string): string {
  return createHash('sha256').update(key, 'utf8').digest('hex');
}

/** A new application key: prefix + 32 random bytes, base64url (the prefix makes leaked keys greppable). */
export function newApiKey(kind: 'app' | 'admin' = 'app'): string {
  return `dp_${kind}_${randomBytes(32).toString('base64url')}`;
}

export function extractKey(headers: ApiRequest['headers']): string | undefined {
  const auth = headers.authorization ?? headers.Authorization;
  if (auth) {
    const m = /^Bearer\s+(\S+)$/i.exec(auth);
    return m ? m[1] : undefined;
  }
  return headers['x-api-key'] ?? headers['X-Api-Key'] ?? undefined;
}

export class Authenticator {
  private readonly adminHash: Buffer;

  constructor(
    adminKeyHash: string,
    private readonly apps: AppKeyLookup,
  ) {
    this.adminHash = Buffer.from(adminKeyHash, 'hex');
  }

  async authenticate(req: ApiRequest): Promise<Principal> {
    const upstream = req.authorizerContext;
    if (upstream && typeof upstream.principal === 'string')
      return JSON.parse(upstream.principal) as Principal;
    const key = extractKey(req.headers);
    if (!key) throw unauthorized();
    return this.authenticateKey(key);
  }

  async authenticateKey(key: string): Promise<Principal> {
    const hash = Buffer.from(hashKey(key), 'hex');
    if (hash.length === this.adminHash.length && timingSafeEqual(hash, this.adminHash))
      return { kind: 'admin' };
    const app = await this.apps.findApplicationByKeyHash(hash.toString('hex'));
    if (!app) throw unauthorized('the credential is not valid');
    return { kind: 'app', appId: app.id, name: app.name, deviceTypes: app.deviceTypes };
  }
}

export function requireAdmin(principal: Principal): void {
  if (principal.kind !== 'admin') throw forbidden('this operation needs the admin credential');
}

/** Application keys may only touch devices of their registered types; never silently empty. */
export function requireTypeAccess(principal: Principal, deviceType: string | undefined, what: string): void {
  if (principal.kind === 'admin') return;
  if (deviceType === undefined || !principal.deviceTypes.includes(deviceType)) {
    throw forbidden(`application "${principal.name}" is not registered for the device type of ${what}`);
  }
}
