/**
 * Fault injection for the local stack (`npm run faults`, test/reliability/faults.test.ts): the store
 * throttling, DynamoDB failing, a handler crashing after it did its work. Each fault is a decorator
 * around the real part, driven by a seeded generator so a run can be repeated; the stack applies them
 * only when `faults` is given, so the normal path is untouched.
 */
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { TransientError } from '../../functions/core/errors.js';
import type { StorePort } from '../../functions/core/ingest.js';
import type { KinesisHandler } from '../../functions/shared/ingest-handler.js';

export interface LocalFaults {
  /** Share of telemetry-store writes that fail with a throttling error (0-1). */
  storeFailureRate?: number;
  /** Share of DynamoDB calls that fail with ProvisionedThroughputExceededException before reaching dynalite. */
  dynamoFailureRate?: number;
  /** Share of handler invocations that throw after processing their batch (a crash before answering). */
  handlerCrashRate?: number;
  seed?: number;
}

export interface FaultCounters {
  storeFailures: number;
  dynamoFailures: number;
  handlerCrashes: number;
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

export class FaultInjector {
  readonly counters: FaultCounters = { storeFailures: 0, dynamoFailures: 0, handlerCrashes: 0 };
  private readonly random: () => number;

  constructor(private readonly faults: LocalFaults) {
    this.random = seededRandom(faults.seed ?? 1);
  }

  private armed = false;

  /** Faults start once the stack is up (seeding the registry is not what is being tested). */
  arm(): void {
    this.armed = true;
  }

  private hit(rate: number | undefined): boolean {
    return this.armed && rate !== undefined && rate > 0 && this.random() < rate;
  }

  /** The store, throttled now and then (before it writes: the batch is retried, nothing half-written). */
  store<S extends StorePort>(inner: S): StorePort {
    return {
      write: async (readings) => {
        if (this.hit(this.faults.storeFailureRate)) {
          this.counters.storeFailures++;
          throw new TransientError('FAULT_STORE_THROTTLED', 'injected: telemetry store throttled');
        }
        return inner.write(readings);
      },
    };
  }

  /** A handler that sometimes crashes after its batch was processed and stored (the retry re-does it). */
  handler(inner: KinesisHandler): KinesisHandler {
    return async (event, context) => {
      const out = await inner(event, context);
      if (this.hit(this.faults.handlerCrashRate)) {
        this.counters.handlerCrashes++;
        throw new Error('injected: handler crashed after processing its batch');
      }
      return out;
    };
  }

  /** DynamoDB calls failing with throttling before they reach the emulator (the SDK does not retry them). */
  dynamo(client: DynamoDBClient): void {
    if (!this.faults.dynamoFailureRate) return;
    client.middlewareStack.add(
      (next) => async (args) => {
        if (this.hit(this.faults.dynamoFailureRate)) {
          this.counters.dynamoFailures++;
          throw Object.assign(new Error('injected: throughput exceeded'), {
            name: 'ProvisionedThroughputExceededException',
            $metadata: { httpStatusCode: 400 },
          });
        }
        return next(args);
      },
      { step: 'initialize', name: 'dualpathFaults' },
    );
  }
}
