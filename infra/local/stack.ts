/**
 * The embedded local stack behind `npm start`: an MQTT broker with the IoT policy's per-device ACL, the
 * pipeline's topic rules, Kinesis (kinesalite) and DynamoDB (dynalite, persisted) emulators reached
 * through the real AWS SDK clients, an event-source runner invoking the SAME ingest handlers with real
 * Kinesis events, a DuckDB telemetry store, and the API + dashboard. Endpoints can point at LocalStack
 * instead (AWS_ENDPOINT_URL).
 */
import { randomUUID } from 'node:crypto';
import { appendFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DynamoEventLog } from '../../functions/adapters/dynamo-events.js';
import { DynamoRegistry } from '../../functions/adapters/dynamo-registry.js';
import { DynamoShadowStore } from '../../functions/adapters/dynamo-shadow.js';
import {
  DynamoPendingRequestStore,
  DynamoRegistrationStore,
  DynamoSparkplugStateStore,
} from '../../functions/adapters/dynamo-state.js';
import { checkAdminKeyStrength, hashKey, newApiKey } from '../../functions/api/auth.js';
import { composeApi } from '../../functions/api/compose.js';
import { registryHealth } from '../../functions/api/routes/health.js';
import type { EventLog } from '../../functions/core/events.js';
import { emptyStats, type IngestStats } from '../../functions/core/ingest.js';
import { LiveHub, liveAlertSink } from '../../functions/core/live.js';
import type { Protocol } from '../../functions/core/reading.js';
import type { Application, RegistryPort } from '../../functions/core/registry.js';
import type { IngestHooks, IngestSettings } from '../../functions/shared/ingest-function.js';
import { type EventSourceDef, pipeline, type StreamKey } from '../pipeline.js';
import { localRules } from './alerts.js';
import type { CallCounts, ExternalEndpoints } from './aws-clients.js';
import { type BrokerOptions, type LocalBroker, startBroker } from './broker.js';
import { type CaPaths, ensureLocalCa } from './ca.js';
import { DuckDbTelemetryStore } from './duckdb-store.js';
import { startEmulators } from './emulators.js';
import { EventSourceRunner } from './event-source.js';
import { type FaultCounters, FaultInjector, type LocalFaults } from './faults.js';
import { PipelineHealth } from './health.js';
import { startHttpServer } from './http-server.js';
import { composeLocalIngest } from './ingest-compose.js';
import {
  DEFAULT_INGEST_WORKERS,
  IngestWorkerPool,
  type IngestWorkerStatus,
  ingestWorkersFromEnv,
} from './ingest-workers.js';
import { localOperations } from './operations.js';
import { redriveLocalDlq } from './redrive.js';

export interface LocalStackOptions {
  dataDir: string;
  /** The dashboard's live WebSocket URL (config.json); SSE at /live when absent (http-server.ts). */
  dashboardLiveUrl?: string;
  mqttPort: number;
  httpPort: number;
  adminKey?: string;
  autoRegister?: boolean;
  log?: (line: string) => void;
  /** External endpoints (LocalStack) instead of the embedded emulators, per service. */
  endpoints?: ExternalEndpoints;
  /** Inject faults (store throttling, DynamoDB errors, handler crashes): `npm run faults`. */
  faults?: LocalFaults;
  /** Event-source settings overriding the pipeline's (tests: a short retry budget). */
  eventSource?: Partial<EventSourceDef>;
  /** MQTT over TLS with client certificates from the data directory's local CA (ADR 0019). */
  tls?: { port: number };
  /** MQTT over WebSocket. */
  ws?: { port: number };
  /** The broker's per-connection publish limit (default 100/s, burst 200; false = none). */
  publishLimit?: BrokerOptions['publishLimit'];
  /**
   * Worker threads the ingest function instances run in (ADR 0026); 0 = on the main thread.
   * Default: DUALPATH_INGEST_WORKERS, else DEFAULT_INGEST_WORKERS.
   */
  ingestWorkers?: number;
}

