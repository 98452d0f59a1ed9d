/**
 * Issue 19's acceptance (ADR 0017): the telemetry store is down for longer than the retry budget, so
 * batches go to the DLQ — with their payloads — and the shard moves on; after the store recovers,
 * `dualpath redrive` (the stack's redrive(): the DLQ records put back on their streams, carrying their
 * first sequence numbers) brings every reading in. Then rows stored == readings published and accepted,
 * no duplicate rows, nothing quarantined, and the DLQ file is consumed. The budget is the AWS policy
 * scaled down (2 retries instead of 10,000) and the outage lasts until a batch has used it up (at least 1.5 s) instead of hours.
 */
import { describe, expect, it } from 'vitest';
import { runScenario, SCENARIOS } from '../../scripts/faults.js';

const RUN = { devices: 4, seconds: 3, rate: 3, readingsPerMessage: 5, timeoutMs: 40_000 };

describe('store outage beyond the retry budget, then redrive', () => {
  it('stores every published reading once after the redrive', async () => {
    const scenario = SCENARIOS.find((s) => s.redrive)!;
    const r = await runScenario(scenario, { ...RUN, seed: 7 });
    const before = r.beforeRedrive!;
    // The outage really outlasted the budget: records in the DLQ, readings missing before the redrive.
    expect(r.status.faults!.storeFailures).toBeGreaterThan(0);
    expect(before.dlqRecords).toBeGreaterThan(0);
    expect(before.rows).toBeLessThan(r.accepted.distinct);
    expect(before.redriven).toBe(before.dlqRecords);
    expect(r.status.redrivenRecords).toBe(before.dlqRecords);
    // After it: stored == published, 0 duplicates, nothing quarantined.
    const published = r.published.readings.sparkplug + r.published.readings.lwm2m;
    expect(published).toBeGreaterThan(100);
    expect(r.accepted.distinct).toBe(published);
    expect(r.rows.readings).toBe(published);
    expect(r.rows.distinct).toBe(r.rows.readings);
    expect(r.status.quarantined).toBe(0);
    expect(r.problems).toEqual([]);
  }, 90_000);
});
