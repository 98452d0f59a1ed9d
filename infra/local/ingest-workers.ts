/**
 * Ingest worker threads for the local stack (ADR 0026): the ingest function instances run in
 * `node:worker_threads`, so the main thread's broker, forwarder, API and event-source runner are never
 * starved by decoding, enrichment and state writes — the way Lambda runs each concurrent batch in an
 * instance of its own.
 *
 * - The event-source runner stays on the main thread with its exact semantics (batching, lanes,
 *   partial batch failures, bisection, checkpoints, the DLQ): it calls a handler like any other; that
 *   handler posts the Kinesis event to the thread hosting its instance and resolves with its answer.
 * - Each instance is built in its thread by the same composition root with the same settings
 *   (infra/local/ingest-compose.ts), on the thread's own DynamoDB clients (registry, protocol state,
 *   events, rules).
 * - What must stay single or shared lives on the main thread and is reached over the message port:
 *   the DuckDB writer (one file, one writer), the broker's publish, the alert sink (event log, webhooks,
 *   live hub) and the live hub; the instances' `watching` pre-check reads a copy of who is watched.
 *   Rule changes made through the API are posted to every thread.
 * - A thread that dies (a crash, `workerCrash` faults) fails the invocations it was running, so the
 *   runner redelivers them as it redelivers any failed invocation; the next invocation of its lanes
 *   starts a new thread with fresh instances (a new Lambda instance: cold caches).
 */
import { type EventLoopUtilization, performance } from 'node:perf_hooks';
import { Worker } from 'node:worker_threads';
import type { Context, KinesisStreamEvent } from 'aws-lambda';
import {
  ConflictError,
  DecodeError,
  NotFoundError,
  ProtocolError,
  TransientError,
  ValidationError,
} from '../../functions/core/errors.js';
import type { IngestStats, PublisherPort, StorePort } from '../../functions/core/ingest.js';
import type { LiveEvent, LiveHub } from '../../functions/core/live.js';
import type { EnrichedReading, Protocol } from '../../functions/core/reading.js';
import type { AlertSink } from '../../functions/core/rules/delivery.js';
import type { AlertTransition } from '../../functions/core/rules/model.js';
import type { IngestSettings } from '../../functions/shared/ingest-function.js';
import type { KinesisHandler } from '../../functions/shared/ingest-handler.js';
import type { TableKey } from '../pipeline.js';
import type { CallCounts } from './aws-clients.js';
import type { FaultInjector } from './faults.js';

/** What a thread is started with (workerData). */
export interface WorkerInit {
  dynamoEndpoint: string;
  /** The endpoint is the stack's own dynalite: wire calls, unsigned (dynamo-wire.ts). */
  dynamoEmbedded: boolean;
  tables: Record<TableKey, string>;
  settings: IngestSettings;
  /** DynamoDB faults are decided by the main thread's injector (one seeded sequence for all). */
  dynamoFaults: boolean;
}

/** An error as it crosses the thread boundary: its class is restored on the other side. */
export interface WireError {
  name: string;
  message: string;
  code?: string;
  field?: string;
  fault?: string;
  status?: number;
}

/** The context fields a handler can read, and its deadline (functions do not cross threads). */
export interface WireContext {
  functionName: string;
  functionVersion: string;
  invokedFunctionArn: string;
  memoryLimitInMB: string;
  awsRequestId: string;
  logGroupName: string;
  logStreamName: string;
  deadline: number;
}

/** What a thread observed since its last message: the stack's hooks and its DynamoDB calls. */
export interface WorkerReport {
  stored: number[];
  batches: IngestStats[];
  calls: CallCounts;
}

/** A store write's answer; rejected readings by their index in the written array. */
export interface WireWriteResult {
  written: number;
  duplicates: number;
  pending?: number;
  rejected: Array<{ index: number; reason: string; code: string }>;
}

export type ToWorker =
  | { t: 'create'; fid: number; protocol: Protocol }
  | { t: 'dispose'; fid: number }
  | {
      t: 'invoke';
      id: number;
      fid: number;
      event: KinesisStreamEvent;
      context: WireContext;
      /** Fault injection: process this many records, then the thread exits. */
      exitAfter?: number;
    }
  | { t: 'reply'; id: number; ok: true; value: unknown }
  | { t: 'reply'; id: number; ok: false; error: WireError }
  | { t: 'watch'; fleet: boolean; devices: string[] }
  | { t: 'invalidateRules' }
  | { t: 'stop' };

export type CallPort = 'store' | 'publish' | 'sink' | 'dynamoFault';

export type FromWorker =
  | { t: 'ready'; threadId: number }
  | { t: 'result'; id: number; ok: true; value: unknown; report: WorkerReport }
  | { t: 'result'; id: number; ok: false; error: WireError; report: WorkerReport }
  | { t: 'call'; id: number; port: CallPort; arg: unknown }
  | { t: 'live'; events: LiveEvent[] }
  | { t: 'stopped'; report: WorkerReport }
  /** Fault injection (workerCrash): terminate this thread now. */
  | { t: 'exiting'; report: WorkerReport };

