/**
 * The AWS capacity plan (issue #20, docs/benchmarks.md "Capacity plan"): for a fleet shape, what the
 * pipeline needs per second — IoT publishes and connects, Kinesis shards, Lambda concurrency, DynamoDB
 * write units — against the account and resource quotas that bind first, and the month's cost from the
 * cost model (infra/cost/model.ts: the same inputs, prices and measured per-reading figures; nothing
 * is priced here). `npm run bench -- capacity` prints the table; test/cli/capacity.test.ts checks the
 * doc's copy against it.
 */
import { pipeline } from '../pipeline.js';
import { type CostInputs, DEFAULT_INPUTS, DYNAMO_STORE_MEASURED, estimateCost } from './model.js';
import { PRICES } from './prices.js';

/**
 * Default quotas (per account and region unless said), with their source. The IoT Core and DynamoDB
 * figures are in the project brief's shared/reference/aws-facts.md (§1, and "DynamoDB limits that bite"); the Lambda
 * and Kinesis account quotas are AWS's documented defaults (Lambda quotas page: 1,000 concurrent
 * executions; Kinesis Data Streams quotas page: 500 shards per account in us-east-1, us-west-2 and
 * eu-west-1, 200 in other regions). All are adjustable through Service Quotas except the per-shard
 * and per-partition throughput.
 */
export const QUOTAS = {
  iotPublishesPerSecond: 20_000,
  iotConnectsPerSecond: 500,
  lambdaConcurrentExecutions: 1_000,
  kinesisShardsPerAccount: 500,
  dynamodbTableWruPerSecond: 40_000,
  dynamodbPartitionWruPerSecond: 1_000,
} as const;

export interface CapacityRow {
  devices: number;
  messagesPerSecond: number;
  readingsPerSecond: number;
  /** Kinesis shards per stream (the larger of the record and byte limits), and in all. */
  shardsPerStream: number;
  shards: number;
  /** The event-source mappings' ceiling (shards × parallelization factor) and the CPU-busy instances. */
  lambdaConcurrencyCeiling: number;
  lambdaBusy: number;
  /** DynamoDB write units per second: telemetry table (frames + latest), state table (protocol state). */
  telemetryWruPerSecond: number;
  stateWruPerSecond: number;
  /** Seconds to reconnect the whole fleet at the account's CONNECT rate. */
  reconnectSeconds: number;
  /**
   * The steady-state quotas reached first (share of each used; ties listed together), and every one
   * over 100 %. CONNECT is not among them: it bounds how fast a fleet (re)connects, see reconnectSeconds.
   */
  binding: { quotas: string[]; share: number };
  exceeded: string[];
  monthlyCost: number;
}

const QUOTA_LABELS: Record<keyof typeof QUOTAS, string> = {
  iotPublishesPerSecond: 'IoT Core publishes 20,000/s',
  iotConnectsPerSecond: 'IoT Core CONNECT 500/s',
  lambdaConcurrentExecutions: 'Lambda concurrency 1,000',
  kinesisShardsPerAccount: 'Kinesis shards 500/account',
  dynamodbTableWruPerSecond: 'DynamoDB 40,000 WRU/s per table',
  dynamodbPartitionWruPerSecond: 'DynamoDB 1,000 WRU/s per partition',
};

