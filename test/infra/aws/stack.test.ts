/**
 * Infra tests of the default deployment (a plain `npx cdk deploy`): the properties that matter (rule
 * SQL and partition keys, event source settings, policy statements and their conditions, exact data
 * access per function, encryption, retention) and cdk-nag AwsSolutions findings — not resource counts.
 * One synth shared by the suite (bundling runs the local esbuild once per function).
 */

import * as fs from 'node:fs';
import * as path from 'node:path';
import { Match, type Template } from 'aws-cdk-lib/assertions';
import { beforeAll, describe, expect, it } from 'vitest';
import { API_SECURITY_HEADERS, AUTH_CHALLENGE } from '../../../functions/api/http.js';
import {
  DYNAMODB_ACCESS,
  IOT_PUBLISH,
  LIVE_PUBLISH_ACCESS,
  RULES_INGEST_ACCESS,
  type TableTarget,
  withAccess,
} from '../../../infra/aws/access.js';
import { devicePolicyDocument, iotRuleName } from '../../../infra/aws/constructs/iot.js';
import { SETTING_KEYS } from '../../../infra/aws/settings.js';
import { REPO_ROOT } from '../../../infra/aws/stack.js';
import {
  CDK_DEFAULTS,
  functionEnvironments,
  functionId,
  pipeline,
  type Synthesized,
  statementsOf as statementsOfStack,
  synth,
} from './synth.js';

let s: Synthesized;
let template: Template;

beforeAll(() => {
  [s] = synth({ DualpathTest: {} }) as [Synthesized];
  template = s.template;
}, 180_000);

