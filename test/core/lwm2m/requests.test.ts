import { describe, expect, it } from 'vitest';
import { ValidationError } from '../../../functions/core/errors.js';
import {
  ContentFormat,
  decodeMessage,
  decodePaths,
  encodeMessage,
  Operation,
} from '../../../functions/core/lwm2m/message.js';
import {
  buildRequestMessage,
  isPlausibleResult,
  REQUEST_OPERATIONS,
  type RequestSpec,
} from '../../../functions/core/lwm2m/server/requests.js';
import { InMemoryPendingRequestStore } from '../../../functions/core/lwm2m/server/state.js';
import { decodeSenml } from '../../../functions/core/senml/index.js';

const T0 = 1_700_000_000_000;

/** Builds, sets a token, encodes to the wire and decodes back: what a device would receive. */
function wire(spec: RequestSpec, token = 42) {
  const built = buildRequestMessage(spec);
  built.message.token = token;
  return { m: decodeMessage(encodeMessage(built.message)), paths: built.paths };
}

describe('LwM2M request builders: the binding map of each operation', () => {
  it('Read, Discover and Observe carry the operation, the token and the URI (key 5) only', () => {
    // Prepare / Act
    const read = wire({ operation: 'read', path: '/3/0/0' });
    const discover = wire({ operation: 'discover', path: '/3303' });
    const observe = wire({ operation: 'observe', path: '/3303/0/5700' });
    // Assess
    expect(read.m).toEqual({ operation: 9, token: 42, uri: '/3/0/0' });
    expect(read.paths).toEqual(['/3/0/0']);
    expect(discover.m).toEqual({ operation: 11, token: 42, uri: '/3303' });
    expect(observe.m).toEqual({ operation: 20, token: 42, uri: '/3303/0/5700' });
  });

  it('Read-Composite and Observe-Composite carry a SenML-ETCH path list (key 6) and no URI', () => {
    const rc = wire({ operation: 'read-composite', paths: ['/3/0/0', '/3303/0/5700', '/4/0'] });
    const oc = wire({ operation: 'observe-composite', paths: ['/3303/0/5700', '/3303/1/5700'] });
    expect(rc.m.operation).toBe(Operation.ReadComposite);
    expect(rc.m.uri).toBeUndefined();
    expect(decodePaths(rc.m.paths!)).toEqual(['/3/0/0', '/3303/0/5700', '/4/0']);
    expect(oc.m.operation).toBe(Operation.ObserveComposite);
    expect(decodePaths(oc.m.paths!)).toEqual(['/3303/0/5700', '/3303/1/5700']);
    expect(oc.paths).toEqual(['/3303/0/5700', '/3303/1/5700']);
  });

  it('Write-Replace and Write-Partial carry SenML CBOR (ct 112) with the typed value', () => {
    const w = wire({ operation: 'write', path: '/1/0/1', value: 600 });
    const wp = wire({
      operation: 'write-partial',
      path: '/3/0',
      values: { '/3/0/14': '+02', '/3/0/15': 'UTC' },
    });
    const link = wire({ operation: 'write', path: '/0/0/26', value: '24:0' });
    const bool = wire({ operation: 'write', path: '/1/0/23', value: false });
    expect(w.m).toMatchObject({ operation: 12, uri: '/1/0/1', contentFormat: ContentFormat.SenmlCbor });
    expect(decodeSenml(w.m.payload!, 112, { receivedAt: T0 })).toEqual([
      expect.objectContaining({ name: '/1/0/1', value: { kind: 'v', value: 600 } }),
    ]);
    expect(wp.m).toMatchObject({ operation: 13, uri: '/3/0', contentFormat: 112 });
    expect(decodeSenml(wp.m.payload!, 112, { receivedAt: T0 }).map((r) => [r.name, r.value])).toEqual([
      ['/3/0/14', { kind: 'vs', value: '+02' }],
      ['/3/0/15', { kind: 'vs', value: 'UTC' }],
    ]);
    // Objlnk resources take "oid:iid" as vlo, booleans as vb.
    expect(decodeSenml(link.m.payload!, 112, { receivedAt: T0 })[0]?.value).toEqual({
      kind: 'vlo',
      value: '24:0',
    });
    expect(decodeSenml(bool.m.payload!, 112, { receivedAt: T0 })[0]?.value).toEqual({
      kind: 'vb',
      value: false,
    });
  });

  it('Write-Composite carries SenML CBOR records for several objects and no URI; explicit records keep their kind', () => {
    const wc = wire({ operation: 'write-composite', values: { '/1/0/1': 300, '/3/0/15': 'Europe/Paris' } });
    const opaque = wire({
      operation: 'write',
      path: '/5/0/0',
      records: [{ name: '/5/0/0', value: { kind: 'vd', value: new Uint8Array([1, 2, 3]) } }],
    });
    expect(wc.m).toMatchObject({ operation: 15, contentFormat: 112 });
    expect(wc.m.uri).toBeUndefined();
    expect(wc.paths).toEqual(['/1/0/1', '/3/0/15']);
    expect(decodeSenml(wc.m.payload!, 112, { receivedAt: T0 }).map((r) => r.name)).toEqual([
      '/1/0/1',
      '/3/0/15',
    ]);
    expect(decodeSenml(opaque.m.payload!, 112, { receivedAt: T0 })[0]?.value).toEqual({
      kind: 'vd',
      value: new Uint8Array([1, 2, 3]),
    });
  });

  it('Execute carries its arguments as text (ct 0), and nothing without them', () => {
    const withArgs = wire({ operation: 'execute', path: '/3/0/4', args: "0='now'" });
    const bare = wire({ operation: 'execute', path: '/5/0/2' });
    expect(withArgs.m).toMatchObject({ operation: 16, uri: '/3/0/4', contentFormat: ContentFormat.Text });
    expect(new TextDecoder().decode(withArgs.m.payload)).toBe("0='now'");
    expect(bare.m).toEqual({ operation: 16, token: 42, uri: '/5/0/2' });
  });

  it('Write-Attributes carries each attribute under its binding key (12-17, 20, 21)', () => {
    // Prepare
    const spec: RequestSpec = {
      operation: 'write-attributes',
      path: '/3303/0/5700',
      attributes: { pmin: 10, pmax: 60, gt: 30.5, st: 0.5, epmin: 1, epmax: 5, edge: true, hqmax: 20 },
    };
    // Act
    const built = buildRequestMessage(spec);
    built.message.token = 7;
    const bytes = encodeMessage(built.message);
    // Assess: the decoded map and the raw integer keys
    expect(decodeMessage(bytes)).toEqual({
      operation: 14,
      token: 7,
      uri: '/3303/0/5700',
      pmin: 10,
      pmax: 60,
      gt: 30.5,
      st: 0.5,
      epmin: 1,
      epmax: 5,
      edge: true,
      hqmax: 20,
    });
  });

  it('Cancel-Observe names the observation by URI, or by its path list when it was composite', () => {
    const single = wire({ operation: 'cancel-observe', path: '/3303/0/5700' });
    const composite = wire({ operation: 'cancel-observe', paths: ['/3/0/9', '/3303/0/5700'] });
    expect(single.m).toEqual({ operation: 22, token: 42, uri: '/3303/0/5700' });
    expect(composite.m.uri).toBeUndefined();
    expect(decodePaths(composite.m.paths!)).toEqual(['/3/0/9', '/3303/0/5700']);
  });

  it('maps every operation name to its binding code', () => {
    expect(REQUEST_OPERATIONS).toEqual({
      read: 9,
      'read-composite': 10,
      discover: 11,
      write: 12,
      'write-partial': 13,
      'write-attributes': 14,
      'write-composite': 15,
      execute: 16,
      observe: 20,
      'observe-composite': 21,
      'cancel-observe': 22,
    });
  });

  it.each<[RequestSpec, string]>([
    [{ operation: 'read' }, 'path'],
    [{ operation: 'read', path: 'not-a-path' }, 'path'],
    [{ operation: 'read-composite', paths: [] }, 'paths'],
    [{ operation: 'read-composite', paths: ['/3/0/0', '/x'] }, 'paths[1]'],
    [{ operation: 'write', path: '/1/0/1' }, 'value'],
    [{ operation: 'write', path: '/1/0/1', value: Number.NaN }, 'value'],
    [{ operation: 'write-partial', path: '/3/0', values: { '/4/0/1': 1 } }, 'values'],
    [{ operation: 'write-composite' }, 'values'],
    [{ operation: 'write-attributes', path: '/3/0/9', attributes: {} }, 'attributes'],
    [{ operation: 'write-attributes', path: '/3/0/9', attributes: { pmin: 1.5 } }, 'attributes.pmin'],
    [{ operation: 'write-attributes', path: '/3/0/9', attributes: { pmax: -1 } }, 'attributes.pmax'],
    [{ operation: 'bogus' as RequestSpec['operation'], path: '/3/0/9' }, 'operation'],
  ])('rejects %j with a ValidationError naming %s', (spec, field) => {
    expect(() => buildRequestMessage(spec)).toThrow(ValidationError);
    expect(() => buildRequestMessage(spec)).toThrow(
      expect.objectContaining({ field, code: 'LWM2M_REQUEST' }),
    );
  });
});

