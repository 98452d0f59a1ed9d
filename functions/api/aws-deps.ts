/**
 * The API's dependencies in AWS, built once per cold start from the validated configuration: the
 * DynamoDB registry and event log, the telemetry store chosen by TELEMETRY_BACKEND (Timestream,
 * DynamoDB, or none = a store that answers empty results), the LwM2M server over the DynamoDB state
 * tables, the IoT data-plane publisher and the admin key hash from Secrets Manager.
 */
import { randomUUID } from 'node:crypto';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { CommandService } from '../core/commands.js';
import { ValidationError } from '../core/errors.js';
import {
  awsClients,
  iotPublisher,
  loadConfig,
  lwm2mServer,
  registryAndEvents,
  stateStores,
  telemetryStore,
} from '../shared/aws.js';
import { Authenticator, hashKey } from './auth.js';
import type { ApiDeps } from './router.js';
import { registryHealth } from './routes/health.js';

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

export async function createAwsApiDeps(): Promise<ApiDeps> {
  const config = loadConfig();
  const { doc } = awsClients();
  const { registry, events } = registryAndEvents(config, doc);
  const publisher = iotPublisher(config);
  const clock = Date.now;
  const commands = new CommandService({
    registry,
    lwm2m: lwm2mServer(config, doc),
    publish: (a) => publisher.publish(a),
    clock,
    newId: randomUUID,
  });
  const adminHash = await adminKeyHashFromSecret(new SecretsManagerClient({}), adminKeySecretArn());
  return {
    registry,
    store: await telemetryStore(config, doc),
    events,
    commands,
    authenticator: new Authenticator(adminHash, registry),
    clock,
    health: registryHealth(registry, clock),
    sparkplugState: stateStores(config, doc).sparkplug,
  };
}
