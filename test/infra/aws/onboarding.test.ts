/**
 * Least privilege of the onboarding policies (ADR 0018), checked by evaluating the real documents:
 * the claim certificate can only provision; a device can connect only as itself and publish/subscribe
 * only on its own Sparkplug and LwM2M topics. And the template's shape against the device client.
 */
import { describe, expect, it } from 'vitest';
import { PROVISIONING_PARAMETERS } from '../../../functions/core/onboarding.js';
import { devicePolicyDocument } from '../../../infra/aws/constructs/iot.js';
import {
  claimPolicyDocument,
  provisioningTemplateBody,
  selfRegisterIdPrefix,
  selfRegisterTypes,
  templateRoleStatements,
} from '../../../infra/aws/constructs/onboarding.js';
import { CLAIM_CLIENT_PREFIX, FLEET_TOPICS } from '../../../simulator/provisioning.js';
import { iotArn, isAllowed } from '../../helpers/iot-policy.js';

const arn = iotArn('eu-west-1', '123456789012');
const T = 'Stack-devices';

describe('claim policy', () => {
  const p = claimPolicyDocument('eu-west-1', '123456789012', T);
  const ctx = { clientId: 'provision-1' };
  it('allows exactly the CreateCertificateFromCsr and RegisterThing round trips of this template', () => {
    for (const topic of [FLEET_TOPICS.createFromCsr, FLEET_TOPICS.provision(T)]) {
      expect(isAllowed(p, 'iot:Publish', arn('topic', topic), ctx)).toBe(true);
      for (const answer of ['accepted', 'rejected']) {
        expect(isAllowed(p, 'iot:Subscribe', arn('topicfilter', `${topic}/${answer}`), ctx)).toBe(true);
        expect(isAllowed(p, 'iot:Receive', arn('topic', `${topic}/${answer}`), ctx)).toBe(true);
      }
    }
    expect(isAllowed(p, 'iot:Connect', arn('client', `${CLAIM_CLIENT_PREFIX}abc`), ctx)).toBe(true);
  });
  it('allows nothing else', () => {
    const denied: Array<[string, string]> = [
      ['iot:Connect', arn('client', 'pump-7')],
      ['iot:Publish', arn('topic', '$aws/certificates/create/json')], // server-made keys: not allowed
      ['iot:Publish', arn('topic', FLEET_TOPICS.provision('OtherStack-devices'))],
      ['iot:Publish', arn('topic', 'spBv1.0/g/NDATA/pump-7')],
      ['iot:Publish', arn('topic', 'lwm2m/rd/pump-7')],
      ['iot:Subscribe', arn('topicfilter', '#')],
      ['iot:Subscribe', arn('topicfilter', '$aws/certificates/create-from-csr/json/#')],
      ['iot:Receive', arn('topic', 'spBv1.0/g/NCMD/pump-7')],
      ['iot:UpdateThingShadow', arn('thing', 'pump-7')],
    ];
    for (const [action, resource] of denied)
      expect(isAllowed(p, action, resource, ctx), `${action} ${resource}`).toBe(false);
  });
});

