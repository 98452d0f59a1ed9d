/**
 * The cost model: turns a fleet shape (devices, interval, readings per message) and the pipeline's
 * efficiency counters (records per Lambda batch, handler time per reading — measured by
 * `npm run bench -- e2e` / `-- ingest`; the telemetry store's requests and capacity per message —
 * measured by `npm run bench -- store --dynamodb`) into AWS cost per million readings and per month.
 * Pure arithmetic over PRICES; every assumption is an input with a default.
 *
 * Two figures come out: the **telemetry store** alone (the default is the packed DynamoDB store, ADR
 * 0013: writes, storage for the retention, the API's queries) and the **whole pipeline** (IoT Core,
 * Kinesis, Lambda, registry and state tables, the store). Usage-priced lines and fixed monthly lines
 * (stream-hours, alarms, dashboards, secrets, connectivity) are kept apart.
 */
import { ValidationError } from '../../functions/core/errors.js';
import { PRICES, type Prices } from './prices.js';
import { timestreamWriteShape } from './timestream-shape.js';

export type TelemetryStoreKind = 'dynamodb' | 'timestream';

/**
 * The packed DynamoDB store, MEASURED with `npm run bench -- store --dynamodb` (dynalite with
 * ReturnConsumedCapacity, which applies DynamoDB's capacity rules; 200 devices × 30 messages in write()
 * calls of 100 messages, at 1 and at 50 readings per message, Sparkplug-shaped readings: Float metrics
 * as float32 values, Double metrics with 17 significant digits; queries over 24 h of one device at one
 * 50-reading message per 10 s). Figures in docs/benchmarks.md and ADR 0013. Item sizes are DynamoDB's
 * (names + values), without the 100 B per-item storage overhead.
 */
export const DYNAMO_STORE_MEASURED = {
  command: 'npm run bench -- store --dynamodb',
  /** Steady-state write capacity per message: one frame PutItem + one latest PutItem, no reads. */
  wruPerMessage: { 1: 2, 50: 2 },
  rruPerMessage: { 1: 0, 50: 0 },
  requestsPerMessage: { 1: 2, 50: 2 },
  /** A redelivered message (all duplicates): failed conditional put + consistent GetItem of the frame. */
  redelivery: { 1: { wru: 1, rru: 1 }, 50: { wru: 1, rru: 1 } },
  frameBytes: { 1: 114, 50: 557 },
  latestBytes: { 1: 51, 50: 189 },
  /** Stored bytes per reading, all items (frames, catalogs, latest) with the 100 B overhead each. */
  storedBytesPerReading: { 1: 225.3, 50: 15.1 },
  /** Per query, 24 h of one device at one 50-reading message per 10 s (360 frames an hour). */
  query: {
    framesPerHour: 360,
    frameBytes: 557,
    /** API raw query, one hour (one metric or all): one Query over the hour's frames (eventual). */
    rawHourRru: 25,
    /** API bucket query, 24 h at 1 min, chunks built: 23 chunks + the open hour's frames. */
    bucketsWarmRru: 54,
    /** The same query the first time: reads 24 h of frames, writes 23 series hour chunks. */
    bucketsColdRru: 589,
    bucketsColdWru: 233,
    chunkHours: 23,
    /** latest: one Query of the device's catalog/latest items + one BatchGetItem of one frame. */
    latestRru: 1,
  },
} as const;

