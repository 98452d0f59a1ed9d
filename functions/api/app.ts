/**
 * The REST API: one router, served by API Gateway (functions/api/handler.ts) and by the local stack.
 * Every route but /health and /openapi.json needs a credential; application keys see only the device
 * types they registered for, and anything else is 403 — never silently empty (ADR 0010).
 */
import { randomUUID } from 'node:crypto';
import type { CommandService } from '../core/commands.js';
import type { EventLog } from '../core/events.js';
import type { Clock } from '../core/processor.js';
import type { Protocol } from '../core/reading.js';
import {
  type Application,
  type Device,
  type RegistryPort,
  validateDeviceId,
  validateTags,
  validateTypeId,
} from '../core/registry.js';
import type { BucketAgg, TelemetryStore } from '../core/telemetry.js';
import {
  type Authenticator,
  hashKey,
  newApiKey,
  type Principal,
  requireAdmin,
  requireTypeAccess,
} from './auth.js';
import {
  type ApiRequest,
  badRequest,
  forbidden,
  notFound,
  ok,
  optionalString,
  optionalStringArray,
  parseInterval,
  queryInt,
  queryTime,
  Router,
  requireObject,
  requireString,
} from './http.js';

export interface ApiDeps {
  registry: RegistryPort;
  store: TelemetryStore;
  events: EventLog;
  commands: CommandService;
  authenticator: Authenticator;
  clock: Clock;
  /** Devices online per protocol (for /health). */
  health?: () => Promise<Record<string, unknown>>;
}

const PROTOCOLS: readonly Protocol[] = ['sparkplug', 'lwm2m'];

function publicApp(app: Application): Omit<Application, 'keyHash'> {
  const { keyHash: _hidden, ...rest } = app;
  return rest;
}

