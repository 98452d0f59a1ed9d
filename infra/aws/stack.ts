/**
 * The Dualpath stack: one construct per concern, wired from the ONE pipeline definition
 * (infra/pipeline.ts) that the local stack runs too.
 */
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CfnOutput, RemovalPolicy, Stack, type StackProps } from 'aws-cdk-lib';
import { RetentionDays } from 'aws-cdk-lib/aws-logs';
import { Secret } from 'aws-cdk-lib/aws-secretsmanager';
import { AwsCustomResource, AwsCustomResourcePolicy, PhysicalResourceId } from 'aws-cdk-lib/custom-resources';
import type { Construct } from 'constructs';
import { DualpathApi } from './constructs/api.js';
import { type EventSourceSettings, IngestFunction, nodeFunction } from './constructs/ingest-function.js';
import { IotIngress } from './constructs/iot.js';
import { Monitoring } from './constructs/monitoring.js';
import { SimulatorService } from './constructs/simulator-service.js';
import { Streams } from './constructs/streams.js';
import { Tables } from './constructs/tables.js';
import { TimestreamTelemetry } from './constructs/telemetry.js';
import { acknowledgeFindings } from './nag.js';
import type { DeploySettings } from './settings.js';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const THING_TYPE = 'dualpath-device';

/** The parts of the pipeline definition (infra/pipeline.ts) the stack reads. */
export interface StackPipeline {
  streams: Record<string, { retentionHours: number }>;
  rules: ReadonlyArray<{ name: string; sql: string; stream: string; partitionKey: string }>;
  functions: {
    sparkplugIngest: IngestFunctionDef;
    lwm2mIngest: IngestFunctionDef;
    api: { entry: string; authorizerEntry?: string; memoryMb: number; timeoutSeconds: number };
  };
  tables: Record<
    string,
    { ttlAttribute?: string; gsis?: ReadonlyArray<{ name: string; partitionKey: string; sortKey: string }> }
  >;
}

interface IngestFunctionDef {
  entry: string;
  stream: string;
  memoryMb: number;
  timeoutSeconds: number;
  eventSource: EventSourceSettings;
}

export interface DualpathStackProps extends StackProps {
  settings: DeploySettings;
  pipeline: StackPipeline;
}

/** Nearest RetentionDays value at or above the requested days. */
function retention(days: number): RetentionDays {
  const values = Object.values(RetentionDays).filter(
    (v): v is RetentionDays => typeof v === 'number' && v > 0,
  );
  return values.sort((a, b) => a - b).find((v) => v >= days) ?? RetentionDays.TEN_YEARS;
}

