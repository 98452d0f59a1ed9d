/** OpenAPI paths and schemas of the device shadow (ADR 0023), merged into openapi.ts's document. */
import { body, err, type Json, pathParam, queryParam, ref, res } from './openapi-parts.js';

const AUTHED = err(400, 401, 403, 404, 429);
const scalar = { oneOf: [{ type: 'string' }, { type: 'number' }, { type: 'boolean' }] };
const deviceId = pathParam('id', 'Device id');

export const shadowSchemas: Record<string, Json> = {
  Shadow: {
    type: 'object',
    required: ['deviceId', 'version', 'desired', 'reported', 'delta', 'writable', 'reconciliations'],
    properties: {
      deviceId: { type: 'string' },
      version: { type: 'integer', description: 'Pass as ?version= to PUT desired for an optimistic write' },
      desired: { type: 'object', additionalProperties: scalar },
      reported: {
        type: 'object',
        description: 'The latest stored reading of each writable field',
        additionalProperties: {
          type: 'object',
          properties: { value: {}, time: { type: 'integer', description: 'ms since the epoch' } },
        },
      },
      delta: { type: 'object', description: 'Desired fields not reported yet', additionalProperties: scalar },
      writable: {
        type: 'object',
        description: "The device type's writable fields (PUT /device-types/{type} `writable`)",
        additionalProperties: { type: 'object' },
      },
      reconciliations: {
        type: 'array',
        description: 'Newest first, at most 20',
        items: {
          type: 'object',
          required: ['at', 'fields', 'status'],
          properties: {
            at: { type: 'integer' },
            fields: { type: 'array', items: { type: 'string' } },
            commandId: { type: 'string' },
            status: { type: 'string' },
            error: { type: 'string' },
          },
        },
      },
    },
  },
};

const op = (
  summary: string,
  operationId: string,
  extra: { parameters?: Json[]; requestBody?: Json } = {},
) => ({
  operationId,
  summary,
  parameters: [deviceId, ...(extra.parameters ?? [])],
  ...(extra.requestBody ? { requestBody: extra.requestBody } : {}),
  responses: { '200': res(summary, ref('Shadow')), ...AUTHED, ...err(409) },
});

export const shadowPaths: Record<string, Record<string, Json>> = {
  '/devices/{id}/shadow': {
    get: op('The device shadow: desired, reported, delta and reconciliations', 'getShadow'),
  },
  '/devices/{id}/shadow/desired': {
    put: op('Set desired values (null clears one); reconciles the delta by commands', 'setShadowDesired', {
      parameters: [queryParam('version', 'Expected shadow version (409 if it moved)', { type: 'integer' })],
      requestBody: body({ type: 'object', additionalProperties: { oneOf: [scalar, { type: 'null' }] } }),
    }),
  },
  '/devices/{id}/shadow/reconcile': {
    post: op('Send the commands for the current delta again', 'reconcileShadow'),
  },
};
