/**
 * Devices: list (filtered, paginated), read (with connectivity and, when the host state is wired, the
 * Sparkplug metric catalog), create/update and delete (admin only).
 */

import { matchDevice, parseDeviceQuery, registryFilter } from '../../core/device-filter.js';
import {
  type Device,
  type DeviceFilter,
  decodePageToken,
  encodePageToken,
  validateDeviceId,
  validateTags,
  validateTypeId,
} from '../../core/registry.js';
import { dataTypeName } from '../../core/sparkplug/datatypes.js';
import { type Principal, requireAdmin, requireTypeAccess } from '../auth.js';
import { badRequest, notFound, optionalString, queryInt, type Router, requireObject } from '../http.js';
import { type ApiDeps, deviceFor, json, noContent, queryString } from './context.js';
import { isOnline } from './health.js';

const STATUSES: readonly Device['status'][] = ['active', 'disabled'];

/** A device as the API shows it: the registry record plus its connectivity now. */
export function deviceView(device: Device, now: number): Device & { connectivity: Record<string, string> } {
  const connectivity: Record<string, string> = {};
  if (device.sparkplug) connectivity.sparkplug = device.sparkplug.online ? 'online' : 'offline';
  if (device.lwm2m) {
    connectivity.lwm2m = isOnline(device, 'lwm2m', now)
      ? 'online'
      : device.lwm2m.online
        ? 'expired'
        : 'offline';
  }
  return { ...device, connectivity };
}

interface AppCursor {
  /** Index into the application's sorted device types. */
  t: number;
  /** The registry's token within that type. */
  n?: string;
}

function parseFilter(query: Record<string, string | undefined>): Omit<DeviceFilter, 'limit' | 'nextToken'> {
  const out: Omit<DeviceFilter, 'limit' | 'nextToken'> = registryFilter(parseDeviceQuery(query));
  if (query.status !== undefined) {
    if (!STATUSES.includes(query.status as Device['status']))
      throw badRequest('status must be active or disabled', 'status');
    out.status = query.status as Device['status'];
  }
  return out;
}

/** Registry pages one request reads at most while `online` (matched here, not in the registry) filters. */
const MAX_PAGES_PER_REQUEST = 20;

/**
 * One page of devices: the registry answers type/group/protocol/tag/status; `online` depends on the time
 * now and is matched here. Each registry read asks for the devices still missing, so a device read is
 * either returned or rejected and the registry's token resumes exactly after it.
 */
async function listPage(
  deps: ApiDeps,
  filter: Omit<DeviceFilter, 'limit' | 'nextToken'>,
  online: boolean | undefined,
  limit: number,
  token: string | undefined,
): Promise<{ items: Device[]; nextToken?: string }> {
  const now = deps.clock();
  const items: Device[] = [];
  let next = token;
  let pages = 0;
  do {
    const page = await deps.registry.listDevices({
      ...filter,
      limit: limit - items.length,
      ...(next ? { nextToken: next } : {}),
    });
    for (const d of page.items) if (online === undefined || matchDevice(d, { online }, now)) items.push(d);
    next = page.nextToken;
  } while (next && items.length < limit && online !== undefined && ++pages < MAX_PAGES_PER_REQUEST);
  return next ? { items, nextToken: next } : { items };
}

