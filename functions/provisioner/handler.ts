/**
 * CloudFormation custom resource (via the CDK Provider framework) that provisions the simulator's
 * devices at deploy time: N things named {prefix}{0000..} of the Dualpath thing type, ONE fleet
 * certificate attached to all of them and to the per-device policy (the policy's
 * ${iot:Connection.Thing.ThingName} variable still restricts each session to its own topics, because a
 * client id must name a thing attached to the certificate), and a secret holding the certificate, its
 * private key and the ATS endpoint. The private key never appears in a template or a log.
 */
import {
  AttachPolicyCommand,
  AttachThingPrincipalCommand,
  CreateKeysAndCertificateCommand,
  CreateThingCommand,
  DeleteCertificateCommand,
  DeleteThingCommand,
  DescribeEndpointCommand,
  DetachPolicyCommand,
  DetachThingPrincipalCommand,
  IoTClient,
  UpdateCertificateCommand,
} from '@aws-sdk/client-iot';
import { PutSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import type { CloudFormationCustomResourceEvent } from 'aws-lambda';

interface Props {
  thingPrefix: string;
  count: string | number;
  thingTypeName: string;
  policyName: string;
  secretArn: string;
}

const iot = new IoTClient({});
const secrets = new SecretsManagerClient({});

export function thingNames(prefix: string, count: number): string[] {
  const width = Math.max(4, String(count - 1).length);
  return Array.from({ length: count }, (_, i) => `${prefix}${String(i).padStart(width, '0')}`);
}

async function inBatches<T>(items: T[], size: number, fn: (item: T) => Promise<unknown>): Promise<void> {
  for (let i = 0; i < items.length; i += size) await Promise.all(items.slice(i, i + size).map(fn));
}

function ignoreNotFound(error: unknown): void {
  if ((error as Error).name !== 'ResourceNotFoundException') throw error;
}

export async function handler(
  event: CloudFormationCustomResourceEvent,
): Promise<{ PhysicalResourceId: string; Data?: Record<string, string> }> {
  const props = event.ResourceProperties as unknown as Props;
  const count = Number(props.count);
  if (event.RequestType === 'Delete') {
    const certArn = event.PhysicalResourceId;
    if (certArn.startsWith('arn:')) {
      const certId = certArn.split('/').at(-1)!;
      await inBatches(thingNames(props.thingPrefix, count), 10, async (thingName) => {
        await iot
          .send(new DetachThingPrincipalCommand({ thingName, principal: certArn }))
          .catch(ignoreNotFound);
        await iot.send(new DeleteThingCommand({ thingName })).catch(ignoreNotFound);
      });
      await iot
        .send(new DetachPolicyCommand({ policyName: props.policyName, target: certArn }))
        .catch(ignoreNotFound);
      await iot
        .send(new UpdateCertificateCommand({ certificateId: certId, newStatus: 'INACTIVE' }))
        .catch(ignoreNotFound);
      await iot
        .send(new DeleteCertificateCommand({ certificateId: certId, forceDelete: true }))
        .catch(ignoreNotFound);
    }
    return { PhysicalResourceId: certArn };
  }
  let certArn = event.RequestType === 'Update' ? event.PhysicalResourceId : '';
  if (!certArn.startsWith('arn:')) {
    const cert = await iot.send(new CreateKeysAndCertificateCommand({ setAsActive: true }));
    certArn = cert.certificateArn!;
    const endpoint = await iot.send(new DescribeEndpointCommand({ endpointType: 'iot:Data-ATS' }));
    await secrets.send(
      new PutSecretValueCommand({
        SecretId: props.secretArn,
        SecretString: JSON.stringify({
          certificatePem: cert.certificatePem,
          privateKey: cert.keyPair?.PrivateKey,
          endpoint: endpoint.endpointAddress,
          thingPrefix: props.thingPrefix,
        }),
      }),
    );
    await iot.send(new AttachPolicyCommand({ policyName: props.policyName, target: certArn }));
  }
  await inBatches(thingNames(props.thingPrefix, count), 10, async (thingName) => {
    await iot
      .send(new CreateThingCommand({ thingName, thingTypeName: props.thingTypeName }))
      .catch((error: Error) => {
        if (error.name !== 'ResourceAlreadyExistsException') throw error;
      });
    await iot.send(new AttachThingPrincipalCommand({ thingName, principal: certArn }));
  });
  return { PhysicalResourceId: certArn, Data: { certificateArn: certArn } };
}
