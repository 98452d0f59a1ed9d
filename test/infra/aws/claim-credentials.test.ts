/** The claim custom resource's function (ADR 0018): key only into the secret, a CSR for that key out. */
import { createPrivateKey, createPublicKey } from 'node:crypto';
import type { CloudFormationCustomResourceEvent } from 'aws-lambda';
import { describe, expect, it } from 'vitest';
import { onClaimEvent } from '../../../functions/claim-credentials/handler.js';
import { parseCsr } from '../../../functions/core/x509.js';

const base = {
  ServiceToken: 'arn:aws:lambda:eu-west-1:123456789012:function:x',
  ResponseURL: 'https://example.invalid/',
  StackId: 'arn:aws:cloudformation:eu-west-1:123456789012:stack/S/1',
  RequestId: 'r',
  LogicalResourceId: 'ClaimCsr',
  ResourceType: 'AWS::CloudFormation::CustomResource',
  ResourceProperties: {
    ServiceToken: 'x',
    secretArn: 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:k',
  },
};

describe('claim credentials custom resource', () => {
  it('Create: puts a P-256 key into the secret and returns a CSR for it, never the key', async () => {
    const puts: Array<[string, string]> = [];
    const out = await onClaimEvent({ ...base, RequestType: 'Create' } as CloudFormationCustomResourceEvent, {
      putSecret: async (arn, value) => {
        puts.push([arn, value]);
      },
      newId: () => 'abc',
    });
    expect(out.PhysicalResourceId).toBe('claim-abc');
    expect(puts.map(([arn]) => arn)).toEqual([base.ResourceProperties.secretArn]);
    const key = createPrivateKey(JSON.parse(puts[0]![1]).privateKey as string);
    expect(key.asymmetricKeyDetails?.namedCurve).toBe('prime256v1');
    const csr = parseCsr(out.Data!.csr!);
    expect(csr.commonName).toBe('claim-abc');
    expect(createPublicKey(key).export({ type: 'spki', format: 'der' }).equals(csr.spki)).toBe(true);
    expect(JSON.stringify(out)).not.toContain('PRIVATE KEY');
  });

  it('Delete does nothing (CloudFormation owns secret and certificate); a missing secretArn fails', async () => {
    const ports = { putSecret: async () => expect.unreachable(), newId: () => 'x' };
    const del = {
      ...base,
      RequestType: 'Delete',
      PhysicalResourceId: 'claim-abc',
    } as CloudFormationCustomResourceEvent;
    expect(await onClaimEvent(del, ports)).toEqual({ PhysicalResourceId: 'claim-abc' });
    const bad = {
      ...base,
      RequestType: 'Create',
      ResourceProperties: { ServiceToken: 'x' },
    } as CloudFormationCustomResourceEvent;
    await expect(onClaimEvent(bad, ports)).rejects.toThrow(/secretArn/);
  });

  it('a tampered CSR does not verify', async () => {
    let csr = '';
    await onClaimEvent({ ...base, RequestType: 'Create' } as CloudFormationCustomResourceEvent, {
      putSecret: async () => undefined,
      newId: () => 'abc',
    }).then((o) => {
      csr = o.Data!.csr!;
    });
    const der = Buffer.from(csr.replace(/-----[^-]+-----|\s/g, ''), 'base64');
    der[der.length - 5] = (der[der.length - 5] ?? 0) ^ 0xff; // inside the signature
    const pem = `-----BEGIN CERTIFICATE REQUEST-----\n${der.toString('base64')}\n-----END CERTIFICATE REQUEST-----\n`;
    expect(() => parseCsr(pem)).toThrow(/signature|DER/);
  });
});
