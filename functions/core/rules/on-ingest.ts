/**
 * Rule evaluation on the ingest path (ADR 0016 "Integration"), as decorators of the two ports the
 * ingest path already drives, so functions/core/ingest.ts needs no change:
 *
 * - the StorePort: after a chunk of enriched readings is stored, the rule engine collects it (rules see
 *   only readings that are stored: a batch that fails to store is redelivered and evaluated then);
 * - the MessageProcessor: `begin` starts the engine's batch, `handled` collects the lifecycle events of
 *   the batch, `commit` evaluates what was collected, once per series (the batch's readings, then its
 *   events with their device's enrichment from the enricher's cache), then commits the engine BEFORE
 *   the protocol state — a batch redelivered after a failed protocol commit finds the rule states past its readings
 *   and skips them; a failed engine commit redelivers the batch against the
 *   rule states it started from, which reproduces the same transition ids (recorded once) — and then
 *   delivers the transitions still to deliver; `abort` drops what the engine staged.
 *
 * Delivery never fails a stored batch: what the sink could not take stays in the AlertStore's outbox
 * for the clock (rules-clock / the local timer) to deliver.
 */
import { isRetryable } from '../errors.js';
import type { StorePort } from '../ingest.js';
import type { Clock, InboundMessage, MessageProcessor } from '../processor.js';
import type { EnrichedReading, Enrichment, LifecycleEvent, MessageOutcome } from '../reading.js';
import { type AlertSink, dispatchTransitions } from './delivery.js';
import type { RuleEngine } from './engine.js';
import type { AlertTransition } from './model.js';
import type { AlertStore } from './store.js';

export interface RulesOnIngestOptions {
  engine: RuleEngine;
  alerts: AlertStore;
  sink: AlertSink;
  clock: Clock;
  /** A device's enrichment, for its lifecycle events (the enricher's cache: what its readings carry). */
  enrichmentOf?: (deviceId: string) => Enrichment | undefined;
  /** A rule evaluation or a delivery went wrong (logged; the batch goes on). */
  onError?: (what: 'evaluate' | 'deliver', error: unknown, t?: AlertTransition) => void;
  /** After each batch's delivery (counts, for metrics). */
  onTransitions?: (transitions: AlertTransition[]) => void;
}

/** The processor and store with rule evaluation woven in. */
export function rulesOnIngest(
  parts: { processor: MessageProcessor; store: StorePort },
  o: RulesOnIngestOptions,
): { processor: MessageProcessor; store: StorePort } {
  const inner = parts.processor;
  const { engine } = o;
  let events: LifecycleEvent[] = [];
  let undelivered: AlertTransition[] = [];

  const processor: MessageProcessor = {
    handle: (message: InboundMessage) => inner.handle(message),
    handled: (outcome: MessageOutcome) => {
      inner.handled?.(outcome);
      for (const e of outcome.events) events.push(e);
    },
    begin: () => {
      inner.begin?.();
      engine.begin();
      events = [];
      undelivered = [];
    },
    commit: async () => {
      try {
        if (events.length > 0) {
          await engine.prepare();
          engine.collect({
            readings: [],
            events,
            ...(o.enrichmentOf ? { enrichmentOf: o.enrichmentOf } : {}),
          });
          events = [];
        }
        // One evaluation per series for the whole batch. A failed state read keeps the collection:
        // the retried commit runs it again.
        await engine.run();
      } catch (error) {
        if (isRetryable(error)) throw error;
        o.onError?.('evaluate', error);
      }
      // Rules first (idempotent transitions), then the protocol state (see the module comment).
      for (const t of await engine.commit()) undelivered.push(t);
      await inner.commit?.();
      const toDeliver = undelivered;
      undelivered = [];
      if (toDeliver.length === 0) return;
      await dispatchTransitions(toDeliver, {
        sink: o.sink,
        alerts: o.alerts,
        clock: o.clock,
        onError: (t, error) => o.onError?.('deliver', error, t),
      });
      o.onTransitions?.(toDeliver);
    },
    abort: () => {
      inner.abort?.();
      engine.abort();
      events = [];
      undelivered = [];
    },
  };
  if (inner.prepare) processor.prepare = (messages) => inner.prepare!(messages);

  const store: StorePort = {
    async write(readings: EnrichedReading[]) {
      // The rule list first: if it cannot be read, the chunk fails before any row is written (a retry
      // then writes and counts it once), not after.
      await engine.prepare();
      const result = await parts.store.write(readings);
      let evaluated = readings;
      if (result.rejected.length > 0) {
        const rejected = new Set(result.rejected.map((r) => r.reading));
        evaluated = readings.filter((r) => !rejected.has(r));
      }
      try {
        // Evaluated at commit with the rest of the batch, once per series (no state is read here).
        engine.collect({ readings: evaluated });
      } catch (error) {
        // A rule problem, not the readings': they stay stored, the batch goes on.
        o.onError?.('evaluate', error);
      }
      return result;
    },
  };
  return { processor, store };
}