export interface CostInputs {
  /** The telemetry store: the packed DynamoDB store (default) or Timestream for LiveAnalytics. */
  store: TelemetryStoreKind;
  devices: number;
  /** Seconds between messages per device per path. */
  intervalSeconds: number;
  readingsPerMessage: number;
  /** Encoded bytes per reading inside a message (Sparkplug metric with alias ≈ 15-25 B; SenML CBOR record ≈ 15-20 B). */
  bytesPerReading: number;
  /** Topic + protobuf/CBOR envelope bytes per message. */
  messageOverheadBytes: number;
  /** Effective Lambda batch size (records per invocation). */
  recordsPerInvocation: number;
  /** Handler CPU time: fixed per invocation and per reading (from the ingest benchmark). */
  msPerInvocation: number;
  usPerReading: number;
  lambdaMemoryMb: number;
  /** Registry cache TTL (s): cold lookups per device per TTL. */
  cacheTtlSeconds: number;
  /** Protocol-state writes per Lambda invocation per device present in the batch. */
  stateWritesPerDevicePerBatch: number;
  kinesisMode: 'on-demand' | 'provisioned';
  streams: number;
  /** Timestream memory-store retention (hours); older readings sit in the magnetic store. */
  memoryStoreHours: number;
  /** Days readings are kept (DynamoDB TTL): storage is the readings of this many days. */
  retentionDays: number;
  /** The API's queries per device per day: bucket (24 h at 1 min), raw (1 h), latest. */
  bucketQueriesPerDevicePerDay: number;
  rawQueriesPerDevicePerDay: number;
  latestQueriesPerDevicePerDay: number;
  /** Series per device whose buckets are queried (each needs its hour chunks built once). */
  queriedSeriesPerDevice: number;
  /** Share of messages Kinesis delivers twice (a batch retried after a failure). */
  redeliveryRate: number;
  /** Deployed monitoring and secrets (infra/aws): standard alarms, dashboards, secrets. */
  alarms: number;
  dashboards: number;
  secrets: number;
  /** Custom metrics (EMF): every metric name × service dimension the ingest handlers can emit. */
  customMetrics: number;
  /** Share of messages on the LwM2M path (the rest Sparkplug). */
  lwm2mShare: number;
  /**
   * Share of LwM2M uplinks published by AWS IoT Basic Ingest (`$aws/rules/{rule}/...`, ADR 0024): they
   * go to the rule only, so they carry no messaging charge and are never echoed. 1 = all (the
   * simulator and the documented device setup); 0 = every device on the plain binding topic.
   */
  lwm2mBasicIngestShare: number;
  /**
   * Of the LwM2M uplinks on the binding topic (not Basic Ingest), the share the broker delivers back
   * to their sender: the binding has one topic per endpoint that the client both publishes and
   * subscribes to (shared/reference/lwm2m-1.2-mqtt.md), so each is also an outbound message unless the
   * broker honours MQTT 5 No Local, which we could not confirm for IoT Core (ADR 0020, 0024). 1 = all.
   */
  lwm2mEchoShare: number;
  /** API: Lambda time per request (router + store query), ms. */
  apiMsPerRequest: number;
  /** CloudWatch Logs: bytes per ingest invocation (platform lines + one EMF blob) and per API request (access log + EMF). */
  logBytesPerInvocation: number;
  logBytesPerApiRequest: number;
  logRetentionDays: number;
}

/**
 * Standard alarms infra/aws deploys (infra/aws/constructs/monitoring.ts, ADR 0020); the alarm test
 * (test/infra/aws/alarms.test.ts) checks this against the synthesized template. Per path (2): iterator
 * age, function errors, DLQ depth, rule action failures, rule throttled, quarantine rate, store rejects;
 * then the rule error queue, API 5XX, API p99 latency, store throttles; with Timestream, magnetic-store
 * rejections, rejection-report upload failures and the rejected readings the reports count.
 */
export function deployedAlarms(store: TelemetryStoreKind): number {
  // 7 per stream path; API 5XX and p99, rule error queue, store throttles, live-updates execution errors,
  // background function errors. With Timestream also ReadingsRejectedMagnetic, from the reports the
  // magnetic-rejects function reads (ADR 0024), and the two magnetic-store alarms.
  return 2 * 7 + 6 + (store === 'timestream' ? 3 : 0);
}

