import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type Assembly,
  type CfnTemplate,
  generatedName,
  knownManagedPolicyStatements,
  loadAssembly,
  TemplateError,
  TemplateModel,
} from '../../scripts/verify-deploy/template.js';
import { ACCOUNT, clone, REGION, SYNTH_TIMEOUT_MS, synthesize } from './fixtures/synth.js';

const opts = { region: REGION, account: ACCOUNT, stackName: 'Demo' };
const getAtt = (id: string, attr: string) => ({ 'Fn::GetAtt': [id, attr] });

/** A small template with one resource of each type the harness names, and a function wired to them. */
function smallTemplate(): CfnTemplate {
  return {
    Parameters: { Stage: { Type: 'String', Default: 'dev' } },
    Mappings: { Sizes: { dev: { Memory: 256 }, prod: { Memory: 1024 } } },
    Conditions: {
      IsDev: { 'Fn::Equals': [{ Ref: 'Stage' }, 'dev'] },
      IsProd: { 'Fn::Not': [{ Condition: 'IsDev' }] },
    },
    Resources: {
      Registry: {
        Type: 'AWS::DynamoDB::Table',
        Properties: {
          KeySchema: [
            { AttributeName: 'pk', KeyType: 'HASH' },
            { AttributeName: 'sk', KeyType: 'RANGE' },
          ],
          AttributeDefinitions: [
            { AttributeName: 'pk', AttributeType: 'S' },
            { AttributeName: 'sk', AttributeType: 'S' },
          ],
          GlobalSecondaryIndexes: [
            {
              IndexName: 'gsi1',
              KeySchema: [{ AttributeName: 'sk', KeyType: 'HASH' }],
              Projection: { ProjectionType: 'ALL' },
            },
          ],
          TimeToLiveSpecification: { AttributeName: 'expiresAt', Enabled: true },
          BillingMode: 'PAY_PER_REQUEST',
        },
      },
      Named: {
        Type: 'AWS::DynamoDB::Table',
        Properties: { TableName: { 'Fn::Sub': '${AWS::StackName}-named' } },
      },
      Stream: {
        Type: 'AWS::Kinesis::Stream',
        Properties: { StreamModeDetails: { StreamMode: 'ON_DEMAND' } },
      },
      Dlq: { Type: 'AWS::SQS::Queue' },
      Fifo: { Type: 'AWS::SQS::Queue', Properties: { FifoQueue: true } },
      Alarms: { Type: 'AWS::SNS::Topic' },
      Key: { Type: 'AWS::SecretsManager::Secret' },
      Db: { Type: 'AWS::Timestream::Database', Properties: { DatabaseName: 'telemetry' } },
      Tbl: {
        Type: 'AWS::Timestream::Table',
        Properties: { DatabaseName: { Ref: 'Db' }, TableName: 'readings' },
      },
      ProdOnly: { Type: 'AWS::SNS::Topic', Condition: 'IsProd' },
      Endpoint: { Type: 'Custom::AWS', Properties: { ServiceToken: getAtt('Fn', 'Arn') } },
      Rule: {
        Type: 'AWS::IoT::TopicRule',
        Properties: {
          TopicRulePayload: {
            Sql: "SELECT * FROM 'a/#'",
            AwsIotSqlVersion: '2016-03-23',
            RuleDisabled: false,
            Actions: [
              {
                Kinesis: {
                  StreamName: { Ref: 'Stream' },
                  PartitionKey: '${topic(2)}',
                  RoleArn: getAtt('Role', 'Arn'),
                },
              },
            ],
          },
        },
      },
      Role: {
        Type: 'AWS::IAM::Role',
        Properties: {
          AssumeRolePolicyDocument: {},
          ManagedPolicyArns: [
            {
              'Fn::Join': [
                '',
                [
                  'arn:',
                  { Ref: 'AWS::Partition' },
                  ':iam::aws:policy/service-role/AWSLambdaBasicExecutionRole',
                ],
              ],
            },
            { Ref: 'Managed' },
          ],
          Policies: [
            {
              PolicyName: 'inline',
              PolicyDocument: {
                Statement: [{ Effect: 'Allow', Action: 'sns:Publish', Resource: { Ref: 'Alarms' } }],
              },
            },
          ],
        },
      },
      Attached: {
        Type: 'AWS::IAM::Policy',
        Properties: {
          PolicyName: 'attached',
          Roles: [{ Ref: 'Role' }],
          PolicyDocument: {
            Statement: [
              {
                Sid: 'Table',
                Effect: 'Allow',
                Action: ['dynamodb:GetItem'],
                Resource: getAtt('Registry', 'Arn'),
              },
              {
                Effect: 'Allow',
                Action: 'dynamodb:Query',
                Resource: { 'Fn::Join': ['', [getAtt('Registry', 'Arn'), '/index/*']] },
                Condition: { Bool: { 'aws:SecureTransport': 'true' } },
              },
            ],
          },
        },
      },
      OtherRolePolicy: {
        Type: 'AWS::IAM::Policy',
        Properties: {
          PolicyName: 'other',
          Roles: ['someone-else'],
          PolicyDocument: { Statement: [{ Effect: 'Allow', Action: '*', Resource: '*' }] },
        },
      },
      Managed: {
        Type: 'AWS::IAM::ManagedPolicy',
        Properties: {
          PolicyDocument: { Statement: [{ Effect: 'Deny', NotAction: 'dynamodb:*', NotResource: '*' }] },
        },
      },
      Fn: {
        Type: 'AWS::Lambda::Function',
        Properties: {
          Handler: 'index.handler',
          Runtime: 'nodejs22.x',
          Architectures: ['arm64'],
          MemorySize: { 'Fn::FindInMap': ['Sizes', { Ref: 'Stage' }, 'Memory'] },
          Timeout: 30,
          Role: getAtt('Role', 'Arn'),
          Code: { S3Bucket: 'b', S3Key: 'abc123.zip' },
          Environment: {
            Variables: {
              TABLE: { Ref: 'Registry' },
              TABLE_ARN: getAtt('Registry', 'Arn'),
              QUEUE_URL: { Ref: 'Dlq' },
              QUEUE_ARN: getAtt('Dlq', 'Arn'),
              QUEUE_NAME: getAtt('Dlq', 'QueueName'),
              TOPIC: { Ref: 'Alarms' },
              SECRET: { Ref: 'Key' },
              DB: { Ref: 'Db' },
              TS_TABLE: { Ref: 'Tbl' },
              TS_TABLE_NAME: getAtt('Tbl', 'Name'),
              TS_TABLE_ARN: getAtt('Tbl', 'Arn'),
              RULE: { Ref: 'Rule' },
              ROLE: { Ref: 'Role' },
              STREAM_ARN: getAtt('Stream', 'Arn'),
              SUB: { 'Fn::Sub': 'https://${Endpoint.endpointAddress}/${AWS::Region}/${!Literal}/${Stage}' },
              SUB_VARS: { 'Fn::Sub': ['${Name}.${AWS::URLSuffix}', { Name: { Ref: 'Stream' } }] },
              SELECT: { 'Fn::Select': [1, { 'Fn::Split': [':', getAtt('Registry', 'Arn')] }] },
              IF: { 'Fn::If': ['IsDev', 'development', 'production'] },
              NUMBER: 42,
              OPTIONAL: { 'Fn::If': ['IsProd', 'x', { Ref: 'AWS::NoValue' }] },
            },
          },
        },
        Metadata: { 'aws:cdk:path': 'Demo/Fn/Resource', 'aws:asset:path': 'asset.abc123' },
      },
      Esm: {
        Type: 'AWS::Lambda::EventSourceMapping',
        Properties: {
          FunctionName: { Ref: 'Fn' },
          EventSourceArn: getAtt('Stream', 'Arn'),
          BatchSize: 100,
          StartingPosition: 'TRIM_HORIZON',
          FunctionResponseTypes: ['ReportBatchItemFailures'],
          DestinationConfig: { OnFailure: { Destination: getAtt('Dlq', 'Arn') } },
        },
      },
      Api: { Type: 'AWS::ApiGateway::RestApi', Properties: { Name: 'demo' } },
      Things: {
        Type: 'AWS::ApiGateway::Resource',
        Properties: {
          ParentId: getAtt('Api', 'RootResourceId'),
          PathPart: 'things',
          RestApiId: { Ref: 'Api' },
        },
      },
      Thing: {
        Type: 'AWS::ApiGateway::Resource',
        Properties: { ParentId: { Ref: 'Things' }, PathPart: '{id}', RestApiId: { Ref: 'Api' } },
      },
      Auth: {
        Type: 'AWS::ApiGateway::Authorizer',
        Properties: {
          Type: 'REQUEST',
          IdentitySource: 'method.request.header.Authorization',
          RestApiId: { Ref: 'Api' },
          AuthorizerUri: {
            'Fn::Join': [
              '',
              [
                'arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/',
                getAtt('Fn', 'Arn'),
                '/invocations',
              ],
            ],
          },
        },
      },
      GetThing: {
        Type: 'AWS::ApiGateway::Method',
        Properties: {
          HttpMethod: 'GET',
          ResourceId: { Ref: 'Thing' },
          RestApiId: { Ref: 'Api' },
          AuthorizationType: 'CUSTOM',
          AuthorizerId: { Ref: 'Auth' },
          Integration: {
            Type: 'AWS_PROXY',
            Uri: {
              'Fn::Join': [
                '',
                [
                  'arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/',
                  getAtt('Fn', 'Arn'),
                  '/invocations',
                ],
              ],
            },
          },
        },
      },
    },
  };
}

