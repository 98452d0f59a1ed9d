/**
 * Device onboarding on AWS (ADR 0018): fleet provisioning by claim.
 *   - a claim certificate (AWS::IoT::Certificate from a CSR whose key is made in a custom resource and
 *     kept only in the claim secret) with a policy that can do nothing but call this stack's
 *     provisioning topics, under client ids `provision-*`;
 *   - the provisioning template: the thing (name = DeviceId, the Dualpath thing type, attribute
 *     deviceType), the device's own certificate made from its CSR, and the per-thing device policy;
 *   - the pre-provisioning hook (functions/provisioning-hook) that checks the device against the
 *     registry, and the template role that IoT assumes to create those resources.
 */
import * as path from 'node:path';
import { Aws, type CfnElement, CustomResource, RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import { PolicyDocument, PolicyStatement, Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import {
  CfnCertificate,
  CfnPolicy,
  CfnPolicyPrincipalAttachment,
  CfnProvisioningTemplate,
} from 'aws-cdk-lib/aws-iot';
import { CfnPermission } from 'aws-cdk-lib/aws-lambda';
import type { NodejsFunction } from 'aws-cdk-lib/aws-lambda-nodejs';
import { Secret } from 'aws-cdk-lib/aws-secretsmanager';
import { Provider } from 'aws-cdk-lib/custom-resources';
import { Construct } from 'constructs';
import {
  CLAIM_CLIENT_PREFIX,
  FLEET_TOPICS,
  PROVISIONING_PARAMETERS,
} from '../../../functions/core/onboarding.js';
import { DEVICE_TYPE_IDS } from '../../../simulator/device-types.js';
import type { DeploySettings } from '../settings.js';

/**
 * The claim certificate's policy: connect as `provision-*`, and publish/subscribe/receive on the
 * CreateCertificateFromCsr and this template's RegisterThing topics only (no CreateKeysAndCertificate:
 * device keys are made on the device). Exported for tests and docs.
 */
export function claimPolicyDocument(
  region: string,
  account: string,
  templateName: string,
): Record<string, unknown> {
  const arn = (kind: string, rest: string) => `arn:aws:iot:${region}:${account}:${kind}/${rest}`;
  const csr = FLEET_TOPICS.createFromCsr;
  const provision = FLEET_TOPICS.provision(templateName);
  return {
    Version: '2012-10-17',
    Statement: [
      {
        Sid: 'ConnectToProvision',
        Effect: 'Allow',
        Action: 'iot:Connect',
        Resource: arn('client', `${CLAIM_CLIENT_PREFIX}*`),
      },
      {
        Sid: 'RequestCertificateAndRegister',
        Effect: 'Allow',
        Action: 'iot:Publish',
        Resource: [arn('topic', csr), arn('topic', provision)],
      },
      {
        Sid: 'SubscribeToAnswers',
        Effect: 'Allow',
        Action: 'iot:Subscribe',
        Resource: [
          `${csr}/accepted`,
          `${csr}/rejected`,
          `${provision}/accepted`,
          `${provision}/rejected`,
        ].map((t) => arn('topicfilter', t)),
      },
      {
        Sid: 'ReceiveAnswers',
        Effect: 'Allow',
        Action: 'iot:Receive',
        Resource: [
          `${csr}/accepted`,
          `${csr}/rejected`,
          `${provision}/accepted`,
          `${provision}/rejected`,
        ].map((t) => arn('topic', t)),
      },
    ],
  };
}

/** The fleet-provisioning template body (AWS template syntax). Exported for tests and the fake. */
export function provisioningTemplateBody(policyName: string, thingTypeName: string): Record<string, unknown> {
  const { deviceId, deviceType } = PROVISIONING_PARAMETERS;
  return {
    Parameters: {
      [deviceId]: { Type: 'String' },
      [deviceType]: { Type: 'String' },
      'AWS::IoT::Certificate::Id': { Type: 'String' },
    },
    Resources: {
      thing: {
        Type: 'AWS::IoT::Thing',
        Properties: {
          ThingName: { Ref: deviceId },
          ThingTypeName: thingTypeName,
          AttributePayload: { deviceType: { Ref: deviceType } },
        },
        OverrideSettings: { AttributePayload: 'MERGE', ThingTypeName: 'REPLACE', ThingGroups: 'DO_NOTHING' },
      },
      certificate: {
        Type: 'AWS::IoT::Certificate',
        Properties: { CertificateId: { Ref: 'AWS::IoT::Certificate::Id' }, Status: 'ACTIVE' },
      },
      policy: { Type: 'AWS::IoT::Policy', Properties: { PolicyName: policyName } },
    },
  };
}

/**
 * What IoT needs to apply the template: create/describe/update the thing (any name: the hook decides
 * which), activate the new certificate and attach it to the thing and to the one device policy.
 */
export function templateRoleStatements(
  region: string,
  account: string,
  policyName: string,
  thingTypeName: string,
): PolicyStatement[] {
  const arn = (kind: string, rest: string) => `arn:aws:iot:${region}:${account}:${kind}/${rest}`;
  return [
    new PolicyStatement({
      sid: 'Things',
      actions: [
        'iot:CreateThing',
        'iot:DescribeThing',
        'iot:UpdateThing',
        'iot:AttachThingPrincipal',
        'iot:ListThingPrincipals',
      ],
      resources: [arn('thing', '*'), arn('thingtype', thingTypeName)],
    }),
    new PolicyStatement({
      sid: 'DescribeThingType',
      actions: ['iot:DescribeThingType'],
      resources: [arn('thingtype', thingTypeName)],
    }),
    new PolicyStatement({
      sid: 'NewCertificates',
      actions: [
        'iot:DescribeCertificate',
        'iot:UpdateCertificate',
        'iot:AttachPolicy',
        'iot:AttachPrincipalPolicy',
        'iot:ListPrincipalThings',
      ],
      resources: [arn('cert', '*')],
    }),
    new PolicyStatement({
      sid: 'DevicePolicy',
      actions: ['iot:GetPolicy', 'iot:AttachPolicy', 'iot:AttachPrincipalPolicy'],
      resources: [arn('policy', policyName)],
    }),
  ];
}

export interface OnboardingProps {
  devicePolicyName: string;
  thingTypeName: string;
  hook: NodejsFunction;
  claimFunction: NodejsFunction;
}

export class DeviceOnboarding extends Construct {
  readonly templateName: string;
  readonly template: CfnProvisioningTemplate;
  readonly templateRole: Role;
  readonly claimPolicy: CfnPolicy;
  readonly claimCertificate: CfnCertificate;
  readonly claimAttachment: CfnPolicyPrincipalAttachment;
  readonly claimSecret: Secret;
  readonly claimKey: CustomResource;
  readonly hook: NodejsFunction;
  readonly claimFunction: NodejsFunction;

  constructor(scope: Construct, id: string, props: OnboardingProps) {
    super(scope, id);
    const stack = Stack.of(this);
    this.hook = props.hook;
    this.claimFunction = props.claimFunction;
    // One template per stack; the name is known before it exists, so the claim policy and the hook's
    // invoke permission name it without a cycle.
    this.templateName = `${stack.stackName}-devices`;
    const templateArn = `arn:${Aws.PARTITION}:iot:${Aws.REGION}:${Aws.ACCOUNT_ID}:provisioningtemplate/${this.templateName}`;

    this.templateRole = new Role(this, 'TemplateRole', {
      assumedBy: new ServicePrincipal('iot.amazonaws.com'),
      description:
        'IoT fleet provisioning: create the device thing, activate its certificate, attach the device policy',
    });
    for (const st of templateRoleStatements(
      Aws.REGION,
      Aws.ACCOUNT_ID,
      props.devicePolicyName,
      props.thingTypeName,
    ))
      this.templateRole.addToPolicy(st);

    // IoT may invoke the hook only for this template, in this account (confused-deputy guard).
    const permission = new CfnPermission(this, 'HookInvokePermission', {
      action: 'lambda:InvokeFunction',
      functionName: props.hook.functionArn,
      principal: 'iot.amazonaws.com',
      sourceArn: templateArn,
      sourceAccount: Aws.ACCOUNT_ID,
    });

    this.template = new CfnProvisioningTemplate(this, 'Template', {
      templateName: this.templateName,
      description: 'Dualpath device onboarding by claim: thing, own certificate, per-thing policy',
      enabled: true,
      provisioningRoleArn: this.templateRole.roleArn,
      templateBody: stack.toJsonString(provisioningTemplateBody(props.devicePolicyName, props.thingTypeName)),
      preProvisioningHook: { targetArn: props.hook.functionArn, payloadVersion: '2020-04-01' },
    });
    this.template.node.addDependency(permission, this.templateRole);

    this.claimPolicy = new CfnPolicy(this, 'ClaimPolicy', {
      policyDocument: PolicyDocument.fromJson(
        claimPolicyDocument(Aws.REGION, Aws.ACCOUNT_ID, this.templateName),
      ),
    });
    this.claimSecret = new Secret(this, 'ClaimKey', {
      description: 'Dualpath claim certificate private key (written by the claim custom resource)',
      removalPolicy: RemovalPolicy.DESTROY,
    });
    // PutSecretValue on this one secret: the claim function's only permission.
    props.claimFunction.addToRolePolicy(
      new PolicyStatement({
        sid: 'PutClaimKey',
        actions: ['secretsmanager:PutSecretValue'],
        resources: [this.claimSecret.secretArn],
      }),
    );
    const provider = new Provider(this, 'ClaimProvider', { onEventHandler: props.claimFunction });
    this.claimKey = new CustomResource(this, 'ClaimCsr', {
      serviceToken: provider.serviceToken,
      properties: { secretArn: this.claimSecret.secretArn },
    });
    this.claimCertificate = new CfnCertificate(this, 'ClaimCertificate', {
      certificateSigningRequest: this.claimKey.getAttString('csr'),
      status: 'ACTIVE',
    });
    this.claimAttachment = new CfnPolicyPrincipalAttachment(this, 'ClaimPolicyAttachment', {
      policyName: this.claimPolicy.ref,
      principal: this.claimCertificate.attrArn,
    });
  }

  /** The claim certificate id (CloudFormation Ref of AWS::IoT::Certificate). */
  get claimCertificateId(): string {
    return this.claimCertificate.ref;
  }
}

export const ONBOARDING_ENTRIES = {
  hook: path.join('functions', 'provisioning-hook', 'handler.ts'),
  claim: path.join('functions', 'claim-credentials', 'handler.ts'),
} as const;

/**
 * The hook's SELF_REGISTER_ID_PREFIX: the simulator's thing prefix when only the simulator's devices
 * register themselves (a claim holder cannot self-register other ids), else '*' (any id).
 */
export function selfRegisterIdPrefix(
  s: Pick<DeploySettings, 'autoRegister' | 'simulatorTasks'>,
  simulatorPrefix: string,
): string {
  return !s.autoRegister && s.simulatorTasks > 0 ? simulatorPrefix : '*';
}

/**
 * The hook's SELF_REGISTER_TYPES: any type with `autoRegister=true` (as the ingest paths do), else the
 * simulator's types when the simulator is deployed (its devices register themselves at onboarding),
 * else 'none': only devices registered through the API can onboard.
 */
export function selfRegisterTypes(s: Pick<DeploySettings, 'autoRegister' | 'simulatorTasks'>): string {
  if (s.autoRegister) return '*';
  return s.simulatorTasks > 0 ? DEVICE_TYPE_IDS.join(',') : 'none';
}

/** cdk-nag findings of the onboarding resources we accept, each with its reason. */
export function acknowledgeOnboardingFindings(o: DeviceOnboarding): void {
  const ack = (scope: Construct, rule: string, reason: string) =>
    Validations.of(scope).acknowledge({ id: `AwsSolutions::AwsSolutions-${rule}`, reason });
  const iotArn = (rest: string) => `Resource::arn:aws:iot:<AWS::Region>:<AWS::AccountId>:${rest}`;
  ack(
    o.templateRole,
    `IAM5[${iotArn('thing/*')}]`,
    'Fleet provisioning creates the thing named by the device; the pre-provisioning hook decides which names are allowed.',
  );
  ack(
    o.templateRole,
    `IAM5[${iotArn('cert/*')}]`,
    'The certificate is made by CreateCertificateFromCsr during provisioning; its id is not known before. Only IoT assumes this role.',
  );
  ack(o.claimSecret, 'SMG4', 'Rotated by replacing the claim custom resource (a new key and certificate).');
  const provider = o.node.findChild('ClaimProvider');
  ack(
    provider,
    'IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]',
    'CDK custom-resource provider framework function: logs only.',
  );
  const fnId = Stack.of(o).getLogicalId(o.claimFunction.node.defaultChild as CfnElement);
  ack(
    provider,
    `IAM5[Resource::<${fnId}.Arn>:*]`,
    'CDK provider framework invokes any version of the claim function.',
  );
  ack(provider, 'L1', 'CDK provider framework runtime is chosen by aws-cdk-lib.');
}
