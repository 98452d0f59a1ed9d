/**
 * API Gateway REST API in front of the one API router (the same routes the local stack serves).
 * Every route but GET /health requires a credential, checked by a Lambda REQUEST authorizer that
 * accepts the admin key (hash in Secrets Manager) or an application key (hash in the registry).
 * Throttling, access logs, execution logs and request validation are on.
 */
import { Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import {
  AccessLogFormat,
  AuthorizationType,
  IdentitySource,
  LambdaIntegration,
  LogGroupLogDestination,
  type Method,
  MethodLoggingLevel,
  RequestAuthorizer,
  RestApi,
} from 'aws-cdk-lib/aws-apigateway';
import type { NodejsFunction } from 'aws-cdk-lib/aws-lambda-nodejs';
import { LogGroup, type RetentionDays } from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';

export interface ApiProps {
  handler: NodejsFunction;
  authorizer: NodejsFunction;
  logRetention: RetentionDays;
  throttle: { rateLimit: number; burstLimit: number };
}

export class DualpathApi extends Construct {
  readonly api: RestApi;
  readonly publicMethods: Method[] = [];
  readonly proxyMethod: Method;

  constructor(scope: Construct, id: string, props: ApiProps) {
    super(scope, id);
    const accessLogs = new LogGroup(this, 'AccessLogs', {
      retention: props.logRetention,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    this.api = new RestApi(this, 'Api', {
      // The ApiName dimension of AWS/ApiGateway metrics: unique per stack, so two stacks' alarms never mix.
      restApiName: `${Stack.of(this).stackName}-api`,
      description: 'Dualpath registries, telemetry, commands and events',
      cloudWatchRole: true,
      deployOptions: {
        stageName: 'v1',
        throttlingRateLimit: props.throttle.rateLimit,
        throttlingBurstLimit: props.throttle.burstLimit,
        accessLogDestination: new LogGroupLogDestination(accessLogs),
        accessLogFormat: AccessLogFormat.jsonWithStandardFields(),
        loggingLevel: MethodLoggingLevel.ERROR,
        metricsEnabled: true,
      },
    });
    const authorizer = new RequestAuthorizer(this, 'KeyAuthorizer', {
      handler: props.authorizer,
      identitySources: [IdentitySource.header('Authorization')],
      resultsCacheTtl: Duration.minutes(5),
    });
    const validator = this.api.addRequestValidator('Validator', {
      validateRequestParameters: true,
      validateRequestBody: false,
    });
    const integration = new LambdaIntegration(props.handler, { proxy: true });
    // Public: health only.
    const health = this.api.root.addResource('health').addMethod('GET', integration, {
      authorizationType: AuthorizationType.NONE,
      requestValidator: validator,
    });
    const openapi = this.api.root.addResource('openapi.json').addMethod('GET', integration, {
      authorizationType: AuthorizationType.NONE,
      requestValidator: validator,
    });
    // Everything else through the authorizer; the router validates bodies and parameters itself.
    const proxy = this.api.root.addResource('{proxy+}');
    this.publicMethods.push(health, openapi);
    this.proxyMethod = proxy.addMethod('ANY', integration, {
      authorizer,
      authorizationType: AuthorizationType.CUSTOM,
      requestValidator: validator,
      requestParameters: { 'method.request.header.Authorization': true },
    });
  }
}
