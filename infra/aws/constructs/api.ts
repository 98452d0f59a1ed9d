/**
 * API Gateway REST API in front of the one API router (the same routes the local stack serves).
 * Every route but GET /health requires a credential, checked by a Lambda REQUEST authorizer that
 * accepts the admin key (hash in Secrets Manager) or an application key (hash in the registry).
 * Throttling, access logs, execution logs and request validation are on.
 */
import { Aws, Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import {
  AccessLogFormat,
  AuthorizationType,
  IdentitySource,
  LambdaIntegration,
  LogGroupLogDestination,
  type Method,
  MethodLoggingLevel,
  RequestAuthorizer,
  ResponseType,
  RestApi,
} from 'aws-cdk-lib/aws-apigateway';
import type { NodejsFunction } from 'aws-cdk-lib/aws-lambda-nodejs';
import { LogGroup, type RetentionDays } from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { API_SECURITY_HEADERS, AUTH_CHALLENGE } from '../../../functions/api/http.js';

/** The REST API's one stage. */
export const API_STAGE = 'v1';

export interface ApiProps {
  handler: NodejsFunction;
  authorizer: NodejsFunction;
  logRetention: RetentionDays;
  throttle: { rateLimit: number; burstLimit: number };
}

export class DualpathApi extends Construct {
  readonly api: RestApi;
  readonly publicMethods: Method[] = [];
  /**
   * https://{api}.execute-api.{region}.{suffix}/{stage}, built from the API's id and the stage's literal
   * name: the API's own function may carry it in its environment (RestApi.url refers to the stage, which
   * depends on the function: a cycle).
   */
  readonly baseUrl: string;
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
        stageName: API_STAGE,
        throttlingRateLimit: props.throttle.rateLimit,
        throttlingBurstLimit: props.throttle.burstLimit,
        accessLogDestination: new LogGroupLogDestination(accessLogs),
        accessLogFormat: AccessLogFormat.jsonWithStandardFields(),
        loggingLevel: MethodLoggingLevel.ERROR,
        metricsEnabled: true,
      },
    });
    this.baseUrl = `https://${this.api.restApiId}.execute-api.${Aws.REGION}.${Aws.URL_SUFFIX}/${API_STAGE}`;
    this.addGatewayResponses();
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
    // Public: health, the OpenAPI document, and devices fetching firmware by a signed path (ADR 0022:
    // the path's HMAC is the credential; the router checks it and redirects to the bytes in S3).
    const health = this.api.root.addResource('health').addMethod('GET', integration, {
      authorizationType: AuthorizationType.NONE,
      requestValidator: validator,
    });
    const openapi = this.api.root.addResource('openapi.json').addMethod('GET', integration, {
      authorizationType: AuthorizationType.NONE,
      requestValidator: validator,
    });
    const packages = this.api.root
      .addResource('packages')
      .addResource('{id}')
      .addResource('{name}')
      .addMethod('GET', integration, {
        authorizationType: AuthorizationType.NONE,
        requestParameters: {
          'method.request.path.id': true,
          'method.request.path.name': true,
          'method.request.querystring.e': true,
          'method.request.querystring.s': true,
        },
        requestValidator: validator,
      });
    this.publicMethods.push(health, openapi, packages);
    // Everything else through the authorizer; the router validates bodies and parameters itself.
    const proxy = this.api.root.addResource('{proxy+}');
    this.proxyMethod = proxy.addMethod('ANY', integration, {
      authorizer,
      authorizationType: AuthorizationType.CUSTOM,
      requestValidator: validator,
      requestParameters: { 'method.request.header.Authorization': true },
    });
  }

  /**
   * The responses API Gateway answers itself — the authorizer's 401/403, throttling's 429, its own
   * 5xx — carry the router's security headers (but the CSP, see below) and error body shape, and a
   * 401 names its challenge (RFC 6750), instead of the gateway's bare `{"message": ...}`.
   */
  private addGatewayResponses(): void {
    const quoted = (v: string) => `'${v}'`;
    // A static mapping value is one single-quoted string with no way to quote a quote, so the CSP
    // (whose keywords are quoted) is left out here; X-Frame-Options keeps framing denied.
    const headers: Record<string, string> = { 'x-frame-options': quoted('DENY') };
    for (const [name, value] of Object.entries(API_SECURITY_HEADERS)) {
      if (!value.includes("'")) headers[name] = quoted(value);
    }
    const body = (code: string) => ({
      'application/json': `{"error":{"code":"${code}","message":$context.error.messageString}}`,
    });
    const responses: Array<[string, ResponseType, string, Record<string, string>?]> = [
      [
        'Unauthorized',
        ResponseType.UNAUTHORIZED,
        'UNAUTHORIZED',
        { 'www-authenticate': quoted(AUTH_CHALLENGE) },
      ],
      ['AccessDenied', ResponseType.ACCESS_DENIED, 'FORBIDDEN'],
      ['Throttled', ResponseType.THROTTLED, 'THROTTLED'],
      ['Default4xx', ResponseType.DEFAULT_4XX, 'BAD_REQUEST'],
      ['Default5xx', ResponseType.DEFAULT_5XX, 'UNAVAILABLE'],
    ];
    for (const [id, type, code, extra] of responses) {
      this.api.addGatewayResponse(id, {
        type,
        responseHeaders: { ...headers, ...extra },
        templates: body(code),
      });
    }
  }
}
