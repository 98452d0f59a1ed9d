/**
 * The recording AWS endpoint every emulated Lambda talks to (through the standard
 * `AWS_ENDPOINT_URL_<SERVICE>` variables, and the IoT data endpoint the template resolves to it).
 * Each request is attributed to a function by the access key id of its SigV4 signature (every
 * function gets its own fake credentials) and recorded as {function, service, action, resource ARN};
 * then it is served:
 *   - DynamoDB: forwarded to dynalite (tables created from the template);
 *   - Secrets Manager GetSecretValue: the template's secrets, with generated values (PutSecretValue
 *     replaces a value);
 *   - IoT DescribeEndpoint: this endpoint's HTTPS address; IoT data plane Publish: recorded and
 *     handed to the scenario (devices answer commands through it);
 *   - Timestream write/query: endpoint discovery to this endpoint, WriteRecords accepted (kept),
 *     Query answered with no rows;
 *   - CloudFormation custom-resource responses (PUT to the ResponseURL) kept for the harness;
 *   - SNS Publish (query protocol) and EventBridge PutEvents: recorded and kept (alert deliveries);
 *   - API Gateway PostToConnection (ADR 0023): recorded as execute-api:ManageConnections on the
 *     connection's ARN and kept; 410 Gone for the connections the scenario marked gone;
 *   - S3 GetObject (path style): objects the scenario put (`putObject`, e.g. a Timestream rejection
 *     report, ADR 0024), NoSuchKey otherwise.
 * Anything else is an "unhandled request" the run reports as a failure.
 */
import { execFileSync } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import { type PartiqlWrite, readPartiqlWrite } from './partiql-writes.js';
import { ACCOUNT, REGION } from './template.js';

type Wire = Record<string, unknown>;

/** A single-item operation's error name as a BatchExecuteStatement statement's error code. */
function statementCode(name: string): string {
  const codes: Record<string, string> = {
    ValidationException: 'ValidationError',
    ThrottlingException: 'ThrottlingError',
    ResourceNotFoundException: 'ResourceNotFound',
    AccessDeniedException: 'AccessDenied',
  };
  return codes[name] ?? name.replace(/Exception$/, '');
}

export interface RecordedCall {
  /** The function's logical id. */
  function: string;
  service: string;
  /** IAM action, e.g. `dynamodb:GetItem`. */
  action: string;
  resource: string;
  /** `sdk`: made by the function's code; `service`: made by AWS on the function's behalf. */
  origin: 'sdk' | 'service';
  detail?: string;
  /** IAM request context keys of the call (e.g. `s3:prefix` of a ListBucket). */
  context?: Record<string, string>;
}

export interface Publish {
  function: string;
  topic: string;
  payload: Buffer;
  qos: number;
}

export interface EndpointOptions {
  dir: string;
  dynamoEndpoint: () => string;
  /** Table physical name → ARN; table names not listed are still forwarded (and recorded by name). */
  tableArn: (name: string) => string;
  secrets: Map<string, string>;
  onPublish: (p: Publish) => void;
  /** The template's WebSocket API (id and stage), for PostToConnection ARNs. */
  liveApi?: () => { apiId: string; stage: string } | undefined;
}

export class RecordingEndpoint {
  readonly calls: RecordedCall[] = [];
  readonly unhandled: string[] = [];
  readonly publishes: Publish[] = [];
  readonly timestreamWrites: Array<{ function: string; database: string; table: string; records: number }> =
    [];
  readonly cfnResponses = new Map<string, Record<string, unknown>>();
  /** S3 objects by `bucket/key` (what AWS services would have written; read by GetObject). */
  private readonly s3Objects = new Map<string, Buffer>();
  /** Alert deliveries (rules, ADR 0016): SNS messages and EventBridge entries, with the function. */
  readonly alertDeliveries: Array<{ function: string; via: 'sns' | 'events'; target: string; body: string }> =
    [];
  /** PostToConnection calls (ADR 0023), with the answer given. */
  readonly livePosts: Array<{ function: string; connectionId: string; data: string; status: number }> = [];
  /** Connections that answer 410 Gone (the client left). */
  readonly goneConnections = new Set<string>();
  readonly caFile: string;
  private readonly keys = new Map<string, string>();
  private httpServer!: http.Server;
  private httpsServer!: https.Server;
  private cfnServer: https.Server | undefined;
  httpPort = 0;
  httpsPort = 0;
  /**
   * A loopback address whose port 443 receives CloudFormation responses (presigned S3 URLs have no
   * port).
   */
  readonly cfnHost = `127.0.0.${2 + Math.floor(Math.random() * 250)}`;
  cfnError: string | undefined;

