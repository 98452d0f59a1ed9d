/**
 * Alarms (ADR 0020): every alarm of the synthesized stack watches a metric that really exists — our own
 * EMF metrics by the names and the `service` dimension the ingest handler emits
 * (functions/shared/ingest-handler.ts COUNTERS, Powertools' default dimension), AWS metrics by the names
 * and dimension sets AWS documents (aws-metric-facts.ts, sources cited there) with each dimension's
 * value naming a resource of the right type. And the alarms users feel are all there: API 5XX and p99
 * latency, iterator age, quarantine rate, DLQ depth, store throttles, rule action failures, Timestream
 * magnetic-store rejections.
 */

import { beforeAll, describe, expect, it } from 'vitest';
import { SEVERITIES } from '../../../functions/core/rules/model.js';
import { MAGNETIC_REJECTS_METRICS } from '../../../functions/magnetic-rejects/compose.js';
import { COUNTERS } from '../../../functions/shared/ingest-handler.js';
import { DEFAULT_INPUTS, deployedAlarms } from '../../../infra/cost/model.js';
import { DIMENSION_RESOURCE, factFor } from './aws-metric-facts.js';
import { type CfnResource, functionEnvironments, type Synthesized, synth } from './synth.js';

/** One metric an alarm reads: namespace, name, dimensions (values as in the template), statistic. */
interface WatchedMetric {
  namespace: string;
  metric: string;
  dims: Record<string, unknown>;
  stat?: string;
  /** From a Metrics Insights query: SCHEMA dimensions (the series it covers) and WHERE filters. */
  schema?: string[];
}

type Dim = { Name: string; Value: unknown };
const dimsOf = (d: Dim[] | undefined) => Object.fromEntries((d ?? []).map((x) => [x.Name, x.Value]));

/** CloudFormation value → string with intrinsic functions as «Ref:Id» / «GetAtt:Id.Attr». */
function flatten(v: unknown): string {
  if (typeof v === 'string') return v;
  if (v && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    if ('Ref' in o) return `«Ref:${o.Ref as string}»`;
    if ('Fn::GetAtt' in o) return `«GetAtt:${(o['Fn::GetAtt'] as string[]).join('.')}»`;
    if ('Fn::Join' in o) {
      const [sep, parts] = o['Fn::Join'] as [string, unknown[]];
      return parts.map(flatten).join(sep);
    }
  }
  throw new Error(`cannot flatten ${JSON.stringify(v)}`);
}

function unflatten(s: string): unknown {
  const ref = /^«Ref:([^»]+)»$/.exec(s);
  if (ref) return { Ref: ref[1] };
  const att = /^«GetAtt:([^.»]+)\.([^»]+)»$/.exec(s);
  if (att) return { 'Fn::GetAtt': [att[1], att[2]] };
  return s;
}

const INSIGHTS = /^SELECT (\w+)\(([\w.]+)\) FROM SCHEMA\("([^"]+)",\s*([^)]*)\)(?: WHERE (.+))?$/;

/** The metrics an alarm reads (single metric, metric math inputs, Metrics Insights queries). */
function watchedMetrics(alarm: CfnResource): WatchedMetric[] {
  const p = alarm.Properties ?? {};
  if (typeof p.MetricName === 'string') {
    return [
      {
        namespace: p.Namespace as string,
        metric: p.MetricName,
        dims: dimsOf(p.Dimensions as Dim[]),
        stat: (p.ExtendedStatistic ?? p.Statistic) as string,
      },
    ];
  }
  const out: WatchedMetric[] = [];
  for (const m of (p.Metrics ?? []) as Array<Record<string, unknown>>) {
    const stat = m.MetricStat as
      | { Metric: { Namespace: string; MetricName: string; Dimensions?: Dim[] }; Stat: string }
      | undefined;
    if (stat) {
      out.push({
        namespace: stat.Metric.Namespace,
        metric: stat.Metric.MetricName,
        dims: dimsOf(stat.Metric.Dimensions),
        stat: stat.Stat,
      });
      continue;
    }
    const expr = flatten(m.Expression);
    const q = INSIGHTS.exec(expr);
    if (q) {
      const where: Record<string, unknown> = {};
      for (const clause of (q[5] ?? '').split(' AND ').filter(Boolean)) {
        const c = /^(\w+) = '(.*)'$/.exec(clause.trim());
        if (!c) throw new Error(`unparsed WHERE clause ${clause}`);
        where[c[1]!] = unflatten(c[2]!);
      }
      out.push({
        namespace: q[3]!,
        metric: q[2]!,
        dims: where,
        stat: q[1]!,
        schema: q[4]!.split(',').map((x) => x.trim()),
      });
    }
  }
  return out;
}

