/**
 * Every route of the API router, with auth failures, validation errors and application isolation.
 * In-process: in-memory registry and event log, a real DuckDB store in a temp dir.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiRouter } from '../../functions/api/app.js';
import { Authenticator, hashKey } from '../../functions/api/auth.js';
import type { ApiResponse } from '../../functions/api/http.js';
import { CommandService } from '../../functions/core/commands.js';
import { InMemoryEventLog } from '../../functions/core/events.js';
import { decodeMessage, Operation } from '../../functions/core/lwm2m/message.js';
import { createInMemoryLwm2mServer } from '../../functions/core/lwm2m/server/index.js';
import type { PublishAction } from '../../functions/core/reading.js';
import { InMemoryRegistry } from '../../functions/core/registry-memory.js';
import { decodePayload } from '../../functions/core/sparkplug/codec.js';
import { DuckDbTelemetryStore } from '../../infra/local/duckdb-store.js';

const T0 = 1_700_000_000_000;
const ADMIN = 'admin-secret';
let dir: string;
let store: DuckDbTelemetryStore;
const registry = new InMemoryRegistry();
const events = new InMemoryEventLog();
const published: PublishAction[] = [];
let router: ReturnType<typeof createApiRouter>;
let appKey = '';
let appId = '';

const call = (
  method: string,
  path: string,
  opts: { key?: string | null; body?: unknown; query?: Record<string, string> } = {},
): Promise<ApiResponse> =>
  router.handle({
    method,
    path,
    query: opts.query ?? {},
    headers: opts.key === null ? {} : { authorization: `Bearer ${opts.key ?? ADMIN}` },
    body: opts.body,
  });

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'dualpath-api-'));
  store = await DuckDbTelemetryStore.open({ dataDir: dir });
  const lwm2m = createInMemoryLwm2mServer({ clock: () => T0 });
  let n = 0;
  const commands = new CommandService({
    registry,
    lwm2m,
    publish: async (a) => void published.push(...a),
    clock: () => T0,
    newId: () => `cmd-${++n}`,
  });
  router = createApiRouter({
    registry,
    store,
    events,
    commands,
    authenticator: new Authenticator(hashKey(ADMIN), registry),
    clock: () => T0,
  });
  for (const [id, name] of [
    ['breaker', 'Smart circuit breaker'],
    ['env-sensor', 'Environment sensor'],
  ]) {
    await registry.putDeviceType({ id: id!, name: name!, capabilities: [], units: {} });
  }
  const base = { tags: {}, status: 'active' as const, createdAt: T0, updatedAt: T0 };
  await registry.putDevice({
    ...base,
    id: 'b1',
    type: 'breaker',
    protocols: ['sparkplug', 'lwm2m'],
    sparkplug: { group: 'grid', online: true, devices: {} },
  });
  await registry.putDevice({ ...base, id: 'e1', type: 'env-sensor', protocols: ['lwm2m'] });
  await store.write(
    [0, 1, 2, 3].map((i) => ({
      protocol: 'sparkplug' as const,
      deviceId: 'b1',
      metric: 'Voltage',
      type: 'Float',
      value: 230 + i,
      time: T0 + i * 1000,
      historical: false,
      transient: false,
      quality: 'GOOD' as const,
      enrichment: { deviceType: 'breaker', applications: [] },
    })),
  );
  await events.append([
    {
      id: `${String(T0).padStart(15, '0')}-a-1`,
      type: 'birth',
      protocol: 'sparkplug',
      deviceId: 'b1',
      deviceType: 'breaker',
      time: T0,
    },
    {
      id: `${String(T0).padStart(15, '0')}-a-2`,
      type: 'register',
      protocol: 'lwm2m',
      deviceId: 'e1',
      deviceType: 'env-sensor',
      time: T0,
    },
  ]);
  const created = await call('POST', '/apps', {
    body: { name: 'Smart Grid Monitor', deviceTypes: ['breaker'], developer: 'Grid Co' },
  });
  appKey = (created.body as { apiKey: string }).apiKey;
  appId = (created.body as { app: { id: string } }).app.id;
});

afterAll(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('public routes', () => {
  it('serves /health and an OpenAPI document listing every route', async () => {
    expect((await call('GET', '/health', { key: null })).status).toBe(200);
    const doc = (await call('GET', '/openapi.json', { key: null })).body as {
      paths: Record<string, Record<string, unknown>>;
    };
    for (const r of router.list())
      expect(doc.paths[r.pattern]?.[r.method.toLowerCase()], `${r.method} ${r.pattern}`).toBeDefined();
  });
});

describe('authentication and errors', () => {
  it('answers 401 without or with a wrong key, and 404/405 for unknown routes', async () => {
    expect((await call('GET', '/devices', { key: null })).status).toBe(401);
    expect((await call('GET', '/devices', { key: 'nope' })).body).toEqual({
      error: { code: 'UNAUTHORIZED', message: 'the credential is not valid' },
    });
    expect((await call('GET', '/nowhere')).status).toBe(404);
    expect((await call('PATCH', '/devices')).status).toBe(405);
  });

  it('names the field in validation errors', async () => {
    expect((await call('GET', '/devices', { query: { protocol: 'coap' } })).body).toMatchObject({
      error: { field: 'protocol' },
    });
    expect((await call('PUT', '/devices/b 1', { body: { type: 'breaker' } })).body).toMatchObject({
      error: { field: 'id' },
    });
    expect((await call('PUT', '/devices/x1', { body: { type: 'missing-type' } })).body).toMatchObject({
      error: { field: 'type' },
    });
    expect(
      (await call('GET', '/devices/b1/telemetry', { query: { interval: 'fast', metric: 'Voltage' } })).body,
    ).toMatchObject({ error: { field: 'interval' } });
    expect((await call('POST', '/apps', { body: { name: 'x', deviceTypes: [] } })).body).toMatchObject({
      error: { field: 'deviceTypes' },
    });
    expect(
      (await call('POST', '/devices/b1/commands', { body: { protocol: 'lwm2m', operation: 'reboot' } })).body,
    ).toMatchObject({ error: { field: 'operation' } });
  });
});

describe('devices, state and telemetry (admin)', () => {
  it('lists, filters, pages, creates, reads and deletes devices', async () => {
    expect(((await call('GET', '/devices')).body as { devices: unknown[] }).devices).toHaveLength(2);
    expect(
      (
        (await call('GET', '/devices', { query: { type: 'breaker' } })).body as {
          devices: Array<{ id: string }>;
        }
      ).devices.map((d) => d.id),
    ).toEqual(['b1']);
    const page = (await call('GET', '/devices', { query: { limit: '1' } })).body as {
      devices: unknown[];
      nextToken: string;
    };
    expect(page.devices).toHaveLength(1);
    expect(
      (
        (await call('GET', '/devices', { query: { limit: '1', nextToken: page.nextToken } })).body as {
          devices: unknown[];
        }
      ).devices,
    ).toHaveLength(1);
    expect(
      (await call('PUT', '/devices/x9', { body: { type: 'env-sensor', tags: { site: 'lab' } } })).status,
    ).toBe(201);
    expect((await call('GET', '/devices/x9')).body).toMatchObject({
      id: 'x9',
      type: 'env-sensor',
      tags: { site: 'lab' },
    });
    expect((await call('DELETE', '/devices/x9')).status).toBe(204);
    expect((await call('GET', '/devices/x9')).status).toBe(404);
  });

  it('returns the latest state, raw points with a cursor, and buckets', async () => {
    expect(
      ((await call('GET', '/devices/b1/state')).body as { points: Array<{ value: number }> }).points.map(
        (p) => p.value,
      ),
    ).toEqual([233]);
    const raw = (
      await call('GET', '/devices/b1/telemetry', {
        query: { metric: 'Voltage', from: String(T0), to: String(T0 + 10_000), limit: '3' },
      })
    ).body as {
      points: Array<{ value: number }>;
      nextToken: string;
    };
    expect(raw.points.map((p) => p.value)).toEqual([230, 231, 232]);
    const rest = (
      await call('GET', '/devices/b1/telemetry', {
        query: { metric: 'Voltage', from: String(T0), to: String(T0 + 10_000), nextToken: raw.nextToken },
      })
    ).body as {
      points: Array<{ value: number }>;
    };
    expect(rest.points.map((p) => p.value)).toEqual([233]);
    const buckets = (
      await call('GET', '/devices/b1/telemetry', {
        query: {
          metric: 'Voltage',
          from: String(T0),
          to: String(T0 + 4000),
          interval: '2s',
          agg: 'avg,min,max,count',
        },
      })
    ).body as { buckets: Array<{ count: number; avg: number }> };
    expect(buckets.buckets.map((b) => [b.count, b.avg])).toEqual([
      [2, 230.5],
      [2, 232.5],
    ]);
  });
});

describe('commands', () => {
  it('publishes an LwM2M Read and a Sparkplug NCMD write, and reads them back', async () => {
    const read = await call('POST', '/devices/e1/commands', {
      body: { protocol: 'lwm2m', operation: 'read', path: '/3/0/0' },
    });
    expect(read.status).toBe(202);
    const m = decodeMessage(published.at(-1)!.payload);
    expect(m).toMatchObject({ operation: Operation.Read, uri: '/3/0/0' });
    const id = (read.body as { commandId: string }).commandId;
    expect((await call('GET', `/devices/e1/commands/${id}`)).body).toMatchObject({
      status: 'pending',
      token: m.token,
    });

    const write = await call('POST', '/devices/b1/commands', {
      body: {
        protocol: 'sparkplug',
        operation: 'write',
        metrics: [{ name: 'Control/Trip', type: 'Boolean', value: true }],
      },
    });
    expect(write.status).toBe(202);
    expect(published.at(-1)!.topic).toBe('spBv1.0/grid/NCMD/b1');
    expect(decodePayload(published.at(-1)!.payload).metrics[0]).toMatchObject({
      name: 'Control/Trip',
      value: true,
    });
    expect(
      ((await call('GET', '/devices/b1/commands')).body as { commands: unknown[] }).commands,
    ).toHaveLength(1);
  });
});

describe('device types and applications', () => {
  it('manages device types and refuses to delete one in use', async () => {
    expect(
      (
        await call('PUT', '/device-types/meter', {
          body: { name: 'Meter', capabilities: ['energy'], units: { Energy: 'Wh' } },
        })
      ).status,
    ).toBe(201);
    expect((await call('GET', '/device-types/meter')).body).toMatchObject({
      name: 'Meter',
      units: { Energy: 'Wh' },
    });
    expect(
      ((await call('GET', '/device-types')).body as { deviceTypes: unknown[] }).deviceTypes.length,
    ).toBeGreaterThanOrEqual(3);
    expect((await call('DELETE', '/device-types/breaker')).status).toBe(409);
    expect((await call('DELETE', '/device-types/meter')).status).toBe(204);
  });

  it('never returns key hashes, rotates keys, and filters apps by device type', async () => {
    const list = (await call('GET', '/apps', { query: { deviceType: 'breaker' } })).body as {
      apps: Array<Record<string, unknown>>;
    };
    expect(list.apps.map((a) => a.name)).toEqual(['Smart Grid Monitor']);
    expect(list.apps[0]).not.toHaveProperty('keyHash');
    const tmp = await call('POST', '/apps', { body: { name: 'Temp', deviceTypes: ['env-sensor'] } });
    const tmpId = (tmp.body as { app: { id: string } }).app.id;
    const oldKey = (tmp.body as { apiKey: string }).apiKey;
    const rotated = (await call('POST', `/apps/${tmpId}/rotate-key`)).body as { apiKey: string };
    expect((await call('GET', '/devices', { key: oldKey })).status).toBe(401);
    expect((await call('GET', '/devices', { key: rotated.apiKey })).status).toBe(200);
    expect(
      (await call('PUT', `/apps/${tmpId}`, { body: { name: 'Temp 2', deviceTypes: ['env-sensor'] } })).body,
    ).toMatchObject({ name: 'Temp 2' });
    expect((await call('DELETE', `/apps/${tmpId}`)).status).toBe(204);
    expect((await call('GET', '/devices', { key: rotated.apiKey })).status).toBe(401);
  });
});

describe('application isolation (the Smart Grid Monitor sees breakers only)', () => {
  it('lists only its types and reads its own devices', async () => {
    const list = (await call('GET', '/devices', { key: appKey })).body as { devices: Array<{ id: string }> };
    expect(list.devices.map((d) => d.id)).toEqual(['b1']);
    expect((await call('GET', '/devices/b1', { key: appKey })).status).toBe(200);
    expect((await call('GET', '/devices/b1/state', { key: appKey })).status).toBe(200);
    expect((await call('GET', `/apps/${appId}`, { key: appKey })).status).toBe(200);
  });

  it('gets 403 for another type by every route, never a silently empty answer', async () => {
    const denied = [
      ['GET', '/devices', { type: 'env-sensor' }],
      ['GET', '/devices/e1', {}],
      ['GET', '/devices/e1/state', {}],
      ['GET', '/devices/e1/telemetry', { metric: 'x' }],
      ['GET', '/devices/e1/commands', {}],
      ['POST', '/devices/e1/commands', {}],
      ['GET', '/devices/e1/commands/cmd-1', {}],
      ['GET', '/device-types/env-sensor', {}],
      ['GET', '/devices/unknown-device', {}],
      ['GET', '/apps', {}],
      ['POST', '/apps', {}],
      ['PUT', '/devices/b1', {}],
      ['DELETE', '/devices/b1', {}],
      ['PUT', '/device-types/breaker', {}],
    ] as const;
    for (const [method, path, query] of denied) {
      const res = await call(method, path, {
        key: appKey,
        query: { ...query },
        body: {
          protocol: 'lwm2m',
          operation: 'read',
          path: '/3/0/0',
          name: 'x',
          type: 'breaker',
          deviceTypes: ['breaker'],
        },
      });
      expect(res.status, `${method} ${path}`).toBe(403);
    }
  });

  it('sees only the events of its types', async () => {
    const ev = (await call('GET', '/events', { key: appKey })).body as {
      events: Array<{ deviceId: string }>;
    };
    expect(ev.events.map((e) => e.deviceId)).toEqual(['b1']);
    const all = (await call('GET', '/events')).body as { events: unknown[] };
    expect(all.events).toHaveLength(2);
  });
});
