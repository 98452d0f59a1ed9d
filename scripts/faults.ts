/**
 * Fault-injection runs through the local stack (`npm run faults`, test/reliability/faults.test.ts):
 * a simulated fleet publishes while the telemetry store throttles or fails, DynamoDB fails, handlers
 * crash in the middle of a batch, the event-source runners restart and the broker restarts — each on
 * its own, then all at once. After the drain, every run is checked against exact counts:
 *
 * - accepted: the readings in the records the broker forwarded to Kinesis, counted by replaying those
 *   records through fresh in-memory decoders (infra/local/faults.ts countAcceptedReadings), as distinct
 *   stored-point identities;
 * - stored: rows in DuckDB, and distinct identities among them (a difference is a duplicate row);
 * - published: readings in publishes the devices saw acknowledged (QoS 1 PUBACK).
 *
 * Pass: rows == accepted, no duplicate rows, nothing quarantined but the poison messages of the poison
 * scenario (accepted counts a record's readings as the pipeline does: a record with absurd times has
 * none), nothing in the DLQ, and every acknowledged reading accepted (published ≤ accepted; equal
 * unless the broker restarted).
 *
 * Why QoS 1 for Sparkplug DATA (LwM2M always uses QoS 1): the broker acknowledges a QoS 1 publish only
 * once its record is in Kinesis, so an acknowledged reading is never lost. A QoS 0 publish in flight
 * when the broker closes is dropped by design (at-most-once), which would make the device-side count
 * meaningless in the broker-restart scenarios. The converse remains: a publish that reached Kinesis
 * whose PUBACK was lost in the restart is accepted but not acknowledged — hence the broker-side count.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { ContentFormat, encodeMessage, Operation } from '../functions/core/lwm2m/message.js';
import { encodeSenml } from '../functions/core/senml/index.js';
import { encodePayload } from '../functions/core/sparkplug/codec.js';
import { MAX_BIRTH_METRICS } from '../functions/core/sparkplug/host/host.js';
import { DataType } from '../functions/core/sparkplug/types.js';
import {
  type AcceptedReadings,
  countAcceptedReadings,
  type FaultKind,
  type LocalFaults,
} from '../infra/local/faults.js';
import { type LocalStatus, startLocalStack } from '../infra/local/stack.js';
import type { EventSourceDef } from '../infra/pipeline.js';
import { type FleetStats, startFleet } from '../simulator/fleet.js';

export interface Scenario {
  name: string;
  faults: LocalFaults;
  /** Event-source runner restarts, spread over the run. */
  runnerRestarts?: number;
  /** Runner restarts as crashes: the checkpoints saved while stopping are lost. */
  runnerCrashes?: number;
  /** Broker restarts, spread over the run (down for `brokerDownMs` each). */
  brokerRestarts?: number;
  brokerDownMs?: number;
  /**
   * Calls that fail once the fleet stopped: the batches carrying the last DATA, the deaths and the
   * de-registrations meet the fault (a state change flushed before a failed store lost readings once).
   * With the pipeline's retry budget (ADR 0017: up to 10,000 stream retries of 3 in-handler tries
   * each) these always end; the first form of this option kept them under 4 × 3 calls.
   */
  atStop?: Partial<Record<FaultKind, number>>;
  /** Poison messages from their own devices, mixed into the fleet's traffic (issue 15). */
  poison?: boolean;
  /**
   * Outages spread over the run: every call of `kind` fails for `ms` (ADR 0017) — and, with
   * `untilDlq`, on until a batch has used up its retry budget (went to the DLQ; at most 30 s more).
   */
  outages?: { kind: FaultKind; count: number; ms: number; untilDlq?: boolean };
  /** Event-source settings for this run (the pipeline's otherwise). */
  eventSource?: Partial<EventSourceDef>;
  /** Ingest worker threads (ADR 0026; 0 = handlers on the main thread); the stack's default otherwise. */
  ingestWorkers?: number;
  /**
   * After the drain, `dualpath redrive` (the stack's redrive()) puts the DLQ back on the streams and
   * the stack drains again: the DLQ must have held records, and the counts are checked after it.
   */
  redrive?: boolean;
}

