/**
 * A local Kinesis event source mapping: one poller per shard invokes the real handler with real-shaped
 * Kinesis events, honouring the pipeline's settings the way the AWS ESM does:
 *
 * - batch size, the maximum batching window and the 6 MB invocation payload limit;
 * - parallelization factor: each batch is split into PF lanes by partition-key hash, lanes run
 *   concurrently (one handler instance per lane, like separate Lambda instances), so records of one key
 *   stay in order;
 * - ReportBatchItemFailures: redeliver from the lowest failed sequence number (an empty or unknown
 *   identifier fails the whole batch);
 * - bisect on function error: the failing batch is split in halves, which does not use up retries;
 * - bounded retries and record age: then the batch's metadata (plus, locally, its records) goes to the
 *   on-failure sink — the local DLQ — and the shard moves on;
 * - checkpoints persisted in a JSON file (atomic rename) and tied to the stream's incarnation, so a
 *   restart resumes after the last completed record: at-least-once, nothing lost, little repeated.
 */
import { randomUUID } from 'node:crypto';
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import {
  DescribeStreamSummaryCommand,
  GetShardIteratorCommand,
  type GetShardIteratorCommandInput,
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
import { type KinesisRecords, type ReadRecord, sdkRecords } from './kinesis-records.js';

// `void` as in aws-lambda's own Handler type: handlers that return nothing succeed.
export type KinesisHandler = (
  event: KinesisStreamEvent,
  context: Context,
) => // biome-ignore lint/suspicious/noConfusingVoidType: the aws-lambda handler contract
Promise<KinesisStreamBatchResponse | undefined | void>;

export interface EventSourceCounters {
  recordsRead: number;
  /** Records whose processing completed (succeeded or sent to the DLQ). */
  recordsDone: number;
  invocations: number;
  functionErrors: number;
  /** Items reported in batchItemFailures. */
  itemFailures: number;
  retries: number;
  bisections: number;
  dlqBatches: number;
  dlqRecords: number;
  /** Largest MillisBehindLatest of the last GetRecords of each shard. */
  millisBehind: number;
  /** Records read and not yet done (waiting in the batching window or being processed). */
  inFlight: number;
  /** Invocations running now. */
  invocationsInFlight: number;
  /** Wall time of all invocations (ms; concurrent lanes add up): where a batch's time goes. */
  invocationMs: number;
  /** Wall time the shard pollers waited for a GetRecords answer (ms, summed over shards). */
  readWaitMs: number;
}

/** What the AWS ESM sends to an on-failure destination for Kinesis, plus the records themselves. */
export interface OnFailureRecord {
  /** Human-readable. */
  reason: string;
  version: '1.0';
  timestamp: string;
  requestContext: {
    requestId: string;
    functionArn: string;
    condition: 'RetryAttemptsExhausted' | 'RecordAgeExceeded';
    approximateInvokeCount: number;
  };
  responseContext: { statusCode: number; executedVersion: string; functionError?: string };
  KinesisBatchInfo: {
    shardId: string;
    startSequenceNumber: string;
    endSequenceNumber: string;
    approximateArrivalOfFirstRecord: string;
    approximateArrivalOfLastRecord: string;
    batchSize: number;
    streamArn: string;
  };
  /** Local extra (the S3 destination in AWS keeps full records; SQS/SNS get the metadata only). */
  records: KinesisStreamRecord[];
}

export interface EventSourceOptions {
  kinesis: KinesisClient;
  /** The GetRecords path; default: through `kinesis` (the stack passes its wire client for kinesalite). */
  records?: KinesisRecords;
  streamName: string;
  functionName: string;
  settings: EventSourceDef;
  /**
   * One handler per concurrent lane (module state such as caches is never shared by two invocations
   * running at once). Lane i uses handlers[i % handlers.length].
   */
  handlers?: KinesisHandler[];
  /** Shorthand for `handlers: [handler]`. */
  handler?: KinesisHandler;
  /** Where checkpoints are kept (JSON). Without it, a restart starts from `startingPosition`. */
  checkpointFile?: string;
  onFailure?: (record: OnFailureRecord) => void | Promise<void>;
  onError?: (error: unknown) => void;
  /** Checkpoint discarded, iterator reset, ... */
  onNotice?: (message: string) => void;
  /** For record age and timestamps. Default Date.now. */
  clock?: () => number;
  /** Idle poll interval when a shard has nothing new (AWS polls about once a second). Default 50. */
  idleMs?: number;
  /** Retry backoff base (doubling, capped at 2 s). Default 50. */
  retryBaseMs?: number;
  /** Reported by context.getRemainingTimeInMillis(). Default 60. */
  timeoutSeconds?: number;
  memoryMb?: number;
}

/** The Lambda invocation payload limit (6 MB), counted over the base64 record data. */
const MAX_PAYLOAD_BYTES = 6 * 1024 * 1024 - 64 * 1024;

interface CheckpointFile {
  version: 1;
  streamArn: string;
  streamCreatedAt: number;
  shards: Record<string, string>;
}

class Abandoned extends Error {}

function hash(s: string): number {
  let h = 2166136261;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619);
  return h >>> 0;
}

