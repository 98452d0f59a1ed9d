/**
 * The fleet filter (issue 18, ADR 0021 amendment) on list routes of device-scoped items (/events,
 * /alerts): `group`, `tag`, `protocol`, `online` as on GET /devices, parsed by device-filter.ts.
 * When one is given, the matching devices' ids are resolved once per request from the registry (an
 * application key: only its types, one type query each) and the route filters its items by device id.
 * More than MAX_FLEET_DEVICES matches is a 400 naming the filter's first parameter: narrow it.
 */
import { matchDevice, parseDeviceQuery, registryFilter } from '../../core/device-filter.js';
import type { Principal } from '../auth.js';
import { badRequest } from '../http.js';
import type { ApiDeps } from './context.js';

/** The fleet parameters of the device-scoped list routes (`type` there means something else). */
export const FLEET_PARAMS = ['group', 'tag', 'protocol', 'online'] as const;
/** Most devices a fleet filter of a list route may match (the ids then filter the items). */
export const MAX_FLEET_DEVICES = 1000;

/**
 * The ids of the devices matching the fleet parameters of `query`, or undefined when none is given.
 * `deviceTypes`: the device types to look in (already access-checked); undefined: every type (admin).
 */
export async function fleetDeviceIds(
  deps: Pick<ApiDeps, 'registry' | 'clock'>,
  principal: Principal,
  query: Record<string, string | undefined>,
  deviceTypes?: readonly string[],
): Promise<Set<string> | undefined> {
  const given = FLEET_PARAMS.filter((p) => query[p] !== undefined);
  if (given.length === 0) return undefined;
  const q = parseDeviceQuery(Object.fromEntries(given.map((p) => [p, query[p]])));
  const now = deps.clock();
  const types: Array<string | undefined> = deviceTypes
    ? [...deviceTypes]
    : principal.kind === 'app'
      ? [...principal.deviceTypes]
      : [undefined];
  const ids = new Set<string>();
  for (const type of types) {
    let nextToken: string | undefined;
    do {
      const page = await deps.registry.listDevices({
        ...registryFilter(q),
        ...(type !== undefined ? { type } : {}),
        limit: Math.min(1000, MAX_FLEET_DEVICES + 1 - ids.size),
        ...(nextToken ? { nextToken } : {}),
      });
      for (const d of page.items) if (q.online === undefined || matchDevice(d, q, now)) ids.add(d.id);
      if (ids.size > MAX_FLEET_DEVICES)
        throw badRequest(
          `the fleet filter (${given.join(', ')}) matches more than ${MAX_FLEET_DEVICES} devices; narrow it (deviceType, group, tag) or name a deviceId`,
          given[0],
        );
      nextToken = page.nextToken;
    } while (nextToken);
  }
  return ids;
}