export function toWire(error: unknown): WireError {
  if (!(error instanceof Error)) return { name: 'Error', message: String(error) };
  const e = error as Error & {
    code?: unknown;
    field?: unknown;
    $fault?: unknown;
    $metadata?: { httpStatusCode?: number };
  };
  return {
    name: e.name,
    message: e.message,
    ...(typeof e.code === 'string' ? { code: e.code } : {}),
    ...(typeof e.field === 'string' ? { field: e.field } : {}),
    ...(typeof e.$fault === 'string' ? { fault: e.$fault } : {}),
    ...(e.$metadata?.httpStatusCode !== undefined ? { status: e.$metadata.httpStatusCode } : {}),
  };
}

/** The error again, of its class (a TransientError stays retryable, an SDK error keeps its fault). */
export function fromWire(w: WireError): Error {
  const details = w.field === undefined ? {} : { field: w.field };
  const code = w.code ?? 'INTERNAL';
  switch (w.name) {
    case 'TransientError':
      return new TransientError(code, w.message, details);
    case 'DecodeError':
      return new DecodeError(code, w.message, details);
    case 'ProtocolError':
      return new ProtocolError(code, w.message, details);
    case 'ValidationError':
      return new ValidationError(w.message, { ...details, code });
    case 'ConflictError':
      return new ConflictError(w.message, details);
    case 'NotFoundError':
      return new NotFoundError(w.message, details);
  }
  const e = new Error(w.message);
  e.name = w.name;
  if (w.fault !== undefined || w.status !== undefined)
    Object.assign(e, { $fault: w.fault, $metadata: { httpStatusCode: w.status } });
  return e;
}

/** What the main thread serves the threads. */
export interface WorkerPoolPorts {
  /** The DuckDB writer (behind the fault injector in fault runs). */
  store: StorePort;
  publisher: PublisherPort;
  /** The alert sink every transition goes to (event log, webhooks, live hub). */
  sink: AlertSink;
  live: LiveHub;
  onStored: (latencyMs: number) => void;
  onBatch: (stats: IngestStats) => void;
  /** The stack's DynamoDB call counters: the threads' calls are added. */
  dynamoCalls: CallCounts;
  injector?: FaultInjector;
  log: (line: string) => void;
}

export interface IngestWorkerOptions {
  /** Threads (≥ 1). Function instances are spread over them in turn. */
  size: number;
  init: WorkerInit;
  ports: WorkerPoolPorts;
}

export interface IngestWorkerStatus {
  /** Threads configured. */
  workers: number;
  /** Threads running now, and their ids. */
  threadIds: number[];
  /** Threads started in all (more than `workers` after crashes). */
  started: number;
  /** Threads that exited while the pool was running (crashes). */
  crashes: number;
  /** Function instances hosted now. */
  instances: number;
  /** Invocations answered by a worker thread, by thread id (the handler ran there). */
  answeredByThread: Record<number, number>;
}

const BOOTSTRAP = new URL('./ingest-worker.mjs', import.meta.url);

interface Pending {
  resolve: (value: unknown) => void;
  reject: (error: Error) => void;
}

/** One thread and the function instances it hosts. */
class WorkerHost {
  worker: Worker | undefined;
  threadId = -1;
  private ready: Promise<void> | undefined;
  readonly fids = new Map<number, Protocol>();
  private readonly invocations = new Map<number, Pending>();
  private nextId = 1;
  private stopping = false;
  private stopped: Promise<void> | undefined;
  /** Utilisation of the threads this host ran before the current one (crashes), and the current one. */
  elu: EventLoopUtilization | undefined;

  constructor(
    private readonly pool: IngestWorkerPool,
    readonly index: number,
  ) {}

  /** The running thread, started (with its instances) if there is none. */
  ensure(): Promise<void> {
    if (this.worker && this.ready) return this.ready;
    const worker = new Worker(BOOTSTRAP, { workerData: this.pool.init });
    this.worker = worker;
    this.pool.started++;
    const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
    this.ready = new Promise<void>((resolve, reject) => {
      worker.once('error', reject);
      worker.on('message', (m: FromWorker) => {
        if (m.t === 'ready') {
          this.threadId = m.threadId;
          worker.off('error', reject);
          resolve();
        } else this.onMessage(worker, m);
      });
      worker.once('exit', (code) =>
        reject(new Error(`ingest worker exited with code ${code} while starting`)),
      );
    });
    this.ready.catch(() => undefined);
    worker.on('error', (error) => this.pool.ports.log(`ingest worker ${worker.threadId}: ${error.message}`));
    worker.once('exit', (code) => {
      if (this.worker === worker) {
        this.worker = undefined;
        this.ready = undefined;
        this.threadId = -1;
      }
      if (!this.stopping) this.pool.crashes++;
      const error = new Error(
        `ingest worker thread ${worker.threadId} exited (code ${code}) during the invocation`,
      );
      error.name = 'WorkerExited';
      for (const p of this.invocations.values()) p.reject(error);
      this.invocations.clear();
    });
    this.stopped = exited;
    // A new thread (first start or after a crash) gets its instances and who is watched now.
    for (const [fid, protocol] of this.fids) this.post({ t: 'create', fid, protocol });
    this.post({ t: 'watch', ...this.pool.watching });
    return this.ready;
  }

