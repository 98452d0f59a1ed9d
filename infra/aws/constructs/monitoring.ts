/**
 * CloudWatch: one dashboard per path (data flow of the Sparkplug path, LwM2M overview) plus a detailed
 * one, and alarms to an SNS topic on what users feel (ADR 0020): API 5XX and p99 latency, iterator age,
 * quarantine rate, DLQ depth, store throttles and rejections, rule action failures, Timestream
 * magnetic-store rejections. Every metric name and dimension set is checked against what the code
 * emits or AWS documents (test/infra/aws/alarms.test.ts).
 */
import { Duration } from 'aws-cdk-lib';
import type { Stage } from 'aws-cdk-lib/aws-apigateway';
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
import type { ITable } from 'aws-cdk-lib/aws-dynamodb';
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
  /** The REST API's stage: 5XX and p99 latency as clients see them (AWS/ApiGateway ApiName + Stage). */
  apiStage?: Stage;
  /** DynamoDB tables whose throttled reads/writes users feel (registry, state, events, telemetry, live connections). */
  storeTables?: ITable[];
  /** Timestream for LiveAnalytics table (when it is the store): magnetic-store rejections. */
  timestream?: { databaseName: string; tableName: string };
  /** The magnetic-rejects function's service (ADR 0024): readings its reports say were rejected. */
  magneticRejectsService?: string;
  /** Quarantined messages per received record, percent, that raises the alarm (default 1). */
  quarantineRatePercent?: number;
  /** API p99 latency that raises the alarm, ms (default 3000). */
  apiLatencyP99Ms?: number;
  /** The live-updates WebSocket API (AWS/ApiGateway ApiId + Stage): failures to run its integration. */
  liveApi?: { apiId: string; stageName: string };
  /**
   * Functions outside the stream paths and the REST API (authorizer, operations worker, rules clock, live
   * connections, onboarding, dashboard): one alarm over their Errors, each a failure nobody else retries or reports.
   */
  backgroundFunctions?: NodejsFunction[];
}

const period = Duration.minutes(1);

function emf(metricName: string, service: string, statistic = 'Sum'): Metric {
  return new Metric({ namespace: 'Dualpath', metricName, dimensionsMap: { service }, statistic, period });
}

/**
 * A CloudWatch Metrics Insights query over every series of `metric` in `namespace` that has exactly the
 * `schema` dimensions, filtered by `where`: for AWS metrics published with a dimension whose values we
 * do not choose (IoT `ActionType`, Timestream `Operation`), so the alarm cannot miss them.
 */
export function insights(
  namespace: string,
  metric: string,
  schema: string[],
  where: Record<string, string>,
  label: string,
): MathExpression {
  const filter = Object.entries(where)
    .map(([k, v]) => `${k} = '${v}'`)
    .join(' AND ');
  return new MathExpression({
    expression: `SELECT SUM(${metric}) FROM SCHEMA("${namespace}", ${schema.join(', ')}) WHERE ${filter}`,
    usingMetrics: {},
    label,
    period,
  });
}