interface Context {
  resources: Record<string, CfnResource>;
  /** Metric names the ingest handler emits (namespace Dualpath). */
  emitted: Set<string>;
  /** Powertools service names of our functions (the `service` dimension). */
  services: Set<string>;
}

function checkValue(
  ctx: Context,
  namespace: string,
  name: string,
  value: unknown,
  dims: Record<string, unknown> = {},
): string | undefined {
  if (name === 'FilterId') {
    // S3 request metrics: the id of a bucket's metrics configuration.
    const ids = Object.values(ctx.resources).flatMap((r) =>
      r.Type === 'AWS::S3::Bucket'
        ? ((r.Properties?.MetricsConfigurations as Array<{ Id: string }> | undefined) ?? []).map((c) => c.Id)
        : [],
    );
    return ids.includes(value as string)
      ? undefined
      : `FilterId=${String(value)} is no bucket's metrics configuration`;
  }
  const expected =
    name === 'TableName'
      ? namespace === 'AWS/Timestream'
        ? { type: 'AWS::Timestream::Table', attribute: 'Name' }
        : { type: 'AWS::DynamoDB::Table' }
      : name === 'Stage' && 'ApiId' in dims
        ? { type: 'AWS::ApiGatewayV2::Stage' } // a WebSocket (API Gateway v2) stage, by its name
        : DIMENSION_RESOURCE[name];
  if (!expected) return `no rule for the value of dimension ${name}`;
  const o = value as Record<string, unknown>;
  let id: string | undefined;
  let attribute: string | undefined;
  if (o && typeof o === 'object' && 'Ref' in o) id = o.Ref as string;
  else if (o && typeof o === 'object' && 'Fn::GetAtt' in o)
    [id, attribute] = o['Fn::GetAtt'] as [string, string];
  else if (typeof value === 'string') {
    const byName = Object.values(ctx.resources).some(
      (r) =>
        r.Type === expected.type &&
        (expected.nameProperty ? r.Properties?.[expected.nameProperty] : r.Properties?.StageName) === value,
    );
    return byName ? undefined : `${name}=${value} names no ${expected.type}`;
  }
  const r = id === undefined ? undefined : ctx.resources[id];
  if (!r) return `${name}=${JSON.stringify(value)} refers to no resource`;
  if (r.Type !== expected.type) return `${name} refers to a ${r.Type}, not a ${expected.type}`;
  if ((attribute ?? undefined) !== (expected as { attribute?: string }).attribute)
    return `${name} uses ${attribute ?? 'Ref'} of ${id}, not ${(expected as { attribute?: string }).attribute ?? 'Ref'}`;
  return undefined;
}

