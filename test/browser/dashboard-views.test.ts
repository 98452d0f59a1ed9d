/**
 * The dashboard views of issues 17/18 in headless Chromium against a local stack and a simulated fleet
 * of two device types (a flow meter whose pump speed is writable, a pressure transmitter): the device
 * shadow panel (desired / reported / delta, a desired value validated by the API with its error naming
 * the field, the delta clearing when the device reports, a version conflict shown as such); the Alerts
 * and Events filters kept in the location hash across a reload; an application key for one type seeing
 * no other type's device on any page, and a clear message on a direct link to another type's device.
 */
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Fleet, startFleet } from '../../simulator/fleet.js';
import { available, Harness, lowestContrast, type PageGlobals, SHOTS } from './harness.js';

const h = new Harness('dp_admin_views-ui-test-key-3e7a90c4b1d65f28', 'dualpath-views-ui-');
const FM = 'fm-view-1';
const PR = 'pr-view-1';
let fleet: Fleet;

/** Page errors, console errors aside from the browser's own line for an HTTP error the page handles. */
const real = (errors: string[]) => errors.filter((e) => !e.startsWith('Failed to load resource'));

async function until<T>(what: string, f: () => Promise<T | undefined>, ms = 60_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** The ids in `attr` of the rows under `rows`, once `ready` (a predicate on the page) holds. */
async function rowIds(page: Page, rows: string, attr: string): Promise<string[]> {
  return page.$$eval(rows, (trs, a) => trs.map((tr) => tr.getAttribute(a) ?? ''), attr);
}

describe.skipIf(!available)('dashboard views (headless Chromium)', { timeout: 120_000 }, () => {
  beforeAll(async () => {
    await h.start();
    const types = {
      'flow-meter': {
        name: 'Flow meter with pump',
        writable: {
          speed: { protocol: 'sparkplug', device: 'pump', metric: 'Speed Setpoint', datatype: 'Float' },
          running: { protocol: 'sparkplug', device: 'pump', metric: 'Running', datatype: 'Boolean' },
        },
      },
      pressure: { name: 'Pressure transmitter' },
    };
    for (const [id, body] of Object.entries(types))
      expect((await h.api(`/device-types/${id}`, { method: 'PUT', body })).status).toBe(200);
    for (const [id, body] of [
      [FM, { type: 'flow-meter', group: 'north', tags: { site: 'north' } }],
      [PR, { type: 'pressure', group: 'south', tags: { site: 'south' } }],
    ] as const)
      expect((await h.api(`/devices/${id}`, { method: 'PUT', body })).status).toBeLessThan(300);
    // One always-true rule per type: each device gets open alerts from its first readings.
    for (const [id, type, severity] of [
      ['fm-any', 'flow-meter', 'major'],
      ['pr-any', 'pressure', 'minor'],
    ])
      expect(
        (
          await h.api('/rules', {
            method: 'POST',
            body: {
              id,
              name: `Any ${type}`,
              severity,
              select: { deviceType: type },
              condition: 'value > -1e9',
            },
          })
        ).status,
      ).toBe(201);
    fleet = await startFleet({
      url: h.mqttUrl,
      devices: 2,
      ids: [FM, PR],
      types: ['flow-meter', 'pressure'],
      rate: 1,
      lwm2mRate: 0.2,
      seed: 5,
    });
    expect(await fleet.ready(60_000)).toBe(true);
    for (const id of [FM, PR])
      await until(`an open alert of ${id}`, async () => {
        const r = await h.api(`/alerts?status=open&deviceId=${id}`);
        return r.body.alerts?.length ? true : undefined;
      });
    await until('the reported speed', async () => {
      const s = await h.api(`/devices/${FM}/shadow`);
      return s.body?.reported?.speed ? true : undefined;
    });
    await h.launch();
  }, 120_000);

  afterAll(async () => {
    await fleet?.stop();
    await h.stop();
  }, 60_000);

  it('shows the shadow, rejects a bad value naming the field, clears the delta, and shows a conflict', async () => {
    // A direct link to the device page (the hash names the tab and the device).
    const { page, errors } = await h.open({ hash: `tab=device&device=${FM}` });
    const cell = (field: string, col: string) => `#shadow-table tr[data-field="${field}"] td.${col}`;
    await page.waitForFunction(
      (sel) =>
        ((globalThis as unknown as PageGlobals).document.querySelector(sel)?.textContent ?? '–') !== '–',
      cell('speed', 'reported'),
      { timeout: 30_000 },
    );
    expect(await page.inputValue('#device-select')).toBe(FM);
    expect(await page.textContent('#shadow-table thead')).toContain('Delta');

    // A value of the wrong type: the API's 400, naming the field, shown as is; nothing is stored.
    await page.selectOption('#shadow-field', 'speed');
    await page.fill('#shadow-value', 'fast');
    await page.click('#shadow-form button[type="submit"]');
    await page.waitForSelector('#shadow-error[data-field="desired.speed"]', { timeout: 30_000 });
    expect(await page.getAttribute('#shadow-error', 'data-status')).toBe('400');
    expect(await page.textContent('#shadow-error')).toContain('desired.speed');
    expect((await h.api(`/devices/${FM}/shadow`)).body.desired).toEqual({});

    // A good value: set, sent, and once the device reports it the delta clears.
    await page.fill('#shadow-value', '42.5');
    await page.click('#shadow-form button[type="submit"]');
    await page.waitForFunction(
      () =>
        (
          (globalThis as unknown as PageGlobals).document.querySelector('#shadow-message')?.textContent ?? ''
        ).includes('Set speed = 42.5'),
      undefined,
      { timeout: 30_000 },
    );
    expect(await page.textContent('#shadow-error')).toBe('');
    expect(await page.textContent(cell('speed', 'desired'))).toBe('42.5');
    await page.waitForFunction(
      (sel) => {
        const d = (globalThis as unknown as PageGlobals).document;
        return (
          d.querySelector(`${sel} td.delta`)?.getAttribute('data-pending') === 'false' &&
          (d.querySelector(`${sel} td.reported`)?.textContent ?? '').startsWith('42.5 ')
        );
      },
      '#shadow-table tr[data-field="speed"]',
      { timeout: 30_000 },
    );
    expect(await page.textContent(cell('speed', 'delta'))).toContain('in sync');
    expect(await page.getAttribute('#shadow-panel', 'data-delta')).toBe('0');
    expect(await page.textContent('#shadow-recs')).toContain('speed');

    // A conflict: the edit starts, someone else sets the shadow meanwhile, the page's write is refused.
    await page.fill('#shadow-value', '50');
    const now = (await h.api(`/devices/${FM}/shadow`)).body;
    const other = await h.api(`/devices/${FM}/shadow/desired?version=${now.version}`, {
      method: 'PUT',
      body: { speed: 60 },
    });
    expect(other.status).toBe(200);
    await page.click('#shadow-form button[type="submit"]');
    await page.waitForSelector('#shadow-error[data-status="409"]', { timeout: 30_000 });
    expect(await page.textContent('#shadow-error')).toContain('Conflict');
    expect((await h.api(`/devices/${FM}/shadow`)).body.desired).toEqual({ speed: 60 });
    await page.waitForFunction(
      (sel) => (globalThis as unknown as PageGlobals).document.querySelector(sel)?.textContent === '60',
      cell('speed', 'desired'),
      { timeout: 30_000 },
    );
    const worst = await lowestContrast(page, '#shadow-panel');
    console.log(`shadow panel: lowest text contrast ${worst.ratio.toFixed(2)}:1 ("${worst.text}")`);
    expect(worst.ratio).toBeGreaterThanOrEqual(4.5);
    await page.screenshot({ path: join(SHOTS, 'dashboard-shadow.png'), fullPage: true });
    expect(real(errors)).toEqual([]);
    await page.close();
  });

  it('filters the Alerts and Events pages, and a reload keeps the filters', async () => {
    const { page, errors } = await h.open();
    await page.click('[data-tab="alerts"]');
    const alertDevices = async () => {
      await page.waitForSelector('#alerts-active tbody tr[data-alert-id]', { timeout: 30_000 });
      return [...new Set(await rowIds(page, '#alerts-active tbody tr[data-alert-id]', 'data-device'))].sort();
    };
    // The active alerts no longer show `id` (the filtered list is in).
    const gone = (id: string) =>
      page.waitForFunction(
        (x) =>
          !(
            (globalThis as unknown as PageGlobals).document.querySelector('#alerts-active tbody')
              ?.textContent ?? ''
          ).includes(x),
        id,
        { timeout: 30_000 },
      );
    expect(await alertDevices()).toEqual([FM, PR]);
    // Alert values at the reading's precision (the flow meter's readings are float32).
    const values = await page.$$eval('#alerts-active tbody td.value', (tds) =>
      tds.map((td) => td.textContent ?? ''),
    );
    for (const text of values) expect(text.replace(/^-?0*|\./g, '').length, text).toBeLessThanOrEqual(9);
    await page.fill('#alerts-type', 'pressure');
    await page.click('#alerts-form button[type="submit"]');
    await gone(FM);
    expect(await alertDevices()).toEqual([PR]);
    expect(
      await page.evaluate(() => (globalThis as unknown as { location: { hash: string } }).location.hash),
    ).toBe('#tab=alerts&deviceType=pressure');
    await page.reload();
    await page.waitForSelector('#tab-alerts:not([hidden])', { timeout: 30_000 });
    expect(await page.inputValue('#alerts-type')).toBe('pressure');
    expect(await alertDevices()).toEqual([PR]);
    expect(await page.textContent('#alerts-history tbody')).not.toContain(FM);
    // The fleet filter: by group, the other device only.
    await page.fill('#alerts-type', '');
    await page.fill('#alerts-group', 'north');
    await page.click('#alerts-form button[type="submit"]');
    await gone(PR);
    expect(await alertDevices()).toEqual([FM]);
    await page.screenshot({ path: join(SHOTS, 'dashboard-alerts-filtered.png'), fullPage: true });

    // Events: by group (south: the pressure transmitter), then by event type, kept over a reload.
    await page.click('[data-tab="events"]');
    const eventDevices = async () => {
      await page.waitForSelector('#events-table[data-count]', { timeout: 30_000 });
      return [...new Set(await rowIds(page, '#events-table tbody tr[data-event-id]', 'data-device'))].sort();
    };
    expect(await eventDevices()).toEqual([FM, PR]);
    await page.fill('#events-group', 'south');
    await page.selectOption('#events-kind', 'birth');
    await page.click('#events-form button[type="submit"]');
    expect(await eventDevices()).toEqual([PR]);
    const kinds = await page.$$eval('#events-table tbody tr[data-event-id] td:nth-child(2)', (tds) => [
      ...new Set(tds.map((td) => td.textContent?.trim())),
    ]);
    expect(kinds).toEqual(['birth']);
    await page.reload();
    await page.waitForSelector('#tab-events:not([hidden])', { timeout: 30_000 });
    expect(await page.inputValue('#events-group')).toBe('south');
    expect(await page.inputValue('#events-kind')).toBe('birth');
    expect(await eventDevices()).toEqual([PR]);
    const worst = await lowestContrast(page, '#tab-events');
    console.log(`events tab: lowest text contrast ${worst.ratio.toFixed(2)}:1 ("${worst.text}")`);
    expect(worst.ratio).toBeGreaterThanOrEqual(4.5);
    expect(real(errors)).toEqual([]);
    await page.close();
  });

  it('an application key for one type sees no other type on any page', async () => {
    const { apiKey } = await h.createApp('Flow only', ['flow-meter']);
    const { page, errors } = await h.open({ key: apiKey });
    // Every API answer the page reads (the live stream aside, checked on the page) and every page's text.
    const bodies: string[] = [];
    page.on('response', async (r) => {
      if (!r.url().includes('/live')) bodies.push(await r.text().catch(() => ''));
    });
    const seen: Record<string, string> = {};
    const pageText = async (tab: string) => {
      seen[tab] = await page.evaluate(
        () =>
          (globalThis as unknown as { document: { body: { innerText: string } } }).document.body.innerText,
      );
      expect(seen[tab], tab).not.toContain(PR);
    };
    await page.waitForSelector(`#devices-table tr[data-device="${FM}"]`, { timeout: 30_000 });
    await page.waitForFunction(
      (fm) =>
        (
          (globalThis as unknown as PageGlobals).document.querySelector('#events')?.textContent ?? ''
        ).includes(fm),
      FM,
      { timeout: 30_000 },
    );
    await pageText('overview');
    await page.click('[data-tab="fleet"]');
    await page.waitForSelector(`#fleet-table tbody tr[data-device="${FM}"]`, { timeout: 30_000 });
    await pageText('fleet');
    await page.click('[data-tab="device"]');
    expect(
      await page.$$eval('#device-select option', (os) => os.map((o) => (o as { value: string }).value)),
    ).toEqual([FM]);
    await page.waitForFunction(
      () => (globalThis as unknown as PageGlobals).document.body.dataset.live === 'connected',
      undefined,
      {
        timeout: 30_000,
      },
    );
    await page.waitForSelector('#shadow-table tr[data-field="speed"]', { timeout: 30_000 });
    // Readings arrive by the live stream: wait for one, then look again.
    const before = Number(
      await page.evaluate(
        () => (globalThis as unknown as PageGlobals).document.body.dataset.liveReceived ?? 0,
      ),
    );
    await page.waitForFunction(
      (n) => Number((globalThis as unknown as PageGlobals).document.body.dataset.liveReceived ?? 0) > n,
      before,
      { timeout: 30_000 },
    );
    await pageText('device');
    // Values pushed live are shown at their type's precision too (a float32 as its shortest decimal).
    const floats = await page.$$eval('#state-table tbody td.value[title="Float"]', (tds) =>
      tds.map((td) => td.textContent ?? ''),
    );
    expect(floats.length).toBeGreaterThan(0);
    for (const text of floats) expect(text.replace(/^-?0*|\./g, '').length, text).toBeLessThanOrEqual(9);
    await page.click('[data-tab="alerts"]');
    await page.waitForSelector('#alerts-active tbody tr[data-alert-id]', { timeout: 30_000 });
    expect([...new Set(await rowIds(page, '#alerts-active tbody tr[data-alert-id]', 'data-device'))]).toEqual(
      [FM],
    );
    await pageText('alerts');
    await page.click('[data-tab="events"]');
    await page.waitForSelector('#events-table[data-count]', { timeout: 30_000 });
    expect([...new Set(await rowIds(page, '#events-table tbody tr[data-event-id]', 'data-device'))]).toEqual([
      FM,
    ]);
    await pageText('events');
    // Operations: the application's own only (ADR 0022) — the admin's operation on the other type's
    // device is not listed, its own is.
    const admins = await h.api('/operations', {
      method: 'POST',
      body: {
        filter: { deviceIds: [PR] },
        operation: { kind: 'command', command: { protocol: 'sparkplug', operation: 'rebirth' } },
      },
    });
    expect(admins.status).toBe(202);
    const own = await h.api('/operations', {
      method: 'POST',
      key: apiKey,
      body: {
        filter: { type: 'flow-meter' },
        operation: { kind: 'command', command: { protocol: 'sparkplug', operation: 'rebirth' } },
      },
    });
    expect(own.status).toBe(202);
    await page.click('[data-tab="operations"]');
    await page.waitForSelector(`#ops-table tbody tr[data-op="${own.body.id}"]`, { timeout: 30_000 });
    expect(await page.$$eval('#ops-table tbody tr', (t) => t.length)).toBe(1);
    expect(await page.textContent('#ops-table')).not.toContain(String(admins.body.id).slice(0, 8));
    await pageText('operations');
    for (const b of bodies) expect(b).not.toContain(PR);
    expect(bodies.length).toBeGreaterThan(10);
    expect(real(errors)).toEqual([]);
    await page.close();

    // A direct link to the other type's device: a clear message, nothing of the device.
    const direct = await h.open({ key: apiKey, hash: `tab=device&device=${PR}` });
    await direct.page.waitForSelector('#device-error:not([hidden])', { timeout: 30_000 });
    const message = (await direct.page.textContent('#device-error'))!;
    expect(message).toContain('Not allowed');
    expect(message).toContain(`may not access device ${PR}`);
    expect(await direct.page.getAttribute('#device-error', 'data-status')).toBe('403');
    expect(await direct.page.$$eval('#state-table tbody tr', (t) => t.length)).toBe(0);
    expect(await direct.page.$$eval('#charts svg', (t) => t.length)).toBe(0);
    expect(real(direct.errors)).toEqual([]);
    await direct.page.close();
  });
});