describe('TemplateModel on a hand-written template', () => {
  const model = new TemplateModel(smallTemplate(), {
    ...opts,
    assetDirs: { 'abc123.zip': '/assets/abc123' },
    overrides: { 'Endpoint.endpointAddress': 'localhost:1883' },
    endpoints: { sqs: 'http://127.0.0.1:9324/' },
  });

  it('resolves a function with its environment, role and asset', () => {
    const fn = model.function('Fn');
    expect(fn).toMatchObject({
      logicalId: 'Fn',
      cdkPath: 'Demo/Fn/Resource',
      functionName: 'Demo-Fn',
      arn: 'arn:aws:lambda:us-east-1:123456789012:function:Demo-Fn',
      handler: 'index.handler',
      runtime: 'nodejs22.x',
      architectures: ['arm64'],
      memorySize: 256,
      timeout: 30,
      roleLogicalId: 'Role',
      roleArn: 'arn:aws:iam::123456789012:role/Demo-Role',
      assetDir: '/assets/abc123',
    });
    expect(fn.environment).toEqual({
      TABLE: 'Demo-Registry',
      TABLE_ARN: 'arn:aws:dynamodb:us-east-1:123456789012:table/Demo-Registry',
      QUEUE_URL: 'http://127.0.0.1:9324/123456789012/Demo-Dlq',
      QUEUE_ARN: 'arn:aws:sqs:us-east-1:123456789012:Demo-Dlq',
      QUEUE_NAME: 'Demo-Dlq',
      TOPIC: 'arn:aws:sns:us-east-1:123456789012:Demo-Alarms',
      SECRET: expect.stringMatching(
        /^arn:aws:secretsmanager:us-east-1:123456789012:secret:Demo-Key-[A-Za-z0-9]{6}$/,
      ),
      DB: 'telemetry',
      TS_TABLE: 'telemetry|readings',
      TS_TABLE_NAME: 'readings',
      TS_TABLE_ARN: 'arn:aws:timestream:us-east-1:123456789012:database/telemetry/table/readings',
      RULE: 'Demo_Rule',
      ROLE: 'Demo-Role',
      STREAM_ARN: 'arn:aws:kinesis:us-east-1:123456789012:stream/Demo-Stream',
      SUB: 'https://localhost:1883/us-east-1/${Literal}/dev',
      SUB_VARS: 'Demo-Stream.amazonaws.com',
      SELECT: 'aws',
      IF: 'development',
      NUMBER: '42',
    });
    expect(fn.environment).not.toHaveProperty('OPTIONAL');
  });

  it('uses the asset path of the Metadata when the asset map does not know the key', () => {
    const m = new TemplateModel(smallTemplate(), {
      ...opts,
      assemblyDir: '/out',
      overrides: { 'Endpoint.endpointAddress': 'h' },
    });
    expect(m.function('Fn').assetDir).toBe(path.resolve('/out', 'asset.abc123'));
  });

  it('names resources: explicit names win, generated names fit each charset', () => {
    expect(model.physicalName('Named')).toBe('Demo-named');
    expect(model.ref('Named')).toBe('Demo-named');
    expect(model.physicalName('Fifo')).toBe('Demo-Fifo.fifo');
    expect(model.ref('Api')).toMatch(/^[0-9a-f]{10}$/);
    expect(generatedName('My Stack', 'Rule.1', { allowed: /[A-Za-z0-9_]/, max: 128, sep: '_' })).toBe(
      'My_Stack_Rule_1',
    );
    const long = generatedName('S', 'X'.repeat(100), { allowed: /[A-Za-z0-9_-]/, max: 64, sep: '-' });
    expect(long).toHaveLength(64);
    expect(long).toMatch(/^S-X+-[0-9a-f]{8}$/);
    // deterministic
    expect(generatedName('S', 'X'.repeat(100), { allowed: /[A-Za-z0-9_-]/, max: 64, sep: '-' })).toBe(long);
  });

  it('lists explicit names and what is wrong with them', () => {
    const t = smallTemplate();
    t.Resources.BadQueue = { Type: 'AWS::SQS::Queue', Properties: { QueueName: 'jobs queue!' } };
    const m = new TemplateModel(t, opts);
    expect(m.explicitNames()).toEqual([
      { logicalId: 'Named', type: 'AWS::DynamoDB::Table', property: 'TableName', name: 'Demo-named' },
      { logicalId: 'Db', type: 'AWS::Timestream::Database', property: 'DatabaseName', name: 'telemetry' },
      { logicalId: 'Tbl', type: 'AWS::Timestream::Table', property: 'TableName', name: 'readings' },
      {
        logicalId: 'BadQueue',
        type: 'AWS::SQS::Queue',
        property: 'QueueName',
        name: 'jobs queue!',
        problem: 'QueueName "jobs queue!" has characters a AWS::SQS::Queue name may not contain:   !',
      },
    ]);
  });

  it('skips resources whose condition is false and evaluates conditions', () => {
    expect(model.condition('IsDev')).toBe(true);
    expect(model.condition('IsProd')).toBe(false);
    expect(model.resourcesOfType('AWS::SNS::Topic').map(([id]) => id)).toEqual(['Alarms']);
    const prod = new TemplateModel(smallTemplate(), {
      ...opts,
      parameters: { Stage: 'prod' },
      overrides: { 'Endpoint.endpointAddress': 'h' },
    });
    expect(prod.resourcesOfType('AWS::SNS::Topic').map(([id]) => id)).toEqual(['Alarms', 'ProdOnly']);
    expect(prod.function('Fn').environment.OPTIONAL).toBe('x');
  });

  it('resolves pseudo parameters', () => {
    expect(
      model.resolve({
        'Fn::Join': [
          ',',
          [
            { Ref: 'AWS::Region' },
            { Ref: 'AWS::AccountId' },
            { Ref: 'AWS::Partition' },
            { Ref: 'AWS::URLSuffix' },
            { Ref: 'AWS::StackName' },
          ],
        ],
      }),
    ).toBe('us-east-1,123456789012,aws,amazonaws.com,Demo');
    expect(model.resolve([1, { Ref: 'AWS::NoValue' }, 2])).toEqual([1, 2]);
    expect(model.resolve({ 'Fn::GetAtt': 'Registry.Arn' })).toBe(model.arn('Registry'));
  });

  it('fails clearly on what it cannot resolve', () => {
    const noOverride = new TemplateModel(smallTemplate(), opts);
    expect(() => noOverride.function('Fn')).toThrow(TemplateError);
    expect(() => noOverride.function('Fn')).toThrow(
      /function Fn: environment variable SUB: .*custom resource Endpoint \(Custom::AWS\) attribute endpointAddress .*overrides\['Endpoint\.endpointAddress'\]/,
    );
    expect(() => model.resolve({ 'Fn::ImportValue': 'shared-vpc' })).toThrow(/Fn::ImportValue "shared-vpc"/);
    expect(() => model.resolve({ Ref: 'Nothing' })).toThrow(/Ref to Nothing/);
    expect(() => model.resolve({ 'Fn::GetAtt': ['Registry', 'Bogus'] })).toThrow(
      /attribute Bogus of a AWS::DynamoDB::Table/,
    );
    expect(() => model.resolve({ 'Fn::Select': [5, ['a']] })).toThrow(/out of range/);
    expect(() => model.resolve({ 'Fn::Transform': {} })).toThrow(/cannot resolve Fn::Transform/);
  });

  it('reads tables, streams, queues, topic rules and event source mappings', () => {
    const registry = model.tables().find((t) => t.logicalId === 'Registry')!;
    expect(registry).toMatchObject({
      tableName: 'Demo-Registry',
      keySchema: [
        { AttributeName: 'pk', KeyType: 'HASH' },
        { AttributeName: 'sk', KeyType: 'RANGE' },
      ],
      ttl: { attributeName: 'expiresAt', enabled: true },
      billingMode: 'PAY_PER_REQUEST',
    });
    expect(registry.globalSecondaryIndexes.map((g) => g.IndexName)).toEqual(['gsi1']);
    expect(model.streams()).toEqual([
      { logicalId: 'Stream', streamName: 'Demo-Stream', arn: model.arn('Stream'), mode: 'ON_DEMAND' },
    ]);
    expect(model.queues().map((q) => [q.queueName, q.fifo])).toEqual([
      ['Demo-Dlq', false],
      ['Demo-Fifo.fifo', true],
    ]);
    expect(model.topicRules()).toEqual([
      expect.objectContaining({
        logicalId: 'Rule',
        ruleName: 'Demo_Rule',
        sql: "SELECT * FROM 'a/#'",
        sqlVersion: '2016-03-23',
        disabled: false,
        kinesis: [
          {
            streamName: 'Demo-Stream',
            streamLogicalId: 'Stream',
            partitionKey: '${topic(2)}',
            roleArn: model.arn('Role'),
          },
        ],
      }),
    ]);
    expect(model.eventSourceMappings()).toEqual([
      expect.objectContaining({
        functionLogicalId: 'Fn',
        sourceLogicalId: 'Stream',
        batchSize: 100,
        functionResponseTypes: ['ReportBatchItemFailures'],
        onFailureDestination: model.arn('Dlq'),
        enabled: true,
      }),
    ]);
  });

  it('reads API methods with their paths and authorizers', () => {
    expect(model.methods()).toEqual([
      expect.objectContaining({
        logicalId: 'GetThing',
        httpMethod: 'GET',
        path: '/things/{id}',
        authorizationType: 'CUSTOM',
        authorizerLogicalId: 'Auth',
        functionLogicalId: 'Fn',
      }),
    ]);
    expect(model.authorizers()).toEqual([
      expect.objectContaining({
        logicalId: 'Auth',
        type: 'REQUEST',
        identitySource: 'method.request.header.Authorization',
        resultTtlSeconds: 300,
        functionLogicalId: 'Fn',
      }),
    ]);
    expect(model.customResources().map((c) => [c.logicalId, c.serviceTokenFunctionLogicalId])).toEqual([
      ['Endpoint', 'Fn'],
    ]);
  });

  it('collects the role’s statements: inline, attached (Roles), customer managed; names AWS managed ones', () => {
    const p = model.policiesFor('Fn');
    expect(p.roleLogicalId).toBe('Role');
    expect(p.statements).toEqual([
      { Effect: 'Allow', Action: 'sns:Publish', Resource: model.arn('Alarms'), source: 'Role/inline' },
      {
        Sid: 'Table',
        Effect: 'Allow',
        Action: ['dynamodb:GetItem'],
        Resource: model.arn('Registry'),
        source: 'Attached',
      },
      {
        Effect: 'Allow',
        Action: 'dynamodb:Query',
        Resource: `${model.arn('Registry')}/index/*`,
        Condition: { Bool: { 'aws:SecureTransport': 'true' } },
        source: 'Attached',
      },
      { Effect: 'Deny', NotAction: 'dynamodb:*', NotResource: '*', source: 'Managed' },
    ]);
    expect(p.managedPolicies).toEqual([
      {
        arn: 'arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole',
        name: 'AWSLambdaBasicExecutionRole',
        awsManaged: true,
      },
    ]);
    expect(knownManagedPolicyStatements(p.managedPolicies[0]!)).toEqual([
      expect.objectContaining({
        Effect: 'Allow',
        Action: ['logs:CreateLogGroup', 'logs:CreateLogStream', 'logs:PutLogEvents'],
      }),
    ]);
    expect(
      knownManagedPolicyStatements({
        arn: 'arn:aws:iam::aws:policy/AdministratorAccess',
        name: 'AdministratorAccess',
        awsManaged: true,
      }),
    ).toBeUndefined();
  });
});

