/**
 * AWS wiring shared by the Lambda entry points: SDK clients and adapters built once per cold start
 * from the validated configuration. The local stack builds the same handlers with local adapters.
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { IoTDataPlaneClient, PublishCommand } from '@aws-sdk/client-iot-data-plane';
import { TimestreamQueryClient } from '@aws-sdk/client-timestream-query';
import { TimestreamWriteClient } from '@aws-sdk/client-timestream-write';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { mapAwsError } from '../adapters/dynamo-errors.js';
import { DynamoEventLog } from '../adapters/dynamo-events.js';
import { DynamoRegistry } from '../adapters/dynamo-registry.js';
import {
  DynamoPendingRequestStore,
  DynamoRegistrationStore,
  DynamoSparkplugStateStore,
} from '../adapters/dynamo-state.js';
import { TimestreamTelemetryStore } from '../adapters/timestream-store.js';
import { type IngestConfig, ingestConfigSpec, parseConfig } from '../core/config.js';
import { ValidationError } from '../core/errors.js';
import { Lwm2mServer } from '../core/lwm2m/server/server.js';
import type { EnrichedReading, PublishAction } from '../core/reading.js';
import type { TelemetryStore, WriteResult } from '../core/telemetry.js';

export function loadConfig(): IngestConfig {
  return parseConfig(ingestConfigSpec, process.env, { strictPrefix: 'DUALPATH_' });
}

export function awsClients() {
  const ddb = new DynamoDBClient({});
  return {
    ddb,
    doc: DynamoDBDocumentClient.from(ddb, {
      marshallOptions: { removeUndefinedValues: true, convertClassInstanceToMap: true },
    }),
  };
}

/** Telemetry store per TELEMETRY_BACKEND: Timestream, DynamoDB, or none (readings counted, not kept). */
export async function telemetryStore(
  config: IngestConfig,
  doc: DynamoDBDocumentClient,
): Promise<TelemetryStore> {
  if (config.TELEMETRY_BACKEND === 'timestream') {
    if (!config.TIMESTREAM_DATABASE || !config.TIMESTREAM_TABLE) {
      throw new ValidationError('TIMESTREAM_DATABASE and TIMESTREAM_TABLE are required', {
        field: 'TIMESTREAM_DATABASE',
      });
    }
    return new TimestreamTelemetryStore({
      writeClient: new TimestreamWriteClient({}),
      queryClient: new TimestreamQueryClient({}),
      database: config.TIMESTREAM_DATABASE,
      table: config.TIMESTREAM_TABLE,
    });
  }
  if (config.TELEMETRY_BACKEND === 'dynamodb') {
    if (!config.TELEMETRY_TABLE)
      throw new ValidationError('TELEMETRY_TABLE is required', { field: 'TELEMETRY_TABLE' });
    throw new ValidationError('TELEMETRY_BACKEND=dynamodb: adapter pending (see ADR 0011)', {
      field: 'TELEMETRY_BACKEND',
      cause: doc,
    });
  }
  return nullStore;
}

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

export function stateStores(config: IngestConfig, doc: DynamoDBDocumentClient) {
  const o = { client: doc, tableName: config.STATE_TABLE };
  return {
    sparkplug: new DynamoSparkplugStateStore(o),
    registrations: new DynamoRegistrationStore(o),
    pending: new DynamoPendingRequestStore(o),
  };
}

export function registryAndEvents(config: IngestConfig, doc: DynamoDBDocumentClient) {
  return {
    registry: new DynamoRegistry({ client: doc, tableName: config.REGISTRY_TABLE }),
    events: new DynamoEventLog({ client: doc, tableName: config.EVENTS_TABLE }),
  };
}

export function lwm2mServer(config: IngestConfig, doc: DynamoDBDocumentClient): Lwm2mServer {
  const s = stateStores(config, doc);
  return new Lwm2mServer({ registrations: s.registrations, pending: s.pending, clock: Date.now });
}

/** Publishes actions through the IoT data plane (rebirth NCMD, LwM2M responses, commands). */
export function iotPublisher(config: IngestConfig) {
  const client = new IoTDataPlaneClient(
    config.IOT_DATA_ENDPOINT ? { endpoint: `https://${config.IOT_DATA_ENDPOINT}` } : {},
  );
  return {
    async publish(actions: PublishAction[]): Promise<void> {
      await Promise.all(
        actions.map(async (a) => {
          try {
            await client.send(
              new PublishCommand({ topic: a.topic, qos: a.qos, retain: false, payload: a.payload }),
            );
          } catch (error) {
            throw mapAwsError(error, `iot.publish ${a.topic}`);
          }
        }),
      );
    },
  };
}
