/**
 * The one setup of the browser tests: a local stack in a temporary directory, Debian's Chromium driven
 * by playwright-core, pages signed in with the admin key or an application key, REST calls with either,
 * the page-side helpers (WCAG contrast), and teardown. Each test file builds one Harness.
 *
 * Predicates given to page.waitForFunction must be functions, not strings: the page's
 * Content-Security-Policy (script-src 'self') forbids the eval Playwright would use for a string. They
 * run in the page and reach `document` through globalThis (the project compiles without the DOM lib).
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { type Browser, chromium, type Page } from 'playwright-core';
import { encodePayload } from '../../functions/core/sparkplug/codec.js';
import { DataType } from '../../functions/core/sparkplug/types.js';
import { type LocalStack, type LocalStackOptions, startLocalStack } from '../../infra/local/stack.js';

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
/** Whether Chromium is installed: the browser suites are skipped (with a notice) when it is not. */
export const available = existsSync(CHROMIUM);
if (!available)
  console.info(`[browser] skipped: ${CHROMIUM} not found (apt-get install -y chromium; .ci/run does this)`);

/** Where the tests' screenshots go (docs/screenshots/ is written by scripts/screenshots.ts). */
export const SHOTS = join(process.cwd(), 'test-results');

/** The slice of the page's DOM the predicates read. */
export interface PageElement {
  textContent: string | null;
  getAttribute(name: string): string | null;
  closest(selector: string): PageElement | null;
  dataset: Record<string, string | undefined>;
}
export interface PageGlobals {
  document: {
    body: { dataset: Record<string, string | undefined> };
    querySelector(selector: string): PageElement | null;
    querySelectorAll(selector: string): ArrayLike<PageElement & { cells: ArrayLike<PageElement> }>;
  };
}
// biome-ignore lint/suspicious/noExplicitAny: JSON bodies of several shapes, checked by the assertions
export type ApiResult = { status: number; body: Record<string, any> };

export class Harness {
  stack!: LocalStack;
  browser!: Browser;
  dir!: string;

  constructor(
    readonly adminKey: string,
    private readonly prefix: string,
  ) {}

  /** Starts the local stack (MQTT and HTTP on free ports) on a fresh data directory. */
  async start(extra: Partial<LocalStackOptions> = {}): Promise<LocalStack> {
    mkdirSync(SHOTS, { recursive: true });
    this.dir = mkdtempSync(join(tmpdir(), this.prefix));
    this.stack = await startLocalStack({
      dataDir: this.dir,
      mqttPort: 0,
      httpPort: 0,
      adminKey: this.adminKey,
      ...extra,
    });
    return this.stack;
  }

  /** Launches headless Chromium (after the data is in: the machine is shared). */
  async launch(): Promise<Browser> {
    this.browser = await chromium.launch({
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
    return this.browser;
  }

  get base(): string {
    return `http://127.0.0.1:${this.stack.httpPort}`;
  }

  get mqttUrl(): string {
    return `mqtt://127.0.0.1:${this.stack.mqttPort}`;
  }

  /** A REST call with the admin key (or `key`); the body is JSON or null. */
  async api(path: string, init: { method?: string; body?: unknown; key?: string } = {}): Promise<ApiResult> {
    const res = await fetch(`${this.base}${path}`, {
      method: init.method ?? 'GET',
      headers: { authorization: `Bearer ${init.key ?? this.adminKey}`, 'content-type': 'application/json' },
      ...(init.body === undefined ? {} : { body: JSON.stringify(init.body) }),
    });
    return { status: res.status, body: (await res.json().catch(() => null)) as ApiResult['body'] };
  }

  /** Registers an application for `deviceTypes`; its id and key. */
  async createApp(name: string, deviceTypes: string[]): Promise<{ id: string; apiKey: string }> {
    const res = await this.api('/apps', { method: 'POST', body: { name, deviceTypes } });
    if (res.status !== 201) throw new Error(`POST /apps: ${res.status} ${JSON.stringify(res.body)}`);
    return { id: res.body.app.id, apiKey: res.body.apiKey };
  }

  /**
   * A new page signed in with the admin key (or `key`), at `hash` after the key when given. `errors`
   * collects uncaught page errors, console errors and (with `httpErrors`) every response >= 400.
   */
  async open(
    opts: { key?: string; width?: number; height?: number; hash?: string; httpErrors?: boolean } = {},
  ): Promise<{ page: Page; errors: string[] }> {
    const errors: string[] = [];
    const page = await this.browser.newPage({
      viewport: { width: opts.width ?? 1280, height: opts.height ?? 900 },
    });
    page.on('pageerror', (e) => errors.push(e.message));
    page.on('console', (m) => {
      if (m.type() === 'error') errors.push(m.text());
    });
    if (opts.httpErrors)
      page.on('response', (r) => {
        if (r.status() >= 400) errors.push(`HTTP ${r.status()} ${r.url()}`);
      });
    await page.goto(`${this.base}/#key=${opts.key ?? this.adminKey}${opts.hash ? `&${opts.hash}` : ''}`);
    return { page, errors };
  }

  /** Closes the browser, stops the stack and removes its data. */
  async stop(): Promise<void> {
    await this.browser?.close();
    await this.stack?.stop();
    if (this.dir) rmSync(this.dir, { recursive: true, force: true });
  }
}

/** The lowest WCAG contrast ratio of any visible text under `root` against the background it sits on. */
export function lowestContrast(page: Page, root: string): Promise<{ ratio: number; text: string }> {
  return page.evaluate((sel) => {
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
    for (const el of g.document.querySelectorAll(`${sel}, ${sel} *`)) {
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
  }, root);
}

/**
 * A breaker edge node online with one Float metric (Voltage, alias 1): registered, connected, its NBIRTH
 * stored. The live-page tests then publish NDATA on the returned connection.
 */
export async function birthBreaker(stack: LocalStack, mqttUrl: string, id: string): Promise<MqttClient> {
  const now = Date.now();
  await stack.registry.putDevice({
    id,
    type: 'breaker',
    tags: {},
    status: 'active',
    protocols: [],
    createdAt: now,
    updatedAt: now,
  });
  const device = await mqtt.connectAsync(mqttUrl, { clientId: id, reconnectPeriod: 0 });
  await device.publishAsync(
    `spBv1.0/grid/NBIRTH/${id}`,
    Buffer.from(
      encodePayload({
        timestamp: now,
        seq: 0,
        metrics: [
          { name: 'bdSeq', datatype: DataType.Int64, value: 0 },
          { name: 'Voltage', alias: 1, datatype: DataType.Float, value: 230, timestamp: now },
        ],
      }),
    ),
    { qos: 1 },
  );
  return device;
}
