/**
 * The OpenAPI 3.1 description of the API, served at GET /openapi.json. A test checks that its paths
 * and methods are exactly the routes the router serves, and that every $ref resolves.
 */
import { LWM2M_OPERATIONS, SPARKPLUG_WRITABLE_TYPES } from '../core/commands.js';
import { BUCKET_AGGS } from '../core/telemetry.js';
import { fleetParams } from './openapi-fleet.js';
import { operationsPaths, operationsSchemas } from './openapi-operations.js';
import { body, err, type Json, pathParam, queryParam, ref, res } from './openapi-parts.js';
import { rulesPaths, rulesSchemas } from './openapi-rules.js';
import { shadowPaths, shadowSchemas } from './openapi-shadow.js';
import { EVENT_TYPES } from './routes/events.js';

const q = queryParam;

const deviceId = pathParam('id', 'Device id: thing name = Sparkplug edge node id = LwM2M endpoint');
const limit = (max: number, def: number) =>
  q('limit', `Page size (1-${max}, default ${def})`, {
    type: 'integer',
    minimum: 1,
    maximum: max,
    default: def,
  });
const nextToken = q('nextToken', 'Opaque cursor from the previous page');
const timeParam = (name: string, def: string) =>
  q(name, `Epoch milliseconds or ISO-8601 time (default ${def})`, { type: 'string' });

const AUTHED = err(400, 401, 403, 404, 429);

const scalar = { oneOf: [{ type: 'string' }, { type: 'number' }, { type: 'boolean' }] };

