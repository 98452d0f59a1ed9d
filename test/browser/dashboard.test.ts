/**
 * The dashboard in headless Chromium (Debian's, driven by playwright-core) against a running local
 * stack with real data: pages load, charts render from stored telemetry, an LwM2M command round-trips
 * to a device over MQTT and its decoded response is shown. Screenshots go to test-results/.
 */
import { join } from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ContentFormat,
  decodeMessage,
  encodeMessage,
  Operation,
} from '../../functions/core/lwm2m/message.js';
import { encodePayload } from '../../functions/core/sparkplug/codec.js';
import { DataType } from '../../functions/core/sparkplug/types.js';
import { available, Harness, type PageGlobals, SHOTS } from './harness.js';

const h = new Harness('dp_admin_browser-test-key-5c2e8a41f97b3d60', 'dualpath-ui-');
let device: MqttClient;

describe.skipIf(!available)('dashboard in headless Chromium', { timeout: 90_000 }, () => {
  beforeAll(async () => {
    const stack = await h.start();
    const now = Date.now();
    await stack.registry.putDevice({
      id: 'breaker-ui',
      type: 'breaker',
      tags: {},
      status: 'active',
      protocols: [],
      createdAt: now,
      updatedAt: now,
    });
    device = await mqtt.connectAsync(h.mqttUrl, {
      clientId: 'breaker-ui',
      reconnectPeriod: 0,
    });
    await device.subscribeAsync('lwm2m/rd/breaker-ui', { qos: 1 });
    device.on('message', (_t, payload) => {
      const m = decodeMessage(new Uint8Array(payload));
      if (m.operation === Operation.Read) {
        void device.publishAsync(
          'lwm2m/rd/breaker-ui',
          Buffer.from(
            encodeMessage({
              result: 205,
              token: m.token!,
              contentFormat: ContentFormat.Text,
              payload: new TextEncoder().encode('Dualpath UI test'),
            }),
          ),
          { qos: 1 },
        );
      }
    });
    await device.publishAsync(
      'lwm2m/rd/breaker-ui',
      Buffer.from(
        encodeMessage({
          operation: Operation.Register,
          token: 1,
          ep: 'breaker-ui',
          lifetime: 600,
          version: '1.2',
          payload: new TextEncoder().encode('</3/0>,</3316/0>'),
        }),
      ),
      { qos: 1 },
    );
    const t0 = now - 60_000;
    await device.publishAsync(
      'spBv1.0/grid/NBIRTH/breaker-ui',
      Buffer.from(
        encodePayload({
          timestamp: t0,
          seq: 0,
          metrics: [
            { name: 'bdSeq', datatype: DataType.Int64, value: 0 },
            { name: 'Voltage', alias: 1, datatype: DataType.Float, value: 230, timestamp: t0 },
          ],
        }),
      ),
      { qos: 1 },
    );
    for (let i = 1; i <= 30; i++) {
      const t = t0 + i * 2000;
      await device.publishAsync(
        'spBv1.0/grid/NDATA/breaker-ui',
        Buffer.from(
          encodePayload({
            timestamp: t,
            seq: i,
            metrics: [
              { alias: 1, datatype: DataType.Float, value: 228 + (i % 5), omitDatatype: true, timestamp: t },
            ],
          }),
        ),
        { qos: 1 },
      );
    }
    expect(await stack.drain()).toBe(true);
    await h.launch();
  }, 90_000);

  afterAll(async () => {
    device?.end(true);
    await h.stop();
  }, 60_000);

  it('shows the overview with the device and live counters', async () => {
    const { page } = await h.open();
    await page.waitForSelector('#devices-table tbody tr[data-device="breaker-ui"]', { timeout: 30_000 });
    await page.waitForFunction(
      () => (globalThis as unknown as PageGlobals).document.querySelector('#m-stored')?.textContent !== '–',
      undefined,
      {
        timeout: 30_000,
      },
    );
    expect(Number((await page.textContent('#m-stored'))!.replace(/,/g, ''))).toBeGreaterThanOrEqual(31);
    await page.screenshot({ path: join(SHOTS, 'dashboard-overview.png'), fullPage: true });
    await page.close();
  });

  it('renders a chart from stored telemetry and round-trips an LwM2M Read', async () => {
    const { page } = await h.open();
    await page.waitForSelector('#devices-table tbody tr[data-device="breaker-ui"]', { timeout: 30_000 });
    await page.click('[data-tab="device"]');
    await page.selectOption('#device-select', 'breaker-ui');
    // The view re-renders every 2 s: wait until a rendered chart carries its point count.
    await page.waitForFunction(
      () =>
        Number(
          (globalThis as unknown as PageGlobals).document
            .querySelector('#charts svg.chart path.line')
            ?.closest('svg')
            ?.getAttribute('data-points') ?? 0,
        ) > 5,
      undefined,
      { timeout: 30_000 },
    );
    await page.fill('#cmd-path', '/3/0/0');
    await page.click('#command-form button[type="submit"]');
    await page.waitForFunction(
      () =>
        (globalThis as unknown as PageGlobals).document
          .querySelector('#command-result')
          ?.getAttribute('data-status') === 'succeeded',
      undefined,
      { timeout: 30_000 },
    );
    expect(await page.textContent('#command-result')).toContain('Dualpath UI test');
    await page.screenshot({ path: join(SHOTS, 'dashboard-device.png'), fullPage: true });
    await page.close();
  });

  it('shows what one application sees with its own key', async () => {
    const { apiKey } = await h.createApp('Env only', ['env-sensor']);
    const { page } = await h.open({ height: 700 });
    await page.click('[data-tab="app"]');
    await page.fill('#app-key', apiKey);
    await page.click('#app-form button[type="submit"]');
    await page.waitForFunction(
      () =>
        (globalThis as unknown as PageGlobals).document
          .querySelector('#app-title')
          ?.textContent?.includes('device(s)') ?? false,
      undefined,
      { timeout: 30_000 },
    );
    // The breaker is not an env-sensor: the application must not see it.
    expect(await page.textContent('#app-devices tbody')).not.toContain('breaker-ui');
    expect(await page.textContent('#app-title')).toContain('0 device(s)');
    await page.screenshot({ path: join(SHOTS, 'dashboard-application.png') });
    await page.close();
  });
});
