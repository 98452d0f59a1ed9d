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
import { ValidationError } from '../core/errors.js';
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

/** A chosen admin key must be at least this long (a generated one is 41 characters). */
export const ADMIN_KEY_MIN_LENGTH = 32;
/** ... and use at least this many different characters. */
const ADMIN_KEY_MIN_DISTINCT = 10;

/**
 * Refuses a chosen admin key that is short or trivially repetitive (one unit repeated, like `abcabc…`,
 * or few distinct characters, like `aaaa…1111`), with a ValidationError (code WEAK_ADMIN_KEY) naming
 * `setting`: where the key came from (DUALPATH_ADMIN_KEY, adminKey). The key itself is never echoed.
 */
export function checkAdminKeyStrength(key: string, setting: string): void {
  const fail = (why: string): never => {
    throw new ValidationError(
      `${setting} is too weak: ${why}; use at least ${ADMIN_KEY_MIN_LENGTH} random characters ` +
        '(e.g. `openssl rand -base64 32`), or leave it unset to have one generated',
      { field: setting, code: 'WEAK_ADMIN_KEY' },
    );
  };
  if (key.length < ADMIN_KEY_MIN_LENGTH)
    fail(`it has ${key.length} characters, fewer than ${ADMIN_KEY_MIN_LENGTH}`);
  if (/^(.+?)\1+$/s.test(key)) fail('it is one short sequence repeated');
  const distinct = new Set(key).size;
  if (distinct < ADMIN_KEY_MIN_DISTINCT)
    fail(`it uses only ${distinct} different characters (at least ${ADMIN_KEY_MIN_DISTINCT} needed)`);
}

export function extractKey(headers: ApiRequest['headers']): string | undefined {
  const auth = headers.authorization ?? headers.Authorization;
  if (auth) {
    const m = /^Bearer\s+(\S+)$/i.exec(auth);
    return m ? m[1] : undefined;
  }
  return headers['x-api-key'] ?? headers['X-Api-Key'] ?? undefined;
}

/**
 * Who a request is. With `adminKeyHash` undefined it trusts only an upstream decision (the REST
 * authorizer's context: the API function in AWS, ADR 0025 amendment 2) and checks no key itself: a
 * request without that decision is 401.
 */
export class Authenticator {
  private readonly adminHash: Buffer | undefined;

  constructor(
    adminKeyHash: string | undefined,
    private readonly apps: AppKeyLookup,
  ) {
    this.adminHash = adminKeyHash === undefined ? undefined : Buffer.from(adminKeyHash, 'hex');
  }

  async authenticate(req: ApiRequest): Promise<Principal> {
    const upstream = req.authorizerContext;
    if (upstream && typeof upstream.principal === 'string')
      return JSON.parse(upstream.principal) as Principal;
    if (!this.adminHash) throw unauthorized();
    const key = extractKey(req.headers);
    if (!key) throw unauthorized();
    return this.authenticateKey(key);
  }

  async authenticateKey(key: string): Promise<Principal> {
    if (!this.adminHash) throw unauthorized();
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
