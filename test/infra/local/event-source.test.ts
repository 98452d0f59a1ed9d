import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GetRecordsCommand, type GetRecordsCommandOutput, PutRecordsCommand } from '@aws-sdk/client-kinesis';
import type { KinesisStreamEvent } from 'aws-lambda';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ensureStream, type LocalEmulators, startEmulators } from '../../../infra/local/emulators.js';
import {
  type EventSourceOptions,
  EventSourceRunner,
  type KinesisHandler,
  type OnFailureRecord,
} from '../../../infra/local/event-source.js';
import type { EventSourceDef } from '../../../infra/pipeline.js';

let emu: LocalEmulators;
let dir: string;
let n = 0;
const runners: EventSourceRunner[] = [];

beforeAll(async () => {
  emu = await startEmulators({ env: {} });
  dir = mkdtempSync(join(tmpdir(), 'dualpath-esm-'));
});
afterEach(async () => {
  for (const r of runners.splice(0)) await r.stop();
});
afterAll(async () => {
  await emu.stop();
  rmSync(dir, { recursive: true, force: true });
});

const settings = (over: Partial<EventSourceDef> = {}): EventSourceDef => ({
  batchSize: 10,
  maxBatchingWindowSeconds: 0,
  parallelizationFactor: 1,
  bisectBatchOnFunctionError: false,
  maxRetryAttempts: 2,
  maxRecordAgeSeconds: 3600,
  reportBatchItemFailures: true,
  startingPosition: 'TRIM_HORIZON',
  ...over,
});

async function newStream(): Promise<{ name: string; arn: string }> {
  const name = `esm-test-${++n}`;
  const info = await ensureStream(emu.kinesis, { name, shardCount: 1 });
  return { name, arn: info.arn };
}

/** Puts records "key:value" in order; returns nothing (the runner reads them back). */
async function put(stream: string, records: Array<[key: string, value: string]>): Promise<void> {
  for (let i = 0; i < records.length; i += 500) {
    const res = await emu.kinesis.send(
      new PutRecordsCommand({
        StreamName: stream,
        Records: records
          .slice(i, i + 500)
          .map(([k, v]) => ({ PartitionKey: k, Data: Buffer.from(JSON.stringify({ k, v })) })),
      }),
    );
    expect(res.FailedRecordCount ?? 0).toBe(0);
  }
}

const values = (event: KinesisStreamEvent) =>
  event.Records.map((r) => (JSON.parse(Buffer.from(r.kinesis.data, 'base64').toString()) as { v: string }).v);

function run(o: Partial<EventSourceOptions> & Pick<EventSourceOptions, 'streamName' | 'settings'>) {
  const runner = new EventSourceRunner({
    kinesis: emu.kinesis,
    functionName: 'test-fn',
    idleMs: 5,
    retryBaseMs: 1,
    ...o,
  } as EventSourceOptions);
  runners.push(runner);
  return runner;
}

async function until(cond: () => boolean, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 5));
  }
}

const seq = (n: number, key = 'k') =>
  Array.from({ length: n }, (_, i) => [key, String(i)] as [string, string]);

