/**
 * The harness's view of a synthesized template: every resource gets a local physical name and ARN
 * (as CloudFormation would generate them), intrinsics (Ref, Fn::GetAtt, Fn::Join, Fn::Sub,
 * Fn::Select, Fn::Split, pseudo parameters) resolve against them, and each Lambda function is
 * described by what the deploy ships: its asset directory, handler string, runtime, environment
 * and the IAM statements of its execution role.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';

export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

export interface CfnResource {
  Type: string;
  Properties?: Record<string, Json>;
  DependsOn?: string | string[];
}

export interface Template {
  Resources: Record<string, CfnResource>;
  Outputs?: Record<string, Json>;
}

export interface IamStatement {
  Sid?: string;
  Effect: 'Allow' | 'Deny';
  Action?: string | string[];
  NotAction?: string | string[];
  Resource?: string | string[];
  NotResource?: string | string[];
  Condition?: Record<string, Record<string, string | string[]>>;
}

export interface LambdaFunctionModel {
  logicalId: string;
  name: string;
  arn: string;
  handler: string;
  runtime: string;
  memoryMb: number;
  timeoutSeconds: number;
  assetDir: string;
  environment: Record<string, string>;
  roleLogicalId: string | undefined;
  /** Inline and attached (AWS::IAM::Policy) statements of the execution role, resolved. */
  statements: Array<IamStatement & { policy: string }>;
  managedPolicyArns: string[];
}

export const REGION = 'us-east-1';
export const ACCOUNT = '123456789012';

/** Resolutions a caller supplies for attributes only a deployment knows (custom resources). */
export type AttributeOverrides = Record<string, Record<string, string>>;

export class TemplateModel {
  readonly stackName: string;
  private readonly physical = new Map<string, string>();

  constructor(
    readonly template: Template,
    readonly assemblyDir: string,
    opts: { stackName: string; attributes?: AttributeOverrides; seed?: string },
  ) {
    this.stackName = opts.stackName;
    const seed = opts.seed ?? 'local';
    for (const id of Object.keys(template.Resources)) {
      const suffix = crypto
        .createHash('sha256')
        .update(`${seed}/${id}`)
        .digest('hex')
        .slice(0, 12)
        .toUpperCase();
      this.physical.set(id, `${this.stackName}-${id}-${suffix}`.slice(0, 140));
    }
    this.attributes = opts.attributes ?? {};
  }

  attributes: AttributeOverrides;

  static load(assemblyDir: string, opts: { attributes?: AttributeOverrides } = {}): TemplateModel {
    const files = fs.readdirSync(assemblyDir).filter((f) => f.endsWith('.template.json'));
    if (files.length !== 1) {
      throw new Error(
        `${assemblyDir}: expected one *.template.json, found ${files.length} (${files.join(', ')})`,
      );
    }
    const file = files[0]!;
    const template = JSON.parse(fs.readFileSync(path.join(assemblyDir, file), 'utf8')) as Template;
    return new TemplateModel(template, assemblyDir, {
      stackName: file.replace(/\.template\.json$/, ''),
      ...(opts.attributes ? { attributes: opts.attributes } : {}),
    });
  }

  resource(id: string): CfnResource {
    const r = this.template.Resources[id];
    if (!r) throw new Error(`the template has no resource ${id}`);
    return r;
  }

  ofType(type: string): Array<[string, CfnResource]> {
    return Object.entries(this.template.Resources).filter(([, r]) => r.Type === type);
  }

  /** The physical name (or id) CloudFormation would return for `Ref`. */
  ref(id: string): string {
    switch (id) {
      case 'AWS::Region':
        return REGION;
      case 'AWS::AccountId':
        return ACCOUNT;
      case 'AWS::Partition':
        return 'aws';
      case 'AWS::StackName':
        return this.stackName;
      case 'AWS::StackId':
        return `arn:aws:cloudformation:${REGION}:${ACCOUNT}:stack/${this.stackName}/00000000-0000-0000-0000-000000000000`;
      case 'AWS::URLSuffix':
        return 'amazonaws.com';
      case 'AWS::NoValue':
        return '';
    }
    const r = this.resource(id);
    const name = this.physicalName(id);
    switch (r.Type) {
      case 'AWS::SecretsManager::Secret':
      case 'AWS::SNS::Topic':
      case 'AWS::IAM::ManagedPolicy':
        return this.arn(id);
      case 'AWS::SQS::Queue':
        return `https://sqs.${REGION}.amazonaws.com/${ACCOUNT}/${name}`;
      default:
        return name;
    }
  }

