/**
 * The local AWS side: kinesalite (Kinesis API, in memory unless asked to persist) and dynalite
 * (DynamoDB API, persisted under the data directory so the registry and protocol state survive a
 * restart), each in its own child process (emulator-process.mjs: their CPU work stays off the
 * handlers' event loop) on a free 127.0.0.1 port, with the streams and tables of infra/pipeline.ts created
 * idempotently and awaited until ACTIVE. When external endpoints are configured (AWS_ENDPOINT_URL,
 * AWS_ENDPOINT_URL_KINESIS, AWS_ENDPOINT_URL_DYNAMODB — e.g. LocalStack), that service's emulator is
 * not started; its resources are only ensured.
 */
import { fork } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  CreateTableCommand,
  DescribeTableCommand,
  type DynamoDBClient,
  UpdateTimeToLiveCommand,
} from '@aws-sdk/client-dynamodb';
import {
  CreateStreamCommand,
  DescribeStreamSummaryCommand,
  IncreaseStreamRetentionPeriodCommand,
  type KinesisClient,
  StartStreamEncryptionCommand,
} from '@aws-sdk/client-kinesis';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { pipeline, type StreamDef, type StreamKey, type TableDef, type TableKey } from '../pipeline.js';
import {
  type CallCounts,
  createKinesisClient,
  type ExternalEndpoints,
  endpointsFromEnv,
  LOCAL_REGION,
} from './aws-clients.js';
import { type DynamoCallHook, localDynamoClients } from './dynamo-wire.js';
import { type KinesisRecords, sdkRecords, wireRecords } from './kinesis-records.js';

export interface EmulatorOptions {
  /** Data directory: dynalite persists under `<dataDir>/dynamodb`. Without it, everything is in memory. */
  dataDir?: string;
  /** Also persist Kinesis (`<dataDir>/kinesis`, LevelDB). Default false: in memory. */
  persistKinesis?: boolean;
  /** Explicit external endpoints; default: read from `env`. */
  endpoints?: ExternalEndpoints;
  /** Default process.env. */
  env?: NodeJS.ProcessEnv;
  streams?: Record<StreamKey, StreamDef>;
  tables?: Record<TableKey, TableDef>;
  /** Physical table names; default `dualpath-<key>`. */
  tableName?: (key: TableKey) => string;
  /** Region for the clients (default AWS_REGION or us-east-1). */
  region?: string;
  /** What could not be applied on the target (e.g. TTL on dynalite). */
  onNotice?: (message: string) => void;
  /** Counters of the clients' calls by operation (efficiency figures). */
  calls?: { kinesis?: CallCounts; dynamodb?: CallCounts };
}

export interface StreamInfo {
  name: string;
  arn: string;
  /** Changes when the stream is recreated: event-source checkpoints are only valid for one incarnation. */
  createdAt: number;
}

export interface LocalEmulators {
  endpoints: { kinesis: string; dynamodb: string };
  /** Which services run in this process (false: external endpoint). */
  embedded: { kinesis: boolean; dynamodb: boolean };
  /** Whether stream contents survive a restart. */
  kinesisPersistent: boolean;
  streams: Record<StreamKey, StreamInfo>;
  streamNames: Record<StreamKey, string>;
  tableNames: Record<TableKey, string>;
  kinesis: KinesisClient;
  /** PutRecords/GetRecords, the hot path: plain wire calls to the embedded kinesalite, else the SDK client. */
  records: KinesisRecords;
  dynamodb: DynamoDBClient;
  /** The adapters' client (wire calls to the embedded dynalite; see dynamo-wire.ts). */
  doc: DynamoDBDocumentClient;
  /** Adds a hook around every DynamoDB call of `doc` and `dynamodb` (fault injection). */
  hookDynamo(h: DynamoCallHook): void;
  /** Process ids of the embedded emulators. */
  pids: number[];
  /** Destroys the clients and closes the embedded emulators. */
  stop(): Promise<void>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** An emulator running in its own process. */
interface EmulatorProcess {
  endpoint: string;
  pid: number;
  stop(): Promise<void>;
}

/** Starts kinesalite or dynalite (persisted at `path`) in a child process on a free 127.0.0.1 port. */
async function startEmulatorProcess(
  kind: 'kinesalite' | 'dynalite',
  path?: string,
): Promise<EmulatorProcess> {
  const entry = fileURLToPath(new URL('./emulator-process.mjs', import.meta.url));
  const child = fork(entry, path ? [kind, path] : [kind], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const port = await new Promise<number>((resolve, reject) => {
    child.once('message', (m) => resolve((m as { port: number }).port));
    child.once('exit', (code) => reject(new Error(`${kind} exited with code ${code} before listening`)));
  });
  return {
    endpoint: `http://127.0.0.1:${port}`,
    pid: child.pid ?? -1,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        // It ignores signals (a group-wide SIGTERM must not stop it before the stack has drained).
        if (child.connected) child.send({ stop: true });
        const kill = setTimeout(() => child.kill('SIGKILL'), 5000);
        await exited;
        clearTimeout(kill);
      }
    },
  };
}

