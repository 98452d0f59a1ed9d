/**
 * Least-privilege data access of every function, in ONE table: the exact DynamoDB actions each
 * function calls on each table, read from the adapters it is built from (functions/adapters/dynamo-*.ts)
 * and the routes/processors that call them. The stack turns each row into one IAM statement per
 * (function, table); nothing else grants DynamoDB access. Adjust a row when an adapter starts or stops
 * using an action — the deploy harness fails on an action granted but unused, or used but not granted.
 *
 * IAM notes: TransactWriteItems has no action of its own (its Put/Update/Delete items are authorized
 * as PutItem/UpdateItem/DeleteItem); neither has BatchExecuteStatement (its statements are authorized
 * as PartiQLInsert/PartiQLUpdate...); a Query/Scan on an index needs the index ARN
 * (`registry/index/gsi1`).
 */
import { Aws } from 'aws-cdk-lib';
import { PolicyStatement } from 'aws-cdk-lib/aws-iam';

export type DynamoAction =
  | 'GetItem'
  | 'BatchGetItem'
  | 'Query'
  | 'Scan'
  | 'PutItem'
  | 'UpdateItem'
  | 'DeleteItem'
  | 'BatchWriteItem'
  | 'ConditionCheckItem'
  | 'PartiQLInsert'
  | 'PartiQLUpdate';

/** A table of the stack, or one of its indexes (`<table>/index/<name>`). */
export type TableTarget = 'registry' | 'registry/index/gsi1' | 'state' | 'events' | 'telemetry' | 'live';

export type FunctionKey =
  | 'sparkplugIngest'
  | 'lwm2mIngest'
  | 'api'
  | 'authorizer'
  | 'provisioningHook'
  | 'rulesClock'
  | 'operationsWorker'
  | 'liveConnections';

export type AccessTable = Record<FunctionKey, Partial<Record<TableTarget, readonly DynamoAction[]>>>;

