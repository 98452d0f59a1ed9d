/** Builds an ingest Lambda handler for one protocol from the environment (once per cold start). */
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import type { Context, KinesisStreamBatchResponse, KinesisStreamEvent } from 'aws-lambda';
import { Enricher } from '../core/enrich.js';
import { Lwm2mServer } from '../core/lwm2m/server/server.js';
import type { Protocol } from '../core/reading.js';
import { SparkplugHost } from '../core/sparkplug/host/host.js';
import { CachedRegistrationStore, CachedSparkplugStateStore } from '../core/state-cache.js';
import {
  awsClients,
  iotPublisher,
  loadConfig,
  registryAndEvents,
  stateStores,
  telemetryStore,
} from './aws.js';
import { createIngestHandler, type KinesisHandler } from './ingest-handler.js';

export function awsIngestHandler(protocol: Protocol): KinesisHandler {
  let ready: Promise<KinesisHandler> | undefined;
  const build = async (): Promise<KinesisHandler> => {
    const config = loadConfig();
    const { doc } = awsClients();
    const { registry, events } = registryAndEvents(config, doc);
    const stores = stateStores(config, doc);
    // Protocol state is read and written once per key per batch (write-back, version-checked).
    const sparkplugState = new CachedSparkplugStateStore(stores.sparkplug);
    const registrations = new CachedRegistrationStore(stores.registrations);
    const processor =
      protocol === 'sparkplug'
        ? new SparkplugHost({
            store: sparkplugState,
            clock: Date.now,
            rebirthThrottleMs: config.REBIRTH_THROTTLE_MS,
            reorderTimeoutMs: config.REORDER_TIMEOUT_MS,
          })
        : new Lwm2mServer({ registrations, pending: stores.pending, clock: Date.now });
    return createIngestHandler({
      protocol,
      processor,
      stateCaches: protocol === 'sparkplug' ? [sparkplugState] : [registrations],
      enricher: new Enricher({
        registry,
        clock: Date.now,
        ttlMs: config.REGISTRY_CACHE_TTL_MS,
        autoRegister: { enabled: config.AUTO_REGISTER, defaultType: config.DEFAULT_DEVICE_TYPE },
      }),
      store: await telemetryStore(config, doc),
      publisher: iotPublisher(config),
      events,
      clock: Date.now,
      concurrency: config.INGEST_CONCURRENCY,
      logger: new Logger({ serviceName: `${protocol}-ingest` }),
      metrics: new Metrics({ namespace: 'Dualpath', serviceName: `${protocol}-ingest` }),
    });
  };
  return async (event: KinesisStreamEvent, context: Context): Promise<KinesisStreamBatchResponse> => {
    ready ??= build();
    return (await ready)(event, context);
  };
}