export function registerDeviceRoutes(r: Router<Principal>, deps: ApiDeps): void {
  const { registry } = deps;

  r.add('GET', '/devices', async (req, _p, principal) => {
    const filter = parseFilter(req.query);
    const online = parseDeviceQuery({ online: req.query.online }).online;
    const limit = queryInt(req.query, 'limit', { min: 1, max: 1000, default: 100 })!;
    const token = queryString(req.query, 'nextToken', 2048);
    const now = deps.clock();
    if (principal.kind === 'admin' || filter.type !== undefined) {
      if (filter.type !== undefined)
        requireTypeAccess(principal, filter.type, `devices of type ${filter.type}`);
      const page = await listPage(deps, filter, online, limit, token);
      return json({
        devices: page.items.map((d) => deviceView(d, now)),
        ...(page.nextToken ? { nextToken: page.nextToken } : {}),
      });
    }
    // An application without a type filter: its types one after the other, one cursor across them.
    const types = [...principal.deviceTypes].sort();
    let cursor: AppCursor = { t: 0 };
    if (token) {
      const c = decodePageToken(token) as AppCursor | null;
      if (
        c === null ||
        typeof c !== 'object' ||
        !Number.isInteger(c.t) ||
        c.t < 0 ||
        c.t >= types.length ||
        (c.n !== undefined && typeof c.n !== 'string')
      )
        throw badRequest('nextToken is not a token returned by this API', 'nextToken');
      cursor = c;
    }
    const devices: Device[] = [];
    let next: AppCursor | undefined = cursor;
    while (next && devices.length < limit) {
      const page = await listPage(
        deps,
        { ...filter, type: types[next.t]! },
        online,
        limit - devices.length,
        next.n,
      );
      devices.push(...page.items);
      if (page.nextToken) next = { t: next.t, n: page.nextToken };
      else next = next.t + 1 < types.length ? { t: next.t + 1 } : undefined;
    }
    return json({
      devices: devices.map((d) => deviceView(d, now)),
      ...(next ? { nextToken: encodePageToken(next) } : {}),
    });
  });

  r.add('GET', '/devices/{id}', async (_req, p, principal) => {
    const device = await deviceFor(deps, principal, p.id);
    const view: Record<string, unknown> = { ...deviceView(device, deps.clock()) };
    if (deps.sparkplugState && device.sparkplug) view.sparkplugCatalog = await catalog(deps, device);
    return json(view);
  });

  r.add('PUT', '/devices/{id}', async (req, p, principal) => {
    requireAdmin(principal);
    const id = validateDeviceId(p.id);
    const body = requireObject(req.body);
    const existing = await registry.getDevice(id);
    if (body.type === undefined && !existing) throw badRequest('type is required for a new device', 'type');
    const type = body.type === undefined ? existing!.type : validateTypeId(body.type, 'type');
    if (type !== existing?.type && !(await registry.getDeviceType(type)))
      throw badRequest(`device type ${type} does not exist`, 'type');
    if (body.status !== undefined && !STATUSES.includes(body.status as Device['status']))
      throw badRequest('status must be active or disabled', 'status');
    const now = deps.clock();
    const patch: Partial<Device> = { type, updatedAt: now };
    if (body.tags !== undefined) patch.tags = validateTags(body.tags);
    if (body.status !== undefined) patch.status = body.status as Device['status'];
    const name = optionalString(body, 'name', 128);
    if (name !== undefined) patch.name = name;
    const group = optionalString(body, 'group', 128);
    if (group !== undefined) patch.group = group;
    if (existing) {
      // A partial update: the ingest path writes lastSeen and protocol state concurrently.
      await registry.updateDevice(id, patch);
      return json(deviceView({ ...existing, ...patch }, now));
    }
    const device: Device = {
      id,
      type,
      tags: patch.tags ?? {},
      status: patch.status ?? 'active',
      protocols: [],
      createdAt: now,
      updatedAt: now,
      ...(name !== undefined ? { name } : {}),
      ...(group !== undefined ? { group } : {}),
    };
    await registry.putDevice(device);
    return json(deviceView(device, now), 201);
  });

  r.add('DELETE', '/devices/{id}', async (_req, p, principal) => {
    requireAdmin(principal);
    const id = validateDeviceId(p.id);
    if (!(await registry.deleteDevice(id))) throw notFound(`device ${id} not found`);
    return noContent();
  });
}

type MetricList = Array<{ name: string; type: string; unit?: string }>;
interface Catalog {
  node: MetricList;
  devices: Record<string, MetricList>;
}

/** The metric catalog from the births: the edge node's own metrics, then each device's. */
async function catalog(deps: ApiDeps, device: Device): Promise<Catalog> {
  const state = deps.sparkplugState!;
  const sp = device.sparkplug!;
  const describe = (metrics: Record<string, { name: string; datatype: number; unit?: string }>) =>
    Object.values(metrics).map((m) => ({
      name: m.name,
      type: dataTypeName(m.datatype),
      ...(m.unit ? { unit: m.unit } : {}),
    }));
  const subIds = Object.keys(sp.devices).slice(0, 100);
  const [node, ...subs] = await Promise.all([
    state.getNode(sp.group, device.id),
    ...subIds.map((s) => state.getDevice(sp.group, device.id, s)),
  ]);
  const out: Catalog = { node: node ? describe(node.metrics) : [], devices: {} };
  subIds.forEach((s, i) => {
    const rec = subs[i];
    out.devices[s] = rec ? describe(rec.metrics) : [];
  });
  return out;
}
