/**
 * The AWS live transport in the template (ADR 0023): the WebSocket API and its routes, a throttled stage
 * whose access logs carry no query string or header (keys never reach a log), the connections table,
 * the live-connections function's grants (its row of access.ts), and `execute-api:ManageConnections`
 * on the stage's `POST @connections/*` for the publishers only.
 */
import { Match } from 'aws-cdk-lib/assertions';
import { beforeAll, describe, expect, it } from 'vitest';
import { DYNAMODB_ACCESS } from '../../../infra/aws/access.js';
import { functionEnvironments, functionId, type Synthesized, statementsOf, synth } from './synth.js';

let s: Synthesized;
beforeAll(() => {
  [s] = synth({ DualpathLiveTest: {} }) as [Synthesized];
}, 180_000);

const actions = (st: { Action: string | string[] }) => ([] as string[]).concat(st.Action);
const PUBLISHERS = [
  'SparkplugIngestFunction',
  'Lwm2mIngestFunction',
  'AlertsRulesClockFunction',
  'OperationsWorkerFunction',
];

describe('live updates (WebSocket API)', () => {
  it('has one WebSocket API routed by action, with $connect, $disconnect, $default and subscribe', () => {
    s.template.resourceCountIs('AWS::ApiGatewayV2::Api', 1);
    s.template.hasResourceProperties('AWS::ApiGatewayV2::Api', {
      ProtocolType: 'WEBSOCKET',
      RouteSelectionExpression: '$request.body.action',
    });
    const keys = Object.values(s.template.findResources('AWS::ApiGatewayV2::Route')).map(
      (r) => r.Properties.RouteKey,
    );
    expect(keys.sort()).toEqual(['$connect', '$default', '$disconnect', 'subscribe']);
  });

  it('throttles the stage and logs access without query strings or headers', () => {
    const stages = Object.values(s.template.findResources('AWS::ApiGatewayV2::Stage'));
    expect(stages).toHaveLength(1);
    const p = stages[0]!.Properties;
    expect(p.StageName).toBe('v1');
    expect(p.DefaultRouteSettings).toMatchObject({
      ThrottlingRateLimit: 50,
      ThrottlingBurstLimit: 100,
      LoggingLevel: 'ERROR',
    });
    const format = String(p.AccessLogSettings.Format);
    expect(format).toContain('$context.connectionId');
    expect(format.toLowerCase()).not.toMatch(/querystring|header|protocol|authorization/);
  });

  it('keeps connections in an encrypted on-demand table with TTL, read and written per access.ts', () => {
    s.template.hasResourceProperties('AWS::DynamoDB::Table', {
      BillingMode: 'PAY_PER_REQUEST',
      SSESpecification: { SSEEnabled: true },
      TimeToLiveSpecification: { AttributeName: 'expiresAt', Enabled: true },
    });
    const env = functionEnvironments(s)[functionId(s, 'LiveConnectionsFunction')]!;
    expect(env.LIVE_CONNECTIONS_TABLE).toEqual({ Ref: expect.stringMatching(/^LiveConnectionsTable/) });
    expect(env.ADMIN_KEY_SECRET_ARN).toBeDefined();
    const st = statementsOf(s, 'LiveConnectionsFunction');
    const onLive = st.find((x) => JSON.stringify(x.Resource).includes('LiveConnectionsTable'));
    expect(actions(onLive!).sort()).toEqual(
      DYNAMODB_ACCESS.liveConnections.live!.map((a) => `dynamodb:${a}`).sort(),
    );
    // It reads the admin key and never posts to connections (it answers through the route response).
    expect(st.flatMap(actions)).toContain('secretsmanager:GetSecretValue');
    expect(st.flatMap(actions)).not.toContain('execute-api:ManageConnections');
  });

  it('lets the publishers, and only them, post to this stage’s connections', () => {
    const manage = (prefix: string) =>
      statementsOf(s, prefix).filter((x) => actions(x).includes('execute-api:ManageConnections'));
    for (const prefix of PUBLISHERS) {
      const st = manage(prefix);
      expect(st, prefix).toHaveLength(1);
      expect(JSON.stringify(st[0]!.Resource)).toMatch(/\/v1\/POST\/@connections\/\*"\]\]\}$/);
      const env = functionEnvironments(s)[functionId(s, prefix)]!;
      expect(env.LIVE_ENDPOINT, prefix).toBeDefined();
      expect(env.LIVE_CONNECTIONS_TABLE, prefix).toBeDefined();
    }
    for (const prefix of ['ApiFunction', 'AuthorizerFunction', 'LiveConnectionsFunction'])
      expect(manage(prefix), prefix).toEqual([]);
  });

  it('outputs the WebSocket URL and raises no unacknowledged cdk-nag finding', () => {
    expect(JSON.stringify(s.json.Outputs?.LiveUrl?.Value)).toContain('wss://');
    s.template.hasOutput('LiveUrl', { Value: Match.anyValue() });
    expect(s.findings.filter((f) => f.path.includes('/Live/'))).toEqual([]);
  });
});
