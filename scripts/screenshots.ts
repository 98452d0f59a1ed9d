/**
 * Regenerates the dashboard screenshots in docs/screenshots/ (`npm run screenshots`): a local stack on
 * free ports, a simulated fleet of flow meters (writable pump speed) and pressure transmitters, alert
 * rules that fire on their readings, a desired pump speed on one flow meter, a firmware campaign over
 * the pressure transmitters; then headless Chromium (CHROMIUM_PATH, default /usr/bin/chromium) takes the
 * overview, fleet, device (charts with alert markers, shadow panel), alerts, events and operations pages.
 * The same harness as the browser tests (test/browser/harness.ts). Takes about two minutes.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { startFleet } from '../simulator/fleet.js';
import { available, CHROMIUM, Harness, type PageGlobals } from '../test/browser/harness.js';

const OUT = join(process.cwd(), 'docs', 'screenshots');
const WARMUP_MS = Number(process.env.SCREENSHOTS_WARMUP_MS ?? 45_000);
const FM = 'sim-flow-meter-00000';

function check(what: string, res: { status: number; body: unknown }, ok = [200, 201, 202]): void {
  if (!ok.includes(res.status)) throw new Error(`${what}: HTTP ${res.status} ${JSON.stringify(res.body)}`);
}

async function waitText(page: Page, selector: string, text: string, timeout = 60_000): Promise<void> {
  await page.waitForFunction(
    ([sel, t]) =>
      ((globalThis as unknown as PageGlobals).document.querySelector(sel!)?.textContent ?? '').includes(t!),
    [selector, text],
    { timeout },
  );
}

async function main(): Promise<void> {
  if (!available)
    throw new Error(`${CHROMIUM} not found (apt-get install -y chromium, or set CHROMIUM_PATH)`);
  mkdirSync(OUT, { recursive: true });
  const h = new Harness('dp_admin_screenshots-key-6b1f0d93e2c7a458', 'dualpath-shots-');
  await h.start();
  const fleetIds = [0, 1, 2].flatMap((i) => [
    `sim-flow-meter-${String(i).padStart(5, '0')}`,
    `sim-pressure-${String(i).padStart(5, '0')}`,
  ]);
  let fleet: Awaited<ReturnType<typeof startFleet>> | undefined;
  try {
    check(
      'PUT /device-types/flow-meter',
      await h.api('/device-types/flow-meter', {
        method: 'PUT',
        body: {
          name: 'Flow meter with pump',
          writable: {
            speed: { protocol: 'sparkplug', device: 'pump', metric: 'Speed Setpoint', datatype: 'Float' },
            running: { protocol: 'sparkplug', device: 'pump', metric: 'Running', datatype: 'Boolean' },
          },
        },
      }),
    );
    check(
      'PUT /device-types/pressure',
      await h.api('/device-types/pressure', { method: 'PUT', body: { name: 'Pressure transmitter' } }),
    );
    for (const [i, id] of fleetIds.entries()) {
      const north = i < 4;
      check(
        `PUT /devices/${id}`,
        await h.api(`/devices/${id}`, {
          method: 'PUT',
          body: {
            type: id.includes('flow') ? 'flow-meter' : 'pressure',
            group: north ? 'north' : 'south',
            tags: { site: north ? 'north' : 'south', ...(i % 3 === 0 ? { tier: 'gold' } : {}) },
          },
        }),
      );
    }
    for (const rule of [
      {
        id: 'flow-high',
        name: 'Flow above 28 m3/h',
        severity: 'minor',
        select: { deviceType: 'flow-meter', metric: 'Flow' },
        condition: 'value > 28 clear value < 26',
      },
      {
        id: 'pressure-high',
        name: 'Pressure above 420 kPa',
        severity: 'major',
        select: { deviceType: 'pressure', metric: 'Pressure' },
        condition: 'value > 420 clear value < 410',
      },
    ])
      check(`POST /rules ${rule.id}`, await h.api('/rules', { method: 'POST', body: rule }));
    fleet = await startFleet({
      url: h.mqttUrl,
      devices: fleetIds.length,
      ids: fleetIds,
      types: ['flow-meter', 'pressure'],
      rate: 1,
      lwm2mRate: 0.2,
      seed: 11,
      firmwareDownloadMs: 500,
      firmwareUpdateMs: 500,
      firmwareFailures: { ids: ['sim-pressure-00002'], kind: 'integrity' },
    });
    if (!(await fleet.ready(60_000))) throw new Error('the simulated fleet did not come up');
    console.info(`[screenshots] fleet up; ${WARMUP_MS / 1000} s of readings for the charts`);
    await new Promise((r) => setTimeout(r, WARMUP_MS / 2));
    const shadow = await h.api(`/devices/${FM}/shadow/desired`, { method: 'PUT', body: { speed: 65 } });
    check('PUT shadow', shadow);
    const pkg = await h.api('/firmware', {
      method: 'POST',
      body: {
        name: 'pressure-3.0.0.bin',
        version: '3.0.0',
        contentBase64: Buffer.from('pressure transmitter firmware 3.0.0 '.repeat(400)).toString('base64'),
      },
    });
    check('POST /firmware', pkg);
    const op = await h.api('/operations', {
      method: 'POST',
      body: {
        filter: { type: 'pressure' },
        operation: { kind: 'firmware-update', packageId: pkg.body.id },
        settings: { concurrency: 3, ratePerSecond: 10 },
      },
    });
    check('POST /operations', op);
    await new Promise((r) => setTimeout(r, WARMUP_MS / 2));
    await h.launch();

    const shot = async (page: Page, name: string) => {
      await page.screenshot({ path: join(OUT, name), fullPage: true });
      console.info(`[screenshots] docs/screenshots/${name}`);
    };
    const { page } = await h.open({ width: 1280, height: 900 });
    await page.waitForSelector(`#devices-table tr[data-device="${FM}"]`, { timeout: 30_000 });
    await page.waitForSelector('#events li', { timeout: 30_000 });
    await page.waitForTimeout(12_000); // six polls: the readings-per-second chart has a line
    await shot(page, 'dashboard-overview.png');

    await page.click('[data-tab="fleet"]');
    await page.fill('#fleet-tag', 'site:north');
    await page.click('#fleet-form button[type="submit"]');
    await waitText(page, '#fleet-title', 'Fleet: 4');
    await shot(page, 'dashboard-fleet.png');

    await page.click('[data-tab="device"]');
    await page.selectOption('#device-select', FM);
    await page.waitForSelector('#charts svg.chart path.line', { timeout: 30_000 });
    await page.waitForSelector('#shadow-table tr[data-field="speed"]', { timeout: 30_000 });
    await page.waitForTimeout(2500);
    await shot(page, 'dashboard-device.png');

    await page.click('[data-tab="alerts"]');
    await page.waitForSelector('#alerts-active tbody tr[data-alert-id]', { timeout: 30_000 });
    // The newest alert's detail (its transitions) beside the lists.
    await page.click('#alerts-active tbody tr[data-alert-id] td:nth-child(2)');
    await page.waitForSelector('#alert-detail[data-alert-id]', { timeout: 30_000 });
    await shot(page, 'dashboard-alerts.png');

    await page.click('[data-tab="events"]');
    await page.waitForSelector('#events-table[data-count]', { timeout: 30_000 });
    await shot(page, 'dashboard-events.png');

    await page.click('[data-tab="operations"]');
    await page.waitForSelector('#ops-table tbody tr[data-op]', { timeout: 30_000 });
    await page.click('#ops-table tbody tr[data-op]');
    await waitText(page, '#op-summary', 'completed', 90_000);
    await page.waitForTimeout(1500);
    await shot(page, 'operations.png');
    await page.close();
  } finally {
    await fleet?.stop();
    await h.stop();
  }
}

main().then(
  () => process.exit(0),
  (error) => {
    console.error(error);
    process.exit(1);
  },
);
