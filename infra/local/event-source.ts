/**
 * A local Kinesis event source mapping: polls each shard and invokes the real handler with real
 * Kinesis events, honouring the pipeline's settings like the AWS ESM does — batch size, batching
 * window, parallelization factor (lanes by partition key, order kept per key), ReportBatchItemFailures
 * (retry from the lowest failed sequence number), bisect on error (halves don't use up retries),
 * bounded retries and record age (then the batch goes to the on-failure sink, the local DLQ).
 * Checkpoints are persisted so a restart resumes where it stopped (at-least-once).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import {
  type _Record,
  GetRecordsCommand,
  GetShardIteratorCommand,
  type KinesisClient,
  ListShardsCommand,
} from '@aws-sdk/client-kinesis';
import type {
  Context,
  KinesisStreamBatchResponse,
  KinesisStreamEvent,
  KinesisStreamRecord,
} from 'aws-lambda';
import type { EventSourceDef } from '../pipeline.js';

export type KinesisHandler = (
  event: KinesisStreamEvent,
  context: Context,
) => Promise<KinesisStreamBatchResponse | undefined>;

export interface EventSourceCounters {
  recordsRead: number;
  invocations: number;
  functionErrors: number;
  itemFailures: number;
  retries: number;
  dlqRecords: number;
  /** Milliseconds behind the newest record, per shard (last poll). */
  millisBehind: number;
  inFlight: number;
}

export interface EventSourceOptions {
  kinesis: KinesisClient;
  streamName: string;
  functionName: string;
  settings: EventSourceDef;
  /**
   * One handler per concurrent lane (like separate Lambda instances: module state such as caches is
   * never shared by two invocations running at once). Lane i uses handlers[i % handlers.length].
   */
  handlers: KinesisHandler[];
  checkpointFile?: string;
  onFailure?: (info: { reason: string; records: KinesisStreamRecord[] }) => void;
  onError?: (error: unknown) => void;
  /** Idle poll interval when a shard has nothing new. */
  idleMs?: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function hash(s: string): number {
  let h = 2166136261;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619);
  return h >>> 0;
}

export class EventSourceRunner {
  readonly counters: EventSourceCounters = {
    recordsRead: 0,
    invocations: 0,
    functionErrors: 0,
    itemFailures: 0,
    retries: 0,
    dlqRecords: 0,
    millisBehind: 0,
    inFlight: 0,
  };
  private stopping = false;
  private loops: Promise<void>[] = [];
  private checkpoints: Record<string, string> = {};

  constructor(private readonly o: EventSourceOptions) {
    if (o.checkpointFile) {
      try {
        this.checkpoints = JSON.parse(readFileSync(o.checkpointFile, 'utf8')) as Record<string, string>;
      } catch {
        this.checkpoints = {};
      }
    }
  }

  async start(): Promise<void> {
    const shards = await this.o.kinesis.send(new ListShardsCommand({ StreamName: this.o.streamName }));
    for (const shard of shards.Shards ?? []) this.loops.push(this.pollShard(shard.ShardId!));
  }

  /** Finishes the batch in flight, checkpoints, stops. */
  async stop(): Promise<void> {
    this.stopping = true;
    await Promise.all(this.loops);
  }

  private saveCheckpoint(shardId: string, seq: string): void {
    this.checkpoints[shardId] = seq;
    if (this.o.checkpointFile) writeFileSync(this.o.checkpointFile, JSON.stringify(this.checkpoints));
  }

  private async iterator(shardId: string): Promise<string> {
    const after = this.checkpoints[shardId];
    const out = await this.o.kinesis.send(
      new GetShardIteratorCommand({
        StreamName: this.o.streamName,
        ShardId: shardId,
        ...(after
          ? { ShardIteratorType: 'AFTER_SEQUENCE_NUMBER', StartingSequenceNumber: after }
          : { ShardIteratorType: this.o.settings.startingPosition }),
      }),
    );
    return out.ShardIterator!;
  }

  private async pollShard(shardId: string): Promise<void> {
    const s = this.o.settings;
    let iterator: string | undefined;
    const buffer: _Record[] = [];
    let windowStart = Date.now();
    while (!this.stopping) {
      try {
        iterator ??= await this.iterator(shardId);
        const out = await this.o.kinesis.send(
          new GetRecordsCommand({ ShardIterator: iterator, Limit: Math.max(1, s.batchSize - buffer.length) }),
        );
        iterator = out.NextShardIterator;
        this.counters.millisBehind = out.MillisBehindLatest ?? 0;
        const records = out.Records ?? [];
        this.counters.recordsRead += records.length;
        if (buffer.length === 0 && records.length > 0) windowStart = Date.now();
        buffer.push(...records);
        const full = buffer.length >= s.batchSize;
        const windowOver = Date.now() - windowStart >= s.maxBatchingWindowSeconds * 1000;
        if (buffer.length > 0 && (full || windowOver || records.length === 0)) {
          const batch = buffer.splice(0, s.batchSize);
          await this.processBatch(shardId, batch);
          this.saveCheckpoint(shardId, batch.at(-1)!.SequenceNumber!);
        } else if (records.length === 0) {
          await sleep(this.o.idleMs ?? 50);
        }
      } catch (error) {
        this.o.onError?.(error);
        iterator = undefined;
        await sleep(200);
      }
    }
  }

