/**
 * IoT Core: the two topic rules (SQL from the pipeline definition) into Kinesis with an SQS error
 * action each, the thing type, and the per-device policy that lets a device connect only as itself
 * and publish/subscribe only on its own Sparkplug node and LwM2M endpoint topics.
 */
import { Aws, Duration, Stack } from 'aws-cdk-lib';
import { PolicyDocument, PolicyStatement, Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { CfnPolicy, CfnThingType, CfnTopicRule } from 'aws-cdk-lib/aws-iot';
import type { Stream } from 'aws-cdk-lib/aws-kinesis';
import { Queue, QueueEncryption } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';

export interface IotRuleSpec {
  name: string;
  sql: string;
  stream: Stream;
  /** Substitution template, e.g. ${topic(2)}/${topic(4)}. */
  partitionKey: string;
}

export interface IotProps {
  rules: IotRuleSpec[];
  thingTypeName: string;
}

// An IoT policy variable (not a JS template): resolves to the connecting thing's name.
const THING = '${iot:Connection.Thing.ThingName}';

/** The device policy document; exported for tests and docs. */
export function devicePolicyDocument(region: string, account: string): Record<string, unknown> {
  const arn = (kind: string, rest: string) => `arn:aws:iot:${region}:${account}:${kind}/${rest}`;
  const attached = { Bool: { 'iot:Connection.Thing.IsAttached': 'true' } };
  return {
    Version: '2012-10-17',
    Statement: [
      {
        Sid: 'ConnectAsItself',
        Effect: 'Allow',
        Action: 'iot:Connect',
        Resource: arn('client', THING),
        Condition: attached,
      },
      {
        Sid: 'PublishOwnTopics',
        Effect: 'Allow',
        Action: 'iot:Publish',
        Resource: [
          ...['NBIRTH', 'NDATA', 'NDEATH'].map((t) => arn('topic', `spBv1.0/*/${t}/${THING}`)),
          ...['DBIRTH', 'DDATA', 'DDEATH'].map((t) => arn('topic', `spBv1.0/*/${t}/${THING}/*`)),
          arn('topic', `lwm2m/rd/${THING}`),
        ],
        Condition: attached,
      },
      {
        Sid: 'SubscribeOwnCommands',
        Effect: 'Allow',
        Action: 'iot:Subscribe',
        Resource: [
          arn('topicfilter', `spBv1.0/*/NCMD/${THING}`),
          arn('topicfilter', `spBv1.0/*/DCMD/${THING}/*`),
          arn('topicfilter', 'spBv1.0/STATE/*'),
          arn('topicfilter', `lwm2m/rd/${THING}`),
        ],
        Condition: attached,
      },
      {
        Sid: 'ReceiveOwnCommands',
        Effect: 'Allow',
        Action: 'iot:Receive',
        Resource: [
          arn('topic', `spBv1.0/*/NCMD/${THING}`),
          arn('topic', `spBv1.0/*/DCMD/${THING}/*`),
          arn('topic', 'spBv1.0/STATE/*'),
          arn('topic', `lwm2m/rd/${THING}`),
        ],
        Condition: attached,
      },
    ],
  };
}

export class IotIngress extends Construct {
  readonly rules: CfnTopicRule[] = [];
  readonly errorQueue: Queue;
  readonly policy: CfnPolicy;

  constructor(scope: Construct, id: string, props: IotProps) {
    super(scope, id);
    this.errorQueue = new Queue(this, 'RuleErrors', {
      encryption: QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
    });
    const role = new Role(this, 'RuleRole', {
      assumedBy: new ServicePrincipal('iot.amazonaws.com'),
      description: 'IoT topic rules: put records to the Dualpath streams, send failures to the error queue',
    });
    this.errorQueue.grantSendMessages(role);
    for (const rule of props.rules) {
      rule.stream.grantWrite(role);
      this.rules.push(
        new CfnTopicRule(this, `${rule.name}Rule`, {
          ruleName: rule.name,
          topicRulePayload: {
            sql: rule.sql,
            awsIotSqlVersion: '2016-03-23',
            ruleDisabled: false,
            description: `Dualpath: forwards ${rule.name} messages to Kinesis`,
            actions: [
              {
                kinesis: {
                  streamName: rule.stream.streamName,
                  partitionKey: rule.partitionKey,
                  roleArn: role.roleArn,
                },
              },
            ],
            errorAction: {
              sqs: { queueUrl: this.errorQueue.queueUrl, roleArn: role.roleArn, useBase64: true },
            },
          },
        }),
      );
    }
    new CfnThingType(this, 'ThingType', {
      thingTypeName: props.thingTypeName,
      thingTypeProperties: {
        thingTypeDescription: 'Dualpath device: Sparkplug B edge node and LwM2M 1.2 endpoint',
      },
    });
    const stack = Stack.of(this);
    this.policy = new CfnPolicy(this, 'DevicePolicy', {
      policyName: `${stack.stackName}-device`,
      policyDocument: PolicyDocument.fromJson(devicePolicyDocument(Aws.REGION, Aws.ACCOUNT_ID)),
    });
  }

  /** Statement letting a function publish commands/responses to devices through the IoT data plane. */
  static publishStatement(): PolicyStatement {
    const arn = (rest: string) => `arn:aws:iot:${Aws.REGION}:${Aws.ACCOUNT_ID}:topic/${rest}`;
    return new PolicyStatement({
      actions: ['iot:Publish'],
      resources: [arn('spBv1.0/*/NCMD/*'), arn('spBv1.0/*/DCMD/*'), arn('lwm2m/rd/*')],
    });
  }
}
