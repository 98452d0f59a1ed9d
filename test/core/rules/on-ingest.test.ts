/**
 * Rules woven into the ingest ports (functions/core/rules/on-ingest.ts): evaluation after the store,
 * engine committed before the protocol state, delivery through the outbox — and the failure paths a
 * Kinesis batch meets (protocol commit failing, a rule-state version race, a sink down), each of which
 * must end with exactly one delivery per transition.
 */
import { describe, expect, it } from 'vitest';
import { ConflictError, TransientError } from '../../../functions/core/errors.js';
import type { StorePort } from '../../../functions/core/ingest.js';
import type { MessageProcessor } from '../../../functions/core/processor.js';
import type { EnrichedReading, LifecycleEvent, MessageOutcome } from '../../../functions/core/reading.js';
import { redeliverOutbox } from '../../../functions/core/rules/delivery.js';
import {
  type AlertTransition,
  InMemoryAlertStore,
  InMemoryRuleStateStore,
  InMemoryRuleStore,
  RuleEngine,
  type RuleState,
  validateRule,
} from '../../../functions/core/rules/index.js';
import { rulesOnIngest } from '../../../functions/core/rules/on-ingest.js';

const T0 = 1_700_000_000_000;

const reading = (value: number, t: number): EnrichedReading => ({
  protocol: 'sparkplug',
  deviceId: 'b1',
  group: 'plant',
  metric: 'Current/L1',
  type: 'Double',
  value,
  time: t,
  historical: false,
  transient: false,
  quality: 'GOOD',
  enrichment: { deviceType: 'breaker', applications: [] },
});

/** A processor whose commit can be made to fail, and whose messages carry the given events. */
class FakeProcessor implements MessageProcessor {
  failCommits = 0;
  commits = 0;
  aborts = 0;
  events: LifecycleEvent[] = [];
  async handle(): Promise<MessageOutcome> {
    const events = this.events;
    this.events = [];
    return {
      protocol: 'sparkplug',
      kind: 'data',
      readings: [],
      events,
      actions: [],
      deviceId: 'b1',
    } as MessageOutcome;
  }
  async commit() {
    if (this.failCommits > 0) {
      this.failCommits--;
      throw new TransientError('THROTTLED', 'protocol state write throttled');
    }
    this.commits++;
  }
  abort() {
    this.aborts++;
  }
}

class FlakyState extends InMemoryRuleStateStore {
  conflicts = 0;
  throttledReads = 0;
  override async getMany(keys: Parameters<InMemoryRuleStateStore['getMany']>[0]) {
    if (this.throttledReads > 0) {
      this.throttledReads--;
      throw new TransientError('THROTTLED', 'rule state read throttled');
    }
    return super.getMany(keys);
  }
  override async put(state: RuleState, expected: number | undefined) {
    if (this.conflicts > 0) {
      this.conflicts--;
      throw new ConflictError('rule state moved');
    }
    return super.put(state, expected);
  }
}

async function setup(
  condition = 'value > 80 clear value < 75',
  select: Record<string, unknown> = { metric: 'Current/L1' },
) {
  const rules = new InMemoryRuleStore();
  await rules.put(
    validateRule({ name: 'oc', severity: 'major', condition, select }, { id: 'oc', now: T0 }),
    'create',
  );
  const state = new FlakyState();
  const alerts = new InMemoryAlertStore();
  const delivered: AlertTransition[] = [];
  let sinkDown = false;
  const sink = {
    async deliver(t: AlertTransition) {
      if (sinkDown) throw new TransientError('WEBHOOK_STATUS', 'webhook answered 503');
      delivered.push(t);
    },
  };
  let now = T0 + 60_000;
  const clock = () => now;
  const processor = new FakeProcessor();
  const stored: EnrichedReading[] = [];
  const store: StorePort = {
    async write(rs) {
      stored.push(...rs);
      return { written: rs.length, duplicates: 0, rejected: [] };
    },
  };
  const engine = new RuleEngine({ rules, state, alerts, clock, rulesTtlMs: 0 });
  const errors: string[] = [];
  const wired = rulesOnIngest(
    { processor, store },
    {
      engine,
      alerts,
      sink,
      clock,
      // The enricher's cache: b1 is a known breaker (its readings carry the same enrichment).
      enrichmentOf: (id) => (id === 'b1' ? reading(0, 0).enrichment : undefined),
      onError: (what) => errors.push(what),
    },
  );
  /** One batch as processBatch drives it; false when it was given up (to be redelivered). */
  const batch = async (readings: EnrichedReading[]): Promise<boolean> => {
    wired.processor.begin!();
    // As processBatch: each outcome of `handle` is told to `handled`.
    wired.processor.handled!(
      await wired.processor.handle({ topic: 't', payload: new Uint8Array(), receivedAt: T0 }),
    );
    await wired.store.write(readings);
    try {
      await wired.processor.commit!();
      return true;
    } catch {
      wired.processor.abort!();
      return false;
    }
  };
  return {
    batch,
    wired,
    delivered,
    alerts,
    state,
    processor,
    errors,
    sink,
    setSinkDown: (v: boolean) => {
      sinkDown = v;
    },
    /** A clock tick a minute later: the outbox delivers what was recorded and never dispatched. */
    outbox: () => {
      now += 61_000;
      return redeliverOutbox({ sink, alerts, clock });
    },
  };
}

