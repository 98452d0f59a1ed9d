/**
 * Device commands. Admin, or an application for devices of its own types (an application that reads a
 * breaker may also trip it: the type registration is the unit of trust, ADR 0010).
 */
import type { Principal } from '../auth.js';
import { notFound, queryInt, type Router, requireObject } from '../http.js';
import { type ApiDeps, deviceFor, json } from './context.js';

export function registerCommandRoutes(r: Router<Principal>, deps: ApiDeps): void {
  r.add('POST', '/devices/{id}/commands', async (req, p, principal) => {
    const device = await deviceFor(deps, principal, p.id);
    const c = await deps.commands.create(device, requireObject(req.body));
    return {
      ...json(
        { commandId: c.commandId, status: c.status, ...(c.token !== undefined ? { token: c.token } : {}) },
        202,
      ),
      headers: {
        location: `/devices/${encodeURIComponent(device.id)}/commands/${encodeURIComponent(c.commandId)}`,
      },
    };
  });

  r.add('GET', '/devices/{id}/commands', async (req, p, principal) => {
    const device = await deviceFor(deps, principal, p.id);
    const limit = queryInt(req.query, 'limit', { min: 1, max: 200, default: 50 })!;
    return json({ commands: await deps.commands.list(device.id, limit) });
  });

  r.add('GET', '/devices/{id}/commands/{cmdId}', async (_req, p, principal) => {
    const device = await deviceFor(deps, principal, p.id);
    const c = await deps.commands.get(device.id, p.cmdId!);
    if (!c) throw notFound(`command ${p.cmdId} not found`);
    return json(c);
  });
}
