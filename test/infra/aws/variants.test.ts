/**
 * The documented variants (infra/aws/variants.ts) and physical names: one app holding two default
 * stacks, the Timestream variant and the simulator variant — as four stacks in one account would be.
 * Checks what each variant must and must not contain, and that no account-level physical name is
 * fixed (so stacks never collide, and a redeploy after `cdk destroy` never meets a retained name).
 */
import { Match } from 'aws-cdk-lib/assertions';
import { beforeAll, describe, expect, it } from 'vitest';
import { TIMESTREAM_ACCESS } from '../../../infra/aws/access.js';
import { SETTING_KEYS } from '../../../infra/aws/settings.js';
import { DOCUMENTED_VARIANTS } from '../../../infra/aws/variants.js';
import { functionEnvironments, functionId, type Synthesized, statementsOf, synth } from './synth.js';

const variant = (name: string) => {
  const v = DOCUMENTED_VARIANTS.find((x) => x.name === name);
  if (!v) throw new Error(`no documented variant ${name}`);
  return v.context;
};

let first: Synthesized;
let second: Synthesized;
let timestream: Synthesized;
let simulator: Synthesized;
let upgrade: Synthesized;

beforeAll(() => {
  [first, second, timestream, simulator, upgrade] = synth({
    DualpathOne: variant('default'),
    DualpathTwo: variant('default'),
    DualpathTs: variant('timestream'),
    DualpathSim: variant('simulator'),
    // An existing customer upgrading a stack deployed when the names were fixed keeps its database.
    DualpathUpgrade: {
      ...variant('timestream'),
      timestreamDatabaseName: 'DualpathUpgrade-telemetry',
      timestreamTableName: 'readings',
    },
  }) as [Synthesized, Synthesized, Synthesized, Synthesized, Synthesized];
}, 240_000);

/** Account-level physical names (IAM inline policy names are per role; API names need not be unique). */
const NAME_PROPERTIES: Record<string, string[]> = {
  'AWS::IoT::TopicRule': ['RuleName'],
  'AWS::IoT::ThingType': ['ThingTypeName'],
  'AWS::IoT::Policy': ['PolicyName'],
  'AWS::CloudWatch::Dashboard': ['DashboardName'],
  'AWS::CloudWatch::Alarm': ['AlarmName'],
  'AWS::Timestream::Database': ['DatabaseName'],
  'AWS::Timestream::Table': ['TableName'],
  'AWS::DynamoDB::Table': ['TableName'],
  'AWS::Kinesis::Stream': ['Name'],
  'AWS::SQS::Queue': ['QueueName'],
  'AWS::SNS::Topic': ['TopicName'],
  'AWS::Lambda::Function': ['FunctionName'],
  'AWS::IAM::Role': ['RoleName'],
  'AWS::Logs::LogGroup': ['LogGroupName'],
  'AWS::S3::Bucket': ['BucketName'],
  'AWS::SecretsManager::Secret': ['Name'],
  'AWS::ECS::Cluster': ['ClusterName'],
  'AWS::CloudFormation::CustomResource': ['thingPrefix'],
};

function physicalNames(s: Synthesized): Array<{ where: string; value: string }> {
  const out: Array<{ where: string; value: string }> = [];
  for (const [id, r] of Object.entries(s.json.Resources)) {
    for (const prop of NAME_PROPERTIES[r.Type] ?? []) {
      const v = r.Properties?.[prop];
      if (v !== undefined) out.push({ where: `${s.stackName}/${id}.${prop}`, value: JSON.stringify(v) });
    }
  }
  return out;
}