export function createApiRouter(deps: ApiDeps): Router<Principal> {
  const r = new Router<Principal>((req) => deps.authenticator.authenticate(req));
  const { registry } = deps;

  async function deviceFor(principal: Principal, id: string): Promise<Device> {
    validateDeviceId(id);
    const device = await registry.getDevice(id);
    if (!device) {
      // An application must not learn whether another type's device exists: same answer as no access.
      if (principal.kind === 'app')
        throw forbidden(`application "${principal.name}" may not access device ${id}`);
      throw notFound(`device ${id} not found`);
    }
    requireTypeAccess(principal, device.type, `device ${id}`);
    return device;
  }

  // ---- health and docs ---------------------------------------------------------------------------
  r.add(
    'GET',
    '/health',
    async () => ok({ status: 'ok', time: deps.clock(), ...(deps.health ? await deps.health() : {}) }),
    {
      public: true,
    },
  );
  r.add('GET', '/openapi.json', async () => ok(openApiDocument(r)), { public: true });

  // ---- devices -----------------------------------------------------------------------------------
  r.add('GET', '/devices', async (req, _p, principal) => {
    const type = req.query.type;
    if (type !== undefined) validateTypeId(type);
    const protocol = req.query.protocol;
    if (protocol !== undefined && !PROTOCOLS.includes(protocol as Protocol))
      throw badRequest('protocol must be sparkplug or lwm2m', 'protocol');
    const status = req.query.status;
    if (status !== undefined && status !== 'active' && status !== 'disabled')
      throw badRequest('status must be active or disabled', 'status');
    const limit = queryInt(req.query, 'limit', { min: 1, max: 1000, default: 100 })!;
    if (principal.kind === 'app' && type !== undefined)
      requireTypeAccess(principal, type, `devices of type ${type}`);
    const filter = {
      limit,
      ...(type ? { type } : {}),
      ...(protocol ? { protocol: protocol as Protocol } : {}),
      ...(status ? { status: status as Device['status'] } : {}),
      ...(req.query.group ? { group: req.query.group } : {}),
      ...(req.query.nextToken ? { nextToken: req.query.nextToken } : {}),
    };
    if (principal.kind === 'app' && type === undefined) {
      // An application lists only its own types' devices.
      const items: Device[] = [];
      for (const t of principal.deviceTypes)
        items.push(...(await registry.listDevices({ ...filter, type: t, limit: 1000 })).items);
      return ok({ devices: items.slice(0, limit) });
    }
    const page = await registry.listDevices(filter);
    return ok({ devices: page.items, ...(page.nextToken ? { nextToken: page.nextToken } : {}) });
  });

  r.add('GET', '/devices/{id}', async (_req, p, principal) => ok(await deviceFor(principal, p.id!)));

  r.add('PUT', '/devices/{id}', async (req, p, principal) => {
    requireAdmin(principal);
    const id = validateDeviceId(p.id);
    const body = requireObject(req.body);
    const type = validateTypeId(body.type, 'type');
    if (!(await registry.getDeviceType(type))) throw badRequest(`device type ${type} does not exist`, 'type');
    const existing = await registry.getDevice(id);
    const now = deps.clock();
    const status = body.status ?? existing?.status ?? 'active';
    if (status !== 'active' && status !== 'disabled')
      throw badRequest('status must be active or disabled', 'status');
    const device: Device = {
      ...(existing ?? { protocols: [], createdAt: now }),
      id,
      type,
      tags: validateTags(body.tags),
      status,
      updatedAt: now,
    } as Device;
    const name = optionalString(body, 'name');
    if (name !== undefined) device.name = name;
    const group = optionalString(body, 'group');
    if (group !== undefined) device.group = group;
    await registry.putDevice(device);
    return ok(device, existing ? 200 : 201);
  });

  r.add('DELETE', '/devices/{id}', async (_req, p, principal) => {
    requireAdmin(principal);
    if (!(await registry.deleteDevice(validateDeviceId(p.id)))) throw notFound(`device ${p.id} not found`);
    return { status: 204, body: null };
  });

  r.add('GET', '/devices/{id}/state', async (req, p, principal) => {
    await deviceFor(principal, p.id!);
    const points = await deps.store.latest({
      deviceId: p.id!,
      ...(req.query.subDevice !== undefined ? { subDevice: req.query.subDevice } : {}),
    });
    return ok({ deviceId: p.id, points });
  });

  r.add('GET', '/devices/{id}/telemetry', async (req, p, principal) => {
    await deviceFor(principal, p.id!);
    const now = deps.clock();
    const to = queryTime(req.query, 'to', now + 1);
    const from = queryTime(req.query, 'from', to - 3_600_000);
    const metric = req.query.metric;
    const sub = req.query.subDevice !== undefined ? { subDevice: req.query.subDevice } : {};
    if (req.query.interval !== undefined) {
      if (!metric) throw badRequest('metric is required for buckets', 'metric');
      const aggs = (req.query.agg ?? 'avg,min,max,count').split(',') as BucketAgg[];
      const buckets = await deps.store.queryBuckets({
        deviceId: p.id!,
        metric,
        from,
        to,
        intervalMs: parseInterval(req.query.interval),
        aggs,
        ...sub,
      });
      return ok({ deviceId: p.id, metric, interval: req.query.interval, buckets });
    }
    const order = req.query.order === 'desc' ? 'desc' : 'asc';
    const out = await deps.store.queryRaw({
      deviceId: p.id!,
      from,
      to,
      order,
      limit: queryInt(req.query, 'limit', { min: 1, max: 10_000, default: 1000 })!,
      ...(metric ? { metric } : {}),
      ...(req.query.nextToken ? { nextToken: req.query.nextToken } : {}),
      ...sub,
    });
    return ok({ deviceId: p.id, points: out.points, ...(out.nextToken ? { nextToken: out.nextToken } : {}) });
  });

  // ---- commands ----------------------------------------------------------------------------------
  r.add('POST', '/devices/{id}/commands', async (req, p, principal) => {
    await deviceFor(principal, p.id!);
    const command = await deps.commands.create(p.id!, requireObject(req.body));
    return ok({ commandId: command.commandId, status: command.status, token: command.token }, 202);
  });
  r.add('GET', '/devices/{id}/commands', async (_req, p, principal) => {
    await deviceFor(principal, p.id!);
    return ok({ commands: await registry.listCommands(p.id!) });
  });
  r.add('GET', '/devices/{id}/commands/{cmdId}', async (_req, p, principal) => {
    await deviceFor(principal, p.id!);
    const c = await deps.commands.get(p.id!, p.cmdId!);
    if (!c) throw notFound(`command ${p.cmdId} not found`);
    return ok(c);
  });

  // ---- device types ------------------------------------------------------------------------------
  r.add('GET', '/device-types', async (_req, _p, principal) => {
    const all = await registry.listDeviceTypes();
    return ok({
      deviceTypes: principal.kind === 'admin' ? all : all.filter((t) => principal.deviceTypes.includes(t.id)),
    });
  });
  r.add('GET', '/device-types/{type}', async (_req, p, principal) => {
    const id = validateTypeId(p.type);
    requireTypeAccess(principal, id, `device type ${id}`);
    const t = await registry.getDeviceType(id);
    if (!t) throw notFound(`device type ${id} not found`);
    return ok(t);
  });
  r.add('PUT', '/device-types/{type}', async (req, p, principal) => {
    requireAdmin(principal);
    const id = validateTypeId(p.type);
    const body = requireObject(req.body);
    const units = body.units === undefined ? {} : validateTags(body.units, 'units');
    const type = {
      id,
      name: requireString(body, 'name', 128),
      capabilities: optionalStringArray(body, 'capabilities') ?? [],
      units,
      ...(optionalString(body, 'category') ? { category: optionalString(body, 'category')! } : {}),
      ...(optionalString(body, 'description', 1024)
        ? { description: optionalString(body, 'description', 1024)! }
        : {}),
    };
    const existed = await registry.getDeviceType(id);
    await registry.putDeviceType(type);
    return ok(type, existed ? 200 : 201);
  });
  r.add('DELETE', '/device-types/{type}', async (_req, p, principal) => {
    requireAdmin(principal);
    if (!(await registry.deleteDeviceType(validateTypeId(p.type))))
      throw notFound(`device type ${p.type} not found`);
    return { status: 204, body: null };
  });

  // ---- applications ------------------------------------------------------------------------------
  const appBody = async (body: Record<string, unknown>) => {
    const deviceTypes = optionalStringArray(body, 'deviceTypes');
    if (!deviceTypes || deviceTypes.length === 0)
      throw badRequest('deviceTypes must list at least one device type', 'deviceTypes');
    for (const t of deviceTypes) {
      validateTypeId(t, 'deviceTypes');
      if (!(await registry.getDeviceType(t)))
        throw badRequest(`device type ${t} does not exist`, 'deviceTypes');
    }
    const out: Partial<Application> = { name: requireString(body, 'name', 128), deviceTypes };
    for (const f of ['developer', 'platform', 'category', 'contact'] as const) {
      const v = optionalString(body, f);
      if (v !== undefined) out[f] = v;
    }
    return out;
  };
  r.add('POST', '/apps', async (req, _p, principal) => {
    requireAdmin(principal);
    const key = newApiKey('app');
    const app = {
      ...(await appBody(requireObject(req.body))),
      id: randomUUID(),
      keyHash: hashKey(key),
      keyPrefix: key.slice(0, 12),
      createdAt: deps.clock(),
    } as Application;
    await registry.putApplication(app);
    return ok({ app: publicApp(app), apiKey: key }, 201);
  });
  r.add('GET', '/apps', async (req, _p, principal) => {
    requireAdmin(principal);
    const deviceType = req.query.deviceType;
    const apps = await registry.listApplications(deviceType ? { deviceType } : {});
    return ok({ apps: apps.map(publicApp) });
  });
  r.add('GET', '/apps/{appId}', async (_req, p, principal) => {
    if (principal.kind === 'app' && principal.appId !== p.appId)
      throw forbidden('an application may only read itself');
    const app = await registry.getApplication(p.appId!);
    if (!app) throw notFound(`application ${p.appId} not found`);
    return ok(publicApp(app));
  });
  r.add('PUT', '/apps/{appId}', async (req, p, principal) => {
    requireAdmin(principal);
    const existing = await registry.getApplication(p.appId!);
    if (!existing) throw notFound(`application ${p.appId} not found`);
    const app = { ...existing, ...(await appBody(requireObject(req.body))) } as Application;
    await registry.putApplication(app, existing);
    return ok(publicApp(app));
  });
  r.add('POST', '/apps/{appId}/rotate-key', async (_req, p, principal) => {
    requireAdmin(principal);
    const existing = await registry.getApplication(p.appId!);
    if (!existing) throw notFound(`application ${p.appId} not found`);
    const key = newApiKey('app');
    const app: Application = {
      ...existing,
      keyHash: hashKey(key),
      keyPrefix: key.slice(0, 12),
      rotatedAt: deps.clock(),
    };
    await registry.putApplication(app, existing);
    return ok({ app: publicApp(app), apiKey: key });
  });
  r.add('DELETE', '/apps/{appId}', async (_req, p, principal) => {
    requireAdmin(principal);
    if (!(await registry.deleteApplication(p.appId!))) throw notFound(`application ${p.appId} not found`);
    return { status: 204, body: null };
  });

  // ---- events ------------------------------------------------------------------------------------
  r.add('GET', '/events', async (req, _p, principal) => {
    const limit = queryInt(req.query, 'limit', { min: 1, max: 1000, default: 100 })!;
    const types = req.query.type ? req.query.type.split(',') : undefined;
    const since = req.query.since;
    const out = await deps.events.list({
      limit,
      ...(since ? { since } : {}),
      ...(types ? { types } : {}),
      ...(principal.kind === 'app' ? { deviceTypes: principal.deviceTypes } : {}),
    });
    return ok(out);
  });

  return r;
}

