/**
 * Ingest worker threads (ADR 0026): with `ingestWorkers`, the handlers run in worker threads — the
 * invocations are answered by threads other than the stack's main thread, every reading the devices
 * published is stored once, the live hub still sees the readings the handlers store and rule changes
 * reach the threads' engines — and stopping the stack leaves no thread running. With 0, the handlers
 * run on the main thread as before. (A thread dying mid-batch: test/reliability/faults.test.ts.)
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { threadId } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { TransientError } from '../../../functions/core/errors.js';
import { type LiveEvent, LiveHub } from '../../../functions/core/live.js';
import { fromWire, toWire } from '../../../infra/local/ingest-workers.js';
import { startLocalStack } from '../../../infra/local/stack.js';
import { startFleet } from '../../../simulator/fleet.js';

async function run(ingestWorkers: number) {
  const dir = mkdtempSync(join(tmpdir(), 'dualpath-workers-'));
  const stack = await startLocalStack({ dataDir: dir, mqttPort: 0, httpPort: 0, ingestWorkers });
  const seen: LiveEvent[] = [];
  const unsubscribe = stack.live.subscribe({ viewer: { kind: 'admin' } }, (e) => seen.push(e));
  try {
    const fleet = await startFleet({
      url: `mqtt://127.0.0.1:${stack.mqttPort}`,
      devices: 3,
      rate: 4,
      lwm2mRate: 2,
      readingsPerMessage: 5,
      sparkplugQos: 1,
      seed: 3,
    });
    expect(await fleet.ready(30_000)).toBe(true);
    await new Promise((r) => setTimeout(r, 1500));
    await fleet.stop();
    expect(await stack.drain(30_000)).toBe(true);
    const published = fleet.stats().readings;
    const status = stack.status();
    const rows = await stack.store.counts();
    const pool = stack.ingestWorkers;
    unsubscribe();
    await stack.stop();
    return { status, rows, published, seen, pool, after: pool?.status() };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('ingest worker threads', () => {
  it('runs every invocation in a worker thread, stores every reading once, feeds the live hub, stops its threads', async () => {
    const r = await run(2);
    const w = r.status.ingestWorkers!;
    expect(w.workers).toBe(2);
    expect(w.threadIds).toHaveLength(2);
    expect(w.threadIds).not.toContain(threadId);
    expect(w.crashes).toBe(0);
    // Every invocation the runners made was answered by one of the threads, and both were used.
    const answered = Object.entries(w.answeredByThread);
    expect(answered.reduce((n, [, c]) => n + c, 0)).toBe(r.status.invocations);
    expect(answered.length).toBeGreaterThan(0);
    for (const [id] of answered) expect(w.threadIds).toContain(Number(id));
    // The readings the devices published are all stored, once.
    const published = r.published.sparkplug + r.published.lwm2m;
    expect(published).toBeGreaterThan(50);
    expect(r.rows.readings).toBe(published);
    expect(r.rows.distinct).toBe(r.rows.readings);
    expect(r.status.readingsStored).toBe(published);
    expect(r.status.dlqRecords).toBe(0);
    // The threads' DynamoDB calls are counted with the stack's.
    expect(r.status.dynamoCalls.BatchGetItem ?? r.status.dynamoCalls.GetItem ?? 0).toBeGreaterThan(0);
    // Live: readings and lifecycle events published from the threads reach the main thread's hub.
    expect(r.seen.filter((e) => e.kind === 'reading').length).toBeGreaterThan(0);
    expect(r.seen.some((e) => e.kind === 'lifecycle')).toBe(true);
    // Stopped: no thread left.
    expect(r.after?.threadIds).toEqual([]);
    expect(r.pool?.hosts.every((h) => h.worker === undefined)).toBe(true);
  }, 90_000);

  it('runs the handlers on the main thread with 0 workers', async () => {
    const r = await run(0);
    expect(r.pool).toBeUndefined();
    expect(r.status.ingestWorkers).toBeUndefined();
    const published = r.published.sparkplug + r.published.lwm2m;
    expect(r.rows.readings).toBe(published);
    expect(r.seen.filter((e) => e.kind === 'reading').length).toBeGreaterThan(0);
  }, 90_000);
});

describe('errors across the thread boundary', () => {
  it('keep their class (a transient error stays retryable) and an SDK error its fault', () => {
    const t = fromWire(toWire(new TransientError('FAULT_STORE_THROTTLED', 'throttled', { field: 'store' })));
    expect(t).toBeInstanceOf(TransientError);
    expect((t as TransientError).code).toBe('FAULT_STORE_THROTTLED');
    expect((t as TransientError).field).toBe('store');
    const sdk = Object.assign(new Error('slow down'), {
      name: 'ProvisionedThroughputExceededException',
      $fault: 'client',
      $metadata: { httpStatusCode: 400 },
    });
    const back = fromWire(toWire(sdk)) as Error & { $fault: string; $metadata: { httpStatusCode: number } };
    expect(back.name).toBe('ProvisionedThroughputExceededException');
    expect(back.$fault).toBe('client');
    expect(back.$metadata.httpStatusCode).toBe(400);
  });
});

describe('who is watched, for the threads’ pre-check', () => {
  it('LiveHub reports subscriptions starting and ending', () => {
    const hub = new LiveHub();
    const seen: Array<{ fleet: boolean; devices: string[] }> = [];
    const stop = hub.onWatchersChange(() => seen.push(hub.watched()));
    const a = hub.subscribe({ viewer: { kind: 'admin' }, deviceId: 'dev-1' }, () => {});
    const b = hub.subscribe({ viewer: { kind: 'admin' } }, () => {});
    a();
    b();
    stop();
    hub.subscribe({ viewer: { kind: 'admin' } }, () => {});
    expect(seen).toEqual([
      { fleet: false, devices: ['dev-1'] },
      { fleet: true, devices: ['dev-1'] },
      { fleet: true, devices: [] },
      { fleet: false, devices: [] },
    ]);
  });
});