function isName(error: unknown, ...names: string[]): boolean {
  return error instanceof Error && names.includes(error.name);
}

/** Creates the stream if missing and waits until ACTIVE; applies retention and encryption where supported. */
export async function ensureStream(
  client: KinesisClient,
  def: Pick<StreamDef, 'name' | 'shardCount'> & Partial<StreamDef>,
  onNotice: (message: string) => void = () => {},
): Promise<StreamInfo> {
  try {
    await client.send(new DescribeStreamSummaryCommand({ StreamName: def.name }));
  } catch (error) {
    if (!isName(error, 'ResourceNotFoundException')) throw error;
    try {
      await client.send(new CreateStreamCommand({ StreamName: def.name, ShardCount: def.shardCount }));
    } catch (e) {
      if (!isName(e, 'ResourceInUseException')) throw e; // created concurrently: fine
    }
  }
  const summary = async () => {
    for (let i = 0; i < 600; i++) {
      const d = (await client.send(new DescribeStreamSummaryCommand({ StreamName: def.name })))
        .StreamDescriptionSummary;
      if (d?.StreamStatus === 'ACTIVE') return d;
      await sleep(50);
    }
    throw new Error(`stream ${def.name} did not become ACTIVE within 30 s`);
  };
  let d = await summary();
  if (def.retentionHours !== undefined && (d.RetentionPeriodHours ?? 24) < def.retentionHours) {
    await client.send(
      new IncreaseStreamRetentionPeriodCommand({
        StreamName: def.name,
        RetentionPeriodHours: def.retentionHours,
      }),
    );
    d = await summary();
  }
  if (def.encrypted && d.EncryptionType !== 'KMS') {
    try {
      await client.send(
        new StartStreamEncryptionCommand({
          StreamName: def.name,
          EncryptionType: 'KMS',
          KeyId: 'alias/aws/kinesis',
        }),
      );
      d = await summary();
    } catch (error) {
      onNotice(`stream ${def.name}: encryption at rest not applied here (${(error as Error).name})`);
    }
  }
  return { name: def.name, arn: d.StreamARN ?? '', createdAt: d.StreamCreationTimestamp?.getTime() ?? 0 };
}

/** Creates the table if missing (key schema and GSIs from the definition) and waits until ACTIVE. */
export async function ensureTable(
  client: DynamoDBClient,
  name: string,
  def: TableDef,
  onNotice: (message: string) => void = () => {},
): Promise<void> {
  let created = false;
  try {
    await client.send(new DescribeTableCommand({ TableName: name }));
  } catch (error) {
    if (!isName(error, 'ResourceNotFoundException')) throw error;
    const attrs = new Map<string, 'S' | 'N' | 'B'>([[def.partitionKey.name, def.partitionKey.type]]);
    if (def.sortKey) attrs.set(def.sortKey.name, def.sortKey.type);
    for (const g of def.gsis ?? []) {
      attrs.set(g.partitionKey, 'S');
      attrs.set(g.sortKey, 'S');
    }
    try {
      await client.send(
        new CreateTableCommand({
          TableName: name,
          BillingMode: 'PAY_PER_REQUEST',
          KeySchema: [
            { AttributeName: def.partitionKey.name, KeyType: 'HASH' },
            ...(def.sortKey ? [{ AttributeName: def.sortKey.name, KeyType: 'RANGE' as const }] : []),
          ],
          AttributeDefinitions: [...attrs].map(([AttributeName, AttributeType]) => ({
            AttributeName,
            AttributeType,
          })),
          ...(def.gsis && def.gsis.length > 0
            ? {
                GlobalSecondaryIndexes: def.gsis.map((g) => ({
                  IndexName: g.name,
                  KeySchema: [
                    { AttributeName: g.partitionKey, KeyType: 'HASH' as const },
                    { AttributeName: g.sortKey, KeyType: 'RANGE' as const },
                  ],
                  Projection: { ProjectionType: 'ALL' as const },
                })),
              }
            : {}),
        }),
      );
      created = true;
    } catch (e) {
      if (!isName(e, 'ResourceInUseException')) throw e;
    }
  }
  for (let i = 0; ; i++) {
    const t = (await client.send(new DescribeTableCommand({ TableName: name }))).Table;
    const gsisActive = (t?.GlobalSecondaryIndexes ?? []).every(
      (g) => (g.IndexStatus ?? 'ACTIVE') === 'ACTIVE',
    );
    if (t?.TableStatus === 'ACTIVE' && gsisActive) break;
    if (i >= 600) throw new Error(`table ${name} did not become ACTIVE within 30 s`);
    await sleep(50);
  }
  if (created && def.ttlAttribute) {
    try {
      await client.send(
        new UpdateTimeToLiveCommand({
          TableName: name,
          TimeToLiveSpecification: { AttributeName: def.ttlAttribute, Enabled: true },
        }),
      );
    } catch (error) {
      // dynalite has no TTL: items keep their expiresAt and readers treat expired items as absent.
      onNotice(`table ${name}: TTL on ${def.ttlAttribute} not available here (${(error as Error).name})`);
    }
  }
}