/** Custom metrics beyond the default store's: the magnetic-rejects function's 3 (ADR 0024) with Timestream. */
export function extraCustomMetrics(store: TelemetryStoreKind): number {
  return store === 'timestream' ? 3 : 0;
}

export const DEFAULT_INPUTS: CostInputs = {
  store: 'dynamodb',
  devices: 1000,
  intervalSeconds: 10,
  readingsPerMessage: 50,
  bytesPerReading: 18,
  messageOverheadBytes: 60,
  recordsPerInvocation: 100,
  msPerInvocation: 15,
  usPerReading: 2,
  lambdaMemoryMb: 512,
  cacheTtlSeconds: 60,
  stateWritesPerDevicePerBatch: 1,
  kinesisMode: 'on-demand',
  streams: 2,
  memoryStoreHours: 12,
  retentionDays: 30,
  bucketQueriesPerDevicePerDay: 24,
  rawQueriesPerDevicePerDay: 24,
  latestQueriesPerDevicePerDay: 288,
  queriedSeriesPerDevice: 1,
  redeliveryRate: 0.001,
  // infra/aws/constructs/monitoring.ts: deployedAlarms() and 1 dashboard per path (2 paths) + 1 detailed
  // dashboard; infra/aws/constructs/alerts.ts: the alerts dashboard; secrets: see below.
  alarms: deployedAlarms('dynamodb'),
  dashboards: 4,
  // The admin key, the onboarding claim key (ADR 0018) and the firmware URL key (ADR 0022).
  secrets: 3,
  // 13 names in functions/shared/ingest-handler.ts COUNTERS × 2 ingest services, plus at most
  // AlertsOpened/AlertsResolved × 5 severities × 2 ingest services (billed only in months they are
  // emitted: an upper bound). The alarm test checks both.
  customMetrics: 26 + 20,
  lwm2mShare: 0.5,
  lwm2mBasicIngestShare: 1,
  lwm2mEchoShare: 1,
  apiMsPerRequest: 30,
  // Assumed: START/END/REPORT ≈ 400 B + one EMF blob of ≤13 counters ≈ 1,100 B; API access log ≈ 500 B + EMF.
  logBytesPerInvocation: 1500,
  logBytesPerApiRequest: 900,
  // cdk.json logRetentionDays.
  logRetentionDays: 30,
};

export interface CostLine {
  service: string;
  item: string;
  monthly: number;
  perMillionReadings: number;
  /** Usage-priced (grows with readings); false for fixed monthly costs. */
  variable: boolean;
  /** Part of the telemetry store's cost (else the rest of the pipeline). */
  store: boolean;
}

export interface StoreCost {
  name: string;
  /** Usage-priced store cost per million readings: writes, storage for the retention, queries. */
  perMillionReadings: number;
  /** Fixed monthly store cost (0 for on-demand DynamoDB). */
  fixedMonthly: number;
  /** Everything, fixed costs spread over the month's readings. */
  perMillionReadingsAllIn: number;
}

export interface CostReport {
  inputs: CostInputs;
  volumes: {
    messagesPerMonth: number;
    readingsPerMonth: number;
    messageBytes: number;
    kinesisRecordBytes: number;
    lambdaInvocations: number;
    timestreamRecords: number;
    timestreamWrites: number;
  };
  lines: CostLine[];
  store: StoreCost;
  /** Whole pipeline fixed monthly costs (stream-hours, connectivity, alarms, dashboards, secrets...). */
  fixedMonthly: number;
  monthlyTotal: number;
  perMillionReadings: number;
  /** Per million readings counting only usage-priced items (no stream-hours, shards, memory store). */
  perMillionReadingsVariable: number;
}

const MONTH_SECONDS = 30 * 86_400;
const HOURS_PER_MONTH = 730;

