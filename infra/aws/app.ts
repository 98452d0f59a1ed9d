/**
 * CDK app entry (`cdk.json` → `npx tsx infra/aws/app.ts`). Settings: `-c key=value` > the deployment
 * config file (deploy.config.json, or `-c deployConfig=<path>`) > cdk.json defaults (ADR 0014).
 * cdk-nag AwsSolutions checks run on synth. `createApp` builds the same app in-process (tests, the
 * deploy harness); run as a script, the file synthesizes it.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { App, type AppProps, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { pipeline as realPipeline } from '../pipeline.js';
import {
  DEPLOY_CONFIG_FILE,
  describeDeployment,
  parseDeployConfig,
  type ResolvedDeployment,
  resolveDeployment,
} from './settings.js';
import { DualpathStack, REPO_ROOT, type StackPipeline } from './stack.js';

export interface CreateAppOptions extends AppProps {
  /** The pipeline definition (tests swap the entry points); default infra/pipeline.ts. */
  pipeline?: StackPipeline;
  /** Where cdk.json and deploy.config.json are; default the repository root. */
  root?: string;
  /** Where the settings line goes; default stderr. */
  log?: (line: string) => void;
}

export function createApp(options: CreateAppOptions = {}): {
  app: App;
  stack: DualpathStack;
  deployment: ResolvedDeployment;
} {
  const { pipeline = realPipeline, root = REPO_ROOT, log, ...appProps } = options;
  const app = new App(appProps);
  const configPath = path.resolve(
    (app.node.tryGetContext('deployConfig') as string | undefined) ?? path.join(root, DEPLOY_CONFIG_FILE),
  );
  const cdkJson = JSON.parse(fs.readFileSync(path.join(root, 'cdk.json'), 'utf8')) as {
    context?: Record<string, unknown>;
  };
  const deployment = resolveDeployment({
    context: (key) => app.node.tryGetContext(key),
    defaults: cdkJson.context ?? {},
    ...(fs.existsSync(configPath)
      ? { file: parseDeployConfig(JSON.parse(fs.readFileSync(configPath, 'utf8')), configPath) }
      : {}),
    fileName: configPath,
  });
  (log ?? ((line) => process.stderr.write(`${line}\n`)))(
    `Dualpath settings: ${describeDeployment(deployment)}`,
  );

  const stack = new DualpathStack(app, deployment.stackName, {
    settings: deployment.settings,
    pipeline,
    env: { account: process.env.CDK_DEFAULT_ACCOUNT, region: process.env.CDK_DEFAULT_REGION },
    description: 'Dualpath: Sparkplug B + LwM2M 1.2 over one MQTT connection per device',
  });
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app, { verbose: true }));
  return { app, stack, deployment };
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  createApp().app.synth();
}
