/**
 * What both ingest functions are built from (ports and settings) and what they are (a Lambda handler
 * plus the batch entry beneath it). Each function's composition root (functions/sparkplug-ingest/
 * compose.ts, functions/lwm2m-ingest/compose.ts) assembles its object graph from these ports; the
 * Lambda entry, the local stack and the benchmarks differ only in the adapters they pass.
 */
import type { Logger } from '@aws-lambda-powertools/logger';
import { type Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import { Enricher } from '../core/enrich.js';
import type { EventLog } from '../core/events.js';
import {
  type IngestDeps,
  type IngestRecord,
  type IngestResult,
  type IngestStats,
  type PublisherPort,
  processBatch,
  type StorePort,
} from '../core/ingest.js';
import { type LivePublisher, liveOnIngest } from '../core/live.js';
import type { Clock, MessageProcessor } from '../core/processor.js';
import type { Protocol } from '../core/reading.js';
import type { RegistryPort } from '../core/registry.js';
import type { AlertSink } from '../core/rules/delivery.js';
import { RuleEngine, type RuleHistory, type RuleSource } from '../core/rules/engine.js';
import type { AlertTransition } from '../core/rules/model.js';
import { rulesOnIngest } from '../core/rules/on-ingest.js';
import type { AlertStore, RuleStateStore } from '../core/rules/store.js';
import { createIngestHandler, type KinesisHandler } from './ingest-handler.js';

/** The adapters an ingest function needs, whatever the target (AWS, local stack, benchmark). */
export interface IngestPorts {
  registry: RegistryPort;
  events: EventLog;
  store: StorePort;
  publisher: PublisherPort;
  clock: Clock;
  logger: Logger;
  metrics: Metrics;
  /** Rules and alerts (ADR 0016): evaluated on the ingest path when present. */
  rules?: IngestRulesPorts;
  /** Live updates (ADR 0023): stored readings and lifecycle events published when present. */
  live?: { publisher: LivePublisher; watching?: (deviceId: string) => boolean };
}

/** What rule evaluation on the ingest path is built from. */
export interface IngestRulesPorts {
  rules: RuleSource;
  state: RuleStateStore;
  alerts: AlertStore;
  sink: AlertSink;
  /**
   * The telemetry store's readings, read back (consistently) for rule states written behind them
   * (ADR 0016 amendment 10). Without it every changed rule state is written every batch.
   */
  history?: RuleHistory;
}

/** Tunables (in AWS: the function's environment, parsed once by loadConfig). */
export interface IngestSettings {
  autoRegister?: boolean;
  defaultDeviceType?: string;
  registryCacheTtlMs?: number;
  rebirthThrottleMs?: number;
  reorderTimeoutMs?: number;
  /** Partition-key groups processed at once. */
  concurrency?: number;
  /** Readings per store write (core default: INGEST_CHUNK_READINGS). */
  chunkReadings?: number;
  /** How long the rule list is cached per function instance (default 30 s). */
  rulesTtlMs?: number;
  /** Rule states whose change is only their last reading or window: written at most this often (ms). */
  rulesStateFlushMs?: number;
}

/** Observers the local stack and the benchmarks attach (none in AWS). */
export interface IngestHooks {
  onBatch?: (stats: IngestStats) => void;
  onStored?: (latencyMs: number, readings: number) => void;
  /** Alert transitions after each batch's delivery. */
  onTransitions?: (transitions: AlertTransition[]) => void;
}

export interface IngestFunction {
  /** The Lambda handler: Kinesis event in, batch item failures out (middy + Powertools). */
  handler: KinesisHandler;
  /** The same graph one level down, for benchmarks: decoded Kinesis records in. */
  processRecords(records: IngestRecord[]): Promise<IngestResult>;
  /** The rule engine, when rules are evaluated (`invalidateRules()` after a rule changed). */
  rules?: RuleEngine;
}

/** The registry enricher both ingest paths share (device/type cache, auto-registration). */
export function ingestEnricher(ports: IngestPorts, settings: IngestSettings): Enricher {
  return new Enricher({
    registry: ports.registry,
    clock: ports.clock,
    ...(settings.registryCacheTtlMs !== undefined ? { ttlMs: settings.registryCacheTtlMs } : {}),
    autoRegister: {
      enabled: settings.autoRegister ?? false,
      defaultType: settings.defaultDeviceType ?? 'unclassified',
    },
  });
}

/** Wires a protocol processor and an enricher into the ingest path and its Lambda handler. */
export function assembleIngest(
  protocol: Protocol,
  parts: { processor: MessageProcessor; enricher: Enricher; events: EventLog },
  ports: IngestPorts,
  settings: IngestSettings,
  hooks: IngestHooks,
): IngestFunction {
  let processor = parts.processor;
  let store = ports.store;
  let engine: RuleEngine | undefined;
  if (ports.rules) {
    const rp = ports.rules;
    engine = new RuleEngine({
      rules: rp.rules,
      state: rp.state,
      alerts: rp.alerts,
      clock: ports.clock,
      ...(settings.rulesTtlMs !== undefined ? { rulesTtlMs: settings.rulesTtlMs } : {}),
      ...(rp.history ? { history: rp.history } : {}),
      ...(settings.rulesStateFlushMs !== undefined ? { stateFlushMs: settings.rulesStateFlushMs } : {}),
    });
    const emitAlertMetrics = alertMetrics(ports.metrics);
    ({ processor, store } = rulesOnIngest(
      { processor, store },
      {
        engine,
        alerts: rp.alerts,
        sink: rp.sink,
        clock: ports.clock,
        enrichmentOf: (id) => parts.enricher.enrichmentOf(id),
        onError: (what, error, t) =>
          ports.logger.error(`rules: ${what} failed${t ? ` for transition ${t.id}` : ''}`, error as Error),
        onTransitions: (ts) => {
          emitAlertMetrics(ts);
          hooks.onTransitions?.(ts);
        },
      },
    ));
  }
  if (ports.live) {
    const { publisher, watching } = ports.live;
    ({ processor, store } = liveOnIngest(
      { processor, store },
      {
        live: publisher,
        ...(watching ? { watching } : {}),
        deviceType: (id) => parts.enricher.deviceType(id),
      },
    ));
  }
  const deps: IngestDeps = {
    protocol,
    processor,
    enricher: parts.enricher,
    store,
    publisher: ports.publisher,
    events: parts.events,
    clock: ports.clock,
    ...(settings.concurrency !== undefined ? { concurrency: settings.concurrency } : {}),
    ...(settings.chunkReadings !== undefined ? { chunkReadings: settings.chunkReadings } : {}),
    ...(hooks.onStored ? { onStored: hooks.onStored } : {}),
  };
  return {
    handler: createIngestHandler({
      ...deps,
      logger: ports.logger,
      metrics: ports.metrics,
      ...(hooks.onBatch ? { onBatch: hooks.onBatch } : {}),
    }),
    processRecords: (records) => processBatch(records, deps),
    ...(engine ? { rules: engine } : {}),
  };
}

/**
 * EMF: alerts opened and resolved per severity (the CloudWatch "alerts opened per minute" widget), one
 * record per metric and severity per batch (not one per transition: a batch can carry hundreds). Each
 * severity has a single-metric instance kept for the function's life, its severity a default dimension:
 * a single-metric instance forgets added dimensions after each record (so an added one was missing from
 * AlertsResolved after AlertsOpened), and making one costs ~0.1 ms.
 */
export function alertMetrics(metrics: Metrics): (ts: AlertTransition[]) => void {
  const bySeverity = new Map<string, Metrics>();
  return (ts) => {
    const counts = new Map<string, { opened: number; resolved: number }>();
    for (const t of ts) {
      let c = counts.get(t.severity);
      if (!c) {
        c = { opened: 0, resolved: 0 };
        counts.set(t.severity, c);
      }
      if (t.kind === 'open') c.opened++;
      else c.resolved++;
    }
    for (const [severity, c] of counts) {
      let m = bySeverity.get(severity);
      if (!m) {
        m = metrics.singleMetric();
        m.setDefaultDimensions({ severity });
        bySeverity.set(severity, m);
      }
      if (c.opened > 0) m.addMetric('AlertsOpened', MetricUnit.Count, c.opened);
      if (c.resolved > 0) m.addMetric('AlertsResolved', MetricUnit.Count, c.resolved);
    }
  };
}
