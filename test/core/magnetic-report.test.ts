import { describe, expect, it } from 'vitest';
import { summarizeMagneticReport } from '../../functions/core/magnetic-report.js';

/**
 * Report samples written from AWS's documentation (ADR 0024): a rejected record is described by
 * RejectedRecord's fields (Reason, RecordIndex, ExistingVersion; Timestream API reference) and the
 * record written (Dimensions, MeasureName, MeasureValues, Time; the WriteRecords Record type). The
 * report's outer layout is not documented in the pages we read, hence several plausible layouts.
 */
const record = (deviceId: string, time: number) => ({
  Dimensions: [
    { Name: 'deviceId', Value: deviceId, DimensionValueType: 'VARCHAR' },
    { Name: 'subDevice', Value: '/', DimensionValueType: 'VARCHAR' },
  ],
  MeasureName: 'temperature',
  MeasureValueType: 'MULTI',
  MeasureValues: [{ Name: 'v_num', Value: '21.5', Type: 'DOUBLE' }],
  Time: String(time),
  TimeUnit: 'MILLISECONDS',
  Version: 1,
});
const VERSION_REASON =
  'The record version 1 is lower or equal to the existing version 2. A higher version is required to update the measure value.';

describe('magnetic-store rejection reports', () => {
  it('counts every element of a RejectedRecords-style list, by reason and device', () => {
    const body = JSON.stringify({
      tableArn: 'arn:aws:timestream:eu-west-1:123456789012:database/db/table/t',
      rejectedRecords: [
        {
          Reason: VERSION_REASON,
          RecordIndex: 0,
          ExistingVersion: 2,
          record: record('pump-1', 1_600_000_000_000),
        },
        {
          Reason: VERSION_REASON,
          RecordIndex: 3,
          ExistingVersion: 2,
          record: record('pump-2', 1_600_000_000_001),
        },
        { Reason: 'Records with timestamps outside the magnetic store retention', RecordIndex: 4 },
      ],
    });
    const s = summarizeMagneticReport(body);
    expect(s).toMatchObject({ records: 3, unrecognised: 0, rejectedReadings: 3 });
    expect(s.reasons).toEqual({
      [VERSION_REASON]: 2,
      'Records with timestamps outside the magnetic store retention': 1,
    });
    expect(s.devices).toEqual({ 'pump-1': 1, 'pump-2': 1 });
  });

  it('reads JSON Lines, one rejected record (or record with its reason) per line', () => {
    const body = [
      JSON.stringify({ ...record('edge-9', 1), reason: 'duplicate' }),
      '',
      JSON.stringify({ errorMessage: 'Measure value is out of range', record: record('edge-9', 2) }),
      JSON.stringify(record('edge-8', 3)),
    ].join('\n');
    const s = summarizeMagneticReport(body);
    expect(s).toMatchObject({ records: 3, unrecognised: 0, rejectedReadings: 3 });
    expect(s.reasons).toEqual({ duplicate: 1, 'Measure value is out of range': 1, unspecified: 1 });
    expect(s.devices).toEqual({ 'edge-9': 2, 'edge-8': 1 });
  });

  it('reads a top-level array of records and a Records list of plain reason strings', () => {
    expect(summarizeMagneticReport(JSON.stringify([record('a', 1), record('b', 2)])).records).toBe(2);
    const s = summarizeMagneticReport(JSON.stringify({ Records: ['too old', 'too old'] }));
    expect(s.reasons).toEqual({ 'too old': 2 });
  });

  it('counts and samples what it does not recognise, never throws, and never counts it as zero', () => {
    const body = [
      'not json at all',
      JSON.stringify({ hello: 'world' }),
      '42',
      JSON.stringify({ Reason: 'x' }),
    ].join('\n');
    const s = summarizeMagneticReport(body);
    expect(s).toMatchObject({ records: 1, unrecognised: 3, rejectedReadings: 4 });
    expect(s.samples).toEqual(['not json at all', '{"hello":"world"}', '42']);
  });

  it('keeps samples short and few, and folds reasons beyond 20 into "other"', () => {
    const long = JSON.stringify({ blob: 'x'.repeat(1000) });
    const s = summarizeMagneticReport([long, long, long, long, long].join('\n'));
    expect(s.unrecognised).toBe(5);
    expect(s.samples).toHaveLength(3);
    expect(s.samples.every((x) => x.length === 200)).toBe(true);
    const many = summarizeMagneticReport(
      JSON.stringify({ errors: Array.from({ length: 25 }, (_, i) => ({ Reason: `r${i}` })) }),
    );
    expect(Object.keys(many.reasons)).toHaveLength(21);
    expect(many.reasons.other).toBe(5);
  });

  it('treats an empty object (or a byte-order mark and whitespace) as no rejection', () => {
    expect(summarizeMagneticReport('\uFEFF \n')).toMatchObject({
      records: 0,
      unrecognised: 0,
      rejectedReadings: 0,
    });
  });
});
