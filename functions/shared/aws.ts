/**
 * The AWS adapters of every function, built once per cold start from the validated environment: the
 * DynamoDB registry, event log and protocol-state stores, the telemetry store chosen by
 * TELEMETRY_BACKEND and the IoT data-plane publisher (the config, DynamoDB client and admin key hash
 * every function shares are in aws-base.ts). Only adapters are constructed here; what each function is
 * made of is in its composition root.
 */
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { DynamoEventLog } from '../adapters/dynamo-events.js';
import { DynamoRegistry } from '../adapters/dynamo-registry.js';
import { DynamoAlertStore, DynamoRuleStateStore, DynamoRuleStore } from '../adapters/dynamo-rules.js';
import {
  DynamoPendingRequestStore,
  DynamoRegistrationStore,
  DynamoSparkplugStateStore,
} from '../adapters/dynamo-state.js';
import { DynamoTelemetryStore } from '../adapters/dynamo-telemetry-store.js';
import { IotDataPublisher, type IotPublishSdk } from '../adapters/publisher.js';
import type { IngestConfig } from '../core/config.js';
import { ValidationError } from '../core/errors.js';
import { type LivePublisher, liveAlertSink } from '../core/live.js';
import type { EnrichedReading } from '../core/reading.js';
import { type AlertSink, allSinks } from '../core/rules/delivery.js';
import type { RuleHistory } from '../core/rules/engine.js';
import { telemetryHistory } from '../core/rules/history.js';
import type { TelemetryStore, WriteResult } from '../core/telemetry.js';
import { dynamoDocumentClient } from './aws-base.js';
import { awsLivePublisher } from './aws-live.js';
import type { IngestPorts, IngestRulesPorts, IngestSettings } from './ingest-function.js';

export {
  adminKeyHash,
  adminKeyHashFromSecret,
  adminKeySecretArn,
  dynamoDocumentClient,
  loadConfig,
} from './aws-base.js';
export { awsLivePublisher } from './aws-live.js';
export { lazyHandler } from './lazy-handler.js';

/** The ingest tunables of the environment. */
export function ingestSettings(config: IngestConfig): IngestSettings {
  return {
    autoRegister: config.AUTO_REGISTER,
    defaultDeviceType: config.DEFAULT_DEVICE_TYPE,
    registryCacheTtlMs: config.REGISTRY_CACHE_TTL_MS,
    rebirthThrottleMs: config.REBIRTH_THROTTLE_MS,
    reorderTimeoutMs: config.REORDER_TIMEOUT_MS,
    concurrency: config.INGEST_CONCURRENCY,
    rulesTtlMs: config.RULES_CACHE_TTL_MS,
    rulesStateFlushMs: config.RULES_STATE_FLUSH_MS,
  };
}

/** The rule and alert documents (registry table): what the API serves at /rules and /alerts. */
export function awsRuleStores(config: IngestConfig, doc: DynamoDBDocumentClient) {
  return {
    rules: new DynamoRuleStore({ client: doc, tableName: config.REGISTRY_TABLE }),
    alerts: new DynamoAlertStore({ client: doc, tableName: config.REGISTRY_TABLE }),
  };
}

/**
 * Rules and alerts on the registry/state tables (ADR 0016), delivered to the stack's SNS topic / bus,
 * and pushed to live connections (ADR 0023) when a live publisher is given.
 */
export function awsRulesPorts(
  config: IngestConfig,
  doc: DynamoDBDocumentClient,
  live?: LivePublisher,
): IngestRulesPorts {
  const sink = alertSinks({ topicArn: config.ALERTS_TOPIC_ARN, eventBusName: config.ALERTS_EVENT_BUS });
  return {
    ...awsRuleStores(config, doc),
    state: new DynamoRuleStateStore({ client: doc, tableName: config.STATE_TABLE }),
    sink: live ? allSinks(sink, liveAlertSink(live)) : sink,
  };
}

/**
 * The SNS topic / EventBridge bus sinks, loaded on the first delivery (ADR 0025): their SDK clients
 * stay off the cold start of every function that has no alert to deliver. The settings are checked
 * now, as awsAlertSinks would.
 */
function alertSinks(env: { topicArn?: string; eventBusName?: string }): AlertSink {
  if (!env.topicArn && !env.eventBusName)
    throw new ValidationError('rules are on but neither ALERTS_TOPIC_ARN nor ALERTS_EVENT_BUS is set', {
      field: 'ALERTS_TOPIC_ARN',
    });
  let loaded: Promise<AlertSink> | undefined;
  return {
    async deliver(t) {
      loaded ??= import('../adapters/alert-sinks.js').then((m) => allSinks(...m.awsAlertSinks(env)));
      const sink = await loaded.catch((error: unknown) => {
        loaded = undefined; // a failed load is retried with the next delivery
        throw error;
      });
      return sink.deliver(t);
    },
  };
}

/** A telemetry store built on first use: its module (and SDK clients) load only then (ADR 0025). */
function lazyStore(build: () => Promise<TelemetryStore>): TelemetryStore {
  let store: Promise<TelemetryStore> | undefined;
  const get = () => {
    store ??= build().catch((error: unknown) => {
      store = undefined;
      throw error;
    });
    return store;
  };
  return {
    write: async (readings) => (await get()).write(readings),
    queryRaw: async (q) => (await get()).queryRaw(q),
    queryBuckets: async (q) => (await get()).queryBuckets(q),
    latest: async (q) => (await get()).latest(q),
    close: async () => {
      if (store) await (await store).close();
    },
  };
}

