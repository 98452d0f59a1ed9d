/**
 * The dashboard defects of issue 18, each reproduced in headless Chromium against a running local stack
 * with devices that speak both protocols: link contrast, the Protocols column, the online count of
 * physical devices, values at their type's precision, the state table within its card, lifecycle
 * events filling while devices are born and registered, and the Application tab's picker.
 */
import { join } from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeMessage, Operation } from '../../functions/core/lwm2m/message.js';
import { encodePayload } from '../../functions/core/sparkplug/codec.js';
import { DataType } from '../../functions/core/sparkplug/types.js';
import { available, Harness, lowestContrast, type PageGlobals, SHOTS } from './harness.js';

const h = new Harness('dp_admin_defects-ui-test-key-91b3c7e05d2a4f86', 'dualpath-defects-ui-');
const api = h.api.bind(h);
/**
 * Two meters on both protocols (meter-b not registered beforehand: it is auto-registered by the first
 * protocol it speaks, Sparkplug, then registers on LwM2M), one on Sparkplug only, one env sensor on LwM2M
 * only: 4 physical devices.
 */
const DEVICES = [
  { id: 'meter-a', type: 'meter', sparkplug: true, lwm2m: true },
  { id: 'meter-b', type: 'meter', sparkplug: true, lwm2m: true },
  { id: 'meter-c', type: 'meter', sparkplug: true, lwm2m: false },
  { id: 'env-1', type: 'env-sensor', sparkplug: false, lwm2m: true },
] as const;
const LONG_METRIC = 'Inverter/String-01/DC-Input-Voltage-Measured-At-The-Combiner-Box-Terminal-Block';
const LONG_VALUE = 'f'.repeat(40) + '0123456789abcdef'.repeat(6);

let appId: string;
let appKey: string;
/** Tags and groups set over REST (PUT /devices/{id}) before the devices connect. */
const LABELS: Record<string, { group: string; tags: Record<string, string> }> = {
  'meter-a': { group: 'north', tags: { site: 'north', tier: 'gold' } },
  'meter-c': { group: 'south', tags: { site: 'south' } },
  'env-1': { group: 'north', tags: { site: 'north' } },
};
const clients: MqttClient[] = [];

/** Births and registers every device over MQTT (one connection per device), then drains the pipeline. */
async function bringUp(): Promise<void> {
  const t = Date.now();
  for (const d of DEVICES) {
    const c = await mqtt.connectAsync(h.mqttUrl, {
      clientId: d.id,
      reconnectPeriod: 0,
    });
    clients.push(c);
    if (d.id === 'meter-b') await birth(c, d.id, t);
    if (d.lwm2m)
      await c.publishAsync(
        `lwm2m/rd/${d.id}`,
        Buffer.from(
          encodeMessage({
            operation: Operation.Register,
            token: 1,
            ep: d.id,
            lifetime: 600,
            version: '1.2',
            payload: new TextEncoder().encode('</3/0>,</3303/0>,</3316/0>,</5/0>'),
          }),
        ),
        { qos: 1 },
      );
    if (d.sparkplug && d.id !== 'meter-b') await birth(c, d.id, t);
  }
  expect(await h.stack.drain()).toBe(true);
}

async function birth(c: MqttClient, id: string, t: number): Promise<void> {
  await c.publishAsync(
    `spBv1.0/site/NBIRTH/${id}`,
    Buffer.from(
      encodePayload({
        timestamp: t,
        seq: 0,
        metrics: [
          { name: 'bdSeq', datatype: DataType.Int64, value: 0 },
          { name: 'Temperature', alias: 1, datatype: DataType.Float, value: 16.86, timestamp: t },
          { name: 'Ratio', alias: 2, datatype: DataType.Double, value: 0.1 + 0.2, timestamp: t },
          { name: 'Count', alias: 3, datatype: DataType.Int32, value: 42, timestamp: t },
          { name: LONG_METRIC, alias: 4, datatype: DataType.String, value: LONG_VALUE, timestamp: t },
        ],
      }),
    ),
    { qos: 1 },
  );
}

const open = (width = 1280, height = 900) => h.open({ width, height });

