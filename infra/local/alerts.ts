/**
 * Rules and alerts in the local stack (ADR 0016): the DynamoDB rule, rule-state and alert stores on the
 * emulated tables (the same adapters as in AWS), alert transitions to the event log and to the rules'
 * webhooks, the rules-clock composition root on a 1 s timer (absence, offline-for, auto-resolve,
 * throttled openings, and the outbox of undelivered transitions), and the ingest functions' engines told
 * at once when a rule changes through the API (in AWS they re-read the rules within RULES_CACHE_TTL_MS).
 */
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { EventLogAlertSink, WebhookAlertSink } from '../../functions/adapters/alert-sinks.js';
import {
  DynamoAlertStore,
  DynamoRuleStateStore,
  DynamoRuleStore,
} from '../../functions/adapters/dynamo-rules.js';
import type { EventLog } from '../../functions/core/events.js';
import type { Clock } from '../../functions/core/processor.js';
import { type AlertSink, allSinks } from '../../functions/core/rules/delivery.js';
import type { RuleEngine } from '../../functions/core/rules/engine.js';
import { composeRulesClock } from '../../functions/rules-clock/compose.js';
import type { IngestFunction, IngestRulesPorts } from '../../functions/shared/ingest-function.js';

export const LOCAL_RULES_TICK_MS = 1000;

export function localRules(o: {
  doc: DynamoDBDocumentClient;
  tables: { registry: string; state: string };
  events: EventLog;
  clock: Clock;
  log: (line: string) => void;
  tickMs?: number;
  /** More sinks every transition goes to (the live hub, ADR 0023). */
  sinks?: AlertSink[];
}) {
  const rules = new DynamoRuleStore({ client: o.doc, tableName: o.tables.registry, clock: o.clock });
  const alerts = new DynamoAlertStore({ client: o.doc, tableName: o.tables.registry, clock: o.clock });
  const sink = allSinks(new EventLogAlertSink(o.events), new WebhookAlertSink(), ...(o.sinks ?? []));
  const engines = new Set<RuleEngine>();
  const listeners = new Set<() => void>();
  const stateStore = () =>
    new DynamoRuleStateStore({ client: o.doc, tableName: o.tables.state, clock: o.clock });
  const clock = composeRulesClock(
    {
      rules,
      state: stateStore(),
      alerts,
      sink,
      clock: o.clock,
      logger: {
        error: (m: string, e?: unknown) => o.log(`${m}: ${(e as Error)?.message ?? ''}`),
        info: () => {},
      },
    },
    // The clock's own rule cache: rule changes reach it through invalidate below.
    { outboxGraceMs: 30_000 },
  );
  engines.add(clock.engine);
  let timer: NodeJS.Timeout | undefined;
  let ticking: Promise<unknown> | undefined;
  let failures = 0;
  return {
    rules,
    alerts,
    /** Ports for one ingest function instance (its own state store, as a Lambda instance has). */
    ingestPorts(): IngestRulesPorts {
      return { rules, state: stateStore(), alerts, sink };
    },
    apiPorts() {
      return {
        rules,
        alerts,
        onChange: () => {
          for (const e of engines) e.invalidateRules();
          for (const l of listeners) l();
        },
      };
    },
    /** Told when a rule changes through the API (engines in ingest worker threads, ADR 0026). */
    onRulesChange(listener: () => void): void {
      listeners.add(listener);
    },
    /** Where every alert transition goes (event log, webhooks, more sinks). */
    sink,
    /** Remembers an ingest function's engine (told when rules change). */
    track<F extends IngestFunction>(fn: F): F {
      if (fn.rules) engines.add(fn.rules);
      return fn;
    },
    start(): void {
      timer = setInterval(() => {
        if (ticking) return;
        ticking = clock
          .tick()
          .then(() => {
            failures = 0;
          })
          .catch((error: unknown) => {
            // Logged once per run of failures (the emulator restarting, a fault-injection run).
            if (failures++ === 0) o.log(`rules-clock: ${(error as Error).message}`);
          })
          .finally(() => {
            ticking = undefined;
          });
      }, o.tickMs ?? LOCAL_RULES_TICK_MS);
      timer.unref();
    },
    async stop(): Promise<void> {
      if (timer) clearInterval(timer);
      await ticking;
    },
  };
}