export const DYNAMODB_ACCESS: AccessTable = {
  sparkplugIngest: {
    // Enricher: getDevices (BatchGet), getTypeWithApps (Query), lastSeen and protocols (Update);
    // auto-registration adds AUTO_REGISTER_ACCESS.
    registry: ['BatchGetItem', 'Query', 'UpdateItem'],
    // Host state through the write-back cache: getNode/getDevice (Get), prefetch/getVersions
    // (BatchGet), putNode/putDevice (conditional Put).
    state: ['GetItem', 'BatchGetItem', 'PutItem'],
    // Event log append.
    events: ['BatchWriteItem'],
    // DynamoTelemetryStore.write: catalog/frame/latest (Get + conditional Put), late-chunk marks (Update).
    telemetry: ['GetItem', 'PutItem', 'UpdateItem'],
  },
  lwm2mIngest: {
    // Enricher as above; completingCommands → completeCommand (Update).
    registry: ['BatchGetItem', 'Query', 'UpdateItem'],
    // Registrations: getMany (BatchGet; the write-back cache prefetches every endpoint of a batch), put (Put), delete (Delete); pending requests:
    // take (Delete), put (Put, a response put back), deleteEndpoint (Query + Delete).
    state: ['BatchGetItem', 'PutItem', 'DeleteItem', 'Query'],
    events: ['BatchWriteItem'],
    telemetry: ['GetItem', 'PutItem', 'UpdateItem'],
  },
  api: {
    // Devices, types, applications, commands: get (Get), listApplications by type (BatchGet),
    // getTypeWithApps/listCommands (Query), listDevices without a type and /health (Scan), puts and
    // TransactWriteItems Put items (Put), updateDevice/command status (Update), deletes and transaction
    // Delete items (Delete). (The registry's BatchWrite fallback runs only where an endpoint has no
    // transactions — never in AWS — so it is not granted.)
    // Batch operations (ADR 0022): an operation's targets are written with BatchWrite.
    registry: [
      'GetItem',
      'BatchGetItem',
      'Query',
      'Scan',
      'PutItem',
      'UpdateItem',
      'DeleteItem',
      'BatchWriteItem',
    ],
    // listDevices by type, listDeviceTypes, listApplications (gsi1).
    'registry/index/gsi1': ['Query'],
    // Sparkplug node/device views (Get); LwM2M requests: registration get (Get) and observation
    // cancel (Put), token allocation (Update), pending request (Put).
    state: ['GetItem', 'PutItem', 'UpdateItem'],
    // Event listing.
    events: ['Query'],
    // DynamoTelemetryStore reads: device catalog/latest and frames (Query), stale catalog re-read
    // (Get), latest frames (BatchGet), bucket chunk rollups written on read (Put).
    telemetry: ['BatchGetItem', 'Query', 'PutItem'],
  },
  authorizer: {
    // findApplicationByKeyHash: key lookup item, then the application item (Get).
    registry: ['GetItem'],
  },
  rulesClock: {
    // Rules and alerts (functions/adapters/dynamo-rules.ts): alert open (conditional Put), resolve and
    // markDispatched of a transition another store recorded (Update), transition record (conditional
    // Put) — the alert write and the record of a transition in one TransactWriteItems —, markDispatched
    // of the ones it recorded or listed (BatchWrite).
    registry: ['PutItem', 'UpdateItem', 'BatchWriteItem'],
    // The rule list and the outbox of undelivered transitions (gsi1).
    'registry/index/gsi1': ['Query'],
    // Rule state: listDue (Query per shard); the states it writes exist (it finds them due), so its
    // conditional writes are PartiQL UPDATEs in BatchExecuteStatement (amendment 12).
    state: ['Query', 'PartiQLUpdate'],
    // An absence state written behind: the readings after it (ADR 0016 amendment 10; consistent Query).
    telemetry: ['Query'],
  },
  operationsWorker: {
    // Batch operations (ADR 0022, functions/adapters/dynamo-operations.ts): operation and command reads
    // and getDevice (Get), targets and the active markers (Query), operation replace and putCommand
    // (Put), targets and active markers (BatchWrite), Sparkplug commands completed at once (Update).
    registry: ['GetItem', 'Query', 'PutItem', 'BatchWriteItem', 'UpdateItem'],
    // LwM2M requests: token allocation (Update), pending request (Put).
    state: ['UpdateItem', 'PutItem'],
  },
  liveConnections: {
    // Live updates (ADR 0023, functions/live-connections): an application key's lookup and the
    // subscription's getDevice (Get).
    registry: ['GetItem'],
    // The connection item: $connect and subscribe (Put), subscribe reads it back (Get), $disconnect
    // (Delete) — functions/adapters/dynamo-live-connections.ts.
    live: ['PutItem', 'GetItem', 'DeleteItem'],
  },
  provisioningHook: {
    // Pre-provisioning hook (ADR 0018): getDevice, and getDeviceType for a self-registering device
    // (Get); SELF_REGISTER_ACCESS adds the writes when some type may register itself.
    registry: ['GetItem'],
  },
};

/**
 * With self-registering types (the simulator's, or any with `autoRegister`), the hook also registers
 * the unknown device and, if missing, its type: conditional putDevice/putDeviceType (Put).
 */
export const SELF_REGISTER_ACCESS: Partial<Record<TableTarget, readonly DynamoAction[]>> = {
  registry: ['PutItem'],
};

/**
 * With rules on (ADR 0016), the ingest functions also evaluate them: the rule list (gsi1 Query), rule
 * state (BatchGet; conditional PartiQL INSERT / UPDATE in BatchExecuteStatement: amendment 12; the
 * devices' claims, BatchWrite: amendment 11), alert transitions (conditional Put, Update, in
 * TransactWriteItems or one by one; marked dispatched by BatchWrite), and the readings a rule state
 * written behind has not seen (amendment 10: the telemetry table's device catalog and frames,
 * consistent Query; no grant without the table).
 */
export const RULES_INGEST_ACCESS: Partial<Record<TableTarget, readonly DynamoAction[]>> = {
  registry: ['PutItem', 'UpdateItem', 'BatchWriteItem'],
  'registry/index/gsi1': ['Query'],
  state: ['BatchGetItem', 'PartiQLInsert', 'PartiQLUpdate', 'BatchWriteItem'],
  telemetry: ['Query'],
};

