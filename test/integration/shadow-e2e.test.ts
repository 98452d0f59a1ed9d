/**
 * Device shadow on the local stack (ADR 0023), end to end against a simulated device: the simulator's
 * flow meter (Sparkplug edge node with a `pump` device whose Speed Setpoint is writable by DCMD). The
 * device type declares the writable field; a desired value is validated (errors name the field), the
 * delta is sent through the command path, the device applies it and reports it in DDATA, and the shadow
 * then shows reported = desired with an empty delta. Application keys are scoped as for commands.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LocalStack, startLocalStack } from '../../infra/local/stack.js';
import { type Fleet, startFleet } from '../../simulator/fleet.js';

const ADMIN = 'dp_admin_shadow-e2e-key-9d2c47e1a06b83f5';
const ID = 'shadow-fm-1';
let stack: LocalStack;
let dir: string;
let fleet: Fleet;

async function api(
  path: string,
  init: { method?: string; body?: unknown; key?: string } = {},
  // biome-ignore lint/suspicious/noExplicitAny: JSON bodies of several shapes, checked by the assertions
): Promise<{ status: number; body: any }> {
  const res = await fetch(`http://127.0.0.1:${stack.httpPort}${path}`, {
    method: init.method ?? 'GET',
    headers: { authorization: `Bearer ${init.key ?? ADMIN}`, 'content-type': 'application/json' },
    ...(init.body === undefined ? {} : { body: JSON.stringify(init.body) }),
  });
  return { status: res.status, body: await res.json().catch(() => null) };
}

async function until<T>(what: string, f: () => Promise<T | undefined>, ms = 30_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

const FLOW_METER = {
  name: 'Flow meter with pump',
  capabilities: ['flow', 'pump'],
  writable: {
    speed: { protocol: 'sparkplug', device: 'pump', metric: 'Speed Setpoint', datatype: 'Float' },
    running: { protocol: 'sparkplug', device: 'pump', metric: 'Running', datatype: 'Boolean' },
  },
};

describe('device shadow end to end with a simulated flow meter', { timeout: 90_000 }, () => {
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'dualpath-shadow-'));
    stack = await startLocalStack({ dataDir: dir, mqttPort: 0, httpPort: 0, adminKey: ADMIN });
    const now = Date.now();
    await stack.registry.putDevice({
      id: ID,
      type: 'flow-meter',
      tags: {},
      status: 'active',
      protocols: [],
      createdAt: now,
      updatedAt: now,
    });
  }, 60_000);

  afterAll(async () => {
    await fleet?.stop();
    await stack?.stop();
    rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  it('validates the writable declaration on the device type, naming the field', async () => {
    const bad = await api('/device-types/flow-meter', {
      method: 'PUT',
      body: {
        ...FLOW_METER,
        writable: { speed: { protocol: 'sparkplug', metric: 'Speed Setpoint', datatype: 'Float128' } },
      },
    });
    expect(bad.status).toBe(400);
    expect(bad.body.error.field).toBe('writable.speed.datatype');
    const ok = await api('/device-types/flow-meter', { method: 'PUT', body: FLOW_METER });
    expect(ok.status).toBe(200);
    expect(ok.body.writable.speed.device).toBe('pump');
  });

  it('reconciles a desired value through a DCMD the device applies and reports', async () => {
    fleet = await startFleet({
      url: `mqtt://127.0.0.1:${stack.mqttPort}`,
      devices: 1,
      ids: [ID],
      types: ['flow-meter'],
      rate: 2,
      lwm2mRate: 0.2,
      group: 'shadow',
    } as Parameters<typeof startFleet>[0]);
    // Reported comes from the stored readings: the DBIRTH's Speed Setpoint (80 at start).
    const before = await until('the reported speed', async () => {
      const s = await api(`/devices/${ID}/shadow`);
      return s.body?.reported?.speed ? s.body : undefined;
    });
    expect(before.delta).toEqual({});

    // Bad desired values: 400 naming the field; nothing is stored or sent.
    const wrongType = await api(`/devices/${ID}/shadow/desired`, { method: 'PUT', body: { speed: 'fast' } });
    expect(wrongType.status).toBe(400);
    expect(wrongType.body.error.field).toBe('desired.speed');
    const notWritable = await api(`/devices/${ID}/shadow/desired`, { method: 'PUT', body: { flow: 3 } });
    expect(notWritable.status).toBe(400);
    expect(notWritable.body.error.field).toBe('desired.flow');
    expect(notWritable.body.error.message).toContain('speed, running');
    // An application of another type may neither read nor set it.
    const other = await api('/apps', {
      method: 'POST',
      body: { name: 'Env only', deviceTypes: ['env-sensor'] },
    });
    const forbidden = await api(`/devices/${ID}/shadow/desired`, {
      method: 'PUT',
      body: { speed: 10 },
      key: other.body.apiKey,
    });
    expect(forbidden.status).toBe(403);
    expect((await api(`/devices/${ID}/shadow`, { key: other.body.apiKey })).status).toBe(403);

    const set = await api(`/devices/${ID}/shadow/desired`, { method: 'PUT', body: { speed: 42.5 } });
    expect(set.status).toBe(200);
    expect(set.body.desired).toEqual({ speed: 42.5 });
    const rec = set.body.reconciliations[0];
    expect(rec).toMatchObject({ fields: ['speed'], status: 'succeeded' });
    const command = await api(`/devices/${ID}/commands/${rec.commandId}`);
    expect(command.body.request).toMatchObject({ protocol: 'sparkplug', device: 'pump', operation: 'write' });

    const t0 = Date.now();
    const after = await until('the device to report the desired speed', async () => {
      const s = await api(`/devices/${ID}/shadow`);
      return Object.keys(s.body.delta).length === 0 && s.body.reported.speed?.value === 42.5
        ? s.body
        : undefined;
    });
    console.info(`[shadow] desired set → reported by the device and delta empty: ${Date.now() - t0} ms`);
    expect(after.version).toBe(2);
    expect(fleet.stats().commands.sparkplug).toBeGreaterThanOrEqual(1);

    // Clearing the desired value leaves nothing to reconcile.
    const cleared = await api(`/devices/${ID}/shadow/desired?version=2`, {
      method: 'PUT',
      body: { speed: null },
    });
    expect(cleared.status).toBe(200);
    expect(cleared.body.desired).toEqual({});
    const stale = await api(`/devices/${ID}/shadow/desired?version=2`, {
      method: 'PUT',
      body: { speed: 50 },
    });
    expect(stale.status).toBe(409);
  });
});
