import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { capacityRow, capacityTable, QUOTAS } from '../../infra/cost/capacity.js';
import { estimateCost } from '../../infra/cost/model.js';
import { PRICES } from '../../infra/cost/prices.js';

const REPO_ROOT = join(fileURLToPath(import.meta.url), '..', '..', '..');

describe('capacity plan', () => {
  it('sizes shards by the larger of the record and byte limits per stream', () => {
    const r = capacityRow(1_000_000);
    const recordBytes = estimateCost({ devices: 1_000_000 }).volumes.kinesisRecordBytes;
    const perStream = 100_000 / 2;
    expect(r.shardsPerStream).toBe(
      Math.max(
        Math.ceil(perStream / PRICES.kinesis.recordsPerShardSecond),
        Math.ceil((perStream * recordBytes) / PRICES.kinesis.bytesPerShardSecond),
      ),
    );
    // 50-reading messages are over 1 KB: the byte limit binds before the 1,000 records/s.
    expect(r.shardsPerStream).toBeGreaterThan(perStream / PRICES.kinesis.recordsPerShardSecond);
    expect(r.shards).toBe(2 * r.shardsPerStream);
  });

  it('names the quota reached first and those exceeded', () => {
    const small = capacityRow(10_000);
    expect(small.exceeded).toEqual([]);
    expect(small.binding.share).toBeCloseTo(1_000 / QUOTAS.iotPublishesPerSecond, 9);
    const big = capacityRow(1_000_000);
    expect(big.exceeded).toContain('IoT Core publishes 20,000/s');
    expect(big.exceeded).not.toContain('Lambda concurrency 1,000');
    // A fleet on one message a second at 1M devices needs more shards than the account default.
    expect(capacityRow(1_000_000, { intervalSeconds: 1 }).exceeded).toContain('Kinesis shards 500/account');
  });

  it('takes the monthly cost from the cost model', () => {
    expect(capacityRow(100_000).monthlyCost).toBe(estimateCost({ devices: 100_000 }).monthlyTotal);
  });

  it('docs/benchmarks.md carries the generated table', () => {
    const doc = readFileSync(join(REPO_ROOT, 'docs/benchmarks.md'), 'utf8');
    const m = /<!-- capacity:begin -->\n([\s\S]*?)<!-- capacity:end -->/.exec(doc);
    expect(m, 'docs/benchmarks.md has the capacity table between its markers').not.toBeNull();
    expect(m![1]).toBe(capacityTable());
  });
});