  constructor(private readonly o: EndpointOptions) {
    this.caFile = path.join(o.dir, 'endpoint-cert.pem');
  }

  /** Fake credentials for one function: its access key id identifies its requests. */
  credentialsFor(functionId: string): { accessKeyId: string; secretAccessKey: string; sessionToken: string } {
    const accessKeyId = `ASIAVERIFY${String(this.keys.size + 1).padStart(6, '0')}`;
    this.keys.set(accessKeyId, functionId);
    return { accessKeyId, secretAccessKey: 'verify-deploy-secret', sessionToken: `token-${functionId}` };
  }

  get httpUrl(): string {
    return `http://127.0.0.1:${this.httpPort}`;
  }

  /** host:port of the HTTPS listener (what IoT DescribeEndpoint answers). */
  get httpsAuthority(): string {
    return `localhost:${this.httpsPort}`;
  }

  recordService(call: Omit<RecordedCall, 'origin'>): void {
    this.calls.push({ ...call, origin: 'service' });
  }

  async start(): Promise<void> {
    const keyFile = path.join(this.o.dir, 'endpoint-key.pem');
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-keyout',
        keyFile,
        '-out',
        this.caFile,
        '-days',
        '2',
        '-subj',
        '/CN=localhost',
        '-addext',
        `subjectAltName=DNS:localhost,IP:127.0.0.1,IP:${this.cfnHost}`,
      ],
      { stdio: 'ignore' },
    );
    const handler = (req: http.IncomingMessage, res: http.ServerResponse) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        this.handle(req, Buffer.concat(chunks), res).catch((error: unknown) => {
          this.unhandled.push(`${req.method} ${req.url}: ${String(error)}`);
          if (!res.headersSent) res.writeHead(500, { 'content-type': 'application/json' });
          res.end(JSON.stringify({ message: String(error) }));
        });
      });
    };
    this.httpServer = http.createServer(handler);
    this.httpsServer = https.createServer(
      { key: fs.readFileSync(keyFile), cert: fs.readFileSync(this.caFile) },
      handler,
    );
    await new Promise<void>((r) => this.httpServer.listen(0, '127.0.0.1', r));
    await new Promise<void>((r) => this.httpsServer.listen(0, '127.0.0.1', r));
    this.httpPort = (this.httpServer.address() as AddressInfo).port;
    const cfn = https.createServer(
      { key: fs.readFileSync(keyFile), cert: fs.readFileSync(this.caFile) },
      handler,
    );
    await new Promise<void>((resolve) => {
      cfn.once('error', (error) => {
        this.cfnError = String(error);
        resolve();
      });
      cfn.listen(443, this.cfnHost, () => {
        this.cfnServer = cfn;
        resolve();
      });
    });
    this.httpsPort = (this.httpsServer.address() as AddressInfo).port;
  }

  async stop(): Promise<void> {
    this.httpServer.closeAllConnections();
    this.httpsServer.closeAllConnections();
    await new Promise<void>((r) => this.httpServer.close(() => r()));
    await new Promise<void>((r) => this.httpsServer.close(() => r()));
    if (this.cfnServer) {
      this.cfnServer.closeAllConnections();
      await new Promise<void>((r) => this.cfnServer!.close(() => r()));
    }
  }

  private caller(req: http.IncomingMessage): string {
    const auth = String(req.headers.authorization ?? '');
    // Signed in the Authorization header, or pre-signed in the query (X-Amz-Credential): the GET a
    // device makes with the URL a function signed is that function's call.
    const m =
      /Credential=([^/]+)\//.exec(auth) ??
      /^([^/]+)\//.exec(new URL(req.url ?? '/', 'http://local').searchParams.get('X-Amz-Credential') ?? '');
    return (m && this.keys.get(m[1]!)) ?? 'unknown-caller';
  }

  /** Objects under `bucket/prefix` (what functions and services wrote), for assertions. */
  objectKeys(bucket: string, prefix = ''): string[] {
    return [...this.s3Objects.keys()]
      .filter((k) => k.startsWith(`${bucket}/${prefix}`))
      .map((k) => k.slice(bucket.length + 1));
  }

  /** An object as an AWS service would write it (the scenario's Timestream rejection report). */
  putObject(bucket: string, key: string, body: Buffer): void {
    this.s3Objects.set(`${bucket}/${key}`, body);
  }

  private record(
    fn: string,
    service: string,
    action: string,
    resource: string,
    detail?: string,
    context?: Record<string, string>,
  ): void {
    this.calls.push({
      function: fn,
      service,
      action: `${service}:${action}`,
      resource,
      origin: 'sdk',
      ...(detail ? { detail } : {}),
      ...(context ? { context } : {}),
    });
  }

  private async handle(req: http.IncomingMessage, body: Buffer, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://local');
    const target = String(req.headers['x-amz-target'] ?? '');
    const fn = this.caller(req);
    const json = (status: number, value: unknown, type = 'application/x-amz-json-1.0') => {
      res.writeHead(status, { 'content-type': type });
      res.end(JSON.stringify(value));
    };

    if (req.method === 'PUT' && url.pathname.startsWith('/cfn-response/')) {
      this.cfnResponses.set(
        decodeURIComponent(url.pathname.slice('/cfn-response/'.length)),
        JSON.parse(body.toString()),
      );
      res.writeHead(200);
      res.end();
      return;
    }

    if (target.startsWith('DynamoDB_20120810.')) {
      const op = target.slice('DynamoDB_20120810.'.length);
      const input = JSON.parse(body.toString() || '{}') as Record<string, unknown>;
      this.recordDynamo(fn, op, input);
      if (op === 'TransactWriteItems' && (await this.transactWrite(req, input, res))) return;
      if (op === 'BatchExecuteStatement') return this.batchExecute(req, input, res);
      await this.forward(this.o.dynamoEndpoint(), req, body, res);
      return;
    }

    if (target.startsWith('secretsmanager.')) {
      const op = target.slice('secretsmanager.'.length);
      const input = JSON.parse(body.toString() || '{}') as { SecretId?: string };
      const id = String(input.SecretId ?? '');
      const arn = [...this.o.secrets.keys()].find((a) => a === id || a.split(':')[6]?.startsWith(`${id}-`));
      this.record(
        fn,
        'secretsmanager',
        op,
        arn ?? (id.startsWith('arn:') ? id : `arn:aws:secretsmanager:${REGION}:${ACCOUNT}:secret:${id}`),
      );
      if (op === 'PutSecretValue' && arn) {
        // A custom resource writing a secret it owns (the claim key, ADR 0018).
        this.o.secrets.set(arn, String((input as { SecretString?: unknown }).SecretString ?? ''));
        return json(
          200,
          { ARN: arn, Name: arn.split(':')[6], VersionId: 'v2', VersionStages: ['AWSCURRENT'] },
          'application/x-amz-json-1.1',
        );
      }
      if (op !== 'GetSecretValue') {
        this.unhandled.push(`${fn}: secretsmanager ${op} is not emulated`);
        return json(
          400,
          { __type: 'InvalidRequestException', message: `${op} is not emulated` },
          'application/x-amz-json-1.1',
        );
      }
      if (!arn) {
        return json(
          400,
          {
            __type: 'ResourceNotFoundException',
            message: `Secrets Manager can't find the specified secret: ${id}`,
          },
          'application/x-amz-json-1.1',
        );
      }
      return json(
        200,
        {
          ARN: arn,
          Name: arn.split(':')[6],
          SecretString: this.o.secrets.get(arn),
          VersionId: 'v1',
          VersionStages: ['AWSCURRENT'],
          CreatedDate: 1,
        },
        'application/x-amz-json-1.1',
      );
    }

    if (target.startsWith('Timestream_20181101.')) {
      const op = target.slice('Timestream_20181101.'.length);
      const input = JSON.parse(body.toString() || '{}') as Record<string, unknown>;
      if (op === 'DescribeEndpoints') {
        this.record(fn, 'timestream', op, '*');
        // The SDK swaps only the host name of the configured endpoint for the discovered Address
        // (scheme and port stay those of AWS_ENDPOINT_URL_TIMESTREAM_*): this endpoint's host.
        return json(200, { Endpoints: [{ Address: '127.0.0.1', CachePeriodInMinutes: 1440 }] });
      }
      if (op === 'WriteRecords') {
        const db = String(input.DatabaseName);
        const table = String(input.TableName);
        const n = Array.isArray(input.Records) ? input.Records.length : 0;
        this.record(
          fn,
          'timestream',
          op,
          `arn:aws:timestream:${REGION}:${ACCOUNT}:database/${db}/table/${table}`,
        );
        this.timestreamWrites.push({ function: fn, database: db, table, records: n });
        return json(200, { RecordsIngested: { Total: n, MemoryStore: n, MagneticStore: 0 } });
      }
      if (op === 'Query') {
        const sql = String(input.QueryString ?? '');
        const tables = [...sql.matchAll(/"([^"]+)"\s*\.\s*"([^"]+)"/g)];
        if (tables.length === 0)
          this.unhandled.push(`${fn}: Timestream Query names no "db"."table": ${sql.slice(0, 120)}`);
        for (const t of tables) {
          this.record(
            fn,
            'timestream',
            'Select',
            `arn:aws:timestream:${REGION}:${ACCOUNT}:database/${t[1]}/table/${t[2]}`,
          );
        }
        return json(200, {
          QueryId: 'local-query',
          Rows: [],
          ColumnInfo: [],
          QueryStatus: { ProgressPercentage: 100 },
        });
      }
      this.record(fn, 'timestream', op, '*');
      this.unhandled.push(`${fn}: Timestream ${op} is not emulated`);
      return json(400, { __type: 'ValidationException', message: `${op} is not emulated` });
    }

    // SNS (query protocol): Action=Publish&TopicArn=...&Message=...
    if (
      req.method === 'POST' &&
      String(req.headers['content-type'] ?? '').startsWith('application/x-www-form-urlencoded')
    ) {
      const form = new URLSearchParams(body.toString());
      const action = form.get('Action') ?? '';
      const topicArn = form.get('TopicArn') ?? '';
      this.record(fn, 'sns', action, topicArn || '*');
      if (action !== 'Publish' || !topicArn) {
        this.unhandled.push(`${fn}: SNS ${action} is not emulated`);
        res.writeHead(400, { 'content-type': 'text/xml' });
        res.end('<ErrorResponse><Error><Code>InvalidAction</Code></Error></ErrorResponse>');
        return;
      }
      this.alertDeliveries.push({
        function: fn,
        via: 'sns',
        target: topicArn,
        body: form.get('Message') ?? '',
      });
      res.writeHead(200, { 'content-type': 'text/xml' });
      res.end(
        `<PublishResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/"><PublishResult><MessageId>${crypto.randomUUID()}</MessageId></PublishResult><ResponseMetadata><RequestId>local</RequestId></ResponseMetadata></PublishResponse>`,
      );
      return;
    }

    // EventBridge (JSON 1.1): AWSEvents.PutEvents
    if (target.startsWith('AWSEvents.')) {
      const op = target.slice('AWSEvents.'.length);
      const input = JSON.parse(body.toString() || '{}') as { Entries?: Array<Record<string, unknown>> };
      if (op !== 'PutEvents') {
        this.record(fn, 'events', op, '*');
        this.unhandled.push(`${fn}: EventBridge ${op} is not emulated`);
        return json(
          400,
          { __type: 'ValidationException', message: `${op} is not emulated` },
          'application/x-amz-json-1.1',
        );
      }
      const entries = input.Entries ?? [];
      for (const e of entries) {
        const bus = String(e.EventBusName ?? 'default');
        const arn = bus.startsWith('arn:') ? bus : `arn:aws:events:${REGION}:${ACCOUNT}:event-bus/${bus}`;
        this.record(fn, 'events', 'PutEvents', arn);
        this.alertDeliveries.push({ function: fn, via: 'events', target: arn, body: String(e.Detail ?? '') });
      }
      return json(
        200,
        { FailedEntryCount: 0, Entries: entries.map(() => ({ EventId: crypto.randomUUID() })) },
        'application/x-amz-json-1.1',
      );
    }

    // IoT data plane Publish (REST): POST /topics/{topic}?qos=
    if (req.method === 'POST' && url.pathname.startsWith('/topics/')) {
      const topic = decodeURIComponent(url.pathname.slice('/topics/'.length));
      this.record(fn, 'iot', 'Publish', `arn:aws:iot:${REGION}:${ACCOUNT}:topic/${topic}`);
      const p: Publish = {
        function: fn,
        topic,
        payload: body,
        qos: Number(url.searchParams.get('qos') ?? 0),
      };
      this.publishes.push(p);
      json(200, {}, 'application/json');
      this.o.onPublish(p);
      return;
    }

    // API Gateway management API PostToConnection: POST /{stage}/@connections/{id}
    const conn = /^\/([^/]+)\/(?:@|%40)connections\/([^/]+)$/.exec(url.pathname);
    if (req.method === 'POST' && conn) {
      const stage = decodeURIComponent(conn[1]!);
      const id = decodeURIComponent(conn[2]!);
      const api = this.o.liveApi?.();
      if (!api || api.stage !== stage) {
        this.unhandled.push(`${fn}: PostToConnection on stage ${stage}, not the template's WebSocket stage`);
        return json(404, { message: 'Not Found' }, 'application/json');
      }
      this.record(
        fn,
        'execute-api',
        'ManageConnections',
        `arn:aws:execute-api:${REGION}:${ACCOUNT}:${api.apiId}/${stage}/POST/@connections/${id}`,
      );
      const status = this.goneConnections.has(id) ? 410 : 200;
      this.livePosts.push({ function: fn, connectionId: id, data: body.toString(), status });
      if (status === 410) {
        res.writeHead(410, { 'content-type': 'application/json', 'x-amzn-errortype': 'GoneException' });
        res.end(JSON.stringify({ message: null }));
        return;
      }
      res.writeHead(200);
      res.end();
      return;
    }

    // S3 PutObject, path style: PUT /{bucket}/{key}?x-id=PutObject
    if (req.method === 'PUT' && url.searchParams.get('x-id') === 'PutObject') {
      const [, bucket = '', ...rest] = url.pathname.split('/');
      const key = rest.map(decodeURIComponent).join('/');
      this.record(fn, 's3', 'PutObject', `arn:aws:s3:::${bucket}/${key}`);
      this.s3Objects.set(`${bucket}/${key}`, body);
      res.writeHead(200, { etag: '"verify-deploy"' });
      res.end();
      return;
    }

    // S3 ListObjectsV2, path style: GET /{bucket}?list-type=2&prefix= (IAM: s3:ListBucket on the bucket,
    // with the requested prefix as the s3:prefix condition key).
    if (req.method === 'GET' && url.searchParams.get('list-type') === '2') {
      const bucket = decodeURIComponent(url.pathname.split('/')[1] ?? '');
      const prefix = url.searchParams.get('prefix') ?? '';
      this.record(fn, 's3', 'ListBucket', `arn:aws:s3:::${bucket}`, prefix, { 's3:prefix': prefix });
      const contents = this.objectKeys(bucket, prefix)
        .map(
          (k) =>
            `<Contents><Key>${k}</Key><Size>${this.s3Objects.get(`${bucket}/${k}`)!.length}</Size></Contents>`,
        )
        .join('');
      res.writeHead(200, { 'content-type': 'application/xml' });
      res.end(
        `<?xml version="1.0" encoding="UTF-8"?><ListBucketResult><Name>${bucket}</Name><Prefix>${prefix}</Prefix><KeyCount>${this.objectKeys(bucket, prefix).length}</KeyCount><IsTruncated>false</IsTruncated>${contents}</ListBucketResult>`,
      );
      return;
    }

    // S3 GetObject, path style (the SDK uses it for an IP endpoint): GET /{bucket}/{key}?x-id=GetObject,
    // signed in the header or pre-signed in the query.
    if (req.method === 'GET' && url.searchParams.get('x-id') === 'GetObject') {
      const [, bucket = '', ...rest] = url.pathname.split('/');
      const key = rest.map(decodeURIComponent).join('/');
      this.record(fn, 's3', 'GetObject', `arn:aws:s3:::${bucket}/${key}`);
      const object = this.s3Objects.get(`${bucket}/${key}`);
      if (!object) {
        res.writeHead(404, { 'content-type': 'application/xml' });
        res.end(
          `<?xml version="1.0" encoding="UTF-8"?><Error><Code>NoSuchKey</Code><Key>${key}</Key></Error>`,
        );
        return;
      }
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': object.length });
      res.end(object);
      return;
    }

    // IoT control plane DescribeEndpoint: GET /endpoint?endpointType=
    if (req.method === 'GET' && url.pathname === '/endpoint') {
      this.record(fn, 'iot', 'DescribeEndpoint', '*', url.searchParams.get('endpointType') ?? undefined);
      return json(200, { endpointAddress: this.httpsAuthority }, 'application/json');
    }

    this.unhandled.push(`${fn}: ${req.method} ${req.url} (target "${target}") is not emulated`);
    return json(400, { message: 'not emulated by the deploy harness' }, 'application/json');
  }

  private recordDynamo(fn: string, op: string, input: Record<string, unknown>): void {
    const tableArn = (name: unknown) => this.o.tableArn(String(name));
    const itemAction: Record<string, string> = {
      Put: 'PutItem',
      Update: 'UpdateItem',
      Delete: 'DeleteItem',
      ConditionCheck: 'ConditionCheckItem',
      Get: 'GetItem',
    };
    switch (op) {
      case 'BatchGetItem':
      case 'BatchWriteItem':
        for (const name of Object.keys((input.RequestItems ?? {}) as object)) {
          this.record(fn, 'dynamodb', op, tableArn(name));
        }
        return;
      case 'BatchExecuteStatement':
        // IAM authorizes each statement as its PartiQL action on its table.
        for (const w of this.statements(input, fn)) {
          const action = w.kind === 'insert' ? 'PartiQLInsert' : 'PartiQLUpdate';
          this.record(fn, 'dynamodb', action, tableArn(w.table), `in ${op}`);
        }
        return;
      case 'TransactWriteItems':
      case 'TransactGetItems':
        // IAM authorizes each item of a transaction as its single-item action.
        for (const item of (input.TransactItems ?? []) as Array<Record<string, { TableName?: string }>>) {
          for (const [k, v] of Object.entries(item)) {
            this.record(fn, 'dynamodb', itemAction[k] ?? k, tableArn(v.TableName), `in ${op}`);
          }
        }
        return;
      default: {
        const arn = tableArn(input.TableName);
        this.record(fn, 'dynamodb', op, input.IndexName ? `${arn}/index/${String(input.IndexName)}` : arn);
      }
    }
  }

  /**
   * TransactWriteItems, which dynalite lacks, applied item by item (Put/Update/Delete with their
   * conditions) so that the code takes its AWS path, not its no-transactions fallback. All or nothing
   * as in DynamoDB: each item's previous state is read first, and on a failed condition the items
   * applied before it are put back (not isolated from concurrent writers: the scenario has none on one
   * item). False (forwarded as is) when an item is a ConditionCheck or has no pk/sk key.
   */
  private async transactWrite(
    req: http.IncomingMessage,
    input: Record<string, unknown>,
    res: http.ServerResponse,
  ): Promise<boolean> {
    const items = (input.TransactItems ?? []) as Array<Record<string, Record<string, unknown>>>;
    // Each item's key (pk, sk), or undefined where it has none of the kind this emulation handles.
    const keys = items.map((i) => {
      const spec = i.Put ?? i.Update ?? i.Delete;
      const source = (spec?.Key ?? spec?.Item) as Record<string, unknown> | undefined;
      return source?.pk !== undefined && source.sk !== undefined
        ? { TableName: spec!.TableName, Key: { pk: source.pk, sk: source.sk } }
        : undefined;
    });
    if (keys.some((k) => k === undefined)) return false;
    // DynamoDB refuses the whole transaction when two of its operations touch one item.
    const targets = keys.map((k) => JSON.stringify([k!.TableName, k!.Key.pk, k!.Key.sk]));
    if (new Set(targets).size < targets.length) {
      res.writeHead(400, { 'content-type': 'application/x-amz-json-1.0' });
      res.end(
        JSON.stringify({
          __type: 'com.amazon.coral.validate#ValidationException',
          message: 'Transaction request cannot include multiple operations on one item',
        }),
      );
      return true;
    }
    const reasons: Array<{ Code: string; Message?: string }> = items.map(() => ({ Code: 'None' }));
    const undo: Array<{ TableName: unknown; Key: Record<string, unknown>; Item?: unknown }> = [];
    const rollBack = async () => {
      for (const u of undo.reverse()) {
        await (u.Item
          ? this.send(req, 'DynamoDB_20120810.PutItem', { TableName: u.TableName, Item: u.Item })
          : this.send(req, 'DynamoDB_20120810.DeleteItem', { TableName: u.TableName, Key: u.Key }));
      }
    };
    for (const [index, item] of items.entries()) {
      const [kind, spec] = Object.entries(item)[0] ?? [];
      if (!kind || !spec) continue;
      const { ReturnValuesOnConditionCheckFailure: _ignored, ...single } = spec;
      const target = (
        { Put: 'PutItem', Update: 'UpdateItem', Delete: 'DeleteItem' } as Record<string, string>
      )[kind];
      if (!target) continue;
      const { TableName, Key } = keys[index]!;
      const before = await this.send(req, 'DynamoDB_20120810.GetItem', {
        TableName,
        Key,
        ConsistentRead: true,
      });
      const out = await this.send(req, `DynamoDB_20120810.${target}`, single);
      if (out.status !== 200) {
        await rollBack();
        const error = JSON.parse(out.body || '{}') as { __type?: string };
        const code = String(error.__type ?? '').split('#')[1] ?? 'ValidationError';
        if (code !== 'ConditionalCheckFailedException') {
          res.writeHead(out.status, { 'content-type': 'application/x-amz-json-1.0' });
          res.end(out.body);
          return true;
        }
        reasons[index] = { Code: 'ConditionalCheckFailed', Message: 'The conditional request failed' };
        res.writeHead(400, { 'content-type': 'application/x-amz-json-1.0' });
        res.end(
          JSON.stringify({
            __type: 'com.amazonaws.dynamodb.v20120810#TransactionCanceledException',
            message: `Transaction cancelled, please refer cancellation reasons for specific reasons [${reasons.map((r) => r.Code).join(', ')}]`,
            CancellationReasons: reasons,
          }),
        );
        return true;
      }
      undo.push({
        TableName,
        Key,
        Item: (JSON.parse(before.body || '{}') as { Item?: unknown }).Item,
      });
    }
    res.writeHead(200, { 'content-type': 'application/x-amz-json-1.0' });
    res.end('{}');
    return true;
  }

  /**
   * The write statements of a BatchExecuteStatement; one of another form is left out, and reported
   * unhandled when `fn` is given (once per request: its IAM recording reports, its execution does not).
   */
  private statements(input: Record<string, unknown>, fn?: string): PartiqlWrite[] {
    const out: PartiqlWrite[] = [];
    for (const st of (input.Statements ?? []) as Array<{ Statement: string; Parameters?: Wire[] }>) {
      try {
        out.push(readPartiqlWrite(st.Statement, st.Parameters));
      } catch (error) {
        if (fn !== undefined) this.unhandled.push(`${fn}: ${(error as Error).message}`);
      }
    }
    return out;
  }

  /**
   * BatchExecuteStatement, which dynalite lacks: each write statement (the forms partiql-writes.ts
   * reads) applied as the PutItem or UpdateItem it stands for, on its own as in DynamoDB; a failed
   * condition is the statement's DuplicateItem (INSERT) or ConditionalCheckFailed (UPDATE). Tables
   * keyed pk/sk, as every table the adapters write with PartiQL.
   */
  private async batchExecute(
    req: http.IncomingMessage,
    input: Record<string, unknown>,
    res: http.ServerResponse,
  ): Promise<void> {
    const responses: Wire[] = [];
    for (const w of this.statements(input)) {
      const names: Record<string, string> = {};
      const values: Record<string, Wire> = {};
      const name = (n: string) => {
        const k = `#n${Object.keys(names).length}`;
        names[k] = n;
        return k;
      };
      const value = (v: Wire) => {
        const k = `:v${Object.keys(values).length}`;
        values[k] = v;
        return k;
      };
      let request: { target: string; body: Wire };
      if (w.kind === 'insert') {
        request = {
          target: 'PutItem',
          body: { TableName: w.table, Item: w.item, ConditionExpression: 'attribute_not_exists(pk)' },
        };
      } else {
        const { pk, sk, ...conditions } = w.where;
        const set = Object.entries(w.set).map(([n, v]) => `${name(n)} = ${value(v)}`);
        const remove = w.remove.map(name);
        const condition = [
          'attribute_exists(pk)',
          ...Object.entries(conditions).map(([n, v]) => `${name(n)} = ${value(v)}`),
        ];
        request = {
          target: 'UpdateItem',
          body: {
            TableName: w.table,
            Key: { pk, sk },
            UpdateExpression: [
              set.length > 0 ? `SET ${set.join(', ')}` : '',
              remove.length > 0 ? `REMOVE ${remove.join(', ')}` : '',
            ].join(' '),
            ConditionExpression: condition.join(' AND '),
            ExpressionAttributeNames: names,
            ...(Object.keys(values).length > 0 ? { ExpressionAttributeValues: values } : {}),
          },
        };
      }
      const out = await this.send(req, `DynamoDB_20120810.${request.target}`, request.body);
      if (out.status === 200) {
        responses.push({ TableName: w.table });
        continue;
      }
      const error = JSON.parse(out.body || '{}') as { __type?: string; message?: string };
      const code = String(error.__type ?? '').split('#')[1] ?? 'ValidationException';
      responses.push({
        TableName: w.table,
        Error: {
          Code:
            code === 'ConditionalCheckFailedException'
              ? w.kind === 'insert'
                ? 'DuplicateItem'
                : 'ConditionalCheckFailed'
              : statementCode(code),
          Message: error.message ?? '',
        },
      });
    }
    res.writeHead(200, { 'content-type': 'application/x-amz-json-1.0' });
    res.end(JSON.stringify({ Responses: responses }));
  }

  /** One request to dynalite with the caller's headers and another operation. */
  private send(
    req: http.IncomingMessage,
    target: string,
    input: unknown,
  ): Promise<{ status: number; body: string }> {
    const base = new URL(this.o.dynamoEndpoint());
    const payload = Buffer.from(JSON.stringify(input));
    return new Promise((resolve, reject) => {
      const out = http.request(
        {
          hostname: base.hostname,
          port: base.port,
          path: '/',
          method: 'POST',
          headers: {
            ...req.headers,
            host: base.host,
            'x-amz-target': target,
            'content-length': String(payload.length),
          },
        },
        (r) => {
          const chunks: Buffer[] = [];
          r.on('data', (c: Buffer) => chunks.push(c));
          r.on('end', () => resolve({ status: r.statusCode ?? 500, body: Buffer.concat(chunks).toString() }));
          r.on('error', reject);
        },
      );
      out.on('error', reject);
      out.end(payload);
    });
  }

  private forward(
    base: string,
    req: http.IncomingMessage,
    body: Buffer,
    res: http.ServerResponse,
  ): Promise<void> {
    const target = new URL(base);
    return new Promise((resolve, reject) => {
      const headers = { ...req.headers, host: target.host, 'content-length': String(body.length) };
      const out = http.request(
        { hostname: target.hostname, port: target.port, path: req.url, method: req.method, headers },
        (r) => {
          res.writeHead(r.statusCode ?? 500, r.headers);
          r.pipe(res);
          r.on('end', () => resolve());
          r.on('error', reject);
        },
      );
      out.on('error', reject);
      out.end(body);
    });
  }
}
