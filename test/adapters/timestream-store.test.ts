/** Timestream adapter request shapes, rejection handling, retries and SQL; the port semantics run in the contract suite (timestream-telemetry.contract.test.ts). */
import { QueryCommand, TimestreamQueryClient } from '@aws-sdk/client-timestream-query';
import {
  RejectedRecordsException,
  ThrottlingException,
  TimestreamWriteClient,
  WriteRecordsCommand,
  type WriteRecordsCommandInput,
} from '@aws-sdk/client-timestream-write';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import { NODE_LEVEL, TimestreamTelemetryStore } from '../../functions/adapters/timestream-store.js';
import { TransientError } from '../../functions/core/errors.js';
import type { EnrichedReading } from '../../functions/core/reading.js';
import { decodeCursor } from '../../functions/core/telemetry.js';

const T0 = 1_700_000_000_000;
const writeMock = mockClient(TimestreamWriteClient);
const queryMock = mockClient(TimestreamQueryClient);

function reading(over: Partial<EnrichedReading> = {}): EnrichedReading {
  return {
    protocol: 'sparkplug',
    deviceId: 'edge-1',
    group: 'plant',
    metric: 'temp',
    type: 'Double',
    value: 20.5,
    time: T0,
    historical: false,
    transient: false,
    quality: 'GOOD',
    enrichment: { deviceType: 'pump', site: 'site-a', applications: [] },
    ...over,
  };
}

let sleeps: number[];
function store(over: Partial<ConstructorParameters<typeof TimestreamTelemetryStore>[0]> = {}) {
  return new TimestreamTelemetryStore({
    writeClient: new TimestreamWriteClient({ region: 'eu-west-1' }),
    queryClient: new TimestreamQueryClient({ region: 'eu-west-1' }),
    database: 'dualpath',
    table: 'telemetry',
    sleep: async (ms) => {
      sleeps.push(ms);
    },
    random: () => 0.5,
    clock: () => T0 + 3_600_000,
    ...over,
  });
}

function throttle(status?: number): ThrottlingException {
  return new ThrottlingException({
    $metadata: status === undefined ? {} : { httpStatusCode: status },
    message: 'slow down',
    Message: 'slow down',
  });
}

function inputs(): WriteRecordsCommandInput[] {
  return writeMock.commandCalls(WriteRecordsCommand).map((c) => c.args[0].input);
}

beforeEach(() => {
  writeMock.reset();
  queryMock.reset();
  sleeps = [];
});