describe('device policy (attached by the template)', () => {
  const p = devicePolicyDocument('eu-west-1', '123456789012');
  const me = { clientId: 'pump-7', thingName: 'pump-7', attached: true };
  it('lets a device connect as itself and use its own Sparkplug and LwM2M topics', () => {
    expect(isAllowed(p, 'iot:Connect', arn('client', 'pump-7'), me)).toBe(true);
    for (const t of [
      'spBv1.0/g/NBIRTH/pump-7',
      'spBv1.0/g/NDATA/pump-7',
      'spBv1.0/g/DDATA/pump-7/s1',
      'lwm2m/rd/pump-7',
    ])
      expect(isAllowed(p, 'iot:Publish', arn('topic', t), me), t).toBe(true);
    for (const t of ['spBv1.0/g/NCMD/pump-7', 'spBv1.0/g/DCMD/pump-7/s1', 'lwm2m/rd/pump-7'])
      expect(isAllowed(p, 'iot:Subscribe', arn('topicfilter', t), me), t).toBe(true);
  });
  it('with the LwM2M rule named, allows Basic Ingest of own LwM2M uplinks only (ADR 0024)', () => {
    const rule = 'Dualpath_dualpath_lwm2m';
    const q = devicePolicyDocument('eu-west-1', '123456789012', rule);
    const ingest = (r: string, ep: string) => arn('topic', `$aws/rules/${r}/lwm2m/rd/${ep}`);
    expect(isAllowed(q, 'iot:Publish', ingest(rule, 'pump-7'), me)).toBe(true);
    expect(isAllowed(q, 'iot:Publish', ingest(rule, 'pump-8'), me)).toBe(false);
    expect(isAllowed(q, 'iot:Publish', ingest('Dualpath_dualpath_sparkplug', 'pump-7'), me)).toBe(false);
    expect(isAllowed(q, 'iot:Publish', ingest(rule, 'pump-7'), { ...me, attached: false })).toBe(false);
    // Without the rule, no Basic Ingest at all; nobody may subscribe to or receive $aws/rules topics.
    expect(isAllowed(p, 'iot:Publish', ingest(rule, 'pump-7'), me)).toBe(false);
    expect(isAllowed(q, 'iot:Subscribe', arn('topicfilter', `$aws/rules/${rule}/lwm2m/rd/pump-7`), me)).toBe(
      false,
    );
    expect(isAllowed(q, 'iot:Receive', ingest(rule, 'pump-7'), me)).toBe(false);
  });
  it('denies other devices’ topics, other client ids, and certificates not attached to the thing', () => {
    for (const t of [
      'spBv1.0/g/NDATA/pump-8',
      'spBv1.0/g/DDATA/pump-8/s1',
      'lwm2m/rd/pump-8',
      'spBv1.0/g/NCMD/pump-7',
      'spBv1.0/STATE/host',
    ])
      expect(isAllowed(p, 'iot:Publish', arn('topic', t), me), t).toBe(false);
    for (const t of ['spBv1.0/g/NCMD/pump-8', 'lwm2m/rd/pump-8', 'spBv1.0/#', '#'])
      expect(isAllowed(p, 'iot:Subscribe', arn('topicfilter', t), me), t).toBe(false);
    expect(isAllowed(p, 'iot:Connect', arn('client', 'pump-8'), me)).toBe(false);
    expect(
      isAllowed(p, 'iot:Publish', arn('topic', 'spBv1.0/g/NDATA/pump-7'), { ...me, attached: false }),
    ).toBe(false);
  });
});

describe('provisioning template and role', () => {
  it('takes exactly the parameters the device client sends and makes thing, certificate, policy', () => {
    const body = provisioningTemplateBody('DevicePolicy', 'ThingType') as {
      Parameters: Record<string, unknown>;
      Resources: Record<string, { Type: string; Properties: Record<string, unknown> }>;
    };
    expect(Object.keys(body.Parameters).sort()).toEqual(
      [
        'AWS::IoT::Certificate::Id',
        PROVISIONING_PARAMETERS.deviceId,
        PROVISIONING_PARAMETERS.deviceType,
      ].sort(),
    );
    expect(
      Object.values(body.Resources)
        .map((r) => r.Type)
        .sort(),
    ).toEqual(['AWS::IoT::Certificate', 'AWS::IoT::Policy', 'AWS::IoT::Thing']);
    expect(body.Resources.thing?.Properties).toMatchObject({
      ThingName: { Ref: 'DeviceId' },
      ThingTypeName: 'ThingType',
      AttributePayload: { deviceType: { Ref: 'DeviceType' } },
    });
    expect(body.Resources.policy?.Properties).toEqual({ PolicyName: 'DevicePolicy' });
    // Fits RegisterThing's 10,240-character template limit.
    expect(JSON.stringify(body).length).toBeLessThan(10_240);
  });
  it('the template role has no wildcard action and no resource outside IoT things, certs, one type and one policy', () => {
    const sts = templateRoleStatements('eu-west-1', '123456789012', 'DevicePolicy', 'ThingType').map((s) =>
      s.toJSON(),
    );
    for (const st of sts) {
      for (const a of [].concat(st.Action)) expect(a).toMatch(/^iot:[A-Za-z]+$/);
      for (const r of [].concat(st.Resource) as string[])
        expect(r).toMatch(/:(thing\/\*|cert\/\*|thingtype\/ThingType|policy\/DevicePolicy)$/);
    }
  });
  it('self-registering types: any with autoRegister, the simulator’s with the simulator, else none', () => {
    expect(selfRegisterTypes({ autoRegister: true, simulatorTasks: 0 })).toBe('*');
    expect(selfRegisterTypes({ autoRegister: false, simulatorTasks: 0 })).toBe('none');
    expect(selfRegisterTypes({ autoRegister: false, simulatorTasks: 2 }).split(',')).toContain('breaker');
    // Only the simulator's own thing names self-register when it is the reason.
    expect(selfRegisterIdPrefix({ autoRegister: false, simulatorTasks: 2 }, 'S-sim-')).toBe('S-sim-');
    expect(selfRegisterIdPrefix({ autoRegister: true, simulatorTasks: 2 }, 'S-sim-')).toBe('*');
    expect(selfRegisterIdPrefix({ autoRegister: false, simulatorTasks: 0 }, 'S-sim-')).toBe('*');
  });
});