describe('event-source runner (against kinesalite)', () => {
  it('invokes with real-shaped Kinesis events, in batches of at most batchSize, in order', async () => {
    // Prepare
    const s = await newStream();
    await put(s.name, seq(25));
    const batches: KinesisStreamEvent[] = [];
    const runner = run({
      streamName: s.name,
      settings: settings(),
      handler: async (e) => void batches.push(e),
    });

    // Act
    await runner.start();
    await until(() => runner.counters.recordsDone === 25);

    // Assess
    expect(batches.every((b) => b.Records.length <= 10)).toBe(true);
    expect(batches.flatMap(values)).toEqual(seq(25).map(([, v]) => v));
    const r = batches[0]!.Records[0]!;
    expect(r).toMatchObject({
      eventSource: 'aws:kinesis',
      eventName: 'aws:kinesis:record',
      eventVersion: '1.0',
      eventSourceARN: s.arn,
      kinesis: { partitionKey: 'k', kinesisSchemaVersion: '1.0' },
    });
    expect(r.eventID).toBe(`shardId-000000000000:${r.kinesis.sequenceNumber}`);
    expect(Math.abs(r.kinesis.approximateArrivalTimestamp * 1000 - Date.now())).toBeLessThan(60_000);
    expect(runner.counters).toMatchObject({ recordsRead: 25, invocations: batches.length, inFlight: 0 });
  });

  it('gathers records for the batching window before invoking', async () => {
    const s = await newStream();
    await put(s.name, seq(3));
    const sizes: number[] = [];
    const runner = run({
      streamName: s.name,
      settings: settings({ batchSize: 100, maxBatchingWindowSeconds: 1 }),
      handler: async (e) => void sizes.push(e.Records.length),
    });
    await runner.start();
    await new Promise((r) => setTimeout(r, 200));
    await put(s.name, seq(2));
    await until(() => runner.counters.recordsDone === 5);
    expect(sizes).toEqual([5]);
  });

  it('reads the next records while a batch is still being processed (read-ahead)', async () => {
    // Prepare: 30 records, batches of 10; the first invocation blocks until released. A client wrapper
    // counts the records GetRecords returned, whether or not the runner has taken them yet.
    const s = await newStream();
    await put(s.name, seq(30));
    let fetched = 0;
    const kinesis = {
      send: async (command: Parameters<typeof emu.kinesis.send>[0]) => {
        const out = await emu.kinesis.send(command);
        if (command instanceof GetRecordsCommand)
          fetched += (out as GetRecordsCommandOutput).Records?.length ?? 0;
        return out;
      },
    } as unknown as typeof emu.kinesis;
    let release!: () => void;
    const blocked = new Promise<void>((r) => {
      release = r;
    });
    const seen: string[] = [];
    const runner = run({
      kinesis,
      streamName: s.name,
      settings: settings(),
      handler: async (e) => {
        if (seen.length === 0) await blocked;
        seen.push(...values(e));
      },
    });

    // Act
    await runner.start();
    try {
      await until(() => runner.counters.invocationsInFlight === 1);
      // While the first batch is held, the poller has already read the second one.
      await until(() => fetched === 20);
    } finally {
      release();
    }
    await until(() => runner.counters.recordsDone === 30);

    // Assess: nothing read twice, everything in order.
    expect(runner.counters.recordsRead).toBe(30);
    expect(seen).toEqual(seq(30).map(([, v]) => v));
  });

  it('redelivers from the lowest reported failure, including later successes', async () => {
    // Prepare
    const s = await newStream();
    await put(s.name, seq(5));
    const calls: string[][] = [];
    let failed = false;
    const handler: KinesisHandler = async (e) => {
      calls.push(values(e));
      if (failed) return { batchItemFailures: [] };
      failed = true;
      // Two failures reported: the lowest (value 2) decides.
      return {
        batchItemFailures: [
          { itemIdentifier: e.Records[3]!.kinesis.sequenceNumber },
          { itemIdentifier: e.Records[2]!.kinesis.sequenceNumber },
        ],
      };
    };
    const runner = run({ streamName: s.name, settings: settings(), handler });

    // Act
    await runner.start();
    await until(() => runner.counters.recordsDone === 5);

    // Assess
    expect(calls).toEqual([
      ['0', '1', '2', '3', '4'],
      ['2', '3', '4'],
    ]);
    expect(runner.counters).toMatchObject({ itemFailures: 2, retries: 1, dlqRecords: 0 });
  });

  it('treats an unknown item identifier as a failure of the whole batch', async () => {
    const s = await newStream();
    await put(s.name, seq(3));
    const calls: string[][] = [];
    const runner = run({
      streamName: s.name,
      settings: settings(),
      handler: async (e) => {
        calls.push(values(e));
        return calls.length === 1 ? { batchItemFailures: [{ itemIdentifier: 'nope' }] } : undefined;
      },
    });
    await runner.start();
    await until(() => runner.counters.recordsDone === 3);
    expect(calls).toEqual([
      ['0', '1', '2'],
      ['0', '1', '2'],
    ]);
  });

  it('bisects a failing batch down to the poison record, which alone uses up the retries and goes to the DLQ', async () => {
    // Prepare
    const s = await newStream();
    await put(s.name, seq(8));
    const ok: string[] = [];
    const calls: string[][] = [];
    const dlq: OnFailureRecord[] = [];
    const runner = run({
      streamName: s.name,
      settings: settings({ bisectBatchOnFunctionError: true, maxRetryAttempts: 2 }),
      handler: async (e) => {
        const v = values(e);
        calls.push(v);
        if (v.includes('5')) throw new Error('poison');
        ok.push(...v);
      },
      onFailure: (f) => void dlq.push(f),
    });

    // Act
    await runner.start();
    await until(() => runner.counters.recordsDone === 8);

    // Assess
    expect(ok.sort()).toEqual(['0', '1', '2', '3', '4', '6', '7']);
    expect(dlq).toHaveLength(1);
    expect(dlq[0]!.records.map((r) => r.kinesis.sequenceNumber)).toEqual([
      dlq[0]!.KinesisBatchInfo.startSequenceNumber,
    ]);
    expect(dlq[0]).toMatchObject({
      requestContext: { condition: 'RetryAttemptsExhausted', approximateInvokeCount: 3 },
      responseContext: { functionError: 'Unhandled' },
      KinesisBatchInfo: { shardId: 'shardId-000000000000', batchSize: 1, streamArn: s.arn },
    });
    // The poison record alone: 1 invocation + 2 retries; the halves did not use retries up.
    expect(calls.filter((c) => c.length === 1 && c[0] === '5')).toHaveLength(3);
    expect(runner.counters.bisections).toBeGreaterThanOrEqual(3);
    expect(runner.counters.retries).toBe(2);
  });

  it('without bisect, sends the failing rest of the batch to the DLQ after maxRetryAttempts and moves on', async () => {
    const s = await newStream();
    await put(s.name, seq(4));
    const dlq: OnFailureRecord[] = [];
    let calls = 0;
    const after: string[] = [];
    const runner = run({
      streamName: s.name,
      settings: settings({ batchSize: 4, maxRetryAttempts: 1 }),
      handler: async (e) => {
        if (values(e).includes('0')) {
          calls++;
          throw new Error('down');
        }
        after.push(...values(e));
      },
      onFailure: (f) => void dlq.push(f),
    });
    await runner.start();
    await until(() => runner.counters.recordsDone === 4);
    await put(s.name, [['k', 'next']]);
    await until(() => after.includes('next'));
    expect(calls).toBe(2);
    expect(dlq.map((d) => d.KinesisBatchInfo.batchSize)).toEqual([4]);
    expect(runner.counters).toMatchObject({ dlqBatches: 1, dlqRecords: 4, functionErrors: 2 });
  });

  it('sends records older than maxRecordAgeSeconds to the DLQ without invoking', async () => {
    const s = await newStream();
    await put(s.name, seq(3));
    const dlq: OnFailureRecord[] = [];
    let invoked = 0;
    const runner = run({
      streamName: s.name,
      settings: settings({ maxRecordAgeSeconds: 60 }),
      clock: () => Date.now() + 2 * 3600_000,
      handler: async () => void invoked++,
      onFailure: (f) => void dlq.push(f),
    });
    await runner.start();
    await until(() => runner.counters.recordsDone === 3);
    expect(invoked).toBe(0);
    expect(dlq.map((d) => [d.requestContext.condition, d.records.length])).toEqual([
      ['RecordAgeExceeded', 3],
    ]);
  });

  it('keeps per-key order with a parallelization factor > 1 and runs lanes on separate handler instances', async () => {
    // Prepare
    const s = await newStream();
    const keys = ['node-a', 'node-b', 'node-c', 'node-d', 'node-e', 'node-f'];
    const input: Array<[string, string]> = [];
    for (let i = 0; i < 40; i++) for (const k of keys) input.push([k, String(i)]);
    await put(s.name, input);
    const seen = new Map<string, number[]>();
    const laneOfKey = new Map<string, number>();
    let concurrent = 0;
    let maxConcurrent = 0;
    const handlers = [0, 1, 2].map(
      (lane): KinesisHandler =>
        async (e) => {
          concurrent++;
          maxConcurrent = Math.max(maxConcurrent, concurrent);
          await new Promise((r) => setTimeout(r, 2));
          for (const r of e.Records) {
            const { k, v } = JSON.parse(Buffer.from(r.kinesis.data, 'base64').toString()) as {
              k: string;
              v: string;
            };
            seen.set(k, [...(seen.get(k) ?? []), Number(v)]);
            expect(laneOfKey.get(k) ?? lane).toBe(lane);
            laneOfKey.set(k, lane);
          }
          concurrent--;
        },
    );
    const runner = run({
      streamName: s.name,
      settings: settings({ batchSize: 50, parallelizationFactor: 3 }),
      handlers,
    });

    // Act
    await runner.start();
    await until(() => runner.counters.recordsDone === input.length);

    // Assess: every key complete and in order, more than one lane used, lanes ran at the same time.
    for (const k of keys) expect(seen.get(k)).toEqual(Array.from({ length: 40 }, (_, i) => i));
    expect(new Set(laneOfKey.values()).size).toBeGreaterThan(1);
    expect(maxConcurrent).toBeGreaterThan(1);
  });

  it('resumes from its checkpoint after a stop: nothing lost, nothing completed delivered again', async () => {
    // Prepare
    const s = await newStream();
    const checkpointFile = join(dir, `${s.name}.json`);
    await put(s.name, seq(60));
    const first: string[] = [];
    const r1 = run({
      streamName: s.name,
      settings: settings(),
      checkpointFile,
      handler: async (e) => {
        await new Promise((r) => setTimeout(r, 10));
        first.push(...values(e));
      },
    });
    await r1.start();
    await until(() => first.length >= 20);

    // Act: stop mid-stream, add more, start again from the checkpoint file.
    await r1.stop();
    await put(s.name, [['k', 'late']]);
    const second: string[] = [];
    const r2 = run({
      streamName: s.name,
      settings: settings(),
      checkpointFile,
      handler: async (e) => void second.push(...values(e)),
    });
    await r2.start();
    await until(() => second.includes('late'));

    // Assess
    expect(first.length).toBeLessThan(60);
    expect([...first, ...second]).toEqual([...seq(60).map(([, v]) => v), 'late']);
  });

  it('ignores checkpoints of another stream incarnation and starts from the starting position', async () => {
    const s = await newStream();
    const checkpointFile = join(dir, `${s.name}-stale.json`);
    writeFileSync(
      checkpointFile,
      JSON.stringify({
        version: 1,
        streamArn: s.arn,
        streamCreatedAt: 1,
        shards: { 'shardId-000000000000': '9'.repeat(56) },
      }),
    );
    await put(s.name, seq(3));
    const notices: string[] = [];
    const got: string[] = [];
    const runner = run({
      streamName: s.name,
      settings: settings(),
      checkpointFile,
      onNotice: (m) => notices.push(m),
      handler: async (e) => void got.push(...values(e)),
    });
    await runner.start();
    await until(() => got.length === 3);
    expect(got).toEqual(['0', '1', '2']);
    expect(notices).toEqual([expect.stringContaining('another stream incarnation')]);
  });
});