/**
 * The readings a rule state written behind has not seen (ADR 0016 amendment 10), for the ingest
 * functions and the rules clock alike (the clock replays an absence state before finding it due): the
 * DynamoDB store only (consistent reads). Timestream offers no read-after-write and `none` keeps
 * nothing, so there every changed rule state is written every batch.
 */
export function awsRuleHistory(config: IngestConfig, store: TelemetryStore): { history?: RuleHistory } {
  return config.TELEMETRY_BACKEND === 'dynamodb' ? { history: telemetryHistory(store, Date.now) } : {};
}

/** The DynamoDB-backed ports every function shares (one client per cold start). */
export function dynamoPorts(config: IngestConfig, doc: DynamoDBDocumentClient = dynamoDocumentClient()) {
  const state = { client: doc, tableName: config.STATE_TABLE };
  return {
    doc,
    registry: new DynamoRegistry({ client: doc, tableName: config.REGISTRY_TABLE }),
    events: new DynamoEventLog({ client: doc, tableName: config.EVENTS_TABLE }),
    sparkplugState: new DynamoSparkplugStateStore(state),
    registrations: new DynamoRegistrationStore(state),
    pending: new DynamoPendingRequestStore(state),
  };
}

/** Telemetry store per TELEMETRY_BACKEND: DynamoDB (default), Timestream, or none (readings counted, not kept). */
export function telemetryStore(config: IngestConfig, doc: DynamoDBDocumentClient): TelemetryStore {
  switch (config.TELEMETRY_BACKEND) {
    case 'dynamodb':
      if (!config.TELEMETRY_TABLE)
        throw new ValidationError('TELEMETRY_TABLE is required with TELEMETRY_BACKEND=dynamodb', {
          field: 'TELEMETRY_TABLE',
        });
      return new DynamoTelemetryStore({ client: doc, tableName: config.TELEMETRY_TABLE });
    case 'timestream':
      if (!config.TIMESTREAM_DATABASE || !config.TIMESTREAM_TABLE)
        throw new ValidationError(
          'TIMESTREAM_DATABASE and TIMESTREAM_TABLE are required with TELEMETRY_BACKEND=timestream',
          { field: config.TIMESTREAM_DATABASE ? 'TIMESTREAM_TABLE' : 'TIMESTREAM_DATABASE' },
        );
      return timestreamStore(config.TIMESTREAM_DATABASE, config.TIMESTREAM_TABLE, config);
    case 'none':
      return nullStore;
    default:
      throw new ValidationError(`TELEMETRY_BACKEND=${config.TELEMETRY_BACKEND} is not a telemetry store`, {
        field: 'TELEMETRY_BACKEND',
      });
  }
}

/** The Timestream store, loaded on first use: the default (DynamoDB) deployment never loads it. */
function timestreamStore(database: string, table: string, config: IngestConfig): TelemetryStore {
  return lazyStore(async () => {
    const [{ TimestreamTelemetryStore }, { TimestreamWriteClient }, { TimestreamQueryClient }] =
      await Promise.all([
        import('../adapters/timestream-store.js'),
        import('@aws-sdk/client-timestream-write'),
        import('@aws-sdk/client-timestream-query'),
      ]);
    return new TimestreamTelemetryStore({
      writeClient: new TimestreamWriteClient({}),
      queryClient: new TimestreamQueryClient({}),
      database,
      table,
      memoryStoreRetentionHours: config.TIMESTREAM_MEMORY_RETENTION_HOURS,
    });
  });
}

/** TELEMETRY_BACKEND=none: readings are counted as skipped, queries answer empty. */
const nullStore: TelemetryStore = {
  async write(readings: EnrichedReading[]): Promise<WriteResult> {
    return { written: 0, duplicates: 0, rejected: [], skipped: readings.length };
  },
  async queryRaw() {
    return { points: [] };
  },
  async queryBuckets() {
    return [];
  },
  async latest() {
    return [];
  },
  async close() {},
};

/**
 * Server → device messages through the IoT data plane (rebirth NCMD, LwM2M responses, commands). The
 * SDK client is loaded at the first publish unless `sdk` (the module, imported by the caller) is given.
 */
export function iotPublisher(config: IngestConfig, sdk?: IotPublishSdk): IotDataPublisher {
  return IotDataPublisher.forEndpoint(config.IOT_DATA_ENDPOINT, undefined, sdk);
}

/**
 * Everything an ingest function needs in AWS; `service` names its logs and metrics. `iotSdk`: the IoT
 * data-plane SDK, for a function whose typical request publishes (its client is then built now).
 */
export function awsIngestPorts(config: IngestConfig, service: string, iotSdk?: IotPublishSdk) {
  const dynamo = dynamoPorts(config);
  // Live updates (ADR 0023): stored readings, lifecycle events and alert transitions, when the stack
  // has the WebSocket API.
  const live = awsLivePublisher(config, dynamo.doc);
  const store = telemetryStore(config, dynamo.doc);
  return {
    ...dynamo,
    store,
    publisher: iotPublisher(config, iotSdk),
    ...(config.RULES_ENABLED
      ? {
          rules: { ...awsRulesPorts(config, dynamo.doc, live), ...awsRuleHistory(config, store) },
        }
      : {}),
    ...(live ? { live: { publisher: live, watching: (id: string) => live.watching(id) } } : {}),
    clock: Date.now,
    logger: new Logger({ serviceName: service }),
    metrics: new Metrics({ namespace: 'Dualpath', serviceName: service }),
  } satisfies IngestPorts & Record<string, unknown>;
}