/** One fleet size of the plan (the other inputs are the cost model's defaults, overridable). */
export function capacityRow(devices: number, over: Partial<CostInputs> = {}): CapacityRow {
  const i: CostInputs = { ...DEFAULT_INPUTS, ...over, devices };
  const report = estimateCost(i);
  const messagesPerSecond = devices / i.intervalSeconds;
  const readingsPerSecond = messagesPerSecond * i.readingsPerMessage;
  // Each path has its own stream; the busier one sizes both (lwm2mShare 0.5 splits evenly).
  const perStream = messagesPerSecond * Math.max(i.lwm2mShare, 1 - i.lwm2mShare);
  const recordBytes = report.volumes.kinesisRecordBytes;
  const shardsPerStream = Math.max(
    1,
    Math.ceil(perStream / PRICES.kinesis.recordsPerShardSecond),
    Math.ceil((perStream * recordBytes) / PRICES.kinesis.bytesPerShardSecond),
  );
  const shards = shardsPerStream * i.streams;
  const pf = pipeline.functions.sparkplugIngest.eventSource.parallelizationFactor;
  const invocationsPerSecond = messagesPerSecond / i.recordsPerInvocation;
  const lambdaBusy =
    invocationsPerSecond * (i.msPerInvocation / 1000) + readingsPerSecond * (i.usPerReading / 1e6);
  const wruPerMessage = DYNAMO_STORE_MEASURED.wruPerMessage[50];
  const telemetryWruPerSecond = messagesPerSecond * wruPerMessage;
  const stateWruPerSecond =
    invocationsPerSecond * Math.min(devices, i.recordsPerInvocation) * i.stateWritesPerDevicePerBatch;
  // One device's items share a partition key: a device writes wruPerMessage per interval.
  const partitionWru = wruPerMessage / i.intervalSeconds;
  const use: Record<Exclude<keyof typeof QUOTAS, 'iotConnectsPerSecond'>, number> = {
    iotPublishesPerSecond: messagesPerSecond / QUOTAS.iotPublishesPerSecond,
    lambdaConcurrentExecutions: (shards * pf) / QUOTAS.lambdaConcurrentExecutions,
    kinesisShardsPerAccount: shards / QUOTAS.kinesisShardsPerAccount,
    dynamodbTableWruPerSecond:
      Math.max(telemetryWruPerSecond, stateWruPerSecond) / QUOTAS.dynamodbTableWruPerSecond,
    dynamodbPartitionWruPerSecond: partitionWru / QUOTAS.dynamodbPartitionWruPerSecond,
  };
  const ranked = (Object.entries(use) as Array<[keyof typeof use, number]>).sort((a, b) => b[1] - a[1]);
  const top = ranked[0]![1];
  return {
    devices,
    messagesPerSecond,
    readingsPerSecond,
    shardsPerStream,
    shards,
    lambdaConcurrencyCeiling: shards * pf,
    lambdaBusy,
    telemetryWruPerSecond,
    stateWruPerSecond,
    reconnectSeconds: devices / QUOTAS.iotConnectsPerSecond,
    binding: {
      quotas: ranked.filter(([, x]) => x >= top * (1 - 1e-9)).map(([k]) => QUOTA_LABELS[k]),
      share: top,
    },
    exceeded: ranked.filter(([, s]) => s > 1).map(([k]) => QUOTA_LABELS[k]),
    monthlyCost: report.monthlyTotal,
  };
}

export const PLAN_FLEETS = [10_000, 100_000, 1_000_000] as const;

const n = (x: number, digits = 0) =>
  x.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });

/** The plan as the Markdown table docs/benchmarks.md carries (1 message per 10 s, 50 readings). */
export function capacityTable(fleets: readonly number[] = PLAN_FLEETS): string {
  const rows = fleets.map((d) => capacityRow(d));
  const lines = [
    '| devices | messages/s | readings/s | Kinesis shards (per stream × 2) | Lambda concurrency: ESM ceiling / CPU-busy | DynamoDB WRU/s: telemetry / state | fleet reconnect at 500 CONNECT/s | binds first (share used) | over the default quota | cost per month |',
    '|---|---|---|---|---|---|---|---|---|---|',
    ...rows.map(
      (r) =>
        `| ${n(r.devices)} | ${n(r.messagesPerSecond)} | ${n(r.readingsPerSecond)} | ${n(r.shardsPerStream)} × 2 = ${n(r.shards)} | ${n(r.lambdaConcurrencyCeiling)} / ${n(r.lambdaBusy, 1)} | ${n(r.telemetryWruPerSecond)} / ${n(r.stateWruPerSecond)} | ${n(r.reconnectSeconds)} s | ${r.binding.quotas.join(' = ')} (${n(r.binding.share * 100)} %) | ${r.exceeded.length ? r.exceeded.join('; ') : 'none'} | $${n(r.monthlyCost)} |`,
    ),
  ];
  return `${lines.join('\n')}\n`;
}