describe('TimestreamTelemetryStore.write', () => {
  it('batches 250 readings into 3 WriteRecords calls of at most 100 records', async () => {
    writeMock.on(WriteRecordsCommand).resolves({});
    const readings = Array.from({ length: 250 }, (_, i) => reading({ time: T0 + i, value: i }));
    const res = await store().write(readings);
    const calls = inputs();
    expect(calls.map((c) => c.Records?.length)).toEqual([100, 100, 50]);
    expect(calls.every((c) => c.DatabaseName === 'dualpath' && c.TableName === 'telemetry')).toBe(true);
    expect(res).toEqual({ written: 250, duplicates: 0, rejected: [], skipped: 0 });
  });

  it('sends multi-measure records with typed slots and shared dimensions in CommonAttributes', async () => {
    writeMock.on(WriteRecordsCommand).resolves({});
    await store().write([
      reading({ value: 1.5, unit: 'Cel' }),
      reading({ metric: 'big', value: 2n ** 64n - 1n, type: 'UInt64' }),
      reading({ metric: 'on', value: true, type: 'Boolean' }),
      reading({ metric: 'blob', value: new Uint8Array([1, 2, 3]), type: 'Bytes', row: 4, index: 2 }),
    ]);
    const [call] = inputs();
    expect(call?.CommonAttributes).toEqual({
      MeasureName: 'reading',
      MeasureValueType: 'MULTI',
      TimeUnit: 'MILLISECONDS',
      Version: 1,
      Dimensions: [
        { Name: 'deviceId', Value: 'edge-1', DimensionValueType: 'VARCHAR' },
        { Name: 'subDevice', Value: NODE_LEVEL, DimensionValueType: 'VARCHAR' },
        { Name: 'deviceType', Value: 'pump', DimensionValueType: 'VARCHAR' },
        { Name: 'protocol', Value: 'sparkplug', DimensionValueType: 'VARCHAR' },
        { Name: 'site', Value: 'site-a', DimensionValueType: 'VARCHAR' },
        { Name: 'sp_group', Value: 'plant', DimensionValueType: 'VARCHAR' },
      ],
    });
    const recs = call?.Records ?? [];
    expect(recs[0]).toEqual({
      Time: String(T0),
      Dimensions: [
        { Name: 'metric', Value: 'temp', DimensionValueType: 'VARCHAR' },
        { Name: 'ds_row', Value: '-1', DimensionValueType: 'VARCHAR' },
        { Name: 'arr_index', Value: '-1', DimensionValueType: 'VARCHAR' },
      ],
      MeasureValues: [
        { Name: 'v_kind', Value: 'double', Type: 'VARCHAR' },
        { Name: 'v_num', Value: '1.5', Type: 'DOUBLE' },
        { Name: 'r_type', Value: 'Double', Type: 'VARCHAR' },
        { Name: 'r_quality', Value: 'GOOD', Type: 'VARCHAR' },
        { Name: 'r_historical', Value: 'false', Type: 'BOOLEAN' },
        { Name: 'r_unit', Value: 'Cel', Type: 'VARCHAR' },
      ],
    });
    const measures = (i: number) =>
      Object.fromEntries((recs[i]?.MeasureValues ?? []).map((m) => [m.Name, m.Value]));
    expect(measures(1)).toMatchObject({ v_kind: 'bigtext', v_text: '18446744073709551615' });
    expect(measures(2)).toMatchObject({ v_kind: 'bool', v_bool: 'true', v_num: '1' });
    expect(measures(3)).toMatchObject({ v_kind: 'bytes', v_text: 'AQID' });
    expect(recs[3]?.Dimensions).toContainEqual({ Name: 'ds_row', Value: '4', DimensionValueType: 'VARCHAR' });
  });

  it('keeps per-record dimensions when records of several devices share a request', async () => {
    writeMock.on(WriteRecordsCommand).resolves({});
    await store().write([reading({ deviceId: 'b' }), reading({ deviceId: 'a', subDevice: 'd1' })]);
    const [call] = inputs();
    expect(call?.CommonAttributes?.Dimensions?.map((d) => d.Name)).toEqual([
      'deviceType',
      'protocol',
      'site',
      'sp_group',
      'metric',
      'ds_row',
      'arr_index',
    ]);
    // Sorted by series: device a first.
    expect(call?.Records?.map((r) => r.Dimensions)).toEqual([
      [
        { Name: 'deviceId', Value: 'a', DimensionValueType: 'VARCHAR' },
        { Name: 'subDevice', Value: 'd1', DimensionValueType: 'VARCHAR' },
      ],
      [
        { Name: 'deviceId', Value: 'b', DimensionValueType: 'VARCHAR' },
        { Name: 'subDevice', Value: NODE_LEVEL, DimensionValueType: 'VARCHAR' },
      ],
    ]);
  });

  it('reports readings older than the memory store as pending, never as written (magnetic store, rejected asynchronously)', async () => {
    writeMock.on(WriteRecordsCommand).resolves({});
    // clock = T0 + 1 h, memory store 1 h: T0 - 1 min is magnetic, T0 + 10 min is memory (5 min margin).
    const readings = [reading({ time: T0 - 60_000 }), reading({ time: T0 + 600_000, value: 2 })];
    const res = await store({ memoryStoreRetentionHours: 1 }).write(readings);
    expect(inputs()).toHaveLength(1);
    expect(res).toEqual({ written: 1, pending: 1, duplicates: 0, rejected: [], skipped: 0 });
    // A synchronous rejection of a magnetic-bound record is a rejection, not pending.
    writeMock.reset();
    writeMock.on(WriteRecordsCommand).rejects(
      new RejectedRecordsException({
        $metadata: {},
        message: 'One or more records have been rejected.',
        RejectedRecords: [{ RecordIndex: 0, Reason: 'Dimension limit exceeded.' }],
      }),
    );
    const again = await store({ memoryStoreRetentionHours: 1 }).write([reading({ time: T0 - 60_000 })]);
    expect(again.pending ?? 0).toBe(0);
    expect(again.written).toBe(0);
    expect(again.rejected.map((r) => r.code)).toEqual(['TIMESTREAM_REJECTED']);
    // Without the retention, everything accepted counts as written (as before).
    writeMock.reset();
    writeMock.on(WriteRecordsCommand).resolves({});
    expect((await store().write(readings)).written).toBe(2);
  });

  it('counts an ExistingVersion rejection as a duplicate and reports other rejections with the reason', async () => {
    writeMock.on(WriteRecordsCommand).rejects(
      new RejectedRecordsException({
        $metadata: {},
        message: 'One or more records have been rejected.',
        RejectedRecords: [
          {
            RecordIndex: 0,
            Reason: 'A record with the same dimensions and time already exists.',
            ExistingVersion: 1,
          },
          {
            RecordIndex: 2,
            Reason: 'The record timestamp is outside the time range of the data ingestion window.',
          },
        ],
      }),
    );
    const readings = [0, 1, 2].map((i) => reading({ time: T0 + i }));
    const res = await store().write(readings);
    expect(res.written).toBe(1);
    expect(res.duplicates).toBe(1);
    expect(res.rejected).toEqual([
      {
        reading: readings[2],
        code: 'TIMESTREAM_REJECTED',
        reason: 'The record timestamp is outside the time range of the data ingestion window.',
      },
    ]);
  });

  it('retries throttling with capped exponential backoff and jitter, then succeeds', async () => {
    writeMock
      .on(WriteRecordsCommand)
      .rejectsOnce(throttle(429))
      .rejectsOnce(
        Object.assign(new Error('boom'), {
          name: 'InternalServerException',
          $metadata: { httpStatusCode: 500 },
        }),
      )
      .resolves({});
    const res = await store().write([reading()]);
    expect(res.written).toBe(1);
    expect(writeMock.commandCalls(WriteRecordsCommand)).toHaveLength(3);
    expect(sleeps).toEqual([25, 50]); // random 0.5 × 50·2^attempt
  });

  it('throws TransientError after maxAttempts of throttling', async () => {
    writeMock.on(WriteRecordsCommand).rejects(throttle());
    const err = await store({ maxAttempts: 4 })
      .write([reading()])
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TransientError);
    expect(err).toMatchObject({ code: 'TIMESTREAM_THROTTLED', retryable: true });
    expect(writeMock.commandCalls(WriteRecordsCommand)).toHaveLength(4);
    expect(sleeps).toHaveLength(3);
  });

  it('explains AccessDenied with the availability change', async () => {
    writeMock.on(WriteRecordsCommand).rejects(
      Object.assign(
        new Error('Only existing Timestream for LiveAnalytics customers can access the service'),
        {
          name: 'AccessDeniedException',
          $metadata: { httpStatusCode: 403 },
        },
      ),
    );
    await expect(store().write([reading()])).rejects.toMatchObject({
      code: 'TIMESTREAM_ACCESS_DENIED',
      message: expect.stringMatching(/2025-06-20/),
    });
  });

  it('runs WriteRecords calls in parallel up to the concurrency bound', async () => {
    let inFlight = 0;
    let peak = 0;
    writeMock.on(WriteRecordsCommand).callsFake(async () => {
      inFlight++;
      peak = Math.max(peak, inFlight);
      await new Promise((r) => setTimeout(r, 5));
      inFlight--;
      return {};
    });
    const readings = Array.from({ length: 1000 }, (_, i) => reading({ time: T0 + i }));
    const res = await store({ concurrency: 3 }).write(readings);
    expect(res.written).toBe(1000);
    expect(writeMock.commandCalls(WriteRecordsCommand)).toHaveLength(10);
    expect(peak).toBe(3);
  });

  it('skips transient readings, dedupes within the call, and rejects oversized values locally', async () => {
    writeMock.on(WriteRecordsCommand).resolves({});
    const big = reading({ metric: 'file', value: 'x'.repeat(3000) });
    const res = await store().write([reading({ transient: true }), reading(), reading(), big]);
    expect(res).toMatchObject({ written: 1, duplicates: 1, skipped: 1 });
    expect(res.rejected).toEqual([
      { reading: big, code: 'RECORD_TOO_LARGE', reason: expect.stringMatching(/2048/) },
    ]);
    expect(inputs()[0]?.Records).toHaveLength(1);
  });
});

