/**
 * One ingest path's Lambda: Node 22 on arm64, bundled from TypeScript by the local esbuild (minified,
 * source maps), with a Kinesis event source mapping that cannot be blocked by a poison record:
 * bisect on error, bounded retries, bounded record age, ReportBatchItemFailures and an SQS
 * on-failure destination.
 */
import { Duration } from 'aws-cdk-lib';
import { PolicyStatement } from 'aws-cdk-lib/aws-iam';
import type { Stream } from 'aws-cdk-lib/aws-kinesis';
import { Architecture, Runtime, StartingPosition, Tracing } from 'aws-cdk-lib/aws-lambda';
import { NodejsFunction, OutputFormat } from 'aws-cdk-lib/aws-lambda-nodejs';
import { LogGroup, type RetentionDays } from 'aws-cdk-lib/aws-logs';
import { Queue, QueueEncryption } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import type { EventSourceDef } from '../../pipeline.js';

/** The event-source settings of the pipeline definition (infra/pipeline.ts). */
export type EventSourceSettings = EventSourceDef;

export interface FunctionSpec {
  entry: string;
  memoryMb: number;
  timeoutSeconds: number;
  environment: Record<string, string>;
  logRetention: RetentionDays;
  description: string;
}

export function nodeFunction(scope: Construct, id: string, spec: FunctionSpec): NodejsFunction {
  const logGroup = new LogGroup(scope, `${id}Logs`, { retention: spec.logRetention });
  return new NodejsFunction(scope, id, {
    entry: spec.entry,
    handler: 'handler',
    runtime: Runtime.NODEJS_22_X,
    architecture: Architecture.ARM_64,
    memorySize: spec.memoryMb,
    timeout: Duration.seconds(spec.timeoutSeconds),
    description: spec.description,
    logGroup,
    tracing: Tracing.DISABLED,
    environment: {
      NODE_OPTIONS: '--enable-source-maps',
      POWERTOOLS_METRICS_NAMESPACE: 'Dualpath',
      ...spec.environment,
    },
    bundling: {
      minify: true,
      sourceMap: true,
      format: OutputFormat.ESM,
      target: 'node22',
      mainFields: ['module', 'main'],
      // ESM bundles need a require shim for CommonJS dependencies.
      banner: "import { createRequire } from 'module';const require = createRequire(import.meta.url);",
      externalModules: ['@aws-sdk/*', '@duckdb/*'],
      forceDockerBundling: false,
    },
  });
}

export interface IngestFunctionProps extends FunctionSpec {
  stream: Stream;
  eventSource: EventSourceSettings;
}

export class IngestFunction extends Construct {
  readonly fn: NodejsFunction;
  readonly dlq: Queue;

  constructor(scope: Construct, id: string, props: IngestFunctionProps) {
    super(scope, id);
    this.fn = nodeFunction(this, 'Function', props);
    this.dlq = new Queue(this, 'OnFailure', {
      encryption: QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
    });
    const es = props.eventSource;
    this.fn.addEventSourceMapping('Stream', {
      eventSourceArn: props.stream.streamArn,
      batchSize: es.batchSize,
      maxBatchingWindow: Duration.seconds(es.maxBatchingWindowSeconds),
      parallelizationFactor: es.parallelizationFactor,
      bisectBatchOnError: es.bisectBatchOnFunctionError,
      retryAttempts: es.maxRetryAttempts,
      maxRecordAge: Duration.seconds(es.maxRecordAgeSeconds),
      reportBatchItemFailures: es.reportBatchItemFailures,
      startingPosition: StartingPosition[es.startingPosition],
      onFailure: { bind: () => ({ destination: this.dlq.queueArn }) },
    });
    // What the Lambda service does on the function's behalf, and nothing more (the event-source
    // classes grant stream consumers, ListStreams and queue lookups too): read the stream's shards
    // (standard iterators; SubscribeToShard for enhanced fan-out) and send failed batches' metadata.
    this.fn.addToRolePolicy(
      new PolicyStatement({
        sid: 'EventSourceStream',
        actions: [
          'kinesis:DescribeStream',
          'kinesis:DescribeStreamSummary',
          'kinesis:GetRecords',
          'kinesis:GetShardIterator',
          'kinesis:ListShards',
          'kinesis:SubscribeToShard',
        ],
        resources: [props.stream.streamArn],
      }),
    );
    this.fn.addToRolePolicy(
      new PolicyStatement({
        sid: 'EventSourceOnFailure',
        actions: ['sqs:SendMessage'],
        resources: [this.dlq.queueArn],
      }),
    );
  }
}
