/**
 * The dashboard's Alerts panel and chart markers (issue 17) in headless Chromium against a running local
 * stack: a threshold rule created over REST fires on a crossing reading sent over MQTT; the Alerts tab
 * lists the open alert, its Ack button acknowledges it (seen on the page and through GET /alerts/{id}),
 * the history shows it, and the device's chart carries a marker with the alert's id at its open time.
 * Screenshots go to test-results/.
 */
import { join } from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodePayload } from '../../functions/core/sparkplug/codec.js';
import { DataType } from '../../functions/core/sparkplug/types.js';
import { available, Harness, lowestContrast, type PageGlobals, SHOTS } from './harness.js';

const h = new Harness('dp_admin_alerts-ui-test-key-7d3b91c0e4a25f68', 'dualpath-alerts-ui-');
const api = h.api.bind(h);
const NODE = 'feeder-ui';
const RESOLVED = 22;
let client: MqttClient;
let alertId: string;

let seq = 0;
async function current(t: number, value: number, birth = false): Promise<void> {
  const payload = birth
    ? encodePayload({
        timestamp: t,
        seq: 0,
        metrics: [
          { name: 'bdSeq', datatype: DataType.Int64, value: 0 },
          { name: 'Current/L1', alias: 1, datatype: DataType.Double, value, timestamp: t },
        ],
      })
    : encodePayload({
        timestamp: t,
        seq: ++seq % 256,
        metrics: [{ alias: 1, datatype: DataType.Double, value, omitDatatype: true, timestamp: t }],
      });
  await client.publishAsync(`spBv1.0/plant/${birth ? 'NBIRTH' : 'NDATA'}/${NODE}`, Buffer.from(payload), {
    qos: 1,
  });
}