describe('LwM2M request correlation rules', () => {
  it('accepts 2.05 for reading operations, 2.04 for writing ones, any error for all; never 2.01/2.02', () => {
    expect(isPlausibleResult('read', 205)).toBe(true);
    expect(isPlausibleResult('read', 204)).toBe(false);
    expect(isPlausibleResult('observe-composite', 205)).toBe(true);
    expect(isPlausibleResult('write', 204)).toBe(true);
    expect(isPlausibleResult('execute', 205)).toBe(false);
    expect(isPlausibleResult('cancel-observe', 204)).toBe(true);
    expect(isPlausibleResult('write', 404)).toBe(true);
    expect(isPlausibleResult('read', 500)).toBe(true);
    for (const op of Object.keys(REQUEST_OPERATIONS)) {
      expect(isPlausibleResult(op, 201)).toBe(false);
      expect(isPlausibleResult(op, 202)).toBe(false);
    }
  });
});

describe('LwM2M token allocation (in-memory pending store)', () => {
  it('counts per endpoint and does not reuse tokens freed earlier (a late answer cannot hit a newer request)', async () => {
    // Prepare: park a pending request on every token 1..1000 but the even ones.
    const store = new InMemoryPendingRequestStore();
    const ep = 'ep';
    for (let i = 0; i < 1000; i++) {
      const token = await store.allocateToken(ep);
      await store.put({
        endpoint: ep,
        token,
        operation: 'read',
        paths: ['/3/0/0'],
        createdAt: T0,
        deadline: T0 + 1,
      });
    }
    for (let t = 2; t <= 1000; t += 2) await store.take(ep, t);
    // Act: the counter keeps going (1001...) instead of reusing the freed even tokens.
    const next = await store.allocateToken(ep);
    const other = await store.allocateToken('another-endpoint');
    // Assess
    expect(next).toBe(1001);
    expect(other).toBe(1); // counters are per endpoint
  });

  it('wraps within uint32 and skips tokens still pending after the wrap', async () => {
    const store = new InMemoryPendingRequestStore();
    const ep = 'ep';
    await store.put({
      endpoint: ep,
      token: 1,
      operation: 'read',
      paths: [],
      createdAt: T0,
      deadline: T0 + 1,
    });
    await store.put({
      endpoint: ep,
      token: 2,
      operation: 'read',
      paths: [],
      createdAt: T0,
      deadline: T0 + 1,
    });
    // Force the counter near the top by allocating from a store primed with the last value.
    (store as unknown as { counters: Map<string, number> }).counters.set(ep, 0xffff_fffe);
    expect(await store.allocateToken(ep)).toBe(0xffff_ffff);
    expect(await store.allocateToken(ep)).toBe(3);
  });

  it('takes a pending request once, and sweeps only those past their deadline', async () => {
    const store = new InMemoryPendingRequestStore();
    const mk = (token: number, deadline: number) => ({
      endpoint: 'ep',
      token,
      operation: 'read',
      paths: ['/3/0/0'],
      createdAt: T0,
      deadline,
      commandId: `c${token}`,
    });
    await store.put(mk(1, T0 + 10));
    await store.put(mk(2, T0 + 20));
    await store.put(mk(3, T0 + 30));
    expect(await store.take('ep', 3)).toMatchObject({ commandId: 'c3' });
    expect(await store.take('ep', 3)).toBeUndefined();
    expect((await store.takeExpired(T0 + 20)).map((r) => r.commandId)).toEqual(['c1', 'c2']);
    expect(await store.takeExpired(T0 + 1000)).toEqual([]);
  });
});
