/**
 * Fault injection for the local stack (`npm run faults`, test/reliability/faults.test.ts): the telemetry
 * store throttling or failing, DynamoDB failing, a handler crashing in the middle of a batch. Each fault
 * is a decorator around the real part, driven by seeded generators so a run can be repeated; the stack
 * applies them only when `faults` is given, so the normal path is untouched. Restarting the event-source
 * runners (gracefully or as a crash) and the broker are methods of the LocalStack (restartRunners,
 * restartBroker).
 *
 * The injector also taps what the broker forwarded to Kinesis (`accepted`) so a run can be checked
 * against what the broker accepted — not only against what devices saw acknowledged, which differs when
 * a PUBACK is lost in a broker restart.
 */
import { TransientError } from '../../functions/core/errors.js';
import type { StorePort } from '../../functions/core/ingest.js';
import { checkTimes, parseRuleEnvelope } from '../../functions/core/ingest.js';
import { createInMemoryLwm2mServer } from '../../functions/core/lwm2m/server/index.js';
import type { MessageProcessor } from '../../functions/core/processor.js';
import { createInMemorySparkplugHost } from '../../functions/core/sparkplug/host/index.js';
import { identityString, pointKeyOf } from '../../functions/core/telemetry.js';
import type { KinesisHandler } from '../../functions/shared/ingest-handler.js';
import type { StreamKey } from '../pipeline.js';
import type { DynamoCallHook } from './dynamo-wire.js';

/** Which calls fail: a share of them (seeded), and/or a window of consecutive calls (1-based). */
export interface FaultShare {
  rate?: number;
  /** Calls number `from` to `from + count - 1` (counted from when the stack is up) fail. */
  window?: { from: number; count: number };
}

export interface LocalFaults {
  /** Telemetry-store writes failing with a throttling TransientError before they write. */
  store?: FaultShare;
  /** Telemetry-store writes that write, then fail (the answer was lost): the retry must come out as duplicates. */
  storeAfterWrite?: FaultShare;
  /**
   * DynamoDB calls failing before they reach dynalite: ProvisionedThroughputExceededException (400),
   * InternalServerError (500) or both (alternating). The SDK does not retry these (they are injected
   * above its retry step): the adapters and the ingest path see them.
   */
  dynamo?: FaultShare & { kind?: 'throttle' | 'server' | 'mixed' };
  /** DynamoDB calls that reach dynalite and then fail with a 500 (the write happened, the answer was lost). */
  dynamoAfterCall?: FaultShare;
  /**
   * Handler invocations that crash in the middle of their batch: the first `after` records (default: a
   * seeded random prefix, possibly none or all) are processed — stored, state advanced — then the
   * function throws, so the runner's retry and bisect path re-delivers the whole batch.
   */
  handlerCrash?: FaultShare & { after?: number };
  /**
   * Ingest worker threads (ADR 0026) that die in the middle of their batch: the first `after` records
   * (default: a seeded random prefix) are processed, then the thread exits as a crashed Lambda instance
   * would; the invocation fails and a new thread takes the lane. No effect without ingest workers.
   */
  workerCrash?: FaultShare & { after?: number };
  seed?: number;
  /** @deprecated the first form: `store: { rate }`. */
  storeFailureRate?: number;
  /** @deprecated the first form: `dynamo: { rate }`. */
  dynamoFailureRate?: number;
  /** @deprecated the first form: a crash after the whole batch, `handlerCrash: { rate, after: Infinity }`. */
  handlerCrashRate?: number;
}

/** The first (flat) form of the options mapped onto the current one. */
function normalize(f: LocalFaults): LocalFaults {
  const out = { ...f };
  if (f.storeFailureRate !== undefined) out.store ??= { rate: f.storeFailureRate };
  if (f.dynamoFailureRate !== undefined) out.dynamo ??= { rate: f.dynamoFailureRate };
  if (f.handlerCrashRate !== undefined)
    out.handlerCrash ??= { rate: f.handlerCrashRate, after: Number.POSITIVE_INFINITY };
  return out;
}

export interface FaultCounters {
  storeFailures: number;
  storeFailuresAfterWrite: number;
  dynamoFailures: number;
  dynamoFailuresAfterCall: number;
  handlerCrashes: number;
  /**
   * Invocations whose ingest worker thread was made to exit mid-batch (workerCrash); two of them running
   * in one thread at once end in one exit (the pool's `crashes`).
   */
  workerCrashes: number;
  /** Records processed by crashing invocations before they crashed. */
  recordsBeforeCrash: number;
  runnerRestarts: number;
  /** Runner restarts that lost the checkpoints saved while stopping (batches in flight redelivered). */
  runnerCrashes: number;
  brokerRestarts: number;
}

