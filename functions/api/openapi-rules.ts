/** OpenAPI paths and schemas of /rules and /alerts (ADR 0016), merged into openapi.ts's document. */
import { SEVERITIES } from '../core/rules/model.js';
import { fleetParams } from './openapi-fleet.js';
import { body, err, type Json, pathParam, queryParam, ref, res } from './openapi-parts.js';

const ok = res;
const path = pathParam;
const q = queryParam;
const AUTHED = err(400, 401, 403, 404, 429);
const ruleId = path('id', 'Rule id');
const alertId = path('id', 'Alert id');
const severity = { type: 'string', enum: [...SEVERITIES] };

export const rulesSchemas: Record<string, Json> = {
  RuleSelector: {
    type: 'object',
    description: 'Which readings/events the rule sees; all given fields must match.',
    properties: {
      deviceType: { type: 'string' },
      devices: { type: 'array', items: { type: 'string' }, maxItems: 100 },
      group: { type: 'string', description: 'Site (registry) or Sparkplug group' },
      tags: { type: 'object', additionalProperties: { type: 'string' } },
      metric: {
        type: 'string',
        description:
          'Metric name, LwM2M path or friendly name; glob: * within a segment, ** across, ? one char',
      },
      protocol: { type: 'string', enum: ['sparkplug', 'lwm2m'] },
    },
  },
  Action: {
    oneOf: [
      {
        type: 'object',
        required: ['type', 'url'],
        properties: { type: { const: 'webhook' }, url: { type: 'string', format: 'uri' } },
      },
      {
        type: 'object',
        required: ['type', 'topicArn'],
        properties: { type: { const: 'sns' }, topicArn: { type: 'string' } },
      },
      {
        type: 'object',
        required: ['type'],
        properties: {
          type: { const: 'eventbridge' },
          eventBusName: { type: 'string' },
          detailType: { type: 'string' },
        },
      },
    ],
  },
  RuleInput: {
    type: 'object',
    required: ['name', 'condition', 'severity'],
    properties: {
      id: { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$' },
      name: { type: 'string', maxLength: 128 },
      description: { type: 'string', maxLength: 1024 },
      enabled: { type: 'boolean', default: true },
      select: ref('RuleSelector'),
      condition: {
        type: 'string',
        maxLength: 1000,
        description:
          'Condition language (ADR 0016), never evaluated as code: `value > 80 for 30s clear < 75`, ' +
          '`rate(1m) > 5`, `absent for 5m`, `offline for 2m`, `on rebirth`, `zscore(10m) > 3`, ' +
          '`percentile(95, 5m) > 40`, `anomaly() > 5`. A syntax error is a 400 with `field: "condition"` ' +
          'and the 0-based `position`.',
      },
      severity,
      throttle: { type: 'string', description: 'Minimum time between two alerts of one series, e.g. 10m' },
      autoResolve: { type: 'string', description: 'Event rules: resolve after this long (default 5m)' },
      actions: { type: 'array', items: ref('Action'), maxItems: 10 },
    },
  },
  Rule: {
    allOf: [
      ref('RuleInput'),
      {
        type: 'object',
        required: ['id', 'revision', 'createdAt', 'updatedAt'],
        properties: {
          revision: { type: 'integer' },
          createdAt: { type: 'integer' },
          updatedAt: { type: 'integer' },
        },
      },
    ],
  },
  Alert: {
    type: 'object',
    required: ['id', 'ruleId', 'ruleName', 'severity', 'series', 'deviceId', 'status', 'openedAt', 'reason'],
    properties: {
      id: { type: 'string' },
      ruleId: { type: 'string' },
      ruleName: { type: 'string' },
      severity,
      series: { type: 'string', description: 'deviceId[/subDevice][|metric]' },
      deviceId: { type: 'string' },
      subDevice: { type: 'string' },
      metric: { type: 'string' },
      deviceType: { type: 'string' },
      status: { type: 'string', enum: ['open', 'acknowledged', 'resolved'] },
      openedAt: { type: 'integer' },
      value: { type: 'number' },
      score: { type: 'number', description: 'Anomaly score (anomaly rules)' },
      reason: { type: 'string' },
      acknowledgedAt: { type: 'integer' },
      acknowledgedBy: { type: 'string' },
      note: { type: 'string' },
      resolvedAt: { type: 'integer' },
      resolvedBy: { type: 'string', description: "'rule', 'auto' or the user" },
      suppressed: { type: 'integer', description: 'Openings held back by the throttle before this one' },
    },
  },
};

export const rulesPaths: Record<string, Record<string, Json>> = {
  '/rules': {
    get: {
      operationId: 'listRules',
      summary: 'Rules (an application sees the rules of its device types)',
      parameters: [q('deviceType', 'Rules selecting this device type (and those selecting any type)')],
      responses: {
        '200': ok('Rules', { type: 'object', properties: { rules: { type: 'array', items: ref('Rule') } } }),
        ...AUTHED,
      },
    },
    post: {
      operationId: 'createRule',
      summary: 'Create a rule (an application: select.deviceType must be one of its types)',
      requestBody: body(ref('RuleInput')),
      responses: {
        '201': ok('Created', ref('Rule')),
        '409': { $ref: '#/components/responses/E409' },
        ...AUTHED,
      },
    },
  },
  '/rules/{id}': {
    get: {
      operationId: 'getRule',
      summary: 'One rule',
      parameters: [ruleId],
      responses: { '200': ok('Rule', ref('Rule')), ...AUTHED },
    },
    put: {
      operationId: 'putRule',
      summary: 'Create or replace a rule (its revision is bumped; series state restarts its condition)',
      parameters: [ruleId],
      requestBody: body(ref('RuleInput')),
      responses: { '200': ok('Replaced', ref('Rule')), '201': ok('Created', ref('Rule')), ...AUTHED },
    },
    delete: {
      operationId: 'deleteRule',
      summary: 'Delete a rule (its open alerts stay open)',
      parameters: [ruleId],
      responses: { '204': ok('Deleted'), ...AUTHED },
    },
  },
  '/alerts': {
    get: {
      operationId: 'listAlerts',
      summary: 'Alerts, newest first (an application: of its device types)',
      parameters: [
        q('status', 'open | acknowledged | resolved'),
        q('severity', SEVERITIES.join(' | ')),
        q('ruleId', 'Alerts of this rule'),
        q('deviceId', 'Alerts of this device'),
        q('deviceType', 'Alerts of this device type (required for an application with several types)'),
        ...fleetParams(),
        q('since', 'openedAt at or after (epoch ms or ISO-8601)'),
        q('until', 'openedAt at or before (epoch ms or ISO-8601)'),
        q('limit', 'Page size (1-100, default 50)', {
          type: 'integer',
          minimum: 1,
          maximum: 100,
          default: 50,
        }),
        q('nextToken', 'Opaque cursor from the previous page'),
      ],
      responses: {
        '200': ok('Alerts', {
          type: 'object',
          required: ['alerts'],
          properties: { alerts: { type: 'array', items: ref('Alert') }, nextToken: { type: 'string' } },
        }),
        ...AUTHED,
      },
    },
  },
  '/alerts/{id}': {
    get: {
      operationId: 'getAlert',
      summary: 'One alert with its history (transitions, when their actions were delivered)',
      parameters: [alertId],
      responses: {
        '200': ok('Alert', {
          allOf: [
            ref('Alert'),
            { type: 'object', properties: { history: { type: 'array', items: { type: 'object' } } } },
          ],
        }),
        ...AUTHED,
      },
    },
  },
  '/alerts/{id}/ack': {
    post: {
      operationId: 'acknowledgeAlert',
      summary: 'Acknowledge an open alert (who and when are recorded)',
      parameters: [alertId],
      requestBody: body(
        { type: 'object', properties: { note: { type: 'string', maxLength: 1024 } } },
        { required: false },
      ),
      responses: {
        '200': ok('Acknowledged', ref('Alert')),
        '409': { $ref: '#/components/responses/E409' },
        ...AUTHED,
      },
    },
  },
  '/alerts/{id}/resolve': {
    post: {
      operationId: 'resolveAlert',
      summary: 'Resolve an alert by hand (it stays resolved until its condition clears and fires again)',
      parameters: [alertId],
      responses: {
        '200': ok('Resolved', ref('Alert')),
        '409': { $ref: '#/components/responses/E409' },
        ...AUTHED,
      },
    },
  },
};