function tiered(messages: number, tiers: Prices['iot']['messagingTiers']): number {
  let cost = 0;
  let remaining = messages;
  let floor = 0;
  for (const tier of tiers) {
    const inTier = Math.min(remaining, tier.upToMessages - floor);
    cost += (inTier / 1e6) * tier.perMillion;
    remaining -= inTier;
    floor = tier.upToMessages;
    if (remaining <= 0) break;
  }
  return cost;
}

/** Linear interpolation of a measured figure between 1 and 50 readings per message (held beyond). */
function atReadings(m: { 1: number; 50: number }, k: number): number {
  const x = Math.min(50, Math.max(1, k));
  return m[1] + ((m[50] - m[1]) * (x - 1)) / 49;
}

export function estimateCost(partial: Partial<CostInputs>, prices: Prices = PRICES): CostReport {
  const i: CostInputs = {
    ...DEFAULT_INPUTS,
    ...(partial.store
      ? {
          alarms: deployedAlarms(partial.store),
          customMetrics: DEFAULT_INPUTS.customMetrics + extraCustomMetrics(partial.store),
        }
      : {}),
    ...partial,
  };
  if (i.store !== 'dynamodb' && i.store !== 'timestream') {
    throw new ValidationError('store must be dynamodb or timestream', { field: 'store' });
  }
  const messages = (i.devices * MONTH_SECONDS) / i.intervalSeconds;
  const readings = messages * i.readingsPerMessage;
  const messageBytes = i.messageOverheadBytes + i.bytesPerReading * i.readingsPerMessage;
  const unitsPerMessage = Math.max(1, Math.ceil(messageBytes / prices.iot.messageUnitBytes));
  // The rule base64-encodes the payload into a JSON envelope with topic, time and client id.
  const recordBytes = Math.ceil((messageBytes * 4) / 3) + 140;
  const lines: CostLine[] = [];
  const add = (service: string, item: string, monthly: number, variable = true, store = false) =>
    lines.push({ service, item, monthly, perMillionReadings: (monthly / readings) * 1e6, variable, store });

  for (const [field, v] of [
    ['lwm2mShare', i.lwm2mShare],
    ['lwm2mBasicIngestShare', i.lwm2mBasicIngestShare],
    ['lwm2mEchoShare', i.lwm2mEchoShare],
  ] as const) {
    if (!(v >= 0 && v <= 1)) throw new ValidationError(`${field} must be between 0 and 1`, { field });
  }
  const uplinkUnits = messages * unitsPerMessage;
  const lwm2mUnits = uplinkUnits * i.lwm2mShare;
  // Basic Ingest uplinks skip the broker: no messaging charge, no echo (rules and actions still apply).
  const ingestUnits = lwm2mUnits * i.lwm2mBasicIngestShare;
  const brokerUnits = uplinkUnits - ingestUnits;
  const echoUnits = (lwm2mUnits - ingestUnits) * i.lwm2mEchoShare;
  const uplinkMessaging = tiered(brokerUnits, prices.iot.messagingTiers);
  add(
    'IoT Core',
    `messaging (${unitsPerMessage} × 5 KB unit per message${ingestUnits > 0 ? '; LwM2M by Basic Ingest: none' : ''})`,
    uplinkMessaging,
  );
  if (echoUnits > 0) {
    add(
      'IoT Core',
      `LwM2M echoes (${(i.lwm2mEchoShare * 100).toFixed(0)}% of binding-topic LwM2M uplinks delivered back to the sender)`,
      tiered(brokerUnits + echoUnits, prices.iot.messagingTiers) - uplinkMessaging,
    );
  }
  add(
    'IoT Core',
    'connectivity (always-on sessions)',
    ((i.devices * MONTH_SECONDS) / 60 / 1e6) * prices.iot.connectivityPerMillionMinutes,
    false,
  );
  add(
    'IoT Core',
    'rules triggered + Kinesis actions',
    ((messages * unitsPerMessage) / 1e6) *
      (prices.iot.rulesTriggeredPerMillion + prices.iot.actionsPerMillion),
  );

  const gbIn =
    (messages * Math.ceil(recordBytes / prices.kinesis.onDemandRecordRoundingBytes) * 1024) / 1024 ** 3;
  if (i.kinesisMode === 'on-demand') {
    add(
      'Kinesis',
      `on-demand stream-hours (${i.streams} streams)`,
      i.streams * HOURS_PER_MONTH * prices.kinesis.onDemandStreamHour,
      false,
    );
    add('Kinesis', 'on-demand ingest (1 KB rounding per record)', gbIn * prices.kinesis.onDemandIngestPerGB);
    add(
      'Kinesis',
      'on-demand retrieval',
      ((messages * recordBytes) / 1024 ** 3) * prices.kinesis.onDemandRetrievalPerGB,
    );
  } else {
    const recordsPerSecond = messages / MONTH_SECONDS / i.streams;
    const bytesPerSecond = (messages * recordBytes) / MONTH_SECONDS / i.streams;
    const shards = Math.max(
      1,
      Math.ceil(recordsPerSecond / prices.kinesis.recordsPerShardSecond),
      Math.ceil(bytesPerSecond / prices.kinesis.bytesPerShardSecond),
    );
    add(
      'Kinesis',
      `provisioned shard-hours (${shards} per stream)`,
      i.streams * shards * HOURS_PER_MONTH * prices.kinesis.provisionedShardHour,
      false,
    );
    add(
      'Kinesis',
      'PUT payload units',
      ((messages * Math.ceil(recordBytes / prices.kinesis.putUnitBytes)) / 1e6) *
        prices.kinesis.provisionedPutUnitsPerMillion,
    );
  }

  const invocations = messages / i.recordsPerInvocation;
  const seconds = invocations * (i.msPerInvocation / 1000) + readings * (i.usPerReading / 1e6);
  add('Lambda', 'requests', (invocations / 1e6) * prices.lambda.requestsPerMillion);
  add(
    'Lambda',
    `compute (arm64, ${i.lambdaMemoryMb} MB)`,
    seconds * (i.lambdaMemoryMb / 1024) * prices.lambda.armPerGBSecond,
  );

  const devicesPerBatch = Math.min(i.devices, i.recordsPerInvocation);
  const stateWrites = invocations * devicesPerBatch * i.stateWritesPerDevicePerBatch;
  // One eventually consistent read (0.5 RRU) per device per cache TTL.
  const registryReads = i.devices * (MONTH_SECONDS / i.cacheTtlSeconds) * 0.5;
  add(
    'DynamoDB',
    'protocol-state writes (one per device per batch)',
    (stateWrites / 1e6) * prices.dynamodb.onDemandWritePerMillion,
  );
  add(
    'DynamoDB',
    `registry reads (cached ${i.cacheTtlSeconds} s)`,
    (registryReads / 1e6) * prices.dynamodb.onDemandReadPerMillion,
  );

  let tsRecords = 0;
  let tsWrites = 0;
  if (i.store === 'timestream') {
    const shape = timestreamWriteShape(
      i.devices,
      i.recordsPerInvocation,
      i.readingsPerMessage,
      i.intervalSeconds,
    );
    tsRecords = readings;
    tsWrites = readings * shape.requestsPerReading;
    add(
      'Timestream',
      `writes (${(shape.unitsPerReading * 1000).toFixed(0)} KiB units per 1,000 readings, as sent)`,
      ((readings * shape.unitsPerReading) / 1e6) * prices.timestream.writesPerMillionKiB,
      true,
      true,
    );
    const perHour = readings / (MONTH_SECONDS / 3600);
    const memoryGB = (perHour * i.memoryStoreHours * shape.bytesPerRecord) / 1e9;
    add(
      'Timestream',
      `memory store (${i.memoryStoreHours} h at ${shape.bytesPerRecord.toFixed(0)} B/reading)`,
      memoryGB * HOURS_PER_MONTH * prices.timestream.memoryStorePerGBHour,
      true,
      true,
    );
    const magneticDays = Math.max(0, i.retentionDays - i.memoryStoreHours / 24);
    const magneticGB = (readings * (magneticDays / 30) * shape.bytesPerRecord) / 1e9;
    add(
      'Timestream',
      `magnetic store (${magneticDays.toFixed(1)} days)`,
      magneticGB * prices.timestream.magneticStorePerGBMonth,
      true,
      true,
    );
  } else {
    addDynamoStore(i, messages, readings, prices, add);
  }

  // The API: every query of the query mix is one API Gateway request and one Lambda invocation.
  const apiRequests =
    i.devices *
    (MONTH_SECONDS / 86_400) *
    (i.bucketQueriesPerDevicePerDay + i.rawQueriesPerDevicePerDay + i.latestQueriesPerDevicePerDay);
  add('API Gateway', 'REST requests (the query mix)', (apiRequests / 1e6) * prices.apiGateway.restPerMillion);
  add(
    'Lambda',
    `API requests + compute (${i.apiMsPerRequest} ms each)`,
    (apiRequests / 1e6) * prices.lambda.requestsPerMillion +
      apiRequests * (i.apiMsPerRequest / 1000) * (i.lambdaMemoryMb / 1024) * prices.lambda.armPerGBSecond,
  );
  const logGBPerMonth =
    (invocations * i.logBytesPerInvocation + apiRequests * i.logBytesPerApiRequest) / 1024 ** 3;
  add(
    'CloudWatch',
    'log ingestion (functions, API access log)',
    logGBPerMonth * prices.cloudwatch.logsIngestPerGB,
  );
  add(
    'CloudWatch',
    `log storage (${i.logRetentionDays} days kept)`,
    logGBPerMonth * Math.min(1, i.logRetentionDays / 30) * prices.cloudwatch.logsStoragePerGBMonth,
    false,
  );
  add(
    'CloudWatch',
    `custom metrics (${i.customMetrics}, EMF)`,
    i.customMetrics * prices.cloudwatch.customMetricPerMonth,
    false,
  );
  add('CloudWatch', `alarms (${i.alarms} standard)`, i.alarms * prices.cloudwatch.alarmPerMonth, false);
  add(
    'CloudWatch',
    `dashboards (${i.dashboards})`,
    i.dashboards * prices.cloudwatch.dashboardPerMonth,
    false,
  );
  add('Secrets Manager', `secrets (${i.secrets})`, i.secrets * prices.secretsManager.secretPerMonth, false);

  const monthlyTotal = lines.reduce((s, l) => s + l.monthly, 0);
  const variable = lines.filter((l) => l.variable).reduce((s, l) => s + l.monthly, 0);
  const storeLines = lines.filter((l) => l.store);
  const storeVariable = storeLines.filter((l) => l.variable).reduce((s, l) => s + l.monthly, 0);
  const storeFixed = storeLines.filter((l) => !l.variable).reduce((s, l) => s + l.monthly, 0);
  return {
    inputs: i,
    volumes: {
      messagesPerMonth: messages,
      readingsPerMonth: readings,
      messageBytes,
      kinesisRecordBytes: recordBytes,
      lambdaInvocations: invocations,
      timestreamRecords: tsRecords,
      timestreamWrites: tsWrites,
    },
    lines,
    store: {
      name: i.store === 'dynamodb' ? 'DynamoDB, packed (default)' : 'Timestream for LiveAnalytics',
      perMillionReadings: (storeVariable / readings) * 1e6,
      fixedMonthly: storeFixed,
      perMillionReadingsAllIn: ((storeVariable + storeFixed) / readings) * 1e6,
    },
    fixedMonthly: monthlyTotal - variable,
    monthlyTotal,
    perMillionReadings: (monthlyTotal / readings) * 1e6,
    perMillionReadingsVariable: (variable / readings) * 1e6,
  };
}

