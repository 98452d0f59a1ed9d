/**
 * Who may subscribe to which live events (ADR 0023): the REST credential and scoping, applied to a
 * subscription request. Used by the local stack's /live endpoint (and by a WebSocket $connect handler
 * in AWS). A device filter is checked exactly like GET /devices/{id}: an application gets the same 403
 * for another type's device and for a missing one; without one, every event is filtered by scope.
 */
import { LIVE_KINDS, type LiveKind, type LiveSubscription, liveViewer } from '../core/live.js';
import { type RegistryPort, validateDeviceId } from '../core/registry.js';
import type { Principal } from './auth.js';
import { badRequest, notFound } from './http.js';
import { deviceForbidden } from './routes/context.js';

export async function authorizeSubscription(
  registry: Pick<RegistryPort, 'getDevice'>,
  principal: Principal,
  query: Record<string, string | undefined>,
): Promise<LiveSubscription> {
  const sub: LiveSubscription = {
    viewer: liveViewer(principal),
  };
  if (query.kinds !== undefined) {
    const kinds = query.kinds.split(',').filter((k) => k.length > 0);
    const bad = kinds.find((k) => !(LIVE_KINDS as readonly string[]).includes(k));
    if (kinds.length === 0 || bad !== undefined)
      throw badRequest(`kinds must be a comma-separated list of ${LIVE_KINDS.join(', ')}`, 'kinds');
    sub.kinds = kinds as LiveKind[];
  }
  if (query.device !== undefined) {
    const id = validateDeviceId(query.device, 'device');
    const device = await registry.getDevice(id);
    if (principal.kind === 'app') {
      if (!device || !principal.deviceTypes.includes(device.type)) throw deviceForbidden(principal, id);
    } else if (!device) {
      throw notFound(`device ${id} not found`);
    }
    sub.deviceId = id;
  }
  return sub;
}
