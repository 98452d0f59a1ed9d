/**
 * An ingest worker thread (ADR 0026; the main-thread side is infra/local/ingest-workers.ts): hosts
 * ingest function instances built by their composition roots (infra/local/ingest-compose.ts) on this
 * thread's own DynamoDB clients, and answers the main thread's invocations. The store, the broker's
 * publish, the alert sink and the live hub are the main thread's, reached over the message port.
 */
import { parentPort, threadId, workerData } from 'node:worker_threads';
import type { Context } from 'aws-lambda';
import { DynamoEventLog } from '../../functions/adapters/dynamo-events.js';
import { DynamoRegistry } from '../../functions/adapters/dynamo-registry.js';
import {
  DynamoAlertStore,
  DynamoRuleStateStore,
  DynamoRuleStore,
} from '../../functions/adapters/dynamo-rules.js';
import type { IngestStats, PublisherPort, StorePort } from '../../functions/core/ingest.js';
import type { LiveEvent } from '../../functions/core/live.js';
import type { AlertSink } from '../../functions/core/rules/delivery.js';
import type { IngestFunction } from '../../functions/shared/ingest-function.js';
import type { CallCounts } from './aws-clients.js';
import { localDynamoClients } from './dynamo-wire.js';
import { composeLocalIngest } from './ingest-compose.js';
import {
  type CallPort,
  type FromWorker,
  fromWire,
  type ToWorker,
  toWire,
  type WireContext,
  type WireError,
  type WireWriteResult,
  type WorkerInit,
  type WorkerReport,
} from './ingest-workers.js';

const port = parentPort;
if (!port) throw new Error('ingest-worker-thread runs as a worker thread');
const init = workerData as WorkerInit;
const send = (m: FromWorker) => port.postMessage(m);

// ---- calls to the main thread -------------------------------------------------------------------------
let nextCall = 1;
const calls = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
function call<T>(p: CallPort, arg: unknown): Promise<T> {
  const id = nextCall++;
  return new Promise<T>((resolve, reject) => {
    calls.set(id, { resolve: resolve as (v: unknown) => void, reject });
    send({ t: 'call', id, port: p, arg });
  });
}

// ---- what this thread observed, sent with each answer ----------------------------------------------------
const dynamoCalls: CallCounts = {};
let stored: number[] = [];
let batches: IngestStats[] = [];
function report(): WorkerReport {
  const out: WorkerReport = { stored, batches, calls: { ...dynamoCalls } };
  stored = [];
  batches = [];
  for (const k of Object.keys(dynamoCalls)) delete dynamoCalls[k];
  return out;
}

// ---- ports --------------------------------------------------------------------------------------------
const clock = Date.now;
const dynamo = localDynamoClients({
  endpoint: init.dynamoEndpoint,
  embedded: init.dynamoEmbedded,
  calls: dynamoCalls,
});
const doc = dynamo.doc;
if (init.dynamoFaults) {
  // The main thread's injector decides (one seeded sequence for the stack and every thread).
  dynamo.hook(async (run) => {
    const before = await call<WireError | null>('dynamoFault', false);
    if (before) throw fromWire(before);
    const out = await run();
    const after = await call<WireError | null>('dynamoFault', true);
    if (after) throw fromWire(after);
    return out;
  });
}
const tables = init.tables;
const registry = new DynamoRegistry({ client: doc, tableName: tables.registry });
const events = new DynamoEventLog({ client: doc, tableName: tables.events, clock });
const ruleStore = new DynamoRuleStore({ client: doc, tableName: tables.registry, clock });
const alertStore = new DynamoAlertStore({ client: doc, tableName: tables.registry, clock });

