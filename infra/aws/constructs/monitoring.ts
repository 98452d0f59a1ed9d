/**
 * CloudWatch: one dashboard per path (data flow of the Sparkplug path, LwM2M overview) plus a detailed
 * one, and alarms to an SNS topic on iterator age, DLQ depth, function errors, rule failures and
 * telemetry-store rejections.
 */
import { Duration } from 'aws-cdk-lib';
import {
  Alarm,
  ComparisonOperator,
  Dashboard,
  GraphWidget,
  type IMetric,
  MathExpression,
  Metric,
  SingleValueWidget,
  TextWidget,
  TreatMissingData,
} from 'aws-cdk-lib/aws-cloudwatch';
import { SnsAction } from 'aws-cdk-lib/aws-cloudwatch-actions';
import type { Stream } from 'aws-cdk-lib/aws-kinesis';
import type { NodejsFunction } from 'aws-cdk-lib/aws-lambda-nodejs';
import { Topic } from 'aws-cdk-lib/aws-sns';
import type { Queue } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';

export interface PathResources {
  title: string;
  service: string;
  ruleName: string;
  stream: Stream;
  fn: NodejsFunction;
  /** Batches the event source mapping gave up on and archived (with their records, ADR 0017). */
  archived: (period: Duration) => IMetric;
}

export interface MonitoringProps {
  /** Dashboard names start with it (stack name and region: unique in the account). */
  namePrefix: string;
  paths: PathResources[];
  api: NodejsFunction;
  ruleErrorQueue: Queue;
  iteratorAgeAlarmMs: number;
}

const period = Duration.minutes(1);

function emf(metricName: string, service: string, statistic = 'Sum'): Metric {
  return new Metric({ namespace: 'Dualpath', metricName, dimensionsMap: { service }, statistic, period });
}

function iotRule(metricName: string, ruleName: string): Metric {
  return new Metric({
    namespace: 'AWS/IoT',
    metricName,
    dimensionsMap: { RuleName: ruleName },
    statistic: 'Sum',
    period,
  });
}

export class Monitoring extends Construct {
  readonly alarmTopic: Topic;
  readonly alarms: Alarm[] = [];
  readonly dashboards: Dashboard[] = [];

