import { gzipSync } from 'node:zlib';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ValidationError } from '../../functions/core/errors.js';
import {
  composeMagneticRejects,
  type ReportReader,
  reportRefs,
} from '../../functions/magnetic-rejects/compose.js';

const REPORT = JSON.stringify({
  rejectedRecords: [
    { Reason: 'version', RecordIndex: 0, record: { Dimensions: [{ Name: 'deviceId', Value: 'pump-1' }] } },
    { Reason: 'version', RecordIndex: 1 },
  ],
});
/** An EventBridge "Object Created" event (S3 → EventBridge), as the rule delivers it. */
const ebEvent = (key: string) => ({
  version: '0',
  id: 'e-1',
  'detail-type': 'Object Created',
  source: 'aws.s3',
  account: '123456789012',
  time: '2026-12-04T19:00:00Z',
  region: 'eu-west-1',
  resources: ['arn:aws:s3:::rejects'],
  detail: { version: '0', bucket: { name: 'rejects' }, object: { key, size: 10 }, reason: 'PutObject' },
});

function reader(objects: Record<string, Uint8Array | string>): ReportReader & { reads: string[] } {
  const reads: string[] = [];
  return {
    reads,
    async read(bucket, key) {
      reads.push(`${bucket}/${key}`);
      const o = objects[key];
      if (o === undefined) throw Object.assign(new Error('NoSuchKey'), { name: 'NoSuchKey' });
      return typeof o === 'string' ? new TextEncoder().encode(o) : o;
    },
  };
}

afterEach(() => vi.restoreAllMocks());

describe('magnetic-rejects function', () => {
  it('reads the announced report, counts its rejected readings as an EMF metric and logs a summary', async () => {
    const lines: string[] = [];
    vi.spyOn(process.stdout, 'write').mockImplementation(
      (l: string | Uint8Array) => lines.push(String(l)) > 0,
    );
    const logged: Array<[string, Record<string, unknown>]> = [];
    const r = reader({ 'db/t/2026/12/04/report-1.json': REPORT });
    const fn = composeMagneticRejects({
      reports: r,
      logger: { info: (m, d) => logged.push([m, d]), warn: (m, d) => logged.push([m, d]) },
      metrics: new Metrics({ namespace: 'Dualpath', serviceName: 'magnetic-rejects' }),
    });

    const result = await fn.handler(ebEvent('db/t/2026/12/04/report-1.json'));

    expect(result).toEqual({ reports: 1, rejectedReadings: 2, unrecognised: 0 });
    expect(r.reads).toEqual(['rejects/db/t/2026/12/04/report-1.json']);
    expect(logged[0]![1]).toMatchObject({
      rejectedReadings: 2,
      reasons: { version: 2 },
      devices: { 'pump-1': 1 },
    });
    const emf = lines
      .flatMap((l) => l.split('\n'))
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l))
      .find((o) => o._aws);
    expect(emf).toMatchObject({
      service: 'magnetic-rejects',
      ReadingsRejectedMagnetic: 2,
      MagneticReportsRead: 1,
    });
    expect(emf._aws.CloudWatchMetrics[0].Namespace).toBe('Dualpath');
    expect(emf._aws.CloudWatchMetrics[0].Dimensions).toEqual([['service']]);
  });

  it('reads S3 notification records (URL-encoded keys) and gzip-compressed reports', async () => {
    const r = reader({ 'a b/r.json.gz': gzipSync(Buffer.from(REPORT)) });
    const fn = composeMagneticRejects({ reports: r });
    const result = await fn.handler({
      Records: [{ s3: { bucket: { name: 'rejects' }, object: { key: 'a+b/r.json.gz' } } }],
    });
    expect(result.rejectedReadings).toBe(2);
    expect(r.reads).toEqual(['rejects/a b/r.json.gz']);
  });

  it('warns on unrecognised entries and still counts them as rejections', async () => {
    const warned: string[] = [];
    const fn = composeMagneticRejects({
      reports: reader({ k: 'garbage\n{"Reason":"x"}' }),
      logger: { info: () => {}, warn: (m) => warned.push(m) },
    });
    expect(await fn.handler(ebEvent('k'))).toEqual({ reports: 1, rejectedReadings: 2, unrecognised: 1 });
    expect(warned).toHaveLength(1);
  });

  it('fails the invocation when a report cannot be read (never counts it as zero) or the event is not S3', async () => {
    const fn = composeMagneticRejects({ reports: reader({}) });
    await expect(fn.handler(ebEvent('missing'))).rejects.toThrow('NoSuchKey');
    await expect(fn.handler({ hello: 1 })).rejects.toThrow(ValidationError);
    expect(() => reportRefs({ detail: { bucket: { name: 'b' } } })).toThrow(/detail.object.key/);
  });
});
