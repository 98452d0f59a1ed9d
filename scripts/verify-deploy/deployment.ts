/**
 * A synthesized assembly "deployed" locally: DynamoDB tables (dynalite) and secrets created from the
 * template, custom resources run through their provider Lambdas, every Lambda function started from
 * its bundled asset on Node.js 22, and the AWS services that drive them emulated from the template:
 * IoT topic rules (the template's SQL and partition key) into Kinesis event source mappings, and
 * API Gateway REST methods behind the template's REQUEST authorizer.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { CreateTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import dynalite from 'dynalite';
import { splitBasicIngest } from '../../functions/core/topics.js';
import { type CompiledRule, compileRule, NO_CLIENT_ID } from '../../infra/local/rules.js';
import type { StreamKey } from '../../infra/pipeline.js';
import { type Publish, RecordingEndpoint } from './aws-endpoint.js';
import { type InvokeResult, LambdaProcess } from './lambda-process.js';
import { ACCOUNT, type Json, type LambdaFunctionModel, REGION, TemplateModel } from './template.js';

export interface DeploymentOptions {
  assemblyDir: string;
  log?: (line: string) => void;
  /** Print every function log line (VERIFY_DEPLOY_VERBOSE=1). */
  verbose?: boolean;
}

interface EsmModel {
  id: string;
  functionId: string;
  streamId: string;
  streamArn: string;
  batchSize: number;
  reportItemFailures: boolean;
  onFailureArn: string | undefined;
}

interface KinesisRecord {
  partitionKey: string;
  data: Buffer;
  sequenceNumber: string;
  arrival: number;
}

export interface ApiResponse {
  status: number;
  body: Record<string, unknown> & { [k: string]: unknown };
  raw: string;
  /** The proxy response's headers (lower-case names), e.g. a redirect's location. */
  headers?: Record<string, string>;
}

interface ApiMethod {
  id: string;
  httpMethod: string;
  pathParts: string[];
  authorization: string;
  authorizerId: string | undefined;
  functionId: string | undefined;
  requiredHeaders: string[];
}

export class Deployment {
  readonly model: TemplateModel;
  readonly dir: string;
  readonly endpoint: RecordingEndpoint;
  readonly functions = new Map<string, { model: LambdaFunctionModel; process: LambdaProcess }>();
  /** Problems of the run itself: function errors, unexpected responses, unhandled requests. */
  readonly failures: string[] = [];
  readonly notes: string[] = [];
  /** What the harness could not drive (printed; the affected functions' grants are not judged for excess). */
  readonly limitations: string[] = [];
  readonly secrets = new Map<string, string>();
  private dynamo: ReturnType<typeof dynalite> | undefined;
  private dynamoClient: DynamoDBClient | undefined;
  private rules: Array<{ rule: CompiledRule; streamId: string }> = [];
  private esms: EsmModel[] = [];
  private readonly pending = new Map<string, KinesisRecord[]>();
  private readonly publishQueue: Publish[] = [];
  private readonly subscribers: Array<(topic: string, payload: Buffer) => void> = [];
  private seq = 0;
  private readonly authCache = new Map<string, { result: Record<string, unknown> }>();
  private methods: ApiMethod[] = [];
  private readonly log: (line: string) => void;

