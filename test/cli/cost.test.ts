import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TimestreamQueryClient } from '@aws-sdk/client-timestream-query';
import type {
  TimestreamWriteClient,
  WriteRecordsCommand,
  WriteRecordsCommandInput,
} from '@aws-sdk/client-timestream-write';
import { describe, expect, it } from 'vitest';
import { TimestreamTelemetryStore } from '../../functions/adapters/timestream-store.js';
import { ValidationError } from '../../functions/core/errors.js';
import { formatComparison, formatReport, parseCostArgs } from '../../infra/cli/cost.js';
import { compareStores, icebergRowBytes } from '../../infra/cost/compare.js';
import {
  DEFAULT_INPUTS,
  DYNAMO_STORE_MEASURED,
  deployedAlarms,
  estimateCost,
} from '../../infra/cost/model.js';
import { PRICES } from '../../infra/cost/prices.js';
import { sampleReading, timestreamWriteShape } from '../../infra/cost/timestream-shape.js';
import { workedExample } from '../../infra/cost/worked-example.js';

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
    // Every message through the broker (no LwM2M Basic Ingest), so all of them are billed messages.
    const r = estimateCost({
      devices: 10_000,
      intervalSeconds: 1,
      readingsPerMessage: 1,
      lwm2mBasicIngestShare: 0,
    });
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

