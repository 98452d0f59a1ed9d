/**
 * The magnetic-store rejection report reader (ADR 0024; only with telemetry=timestream): the rejects
 * bucket announces each new report object to EventBridge (the bucket's native EventBridge
 * notification, no notification custom resource), a rule sends `Object Created` events of that bucket
 * to the `magnetic-rejects` function, which reads the report (S3 GetObject, the row in
 * infra/aws/access.ts) and emits `ReadingsRejectedMagnetic` (alarmed by Monitoring).
 */
import { type CfnElement, Stack, Validations } from 'aws-cdk-lib';
import { Rule } from 'aws-cdk-lib/aws-events';
import { LambdaFunction } from 'aws-cdk-lib/aws-events-targets';
import type { NodejsFunction } from 'aws-cdk-lib/aws-lambda-nodejs';
import type { RetentionDays } from 'aws-cdk-lib/aws-logs';
import type { Bucket, CfnBucket } from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import { S3_READ, s3ReadStatement } from '../access.js';
import { nodeFunction } from './ingest-function.js';

/** The function's Powertools service name: the `service` dimension of its metrics. */
export const MAGNETIC_REJECTS_SERVICE = 'magnetic-rejects';

export interface MagneticRejectsReaderProps {
  bucket: Bucket;
  /** Absolute path of functions/magnetic-rejects/handler.ts. */
  entry: string;
  logRetention: RetentionDays;
}

export class MagneticRejectsReader extends Construct {
  readonly fn: NodejsFunction;
  readonly rule: Rule;

  constructor(scope: Construct, id: string, props: MagneticRejectsReaderProps) {
    super(scope, id);
    (props.bucket.node.defaultChild as CfnBucket).addPropertyOverride(
      'NotificationConfiguration.EventBridgeConfiguration.EventBridgeEnabled',
      true,
    );
    this.fn = nodeFunction(this, 'Function', {
      entry: props.entry,
      memoryMb: 256,
      timeoutSeconds: 60,
      description:
        'Dualpath: reads Timestream magnetic-store rejection reports and counts the rejected readings',
      logRetention: props.logRetention,
      environment: { POWERTOOLS_SERVICE_NAME: MAGNETIC_REJECTS_SERVICE },
    });
    this.fn.addToRolePolicy(s3ReadStatement(S3_READ.magneticRejects, props.bucket.bucketArn));
    this.rule = new Rule(this, 'ReportCreated', {
      description: 'Dualpath: a Timestream magnetic-store rejection report was written',
      eventPattern: {
        source: ['aws.s3'],
        detailType: ['Object Created'],
        detail: { bucket: { name: [props.bucket.bucketName] } },
      },
      targets: [new LambdaFunction(this.fn, { retryAttempts: 2 })],
    });
    const bucketId = Stack.of(this).getLogicalId(props.bucket.node.defaultChild as CfnElement);
    Validations.of(this.fn).acknowledge({
      id: `AwsSolutions::AwsSolutions-IAM5[Resource::<${bucketId}.Arn>/*]`,
      reason: 'Reads the report objects Timestream writes under keys it chooses, in the rejects bucket only.',
    });
  }
}
