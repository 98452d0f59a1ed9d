/**
 * A short soak through the real path (stack in process, fleet in a child process): samples are taken,
 * every judged series gets a verdict, and the accounting is exact. The 10-minute run is `npm run soak`.
 */
import { describe, expect, it } from 'vitest';
import { formatResult, memoryLimitMB, runSoak } from '../../scripts/soak.js';

describe('memoryLimitMB', () => {
  it('reads DuckDB memory limits in MiB (MB decimal, MiB binary), undefined when unreadable', () => {
    expect(memoryLimitMB('512MiB')).toBe(512);
    expect(memoryLimitMB('512MB')).toBeCloseTo(488.3, 1);
    expect(memoryLimitMB('1.5GiB')).toBe(1536);
    expect(memoryLimitMB(' 64 mb ')).toBeCloseTo(61.04, 2);
    expect(memoryLimitMB('lots')).toBeUndefined();
  });
});

describe('soak run', () => {
  it('samples memory and lag, judges each series and accounts for every reading', async () => {
    const r = await runSoak({
      devices: 6,
      rate: 2,
      readingsPerMessage: 5,
      seconds: 14,
      interval: 2,
      warmup: 0,
    });
    expect(r.samples.length).toBeGreaterThanOrEqual(6);
    for (const s of r.samples) {
      expect(s.stackHeapMB).toBeGreaterThan(0);
      expect(s.stackRssMB).toBeGreaterThan(s.stackHeapMB);
      expect(s.stackRssOutsideDuckdbMB).toBeCloseTo(s.stackRssMB - s.duckdbMB, 0);
      expect(s.simulatorRssMB).toBeGreaterThan(0);
      expect(s.kinesaliteRssMB).toBeGreaterThan(0);
      expect(s.dynaliteRssMB).toBeGreaterThan(0);
    }
    expect(r.samples.at(-1)!.devicesOnline).toBe(6);
    expect(r.samples.some((s) => s.storedPerSecond > 0)).toBe(true);
    expect(Object.keys(r.verdicts).sort()).toEqual(
      [
        'dynaliteRssMB',
        'eventLoopP99Ms',
        'lagRecords',
        'latencyP99Ms',
        'simulatorRssMB',
        'stackHeapMB',
        'stackRssOutsideDuckdbMB',
      ].sort(),
    );
    for (const v of Object.values(r.verdicts)) expect(v.samples).toBe(r.samples.length);
    expect(r.accounting.published).toBeGreaterThan(0);
    expect(r.accounting.stored).toBe(r.accounting.published);
    expect(r.accounting.duplicates).toBe(0);
    expect(r.accounting.dlq).toBe(0);
    expect(r.failures.filter((f) => !f.includes('keeps growing'))).toEqual([]);
    expect(formatResult(r)).toMatch(/accounting after the drain: published/);
  }, 90_000);
});