describe('documented variants', () => {
  it('lists default (no extra context), timestream and the opt-in simulator, with known keys only', () => {
    expect(DOCUMENTED_VARIANTS.map((v) => v.name)).toEqual(
      expect.arrayContaining(['default', 'timestream', 'simulator']),
    );
    expect(variant('default')).toEqual({});
    expect(variant('timestream')).toEqual({ telemetry: 'timestream' });
    expect(variant('simulator')).toEqual({ simulatorTasks: '1' });
    for (const v of DOCUMENTED_VARIANTS) {
      for (const k of Object.keys(v.context)) expect(SETTING_KEYS as readonly string[]).toContain(k);
    }
  });

  it('passes cdk-nag AwsSolutions in every variant', () => {
    const errors = first.findings.filter((f) => f.rule.startsWith('AwsSolutions-'));
    expect(errors, JSON.stringify(errors.slice(0, 20), null, 2)).toEqual([]);
  });
});

describe('telemetry=timestream (existing Timestream for LiveAnalytics customers)', () => {
  const types = (s: Synthesized) => new Set(Object.values(s.json.Resources).map((r) => r.Type));

  it('creates the Timestream database and table only in this variant', () => {
    expect(types(timestream).has('AWS::Timestream::Database')).toBe(true);
    expect(types(timestream).has('AWS::Timestream::Table')).toBe(true);
    for (const s of [first, second, simulator]) expect(types(s).has('AWS::Timestream::Database')).toBe(false);
    timestream.template.hasResourceProperties('AWS::Timestream::Table', {
      RetentionProperties: {
        MemoryStoreRetentionPeriodInHours: '12',
        MagneticStoreRetentionPeriodInDays: '365',
      },
      MagneticStoreWriteProperties: Match.objectLike({ EnableMagneticStoreWrites: true }),
    });
  });

  it('has no DynamoDB telemetry table and points the functions at the generated Timestream names', () => {
    expect(Object.keys(timestream.json.Resources).some((k) => k.startsWith('TelemetryStoreTelemetry'))).toBe(
      false,
    );
    const db = Object.entries(timestream.json.Resources).find(
      ([, r]) => r.Type === 'AWS::Timestream::Database',
    )!;
    const table = Object.entries(timestream.json.Resources).find(
      ([, r]) => r.Type === 'AWS::Timestream::Table',
    )!;
    for (const prefix of ['SparkplugIngestFunction', 'Lwm2mIngestFunction', 'ApiFunction']) {
      const env = functionEnvironments(timestream)[functionId(timestream, prefix)]!;
      expect(env.TELEMETRY_BACKEND).toBe('timestream');
      expect(env.TIMESTREAM_DATABASE).toEqual({ Ref: db[0] });
      expect(env.TIMESTREAM_TABLE).toEqual({ 'Fn::GetAtt': [table[0], 'Name'] });
      expect(env.TELEMETRY_TABLE).toBeUndefined();
    }
  });

  it('grants exactly TIMESTREAM_ACCESS on the table and DescribeEndpoints on *, and no DynamoDB telemetry', () => {
    const table = Object.keys(timestream.json.Resources).find(
      (k) => timestream.json.Resources[k]?.Type === 'AWS::Timestream::Table',
    )!;
    for (const [key, prefix] of [
      ['sparkplugIngest', 'SparkplugIngestFunction'],
      ['lwm2mIngest', 'Lwm2mIngestFunction'],
      ['api', 'ApiFunction'],
      ['authorizer', 'AuthorizerFunction'],
    ] as const) {
      const sts = statementsOf(timestream, prefix);
      const onTable = sts.filter(
        (st) => JSON.stringify(st.Resource) === JSON.stringify({ 'Fn::GetAtt': [table, 'Arn'] }),
      );
      const expected = (TIMESTREAM_ACCESS[key] ?? []).map((a) => `timestream:${a}`);
      expect(
        onTable.flatMap((st) => ([] as string[]).concat(st.Action)),
        key,
      ).toEqual(expected);
      const endpoints = sts.filter((st) =>
        ([] as string[]).concat(st.Action).includes('timestream:DescribeEndpoints'),
      );
      expect(
        endpoints.map((st) => st.Resource),
        key,
      ).toEqual(expected.length > 0 ? ['*'] : []);
      const all = sts.flatMap((st) => ([] as string[]).concat(st.Action));
      expect(all.filter((a) => a.startsWith('timestream:')).sort(), key).toEqual(
        expected.length > 0 ? [...expected, 'timestream:DescribeEndpoints'].sort() : [],
      );
    }
  });
});

