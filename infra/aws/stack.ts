/**
 * The Dualpath stack: one construct per concern, wired from the ONE pipeline definition
 * (infra/pipeline.ts) that the local stack runs too.
 */
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Aws, CfnOutput, type Duration, RemovalPolicy, Stack, type StackProps } from 'aws-cdk-lib';
import { PolicyStatement } from 'aws-cdk-lib/aws-iam';
import type { NodejsFunction } from 'aws-cdk-lib/aws-lambda-nodejs';
import { RetentionDays } from 'aws-cdk-lib/aws-logs';
import { Secret } from 'aws-cdk-lib/aws-secretsmanager';
import { AwsCustomResource, AwsCustomResourcePolicy, PhysicalResourceId } from 'aws-cdk-lib/custom-resources';
import type { Construct } from 'constructs';
import { FIRMWARE_PREFIX } from '../../functions/core/operations/packages.js';
import {
  AUTO_REGISTER_ACCESS,
  DYNAMODB_ACCESS,
  dynamoStatements,
  IOT_PUBLISH,
  iotPublishStatement,
  LIVE_PUBLISH_ACCESS,
  LIVE_PUBLISHERS,
  RULES_INGEST_ACCESS,
  SELF_REGISTER_ACCESS,
  type TableTarget,
  TIMESTREAM_ACCESS,
  timestreamStatements,
  withAccess,
} from './access.js';
import { Alerts } from './constructs/alerts.js';
import { DualpathApi } from './constructs/api.js';
import { DASHBOARD_ENTRY, DualpathDashboard } from './constructs/dashboard.js';
import { FirmwarePackages } from './constructs/firmware.js';
import { type EventSourceSettings, IngestFunction, nodeFunction } from './constructs/ingest-function.js';
import { IotIngress } from './constructs/iot.js';
import { DualpathLive, LIVE_ENTRY } from './constructs/live.js';
import { MAGNETIC_REJECTS_SERVICE, MagneticRejectsReader } from './constructs/magnetic-rejects.js';
import { Monitoring } from './constructs/monitoring.js';
import {
  acknowledgeOnboardingFindings,
  DeviceOnboarding,
  ONBOARDING_ENTRIES,
  selfRegisterIdPrefix,
  selfRegisterTypes,
} from './constructs/onboarding.js';
import { Operations } from './constructs/operations.js';
import { SimulatorService } from './constructs/simulator-service.js';
import { Streams } from './constructs/streams.js';
import { Tables } from './constructs/tables.js';
import { TimestreamTelemetry } from './constructs/telemetry.js';
import { acknowledgeFindings } from './nag.js';
import type { DeploySettings } from './settings.js';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

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
      rules: pipeline.rules.map((r) => ({
        id: r.name,
        sql: r.sql,
        stream: streams.get(r.stream),
        partitionKey: r.partitionKey,
      })),
      lwm2mRuleId: pipeline.rules.find((r) => r.stream === 'lwm2m')?.name,
    });

    // Telemetry store (ADR 0014): DynamoDB by default, in every account; Timestream for LiveAnalytics
    // only when asked for (existing customers), never both.
    const timestream =
      s.telemetry === 'timestream'
        ? new TimestreamTelemetry(this, 'Telemetry', {
            ...(s.timestreamDatabaseName ? { databaseName: s.timestreamDatabaseName } : {}),
            ...(s.timestreamTableName ? { tableName: s.timestreamTableName } : {}),
            memoryRetentionHours: s.memoryRetentionHours,
            magneticRetentionDays: s.magneticRetentionDays,
            removalPolicy,
          })
        : undefined;
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

    // Environment names are those of functions/core/config.ts (ingestConfigSpec).
    const tablesEnv: Record<string, string> = {
      REGISTRY_TABLE: tables.get('registry').tableName,
      STATE_TABLE: tables.get('state').tableName,
      EVENTS_TABLE: tables.get('events').tableName,
    };
    const telemetryEnv: Record<string, string> = {
      TELEMETRY_BACKEND: s.telemetry,
      ...(telemetryTable ? { TELEMETRY_TABLE: telemetryTable.tableName } : {}),
      ...(timestream
        ? {
            TIMESTREAM_DATABASE: timestream.databaseName,
            TIMESTREAM_TABLE: timestream.tableName,
            TIMESTREAM_MEMORY_RETENTION_HOURS: String(s.memoryRetentionHours),
          }
        : {}),
    };
    const common: Record<string, string> = {
      ...tablesEnv,
      ...telemetryEnv,
      IOT_DATA_ENDPOINT: iotEndpoint,
      AUTO_REGISTER: String(s.autoRegister),
    };

    // Live updates (ADR 0023): the WebSocket API, its connections table and function; the publishers
    // are added below (live.addPublisher), the admin key once its secret exists.
    const live = new DualpathLive(this, 'Live', {
      entry: entry(LIVE_ENTRY),
      environment: { ...tablesEnv, TELEMETRY_BACKEND: s.telemetry },
      logRetention,
      throttle: { rateLimit: 50, burstLimit: 100 },
    });

    // Data access: exactly the rows of DYNAMODB_ACCESS (infra/aws/access.ts), one statement per table.
    const tableArn = (target: TableTarget): string | undefined => {
      switch (target) {
        case 'registry':
        case 'state':
        case 'events':
          return tables.get(target).tableArn;
        case 'registry/index/gsi1':
          return `${tables.get('registry').tableArn}/index/gsi1`;
        case 'telemetry':
          return telemetryTable?.tableArn;
        case 'live':
          return live.table.tableArn;
      }
    };
    const grantData = (fn: NodejsFunction, key: keyof typeof DYNAMODB_ACCESS) => {
      const ingest = key === 'sparkplugIngest' || key === 'lwm2mIngest';
      const base =
        ingest && s.autoRegister
          ? withAccess(DYNAMODB_ACCESS[key], AUTO_REGISTER_ACCESS)
          : DYNAMODB_ACCESS[key];
      // Rules are evaluated on the ingest path (ADR 0016).
      const ruled = ingest ? withAccess(base, RULES_INGEST_ACCESS) : base;
      const row = LIVE_PUBLISHERS.includes(key) ? withAccess(ruled, LIVE_PUBLISH_ACCESS) : ruled;
      for (const st of dynamoStatements(row, tableArn)) fn.addToRolePolicy(st);
      if (timestream) {
        for (const st of timestreamStatements(TIMESTREAM_ACCESS[key], timestream.table.attrArn))
          fn.addToRolePolicy(st);
      }
    };

    const paths = (['sparkplug', 'lwm2m'] as const).map((protocol) => {
      const key = protocol === 'sparkplug' ? 'sparkplugIngest' : 'lwm2mIngest';
      const fnSpec = pipeline.functions[key];
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
      grantData(ingest.fn, key);
      ingest.fn.addToRolePolicy(iotPublishStatement(IOT_PUBLISH[key]));
      live.addPublisher(ingest.fn);
      const ruleIndex = pipeline.rules.findIndex((r) => r.stream === fnSpec.stream);
      return {
        key: key as 'sparkplugIngest' | 'lwm2mIngest',
        title: protocol === 'sparkplug' ? 'Sparkplug path' : 'LwM2M path',
        service: `${protocol}-ingest`,
        ruleName: iot.rules[ruleIndex]!.ref,
        stream: streams.get(fnSpec.stream),
        fn: ingest.fn,
        archived: (period: Duration) => ingest.metricArchived(period),
        archive: ingest.archive,
      };
    });

    // API: one router; admin key generated at deploy time into Secrets Manager (ADR 0010).
    const adminKey = new Secret(this, 'AdminKeySecret', {
      description: 'Dualpath API admin key (send as Authorization: Bearer <key>)',
      generateSecretString: { passwordLength: 48, excludePunctuation: true, includeSpace: false },
    });
    // The authorizer and the live-connections function only read the secret's value
    // (functions/shared/aws-base.ts adminKeyHash). The API function trusts the authorizer's decision
    // and never reads it (ADR 0025 amendment 2).
    const readAdminKey = new PolicyStatement({
      sid: 'ReadAdminKey',
      actions: ['secretsmanager:GetSecretValue'],
      resources: [adminKey.secretArn],
    });
    const apiFn = nodeFunction(this, 'ApiFunction', {
      entry: entry(pipeline.functions.api.entry),
      memoryMb: pipeline.functions.api.memoryMb,
      timeoutSeconds: pipeline.functions.api.timeoutSeconds,
      description: 'Dualpath REST API',
      logRetention,
      environment: { ...common, POWERTOOLS_SERVICE_NAME: 'api' },
    });
    // The authorizer builds the registry only; loadConfig still requires the three table names.
    const authorizerFn = nodeFunction(this, 'AuthorizerFunction', {
      entry: entry(pipeline.functions.api.authorizerEntry ?? 'functions/api/authorizer.ts'),
      memoryMb: 256,
      timeoutSeconds: 5,
      description: 'Dualpath API key authorizer',
      logRetention,
      environment: {
        ...tablesEnv,
        TELEMETRY_BACKEND: s.telemetry,
        POWERTOOLS_SERVICE_NAME: 'authorizer',
        ADMIN_KEY_SECRET_ARN: adminKey.secretArn,
      },
    });
    grantData(apiFn, 'api');
    grantData(authorizerFn, 'authorizer');
    authorizerFn.addToRolePolicy(readAdminKey);
    apiFn.addToRolePolicy(iotPublishStatement(IOT_PUBLISH.api));
    const api = new DualpathApi(this, 'Api', {
      handler: apiFn,
      authorizer: authorizerFn,
      logRetention,
      throttle: { rateLimit: 100, burstLimit: 200 },
    });
    // The dashboard (ADR 0023 amendment): public GET / and /dashboard/{file}, live over the WebSocket API.
    const dashboard = new DualpathDashboard(this, 'Dashboard', {
      entry: entry(DASHBOARD_ENTRY),
      api: api.api,
      liveUrl: live.url,
      logRetention,
    });
    // The live-connections function checks keys as the authorizer does (admin key hash, app keys).
    live.fn.addEnvironment('ADMIN_KEY_SECRET_ARN', adminKey.secretArn);
    live.fn.addToRolePolicy(readAdminKey);
    grantData(live.fn, 'liveConnections');
    // The WebSocket stage's execution logs need the API Gateway account's CloudWatch role.
    const apiAccount = api.api.node.tryFindChild('Account');
    if (apiAccount) live.stage.node.addDependency(apiAccount);

    // Things of this stack only: two stacks in one account never share a simulator thing.
    const simulatorThingPrefix = `${this.stackName}-sim-`;
    // Device onboarding by claim (ADR 0018): provisioning template, pre-provisioning hook over the
    // registry, claim certificate limited to the provisioning topics.
    const onboarding = new DeviceOnboarding(this, 'Onboarding', {
      devicePolicyName: iot.policy.ref,
      thingTypeName: iot.thingType.ref,
      hook: nodeFunction(this, 'ProvisioningHookFunction', {
        entry: entry(ONBOARDING_ENTRIES.hook),
        memoryMb: 256,
        timeoutSeconds: 5,
        description: 'Dualpath pre-provisioning hook: checks (or registers) the device in the registry',
        logRetention,
        environment: {
          ...tablesEnv,
          TELEMETRY_BACKEND: s.telemetry,
          POWERTOOLS_SERVICE_NAME: 'provisioning-hook',
          SELF_REGISTER_TYPES: selfRegisterTypes(s),
          SELF_REGISTER_ID_PREFIX: selfRegisterIdPrefix(s, simulatorThingPrefix),
        },
      }),
      claimFunction: nodeFunction(this, 'ClaimCredentialsFunction', {
        entry: entry(ONBOARDING_ENTRIES.claim),
        memoryMb: 256,
        timeoutSeconds: 30,
        description: 'Makes the claim key (kept in its secret) and the CSR of the claim certificate',
        logRetention,
        environment: {},
      }),
    });
    const hookRow =
      selfRegisterTypes(s) === 'none'
        ? DYNAMODB_ACCESS.provisioningHook
        : withAccess(DYNAMODB_ACCESS.provisioningHook, SELF_REGISTER_ACCESS);
    for (const st of dynamoStatements(hookRow, tableArn)) onboarding.hook.addToRolePolicy(st);
    // Rules and alerts (ADR 0016): alert topic and bus, the rules clock; evaluation on in every function.
    const alerts = new Alerts(this, 'Alerts', {
      clockEntry: entry('functions/rules-clock/handler.ts'),
      environment: common,
      logRetention,
    });
    for (const p of paths) alerts.attach(p.fn);
    alerts.attach(apiFn, { delivers: false });
    grantData(alerts.clock, 'rulesClock');
    live.addPublisher(alerts.clock);
    // Batch operations (ADR 0022): the worker on a schedule; the API serves /operations.
    const operations = new Operations(this, 'Operations', {
      workerEntry: entry('functions/operations-worker/handler.ts'),
      environment: common,
      logRetention,
    });
    grantData(operations.worker, 'operationsWorker');
    live.addPublisher(operations.worker);
    // Firmware packages in S3 (ADR 0022): uploaded and served through the API, signed by the worker.
    const firmware = new FirmwarePackages(this, 'Firmware');
    firmware.attach(apiFn, 'api', api.baseUrl);
    firmware.attach(operations.worker, 'operationsWorker', api.baseUrl);

    // The fleet simulator is opt-in (ADR 0014): its container image is the only part of the stack
    // that needs a Docker engine at deploy time, so a plain `cdk deploy` has none of it. Its devices
    // onboard through the template above (ADR 0018).
    const simulator =
      s.simulatorTasks > 0
        ? new SimulatorService(this, 'Simulator', {
            repoRoot: REPO_ROOT,
            desiredCount: s.simulatorTasks,
            devices: s.simulatorDevices,
            rate: s.simulatorRate,
            thingPrefix: simulatorThingPrefix,
            iotEndpoint,
            ...(iot.lwm2mRuleName ? { lwm2mIngestRule: iot.lwm2mRuleName } : {}),
            onboarding,
            logRetention,
          })
        : undefined;
    simulator?.node.addDependency(iot);

    // ADR 0024: Timestream's rejection reports are read and counted, never left unwatched.
    const magneticRejects = timestream
      ? new MagneticRejectsReader(this, 'MagneticRejects', {
          bucket: timestream.rejectsBucket,
          entry: entry('functions/magnetic-rejects/handler.ts'),
          logRetention,
        })
      : undefined;

    acknowledgeFindings(this, {
      functions: [
        ...paths.map((p) => p.fn),
        apiFn,
        authorizerFn,
        onboarding.hook,
        onboarding.claimFunction,
        alerts.clock,
        operations.worker,
        live.fn,
        dashboard.fn,
        ...(magneticRejects ? [magneticRejects.fn] : []),
      ],
      publishers: [
        ...paths.map((p) => ({ fn: p.fn, topics: IOT_PUBLISH[p.key] })),
        { fn: apiFn, topics: IOT_PUBLISH.api },
        { fn: operations.worker, topics: IOT_PUBLISH.operationsWorker },
      ],
      timestreamFunctions: timestream
        ? [
            ...paths.filter((p) => TIMESTREAM_ACCESS[p.key]).map((p) => p.fn),
            ...(TIMESTREAM_ACCESS.api ? [apiFn] : []),
          ]
        : [],
      queues: [iot.errorQueue],
      archives: paths.map((p) => ({ fn: p.fn, bucket: p.archive })),
      secrets: [adminKey, firmware.urlKey],
      firmware: { bucket: firmware.bucket, prefix: FIRMWARE_PREFIX, users: [apiFn, operations.worker] },
      api: api.api,
      publicMethods: [...api.publicMethods, ...dashboard.methods],
      proxyMethod: api.proxyMethod,
      endpointLookup: endpoint,
      ...(simulator ? { simulator } : {}),
      ...(timestream ? { timestream } : {}),
    });
    acknowledgeOnboardingFindings(onboarding);

    const monitoring = new Monitoring(this, 'Monitoring', {
      namePrefix: `${this.stackName}-${this.region}`,
      paths,
      api: apiFn,
      ruleErrorQueue: iot.errorQueue,
      iteratorAgeAlarmMs: 60_000,
      // ADR 0020: alarms on what users feel.
      apiStage: api.api.deploymentStage,
      storeTables: [
        ...(['registry', 'state', 'events'] as const).map((t) => tables.get(t)),
        ...(telemetryTable ? [telemetryTable] : []),
        // A throttled connections table means dashboards stop receiving pushes.
        live.table,
      ],
      ...(timestream
        ? { timestream: { databaseName: timestream.databaseName, tableName: timestream.tableName } }
        : {}),
      ...(magneticRejects ? { magneticRejectsService: MAGNETIC_REJECTS_SERVICE } : {}),
      liveApi: { apiId: live.api.apiId, stageName: live.stage.stageName },
      backgroundFunctions: [
        authorizerFn,
        operations.worker,
        alerts.clock,
        live.fn,
        onboarding.hook,
        onboarding.claimFunction,
        dashboard.fn,
        ...(magneticRejects ? [magneticRejects.fn] : []),
      ],
    });

    new CfnOutput(this, 'ApiUrl', { value: api.api.url });
    new CfnOutput(this, 'DashboardUrl', {
      description: 'The Dualpath dashboard (asks for an API key; live updates over LiveUrl)',
      value: api.api.url,
    });
    new CfnOutput(this, 'LiveUrl', {
      description:
        "Live updates (WebSocket): new WebSocket(url + '?device=<id>&kinds=reading,alert', ['dualpath', key])",
      value: live.url,
    });
    new CfnOutput(this, 'AdminKeySecretArn', { value: adminKey.secretArn });
    new CfnOutput(this, 'AdminKeyCommand', {
      description: 'Prints the admin API key',
      value: `aws secretsmanager get-secret-value --secret-id ${adminKey.secretArn} --query SecretString --output text`,
    });
    new CfnOutput(this, 'AlarmTopicArn', { value: monitoring.alarmTopic.topicArn });
    // The on-failure archives `dualpath redrive --from` reads (ADR 0017, docs/deploy.md runbook).
    for (const p of paths) {
      new CfnOutput(this, `${p.key === 'sparkplugIngest' ? 'Sparkplug' : 'Lwm2m'}FailureArchive`, {
        description: `${p.title}: batches the stream gave up on, with their records (dualpath redrive)`,
        value: p.archive.bucketName,
      });
    }
    new CfnOutput(this, 'AlertTopicArn', { value: alerts.topic.topicArn });
    new CfnOutput(this, 'AlertEventBusName', { value: alerts.bus.eventBusName });
    new CfnOutput(this, 'IotEndpoint', { value: iotEndpoint });
    new CfnOutput(this, 'DevicePolicyName', { value: iot.policy.ref });
    if (iot.lwm2mRuleName) {
      new CfnOutput(this, 'Lwm2mIngestRule', {
        description:
          'Devices publish LwM2M uplinks by Basic Ingest to $aws/rules/<this>/lwm2m/rd/<endpoint> (never echoed; ADR 0024); dualpath simulate --lwm2m-ingest-rule',
        value: iot.lwm2mRuleName,
      });
    }
    new CfnOutput(this, 'ThingTypeName', { value: iot.thingType.ref });
    new CfnOutput(this, 'TelemetryStoreName', {
      value: telemetryTable
        ? telemetryTable.tableName
        : timestream
          ? `${timestream.databaseName}.${timestream.tableName}`
          : 'none',
      description: `Telemetry store (${s.telemetry})`,
    });
    for (const d of monitoring.dashboards) {
      new CfnOutput(this, `Dashboard${d.node.id.replace(/Dashboard$/, '')}`, {
        value: `https://console.aws.amazon.com/cloudwatch/home?region=${Aws.REGION}#dashboards/dashboard/${d.dashboardName}`,
      });
    }
    new CfnOutput(this, 'ProvisioningTemplateName', { value: onboarding.templateName });
    new CfnOutput(this, 'ClaimCertificateId', { value: onboarding.claimCertificateId });
    new CfnOutput(this, 'ClaimKeySecretArn', { value: onboarding.claimSecret.secretArn });
  }
}