/** Index of the lane (0..pf-1) a partition key belongs to. */
export function laneOf(partitionKey: string, pf: number): number {
  return hash(partitionKey) % Math.max(1, pf);
}

interface Item {
  record: KinesisStreamRecord;
  done: boolean;
}

export class EventSourceRunner {
  readonly counters: EventSourceCounters = {
    recordsRead: 0,
    recordsDone: 0,
    invocations: 0,
    functionErrors: 0,
    itemFailures: 0,
    retries: 0,
    bisections: 0,
    dlqBatches: 0,
    dlqRecords: 0,
    millisBehind: 0,
    inFlight: 0,
    invocationsInFlight: 0,
    invocationMs: 0,
    readWaitMs: 0,
  };
  private stopping = false;
  /** Wakers of the sleeps in progress (stop() ends them early); a sleep removes its own when it ends. */
  private wake = new Set<() => void>();
  private loops: Promise<void>[] = [];
  private checkpoints: Record<string, string> = {};
  private behind = new Map<string, number>();
  private streamArn = '';
  private streamCreatedAt = 0;
  private readonly handlers: KinesisHandler[];
  private readonly clock: () => number;
  private readonly records: KinesisRecords;

  constructor(private readonly o: EventSourceOptions) {
    this.records = o.records ?? sdkRecords(o.kinesis);
    this.handlers = o.handlers ?? (o.handler ? [o.handler] : []);
    if (this.handlers.length === 0) throw new Error('EventSourceRunner needs a handler');
    this.clock = o.clock ?? Date.now;
  }

  /** Finds the shards, restores the checkpoints of this stream incarnation and starts polling. */
  async start(): Promise<void> {
    const summary = await this.o.kinesis.send(
      new DescribeStreamSummaryCommand({ StreamName: this.o.streamName }),
    );
    this.streamArn =
      summary.StreamDescriptionSummary?.StreamARN ??
      `arn:aws:kinesis:us-east-1:000000000000:stream/${this.o.streamName}`;
    this.streamCreatedAt = summary.StreamDescriptionSummary?.StreamCreationTimestamp?.getTime() ?? 0;
    this.checkpoints = this.loadCheckpoints();
    const shards = await this.o.kinesis.send(new ListShardsCommand({ StreamName: this.o.streamName }));
    for (const shard of shards.Shards ?? []) this.loops.push(this.pollShard(shard.ShardId!));
  }

  /** Finishes the invocations in flight, checkpoints what completed, stops. */
  async stop(): Promise<void> {
    this.stopping = true;
    for (const w of [...this.wake]) w();
    await Promise.all(this.loops);
  }

  /** The last completed sequence number per shard. */
  checkpoint(): Readonly<Record<string, string>> {
    return { ...this.checkpoints };
  }

  private loadCheckpoints(): Record<string, string> {
    if (!this.o.checkpointFile) return {};
    let raw: string;
    try {
      raw = readFileSync(this.o.checkpointFile, 'utf8');
    } catch {
      return {};
    }
    try {
      const f = JSON.parse(raw) as Partial<CheckpointFile>;
      if (
        f.version === 1 &&
        f.streamArn === this.streamArn &&
        f.streamCreatedAt === this.streamCreatedAt &&
        f.shards
      )
        return f.shards;
      this.o.onNotice?.(
        `${this.o.streamName}: checkpoints belong to another stream incarnation; starting over`,
      );
    } catch {
      this.o.onNotice?.(`${this.o.streamName}: unreadable checkpoint file; starting over`);
    }
    return {};
  }