  /** The physical name: the resource's explicit name property when it has one, else generated. */
  physicalName(id: string): string {
    const r = this.resource(id);
    const p = r.Properties ?? {};
    const explicit: Record<string, string> = {
      'AWS::DynamoDB::Table': 'TableName',
      'AWS::Lambda::Function': 'FunctionName',
      'AWS::Kinesis::Stream': 'Name',
      'AWS::SQS::Queue': 'QueueName',
      'AWS::SecretsManager::Secret': 'Name',
      'AWS::IAM::Role': 'RoleName',
      'AWS::Timestream::Database': 'DatabaseName',
      'AWS::Timestream::Table': 'TableName',
      'AWS::IoT::TopicRule': 'RuleName',
      'AWS::Events::EventBus': 'Name',
    };
    const prop = explicit[r.Type];
    if (prop && p[prop] !== undefined) return String(this.resolve(p[prop]!));
    if (r.Type === 'AWS::IoT::TopicRule') return id;
    return this.physical.get(id)!;
  }

  arn(id: string): string {
    const r = this.resource(id);
    const name = this.physicalName(id);
    switch (r.Type) {
      case 'AWS::DynamoDB::Table':
        return `arn:aws:dynamodb:${REGION}:${ACCOUNT}:table/${name}`;
      case 'AWS::Kinesis::Stream':
        return `arn:aws:kinesis:${REGION}:${ACCOUNT}:stream/${name}`;
      case 'AWS::SQS::Queue':
        return `arn:aws:sqs:${REGION}:${ACCOUNT}:${name}`;
      case 'AWS::Lambda::Function':
        return `arn:aws:lambda:${REGION}:${ACCOUNT}:function:${name}`;
      case 'AWS::IAM::Role':
        return `arn:aws:iam::${ACCOUNT}:role/${name}`;
      case 'AWS::SecretsManager::Secret':
        return `arn:aws:secretsmanager:${REGION}:${ACCOUNT}:secret:${name}-AbCdEf`;
      case 'AWS::SNS::Topic':
        return `arn:aws:sns:${REGION}:${ACCOUNT}:${name}`;
      case 'AWS::Timestream::Database':
        return `arn:aws:timestream:${REGION}:${ACCOUNT}:database/${name}`;
      case 'AWS::Timestream::Table': {
        const db = this.resolve(r.Properties?.DatabaseName ?? '');
        return `arn:aws:timestream:${REGION}:${ACCOUNT}:database/${db}/table/${name}`;
      }
      case 'AWS::IoT::TopicRule':
        return `arn:aws:iot:${REGION}:${ACCOUNT}:rule/${name}`;
      case 'AWS::Logs::LogGroup':
        return `arn:aws:logs:${REGION}:${ACCOUNT}:log-group:${name}:*`;
      case 'AWS::Events::EventBus':
        return `arn:aws:events:${REGION}:${ACCOUNT}:event-bus/${name}`;
      default:
        return `arn:aws:${r.Type.split('::')[1]?.toLowerCase()}:${REGION}:${ACCOUNT}:${name}`;
    }
  }

  getAtt(id: string, attr: string): string {
    const override = this.attributes[id]?.[attr];
    if (override !== undefined) return override;
    const r = this.resource(id);
    if (attr === 'Arn') return this.arn(id);
    if (r.Type === 'AWS::SQS::Queue' && attr === 'QueueName') return this.physicalName(id);
    if (r.Type === 'AWS::SQS::Queue' && attr === 'QueueUrl') return this.ref(id);
    if (r.Type === 'AWS::DynamoDB::Table' && attr === 'StreamArn') return `${this.arn(id)}/stream/local`;
    if (r.Type === 'AWS::ApiGateway::RestApi' && attr === 'RootResourceId') return `${id}-root`;
    if (r.Type === 'AWS::Timestream::Table' && attr === 'Name') return this.physicalName(id);
    if (r.Type === 'AWS::Timestream::Database' && attr === 'Name') return this.physicalName(id);
    throw new UnresolvedAttributeError(id, attr);
  }

