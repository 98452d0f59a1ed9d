/** OpenAPI paths and schemas of /operations and /firmware (ADR 0022), merged into openapi.ts's document. */
import { TARGET_STATUSES } from '../core/operations/model.js';
import { body, err, type Json, pathParam, queryParam, ref, res } from './openapi-parts.js';

const AUTHED = err(400, 401, 403, 404, 429);
const opId = pathParam('id', 'Operation id');
const status = { type: 'string', enum: [...TARGET_STATUSES] };

export const operationsSchemas: Record<string, Json> = {
  OperationInput: {
    type: 'object',
    required: ['filter', 'operation'],
    properties: {
      filter: {
        type: 'object',
        description:
          'The devices that match every given field (the fleet filter of GET /devices) and, with deviceIds, are among those ids',
        properties: {
          type: { type: 'string' },
          group: { type: 'string' },
          tag: { type: 'string', description: 'key:value or key, comma-separated; all must match' },
          protocol: { enum: ['sparkplug', 'lwm2m'] },
          online: { type: 'boolean' },
          deviceIds: { type: 'array', items: { type: 'string' }, minItems: 1, maxItems: 10_000 },
        },
      },
      operation: {
        oneOf: [
          {
            type: 'object',
            required: ['kind', 'command'],
            properties: {
              kind: { const: 'command' },
              command: {
                type: 'object',
                description:
                  'A body of POST /devices/{id}/commands (LwM2M request or Sparkplug write/rebirth)',
              },
            },
          },
          {
            type: 'object',
            required: ['kind', 'packageId'],
            properties: { kind: { const: 'firmware-update' }, packageId: { type: 'string' } },
          },
        ],
      },
      settings: {
        type: 'object',
        properties: {
          concurrency: { type: 'integer', minimum: 1, maximum: 1000, default: 20 },
          ratePerSecond: { type: 'number', minimum: 0.1, maximum: 1000, default: 10 },
          targetTimeoutMs: { type: 'integer', minimum: 1000, default: 600_000 },
          pollMs: { type: 'integer', minimum: 100, default: 2000 },
        },
      },
    },
  },
  Operation: {
    type: 'object',
    required: ['id', 'status', 'filter', 'action', 'total', 'counts', 'progress', 'createdAt'],
    properties: {
      id: { type: 'string' },
      status: { type: 'string', enum: ['running', 'cancelling', 'cancelled', 'completed'] },
      filter: { type: 'object' },
      action: { type: 'object' },
      settings: { type: 'object' },
      total: { type: 'integer' },
      counts: { type: 'object', additionalProperties: { type: 'integer' } },
      progress: {
        type: 'object',
        properties: {
          finished: { type: 'integer' },
          total: { type: 'integer' },
          percent: { type: 'integer' },
        },
      },
      retries: { type: 'integer' },
      createdAt: { type: 'integer' },
      updatedAt: { type: 'integer' },
      finishedAt: { type: 'integer' },
      appId: { type: 'string', description: 'The application whose key started it; absent: the admin' },
    },
  },
  OperationTarget: {
    type: 'object',
    required: ['deviceId', 'status', 'attempts'],
    properties: {
      deviceId: { type: 'string' },
      status,
      attempts: { type: 'integer' },
      phase: { type: 'string', enum: ['write-uri', 'await-download', 'execute', 'await-update'] },
      lastState: { type: 'integer', description: 'Last /5/0/3 State read' },
      reason: {
        type: 'object',
        properties: {
          code: { type: 'string' },
          message: { type: 'string' },
          updateResult: { type: 'integer', description: 'LwM2M /5/0/5 Update Result' },
          result: { type: 'integer', description: 'CoAP response code, e.g. 404' },
        },
      },
      response: { type: 'object' },
      startedAt: { type: 'integer' },
      updatedAt: { type: 'integer' },
    },
  },
  FirmwarePackage: {
    type: 'object',
    required: ['id', 'name', 'version', 'size', 'sha256', 'createdAt'],
    properties: {
      id: { type: 'string' },
      name: { type: 'string' },
      version: { type: 'string' },
      size: { type: 'integer' },
      sha256: { type: 'string' },
      createdAt: { type: 'integer' },
    },
  },
};

