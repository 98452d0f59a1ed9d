/**
 * Which devices an operation runs on. The one place an operation's filter is resolved: explicit ids,
 * and/or the list routes' fleet filter (device-filter.ts) — the registry answers type, group, tags and
 * protocol; `online` is matched here at the time the operation is created.
 */
import { matchDevice, registryFilter } from '../device-filter.js';
import { ValidationError } from '../errors.js';
import type { RegistryPort } from '../registry.js';
import { MAX_TARGETS, type TargetFilter } from './model.js';

export type SelectDevices = (filter: TargetFilter) => Promise<string[]>;

export function selectDevicesFrom(
  registry: Pick<RegistryPort, 'getDevices' | 'listDevices'>,
  clock: () => number = Date.now,
): SelectDevices {
  return async (filter) => {
    const { deviceIds: _ids, ...query } = filter;
    const now = clock();
    let ids: string[];
    if (filter.deviceIds) {
      const found = await registry.getDevices(filter.deviceIds);
      const missing = filter.deviceIds.filter((id) => !found.has(id));
      if (missing.length > 0)
        throw new ValidationError(
          `unknown device${missing.length > 1 ? 's' : ''}: ${missing.slice(0, 5).join(', ')}${missing.length > 5 ? ', ...' : ''}`,
          { field: 'filter.deviceIds' },
        );
      ids = filter.deviceIds.filter((id) => matchDevice(found.get(id)!, query, now));
    } else {
      ids = [];
      let nextToken: string | undefined;
      do {
        const page = await registry.listDevices({
          ...registryFilter(query),
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
    if (ids.length === 0) throw new ValidationError('the filter matches no device', { field: 'filter' });
    return ids;
  };
}