type AddLine = (service: string, item: string, monthly: number, variable?: boolean, store?: boolean) => void;

/**
 * The packed DynamoDB store from its measured capacity (DYNAMO_STORE_MEASURED) and DynamoDB's rules:
 * writes per message, redeliveries, storage of `retentionDays` of readings, and the API's queries
 * (scaled from the measured ones by the frames an hour and the frame size of this fleet shape).
 */
function addDynamoStore(
  i: CostInputs,
  messages: number,
  readings: number,
  prices: Prices,
  add: AddLine,
): void {
  const m = DYNAMO_STORE_MEASURED;
  const k = i.readingsPerMessage;
  const measured = k === 1 || k === 50;
  const frameBytes = atReadings(m.frameBytes, k);
  const wruPerMessage = measured
    ? m.wruPerMessage[k as 1 | 50]
    : Math.ceil(frameBytes / 1024) + Math.ceil(atReadings(m.latestBytes, k) / 1024);
  const wru = prices.dynamodb.onDemandWritePerMillion / 1e6;
  const rru = prices.dynamodb.onDemandReadPerMillion / 1e6;
  add(
    'DynamoDB',
    `telemetry writes (${wruPerMessage.toFixed(2)} WRU/message${measured ? ', measured' : ', interpolated'})`,
    messages * wruPerMessage * wru,
    true,
    true,
  );
  const redelivery = {
    wru: atReadings({ 1: m.redelivery[1].wru, 50: m.redelivery[50].wru }, k),
    rru: atReadings({ 1: m.redelivery[1].rru, 50: m.redelivery[50].rru }, k),
  };
  add(
    'DynamoDB',
    `telemetry redeliveries (${(i.redeliveryRate * 100).toFixed(1)}% of messages)`,
    messages * i.redeliveryRate * (redelivery.wru * wru + redelivery.rru * rru),
    true,
    true,
  );
  const storedGB = (readings * (i.retentionDays / 30) * atReadings(m.storedBytesPerReading, k)) / 1e9;
  add(
    'DynamoDB',
    `telemetry storage (${i.retentionDays} days, ${atReadings(m.storedBytesPerReading, k).toFixed(1)} B/reading)`,
    storedGB * prices.dynamodb.storagePerGBMonth,
    true,
    true,
  );
  // Queries: frame reads scale with frames an hour × frame size, chunk reads/writes with points an hour.
  const framesPerHour = 3600 / i.intervalSeconds;
  const frameScale = (framesPerHour * frameBytes) / (m.query.framesPerHour * m.query.frameBytes);
  const chunkScale = framesPerHour / m.query.framesPerHour;
  const chunkPartRru = m.query.bucketsWarmRru - m.query.rawHourRru;
  const perDeviceDay =
    i.rawQueriesPerDevicePerDay * Math.max(0.5, m.query.rawHourRru * frameScale) * rru +
    i.bucketQueriesPerDevicePerDay *
      Math.max(0.5, m.query.rawHourRru * frameScale + chunkPartRru * chunkScale) *
      rru +
    i.latestQueriesPerDevicePerDay * m.query.latestRru * rru +
    // Each queried series has its 24 hour chunks of a day built once (frames read, chunk written).
    i.queriedSeriesPerDevice *
      24 *
      (((m.query.bucketsColdRru - m.query.rawHourRru) / m.query.chunkHours) * frameScale * rru +
        (m.query.bucketsColdWru / m.query.chunkHours) * chunkScale * wru);
  add(
    'DynamoDB',
    `API queries (per device a day: ${i.bucketQueriesPerDevicePerDay} bucket, ${i.rawQueriesPerDevicePerDay} raw, ${i.latestQueriesPerDevicePerDay} latest)`,
    perDeviceDay * i.devices * (MONTH_SECONDS / 86_400),
    true,
    true,
  );
}
