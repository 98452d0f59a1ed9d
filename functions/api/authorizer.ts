/**
 * API Gateway REQUEST authorizer. Accepts the admin key (its SHA-256 computed from the Secrets Manager
 * secret once per cold start) or an application key (hash looked up in the registry), and returns an
 * IAM policy allowing execute-api on the whole stage with the principal as JSON in the context; the
 * router trusts that context. API Gateway caches the decision per Authorization header for 5 minutes.
 * A missing or unknown key is `Unauthorized` (401); a failing dependency is an error (500), never an
 * Allow. Keys are never logged.
 */
import type { APIGatewayAuthorizerResult, APIGatewayRequestAuthorizerEvent } from 'aws-lambda';
import { DynamoRegistry } from '../adapters/dynamo-registry.js';
import { adminKeyHash, dynamoDocumentClient, loadConfig } from '../shared/aws-base.js';
import { functionLogger, lambdaEntry } from '../shared/lambda-entry.js';
import { type Authenticator, extractKey, type Principal } from './auth.js';
import { composeAuthorizer } from './compose.js';
import { HttpError } from './http.js';

/** The policy covers every method and path of the stage, because the decision is cached per key. */
export function stageWildcard(methodArn: string): string {
  // arn:aws:execute-api:{region}:{account}:{apiId}/{stage}/{METHOD}/{path...}
  const [prefix, stage] = methodArn.split('/');
  return `${prefix}/${stage}/*`;
}

export function allowPolicy(principal: Principal, methodArn: string): APIGatewayAuthorizerResult {
  return {
    principalId: principal.kind === 'admin' ? 'admin' : `app:${principal.appId}`,
    policyDocument: {
      Version: '2012-10-17',
      Statement: [{ Action: 'execute-api:Invoke', Effect: 'Allow', Resource: stageWildcard(methodArn) }],
    },
    context: { principal: JSON.stringify(principal) },
  };
}

export function createAuthorizer(
  makeAuthenticator: () => Promise<Authenticator>,
  logError: (message: string, error: unknown) => void = (message, error) =>
    console.error(JSON.stringify({ level: 'ERROR', message, error: String(error) })),
) {
  let authenticator: Promise<Authenticator> | undefined;
  return async (event: APIGatewayRequestAuthorizerEvent): Promise<APIGatewayAuthorizerResult> => {
    const headers = Object.fromEntries(
      Object.entries(event.headers ?? {}).map(([k, v]) => [k.toLowerCase(), v ?? undefined]),
    );
    const key = extractKey(headers);
    if (!key) throw new Error('Unauthorized');
    authenticator ??= makeAuthenticator().catch((error: unknown) => {
      authenticator = undefined;
      throw error;
    });
    let principal: Principal;
    try {
      principal = await (await authenticator).authenticateKey(key);
    } catch (error) {
      if (error instanceof HttpError && error.status === 401) throw new Error('Unauthorized');
      logError('authorizer dependency failed', error);
      throw error;
    }
    return allowPolicy(principal, event.methodArn);
  };
}

// The authorizer's role reads the registry only (application keys): no other adapter is built.
const logger = functionLogger();

// Throwing "Unauthorized" is the authorizer's answer to a bad key, not a fault: not logged as one.
export const handler = lambdaEntry(
  logger,
  createAuthorizer(
    async () => {
      const config = loadConfig();
      const registry = new DynamoRegistry({
        client: dynamoDocumentClient(),
        tableName: config.REGISTRY_TABLE,
      });
      return composeAuthorizer({ registry, adminKeyHash: await adminKeyHash() });
    },
    (message, error) => logger.error(message, error instanceof Error ? error : String(error)),
  ),
  { logFailures: false },
);