/** Problems with one metric: empty when it is a metric the code or AWS really publishes. */
function checkMetric(ctx: Context, m: WatchedMetric): string[] {
  const where = `${m.namespace} ${m.metric}`;
  const dimNames = Object.keys(m.dims).sort();
  if (m.namespace === 'Dualpath') {
    const problems: string[] = [];
    if (!ctx.emitted.has(m.metric)) problems.push(`${where}: the ingest handler emits no such metric`);
    if (dimNames.join() !== 'service')
      problems.push(`${where}: dimensions ${dimNames} (EMF has only service)`);
    else if (!ctx.services.has(m.dims.service as string))
      problems.push(`${where}: service ${String(m.dims.service)} is no function's POWERTOOLS_SERVICE_NAME`);
    return problems;
  }
  const fact = factFor(m.namespace, m.metric);
  if (!fact) return [`${where}: not in the documented AWS metrics (aws-metric-facts.ts)`];
  // A plain metric must name one published dimension set exactly; a Metrics Insights query covers the
  // series of its SCHEMA, which must be a published set, and may filter on some of them.
  const covered = (m.schema ?? dimNames).slice().sort();
  if (!fact.dimensionSets.some((set) => [...set].sort().join() === covered.join()))
    return [
      `${where}: published with ${fact.dimensionSets.map((s) => `[${s}]`).join(' or ')}, not [${covered}]`,
    ];
  if (m.schema && !dimNames.every((d) => m.schema!.includes(d)))
    return [`${where}: filters on a dimension outside its SCHEMA`];
  return dimNames
    .map((d) => checkValue(ctx, m.namespace, d, m.dims[d], m.dims))
    .filter((x): x is string => x !== undefined)
    .map((x) => `${where}: ${x}`);
}

function contextOf(s: Synthesized): Context {
  return {
    resources: s.json.Resources,
    // ... and the magnetic-rejects function's (ADR 0024).
    emitted: new Set([...COUNTERS.map(([, name]) => name), ...MAGNETIC_REJECTS_METRICS]),
    services: new Set(
      Object.values(functionEnvironments(s)).map((env) => env.POWERTOOLS_SERVICE_NAME as string),
    ),
  };
}

const alarmsOf = (s: Synthesized) =>
  Object.entries(s.json.Resources).filter(([, r]) => r.Type === 'AWS::CloudWatch::Alarm');

let dynamo: Synthesized;
let timestream: Synthesized;

beforeAll(() => {
  [dynamo, timestream] = synth({ AlarmsDynamo: {}, AlarmsTimestream: { telemetry: 'timestream' } }) as [
    Synthesized,
    Synthesized,
  ];
}, 240_000);

describe('every alarm watches a metric that exists', () => {
  for (const variant of ['dynamodb', 'timestream'] as const) {
    it(`${variant}: names and dimensions match the code's EMF metrics or AWS's documented ones`, () => {
      const s = variant === 'dynamodb' ? dynamo : timestream;
      const ctx = contextOf(s);
      const problems: string[] = [];
      for (const [id, alarm] of alarmsOf(s)) {
        const metrics = watchedMetrics(alarm);
        if (metrics.length === 0) problems.push(`${id}: reads no metric this test can check`);
        for (const m of metrics) for (const p of checkMetric(ctx, m)) problems.push(`${id}: ${p}`);
      }
      expect(problems).toEqual([]);
    });
  }
});

