/** The OpenAPI document describes exactly the routes the router serves, and is self-consistent. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Api, createApi } from './fixture.js';

let api: Api;
let doc: {
  openapi: string;
  paths: Record<
    string,
    Record<
      string,
      {
        parameters?: Array<{ name: string; in: string }>;
        security?: unknown[];
        responses: Record<string, unknown>;
      }
    >
  >;
  components: { schemas: Record<string, unknown>; responses: Record<string, unknown> };
};
beforeAll(async () => {
  api = await createApi();
  const res = await api.call('GET', '/openapi.json', { key: null });
  // Served as JSON: the same after a stringify round trip.
  doc = JSON.parse(JSON.stringify(res.body));
  expect(doc).toEqual(res.body);
});
afterAll(async () => api.close());

describe('OpenAPI document', () => {
  it('lists every route the router serves, and nothing else', () => {
    const served = api.router
      .list()
      .map((r) => `${r.method} ${r.pattern}`)
      .sort();
    const documented = Object.entries(doc.paths)
      .flatMap(([path, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${path}`))
      .sort();
    expect(documented).toEqual(served);
    expect(served.length).toBe(44);
  });

  it('marks exactly the public routes as needing no credential', () => {
    for (const r of api.router.list()) {
      const op = doc.paths[r.pattern]![r.method.toLowerCase()]!;
      expect(op.security === undefined ? 'auth' : 'public', `${r.method} ${r.pattern}`).toBe(
        r.public ? 'public' : 'auth',
      );
    }
  });

  it('declares every path parameter of every route', () => {
    for (const r of api.router.list()) {
      const names = [...r.pattern.matchAll(/\{(\w+)\}/g)].map((m) => m[1]);
      const declared = (doc.paths[r.pattern]![r.method.toLowerCase()]!.parameters ?? [])
        .filter((p) => p.in === 'path')
        .map((p) => p.name);
      expect(declared, `${r.method} ${r.pattern}`).toEqual(names);
    }
  });

  it('has the error components, and every $ref resolves', () => {
    expect(doc.openapi).toBe('3.1.0');
    expect(doc.components.schemas.Error).toMatchObject({ required: ['error'] });
    for (const code of [400, 401, 403, 404]) expect(doc.components.responses[`E${code}`]).toBeDefined();
    const refs = new Set<string>();
    const walk = (v: unknown): void => {
      if (Array.isArray(v)) v.forEach(walk);
      else if (v && typeof v === 'object') {
        for (const [k, x] of Object.entries(v)) {
          if (k === '$ref' && typeof x === 'string') refs.add(x);
          else walk(x);
        }
      }
    };
    walk(doc);
    expect(refs.size).toBeGreaterThan(10);
    for (const ref of refs) {
      const target = ref
        .replace(/^#\//, '')
        .split('/')
        .reduce<unknown>((o, k) => (o as Record<string, unknown> | undefined)?.[k], doc);
      expect(target, ref).toBeDefined();
    }
  });

  it('documents the 400/401/403 errors on every protected operation', () => {
    for (const r of api.router.list().filter((x) => !x.public)) {
      const responses = doc.paths[r.pattern]![r.method.toLowerCase()]!.responses;
      for (const code of ['400', '401', '403'])
        expect(responses[code], `${r.method} ${r.pattern} ${code}`).toBeDefined();
    }
  });
});