  constructor(private readonly o: DeploymentOptions) {
    this.log = o.log ?? (() => {});
    this.model = TemplateModel.fromAssembly(o.assemblyDir, { region: REGION, account: ACCOUNT });
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'verify-deploy-'));
    this.endpoint = new RecordingEndpoint({
      dir: this.dir,
      dynamoEndpoint: () => this.dynamoUrl,
      tableArn: (name) => this.tableArn(name),
      secrets: this.secrets,
      onPublish: (p) => this.publishQueue.push(p),
      liveApi: () => this.liveApi(),
    });
  }

  private dynamoUrl = '';
  private tableArnByName = new Map<string, string>();
  private tableArn(name: string): string {
    return this.tableArnByName.get(name) ?? `arn:aws:dynamodb:${REGION}:${ACCOUNT}:table/${name}`;
  }

  async start(): Promise<void> {
    // DynamoDB: every table of the template, with its key schema, attributes and indexes.
    this.dynamo = dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
    await new Promise<void>((r) => this.dynamo!.listen(0, '127.0.0.1', () => r()));
    const dynamoUrl = `http://127.0.0.1:${(this.dynamo.address() as AddressInfo).port}`;
    this.dynamoUrl = dynamoUrl;
    this.dynamoClient = new DynamoDBClient({
      endpoint: dynamoUrl,
      region: REGION,
      credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    });
    for (const [id, r] of this.model.resourcesOfType('AWS::DynamoDB::Table')) {
      const p = this.model.resolve((r.Properties ?? {}) as Json) as Record<string, unknown>;
      const name = this.model.physicalName(id);
      this.tableArnByName.set(name, this.model.arn(id));
      const gsis = (p.GlobalSecondaryIndexes ?? []) as Array<Record<string, unknown>>;
      await this.dynamoClient.send(
        new CreateTableCommand({
          TableName: name,
          BillingMode: 'PAY_PER_REQUEST',
          KeySchema: p.KeySchema as never,
          AttributeDefinitions: p.AttributeDefinitions as never,
          ...(gsis.length > 0
            ? {
                GlobalSecondaryIndexes: gsis.map((g) => ({
                  IndexName: g.IndexName as string,
                  KeySchema: g.KeySchema as never,
                  Projection: g.Projection as never,
                })),
              }
            : {}),
        }),
      );
    }
    // Secrets: generated values, as Secrets Manager would at deploy time.
    for (const [id, r] of this.model.resourcesOfType('AWS::SecretsManager::Secret')) {
      const gen = (r.Properties?.GenerateSecretString ?? {}) as Record<string, Json>;
      const value = crypto
        .randomBytes(36)
        .toString('base64')
        .replace(/[^A-Za-z0-9]/g, '')
        .slice(0, 48);
      const text =
        typeof gen.GenerateStringKey === 'string'
          ? JSON.stringify({
              ...JSON.parse(String(gen.SecretStringTemplate ?? '{}')),
              [gen.GenerateStringKey]: value,
            })
          : typeof r.Properties?.SecretString === 'string'
            ? r.Properties.SecretString
            : value;
      this.secrets.set(this.model.arn(id), text);
    }
    await this.endpoint.start();

    // Custom resources first: their attributes feed other functions' environments.
    const customIds = Object.entries(this.model.template.Resources)
      .filter(([, r]) => r.Type.startsWith('Custom::') || r.Type === 'AWS::CloudFormation::CustomResource')
      .map(([id]) => id);
    for (const id of customIds) await this.runCustomResource(id);

    for (const [id] of this.model.resourcesOfType('AWS::Lambda::Function')) {
      if (this.functions.has(id)) continue;
      this.addFunction(id);
    }
    await Promise.all([...this.functions.values()].map((f) => f.process.start()));

    this.rules = this.model.resourcesOfType('AWS::IoT::TopicRule').flatMap(([id, r]) => {
      const payload = (r.Properties?.TopicRulePayload ?? {}) as Record<string, Json>;
      if (payload.RuleDisabled === true) return [];
      const out: Array<{ rule: CompiledRule; streamId: string }> = [];
      for (const action of (payload.Actions ?? []) as Array<Record<string, Record<string, Json>>>) {
        if (!action.Kinesis) {
          this.notes.push(`rule ${id}: action ${Object.keys(action).join(',')} is not emulated`);
          continue;
        }
        const streamId = TemplateModel.referencedId(action.Kinesis.StreamName);
        if (!streamId) throw new Error(`rule ${id}: Kinesis StreamName is not a stream of the template`);
        out.push({
          streamId,
          rule: compileRule({
            // The IoT rule name devices use for Basic Ingest (ADR 0024); the logical id if unnamed.
            name: typeof r.Properties?.RuleName === 'string' ? r.Properties.RuleName : id,
            sql: String(payload.Sql),
            stream: streamId as StreamKey,
            partitionKey: String(action.Kinesis.PartitionKey),
            sqlVersion: String(payload.AwsIotSqlVersion ?? '2016-03-23'),
          }),
        });
      }
      return out;
    });
    this.esms = this.model.resourcesOfType('AWS::Lambda::EventSourceMapping').flatMap(([id, r]) => {
      const p = r.Properties ?? {};
      const streamId = TemplateModel.referencedId(p.EventSourceArn);
      const functionId = TemplateModel.referencedId(p.FunctionName);
      if (!streamId || !functionId || this.model.resource(streamId).Type !== 'AWS::Kinesis::Stream') {
        this.notes.push(`event source mapping ${id}: only Kinesis stream sources are emulated`);
        return [];
      }
      if (p.Enabled === false) return [];
      const dest = (p.DestinationConfig as Record<string, Record<string, Json>> | undefined)?.OnFailure
        ?.Destination;
      return [
        {
          id,
          functionId,
          streamId,
          streamArn: this.model.arn(streamId),
          batchSize: Number(p.BatchSize ?? 100),
          reportItemFailures: ((p.FunctionResponseTypes ?? []) as Json[]).includes('ReportBatchItemFailures'),
          onFailureArn: dest === undefined ? undefined : String(this.model.resolve(dest)),
        },
      ];
    });
    // What the Lambda service does with the function's role for each mapping: it validates and polls
    // the stream, and sends failed batches' metadata to the on-failure destination.
    for (const esm of this.esms) {
      for (const action of [
        'DescribeStream',
        'DescribeStreamSummary',
        'ListShards',
        'GetShardIterator',
        'GetRecords',
        'SubscribeToShard',
      ]) {
        this.endpoint.recordService({
          function: esm.functionId,
          service: 'kinesis',
          action: `kinesis:${action}`,
          resource: esm.streamArn,
          detail: `event source mapping ${esm.id}`,
        });
      }
      if (esm.onFailureArn) {
        const service = esm.onFailureArn.split(':')[2] ?? '';
        // An S3 destination (ADR 0017): the service lists the bucket and puts one object per batch.
        const calls: Array<[string, string]> =
          service === 's3'
            ? [
                [
                  's3:PutObject',
                  `${esm.onFailureArn}/aws/lambda/${esm.id}/shardId-000000000000/failed-batch`,
                ],
                ['s3:ListBucket', esm.onFailureArn],
              ]
            : [
                [
                  service === 'sqs' ? 'sqs:SendMessage' : service === 'sns' ? 'sns:Publish' : `${service}:?`,
                  esm.onFailureArn,
                ],
              ];
        for (const [action, resource] of calls) {
          this.endpoint.recordService({
            function: esm.functionId,
            service,
            action,
            resource,
            detail: `on-failure destination of ${esm.id}`,
          });
        }
      }
    }
    this.methods = this.apiMethods();
  }

  private addFunction(id: string): { model: LambdaFunctionModel; process: LambdaProcess } {
    const model = this.model.lambdaFunction(id);
    const process = new LambdaProcess({
      fn: model,
      workDir: this.dir,
      additions: this.additions(id),
      onLog: (line) => {
        if (this.o.verbose) this.log(`  [${id}] ${line}`);
      },
    });
    if (process.note) this.notes.push(`${id}: ${process.note}`);
    const entry = { model, process };
    this.functions.set(id, entry);
    return entry;
  }

  /** What the harness adds to the Lambda environment: credentials, service endpoints, CA. */
  private additions(id: string): Record<string, string> {
    const c = this.endpoint.credentialsFor(id);
    const url = this.endpoint.httpUrl;
    return {
      AWS_ACCESS_KEY_ID: c.accessKeyId,
      AWS_SECRET_ACCESS_KEY: c.secretAccessKey,
      AWS_SESSION_TOKEN: c.sessionToken,
      AWS_ENDPOINT_URL_DYNAMODB: url,
      AWS_ENDPOINT_URL_SECRETS_MANAGER: url,
      AWS_ENDPOINT_URL_TIMESTREAM_WRITE: url,
      AWS_ENDPOINT_URL_TIMESTREAM_QUERY: url,
      AWS_ENDPOINT_URL_IOT: url,
      AWS_ENDPOINT_URL_SNS: url,
      AWS_ENDPOINT_URL_EVENTBRIDGE: url,
      AWS_ENDPOINT_URL_S3: url,
      // PostToConnection (ADR 0023): the SDK's standard override; the stage path stays LIVE_ENDPOINT's.
      AWS_ENDPOINT_URL_APIGATEWAYMANAGEMENTAPI: url,
      AWS_ENDPOINT_URL_IOT_DATA_PLANE: `https://${this.endpoint.httpsAuthority}`,
      NODE_EXTRA_CA_CERTS: this.endpoint.caFile,
    };
  }

  private async runCustomResource(id: string): Promise<void> {
    const r = this.model.resource(id);
    const tokenTarget = TemplateModel.referencedId(r.Properties?.ServiceToken);
    if (!tokenTarget || this.model.resource(tokenTarget).Type !== 'AWS::Lambda::Function') {
      this.notes.push(
        `custom resource ${id}: its provider is not a Lambda function of the template; not run`,
      );
      return;
    }
    const fn = this.functions.get(tokenTarget) ?? this.addFunction(tokenTarget);
    const { ServiceToken, ...props } = this.model.resolve((r.Properties ?? {}) as Json) as Record<
      string,
      Json
    >;
    const event = {
      RequestType: 'Create',
      ServiceToken,
      ResponseURL: `https://${this.endpoint.cfnHost}/cfn-response/${encodeURIComponent(id)}`,
      StackId: this.model.stackId,
      RequestId: crypto.randomUUID(),
      LogicalResourceId: id,
      ResourceType: r.Type,
      ResourceProperties: { ServiceToken, ...props },
    };
    const result = await fn.process.invoke(event);
    if (!result.ok) {
      const missing = /Cannot find (?:module|package) '(@aws-sdk\/[^']+)'/.exec(result.error?.message ?? '');
      if (missing) {
        // The Lambda runtime ships every SDK v3 client; the repository installs only those its code uses.
        this.limitations.push(
          `custom resource ${id} (${r.Type}) not driven: its provider ${tokenTarget} needs ${missing[1]}, which the Lambda runtime provides but this repository does not install`,
        );
        return;
      }
      this.failures.push(`custom resource ${id}: provider ${tokenTarget} failed: ${describeError(result)}`);
      return;
    }
    let response = this.endpoint.cfnResponses.get(id);
    if (!response && this.endpoint.cfnError) {
      // No listener on :443 (not root): the provider logs the response it sends ("Responding {...}").
      const line = fn.process.logs.find((l) => l.includes('Responding {'));
      if (line) response = JSON.parse(line.slice(line.indexOf('{'))) as Record<string, unknown>;
      this.notes.push(
        `custom resource ${id}: response read from the provider's log (${this.endpoint.cfnError})`,
      );
    }
    if (!response) {
      this.failures.push(`custom resource ${id}: provider ${tokenTarget} sent no CloudFormation response`);
      return;
    }
    if (response.Status !== 'SUCCESS') {
      this.failures.push(`custom resource ${id}: ${String(response.Status)}: ${String(response.Reason)}`);
      return;
    }
    const data = (response.Data ?? {}) as Record<string, unknown>;
    for (const [k, v] of Object.entries(data)) this.model.setOverride(`${id}.${k}`, String(v));
    this.log(`  custom resource ${id} (${r.Type}) created by ${tokenTarget}: ${JSON.stringify(data)}`);
  }

  // ---- IoT Core → Kinesis → Lambda ---------------------------------------------------------------

  /** The IoT name of the template's rule that selects `topic` (e.g. the LwM2M rule), if any. */
  ruleNameFor(topic: string): string | undefined {
    return this.rules.find((r) => r.rule.matches(topic))?.rule.name;
  }

  /** Messages functions publish through the IoT data plane reach these (the devices' side). */
  subscribe(fn: (topic: string, payload: Buffer) => void): void {
    this.subscribers.push(fn);
  }

  /**
   * An MQTT publish reaching IoT Core: every rule of the template that selects it puts a record. A
   * Basic Ingest publish (`$aws/rules/{RuleName}/{topic}`, ADR 0024) reaches only the rule of that
   * name, which sees `{topic}`.
   */
  publish(published: string, payload: Uint8Array, clientId: string): number {
    const ingest = splitBasicIngest(published);
    const topic = ingest.topic;
    const msg = { topic, payload, clientId, timestamp: Date.now() };
    let n = 0;
    for (const { rule, streamId } of this.rules) {
      if (ingest.rule !== undefined ? rule.name !== ingest.rule : !rule.matches(topic)) continue;
      if (!rule.where(msg)) continue;
      const records = this.pending.get(streamId) ?? [];
      records.push({
        partitionKey: rule.partitionKey(msg),
        data: rule.data(msg),
        sequenceNumber: String(49_600_000_000_000_000_000n + BigInt(++this.seq)),
        arrival: Date.now() / 1000,
      });
      this.pending.set(streamId, records);
      n++;
    }
    return n;
  }

  /**
   * EventBridge schedules (AWS::Events::Rule with a ScheduleExpression): invokes each enabled rule's
   * Lambda targets once with the scheduled event EventBridge sends. Returns the functions invoked.
   */
  async runSchedules(only?: (functionId: string) => boolean): Promise<string[]> {
    const invoked: string[] = [];
    for (const [id, r] of this.model.resourcesOfType('AWS::Events::Rule')) {
      const p = r.Properties ?? {};
      if (typeof p.ScheduleExpression !== 'string' || p.State === 'DISABLED') continue;
      for (const t of (p.Targets ?? []) as Array<Record<string, Json>>) {
        const fnId = TemplateModel.referencedId(t.Arn);
        const fn = fnId ? this.functions.get(fnId) : undefined;
        if (fnId && only && !only(fnId)) continue;
        if (!fnId || !fn) {
          this.notes.push(
            `schedule ${id}: target ${JSON.stringify(t.Arn)} is not a function of the template`,
          );
          continue;
        }
        const result = await fn.process.invoke({
          version: '0',
          id: crypto.randomUUID(),
          'detail-type': 'Scheduled Event',
          source: 'aws.events',
          account: ACCOUNT,
          time: new Date().toISOString(),
          region: REGION,
          resources: [this.model.arn(id)],
          detail: {},
        });
        if (!result.ok) this.failures.push(`${fnId}: scheduled invocation failed: ${describeError(result)}`);
        invoked.push(fnId);
      }
    }
    return invoked;
  }

  /**
   * An event AWS puts on the default event bus (e.g. S3 `Object Created`, ADR 0024): invokes the Lambda
   * targets of every enabled AWS::Events::Rule whose EventPattern matches it (values in arrays match
   * by equality; nested objects recurse). Returns each target's result.
   */
  async deliverEvent(
    event: Record<string, Json>,
  ): Promise<Array<{ function: string; result: InvokeResult }>> {
    const out: Array<{ function: string; result: InvokeResult }> = [];
    for (const [id, r] of this.model.resourcesOfType('AWS::Events::Rule')) {
      const p = r.Properties ?? {};
      if (p.EventPattern === undefined || p.State === 'DISABLED') continue;
      const pattern = this.model.resolve(p.EventPattern, `${id}.EventPattern`);
      if (!patternMatches(pattern, event)) continue;
      for (const t of (p.Targets ?? []) as Array<Record<string, Json>>) {
        const fnId = TemplateModel.referencedId(t.Arn);
        const fn = fnId ? this.functions.get(fnId) : undefined;
        if (!fnId || !fn) {
          this.notes.push(
            `event rule ${id}: target ${JSON.stringify(t.Arn)} is not a function of the template`,
          );
          continue;
        }
        const result = await fn.process.invoke({ ...event, resources: event.resources ?? [] });
        if (!result.ok) this.failures.push(`${fnId}: event invocation failed: ${describeError(result)}`);
        out.push({ function: fnId, result });
      }
    }
    return out;
  }

  /** Deliver everything pending (records, and the publishes the functions make) until quiet. */
  /** Cold starts of the functions whose logical id starts with `prefix` (their next invocation). */
  async coldStart(prefix: string): Promise<void> {
    for (const [id, f] of this.functions) if (id.startsWith(prefix)) await f.process.recycle();
  }

  async drain(): Promise<void> {
    for (let round = 0; round < 50; round++) {
      for (const p of this.publishQueue.splice(0)) {
        for (const s of this.subscribers) s(p.topic, p.payload);
        // A data-plane publish reaches the rules too, with no MQTT client id.
        this.publish(p.topic, p.payload, NO_CLIENT_ID);
      }
      const streams = [...this.pending.entries()].filter(([, r]) => r.length > 0);
      if (streams.length === 0 && this.publishQueue.length === 0) return;
      for (const [streamId, records] of streams) {
        this.pending.set(streamId, []);
        const esms = this.esms.filter((e) => e.streamId === streamId);
        if (esms.length === 0) this.notes.push(`stream ${streamId}: records but no event source mapping`);
        for (const esm of esms) {
          for (let i = 0; i < records.length; i += esm.batchSize) {
            await this.deliver(esm, records.slice(i, i + esm.batchSize));
          }
        }
      }
    }
    this.failures.push('drain: still busy after 50 rounds (a publish loop between functions and rules?)');
  }

  private async deliver(esm: EsmModel, records: KinesisRecord[]): Promise<void> {
    const fn = this.functions.get(esm.functionId)!;
    const event = {
      Records: records.map((r) => ({
        kinesis: {
          kinesisSchemaVersion: '1.0',
          partitionKey: r.partitionKey,
          sequenceNumber: r.sequenceNumber,
          data: r.data.toString('base64'),
          approximateArrivalTimestamp: r.arrival,
        },
        eventSource: 'aws:kinesis',
        eventVersion: '1.0',
        eventID: `shardId-000000000000:${r.sequenceNumber}`,
        eventName: 'aws:kinesis:record',
        invokeIdentityArn: fn.model.roleLogicalId ? this.model.arn(fn.model.roleLogicalId) : '',
        awsRegion: REGION,
        eventSourceARN: esm.streamArn,
      })),
    };
    const result = await fn.process.invoke(event);
    if (!result.ok) {
      this.failures.push(
        `${esm.functionId}: Kinesis batch of ${records.length} failed: ${describeError(result)}`,
      );
      return;
    }
    const failures = (result.value as { batchItemFailures?: unknown[] } | null)?.batchItemFailures ?? [];
    if (failures.length > 0) {
      this.failures.push(
        `${esm.functionId}: reported ${failures.length} batch item failure(s) ${JSON.stringify(failures).slice(0, 200)}${esm.reportItemFailures ? '' : ' (but the mapping has no ReportBatchItemFailures)'}`,
      );
    }
  }

  // ---- API Gateway REST ---------------------------------------------------------------------------

  private apiMethods(): ApiMethod[] {
    const pathOf = (resourceId: string | undefined): string[] => {
      if (!resourceId) return [];
      const r = this.model.template.Resources[resourceId];
      if (r?.Type !== 'AWS::ApiGateway::Resource') return [];
      return [...pathOf(TemplateModel.referencedId(r.Properties?.ParentId)), String(r.Properties?.PathPart)];
    };
    return this.model.resourcesOfType('AWS::ApiGateway::Method').map(([id, r]) => {
      const p = r.Properties ?? {};
      const integration = (p.Integration ?? {}) as Record<string, Json>;
      const fnId = [...TemplateModel.references(integration.Uri)].find(
        (t) => this.model.template.Resources[t]?.Type === 'AWS::Lambda::Function',
      );
      const params = (p.RequestParameters ?? {}) as Record<string, Json>;
      return {
        id,
        httpMethod: String(p.HttpMethod),
        pathParts: pathOf(TemplateModel.referencedId(p.ResourceId)),
        authorization: String(p.AuthorizationType ?? 'NONE'),
        authorizerId: TemplateModel.referencedId(p.AuthorizerId),
        functionId: fnId,
        requiredHeaders: Object.entries(params)
          .filter(([k, v]) => v === true && k.startsWith('method.request.header.'))
          .map(([k]) => k.slice('method.request.header.'.length)),
      };
    });
  }

  private matchMethod(
    method: string,
    pathname: string,
  ): { m: ApiMethod; params: Record<string, string> } | undefined {
    const parts = pathname.split('/').filter(Boolean);
    let best: { m: ApiMethod; params: Record<string, string>; score: number } | undefined;
    for (const m of this.methods) {
      if (m.httpMethod !== method && m.httpMethod !== 'ANY') continue;
      const params: Record<string, string> = {};
      let score = 0;
      let ok = true;
      for (let i = 0; i < m.pathParts.length; i++) {
        const part = m.pathParts[i]!;
        const greedy = /^\{(.+)\+\}$/.exec(part);
        if (greedy) {
          if (i >= parts.length) ok = false;
          else params[greedy[1]!] = parts.slice(i).join('/');
          break;
        }
        if (i >= parts.length) {
          ok = false;
          break;
        }
        const single = /^\{(.+)\}$/.exec(part);
        if (single) params[single[1]!] = parts[i]!;
        else if (part === parts[i]) score += 10;
        else {
          ok = false;
          break;
        }
        if (i === m.pathParts.length - 1 && parts.length !== m.pathParts.length) ok = false;
      }
      if (m.pathParts.length === 0 && parts.length > 0) ok = false;
      if (!ok) continue;
      if (m.httpMethod === method) score += 1;
      if (!best || score > best.score) best = { m, params, score };
    }
    return best;
  }

  /** One request through API Gateway: method match, authorizer (cached), then the integration. */
  async api(
    method: string,
    pathWithQuery: string,
    init: { body?: unknown; key?: string } = {},
  ): Promise<ApiResponse> {
    const url = new URL(pathWithQuery, 'http://api.local');
    const headers: Record<string, string> = { Accept: 'application/json', Host: 'api.local' };
    if (init.key !== undefined) headers.Authorization = `Bearer ${init.key}`;
    if (init.body !== undefined) headers['Content-Type'] = 'application/json';
    const found = this.matchMethod(method, url.pathname);
    if (!found) return response(403, { message: 'Missing Authentication Token' });
    const { m, params } = found;
    const apiId = this.model.resourcesOfType('AWS::ApiGateway::RestApi')[0]?.[0] ?? 'api';
    const stage = String(
      this.model.resourcesOfType('AWS::ApiGateway::Stage')[0]?.[1].Properties?.StageName ?? 'v1',
    );
    const resourcePath = `/${m.pathParts.join('/')}`;
    const query = Object.fromEntries(url.searchParams);
    const requestContext: Record<string, unknown> = {
      resourceId: m.id,
      resourcePath,
      httpMethod: method,
      path: `/${stage}${url.pathname}`,
      stage,
      requestId: crypto.randomUUID(),
      accountId: ACCOUNT,
      apiId,
      protocol: 'HTTP/1.1',
      requestTimeEpoch: Date.now(),
      identity: { sourceIp: '198.51.100.7', userAgent: 'verify-deploy' },
      domainName: `${apiId}.execute-api.${REGION}.amazonaws.com`,
    };
    const methodArn = `arn:aws:execute-api:${REGION}:${ACCOUNT}:${apiId}/${stage}/${method}${url.pathname}`;
    const base = {
      resource: resourcePath,
      path: url.pathname,
      httpMethod: method,
      headers,
      multiValueHeaders: Object.fromEntries(Object.entries(headers).map(([k, v]) => [k, [v]])),
      queryStringParameters: Object.keys(query).length > 0 ? query : null,
      multiValueQueryStringParameters:
        Object.keys(query).length > 0
          ? Object.fromEntries(Object.entries(query).map(([k, v]) => [k, [v]]))
          : null,
      pathParameters: Object.keys(params).length > 0 ? params : null,
      stageVariables: null,
    };

    if (m.authorization === 'CUSTOM') {
      const auth = await this.authorize(m, base, requestContext, methodArn);
      if ('status' in auth) return auth;
      requestContext.authorizer = auth.context;
    } else if (m.authorization !== 'NONE') {
      this.failures.push(`API method ${m.id}: authorization ${m.authorization} is not emulated`);
    }
    for (const h of m.requiredHeaders) {
      if (!Object.keys(headers).some((k) => k.toLowerCase() === h.toLowerCase())) {
        return response(400, { message: `Missing required request parameters: [${h}]` });
      }
    }
    if (!m.functionId) return response(500, { message: `method ${m.id} has no Lambda integration` });
    const fn = this.functions.get(m.functionId)!;
    const event = {
      ...base,
      requestContext,
      body: init.body === undefined ? null : JSON.stringify(init.body),
      isBase64Encoded: false,
    };
    const result = await fn.process.invoke(event);
    if (!result.ok) {
      this.failures.push(`${m.functionId}: ${method} ${pathWithQuery} failed: ${describeError(result)}`);
      return response(502, { message: 'Internal server error' });
    }
    const out = result.value as {
      statusCode?: number;
      body?: string;
      isBase64Encoded?: boolean;
      headers?: Record<string, string>;
    } | null;
    if (!out || typeof out.statusCode !== 'number') {
      this.failures.push(
        `${m.functionId}: ${method} ${pathWithQuery}: malformed proxy response ${JSON.stringify(out)}`,
      );
      return response(502, { message: 'Internal server error' });
    }
    const raw = out.isBase64Encoded ? Buffer.from(out.body ?? '', 'base64').toString() : (out.body ?? '');
    let body: Record<string, unknown> = {};
    try {
      body = raw ? (JSON.parse(raw) as Record<string, unknown>) : {};
    } catch {
      body = { text: raw };
    }
    const outHeaders = Object.fromEntries(
      Object.entries(out.headers ?? {}).map(([k, v]) => [k.toLowerCase(), String(v)]),
    );
    return { status: out.statusCode, body, raw, headers: outHeaders };
  }

  private async authorize(
    m: ApiMethod,
    base: Record<string, unknown>,
    requestContext: Record<string, unknown>,
    methodArn: string,
  ): Promise<ApiResponse | { context: Record<string, unknown> }> {
    if (!m.authorizerId) return response(500, { message: `method ${m.id} is CUSTOM without an authorizer` });
    const a = this.model.resource(m.authorizerId).Properties ?? {};
    const fnId = [...TemplateModel.references(a.AuthorizerUri)].find(
      (t) => this.model.template.Resources[t]?.Type === 'AWS::Lambda::Function',
    );
    if (!fnId) return response(500, { message: `authorizer ${m.authorizerId} has no Lambda function` });
    if (a.Type !== 'REQUEST') {
      this.failures.push(`authorizer ${m.authorizerId}: type ${String(a.Type)} is not emulated`);
    }
    const headers = base.headers as Record<string, string>;
    const sources = String(a.IdentitySource ?? '')
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean);
    const identity: string[] = [];
    for (const src of sources) {
      const h = /^method\.request\.header\.(.+)$/.exec(src);
      const q = /^method\.request\.querystring\.(.+)$/.exec(src);
      const value = h
        ? Object.entries(headers).find(([k]) => k.toLowerCase() === h[1]!.toLowerCase())?.[1]
        : q
          ? (base.queryStringParameters as Record<string, string> | null)?.[q[1]!]
          : undefined;
      // A missing identity source: 401 without invoking the authorizer.
      if (value === undefined || value === '') return response(401, { message: 'Unauthorized' });
      identity.push(value);
    }
    const ttl = Number(a.AuthorizerResultTtlInSeconds ?? 300);
    const cacheKey = `${m.authorizerId}|${identity.join('|')}`;
    let result = ttl > 0 ? this.authCache.get(cacheKey)?.result : undefined;
    if (!result) {
      const fn = this.functions.get(fnId)!;
      const out = await fn.process.invoke({
        type: 'REQUEST',
        methodArn,
        ...base,
        requestContext,
      });
      if (!out.ok) {
        if (out.error?.message === 'Unauthorized') return response(401, { message: 'Unauthorized' });
        this.failures.push(`${fnId}: authorizer failed: ${describeError(out)}`);
        return response(500, { message: null });
      }
      result = out.value as Record<string, unknown>;
      if (ttl > 0) this.authCache.set(cacheKey, { result });
    }
    const doc = (result.policyDocument ?? {}) as { Statement?: Array<Record<string, unknown>> };
    const list = (v: unknown) => (Array.isArray(v) ? v.map(String) : v === undefined ? [] : [String(v)]);
    const glob = (pattern: string, s: string) =>
      new RegExp(
        `^${pattern
          .replace(/[.+^${}()|[\]\\]/g, '\\$&')
          .replace(/\*/g, '.*')
          .replace(/\?/g, '.')}$`,
      ).test(s);
    const applies = (st: Record<string, unknown>) =>
      list(st.Action).some((x) => glob(x, 'execute-api:Invoke')) &&
      list(st.Resource).some((x) => glob(x, methodArn));
    const statements = doc.Statement ?? [];
    if (
      statements.some((st) => st.Effect === 'Deny' && applies(st)) ||
      !statements.some((st) => st.Effect === 'Allow' && applies(st))
    ) {
      return response(403, {
        message: 'User is not authorized to access this resource with an explicit deny',
      });
    }
    const context: Record<string, unknown> = { principalId: result.principalId };
    for (const [k, v] of Object.entries((result.context ?? {}) as Record<string, unknown>)) context[k] = v;
    return { context };
  }

  // ---- API Gateway WebSocket (ADR 0023) -----------------------------------------------------------

  /** The template's WebSocket API: its id (Ref) and stage name, for the @connections ARNs. */
  liveApi(): { apiId: string; stage: string } | undefined {
    const api = this.model
      .resourcesOfType('AWS::ApiGatewayV2::Api')
      .find(([, r]) => r.Properties?.ProtocolType === 'WEBSOCKET');
    if (!api) return undefined;
    const stage = this.model
      .resourcesOfType('AWS::ApiGatewayV2::Stage')
      .find(([, r]) => TemplateModel.referencedId(r.Properties?.ApiId) === api[0]);
    return {
      apiId: this.model.ref(api[0]),
      stage: String(this.model.resolve((stage?.[1].Properties?.StageName ?? '$default') as Json)),
    };
  }

  /** The function behind a WebSocket route key ($connect, $disconnect, $default, or an action). */
  private wsRoute(routeKey: string): string | undefined {
    const route = this.model
      .resourcesOfType('AWS::ApiGatewayV2::Route')
      .find(([, r]) => r.Properties?.RouteKey === routeKey);
    if (!route) return undefined;
    const integrationId = [...TemplateModel.references(route[1].Properties?.Target)].find(
      (t) => this.model.template.Resources[t]?.Type === 'AWS::ApiGatewayV2::Integration',
    );
    if (!integrationId) return undefined;
    return [...TemplateModel.references(this.model.resource(integrationId).Properties?.IntegrationUri)].find(
      (t) => this.model.template.Resources[t]?.Type === 'AWS::Lambda::Function',
    );
  }

  /**
   * One WebSocket event through the template's routes, as API Gateway sends it: $connect (headers and
   * query string), $disconnect, or a message (routed by its `action`, else $default). A non-2xx answer
   * to $connect is a refused upgrade.
   */
  async ws(
    kind: 'connect' | 'disconnect' | 'message',
    connectionId: string,
    init: { headers?: Record<string, string>; query?: Record<string, string>; body?: unknown } = {},
  ): Promise<{ status: number; headers: Record<string, string>; body: Record<string, unknown> }> {
    let routeKey = kind === 'connect' ? '$connect' : kind === 'disconnect' ? '$disconnect' : '$default';
    const body = init.body === undefined ? undefined : JSON.stringify(init.body);
    if (kind === 'message') {
      const action = (init.body as { action?: unknown } | undefined)?.action;
      if (typeof action === 'string' && this.wsRoute(action)) routeKey = action;
    }
    const fnId = this.wsRoute(routeKey);
    if (!fnId) {
      this.failures.push(`WebSocket route ${routeKey}: no Lambda integration in the template`);
      return { status: 500, headers: {}, body: {} };
    }
    const live = this.liveApi();
    const event = {
      requestContext: {
        routeKey,
        eventType: kind === 'connect' ? 'CONNECT' : kind === 'disconnect' ? 'DISCONNECT' : 'MESSAGE',
        connectionId,
        apiId: live?.apiId,
        stage: live?.stage,
        domainName: `${live?.apiId}.execute-api.${REGION}.amazonaws.com`,
        requestId: crypto.randomUUID(),
        connectedAt: Date.now(),
        requestTimeEpoch: Date.now(),
        identity: { sourceIp: '198.51.100.7' },
      },
      ...(kind === 'connect'
        ? {
            headers: { Host: 'live.local', ...init.headers },
            queryStringParameters: init.query && Object.keys(init.query).length > 0 ? init.query : undefined,
          }
        : {}),
      ...(body !== undefined ? { body } : {}),
      isBase64Encoded: false,
    };
    const result = await this.functions.get(fnId)!.process.invoke(event);
    if (!result.ok) {
      this.failures.push(`${fnId}: WebSocket ${routeKey} failed: ${describeError(result)}`);
      return { status: 502, headers: {}, body: {} };
    }
    const out = (result.value ?? {}) as {
      statusCode?: number;
      headers?: Record<string, string>;
      body?: string;
    };
    let parsed: Record<string, unknown> = {};
    try {
      parsed = out.body ? (JSON.parse(out.body) as Record<string, unknown>) : {};
    } catch {
      parsed = { text: out.body };
    }
    return { status: out.statusCode ?? 200, headers: out.headers ?? {}, body: parsed };
  }

  async stop(): Promise<void> {
    await Promise.all([...this.functions.values()].map((f) => f.process.stop()));
    await this.endpoint.stop();
    this.dynamoClient?.destroy();
    if (this.dynamo) await new Promise<void>((r) => this.dynamo!.close(() => r()));
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

function response(status: number, body: Record<string, unknown>): ApiResponse {
  return { status, body, raw: JSON.stringify(body) };
}

/** EventBridge pattern matching, the subset the stack uses: arrays of exact values, nested objects. */
export function patternMatches(pattern: Json, event: Json | undefined): boolean {
  if (Array.isArray(pattern)) return pattern.some((v) => JSON.stringify(v) === JSON.stringify(event));
  if (pattern && typeof pattern === 'object') {
    if (!event || typeof event !== 'object' || Array.isArray(event)) return false;
    const e = event as Record<string, Json>;
    return Object.entries(pattern).every(([k, v]) => patternMatches(v, e[k]));
  }
  return false;
}

export function describeError(r: InvokeResult): string {
  const e = r.error;
  if (!e) return 'unknown error';
  return `${e.name}: ${e.message}${e.stack ? `\n      ${e.stack.split('\n').slice(1, 4).join('\n      ')}` : ''}`;
}