function col(name: string, type = 'VARCHAR') {
  return { Name: name, Type: { ScalarType: type as 'VARCHAR' } };
}
function datum(v: string | null) {
  return v === null ? { NullValue: true } : { ScalarValue: v };
}

describe('TimestreamTelemetryStore queries', () => {
  const rawColumns = [
    col('deviceId'),
    col('subDevice'),
    col('metric'),
    col('ds_row'),
    col('arr_index'),
    col('deviceType'),
    col('protocol'),
    col('site'),
    col('measure_name'),
    col('time', 'TIMESTAMP'),
    col('v_kind'),
    col('v_num', 'DOUBLE'),
    col('v_bigint', 'BIGINT'),
    col('v_text'),
    col('v_bool', 'BOOLEAN'),
    col('r_type'),
    col('r_quality'),
    col('r_historical', 'BOOLEAN'),
    col('r_unit'),
    col('t_ms', 'BIGINT'),
  ];
  function rawRow(
    t: number,
    sub: string,
    metric: string,
    kind: string,
    slots: Record<string, string | null>,
  ) {
    const v = { v_num: null, v_bigint: null, v_text: null, v_bool: null, ...slots };
    return {
      Data: [
        'edge-1',
        sub,
        metric,
        '-1',
        '-1',
        'pump',
        'sparkplug',
        null,
        'reading',
        '2023-11-14 22:13:20.000000000',
        kind,
        v.v_num,
        v.v_bigint,
        v.v_text,
        v.v_bool,
        'Int64',
        'GOOD',
        'false',
        null,
        String(t),
      ].map(datum),
    };
  }

  it('queryRaw builds the range SQL and parses a canned response into points with a cursor', async () => {
    queryMock.on(QueryCommand).resolves({
      QueryId: 'q1',
      ColumnInfo: rawColumns,
      Rows: [
        rawRow(T0, NODE_LEVEL, 'temp', 'bigint', { v_bigint: '9007199254740993', v_num: '9007199254740992' }),
        rawRow(T0 + 1, 'd1', 'temp', 'text', {}),
        rawRow(T0 + 2, 'd1', 'temp', 'double', { v_num: '2.5' }),
      ],
    });
    const res = await store().queryRaw({
      deviceId: "o'brien",
      metric: 'temp',
      subDevice: '',
      from: T0,
      to: T0 + 10,
      limit: 2,
    });
    const sql = queryMock.commandCalls(QueryCommand)[0]?.args[0].input.QueryString ?? '';
    expect(sql).toContain('FROM "dualpath"."telemetry"');
    expect(sql).toContain("deviceId = 'o''brien'");
    expect(sql).toContain("metric = 'temp'");
    expect(sql).toContain(`subDevice = '${NODE_LEVEL}'`);
    expect(sql).toContain(`time >= from_milliseconds(${T0}) AND time < from_milliseconds(${T0 + 10})`);
    expect(sql).toMatch(/ORDER BY time ASC, .* LIMIT 3$/);
    expect(res.points.map((p) => [p.time, p.subDevice, p.value])).toEqual([
      [T0, undefined, 9007199254740993n],
      [T0 + 1, 'd1', ''],
    ]);
    expect(res.points[0]).toMatchObject({
      deviceType: 'pump',
      type: 'Int64',
      quality: 'GOOD',
      historical: false,
    });
    expect(decodeCursor(res.nextToken ?? '')).toEqual({
      time: T0 + 1,
      subDevice: 'd1',
      metric: 'temp',
      row: -1,
      index: -1,
    });
  });

  it('queryRaw continues after the cursor key and follows Timestream NextToken pages', async () => {
    queryMock
      .on(QueryCommand)
      .resolvesOnce({ QueryId: 'q', ColumnInfo: rawColumns, Rows: [], NextToken: 'page-2' })
      .resolvesOnce({
        QueryId: 'q',
        ColumnInfo: rawColumns,
        Rows: [rawRow(T0 + 5, NODE_LEVEL, 'rpm', 'null', {})],
      });
    const first = await store().queryRaw({
      deviceId: 'edge-1',
      from: T0,
      to: T0 + 10,
      limit: 1,
      order: 'desc',
      nextToken: Buffer.from(JSON.stringify([T0 + 6, '', 'temp', -1, -1])).toString('base64url'),
    });
    const calls = queryMock.commandCalls(QueryCommand).map((c) => c.args[0].input);
    expect(calls[1]?.NextToken).toBe('page-2');
    expect(calls[0]?.QueryString).toContain(
      `to_milliseconds(time) < ${T0 + 6} OR (to_milliseconds(time) = ${T0 + 6}`,
    );
    expect(calls[0]?.QueryString).toMatch(/ORDER BY time DESC/);
    expect(first.points.map((p) => [p.metric, p.value])).toEqual([['rpm', null]]);
    expect(first.nextToken).toBeUndefined();
  });

  it('queryBuckets aggregates with epoch-aligned bins and parses the aggregates', async () => {
    queryMock.on(QueryCommand).resolves({
      QueryId: 'q',
      ColumnInfo: [
        col('bucket', 'BIGINT'),
        col('n', 'BIGINT'),
        col('avg_v', 'DOUBLE'),
        col('min_v', 'DOUBLE'),
        col('max_v', 'DOUBLE'),
        col('sum_v', 'DOUBLE'),
        col('first_v', 'DOUBLE'),
        col('last_v', 'DOUBLE'),
      ],
      Rows: [
        { Data: ['600000', '3', '2.0', '1.0', '3.0', '4.0', '1.0', '3.0'].map(datum) },
        { Data: ['780000', '1', null, null, null, null, null, null].map(datum) },
      ],
    });
    const res = await store().queryBuckets({
      deviceId: 'edge-1',
      metric: 'temp',
      subDevice: 'd1',
      from: 0,
      to: 1_200_000,
      intervalMs: 60_000,
      aggs: ['avg', 'min', 'max', 'count'],
    });
    const sql = queryMock.commandCalls(QueryCommand)[0]?.args[0].input.QueryString ?? '';
    expect(sql).toContain('(to_milliseconds(time) / 60000) * 60000 AS bucket');
    expect(sql).toContain("subDevice = 'd1'");
    expect(sql).toContain('avg(v_num)');
    expect(sql).toContain('GROUP BY 1 ORDER BY 1');
    expect(res).toEqual([
      { start: 600_000, count: 3, avg: 2, min: 1, max: 3 },
      { start: 780_000, count: 1 },
    ]);
  });

  it('latest excludes historical readings and applies the default look-back', async () => {
    queryMock.on(QueryCommand).resolves({
      QueryId: 'q',
      ColumnInfo: rawColumns,
      Rows: [rawRow(T0, 'd1', 'temp', 'double', { v_num: '7' })],
    });
    const res = await store({ latestLookbackMs: 60_000 }).latest({ deviceId: 'edge-1' });
    const sql = queryMock.commandCalls(QueryCommand)[0]?.args[0].input.QueryString ?? '';
    expect(sql).toContain('r_historical = false');
    expect(sql).toContain(`time >= from_milliseconds(${T0 + 3_600_000 - 60_000})`);
    expect(sql).toContain('max(time) OVER (PARTITION BY subDevice, metric)');
    expect(res).toEqual([
      expect.objectContaining({ deviceId: 'edge-1', subDevice: 'd1', metric: 'temp', value: 7, time: T0 }),
    ]);
  });

  it('retries a throttled query, then throws TransientError', async () => {
    queryMock.on(QueryCommand).rejects(throttle());
    await expect(
      store({ maxAttempts: 2 }).queryBuckets({
        deviceId: 'e',
        metric: 'm',
        from: 0,
        to: 1,
        intervalMs: 1,
        aggs: ['avg'],
      }),
    ).rejects.toBeInstanceOf(TransientError);
    expect(queryMock.commandCalls(QueryCommand)).toHaveLength(2);
  });
});
