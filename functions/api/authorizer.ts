/**
 * API Gateway REQUEST authorizer: accepts the admin key (its hash from Secrets Manager, read once per
 * cold start) or an application key (hash looked up in the registry). The principal is passed to the
 * router in the authorizer context; API Gateway caches the decision for 5 minutes. Keys are never logged.
 */
import type { APIGatewayAuthorizerResult, APIGatewayRequestAuthorizerEvent } from 'aws-lambda';
import { awsClients, loadConfig, registryAndEvents } from '../shared/aws.js';
import { Authenticator, extractKey } from './auth.js';
import { adminKeyHash } from './handler.js';

let authenticator: Authenticator | undefined;

function policy(effect: 'Allow' | 'Deny', resource: string, principal?: string): APIGatewayAuthorizerResult {
  return {
    principalId: principal ? 'dualpath' : 'anonymous',
    policyDocument: {
      Version: '2012-10-17',
      Statement: [{ Action: 'execute-api:Invoke', Effect: effect, Resource: resource }],
    },
    ...(principal ? { context: { principal } } : {}),
  };
}

export async function handler(event: APIGatewayRequestAuthorizerEvent): Promise<APIGatewayAuthorizerResult> {
  if (!authenticator) {
    const config = loadConfig();
    const { registry } = registryAndEvents(config, awsClients().doc);
    authenticator = new Authenticator(await adminKeyHash(), registry);
  }
  const headers = Object.fromEntries(
    Object.entries(event.headers ?? {}).map(([k, v]) => [k.toLowerCase(), v ?? undefined]),
  );
  const key = extractKey(headers);
  // The cached decision covers the whole API (stage/*), so allow by resource wildcard per principal.
  const resource = event.methodArn.split('/').slice(0, 2).join('/') + '/*';
  if (!key) throw new Error('Unauthorized');
  try {
    const principal = await authenticator.authenticateKey(key);
    return policy('Allow', resource, JSON.stringify(principal));
  } catch {
    throw new Error('Unauthorized');
  }
}
