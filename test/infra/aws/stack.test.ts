/**
 * Infra tests: the properties that matter (rule SQL and partition keys, event source settings, policy
 * statements and their conditions, encryption, retention) and cdk-nag AwsSolutions findings — not
 * resource counts. One synth shared by the suite (bundling runs the local esbuild once per function).
 */

import * as fs from 'node:fs';
import * as path from 'node:path';
import { App, Validations } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { AwsSolutionsChecks } from 'cdk-nag';
import { beforeAll, describe, expect, it } from 'vitest';
import { devicePolicyDocument } from '../../../infra/aws/constructs/iot.js';
import { readSettings } from '../../../infra/aws/settings.js';
import { DualpathStack } from '../../../infra/aws/stack.js';
import { pipeline as realPipeline } from '../../../infra/pipeline.js';

const defaults: Record<string, unknown> = {
  telemetry: 'timestream',
  kinesisMode: 'on-demand',
  shardCount: 1,
  memoryRetentionHours: 12,
  magneticRetentionDays: 365,
  simulatorTasks: 0,
  simulatorDevices: 10,
  simulatorRate: 1,
  autoRegister: false,
  logRetentionDays: 30,
  removalPolicy: 'retain',
};

// The real pipeline definition; only the entry points are swapped for a tiny handler so the suite does
// not bundle the whole application four times.
const FIXTURE = 'test/fixtures/infra/lambda.ts';
const pipeline = {
  ...realPipeline,
  functions: {
    sparkplugIngest: { ...realPipeline.functions.sparkplugIngest, entry: FIXTURE },
    lwm2mIngest: { ...realPipeline.functions.lwm2mIngest, entry: FIXTURE },
    api: { ...realPipeline.functions.api, entry: FIXTURE, authorizerEntry: FIXTURE },
  },
};

let template: Template;
let findings: Array<{ rule: string; path: string; message: string }>;

beforeAll(() => {
  const app = new App({ context: { ...defaults } });
  const stack = new DualpathStack(app, 'DualpathTest', {
    settings: readSettings((k) => app.node.tryGetContext(k)),
    pipeline,
    env: { account: '123456789012', region: 'eu-west-1' },
  });
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
  const assembly = app.synth();
  template = Template.fromStack(stack);
  findings = collectFindings(assembly.directory);
}, 180_000);

function collectFindings(dir: string): Array<{ rule: string; path: string; message: string }> {
  // cdk-nag v3 reports through CDK's policy validation report in the cloud assembly.
  const file = path.join(dir, 'policy-validation-report.json');
  if (!fs.existsSync(file)) return [];
  const report = JSON.parse(fs.readFileSync(file, 'utf8')) as {
    pluginReports?: Array<{
      violations?: Array<{
        ruleName: string;
        description: string;
        violatingResources?: Array<{ resourceLogicalId?: string; templatePath?: string }>;
      }>;
    }>;
  };
  return (report.pluginReports ?? []).flatMap((p) =>
    (p.violations ?? []).flatMap((v) =>
      (v.violatingResources ?? [{}]).map((r) => ({
        rule: v.ruleName,
        path: r.resourceLogicalId ?? '',
        message: v.description,
      })),
    ),
  );
}

describe('IoT rules', () => {
  it('uses SQL version 2016-03-23 and the SQL and partition keys of the pipeline definition', () => {
    for (const rule of pipeline.rules) {
      template.hasResourceProperties('AWS::IoT::TopicRule', {
        RuleName: rule.name,
        TopicRulePayload: Match.objectLike({
          Sql: rule.sql,
          AwsIotSqlVersion: '2016-03-23',
          Actions: [Match.objectLike({ Kinesis: Match.objectLike({ PartitionKey: rule.partitionKey }) })],
          ErrorAction: Match.objectLike({ Sqs: Match.anyValue() }),
        }),
      });
    }
  });

  it('keeps STATE out of the Sparkplug rule and binds LwM2M messages to their client id', () => {
    const sqls = pipeline.rules.map((r) => r.sql).join('\n');
    expect(sqls).toMatch(/FROM 'spBv1\.0\/#' WHERE topic\(2\) <> 'STATE'/);
    expect(sqls).toMatch(/FROM 'lwm2m\/rd\/\+' WHERE clientid\(\) = topic\(3\)/);
    expect(pipeline.rules.map((r) => r.partitionKey).sort()).toEqual([
      '${topic(2)}/${topic(4)}',
      '${topic(3)}',
    ]);
  });
});

