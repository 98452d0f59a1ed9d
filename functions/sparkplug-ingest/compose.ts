/**
 * The sparkplug-ingest function, whole — its one composition root. Kinesis stream "sparkplug" →
 * Sparkplug B host (owning its write-back protocol-state cache) → registry enrichment → telemetry store;
 * rebirth requests published, lifecycle events and quarantined messages logged. The Lambda entry
 * (handler.ts), the local stack and the benchmarks all build the function here and differ only in the
 * ports they pass.
 */
import { SparkplugHost } from '../core/sparkplug/host/host.js';
import type { SparkplugStateStore } from '../core/sparkplug/host/state.js';
import {
  assembleIngest,
  type IngestFunction,
  type IngestHooks,
  type IngestPorts,
  type IngestSettings,
  ingestEnricher,
} from '../shared/ingest-function.js';

export interface SparkplugIngestPorts extends IngestPorts {
  /** Edge-node and device state (DynamoDB in AWS and locally, in memory in benchmarks). */
  sparkplugState: SparkplugStateStore;
}

export function composeSparkplugIngest(
  ports: SparkplugIngestPorts,
  settings: IngestSettings = {},
  hooks: IngestHooks = {},
): IngestFunction {
  const host = new SparkplugHost({
    store: ports.sparkplugState,
    clock: ports.clock,
    ...(settings.rebirthThrottleMs !== undefined ? { rebirthThrottleMs: settings.rebirthThrottleMs } : {}),
    ...(settings.reorderTimeoutMs !== undefined ? { reorderTimeoutMs: settings.reorderTimeoutMs } : {}),
    writeBack: {},
  });
  const enricher = ingestEnricher(ports, settings);
  return assembleIngest(
    'sparkplug',
    { processor: host, enricher, events: ports.events },
    ports,
    settings,
    hooks,
  );
}
