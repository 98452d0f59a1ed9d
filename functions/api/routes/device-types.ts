/** Device types: anyone may read the types they can see; only the admin manages them. */
import { type DeviceType, validateTags, validateTypeId } from '../../core/registry.js';
import { validateWritable } from '../../core/shadow.js';
import { type Principal, requireAdmin, requireTypeAccess } from '../auth.js';
import {
  notFound,
  optionalString,
  optionalStringArray,
  type Router,
  requireObject,
  requireString,
} from '../http.js';
import { type ApiDeps, json, noContent } from './context.js';

export function registerDeviceTypeRoutes(r: Router<Principal>, deps: ApiDeps): void {
  const { registry } = deps;

  r.add('GET', '/device-types', async (_req, _p, principal) => {
    const all = await registry.listDeviceTypes();
    // An application sees the types it registered for (a filtered list, not an error).
    return json({
      deviceTypes: principal.kind === 'admin' ? all : all.filter((t) => principal.deviceTypes.includes(t.id)),
    });
  });

  r.add('GET', '/device-types/{type}', async (_req, p, principal) => {
    const id = validateTypeId(p.type);
    requireTypeAccess(principal, id, `device type ${id}`);
    const t = await registry.getDeviceType(id);
    if (!t) throw notFound(`device type ${id} not found`);
    return json(t);
  });

  r.add('PUT', '/device-types/{type}', async (req, p, principal) => {
    requireAdmin(principal);
    const id = validateTypeId(p.type);
    const body = requireObject(req.body);
    const type: DeviceType = {
      id,
      name: requireString(body, 'name', 128),
      capabilities: optionalStringArray(body, 'capabilities') ?? [],
      units: validateTags(body.units, 'units'),
    };
    const category = optionalString(body, 'category', 64);
    if (category !== undefined) type.category = category;
    const description = optionalString(body, 'description', 1024);
    if (description !== undefined) type.description = description;
    const writable = validateWritable(body.writable);
    if (writable !== undefined) type.writable = writable;
    const existed = await registry.getDeviceType(id);
    await registry.putDeviceType(type);
    return json(type, existed ? 200 : 201);
  });

  r.add('DELETE', '/device-types/{type}', async (_req, p, principal) => {
    requireAdmin(principal);
    const id = validateTypeId(p.type);
    // The registry refuses (409) while devices still use the type.
    if (!(await registry.deleteDeviceType(id))) throw notFound(`device type ${id} not found`);
    return noContent();
  });
}