/**
 * Live updates (ADR 0023): the functions that publish to WebSocket connections list them (one Query of
 * the connections partition per cache TTL) and delete the ones API Gateway answers 410 Gone for; they
 * also get `execute-api:ManageConnections` on the stage's `POST @connections/*` (constructs/live.ts).
 */
export const LIVE_PUBLISH_ACCESS: Partial<Record<TableTarget, readonly DynamoAction[]>> = {
  live: ['Query', 'DeleteItem'],
};
export const LIVE_PUBLISHERS: readonly FunctionKey[] = [
  'sparkplugIngest',
  'lwm2mIngest',
  'rulesClock',
  'operationsWorker',
];

/** Who delivers alert transitions (ADR 0016): SNS Publish on the alert topic, PutEvents on the alert bus. */
export const ALERT_DELIVERY: readonly FunctionKey[] = ['sparkplugIngest', 'lwm2mIngest', 'rulesClock'];

export function alertDeliveryStatements(topicArn: string, eventBusArn: string): PolicyStatement[] {
  return [
    new PolicyStatement({ sid: 'PublishAlerts', actions: ['sns:Publish'], resources: [topicArn] }),
    new PolicyStatement({ sid: 'PutAlertEvents', actions: ['events:PutEvents'], resources: [eventBusArn] }),
  ];
}

/**
 * With `autoRegister` on, the ingest functions also create unknown devices (and the default device
 * type): getDevice/getDeviceType (Get) and conditional putDevice/putDeviceType (Put).
 */
export const AUTO_REGISTER_ACCESS: Partial<Record<TableTarget, readonly DynamoAction[]>> = {
  registry: ['GetItem', 'PutItem'],
};

/** A row plus extra actions per target (merged, duplicates dropped by dynamoStatements). */
export function withAccess(
  row: Partial<Record<TableTarget, readonly DynamoAction[]>>,
  extra: Partial<Record<TableTarget, readonly DynamoAction[]>>,
): Partial<Record<TableTarget, readonly DynamoAction[]>> {
  const out: Partial<Record<TableTarget, readonly DynamoAction[]>> = { ...row };
  for (const [t, actions] of Object.entries(extra) as Array<[TableTarget, readonly DynamoAction[]]>)
    out[t] = [...(out[t] ?? []), ...actions];
  return out;
}

/**
 * The IAM statements of one function's row: one per table target, resources resolved by `arnOf`
 * (table ARN tokens of the stack). Targets the stack does not have (telemetry when it is not in
 * DynamoDB) are skipped.
 */
export function dynamoStatements(
  row: Partial<Record<TableTarget, readonly DynamoAction[]>>,
  arnOf: (target: TableTarget) => string | undefined,
): PolicyStatement[] {
  const out: PolicyStatement[] = [];
  for (const [target, actions] of Object.entries(row) as Array<[TableTarget, readonly DynamoAction[]]>) {
    const arn = arnOf(target);
    if (arn === undefined || actions.length === 0) continue;
    out.push(
      new PolicyStatement({
        sid: `DynamoDB${target.replace(/[^A-Za-z0-9]/g, '')}`,
        actions: [...new Set(actions)].sort().map((a) => `dynamodb:${a}`),
        resources: [arn],
      }),
    );
  }
  return out;
}

/**
 * Timestream for LiveAnalytics (`telemetry=timestream` only): actions on the table per function.
 * TimestreamTelemetryStore writes with WriteRecords and reads with Query (IAM action `Select`); both
 * SDK clients discover their endpoint with DescribeEndpoints, which has no resource-level permission
 * and is granted on `*` to every function listed here.
 */
export const TIMESTREAM_ACCESS: Partial<Record<FunctionKey, readonly ('WriteRecords' | 'Select')[]>> = {
  sparkplugIngest: ['WriteRecords'],
  lwm2mIngest: ['WriteRecords'],
  api: ['Select'],
};

