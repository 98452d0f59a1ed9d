/**
 * Firmware packages in S3 for the API and the operations worker (ADR 0022), when the stack set
 * FIRMWARE_BUCKET, FIRMWARE_URL_KEY_SECRET_ARN and PACKAGE_BASE_URL (undefined otherwise: no packages).
 * The S3 client, the presigner and the signing key load on first use, so a cold start that serves no
 * firmware request pays for none of them.
 */
import type { IngestConfig } from '../core/config.js';
import { ValidationError } from '../core/errors.js';
import {
  FIRMWARE_PREFIX,
  type FirmwarePackage,
  type PackageRedirect,
  type PackageStore,
} from '../core/operations/packages.js';

export function awsPackageStore(config: IngestConfig): PackageStore | undefined {
  const bucket = config.FIRMWARE_BUCKET;
  const secretArn = config.FIRMWARE_URL_KEY_SECRET_ARN;
  const base = config.PACKAGE_BASE_URL;
  if (!bucket && !secretArn && !base) return undefined;
  if (!bucket || !secretArn || !base)
    throw new ValidationError(
      'FIRMWARE_BUCKET, FIRMWARE_URL_KEY_SECRET_ARN and PACKAGE_BASE_URL go together (firmware packages)',
      {
        field: !bucket ? 'FIRMWARE_BUCKET' : !secretArn ? 'FIRMWARE_URL_KEY_SECRET_ARN' : 'PACKAGE_BASE_URL',
      },
    );
  let store: Promise<PackageStore> | undefined;
  const load = () => {
    store ??= Promise.all([import('../adapters/s3-packages.js'), import('@aws-sdk/client-s3')]).then(
      ([{ S3PackageStore }, { S3Client }]) =>
        new S3PackageStore({
          s3: new S3Client({}),
          bucket,
          prefix: FIRMWARE_PREFIX,
          signingKey: () => signingKey(secretArn),
          apiBaseUrl: base.replace(/\/+$/, ''),
        }),
    );
    return store;
  };
  return {
    put: async (pkg: FirmwarePackage, bytes: Uint8Array) => (await load()).put(pkg, bytes),
    get: async (id: string) => (await load()).get(id),
    list: async () => (await load()).list(),
    downloadUri: async (pkg: FirmwarePackage, expiresAt: number) =>
      (await load()).downloadUri(pkg, expiresAt),
    redirect: async (id: string, query: Record<string, string | undefined>): Promise<PackageRedirect> =>
      (await load()).redirect!(id, query),
  };
}

/** The HMAC key: the secret's text (CloudFormation generates it; rotate by putting a new value). */
async function signingKey(secretArn: string): Promise<Uint8Array> {
  // Loaded here, with the S3 client: the API function's cold start carries no Secrets Manager client.
  const { GetSecretValueCommand, SecretsManagerClient } = await import('@aws-sdk/client-secrets-manager');
  const out = await new SecretsManagerClient({}).send(new GetSecretValueCommand({ SecretId: secretArn }));
  if (!out.SecretString || out.SecretString.length < 32)
    throw new ValidationError('the firmware URL key secret is empty or shorter than 32 characters', {
      field: 'FIRMWARE_URL_KEY_SECRET_ARN',
    });
  return new Uint8Array(Buffer.from(out.SecretString, 'utf8'));
}
