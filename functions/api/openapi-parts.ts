/** Builders for the pieces of the OpenAPI document (openapi.ts and the route groups it merges). */
export type Json = Record<string, unknown>;

export const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });

const json = (schema: Json) => ({ content: { 'application/json': { schema } } });

/** A JSON request body; `required: false` for an optional one. */
export const body = (schema: Json, { description = 'JSON body', required = true } = {}) => ({
  required,
  description,
  ...json(schema),
});

/** A response, with a JSON body when `schema` is given. */
export const res = (description: string, schema?: Json) =>
  schema ? { description, ...json(schema) } : { description };

/** References to the shared error responses (components.responses.E<code>). */
export const err = (...codes: number[]) =>
  Object.fromEntries(codes.map((c) => [String(c), { $ref: `#/components/responses/E${c}` }]));

export const pathParam = (name: string, description: string) => ({
  name,
  in: 'path',
  required: true,
  description,
  schema: { type: 'string' },
});

export const queryParam = (name: string, description: string, schema: Json = { type: 'string' }) => ({
  name,
  in: 'query',
  required: false,
  description,
  schema,
});
