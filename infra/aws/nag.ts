/**
 * cdk-nag AwsSolutions findings we accept, each with its reason. Everything not listed here fails
 * `cdk synth` (and the infra tests). Findings are acknowledged on the construct that raises them, so a
 * new resource with the same problem is still reported.
 */
import { type CfnElement, Stack, Validations } from 'aws-cdk-lib';
import type { IConstruct } from 'constructs';

const ack = (scope: IConstruct, rule: string, reason: string) =>
  Validations.of(scope).acknowledge({ id: `AwsSolutions::AwsSolutions-${rule}`, reason });

export interface NagTargets {
  functions: IConstruct[];
  /** Functions that publish to devices, with their topic patterns (IOT_PUBLISH). */
  publishers: Array<{ fn: IConstruct; topics: readonly string[] }>;
  /** Functions granted timestream:DescribeEndpoints on * (telemetry=timestream). */
  timestreamFunctions: IConstruct[];
  queues: IConstruct[];
  /** The ingest paths' on-failure archive buckets and the functions whose mappings write them (ADR 0017). */
  archives?: Array<{ fn: IConstruct; bucket: IConstruct }>;
  secrets: IConstruct[];
  api: IConstruct;
  publicMethods: IConstruct[];
  proxyMethod: IConstruct;
  endpointLookup: IConstruct;
  /** Only with -c simulatorTasks>0. */
  simulator?: {
    taskDefinition: IConstruct;
    thingPrefix: string;
  };
  /** Firmware packages (ADR 0022): the bucket and the functions granted its `firmware/*` objects. */
  firmware?: { bucket: IConstruct; prefix: string; users: IConstruct[] };
  /** Only with -c telemetry=timestream. */
  timestream?: { rejectsBucket: IConstruct; database: IConstruct } & IConstruct;
}

function logicalId(c: IConstruct): string {
  return Stack.of(c).getLogicalId(c.node.defaultChild as CfnElement);
}

export function acknowledgeFindings(stack: Stack, t: NagTargets): void {
  const iot = (topic: string) =>
    `Resource::arn:<AWS::Partition>:iot:<AWS::Region>:<AWS::AccountId>:topic/${topic}`;

  for (const fn of t.functions) {
    ack(
      fn,
      'L1',
      'Targets nodejs22.x on purpose (supported until 2027-04-30); Node 24 drops nothing we rely on but is not yet our tested runtime.',
    );
    ack(
      fn,
      'IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]',
      'The basic execution role only allows writing the function’s own CloudWatch Logs.',
    );
  }
  for (const fn of t.timestreamFunctions) {
    ack(fn, 'IAM5[Resource::*]', 'timestream:DescribeEndpoints has no resource-level permissions.');
  }
  for (const { fn, topics } of t.publishers) {
    for (const topic of topics) {
      ack(
        fn,
        `IAM5[${iot(topic)}]`,
        'Publishing commands and responses to any device: one topic per device, scoped to the command/response topic shapes only.',
      );
    }
  }
  if (t.simulator) {
    const sim = t.simulator;
    ack(
      sim.taskDefinition,
      'ECS2',
      'Plain environment holds fleet size, rate and resource names; the claim key is read from Secrets Manager by the task role.',
    );
    ack(
      sim.taskDefinition,
      'IAM5[Resource::*]',
      'ECS execution role: ecr:GetAuthorizationToken has no resource-level permissions.',
    );
  }
  ack(t.endpointLookup, 'IAM5[Resource::*]', 'iot:DescribeEndpoint has no resource-level permissions.');
  ack(
    stack,
    'IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]',
    'Singleton Lambda of AwsCustomResource (IoT endpoint lookup): logs only.',
  );
  ack(stack, 'L1', 'Singleton Lambda of AwsCustomResource: runtime chosen by aws-cdk-lib.');

  for (const q of t.queues) {
    ack(
      q,
      'SQS3',
      'This queue is itself a dead-letter destination (ESM on-failure or IoT rule error action).',
    );
  }
  for (const { fn, bucket } of t.archives ?? []) {
    ack(bucket, 'S1', 'Written only by the Lambda service (event source mapping on-failure destination).');
    ack(
      fn,
      `IAM5[Resource::<${logicalId(bucket)}.Arn>/*]`,
      'The event source mapping writes one object per failed batch under keys it chooses, in this bucket only.',
    );
  }
  for (const s of t.secrets) {
    ack(
      s,
      'SMG4',
      'Rotated by putting a new value (or redeploying); the admin key and the firmware URL key need no rotation Lambda.',
    );
  }
  if (t.firmware) {
    ack(
      t.firmware.bucket,
      'S1',
      'Packages are written and read only through the API (access logs) and its 5-minute pre-signed GETs.',
    );
    for (const fn of t.firmware.users)
      ack(
        fn,
        `IAM5[Resource::<${logicalId(t.firmware.bucket)}.Arn>/${t.firmware.prefix}*]`,
        'Package objects are named by their ids; the grant is limited to the firmware prefix of this bucket.',
      );
  }
  ack(
    t.api,
    'APIG2',
    'The router validates every body and query parameter and answers 400 naming the field.',
  );
  ack(t.api, 'APIG3', 'WAF is optional and billed separately; throttling and key authorization are on.');
  ack(
    t.api,
    'IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs]',
    'API Gateway account role for execution and access logs.',
  );
  for (const m of t.publicMethods) {
    ack(
      m,
      'APIG4',
      "GET /health, GET /openapi.json and the dashboard's static files (GET /, GET /dashboard/{file}) are public by design (no data; the page asks for a key); GET /packages/{id}/{name} is authorized by its HMAC-signed, expiring path.",
    );
    ack(m, 'COG4', 'Public route, no authorizer by design.');
  }
  ack(
    t.proxyMethod,
    'COG4',
    'Authorized by the Lambda REQUEST authorizer (admin or application API keys), not Cognito.',
  );
  if (t.timestream) {
    ack(
      t.timestream.rejectsBucket,
      'S1',
      'Holds only Timestream magnetic-store rejection reports written by the service.',
    );
    ack(t.timestream.database, 'TS3', 'AWS-owned key encryption at rest; a customer key is optional.');
    Validations.of(t.timestream).acknowledge({
      id: 'CloudFormation-Validate::W3697',
      reason:
        'Timestream for LiveAnalytics is only for accounts that were customers before 2025-06-20; `npm run preflight` checks this, and the default (-c telemetry=dynamodb) does not use it.',
    });
  }
}
