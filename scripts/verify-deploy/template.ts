/**
 * A model of one synthesized CloudFormation stack for the deploy harness: every resource gets the
 * deterministic LOCAL physical name and ARN it would get in a deployment, intrinsic functions resolve
 * against them, and the parts the harness drives are read out of the template (functions with their
 * asset directory, handler, runtime and environment; tables; topic rules; event source mappings; API
 * methods and authorizers; the IAM statements of each function's role).
 *
 * Stable interface (used by scripts/verify-deploy/*):
 *   loadAssembly(outdir)                      → { stacks: [{ stackName, template, assetDirs, ... }] }
 *   new TemplateModel(template, options)      options: region, account, stackName, assemblyDir?,
 *                                             assetDirs?, endpoints?, overrides?, parameters?
 *   model.resolve(value)                      intrinsic functions → plain JSON
 *   model.ref(id) / model.getAtt(id, attr)    Ref / Fn::GetAtt semantics per resource type
 *   model.physicalName(id) / model.arn(id)
 *   model.functions() / model.function(id)    FunctionModel
 *   model.tables() / streams() / queues() / topicRules() / eventSourceMappings()
 *   model.restApis() / methods() / authorizers() / customResources()
 *   model.policiesFor(functionLogicalId)      RolePolicies (statements + managed policy ARNs)
 *   model.lambdaFunction(id)                  what the harness runs: FunctionModel + asset + role statements
 *   model.setOverride(key, value)             a custom resource's attribute, once its provider answered
 *   TemplateModel.referencedId(v) / references(v)   logical ids a Ref / GetAtt names, unresolved
 *   REGION, ACCOUNT                           the region and account the harness deploys into
 *   model.explicitNames()                     names the template fixes, with charset/length problems
 *   knownManagedPolicyStatements(ref)         AWSLambdaBasicExecutionRole → CloudWatch Logs statements
 *
 * Names follow CloudFormation's rule: the name property when the template sets one, else
 * `${stackName}-${logicalId}` (made to fit the type's charset and length, with a hash suffix when
 * shortened). Nothing here talks to AWS.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { IamStatement } from './iam.js';

export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

/** The region and account the deploy harness "deploys" into (names, ARNs, Lambda's AWS_REGION). */
export const REGION = 'us-east-1';
export const ACCOUNT = '123456789012';

export interface CfnResource {
  Type: string;
  Properties?: Record<string, Json>;
  Condition?: string;
  DependsOn?: string | string[];
  Metadata?: Record<string, Json>;
}

export interface CfnTemplate {
  Description?: string;
  Parameters?: Record<string, { Type: string; Default?: Json }>;
  Mappings?: Record<string, Record<string, Record<string, Json>>>;
  Conditions?: Record<string, Json>;
  Resources: Record<string, CfnResource>;
  Outputs?: Record<string, { Value: Json; Description?: string; Condition?: string; Export?: Json }>;
}

/** An intrinsic that cannot be resolved locally; `where` names the template location. */
export class TemplateError extends Error {
  override readonly name = 'TemplateError';
  constructor(
    message: string,
    readonly where?: string,
  ) {
    super(where ? `${where}: ${message}` : message);
  }
}

// ───────────────────────────── assembly ─────────────────────────────

export interface AssemblyStack {
  /** Artifact id in manifest.json (the construct id of the stack). */
  artifactId: string;
  stackName: string;
  templatePath: string;
  template: CfnTemplate;
  /** `aws://account/region` from the manifest, when the stack is environment-specific. */
  environment?: string;
  /** Asset object key (Code.S3Key, e.g. `<hash>.zip`) → absolute asset directory/file. */
  assetDirs: Record<string, string>;
}

export interface Assembly {
  outdir: string;
  stacks: AssemblyStack[];
}

interface AssetManifest {
  files?: Record<
    string,
    { source?: { path?: string; packaging?: string }; destinations?: Record<string, { objectKey?: string }> }
  >;
}

/** Reads a cloud assembly (`cdk synth -o outdir`): every stack's template and its asset directories. */
export function loadAssembly(outdir: string): Assembly {
  const abs = path.resolve(outdir);
  const manifestPath = path.join(abs, 'manifest.json');
  if (!fs.existsSync(manifestPath))
    throw new TemplateError(`${manifestPath} not found (is this a cdk synth outdir?)`);
  const manifest = JSON.parse(fs.readFileSync(manifestPath, 'utf8')) as {
    artifacts?: Record<string, { type: string; environment?: string; properties?: Record<string, unknown> }>;
  };
  const artifacts = manifest.artifacts ?? {};
  const stacks: AssemblyStack[] = [];
  for (const [id, art] of Object.entries(artifacts)) {
    if (art.type !== 'aws:cloudformation:stack') continue;
    const props = art.properties ?? {};
    const templateFile = String(props.templateFile ?? `${id}.template.json`);
    const templatePath = path.join(abs, templateFile);
    const template = JSON.parse(fs.readFileSync(templatePath, 'utf8')) as CfnTemplate;
    const assetDirs: Record<string, string> = {};
    // The stack's asset manifests (`*.assets.json`) are artifacts it depends on.
    const assetArtifacts = Object.entries(artifacts).filter(
      ([aid, a]) =>
        a.type === 'cdk:asset-manifest' &&
        (aid === `${id}.assets` || (art as { dependencies?: string[] }).dependencies?.includes(aid)),
    );
    for (const [, a] of assetArtifacts) {
      const file = path.join(abs, String(a.properties?.file ?? ''));
      if (!fs.existsSync(file)) continue;
      const am = JSON.parse(fs.readFileSync(file, 'utf8')) as AssetManifest;
      for (const [hash, f] of Object.entries(am.files ?? {})) {
        const src = f.source?.path;
        if (!src) continue;
        const dir = path.resolve(abs, src);
        assetDirs[hash] = dir;
        for (const d of Object.values(f.destinations ?? {})) if (d.objectKey) assetDirs[d.objectKey] = dir;
      }
    }
    const stackName = String((art as { displayName?: string }).displayName ?? props.stackName ?? id);
    stacks.push({
      artifactId: id,
      stackName: typeof props.stackName === 'string' ? props.stackName : stackName,
      templatePath,
      template,
      ...(art.environment ? { environment: art.environment } : {}),
      assetDirs,
    });
  }
  if (stacks.length === 0) throw new TemplateError(`${abs}: the cloud assembly has no stack`);
  return { outdir: abs, stacks };
}

// ───────────────────────────── models ─────────────────────────────

export interface TemplateModelOptions {
  region: string;
  account: string;
  stackName: string;
  partition?: string;
  urlSuffix?: string;
  /** The cloud assembly directory: asset paths in resource Metadata are relative to it. */
  assemblyDir?: string;
  /** Asset object key → directory (from loadAssembly); takes precedence over Metadata. */
  assetDirs?: Record<string, string>;
  /**
   * Local endpoints per service (`sqs` → `http://127.0.0.1:4100`): queue URLs are built on the SQS one.
   * The harness reads the others back through `endpoint(service)`.
   */
  endpoints?: Record<string, string>;
  /**
   * Values only a deployment knows: `'<LogicalId>.<Attribute>'` for Fn::GetAtt (custom resource
   * response fields, e.g. `'IotDataEndpoint57E4115C.endpointAddress' → 'localhost:1883'`) and
   * `'<LogicalId>'` to replace a resource's Ref.
   */
  overrides?: Record<string, string>;
  /** Parameter values (else each parameter's Default). */
  parameters?: Record<string, string>;
}

export interface FunctionModel {
  logicalId: string;
  /** Construct path (Metadata aws:cdk:path), e.g. `Dualpath/ApiFunction/Resource`. */
  cdkPath?: string;
  functionName: string;
  arn: string;
  handler: string;
  runtime: string;
  architectures: string[];
  memorySize: number;
  timeout: number;
  description?: string;
  roleLogicalId?: string;
  roleArn: string;
  /** Directory of the bundled code (the asset), or undefined for inline code. */
  assetDir?: string;
  /** Code.ZipFile when the code is inline. */
  inlineCode?: string;
  environment: Record<string, string>;
}