/** Mulberry32: small, seeded, good enough to pick which calls fail. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

/** Decides, call by call, whether one kind of call fails. */
class Trigger {
  private calls = 0;
  private burst = 0;
  /** An outage: every call fails until it ends (FaultInjector.outage). */
  down = false;
  private readonly random: () => number;
  constructor(
    private readonly share: FaultShare | undefined,
    seed: number,
  ) {
    this.random = seededRandom(seed);
  }
  fire(armed: boolean): boolean {
    if (!armed) return false;
    if (this.down) return true;
    if (this.burst > 0) {
      this.burst--;
      return true;
    }
    if (!this.share) return false;
    const n = ++this.calls;
    const w = this.share.window;
    if (w && n >= w.from && n < w.from + w.count) return true;
    const rate = this.share.rate ?? 0;
    return rate > 0 && this.random() < rate;
  }
  next(): number {
    return this.random();
  }
  failNext(count: number): void {
    this.burst += count;
  }
}

/** The kinds of calls that can be made to fail. */
export type FaultKind =
  | 'store'
  | 'storeAfterWrite'
  | 'dynamo'
  | 'dynamoAfterCall'
  | 'handlerCrash'
  | 'workerCrash';

/** One record the broker handed to Kinesis (and Kinesis stored). */
export interface AcceptedRecord {
  stream: StreamKey;
  data: Uint8Array;
}

export class FaultInjector {
  readonly counters: FaultCounters = {
    storeFailures: 0,
    storeFailuresAfterWrite: 0,
    dynamoFailures: 0,
    dynamoFailuresAfterCall: 0,
    handlerCrashes: 0,
    workerCrashes: 0,
    recordsBeforeCrash: 0,
    runnerRestarts: 0,
    runnerCrashes: 0,
    brokerRestarts: 0,
  };
  /** Every record the broker forwarded to Kinesis, in the order Kinesis stored them. */
  readonly accepted: AcceptedRecord[] = [];
  private armed = false;
  private readonly storeTrigger: Trigger;
  private readonly storeAfterTrigger: Trigger;
  private readonly dynamoTrigger: Trigger;
  private readonly dynamoAfterTrigger: Trigger;
  private readonly crashTrigger: Trigger;
  private readonly workerCrashTrigger: Trigger;
  private readonly triggers: Record<FaultKind, Trigger>;

  private readonly faults: LocalFaults;

  constructor(faults: LocalFaults) {
    this.faults = normalize(faults);
    faults = this.faults;
    const seed = faults.seed ?? 1;
    this.storeTrigger = new Trigger(faults.store, seed);
    this.storeAfterTrigger = new Trigger(faults.storeAfterWrite, seed + 1);
    this.dynamoTrigger = new Trigger(faults.dynamo, seed + 2);
    this.dynamoAfterTrigger = new Trigger(faults.dynamoAfterCall, seed + 3);
    this.crashTrigger = new Trigger(faults.handlerCrash, seed + 4);
    this.workerCrashTrigger = new Trigger(faults.workerCrash, seed + 5);
    this.triggers = {
      store: this.storeTrigger,
      storeAfterWrite: this.storeAfterTrigger,
      dynamo: this.dynamoTrigger,
      dynamoAfterCall: this.dynamoAfterTrigger,
      handlerCrash: this.crashTrigger,
      workerCrash: this.workerCrashTrigger,
    };
  }

  /** Faults start once the stack is up (seeding the registry is not what is being tested). */
  arm(): void {
    this.armed = true;
  }

  /**
   * The next `count` calls of this kind fail, whatever the configured share (e.g. right when the fleet
   * stops, so the batches carrying deaths and de-registrations meet the fault).
   */
  failNext(kind: FaultKind, count: number): void {
    this.triggers[kind].failNext(count);
  }

  /**
   * Starts (`true`) or ends (`false`) an outage of one kind of call: every call fails meanwhile,
   * however long it lasts (a store throttled for longer than the retry budget, ADR 0017).
   */
  outage(kind: FaultKind, down: boolean): void {
    this.triggers[kind].down = down;
  }

  /** The broker's tap: a record Kinesis stored. */
  forwarded(stream: StreamKey, data: Uint8Array): void {
    this.accepted.push({ stream, data });
  }

  /** The store, throttled or failing now and then. */
  store<S extends StorePort>(inner: S): StorePort {
    return {
      write: async (readings) => {
        if (this.storeTrigger.fire(this.armed)) {
          this.counters.storeFailures++;
          throw new TransientError('FAULT_STORE_THROTTLED', 'injected: telemetry store throttled');
        }
        const out = await inner.write(readings);
        if (this.storeAfterTrigger.fire(this.armed)) {
          this.counters.storeFailuresAfterWrite++;
          throw new TransientError(
            'FAULT_STORE_TIMEOUT',
            'injected: telemetry store timed out after writing',
          );
        }
        return out;
      },
    };
  }

