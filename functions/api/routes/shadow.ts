/**
 * Device shadows (ADR 0023): read desired / reported / delta, set desired values (validated against the
 * device type's writable fields; reconciliation sends the commands for the delta), reconcile again.
 * Admin, or an application for devices of its own types (as commands).
 */
import type { ShadowService } from '../../core/shadow.js';
import type { Principal } from '../auth.js';
import { queryInt, type Router, requireObject } from '../http.js';
import { type ApiDeps, deviceFor, json } from './context.js';

export function registerShadowRoutes(r: Router<Principal>, deps: ApiDeps, shadow: ShadowService): void {
  r.add('GET', '/devices/{id}/shadow', async (_req, p, principal) => {
    const device = await deviceFor(deps, principal, p.id);
    return json(await shadow.get(device));
  });

  r.add('PUT', '/devices/{id}/shadow/desired', async (req, p, principal) => {
    const device = await deviceFor(deps, principal, p.id);
    const expected = queryInt(req.query, 'version', { min: 0, max: Number.MAX_SAFE_INTEGER });
    return json(await shadow.setDesired(device, requireObject(req.body), expected));
  });

  r.add('POST', '/devices/{id}/shadow/reconcile', async (_req, p, principal) => {
    const device = await deviceFor(deps, principal, p.id);
    return json(await shadow.reconcile(device));
  });
}