describe('upgrading a Timestream stack deployed with fixed names', () => {
  it('keeps the existing database and table when their names are given, generated otherwise', () => {
    upgrade.template.hasResourceProperties('AWS::Timestream::Database', {
      DatabaseName: 'DualpathUpgrade-telemetry',
    });
    upgrade.template.hasResourceProperties('AWS::Timestream::Table', {
      DatabaseName: { Ref: Match.stringLikeRegexp('^TelemetryDatabase') },
      TableName: 'readings',
    });
    timestream.template.hasResourceProperties('AWS::Timestream::Database', {
      DatabaseName: Match.absent(),
    });
    timestream.template.hasResourceProperties('AWS::Timestream::Table', { TableName: Match.absent() });
  });
});

describe('the simulator is opt-in', () => {
  it('has a container image asset and the ECS service only with simulatorTasks>0', () => {
    expect(Object.keys(simulator.assets.dockerImages ?? {}).length).toBe(1);
    simulator.template.hasResourceProperties('AWS::ECS::Service', { DesiredCount: 1, LaunchType: 'FARGATE' });
    for (const s of [first, second, timestream]) {
      expect(Object.keys(s.assets.dockerImages ?? {}), s.stackName).toEqual([]);
      expect(Object.values(s.json.Resources).some((r) => r.Type.startsWith('AWS::ECS::'))).toBe(false);
    }
  });

  it('onboards its devices through the template (ADR 0018): ARM64 image, own identities, ordered start', () => {
    // The image is built for the task's architecture whatever the build host is.
    const images = Object.values(simulator.assets.dockerImages ?? {}) as Array<{
      source: { platform?: string };
    }>;
    expect(images.map((i) => i.source.platform)).toEqual(['linux/arm64']);
    simulator.template.hasResourceProperties('AWS::ECS::TaskDefinition', {
      RuntimePlatform: { CpuArchitecture: 'ARM64' },
    });
    const [taskId, task] = Object.entries(simulator.json.Resources).find(
      ([, r]) => r.Type === 'AWS::ECS::TaskDefinition',
    )!;
    const containers = (task.Properties?.ContainerDefinitions ?? []) as Array<{
      Environment?: Array<{ Name: string; Value: unknown }>;
    }>;
    const env = Object.fromEntries((containers[0]?.Environment ?? []).map((e) => [e.Name, e.Value]));
    expect(env).toMatchObject({
      PROVISIONING_TEMPLATE: 'DualpathSim-devices',
      SIM_THING_PREFIX: 'DualpathSim-sim-',
      CLAIM_CERTIFICATE_ID: { Ref: expect.stringMatching(/^OnboardingClaimCertificate/) },
      SIM_PROVISION_RATE: '10',
    });
    expect(env).not.toHaveProperty('DEVICE_CREDENTIALS');
    expect(taskId).toBeDefined();
    // The service starts after the template, the claim certificate's policy and its key exist.
    const service = Object.values(simulator.json.Resources).find((r) => r.Type === 'AWS::ECS::Service') as {
      DependsOn?: string[];
    };
    for (const prefix of ['OnboardingTemplate', 'OnboardingClaimPolicyAttachment', 'OnboardingClaimCsr'])
      expect(
        service.DependsOn?.some((d) => d.startsWith(prefix)),
        prefix,
      ).toBe(true);
    // No shared device certificate: no secret of device credentials, no provisioner custom resource.
    const custom = Object.entries(simulator.json.Resources).filter(
      ([, r]) => r.Type === 'AWS::CloudFormation::CustomResource',
    );
    expect(custom.map(([id]) => id)).toEqual([expect.stringMatching(/^OnboardingClaimCsr/)]);
  });

  it('every stack has the template with its hook, a hook permission bound to the template, and a claim', () => {
    for (const st of [first, simulator]) {
      const r = Object.values(st.json.Resources);
      const template = r.find((x) => x.Type === 'AWS::IoT::ProvisioningTemplate')!;
      expect(template.Properties).toMatchObject({
        TemplateName: `${st.stackName}-devices`,
        Enabled: true,
        PreProvisioningHook: {
          TargetArn: { 'Fn::GetAtt': [expect.stringMatching(/^ProvisioningHookFunction/), 'Arn'] },
          PayloadVersion: '2020-04-01',
        },
      });
      const permission = r.find(
        (x) => x.Type === 'AWS::Lambda::Permission' && x.Properties?.Principal === 'iot.amazonaws.com',
      )!;
      expect(JSON.stringify(permission.Properties?.SourceArn)).toContain(
        `provisioningtemplate/${st.stackName}-devices`,
      );
      expect(permission.Properties?.SourceAccount).toEqual({ Ref: 'AWS::AccountId' });
      const cert = r.find((x) => x.Type === 'AWS::IoT::Certificate')!;
      expect(cert.Properties).toMatchObject({
        Status: 'ACTIVE',
        CertificateSigningRequest: { 'Fn::GetAtt': [expect.stringMatching(/^OnboardingClaimCsr/), 'csr'] },
      });
      expect(r.filter((x) => x.Type === 'AWS::IoT::PolicyPrincipalAttachment')).toHaveLength(1);
    }
  });

  it('grants cert/* to no one but the role IoT assumes to apply the template', () => {
    for (const s of [first, simulator]) {
      const holders = Object.entries(s.json.Resources)
        .filter(([, r]) => r.Type === 'AWS::IAM::Policy' && JSON.stringify(r.Properties).includes(':cert/*'))
        .map(([id]) => id);
      expect(holders, s.stackName).toEqual([expect.stringMatching(/^OnboardingTemplateRoleDefaultPolicy/)]);
    }
  });
});