const schemas: Record<string, Json> = {
  Error: {
    type: 'object',
    required: ['error'],
    properties: {
      error: {
        type: 'object',
        required: ['code', 'message'],
        properties: {
          code: { type: 'string', examples: ['VALIDATION_FAILED', 'UNAUTHORIZED', 'FORBIDDEN', 'NOT_FOUND'] },
          message: { type: 'string' },
          field: { type: 'string', description: 'The input field at fault (400)' },
        },
      },
    },
  },
  Health: {
    type: 'object',
    required: ['status', 'time'],
    properties: {
      status: { enum: ['ok', 'degraded'] },
      time: { type: 'integer' },
      devices: { type: 'integer' },
      online: {
        type: 'object',
        properties: {
          sparkplug: { type: 'integer' },
          lwm2m: { type: 'integer' },
          devices: { description: 'Physical devices online on at least one protocol', type: 'integer' },
        },
      },
      reasons: {
        description: 'Why the status is degraded (e.g. a stuck forwarder or a lagging stream)',
        type: 'array',
        items: { type: 'string' },
      },
    },
  },
  Device: {
    type: 'object',
    required: ['id', 'type', 'tags', 'status', 'protocols', 'createdAt', 'updatedAt'],
    properties: {
      id: { type: 'string' },
      type: { type: 'string' },
      name: { type: 'string' },
      group: { type: 'string' },
      tags: { type: 'object', additionalProperties: { type: 'string' } },
      status: { enum: ['active', 'disabled'] },
      protocols: { type: 'array', items: { enum: ['sparkplug', 'lwm2m'] } },
      createdAt: { type: 'integer' },
      updatedAt: { type: 'integer' },
      lastSeen: { type: 'integer' },
      connectivity: {
        type: 'object',
        properties: {
          sparkplug: { enum: ['online', 'offline'] },
          lwm2m: { enum: ['online', 'offline', 'expired'], description: 'expired: lifetime elapsed' },
        },
      },
      sparkplug: {
        type: 'object',
        properties: {
          group: { type: 'string' },
          online: { type: 'boolean' },
          bdSeq: { type: 'string' },
          lastBirth: { type: 'integer' },
          devices: {
            type: 'object',
            additionalProperties: { type: 'object', properties: { online: { type: 'boolean' } } },
          },
        },
      },
      sparkplugCatalog: {
        type: 'object',
        description: 'Metrics declared in the births (when the host state is available)',
        properties: {
          node: { type: 'array', items: ref('MetricDef') },
          devices: { type: 'object', additionalProperties: { type: 'array', items: ref('MetricDef') } },
        },
      },
      lwm2m: {
        type: 'object',
        properties: {
          online: { type: 'boolean' },
          lifetime: { type: 'integer' },
          version: { type: 'string' },
          binding: { type: 'string' },
          lastUpdate: { type: 'integer' },
          objects: {
            type: 'array',
            items: {
              type: 'object',
              properties: {
                id: { type: 'integer' },
                version: { type: 'string' },
                instances: { type: 'array', items: { type: 'integer' } },
              },
            },
          },
        },
      },
    },
  },
  MetricDef: {
    type: 'object',
    required: ['name', 'type'],
    properties: { name: { type: 'string' }, type: { type: 'string' }, unit: { type: 'string' } },
  },
  DeviceInput: {
    type: 'object',
    properties: {
      type: { type: 'string', description: 'Required for a new device' },
      name: { type: 'string' },
      group: { type: 'string' },
      tags: { type: 'object', additionalProperties: { type: 'string' } },
      status: { enum: ['active', 'disabled'] },
    },
  },
  Value: {
    description: 'A reading value: integers beyond ±(2^53−1) as decimal strings, bytes as base64',
    oneOf: [
      { type: 'number' },
      { type: 'string' },
      { type: 'boolean' },
      { type: 'null' },
      { type: 'array', items: {} },
    ],
  },
  Point: {
    type: 'object',
    required: ['deviceId', 'metric', 'time', 'value', 'type', 'quality', 'protocol'],
    properties: {
      deviceId: { type: 'string' },
      subDevice: { type: 'string' },
      metric: { type: 'string' },
      name: { type: 'string' },
      unit: { type: 'string' },
      time: { type: 'integer' },
      value: ref('Value'),
      type: { type: 'string' },
      quality: { enum: ['GOOD', 'BAD', 'STALE', 'UNCERTAIN'] },
      historical: { type: 'boolean' },
      protocol: { enum: ['sparkplug', 'lwm2m'] },
      deviceType: { type: 'string' },
    },
  },
  Bucket: {
    type: 'object',
    required: ['start', 'count'],
    properties: Object.fromEntries([
      ['start', { type: 'integer' }],
      ...BUCKET_AGGS.map((a) => [a, { type: a === 'count' ? 'integer' : 'number' }]),
    ]),
  },
  CommandRequest: {
    oneOf: [
      {
        title: 'LwM2M request',
        type: 'object',
        required: ['protocol', 'operation'],
        properties: {
          protocol: { const: 'lwm2m' },
          operation: { enum: [...LWM2M_OPERATIONS] },
          path: { type: 'string', examples: ['/3/0/0'] },
          paths: { type: 'array', items: { type: 'string' } },
          value: scalar,
          values: { type: 'object', additionalProperties: scalar },
          args: { type: 'string' },
          attributes: { type: 'object' },
        },
      },
      {
        title: 'Sparkplug metric write (NCMD, or DCMD with device)',
        type: 'object',
        required: ['protocol', 'operation', 'metrics'],
        properties: {
          protocol: { const: 'sparkplug' },
          operation: { const: 'write' },
          device: { type: 'string' },
          metrics: {
            type: 'array',
            minItems: 1,
            maxItems: 100,
            items: {
              type: 'object',
              required: ['name', 'type', 'value'],
              properties: {
                name: { type: 'string' },
                type: { enum: [...SPARKPLUG_WRITABLE_TYPES] },
                value: scalar,
              },
            },
          },
        },
      },
      {
        title: 'Sparkplug rebirth request',
        type: 'object',
        required: ['protocol', 'operation'],
        properties: { protocol: { const: 'sparkplug' }, operation: { const: 'rebirth' } },
      },
    ],
  },
  CommandAccepted: {
    type: 'object',
    required: ['commandId', 'status'],
    properties: {
      commandId: { type: 'string' },
      status: { enum: ['pending', 'succeeded'], description: 'Sparkplug commands succeed when published' },
      token: { type: 'integer', description: 'LwM2M token' },
    },
  },
  Command: {
    type: 'object',
    required: ['deviceId', 'commandId', 'protocol', 'operation', 'status', 'createdAt', 'deadline'],
    properties: {
      deviceId: { type: 'string' },
      commandId: { type: 'string' },
      protocol: { enum: ['sparkplug', 'lwm2m'] },
      operation: { type: 'string' },
      request: { type: 'object' },
      token: { type: 'integer' },
      status: { enum: ['pending', 'succeeded', 'failed', 'timed-out'] },
      response: { type: 'object', description: "The device's decoded answer (result, readings, reason)" },
      createdAt: { type: 'integer' },
      updatedAt: { type: 'integer' },
      deadline: { type: 'integer' },
    },
  },
  DeviceType: {
    type: 'object',
    required: ['id', 'name', 'capabilities', 'units'],
    properties: {
      id: { type: 'string' },
      name: { type: 'string' },
      category: { type: 'string' },
      capabilities: { type: 'array', items: { type: 'string' } },
      units: { type: 'object', additionalProperties: { type: 'string' } },
      description: { type: 'string' },
    },
  },
  DeviceTypeInput: {
    type: 'object',
    required: ['name'],
    properties: {
      name: { type: 'string' },
      category: { type: 'string' },
      capabilities: { type: 'array', items: { type: 'string' } },
      units: { type: 'object', additionalProperties: { type: 'string' } },
      description: { type: 'string' },
    },
  },
  Application: {
    type: 'object',
    required: ['id', 'name', 'deviceTypes', 'keyPrefix', 'createdAt'],
    properties: {
      id: { type: 'string' },
      name: { type: 'string' },
      developer: { type: 'string' },
      platform: { type: 'string' },
      category: { type: 'string' },
      contact: { type: 'string' },
      deviceTypes: { type: 'array', items: { type: 'string' } },
      keyPrefix: { type: 'string', description: 'First characters of the key, to recognise it' },
      createdAt: { type: 'integer' },
      rotatedAt: { type: 'integer' },
    },
  },
  ApplicationInput: {
    type: 'object',
    required: ['name', 'deviceTypes'],
    properties: {
      name: { type: 'string' },
      developer: { type: 'string' },
      platform: { type: 'string' },
      category: { type: 'string' },
      contact: { type: 'string' },
      deviceTypes: { type: 'array', minItems: 1, items: { type: 'string' } },
    },
  },
  ApplicationWithKey: {
    type: 'object',
    required: ['app', 'apiKey'],
    properties: {
      app: ref('Application'),
      apiKey: { type: 'string', description: 'Shown once; only its SHA-256 is stored' },
    },
  },
  Event: {
    type: 'object',
    required: ['id', 'type', 'protocol', 'deviceId', 'time'],
    properties: {
      id: { type: 'string' },
      type: { enum: [...EVENT_TYPES] },
      protocol: { enum: ['sparkplug', 'lwm2m'] },
      deviceId: { type: 'string' },
      subDevice: { type: 'string' },
      deviceType: { type: 'string' },
      time: { type: 'integer' },
      detail: { type: 'string' },
      data: { type: 'object' },
    },
  },
};