describe('TemplateModel for the deploy harness', () => {
  it('takes a custom resource attribute once its provider answered (setOverride)', () => {
    const m = new TemplateModel(smallTemplate(), opts);
    expect(() => m.function('Fn')).toThrow(/overrides\['Endpoint\.endpointAddress'\]/);
    m.setOverride('Endpoint.endpointAddress', 'iot.local:8443');
    expect(m.function('Fn').environment.SUB).toBe('https://iot.local:8443/us-east-1/${Literal}/dev');
    m.setOverride('Named', 'renamed');
    expect(m.ref('Named')).toBe('renamed');
  });

  it('describes a function as the harness runs it: asset, role statements with their policy', () => {
    const m = new TemplateModel(smallTemplate(), {
      ...opts,
      assetDirs: { 'abc123.zip': '/assets/abc123' },
      overrides: { 'Endpoint.endpointAddress': 'h' },
    });
    const fn = m.lambdaFunction('Fn');
    expect(fn).toMatchObject({
      logicalId: 'Fn',
      name: 'Demo-Fn',
      functionName: 'Demo-Fn',
      assetDir: '/assets/abc123',
      memorySize: 256,
      timeout: 30,
      managedPolicyArns: ['arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole'],
    });
    expect(fn.statements.map((st) => [st.policy, st.Action ?? st.NotAction])).toEqual([
      ['Role/inline', 'sns:Publish'],
      ['Attached', ['dynamodb:GetItem']],
      ['Attached', 'dynamodb:Query'],
      ['Managed', 'dynamodb:*'],
    ]);
    const noAsset = new TemplateModel(smallTemplate(), {
      ...opts,
      overrides: { 'Endpoint.endpointAddress': 'h' },
    });
    expect(() => noAsset.lambdaFunction('Fn')).toThrow(/function Fn: no asset directory/);
  });

  it('lists the logical ids a value refers to, without resolving it', () => {
    const uri = {
      'Fn::Join': [
        '',
        ['arn:', { Ref: 'AWS::Partition' }, ':apigateway:', getAtt('Fn', 'Arn'), '/invocations'],
      ],
    };
    expect([...TemplateModel.references(uri)].sort()).toEqual(['AWS::Partition', 'Fn']);
    expect(TemplateModel.referencedId({ 'Fn::GetAtt': 'Registry.Arn' })).toBe('Registry');
    expect(TemplateModel.referencedId('Registry')).toBeUndefined();
  });
});