/**
 * A function as the deploy harness runs it: the template's view (FunctionModel) with the bundled code
 * it needs, and the identity-policy statements of its execution role (policiesFor), each naming the
 * policy it came from.
 */
export interface LambdaFunctionModel extends FunctionModel {
  assetDir: string;
  /** The function's physical name (= functionName). */
  name: string;
  statements: Array<IamStatement & { policy: string }>;
  /** Managed policies the template does not define (AWS managed), by ARN. */
  managedPolicyArns: string[];
}

export interface TableModel {
  logicalId: string;
  tableName: string;
  arn: string;
  keySchema: Array<{ AttributeName: string; KeyType: 'HASH' | 'RANGE' }>;
  attributeDefinitions: Array<{ AttributeName: string; AttributeType: string }>;
  globalSecondaryIndexes: Array<{ IndexName: string; KeySchema: TableModel['keySchema']; Projection?: Json }>;
  localSecondaryIndexes: Array<{ IndexName: string; KeySchema: TableModel['keySchema']; Projection?: Json }>;
  ttl?: { attributeName: string; enabled: boolean };
  billingMode?: string;
  streamViewType?: string;
}

export interface StreamModel {
  logicalId: string;
  streamName: string;
  arn: string;
  mode?: string;
  shardCount?: number;
  retentionHours?: number;
}

export interface QueueModel {
  logicalId: string;
  queueName: string;
  url: string;
  arn: string;
  fifo: boolean;
}

export interface TopicRuleModel {
  logicalId: string;
  ruleName: string;
  sql: string;
  sqlVersion?: string;
  disabled: boolean;
  /** Kinesis actions of the rule (stream name resolved; partition key as the template has it). */
  kinesis: Array<{ streamName: string; streamLogicalId?: string; partitionKey?: string; roleArn?: string }>;
  /** Every action, resolved, as in the template (`{ Kinesis: {...} }`, `{ Lambda: {...} }`, ...). */
  actions: Json[];
  errorAction?: Json;
}

export interface EventSourceMappingModel {
  logicalId: string;
  functionLogicalId?: string;
  functionName: string;
  eventSourceArn?: string;
  sourceLogicalId?: string;
  batchSize?: number;
  maximumBatchingWindowInSeconds?: number;
  startingPosition?: string;
  bisectBatchOnFunctionError?: boolean;
  maximumRetryAttempts?: number;
  maximumRecordAgeInSeconds?: number;
  parallelizationFactor?: number;
  functionResponseTypes: string[];
  onFailureDestination?: string;
  enabled: boolean;
}

export interface AuthorizerModel {
  logicalId: string;
  name?: string;
  type: string;
  identitySource?: string;
  resultTtlSeconds?: number;
  functionLogicalId?: string;
  restApiLogicalId?: string;
}

export interface MethodModel {
  logicalId: string;
  restApiLogicalId?: string;
  httpMethod: string;
  /** Resource path built from the AWS::ApiGateway::Resource tree: `/`, `/health`, `/{proxy+}`. */
  path: string;
  authorizationType: string;
  authorizerLogicalId?: string;
  integrationType?: string;
  /** The Lambda function a proxy integration invokes. */
  functionLogicalId?: string;
  requestParameters: Record<string, boolean>;
}

export interface CustomResourceModel {
  logicalId: string;
  type: string;
  serviceTokenFunctionLogicalId?: string;
  properties: Record<string, Json>;
}

export interface ManagedPolicyRef {
  arn: string;
  /** Policy name (`AWSLambdaBasicExecutionRole`) from the ARN. */
  name: string;
  /** True for AWS-managed policies (`arn:aws:iam::aws:policy/...`). */
  awsManaged: boolean;
}

export interface RolePolicies {
  functionLogicalId: string;
  roleLogicalId?: string;
  roleArn: string;
  /** Every statement of the role's inline policies, attached AWS::IAM::Policy and customer managed policies. */
  statements: IamStatement[];
  /** Managed policies not defined in the template (AWS managed), by ARN and name. */
  managedPolicies: ManagedPolicyRef[];
}

/** The role's managed policies the harness treats as CloudWatch Logs only. */
export const LOGS_ONLY_MANAGED_POLICIES: ReadonlySet<string> = new Set([
  'AWSLambdaBasicExecutionRole',
  'service-role/AWSLambdaBasicExecutionRole',
]);

/**
 * The statements the harness assumes for an AWS-managed policy it knows — AWSLambdaBasicExecutionRole
 * is CloudWatch Logs only (create the log group and stream, put events) — or undefined for one it does
 * not know (the caller should then report it: its grants cannot be judged).
 */
export function knownManagedPolicyStatements(ref: ManagedPolicyRef): IamStatement[] | undefined {
  if (!ref.awsManaged || !LOGS_ONLY_MANAGED_POLICIES.has(ref.name)) return undefined;
  return [
    {
      Effect: 'Allow',
      Action: ['logs:CreateLogGroup', 'logs:CreateLogStream', 'logs:PutLogEvents'],
      Resource: '*',
      source: `managed policy ${ref.name}`,
    },
  ];
}

// ───────────────────────────── naming ─────────────────────────────

interface NameRule {
  /** Properties that carry an explicit name. */
  prop?: string;
  /** Characters allowed; others are replaced by `-` (or `_` when `-` is not allowed). */
  allowed: RegExp;
  max: number;
  sep: string;
  lower?: boolean;
  /** The property is mandatory and names no account-unique resource (IAM inline policy, REST API). */
  requiredLabel?: boolean;
}

