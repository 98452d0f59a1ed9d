/**
 * The rules-clock function, whole — its one composition root (ADR 0016). Rules that need time rather
 * than data: absence (`absent for 5m`), `offline for D`, the auto-resolve of event rules and openings
 * held back by a throttle fall due on a clock; and transitions whose delivery failed (or whose function
 * crashed between commit and delivery) wait in the AlertStore's outbox. One tick:
 *
 *   engine.begin(); engine.evaluateClock(now); engine.commit() → deliver → markDispatched
 *   then the outbox: transitions recorded more than `outboxGraceMs` ago and never dispatched.
 *
 * In AWS an EventBridge schedule invokes it every minute (handler.ts); locally the stack runs `tick`
 * on a timer. Transition ids derive from due times, never the wall clock, so two ticks (or a tick and
 * a retried invocation) yield the same transitions and the AlertStore applies each once.
 */
import type { Metrics } from '@aws-lambda-powertools/metrics';
import type { Clock } from '../core/processor.js';
import { type AlertSink, dispatchTransitions, redeliverOutbox } from '../core/rules/delivery.js';
import { RuleEngine, type RuleHistory, type RuleSource } from '../core/rules/engine.js';
import type { AlertStore, RuleStateStore } from '../core/rules/store.js';

/** What the clock logs through (Powertools' Logger locally or in AWS, or a line printer). */
export interface ClockLogger {
  error(message: string, error: Error): void;
  info(message: string, data: Record<string, unknown>): void;
}

export interface RulesClockPorts {
  rules: RuleSource;
  state: RuleStateStore;
  alerts: AlertStore;
  sink: AlertSink;
  clock: Clock;
  /**
   * The telemetry store's readings, when the ingest functions write rule states behind them (ADR 0016
   * amendment 10): an absence state found due is replayed from it first.
   */
  history?: RuleHistory;
  logger?: ClockLogger;
  metrics?: Metrics;
}

export interface RulesClockSettings {
  /** How long the rule list is cached (default 30 s; 0 in tests). */
  rulesTtlMs?: number;
  /** Undispatched transitions older than this are delivered again (default 60 s). */
  outboxGraceMs?: number;
  /** The ingest functions' `stateFlushMs` (with a history): how far an absence state's replay reads. */
  stateFlushMs?: number;
}

export interface TickResult {
  transitions: number;
  delivered: number;
  failed: number;
  redelivered: number;
}

export interface RulesClock {
  /** One evaluation of everything due at `now` (default: the clock). */
  tick(now?: number): Promise<TickResult>;
  /** Lambda entry: a scheduled event in, the tick's counts out (a failure fails the invocation). */
  handler: (event: unknown) => Promise<TickResult>;
  engine: RuleEngine;
}

export function composeRulesClock(ports: RulesClockPorts, settings: RulesClockSettings = {}): RulesClock {
  const engine = new RuleEngine({
    rules: ports.rules,
    state: ports.state,
    alerts: ports.alerts,
    clock: ports.clock,
    ...(settings.rulesTtlMs !== undefined ? { rulesTtlMs: settings.rulesTtlMs } : {}),
    ...(ports.history ? { history: ports.history } : {}),
    ...(settings.stateFlushMs !== undefined ? { stateFlushMs: settings.stateFlushMs } : {}),
  });
  const onError = (t: { id: string }, error: unknown) =>
    ports.logger?.error(`rules-clock: delivery of transition ${t.id} failed`, error as Error);
  let running: Promise<TickResult> | undefined;
  const run = async (now: number): Promise<TickResult> => {
    engine.begin();
    let toDeliver: Awaited<ReturnType<RuleEngine['commit']>>;
    try {
      await engine.evaluateClock(now);
      toDeliver = await engine.commit();
    } catch (error) {
      engine.abort();
      throw error;
    }
    const d = await dispatchTransitions(toDeliver, {
      sink: ports.sink,
      alerts: ports.alerts,
      clock: ports.clock,
      onError,
    });
    const r = await redeliverOutbox({
      sink: ports.sink,
      alerts: ports.alerts,
      clock: ports.clock,
      ...(settings.outboxGraceMs !== undefined ? { graceMs: settings.outboxGraceMs } : {}),
      onError,
    });
    return {
      transitions: toDeliver.length,
      delivered: d.delivered + r.delivered,
      failed: d.failed + r.failed,
      redelivered: r.delivered,
    };
  };
  // Ticks never overlap within one instance (a slow tick makes the next one wait for it).
  const tick = async (now = ports.clock()): Promise<TickResult> => {
    while (running) await running.catch(() => {});
    running = run(now);
    try {
      return await running;
    } finally {
      running = undefined;
    }
  };
  return {
    tick,
    engine,
    handler: async () => {
      const result = await tick();
      if (ports.metrics) {
        ports.metrics.addMetric('AlertTransitionsByClock', 'Count', result.transitions);
        ports.metrics.addMetric('AlertDeliveriesFailed', 'Count', result.failed);
        ports.metrics.publishStoredMetrics();
      }
      ports.logger?.info('rules-clock tick', { ...result });
      return result;
    },
  };
}
