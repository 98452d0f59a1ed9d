/** The DynamoDB TelemetryStore against a real dynalite: the port's semantics, as the DuckDB suite checks them. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DynamoTelemetryStore } from '../../functions/adapters/dynamo-telemetry-store.js';
import type { EnrichedReading, ReadingValue } from '../../functions/core/reading.js';
import { aggregateBuckets } from '../../functions/core/telemetry.js';
import { ensureTable } from '../../infra/local/clients.js';
import { type LocalDynamo, startDynalite } from '../helpers/dynalite.js';

const T0 = 1_700_000_000_000;
let dynamo: LocalDynamo;
let store: DynamoTelemetryStore;

const r = (
  metric: string,
  time: number,
  value: ReadingValue,
  extra: Partial<EnrichedReading> = {},
): EnrichedReading => ({
  protocol: 'sparkplug',
  deviceId: 'dev',
  metric,
  type: 'Double',
  value,
  time,
  historical: false,
  transient: false,
  quality: 'GOOD',
  enrichment: { deviceType: 't', applications: [] },
  ...extra,
});

beforeAll(async () => {
  dynamo = await startDynalite();
  await ensureTable(dynamo.client, 'telemetry-t', { ttlAttribute: 'expiresAt' });
  store = new DynamoTelemetryStore({ client: dynamo.doc, tableName: 'telemetry-t' });
});
afterAll(async () => {
  await dynamo.stop();
});

describe('DynamoTelemetryStore', () => {
  it('writes idempotently, skips transient readings, and keeps historical ones out of latest', async () => {
    const batch = [
      r('Temp', T0, 20),
      r('Temp', T0 + 1000, 21),
      r('Temp', T0 - 60_000, 15, { historical: true }),
      r('Flag', T0, true, { transient: true }),
    ];
    const first = await store.write(batch);
    expect(first).toMatchObject({ written: 3, skipped: 1 });
    await store.write(batch);
    const raw = await store.queryRaw({
      deviceId: 'dev',
      metric: 'Temp',
      from: T0 - 100_000,
      to: T0 + 10_000,
    });
    expect(raw.points.map((p) => [p.time, p.value, p.historical])).toEqual([
      [T0 - 60_000, 15, true],
      [T0, 20, false],
      [T0 + 1000, 21, false],
    ]);
    const latest = await store.latest({ deviceId: 'dev' });
    expect(latest.map((p) => [p.metric, p.value])).toEqual([['Temp', 21]]);
  });

  it('round-trips every value kind', async () => {
    const values: ReadingValue[] = [
      1.5,
      -7,
      2n ** 70n,
      -(2n ** 40n),
      'text',
      true,
      false,
      null,
      new Uint8Array([1, 2]),
      [1, 'a', null],
      Number.NaN,
    ];
    await store.write(values.map((v, i) => r(`k${i}`, T0 + i, v, { deviceId: 'kinds' })));
    for (const [i, v] of values.entries()) {
      const [p] = (await store.queryRaw({ deviceId: 'kinds', metric: `k${i}`, from: T0, to: T0 + 100 }))
        .points;
      expect(p?.value, `kind ${i}`).toEqual(v);
    }
  });

  it('pages raw points with a cursor in both orders, across series, half-open ranges and sub-devices', async () => {
    const rs = [0, 1, 2, 3, 4].flatMap((i) => [
      r('A', T0 + i * 10, i, { deviceId: 'pg' }),
      r('B', T0 + i * 10, 10 + i, { deviceId: 'pg', subDevice: 'child' }),
    ]);
    await store.write(rs);
    for (const order of ['asc', 'desc'] as const) {
      const seen: number[] = [];
      let nextToken: string | undefined;
      do {
        const page = await store.queryRaw({
          deviceId: 'pg',
          from: T0,
          to: T0 + 40,
          order,
          limit: 3,
          ...(nextToken ? { nextToken } : {}),
        });
        seen.push(...page.points.map((p) => p.value as number));
        nextToken = page.nextToken;
      } while (nextToken);
      expect(seen.length).toBe(8); // T0+40 is excluded
      expect([...seen].sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 10, 11, 12, 13]);
    }
    const nodeOnly = await store.queryRaw({ deviceId: 'pg', subDevice: '', from: T0, to: T0 + 100 });
    expect(nodeOnly.points.every((p) => p.subDevice === undefined)).toBe(true);
  });

  it('computes buckets exactly like the reference aggregation', async () => {
    const rs = Array.from({ length: 50 }, (_, i) => r('V', T0 + i * 700, (i * 37) % 11, { deviceId: 'bk' }));
    await store.write(rs);
    const q = {
      deviceId: 'bk',
      metric: 'V',
      from: T0,
      to: T0 + 35_000,
      intervalMs: 5000,
      aggs: ['avg', 'min', 'max', 'count', 'first', 'last'] as const,
    };
    const expected = aggregateBuckets(
      rs.map((x) => ({ ...x, deviceType: 't' })),
      { ...q, aggs: [...q.aggs] },
    );
    expect(await store.queryBuckets({ ...q, aggs: [...q.aggs] })).toEqual(expected);
  });
});
