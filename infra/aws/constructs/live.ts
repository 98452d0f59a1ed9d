/**
 * Live updates in AWS (ADR 0023): an API Gateway WebSocket API whose routes ($connect, $disconnect,
 * subscribe, $default) are served by the live-connections function, a stage with throttling and access
 * logs (no query strings, no headers: keys never reach a log), and the connections table (on demand,
 * encrypted, TTL). The publishers (ingest functions, rules clock, operations worker) get the stage's
 * management endpoint in LIVE_ENDPOINT and the table in LIVE_CONNECTIONS_TABLE (`addPublisher`); their
 * grants are rows of access.ts (LIVE_PUBLISH_ACCESS, `execute-api:ManageConnections` on this stage's
 * `POST @connections/*` only).
 */
import { Aws, type CfnElement, RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import { AccessLogFormat } from 'aws-cdk-lib/aws-apigateway';
import {
  type CfnStage,
  LogGroupLogDestination,
  WebSocketApi,
  WebSocketStage,
} from 'aws-cdk-lib/aws-apigatewayv2';
import { WebSocketLambdaIntegration } from 'aws-cdk-lib/aws-apigatewayv2-integrations';
import { AttributeType, BillingMode, Table, TableEncryption } from 'aws-cdk-lib/aws-dynamodb';
import { PolicyStatement } from 'aws-cdk-lib/aws-iam';
import type { NodejsFunction } from 'aws-cdk-lib/aws-lambda-nodejs';
import { LogGroup, type RetentionDays } from 'aws-cdk-lib/aws-logs';
import { Construct, type IConstruct } from 'constructs';
import { nodeFunction } from './ingest-function.js';

export const LIVE_ENTRY = 'functions/live-connections/handler.ts';
export const LIVE_STAGE = 'v1';

export interface LiveProps {
  /** functions/live-connections/handler.ts, absolute. */
  entry: string;
  /** REGISTRY_TABLE, STATE_TABLE, EVENTS_TABLE, TELEMETRY_BACKEND (loadConfig) and ADMIN_KEY_SECRET_ARN. */
  environment: Record<string, string>;
  logRetention: RetentionDays;
  throttle: { rateLimit: number; burstLimit: number };
  /** Resources the stage waits for (the API Gateway account's CloudWatch role, for execution logs). */
  dependsOn?: IConstruct[];
}

export class DualpathLive extends Construct {
  readonly api: WebSocketApi;
  readonly stage: WebSocketStage;
  readonly table: Table;
  readonly fn: NodejsFunction;

  constructor(scope: Construct, id: string, props: LiveProps) {
    super(scope, id);
    // One partition of connection items (functions/adapters/dynamo-live-connections.ts); short-lived
    // data, destroyed with the stack. PITR like every table of the stack (billed per GB: a few KB here).
    this.table = new Table(this, 'ConnectionsTable', {
      partitionKey: { name: 'pk', type: AttributeType.STRING },
      sortKey: { name: 'sk', type: AttributeType.STRING },
      billingMode: BillingMode.PAY_PER_REQUEST,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      encryption: TableEncryption.AWS_MANAGED,
      timeToLiveAttribute: 'expiresAt',
      removalPolicy: RemovalPolicy.DESTROY,
    });
    this.fn = nodeFunction(this, 'ConnectionsFunction', {
      entry: props.entry,
      memoryMb: 256,
      timeoutSeconds: 10,
      description:
        'Dualpath live updates: WebSocket connect (key + subscription check), subscribe, disconnect',
      logRetention: props.logRetention,
      environment: {
        ...props.environment,
        LIVE_CONNECTIONS_TABLE: this.table.tableName,
        POWERTOOLS_SERVICE_NAME: 'live-connections',
      },
    });
    const integration = () => new WebSocketLambdaIntegration('Connections', this.fn);
    this.api = new WebSocketApi(this, 'Api', {
      description: 'Dualpath live updates (readings, lifecycle, alerts, operation progress)',
      routeSelectionExpression: '$request.body.action',
      connectRouteOptions: { integration: integration() },
      disconnectRouteOptions: { integration: integration() },
      defaultRouteOptions: { integration: integration(), returnResponse: true },
    });
    this.api.addRoute('subscribe', { integration: integration(), returnResponse: true });
    // cdk-nag: no API Gateway authorizer on purpose — $connect's integration checks the key itself, and
    // the other routes exist only on a connection $connect accepted.
    for (const route of ['$connect', '$disconnect', '$default', 'subscribe'])
      Validations.of(this.api.node.findChild(`${route}-Route`)).acknowledge({
        id: 'AwsSolutions::AwsSolutions-APIG4',
        reason:
          route === '$connect'
            ? 'The key is checked by the $connect integration itself (the REST Authenticator and subscription scoping); any non-2xx answer refuses the upgrade, and a REQUEST authorizer would cost a second invocation per connect.'
            : 'Reachable only over a connection whose $connect was authorized by key.',
      });
    const accessLogs = new LogGroup(this, 'AccessLogs', {
      retention: props.logRetention,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    this.stage = new WebSocketStage(this, 'Stage', {
      webSocketApi: this.api,
      stageName: LIVE_STAGE,
      autoDeploy: true,
      throttle: props.throttle,
      accessLogSettings: {
        destination: new LogGroupLogDestination(accessLogs),
        // No query string, no header: the subscription's device is in the connection item, keys nowhere.
        format: AccessLogFormat.custom(
          JSON.stringify({
            requestId: '$context.requestId',
            connectionId: '$context.connectionId',
            routeKey: '$context.routeKey',
            eventType: '$context.eventType',
            status: '$context.status',
            sourceIp: '$context.identity.sourceIp',
            requestTime: '$context.requestTimeEpoch',
            integrationLatency: '$context.integrationLatency',
            error: '$context.error.message',
          }),
        ),
      },
    });
    (this.stage.node.defaultChild as CfnStage).addPropertyOverride(
      'DefaultRouteSettings.LoggingLevel',
      'ERROR',
    );
    for (const d of props.dependsOn ?? []) this.stage.node.addDependency(d);
  }

  /** The management endpoint the publishers post to: https://{api}.execute-api.{region}.{suffix}/{stage}. */
  get endpoint(): string {
    return this.stage.callbackUrl;
  }

  /** The WebSocket URL clients connect to (stack output). */
  get url(): string {
    return this.stage.url;
  }

  /** `execute-api:ManageConnections` on this stage's PostToConnection only. */
  manageConnectionsStatement(): PolicyStatement {
    return new PolicyStatement({
      sid: 'PostToLiveConnections',
      actions: ['execute-api:ManageConnections'],
      resources: [
        `arn:${Aws.PARTITION}:execute-api:${Aws.REGION}:${Aws.ACCOUNT_ID}:${this.api.apiId}/${this.stage.stageName}/POST/@connections/*`,
      ],
    });
  }

  /** A function that publishes live events: its environment and its ManageConnections grant. */
  addPublisher(fn: NodejsFunction): void {
    fn.addEnvironment('LIVE_CONNECTIONS_TABLE', this.table.tableName);
    fn.addEnvironment('LIVE_ENDPOINT', this.endpoint);
    fn.addToRolePolicy(this.manageConnectionsStatement());
    const api = Stack.of(this).getLogicalId(this.api.node.defaultChild as CfnElement);
    Validations.of(fn).acknowledge({
      id: `AwsSolutions::AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:execute-api:<AWS::Region>:<AWS::AccountId>:<${api}>/${LIVE_STAGE}/POST/@connections/*]`,
      reason:
        'PostToConnection to any connection of this stage: connection ids are assigned by API Gateway at connect time.',
    });
  }
}
