/**
 * Lifecycle events (registrations, updates, births, deaths, stale, quarantined, ...), oldest first,
 * cursor-paginated: pass `nextCursor` back as `since`. An application sees only its types' events.
 * The fleet filter (`group`, `tag`, `protocol`, `online`, and `deviceType`) keeps the events of the
 * matching devices (fleet-scope.ts); `type` here is the event type.
 */
import type { LifecycleEventType } from '../../core/reading.js';
import { validateTypeId } from '../../core/registry.js';
import { type Principal, requireTypeAccess } from '../auth.js';
import { badRequest, queryInt, type Router } from '../http.js';
import { type ApiDeps, deviceFor, json } from './context.js';
import { fleetDeviceIds } from './fleet-scope.js';

export const EVENT_TYPES: readonly LifecycleEventType[] = [
  'birth',
  'death',
  'stale',
  'rebirth-requested',
  'seq-gap',
  'duplicate',
  'ignored',
  'register',
  'update',
  'deregister',
  'expired',
  'response',
  'quarantined',
  'publish-refused',
  'state',
  'alert',
];

/** Event ids start with 15 digits of epoch ms (functions/core/events.ts). */
const CURSOR = /^\d{15}-[\x21-\x7e]{1,512}$/;

export function registerEventRoutes(r: Router<Principal>, deps: ApiDeps): void {
  r.add('GET', '/events', async (req, _p, principal) => {
    const q = req.query;
    const limit = queryInt(q, 'limit', { min: 1, max: 1000, default: 100 })!;
    let types: LifecycleEventType[] | undefined;
    if (q.type !== undefined) {
      types = q.type.split(',') as LifecycleEventType[];
      if (types.some((t) => !EVENT_TYPES.includes(t)))
        throw badRequest(`type must be a comma-separated list of ${EVENT_TYPES.join(', ')}`, 'type');
    }
    const since = q.since;
    if (since !== undefined && !CURSOR.test(since))
      throw badRequest('since must be a nextCursor returned by this API', 'since');
    let deviceType: string | undefined;
    if (q.deviceType !== undefined) {
      deviceType = validateTypeId(q.deviceType, 'deviceType');
      requireTypeAccess(principal, deviceType, `devices of type ${deviceType}`);
    }
    let deviceIds: string[] | undefined;
    if (q.deviceId !== undefined) deviceIds = [(await deviceFor(deps, principal, q.deviceId, 'deviceId')).id];
    const fleet = await fleetDeviceIds(
      deps,
      principal,
      q,
      deviceType !== undefined ? [deviceType] : undefined,
    );
    if (fleet) {
      deviceIds = deviceIds ? deviceIds.filter((id) => fleet.has(id)) : [...fleet];
      // No matching device: no event, and no read of the event log.
      if (deviceIds.length === 0) return json({ events: [] });
    }
    const deviceTypes =
      deviceType !== undefined ? [deviceType] : principal.kind === 'app' ? principal.deviceTypes : undefined;
    const out = await deps.events.list({
      limit,
      ...(since !== undefined ? { since } : {}),
      ...(types ? { types } : {}),
      ...(deviceIds ? { deviceIds } : {}),
      ...(deviceTypes ? { deviceTypes } : {}),
    });
    return json(out);
  });
}