const store: StorePort = {
  async write(readings) {
    const out = await call<WireWriteResult>('store', readings);
    return {
      written: out.written,
      duplicates: out.duplicates,
      ...(out.pending !== undefined ? { pending: out.pending } : {}),
      // The same reading objects the caller passed (the ingest path tells them apart by identity).
      rejected: out.rejected.map((r) => ({ reading: readings[r.index]!, reason: r.reason, code: r.code })),
    };
  },
};
const publisher: PublisherPort = { publish: (actions) => call('publish', actions) };
const sink: AlertSink = { deliver: (t) => call('sink', t) };
let watchFleet = false;
let watched = new Set<string>();
const live = {
  publisher: {
    publish(e: LiveEvent[]): void {
      if (e.length > 0) send({ t: 'live', events: e });
    },
  },
  watching: (id: string) => watchFleet || watched.has(id),
};

const instances = new Map<number, IngestFunction>();
let inFlight = 0;
let dying = false;
const hooks = {
  onStored: (ms: number) => {
    stored.push(ms);
  },
  onBatch: (s: IngestStats) => {
    batches.push(s);
  },
};

function context(c: WireContext): Context {
  return {
    callbackWaitsForEmptyEventLoop: false,
    functionName: c.functionName,
    functionVersion: c.functionVersion,
    invokedFunctionArn: c.invokedFunctionArn,
    memoryLimitInMB: c.memoryLimitInMB,
    awsRequestId: c.awsRequestId,
    logGroupName: c.logGroupName,
    logStreamName: c.logStreamName,
    getRemainingTimeInMillis: () => Math.max(0, c.deadline - Date.now()),
    done: () => {},
    fail: () => {},
    succeed: () => {},
  };
}

port.on('message', async (m: ToWorker) => {
  switch (m.t) {
    case 'create':
      instances.set(
        m.fid,
        composeLocalIngest(
          m.protocol,
          {
            registry,
            events,
            store,
            publisher,
            clock,
            rules: {
              rules: ruleStore,
              state: new DynamoRuleStateStore({ client: doc, tableName: tables.state, clock }),
              alerts: alertStore,
              sink,
            },
            live,
            state: { client: doc, tableName: tables.state, clock },
          },
          init.settings,
          hooks,
        ),
      );
      return;
    case 'dispose':
      instances.delete(m.fid);
      return;
    case 'watch':
      watchFleet = m.fleet;
      watched = new Set(m.devices);
      return;
    case 'invalidateRules':
      for (const fn of instances.values()) fn.rules?.invalidateRules();
      return;
    case 'reply': {
      const p = calls.get(m.id);
      calls.delete(m.id);
      if (m.ok) p?.resolve(m.value);
      else p?.reject(fromWire(m.error));
      return;
    }
    case 'invoke': {
      const fn = instances.get(m.fid);
      if (fn && !dying && m.exitAfter !== undefined) {
        // Fault injection: part of the batch is processed (stored, state advanced), then the thread
        // dies. The other instances' invocations running here finish first (each instance is a Lambda
        // instance of its own; one crashing does not take the others' batches with it); new ones are
        // refused meanwhile (redelivered by the runner).
        dying = true;
        try {
          if (m.exitAfter > 0)
            await fn.handler({ Records: m.event.Records.slice(0, m.exitAfter) }, context(m.context));
        } catch {
          // Crashing anyway.
        }
        while (inFlight > 0) await new Promise((r) => setTimeout(r, 5));
        // The main thread terminates this thread when it reads this (after what was counted here).
        send({ t: 'exiting', report: report() });
        return;
      }
      inFlight++;
      try {
        if (!fn) throw new Error(`no function instance ${m.fid} in thread ${threadId}`);
        if (dying) throw new Error(`ingest worker thread ${threadId} is exiting`);
        const value = await fn.handler(m.event, context(m.context));
        send({ t: 'result', id: m.id, ok: true, value: value ?? undefined, report: report() });
      } catch (error) {
        send({ t: 'result', id: m.id, ok: false, error: toWire(error), report: report() });
      } finally {
        inFlight--;
      }
      return;
    }
    case 'stop':
      // Runners stop before the pool: nothing is in flight. The report holds what is left to count.
      send({ t: 'stopped', report: report() });
      dynamo.destroy();
      process.exit(0);
      return;
  }
});

send({ t: 'ready', threadId });