  post(m: ToWorker): void {
    this.worker?.postMessage(m);
  }

  add(fid: number, protocol: Protocol): void {
    this.fids.set(fid, protocol);
    if (this.worker) this.post({ t: 'create', fid, protocol });
  }

  remove(fid: number): void {
    if (this.fids.delete(fid)) this.post({ t: 'dispose', fid });
  }

  async invoke(
    fid: number,
    event: KinesisStreamEvent,
    context: Context,
    exitAfter?: number,
  ): Promise<unknown> {
    await this.ensure();
    const worker = this.worker;
    if (!worker) throw new Error('ingest worker exited before the invocation');
    const id = this.nextId++;
    const result = new Promise<unknown>((resolve, reject) => this.invocations.set(id, { resolve, reject }));
    worker.postMessage({
      t: 'invoke',
      id,
      fid,
      event,
      context: {
        functionName: context.functionName,
        functionVersion: context.functionVersion,
        invokedFunctionArn: context.invokedFunctionArn,
        memoryLimitInMB: context.memoryLimitInMB,
        awsRequestId: context.awsRequestId,
        logGroupName: context.logGroupName,
        logStreamName: context.logStreamName,
        deadline: Date.now() + context.getRemainingTimeInMillis(),
      },
      ...(exitAfter !== undefined ? { exitAfter } : {}),
    } satisfies ToWorker);
    return result;
  }

  private onMessage(worker: Worker, m: FromWorker): void {
    switch (m.t) {
      case 'result': {
        this.pool.absorb(m.report);
        this.pool.answered[worker.threadId] = (this.pool.answered[worker.threadId] ?? 0) + 1;
        const p = this.invocations.get(m.id);
        this.invocations.delete(m.id);
        if (m.ok) p?.resolve(m.value);
        else p?.reject(fromWire(m.error));
        return;
      }
      case 'stopped':
        this.pool.absorb(m.report);
        return;
      case 'exiting':
        this.pool.absorb(m.report);
        void worker.terminate();
        return;
      case 'live':
        this.pool.ports.live.publish(m.events);
        return;
      case 'call':
        this.pool.serve(m.port, m.arg).then(
          (value) => worker.postMessage({ t: 'reply', id: m.id, ok: true, value } satisfies ToWorker),
          (error: unknown) =>
            worker.postMessage({ t: 'reply', id: m.id, ok: false, error: toWire(error) } satisfies ToWorker),
        );
        return;
    }
  }

  /** Asks the thread to finish (its clients closed), then waits; terminated if it does not exit. */
  async stop(): Promise<void> {
    this.stopping = true;
    const worker = this.worker;
    if (!worker) return;
    this.elu = worker.performance.eventLoopUtilization();
    this.post({ t: 'stop' });
    const kill = setTimeout(() => void worker.terminate(), 5000);
    await this.stopped;
    clearTimeout(kill);
  }
}

export class IngestWorkerPool {
  readonly hosts: WorkerHost[];
  started = 0;
  crashes = 0;
  /** Invocations answered, by the thread id that answered. */
  readonly answered: Record<number, number> = {};
  private nextFid = 1;
  private readonly turn: Record<Protocol, number> = { sparkplug: 0, lwm2m: 0 };
  private watch: { fleet: boolean; devices: string[] } = { fleet: false, devices: [] };
  private readonly unwatch: () => void;

  constructor(private readonly o: IngestWorkerOptions) {
    if (!Number.isInteger(o.size) || o.size < 1)
      throw new ValidationError(`ingestWorkers must be a whole number ≥ 1 (got ${o.size})`, {
        field: 'ingestWorkers',
      });
    this.hosts = Array.from({ length: o.size }, (_, i) => new WorkerHost(this, i));
    this.watch = o.ports.live.watched();
    this.unwatch = o.ports.live.onWatchersChange(() => {
      this.watch = o.ports.live.watched();
      this.broadcast({ t: 'watch', ...this.watch });
    });
  }

  /** Who is watched now (a copy for the threads' `watching` pre-check). */
  get watching(): { fleet: boolean; devices: string[] } {
    return this.watch;
  }

