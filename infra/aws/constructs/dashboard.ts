/**
 * The dashboard in AWS (ADR 0023, amendment "The dashboard in AWS"): a small function serving the
 * local stack's dashboard files (infra/local/dashboard/, copied beside its bundle) on the REST API's
 * public GET routes `/` and `/dashboard/{file}`, and `dashboard/config.json` naming the live WebSocket
 * URL. No table, no secret, no SDK: its role is CloudWatch Logs only.
 */
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Duration } from 'aws-cdk-lib';
import { AuthorizationType, LambdaIntegration, type Method, type RestApi } from 'aws-cdk-lib/aws-apigateway';
import { Architecture, Runtime, Tracing } from 'aws-cdk-lib/aws-lambda';
import { NodejsFunction, OutputFormat } from 'aws-cdk-lib/aws-lambda-nodejs';
import { LogGroup, type RetentionDays } from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';

export const DASHBOARD_ENTRY = 'functions/dashboard/handler.ts';
const FILES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'local', 'dashboard');
const shellWord = (s: string) => `'${s.replace(/'/g, "'\\''")}'`;

export interface DashboardProps {
  /** functions/dashboard/handler.ts, absolute. */
  entry: string;
  api: RestApi;
  /** The WebSocket live URL (the stack's LiveUrl). */
  liveUrl: string;
  logRetention: RetentionDays;
}

export class DualpathDashboard extends Construct {
  readonly fn: NodejsFunction;
  readonly methods: Method[];

  constructor(scope: Construct, id: string, props: DashboardProps) {
    super(scope, id);
    this.fn = new NodejsFunction(this, 'Function', {
      entry: props.entry,
      handler: 'handler',
      runtime: Runtime.NODEJS_22_X,
      architecture: Architecture.ARM_64,
      memorySize: 128,
      timeout: Duration.seconds(5),
      description: 'Dualpath dashboard: static files and config.json on public GET routes',
      logGroup: new LogGroup(this, 'Logs', { retention: props.logRetention }),
      tracing: Tracing.DISABLED,
      environment: { POWERTOOLS_METRICS_NAMESPACE: 'Dualpath', DASHBOARD_LIVE_URL: props.liveUrl },
      bundling: {
        minify: true,
        format: OutputFormat.ESM,
        target: 'node22',
        forceDockerBundling: false,
        commandHooks: {
          beforeBundling: () => [],
          beforeInstall: () => [],
          afterBundling: (_in: string, out: string) => [
            `mkdir -p ${shellWord(path.join(out, 'dashboard'))}`,
            `cp ${shellWord(FILES)}/*.html ${shellWord(FILES)}/*.js ${shellWord(FILES)}/*.css ${shellWord(path.join(out, 'dashboard'))}/`,
          ],
        },
      },
    });
    const integration = new LambdaIntegration(this.fn, { proxy: true });
    const open = { authorizationType: AuthorizationType.NONE };
    this.methods = [
      props.api.root.addMethod('GET', integration, open),
      props.api.root
        .addResource('dashboard')
        .addResource('{file}')
        .addMethod('GET', integration, { ...open, requestParameters: { 'method.request.path.file': true } }),
    ];
  }
}
