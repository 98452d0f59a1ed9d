/**
 * The cost model: turns a fleet shape (devices, interval, readings per message) and the pipeline's
 * efficiency counters (records per Lambda batch, Timestream records per call and measures per record,
 * handler time per reading — measured by `npm run bench -- e2e` / `-- ingest`) into AWS cost per million
 * readings and per month. Pure arithmetic over PRICES; every assumption is an input with a default.
 */
import { PRICES, type Prices } from './prices.js';

export interface CostInputs {
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
  /** Timestream multi-measure packing: measures per record, records per WriteRecords (≤100). */
  measuresPerRecord: number;
  recordsPerWrite: number;
  /** Registry cache TTL (s): cold lookups per device per TTL. */
  cacheTtlSeconds: number;
  /** Protocol-state writes per Lambda invocation per device present in the batch. */
  stateWritesPerDevicePerBatch: number;
  kinesisMode: 'on-demand' | 'provisioned';
  streams: number;
  memoryStoreHours: number;
  bytesPerStoredReading: number;
}

export const DEFAULT_INPUTS: CostInputs = {
  devices: 1000,
  intervalSeconds: 10,
  readingsPerMessage: 50,
  bytesPerReading: 18,
  messageOverheadBytes: 60,
  recordsPerInvocation: 100,
  msPerInvocation: 15,
  usPerReading: 2,
  lambdaMemoryMb: 512,
  measuresPerRecord: 1,
  recordsPerWrite: 100,
  cacheTtlSeconds: 60,
  stateWritesPerDevicePerBatch: 1,
  kinesisMode: 'on-demand',
  streams: 2,
  memoryStoreHours: 12,
  bytesPerStoredReading: 40,
};

export interface CostLine {
  service: string;
  item: string;
  monthly: number;
  perMillionReadings: number;
  variable: boolean;
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

export function estimateCost(partial: Partial<CostInputs>, prices: Prices = PRICES): CostReport {
  const i: CostInputs = { ...DEFAULT_INPUTS, ...partial };
  const messages = (i.devices * MONTH_SECONDS) / i.intervalSeconds;
  const readings = messages * i.readingsPerMessage;
  const messageBytes = i.messageOverheadBytes + i.bytesPerReading * i.readingsPerMessage;
  const unitsPerMessage = Math.max(1, Math.ceil(messageBytes / prices.iot.messageUnitBytes));
  // The rule base64-encodes the payload into a JSON envelope with topic, time and client id.
  const recordBytes = Math.ceil((messageBytes * 4) / 3) + 140;
  const lines: CostLine[] = [];
  const add = (service: string, item: string, monthly: number, variable = true) =>
    lines.push({ service, item, monthly, perMillionReadings: (monthly / readings) * 1e6, variable });

  add(
    'IoT Core',
    `messaging (${unitsPerMessage} × 5 KB unit per message)`,
    tiered(messages * unitsPerMessage, prices.iot.messagingTiers),
  );
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

  const tsRecords = readings / i.measuresPerRecord;
  const tsWrites = tsRecords / i.recordsPerWrite;
  const bytesPerRecord = 24 + i.measuresPerRecord * 28;
  const unitsPerWrite = Math.ceil((i.recordsPerWrite * bytesPerRecord + 120) / 1024);
  add(
    'Timestream',
    `writes (${i.recordsPerWrite} records/call, ${unitsPerWrite} KiB units/call)`,
    ((tsWrites * unitsPerWrite) / 1e6) * prices.timestream.writesPerMillionKiB,
  );
  const memoryGB =
    ((readings / (MONTH_SECONDS / 3600)) * i.memoryStoreHours * i.bytesPerStoredReading) / 1024 ** 3;
  add(
    'Timestream',
    `memory store (${i.memoryStoreHours} h retention)`,
    memoryGB * HOURS_PER_MONTH * prices.timestream.memoryStorePerGBHour,
  );

  const monthlyTotal = lines.reduce((s, l) => s + l.monthly, 0);
  const variable = lines.filter((l) => l.variable).reduce((s, l) => s + l.monthly, 0);
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
    monthlyTotal,
    perMillionReadings: (monthlyTotal / readings) * 1e6,
    perMillionReadingsVariable: (variable / readings) * 1e6,
  };
}