  get init(): WorkerInit {
    return this.o.init;
  }

  get ports(): WorkerPoolPorts {
    return this.o.ports;
  }

  /** Starts every thread (the first invocations do not pay the start). */
  async start(): Promise<void> {
    await Promise.all(this.hosts.map((h) => h.ensure()));
  }

  /**
   * A handler for one lane: a function instance of `protocol` in the next thread (in turn). `release`
   * disposes the instance (the runner that used it has stopped).
   */
  handler(protocol: Protocol): { handler: KinesisHandler; release: () => void } {
    // Lanes of one stream in turn over the threads, the second stream's starting one thread further:
    // lane 0 of each stream (the busiest when a fleet has few keys) in different threads.
    const n = this.turn[protocol]++ + (protocol === 'lwm2m' ? 1 : 0);
    const host = this.hosts[n % this.hosts.length]!;
    const fid = this.nextFid++;
    host.add(fid, protocol);
    const injector = this.o.ports.injector;
    const handler: KinesisHandler = async (event, context) => {
      const exitAfter = injector?.workerCrash(event.Records.length);
      return (await host.invoke(fid, event, context, exitAfter)) as Awaited<ReturnType<KinesisHandler>>;
    };
    return { handler, release: () => host.remove(fid) };
  }

  /** Rules changed through the API: every instance re-reads them. */
  invalidateRules(): void {
    this.broadcast({ t: 'invalidateRules' });
  }

  status(): IngestWorkerStatus {
    return {
      workers: this.hosts.length,
      threadIds: this.hosts.filter((h) => h.worker).map((h) => h.threadId),
      started: this.started,
      crashes: this.crashes,
      instances: this.hosts.reduce((n, h) => n + h.fids.size, 0),
      answeredByThread: { ...this.answered },
    };
  }

  /** Event-loop utilisation of each running thread since it started (busy share of its time). */
  utilization(): EventLoopUtilization[] {
    return this.hosts.flatMap((h) => (h.worker ? [h.worker.performance.eventLoopUtilization()] : []));
  }

  /** Stops every thread; none is left running. */
  async stop(): Promise<void> {
    this.unwatch();
    await Promise.all(this.hosts.map((h) => h.stop()));
  }

  private broadcast(m: ToWorker): void {
    for (const h of this.hosts) h.post(m);
  }

  /** A thread's hooks and call counts, added to the stack's. */
  absorb(r: WorkerReport): void {
    const p = this.o.ports;
    for (const ms of r.stored) p.onStored(ms);
    for (const s of r.batches) p.onBatch(s);
    for (const [op, n] of Object.entries(r.calls)) p.dynamoCalls[op] = (p.dynamoCalls[op] ?? 0) + n;
  }

  /** A call a thread makes to a main-thread port. */
  async serve(port: CallPort, arg: unknown): Promise<unknown> {
    const p = this.o.ports;
    switch (port) {
      case 'store': {
        const readings = arg as EnrichedReading[];
        const out = await p.store.write(readings);
        const index = out.rejected.length > 0 ? new Map(readings.map((r, i) => [r, i])) : undefined;
        return {
          written: out.written,
          duplicates: out.duplicates,
          ...(out.pending !== undefined ? { pending: out.pending } : {}),
          rejected: out.rejected.map((r) => ({
            index: index!.get(r.reading) ?? -1,
            reason: r.reason,
            code: r.code,
          })),
        } satisfies WireWriteResult;
      }
      case 'publish':
        await p.publisher.publish(arg as Parameters<PublisherPort['publish']>[0]);
        return undefined;
      case 'sink':
        await p.sink.deliver(arg as AlertTransition);
        return undefined;
      case 'dynamoFault': {
        const error = p.injector?.dynamoFault(arg as boolean);
        return error ? toWire(error) : null;
      }
    }
  }
}

/** Event-loop utilisation of the main thread (the broker, forwarder, API and runners). */
export function mainUtilization(): EventLoopUtilization {
  return performance.eventLoopUtilization();
}

/** `ingestWorkers` from the environment (DUALPATH_INGEST_WORKERS), else the default. */
export function ingestWorkersFromEnv(env: NodeJS.ProcessEnv, fallback: number): number {
  const raw = env.DUALPATH_INGEST_WORKERS;
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0)
    throw new ValidationError(`DUALPATH_INGEST_WORKERS must be a whole number ≥ 0 (got "${raw}")`, {
      field: 'DUALPATH_INGEST_WORKERS',
    });
  return n;
}

/**
 * Ingest worker threads when nothing else is said: none (handlers on the main thread). Measured in
 * ADR 0026: one worker stored no more on the shared 2-core machine and cost ~7 % more CPU per reading;
 * a quiet-machine re-measure may change this.
 */
export const DEFAULT_INGEST_WORKERS = 0;
