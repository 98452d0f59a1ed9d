/**
 * What the deployed functions are driven with: the events AWS sends them for a small fleet day —
 * registry set-up through the API (admin key), Sparkplug births/data/death and an unknown node (rebirth
 * NCMD), LwM2M Register/Send/Update/De-register, API reads (devices, telemetry raw/buckets/latest,
 * events, health), an application key, and an LwM2M Read command whose device answer travels back
 * through the LwM2M rule, Kinesis and lwm2m-ingest and completes the command. Each step asserts
 * outcomes; a failed expectation is a harness failure naming the step.
 */
import {
  ContentFormat,
  decodeMessage,
  encodeMessage,
  Operation,
} from '../../functions/core/lwm2m/message.js';
import { compressRecords, encodeSenml } from '../../functions/core/senml/index.js';
import { encodePayload } from '../../functions/core/sparkplug/codec.js';
import { DataType } from '../../functions/core/sparkplug/types.js';
import type { ApiResponse, Deployment } from './deployment.js';
import { runFirmwareScenario } from './firmware-scenario.js';
import { startLiveScenario } from './live-scenario.js';
import { runMagneticScenario } from './magnetic-scenario.js';
import { runOnboardingScenario } from './onboarding-scenario.js';
import { runOperationsScenario } from './operations-scenario.js';

export const SCENARIOS = [
  'registry',
  'sparkplug',
  'lwm2m',
  'reads',
  'command',
  'rules',
  'onboarding',
  'operations',
  'magnetic',
  'live',
] as const;
export type ScenarioName = (typeof SCENARIOS)[number];

export interface ScenarioContext {
  d: Deployment;
  adminKey: string;
  /** The telemetry store answers queries (DynamoDB); false for Timestream (the emulator answers empty). */
  telemetryReadable: boolean;
  fail(message: string): void;
  log(message: string): void;
}

const enc = new TextEncoder();
const DEVICE = 'breaker-1';
const GROUP = 'grid';

function expectStatus(ctx: ScenarioContext, step: string, res: ApiResponse, ...statuses: number[]): boolean {
  if (statuses.includes(res.status)) return true;
  ctx.fail(
    `scenario ${step}: HTTP ${res.status} (expected ${statuses.join(' or ')}): ${res.raw.slice(0, 300)}`,
  );
  return false;
}

/**
 * An LwM2M uplink as devices send it (ADR 0024): by Basic Ingest into the template's LwM2M rule, by its
 * IoT rule name, so the rule name, its SQL and the ingest path are checked together.
 */
function lwm2m(ctx: ScenarioContext, message: Parameters<typeof encodeMessage>[0]): void {
  const topic = `lwm2m/rd/${DEVICE}`;
  const rule = ctx.d.ruleNameFor(topic);
  if (rule === undefined) {
    ctx.fail(`scenario lwm2m: no topic rule of the template selects ${topic}`);
    return;
  }
  if (ctx.d.publish(`$aws/rules/${rule}/${topic}`, encodeMessage(message), DEVICE) !== 1)
    ctx.fail(`scenario lwm2m: the Basic Ingest publish into rule ${rule} put no record`);
}