/** The scenarios of `npm run faults`: rates at which a batch exhausting all its retries is very unlikely. */
export const SCENARIOS: Scenario[] = [
  {
    name: 'store throttling and timeouts',
    faults: {
      store: { rate: 0.2, window: { from: 20, count: 8 } },
      storeAfterWrite: { rate: 0.05 },
    },
    atStop: { store: 11 },
  },
  {
    name: 'DynamoDB errors',
    faults: { dynamo: { rate: 0.05, kind: 'mixed' }, dynamoAfterCall: { rate: 0.01 } },
    atStop: { dynamo: 3, dynamoAfterCall: 1 },
  },
  { name: 'handler crash mid-batch', faults: { handlerCrash: { rate: 0.05 } }, atStop: { handlerCrash: 2 } },
  { name: 'event-source runners restarted', faults: {}, runnerRestarts: 1, runnerCrashes: 1 },
  { name: 'broker restarted', faults: {}, brokerRestarts: 2, brokerDownMs: 500 },
  {
    name: 'all at once',
    faults: {
      store: { rate: 0.1 },
      storeAfterWrite: { rate: 0.03 },
      dynamo: { rate: 0.03, kind: 'mixed' },
      dynamoAfterCall: { rate: 0.01 },
      handlerCrash: { rate: 0.03 },
    },
    runnerCrashes: 1,
    brokerRestarts: 1,
    brokerDownMs: 500,
    atStop: { store: 3, dynamo: 2, handlerCrash: 1 },
  },
  { name: 'poison messages', faults: {}, poison: true },
  {
    // The AWS policy scaled down to seconds: 2 retries (not 10,000), and a store outage of at least
    // 1.5 s that lasts until a batch has used them up and gone to the DLQ (with its payload); after the
    // drain, the redrive.
    name: 'store outage beyond the retry budget, then redrive',
    faults: {},
    eventSource: { maxRetryAttempts: 2 },
    outages: { kind: 'store', count: 1, ms: 1500, untilDlq: true },
    redrive: true,
  },
];

/**
 * Poison messages, each from its own device (the per-device ACL allows a client only its own topics),
 * published with QoS 1 while the fleet runs: a SenML time beyond the Date range, Sparkplug timestamps of
 * 9e15 and 2^64 − 1, a 100 KB malformed message, an NBIRTH over the metric limit, and a Register over
 * the object-list limit (answered 4.00, not quarantined). Returns how many must end quarantined, and
 * the good readings among them (the valid NBIRTH before the bad timestamps).
 */
export async function publishPoison(url: string): Promise<{ quarantined: number; readings: number }> {
  const T = Date.now();
  const connect = async (id: string) => {
    const c = await mqtt.connectAsync(url, { clientId: id, reconnectPeriod: 0 });
    return {
      send: (topic: string, payload: Uint8Array) => c.publishAsync(topic, Buffer.from(payload), { qos: 1 }),
      close: () => c.endAsync(),
    };
  };
  const register = (ep: string, objects = '</3303/0>') =>
    encodeMessage({
      operation: Operation.Register,
      token: 1,
      ep,
      lifetime: 300,
      version: '1.2',
      payload: new TextEncoder().encode(objects),
    });
  const birth = (metrics: number) =>
    encodePayload({
      timestamp: T,
      seq: 0,
      metrics: [
        { name: 'bdSeq', datatype: DataType.Int64, value: 0 },
        // No per-metric timestamps: the wide birth stays under the broker's 128 KB publish limit.
        ...Array.from({ length: metrics }, (_, i) => ({
          name: `m${i}`,
          alias: i + 1,
          datatype: DataType.Double,
          value: i,
        })),
      ],
    });
  const data = (seq: number, timestamp: number) =>
    encodePayload({
      timestamp,
      seq,
      metrics: [{ alias: 1, datatype: DataType.Double, value: 1, timestamp }],
    });

  const lw = await connect('poison-lwm2m-time');
  await lw.send('lwm2m/rd/poison-lwm2m-time', register('poison-lwm2m-time'));
  await lw.send(
    'lwm2m/rd/poison-lwm2m-time',
    encodeMessage({
      operation: Operation.Send,
      token: 2,
      contentFormat: ContentFormat.SenmlCbor,
      payload: encodeSenml([{ n: '/3303/0/5700', v: 1, t: 1e13 }], 112),
    }),
  );
  await lw.close();
  const sp = await connect('poison-sp-time');
  await sp.send('spBv1.0/poison/NBIRTH/poison-sp-time', birth(1));
  await sp.send('spBv1.0/poison/NDATA/poison-sp-time', data(1, 9e15));
  // 2^64 − 1: the writer takes a bigint for uint64 fields.
  await sp.send('spBv1.0/poison/NDATA/poison-sp-time', data(2, (2n ** 64n - 1n) as unknown as number));
  await sp.close();
  const big = await connect('poison-lwm2m-big');
  await big.send('lwm2m/rd/poison-lwm2m-big', new Uint8Array(100_000).fill(0xff));
  await big.close();
  const wide = await connect('poison-sp-wide');
  await wide.send('spBv1.0/poison/NBIRTH/poison-sp-wide', birth(MAX_BIRTH_METRICS + 1));
  await wide.close();
  const many = await connect('poison-lwm2m-objects');
  const links = Array.from({ length: 3_000 }, (_, i) => `</3303/${i}>`).join(',');
  await many.send('lwm2m/rd/poison-lwm2m-objects', register('poison-lwm2m-objects', links));
  await many.close();
  return { quarantined: 5, readings: 1 };
}