describe('the checks fail on a mismatch', () => {
  const ctx = () => contextOf(dynamo);
  const ruleId = () =>
    Object.entries(dynamo.json.Resources).find(([, r]) => r.Type === 'AWS::IoT::TopicRule')![0];

  it('rejects an AWS/IoT Failure alarm with RuleName alone (it is published per RuleName and ActionType)', () => {
    const m = { namespace: 'AWS/IoT', metric: 'Failure', dims: { RuleName: { Ref: ruleId() } } };
    expect(checkMetric(ctx(), m)).toEqual([
      'AWS/IoT Failure: published with [ActionType,RuleName], not [RuleName]',
    ]);
    expect(checkMetric(ctx(), { ...m, schema: ['ActionType', 'RuleName'] })).toEqual([]);
  });

  it('rejects a metric name the handler does not emit, and a dimension it does not add', () => {
    expect(
      checkMetric(ctx(), {
        namespace: 'Dualpath',
        metric: 'StoreRejected',
        dims: { service: 'lwm2m-ingest' },
      }),
    ).toEqual(['Dualpath StoreRejected: the ingest handler emits no such metric']);
    expect(
      checkMetric(ctx(), {
        namespace: 'Dualpath',
        metric: 'StoreRejects',
        dims: { service: 'x', stage: 'v1' },
      }),
    ).toEqual(['Dualpath StoreRejects: dimensions service,stage (EMF has only service)']);
  });

  it('rejects a dimension value that names the wrong kind of resource', () => {
    const queue = Object.entries(dynamo.json.Resources).find(([, r]) => r.Type === 'AWS::SQS::Queue')![0];
    expect(
      checkMetric(ctx(), {
        namespace: 'AWS/Lambda',
        metric: 'IteratorAge',
        dims: { FunctionName: { Ref: queue } },
      }),
    ).toEqual([
      `AWS/Lambda IteratorAge: FunctionName refers to a AWS::SQS::Queue, not a AWS::Lambda::Function`,
    ]);
  });

  it("rejects the ApiErrors kind of alarm's blind spot: Lambda Errors is fine, but 5XXError needs ApiName", () => {
    expect(
      checkMetric(ctx(), { namespace: 'AWS/ApiGateway', metric: '5XXError', dims: { Stage: 'v1' } }),
    ).toEqual([
      'AWS/ApiGateway 5XXError: published with [ApiName] or [ApiName,Stage] or [ApiName,Method,Resource,Stage], not [Stage]',
    ]);
  });
});

