/**
 * Which devices an operation runs on. The one place an operation's filter is resolved (type and/or
 * explicit ids), so a richer fleet filter (groups, tags) replaces this function only.
 */
import { ValidationError } from '../errors.js';
import type { RegistryPort } from '../registry.js';
import { MAX_TARGETS, type TargetFilter } from './model.js';

export type SelectDevices = (filter: TargetFilter) => Promise<string[]>;

export function selectDevicesFrom(registry: Pick<RegistryPort, 'getDevices' | 'listDevices'>): SelectDevices {
  return async (filter) => {
    let ids: string[];
    if (filter.deviceIds) {
      const found = await registry.getDevices(filter.deviceIds);
      const missing = filter.deviceIds.filter((id) => !found.has(id));
      if (missing.length > 0)
        throw new ValidationError(
          `unknown device${missing.length > 1 ? 's' : ''}: ${missing.slice(0, 5).join(', ')}${missing.length > 5 ? ', ...' : ''}`,
          { field: 'filter.deviceIds' },
        );
      ids = filter.deviceIds.filter((id) => filter.type === undefined || found.get(id)?.type === filter.type);
    } else {
      ids = [];
      let nextToken: string | undefined;
      do {
        const page = await registry.listDevices({
          type: filter.type!,
          limit: 1000,
          ...(nextToken ? { nextToken } : {}),
        });
        ids.push(...page.items.map((d) => d.id));
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