describe.skipIf(!available)('dashboard defects of issue 18 (headless Chromium)', { timeout: 120_000 }, () => {
  beforeAll(async () => {
    await h.start();
    for (const type of ['meter', 'env-sensor'])
      expect(
        (await api(`/device-types/${type}`, { method: 'PUT', body: { name: type } })).status,
      ).toBeLessThan(300);
    ({ id: appId, apiKey: appKey } = await h.createApp('Env only', ['env-sensor']));
    for (const d of DEVICES.filter((x) => x.id !== 'meter-b'))
      expect(
        (await api(`/devices/${d.id}`, { method: 'PUT', body: { type: d.type, ...LABELS[d.id] } })).status,
      ).toBeLessThan(300);
    await h.launch();
  }, 120_000);

  afterAll(async () => {
    for (const c of clients) c.end(true);
    await h.stop();
  }, 60_000);

  it('6. fills "Recent lifecycle events" while devices are born and registered', async () => {
    const { page, errors } = await open();
    await page.waitForSelector('#devices-table tbody', { timeout: 30_000 });
    // The page is open (and has polled once) before any device exists.
    await page.waitForFunction(
      () => (globalThis as unknown as PageGlobals).document.querySelector('#m-stored')?.textContent !== '–',
      undefined,
      {
        timeout: 30_000,
      },
    );
    expect(await page.locator('#events li').count()).toBe(0);
    await bringUp();
    await page.waitForFunction(
      () =>
        (
          (globalThis as unknown as PageGlobals).document.querySelector('#events')?.textContent ?? ''
        ).includes('meter-c'),
      undefined,
      { timeout: 30_000 },
    );
    const text = (await page.textContent('#events'))!;
    for (const d of DEVICES) expect(text).toContain(d.id);
    expect(errors).toEqual([]);
    await page.close();
  });

  it('1. device links are readable (WCAG AA >= 4.5:1) on the overview', async () => {
    const { page } = await open();
    await page.waitForSelector('#devices-table a[data-open="meter-a"]', { timeout: 30_000 });
    const worst = await lowestContrast(page, '#tab-overview');
    console.log(`overview: lowest text contrast ${worst.ratio.toFixed(2)}:1 ("${worst.text}")`);
    expect(worst.ratio).toBeGreaterThanOrEqual(4.5);
    await page.close();
  });

  it('2. the Protocols column shows both protocols of a device registered on both', async () => {
    const { page } = await open();
    await page.waitForSelector('#devices-table tr[data-device="meter-a"]', { timeout: 30_000 });
    const cells = async (id: string) =>
      page.$$eval(`#devices-table tr[data-device="${id}"] td`, (tds) =>
        tds.map((td) => td.textContent?.trim()),
      );
    expect((await cells('meter-a'))[2]).toBe('sparkplug, lwm2m');
    expect((await cells('meter-b'))[2]).toBe('sparkplug, lwm2m');
    expect((await cells('meter-c'))[2]).toBe('sparkplug');
    expect((await cells('env-1'))[2]).toBe('lwm2m');
    await page.close();
  });

  it('3. "Devices online" counts physical devices, with the per-protocol split below', async () => {
    const { page } = await open();
    // The local stack counts online devices on a timer; wait for the count of this fleet.
    await page.waitForFunction(
      () => (globalThis as unknown as PageGlobals).document.querySelector('#m-online')?.textContent === '4',
      undefined,
      {
        timeout: 30_000,
      },
    );
    expect(await page.textContent('#m-online-split')).toContain('Sparkplug 3 · LwM2M 3');
    await page.waitForSelector('#events li', { timeout: 30_000 });
    await page.screenshot({ path: join(SHOTS, 'dashboard-overview-fleet.png'), fullPage: true });
    await page.close();
  });

  it('4. shows values at their type precision and 5. keeps the state table inside its card', async () => {
    const { page, errors } = await open(1280, 900);
    await page.waitForSelector('#devices-table a[data-open="meter-a"]', { timeout: 30_000 });
    await page.click('#devices-table a[data-open="meter-a"]');
    await page.waitForFunction(
      () =>
        (
          (globalThis as unknown as PageGlobals).document.querySelector('#state-table tbody')?.textContent ??
          ''
        ).includes('Temperature'),
      undefined,
      { timeout: 30_000 },
    );
    const value = (metric: string) =>
      page.$eval(
        `#state-table tbody tr[data-metric="${metric}"] td.value`,
        (td) => td.textContent?.trim() ?? '',
      );
    expect(await value('Temperature')).toBe('16.86');
    expect(await value('Ratio')).toBe(String(0.1 + 0.2));
    expect(await value('Count')).toBe('42');
    const box = async (sel: string) => (await page.locator(sel).boundingBox())!;
    const table = await box('#state-table');
    const card = await box('#state-panel');
    const objects = await box('#objects-panel');
    // The table stays within its card (the card scrolls instead), and the card never covers the objects.
    expect(table.x + table.width).toBeLessThanOrEqual(card.x + card.width + 0.5);
    const scroll = await page.$eval('#state-panel', (el) => ({
      client: el.clientWidth,
      content: el.scrollWidth,
      // biome-ignore lint/suspicious/noExplicitAny: runs in the page; the project compiles without the DOM lib
      overflow: (globalThis as any).getComputedStyle(el).overflowX as string,
    }));
    expect(scroll.content <= scroll.client || scroll.overflow === 'auto').toBe(true);
    const overlapX = Math.min(card.x + card.width, objects.x + objects.width) - Math.max(card.x, objects.x);
    const overlapY = Math.min(card.y + card.height, objects.y + objects.height) - Math.max(card.y, objects.y);
    expect(overlapX <= 0 || overlapY <= 0).toBe(true);
    await page.screenshot({ path: join(SHOTS, 'dashboard-device-defects.png'), fullPage: true });
    expect(errors).toEqual([]);
    await page.close();
  });

  it('7. the admin picks an application from a list and sees only its devices', async () => {
    const { page, errors } = await open();
    await page.click('[data-tab="app"]');
    await page.waitForSelector(`#app-select option[value="${appId}"]`, {
      state: 'attached',
      timeout: 30_000,
    });
    await page.selectOption('#app-select', appId);
    await page.waitForFunction(
      () =>
        (
          (globalThis as unknown as PageGlobals).document.querySelector('#app-title')?.textContent ?? ''
        ).includes('device(s)'),
      undefined,
      { timeout: 30_000 },
    );
    expect(await page.textContent('#app-title')).toContain('1 device(s)');
    const body = (await page.textContent('#app-devices tbody'))!;
    expect(body).toContain('env-1');
    expect(body).not.toContain('meter-');
    expect(errors).toEqual([]);
    await page.close();
  });

  it('the fleet page filters by type, tag, group, protocol and online', async () => {
    const { page, errors } = await open();
    await page.click('[data-tab="fleet"]');
    const rows = async () => {
      await page.waitForFunction(
        () =>
          (globalThis as unknown as PageGlobals).document
            .querySelector('#fleet-table')
            ?.getAttribute('data-count') !== null,
        undefined,
        { timeout: 30_000 },
      );
      // The local registry is DynamoDB (a Scan): devices come in key-hash order.
      return (
        await page.$$eval('#fleet-table tbody tr[data-device]', (trs) =>
          trs.map((tr) => tr.getAttribute('data-device')),
        )
      ).sort();
    };
    const filter = async (values: Record<string, string>) => {
      await page.$eval('#fleet-table', (t) => t.removeAttribute('data-count'));
      for (const sel of ['#fleet-type', '#fleet-group', '#fleet-tag'])
        await page.fill(sel, values[sel] ?? '');
      for (const sel of ['#fleet-protocol', '#fleet-online']) await page.selectOption(sel, values[sel] ?? '');
      await page.click('#fleet-form button[type="submit"]');
      return rows();
    };
    expect(await rows()).toEqual(['env-1', 'meter-a', 'meter-b', 'meter-c']);
    expect(await filter({ '#fleet-type': 'meter', '#fleet-tag': 'site:north' })).toEqual(['meter-a']);
    expect(await filter({ '#fleet-group': 'north' })).toEqual(['env-1', 'meter-a']);
    expect(await filter({ '#fleet-tag': 'tier' })).toEqual(['meter-a']);
    expect(await filter({ '#fleet-protocol': 'lwm2m' })).toEqual(['env-1', 'meter-a', 'meter-b']);
    expect(await filter({ '#fleet-online': 'true' })).toEqual(['env-1', 'meter-a', 'meter-b', 'meter-c']);
    expect(await filter({ '#fleet-online': 'false' })).toEqual([]);
    expect(await page.textContent('#fleet-table tbody')).toContain('No device matches');
    await filter({});
    expect(await page.textContent('#fleet-table tbody tr[data-device="meter-a"]')).toContain('tier=gold');
    await page.screenshot({ path: join(SHOTS, 'dashboard-fleet.png'), fullPage: true });
    expect(errors).toEqual([]);
    await page.close();
  });

  it('an application key sees only its devices on every page', async () => {
    const { page, errors } = await h.open({ key: appKey });
    // Overview: the device table and the lifecycle events.
    await page.waitForSelector('#devices-table tr[data-device="env-1"]', { timeout: 30_000 });
    await page.waitForFunction(
      () =>
        (
          (globalThis as unknown as PageGlobals).document.querySelector('#events')?.textContent ?? ''
        ).includes('env-1'),
      undefined,
      { timeout: 30_000 },
    );
    expect(await page.textContent('#devices-table tbody')).not.toContain('meter-');
    expect(await page.textContent('#events')).not.toContain('meter-');
    // Fleet page, unfiltered and filtered.
    await page.click('[data-tab="fleet"]');
    await page.waitForSelector('#fleet-table tbody tr[data-device="env-1"]', { timeout: 30_000 });
    expect(await page.$$eval('#fleet-table tbody tr[data-device]', (t) => t.length)).toBe(1);
    // Device page: only its devices to pick.
    await page.click('[data-tab="device"]');
    const options = await page.$$eval('#device-select option', (os) =>
      os.map((o) => (o as { value: string }).value),
    );
    expect(options).toEqual(['env-1']);
    // Application tab: no picker (listing applications is for the admin), its own view works.
    await page.click('[data-tab="app"]');
    await page.waitForFunction(
      () =>
        (globalThis as unknown as PageGlobals).document
          .querySelector('#app-select')
          ?.getAttribute('data-hidden-for') === 'app',
      undefined,
      { timeout: 30_000 },
    );
    expect(errors).toEqual([]);
    await page.close();
  });
});