describe.skipIf(!available)('alerts in the dashboard (headless Chromium)', { timeout: 90_000 }, () => {
  beforeAll(async () => {
    const stack = await h.start();
    const created = await api('/rules', {
      method: 'POST',
      body: {
        id: 'feeder-overcurrent',
        name: 'Feeder over-current',
        severity: 'major',
        select: { devices: [NODE], metric: 'Current/L1' },
        condition: 'value > 80 clear value < 75',
      },
    });
    expect(created.status).toBe(201);
    client = await mqtt.connectAsync(h.mqttUrl, {
      clientId: NODE,
      reconnectPeriod: 0,
      protocolVersion: 4,
    });
    // Two minutes ago: 22 crossings, each cleared again (22 resolved alerts, more than a history page
    // of 20); then a minute of readings below the threshold, then the crossing one that stays open.
    const t0 = Date.now() - 120_000;
    await current(t0, 50, true);
    for (let i = 1; i <= RESOLVED; i++) {
      await current(t0 + i * 2000, 90);
      await current(t0 + i * 2000 + 1000, 70);
    }
    const t1 = Date.now() - 60_000;
    for (let i = 1; i <= 20; i++) await current(t1 + i * 2500, 50 + i);
    await current(Date.now(), 92);
    expect(await stack.drain()).toBe(true);
    // The rule engine runs on the ingest path; wait (bounded) for the alert to be stored.
    for (let i = 0; i < 100 && !alertId; i++) {
      const open = await api('/alerts?status=open');
      alertId = open.body.alerts?.[0]?.id;
      if (!alertId) await new Promise((r) => setTimeout(r, 100));
    }
    expect(alertId).toBeTruthy();
    await h.launch();
  }, 90_000);

  afterAll(async () => {
    client?.end(true);
    await h.stop();
  }, 60_000);

  it('lists the open alert and acknowledges it with its Ack button', async () => {
    const { page, errors } = await h.open({ httpErrors: true });
    // From the overview, the Alerts tab already counts the open alert.
    await page.waitForFunction(
      () =>
        (globalThis as unknown as PageGlobals).document.querySelector('#alerts-count')?.textContent === '1',
      undefined,
      { timeout: 30_000 },
    );
    await page.click('[data-tab="alerts"]');
    const row = `#alerts-active tbody tr[data-alert-id="${alertId}"]`;
    await page.waitForSelector(row, { timeout: 30_000 });
    const text = (await page.textContent(row))!;
    expect(text).toContain('major');
    expect(text).toContain('Feeder over-current');
    expect(text).toContain('feeder-overcurrent');
    expect(text).toContain(NODE);
    expect(text).toContain('Current/L1');
    expect(text).toContain('92');
    expect(await page.getAttribute(`${row} td.status`, 'data-status')).toBe('open');
    await page.screenshot({ path: join(SHOTS, 'dashboard-alerts-open.png'), fullPage: true });

    await page.click(`${row} button[data-ack="${alertId}"]`);
    await page.waitForFunction(
      (id) =>
        (globalThis as unknown as PageGlobals).document
          .querySelector(`#alerts-active tbody tr[data-alert-id="${id}"] td.status`)
          ?.getAttribute('data-status') === 'acknowledged',
      alertId,
      { timeout: 30_000 },
    );
    expect(await page.$(`${row} button[data-ack]`)).toBeNull();
    expect(await page.isHidden('#alerts-count')).toBe(true);
    const stored = await api(`/alerts/${alertId}`);
    expect(stored.body).toMatchObject({ status: 'acknowledged', acknowledgedBy: 'admin' });
    expect(typeof stored.body.acknowledgedAt).toBe('number');

    // The history (resolved alerts by default) pages with the API's cursor: 20, then the other 2.
    const historyRows = () => page.$$eval('#alerts-history tbody tr[data-alert-id]', (els) => els.length);
    await page.waitForFunction(
      () =>
        (globalThis as unknown as PageGlobals).document
          .querySelector('#alerts-history tbody tr:nth-child(20)')
          ?.getAttribute('data-alert-id') != null,
      undefined,
      { timeout: 30_000 },
    );
    expect(await historyRows()).toBe(20);
    expect(await page.textContent('#alerts-history tbody')).not.toContain(alertId);
    await page.click('#history-more');
    await page.waitForFunction(
      (n) =>
        (globalThis as unknown as PageGlobals).document
          .querySelector(`#alerts-history tbody tr:nth-child(${n})`)
          ?.getAttribute('data-alert-id') != null,
      RESOLVED,
      { timeout: 30_000 },
    );
    expect(await historyRows()).toBe(RESOLVED);
    expect(await page.isHidden('#history-more')).toBe(true);
    const ids = await page.$$eval('#alerts-history tbody tr[data-alert-id]', (els) =>
      els.map((e) => e.getAttribute('data-alert-id')),
    );
    expect(new Set(ids).size).toBe(RESOLVED);
    expect(await page.textContent('#alerts-history tbody')).toContain('rule');

    // The history, filtered to acknowledged alerts, has it too; its detail shows the transitions.
    await page.selectOption('#history-status', 'acknowledged');
    await page.waitForSelector(`#alerts-history tbody tr[data-alert-id="${alertId}"]`, { timeout: 30_000 });
    await page.click(`#alerts-history tbody tr[data-alert-id="${alertId}"]`);
    await page.waitForFunction(
      (id) =>
        (globalThis as unknown as PageGlobals).document
          .querySelector('#alert-detail')
          ?.getAttribute('data-alert-id') === id,
      alertId,
      { timeout: 30_000 },
    );
    const detail = (await page.textContent('#alert-detail'))!;
    expect(detail).toContain('open');
    expect(detail).toContain('acknowledged');
    await page.screenshot({ path: join(SHOTS, 'dashboard-alerts.png'), fullPage: true });
    // WCAG AA: every text the Alerts tab draws has >= 4.5:1 against the background it sits on.
    const worst = await lowestContrast(page, '#tab-alerts');
    console.log(`alerts tab: lowest text contrast ${worst.ratio.toFixed(2)}:1 ("${worst.text}")`);
    expect(worst.ratio).toBeGreaterThanOrEqual(4.5);
    expect(errors).toEqual([]);
    await page.close();
  });

  it("marks the alert on the device's chart at its open time", async () => {
    const { page } = await h.open();
    await page.waitForSelector(`#devices-table tbody tr[data-device="${NODE}"]`, { timeout: 30_000 });
    await page.click('[data-tab="device"]');
    await page.selectOption('#device-select', NODE);
    const marker = `#charts svg.chart g.alert-marker[data-alert-id="${alertId}"]`;
    await page.waitForSelector(marker, { state: 'attached', timeout: 30_000 });
    expect(await page.getAttribute(marker, 'class')).toContain('sev-major');
    expect(await page.textContent(`${marker} title`)).toContain('Feeder over-current');
    // One chart (Current/L1) with a marker per alert of the window (the resolved ones too), inside the plot.
    expect(await page.$$eval('#charts g.alert-marker', (els) => els.length)).toBe(RESOLVED + 1);
    const x = Number(await page.getAttribute(`${marker} line`, 'x1'));
    expect(x).toBeGreaterThanOrEqual(44);
    expect(x).toBeLessThanOrEqual(320 - 8);
    await page.screenshot({ path: join(SHOTS, 'dashboard-device-alert.png'), fullPage: true });
    await page.close();
  });
});
