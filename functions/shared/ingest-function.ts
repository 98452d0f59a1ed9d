/**
 * What both ingest functions are built from (ports and settings) and what they are (a Lambda handler
 * plus the batch entry beneath it). Each function's composition root (functions/sparkplug-ingest/
 * compose.ts, functions/lwm2m-ingest/compose.ts) assembles its object graph from these ports; the
 * Lambda entry, the local stack and the benchmarks differ only in the adapters they pass.
 */
import type { Logger } from '@aws-lambda-powertools/logger';
import type { Metrics } from '@aws-lambda-powertools/metrics';
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
import type { Clock, MessageProcessor } from '../core/processor.js';
import type { Protocol } from '../core/reading.js';
import type { RegistryPort } from '../core/registry.js';
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
}

/** Observers the local stack and the benchmarks attach (none in AWS). */
export interface IngestHooks {
  onBatch?: (stats: IngestStats) => void;
  onStored?: (latencyMs: number, readings: number) => void;
}

export interface IngestFunction {
  /** The Lambda handler: Kinesis event in, batch item failures out (middy + Powertools). */
  handler: KinesisHandler;
  /** The same graph one level down, for benchmarks: decoded Kinesis records in. */
  processRecords(records: IngestRecord[]): Promise<IngestResult>;
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
  const deps: IngestDeps = {
    protocol,
    processor: parts.processor,
    enricher: parts.enricher,
    store: ports.store,
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
  };
}