describe('rules on the ingest ports', () => {
  it('evaluates stored readings, commits before the protocol state, delivers each transition once', async () => {
    const s = await setup();
    expect(await s.batch([reading(70, T0), reading(85, T0 + 1000)])).toBe(true);
    expect(s.delivered.map((t) => t.kind)).toEqual(['open']);
    expect(s.processor.commits).toBe(1);
    expect(await s.batch([reading(78, T0 + 2000), reading(74, T0 + 3000)])).toBe(true);
    expect(s.delivered.map((t) => t.kind)).toEqual(['open', 'resolve']);
    // Everything dispatched: the outbox is empty.
    expect((await s.outbox()).delivered).toBe(0);
  });

  it('a batch redelivered after its protocol commit failed fires nothing twice (outbox delivers once)', async () => {
    const s = await setup();
    s.processor.failCommits = 1;
    const batch = [reading(70, T0), reading(85, T0 + 1000)];
    expect(await s.batch(batch)).toBe(false); // the engine committed, the protocol state did not
    expect(s.delivered).toHaveLength(0);
    expect(await s.batch(batch)).toBe(true); // redelivered: readings at or before lastTime are skipped
    expect(s.delivered).toHaveLength(0);
    expect((await s.outbox()).delivered).toBe(1);
    expect((await s.outbox()).delivered).toBe(0);
    expect(s.delivered.map((t) => t.kind)).toEqual(['open']);
  });

  it('a rule-state version race gives the batch up; the redelivery yields the same transition, recorded once', async () => {
    const s = await setup();
    s.state.conflicts = 1;
    const batch = [reading(70, T0), reading(85, T0 + 1000)];
    expect(await s.batch(batch)).toBe(false);
    expect(s.processor.aborts).toBe(1);
    expect(s.processor.commits).toBe(0); // the protocol state was not written either
    expect(await s.batch(batch)).toBe(true);
    await s.outbox();
    expect(s.delivered.map((t) => t.kind)).toEqual(['open']);
    const alerts = await s.alerts.list({});
    expect(alerts.items).toHaveLength(1);
    expect((await s.alerts.history(alerts.items[0]!.id)).length).toBe(1);
  });

  it('a sink that is down does not fail the batch; the clock delivers later, once', async () => {
    const s = await setup();
    s.setSinkDown(true);
    expect(await s.batch([reading(90, T0)])).toBe(true);
    expect(s.errors).toEqual(['deliver']);
    expect((await s.outbox()).failed).toBe(1);
    s.setSinkDown(false);
    expect((await s.outbox()).delivered).toBe(1);
    expect((await s.outbox()).delivered).toBe(0);
    expect(s.delivered).toHaveLength(1);
  });

  it('a series spread over the chunks of a batch is read once and evaluated once, in time order, at commit', async () => {
    const s = await setup('value > 80 for 2s clear value < 75');
    s.wired.processor.begin!();
    // Chunks stored in an order that is not time order: evaluated as one series at commit.
    await s.wired.store.write([reading(85, T0 + 2000), reading(86, T0 + 3000)]);
    await s.wired.store.write([reading(70, T0), reading(84, T0 + 1000)]);
    expect(s.state.calls.getMany).toBe(0); // nothing read while chunks are stored
    await s.wired.processor.commit!();
    expect(s.state.calls.getMany).toBe(1);
    // Held from 1000 (84) to 3000: 2 s, so open at 3000; in chunk order, the hold would have restarted.
    expect(s.delivered.map((t) => [t.kind, t.at])).toEqual([['open', T0 + 3000]]);
  });

  it('a rule-state read throttled at commit keeps the collected readings for the retried commit', async () => {
    const s = await setup();
    s.state.throttledReads = 1;
    s.wired.processor.begin!();
    s.wired.processor.handled!(
      await s.wired.processor.handle({ topic: 't', payload: new Uint8Array(), receivedAt: T0 }),
    );
    await s.wired.store.write([reading(70, T0), reading(85, T0 + 1000)]);
    // The ingest path retries a commit that failed with a retryable error (withRetry in core/ingest).
    await expect(s.wired.processor.commit!()).rejects.toThrow('throttled');
    expect(s.delivered).toHaveLength(0);
    await s.wired.processor.commit!();
    expect(s.delivered.map((t) => t.kind)).toEqual(['open']);
    expect(s.processor.commits).toBe(1);
    expect(s.errors).toEqual([]);
  });

  it('evaluates the lifecycle events of the batch at commit (event rules)', async () => {
    const s = await setup('on death', { deviceType: 'breaker' });
    s.processor.events = [{ type: 'death', protocol: 'sparkplug', deviceId: 'b1', time: T0 + 5000 }];
    expect(await s.batch([reading(1, T0)])).toBe(true);
    expect(s.delivered.map((t) => [t.kind, t.reason])).toEqual([['open', 'death']]);
  });

  it('selects the events of a device with no reading in the batch by its cached enrichment', async () => {
    const s = await setup('on death', { deviceType: 'breaker' });
    s.processor.events = [
      { type: 'death', protocol: 'sparkplug', deviceId: 'b1', time: T0 + 5000 },
      { type: 'death', protocol: 'sparkplug', deviceId: 'unknown-1', time: T0 + 5000 },
    ];
    expect(await s.batch([])).toBe(true);
    expect(s.delivered.map((t) => [t.kind, t.reason, t.deviceId])).toEqual([['open', 'death', 'b1']]);
  });
});
