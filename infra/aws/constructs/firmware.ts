/**
 * Firmware packages in AWS (ADR 0022, amendment 2026-12-05): a private bucket for the bytes and their
 * metadata (under `firmware/`), and a generated secret that keys the signed download paths devices get
 * in their Package URI. The API uploads and lists packages and redirects devices to pre-signed GETs;
 * the operations worker reads a package's metadata and signs its path. Grants: FIRMWARE_ACCESS in
 * access.ts, scoped to the prefix.
 */
import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import type { NodejsFunction } from 'aws-cdk-lib/aws-lambda-nodejs';
import { BlockPublicAccess, Bucket, BucketEncryption } from 'aws-cdk-lib/aws-s3';
import { Secret } from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';
import { FIRMWARE_PREFIX } from '../../../functions/core/operations/packages.js';
import { FIRMWARE_ACCESS, type FirmwareUser, firmwareStatements } from '../access.js';

export class FirmwarePackages extends Construct {
  readonly bucket: Bucket;
  readonly urlKey: Secret;

  constructor(scope: Construct, id: string) {
    super(scope, id);
    this.bucket = new Bucket(this, 'Packages', {
      encryption: BucketEncryption.S3_MANAGED,
      blockPublicAccess: BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      versioned: false,
      // Uploads are single PutObjects (the API's 512 KiB cap); a multipart upload left behind by any
      // other client is cleaned up.
      lifecycleRules: [
        { id: 'AbortIncompleteUploads', abortIncompleteMultipartUploadAfter: Duration.days(1) },
      ],
      // Packages are re-uploadable artifacts, not the only copy of anything.
      removalPolicy: RemovalPolicy.DESTROY,
      autoDeleteObjects: false,
    });
    this.urlKey = new Secret(this, 'UrlKey', {
      description:
        'Dualpath: HMAC key of the firmware download paths devices receive (rotate by putting a new value)',
      generateSecretString: { passwordLength: 64, excludePunctuation: true, includeSpace: false },
    });
  }

  /** The function's environment and grants for packages (its row of FIRMWARE_ACCESS). */
  attach(fn: NodejsFunction, user: FirmwareUser, apiBaseUrl: string): void {
    fn.addEnvironment('FIRMWARE_BUCKET', this.bucket.bucketName);
    fn.addEnvironment('FIRMWARE_URL_KEY_SECRET_ARN', this.urlKey.secretArn);
    fn.addEnvironment('PACKAGE_BASE_URL', apiBaseUrl);
    for (const st of firmwareStatements(
      FIRMWARE_ACCESS[user],
      this.bucket.bucketArn,
      FIRMWARE_PREFIX,
      this.urlKey.secretArn,
    ))
      fn.addToRolePolicy(st);
  }
}
