import type { KinesisClient } from '@aws-sdk/client-kinesis';
import { describe, expect, it } from 'vitest';
import { type FailedRecord, parseFailedBatches, redrive, redrivenData } from '../../infra/redrive.js';

const envelope = (n: number) =>
  Buffer.from(
    JSON.stringify({ topic: `lwm2m/rd/ep-${n}`, payload: 'AAE=', receivedAt: 1_700_000_000_000 + n }),
  ).toString('base64');
const kinesis = (seq: string, n: number) => ({
  kinesisSchemaVersion: '1.0',
  partitionKey: `ep-${n}`,
  sequenceNumber: seq,
  data: envelope(n),
  approximateArrivalTimestamp: 1_700_000_000,
});
const ARN = 'arn:aws:kinesis:eu-west-1:123456789012:stream/Dualpath-LwM2MStream';

describe('parseFailedBatches', () => {
  it('reads the local DLQ (JSON Lines, records with payloads)', () => {
    const text = [
      JSON.stringify({
        stream: 'lwm2m',
        reason: 'retry attempts exhausted',
        records: [kinesis('11', 1), kinesis('12', 2)],
      }),
      JSON.stringify({ stream: 'sparkplug', reason: 'record age exceeded', records: [kinesis('13', 3)] }),
      '',
    ].join('\n');
    expect(
      parseFailedBatches(text, 'dlq.jsonl').map((r) => [r.stream, r.sequenceNumber, r.partitionKey]),
    ).toEqual([
      ['lwm2m', '11', 'ep-1'],
      ['lwm2m', '12', 'ep-2'],
      ['sparkplug', '13', 'ep-3'],
    ]);
  });

  it('reads an S3 on-failure object: the invocation record with its payload (object or JSON text)', () => {
    const event = { Records: [{ eventSourceARN: ARN, kinesis: kinesis('21', 1) }] };
    const doc = (payload: unknown) =>
      JSON.stringify({
        requestContext: { condition: 'RetryAttemptsExhausted', approximateInvokeCount: 10001 },
        KinesisBatchInfo: { shardId: 'shardId-000000000000', streamArn: ARN, batchSize: 1 },
        payload,
      });
    for (const payload of [event, JSON.stringify(event)]) {
      const [r] = parseFailedBatches(doc(payload), 's3-object');
      expect(r).toMatchObject({
        streamArn: ARN,
        sequenceNumber: '21',
        partitionKey: 'ep-1',
        data: envelope(1),
      });
    }
  });

  it('refuses metadata without records (an SQS on-failure message) and bad records, naming the field', () => {
    const sqs = JSON.stringify({
      KinesisBatchInfo: { streamArn: ARN, startSequenceNumber: '1', endSequenceNumber: '2' },
    });
    expect(() => parseFailedBatches(sqs, 'msg.json')).toThrow(/holds no records/);
    const bad = JSON.stringify({ stream: 'lwm2m', records: [{ partitionKey: 'k', sequenceNumber: '1' }] });
    expect(() => parseFailedBatches(bad, 'dlq.jsonl')).toThrow(/dlq.jsonl.records\[0\].data/);
    expect(() =>
      parseFailedBatches(`${JSON.stringify({ stream: 'lwm2m', records: [] })}\nnot json`, 'f'),
    ).toThrow(/line 2 is not JSON/);
  });
});

describe('redrivenData', () => {
  it('adds the first sequence number to the envelope, and keeps the one a redriven record already carries', () => {
    const r: FailedRecord = {
      stream: 'lwm2m',
      partitionKey: 'ep-1',
      sequenceNumber: '77',
      data: envelope(1),
    };
    const once = JSON.parse(redrivenData(r).toString());
    expect(once).toMatchObject({ topic: 'lwm2m/rd/ep-1', redrive: { sequenceNumber: '77' } });
    const twice = JSON.parse(
      redrivenData({ ...r, sequenceNumber: '99', data: redrivenData(r).toString('base64') }).toString(),
    );
    expect(twice.redrive).toEqual({ sequenceNumber: '77' });
    const notJson = Buffer.from('not json').toString('base64');
    expect(redrivenData({ ...r, data: notJson }).toString()).toBe('not json');
  });
});

describe('redrive', () => {
  it('puts records back in order per stream, in calls of at most 500, retrying refused ones', async () => {
    const calls: Array<{ target: string; keys: string[] }> = [];
    let refuseOnce = true;
    const client = {
      async send(cmd: {
        input: { StreamName?: string; StreamARN?: string; Records: Array<{ PartitionKey: string }> };
      }) {
        const { StreamName, StreamARN, Records } = cmd.input;
        calls.push({ target: StreamName ?? StreamARN!, keys: Records.map((r) => r.PartitionKey) });
        return {
          Records: Records.map((_, i) =>
            refuseOnce && i === 1
              ? { ErrorCode: 'ProvisionedThroughputExceededException' }
              : { SequenceNumber: '1' },
          ),
          FailedRecordCount: refuseOnce ? 1 : 0,
        };
      },
    };
    const records: FailedRecord[] = Array.from({ length: 501 }, (_, i) => ({
      stream: 'lwm2m',
      partitionKey: `ep-${i}`,
      sequenceNumber: String(i + 1),
      data: envelope(i),
    }));
    records.push({ stream: 'sparkplug', partitionKey: 'node', sequenceNumber: '9', data: envelope(9) });
    const out = await redrive(records, {
      kinesis: client as unknown as KinesisClient,
      target: (r) => ({ StreamName: `dualpath-${r.stream}` }),
      sleep: async () => {
        refuseOnce = false;
      },
    });
    expect(out).toEqual({ records: 502, byStream: { 'dualpath-lwm2m': 501, 'dualpath-sparkplug': 1 } });
    expect(calls.map((c) => [c.target, c.keys.length])).toEqual([
      ['dualpath-lwm2m', 500],
      ['dualpath-lwm2m', 1], // the refused record, again
      ['dualpath-lwm2m', 1], // the 501st
      ['dualpath-sparkplug', 1],
    ]);
    expect(calls[1]!.keys).toEqual(['ep-1']);
  });

  it('throws when records keep being refused (the archive is kept for another run)', async () => {
    const client = {
      async send() {
        return { Records: [{ ErrorCode: 'InternalFailure', ErrorMessage: 'boom' }] };
      },
    };
    await expect(
      redrive([{ stream: 'lwm2m', partitionKey: 'k', sequenceNumber: '1', data: envelope(1) }], {
        kinesis: client as unknown as KinesisClient,
        target: () => ({ StreamARN: ARN }),
        attempts: 2,
        sleep: async () => {},
      }),
    ).rejects.toThrow(/1 records refused after 2 attempts \(InternalFailure: boom\)/);
  });
});