  private saveCheckpoint(shardId: string, seq: string): void {
    this.checkpoints[shardId] = seq;
    const file = this.o.checkpointFile;
    if (!file) return;
    const body: CheckpointFile = {
      version: 1,
      streamArn: this.streamArn,
      streamCreatedAt: this.streamCreatedAt,
      shards: this.checkpoints,
    };
    const tmp = `${file}.tmp`;
    writeFileSync(tmp, JSON.stringify(body));
    renameSync(tmp, file);
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(done, ms);
      const wake = this.wake;
      function done() {
        clearTimeout(t);
        wake.delete(done);
        resolve();
      }
      wake.add(done);
    });
  }

  private async iterator(shardId: string): Promise<string> {
    const after = this.checkpoints[shardId];
    const get = (input: Pick<GetShardIteratorCommandInput, 'ShardIteratorType' | 'StartingSequenceNumber'>) =>
      this.o.kinesis.send(
        new GetShardIteratorCommand({ StreamName: this.o.streamName, ShardId: shardId, ...input }),
      );
    if (after) {
      try {
        const out = await get({ ShardIteratorType: 'AFTER_SEQUENCE_NUMBER', StartingSequenceNumber: after });
        return out.ShardIterator!;
      } catch (error) {
        if ((error as Error).name !== 'InvalidArgumentException') throw error;
        this.o.onNotice?.(`${shardId}: checkpoint ${after} is not in the stream; starting over`);
        delete this.checkpoints[shardId];
      }
    }
    return (await get({ ShardIteratorType: this.o.settings.startingPosition })).ShardIterator!;
  }

  private getRecords(iterator: string, limit: number) {
    const p = this.records.getRecords(iterator, Math.min(10_000, Math.max(1, limit)));
    p.catch(() => undefined); // a read-ahead may fail while nobody awaits it yet; the loop sees it later
    return p;
  }

  private async pollShard(shardId: string): Promise<void> {
    const s = this.o.settings;
    const windowMs = s.maxBatchingWindowSeconds * 1000;
    let iterator: string | undefined;
    /** The next GetRecords, started while the previous batch was being processed (read-ahead). */
    let ahead: ReturnType<EventSourceRunner['getRecords']> | undefined;
    let buffer: ReadRecord[] = [];
    let bytes = 0;
    let windowStart = 0;
    let closed = false;
    const drop = () => {
      this.counters.inFlight -= buffer.length;
      buffer = [];
      bytes = 0;
      ahead = undefined;
    };
    while (!this.stopping || buffer.length > 0) {
      try {
        if (!this.stopping && !closed && (ahead || buffer.length < s.batchSize)) {
          iterator ??= await this.iterator(shardId);
          const waitFrom = performance.now();
          const out = await (ahead ?? this.getRecords(iterator, s.batchSize - buffer.length));
          this.counters.readWaitMs += performance.now() - waitFrom;
          ahead = undefined;
          iterator = out.nextShardIterator;
          if (!iterator) closed = true; // shard closed (resharding): finish what was read
          this.behind.set(shardId, out.millisBehindLatest);
          this.counters.millisBehind = Math.max(...this.behind.values());
          const records = out.records;
          if (buffer.length === 0 && records.length > 0) windowStart = this.clock();
          for (const r of records) {
            buffer.push(r);
            bytes += r.data.length;
          }
          this.counters.recordsRead += records.length;
          this.counters.inFlight += records.length;
        }
        const full = buffer.length >= s.batchSize || bytes >= MAX_PAYLOAD_BYTES;
        const windowOver = buffer.length > 0 && this.clock() - windowStart >= windowMs;
        if (buffer.length > 0 && (full || windowOver || this.stopping || closed)) {
          const batch = this.takeBatch(buffer);
          buffer = buffer.slice(batch.length);
          bytes = buffer.reduce((n, r) => n + r.data.length, 0);
          if (buffer.length > 0) windowStart = this.clock();
          // Read ahead, as the AWS poller does: the next records arrive while this batch is processed
          // (the wait for Kinesis overlaps the handler and the store instead of adding to them).
          if (!this.stopping && !closed && iterator && buffer.length < s.batchSize)
            ahead = this.getRecords(iterator, s.batchSize - buffer.length);
          await this.processBatch(shardId, batch);
        } else if (closed && buffer.length === 0) {
          return;
        } else if (!full) {
          // Nothing to invoke yet: wait for more records or for the window to end.
          const left = buffer.length > 0 ? Math.max(1, windowMs - (this.clock() - windowStart)) : Infinity;
          await this.sleep(Math.min(this.o.idleMs ?? 50, left));
        }
      } catch (error) {
        if (error instanceof Abandoned) {
          drop();
          return;
        }
        this.o.onError?.(error);
        // Re-read from the checkpoint: what was buffered (or read ahead) comes again.
        drop();
        iterator = undefined;
        await this.sleep(200);
      }
    }
  }

  private takeBatch(buffer: ReadRecord[]): ReadRecord[] {
    let n = 0;
    let bytes = 0;
    while (n < buffer.length && n < this.o.settings.batchSize) {
      const b = buffer[n]!.data.length;
      if (n > 0 && bytes + b > MAX_PAYLOAD_BYTES) break;
      bytes += b;
      n++;
    }
    return buffer.slice(0, n);
  }

  private toRecord(shardId: string, r: ReadRecord): KinesisStreamRecord {
    const region = this.streamArn.split(':')[3] || 'us-east-1';
    const account = this.streamArn.split(':')[4] || '000000000000';
    return {
      eventSource: 'aws:kinesis',
      eventVersion: '1.0',
      eventID: `${shardId}:${r.sequenceNumber}`,
      eventName: 'aws:kinesis:record',
      invokeIdentityArn: `arn:aws:iam::${account}:role/dualpath-local-${this.o.functionName}`,
      awsRegion: region,
      eventSourceARN: this.streamArn,
      kinesis: {
        kinesisSchemaVersion: '1.0',
        partitionKey: r.partitionKey,
        sequenceNumber: r.sequenceNumber,
        data: r.data,
        approximateArrivalTimestamp: r.arrivalSeconds ?? this.clock() / 1000,
      },
    };
  }

  private async processBatch(shardId: string, raw: ReadRecord[]): Promise<void> {
    const items: Item[] = raw.map((r) => ({ record: this.toRecord(shardId, r), done: false }));
    const pf = Math.max(1, this.o.settings.parallelizationFactor);
    const lanes = Array.from({ length: pf }, () => [] as Item[]);
    for (const item of items) lanes[laneOf(item.record.kinesis.partitionKey, pf)]!.push(item);
    const results = await Promise.allSettled(
      lanes.map((lane, i) =>
        lane.length > 0
          ? this.deliver(shardId, lane, 0, 0, this.handlers[i % this.handlers.length]!)
          : undefined,
      ),
    );
    // Checkpoint after the longest completed prefix: everything before it is done, in every lane.
    let prefix = 0;
    while (prefix < items.length && items[prefix]!.done) prefix++;
    if (prefix > 0) this.saveCheckpoint(shardId, items[prefix - 1]!.record.kinesis.sequenceNumber);
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
  }

  private complete(items: Item[]): void {
    for (const item of items) item.done = true;
    this.counters.recordsDone += items.length;
    this.counters.inFlight -= items.length;
  }

  /** Delivers items until they succeed or go to the on-failure sink. */
  private async deliver(
    shardId: string,
    items: Item[],
    attempt: number,
    invokes: number,
    handler: KinesisHandler,
  ): Promise<void> {
    const s = this.o.settings;
    // Records older than the maximum age are not delivered (a prefix: a shard is in arrival order).
    if (s.maxRecordAgeSeconds > 0) {
      const limit = this.clock() - s.maxRecordAgeSeconds * 1000;
      const expired = items.findIndex((i) => i.record.kinesis.approximateArrivalTimestamp * 1000 >= limit);
      const n = expired < 0 ? items.length : expired;
      if (n > 0) {
        await this.fail(shardId, items.slice(0, n), 'RecordAgeExceeded', invokes);
        items = items.slice(n);
        if (items.length === 0) return;
      }
    }
    this.counters.invocations++;
    this.counters.invocationsInFlight++;
    let failedFrom: number | undefined;
    let functionError: string | undefined;
    const invokedAt = performance.now();
    try {
      const event: KinesisStreamEvent = { Records: items.map((i) => i.record) };
      const res = await handler(event, this.context());
      const failures = (res && 'batchItemFailures' in res ? res.batchItemFailures : undefined) ?? [];
      if (s.reportBatchItemFailures && failures.length > 0) {
        this.counters.itemFailures += failures.length;
        const ids = new Set(failures.map((f) => f.itemIdentifier));
        const idx = items.findIndex((i) => ids.has(i.record.kinesis.sequenceNumber));
        // An empty or unknown identifier fails the whole batch, as in AWS.
        const unknown = failures.some(
          (f) =>
            !f.itemIdentifier || !items.some((i) => i.record.kinesis.sequenceNumber === f.itemIdentifier),
        );
        failedFrom = unknown || idx < 0 ? 0 : idx;
      }
    } catch (error) {
      this.counters.functionErrors++;
      functionError = error instanceof Error ? error.name : 'Unhandled';
      this.o.onError?.(error);
      failedFrom = 0;
    } finally {
      this.counters.invocationsInFlight--;
      this.counters.invocationMs += performance.now() - invokedAt;
    }
    invokes++;
    if (failedFrom === undefined) return this.complete(items);
    this.complete(items.slice(0, failedFrom));
    const rest = items.slice(failedFrom);
    if (functionError !== undefined && s.bisectBatchOnFunctionError && rest.length > 1) {
      // Halves do not use up retry attempts.
      this.counters.bisections++;
      const mid = Math.ceil(rest.length / 2);
      await this.deliver(shardId, rest.slice(0, mid), attempt, 0, handler);
      await this.deliver(shardId, rest.slice(mid), attempt, 0, handler);
      return;
    }
    if (s.maxRetryAttempts >= 0 && attempt >= s.maxRetryAttempts)
      return this.fail(shardId, rest, 'RetryAttemptsExhausted', invokes, functionError);
    // Stopping: leave the rest uncheckpointed; it is delivered again after the restart.
    if (this.stopping) throw new Abandoned();
    this.counters.retries++;
    await this.sleep(Math.min(2000, (this.o.retryBaseMs ?? 50) * 2 ** attempt));
    if (this.stopping) throw new Abandoned();
    await this.deliver(shardId, rest, attempt + 1, invokes, handler);
  }

  private async fail(
    shardId: string,
    items: Item[],
    condition: OnFailureRecord['requestContext']['condition'],
    invokes: number,
    functionError?: string,
  ): Promise<void> {
    const first = items[0]!.record.kinesis;
    const last = items.at(-1)!.record.kinesis;
    const iso = (seconds: number) => new Date(seconds * 1000).toISOString();
    const info: OnFailureRecord = {
      reason: condition === 'RecordAgeExceeded' ? 'record age exceeded' : 'retry attempts exhausted',
      version: '1.0',
      timestamp: new Date(this.clock()).toISOString(),
      requestContext: {
        requestId: randomUUID(),
        functionArn: this.functionArn(),
        condition,
        approximateInvokeCount: invokes,
      },
      responseContext: {
        statusCode: 200,
        executedVersion: '$LATEST',
        ...(functionError ? { functionError: 'Unhandled' } : {}),
      },
      KinesisBatchInfo: {
        shardId,
        startSequenceNumber: first.sequenceNumber,
        endSequenceNumber: last.sequenceNumber,
        approximateArrivalOfFirstRecord: iso(first.approximateArrivalTimestamp),
        approximateArrivalOfLastRecord: iso(last.approximateArrivalTimestamp),
        batchSize: items.length,
        streamArn: this.streamArn,
      },
      records: items.map((i) => i.record),
    };
    this.counters.dlqBatches++;
    this.counters.dlqRecords += items.length;
    try {
      await this.o.onFailure?.(info);
    } catch (error) {
      this.o.onError?.(error);
    }
    this.complete(items);
  }

  private functionArn(): string {
    const [, , , region = 'us-east-1', account = '000000000000'] = this.streamArn.split(':');
    return `arn:aws:lambda:${region}:${account}:function:${this.o.functionName}`;
  }

  private context(): Context {
    const deadline = this.clock() + (this.o.timeoutSeconds ?? 60) * 1000;
    const name = this.o.functionName;
    return {
      callbackWaitsForEmptyEventLoop: false,
      functionName: name,
      functionVersion: '$LATEST',
      invokedFunctionArn: this.functionArn(),
      memoryLimitInMB: String(this.o.memoryMb ?? 512),
      awsRequestId: randomUUID(),
      logGroupName: `/aws/lambda/${name}`,
      logStreamName: `local/[$LATEST]${randomUUID().replaceAll('-', '')}`,
      getRemainingTimeInMillis: () => Math.max(0, deadline - this.clock()),
      done: () => {},
      fail: () => {},
      succeed: () => {},
    };
  }
}
