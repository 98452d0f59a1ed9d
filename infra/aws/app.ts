/** CDK app entry (`cdk.json` → `npx tsx infra/aws/app.ts`). cdk-nag AwsSolutions checks run on synth. */
import { App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { pipeline } from '../pipeline.js';
import { readSettings } from './settings.js';
import { DualpathStack } from './stack.js';

const app = new App();
const settings = readSettings((key) => app.node.tryGetContext(key));
new DualpathStack(app, app.node.tryGetContext('stackName') ?? 'Dualpath', {
  settings,
  pipeline,
  env: { account: process.env.CDK_DEFAULT_ACCOUNT, region: process.env.CDK_DEFAULT_REGION },
  description: 'Dualpath: Sparkplug B + LwM2M 1.2 over one MQTT connection per device',
});
Validations.of(app).addPlugins(new AwsSolutionsChecks(app, { verbose: true }));
app.synth();