describe('IoT rules', () => {
  it('uses SQL version 2016-03-23 and the SQL and partition keys of the pipeline definition', () => {
    for (const rule of pipeline.rules) {
      template.hasResourceProperties('AWS::IoT::TopicRule', {
        TopicRulePayload: Match.objectLike({
          Sql: rule.sql,
          AwsIotSqlVersion: '2016-03-23',
          Actions: [Match.objectLike({ Kinesis: Match.objectLike({ PartitionKey: rule.partitionKey }) })],
          ErrorAction: Match.objectLike({ Sqs: Match.anyValue() }),
        }),
      });
    }
  });

  it('names rules {stack}_{rule} (the Basic Ingest target) and refers to them by Ref in alarms and dashboards', () => {
    const rules = template.findResources('AWS::IoT::TopicRule');
    expect(
      Object.values(rules)
        .map((r) => r.Properties.RuleName)
        .sort(),
    ).toEqual(pipeline.rules.map((r) => iotRuleName('DualpathTest', r.name)).sort());
    expect(iotRuleName('Dualpath-eu.1', 'dualpath_lwm2m')).toBe('Dualpath_eu_1_dualpath_lwm2m');
    expect(iotRuleName('x'.repeat(200), 'dualpath_lwm2m')).toHaveLength(128);
    // Devices may publish their LwM2M uplinks by Basic Ingest into the LwM2M rule, and only that one.
    const policy = JSON.stringify(Object.values(template.findResources('AWS::IoT::Policy')));
    expect(policy).toContain(
      '$aws/rules/DualpathTest_dualpath_lwm2m/lwm2m/rd/${iot:Connection.Thing.ThingName}',
    );
    expect(policy).not.toContain('$aws/rules/DualpathTest_dualpath_sparkplug');
    const ruleIds = new Set(Object.keys(rules));
    const alarms = Object.values(template.findResources('AWS::CloudWatch::Alarm')).filter(
      (a) => a.Properties.Namespace === 'AWS/IoT',
    );
    expect(alarms.length).toBeGreaterThan(0);
    for (const a of alarms) {
      const dim = (a.Properties.Dimensions as Array<{ Name: string; Value: unknown }>).find(
        (d) => d.Name === 'RuleName',
      );
      expect(dim?.Value).toEqual({ Ref: expect.any(String) });
      expect(ruleIds.has((dim as { Value: { Ref: string } }).Value.Ref)).toBe(true);
    }
    for (const d of Object.values(template.findResources('AWS::CloudWatch::Dashboard'))) {
      expect(JSON.stringify(d.Properties.DashboardBody)).not.toContain('dualpath_');
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
  it('encrypts the streams at rest and deletes them with the stack (a kept stream bills hourly)', () => {
    template.allResourcesProperties('AWS::Kinesis::Stream', {
      StreamEncryption: { EncryptionType: 'KMS', KeyId: 'alias/aws/kinesis' },
    });
    template.allResources('AWS::Kinesis::Stream', { DeletionPolicy: 'Delete' });
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
  it('uses on-demand DynamoDB with PITR, encryption and TTL (expiresAt) on every table', () => {
    template.allResourcesProperties('AWS::DynamoDB::Table', {
      BillingMode: 'PAY_PER_REQUEST',
      PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
      SSESpecification: { SSEEnabled: true },
      TimeToLiveSpecification: { AttributeName: 'expiresAt', Enabled: true },
    });
  });

  it('keeps telemetry in DynamoDB by default: no Timestream resource at all', () => {
    const types = new Set(Object.values(s.json.Resources).map((r) => r.Type));
    expect([...types].filter((t) => t.startsWith('AWS::Timestream::'))).toEqual([]);
    // The telemetry table: pk/sk, no GSI, retained like the other tables.
    const telemetry = Object.entries(s.json.Resources).find(([id]) =>
      id.startsWith('TelemetryStoreTelemetry'),
    );
    expect(telemetry?.[1].Properties).toMatchObject({
      KeySchema: [
        { AttributeName: 'pk', KeyType: 'HASH' },
        { AttributeName: 'sk', KeyType: 'RANGE' },
      ],
    });
    expect(telemetry?.[1].Properties?.GlobalSecondaryIndexes).toBeUndefined();
    expect(telemetry?.[1].DeletionPolicy).toBe('Retain');
  });
});

describe('function environments (names of functions/core/config.ts)', () => {
  const tableRef = (prefix: string) => {
    const id = Object.keys(s.json.Resources).find(
      (k) => k.startsWith(prefix) && s.json.Resources[k]?.Type === 'AWS::DynamoDB::Table',
    );
    return { Ref: id };
  };

  it('gives the ingest functions and the API the DynamoDB telemetry store', () => {
    for (const prefix of ['SparkplugIngestFunction', 'Lwm2mIngestFunction', 'ApiFunction']) {
      const env = functionEnvironments(s)[functionId(s, prefix)]!;
      expect(env.TELEMETRY_BACKEND, prefix).toBe('dynamodb');
      expect(env.TELEMETRY_TABLE, prefix).toEqual(tableRef('TelemetryStoreTelemetry'));
      expect(env.REGISTRY_TABLE, prefix).toEqual(tableRef('TablesRegistry'));
      expect(env.STATE_TABLE, prefix).toEqual(tableRef('TablesState'));
      expect(env.EVENTS_TABLE, prefix).toEqual(tableRef('TablesEvents'));
      expect(env.IOT_DATA_ENDPOINT, prefix).toBeDefined();
      expect(env.TIMESTREAM_DATABASE, prefix).toBeUndefined();
    }
  });

  it('gives the authorizer the registry and the admin key, not the telemetry store', () => {
    const env = functionEnvironments(s)[functionId(s, 'AuthorizerFunction')]!;
    expect(env.REGISTRY_TABLE).toEqual(tableRef('TablesRegistry'));
    expect(env.ADMIN_KEY_SECRET_ARN).toBeDefined();
    expect(env.TELEMETRY_TABLE).toBeUndefined();
  });

  it('does not give the API the admin key: it trusts the authorizer (ADR 0025 amendment 2)', () => {
    expect(functionEnvironments(s)[functionId(s, 'ApiFunction')]!.ADMIN_KEY_SECRET_ARN).toBeUndefined();
  });
});

const statementsOf = (prefix: string) => statementsOfStack(s, prefix);
const actionsOf = (st: { Action: string | string[] }) => ([] as string[]).concat(st.Action);

describe('least privilege: exactly the DynamoDB actions of infra/aws/access.ts', () => {
  const fns = {
    sparkplugIngest: 'SparkplugIngestFunction',
    lwm2mIngest: 'Lwm2mIngestFunction',
    api: 'ApiFunction',
    authorizer: 'AuthorizerFunction',
    liveConnections: 'LiveConnectionsFunction',
  } as const;
  const tableIds: Record<TableTarget, string> = {
    registry: 'TablesRegistry',
    'registry/index/gsi1': 'TablesRegistry',
    state: 'TablesState',
    events: 'TablesEvents',
    telemetry: 'TelemetryStoreTelemetry',
    live: 'LiveConnectionsTable',
  };

  for (const [key, prefix] of Object.entries(fns) as Array<[keyof typeof fns, string]>) {
    it(`${key}: one statement per table with the table's actions, nothing else on DynamoDB`, () => {
      const dynamo = statementsOf(prefix).filter((st) =>
        actionsOf(st).some((a) => a.startsWith('dynamodb:')),
      );
      // The ingest functions evaluate rules (ADR 0016) and publish live updates (ADR 0023): their rows
      // plus RULES_INGEST_ACCESS and LIVE_PUBLISH_ACCESS.
      const row =
        key === 'sparkplugIngest' || key === 'lwm2mIngest'
          ? withAccess(withAccess(DYNAMODB_ACCESS[key], RULES_INGEST_ACCESS), LIVE_PUBLISH_ACCESS)
          : DYNAMODB_ACCESS[key];
      const expected = Object.entries(row).map(([t, a]) => [t, [...new Set(a)]]) as Array<
        [TableTarget, string[]]
      >;
      expect(dynamo).toHaveLength(expected.length);
      for (const [target, actions] of expected) {
        const st = dynamo.find(
          (x) =>
            JSON.stringify(x.Resource).includes(tableIds[target]) &&
            JSON.stringify(x.Resource).includes('/index/') === target.includes('/index/'),
        );
        expect(st, `${key} → ${target}`).toBeDefined();
        expect(actionsOf(st!).sort()).toEqual(actions.map((a) => `dynamodb:${a}`).sort());
      }
      for (const st of dynamo) {
        for (const a of actionsOf(st)) {
          expect(a).not.toContain('*');
          // Never granted by the table: table-level and stream APIs the functions do not call.
          expect([
            'dynamodb:DescribeTable',
            'dynamodb:ConditionCheckItem',
            'dynamodb:GetRecords',
          ]).not.toContain(a);
        }
      }
    });
  }

  it('reads the admin key with GetSecretValue only (API and authorizer), and ingest cannot read it', () => {
    for (const prefix of ['ApiFunction', 'AuthorizerFunction']) {
      const secret = statementsOf(prefix).filter((st) =>
        actionsOf(st).some((a) => a.startsWith('secretsmanager:')),
      );
      // The API also reads the firmware URL key (its own statement, its own secret).
      expect([...new Set(secret.flatMap(actionsOf))], prefix).toEqual(['secretsmanager:GetSecretValue']);
    }
    for (const prefix of ['SparkplugIngestFunction', 'Lwm2mIngestFunction']) {
      const all = statementsOf(prefix).flatMap(actionsOf);
      expect(
        all.some((a) => a.startsWith('secretsmanager:')),
        prefix,
      ).toBe(false);
    }
  });

  it('publishes to devices only on the topics each function uses', () => {
    const topics = (prefix: string) =>
      JSON.stringify(statementsOf(prefix).filter((st) => actionsOf(st).includes('iot:Publish')));
    expect(topics('SparkplugIngestFunction')).toContain(IOT_PUBLISH.sparkplugIngest[0]);
    expect(topics('SparkplugIngestFunction')).not.toContain('lwm2m/rd');
    expect(topics('SparkplugIngestFunction')).not.toContain('DCMD');
    expect(topics('Lwm2mIngestFunction')).toContain('lwm2m/rd/*');
    expect(topics('Lwm2mIngestFunction')).not.toContain('spBv1.0');
    for (const t of IOT_PUBLISH.api) expect(topics('ApiFunction')).toContain(t);
    expect(topics('AuthorizerFunction')).toBe('[]');
  });

  it('grants no Timestream action when telemetry is in DynamoDB', () => {
    for (const prefix of ['SparkplugIngestFunction', 'Lwm2mIngestFunction', 'ApiFunction']) {
      expect(
        statementsOf(prefix)
          .flatMap(actionsOf)
          .filter((a) => a.startsWith('timestream:')),
      ).toEqual([]);
    }
  });
});

describe('API, outputs and Docker', () => {
  it('firmware packages: the API and the worker reach only the firmware/ prefix of the packages bucket', () => {
    const firmware = (prefix: string) =>
      statementsOf(prefix).filter((st) => actionsOf(st).some((a) => a.startsWith('s3:')));
    const api = firmware('ApiFunction');
    expect(api.flatMap(actionsOf).sort()).toEqual(['s3:GetObject', 's3:ListBucket', 's3:PutObject']);
    expect(JSON.stringify(api)).toContain('/firmware/*');
    expect(JSON.stringify(api)).toContain('"s3:prefix":["firmware/*"]');
    expect(firmware('OperationsWorkerFunction').flatMap(actionsOf)).toEqual(['s3:GetObject']);
    for (const prefix of ['SparkplugIngestFunction', 'Lwm2mIngestFunction', 'AuthorizerFunction'])
      expect(JSON.stringify(firmware(prefix)), prefix).not.toContain('Firmware');
    const [bucket] = Object.values(template.findResources('AWS::S3::Bucket')).filter((b) =>
      JSON.stringify(b).includes('AbortIncompleteUploads'),
    ) as Array<{ Properties: Record<string, unknown> }>;
    expect(bucket!.Properties.PublicAccessBlockConfiguration).toMatchObject({
      BlockPublicAcls: true,
      RestrictPublicBuckets: true,
    });
    expect(JSON.stringify(bucket!.Properties.BucketEncryption)).toContain('AES256');
  });

  it('requires authorization on every method but health, openapi, the signed package path and the dashboard files', () => {
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
    expect(open).toHaveLength(5);
    // Two of them are the dashboard's (GET / and GET /dashboard/{file}), served by its own function,
    // whose only configuration is the live WebSocket URL (ADR 0023 amendment).
    const dashboardFn = Object.entries(template.findResources('AWS::Lambda::Function')).find(([, f]) =>
      JSON.stringify(f).includes('DASHBOARD_LIVE_URL'),
    );
    expect(dashboardFn).toBeDefined();
    const viaDashboard = open.filter((m) => JSON.stringify(m).includes(dashboardFn![0]));
    expect(viaDashboard).toHaveLength(2);
    expect(template.toJSON().Outputs.DashboardUrl).toBeDefined();
  });

  it("gives the gateway's own 401/403/429/4xx/5xx the router's security headers and error shape", () => {
    const responses = Object.values(template.findResources('AWS::ApiGateway::GatewayResponse')) as Array<{
      Properties: {
        ResponseType: string;
        ResponseParameters: Record<string, string>;
        ResponseTemplates: Record<string, string>;
      };
    }>;
    const byType = new Map(responses.map((r) => [r.Properties.ResponseType, r.Properties]));
    for (const type of ['UNAUTHORIZED', 'ACCESS_DENIED', 'THROTTLED', 'DEFAULT_4XX', 'DEFAULT_5XX']) {
      const r = byType.get(type);
      expect(r, type).toBeDefined();
      for (const [name, value] of Object.entries(API_SECURITY_HEADERS)) {
        // A static value cannot contain a quote: the quoted-keyword CSP is the one header left out.
        const expected = value.includes("'") ? undefined : `'${value}'`;
        expect(r!.ResponseParameters[`gatewayresponse.header.${name}`], `${type} ${name}`).toBe(expected);
      }
      expect(r!.ResponseParameters['gatewayresponse.header.x-frame-options']).toBe("'DENY'");
      for (const v of Object.values(r!.ResponseParameters)) expect(v).toMatch(/^'[^']*'$/);
      expect(
        JSON.parse(r!.ResponseTemplates['application/json']!.replace('$context.error.messageString', '"m"')),
      ).toEqual({
        error: { code: expect.any(String), message: 'm' },
      });
    }
    expect(byType.get('UNAUTHORIZED')!.ResponseParameters['gatewayresponse.header.www-authenticate']).toBe(
      `'${AUTH_CHALLENGE}'`,
    );
  });

  it('has no container image asset and no ECS: a plain deploy needs no Docker', () => {
    expect(Object.keys(s.assets.dockerImages ?? {})).toEqual([]);
    expect(JSON.stringify(s.json)).not.toMatch(
      /ContainerImage|ecr\.[^"]*amazonaws[^"]*cdk-hnb659fds-container-assets/,
    );
    const types = new Set(Object.values(s.json.Resources).map((r) => r.Type));
    for (const t of ['AWS::ECS::Service', 'AWS::ECS::TaskDefinition']) {
      expect(types.has(t), t).toBe(false);
    }
    // The only custom resource of a plain deploy is the claim key (ADR 0018); no shared device
    // certificate and no provisioner of simulator things.
    const custom = Object.entries(s.json.Resources).filter(
      ([, r]) => r.Type === 'AWS::CloudFormation::CustomResource',
    );
    expect(custom.map(([id]) => id)).toEqual([expect.stringMatching(/^OnboardingClaimCsr/)]);
  });

  it('outputs the exact command that prints the admin key, the API URL and the device policy', () => {
    const outputs = s.json.Outputs ?? {};
    expect(JSON.stringify(outputs.AdminKeyCommand?.Value)).toContain(
      'aws secretsmanager get-secret-value --secret-id ',
    );
    expect(JSON.stringify(outputs.AdminKeyCommand?.Value)).toContain('--query SecretString --output text');
    expect(outputs.ApiUrl).toBeDefined();
    expect(outputs.IotEndpoint).toBeDefined();
    expect(outputs.DevicePolicyName?.Value).toEqual({ Ref: expect.stringMatching(/^IotDevicePolicy/) });
    expect(outputs.TelemetryStoreName).toBeDefined();
  });
});

describe('cdk-nag AwsSolutions', () => {
  it('has no unacknowledged errors', () => {
    const errors = s.findings.filter((f) => f.rule.startsWith('AwsSolutions-'));
    expect(errors, JSON.stringify(errors.slice(0, 20), null, 2)).toEqual([]);
  });
});

describe('docs/deploy.md matches the stack', () => {
  const doc = fs.readFileSync(path.join(REPO_ROOT, 'docs', 'deploy.md'), 'utf8');

  it('reads only outputs the stack has', () => {
    const used = [...doc.matchAll(/\bout ([A-Za-z0-9]+)\b/g)].map((m) => m[1]!);
    expect(used.length).toBeGreaterThan(5);
    for (const key of used) expect(Object.keys(s.json.Outputs ?? {}), key).toContain(key);
  });

  it('documents every setting with its cdk.json default', () => {
    // The table of the "Settings" section (other tables, e.g. the alarms', also start with a name).
    const section = doc.slice(
      doc.indexOf('## 4. Settings'),
      doc.indexOf('\n## ', doc.indexOf('## 4. Settings') + 1),
    );
    const rows = section.split('\n').filter((l) => /^\| `[a-zA-Z]+`/.test(l));
    const documented = new Map<string, string>();
    for (const row of rows) {
      const [keys, defaults] = row
        .split('|')
        .slice(1, 3)
        .map((c) => c.trim());
      const ks = [...keys!.matchAll(/`([a-zA-Z]+)`/g)].map((m) => m[1]!);
      const ds = [...defaults!.matchAll(/`([^`]*)`/g)].map((m) => m[1]!);
      for (const [i, k] of ks.entries()) documented.set(k, ds[i] ?? '');
    }
    expect([...documented.keys()].sort()).toEqual([...SETTING_KEYS].sort());
    for (const k of SETTING_KEYS) {
      if (CDK_DEFAULTS[k] === '') expect(documented.get(k), k).toBe('');
      else expect(documented.get(k), k).toBe(String(CDK_DEFAULTS[k]));
    }
  });

  it('calls only routes the API serves', () => {
    const routes = fs
      .readdirSync(path.join(REPO_ROOT, 'functions', 'api', 'routes'))
      .flatMap((f) => [
        ...fs
          .readFileSync(path.join(REPO_ROOT, 'functions', 'api', 'routes', f), 'utf8')
          .matchAll(/r\.add\(\s*'([A-Z]+)',\s*'([^']+)'/g),
      ])
      .map((m) => ({ method: m[1]!, re: new RegExp(`^${m[2]!.replace(/\{[^}]+\}/g, '[^/]+')}$`) }));
    const calls = [...doc.matchAll(/curl -s(?: -X ([A-Z]+))? "\$\{API\}([^"?]*)/g)].map((m) => ({
      method: m[1] ?? 'GET',
      path: `/${m[2]!}`,
    }));
    expect(calls.length).toBeGreaterThan(5);
    for (const c of calls) {
      expect(
        routes.some((r) => r.method === c.method && r.re.test(c.path)),
        `${c.method} ${c.path}`,
      ).toBe(true);
    }
  });

  it('names the admin-key command the AdminKeyCommand output prints', () => {
    expect(doc).toContain('aws secretsmanager get-secret-value --secret-id');
    expect(doc).toContain('--query SecretString --output text');
  });
});