export interface RunOptions {
  devices: number;
  /** Publishing time, after every device is connected and registered. */
  seconds: number;
  seed?: number;
  /** Sparkplug DATA per device per second (LwM2M Sends: half of it). Default 2. */
  rate?: number;
  readingsPerMessage?: number;
  /** Longest wait for the fleet to be ready and for the drain. Default 120 s. */
  timeoutMs?: number;
  log?: (line: string) => void;
}

export interface ScenarioResult {
  scenario: Scenario;
  devices: number;
  seconds: number;
  published: Pick<FleetStats, 'messages' | 'readings' | 'publishErrors' | 'reconnects' | 'dropped'>;
  accepted: AcceptedReadings;
  /** Rows in DuckDB and distinct point identities among them. */
  rows: { readings: number; distinct: number };
  status: LocalStatus;
  /** Poison messages sent that must end quarantined, and the good readings they carried. */
  poisoned: { quarantined: number; readings: number };
  /** Records in the DLQ before the redrive, and stored rows then (redrive scenarios). */
  beforeRedrive?: { dlqRecords: number; rows: number; redriven: number };
  /** Why the run failed (empty = pass). */
  problems: string[];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function runScenario(scenario: Scenario, o: RunOptions): Promise<ScenarioResult> {
  const timeoutMs = o.timeoutMs ?? 120_000;
  const dir = mkdtempSync(join(tmpdir(), 'dualpath-faults-'));
  let poisoned = { quarantined: 0, readings: 0 };
  const stack = await startLocalStack({
    dataDir: dir,
    mqttPort: 0,
    httpPort: 0,
    faults: { ...scenario.faults, seed: scenario.faults.seed ?? o.seed ?? 1 },
    ...(scenario.eventSource ? { eventSource: scenario.eventSource } : {}),
    ...(scenario.ingestWorkers !== undefined ? { ingestWorkers: scenario.ingestWorkers } : {}),
  });
  let beforeRedrive: ScenarioResult['beforeRedrive'];
  try {
    const rate = o.rate ?? 2;
    const fleet = await startFleet({
      url: `mqtt://127.0.0.1:${stack.mqttPort}`,
      devices: o.devices,
      rate,
      lwm2mRate: rate / 2,
      readingsPerMessage: o.readingsPerMessage ?? 10,
      sparkplugQos: 1,
      seed: o.seed ?? 1,
      // Reconnect quickly after a broker restart (the default backoff starts at 1 s).
      backoff: { baseMs: 200, maxMs: 2000 },
    });
    try {
      if (!(await fleet.ready(timeoutMs))) throw new Error('the fleet did not connect and register in time');
      // The disruptions, spread evenly over the run, kinds interleaved (runner, broker, runner, ...).
      const events: Array<() => Promise<void>> = [];
      const runners = scenario.runnerRestarts ?? 0;
      const crashes = scenario.runnerCrashes ?? 0;
      const brokers = scenario.brokerRestarts ?? 0;
      const outage = scenario.outages;
      if (outage)
        for (let i = 0; i < outage.count; i++)
          events.push(async () => {
            const dlq = stack.status().dlqRecords;
            stack.faults?.outage(outage.kind, true);
            await sleep(outage.ms);
            const until = Date.now() + 30_000;
            while (outage.untilDlq && stack.status().dlqRecords === dlq && Date.now() < until)
              await sleep(50);
            stack.faults?.outage(outage.kind, false);
          });
      for (let i = 0; i < Math.max(runners, crashes, brokers); i++) {
        if (i < runners) events.push(() => stack.restartRunners());
        if (i < crashes) events.push(() => stack.restartRunners({ crash: true }));
        if (i < brokers) events.push(() => stack.restartBroker(scenario.brokerDownMs ?? 0));
      }
      const slice = (o.seconds * 1000) / (events.length + 1);
      if (scenario.poison) poisoned = await publishPoison(`mqtt://127.0.0.1:${stack.mqttPort}`);
      for (const [i, event] of events.entries()) {
        await sleep(slice);
        o.log?.(`  ${scenario.name}: disruption ${i + 1} of ${events.length}`);
        await event();
      }
      await sleep(slice);
    } finally {
      await fleet.stop();
    }
    // The deaths and de-registrations are in Kinesis now, in the runners' batching window (1 s).
    for (const [kind, count] of Object.entries(scenario.atStop ?? {}))
      stack.faults?.failNext(kind as FaultKind, count);
    await stack.broker.flush(timeoutMs);
    if (!(await stack.drain(timeoutMs))) throw new Error('the stack did not drain in time');
    if (scenario.redrive) {
      const dlqRecords = stack.status().dlqRecords;
      const rows = (await stack.store.counts()).readings;
      const { records } = await stack.redrive();
      beforeRedrive = { dlqRecords, rows, redriven: records };
      if (!(await stack.drain(timeoutMs))) throw new Error('the stack did not drain the redrive in time');
    }
    const stats = fleet.stats();
    const status = stack.status();
    const rows = await stack.store.counts();
    const accepted = await countAcceptedReadings(stack.faults?.accepted ?? []);
    const published: ScenarioResult['published'] = {
      messages: stats.messages,
      readings: stats.readings,
      publishErrors: stats.publishErrors,
      reconnects: stats.reconnects,
      dropped: stats.dropped,
    };
    const result: ScenarioResult = {
      scenario,
      devices: o.devices,
      seconds: o.seconds,
      published,
      accepted,
      rows,
      status,
      poisoned,
      ...(beforeRedrive ? { beforeRedrive } : {}),
      problems: [],
    };
    result.problems = check(result);
    return result;
  } finally {
    await stack.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

function check(r: ScenarioResult): string[] {
  const problems: string[] = [];
  const acked = r.published.readings.sparkplug + r.published.readings.lwm2m + r.poisoned.readings;
  const brokerRestarted = (r.scenario.brokerRestarts ?? 0) > 0;
  if (r.rows.readings !== r.accepted.distinct)
    problems.push(`stored ${r.rows.readings} rows, the broker accepted ${r.accepted.distinct} readings`);
  if (r.rows.distinct !== r.rows.readings)
    problems.push(`${r.rows.readings - r.rows.distinct} duplicate rows`);
  // A write whose answer was lost (storeAfterWrite) stored rows no handler counted: then it may be lower.
  const answersLost = (r.status.faults?.storeFailuresAfterWrite ?? 0) > 0;
  if (
    r.status.readingsStored > r.rows.readings ||
    (!answersLost && r.status.readingsStored !== r.rows.readings)
  )
    problems.push(
      `the handlers counted ${r.status.readingsStored} written, the table has ${r.rows.readings}`,
    );
  if (acked > r.accepted.distinct)
    problems.push(`devices had ${acked} readings acknowledged, the broker forwarded ${r.accepted.distinct}`);
  if (!brokerRestarted && acked !== r.accepted.distinct)
    problems.push(`devices had ${acked} readings acknowledged, the broker forwarded ${r.accepted.distinct}`);
  const redriven = r.beforeRedrive?.redriven ?? 0;
  if (r.status.dlqRecords > redriven)
    problems.push(`${r.status.dlqRecords - redriven} records in the DLQ (not redriven)`);
  if (r.scenario.redrive && redriven === 0)
    problems.push('the outage did not outlast the retry budget: nothing went to the DLQ to redrive');
  if (r.status.quarantined !== r.poisoned.quarantined)
    problems.push(
      `${r.status.quarantined} records quarantined, ${r.poisoned.quarantined} poison messages sent`,
    );
  if (acked === 0) problems.push('nothing was published');
  return problems;
}

const n = (x: number) => x.toLocaleString('en-US');

export function formatResult(r: ScenarioResult): string {
  const s = r.status;
  const f = s.faults;
  const p = r.published;
  const injected = f
    ? [
        [f.storeFailures, 'store failures'],
        [f.storeFailuresAfterWrite, 'store failures after writing'],
        [f.dynamoFailures, 'DynamoDB failures'],
        [f.dynamoFailuresAfterCall, 'DynamoDB failures after the call'],
        [f.handlerCrashes, `handler crashes (after ${n(f.recordsBeforeCrash)} records in all)`],
        [f.runnerRestarts, 'runner restarts'],
        [f.runnerCrashes, 'runner crashes'],
        [f.brokerRestarts, 'broker restarts'],
      ]
        .filter(([count]) => (count as number) > 0)
        .map(([count, what]) => `${n(count as number)} ${what}`)
        .join(', ') || 'none'
    : 'none';
  const acked = p.readings.sparkplug + p.readings.lwm2m;
  const rc = s.recovery;
  return (
    `${r.problems.length === 0 ? 'PASS' : 'FAIL'} ${r.scenario.name} (${r.devices} devices, ${r.seconds} s)\n` +
    `  injected    ${injected}\n` +
    `  published   ${n(acked)} readings acknowledged in ${n(p.messages.sparkplug + p.messages.lwm2m)} QoS 1 messages ` +
    `(${n(p.publishErrors)} publishes unanswered, ${n(p.reconnects)} reconnects)\n` +
    `  accepted    ${n(r.accepted.distinct)} readings in ${n(r.accepted.records)} records the broker forwarded ` +
    `(${n(r.accepted.readings - r.accepted.distinct)} sent again by devices)\n` +
    `  stored      ${n(r.rows.readings)} rows, ${n(r.rows.distinct)} distinct: duplicates ${n(r.rows.readings - r.rows.distinct)} ` +
    `(re-writes absorbed by the store: ${n(s.duplicates)})\n` +
    (r.beforeRedrive
      ? `  redrive     ${n(r.beforeRedrive.dlqRecords)} records in the DLQ (with payloads), ${n(r.beforeRedrive.rows)} rows before; ` +
        `${n(r.beforeRedrive.redriven)} records put back on the streams\n`
      : '') +
    `  recovery    quarantined ${n(s.quarantined)}, DLQ ${n(s.dlqRecords)}, in-handler retries ${n(rc.ingestRetries)}, ` +
    `batch failures ${n(rc.transientFailures)}, stream retries ${n(rc.streamRetries)}, ` +
    `function errors ${n(rc.functionErrors)}, bisections ${n(rc.bisections)}, invocations ${n(s.invocations)}\n` +
    r.problems.map((x) => `  PROBLEM     ${x}\n`).join('')
  );
}

/** Runs the scenarios (all, or those whose name contains `only`), printing each; true when all pass. */
export async function runFaults(
  o: RunOptions & { only?: string; write?: (s: string) => void },
): Promise<boolean> {
  const write = o.write ?? ((s: string) => process.stdout.write(s));
  const chosen = SCENARIOS.filter((s) => !o.only || s.name.includes(o.only));
  if (chosen.length === 0) throw new Error(`no scenario matches "${o.only}"`);
  let ok = true;
  for (const [i, scenario] of chosen.entries()) {
    let result: ScenarioResult;
    try {
      result = await runScenario(scenario, { ...o, seed: (o.seed ?? 1) + i });
    } catch (error) {
      ok = false;
      write(`FAIL ${scenario.name}: ${(error as Error).message}\n`);
      continue;
    }
    ok &&= result.problems.length === 0;
    write(formatResult(result));
  }
  write(ok ? 'all scenarios passed\n' : 'some scenarios FAILED\n');
  return ok;
}