/** OpenAPI 3.1 description generated from the routes the router actually serves. */
export function openApiDocument(router: Router<Principal>): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const route of router.list()) {
    const params = [...route.pattern.matchAll(/\{(\w+)\}/g)].map((m) => ({
      name: m[1],
      in: 'path',
      required: true,
      schema: { type: 'string' },
    }));
    paths[route.pattern] ??= {};
    paths[route.pattern]![route.method.toLowerCase()] = {
      summary: `${route.method} ${route.pattern}`,
      ...(params.length > 0 ? { parameters: params } : {}),
      ...(route.public ? { security: [] } : {}),
      responses: {
        '200': { description: 'OK' },
        '400': { $ref: '#/components/responses/Error' },
        '401': { $ref: '#/components/responses/Error' },
        '403': { $ref: '#/components/responses/Error' },
        '404': { $ref: '#/components/responses/Error' },
      },
    };
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'Dualpath API',
      version: '0.1.0',
      description: 'Registries, telemetry, device commands and events.',
    },
    security: [{ apiKey: [] }],
    paths,
    components: {
      securitySchemes: {
        apiKey: { type: 'http', scheme: 'bearer', description: 'Admin key or application key' },
      },
      responses: {
        Error: {
          description: 'Error',
          content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } },
        },
      },
      schemas: {
        Error: {
          type: 'object',
          required: ['error'],
          properties: {
            error: {
              type: 'object',
              required: ['code', 'message'],
              properties: {
                code: { type: 'string' },
                message: { type: 'string' },
                field: { type: 'string' },
              },
            },
          },
        },
      },
    },
  };
}

export type { ApiRequest };
