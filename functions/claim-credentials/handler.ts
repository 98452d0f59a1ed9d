/**
 * CloudFormation custom resource (CDK Provider framework) behind the stack's claim certificate
 * (ADR 0018): makes an EC P-256 key, keeps it ONLY in the claim secret, and returns a CSR. The
 * certificate itself is an AWS::IoT::Certificate made from that CSR by CloudFormation, which also
 * attaches the claim policy and deletes both with the stack — so this function needs no IoT
 * permission at all, just PutSecretValue on its one secret. The key never appears in a template,
 * a response or a log.
 */
import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { PutSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import type { CloudFormationCustomResourceEvent } from 'aws-lambda';
import { createCsr } from '../core/x509.js';

export interface ClaimCredentialsPorts {
  putSecret(secretArn: string, value: string): Promise<void>;
  newId(): string;
}

export async function onClaimEvent(
  event: CloudFormationCustomResourceEvent,
  ports: ClaimCredentialsPorts,
): Promise<{ PhysicalResourceId: string; Data?: Record<string, string> }> {
  // Delete: the secret and the certificate are CloudFormation's own resources; nothing to undo here.
  if (event.RequestType === 'Delete') return { PhysicalResourceId: event.PhysicalResourceId };
  const secretArn = String(event.ResourceProperties.secretArn ?? '');
  if (!secretArn.startsWith('arn:')) throw new Error('secretArn property is missing');
  // Create, and Update (a changed property): a new key and CSR under a new physical id, so
  // CloudFormation replaces the certificate made from the previous CSR.
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const id = `claim-${ports.newId()}`;
  const csr = createCsr(privateKey, id);
  await ports.putSecret(
    secretArn,
    JSON.stringify({
      privateKey: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
      claimId: id,
    }),
  );
  return { PhysicalResourceId: id, Data: { csr } };
}

const secrets = new SecretsManagerClient({});

export const handler = (event: CloudFormationCustomResourceEvent) =>
  onClaimEvent(event, {
    async putSecret(secretArn, value) {
      await secrets.send(new PutSecretValueCommand({ SecretId: secretArn, SecretString: value }));
    },
    newId: randomUUID,
  });
