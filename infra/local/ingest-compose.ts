/**
 * One local ingest function instance, built by its composition root (functions/*-ingest/compose.ts)
 * from the local stack's adapters. The stack's main thread (in-process mode) and the ingest worker
 * threads (ADR 0026) both build their instances here, so the handler is the same object graph in
 * either place; only where the ports lead differs.
 */
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import {
  DynamoPendingRequestStore,
  DynamoRegistrationStore,
  DynamoSparkplugStateStore,
} from '../../functions/adapters/dynamo-state.js';
import type { EventLog } from '../../functions/core/events.js';
import type { PublisherPort, StorePort } from '../../functions/core/ingest.js';
import type { LivePublisher } from '../../functions/core/live.js';
import type { Clock } from '../../functions/core/processor.js';
import type { Protocol } from '../../functions/core/reading.js';
import type { RegistryPort } from '../../functions/core/registry.js';
import { composeLwm2mIngest } from '../../functions/lwm2m-ingest/compose.js';
import type {
  IngestFunction,
  IngestHooks,
  IngestRulesPorts,
  IngestSettings,
} from '../../functions/shared/ingest-function.js';
import { composeSparkplugIngest } from '../../functions/sparkplug-ingest/compose.js';

export interface LocalIngestPorts {
  registry: RegistryPort;
  events: EventLog;
  store: StorePort;
  publisher: PublisherPort;
  clock: Clock;
  /** A fresh set per instance (its own rule-state store), as a separate Lambda instance has. */
  rules: IngestRulesPorts;
  live: { publisher: LivePublisher; watching: (deviceId: string) => boolean };
  /** Where the protocol state lives (the state table). */
  state: { client: DynamoDBDocumentClient; tableName: string; clock: Clock };
}

/**
 * Builds one instance of a protocol's ingest function: fresh protocol-state stores, logger and metrics
 * (a separate Lambda instance's own; its processor's write-back cache over them is its own too).
 */
export function composeLocalIngest(
  protocol: Protocol,
  p: LocalIngestPorts,
  settings: IngestSettings,
  hooks: IngestHooks,
): IngestFunction {
  const common = {
    registry: p.registry,
    events: p.events,
    store: p.store,
    publisher: p.publisher,
    clock: p.clock,
    logger: new Logger({ serviceName: `${protocol}-ingest`, logLevel: 'ERROR' }),
    metrics: new Metrics({ namespace: 'Dualpath', serviceName: `${protocol}-ingest` }),
    rules: p.rules,
    live: p.live,
  };
  return protocol === 'sparkplug'
    ? composeSparkplugIngest(
        { ...common, sparkplugState: new DynamoSparkplugStateStore(p.state) },
        settings,
        hooks,
      )
    : composeLwm2mIngest(
        {
          ...common,
          registrations: new DynamoRegistrationStore(p.state),
          pending: new DynamoPendingRequestStore(p.state),
        },
        settings,
        hooks,
      );
}