/** IoT rule action failures: AWS/IoT `Failure` is published per RuleName and ActionType. */
function ruleActionFailures(ruleName: string): MathExpression {
  return insights('AWS/IoT', 'Failure', ['ActionType', 'RuleName'], { RuleName: ruleName }, 'Failure');
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
    /** `single`: one breaching minute alarms (rare events that never repeat by themselves). */
    const alarm = (name: string, metric: IMetric, threshold: number, description: string, single = false) => {
      const a = new Alarm(this, name, {
        metric,
        threshold,
        evaluationPeriods: single ? 1 : 3,
        datapointsToAlarm: single ? 1 : 2,
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
        ruleActionFailures(p.ruleName),
        1,
        `${p.title}: the IoT rule's Kinesis action failed (messages went to the error queue)`,
      );
      alarm(
        `${key}QuarantineRate`,
        new MathExpression({
          expression: 'IF(FILL(records, 0) > 0, 100 * FILL(quarantined, 0) / records, 0)',
          usingMetrics: {
            quarantined: emf('MessagesQuarantined', p.service),
            records: emf('RecordsReceived', p.service),
          },
          label: 'quarantined % of records',
          period,
        }),
        props.quarantineRatePercent ?? 1,
        `${p.title}: over ${props.quarantineRatePercent ?? 1}% of messages quarantined (undecodable or invalid)`,
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
            ruleActionFailures(p.ruleName),
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
          title: 'Readings decoded / stored / duplicates / pending (magnetic)',
          left: [
            emf('ReadingsDecoded', p.service),
            emf('ReadingsStored', p.service),
            emf('ReadingsDuplicate', p.service),
            emf('ReadingsPendingMagnetic', p.service),
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
    // The router answers every failure with a 4XX/5XX response, so Lambda `Errors` never counts them:
    // alarm on what clients receive, at the stage.
    if (props.apiStage) {
      alarm(
        'ApiServerErrors',
        props.apiStage.metricServerError({ period, statistic: 'Sum' }),
        5,
        'API: clients received 5XX responses',
      );
      alarm(
        'ApiLatencyP99',
        props.apiStage.metricLatency({ period, statistic: 'p99' }),
        props.apiLatencyP99Ms ?? 3000,
        `API: p99 latency over ${props.apiLatencyP99Ms ?? 3000} ms`,
      );
    }
    if (props.liveApi) {
      const dimensionsMap = { ApiId: props.liveApi.apiId, Stage: props.liveApi.stageName };
      const ws = (metricName: string) =>
        new Metric({ namespace: 'AWS/ApiGateway', metricName, dimensionsMap, statistic: 'Sum', period });
      // ExecutionError: API Gateway could not run the connections function (crash, timeout, throttle).
      // Not IntegrationError: it also counts the 401/403 answers to wrong keys, which are no failure.
      alarm(
        'LiveExecutionErrors',
        ws('ExecutionError'),
        5,
        'Live updates: the WebSocket API could not run its connections function (dashboards cannot connect or subscribe)',
      );
      detailed.addWidgets(
        new GraphWidget({
          title: 'Live updates (WebSocket): connects, messages, errors',
          left: [ws('ConnectCount'), ws('MessageCount')],
          right: [ws('ClientError'), ws('IntegrationError'), ws('ExecutionError')],
          width: 24,
        }),
      );
    }
    const background = props.backgroundFunctions ?? [];
    if (background.length > 0) {
      const usingMetrics = Object.fromEntries(
        background.map((fn, i) => [`e${i}`, fn.metricErrors({ period, statistic: 'Sum' })]),
      );
      alarm(
        'BackgroundFunctionErrors',
        new MathExpression({
          expression: Object.keys(usingMetrics)
            .map((k) => `FILL(${k}, 0)`)
            .join(' + '),
          usingMetrics,
          label: 'errors',
          period,
        }),
        1,
        'Errors of the authorizer, operations worker, rules clock, live connections, onboarding or dashboard functions (their logs say which)',
      );
    }
    const tables = props.storeTables ?? [];
    if (tables.length > 0) {
      const usingMetrics: Record<string, IMetric> = {};
      tables.forEach((t, i) => {
        for (const kind of ['Read', 'Write'] as const) {
          usingMetrics[`${kind.toLowerCase()}${i}`] = new Metric({
            namespace: 'AWS/DynamoDB',
            metricName: `${kind}ThrottleEvents`,
            dimensionsMap: { TableName: t.tableName },
            statistic: 'Sum',
            period,
          });
        }
      });
      alarm(
        'StoreThrottles',
        new MathExpression({
          expression: Object.keys(usingMetrics)
            .map((k) => `FILL(${k}, 0)`)
            .join(' + '),
          usingMetrics,
          label: 'throttled reads + writes',
          period,
        }),
        1,
        'DynamoDB throttled reads or writes of the registry, state, events, telemetry or live connections tables',
      );
    }
    if (props.timestream) {
      const where = { DatabaseName: props.timestream.databaseName, TableName: props.timestream.tableName };
      const schema = ['DatabaseName', 'Operation', 'TableName'];
      alarm(
        'MagneticStoreRejects',
        insights('AWS/Timestream', 'MagneticStoreRejectedRecordCount', schema, where, 'rejected'),
        1,
        'Timestream rejected late/historical (magnetic-store) records after accepting them; reports in the rejects bucket',
        true,
      );
      alarm(
        'MagneticRejectReportFailures',
        insights('AWS/Timestream', 'MagneticStoreRejectedUploadUserFailures', schema, where, 'not uploaded'),
        1,
        'Timestream could not write magnetic-store rejection reports to the bucket',
        true,
      );
    }
    if (props.magneticRejectsService) {
      alarm(
        'ReadingsRejectedMagnetic',
        emf('ReadingsRejectedMagnetic', props.magneticRejectsService),
        1,
        'Readings Timestream rejected from the magnetic store, counted from its rejection reports (magnetic-rejects function logs name reasons and devices)',
        true,
      );
    }
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
