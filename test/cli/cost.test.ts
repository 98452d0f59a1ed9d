import { describe, expect, it } from 'vitest';
import { ValidationError } from '../../functions/core/errors.js';
import { parseCostArgs } from '../../infra/cli/cost.js';
import { estimateCost } from '../../infra/cost/model.js';
import { PRICES } from '../../infra/cost/prices.js';

describe('cost model', () => {
  it('counts messages and readings from the fleet shape', () => {
    const r = estimateCost({ devices: 100, intervalSeconds: 60, readingsPerMessage: 10 });
    expect(r.volumes.messagesPerMonth).toBe(100 * 43_200);
    expect(r.volumes.readingsPerMonth).toBe(100 * 43_200 * 10);
  });

  it('bills IoT messaging per 5 KB unit: a 6 KB message costs two', () => {
    const small = estimateCost({ readingsPerMessage: 50, bytesPerReading: 18 });
    const big = estimateCost({ readingsPerMessage: 50, bytesPerReading: 120 });
    const messaging = (r: ReturnType<typeof estimateCost>) =>
      r.lines.find((l) => l.item.startsWith('messaging'))!.monthly;
    expect(messaging(big) / messaging(small)).toBeCloseTo(2, 5);
  });

  it('applies the cheaper messaging tier above one billion messages', () => {
    const r = estimateCost({ devices: 10_000, intervalSeconds: 1, readingsPerMessage: 1 });
    const messaging = r.lines.find((l) => l.item.startsWith('messaging'))!.monthly;
    const messages = r.volumes.messagesPerMonth;
    expect(messaging).toBeLessThan((messages / 1e6) * PRICES.iot.messagingTiers[0].perMillion);
    expect(messaging).toBeGreaterThan((messages / 1e6) * PRICES.iot.messagingTiers[2].perMillion);
  });

  it('makes batching readings into messages the biggest lever (1 vs 50 per message)', () => {
    const one = estimateCost({ devices: 1000, intervalSeconds: 10, readingsPerMessage: 1 });
    const fifty = estimateCost({ devices: 1000, intervalSeconds: 10, readingsPerMessage: 50 });
    expect(one.perMillionReadings / fifty.perMillionReadings).toBeGreaterThan(10);
  });

  it('adds the lines up to the total', () => {
    const r = estimateCost({});
    expect(r.lines.reduce((s, l) => s + l.monthly, 0)).toBeCloseTo(r.monthlyTotal, 6);
    expect(r.perMillionReadings).toBeCloseTo((r.monthlyTotal / r.volumes.readingsPerMonth) * 1e6, 9);
  });

  it('sizes provisioned shards from records/s and bytes/s', () => {
    const r = estimateCost({
      devices: 50_000,
      intervalSeconds: 10,
      readingsPerMessage: 1,
      kinesisMode: 'provisioned',
    });
    // 5,000 msg/s over 2 streams = 2,500 records/s per stream → 3 shards each.
    expect(r.lines.find((l) => l.item.startsWith('provisioned shard-hours'))!.item).toContain('3 per stream');
  });
});

describe('dualpath cost arguments', () => {
  it('parses flags into model inputs', () => {
    expect(
      parseCostArgs([
        '--devices',
        '10',
        '--interval',
        '5',
        '--readings-per-message',
        '50',
        '--kinesis',
        'provisioned',
      ]),
    ).toEqual({
      devices: 10,
      intervalSeconds: 5,
      readingsPerMessage: 50,
      kinesisMode: 'provisioned',
    });
  });

  it('rejects bad values naming the flag', () => {
    expect(() => parseCostArgs(['--devices', '-1'])).toThrow(ValidationError);
    expect(() => parseCostArgs(['--devices', '0'])).toThrow(/--devices must be a positive number/);
    expect(() => parseCostArgs(['--kinesis', 'fast'])).toThrow(expect.objectContaining({ field: 'kinesis' }));
  });
});
