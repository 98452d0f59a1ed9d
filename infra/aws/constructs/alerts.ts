/**
 * Rules and alerts in AWS (ADR 0016): the alert topic (SNS, encrypted with the account's SNS key, TLS
 * only; users subscribe e-mail, SMS or HTTPS endpoints and filter on the severity / ruleId / kind
 * attributes), the alert event bus (EventBridge: one event per transition, source `dualpath.alerts`),
 * and the rules-clock function on a one-minute schedule (absence, offline-for, auto-resolve, throttled
 * openings and the outbox of undelivered transitions). `attach` turns rule evaluation on in a function:
 * its environment (RULES_ENABLED, the topic and bus) and its delivery grants (rows of access.ts).
 */
import { Duration } from 'aws-cdk-lib';
import { Dashboard, GraphWidget, MathExpression } from 'aws-cdk-lib/aws-cloudwatch';
import { EventBus, Rule, Schedule } from 'aws-cdk-lib/aws-events';
import { LambdaFunction } from 'aws-cdk-lib/aws-events-targets';
import { Alias } from 'aws-cdk-lib/aws-kms';
import type { NodejsFunction } from 'aws-cdk-lib/aws-lambda-nodejs';
import type { RetentionDays } from 'aws-cdk-lib/aws-logs';
import { Topic } from 'aws-cdk-lib/aws-sns';
import { Construct } from 'constructs';
import { alertDeliveryStatements } from '../access.js';
import { nodeFunction } from './ingest-function.js';

export interface AlertsProps {
  /** functions/rules-clock/handler.ts, absolute. */
  clockEntry: string;
  /** The environment every function shares (tables, telemetry). */
  environment: Record<string, string>;
  logRetention: RetentionDays;
  /** Clock period (default 1 minute: absence is detected within a minute of falling due). */
  period?: Duration;
  /** Dashboard name (default: CloudFormation's). */
  dashboardName?: string;
}

export class Alerts extends Construct {
  readonly topic: Topic;
  readonly bus: EventBus;
  readonly clock: NodejsFunction;
  readonly schedule: Rule;
  readonly dashboard: Dashboard;

  constructor(scope: Construct, id: string, props: AlertsProps) {
    super(scope, id);
    this.topic = new Topic(this, 'Topic', {
      displayName: 'Dualpath alerts',
      enforceSSL: true,
      masterKey: Alias.fromAliasName(this, 'SnsKey', 'alias/aws/sns'),
    });
    this.bus = new EventBus(this, 'Bus', {
      description: 'Dualpath alert transitions (source dualpath.alerts)',
    });
    this.clock = nodeFunction(this, 'RulesClockFunction', {
      entry: props.clockEntry,
      memoryMb: 512,
      timeoutSeconds: 50,
      description: 'Dualpath rules clock: absence, offline-for, auto-resolve, undelivered alerts',
      logRetention: props.logRetention,
      environment: { ...props.environment, POWERTOOLS_SERVICE_NAME: 'rules-clock' },
    });
    this.attach(this.clock);
    this.schedule = new Rule(this, 'Schedule', {
      description: 'Runs the Dualpath rules clock',
      schedule: Schedule.rate(props.period ?? Duration.minutes(1)),
      targets: [new LambdaFunction(this.clock, { retryAttempts: 0 })],
    });
    // Alerts opened / resolved per minute by severity (EMF from the ingest functions and the clock).
    const perSeverity = (metric: string) =>
      new MathExpression({
        expression: `SEARCH('{Dualpath,service,severity} MetricName="${metric}"', 'Sum', 60)`,
        label: metric,
        period: Duration.minutes(1),
      });
    this.dashboard = new Dashboard(this, 'Dashboard', {
      ...(props.dashboardName ? { dashboardName: props.dashboardName } : {}),
      widgets: [
        [
          new GraphWidget({
            title: 'Alerts opened per minute, by severity',
            left: [perSeverity('AlertsOpened')],
            width: 12,
          }),
          new GraphWidget({
            title: 'Alerts resolved per minute, by severity',
            left: [perSeverity('AlertsResolved')],
            width: 12,
          }),
        ],
      ],
    });
  }

  /** Rule evaluation on in `fn`: environment, and delivery grants when it delivers alerts. */
  attach(fn: NodejsFunction, o: { delivers?: boolean } = { delivers: true }): void {
    fn.addEnvironment('RULES_ENABLED', 'true');
    if (o.delivers === false) return;
    fn.addEnvironment('ALERTS_TOPIC_ARN', this.topic.topicArn);
    fn.addEnvironment('ALERTS_EVENT_BUS', this.bus.eventBusName);
    for (const st of alertDeliveryStatements(this.topic.topicArn, this.bus.eventBusArn))
      fn.addToRolePolicy(st);
  }
}
