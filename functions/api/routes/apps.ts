/**
 * Applications: admin only, except that an application may read itself. The API key is returned once
 * (creation, rotation); the registry keeps its SHA-256 hash and a short prefix to recognise it by.
 */
import { randomUUID } from 'node:crypto';
import { type Application, validateTypeId } from '../../core/registry.js';
import { hashKey, newApiKey, type Principal, requireAdmin } from '../auth.js';
import {
  badRequest,
  forbidden,
  notFound,
  optionalString,
  optionalStringArray,
  type Router,
  requireObject,
  requireString,
} from '../http.js';
import { type ApiDeps, json, noContent } from './context.js';

type AppFields = Pick<
  Application,
  'name' | 'deviceTypes' | 'developer' | 'platform' | 'category' | 'contact'
>;

/** An application as the API shows it: never the key hash. */
export function publicApp(app: Application): Omit<Application, 'keyHash'> {
  const { keyHash: _hidden, ...rest } = app;
  return rest;
}

const APP_ID = /^[A-Za-z0-9_-]{1,64}$/;

function appId(raw: string | undefined): string {
  if (raw === undefined || !APP_ID.test(raw))
    throw badRequest('id must be 1-64 characters of A-Z a-z 0-9 _ -', 'id');
  return raw;
}

export function registerAppRoutes(r: Router<Principal>, deps: ApiDeps): void {
  const { registry } = deps;
  const newId = deps.newId ?? randomUUID;

  const parseApp = async (body: Record<string, unknown>): Promise<AppFields> => {
    const name = requireString(body, 'name', 128);
    const deviceTypes = optionalStringArray(body, 'deviceTypes', 50);
    if (!deviceTypes || deviceTypes.length === 0)
      throw badRequest('deviceTypes must list at least one device type', 'deviceTypes');
    for (const t of deviceTypes) {
      validateTypeId(t, 'deviceTypes');
      if (!(await registry.getDeviceType(t)))
        throw badRequest(`device type ${t} does not exist`, 'deviceTypes');
    }
    const out: AppFields = { name, deviceTypes: [...new Set(deviceTypes)] };
    for (const f of ['developer', 'platform', 'category', 'contact'] as const) {
      const v = optionalString(body, f);
      if (v !== undefined) out[f] = v;
    }
    return out;
  };

  r.add('POST', '/apps', async (req, _p, principal) => {
    requireAdmin(principal);
    const fields = await parseApp(requireObject(req.body));
    const key = newApiKey('app');
    const app: Application = {
      ...fields,
      id: newId(),
      keyHash: hashKey(key),
      keyPrefix: key.slice(0, 12),
      createdAt: deps.clock(),
    };
    await registry.putApplication(app);
    return json({ app: publicApp(app), apiKey: key }, 201);
  });

  r.add('GET', '/apps', async (req, _p, principal) => {
    requireAdmin(principal);
    const deviceType = req.query.deviceType;
    if (deviceType !== undefined) validateTypeId(deviceType, 'deviceType');
    const apps = await registry.listApplications(deviceType !== undefined ? { deviceType } : {});
    return json({ apps: apps.map(publicApp) });
  });

  r.add('GET', '/apps/{appId}', async (_req, p, principal) => {
    const id = appId(p.appId);
    if (principal.kind === 'app' && principal.appId !== id)
      throw forbidden('an application may only read itself');
    const app = await registry.getApplication(id);
    if (!app) throw notFound(`application ${id} not found`);
    return json(publicApp(app));
  });

  r.add('PUT', '/apps/{appId}', async (req, p, principal) => {
    requireAdmin(principal);
    const id = appId(p.appId);
    const existing = await registry.getApplication(id);
    if (!existing) throw notFound(`application ${id} not found`);
    const fields = await parseApp(requireObject(req.body));
    // Optional fields absent from the body are cleared: PUT replaces the description.
    const { developer: _d, platform: _p, category: _c, contact: _k, ...kept } = existing;
    const app: Application = { ...kept, ...fields };
    await registry.putApplication(app, existing);
    return json(publicApp(app));
  });

  r.add('POST', '/apps/{appId}/rotate-key', async (_req, p, principal) => {
    requireAdmin(principal);
    const id = appId(p.appId);
    const existing = await registry.getApplication(id);
    if (!existing) throw notFound(`application ${id} not found`);
    const key = newApiKey('app');
    const app: Application = {
      ...existing,
      keyHash: hashKey(key),
      keyPrefix: key.slice(0, 12),
      rotatedAt: deps.clock(),
    };
    await registry.putApplication(app, existing);
    return json({ app: publicApp(app), apiKey: key });
  });

  r.add('DELETE', '/apps/{appId}', async (_req, p, principal) => {
    requireAdmin(principal);
    const id = appId(p.appId);
    if (!(await registry.deleteApplication(id))) throw notFound(`application ${id} not found`);
    return noContent();
  });
}