const one = (summary: string, operationId: string, code: string, schema: Json, extra: Json = {}) => ({
  operationId,
  summary,
  ...extra,
  responses: { [code]: res(summary, schema), ...AUTHED },
});

export const operationsPaths: Record<string, Record<string, Json>> = {
  '/firmware': {
    get: one('Firmware packages (metadata; any key)', 'listFirmware', '200', {
      type: 'object',
      properties: { packages: { type: 'array', items: ref('FirmwarePackage') } },
    }),
    post: one('Upload a firmware package (admin)', 'uploadFirmware', '201', ref('FirmwarePackage'), {
      requestBody: body({
        type: 'object',
        required: ['name', 'version', 'contentBase64'],
        properties: {
          name: { type: 'string' },
          version: { type: 'string' },
          contentBase64: { type: 'string', description: 'At most 512 KiB of bytes' },
        },
      }),
    }),
  },
  '/firmware/{id}': {
    get: one('A firmware package (metadata; any key)', 'getFirmware', '200', ref('FirmwarePackage'), {
      parameters: [pathParam('id', 'Package id')],
    }),
  },
  '/packages/{id}/{name}': {
    get: {
      operationId: 'downloadPackage',
      summary:
        'A device fetches a firmware package by the signed path in its Package URI (/5/0/1): the signature is the credential',
      security: [],
      parameters: [
        pathParam('id', 'Package id'),
        pathParam('name', 'Package file name'),
        queryParam('e', 'Expiry, epoch seconds', { type: 'integer' }),
        queryParam('s', 'HMAC-SHA256 of id and expiry, base64url'),
      ],
      responses: {
        '302': { description: 'To the bytes: a pre-signed S3 GET that lives 5 minutes (Location)' },
        ...err(403, 404),
      },
    },
  },
  '/operations': {
    get: one(
      'Batch operations, newest first (an application key: the ones it started)',
      'listOperations',
      '200',
      { type: 'object', properties: { operations: { type: 'array', items: ref('Operation') } } },
      { parameters: [queryParam('limit', '1-100, default 50', { type: 'integer' })] },
    ),
    post: one(
      'Start a batch operation (an application key: on its device types only; 403 naming filter.type otherwise)',
      'createOperation',
      '202',
      ref('Operation'),
      {
        requestBody: body(ref('OperationInput')),
      },
    ),
  },
  '/operations/{id}': {
    get: one(
      'An operation with its counts and progress (an application key: its own, 404 otherwise)',
      'getOperation',
      '200',
      ref('Operation'),
      {
        parameters: [opId],
      },
    ),
  },
  '/operations/{id}/targets': {
    get: one(
      'Per-device status of an operation (an application key: its own)',
      'listOperationTargets',
      '200',
      { type: 'object', properties: { targets: { type: 'array', items: ref('OperationTarget') } } },
      { parameters: [opId, queryParam('status', 'Only targets in this status', status)] },
    ),
  },
  '/operations/{id}/cancel': {
    post: one(
      'Cancel: pending devices are not started; firmware downloads in flight are cancelled on the device (Execute /5/0/10, the target ends cancelled with Update Result 10); other commands in flight finish (an application key: its own)',
      'cancelOperation',
      '202',
      ref('Operation'),
      {
        parameters: [opId],
      },
    ),
  },
  '/operations/{id}/retry': {
    post: one(
      'Retry the failed and timed-out devices (an application key: its own)',
      'retryOperation',
      '202',
      ref('Operation'),
      {
        parameters: [opId],
      },
    ),
  },
};
