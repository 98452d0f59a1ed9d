/**
 * Which devices an operation runs on. The one place an operation's filter is resolved: explicit ids,
 * and/or the list routes' fleet filter (device-filter.ts) — the registry answers type, group, tags and
 * protocol; `online` is matched here at the time the operation is created.
 */
import { matchDevice, registryFilter } from '../device-filter.js';
import { ForbiddenError, ValidationError } from '../errors.js';
import type { RegistryPort } from '../registry.js';
import { MAX_TARGETS, type TargetFilter } from './model.js';

/** `deviceTypes`: only devices of these types may be chosen (an application's); absent: any. */
export type SelectDevices = (filter: TargetFilter, deviceTypes?: readonly string[]) => Promise<string[]>;

export function selectDevicesFrom(
  registry: Pick<RegistryPort, 'getDevices' | 'listDevices'>,
  clock: () => number = Date.now,
): SelectDevices {
  return async (filter, deviceTypes) => {
    const { deviceIds: _ids, ...query } = filter;
    const now = clock();
    // An application's operation: a type it is not registered for is refused, never silently empty.
    if (deviceTypes && query.type !== undefined && !deviceTypes.includes(query.type))
      throw new ForbiddenError(`the application is not registered for device type ${query.type}`, {
        field: 'filter.type',
      });
    let ids: string[];
    if (filter.deviceIds) {
      const found = await registry.getDevices(filter.deviceIds);
      // Another type's device answers as an unknown one: an application learns nothing of it.
      const missing = filter.deviceIds.filter(
        (id) => !found.has(id) || (deviceTypes !== undefined && !deviceTypes.includes(found.get(id)!.type)),
      );
      if (missing.length > 0)
        throw new ValidationError(
          `unknown device${missing.length > 1 ? 's' : ''}: ${missing.slice(0, 5).join(', ')}${missing.length > 5 ? ', ...' : ''}`,
          { field: 'filter.deviceIds' },
        );
      ids = filter.deviceIds.filter((id) => matchDevice(found.get(id)!, query, now));
    } else {
      ids = [];
      // An application without a type in its filter: each of its types in turn (the registry's type index).
      const types: Array<string | undefined> =
        deviceTypes && query.type === undefined ? [...deviceTypes] : [query.type];
      for (const type of types) {
        let nextToken: string | undefined;
        do {
          const page = await registry.listDevices({
            ...registryFilter({ ...query, ...(type !== undefined ? { type } : {}) }),
            limit: 1000,
            ...(nextToken ? { nextToken } : {}),
          });
          for (const d of page.items)
            if (query.online === undefined || matchDevice(d, query, now)) ids.push(d.id);
          nextToken = page.nextToken;
          if (ids.length > MAX_TARGETS)
            throw new ValidationError(`the filter matches more than ${MAX_TARGETS} devices`, {
              field: 'filter',
            });
        } while (nextToken);
      }
    }
    if (ids.length === 0) throw new ValidationError('the filter matches no device', { field: 'filter' });
    return ids;
  };
}