export function timestreamStatements(
  actions: readonly string[] | undefined,
  tableArn: string,
): PolicyStatement[] {
  if (!actions || actions.length === 0) return [];
  return [
    new PolicyStatement({
      sid: 'TimestreamTable',
      actions: actions.map((a) => `timestream:${a}`),
      resources: [tableArn],
    }),
    new PolicyStatement({
      sid: 'TimestreamEndpoints',
      actions: ['timestream:DescribeEndpoints'],
      resources: ['*'],
    }),
  ];
}

/** IoT data-plane topics each function publishes to (commands and responses to devices). */
export const IOT_PUBLISH: Record<
  'sparkplugIngest' | 'lwm2mIngest' | 'api' | 'operationsWorker',
  readonly string[]
> = {
  // Rebirth requests (NCMD Node Control/Rebirth) only.
  sparkplugIngest: ['spBv1.0/*/NCMD/*'],
  // LwM2M responses to Register/Update/De-register/Send.
  lwm2mIngest: ['lwm2m/rd/*'],
  // Commands: Sparkplug NCMD/DCMD and LwM2M requests.
  api: ['spBv1.0/*/NCMD/*', 'spBv1.0/*/DCMD/*', 'lwm2m/rd/*'],
  // Batch operations send the same commands as the API.
  operationsWorker: ['spBv1.0/*/NCMD/*', 'spBv1.0/*/DCMD/*', 'lwm2m/rd/*'],
};

export function iotPublishStatement(topics: readonly string[]): PolicyStatement {
  return new PolicyStatement({
    sid: 'IotPublishToDevices',
    actions: ['iot:Publish'],
    resources: topics.map((t) => `arn:${Aws.PARTITION}:iot:${Aws.REGION}:${Aws.ACCOUNT_ID}:topic/${t}`),
  });
}

/**
 * S3 objects a function reads, per function (ADR 0024): the magnetic-rejects function reads the
 * Timestream rejection reports (GetObject) in the rejects bucket, nothing else.
 */
export const S3_READ = {
  magneticRejects: ['GetObject'],
} as const satisfies Record<string, readonly 'GetObject'[]>;

export function s3ReadStatement(actions: readonly string[], bucketArn: string): PolicyStatement {
  return new PolicyStatement({
    sid: 'ReadReportObjects',
    actions: actions.map((a) => `s3:${a}`),
    resources: [`${bucketArn}/*`],
  });
}

/**
 * Firmware packages (ADR 0022): what each function does with the packages bucket, all under its
 * `firmware/` prefix, and the signing key's secret. The API uploads (PutObject), reads and lists
 * packages, and its role signs the 5-minute pre-signed GETs devices are redirected to (GetObject); the
 * operations worker reads a package's metadata (GetObject) and signs its download path.
 */
export type FirmwareUser = 'api' | 'operationsWorker';
export const FIRMWARE_ACCESS = {
  api: ['PutObject', 'GetObject', 'ListBucket'],
  operationsWorker: ['GetObject'],
} as const satisfies Record<FirmwareUser, readonly ('PutObject' | 'GetObject' | 'ListBucket')[]>;

export function firmwareStatements(
  actions: readonly ('PutObject' | 'GetObject' | 'ListBucket')[],
  bucketArn: string,
  prefix: string,
  secretArn: string,
): PolicyStatement[] {
  const objects = actions.filter((a) => a !== 'ListBucket');
  const out = [
    new PolicyStatement({
      sid: 'FirmwareObjects',
      actions: objects.map((a) => `s3:${a}`),
      resources: [`${bucketArn}/${prefix}*`],
    }),
    new PolicyStatement({
      sid: 'FirmwareUrlKey',
      actions: ['secretsmanager:GetSecretValue'],
      resources: [secretArn],
    }),
  ];
  if (actions.includes('ListBucket'))
    out.push(
      new PolicyStatement({
        sid: 'FirmwareList',
        actions: ['s3:ListBucket'],
        resources: [bucketArn],
        conditions: { StringLike: { 's3:prefix': [`${prefix}*`] } },
      }),
    );
  return out;
}