  constructor(scope: Construct, id: string, props: MonitoringProps) {
    super(scope, id);
    this.alarmTopic = new Topic(this, 'Alarms', { displayName: 'Dualpath alarms', enforceSSL: true });
    const action = new SnsAction(this.alarmTopic);
    const alarm = (name: string, metric: IMetric, threshold: number, description: string) => {
      const a = new Alarm(this, name, {
        metric,
        threshold,
        evaluationPeriods: 3,
        datapointsToAlarm: 2,
        comparisonOperator: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        treatMissingData: TreatMissingData.NOT_BREACHING,
        alarmDescription: description,
      });
      a.addAlarmAction(action);
      this.alarms.push(a);
      return a;
    };

    const detailed = new Dashboard(this, 'Detailed', { dashboardName: `${props.namePrefix}-detailed` });
    for (const p of props.paths) {
      const key = p.title.replace(/\W/g, '');
      const iterAge = p.fn.metric('IteratorAge', { statistic: 'Maximum', period });
      alarm(
        `${key}IteratorAge`,
        iterAge,
        props.iteratorAgeAlarmMs,
        `${p.title}: the function is falling behind the stream`,
      );
      alarm(
        `${key}Errors`,
        p.fn.metricErrors({ period }),
        1,
        `${p.title}: function errors (whole batches retried)`,
      );
      alarm(
        `${key}Dlq`,
        p.archived(period),
        1,
        `${p.title}: batches gave up after retries/max age and were archived: run the recovery runbook (docs/deploy.md)`,
      );
      alarm(
        `${key}RuleFailures`,
        iotRule('Failure', p.ruleName),
        1,
        `${p.title}: the IoT rule action failed`,
      );
      alarm(
        `${key}RuleThrottled`,
        iotRule('RuleMessageThrottled', p.ruleName),
        1,
        `${p.title}: IoT rule throttled`,
      );
      alarm(
        `${key}StoreRejects`,
        emf('StoreRejects', p.service),
        1,
        `${p.title}: the telemetry store rejected records`,
      );

      const dashboard = new Dashboard(this, `${key}Dashboard`, {
        dashboardName: `${props.namePrefix}-${key.toLowerCase()}`,
      });
      this.dashboards.push(dashboard);
      dashboard.addWidgets(
        new TextWidget({
          markdown: `# ${p.title}\nMQTT → rule \`${p.ruleName}\` → Kinesis → Lambda → store`,
          width: 24,
          height: 2,
        }),
      );
      dashboard.addWidgets(
        new GraphWidget({
          title: 'Rule: matched / failed / throttled',
          left: [
            iotRule('TopicMatch', p.ruleName),
            iotRule('Failure', p.ruleName),
            iotRule('RuleMessageThrottled', p.ruleName),
          ],
          width: 8,
        }),
        new GraphWidget({
          title: 'Stream: incoming records and iterator age',
          left: [p.stream.metricIncomingRecords({ period, statistic: 'Sum' })],
          right: [p.stream.metricGetRecordsIteratorAgeMilliseconds({ period, statistic: 'Maximum' })],
          width: 8,
        }),
        new GraphWidget({
          title: 'Function: invocations, errors, concurrency',
          left: [p.fn.metricInvocations({ period }), p.fn.metricErrors({ period })],
          right: [p.fn.metric('ConcurrentExecutions', { statistic: 'Maximum', period })],
          width: 8,
        }),
      );
      dashboard.addWidgets(
        new GraphWidget({
          title: 'Readings decoded / stored / duplicates',
          left: [
            emf('ReadingsDecoded', p.service),
            emf('ReadingsStored', p.service),
            emf('ReadingsDuplicate', p.service),
          ],
          width: 8,
        }),
        new GraphWidget({
          title: 'Quarantined, store rejects, transient failures',
          left: [
            emf('MessagesQuarantined', p.service),
            emf('StoreRejects', p.service),
            emf('TransientFailures', p.service),
          ],
          width: 8,
        }),
        new GraphWidget({
          title: p.service.startsWith('sparkplug') ? 'Rebirths requested' : 'Registrations',
          left: [
            p.service.startsWith('sparkplug')
              ? emf('RebirthsRequested', p.service)
              : emf('Registrations', p.service),
          ],
          width: 8,
        }),
      );
      dashboard.addWidgets(
        new GraphWidget({
          title: 'Function duration (p50 / p99)',
          left: [
            p.fn.metricDuration({ statistic: 'p50', period }),
            p.fn.metricDuration({ statistic: 'p99', period }),
          ],
          width: 12,
        }),
        new SingleValueWidget({
          title: 'Batches archived on failure',
          metrics: [p.archived(period)],
          width: 12,
        }),
      );
      detailed.addWidgets(
        new GraphWidget({
          title: `${p.title}: readings per message`,
          left: [
            new MathExpression({
              expression: 'stored / FILL(records, 1)',
              usingMetrics: {
                stored: emf('ReadingsStored', p.service),
                records: emf('RecordsReceived', p.service),
              },
              label: 'readings stored per record',
              period,
            }),
          ],
          width: 12,
        }),
        new GraphWidget({
          title: `${p.title}: duration p99 and errors`,
          left: [p.fn.metricDuration({ statistic: 'p99', period })],
          right: [p.fn.metricErrors({ period })],
          width: 12,
        }),
      );
    }
    alarm(
      'RuleErrorQueue',
      props.ruleErrorQueue.metricApproximateNumberOfMessagesVisible({ period }),
      1,
      'IoT rule error actions received messages',
    );
    this.dashboards.push(detailed);
    alarm('ApiErrors', props.api.metricErrors({ period }), 5, 'API function errors');
    detailed.addWidgets(
      new GraphWidget({
        title: 'API: invocations, errors, duration p99',
        left: [props.api.metricInvocations({ period }), props.api.metricErrors({ period })],
        right: [props.api.metricDuration({ statistic: 'p99', period })],
        width: 24,
      }),
    );
  }
}