const NAME_RULES: Record<string, NameRule> = {
  'AWS::DynamoDB::Table': { prop: 'TableName', allowed: /[A-Za-z0-9_.-]/, max: 255, sep: '-' },
  'AWS::DynamoDB::GlobalTable': { prop: 'TableName', allowed: /[A-Za-z0-9_.-]/, max: 255, sep: '-' },
  'AWS::Kinesis::Stream': { prop: 'Name', allowed: /[A-Za-z0-9_.-]/, max: 128, sep: '-' },
  'AWS::SQS::Queue': { prop: 'QueueName', allowed: /[A-Za-z0-9_-]/, max: 80, sep: '-' },
  'AWS::SNS::Topic': { prop: 'TopicName', allowed: /[A-Za-z0-9_-]/, max: 256, sep: '-' },
  'AWS::S3::Bucket': { prop: 'BucketName', allowed: /[a-z0-9-]/, max: 63, sep: '-', lower: true },
  'AWS::SecretsManager::Secret': { prop: 'Name', allowed: /[A-Za-z0-9/_+=.@-]/, max: 512, sep: '-' },
  'AWS::IoT::TopicRule': { prop: 'RuleName', allowed: /[A-Za-z0-9_]/, max: 128, sep: '_' },
  'AWS::Events::EventBus': { prop: 'Name', allowed: /[A-Za-z0-9/._-]/, max: 256, sep: '-' },
  'AWS::IoT::Policy': { prop: 'PolicyName', allowed: /[\w+=,.@-]/, max: 128, sep: '-' },
  'AWS::IoT::ThingType': { prop: 'ThingTypeName', allowed: /[a-zA-Z0-9:_-]/, max: 128, sep: '-' },
  'AWS::Lambda::Function': { prop: 'FunctionName', allowed: /[A-Za-z0-9_-]/, max: 64, sep: '-' },
  'AWS::IAM::Role': { prop: 'RoleName', allowed: /[\w+=,.@-]/, max: 64, sep: '-' },
  'AWS::IAM::Policy': { prop: 'PolicyName', allowed: /[\w+=,.@-]/, max: 128, sep: '-', requiredLabel: true },
  'AWS::IAM::ManagedPolicy': { prop: 'ManagedPolicyName', allowed: /[\w+=,.@-]/, max: 128, sep: '-' },
  'AWS::Timestream::Database': { prop: 'DatabaseName', allowed: /[A-Za-z0-9_.-]/, max: 256, sep: '-' },
  'AWS::Timestream::Table': { prop: 'TableName', allowed: /[A-Za-z0-9_.-]/, max: 256, sep: '-' },
  'AWS::Logs::LogGroup': { prop: 'LogGroupName', allowed: /[A-Za-z0-9_/.#-]/, max: 512, sep: '-' },
  'AWS::CloudWatch::Alarm': { prop: 'AlarmName', allowed: /[\w .:/+=@-]/, max: 255, sep: '-' },
  'AWS::CloudWatch::Dashboard': { prop: 'DashboardName', allowed: /[A-Za-z0-9_-]/, max: 255, sep: '-' },
  'AWS::ApiGateway::RestApi': {
    prop: 'Name',
    allowed: /[\w .:/+=@-]/,
    max: 1024,
    sep: '-',
    requiredLabel: true,
  },
  'AWS::ECS::Cluster': { prop: 'ClusterName', allowed: /[A-Za-z0-9_-]/, max: 255, sep: '-' },
  'AWS::ECR::Repository': {
    prop: 'RepositoryName',
    allowed: /[a-z0-9._/-]/,
    max: 256,
    sep: '-',
    lower: true,
  },
};

const hash = (s: string, n: number) => crypto.createHash('sha256').update(s).digest('hex').slice(0, n);

/** `${stackName}-${logicalId}` fitted to a charset and length (hash-suffixed when shortened). */
export function generatedName(
  stackName: string,
  logicalId: string,
  rule: Pick<NameRule, 'allowed' | 'max' | 'sep' | 'lower'>,
): string {
  let raw = `${stackName}${rule.sep}${logicalId}`;
  if (rule.lower) raw = raw.toLowerCase();
  const fallback = rule.allowed.test('-') ? '-' : '_';
  let out = [...raw].map((c) => (rule.allowed.test(c) ? c : fallback)).join('');
  if (out.length > rule.max) {
    const h = hash(raw, 8);
    out = `${out.slice(0, rule.max - h.length - 1)}${fallback}${h}`;
  }
  return out;
}

const NO_VALUE = Symbol('AWS::NoValue');
type Resolved = Json | typeof NO_VALUE;

// ───────────────────────────── the model ─────────────────────────────

export class TemplateModel {
  readonly region: string;
  readonly account: string;
  readonly stackName: string;
  readonly partition: string;
  readonly urlSuffix: string;
  readonly stackId: string;
  private readonly opts: TemplateModelOptions;
  /** options.overrides, plus what setOverride adds once a deployment knows it. */
  private readonly overrides: Record<string, string>;
  private readonly names = new Map<string, string>();
  private readonly conditionCache = new Map<string, boolean>();

  constructor(
    readonly template: CfnTemplate,
    options: TemplateModelOptions,
  ) {
    if (!template || typeof template.Resources !== 'object')
      throw new TemplateError('the template has no Resources');
    this.opts = options;
    this.overrides = { ...options.overrides };
    this.region = options.region;
    this.account = options.account;
    this.stackName = options.stackName;
    this.partition = options.partition ?? (this.region.startsWith('cn-') ? 'aws-cn' : 'aws');
    this.urlSuffix =
      options.urlSuffix ?? (this.partition === 'aws-cn' ? 'amazonaws.com.cn' : 'amazonaws.com');
    this.stackId = `arn:${this.partition}:cloudformation:${this.region}:${this.account}:stack/${this.stackName}/${uuidFrom(this.stackName)}`;
  }

  /** The model of the first (only) stack of an assembly directory. */
  static fromAssembly(
    outdir: string,
    options: Omit<TemplateModelOptions, 'stackName' | 'assemblyDir' | 'assetDirs'> & { stackName?: string },
  ): TemplateModel {
    const asm = loadAssembly(outdir);
    const stack = options.stackName
      ? asm.stacks.find((s) => s.stackName === options.stackName)
      : asm.stacks[0];
    if (!stack) throw new TemplateError(`${outdir}: no stack named ${options.stackName}`);
    return new TemplateModel(stack.template, {
      ...options,
      stackName: stack.stackName,
      assemblyDir: asm.outdir,
      assetDirs: stack.assetDirs,
    });
  }

  /**
   * Supplies a value only a deployment knows (the `overrides` option's keys): `'<LogicalId>.<Attribute>'`
   * for Fn::GetAtt — a custom resource's response Data, once its provider has run — or `'<LogicalId>'`
   * for Ref.
   */
  setOverride(key: string, value: string): void {
    this.overrides[key] = value;
  }

  /** A local endpoint the caller registered for a service (`sqs`, `dynamodb`, ...). */
  endpoint(service: string): string | undefined {
    return this.opts.endpoints?.[service];
  }

  resource(logicalId: string): CfnResource {
    const r = this.template.Resources[logicalId];
    if (!r) throw new TemplateError(`the template has no resource ${logicalId}`);
    return r;
  }

  /** Resources of a type that exist (their Condition, if any, holds). */
  resourcesOfType(type: string): Array<[string, CfnResource]> {
    return Object.entries(this.template.Resources).filter(([, r]) => r.Type === type && this.exists(r));
  }

  private exists(r: CfnResource): boolean {
    return r.Condition === undefined || this.condition(r.Condition);
  }

  /** Evaluates a named condition (Fn::Equals/And/Or/Not/Condition over resolvable values). */
  condition(name: string): boolean {
    const cached = this.conditionCache.get(name);
    if (cached !== undefined) return cached;
    const body = this.template.Conditions?.[name];
    if (body === undefined) throw new TemplateError(`condition ${name} is not defined`, 'Conditions');
    const v = this.evalCondition(body, `Conditions.${name}`);
    this.conditionCache.set(name, v);
    return v;
  }

  private evalCondition(body: Json, where: string): boolean {
    if (typeof body === 'boolean') return body;
    if (body === null || typeof body !== 'object' || Array.isArray(body))
      throw new TemplateError('a condition must be an intrinsic function', where);
    const [fn, arg] = onlyEntry(body, where);
    switch (fn) {
      case 'Fn::Equals': {
        const [a, b] = asArray(arg, 2, where);
        return JSON.stringify(this.resolveAt(a!, where)) === JSON.stringify(this.resolveAt(b!, where));
      }
      case 'Fn::And':
        return asArray(arg, undefined, where).every((c, i) => this.evalCondition(c, `${where}[${i}]`));
      case 'Fn::Or':
        return asArray(arg, undefined, where).some((c, i) => this.evalCondition(c, `${where}[${i}]`));
      case 'Fn::Not':
        return !this.evalCondition(asArray(arg, 1, where)[0]!, where);
      case 'Condition':
        return this.condition(String(arg));
      default:
        throw new TemplateError(`${fn} is not a condition function`, where);
    }
  }

  // ─────────── names, Ref, GetAtt ───────────

  /** The resource's physical name: its name property when set, else a generated one. */
  physicalName(logicalId: string): string {
    const cached = this.names.get(logicalId);
    if (cached !== undefined) return cached;
    const r = this.resource(logicalId);
    const rule = NAME_RULES[r.Type];
    let name: string | undefined;
    const explicit = rule?.prop ? r.Properties?.[rule.prop] : undefined;
    if (explicit !== undefined)
      name = this.resolveString(explicit, `Resources.${logicalId}.Properties.${rule!.prop}`);
    if (name === undefined) {
      if (r.Type === 'AWS::SQS::Queue' && r.Properties?.FifoQueue === true) {
        name = `${generatedName(this.stackName, logicalId, { ...NAME_RULES['AWS::SQS::Queue']!, max: 75 })}.fifo`;
      } else if (r.Type === 'AWS::Logs::LogGroup') {
        name = `/aws/${this.stackName}/${logicalId}`;
      } else {
        name = generatedName(
          this.stackName,
          logicalId,
          rule ?? { allowed: /[A-Za-z0-9_-]/, max: 255, sep: '-' },
        );
      }
    }
    this.names.set(logicalId, name);
    return name;
  }

  /**
   * Resources whose template sets a physical name (CloudFormation otherwise generates one; ADR 0014
   * wants generated names so two stacks can share an account), each with a `problem` when the name
   * breaks its type's charset or length.
   */
  explicitNames(): Array<{
    logicalId: string;
    type: string;
    property: string;
    name: string;
    problem?: string;
  }> {
    const out: Array<{ logicalId: string; type: string; property: string; name: string; problem?: string }> =
      [];
    for (const [id, r] of Object.entries(this.template.Resources)) {
      const rule = NAME_RULES[r.Type];
      if (!rule?.prop || rule.requiredLabel || r.Properties?.[rule.prop] === undefined || !this.exists(r))
        continue;
      const name = this.physicalName(id);
      const bad = [...name].filter((c) => !rule.allowed.test(c));
      const problem =
        bad.length > 0
          ? `${rule.prop} "${name}" has characters a ${r.Type} name may not contain: ${[...new Set(bad)].join(' ')}`
          : name.length > rule.max
            ? `${rule.prop} "${name}" is longer than ${rule.max} characters`
            : name.length === 0
              ? `${rule.prop} is empty`
              : undefined;
      out.push({ logicalId: id, type: r.Type, property: rule.prop, name, ...(problem ? { problem } : {}) });
    }
    return out;
  }

  private arnOf(
    service: string,
    resource: string,
    opts: { region?: boolean; account?: boolean } = {},
  ): string {
    const region = opts.region === false ? '' : this.region;
    const account = opts.account === false ? '' : this.account;
    return `arn:${this.partition}:${service}:${region}:${account}:${resource}`;
  }

  /** A short deterministic id (API Gateway ids, ESM UUIDs, ...). */
  private localId(logicalId: string, n = 10): string {
    return hash(`${this.stackName}/${logicalId}`, n);
  }

  /** The ARN of a resource (Fn::GetAtt Arn, or Ref for types whose Ref is the ARN). */
  arn(logicalId: string): string {
    const r = this.resource(logicalId);
    const name = () => this.physicalName(logicalId);
    switch (r.Type) {
      case 'AWS::DynamoDB::Table':
      case 'AWS::DynamoDB::GlobalTable':
        return this.arnOf('dynamodb', `table/${name()}`);
      case 'AWS::Kinesis::Stream':
        return this.arnOf('kinesis', `stream/${name()}`);
      case 'AWS::SQS::Queue':
        return this.arnOf('sqs', name());
      case 'AWS::SNS::Topic':
        return this.arnOf('sns', name());
      case 'AWS::S3::Bucket':
        return this.arnOf('s3', name(), { region: false, account: false });
      case 'AWS::SecretsManager::Secret':
        return this.arnOf(
          'secretsmanager',
          `secret:${name()}-${secretSuffix(`${this.stackName}/${logicalId}`)}`,
        );
      case 'AWS::IoT::TopicRule':
        return this.arnOf('iot', `rule/${name()}`);
      case 'AWS::IoT::Policy':
        return this.arnOf('iot', `policy/${name()}`);
      case 'AWS::IoT::ThingType':
        return this.arnOf('iot', `thingtype/${name()}`);
      case 'AWS::Lambda::Function':
        return this.arnOf('lambda', `function:${name()}`);
      case 'AWS::IAM::Role':
        return this.arnOf('iam', `role${this.iamPath(r)}${name()}`, { region: false });
      case 'AWS::IAM::ManagedPolicy':
        return this.arnOf('iam', `policy${this.iamPath(r)}${name()}`, { region: false });
      case 'AWS::Timestream::Database':
        return this.arnOf('timestream', `database/${name()}`);
      case 'AWS::Timestream::Table': {
        const db = this.resolveString(
          r.Properties?.DatabaseName,
          `Resources.${logicalId}.Properties.DatabaseName`,
        );
        return this.arnOf('timestream', `database/${db}/table/${name()}`);
      }
      case 'AWS::Logs::LogGroup':
        return this.arnOf('logs', `log-group:${name()}:*`);
      case 'AWS::CloudWatch::Alarm':
        return this.arnOf('cloudwatch', `alarm:${name()}`);
      case 'AWS::ApiGateway::RestApi':
        return this.arnOf('apigateway', `/restapis/${this.localId(logicalId)}`, { account: false });
      case 'AWS::ECS::Cluster':
        return this.arnOf('ecs', `cluster/${name()}`);
      case 'AWS::ECR::Repository':
        return this.arnOf('ecr', `repository/${name()}`);
      case 'AWS::StepFunctions::StateMachine':
        return this.arnOf('states', `stateMachine:${name()}`);
      case 'AWS::Events::EventBus':
        return this.arnOf('events', `event-bus/${name()}`);
      case 'AWS::Events::Rule':
        return this.arnOf('events', `rule/${name()}`);
      default:
        throw new TemplateError(`the harness does not know the ARN of a ${r.Type}`, `Resources.${logicalId}`);
    }
  }

  private iamPath(r: CfnResource): string {
    const p = r.Properties?.Path;
    return typeof p === 'string' ? p : '/';
  }

  /** Ref semantics per resource type. */
  ref(logicalId: string): string {
    const override = this.overrides[logicalId];
    if (override !== undefined) return override;
    const r = this.resource(logicalId);
    switch (r.Type) {
      case 'AWS::SQS::Queue':
        return this.queueUrl(logicalId);
      case 'AWS::SNS::Topic':
      case 'AWS::SecretsManager::Secret':
      case 'AWS::IAM::ManagedPolicy':
      case 'AWS::StepFunctions::StateMachine':
        return this.arn(logicalId);
      case 'AWS::Timestream::Table': {
        const db = this.resolveString(
          r.Properties?.DatabaseName,
          `Resources.${logicalId}.Properties.DatabaseName`,
        );
        return `${db}|${this.physicalName(logicalId)}`;
      }
      case 'AWS::ApiGateway::RestApi':
      case 'AWS::ApiGateway::Resource':
      case 'AWS::ApiGateway::Method':
      case 'AWS::ApiGateway::Authorizer':
      case 'AWS::ApiGateway::Deployment':
      case 'AWS::ApiGateway::RequestValidator':
        return this.localId(logicalId);
      case 'AWS::ApiGateway::Stage': {
        const s = r.Properties?.StageName;
        return s === undefined
          ? this.localId(logicalId)
          : this.resolveString(s, `Resources.${logicalId}.Properties.StageName`);
      }
      case 'AWS::Lambda::EventSourceMapping':
        return uuidFrom(`${this.stackName}/${logicalId}`);
      default:
        if (isCustomResource(r.Type)) return this.physicalName(logicalId);
        return this.physicalName(logicalId);
    }
  }

  private queueUrl(logicalId: string): string {
    const base =
      this.opts.endpoints?.sqs?.replace(/\/+$/, '') ?? `https://sqs.${this.region}.${this.urlSuffix}`;
    return `${base}/${this.account}/${this.physicalName(logicalId)}`;
  }

  /** Fn::GetAtt semantics per resource type; custom resources read `overrides`. */
  getAtt(logicalId: string, attribute: string): Json {
    const override = this.overrides[`${logicalId}.${attribute}`];
    if (override !== undefined) return override;
    const r = this.resource(logicalId);
    const where = `Fn::GetAtt ${logicalId}.${attribute}`;
    if (isCustomResource(r.Type)) {
      throw new TemplateError(
        `custom resource ${logicalId} (${r.Type}) attribute ${attribute} is only known after a deployment; ` +
          `supply it as overrides['${logicalId}.${attribute}']`,
        where,
      );
    }
    const name = () => this.physicalName(logicalId);
    switch (`${r.Type}.${attribute}`) {
      case 'AWS::DynamoDB::Table.StreamArn':
        return `${this.arn(logicalId)}/stream/1970-01-01T00:00:00.000`;
      case 'AWS::SQS::Queue.QueueName':
      case 'AWS::SNS::Topic.TopicName':
      case 'AWS::Timestream::Database.Name':
      case 'AWS::Timestream::Table.Name':
      case 'AWS::Lambda::Function.FunctionName':
        return name();
      case 'AWS::SQS::Queue.QueueUrl':
        return this.queueUrl(logicalId);
      case 'AWS::SNS::Topic.TopicArn':
      case 'AWS::SecretsManager::Secret.Id':
        return this.arn(logicalId);
      case 'AWS::IAM::Role.RoleId':
        return `AROA${hash(`${this.stackName}/${logicalId}`, 17).toUpperCase()}`;
      case 'AWS::ApiGateway::RestApi.RootResourceId':
        return this.localId(`${logicalId}/root`);
      case 'AWS::ApiGateway::Authorizer.AuthorizerId':
        return this.localId(logicalId);
      case 'AWS::Lambda::EventSourceMapping.Id':
        return uuidFrom(`${this.stackName}/${logicalId}`);
    }
    if (attribute === 'Arn') return this.arn(logicalId);
    throw new TemplateError(`the harness does not know attribute ${attribute} of a ${r.Type}`, where);
  }

  private pseudo(name: string): Resolved | undefined {
    switch (name) {
      case 'AWS::Region':
        return this.region;
      case 'AWS::AccountId':
        return this.account;
      case 'AWS::Partition':
        return this.partition;
      case 'AWS::URLSuffix':
        return this.urlSuffix;
      case 'AWS::StackName':
        return this.stackName;
      case 'AWS::StackId':
        return this.stackId;
      case 'AWS::NoValue':
        return NO_VALUE;
      case 'AWS::NotificationARNs':
        return [];
      default:
        return undefined;
    }
  }

  private refName(name: string, where: string): Resolved {
    const p = this.pseudo(name);
    if (p !== undefined) return p;
    const param = this.template.Parameters?.[name];
    if (param) {
      const v = this.opts.parameters?.[name] ?? param.Default;
      if (v === undefined) throw new TemplateError(`parameter ${name} has no value and no Default`, where);
      return v;
    }
    if (this.template.Resources[name]) return this.ref(name);
    throw new TemplateError(
      `Ref to ${name}, which is neither a resource, a parameter nor a pseudo parameter`,
      where,
    );
  }

  // ─────────── resolve ───────────

  /** Resolves every intrinsic function in a value (AWS::NoValue entries are dropped). */
  resolve(value: Json, where = 'value'): Json {
    const v = this.resolveAt(value, where);
    return v === NO_VALUE ? null : v;
  }

  /** Resolves a value that must become a string (numbers and booleans are stringified). */
  resolveString(value: Json | undefined, where = 'value'): string {
    if (value === undefined) throw new TemplateError('missing value', where);
    const v = this.resolveAt(value, where);
    if (typeof v === 'string') return v;
    if (typeof v === 'number' || typeof v === 'boolean') return String(v);
    throw new TemplateError(
      `expected a string, got ${JSON.stringify(v === NO_VALUE ? 'AWS::NoValue' : v)}`,
      where,
    );
  }

  private resolveAt(value: Json, where: string): Resolved {
    if (value === null || typeof value !== 'object') return value;
    if (Array.isArray(value)) {
      const out: Json[] = [];
      value.forEach((v, i) => {
        const r = this.resolveAt(v, `${where}[${i}]`);
        if (r !== NO_VALUE) out.push(r);
      });
      return out;
    }
    const keys = Object.keys(value);
    if (keys.length === 1 && (keys[0] === 'Ref' || keys[0]!.startsWith('Fn::') || keys[0] === 'Condition')) {
      const k = keys[0]!;
      if (k !== 'Condition' || typeof value[k] === 'string')
        return this.intrinsic(k, value[k] as Json, `${where}.${k}`);
    }
    const out: Record<string, Json> = {};
    for (const [k, v] of Object.entries(value)) {
      const r = this.resolveAt(v, `${where}.${k}`);
      if (r !== NO_VALUE) out[k] = r;
    }
    return out;
  }

  private intrinsic(fn: string, arg: Json, where: string): Resolved {
    switch (fn) {
      case 'Ref':
        if (typeof arg !== 'string') throw new TemplateError('Ref takes a name', where);
        return this.refName(arg, where);
      case 'Fn::GetAtt': {
        let id: string;
        let attr: string;
        if (typeof arg === 'string') {
          const dot = arg.indexOf('.');
          if (dot < 0) throw new TemplateError(`Fn::GetAtt "${arg}" has no attribute`, where);
          id = arg.slice(0, dot);
          attr = arg.slice(dot + 1);
        } else {
          const [a, b] = asArray(arg, 2, where);
          id = String(a);
          attr = this.resolveString(b!, where);
        }
        return this.getAtt(id, attr);
      }
      case 'Fn::Join': {
        const [sep, items] = asArray(arg, 2, where);
        const parts = this.resolveAt(items!, where);
        if (!Array.isArray(parts)) throw new TemplateError('Fn::Join takes a list', where);
        return parts.map((p, i) => this.stringOf(p, `${where}[${i}]`)).join(String(sep));
      }
      case 'Fn::Sub': {
        let text: Json;
        let vars: Record<string, Json> = {};
        if (typeof arg === 'string') text = arg;
        else {
          const [t, m] = asArray(arg, undefined, where);
          text = t!;
          if (m !== undefined) {
            if (m === null || typeof m !== 'object' || Array.isArray(m))
              throw new TemplateError('Fn::Sub variables must be a map', where);
            vars = m;
          }
        }
        if (typeof text !== 'string') throw new TemplateError('Fn::Sub takes a string', where);
        return text.replace(/\$\{([^}]*)\}/g, (_m, name: string) => {
          if (name.startsWith('!')) return `\${${name.slice(1)}}`;
          if (name in vars) return this.stringOf(this.resolveAt(vars[name]!, `${where}.${name}`), where);
          const dot = name.indexOf('.');
          if (dot > 0 && !name.startsWith('AWS::')) {
            return this.stringOf(this.getAtt(name.slice(0, dot), name.slice(dot + 1)), where);
          }
          return this.stringOf(this.refName(name, where), where);
        });
      }
      case 'Fn::Select': {
        const [idx, items] = asArray(arg, 2, where);
        const i = Number(this.resolveAt(idx!, where));
        const list = this.resolveAt(items!, where);
        if (!Array.isArray(list)) throw new TemplateError('Fn::Select takes a list', where);
        if (!Number.isInteger(i) || i < 0 || i >= list.length)
          throw new TemplateError(`Fn::Select index ${i} is out of range (${list.length} items)`, where);
        return list[i]!;
      }
      case 'Fn::Split': {
        const [sep, src] = asArray(arg, 2, where);
        return this.stringOf(this.resolveAt(src!, where), where).split(String(sep));
      }
      case 'Fn::If': {
        const [cond, a, b] = asArray(arg, 3, where);
        return this.condition(String(cond)) ? this.resolveAt(a!, where) : this.resolveAt(b!, where);
      }
      case 'Condition':
        return this.condition(String(arg));
      case 'Fn::Equals':
      case 'Fn::And':
      case 'Fn::Or':
      case 'Fn::Not':
        return this.evalCondition({ [fn]: arg }, where);
      case 'Fn::Base64':
        return Buffer.from(this.stringOf(this.resolveAt(arg, where), where)).toString('base64');
      case 'Fn::GetAZs':
        return ['a', 'b', 'c'].map((z) => `${this.region}${z}`);
      case 'Fn::FindInMap': {
        const [m, k1, k2] = asArray(arg, 3, where).map((x) => this.stringOf(this.resolveAt(x, where), where));
        const v = this.template.Mappings?.[m!]?.[k1!]?.[k2!];
        if (v === undefined)
          throw new TemplateError(`Fn::FindInMap ${m}.${k1}.${k2} is not in Mappings`, where);
        return v;
      }
      case 'Fn::ImportValue':
        throw new TemplateError(
          `Fn::ImportValue ${JSON.stringify(arg)} reads another stack's export, which the harness cannot resolve`,
          where,
        );
      default:
        throw new TemplateError(`the harness cannot resolve ${fn}`, where);
    }
  }

  private stringOf(v: Resolved, where: string): string {
    if (typeof v === 'string') return v;
    if (typeof v === 'number' || typeof v === 'boolean') return String(v);
    throw new TemplateError(
      `expected a string, got ${v === NO_VALUE ? 'AWS::NoValue' : JSON.stringify(v)}`,
      where,
    );
  }

  private prop(logicalId: string, name: string): Json | undefined {
    const v = this.resource(logicalId).Properties?.[name];
    return v === undefined ? undefined : this.resolve(v, `Resources.${logicalId}.Properties.${name}`);
  }

  /** The logical id a Ref / GetAtt value names directly, without resolving it. */
  static referencedId(v: Json | undefined): string | undefined {
    if (v === null || typeof v !== 'object' || Array.isArray(v)) return undefined;
    if (typeof v.Ref === 'string') return v.Ref;
    const g = v['Fn::GetAtt'];
    if (Array.isArray(g) && typeof g[0] === 'string') return g[0];
    if (typeof g === 'string') return g.split('.')[0];
    return undefined;
  }

  /** Every logical id a value refers to (a Ref / GetAtt anywhere inside it), without resolving it. */
  static references(value: Json | undefined, out = new Set<string>()): Set<string> {
    if (value === null || value === undefined || typeof value !== 'object') return out;
    if (Array.isArray(value)) {
      for (const v of value) TemplateModel.references(v, out);
      return out;
    }
    const id = TemplateModel.referencedId(value);
    if (id) out.add(id);
    for (const v of Object.values(value)) TemplateModel.references(v, out);
    return out;
  }

  /** The logical id of the resource whose Ref or Arn equals `value` (resolved), if it is in the template. */
  private findByIdentity(value: string, types?: readonly string[]): string | undefined {
    for (const [id, r] of Object.entries(this.template.Resources)) {
      if (types && !types.includes(r.Type)) continue;
      try {
        if (this.ref(id) === value || this.physicalName(id) === value) return id;
        if (this.arn(id) === value) return id;
      } catch {
        // resources without a known ARN are not candidates
      }
    }
    return undefined;
  }

  // ─────────── functions ───────────

  functions(): FunctionModel[] {
    return this.resourcesOfType('AWS::Lambda::Function').map(([id]) => this.function(id));
  }

  function(logicalId: string): FunctionModel {
    const r = this.resource(logicalId);
    if (r.Type !== 'AWS::Lambda::Function')
      throw new TemplateError(`${logicalId} is a ${r.Type}, not a function`);
    const where = `Resources.${logicalId}.Properties`;
    const p = r.Properties ?? {};
    const env: Record<string, string> = {};
    const vars = (p.Environment as { Variables?: Record<string, Json> } | undefined)?.Variables ?? {};
    for (const [k, v] of Object.entries(vars)) {
      try {
        const resolved = this.resolveAt(v, `${where}.Environment.Variables.${k}`);
        if (resolved === NO_VALUE) continue; // Fn::If → AWS::NoValue: the variable is not set
        env[k] = this.stringOf(resolved, `${where}.Environment.Variables.${k}`);
      } catch (error) {
        if (error instanceof TemplateError)
          throw new TemplateError(`function ${logicalId}: environment variable ${k}: ${error.message}`);
        throw error;
      }
    }
    const roleLogicalId =
      TemplateModel.referencedId(p.Role) ??
      this.findByIdentity(this.resolveString(p.Role, `${where}.Role`), ['AWS::IAM::Role']);
    const code = (p.Code ?? {}) as Record<string, Json>;
    const cdkPath = r.Metadata?.['aws:cdk:path'];
    const description =
      p.Description === undefined ? undefined : this.resolveString(p.Description, `${where}.Description`);
    const assetDir = this.assetDirOf(logicalId, r, code);
    return {
      logicalId,
      ...(typeof cdkPath === 'string' ? { cdkPath } : {}),
      functionName: this.physicalName(logicalId),
      arn: this.arn(logicalId),
      handler: p.Handler === undefined ? '' : this.resolveString(p.Handler, `${where}.Handler`),
      runtime: p.Runtime === undefined ? '' : this.resolveString(p.Runtime, `${where}.Runtime`),
      architectures: ((this.prop(logicalId, 'Architectures') as string[] | undefined) ?? ['x86_64']).map(
        String,
      ),
      memorySize: Number(this.prop(logicalId, 'MemorySize') ?? 128),
      timeout: Number(this.prop(logicalId, 'Timeout') ?? 3),
      ...(description !== undefined ? { description } : {}),
      ...(roleLogicalId ? { roleLogicalId } : {}),
      roleArn: this.resolveString(p.Role, `${where}.Role`),
      ...(assetDir ? { assetDir } : {}),
      ...(typeof code.ZipFile === 'string' ? { inlineCode: code.ZipFile } : {}),
      environment: env,
    };
  }

  private assetDirOf(logicalId: string, r: CfnResource, code: Record<string, Json>): string | undefined {
    if (code.S3Key !== undefined && this.opts.assetDirs) {
      const key = this.resolveString(code.S3Key, `Resources.${logicalId}.Properties.Code.S3Key`);
      const dir = this.opts.assetDirs[key] ?? this.opts.assetDirs[key.replace(/\.zip$/, '')];
      if (dir) return dir;
    }
    const metaPath = r.Metadata?.['aws:asset:path'];
    if (typeof metaPath === 'string' && this.opts.assemblyDir)
      return path.resolve(this.opts.assemblyDir, metaPath);
    if (code.S3Key !== undefined && this.opts.assemblyDir) {
      const key = this.resolveString(code.S3Key, `Resources.${logicalId}.Properties.Code.S3Key`);
      const dir = path.join(this.opts.assemblyDir, `asset.${key.replace(/\.zip$/, '')}`);
      if (fs.existsSync(dir)) return dir;
    }
    return undefined;
  }

  /**
   * A function as the harness runs it: its FunctionModel, the bundled code (inline code is not run),
   * and its role's identity-policy statements (policiesFor).
   */
  lambdaFunction(logicalId: string): LambdaFunctionModel {
    const fn = this.function(logicalId);
    if (!fn.assetDir) {
      throw new TemplateError(
        `function ${logicalId}: no asset directory for its code (inline code is not supported by the harness)`,
      );
    }
    const policies = this.policiesFor(logicalId);
    return {
      ...fn,
      assetDir: fn.assetDir,
      name: fn.functionName,
      statements: policies.statements.map((st) => ({ ...st, policy: st.source ?? '' })),
      managedPolicyArns: policies.managedPolicies.map((m) => m.arn),
    };
  }

  /** The function whose logical id, name or ARN this is (event source mappings name functions by Ref). */
  functionLogicalIdOf(nameOrArn: string): string | undefined {
    return this.findByIdentity(nameOrArn, ['AWS::Lambda::Function']);
  }

  // ─────────── data resources ───────────

  tables(): TableModel[] {
    return this.resourcesOfType('AWS::DynamoDB::Table').map(([id]) => {
      const ttl = this.prop(id, 'TimeToLiveSpecification') as
        | { AttributeName?: string; Enabled?: boolean }
        | undefined;
      const stream = this.prop(id, 'StreamSpecification') as { StreamViewType?: string } | undefined;
      const billing = this.prop(id, 'BillingMode');
      return {
        logicalId: id,
        tableName: this.physicalName(id),
        arn: this.arn(id),
        keySchema: (this.prop(id, 'KeySchema') ?? []) as TableModel['keySchema'],
        attributeDefinitions: (this.prop(id, 'AttributeDefinitions') ??
          []) as TableModel['attributeDefinitions'],
        globalSecondaryIndexes: (this.prop(id, 'GlobalSecondaryIndexes') ??
          []) as TableModel['globalSecondaryIndexes'],
        localSecondaryIndexes: (this.prop(id, 'LocalSecondaryIndexes') ??
          []) as TableModel['localSecondaryIndexes'],
        ...(ttl?.AttributeName
          ? { ttl: { attributeName: ttl.AttributeName, enabled: ttl.Enabled === true } }
          : {}),
        ...(typeof billing === 'string' ? { billingMode: billing } : {}),
        ...(stream?.StreamViewType ? { streamViewType: stream.StreamViewType } : {}),
      };
    });
  }

  streams(): StreamModel[] {
    return this.resourcesOfType('AWS::Kinesis::Stream').map(([id]) => {
      const mode = (this.prop(id, 'StreamModeDetails') as { StreamMode?: string } | undefined)?.StreamMode;
      const shards = this.prop(id, 'ShardCount');
      const retention = this.prop(id, 'RetentionPeriodHours');
      return {
        logicalId: id,
        streamName: this.physicalName(id),
        arn: this.arn(id),
        ...(mode ? { mode } : {}),
        ...(shards !== undefined ? { shardCount: Number(shards) } : {}),
        ...(retention !== undefined ? { retentionHours: Number(retention) } : {}),
      };
    });
  }

  queues(): QueueModel[] {
    return this.resourcesOfType('AWS::SQS::Queue').map(([id]) => ({
      logicalId: id,
      queueName: this.physicalName(id),
      url: this.queueUrl(id),
      arn: this.arn(id),
      fifo: this.prop(id, 'FifoQueue') === true,
    }));
  }

  topicRules(): TopicRuleModel[] {
    return this.resourcesOfType('AWS::IoT::TopicRule').map(([id, r]) => {
      const where = `Resources.${id}.Properties.TopicRulePayload`;
      const rawPayload = (r.Properties?.TopicRulePayload ?? {}) as Record<string, Json>;
      const payload = this.resolve(rawPayload as Json, where) as Record<string, Json>;
      const rawActions = (rawPayload.Actions ?? []) as Json[];
      const actions = (payload.Actions ?? []) as Json[];
      const kinesis: TopicRuleModel['kinesis'] = [];
      actions.forEach((a, i) => {
        const k = (a as Record<string, Json>).Kinesis as Record<string, Json> | undefined;
        if (!k) return;
        const rawK = ((rawActions[i] as Record<string, Json>)?.Kinesis ?? {}) as Record<string, Json>;
        const streamName = String(k.StreamName);
        const streamLogicalId =
          TemplateModel.referencedId(rawK.StreamName) ??
          this.findByIdentity(streamName, ['AWS::Kinesis::Stream']);
        kinesis.push({
          streamName,
          ...(streamLogicalId ? { streamLogicalId } : {}),
          ...(typeof k.PartitionKey === 'string' ? { partitionKey: k.PartitionKey } : {}),
          ...(typeof k.RoleArn === 'string' ? { roleArn: k.RoleArn } : {}),
        });
      });
      return {
        logicalId: id,
        ruleName: this.physicalName(id),
        sql: String(payload.Sql ?? ''),
        ...(typeof payload.AwsIotSqlVersion === 'string' ? { sqlVersion: payload.AwsIotSqlVersion } : {}),
        disabled: payload.RuleDisabled === true,
        kinesis,
        actions,
        ...(payload.ErrorAction !== undefined ? { errorAction: payload.ErrorAction } : {}),
      };
    });
  }

  eventSourceMappings(): EventSourceMappingModel[] {
    return this.resourcesOfType('AWS::Lambda::EventSourceMapping').map(([id, r]) => {
      const p = r.Properties ?? {};
      const functionName = this.resolveString(p.FunctionName, `Resources.${id}.Properties.FunctionName`);
      const functionLogicalId =
        TemplateModel.referencedId(p.FunctionName) ?? this.functionLogicalIdOf(functionName);
      const sourceArn =
        p.EventSourceArn === undefined
          ? undefined
          : this.resolveString(p.EventSourceArn, `Resources.${id}.Properties.EventSourceArn`);
      const sourceLogicalId =
        TemplateModel.referencedId(p.EventSourceArn) ??
        (sourceArn ? this.findByIdentity(sourceArn) : undefined);
      const dest = this.prop(id, 'DestinationConfig') as { OnFailure?: { Destination?: string } } | undefined;
      const num = (k: string) => {
        const v = this.prop(id, k);
        return v === undefined ? undefined : Number(v);
      };
      const opt = <T>(k: string, v: T | undefined) => (v === undefined ? {} : { [k]: v });
      return {
        logicalId: id,
        ...(functionLogicalId ? { functionLogicalId } : {}),
        functionName,
        ...opt('eventSourceArn', sourceArn),
        ...opt('sourceLogicalId', sourceLogicalId),
        ...opt('batchSize', num('BatchSize')),
        ...opt('maximumBatchingWindowInSeconds', num('MaximumBatchingWindowInSeconds')),
        ...opt('startingPosition', this.prop(id, 'StartingPosition') as string | undefined),
        ...opt(
          'bisectBatchOnFunctionError',
          this.prop(id, 'BisectBatchOnFunctionError') as boolean | undefined,
        ),
        ...opt('maximumRetryAttempts', num('MaximumRetryAttempts')),
        ...opt('maximumRecordAgeInSeconds', num('MaximumRecordAgeInSeconds')),
        ...opt('parallelizationFactor', num('ParallelizationFactor')),
        functionResponseTypes: ((this.prop(id, 'FunctionResponseTypes') as string[] | undefined) ?? []).map(
          String,
        ),
        ...opt('onFailureDestination', dest?.OnFailure?.Destination),
        enabled: this.prop(id, 'Enabled') !== false,
      } as EventSourceMappingModel;
    });
  }

  secrets(): Array<{
    logicalId: string;
    name: string;
    arn: string;
    generateSecretString?: Json;
    secretString?: string;
  }> {
    return this.resourcesOfType('AWS::SecretsManager::Secret').map(([id]) => {
      const gen = this.prop(id, 'GenerateSecretString');
      const str = this.prop(id, 'SecretString');
      return {
        logicalId: id,
        name: this.physicalName(id),
        arn: this.arn(id),
        ...(gen !== undefined ? { generateSecretString: gen } : {}),
        ...(typeof str === 'string' ? { secretString: str } : {}),
      };
    });
  }

  customResources(): CustomResourceModel[] {
    return Object.entries(this.template.Resources)
      .filter(([, r]) => isCustomResource(r.Type) && this.exists(r))
      .map(([id, r]) => {
        const token = r.Properties?.ServiceToken;
        const fnId = TemplateModel.referencedId(token);
        return {
          logicalId: id,
          type: r.Type,
          ...(fnId ? { serviceTokenFunctionLogicalId: fnId } : {}),
          properties: { ...(r.Properties ?? {}) },
        };
      });
  }

  // ─────────── API Gateway ───────────

  restApis(): Array<{ logicalId: string; id: string; name: string; rootResourceId: string }> {
    return this.resourcesOfType('AWS::ApiGateway::RestApi').map(([id]) => ({
      logicalId: id,
      id: this.ref(id),
      name: this.physicalName(id),
      rootResourceId: String(this.getAtt(id, 'RootResourceId')),
    }));
  }

  authorizers(): AuthorizerModel[] {
    return this.resourcesOfType('AWS::ApiGateway::Authorizer').map(([id, r]) => {
      const p = r.Properties ?? {};
      const name = this.prop(id, 'Name');
      const ttl = this.prop(id, 'AuthorizerResultTtlInSeconds');
      const src = this.prop(id, 'IdentitySource');
      const fn = this.lambdaInUri(p.AuthorizerUri);
      const api = TemplateModel.referencedId(p.RestApiId);
      return {
        logicalId: id,
        ...(typeof name === 'string' ? { name } : {}),
        type: String(this.prop(id, 'Type') ?? ''),
        ...(typeof src === 'string' ? { identitySource: src } : {}),
        // CloudFormation's default for a Lambda authorizer's cache is 300 s.
        resultTtlSeconds: ttl === undefined ? 300 : Number(ttl),
        ...(fn ? { functionLogicalId: fn } : {}),
        ...(api ? { restApiLogicalId: api } : {}),
      };
    });
  }

  methods(): MethodModel[] {
    return this.resourcesOfType('AWS::ApiGateway::Method').map(([id, r]) => {
      const p = r.Properties ?? {};
      const integration = (p.Integration ?? {}) as Record<string, Json>;
      const auth = TemplateModel.referencedId(p.AuthorizerId);
      const fn = this.lambdaInUri(integration.Uri);
      const api = TemplateModel.referencedId(p.RestApiId);
      const it = integration.Type;
      return {
        logicalId: id,
        ...(api ? { restApiLogicalId: api } : {}),
        httpMethod: String(this.prop(id, 'HttpMethod') ?? ''),
        path: this.apiPath(p.ResourceId),
        authorizationType: String(this.prop(id, 'AuthorizationType') ?? 'NONE'),
        ...(auth ? { authorizerLogicalId: auth } : {}),
        ...(typeof it === 'string' ? { integrationType: it } : {}),
        ...(fn ? { functionLogicalId: fn } : {}),
        requestParameters: (this.prop(id, 'RequestParameters') ?? {}) as Record<string, boolean>,
      };
    });
  }

  /** The path of an API Gateway resource id value (`Fn::GetAtt [Api, RootResourceId]` is `/`). */
  private apiPath(resourceId: Json | undefined): string {
    if (resourceId === undefined) return '/';
    const g =
      resourceId && typeof resourceId === 'object' && !Array.isArray(resourceId)
        ? resourceId['Fn::GetAtt']
        : undefined;
    if (Array.isArray(g) && g[1] === 'RootResourceId') return '/';
    const id = TemplateModel.referencedId(resourceId);
    if (!id) return '/';
    const r = this.resource(id);
    if (r.Type !== 'AWS::ApiGateway::Resource') return '/';
    const parent = this.apiPath(r.Properties?.ParentId);
    const part = this.resolveString(r.Properties?.PathPart, `Resources.${id}.Properties.PathPart`);
    return `${parent === '/' ? '' : parent}/${part}`;
  }

  /** The Lambda function named in an API Gateway integration / authorizer URI. */
  private lambdaInUri(uri: Json | undefined): string | undefined {
    if (uri === undefined) return undefined;
    let found: string | undefined;
    const walk = (v: Json) => {
      if (found || v === null || typeof v !== 'object') return;
      if (Array.isArray(v)) return v.forEach(walk);
      const id = TemplateModel.referencedId(v);
      if (id && this.template.Resources[id]?.Type === 'AWS::Lambda::Function') {
        found = id;
        return;
      }
      Object.values(v).forEach(walk);
    };
    walk(uri);
    if (found) return found;
    try {
      const s = this.resolveString(uri, 'uri');
      const m = /functions\/(arn:[^/]+)\/invocations/.exec(s);
      return m ? this.functionLogicalIdOf(m[1]!) : undefined;
    } catch {
      return undefined;
    }
  }

  // ─────────── IAM ───────────

  /**
   * The identity-policy statements of a function's execution role: the role's inline `Policies`,
   * every AWS::IAM::Policy and AWS::IAM::ManagedPolicy whose `Roles` name the role, and customer
   * managed policies of the template listed in ManagedPolicyArns. AWS-managed policies are returned by
   * ARN and name only (the harness treats AWSLambdaBasicExecutionRole as CloudWatch Logs only).
   * Each statement carries `source` (the policy's logical id or name) and resolved values.
   */
  policiesFor(functionLogicalId: string): RolePolicies {
    const fn = this.function(functionLogicalId);
    const out: RolePolicies = { functionLogicalId, roleArn: fn.roleArn, statements: [], managedPolicies: [] };
    const roleId = fn.roleLogicalId;
    if (!roleId) return out; // a role from outside the template: nothing to read
    out.roleLogicalId = roleId;
    const roleName = this.ref(roleId);
    const addDocument = (doc: Json | undefined, source: string, where: string) => {
      if (doc === undefined) return;
      const resolved = this.resolve(doc, where) as { Statement?: Json };
      const sts =
        resolved.Statement === undefined
          ? []
          : Array.isArray(resolved.Statement)
            ? resolved.Statement
            : [resolved.Statement];
      for (const st of sts) out.statements.push({ ...(st as unknown as IamStatement), source });
    };
    const role = this.resource(roleId);
    const inline = (role.Properties?.Policies ?? []) as Array<Record<string, Json>>;
    inline.forEach((p, i) => {
      const name = p.PolicyName === undefined ? `${roleId}.Policies[${i}]` : this.resolveString(p.PolicyName);
      addDocument(
        p.PolicyDocument,
        `${roleId}/${name}`,
        `Resources.${roleId}.Properties.Policies[${i}].PolicyDocument`,
      );
    });
    const managedInTemplate = new Map<string, string>();
    for (const [id] of this.resourcesOfType('AWS::IAM::ManagedPolicy'))
      managedInTemplate.set(this.ref(id), id);
    for (const type of ['AWS::IAM::Policy', 'AWS::IAM::ManagedPolicy']) {
      for (const [id, r] of this.resourcesOfType(type)) {
        const roles = (this.prop(id, 'Roles') ?? []) as Json[];
        if (!roles.some((x) => x === roleName || x === fn.roleArn)) continue;
        addDocument(r.Properties?.PolicyDocument, id, `Resources.${id}.Properties.PolicyDocument`);
      }
    }
    const arns = (this.prop(roleId, 'ManagedPolicyArns') ?? []) as Json[];
    for (const a of arns.map(String)) {
      const inTemplate = managedInTemplate.get(a);
      if (inTemplate) {
        const roles = (this.prop(inTemplate, 'Roles') ?? []) as Json[];
        if (!roles.includes(roleName))
          addDocument(
            this.resource(inTemplate).Properties?.PolicyDocument,
            inTemplate,
            `Resources.${inTemplate}.Properties.PolicyDocument`,
          );
        continue;
      }
      const m = /^arn:[^:]+:iam::([^:]*):policy\/(.+)$/.exec(a);
      const full = m?.[2] ?? a;
      out.managedPolicies.push({ arn: a, name: full.split('/').pop() ?? full, awsManaged: m?.[1] === 'aws' });
    }
    return out;
  }
}

// ───────────────────────────── helpers ─────────────────────────────

export function isCustomResource(type: string): boolean {
  return type.startsWith('Custom::') || type === 'AWS::CloudFormation::CustomResource';
}

function onlyEntry(obj: Record<string, Json>, where: string): [string, Json] {
  const entries = Object.entries(obj);
  if (entries.length !== 1) throw new TemplateError('expected one intrinsic function', where);
  return entries[0]!;
}

function asArray(v: Json, n: number | undefined, where: string): Json[] {
  if (!Array.isArray(v) || (n !== undefined && v.length !== n))
    throw new TemplateError(`expected a list${n === undefined ? '' : ` of ${n}`}`, where);
  return v;
}

function uuidFrom(seed: string): string {
  const h = hash(seed, 32);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}

/** Secrets Manager appends `-` and six random characters to a secret's name in its ARN. */
function secretSuffix(seed: string): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
  const bytes = crypto.createHash('sha256').update(seed).digest();
  return [...bytes.subarray(0, 6)].map((b) => alphabet[b % alphabet.length]).join('');
}