const errorResponses = Object.fromEntries(
  [
    [400, 'Invalid input; `field` names it'],
    [401, 'Missing or invalid credential (with WWW-Authenticate: Bearer realm="dualpath")'],
    [403, 'The credential may not do this (admin-only route, or another device type)'],
    [404, 'Not found'],
    [409, 'Conflict (e.g. a device type still in use)'],
    [429, 'Throttled (API Gateway usage limits)'],
    [503, 'A dependency is temporarily unavailable; retry after the retry-after header'],
  ].map(([code, description]) => [
    `E${code}`,
    { description, content: { 'application/json': { schema: ref('Error') } } },
  ]),
);

const paths: Record<string, Record<string, Json>> = {
  '/health': {
    get: {
      operationId: 'health',
      summary: 'Status and counts (devices online per protocol)',
      security: [],
      responses: {
        '200': res('OK', ref('Health')),
        '503': res('Degraded: counts unavailable, or the pipeline is stuck or lagging', ref('Health')),
      },
    },
  },
  '/openapi.json': {
    get: {
      operationId: 'openapi',
      summary: 'This document',
      security: [],
      responses: { '200': res('OpenAPI 3.1 document', { type: 'object' }) },
    },
  },
  '/devices': {
    get: {
      operationId: 'listDevices',
      summary: "List devices (an application sees only its types' devices)",
      parameters: [
        q('type', 'Device type (403 for an application not registered for it)'),
        q('protocol', 'Protocol spoken', { enum: ['sparkplug', 'lwm2m'] }),
        q('status', 'Registry status', { enum: ['active', 'disabled'] }),
        q('group', 'Site / Sparkplug group'),
        q(
          'tag',
          'Tags every device must carry, comma-separated: key:value (that value) or key (any value), at most 10',
          { type: 'string', examples: ['site:north,critical'] },
        ),
        q(
          'online',
          'Online now on at least one protocol (true) or on none (false); matched after the registry read (up to 20 registry pages per request, so a page may hold fewer than limit and still carry a nextToken)',
          { type: 'string', enum: ['true', 'false'] },
        ),
        limit(1000, 100),
        nextToken,
      ],
      responses: {
        '200': res('A page of devices', {
          type: 'object',
          required: ['devices'],
          properties: { devices: { type: 'array', items: ref('Device') }, nextToken: { type: 'string' } },
        }),
        ...AUTHED,
      },
    },
  },
  '/devices/{id}': {
    get: {
      operationId: 'getDevice',
      summary: 'Registration, metadata, tags, Sparkplug and LwM2M state, connectivity',
      parameters: [deviceId],
      responses: { '200': res('The device', ref('Device')), ...AUTHED },
    },
    put: {
      operationId: 'putDevice',
      summary: 'Create or update a device (admin)',
      parameters: [deviceId],
      requestBody: body(ref('DeviceInput')),
      responses: { '200': res('Updated', ref('Device')), '201': res('Created', ref('Device')), ...AUTHED },
    },
    delete: {
      operationId: 'deleteDevice',
      summary: 'Delete a device (admin)',
      parameters: [deviceId],
      responses: { '204': res('Deleted'), ...AUTHED },
    },
  },
  '/devices/{id}/state': {
    get: {
      operationId: 'getDeviceState',
      summary: 'The device shadow: latest value of every metric',
      parameters: [deviceId, q('subDevice', "Sparkplug device ('' = node-level only)")],
      responses: {
        '200': res('Latest points', {
          type: 'object',
          required: ['deviceId', 'points'],
          properties: { deviceId: { type: 'string' }, points: { type: 'array', items: ref('Point') } },
        }),
        ...AUTHED,
      },
    },
  },
  '/devices/{id}/telemetry': {
    get: {
      operationId: 'getTelemetry',
      summary: 'Raw points in [from, to), or buckets with interval and agg',
      parameters: [
        deviceId,
        q('metric', 'Metric name or LwM2M path (required with interval)'),
        q('subDevice', "Sparkplug device ('' = node-level only)"),
        timeParam('from', 'to − 1 h'),
        timeParam('to', 'now'),
        q('interval', 'Bucket width: 30s, 1m, 1h, 1d'),
        q('agg', `Comma-separated aggregations (${BUCKET_AGGS.join(', ')}); default avg,min,max,count`),
        q('order', 'Raw order', { enum: ['asc', 'desc'] }),
        limit(10_000, 1000),
        nextToken,
      ],
      responses: {
        '200': res('Points or buckets', {
          oneOf: [
            {
              type: 'object',
              required: ['deviceId', 'points'],
              properties: {
                deviceId: { type: 'string' },
                from: { type: 'integer' },
                to: { type: 'integer' },
                points: { type: 'array', items: ref('Point') },
                nextToken: { type: 'string' },
              },
            },
            {
              type: 'object',
              required: ['deviceId', 'metric', 'interval', 'buckets'],
              properties: {
                deviceId: { type: 'string' },
                metric: { type: 'string' },
                from: { type: 'integer' },
                to: { type: 'integer' },
                interval: { type: 'string' },
                buckets: { type: 'array', items: ref('Bucket') },
              },
            },
          ],
        }),
        ...AUTHED,
      },
    },
  },
  '/devices/{id}/commands': {
    get: {
      operationId: 'listCommands',
      summary: "The device's commands, newest first",
      parameters: [deviceId, limit(200, 50)],
      responses: {
        '200': res('Commands', {
          type: 'object',
          required: ['commands'],
          properties: { commands: { type: 'array', items: ref('Command') } },
        }),
        ...AUTHED,
      },
    },
    post: {
      operationId: 'createCommand',
      summary: 'Send an LwM2M request or a Sparkplug NCMD/DCMD (admin, or an application for its types)',
      parameters: [deviceId],
      requestBody: body(ref('CommandRequest')),
      responses: { '202': res('Accepted', ref('CommandAccepted')), ...AUTHED },
    },
  },
  '/devices/{id}/commands/{cmdId}': {
    get: {
      operationId: 'getCommand',
      summary: 'A command: pending, succeeded (with the decoded response), failed or timed-out',
      parameters: [deviceId, pathParam('cmdId', 'Command id')],
      responses: { '200': res('The command', ref('Command')), ...AUTHED },
    },
  },
  '/device-types': {
    get: {
      operationId: 'listDeviceTypes',
      summary: 'Device types (an application sees its own)',
      responses: {
        '200': res('Device types', {
          type: 'object',
          required: ['deviceTypes'],
          properties: { deviceTypes: { type: 'array', items: ref('DeviceType') } },
        }),
        ...AUTHED,
      },
    },
  },
  '/device-types/{type}': {
    get: {
      operationId: 'getDeviceType',
      summary: 'A device type',
      parameters: [pathParam('type', 'Device type id')],
      responses: { '200': res('The type', ref('DeviceType')), ...AUTHED },
    },
    put: {
      operationId: 'putDeviceType',
      summary: 'Create or replace a device type (admin)',
      parameters: [pathParam('type', 'Device type id')],
      requestBody: body(ref('DeviceTypeInput')),
      responses: {
        '200': res('Replaced', ref('DeviceType')),
        '201': res('Created', ref('DeviceType')),
        ...AUTHED,
      },
    },
    delete: {
      operationId: 'deleteDeviceType',
      summary: 'Delete a device type no device uses (admin)',
      parameters: [pathParam('type', 'Device type id')],
      responses: { '204': res('Deleted'), ...AUTHED, ...err(409) },
    },
  },
  '/apps': {
    get: {
      operationId: 'listApps',
      summary: 'Applications (admin)',
      parameters: [q('deviceType', 'Only applications registered for this type')],
      responses: {
        '200': res('Applications', {
          type: 'object',
          required: ['apps'],
          properties: { apps: { type: 'array', items: ref('Application') } },
        }),
        ...AUTHED,
      },
    },
    post: {
      operationId: 'createApp',
      summary: 'Register an application; its API key is returned once (admin)',
      requestBody: body(ref('ApplicationInput')),
      responses: { '201': res('Created', ref('ApplicationWithKey')), ...AUTHED },
    },
  },
  '/apps/{appId}': {
    get: {
      operationId: 'getApp',
      summary: 'An application (admin, or the application itself)',
      parameters: [pathParam('appId', 'Application id')],
      responses: { '200': res('The application', ref('Application')), ...AUTHED },
    },
    put: {
      operationId: 'putApp',
      summary: "Replace an application's description and types (admin)",
      parameters: [pathParam('appId', 'Application id')],
      requestBody: body(ref('ApplicationInput')),
      responses: { '200': res('Replaced', ref('Application')), ...AUTHED },
    },
    delete: {
      operationId: 'deleteApp',
      summary: 'Delete an application; its key stops working (admin)',
      parameters: [pathParam('appId', 'Application id')],
      responses: { '204': res('Deleted'), ...AUTHED },
    },
  },
  '/apps/{appId}/rotate-key': {
    post: {
      operationId: 'rotateAppKey',
      summary: 'Replace the API key; the new key is returned once (admin)',
      parameters: [pathParam('appId', 'Application id')],
      responses: { '200': res('Rotated', ref('ApplicationWithKey')), ...AUTHED },
    },
  },
  '/events': {
    get: {
      operationId: 'listEvents',
      summary: "Lifecycle events, oldest first (an application sees its types' events)",
      parameters: [
        q('since', 'nextCursor of the previous page'),
        q('type', `Comma-separated event types (${EVENT_TYPES.join(', ')})`),
        q('deviceId', "Only this device's events (403 for another type's device)"),
        q('deviceType', 'Only events of this device type (403 for an application not registered for it)'),
        ...fleetParams(),
        limit(1000, 100),
      ],
      responses: {
        '200': res('Events', {
          type: 'object',
          required: ['events'],
          properties: { events: { type: 'array', items: ref('Event') }, nextCursor: { type: 'string' } },
        }),
        ...AUTHED,
      },
    },
  },
};

export function openApiDocument(): Json {
  return {
    openapi: '3.1.0',
    info: {
      title: 'Dualpath API',
      version: '1.0.0',
      description:
        'Device registry, telemetry, device commands and lifecycle events for Sparkplug B and LwM2M ' +
        'devices. Send `Authorization: Bearer <key>`: the admin key, or an application key that sees ' +
        'only the device types it registered for (ADR 0010).',
    },
    security: [{ bearer: [] }],
    paths: { ...paths, ...rulesPaths, ...operationsPaths, ...shadowPaths },
    components: {
      securitySchemes: {
        bearer: { type: 'http', scheme: 'bearer', description: 'Admin key or application key' },
      },
      responses: errorResponses,
      schemas: { ...schemas, ...rulesSchemas, ...operationsSchemas, ...shadowSchemas },
    },
  };
}