/** Per stream: invocations and where the pollers' time went (cumulative for the runner in service). */
export interface EventSourceTiming {
  invocations: number;
  invocationMs: number;
  readWaitMs: number;
}
const pick = (c: EventSourceTiming): EventSourceTiming => ({
  invocations: c.invocations,
  invocationMs: c.invocationMs,
  readWaitMs: c.readWaitMs,
});

export interface LocalStatus {
  uptimeMs: number;
  messages: Record<StreamKey, number>;
  refused: number;
  recordsForwarded: number;
  readingsDecoded: number;
  readingsStored: number;
  duplicates: number;
  quarantined: number;
  actionsPublished: number;
  dlqRecords: number;
  /** Records `redrive()` put back on the streams (ADR 0017). */
  redrivenRecords: number;
  /** Records the broker's Kinesis forwarder gave up on (forwarder-dlq.jsonl in the data directory). */
  forwarderDlqRecords: number;
  lag: { records: number; sparkplug: number; lwm2m: number };
  online: { sparkplug: number; lwm2m: number; devices: number };
  connected: number;
  /** Handler invocations (Lambda invocations in AWS). */
  invocations: number;
  eventSource: Record<StreamKey, EventSourceTiming>;
  /** DynamoDB calls by operation since start. */
  dynamoCalls: CallCounts;
  /** Kinesis calls by operation since start. */
  kinesisCalls: CallCounts;
  /** Faults injected so far (only with the `faults` option). */
  faults?: FaultCounters;
  /** How failures were recovered: retries inside the handler, stream redeliveries, crashes, bisections. */
  recovery: {
    ingestRetries: number;
    transientFailures: number;
    streamRetries: number;
    functionErrors: number;
    bisections: number;
  };
  /** The ingest worker threads (ADR 0026), when the handlers run off the main thread. */
  ingestWorkers?: IngestWorkerStatus;
}

/**
 * Publish → stored latency per message that carried readings: from its receipt at the broker (the
 * envelope's receivedAt — on loopback, the publish) until its readings are stored.
 */
export class LatencyRecorder {
  private samples: number[] = [];
  private seen = 0;
  record(ms: number): void {
    this.seen++;
    // Reservoir of 20,000: bounded memory at any rate.
    if (this.samples.length < 20_000) this.samples.push(ms);
    else {
      const i = Math.floor(Math.random() * this.seen);
      if (i < this.samples.length) this.samples[i] = ms;
    }
  }
  reset(): void {
    this.samples = [];
    this.seen = 0;
  }
  percentiles(): { p50: number; p99: number; max: number; count: number } {
    const s = [...this.samples].sort((a, b) => a - b);
    const at = (q: number) => s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? 0;
    return { p50: at(0.5), p99: at(0.99), max: s.at(-1) ?? 0, count: this.seen };
  }
}

export interface LocalStack {
  mqttPort: number;
  httpPort: number;
  /** The TLS listener's port and the local CA's files (with the `tls` option). */
  tls?: { port: number; paths: CaPaths };
  /** The WebSocket listener's port (with the `ws` option). */
  wsPort?: number;
  adminKey: string;
  demoApp?: { name: string; apiKey: string };
  registry: RegistryPort;
  store: DuckDbTelemetryStore;
  events: EventLog;
  /** Live updates (ADR 0023): publish operation progress with `live.publish([operationProgress(...)])`. */
  live: LiveHub;
  /** The broker now running (a new one after restartBroker()). */
  readonly broker: LocalBroker;
  status(): LocalStatus;
  latency: LatencyRecorder;
  /** Waits until every record the broker accepted has been processed. */
  drain(timeoutMs?: number): Promise<boolean>;
  /**
   * Stops the event-source runners (checkpointing what completed) and starts new ones. `crash`: the
   * checkpoints saved while stopping are lost (as when the poller dies mid-batch), so the new runners
   * redeliver the batches that were in flight.
   */
  restartRunners(options?: { crash?: boolean }): Promise<void>;
  /**
   * Closes the broker (clients disconnected, accepted records flushed to Kinesis) and listens again on
   * the same port after `downMs`; devices reconnect on their own. Server publishes meanwhile are dropped
   * (no device is connected to receive them). Counters stay cumulative.
   */
  restartBroker(downMs?: number): Promise<void>;
  /** The fault injector (only with the `faults` option): counters and what the broker forwarded. */
  faults?: FaultInjector;
  /** The ingest worker threads (ADR 0026), unless the handlers run on the main thread. */
  ingestWorkers?: IngestWorkerPool;
  /**
   * Puts the records of the local DLQ (dlq.jsonl, with payloads) back on their streams for the same
   * handlers (ADR 0017; `dualpath redrive`); the redriven file is kept as dlq-redriven-<time>.jsonl.
   */
  redrive(): Promise<{ records: number; files: string[] }>;
  stop(): Promise<void>;
}

