/**
 * The part of the AWS wiring every function needs, kept apart so the authorizer's bundle loads only
 * these clients (DynamoDB, Secrets Manager) at cold start: the validated environment, the DynamoDB
 * document client and the admin key's hash from Secrets Manager.
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { hashKey } from '../api/auth.js';
import { type IngestConfig, ingestConfigSpec, parseConfig } from '../core/config.js';
import { ValidationError } from '../core/errors.js';

export function loadConfig(env: NodeJS.ProcessEnv = process.env): IngestConfig {
  return parseConfig(ingestConfigSpec, env, { strictPrefix: 'DUALPATH_' });
}

export function dynamoDocumentClient(): DynamoDBDocumentClient {
  return DynamoDBDocumentClient.from(new DynamoDBClient({}), {
    marshallOptions: { removeUndefinedValues: true, convertClassInstanceToMap: true },
  });
}

/**
 * Reads the admin key from Secrets Manager and returns its SHA-256 (hex); the key itself is not kept.
 * The secret is either the key as plain text or JSON with a `key` (or `password`) member.
 */
export async function adminKeyHashFromSecret(
  client: SecretsManagerClient,
  secretArn: string,
): Promise<string> {
  const out = await client.send(new GetSecretValueCommand({ SecretId: secretArn }));
  const raw = out.SecretString;
  if (raw === undefined || raw.length === 0)
    throw new ValidationError('the admin key secret is empty', { field: 'ADMIN_KEY_SECRET_ARN' });
  let key = raw;
  if (raw.startsWith('{')) {
    const parsed = JSON.parse(raw) as { key?: unknown; password?: unknown };
    const v = parsed.key ?? parsed.password;
    if (typeof v !== 'string' || v.length === 0)
      throw new ValidationError('the admin key secret JSON has no key member', {
        field: 'ADMIN_KEY_SECRET_ARN',
      });
    key = v;
  }
  return hashKey(key);
}

export function adminKeySecretArn(env: NodeJS.ProcessEnv = process.env): string {
  const arn = env.ADMIN_KEY_SECRET_ARN;
  if (!arn) throw new ValidationError('ADMIN_KEY_SECRET_ARN is not set', { field: 'ADMIN_KEY_SECRET_ARN' });
  return arn;
}

/** The admin key's hash, read from the secret the stack generated. */
export function adminKeyHash(): Promise<string> {
  return adminKeyHashFromSecret(new SecretsManagerClient({}), adminKeySecretArn());
}