describe('TemplateModel on the synthesized default template', () => {
  let asm: Assembly;
  let cleanup = () => {};
  beforeAll(async () => {
    const s = await synthesize();
    cleanup = s.cleanup;
    asm = loadAssembly(s.outdir);
  }, SYNTH_TIMEOUT_MS);
  afterAll(() => cleanup());

  const model = (template = asm.stacks[0]!.template, overrides?: Record<string, string>) => {
    const stack = asm.stacks[0]!;
    const base = new TemplateModel(template, {
      region: REGION,
      account: ACCOUNT,
      stackName: stack.stackName,
    });
    const o: Record<string, string> = {};
    for (const c of base.customResources()) o[`${c.logicalId}.endpointAddress`] = 'localhost:8883';
    return new TemplateModel(template, {
      region: REGION,
      account: ACCOUNT,
      stackName: stack.stackName,
      assemblyDir: asm.outdir,
      assetDirs: stack.assetDirs,
      overrides: overrides ?? o,
    });
  };

  it('loads the stack and knows each function’s bundled asset', () => {
    expect(asm.stacks).toHaveLength(1);
    const m = model();
    const fns = m.functions();
    const ours = fns.filter((f) => /^(SparkplugIngest|Lwm2mIngest|Api|Authorizer)Function/.test(f.logicalId));
    expect(ours.map((f) => f.logicalId.replace(/[0-9A-F]{8}$/, '')).sort()).toEqual([
      'ApiFunction',
      'AuthorizerFunction',
      'Lwm2mIngestFunction',
      'SparkplugIngestFunction',
    ]);
    for (const f of ours) {
      expect(f.runtime).toBe('nodejs22.x');
      expect(f.handler).toBe('index.handler');
      expect(f.architectures).toEqual(['arm64']);
      expect(f.assetDir, f.logicalId).toBeDefined();
      expect(fs.existsSync(path.join(f.assetDir!, 'index.mjs')), f.logicalId).toBe(true);
      expect(f.roleLogicalId, f.logicalId).toBeDefined();
      // every environment value resolved to a local name, ARN or override
      for (const [k, v] of Object.entries(f.environment))
        expect(typeof v, `${f.logicalId} ${k}`).toBe('string');
      expect(f.environment.REGISTRY_TABLE).toBe(
        m.tables().find((t) => t.logicalId.startsWith('TablesRegistryTable'))!.tableName,
      );
    }
  });

  it('fails naming the custom resource attribute when no override is given', () => {
    const m = model(undefined, {});
    // the IoT endpoint lookup is a custom resource today; the check holds as long as one is read
    const usesCustom = JSON.stringify(asm.stacks[0]!.template).includes('"endpointAddress"');
    if (!usesCustom) return;
    expect(() => m.functions()).toThrow(/custom resource \S+ \(Custom::AWS\) attribute endpointAddress/);
  });

  it('has no explicit name a deployment would reject', () => {
    expect(
      model()
        .explicitNames()
        .filter((n) => n.problem),
    ).toEqual([]);
  });

  it('reads the topic rules with their Kinesis streams and the event source mappings into the functions', () => {
    const m = model();
    const rules = m.topicRules();
    expect(rules.length).toBe(2);
    const streams = new Set(m.streams().map((s) => s.logicalId));
    for (const r of rules) {
      expect(r.sql).toMatch(/^SELECT .* FROM '/);
      expect(r.kinesis).toHaveLength(1);
      expect(streams.has(r.kinesis[0]!.streamLogicalId!)).toBe(true);
      expect(r.kinesis[0]!.partitionKey).toMatch(/\$\{topic\(\d\)\}/);
    }
    const esms = m.eventSourceMappings();
    expect(esms.map((e) => e.functionLogicalId?.replace(/[0-9A-F]{8}$/, '')).sort()).toEqual([
      'Lwm2mIngestFunction',
      'SparkplugIngestFunction',
    ]);
    for (const e of esms) expect(streams.has(e.sourceLogicalId!)).toBe(true);
  });

  it('reads the API: the authorizer function and the proxy method behind it', () => {
    const m = model();
    const [auth] = m.authorizers();
    expect(auth).toMatchObject({ type: 'REQUEST', identitySource: 'method.request.header.Authorization' });
    expect(auth!.functionLogicalId).toMatch(/^AuthorizerFunction/);
    const proxy = m.methods().find((x) => x.path === '/{proxy+}')!;
    expect(proxy).toMatchObject({
      httpMethod: 'ANY',
      authorizationType: 'CUSTOM',
      authorizerLogicalId: auth!.logicalId,
    });
    expect(proxy.functionLogicalId).toMatch(/^ApiFunction/);
    expect(m.methods().find((x) => x.path === '/health')?.authorizationType).toBe('NONE');
  });

  it('gives each function the statements of its role and names the managed policies', () => {
    const m = model();
    for (const f of m
      .functions()
      .filter((x) => /^(SparkplugIngest|Lwm2mIngest|Api|Authorizer)Function/.test(x.logicalId))) {
      const p = m.policiesFor(f.logicalId);
      expect(p.statements.length, f.logicalId).toBeGreaterThan(0);
      for (const s of p.statements) {
        expect(JSON.stringify(s), f.logicalId).not.toMatch(/Fn::|"Ref"/);
        expect(s.source).toBeDefined();
      }
      expect(p.managedPolicies.map((x) => x.name)).toEqual(['AWSLambdaBasicExecutionRole']);
    }
  });

  it('drops a table from a copy of the template: the functions that name it fail, naming the table', () => {
    const copy = clone(asm.stacks[0]!.template);
    const registryId = Object.keys(copy.Resources).find((k) => k.startsWith('TablesRegistryTable'))!;
    delete copy.Resources[registryId];
    const m = model(copy);
    expect(() => m.functions()).toThrow(
      new RegExp(
        `function \\w+: environment variable REGISTRY_TABLE: .*Ref to ${registryId}, which is neither`,
      ),
    );
    expect(m.tables().map((t) => t.logicalId)).not.toContain(registryId);
  });
});
