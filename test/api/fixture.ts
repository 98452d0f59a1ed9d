/**
 * One API under test: the real router over an in-memory registry and event log, a real DuckDB store in
 * a temp dir, the real LwM2M server (in-memory state) and a recording publisher. Seeds two device types
 * (breaker, env-sensor), devices of each, telemetry and events.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Authenticator, hashKey } from '../../functions/api/auth.js';
import type { ApiResponse } from '../../functions/api/http.js';
import { type ApiDeps, createApiRouter } from '../../functions/api/router.js';
import { CommandService } from '../../functions/core/commands.js';
import { InMemoryEventLog } from '../../functions/core/events.js';
import { Lwm2mServer } from '../../functions/core/lwm2m/server/server.js';
import {
  InMemoryPendingRequestStore,
  InMemoryRegistrationStore,
} from '../../functions/core/lwm2m/server/state.js';
import { selectDevicesFrom } from '../../functions/core/operations/select.js';
import { OperationService } from '../../functions/core/operations/service.js';
import { MemoryOperationStore } from '../../functions/core/operations/store.js';
import type { EnrichedReading, PublishAction } from '../../functions/core/reading.js';
import type { Device } from '../../functions/core/registry.js';
import { InMemoryRegistry } from '../../functions/core/registry-memory.js';
import { InMemoryAlertStore, InMemoryRuleStore } from '../../functions/core/rules/store.js';
import { InMemoryShadowStore, ShadowService } from '../../functions/core/shadow.js';
import { InMemorySparkplugStateStore } from '../../functions/core/sparkplug/host/state.js';
import { DuckDbTelemetryStore } from '../../infra/local/duckdb-store.js';

export const T0 = 1_700_000_000_000;
export const ADMIN = 'admin-secret-for-tests';

type Obj = Record<string, unknown>;
/**
 * The union of the response bodies the tests read, all members present for convenient access (an
 * absent member reads as undefined at run time and fails the assertion that uses it).
 */
export interface Body {
  error: { code: string; message: string; field?: string };
  devices: Array<Obj & { id: string; connectivity: Record<string, string> }>;
  nextToken: string;
  nextCursor: string;
  points: Array<Obj & { value: unknown; metric: string; time: number }>;
  buckets: Array<{ start: number; count: number; avg?: number; min?: number; max?: number; sum?: number }>;
  commands: Array<Obj & { commandId: string; status: string }>;
  commandId: string;
  status: string;
  token: number;
  response: Obj;
  deviceTypes: Array<Obj & { id: string }>;
  apps: Array<Obj & { id: string; name: string }>;
  app: Obj & { id: string; name: string; keyPrefix: string };
  apiKey: string;
  events: Array<Obj & { id: string; deviceId: string; type: string }>;
  paths: Record<string, Record<string, Obj>>;
  [key: string]: unknown;
}

export interface Api {
  deps: ApiDeps;
  registry: InMemoryRegistry;
  events: InMemoryEventLog;
  store: DuckDbTelemetryStore;
  lwm2m: Lwm2mServer;
  /** The LwM2M server's state, shared with an lwm2m-ingest function built over the same ports. */
  registrations: InMemoryRegistrationStore;
  pending: InMemoryPendingRequestStore;
  sparkplugState: InMemorySparkplugStateStore;
  /** Rules and alerts (ADR 0016): /rules and /alerts are served over these. */
  rules: InMemoryRuleStore;
  alerts: InMemoryAlertStore;
  published: PublishAction[];
  router: ReturnType<typeof createApiRouter>;
  clock: { now: number };
  /** The Smart Grid Monitor: registered for breakers only. */
  appKey: string;
  appId: string;
  call(
    method: string,
    path: string,
    opts?: { key?: string | null; body?: unknown; query?: Record<string, string> },
  ): Promise<ApiResponse & { body: Body }>;
  close(): Promise<void>;
}

export const reading = (
  deviceId: string,
  deviceType: string,
  metric: string,
  value: EnrichedReading['value'],
  time: number,
  extra: Partial<EnrichedReading> = {},
): EnrichedReading => ({
  protocol: 'sparkplug',
  deviceId,
  metric,
  type: typeof value === 'bigint' ? 'UInt64' : 'Double',
  value,
  time,
  historical: false,
  transient: false,
  quality: 'GOOD',
  enrichment: { deviceType, applications: [] },
  ...extra,
});

