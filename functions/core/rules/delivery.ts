/**
 * Delivering alert transitions (ADR 0016 §3): the AlertSink port and the outbox protocol around it.
 *
 * The engine's `commit()` records every transition in the AlertStore first (the outbox) and returns
 * those whose actions are still to be delivered. `dispatchTransitions` hands each to the sink and marks
 * it dispatched; a transition the sink fails on stays in the outbox (`listUndispatched`) and the clock
 * (`redeliverOutbox`) delivers it later. Delivery is therefore at-least-once with the transition id as
 * the idempotency key (webhooks get it as the `Idempotency-Key` header, SNS/EventBridge in the message).
 */
import { describeError } from '../errors.js';
import type { Clock } from '../processor.js';
import type { AlertTransition } from './model.js';
import type { AlertStore } from './store.js';

/** Where transitions go: webhook + event log locally, SNS + EventBridge in AWS. */
export interface AlertSink {
  /** Delivers one transition (all its actions). Throws when it could not: it is delivered again later. */
  deliver(t: AlertTransition): Promise<void>;
}

export interface DispatchResult {
  delivered: number;
  failed: number;
}

/** A sink made of several: every part gets every transition; one failing fails the delivery. */
export function allSinks(...sinks: AlertSink[]): AlertSink {
  return {
    async deliver(t) {
      const results = await Promise.allSettled(sinks.map((s) => s.deliver(t)));
      const failure = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failure) throw failure.reason;
    },
  };
}

/**
 * Delivers transitions in order, then marks the delivered ones dispatched (one call). Never throws: a
 * failed delivery is reported (`onError`) and left in the outbox, so a stored batch is never redelivered
 * because a webhook is down; so is every delivered one if the marking fails (delivered again later:
 * at-least-once, the transition id the idempotency key).
 */
export async function dispatchTransitions(
  transitions: AlertTransition[],
  o: {
    sink: AlertSink;
    alerts: AlertStore;
    clock: Clock;
    onError?: (t: AlertTransition, error: unknown) => void;
  },
): Promise<DispatchResult> {
  const out: DispatchResult = { delivered: 0, failed: 0 };
  const delivered: AlertTransition[] = [];
  for (const t of transitions) {
    try {
      await o.sink.deliver(t);
      delivered.push(t);
    } catch (error) {
      out.failed++;
      o.onError?.(t, error);
    }
  }
  if (delivered.length === 0) return out;
  try {
    await o.alerts.markDispatched(delivered, o.clock());
    out.delivered += delivered.length;
  } catch (error) {
    out.failed += delivered.length;
    for (const t of delivered) o.onError?.(t, error);
  }
  return out;
}

/**
 * The clock's second job: transitions recorded more than `graceMs` ago and never marked dispatched (a
 * crash between commit and delivery, a sink that was down) are delivered again.
 */
export async function redeliverOutbox(o: {
  sink: AlertSink;
  alerts: AlertStore;
  clock: Clock;
  graceMs?: number;
  limit?: number;
  onError?: (t: AlertTransition, error: unknown) => void;
}): Promise<DispatchResult> {
  const stale = await o.alerts.listUndispatched(o.clock() - (o.graceMs ?? 60_000), o.limit ?? 100);
  return dispatchTransitions(
    stale.map((r) => r.transition),
    o,
  );
}

/** One line for a log: which transition failed and why. */
export function describeDeliveryFailure(t: AlertTransition, error: unknown): string {
  const e = describeError(error);
  return `alert ${t.kind} ${t.id} (rule ${t.ruleId}, ${t.series}) not delivered: ${e.code}: ${e.message}`;
}
