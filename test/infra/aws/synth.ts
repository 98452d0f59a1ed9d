/**
 * Synthesizes the stack for the infra tests: the real pipeline definition with the entry points swapped
 * for a tiny handler (so bundling is fast), settings resolved exactly as infra/aws/app.ts resolves them
 * (context > config file > cdk.json defaults), cdk-nag on. One synth per variant per test file.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { App, Validations } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { AwsSolutionsChecks } from 'cdk-nag';
import { resolveDeployment } from '../../../infra/aws/settings.js';
import { DualpathStack, REPO_ROOT } from '../../../infra/aws/stack.js';
import { pipeline as realPipeline } from '../../../infra/pipeline.js';

export const CDK_DEFAULTS = (
  JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'cdk.json'), 'utf8')) as {
    context: Record<string, unknown>;
  }
).context;

const FIXTURE = 'test/fixtures/infra/lambda.ts';
export const pipeline = {
  ...realPipeline,
  functions: {
    sparkplugIngest: { ...realPipeline.functions.sparkplugIngest, entry: FIXTURE },
    lwm2mIngest: { ...realPipeline.functions.lwm2mIngest, entry: FIXTURE },
    api: { ...realPipeline.functions.api, entry: FIXTURE, authorizerEntry: FIXTURE },
  },
};

export interface Synthesized {
  stackName: string;
  template: Template;
  json: { Resources: Record<string, CfnResource>; Outputs?: Record<string, { Value: unknown }> };
  /** The stack's asset manifest in the cloud assembly. */
  assets: { files?: Record<string, unknown>; dockerImages?: Record<string, unknown> };
  findings: Array<{ rule: string; path: string }>;
}

export interface CfnResource {
  Type: string;
  Properties?: Record<string, unknown>;
  DeletionPolicy?: string;
}

/** Synthesizes one app holding one stack per entry of `stacks` (extra context per stack name). */
export function synth(stacks: Record<string, Record<string, string>>, file?: Record<string, unknown>) {
  const app = new App({ context: { ...CDK_DEFAULTS } });
  const built = Object.entries(stacks).map(([name, context]) => {
    const d = resolveDeployment({
      context: (k) => context[k] ?? app.node.tryGetContext(k),
      defaults: CDK_DEFAULTS,
      ...(file ? { file } : {}),
    });
    const stack = new DualpathStack(app, name === '' ? d.stackName : name, {
      settings: d.settings,
      pipeline,
      env: { account: '123456789012', region: 'eu-west-1' },
    });
    return stack;
  });
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
  const assembly = app.synth();
  const findings = readFindings(assembly.directory);
  return built.map((stack): Synthesized => {
    const artifact = assembly.getStackArtifact(stack.artifactId);
    const assetManifest = assembly.artifacts.find((a) => a.id === `${stack.artifactId}.assets`) as unknown as
      | { file: string }
      | undefined;
    return {
      stackName: stack.stackName,
      template: Template.fromStack(stack),
      json: artifact.template,
      assets: assetManifest ? JSON.parse(fs.readFileSync(assetManifest.file, 'utf8')) : {},
      findings,
    };
  });
}

function readFindings(dir: string): Array<{ rule: string; path: string }> {
  // cdk-nag v3 reports through CDK's policy validation report in the cloud assembly.
  const file = ['validation-report.json', 'policy-validation-report.json']
    .map((f) => path.join(dir, f))
    .find((f) => fs.existsSync(f));
  if (!file) return [];
  const report = JSON.parse(fs.readFileSync(file, 'utf8')) as {
    pluginReports?: Array<{
      violations?: Array<{
        ruleName: string;
        violatingResources?: Array<{ resourceLogicalId?: string }>;
        violatingConstructs?: Array<{ constructPath?: string }>;
      }>;
    }>;
  };
  return (report.pluginReports ?? []).flatMap((p) =>
    (p.violations ?? []).flatMap((v) =>
      [
        ...(v.violatingResources ?? []).map((r) => r.resourceLogicalId ?? ''),
        ...(v.violatingConstructs ?? []).map((c) => c.constructPath ?? ''),
      ].map((where) => ({ rule: v.ruleName, path: where })),
    ),
  );
}

/** Our functions (built by nodeFunction): logical id → environment variables. */
export function functionEnvironments(s: Synthesized): Record<string, Record<string, unknown>> {
  const out: Record<string, Record<string, unknown>> = {};
  for (const [id, r] of Object.entries(s.json.Resources)) {
    if (r.Type !== 'AWS::Lambda::Function') continue;
    const vars = (r.Properties?.Environment as { Variables?: Record<string, unknown> } | undefined)
      ?.Variables;
    if (vars?.POWERTOOLS_METRICS_NAMESPACE === 'Dualpath') out[id] = vars;
  }
  return out;
}

/** The logical id of the function whose id starts with `prefix` (e.g. 'ApiFunction'). */
export function functionId(s: Synthesized, prefix: string): string {
  const id = Object.keys(functionEnvironments(s)).find((k) => k.startsWith(prefix));
  if (!id) throw new Error(`no function ${prefix}* in ${s.stackName}`);
  return id;
}

export interface Statement {
  Sid?: string;
  Action: string | string[];
  Resource: unknown;
}

/** The role policy statements of one of our functions (logical id starting with `prefix`). */
export function statementsOf(s: Synthesized, prefix: string): Statement[] {
  const fn = s.json.Resources[functionId(s, prefix)]!;
  const roleId = (fn.Properties as { Role: { 'Fn::GetAtt': [string, string] } }).Role['Fn::GetAtt'][0];
  return Object.values(s.json.Resources)
    .filter(
      (r) =>
        r.Type === 'AWS::IAM::Policy' &&
        (r.Properties as { Roles: Array<{ Ref: string }> }).Roles.some((x) => x.Ref === roleId),
    )
    .flatMap(
      (r) => (r.Properties as { PolicyDocument: { Statement: Statement[] } }).PolicyDocument.Statement,
    );
}