export function device(id: string, type: string, extra: Partial<Device> = {}): Device {
  return { id, type, tags: {}, status: 'active', protocols: [], createdAt: T0, updatedAt: T0, ...extra };
}

export async function createApi(): Promise<Api> {
  const dir = mkdtempSync(join(tmpdir(), 'dualpath-api-'));
  const store = await DuckDbTelemetryStore.open({ dataDir: dir });
  const registry = new InMemoryRegistry();
  const events = new InMemoryEventLog();
  const clock = { now: T0 };
  const now = () => clock.now;
  const registrations = new InMemoryRegistrationStore();
  const pending = new InMemoryPendingRequestStore();
  const lwm2m = new Lwm2mServer({ registrations, pending, clock: now });
  const sparkplugState = new InMemorySparkplugStateStore();
  const rules = new InMemoryRuleStore();
  const alerts = new InMemoryAlertStore();
  const published: PublishAction[] = [];
  let n = 0;
  const commands = new CommandService({
    registry,
    lwm2m,
    publish: async (a) => void published.push(...a),
    clock: now,
    newId: () => `cmd-${++n}`,
    timeoutMs: 30_000,
  });
  let appN = 0;
  const deps: ApiDeps = {
    registry,
    store,
    events,
    commands,
    authenticator: new Authenticator(hashKey(ADMIN), registry),
    clock: now,
    health: async () => ({ online: { sparkplug: 1, lwm2m: 0 } }),
    sparkplugState,
    newId: () => `app-${++appN}`,
    rulesApi: { rules },
    alertsApi: { alerts },
    operationsApi: {
      operations: new OperationService({
        store: new MemoryOperationStore(),
        commands,
        selectDevices: selectDevicesFrom(registry),
        clock: now,
        newId: () => `op-${++appN}`,
      }),
      newId: () => `pkg-${++appN}`,
      clock: now,
    },
    shadow: new ShadowService({
      registry,
      telemetry: store,
      commands,
      shadows: new InMemoryShadowStore(),
      clock: now,
    }),
  };
  const router = createApiRouter(deps);
  const call: Api['call'] = async (method, path, opts = {}) =>
    (await router.handle({
      method,
      path,
      query: opts.query ?? {},
      headers: opts.key === null ? {} : { authorization: `Bearer ${opts.key ?? ADMIN}` },
      body: opts.body,
    })) as ApiResponse & { body: Body };

  await registry.putDeviceType({ id: 'breaker', name: 'Smart circuit breaker', capabilities: [], units: {} });
  await registry.putDeviceType({ id: 'env-sensor', name: 'Environment sensor', capabilities: [], units: {} });
  await registry.putDevice(
    device('b1', 'breaker', {
      protocols: ['sparkplug', 'lwm2m'],
      group: 'grid',
      sparkplug: { group: 'grid', online: true, devices: { meter1: { online: true } } },
      lwm2m: { online: true, lifetime: 300, lastUpdate: T0 },
    }),
  );
  await registry.putDevice(
    device('e1', 'env-sensor', {
      protocols: ['lwm2m'],
      lwm2m: { online: true, lifetime: 300, lastUpdate: T0 },
    }),
  );
  await store.write([0, 1, 2, 3].map((i) => reading('b1', 'breaker', 'Voltage', 230 + i, T0 + i * 1000)));
  await store.write([reading('e1', 'env-sensor', '/3303/0/5700', 21.5, T0, { protocol: 'lwm2m' })]);
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
    {
      id: `${String(T0 + 1).padStart(15, '0')}-a-3`,
      type: 'death',
      protocol: 'sparkplug',
      deviceId: 'b1',
      deviceType: 'breaker',
      time: T0 + 1,
    },
  ]);
  const created = await call('POST', '/apps', {
    body: { name: 'Smart Grid Monitor', deviceTypes: ['breaker'], developer: 'Grid Co' },
  });
  return {
    deps,
    registry,
    events,
    store,
    lwm2m,
    registrations,
    pending,
    sparkplugState,
    rules,
    alerts,
    published,
    router,
    clock,
    appKey: created.body.apiKey,
    appId: created.body.app.id,
    call,
    async close() {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