/** Device types the simulator uses, and the seeds' per-application isolation demo. */
export const SEED_TYPES = [
  {
    id: 'env-sensor',
    name: 'Temperature / humidity sensor',
    category: 'environment',
    capabilities: ['temperature', 'humidity'],
    units: {},
  },
  {
    id: 'pressure',
    name: 'Pressure transmitter',
    category: 'process',
    capabilities: ['pressure'],
    units: {},
  },
  {
    id: 'flow-meter',
    name: 'Flow meter with pump',
    category: 'process',
    capabilities: ['flow', 'pump'],
    units: {},
  },
  {
    id: 'breaker',
    name: 'Smart circuit breaker',
    category: 'energy',
    capabilities: ['voltage', 'current', 'power', 'trip'],
    units: {},
  },
  { id: 'unclassified', name: 'Unclassified', category: 'auto-registered', capabilities: [], units: {} },
];

export async function startLocalStack(o: LocalStackOptions): Promise<LocalStack> {
  const started = Date.now();
  const log = o.log ?? (() => {});
  // A chosen admin key guards every device and application: refuse a weak one before anything starts.
  if (o.adminKey !== undefined) checkAdminKeyStrength(o.adminKey, 'adminKey');
  mkdirSync(o.dataDir, { recursive: true });
  process.env.POWERTOOLS_METRICS_DISABLED ??= 'true';

  // ---- emulators (or LocalStack) ------------------------------------------------------------------
  const kinesisCalls: CallCounts = {};
  const dynamoCalls: CallCounts = {};
  const emulators = await startEmulators({
    dataDir: o.dataDir,
    endpoints: o.endpoints ?? {},
    onNotice: log,
    calls: { kinesis: kinesisCalls, dynamodb: dynamoCalls },
  });
  if (!emulators.kinesisPersistent) {
    // Kinesis is in memory: shutdown drains every accepted record first, so nothing is lost, and the
    // checkpoints of the previous run are meaningless for a fresh stream.
    for (const key of Object.keys(pipeline.streams)) {
      rmSync(join(o.dataDir, `checkpoint-${key}.json`), { force: true });
    }
  }
  const { kinesis, doc, streamNames } = emulators;
  const injector = o.faults ? new FaultInjector(o.faults) : undefined;
  if (injector) emulators.hookDynamo(injector.dynamoHook());
  const tables = emulators.tableNames;

  // ---- ports ------------------------------------------------------------------------------------------
  const clock = Date.now;
  const registry = new DynamoRegistry({ client: doc, tableName: tables.registry });
  const stateOpts = { client: doc, tableName: tables.state, clock };
  const memoryLimit = process.env.DUALPATH_DUCKDB_MEMORY;
  const threads = Number(process.env.DUALPATH_DUCKDB_THREADS) || undefined;
  const store = await DuckDbTelemetryStore.open({
    dataDir: o.dataDir,
    ...(memoryLimit ? { memoryLimit } : {}),
    ...(threads ? { threads } : {}),
  });
  const latency = new LatencyRecorder();
  // What the handlers write to: the store, behind the fault injector in fault-injection runs.
  const handlerStore = injector ? injector.store(store) : store;
  const baseEvents = new DynamoEventLog({ client: doc, tableName: tables.events, clock });
  // Rules and alerts (ADR 0016): stores on the same tables, event log + webhook sinks, a clock timer.
  // Live updates (ADR 0023): one in-process hub fed by the ingest path and the alert sinks, served at /live.
  const live = new LiveHub();
  const rules = localRules({ doc, tables, events: baseEvents, clock, log, sinks: [liveAlertSink(live)] });

  // Seeds: device types, and one application on first start (its key is shown once).
  for (const t of SEED_TYPES) if (!(await registry.getDeviceType(t.id))) await registry.putDeviceType(t);
  let demoApp: LocalStack['demoApp'];
  if ((await registry.listApplications()).length === 0) {
    const apiKey = newApiKey('app');
    const app: Application = {
      id: randomUUID(),
      name: 'Smart Grid Monitor',
      developer: 'Dualpath demo',
      category: 'energy',
      deviceTypes: ['breaker'],
      keyHash: hashKey(apiKey),
      keyPrefix: apiKey.slice(0, 12),
      createdAt: clock(),
    };
    await registry.putApplication(app);
    demoApp = { name: app.name, apiKey };
  }

  // ---- broker, protocol servers, commands -----------------------------------------------------------
  const localCa = o.tls ? await ensureLocalCa(o.dataDir) : undefined;
  const openBroker = (port: number, tlsPort = o.tls?.port, wsPort = o.ws?.port) =>
    startBroker({
      port,
      ...(localCa && tlsPort !== undefined
        ? { tls: { port: tlsPort, ca: localCa.ca.cert, cert: localCa.server.cert, key: localCa.server.key } }
        : {}),
      ...(wsPort !== undefined ? { ws: { port: wsPort } } : {}),
      ...(o.publishLimit !== undefined ? { publishLimit: o.publishLimit } : {}),
      rules: pipeline.rules,
      kinesis,
      records: emulators.records,
      streamNames,
      onRefused: (clientId, what) => log(`refused: client ${clientId}: ${what}`),
      // Kinesis refused a record for itself, or shutdown left it: kept with its reason, logged once.
      onDeadLetter: (d) => {
        appendFileSync(
          join(o.dataDir, 'forwarder-dlq.jsonl'),
          `${JSON.stringify({ stream: d.stream, partitionKey: d.partitionKey, code: d.code, reason: d.message, data: d.data.toString('base64') })}\n`,
        );
        log(
          `forwarder: ${d.stream} record (key ${d.partitionKey.slice(0, 64)}) dead-lettered: ${d.code}: ${d.message}`,
        );
      },
      ...(injector
        ? { onForwarded: (stream: StreamKey, data: Buffer) => injector.forwarded(stream, data) }
        : {}),
    });
  let broker = await openBroker(o.mqttPort);
  // Counters of brokers closed by restartBroker(), so the totals stay cumulative.
  const retiredBroker = { sparkplug: 0, lwm2m: 0, refused: 0, recordsForwarded: 0, deadLettered: 0 };
  let brokerClosed = false;
  let brokerRestarting = false;
  const publish = async (actions: Array<Parameters<LocalBroker['publish']>[0]>) => {
    // After shutdown began (or while the broker restarts), devices are gone: answers to them are
    // undeliverable, not worth a retry.
    if (brokerClosed || brokerRestarting) return;
    await Promise.all(actions.map((a) => broker.publish(a)));
  };
  const totals: IngestStats = emptyStats();
  // Ports of the ingest functions; each call builds a fresh set of state ports, as a separate Lambda
  // instance would have (its processor's write-back cache over them is its own).
  const ingestPorts = () => ({
    registry,
    events: baseEvents,
    store: handlerStore,
    publisher: { publish },
    clock,
    rules: rules.ingestPorts(),
    live: { publisher: live, watching: (id: string) => live.watching(id) },
    state: stateOpts,
  });
  const ingestSettings: IngestSettings = {
    autoRegister: o.autoRegister ?? true,
    defaultDeviceType: 'unclassified',
    // DuckDB pays a staged anti-join insert per write: one write per batch, not one per 2,048 readings
    // (chunked writes halved the local end-to-end rate).
    chunkReadings: 100_000,
  };
  const ingestHooks: IngestHooks = {
    onStored: (ms) => latency.record(ms),
    onBatch: (stats) => {
      for (const k of Object.keys(totals) as Array<keyof IngestStats>) totals[k] += stats[k];
    },
  };
  // The SAME composition roots as the Lambda entries, driven by the local event-source runner: one
  // function instance per concurrent lane, on this thread or in an ingest worker thread (ADR 0026).
  const workerCount = o.ingestWorkers ?? ingestWorkersFromEnv(process.env, DEFAULT_INGEST_WORKERS);
  const pool =
    workerCount > 0
      ? new IngestWorkerPool({
          size: workerCount,
          init: {
            dynamoEndpoint: emulators.endpoints.dynamodb,
            dynamoEmbedded: emulators.embedded.dynamodb,
            tables,
            settings: ingestSettings,
            dynamoFaults: injector !== undefined,
          },
          ports: {
            store: handlerStore,
            publisher: { publish },
            sink: rules.sink,
            live,
            onStored: (ms) => latency.record(ms),
            onBatch: ingestHooks.onBatch!,
            dynamoCalls,
            ...(injector ? { injector } : {}),
            log,
          },
        })
      : undefined;
  if (pool) {
    rules.onRulesChange(() => pool.invalidateRules());
    await pool.start();
  }
  /** Releases the instances of a stopped runner (worker mode). */
  const releases: Record<StreamKey, Array<() => void>> = { sparkplug: [], lwm2m: [] };
  const makeHandler = (protocol: Protocol) => {
    if (pool) {
      const lane = pool.handler(protocol);
      releases[protocol].push(lane.release);
      return lane.handler;
    }
    return rules.track(composeLocalIngest(protocol, ingestPorts(), ingestSettings, ingestHooks)).handler;
  };
  const runners: Record<StreamKey, EventSourceRunner> = {} as Record<StreamKey, EventSourceRunner>;
  // Counters of runners stopped by restartRunners(), so the totals stay cumulative.
  const retired = {
    recordsRead: 0,
    invocations: 0,
    dlqRecords: 0,
    retries: 0,
    functionErrors: 0,
    bisections: 0,
    invocationMs: 0,
    readWaitMs: 0,
  };
  const startRunner = async (protocol: Protocol) => {
    const fn = protocol === 'sparkplug' ? pipeline.functions.sparkplugIngest : pipeline.functions.lwm2mIngest;
    // An override of the parallelization factor (bench, tests) also sets how many instances are built.
    const settings = { ...fn.eventSource, ...o.eventSource };
    const runner = new EventSourceRunner({
      kinesis,
      records: emulators.records,
      streamName: streamNames[fn.stream],
      functionName: `${protocol}-ingest`,
      settings,
      handlers: Array.from({ length: settings.parallelizationFactor }, () => {
        const handler = makeHandler(protocol);
        return injector ? injector.handler(handler) : handler;
      }),
      checkpointFile: join(o.dataDir, `checkpoint-${protocol}.json`),
      onFailure: ({ reason, records, KinesisBatchInfo }) =>
        appendFileSync(
          join(o.dataDir, 'dlq.jsonl'),
          `${JSON.stringify({ stream: fn.stream, reason, KinesisBatchInfo, records: records.map((r) => r.kinesis) })}\n`,
        ),
      onError: (error) => log(`${protocol}-ingest: ${(error as Error).message}`),
    });
    runners[fn.stream] = runner; // before start(): the status never sums a stopped runner twice
    await runner.start();
  };
  for (const protocol of ['sparkplug', 'lwm2m'] as const) await startRunner(protocol);
  // Records put back on the streams by redrive(): the runners read them as well (lag, drain).
  let redriven = 0;
  const runnerTotal = (k: keyof typeof retired) =>
    retired[k] + runners.sparkplug.counters[k] + runners.lwm2m.counters[k];

  // ---- API and dashboard -------------------------------------------------------------------------------
  const adminKey = o.adminKey ?? newApiKey('admin');
  let online = { sparkplug: 0, lwm2m: 0, devices: 0 };
  // Every page, no cache: the timer below is the only caller.
  const countOnline = registryHealth(registry, clock, { ttlMs: 0, maxPages: Number.POSITIVE_INFINITY });
  let refreshing = false;
  const refreshOnline = async () => {
    if (refreshing) return;
    refreshing = true;
    try {
      const counts = await countOnline();
      online = {
        sparkplug: counts.online?.sparkplug ?? 0,
        lwm2m: counts.online?.lwm2m ?? 0,
        devices: counts.online?.devices ?? 0,
      };
    } finally {
      refreshing = false;
    }
  };
  // A full registry scan (every page: a fleet is often larger than one): every 10 s is fresh enough
  // for the status line and /health, and keeps the scan's cost off the emulator's hot path.
  const pipelineHealth = new PipelineHealth({ clock });
  const onlineTimer = setInterval(() => void refreshOnline().catch(() => {}), 10_000);
  // Batch operations and firmware packages (ADR 0022).
  let httpBase = '';
  const operations = localOperations({
    doc,
    registryTable: tables.registry,
    dataDir: o.dataDir,
    baseUrl: () => httpBase,
    registry,
    registrations: new DynamoRegistrationStore(stateOpts),
    pending: new DynamoPendingRequestStore(stateOpts),
    publisher: { publish },
    live,
    clock,
    log,
  });
  const { router, authenticator } = composeApi({
    registry,
    events: baseEvents,
    store,
    registrations: new DynamoRegistrationStore(stateOpts),
    pending: new DynamoPendingRequestStore(stateOpts),
    sparkplugState: new DynamoSparkplugStateStore(stateOpts),
    publisher: { publish },
    clock,
    newId: randomUUID,
    adminKeyHash: hashKey(adminKey),
    rules: rules.apiPorts(),
    operations: operations.apiPorts,
    live,
    shadows: new DynamoShadowStore({ client: doc, tableName: tables.registry }),
    onError: (error, req) =>
      log(
        `API ${req.method} ${req.path}: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`,
      ),
    // Degraded (503 with reasons) while the forwarder is stuck or a stream lags.
    health: async () => {
      const s = status();
      const degraded = pipelineHealth.check({
        pendingRecords: broker.counters.pendingRecords,
        forwarderStalledMs: broker.stalledMs(),
        lagRecords: s.lag.records,
        recordsRead: runnerTotal('recordsRead'),
        millisBehind: { sparkplug: s.lag.sparkplug, lwm2m: s.lag.lwm2m },
      });
      return degraded.length > 0 ? { online, degraded } : { online };
    },
  });

  const status = (): LocalStatus => ({
    uptimeMs: Date.now() - started,
    messages: {
      sparkplug: retiredBroker.sparkplug + broker.counters.messagesIn.sparkplug,
      lwm2m: retiredBroker.lwm2m + broker.counters.messagesIn.lwm2m,
    },
    refused: retiredBroker.refused + broker.counters.refused,
    recordsForwarded: retiredBroker.recordsForwarded + broker.counters.recordsForwarded,
    readingsDecoded: totals.readingsDecoded,
    readingsStored: totals.readingsStored,
    duplicates: totals.duplicates,
    quarantined: totals.quarantined,
    actionsPublished: totals.actionsPublished,
    dlqRecords: runnerTotal('dlqRecords'),
    redrivenRecords: redriven,
    forwarderDlqRecords: retiredBroker.deadLettered + broker.counters.deadLettered,
    lag: {
      records: Math.max(
        0,
        retiredBroker.recordsForwarded +
          broker.counters.recordsForwarded +
          redriven -
          runnerTotal('recordsRead'),
      ),
      sparkplug: runners.sparkplug.counters.millisBehind,
      lwm2m: runners.lwm2m.counters.millisBehind,
    },
    online,
    connected: broker.counters.connected,
    invocations: runnerTotal('invocations'),
    eventSource: {
      sparkplug: pick(runners.sparkplug.counters),
      lwm2m: pick(runners.lwm2m.counters),
    },
    ...(injector ? { faults: { ...injector.counters } } : {}),
    ...(pool ? { ingestWorkers: pool.status() } : {}),
    recovery: {
      ingestRetries: totals.retries,
      transientFailures: totals.transientFailures,
      streamRetries: runnerTotal('retries'),
      functionErrors: runnerTotal('functionErrors'),
      bisections: runnerTotal('bisections'),
    },
    dynamoCalls: { ...dynamoCalls },
    kinesisCalls: { ...kinesisCalls },
  });
  const http = await startHttpServer({
    port: o.httpPort,
    router,
    status,
    authenticate: (req) => authenticator.authenticate(req),
    packages: operations.serve,
    live: { hub: live, registry },
    ...(o.dashboardLiveUrl ? { dashboardLiveUrl: o.dashboardLiveUrl } : {}),
  });
  httpBase = `http://127.0.0.1:${http.port}`;
  operations.start();

  const drain = async (timeoutMs = 30_000) => {
    const until = Date.now() + timeoutMs;
    let idle = 0;
    while (Date.now() < until) {
      const s = status();
      const busy = runners.sparkplug.counters.inFlight + runners.lwm2m.counters.inFlight;
      idle = s.lag.records === 0 && busy === 0 ? idle + 1 : 0;
      if (idle >= 5) return true;
      await new Promise((r) => setTimeout(r, 50));
    }
    return false;
  };

  injector?.arm();
  rules.start();
  return {
    mqttPort: broker.port,
    httpPort: http.port,
    ...(localCa && broker.tlsPort !== undefined
      ? { tls: { port: broker.tlsPort, paths: localCa.paths } }
      : {}),
    ...(broker.wsPort !== undefined ? { wsPort: broker.wsPort } : {}),
    adminKey,
    ...(demoApp ? { demoApp } : {}),
    registry,
    store,
    events: baseEvents,
    live,
    get broker() {
      return broker;
    },
    ...(injector ? { faults: injector } : {}),
    ...(pool ? { ingestWorkers: pool } : {}),
    status,
    latency,
    drain,
    async restartRunners(options: { crash?: boolean } = {}) {
      for (const key of Object.keys(runners) as StreamKey[]) {
        const old = runners[key];
        const before = old.checkpoint();
        await old.stop();
        for (const release of releases[key].splice(0)) release();
        const file = join(o.dataDir, `checkpoint-${key}.json`);
        if (options.crash && existsSync(file)) {
          const saved = JSON.parse(readFileSync(file, 'utf8')) as { shards: Record<string, string> };
          writeFileSync(file, JSON.stringify({ ...saved, shards: before }));
        }
        for (const k of Object.keys(retired) as Array<keyof typeof retired>) retired[k] += old.counters[k];
        await startRunner(key === 'sparkplug' ? 'sparkplug' : 'lwm2m');
      }
      if (injector) injector.counters[options.crash ? 'runnerCrashes' : 'runnerRestarts']++;
    },
    async redrive() {
      const out = await redriveLocalDlq({ dataDir: o.dataDir, kinesis, streamNames });
      redriven += out.records;
      return out;
    },
    async restartBroker(downMs = 0) {
      if (brokerClosed) return;
      const old = broker;
      brokerRestarting = true;
      try {
        await old.close();
        if (downMs > 0) await new Promise((r) => setTimeout(r, downMs));
        const next = await openBroker(old.port, old.tlsPort, old.wsPort);
        // One synchronous swap: the status never counts the old broker twice or not at all.
        retiredBroker.sparkplug += old.counters.messagesIn.sparkplug;
        retiredBroker.lwm2m += old.counters.messagesIn.lwm2m;
        retiredBroker.refused += old.counters.refused;
        retiredBroker.recordsForwarded += old.counters.recordsForwarded;
        retiredBroker.deadLettered += old.counters.deadLettered;
        broker = next;
      } finally {
        brokerRestarting = false;
      }
      if (injector) injector.counters.brokerRestarts++;
    },
    async stop() {
      clearInterval(onlineTimer);
      await operations.stop();
      await rules.stop();
      brokerClosed = true;
      await broker.close();
      // Kinesis is in memory here: process every accepted record before exiting, however long it takes.
      while (!(await drain(10_000))) log(`draining: ${status().lag.records} records left`);
      await Promise.all(Object.values(runners).map((r) => r.stop()));
      await pool?.stop();
      await http.close();
      await store.close();
      await emulators.stop();
    },
  };
}