  /** A handler that sometimes crashes part-way through its batch (the retry re-delivers all of it). */
  handler(inner: KinesisHandler): KinesisHandler {
    return async (event, context) => {
      if (!this.crashTrigger.fire(this.armed)) return inner(event, context);
      const total = event.Records.length;
      const fixed = this.faults.handlerCrash?.after;
      const after =
        fixed === undefined ? Math.floor(this.crashTrigger.next() * (total + 1)) : Math.min(fixed, total);
      if (after > 0) await inner({ Records: event.Records.slice(0, after) }, context);
      this.counters.handlerCrashes++;
      this.counters.recordsBeforeCrash += after;
      throw new Error(`injected: handler crashed after ${after} of ${total} records`);
    };
  }

  /**
   * Whether an ingest worker thread dies in this invocation of `total` records: how many records it
   * processes first, or undefined (no crash). Counted here; the worker pool makes the thread exit.
   */
  workerCrash(total: number): number | undefined {
    if (!this.workerCrashTrigger.fire(this.armed)) return undefined;
    const fixed = this.faults.workerCrash?.after;
    const after =
      fixed === undefined ? Math.floor(this.workerCrashTrigger.next() * (total + 1)) : Math.min(fixed, total);
    this.counters.workerCrashes++;
    this.counters.recordsBeforeCrash += after;
    return after;
  }

  /**
   * The DynamoDB fault for one call, before it reaches the emulator (`after` false) or once it has
   * (`after` true): the error to throw, or undefined. The same decision for the stack's client and for
   * the clients of ingest worker threads (which ask over their message port).
   */
  dynamoFault(after: boolean): Error | undefined {
    if (!(after ? this.dynamoAfterTrigger : this.dynamoTrigger).fire(this.armed)) return undefined;
    if (after) this.counters.dynamoFailuresAfterCall++;
    else this.counters.dynamoFailures++;
    const kind = this.faults.dynamo?.kind ?? 'throttle';
    const server = after || kind === 'server' || (kind === 'mixed' && this.alternate++ % 2 === 1);
    return server
      ? Object.assign(new Error(`injected: internal server error${after ? ' after the call' : ''}`), {
          name: 'InternalServerError',
          $fault: 'server',
          $metadata: { httpStatusCode: 500 },
        })
      : Object.assign(new Error('injected: throughput exceeded'), {
          name: 'ProvisionedThroughputExceededException',
          $fault: 'client',
          $metadata: { httpStatusCode: 400 },
        });
  }
  private alternate = 0;

  /**
   * The hook that fails DynamoDB calls, before or after they reach the emulator (install it with the
   * clients' `hookDynamo`; installed even with no share, for failNext).
   */
  dynamoHook(): DynamoCallHook {
    return async (call) => {
      const before = this.dynamoFault(false);
      if (before) throw before;
      const out = await call();
      const after = this.dynamoFault(true);
      if (after) throw after;
      return out;
    };
  }
}

export interface AcceptedReadings {
  /** Records the broker forwarded to Kinesis (device messages and the server's own publishes). */
  records: number;
  /** Readings the records carry, as many times as they were forwarded. */
  readings: number;
  /** Distinct stored-point identities among them: what the store must hold, each once. */
  distinct: number;
  /** Transient readings (not stored by design). */
  transient: number;
}

/**
 * Counts the readings in records the broker forwarded, independently of the stack: replays them in
 * Kinesis order through in-memory protocol processors (the pipeline's decoders, fresh state, no store,
 * no faults) and collects the point identities the store keys rows by.
 */
export async function countAcceptedReadings(records: readonly AcceptedRecord[]): Promise<AcceptedReadings> {
  const clock = Date.now;
  const processors: Record<StreamKey, MessageProcessor> = {
    sparkplug: createInMemorySparkplugHost({ clock }),
    lwm2m: createInMemoryLwm2mServer({ clock }),
  };
  const ids = new Set<string>();
  const out: AcceptedReadings = { records: records.length, readings: 0, distinct: 0, transient: 0 };
  for (const r of records) {
    let outcome: Awaited<ReturnType<MessageProcessor['handle']>>;
    try {
      const env = parseRuleEnvelope(r.data);
      outcome = await processors[r.stream].handle({
        topic: env.topic,
        payload: env.payload,
        receivedAt: env.receivedAt,
        ...(env.clientId === undefined ? {} : { clientId: env.clientId }),
      });
      checkTimes(outcome, env.receivedAt); // as processBatch does: absurd times are quarantined
    } catch {
      continue; // quarantined by the pipeline too: no readings
    }
    for (const reading of outcome.readings) {
      if (reading.transient) {
        out.transient++;
        continue;
      }
      out.readings++;
      ids.add(identityString(reading.deviceId, pointKeyOf(reading)));
    }
  }
  out.distinct = ids.size;
  return out;
}