describe('the alarms users feel are there', () => {
  const watched = (s: Synthesized) => alarmsOf(s).flatMap(([, a]) => watchedMetrics(a));
  const has = (s: Synthesized, ns: string, metric: string, dim?: [string, unknown], stat?: string) =>
    watched(s).some(
      (m) =>
        m.namespace === ns &&
        m.metric === metric &&
        (dim === undefined || JSON.stringify(m.dims[dim[0]]) === JSON.stringify(dim[1])) &&
        (stat === undefined || m.stat === stat),
    );
  const ids = (s: Synthesized, type: string) =>
    Object.entries(s.json.Resources)
      .filter(([, r]) => r.Type === type)
      .map(([id]) => id);

  it('API Gateway 5XX and p99 latency at the stage (not Lambda Errors, which the router never raises)', () => {
    expect(has(dynamo, 'AWS/ApiGateway', '5XXError')).toBe(true);
    expect(has(dynamo, 'AWS/ApiGateway', 'Latency', undefined, 'p99')).toBe(true);
    const apiFn = Object.keys(functionEnvironments(dynamo)).find((k) => k.startsWith('ApiFunction'))!;
    expect(has(dynamo, 'AWS/Lambda', 'Errors', ['FunctionName', { Ref: apiFn }])).toBe(false);
  });

  it('live updates: execution errors at the WebSocket stage; errors of every function outside the paths and the API', () => {
    const [wsApi] = ids(dynamo, 'AWS::ApiGatewayV2::Api');
    expect(has(dynamo, 'AWS/ApiGateway', 'ExecutionError', ['ApiId', { Ref: wsApi }])).toBe(true);
    const env = functionEnvironments(dynamo);
    const watched = (id: string) => has(dynamo, 'AWS/Lambda', 'Errors', ['FunctionName', { Ref: id }]);
    for (const id of Object.keys(env)) {
      // The API answers its failures with 5XX responses (alarmed at the stage), never Lambda errors.
      if (id.startsWith('ApiFunction')) continue;
      expect(watched(id), id).toBe(true);
    }
  });

  it('iterator age of each ingest function, quarantine rate of each path', () => {
    const env = functionEnvironments(dynamo);
    for (const [id, vars] of Object.entries(env)) {
      if (!String(vars.POWERTOOLS_SERVICE_NAME).endsWith('-ingest')) continue;
      expect(has(dynamo, 'AWS/Lambda', 'IteratorAge', ['FunctionName', { Ref: id }]), id).toBe(true);
      const service = vars.POWERTOOLS_SERVICE_NAME;
      expect(has(dynamo, 'Dualpath', 'MessagesQuarantined', ['service', service])).toBe(true);
      expect(has(dynamo, 'Dualpath', 'RecordsReceived', ['service', service])).toBe(true);
    }
  });

  it('depth of every queue (DLQs and the rule error queue)', () => {
    for (const q of ids(dynamo, 'AWS::SQS::Queue'))
      expect(
        has(dynamo, 'AWS/SQS', 'ApproximateNumberOfMessagesVisible', [
          'QueueName',
          { 'Fn::GetAtt': [q, 'QueueName'] },
        ]),
        q,
      ).toBe(true);
  });

  it('throttled reads and writes of every DynamoDB table', () => {
    for (const t of ids(dynamo, 'AWS::DynamoDB::Table')) {
      expect(has(dynamo, 'AWS/DynamoDB', 'WriteThrottleEvents', ['TableName', { Ref: t }]), t).toBe(true);
      expect(has(dynamo, 'AWS/DynamoDB', 'ReadThrottleEvents', ['TableName', { Ref: t }]), t).toBe(true);
    }
  });

  it('rule action failures of every topic rule, over all its action types', () => {
    for (const r of ids(dynamo, 'AWS::IoT::TopicRule')) {
      expect(has(dynamo, 'AWS/IoT', 'Failure', ['RuleName', { Ref: r }]), r).toBe(true);
      expect(has(dynamo, 'AWS/IoT', 'RuleMessageThrottled', ['RuleName', { Ref: r }]), r).toBe(true);
    }
  });

  it('Timestream store: magnetic-store rejections and report upload failures of its table', () => {
    const [table] = ids(timestream, 'AWS::Timestream::Table');
    const tableName = { 'Fn::GetAtt': [table, 'Name'] };
    expect(
      has(timestream, 'AWS/Timestream', 'MagneticStoreRejectedRecordCount', ['TableName', tableName]),
    ).toBe(true);
    expect(
      has(timestream, 'AWS/Timestream', 'MagneticStoreRejectedUploadUserFailures', ['TableName', tableName]),
    ).toBe(true);
    expect(has(dynamo, 'AWS/Timestream', 'MagneticStoreRejectedRecordCount')).toBe(false);
  });

  it('Timestream store: the readings its rejection reports count (ADR 0024), from the function that reads them', () => {
    expect(has(timestream, 'Dualpath', 'ReadingsRejectedMagnetic', ['service', 'magnetic-rejects'])).toBe(
      true,
    );
    expect(has(dynamo, 'Dualpath', 'ReadingsRejectedMagnetic')).toBe(false);
    const services = Object.values(functionEnvironments(timestream)).map((e) => e.POWERTOOLS_SERVICE_NAME);
    expect(services).toContain('magnetic-rejects');
  });

  it('the cost model counts the alarms and dashboards the stack deploys', () => {
    expect(alarmsOf(dynamo)).toHaveLength(deployedAlarms('dynamodb'));
    expect(alarmsOf(timestream)).toHaveLength(deployedAlarms('timestream'));
    expect(DEFAULT_INPUTS.alarms).toBe(deployedAlarms('dynamodb'));
    // Custom metrics: every counter the ingest handler can emit, per ingest service.
    const services = new Set(
      Object.values(functionEnvironments(dynamo))
        .map((env) => String(env.POWERTOOLS_SERVICE_NAME))
        .filter((x) => x.endsWith('-ingest')),
    );
    // ... plus AlertsOpened/AlertsResolved per severity (functions/shared/ingest-function.ts alertMetrics).
    expect(DEFAULT_INPUTS.customMetrics).toBe((COUNTERS.length + 2 * SEVERITIES.length) * services.size);
    const secrets = Object.values(dynamo.json.Resources).filter(
      (r) => r.Type === 'AWS::SecretsManager::Secret',
    );
    expect(secrets).toHaveLength(DEFAULT_INPUTS.secrets);
    const dashboards = Object.values(dynamo.json.Resources).filter(
      (r) => r.Type === 'AWS::CloudWatch::Dashboard',
    );
    expect(dashboards).toHaveLength(DEFAULT_INPUTS.dashboards);
  });
});