/** Starts what is not external, then ensures every stream and table of the pipeline. */
export async function startEmulators(o: EmulatorOptions = {}): Promise<LocalEmulators> {
  const external = o.endpoints ?? endpointsFromEnv(o.env ?? process.env);
  const notice = o.onNotice ?? (() => {});
  const children: EmulatorProcess[] = [];
  const stopChildren = async () => {
    await Promise.all(children.splice(0).map((c) => c.stop()));
  };

  try {
    let kinesisEndpoint = external.kinesis;
    const kinesisPersistent = kinesisEndpoint !== undefined || (o.persistKinesis === true && !!o.dataDir);
    let dynamoEndpoint = external.dynamodb;
    const kinesisPath = o.persistKinesis && o.dataDir ? join(o.dataDir, 'kinesis') : undefined;
    const dynamoPath = o.dataDir ? join(o.dataDir, 'dynamodb') : undefined;
    for (const path of [kinesisPath, dynamoPath]) if (path) mkdirSync(path, { recursive: true });
    const [k, d] = await Promise.all([
      kinesisEndpoint ? undefined : startEmulatorProcess('kinesalite', kinesisPath),
      dynamoEndpoint ? undefined : startEmulatorProcess('dynalite', dynamoPath),
    ]);
    for (const c of [k, d]) if (c) children.push(c);
    kinesisEndpoint ??= k!.endpoint;
    dynamoEndpoint ??= d!.endpoint;

    const region = o.region;
    const kinesis = createKinesisClient({
      endpoint: kinesisEndpoint,
      unsigned: k !== undefined,
      ...(region ? { region } : {}),
      ...(o.calls?.kinesis ? { calls: o.calls.kinesis } : {}),
    });
    const wire =
      k !== undefined
        ? wireRecords({
            endpoint: kinesisEndpoint,
            region: region ?? process.env.AWS_REGION ?? LOCAL_REGION,
            ...(o.calls?.kinesis ? { calls: o.calls.kinesis } : {}),
          })
        : undefined;
    const records = wire ?? sdkRecords(kinesis);
    const dynamo = localDynamoClients({
      endpoint: dynamoEndpoint,
      embedded: d !== undefined,
      ...(region ? { region } : {}),
      ...(o.calls?.dynamodb ? { calls: o.calls.dynamodb } : {}),
    });

    const streamDefs = o.streams ?? pipeline.streams;
    const streams = {} as Record<StreamKey, StreamInfo>;
    for (const key of Object.keys(streamDefs) as StreamKey[])
      streams[key] = await ensureStream(kinesis, streamDefs[key], notice);

    const tableDefs = o.tables ?? pipeline.tables;
    const tableName = o.tableName ?? ((key: TableKey) => `dualpath-${key}`);
    const tableNames = {} as Record<TableKey, string>;
    for (const key of Object.keys(tableDefs) as TableKey[]) {
      tableNames[key] = tableName(key);
      await ensureTable(dynamo.client, tableNames[key], tableDefs[key], notice);
    }

    return {
      endpoints: { kinesis: kinesisEndpoint, dynamodb: dynamoEndpoint },
      embedded: { kinesis: external.kinesis === undefined, dynamodb: external.dynamodb === undefined },
      kinesisPersistent,
      streams,
      streamNames: Object.fromEntries(Object.entries(streams).map(([k, s]) => [k, s.name])) as Record<
        StreamKey,
        string
      >,
      tableNames,
      kinesis,
      records,
      dynamodb: dynamo.client,
      doc: dynamo.doc,
      hookDynamo: dynamo.hook,
      pids: children.map((c) => c.pid),
      async stop() {
        kinesis.destroy();
        wire?.destroy();
        dynamo.destroy();
        await stopChildren();
      },
    };
  } catch (error) {
    await stopChildren();
    throw error;
  }
}