describe('physical names', () => {
  it('never collide between stacks in one account', () => {
    const all = [first, second, timestream, simulator].flatMap(physicalNames);
    const seen = new Map<string, string>();
    const collisions: string[] = [];
    for (const { where, value } of all) {
      const other = seen.get(value);
      if (other && other.split('/')[0] !== where.split('/')[0])
        collisions.push(`${where} = ${other}: ${value}`);
      seen.set(value, where);
    }
    expect(collisions).toEqual([]);
  });

  it('are never fixed on thing types, device policies or Timestream databases', () => {
    for (const s of [first, timestream]) {
      for (const { where } of physicalNames(s)) {
        expect(where).not.toMatch(/\.(ThingTypeName|PolicyName|DatabaseName)$/);
      }
    }
  });

  it('name IoT rules after their stack (devices address the LwM2M rule by Basic Ingest, ADR 0024)', () => {
    for (const s of [first, second, timestream]) {
      const rules = physicalNames(s).filter((n) => n.where.endsWith('.RuleName'));
      expect(rules.length).toBeGreaterThan(0);
      for (const { where, value } of rules)
        expect(JSON.parse(value), where).toMatch(new RegExp(`^${s.stackName}_`));
    }
  });

  it('are never set on a retained resource (a redeploy after cdk destroy creates new ones)', () => {
    for (const s of [first, timestream, simulator]) {
      const retained = Object.entries(s.json.Resources).filter(([, r]) => r.DeletionPolicy === 'Retain');
      expect(retained.length).toBeGreaterThan(0);
      for (const [id, r] of retained) {
        for (const prop of NAME_PROPERTIES[r.Type] ?? []) {
          expect(r.Properties?.[prop], `${s.stackName}/${id}.${prop}`).toBeUndefined();
        }
      }
    }
  });

  it('derives dashboard names from the stack name and region', () => {
    const names = physicalNames(first).filter((n) => n.where.endsWith('.DashboardName'));
    expect(names.length).toBeGreaterThan(0);
    for (const n of names) {
      expect(n.value).toContain('DualpathOne-');
      expect(n.value).toContain('eu-west-1');
    }
  });
});
