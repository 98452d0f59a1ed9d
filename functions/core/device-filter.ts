/**
 * The device filter of every list route (issue 18): `type`, `group`, `tag`, `protocol`, `online`.
 * Pure: parse a query string map into a DeviceQuery (clear errors naming the field), split it into the
 * part the registry answers by a query or a filter expression (`registryFilter`) and match a device
 * against the whole of it (`matchDevice`, used for `online`, which depends on the time now, and by any
 * caller that holds devices already, e.g. a batch operation's target set or an event's device).
 */
import { ValidationError } from './errors.js';
import type { Protocol } from './reading.js';
import { type Device, type DeviceFilter, LIMITS, validateTypeId } from './registry.js';

export interface DeviceQuery {
  type?: string;
  group?: string;
  /** Every listed tag must be present; a value of `undefined` matches any value of that key. */
  tags?: Record<string, string | undefined>;
  protocol?: Protocol;
  /** Online on at least one protocol (true) or on none (false), at the time given to matchDevice. */
  online?: boolean;
}

const PROTOCOLS: readonly Protocol[] = ['sparkplug', 'lwm2m'];
/** Query parameters parseDeviceQuery reads. */
export const DEVICE_QUERY_PARAMS = ['type', 'group', 'tag', 'protocol', 'online'] as const;

function fail(field: string, message: string): never {
  throw new ValidationError(`${field} ${message}`, { field });
}

/**
 * Parses `type`, `group`, `tag`, `protocol` and `online` from a query. `tag` is a comma-separated list
 * of `key:value` (that value) or `key` (any value), e.g. `tag=site:north,critical`. Absent parameters
 * are absent in the result; anything malformed throws a ValidationError naming the parameter.
 */
export function parseDeviceQuery(query: Record<string, string | undefined>): DeviceQuery {
  const out: DeviceQuery = {};
  if (query.type !== undefined) out.type = validateTypeId(query.type, 'type');
  if (query.group !== undefined) {
    if (query.group === '' || query.group.length > LIMITS.group)
      fail('group', `must be 1 to ${LIMITS.group} characters`);
    out.group = query.group;
  }
  if (query.protocol !== undefined) {
    if (!PROTOCOLS.includes(query.protocol as Protocol)) fail('protocol', 'must be sparkplug or lwm2m');
    out.protocol = query.protocol as Protocol;
  }
  if (query.online !== undefined) {
    if (query.online !== 'true' && query.online !== 'false') fail('online', 'must be true or false');
    out.online = query.online === 'true';
  }
  if (query.tag !== undefined) {
    const tags: Record<string, string | undefined> = {};
    const parts = query.tag.split(',');
    if (parts.length > 10) fail('tag', 'may list at most 10 tags');
    for (const part of parts) {
      const i = part.indexOf(':');
      const key = i < 0 ? part : part.slice(0, i);
      const value = i < 0 ? undefined : part.slice(i + 1);
      if (key === '' || key.length > LIMITS.tagKey)
        fail('tag', `keys must be 1 to ${LIMITS.tagKey} characters (form key:value or key, comma-separated)`);
      if (value !== undefined && value.length > LIMITS.tagValue)
        fail('tag', `values must be at most ${LIMITS.tagValue} characters`);
      if (Object.hasOwn(tags, key)) fail('tag', `lists the key ${key} twice`);
      tags[key] = value;
    }
    out.tags = tags;
  }
  return out;
}

/** The part of a query the registry answers itself (key condition or filter expression). */
export function registryFilter(q: DeviceQuery): Omit<DeviceFilter, 'limit' | 'nextToken'> {
  return {
    ...(q.type !== undefined ? { type: q.type } : {}),
    ...(q.group !== undefined ? { group: q.group } : {}),
    ...(q.protocol !== undefined ? { protocol: q.protocol } : {}),
    ...(q.tags !== undefined ? { tags: q.tags } : {}),
  };
}

/** Whether a device is online on a protocol at `now` (an LwM2M registration past its lifetime is not). */
export function onlineOn(device: Device, protocol: Protocol, now: number): boolean {
  if (protocol === 'sparkplug') return device.sparkplug?.online === true;
  const l = device.lwm2m;
  if (!l?.online) return false;
  if (l.lifetime === undefined || l.lifetime === 0 || l.lastUpdate === undefined) return true;
  return l.lastUpdate + l.lifetime * 1000 > now;
}

/** Whether a device matches the whole query at `now`. */
export function matchDevice(device: Device, q: DeviceQuery, now: number): boolean {
  if (q.type !== undefined && device.type !== q.type) return false;
  if (q.group !== undefined && device.group !== q.group) return false;
  if (q.protocol !== undefined && !device.protocols.includes(q.protocol)) return false;
  if (q.tags !== undefined) {
    for (const [k, v] of Object.entries(q.tags)) {
      const have = device.tags && Object.hasOwn(device.tags, k) ? device.tags[k] : undefined;
      if (have === undefined || (v !== undefined && have !== v)) return false;
    }
  }
  if (q.online !== undefined) {
    const online = onlineOn(device, 'sparkplug', now) || onlineOn(device, 'lwm2m', now);
    if (online !== q.online) return false;
  }
  return true;
}
