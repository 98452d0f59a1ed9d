/**
 * CDK app entry (`cdk.json` → `npx tsx infra/aws/app.ts`). Settings: `-c key=value` > the deployment
 * config file (deploy.config.json, or `-c deployConfig=<path>`) > cdk.json defaults (ADR 0014).
 * cdk-nag AwsSolutions checks run on synth.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { pipeline } from '../pipeline.js';
import { DEPLOY_CONFIG_FILE, describeDeployment, parseDeployConfig, resolveDeployment } from './settings.js';
import { DualpathStack, REPO_ROOT } from './stack.js';

const app = new App();
const configPath = path.resolve(
  (app.node.tryGetContext('deployConfig') as string | undefined) ?? path.join(REPO_ROOT, DEPLOY_CONFIG_FILE),
);
const cdkJson = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'cdk.json'), 'utf8')) as {
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
process.stderr.write(`Dualpath settings: ${describeDeployment(deployment)}\n`);

new DualpathStack(app, deployment.stackName, {
  settings: deployment.settings,
  pipeline,
  env: { account: process.env.CDK_DEFAULT_ACCOUNT, region: process.env.CDK_DEFAULT_REGION },
  description: 'Dualpath: Sparkplug B + LwM2M 1.2 over one MQTT connection per device',
});
Validations.of(app).addPlugins(new AwsSolutionsChecks(app, { verbose: true }));
app.synth();