describe('device policy', () => {
  const doc = devicePolicyDocument('eu-west-1', '123456789012') as {
    Statement: Array<Record<string, unknown>>;
  };
  it('lets a device connect only as itself, with the thing attached', () => {
    const connect = doc.Statement.find((s) => s.Action === 'iot:Connect')!;
    expect(connect.Resource).toBe(
      'arn:aws:iot:eu-west-1:123456789012:client/${iot:Connection.Thing.ThingName}',
    );
    expect(connect.Condition).toEqual({ Bool: { 'iot:Connection.Thing.IsAttached': 'true' } });
  });

  it('scopes every publish and subscribe to the thing name', () => {
    for (const s of doc.Statement) {
      const resources = ([] as string[]).concat(s.Resource as string | string[]);
      for (const r of resources) {
        if (r.includes('STATE')) continue; // reading the host's STATE is allowed to all devices
        expect(r).toContain('${iot:Connection.Thing.ThingName}');
      }
      expect(s.Condition).toEqual({ Bool: { 'iot:Connection.Thing.IsAttached': 'true' } });
    }
    const publish = doc.Statement.find((s) => s.Action === 'iot:Publish')!;
    expect((publish.Resource as string[]).some((r) => r.includes('CMD'))).toBe(false);
  });
});

describe('streams, functions and event source mappings', () => {
  it('encrypts the streams at rest', () => {
    template.allResourcesProperties('AWS::Kinesis::Stream', {
      StreamEncryption: { EncryptionType: 'KMS', KeyId: 'alias/aws/kinesis' },
    });
  });

  it('runs the functions on Node 22 / arm64', () => {
    // Ours are the functions built by nodeFunction(); CDK's own helper functions pick their runtime.
    const fns = template.findResources('AWS::Lambda::Function', {
      Properties: {
        Environment: { Variables: Match.objectLike({ POWERTOOLS_METRICS_NAMESPACE: 'Dualpath' }) },
      },
    });
    const ours = Object.values(fns);
    expect(ours.length).toBeGreaterThanOrEqual(4);
    for (const f of ours) {
      expect((f as { Properties: Record<string, unknown> }).Properties).toMatchObject({
        Runtime: 'nodejs22.x',
        Architectures: ['arm64'],
      });
    }
  });

  it('configures each event source mapping so a poison record cannot block its shard', () => {
    for (const key of ['sparkplugIngest', 'lwm2mIngest'] as const) {
      const es = pipeline.functions[key].eventSource;
      template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
        BatchSize: es.batchSize,
        MaximumBatchingWindowInSeconds: es.maxBatchingWindowSeconds,
        ParallelizationFactor: es.parallelizationFactor,
        BisectBatchOnFunctionError: true,
        MaximumRetryAttempts: es.maxRetryAttempts,
        MaximumRecordAgeInSeconds: es.maxRecordAgeSeconds,
        FunctionResponseTypes: ['ReportBatchItemFailures'],
        DestinationConfig: { OnFailure: { Destination: Match.anyValue() } },
      });
    }
  });

  it('keeps logs for the configured retention', () => {
    template.allResourcesProperties('AWS::Logs::LogGroup', { RetentionInDays: Match.anyValue() });
  });
});

describe('data at rest', () => {
  it('uses on-demand DynamoDB with PITR and encryption, TTL on registry commands, state and events', () => {
    template.allResourcesProperties('AWS::DynamoDB::Table', {
      BillingMode: 'PAY_PER_REQUEST',
      PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
      SSESpecification: { SSEEnabled: true },
    });
    template.resourcePropertiesCountIs(
      'AWS::DynamoDB::Table',
      { TimeToLiveSpecification: Match.objectLike({ AttributeName: 'expiresAt', Enabled: true }) },
      3,
    );
  });

  it('enables magnetic store writes for late historical data', () => {
    template.hasResourceProperties('AWS::Timestream::Table', {
      RetentionProperties: {
        MemoryStoreRetentionPeriodInHours: '12',
        MagneticStoreRetentionPeriodInDays: '365',
      },
      MagneticStoreWriteProperties: Match.objectLike({ EnableMagneticStoreWrites: true }),
    });
  });
});

describe('API and simulator', () => {
  it('requires authorization on every method but health and openapi', () => {
    const methods = template.findResources('AWS::ApiGateway::Method');
    for (const m of Object.values(methods) as Array<{
      Properties: { HttpMethod: string; AuthorizationType: string };
    }>) {
      if (m.Properties.HttpMethod === 'OPTIONS') continue;
      expect(['CUSTOM', 'NONE']).toContain(m.Properties.AuthorizationType);
    }
    const open = Object.values(methods).filter(
      (m) => (m as { Properties: { AuthorizationType: string } }).Properties.AuthorizationType === 'NONE',
    );
    expect(open).toHaveLength(2);
  });

  it('runs the simulator service at desired count 0 by default', () => {
    template.hasResourceProperties('AWS::ECS::Service', { DesiredCount: 0, LaunchType: 'FARGATE' });
  });
});

describe('cdk-nag AwsSolutions', () => {
  it('has no unacknowledged errors', () => {
    const errors = findings.filter((f) => f.rule.startsWith('AwsSolutions-'));
    expect(errors, JSON.stringify(errors.slice(0, 20), null, 2)).toEqual([]);
  });
});
