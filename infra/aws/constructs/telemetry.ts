/**
 * Timestream for LiveAnalytics database and table (memory/magnetic retention from context, magnetic
 * store writes on for late historical data). Only created when the telemetry backend is
 * `timestream`: the service is closed to accounts that were not customers before 2025-06-20, where
 * CREATE fails and the stack rolls back — `npm run preflight` checks this before a deploy.
 */
import type { RemovalPolicy } from 'aws-cdk-lib';
import { BlockPublicAccess, Bucket, BucketEncryption } from 'aws-cdk-lib/aws-s3';
import { CfnDatabase, CfnTable } from 'aws-cdk-lib/aws-timestream';
import { Construct } from 'constructs';

export interface TelemetryProps {
  /** Keep an existing database/table (upgrades); undefined: generated names. */
  databaseName?: string;
  tableName?: string;
  memoryRetentionHours: number;
  magneticRetentionDays: number;
  removalPolicy: RemovalPolicy;
}

export class TimestreamTelemetry extends Construct {
  readonly database: CfnDatabase;
  readonly table: CfnTable;
  readonly rejectsBucket: Bucket;
  /** The generated database and table names (tokens). */
  readonly databaseName: string;
  readonly tableName: string;

  constructor(scope: Construct, id: string, props: TelemetryProps) {
    super(scope, id);
    this.rejectsBucket = new Bucket(this, 'MagneticRejects', {
      encryption: BucketEncryption.S3_MANAGED,
      blockPublicAccess: BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      removalPolicy: props.removalPolicy,
      autoDeleteObjects: false,
    });
    // No fixed names: the database is retained by default, and a retained database with a fixed name
    // would make the next deploy after `cdk destroy` fail (ADR 0014). CloudFormation generates both.
    // (An upgrade from a stack that fixed them may pass the old names to keep its data: ADR 0014.)
    this.database = new CfnDatabase(
      this,
      'Database',
      props.databaseName ? { databaseName: props.databaseName } : {},
    );
    this.database.applyRemovalPolicy(props.removalPolicy);
    this.databaseName = this.database.ref;
    this.table = new CfnTable(this, 'Table', {
      databaseName: this.databaseName,
      ...(props.tableName ? { tableName: props.tableName } : {}),
      retentionProperties: {
        MemoryStoreRetentionPeriodInHours: String(props.memoryRetentionHours),
        MagneticStoreRetentionPeriodInDays: String(props.magneticRetentionDays),
      },
      magneticStoreWriteProperties: {
        EnableMagneticStoreWrites: true,
        MagneticStoreRejectedDataLocation: {
          S3Configuration: { BucketName: this.rejectsBucket.bucketName, EncryptionOption: 'SSE_S3' },
        },
      },
    });
    this.table.addResourceDependency(this.database);
    this.table.applyRemovalPolicy(props.removalPolicy);
    this.tableName = this.table.attrName;
  }
}
