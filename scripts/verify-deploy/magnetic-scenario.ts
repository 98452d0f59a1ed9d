/**
 * Magnetic-store rejection reports in the deploy harness (ADR 0024; variants with the Timestream store):
 * a report object is put into the bucket the table's MagneticStoreRejectedDataLocation names, as
 * Timestream would, and the `Object Created` event S3 sends to EventBridge is delivered through the
 * template's event rules. The report reader must run from its bundle with the template's environment
 * and IAM, read the object (s3:GetObject on that bucket only) and count its rejected readings.
 * Variants without Timestream have no such bucket, and the step is skipped.
 */
import type { ScenarioContext } from './scenario.js';
import type { Json } from './template.js';

/** The report bucket: the S3 location of the Timestream table's rejected data, resolved. */
function rejectsBucket(ctx: ScenarioContext): string | undefined {
  for (const [id, r] of ctx.d.model.resourcesOfType('AWS::Timestream::Table')) {
    const props = ctx.d.model.resolve((r.Properties ?? {}) as Json, id) as {
      MagneticStoreWriteProperties?: {
        MagneticStoreRejectedDataLocation?: { S3Configuration?: { BucketName?: string } };
      };
    };
    const name =
      props.MagneticStoreWriteProperties?.MagneticStoreRejectedDataLocation?.S3Configuration?.BucketName;
    if (name) return name;
  }
  return undefined;
}

export async function runMagneticScenario(ctx: ScenarioContext): Promise<void> {
  const { d } = ctx;
  const bucket = rejectsBucket(ctx);
  if (!bucket) return;
  const key = 'dualpath/telemetry/2026/12/04/19/rejected-0001.json';
  // Two rejected records, written from the documented RejectedRecord fields (functions/core/magnetic-report.ts).
  d.endpoint.putObject(
    bucket,
    key,
    Buffer.from(
      JSON.stringify({
        rejectedRecords: [
          { Reason: 'The record version 1 is lower or equal to the existing version 1.', RecordIndex: 0 },
          { Reason: 'The record version 1 is lower or equal to the existing version 1.', RecordIndex: 1 },
        ],
      }),
    ),
  );
  const delivered = await d.deliverEvent({
    version: '0',
    id: 'verify-deploy-object-created',
    'detail-type': 'Object Created',
    source: 'aws.s3',
    account: '123456789012',
    time: new Date().toISOString(),
    region: 'us-east-1',
    resources: [`arn:aws:s3:::${bucket}`],
    detail: {
      version: '0',
      bucket: { name: bucket },
      object: { key, size: 200, etag: '0' },
      reason: 'PutObject',
    },
  });
  if (delivered.length === 0) {
    ctx.fail(`scenario magnetic: no event rule sends Object Created of bucket ${bucket} to a function`);
    return;
  }
  for (const { function: fn, result } of delivered) {
    const counted = (result.value as { rejectedReadings?: unknown } | undefined)?.rejectedReadings;
    if (result.ok && counted !== 2)
      ctx.fail(`scenario magnetic: ${fn} counted ${String(counted)} rejected readings in the report, not 2`);
    const read = d.endpoint.calls.some(
      (c) =>
        c.function === fn && c.action === 's3:GetObject' && c.resource === `arn:aws:s3:::${bucket}/${key}`,
    );
    if (!read) ctx.fail(`scenario magnetic: ${fn} did not read the report object ${key}`);
  }
}
