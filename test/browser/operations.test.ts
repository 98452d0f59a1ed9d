/**
 * The dashboard's Operations tab (ADR 0022) in headless Chromium against a running local stack and a
 * simulated fleet: a firmware package uploaded through the page's form, a campaign started from the page
 * over a device type (2 of 20 devices set to fail their integrity check), its progress followed to the
 * end on the page (18 succeeded, 2 failed with Update Result 5), then Retry failed re-runs those 2.
 * Its screenshot goes to test-results/ (docs/screenshots/operations.png is made by npm run screenshots).
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Fleet, startFleet } from '../../simulator/fleet.js';
import { available, Harness, type PageGlobals, SHOTS } from './harness.js';

const h = new Harness('dp_admin_operations-ui-test-key-5c81e2a9f04b6d37', 'dualpath-ops-ui-');
const FAILING = ['sim-pressure-00004', 'sim-pressure-00013'];
let fleet: Fleet;

describe.skipIf(!available)('operations in the dashboard (headless Chromium)', { timeout: 120_000 }, () => {
  beforeAll(async () => {
    const stack = await h.start();
    if (!(await stack.registry.getDeviceType('pressure')))
      await stack.registry.putDeviceType({
        id: 'pressure',
        name: 'Pressure sensor',
        capabilities: [],
        units: {},
      });
    for (let i = 0; i < 20; i++)
      await stack.registry.putDevice({
        id: `sim-pressure-${String(i).padStart(5, '0')}`,
        type: 'pressure',
        // Five of them tagged, for the form's fleet filter.
        tags: i < 5 ? { site: 'north' } : {},
        status: 'active',
        protocols: [],
        createdAt: 0,
        updatedAt: 0,
      });
    fleet = await startFleet({
      url: h.mqttUrl,
      devices: 20,
      types: ['pressure'],
      rate: 0.05,
      lwm2mRate: 0.02,
      seed: 9,
      firmwareDownloadMs: 300,
      firmwareUpdateMs: 300,
      firmwareFailures: { ids: FAILING, kind: 'integrity' },
    });
    expect(await fleet.ready(60_000)).toBe(true);
    await h.launch();
  }, 120_000);

  afterAll(async () => {
    await fleet?.stop();
    await h.stop();
  }, 60_000);

  // Runs in the page: the text to wait for comes as its argument.
  const summaryHas = (text: string) =>
    (
      (globalThis as unknown as PageGlobals).document.querySelector('#op-summary')?.textContent ?? ''
    ).includes(text);

  it('uploads a package, runs a campaign from the page to the end, and retries the failed', async () => {
    const { page, errors } = await h.open({ width: 1400, height: 1000 });
    await page.click('[data-tab="operations"]');
    const file = join(h.dir, 'pressure-3.0.0.bin');
    writeFileSync(file, Buffer.from('pressure sensor firmware 3.0.0 '.repeat(500)));
    await page.setInputFiles('#fw-file', file);
    await page.fill('#fw-version', '3.0.0');
    await page.click('#fw-form button[type="submit"]');
    await page.waitForSelector('#op-package option', { timeout: 15_000, state: 'attached' });
    expect(await page.textContent('#fw-table tbody')).toContain('pressure-3.0.0.bin');

    await page.fill('#op-type', 'pressure');
    await page.fill('#op-concurrency', '8');
    await page.click('#op-form button[type="submit"]');
    await page.waitForFunction(summaryHas, 'completed', { timeout: 90_000 });
    const text = (await page.textContent('#op-summary'))!;
    expect(text).toContain('20/20 finished — 18 succeeded, 2 failed');
    await page.selectOption('#op-filter', 'failed');
    await page.waitForFunction(
      () =>
        (
          (globalThis as unknown as PageGlobals).document.querySelector('#op-targets tbody')?.textContent ??
          ''
        ).includes('sim-pressure-00013'),
      undefined,
      { timeout: 10_000 },
    );
    const failed = (await page.textContent('#op-targets tbody'))!;
    for (const id of FAILING) expect(failed).toContain(id);
    expect(failed).toContain('integrity check failure');
    await page.selectOption('#op-filter', '');
    await page.waitForTimeout(1500);
    await page.screenshot({ path: join(SHOTS, 'dashboard-operations.png'), fullPage: true });

    await page.click('#op-retry');
    await page.waitForFunction(summaryHas, '(retried 1×)', { timeout: 10_000 });
    await page.waitForFunction(summaryHas, 'completed', { timeout: 60_000 });
    expect(await page.textContent('#op-summary')).toContain('18 succeeded, 2 failed');
    expect(errors).toEqual([]);
  });

  it('starts a batch command over the fleet filter (type, tags, protocol, online) and shows the filter', async () => {
    const { page, errors } = await h.open();
    await page.click('[data-tab="operations"]');
    await page.waitForSelector('#op-form', { timeout: 15_000 });
    await page.fill('#op-type', 'pressure');
    await page.fill('#op-tag', 'site:north');
    await page.selectOption('#op-protocol', 'lwm2m');
    await page.selectOption('#op-online', 'true');
    await page.selectOption('#op-kind', 'command');
    await page.fill('#op-command', '{"protocol":"lwm2m","operation":"read","path":"/3/0/3"}');
    await page.click('#op-form button[type="submit"]');
    // The new operation is selected: 5 devices (the other one on the page has 20).
    await page.waitForFunction(summaryHas, 'completed: 5/5 finished', { timeout: 60_000 });
    expect(await page.textContent('#op-summary')).toContain('5 succeeded');
    const row = (await page.textContent('#ops-table tbody tr:first-child'))!;
    expect(row).toContain('type pressure, tags site:north, lwm2m, online (5)');
    // A bad filter answers with the field it names, on the form.
    await page.fill('#op-tag', 'site,site');
    await page.click('#op-form button[type="submit"]');
    await page.waitForFunction(
      () =>
        ((globalThis as unknown as PageGlobals).document.querySelector('#op-form-error')?.textContent ??
          '') !== '',
      undefined,
      { timeout: 10_000 },
    );
    expect(await page.textContent('#op-form-error')).toContain('filter.tag');
    // Nothing else went wrong on the page (the browser logs the refused request's 400 itself).
    expect(errors.filter((e) => !e.includes('400'))).toEqual([]);
  });
});