  private toEvent(shardId: string, records: _Record[]): KinesisStreamRecord[] {
    return records.map((r) => ({
      eventSource: 'aws:kinesis',
      eventVersion: '1.0',
      eventID: `${shardId}:${r.SequenceNumber}`,
      eventName: 'aws:kinesis:record',
      invokeIdentityArn: 'arn:aws:iam::000000000000:role/local',
      awsRegion: 'local',
      eventSourceARN: `arn:aws:kinesis:local:000000000000:stream/${this.o.streamName}`,
      kinesis: {
        kinesisSchemaVersion: '1.0',
        partitionKey: r.PartitionKey!,
        sequenceNumber: r.SequenceNumber!,
        data: Buffer.from(r.Data!).toString('base64'),
        approximateArrivalTimestamp: (r.ApproximateArrivalTimestamp?.getTime() ?? Date.now()) / 1000,
      },
    }));
  }

  private async processBatch(shardId: string, raw: _Record[]): Promise<void> {
    const records = this.toEvent(shardId, raw);
    const pf = Math.max(1, this.o.settings.parallelizationFactor);
    const lanes = Array.from({ length: pf }, () => [] as KinesisStreamRecord[]);
    for (const r of records) lanes[hash(r.kinesis.partitionKey) % pf]!.push(r);
    await Promise.all(
      lanes.map((lane, i) =>
        lane.length > 0 ? this.deliver(lane, 0, this.o.handlers[i % this.o.handlers.length]!) : undefined,
      ),
    );
  }

  /** Delivers records until they succeed, or go to the on-failure sink. */
  private async deliver(
    records: KinesisStreamRecord[],
    attempt: number,
    handler: KinesisHandler,
  ): Promise<void> {
    const s = this.o.settings;
    const oldest = Math.min(...records.map((r) => r.kinesis.approximateArrivalTimestamp * 1000));
    if (s.maxRecordAgeSeconds > 0 && Date.now() - oldest > s.maxRecordAgeSeconds * 1000) {
      return this.fail(records, 'record age exceeded');
    }
    this.counters.invocations++;
    this.counters.inFlight++;
    let failedFrom: number | undefined;
    let threw = false;
    try {
      const res = await handler({ Records: records }, localContext(this.o.functionName));
      const failures = res?.batchItemFailures ?? [];
      if (failures.length > 0 && s.reportBatchItemFailures) {
        this.counters.itemFailures += failures.length;
        const ids = new Set(failures.map((f) => f.itemIdentifier));
        const idx = records.findIndex((r) => ids.has(r.kinesis.sequenceNumber));
        // An unknown or empty identifier fails the whole batch, as in AWS.
        failedFrom = idx < 0 ? 0 : idx;
      }
    } catch (error) {
      threw = true;
      this.counters.functionErrors++;
      this.o.onError?.(error);
      failedFrom = 0;
    } finally {
      this.counters.inFlight--;
    }
    if (failedFrom === undefined) return;
    const rest = records.slice(failedFrom);
    if (threw && s.bisectBatchOnFunctionError && rest.length > 1) {
      const mid = Math.ceil(rest.length / 2);
      await this.deliver(rest.slice(0, mid), attempt, handler);
      await this.deliver(rest.slice(mid), attempt, handler);
      return;
    }
    if (s.maxRetryAttempts >= 0 && attempt >= s.maxRetryAttempts)
      return this.fail(rest, 'retry attempts exhausted');
    this.counters.retries++;
    await sleep(Math.min(2000, 50 * 2 ** attempt));
    await this.deliver(rest, attempt + 1, handler);
  }

  private fail(records: KinesisStreamRecord[], reason: string): void {
    this.counters.dlqRecords += records.length;
    this.o.onFailure?.({ reason, records });
  }
}

function localContext(functionName: string): Context {
  return {
    callbackWaitsForEmptyEventLoop: false,
    functionName,
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:local:000000000000:function:${functionName}`,
    memoryLimitInMB: '512',
    awsRequestId: `local-${Date.now().toString(36)}-${Math.floor(performance.now() * 1000).toString(36)}`,
    logGroupName: `/aws/lambda/${functionName}`,
    logStreamName: 'local',
    getRemainingTimeInMillis: () => 60_000,
    done: () => {},
    fail: () => {},
    succeed: () => {},
  };
}
