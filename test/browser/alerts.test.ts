/**
 * The dashboard's Alerts panel and chart markers (issue 17) in headless Chromium against a running local
 * stack: a threshold rule created over REST fires on a crossing reading sent over MQTT; the Alerts tab
 * lists the open alert, its Ack button acknowledges it (seen on the page and through GET /alerts/{id}),
 * the history shows it, and the device's chart carries a marker with the alert's id at its open time.
 * Screenshots go to test-results/.
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { type Browser, chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodePayload } from '../../functions/core/sparkplug/codec.js';
import { DataType } from '../../functions/core/sparkplug/types.js';
import { type LocalStack, startLocalStack } from '../../infra/local/stack.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const available = existsSync(CHROMIUM);
if (!available)
  console.info(`[browser] skipped: ${CHROMIUM} not found (apt-get install -y chromium; .ci/run does this)`);

const ADMIN = 'dp_admin_alerts-ui-test-key-7d3b91c0e4a25f68';
const NODE = 'feeder-ui';
const RESOLVED = 22;
const SHOTS = join(process.cwd(), 'test-results');
let stack: LocalStack;
let browser: Browser;
let dir: string;
let client: MqttClient;
let alertId: string;

/** The slice of the page's DOM the predicates below read. */
interface PageElement {
  textContent: string | null;
  getAttribute(name: string): string | null;
}
interface PageGlobals {
  document: { querySelector(selector: string): PageElement | null };
}

async function api(path: string, init: { method?: string; body?: unknown } = {}) {
  const res = await fetch(`http://127.0.0.1:${stack.httpPort}${path}`, {
    method: init.method ?? 'GET',
    headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
    ...(init.body === undefined ? {} : { body: JSON.stringify(init.body) }),
  });
  // biome-ignore lint/suspicious/noExplicitAny: JSON bodies of several shapes, checked by the assertions
  return { status: res.status, body: (await res.json().catch(() => null)) as Record<string, any> };
}

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
    mkdirSync(SHOTS, { recursive: true });
    dir = mkdtempSync(join(tmpdir(), 'dualpath-alerts-ui-'));
    stack = await startLocalStack({ dataDir: dir, mqttPort: 0, httpPort: 0, adminKey: ADMIN });
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
    client = await mqtt.connectAsync(`mqtt://127.0.0.1:${stack.mqttPort}`, {
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
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-component-update',
        '--no-first-run',
      ],
    });
  }, 90_000);

  afterAll(async () => {
    await browser?.close();
    client?.end(true);
    await stack?.stop();
    rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  // Predicates are functions, not strings: the page's CSP (script-src 'self') forbids eval. They run in
  // the page and reach `document` through globalThis (the project compiles without the DOM library).
  it('lists the open alert and acknowledges it with its Ack button', async () => {
    const errors: string[] = [];
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    page.on('pageerror', (e) => errors.push(e.message));
    page.on('response', (r) => {
      if (r.status() >= 400) errors.push(`HTTP ${r.status()} ${r.url()}`);
    });
    page.on('console', (m) => {
      if (m.type() === 'error') errors.push(m.text());
    });
    await page.goto(`http://127.0.0.1:${stack.httpPort}/#key=${ADMIN}`);
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
    const worst = await page.evaluate(() => {
      // biome-ignore lint/suspicious/noExplicitAny: runs in the page; the project compiles without the DOM lib
      const g = globalThis as any;
      const rgb = (c: string) => (c.match(/[\d.]+/g) ?? []).map(Number);
      const lum = (c: number[]) => {
        const [r, gr, b] = c.slice(0, 3).map((v) => {
          const x = v / 255;
          return x <= 0.03928 ? x / 12.92 : ((x + 0.055) / 1.055) ** 2.4;
        });
        return 0.2126 * r! + 0.7152 * gr! + 0.0722 * b!;
      };
      const background = (el: unknown): number[] => {
        // biome-ignore lint/suspicious/noExplicitAny: a DOM element
        for (let e: any = el; e; e = e.parentElement) {
          const c = rgb(g.getComputedStyle(e).backgroundColor);
          if (c.length === 3 || (c.length === 4 && c[3]! > 0)) return c;
        }
        return [255, 255, 255];
      };
      let min = { ratio: 99, text: '' };
      for (const el of g.document.querySelectorAll('#tab-alerts *')) {
        const own = [...el.childNodes].some(
          // biome-ignore lint/suspicious/noExplicitAny: a DOM node
          (n: any) => n.nodeType === 3 && n.textContent.trim() !== '',
        );
        if (!own || el.getClientRects().length === 0) continue;
        const [a, b] = [lum(rgb(g.getComputedStyle(el).color)), lum(background(el))];
        const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
        if (ratio < min.ratio) min = { ratio, text: el.textContent.trim().slice(0, 40) };
      }
      return min;
    });
    console.log(`alerts tab: lowest text contrast ${worst.ratio.toFixed(2)}:1 ("${worst.text}")`);
    expect(worst.ratio).toBeGreaterThanOrEqual(4.5);
    expect(errors).toEqual([]);
    await page.close();
  });

  it("marks the alert on the device's chart at its open time", async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    await page.goto(`http://127.0.0.1:${stack.httpPort}/#key=${ADMIN}`);
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