describe('telemetry store cost (default: packed DynamoDB, from measured capacity)', () => {
  const fleet = { devices: 1000, intervalSeconds: 10, readingsPerMessage: 50 };

  it('stays at or under $0.10 per million readings at 50 readings per message, storage and queries included', () => {
    const r = estimateCost(fleet);
    expect(r.inputs.store).toBe('dynamodb');
    expect(r.store.perMillionReadings).toBeLessThanOrEqual(0.1);
    expect(r.store.perMillionReadingsAllIn).toBeLessThanOrEqual(0.1);
    expect(r.store.fixedMonthly).toBe(0);
    const items = r.lines.filter((l) => l.store).map((l) => l.item);
    expect(items).toEqual([
      expect.stringMatching(/^telemetry writes \(2\.00 WRU\/message, measured\)/),
      expect.stringMatching(/^telemetry redeliveries/),
      expect.stringMatching(/^telemetry storage \(30 days/),
      expect.stringMatching(/^API queries/),
    ]);
  });

  it('bills writes from the measured WRU per message at the on-demand price', () => {
    const r = estimateCost(fleet);
    const writes = r.lines.find((l) => l.item.startsWith('telemetry writes'))!;
    const expected =
      r.volumes.messagesPerMonth *
      DYNAMO_STORE_MEASURED.wruPerMessage[50] *
      (PRICES.dynamodb.onDemandWritePerMillion / 1e6);
    expect(writes.monthly).toBeCloseTo(expected, 6);
    // 12.96 billion readings a month, 15.1 stored bytes each, 30 days, $0.25/GB-month.
    const storage = r.lines.find((l) => l.item.startsWith('telemetry storage'))!;
    expect(storage.monthly).toBeCloseTo(((12.96e9 * 15.1) / 1e9) * 0.25, 3);
    expect(
      estimateCost({ ...fleet, retentionDays: 60 }).lines.find((l) => l.item.startsWith('telemetry storage'))!
        .monthly,
    ).toBeCloseTo(storage.monthly * 2, 6);
  });

  it('reproduces the measured query capacity at the measured fleet shape', () => {
    const one = (q: Partial<Parameters<typeof estimateCost>[0]>) =>
      estimateCost({
        ...fleet,
        devices: 1,
        bucketQueriesPerDevicePerDay: 0,
        rawQueriesPerDevicePerDay: 0,
        latestQueriesPerDevicePerDay: 0,
        queriedSeriesPerDevice: 0,
        ...q,
      }).lines.find((l) => l.item.startsWith('API queries'))!.monthly / 30;
    const rru = PRICES.dynamodb.onDemandReadPerMillion / 1e6;
    expect(one({ rawQueriesPerDevicePerDay: 1 })).toBeCloseTo(
      DYNAMO_STORE_MEASURED.query.rawHourRru * rru,
      12,
    );
    expect(one({ bucketQueriesPerDevicePerDay: 1 })).toBeCloseTo(
      DYNAMO_STORE_MEASURED.query.bucketsWarmRru * rru,
      12,
    );
    expect(one({ latestQueriesPerDevicePerDay: 1 })).toBeCloseTo(
      DYNAMO_STORE_MEASURED.query.latestRru * rru,
      12,
    );
  });

  it('costs far more per reading at 1 reading per message (one frame and one latest write each)', () => {
    const one = estimateCost({ ...fleet, readingsPerMessage: 1 });
    const fifty = estimateCost(fleet);
    expect(one.store.perMillionReadings / fifty.store.perMillionReadings).toBeGreaterThan(20);
    expect(one.lines.find((l) => l.item.startsWith('telemetry writes'))!.item).toContain(
      '2.00 WRU/message, measured',
    );
    expect(
      estimateCost({ ...fleet, readingsPerMessage: 20 }).lines.find((l) =>
        l.item.startsWith('telemetry writes'),
      )!.item,
    ).toContain('interpolated');
  });

  it('shows fixed monthly costs apart: stream-hours, connectivity, log storage, metrics, alarms, dashboards, secrets', () => {
    const r = estimateCost(fleet);
    const fixed = r.lines.filter((l) => !l.variable).map((l) => l.item.replace(/ \(.*$/, ''));
    expect(fixed).toEqual([
      'connectivity',
      'on-demand stream-hours',
      'log storage',
      'custom metrics',
      'alarms',
      'dashboards',
      'secrets',
    ]);
    expect(r.fixedMonthly).toBeCloseTo(
      r.lines.filter((l) => !l.variable).reduce((s, l) => s + l.monthly, 0),
      9,
    );
    expect(r.lines.find((l) => l.item.startsWith('alarms'))!.monthly).toBeCloseTo(
      deployedAlarms('dynamodb') * 0.1,
      9,
    );
    const text = formatReport(r);
    expect(text).toContain('TELEMETRY STORE: DynamoDB, packed (default)');
    expect(text).toContain(DYNAMO_STORE_MEASURED.command);
    expect(text).toMatch(/WHOLE PIPELINE incl\. store: usage-priced .* fixed \$91\.22 per month/);
  });

  it('keeps Timestream as an explicit choice with its own lines', () => {
    const r = estimateCost({ ...fleet, store: 'timestream' });
    expect(r.store.name).toBe('Timestream for LiveAnalytics');
    expect(r.lines.filter((l) => l.store).map((l) => l.item.replace(/ \(.*$/, ''))).toEqual([
      'writes',
      'memory store',
      'magnetic store',
    ]);
    // Three more alarms (magnetic-store rejections, report upload failures, rejected readings counted
    // from the reports) and the report reader's three metrics (ADR 0024).
    expect(r.inputs.alarms).toBe(deployedAlarms('dynamodb') + 3);
    expect(r.inputs.customMetrics).toBe(DEFAULT_INPUTS.customMetrics + 3);
    expect(r.lines.some((l) => l.item.startsWith('telemetry writes'))).toBe(false);
    expect(() => estimateCost({ store: 'influx' as never })).toThrow(
      expect.objectContaining({ field: 'store' }),
    );
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

  it('parses the store and its retention', () => {
    expect(parseCostArgs(['--store', 'timestream', '--retention-days', '7'])).toEqual({
      store: 'timestream',
      retentionDays: 7,
    });
    expect(() => parseCostArgs(['--store', 'influx'])).toThrow(expect.objectContaining({ field: 'store' }));
  });

  it('rejects bad values naming the flag', () => {
    expect(() => parseCostArgs(['--devices', '-1'])).toThrow(ValidationError);
    expect(() => parseCostArgs(['--devices', '0'])).toThrow(/--devices must be a positive number/);
    expect(() => parseCostArgs(['--kinesis', 'fast'])).toThrow(expect.objectContaining({ field: 'kinesis' }));
  });
});

describe('dualpath cost --compare-stores (ADR 0013 candidates)', () => {
  it('prices the DynamoDB candidate as the cost model does and names what is not priced', () => {
    const fleet = { devices: 1000, intervalSeconds: 10, readingsPerMessage: 50 };
    const [dynamo, s3, influx] = compareStores(fleet);
    expect(dynamo?.known).toBeCloseTo(estimateCost(fleet).store.perMillionReadings, 9);
    expect(s3?.storage).toBeUndefined();
    expect(s3?.unpriced.join(' ')).toMatch(/S3 Tables storage/);
    // Firehose bills the JSON row per reading: 1e6 rows × row bytes at $0.075/GB, plus one latest WRU a message.
    const firehose = ((1e6 * icebergRowBytes()) / 1024 ** 3) * 0.075;
    expect(s3?.writes).toBeCloseTo(firehose + 0.625 / 50, 9);
    expect(influx?.known).toBe(0);
    expect(influx?.unpriced[0]).toMatch(/instance-hours/);
    expect(formatComparison(fleet)).toContain('1 reading(s) per message:');
    expect(parseCostArgs(['--compare-stores'])).toEqual({ compareStores: true });
  });
});

describe('Timestream write size: what the adapter really sends (ADR 0020)', () => {
  it('meters the requests TimestreamTelemetryStore.write sends for the same batch', async () => {
    for (const k of [1, 50]) {
      const shape = timestreamWriteShape(1000, 100, k, 10);
      // The same batch through the real adapter, its requests captured.
      const sent: WriteRecordsCommandInput[] = [];
      const store = new TimestreamTelemetryStore({
        writeClient: {
          send: async (c: WriteRecordsCommand) => {
            sent.push(c.input);
            return {};
          },
        } as unknown as TimestreamWriteClient,
        queryClient: {} as TimestreamQueryClient,
        database: 'd',
        table: 't',
      });
      const readings = [];
      for (let m = 0; m < 100; m++) for (let j = 0; j < k; j++) readings.push(sampleReading(m, j, 1e12));
      const res = await store.write(readings);
      expect(res.written).toBe(100 * k);
      // Metering written out independently: shared attributes once, each record's pairs + 8 B of time.
      const len = (x?: string) => Buffer.byteLength(x ?? '');
      const pairs = (xs?: Array<{ Name?: string; Value?: string }>) =>
        (xs ?? []).reduce((n, x) => n + len(x.Name) + len(x.Value), 0);
      const units = sent.reduce((n, req) => {
        const bytes =
          len(req.CommonAttributes?.MeasureName) +
          pairs(req.CommonAttributes?.Dimensions) +
          (req.Records ?? []).reduce((b, r) => b + pairs(r.Dimensions) + pairs(r.MeasureValues) + 8, 0);
        return n + Math.ceil(bytes / 1024);
      }, 0);
      expect(shape.unitsPerReading).toBeCloseTo(units / (100 * k), 9);
      // The old guess (24 + 28 B per record, 100 records per request) was at least 2× too small.
      expect(shape.unitsPerReading).toBeGreaterThan((2 * Math.ceil((100 * 52 + 120) / 1024)) / 100);
    }
  });

  it('bills the Timestream writes from that shape', () => {
    const r = estimateCost({
      devices: 1000,
      intervalSeconds: 10,
      readingsPerMessage: 50,
      store: 'timestream',
    });
    const shape = timestreamWriteShape(1000, 100, 50, 10);
    const writes = r.lines.find((l) => l.service === 'Timestream' && l.item.startsWith('writes'))!;
    expect(writes.monthly).toBeCloseTo(
      ((r.volumes.readingsPerMonth * shape.unitsPerReading) / 1e6) * PRICES.timestream.writesPerMillionKiB,
      6,
    );
  });
});

describe('echoes, the API and the logs are priced', () => {
  const fleet = { devices: 1000, intervalSeconds: 10, readingsPerMessage: 50 };
  const line = (r: ReturnType<typeof estimateCost>, prefix: string) =>
    r.lines.find((l) => l.item.startsWith(prefix));

  it('counts each binding-topic LwM2M uplink delivered back to its sender as one more message, none without echo', () => {
    const plain = { ...fleet, lwm2mBasicIngestShare: 0 };
    const r = estimateCost(plain);
    const messaging = line(r, 'messaging')!.monthly;
    expect(line(r, 'LwM2M echoes')!.monthly).toBeCloseTo(messaging * 0.5, 6);
    expect(line(estimateCost({ ...plain, lwm2mEchoShare: 0 }), 'LwM2M echoes')).toBeUndefined();
    expect(line(estimateCost({ ...plain, lwm2mShare: 1 }), 'LwM2M echoes')!.monthly).toBeCloseTo(
      messaging,
      6,
    );
  });

  it('charges no messaging and no echo for LwM2M uplinks by Basic Ingest (the default, ADR 0024), rules still', () => {
    const ingest = estimateCost(fleet);
    const plain = estimateCost({ ...fleet, lwm2mBasicIngestShare: 0 });
    expect(line(ingest, 'LwM2M echoes')).toBeUndefined();
    // Half the messages are LwM2M: Basic Ingest halves the messaging line (first tier, linear).
    expect(line(ingest, 'messaging')!.monthly).toBeCloseTo(line(plain, 'messaging')!.monthly / 2, 6);
    expect(line(ingest, 'rules triggered')!.monthly).toBe(line(plain, 'rules triggered')!.monthly);
    // A mixed fleet: the echo counts only the binding-topic share.
    const mixed = estimateCost({ ...fleet, lwm2mBasicIngestShare: 0.5 });
    expect(line(mixed, 'LwM2M echoes')!.monthly).toBeCloseTo(line(plain, 'LwM2M echoes')!.monthly / 2, 6);
    expect(() => estimateCost({ ...fleet, lwm2mBasicIngestShare: 1.5 })).toThrow(/lwm2mBasicIngestShare/);
  });

  it('prices every API query as an API Gateway request and a Lambda invocation', () => {
    const r = estimateCost(fleet);
    const requests = 1000 * 30 * (24 + 24 + 288);
    expect(line(r, 'REST requests')!.monthly).toBeCloseTo(
      (requests / 1e6) * PRICES.apiGateway.restPerMillion,
      6,
    );
    expect(line(r, 'API requests')!.monthly).toBeGreaterThan(
      (requests / 1e6) * PRICES.lambda.requestsPerMillion,
    );
  });

  it('keeps log storage, custom metrics, alarms and dashboards in the fixed monthly costs', () => {
    const r = estimateCost(fleet);
    for (const p of [
      'log storage',
      'custom metrics',
      'alarms',
      'dashboards',
      'secrets',
      'on-demand stream-hours',
    ])
      expect(line(r, p)?.variable, p).toBe(false);
    expect(line(r, 'log ingestion')!.variable).toBe(true);
  });
});

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

describe('the worked example in docs/deploy.md', () => {
  it('is what the model computes (1,000 devices, one message per 10 s, 1 and 50 readings per message)', () => {
    const doc = readFileSync(join(REPO_ROOT, 'docs/deploy.md'), 'utf8');
    const m = /<!-- cost-worked-example:start -->\n([\s\S]*?)\n<!-- cost-worked-example:end -->/.exec(doc);
    expect(m, 'docs/deploy.md has the worked example between its markers').not.toBeNull();
    expect(m![1]).toBe(workedExample());
    // And the table holds both stores at both shapes, fixed costs apart.
    for (const row of [
      '| DynamoDB, packed (default) | 1 |',
      '| DynamoDB, packed (default) | 50 |',
      '| Timestream for LiveAnalytics | 1 |',
      '| Timestream for LiveAnalytics | 50 |',
      '| Kinesis | on-demand stream-hours (2 streams) |',
    ])
      expect(m![1]).toContain(row);
  });

  it('matches the README figures', () => {
    const readme = readFileSync(join(REPO_ROOT, 'README.md'), 'utf8').replace(/\s+/g, ' ');
    const r = estimateCost({ devices: 1000, intervalSeconds: 10, readingsPerMessage: 50 });
    expect(readme).toContain(`$${r.fixedMonthly.toFixed(2)} per`);
    expect(readme).toContain(`$${r.perMillionReadings.toFixed(4)} per million`);
  });
});