  resolve(value: Json): Json {
    if (value === null || typeof value !== 'object') return value;
    if (Array.isArray(value)) return value.map((v) => this.resolve(v));
    const keys = Object.keys(value);
    if (keys.length === 1) {
      const k = keys[0]!;
      const v = value[k]!;
      switch (k) {
        case 'Ref':
          return this.ref(String(v));
        case 'Fn::GetAtt': {
          const [id, attr] = Array.isArray(v) ? v.map(String) : String(v).split('.');
          return this.getAtt(id!, attr!);
        }
        case 'Fn::Join': {
          const [sep, parts] = v as [string, Json[]];
          return (this.resolve(parts) as Json[]).map(String).join(sep);
        }
        case 'Fn::Select': {
          const [index, list] = v as [Json, Json];
          return (this.resolve(list) as Json[])[Number(this.resolve(index))] ?? null;
        }
        case 'Fn::Split': {
          const [sep, s] = v as [string, Json];
          return String(this.resolve(s)).split(sep);
        }
        case 'Fn::Sub': {
          const [text, vars] = Array.isArray(v) ? (v as [string, Record<string, Json>]) : [String(v), {}];
          return text.replace(/\$\{([^}!]+)\}/g, (_m, name: string) => {
            if (vars[name] !== undefined) return String(this.resolve(vars[name]!));
            if (name.includes('.')) {
              const [id, attr] = name.split('.');
              return this.getAtt(id!, attr!);
            }
            return this.ref(name);
          });
        }
      }
    }
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, this.resolve(v)]));
  }

  /** The logical id a `{Ref}` / `{Fn::GetAtt}` value points at, if it is one. */
  static target(value: Json | undefined): string | undefined {
    if (value && typeof value === 'object' && !Array.isArray(value)) {
      if (typeof value.Ref === 'string') return value.Ref;
      const ga = value['Fn::GetAtt'];
      if (Array.isArray(ga)) return String(ga[0]);
      if (typeof ga === 'string') return ga.split('.')[0];
    }
    return undefined;
  }

  /** Every logical id a value refers to (Ref / GetAtt anywhere inside it). */
  static references(value: Json | undefined, out = new Set<string>()): Set<string> {
    if (value && typeof value === 'object') {
      if (Array.isArray(value)) for (const v of value) TemplateModel.references(v, out);
      else {
        const t = TemplateModel.target(value);
        if (t) out.add(t);
        for (const v of Object.values(value)) TemplateModel.references(v, out);
      }
    }
    return out;
  }

  /** The asset directory of a function's code: Code.S3Key (`<hash>.zip`) → `asset.<hash>`. */
  assetDir(id: string): string {
    const code = (this.resource(id).Properties?.Code ?? {}) as Record<string, Json>;
    const key = this.resolve(code.S3Key ?? null);
    if (typeof key !== 'string') {
      throw new Error(`function ${id}: Code has no S3Key (inline code is not supported by the harness)`);
    }
    const hash = key.replace(/\.zip$/, '');
    const assetsFile = fs.readdirSync(this.assemblyDir).find((f) => f.endsWith('.assets.json'));
    if (assetsFile) {
      const manifest = JSON.parse(fs.readFileSync(path.join(this.assemblyDir, assetsFile), 'utf8')) as {
        files?: Record<string, { source: { path: string } }>;
      };
      const src = manifest.files?.[hash]?.source.path;
      if (src) return path.resolve(this.assemblyDir, src);
    }
    const dir = path.join(this.assemblyDir, `asset.${hash}`);
    if (!fs.existsSync(dir))
      throw new Error(`function ${id}: asset ${hash} not found in ${this.assemblyDir}`);
    return dir;
  }

  functionIds(): string[] {
    return this.ofType('AWS::Lambda::Function').map(([id]) => id);
  }

  fn(id: string): LambdaFunctionModel {
    {
      const r = this.resource(id);
      const p = r.Properties ?? {};
      const envVars = ((p.Environment as Record<string, Json> | undefined)?.Variables ?? {}) as Record<
        string,
        Json
      >;
      const environment: Record<string, string> = {};
      for (const [k, v] of Object.entries(envVars)) environment[k] = String(this.resolve(v));
      const roleId = TemplateModel.target(p.Role);
      return {
        logicalId: id,
        name: this.physicalName(id),
        arn: this.arn(id),
        handler: String(p.Handler ?? ''),
        runtime: String(p.Runtime ?? ''),
        memoryMb: Number(p.MemorySize ?? 128),
        timeoutSeconds: Number(p.Timeout ?? 3),
        assetDir: this.assetDir(id),
        environment,
        roleLogicalId: roleId,
        statements: roleId ? this.roleStatements(roleId) : [],
        managedPolicyArns: roleId
          ? ((this.resource(roleId).Properties?.ManagedPolicyArns ?? []) as Json[]).map((a) =>
              String(this.resolve(a)),
            )
          : [],
      };
    }
  }

  /** Statements of a role: its inline Policies and every AWS::IAM::Policy that names it. */
  roleStatements(roleId: string): Array<IamStatement & { policy: string }> {
    const out: Array<IamStatement & { policy: string }> = [];
    const add = (policy: string, doc: Json | undefined) => {
      const statements = ((doc as Record<string, Json> | undefined)?.Statement ?? []) as Json[];
      for (const st of statements) out.push({ ...(this.resolve(st) as unknown as IamStatement), policy });
    };
    const role = this.resource(roleId);
    for (const p of (role.Properties?.Policies ?? []) as Array<Record<string, Json>>) {
      add(`${roleId}/${String(p.PolicyName)}`, p.PolicyDocument);
    }
    for (const [id, r] of this.ofType('AWS::IAM::Policy')) {
      const roles = (r.Properties?.Roles ?? []) as Json[];
      if (roles.some((x) => TemplateModel.target(x) === roleId)) add(id, r.Properties?.PolicyDocument);
    }
    return out;
  }
}

export class UnresolvedAttributeError extends Error {
  constructor(
    readonly logicalId: string,
    readonly attribute: string,
  ) {
    super(`cannot resolve Fn::GetAtt ${logicalId}.${attribute} locally`);
    this.name = 'UnresolvedAttributeError';
  }
}
