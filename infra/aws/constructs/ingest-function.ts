/**
 * One ingest path's Lambda: Node 22 on arm64, bundled from TypeScript by the local esbuild (minified,
 * source maps), with a Kinesis event source mapping that cannot be blocked by a poison record:
 * bisect on error, bounded retries, bounded record age, ReportBatchItemFailures and an S3 on-failure
 * destination — the failure archive, which keeps each discarded batch WITH its records for
 * `dualpath redrive` (ADR 0017; an SQS or SNS destination gets the batch's metadata only).
 */
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import { Metric } from 'aws-cdk-lib/aws-cloudwatch';
import { PolicyStatement } from 'aws-cdk-lib/aws-iam';
import type { Stream } from 'aws-cdk-lib/aws-kinesis';
import { Architecture, Runtime, StartingPosition, Tracing } from 'aws-cdk-lib/aws-lambda';
import { NodejsFunction, OutputFormat } from 'aws-cdk-lib/aws-lambda-nodejs';
import { LogGroup, type RetentionDays } from 'aws-cdk-lib/aws-logs';
import { BlockPublicAccess, Bucket, BucketEncryption } from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import type { EventSourceDef } from '../../pipeline.js';

/** The event-source settings of the pipeline definition (infra/pipeline.ts). */
export type EventSourceSettings = EventSourceDef;

/** node:http through require() (see the file): keeps undici off the cold start. */
const NODE_HTTP_SHIM = path.join(
  path.dirname(fileURLToPath(import.meta.url)),
  '..',
  'bundling',
  'node-http.cjs',
);

/** Re-bundles an entry with code splitting (see the file; ADR 0025, amendment 1). */
const SPLIT_SCRIPT = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'bundling', 'split.mjs');

/** ESM bundles need a require shim for CommonJS dependencies. */
const ESM_REQUIRE_BANNER =
  "import { createRequire } from 'module';const require = createRequire(import.meta.url);";

/** A POSIX shell word. */
const shellWord = (s: string) => `'${s.replace(/'/g, "'\\''")}'`;

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
    // No NODE_OPTIONS=--enable-source-maps: Node then parses the bundle's source map (MBs) at INIT,
    // measured at 150-200 ms of a cold start (ADR 0025). The maps still ship beside the bundle, to map
    // a logged stack offline or to switch it on (set NODE_OPTIONS on the function) while debugging.
    environment: {
      POWERTOOLS_METRICS_NAMESPACE: 'Dualpath',
      ...spec.environment,
    },
    bundling: {
      minify: true,
      sourceMap: true,
      format: OutputFormat.ESM,
      target: 'node22',
      mainFields: ['module', 'main'],
      banner: ESM_REQUIRE_BANNER,
      // The AWS SDK is bundled (tree-shaken, one file) rather than loaded from the runtime's copy:
      // importing hundreds of its files at INIT dominated the cold start (ADR 0025). The metafile
      // (index.meta.json beside the bundle) tells the deploy harness which SDK clients it contains.
      externalModules: ['@duckdb/*'],
      metafile: true,
      esbuildArgs: { '--alias:node:http': NODE_HTTP_SHIM },
      forceDockerBundling: false,
      // The same options again, with code splitting: what runs only after INIT (dynamic imports) is
      // its own chunk, which V8 parses when it is imported rather than at INIT (ADR 0025, amendment 1).
      commandHooks: {
        beforeBundling: () => [],
        beforeInstall: () => [],
        afterBundling: (_inputDir: string, outputDir: string) => [
          [
            process.execPath,
            SPLIT_SCRIPT,
            path.resolve(spec.entry),
            outputDir,
            JSON.stringify({
              minify: true,
              sourcemap: true,
              target: 'node22',
              mainFields: ['module', 'main'],
              banner: { js: ESM_REQUIRE_BANNER },
              external: ['@duckdb/*'],
              alias: { 'node:http': NODE_HTTP_SHIM },
            }),
          ]
            .map(shellWord)
            .join(' '),
        ],
      },
    },
  });
}

export interface IngestFunctionProps extends FunctionSpec {
  stream: Stream;
  eventSource: EventSourceSettings;
}

export class IngestFunction extends Construct {
  readonly fn: NodejsFunction;
  /** The on-failure destination: one object per discarded batch, its records included. */
  readonly archive: Bucket;

  constructor(scope: Construct, id: string, props: IngestFunctionProps) {
    super(scope, id);
    this.fn = nodeFunction(this, 'Function', props);
    this.archive = new Bucket(this, 'FailureArchive', {
      encryption: BucketEncryption.S3_MANAGED,
      blockPublicAccess: BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      // Long enough to notice (the alarm) and redrive; the runbook is docs/deploy.md.
      lifecycleRules: [{ id: 'ExpireFailedBatches', expiration: Duration.days(FAILURE_ARCHIVE_DAYS) }],
      // Request metrics: PutRequests (one per archived batch) drives the alarm.
      metrics: [{ id: ARCHIVE_METRICS_ID }],
      // It may hold the only copy of readings not yet redriven: kept when the stack is destroyed.
      removalPolicy: RemovalPolicy.RETAIN,
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
      onFailure: { bind: () => ({ destination: this.archive.bucketArn }) },
    });
    // What the Lambda service does on the function's behalf, and nothing more (the event-source
    // classes grant stream consumers, ListStreams and queue lookups too): read the stream's shards
    // (standard iterators; SubscribeToShard for enhanced fan-out) and write failed batches to the
    // archive (an S3 destination needs s3:PutObject and s3:ListBucket).
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
        actions: ['s3:PutObject'],
        resources: [this.archive.arnForObjects('*')],
      }),
    );
    this.fn.addToRolePolicy(
      new PolicyStatement({
        sid: 'EventSourceOnFailureList',
        actions: ['s3:ListBucket'],
        resources: [this.archive.bucketArn],
      }),
    );
  }

  /** Batches archived on failure (S3 PutRequests to the archive), for alarms and dashboards. */
  metricArchived(period: Duration): Metric {
    return new Metric({
      namespace: 'AWS/S3',
      metricName: 'PutRequests',
      dimensionsMap: { BucketName: this.archive.bucketName, FilterId: ARCHIVE_METRICS_ID },
      statistic: 'Sum',
      period,
    });
  }
}

/** Days the failure archive keeps a batch. */
export const FAILURE_ARCHIVE_DAYS = 35;
const ARCHIVE_METRICS_ID = 'FailedBatches';