export class DualpathStack extends Stack {
  constructor(scope: Construct, id: string, props: DualpathStackProps) {
    super(scope, id, props);
    const s = props.settings;
    const pipeline = props.pipeline;
    const removalPolicy = s.removalPolicy === 'destroy' ? RemovalPolicy.DESTROY : RemovalPolicy.RETAIN;
    const logRetention = retention(s.logRetentionDays);
    const entry = (rel: string) => path.join(REPO_ROOT, rel);

    const tables = new Tables(this, 'Tables', {
      removalPolicy,
      tables: Object.entries(pipeline.tables).map(([name, t]) => ({
        name,
        ...(t.ttlAttribute ? { ttlAttribute: t.ttlAttribute } : {}),
        gsis: (t.gsis ?? []).map((g) => ({ name: g.name, pk: g.partitionKey, sk: g.sortKey })),
      })),
    });
    const streams = new Streams(this, 'Streams', {
      mode: s.kinesisMode,
      shardCount: s.shardCount,
      streams: Object.entries(pipeline.streams).map(([key, st]) => ({
        key,
        retentionHours: st.retentionHours,
      })),
    });
    const iot = new IotIngress(this, 'Iot', {
      thingTypeName: THING_TYPE,
      rules: pipeline.rules.map((r) => ({
        name: r.name,
        sql: r.sql,
        stream: streams.get(r.stream),
        partitionKey: r.partitionKey,
      })),
    });

    const telemetry =
      s.telemetry === 'timestream'
        ? new TimestreamTelemetry(this, 'Telemetry', {
            databaseName: `${this.stackName}-telemetry`,
            tableName: 'readings',
            memoryRetentionHours: s.memoryRetentionHours,
            magneticRetentionDays: s.magneticRetentionDays,
            removalPolicy,
          })
        : undefined;

    // Telemetry in DynamoDB: works in every account (Timestream for LiveAnalytics does not).
    const telemetryTable =
      s.telemetry === 'dynamodb'
        ? new Tables(this, 'TelemetryStore', {
            removalPolicy,
            tables: [{ name: 'telemetry', ttlAttribute: 'expiresAt' }],
          }).get('telemetry')
        : undefined;

    // The IoT data-plane endpoint (for publishing rebirth requests, LwM2M responses and commands).
    const endpoint = new AwsCustomResource(this, 'IotDataEndpoint', {
      onUpdate: {
        service: 'Iot',
        action: 'describeEndpoint',
        parameters: { endpointType: 'iot:Data-ATS' },
        physicalResourceId: PhysicalResourceId.fromResponse('endpointAddress'),
      },
      policy: AwsCustomResourcePolicy.fromSdkCalls({ resources: AwsCustomResourcePolicy.ANY_RESOURCE }),
      installLatestAwsSdk: false,
    });
    const iotEndpoint = endpoint.getResponseField('endpointAddress');

    const common: Record<string, string> = {
      REGISTRY_TABLE: tables.get('registry').tableName,
      STATE_TABLE: tables.get('state').tableName,
      EVENTS_TABLE: tables.get('events').tableName,
      TELEMETRY_BACKEND: s.telemetry,
      IOT_DATA_ENDPOINT: iotEndpoint,
      AUTO_REGISTER: String(s.autoRegister),
      ...(telemetry
        ? { TIMESTREAM_DATABASE: `${this.stackName}-telemetry`, TIMESTREAM_TABLE: 'readings' }
        : {}),
    };

    const paths = (['sparkplug', 'lwm2m'] as const).map((protocol) => {
      const fnSpec =
        protocol === 'sparkplug' ? pipeline.functions.sparkplugIngest : pipeline.functions.lwm2mIngest;
      const ingest = new IngestFunction(this, protocol === 'sparkplug' ? 'SparkplugIngest' : 'Lwm2mIngest', {
        entry: entry(fnSpec.entry),
        memoryMb: fnSpec.memoryMb,
        timeoutSeconds: fnSpec.timeoutSeconds,
        description: `Dualpath ${protocol} ingest: decode, protocol state, enrich, store`,
        logRetention,
        environment: { ...common, POWERTOOLS_SERVICE_NAME: `${protocol}-ingest` },
        stream: streams.get(fnSpec.stream),
        eventSource: fnSpec.eventSource,
      });
      for (const name of ['registry', 'state', 'events']) tables.get(name).grantReadWriteData(ingest.fn);
      for (const st of telemetry?.writeStatements() ?? []) ingest.fn.addToRolePolicy(st);
      telemetryTable?.grantReadWriteData(ingest.fn);
      ingest.fn.addToRolePolicy(IotIngress.publishStatement());
      const rule = pipeline.rules.find((r) => r.stream === fnSpec.stream)!;
      return {
        title: protocol === 'sparkplug' ? 'Sparkplug path' : 'LwM2M path',
        service: `${protocol}-ingest`,
        ruleName: rule.name,
        stream: streams.get(fnSpec.stream),
        fn: ingest.fn,
        dlq: ingest.dlq,
      };
    });

    // API: one router; admin key generated at deploy time into Secrets Manager (ADR 0010).
    const adminKey = new Secret(this, 'AdminKeySecret', {
      description: 'Dualpath API admin key (send as Authorization: Bearer <key>)',
      generateSecretString: { passwordLength: 48, excludePunctuation: true, includeSpace: false },
    });
    const apiEnv = { ...common, POWERTOOLS_SERVICE_NAME: 'api', ADMIN_KEY_SECRET_ARN: adminKey.secretArn };
    const apiFn = nodeFunction(this, 'ApiFunction', {
      entry: entry(pipeline.functions.api.entry),
      memoryMb: pipeline.functions.api.memoryMb,
      timeoutSeconds: pipeline.functions.api.timeoutSeconds,
      description: 'Dualpath REST API',
      logRetention,
      environment: apiEnv,
    });
    const authorizerFn = nodeFunction(this, 'AuthorizerFunction', {
      entry: entry(pipeline.functions.api.authorizerEntry ?? 'functions/api/authorizer.ts'),
      memoryMb: 256,
      timeoutSeconds: 5,
      description: 'Dualpath API key authorizer',
      logRetention,
      environment: apiEnv,
    });
    tables.get('registry').grantReadWriteData(apiFn);
    tables.get('state').grantReadWriteData(apiFn);
    tables.get('events').grantReadData(apiFn);
    tables.get('registry').grantReadData(authorizerFn);
    adminKey.grantRead(apiFn);
    adminKey.grantRead(authorizerFn);
    for (const st of telemetry?.queryStatements() ?? []) apiFn.addToRolePolicy(st);
    telemetryTable?.grantReadData(apiFn);
    apiFn.addToRolePolicy(IotIngress.publishStatement());
    const api = new DualpathApi(this, 'Api', {
      handler: apiFn,
      authorizer: authorizerFn,
      logRetention,
      throttle: { rateLimit: 100, burstLimit: 200 },
    });

    const provisioner = nodeFunction(this, 'ProvisionerFunction', {
      entry: entry('functions/provisioner/handler.ts'),
      memoryMb: 256,
      timeoutSeconds: 900,
      description: 'Provisions the simulator things, fleet certificate and credentials secret',
      logRetention,
      environment: {},
    });
    const simulator = new SimulatorService(this, 'Simulator', {
      repoRoot: REPO_ROOT,
      desiredCount: s.simulatorTasks,
      devices: s.simulatorDevices,
      rate: s.simulatorRate,
      thingPrefix: 'dualpath-sim-',
      thingTypeName: THING_TYPE,
      policyName: `${this.stackName}-device`,
      provisioner,
      logRetention,
    });
    simulator.node.addDependency(iot);

    acknowledgeFindings(this, {
      functions: [...paths.map((p) => p.fn), apiFn, authorizerFn, provisioner],
      ingestFunctions: paths.map((p) => p.fn),
      apiFunctions: [apiFn, authorizerFn],
      provisioner,
      provisionerScope: simulator,
      registryTable: tables.get('registry'),
      queues: [iot.errorQueue, ...paths.map((p) => p.dlq)],
      secrets: [adminKey, simulator.secret],
      api: api.api,
      publicMethods: api.publicMethods,
      proxyMethod: api.proxyMethod,
      taskDefinition: simulator.taskDefinition,
      endpointLookup: endpoint,
      ...(telemetry
        ? {
            rejectsBucket: telemetry.rejectsBucket,
            timestreamDatabase: telemetry.database,
            timestreamScope: telemetry,
          }
        : {}),
    });

    const monitoring = new Monitoring(this, 'Monitoring', {
      paths,
      api: apiFn,
      ruleErrorQueue: iot.errorQueue,
      iteratorAgeAlarmMs: 60_000,
    });

    new CfnOutput(this, 'ApiUrl', { value: api.api.url });
    new CfnOutput(this, 'AdminKeySecretArn', { value: adminKey.secretArn });
    new CfnOutput(this, 'AlarmTopicArn', { value: monitoring.alarmTopic.topicArn });
    new CfnOutput(this, 'IotEndpoint', { value: iotEndpoint });
    new CfnOutput(this, 'DevicePolicyName', { value: `${this.stackName}-device` });
    new CfnOutput(this, 'SimulatorSecretArn', { value: simulator.secret.secretArn });
  }
}