export async function runScenarios(
  ctx: ScenarioContext,
  names: readonly ScenarioName[],
  // Three hours back: bucket queries then cover completed hours (the store writes their chunks).
  t0 = Date.now() - 3 * 3_600_000,
): Promise<void> {
  const { d } = ctx;
  const admin = ctx.adminKey;
  const has = (n: ScenarioName) => names.includes(n);
  const deviceMessages: Array<{ topic: string; payload: Buffer }> = [];
  d.subscribe((topic, payload) => deviceMessages.push({ topic, payload }));

  // ---- registry: device type, device and application through the API (admin key) ----------------
  let appKey: string | undefined;
  {
    const type = await d.api('PUT', '/device-types/breaker', {
      key: admin,
      body: {
        name: 'Circuit breaker',
        category: 'power',
        capabilities: ['sparkplug', 'lwm2m'],
        units: { voltage: 'V' },
      },
    });
    expectStatus(ctx, 'registry: PUT /device-types/breaker', type, 200, 201);
    const device = await d.api('PUT', `/devices/${DEVICE}`, {
      key: admin,
      body: { type: 'breaker', group: GROUP, name: 'Feeder 1', tags: { site: 'north' } },
    });
    expectStatus(ctx, `registry: PUT /devices/${DEVICE}`, device, 200, 201);
    if (has('registry') || has('reads')) {
      const app = await d.api('POST', '/apps', {
        key: admin,
        body: { name: 'Grid app', deviceTypes: ['breaker'] },
      });
      if (expectStatus(ctx, 'registry: POST /apps', app, 201)) appKey = String(app.body.apiKey ?? '');
      const noKey = await d.api('GET', '/devices');
      if (noKey.status !== 401)
        ctx.fail(`scenario registry: GET /devices without a key answered ${noKey.status}, not 401`);
      const wrong = await d.api('GET', '/devices', { key: 'not-a-key-0000000000000000' });
      if (wrong.status !== 401)
        ctx.fail(`scenario registry: GET /devices with a wrong key answered ${wrong.status}, not 401`);
    }
  }

  // ---- Live updates (ADR 0023): WebSocket connections before any data --------------------------------
  const live = has('live')
    ? await startLiveScenario(ctx, { device: DEVICE, otherTypeDevice: 'other-1', appKey })
    : undefined;

  // ---- Rules (ADR 0016): created before any data, so both ingest paths evaluate them -------------------
  if (has('rules')) await createScenarioRules(ctx);

  // ---- Sparkplug: births, data, an unknown node (rebirth request), death -----------------------------
  if (has('sparkplug') || has('reads')) {
    await live?.gone('sparkplug');
    d.publish(
      `spBv1.0/${GROUP}/NBIRTH/${DEVICE}`,
      encodePayload({
        timestamp: t0,
        seq: 0,
        metrics: [
          { name: 'bdSeq', datatype: DataType.Int64, value: 0 },
          { name: 'Node Control/Rebirth', datatype: DataType.Boolean, value: false },
          { name: 'Voltage/L1', alias: 1, datatype: DataType.Float, value: 230.5, timestamp: t0 },
        ],
      }),
      DEVICE,
    );
    d.publish(
      `spBv1.0/${GROUP}/DBIRTH/${DEVICE}/meter`,
      encodePayload({
        timestamp: t0,
        seq: 1,
        metrics: [{ name: 'Energy', alias: 2, datatype: DataType.Double, value: 1200.5, timestamp: t0 }],
      }),
      DEVICE,
    );
    if (has('rules')) {
      // A cold start between the births and the data: the new process reads the host state and the
      // rule states back, and replays the stored readings after them (ADR 0016 amendment 10).
      await d.drain();
      await d.coldStart('SparkplugIngestFunction');
    }
    d.publish(
      `spBv1.0/${GROUP}/NDATA/${DEVICE}`,
      encodePayload({
        timestamp: t0 + 1000,
        seq: 2,
        metrics: [
          { alias: 1, datatype: DataType.Float, value: 231.25, omitDatatype: true, timestamp: t0 + 1000 },
        ],
      }),
      DEVICE,
    );
    d.publish(
      `spBv1.0/${GROUP}/DDATA/${DEVICE}/meter`,
      encodePayload({
        timestamp: t0 + 1000,
        seq: 3,
        metrics: [
          { alias: 2, datatype: DataType.Double, value: 1201.75, omitDatatype: true, timestamp: t0 + 1000 },
        ],
      }),
      DEVICE,
    );
    // A node the host has never seen a birth from: it must ask for a rebirth (NCMD).
    d.publish(
      `spBv1.0/${GROUP}/NDATA/stranger-9`,
      encodePayload({
        timestamp: t0 + 1000,
        seq: 5,
        metrics: [{ alias: 1, datatype: DataType.Float, value: 1 }],
      }),
      'stranger-9',
    );
    await d.drain();
    const rebirth = deviceMessages.find((m) => m.topic === `spBv1.0/${GROUP}/NCMD/stranger-9`);
    if (!rebirth)
      ctx.fail('scenario sparkplug: no rebirth NCMD was published to spBv1.0/grid/NCMD/stranger-9');
    if (ctx.telemetryReadable) {
      const voltage = await d.api(
        'GET',
        `/devices/${DEVICE}/telemetry?metric=Voltage%2FL1&from=${t0 - 1}&to=${t0 + 5000}`,
        { key: admin },
      );
      if (expectStatus(ctx, 'sparkplug: GET telemetry Voltage/L1', voltage, 200)) {
        const values = ((voltage.body.points ?? []) as Array<{ value: unknown }>).map((p) => p.value);
        if (JSON.stringify(values) !== JSON.stringify([230.5, 231.25])) {
          ctx.fail(
            `scenario sparkplug: Voltage/L1 readings through the API are ${JSON.stringify(values)}, expected [230.5,231.25]`,
          );
        }
      }
    }
    // Commands to the edge node through the API: a rebirth request (NCMD) and a write to its device (DCMD).
    const rebirthCmd = await d.api('POST', `/devices/${DEVICE}/commands`, {
      key: admin,
      body: { protocol: 'sparkplug', operation: 'rebirth' },
    });
    expectStatus(ctx, 'sparkplug: POST rebirth command', rebirthCmd, 202);
    const writeCmd = await d.api('POST', `/devices/${DEVICE}/commands`, {
      key: admin,
      body: {
        protocol: 'sparkplug',
        operation: 'write',
        device: 'meter',
        metrics: [{ name: 'Energy', type: 'Double', value: 0 }],
      },
    });
    expectStatus(ctx, 'sparkplug: POST write command', writeCmd, 202);
    await d.drain();
    for (const topic of [`spBv1.0/${GROUP}/NCMD/${DEVICE}`, `spBv1.0/${GROUP}/DCMD/${DEVICE}/meter`]) {
      if (!deviceMessages.some((m) => m.topic === topic))
        ctx.fail(`scenario sparkplug: the API command published nothing to ${topic}`);
    }
    const cmds = await d.api('GET', `/devices/${DEVICE}/commands`, { key: admin });
    if (
      expectStatus(ctx, 'sparkplug: GET commands', cmds, 200) &&
      !cmds.raw.includes(String(writeCmd.body.commandId))
    ) {
      ctx.fail(`scenario sparkplug: GET commands does not list the write command: ${cmds.raw.slice(0, 200)}`);
    }
    d.publish(
      `spBv1.0/${GROUP}/NDEATH/${DEVICE}`,
      encodePayload({
        timestamp: t0 + 2000,
        metrics: [{ name: 'bdSeq', datatype: DataType.Int64, value: 0 }],
      }),
      DEVICE,
    );
    await d.drain();
    const device = await d.api('GET', `/devices/${DEVICE}`, { key: admin });
    if (expectStatus(ctx, `sparkplug: GET /devices/${DEVICE}`, device, 200)) {
      const sp = device.body.sparkplug as { online?: boolean; group?: string } | undefined;
      if (sp?.group !== GROUP || sp.online !== false) {
        ctx.fail(
          `scenario sparkplug: device view after NDEATH is ${JSON.stringify(sp)}, expected group grid and online false`,
        );
      }
    }
  }

  // ---- LwM2M: Register, Send (bulk SenML), Update ------------------------------------------------
  if (has('lwm2m') || has('command') || has('reads')) {
    await live?.gone('lwm2m');
    lwm2m(ctx, {
      operation: Operation.Register,
      token: 1,
      ep: DEVICE,
      lifetime: 300,
      version: '1.2',
      binding: 'M',
      contentFormat: ContentFormat.LinkFormat,
      payload: enc.encode('</3/0>,</3316/0>'),
    });
    await d.drain();
    lwm2m(ctx, {
      operation: Operation.Send,
      token: 2,
      contentFormat: ContentFormat.SenmlCbor,
      payload: encodeSenml(
        compressRecords([
          { name: '/3316/0/5700', time: t0 - 2000, value: { kind: 'v', value: 229 } },
          { name: '/3316/0/5700', time: t0 - 1000, value: { kind: 'v', value: 230 } },
        ]),
        ContentFormat.SenmlCbor,
      ),
    });
    lwm2m(ctx, { operation: Operation.Update, token: 3, lifetime: 300 });
    await d.drain();
    if (has('rules')) {
      // After a cold start, a later reading of the same series: its rule states are read back and
      // replayed (ADR 0016 amendment 10). Outside the range the telemetry check below reads.
      await d.coldStart('Lwm2mIngestFunction');
      lwm2m(ctx, {
        operation: Operation.Send,
        token: 4,
        contentFormat: ContentFormat.SenmlCbor,
        payload: encodeSenml(
          compressRecords([{ name: '/3316/0/5700', time: t0 + 500, value: { kind: 'v', value: 231 } }]),
          ContentFormat.SenmlCbor,
        ),
      });
      await d.drain();
    }
    const answers = deviceMessages
      .filter((m) => m.topic === `lwm2m/rd/${DEVICE}`)
      .map((m) => decodeMessage(new Uint8Array(m.payload)))
      .filter((m) => m.result !== undefined);
    const byToken = new Map(answers.map((m) => [Number(m.token), m.result]));
    for (const [token, op, result] of [
      [1, 'Register', 201],
      [2, 'Send', 204],
      [3, 'Update', 204],
    ] as const) {
      if (byToken.get(token) !== result) {
        ctx.fail(
          `scenario lwm2m: the ${op} (token ${token}) was answered ${String(byToken.get(token))}, expected ${result}`,
        );
      }
    }
    if (ctx.telemetryReadable) {
      const bulk = await d.api(
        'GET',
        `/devices/${DEVICE}/telemetry?metric=%2F3316%2F0%2F5700&from=${t0 - 5000}&to=${t0}`,
        { key: admin },
      );
      if (expectStatus(ctx, 'lwm2m: GET telemetry /3316/0/5700', bulk, 200)) {
        const values = ((bulk.body.points ?? []) as Array<{ value: unknown }>).map((p) => p.value);
        if (JSON.stringify(values) !== JSON.stringify([229, 230])) {
          ctx.fail(
            `scenario lwm2m: /3316/0/5700 readings through the API are ${JSON.stringify(values)}, expected [229,230]`,
          );
        }
      }
    }
  }

  // ---- An LwM2M Read command through the API, answered by the device --------------------------------
  if (has('command')) {
    d.subscribe((topic, payload) => {
      if (topic !== `lwm2m/rd/${DEVICE}`) return;
      const m = decodeMessage(new Uint8Array(payload));
      if (m.operation !== Operation.Read) return;
      lwm2m(ctx, {
        result: 205,
        token: m.token!,
        contentFormat: ContentFormat.Text,
        payload: enc.encode('ACME'),
      });
    });
    const created = await d.api('POST', `/devices/${DEVICE}/commands`, {
      key: admin,
      body: { protocol: 'lwm2m', operation: 'read', path: '/3/0/0' },
    });
    if (expectStatus(ctx, 'command: POST commands', created, 202)) {
      await d.drain();
      const cmd = await d.api('GET', `/devices/${DEVICE}/commands/${String(created.body.commandId)}`, {
        key: admin,
      });
      if (expectStatus(ctx, 'command: GET command', cmd, 200)) {
        const response = cmd.body.response as
          | { result?: number; readings?: Array<{ metric: string; value: unknown }> }
          | undefined;
        if (
          cmd.body.status !== 'succeeded' ||
          response?.result !== 205 ||
          response.readings?.[0]?.value !== 'ACME'
        ) {
          ctx.fail(
            `scenario command: the Read command is ${JSON.stringify(cmd.body).slice(0, 300)}, expected succeeded with 205 and /3/0/0 = ACME`,
          );
        }
      }
    }
  }

  // ---- API reads, with the admin key and an application key --------------------------------------
  if (has('reads')) {
    const list = await d.api('GET', '/devices', { key: admin });
    if (expectStatus(ctx, 'reads: GET /devices', list, 200)) {
      const ids = ((list.body.devices ?? list.body.items ?? []) as Array<{ id: string }>).map((x) => x.id);
      if (!ids.includes(DEVICE))
        ctx.fail(`scenario reads: GET /devices does not list ${DEVICE}: ${list.raw.slice(0, 200)}`);
    }
    expectStatus(
      ctx,
      'reads: GET /devices?type=breaker',
      await d.api('GET', '/devices?type=breaker', { key: admin }),
      200,
    );
    expectStatus(ctx, 'reads: GET /device-types', await d.api('GET', '/device-types', { key: admin }), 200);
    expectStatus(ctx, 'reads: GET /apps', await d.api('GET', '/apps', { key: admin }), 200);
    const buckets = await d.api(
      'GET',
      `/devices/${DEVICE}/telemetry?metric=Voltage%2FL1&from=${t0 - 60_000}&to=${t0 + 60_000}&interval=1m`,
      { key: admin },
    );
    if (expectStatus(ctx, 'reads: GET telemetry buckets', buckets, 200) && ctx.telemetryReadable) {
      const counts = ((buckets.body.buckets ?? []) as Array<{ count?: number }>).reduce(
        (n, b) => n + (b.count ?? 0),
        0,
      );
      if (counts !== 2)
        ctx.fail(
          `scenario reads: Voltage/L1 buckets count ${counts} readings, expected 2: ${buckets.raw.slice(0, 200)}`,
        );
    }
    const state = await d.api('GET', `/devices/${DEVICE}/state`, { key: admin });
    if (expectStatus(ctx, 'reads: GET state (latest)', state, 200) && ctx.telemetryReadable) {
      if (!state.raw.includes('Voltage/L1'))
        ctx.fail(`scenario reads: the device state has no Voltage/L1: ${state.raw.slice(0, 200)}`);
    }
    const events = await d.api('GET', `/events?deviceId=${DEVICE}`, { key: admin });
    if (expectStatus(ctx, 'reads: GET /events', events, 200)) {
      if (((events.body.events ?? []) as unknown[]).length === 0)
        ctx.fail('scenario reads: no lifecycle events for the device');
    }
    expectStatus(ctx, 'reads: GET /health', await d.api('GET', '/health'), 200);
    // The dashboard (ADR 0023 amendment): public static files and config.json naming the WebSocket API.
    const page = await d.api('GET', '/');
    if (expectStatus(ctx, 'dashboard: GET /', page, 200)) {
      if (!page.raw.includes('dashboard/app.js'))
        ctx.fail('scenario dashboard: GET / is not the dashboard page');
      if (!/connect-src 'self' wss:\/\//.test(page.headers?.['content-security-policy'] ?? ''))
        ctx.fail(
          `scenario dashboard: the page's CSP does not admit the wss:// live URL: ${JSON.stringify(page.headers)}`,
        );
    }
    const script = await d.api('GET', '/dashboard/live.js');
    if (
      expectStatus(ctx, 'dashboard: GET /dashboard/live.js', script, 200) &&
      !script.raw.includes("'dualpath'")
    )
      ctx.fail('scenario dashboard: live.js has no WebSocket transport');
    const config = await d.api('GET', '/dashboard/config.json');
    if (expectStatus(ctx, 'dashboard: GET /dashboard/config.json', config, 200)) {
      const lv = config.body.live as { transport?: string; url?: string } | undefined;
      if (lv?.transport !== 'websocket' || !lv.url?.startsWith('wss://'))
        ctx.fail(`scenario dashboard: config.json does not name the WebSocket API: ${config.raw}`);
    }
    expectStatus(
      ctx,
      'dashboard: GET /dashboard/missing.js',
      await d.api('GET', '/dashboard/missing.js'),
      404,
    );
    expectStatus(
      ctx,
      'reads: GET /apps?deviceType=breaker',
      await d.api('GET', '/apps?deviceType=breaker', { key: admin }),
      200,
    );
    // Registry writes: a partial update of an existing device, a device type created and deleted.
    expectStatus(
      ctx,
      `reads: PUT /devices/${DEVICE} (update)`,
      await d.api('PUT', `/devices/${DEVICE}`, { key: admin, body: { tags: { site: 'south' } } }),
      200,
    );
    expectStatus(
      ctx,
      'reads: PUT /device-types/spare',
      await d.api('PUT', '/device-types/spare', { key: admin, body: { name: 'Spare' } }),
      201,
    );
    expectStatus(
      ctx,
      'reads: DELETE /device-types/spare',
      await d.api('DELETE', '/device-types/spare', { key: admin }),
      200,
      204,
    );
    if (appKey) {
      expectStatus(
        ctx,
        'reads: GET device with the app key',
        await d.api('GET', `/devices/${DEVICE}`, { key: appKey }),
        200,
      );
      const forbidden = await d.api('PUT', '/device-types/other', { key: appKey, body: { name: 'x' } });
      if (forbidden.status !== 403)
        ctx.fail(`scenario reads: an app key writing a device type answered ${forbidden.status}, not 403`);
    }
  }

  // ---- Batch operations (ADR 0022): API → scheduled worker → device → lwm2m-ingest → worker ----------
  if (has('operations') && has('lwm2m') && has('sparkplug')) {
    await live?.gone('worker');
    await runOperationsScenario(ctx, { device: DEVICE, answerReads: !has('command') });
    // Firmware packages in S3: upload, the worker's signed Package URI, the device's redirected GET.
    await runFirmwareScenario(ctx, { device: DEVICE });
  }

  // ---- LwM2M De-register -------------------------------------------------------------------------
  if (has('lwm2m')) {
    lwm2m(ctx, { operation: Operation.Deregister, token: 9 });
    await d.drain();
    const device = await d.api('GET', `/devices/${DEVICE}`, { key: admin });
    if (expectStatus(ctx, 'lwm2m: GET device after De-register', device, 200)) {
      const lw = device.body.lwm2m as { online?: boolean } | undefined;
      if (lw?.online !== false)
        ctx.fail(`scenario lwm2m: after De-register the device's lwm2m view is ${JSON.stringify(lw)}`);
    }
  }

  // ---- Rules: alerts opened on ingest, the scheduled clock (absence), list and acknowledge --------------
  if (has('rules')) {
    await live?.gone('clock');
    await checkScenarioRules(ctx);
  }
  // Every publisher that ran (their template environment has LIVE_ENDPOINT) posted, and met a 410.
  await live?.check(
    [...d.functions]
      .filter(([, f]) => f.model.environment.LIVE_ENDPOINT !== undefined && f.process.invoked > 0)
      .map(([id]) => id),
  );

  // ---- Onboarding: the claim custom resource's function and the pre-provisioning hook (ADR 0018) ---
  if (has('onboarding')) await runOnboardingScenario(ctx, { id: DEVICE, type: 'breaker' });
  if (has('magnetic')) await runMagneticScenario(ctx);
}

/** A rule every breaker reading meets (fires on both ingest paths) and an absence rule (the clock's). */
async function createScenarioRules(ctx: ScenarioContext): Promise<void> {
  const { d, adminKey: key } = ctx;
  const bad = await d.api('POST', '/rules', {
    key,
    body: { name: 'bad', severity: 'info', condition: 'value >', select: {} },
  });
  if (expectStatus(ctx, 'rules: POST /rules with a syntax error', bad, 400)) {
    const e = bad.body.error as { field?: string; position?: number } | undefined;
    if (e?.field !== 'condition' || typeof e.position !== 'number')
      ctx.fail(`scenario rules: syntax error without field/position: ${bad.raw.slice(0, 200)}`);
  }
  for (const body of [
    {
      id: 'scenario-any-reading',
      name: 'Any breaker reading',
      severity: 'info',
      select: { deviceType: 'breaker' },
      condition: 'value > -1000000000',
    },
    {
      id: 'scenario-silent',
      name: 'Breaker silent',
      severity: 'warning',
      select: { deviceType: 'breaker' },
      condition: 'absent for 1s',
    },
    {
      // Per series: its states are written behind the readings, and the clock replays them before it
      // finds one due (ADR 0016 amendment 10: the clock's Query of the telemetry table).
      id: 'scenario-silent-voltage',
      name: 'Breaker voltage silent',
      severity: 'warning',
      select: { deviceType: 'breaker', metric: 'Voltage/*' },
      condition: 'absent for 1s',
    },
    {
      // Opened by the node's NDEATH, resolved by the rules clock a second later (its alert Update).
      id: 'scenario-died',
      name: 'Breaker node died',
      severity: 'major',
      select: { deviceType: 'breaker', protocol: 'sparkplug' },
      condition: 'on death',
      autoResolve: '1s',
    },
  ]) {
    expectStatus(ctx, `rules: POST /rules ${body.id}`, await d.api('POST', '/rules', { key, body }), 201);
  }
}

async function checkScenarioRules(ctx: ScenarioContext): Promise<void> {
  const { d, adminKey: key } = ctx;
  const byFunction = (via: 'sns' | 'events') =>
    new Set(d.endpoint.alertDeliveries.filter((x) => x.via === via).map((x) => x.function));
  const ingestSns = byFunction('sns');
  if (ingestSns.size < 2)
    ctx.fail(
      `scenario rules: alert deliveries to SNS from ${[...ingestSns].join(', ') || 'no function'}, expected both ingest functions`,
    );
  const before = d.endpoint.alertDeliveries.length;
  const invoked = await d.runSchedules();
  if (invoked.length === 0) ctx.fail('scenario rules: the template has no scheduled function (rules clock)');
  const clockDeliveries = d.endpoint.alertDeliveries.slice(before);
  if (!clockDeliveries.some((x) => x.via === 'sns') || !clockDeliveries.some((x) => x.via === 'events'))
    ctx.fail('scenario rules: the rules clock delivered no absence alert to SNS and EventBridge');
  const list = await d.api('GET', '/alerts?status=open&limit=100', { key });
  if (!expectStatus(ctx, 'rules: GET /alerts', list, 200)) return;
  const alerts = (list.body.alerts ?? []) as Array<{ id: string; ruleId: string }>;
  for (const ruleId of ['scenario-any-reading', 'scenario-silent', 'scenario-silent-voltage']) {
    if (!alerts.some((a) => a.ruleId === ruleId)) ctx.fail(`scenario rules: no open alert of rule ${ruleId}`);
  }
  const died = await d.api('GET', '/alerts?ruleId=scenario-died&limit=10', { key });
  if (expectStatus(ctx, 'rules: GET /alerts?ruleId=scenario-died', died, 200)) {
    const got = (died.body.alerts ?? []) as Array<{ status: string; resolvedBy?: string }>;
    if (!got.some((a) => a.status === 'resolved' && a.resolvedBy === 'auto'))
      ctx.fail(
        `scenario rules: the NDEATH alert was not auto-resolved by the clock: ${died.raw.slice(0, 300)}`,
      );
  }
  const first = alerts[0];
  if (first) {
    const ack = await d.api('POST', `/alerts/${first.id}/ack`, { key, body: { note: 'seen' } });
    if (expectStatus(ctx, 'rules: POST /alerts/{id}/ack', ack, 200) && ack.body.status !== 'acknowledged')
      ctx.fail(`scenario rules: acknowledged alert has status ${String(ack.body.status)}`);
  }
  // A second clock run finds nothing new (idempotent transitions, nothing left in the outbox).
  const again = d.endpoint.alertDeliveries.length;
  await d.runSchedules();
  if (d.endpoint.alertDeliveries.length !== again)
    ctx.fail('scenario rules: a second clock run delivered alerts again');
}
