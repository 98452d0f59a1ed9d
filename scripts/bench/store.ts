/**
 * `npm run bench -- store [--rows N] [--runs N] [--batch N] [--writes-only]`: the local DuckDB
 * TelemetryStore.
 * - write: per run a new store file; one warm-up "fleet second" (1,000 devices × 50 metrics = 50,000
 *   readings, every device and metric new to the store), then N more readings (default 200,000: four
 *   more fleet seconds, devices and metrics now known) in write() calls of --batch readings (default
 *   10,000), median of --runs (default 5); plus one idempotent re-write of the timed readings. Readings
 *   are shaped like the local stack's: Sparkplug node + child device, group, registry enrichment
 *   (device type, site), a unit and a name per metric, quality GOOD, mostly Float/Double, some Boolean.
 *   Besides readings/s it prints the write path's main-thread cost per reading: the event loop's
 *   active time (performance.eventLoopUtilization) over the write loop — everything write() runs
 *   synchronously, including the Appender, but not DuckDB's own query threads; wall time, so other load
 *   on the machine inflates it — and the process CPU (user + system, every thread) per reading;
 * - query latency over a 1,000,000-row store (100 devices × 10 metrics, as before): raw page (1,000
 *   points), raw page after a cursor, 1-minute buckets over a day, latest per metric (medians of 20).
 *
 * `npm run bench -- store --dynamodb [--devices N] [--messages N] [--runs N]`: the packed DynamoDB store
 * (the default AWS store, ADR 0013) against an in-process dynalite, counting requests and consumed
 * capacity (ReturnConsumedCapacity TOTAL on every request; dynalite applies DynamoDB's size rules: 1 WRU
 * per started KB written — the larger of the old and new item —, 1 RRU per started 4 KB read
 * strongly consistent, half eventually consistent; a failed condition, which DynamoDB bills but dynalite
 * does not report, is added by the same rule):
 * - writes at 1 and at 50 readings per message: --devices (default 200) devices, each sending
 *   --messages (default 30) messages 10 s apart, in write() calls of 100 messages (a Lambda batch);
 *   a warm-up message per device first (catalog creation), then the steady state; then a redelivery of
 *   the same batches (all duplicates). Per message and per reading: requests by action, WRU, RRU, and the
 *   stored bytes per reading (items sized by DynamoDB's rules + 100 B per item);
 * - query latency (medians of --runs, default 7) over 24 h of one device at 1 message / 10 s with 50
 *   readings each (432,000 readings): raw 1 h of one metric, raw first page (1,000) of all metrics,
 *   buckets 24 h at 1 min (cold: builds the series hour chunks; warm: from them; frames only, chunks
 *   off), latest; with the capacity each consumed.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { CreateTableCommand, DescribeTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, ScanCommand } from '@aws-sdk/lib-dynamodb';
import dynalite from 'dynalite';
import {
  DynamoTelemetryStore,
  TELEMETRY_TABLE_SCHEMA,
} from '../../functions/adapters/dynamo-telemetry-store.js';
import type { EnrichedReading } from '../../functions/core/reading.js';
import type { Benchmark } from '../../infra/cli/bench.js';
import { DuckDbTelemetryStore } from '../../infra/local/duckdb-store.js';
import { intOption } from '../bench-args.js';

const T0 = Date.UTC(2025, 0, 1);
/** The query store's shape (kept from the first version of this benchmark, so figures compare). */
const DEVICES = 100;
const METRICS = 10;
/** The write benchmark's fleet, like `npm run bench -- e2e 1000 1 … 50`. */
const FLEET_DEVICES = 1000;
const FLEET_METRICS = 50;
const FLEET_SECOND = FLEET_DEVICES * FLEET_METRICS;
const UNITS = ['Cel', '%RH', 'kPa', 'm3/h', 'A', 'V', 'W', 'Hz'];
const TYPES = ['breaker', 'meter', 'transmitter', 'sensor'];

/** Readings k in [start, start+n): 100 devices × 10 metrics, one reading per metric per device per second. */
function readings(start: number, n: number): EnrichedReading[] {
  const out = new Array<EnrichedReading>(n);
  for (let i = 0; i < n; i++) {
    const k = start + i;
    const metric = k % METRICS;
    const device = Math.floor(k / METRICS) % DEVICES;
    const second = Math.floor(k / (METRICS * DEVICES));
    out[i] = {
      protocol: 'sparkplug',
      deviceId: `edge-${device}`,
      group: 'plant',
      metric: `line/sensor-${metric}`,
      type: metric === 9 ? 'Boolean' : 'Double',
      value: metric === 9 ? k % 2 === 0 : Math.sin(k) * 100,
      time: T0 + second * 1000,
      historical: false,
      transient: false,
      quality: 'GOOD',
      unit: 'Cel',
      enrichment: { deviceType: 'pump', site: 'site-a', applications: ['app'] },
    };
  }
  return out;
}

/** What a Sparkplug host keeps from the births: one name, unit and datatype string per metric. */
const FLEET_METRIC_DEFS = Array.from({ length: FLEET_METRICS }, (_, m) => ({
  metric: `Sensors/Channel-${m}`,
  name: `Channel ${m}`,
  type: m % 10 === 9 ? 'Boolean' : m % 2 === 0 ? 'Float' : 'Double',
  unit: m % 10 === 9 ? undefined : UNITS[m % UNITS.length],
}));
/** What the enricher caches: one enrichment object per device. */
const FLEET_ENRICHMENT = Array.from({ length: FLEET_DEVICES }, (_, d) => ({
  deviceType: TYPES[d % TYPES.length] as string,
  site: `site-${d % 8}`,
  applications: ['app'],
}));

/**
 * Fleet readings k in [start, start+n): 1,000 Sparkplug edge nodes, each with one child device, × 50
 * metrics, one reading per metric per device per second, strings shared the way the ingest path shares
 * them: device id, group and sub-device built once per message (the topic), metric name, unit and
 * type from the birth cache, the enrichment object from the enricher's cache.
 */
function fleetReadings(start: number, n: number): EnrichedReading[] {
  const out = new Array<EnrichedReading>(n);
  let topic: { deviceId: string; group: string; subDevice: string; message: number } | undefined;
  for (let i = 0; i < n; i++) {
    const k = start + i;
    const metric = k % FLEET_METRICS;
    const message = Math.floor(k / FLEET_METRICS);
    const device = message % FLEET_DEVICES;
    const second = Math.floor(k / FLEET_SECOND);
    if (topic?.message !== message) {
      topic = {
        deviceId: `node-${device}`,
        group: `plant-${device % 20}`,
        subDevice: `dev-${device % 3}`,
        message,
      };
    }
    const def = FLEET_METRIC_DEFS[metric] as (typeof FLEET_METRIC_DEFS)[number];
    const r: EnrichedReading = {
      protocol: 'sparkplug',
      deviceId: topic.deviceId,
      group: topic.group,
      subDevice: topic.subDevice,
      metric: def.metric,
      type: def.type,
      value: def.type === 'Boolean' ? k % 2 === 0 : Math.round(Math.sin(k) * 1e6) / 1e3,
      time: T0 + second * 1000 + device,
      historical: false,
      transient: false,
      quality: 'GOOD',
      name: def.name,
      enrichment: FLEET_ENRICHMENT[device] as EnrichedReading['enrichment'],
    };
    if (def.unit !== undefined) r.unit = def.unit;
    out[i] = r;
  }
  return out;
}

function batches(gen: typeof readings, start: number, n: number, batch: number): EnrichedReading[][] {
  const out: EnrichedReading[][] = [];
  for (let off = 0; off < n; off += batch) out.push(gen(start + off, Math.min(batch, n - off)));
  return out;
}

interface WriteCost {
  rate: number;
  /** Event-loop active µs per reading (the main thread). */
  mainUs: number;
  /** Process CPU µs per reading (all threads). */
  cpuUs: number;
  written: number;
  duplicates: number;
}

async function measureWrites(store: DuckDbTelemetryStore, bs: EnrichedReading[][]): Promise<WriteCost> {
  const n = bs.reduce((a, b) => a + b.length, 0);
  let written = 0;
  let duplicates = 0;
  const elu = performance.eventLoopUtilization();
  const cpu = process.cpuUsage();
  const t = performance.now();
  for (const b of bs) {
    const res = await store.write(b);
    written += res.written;
    duplicates += res.duplicates;
  }
  const ms = performance.now() - t;
  const used = process.cpuUsage(cpu);
  const active = performance.eventLoopUtilization(elu).active;
  return {
    rate: n / (ms / 1000),
    mainUs: (active * 1000) / n,
    cpuUs: (used.user + used.system) / n,
    written,
    duplicates,
  };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
}

async function timeIt(fn: () => Promise<unknown>, runs: number): Promise<number> {
  const ms: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t = performance.now();
    await fn();
    ms.push(performance.now() - t);
  }
  return median(ms);
}

async function writeAll(
  store: DuckDbTelemetryStore,
  start: number,
  n: number,
  batch: number,
): Promise<number> {
  let written = 0;
  for (let off = 0; off < n; off += batch) {
    const res = await store.write(readings(start + off, Math.min(batch, n - off)));
    written += res.written;
  }
  return written;
}

export const benchmark: Benchmark = {
  summary:
    'telemetry stores: DuckDB write throughput and query latency; --dynamodb: requests, capacity and latency',
  async run(args) {
    if (args.includes('--dynamodb')) return runDynamo(args);
    const rows = intOption(args, 'rows', 200_000);
    const runs = intOption(args, 'runs', 5);
    const batch = intOption(args, 'batch', 10_000);
    const root = mkdtempSync(join(tmpdir(), 'dualpath-bench-store-'));
    try {
      // Writes: fresh store per run; readings are generated outside the measured sections.
      const first: WriteCost[] = [];
      const steady: WriteCost[] = [];
      const rewrite: WriteCost[] = [];
      for (let r = 0; r < runs; r++) {
        const store = await DuckDbTelemetryStore.open({ dataDir: join(root, `w${r}`) });
        const warm = batches(fleetReadings, 0, FLEET_SECOND, batch);
        const timed = batches(fleetReadings, FLEET_SECOND, rows, batch);
        first.push(await measureWrites(store, warm));
        const s = await measureWrites(store, timed);
        if (s.written !== rows) throw new Error(`wrote ${s.written} of ${rows} readings`);
        steady.push(s);
        const again = await measureWrites(store, timed);
        if (again.duplicates !== rows || again.written !== 0) {
          throw new Error(`re-write found ${again.duplicates} duplicates, expected ${rows}`);
        }
        rewrite.push(again);
        await store.close();
      }
      const line = (label: string, xs: WriteCost[]): string =>
        `${label}: median ${Math.round(median(xs.map((x) => x.rate)))} readings/s, ` +
        `main thread ${median(xs.map((x) => x.mainUs)).toFixed(2)} µs/reading, ` +
        `process CPU ${median(xs.map((x) => x.cpuUs)).toFixed(2)} µs/reading ` +
        `(main µs/reading per run: ${xs.map((x) => x.mainUs.toFixed(2)).join(', ')})\n`;
      process.stdout.write(
        `write ${FLEET_DEVICES} devices × ${FLEET_METRICS} metrics in batches of ${batch}, ${runs} runs ` +
          '(main thread = event-loop active time during the writes, i.e. the synchronous work write() ' +
          "does on the caller's thread; process CPU = user + system of every thread, DuckDB's included):\n" +
          line(`  first ${FLEET_SECOND} readings (all devices and metrics new)`, first) +
          line(`  next ${rows} readings (steady state)`, steady) +
          line(`  re-write of those ${rows} (all duplicates)`, rewrite),
      );

      if (args.includes('--writes-only')) return;
      // Query latency over 1M rows.
      const big = 1_000_000;
      const store = await DuckDbTelemetryStore.open({ dataDir: join(root, 'q') });
      const t = performance.now();
      await writeAll(store, 0, big, 50_000);
      process.stdout.write(`load   ${big} readings in ${((performance.now() - t) / 1000).toFixed(1)} s\n`);
      const span = (big / (METRICS * DEVICES)) * 1000; // ms of data per device
      const q = { deviceId: 'edge-42', from: T0, to: T0 + span };
      let token: string | undefined;
      const raw = await timeIt(async () => {
        token = (await store.queryRaw({ ...q, limit: 1000 })).nextToken;
      }, 20);
      const rawAfter = await timeIt(() => store.queryRaw({ ...q, limit: 1000, nextToken: token }), 20);
      const rawMetric = await timeIt(
        () => store.queryRaw({ ...q, metric: 'line/sensor-3', limit: 1000, order: 'desc' }),
        20,
      );
      let buckets = 0;
      const bucketMs = await timeIt(async () => {
        buckets = (
          await store.queryBuckets({
            ...q,
            metric: 'line/sensor-3',
            intervalMs: 60_000,
            aggs: ['avg', 'min', 'max', 'count', 'first', 'last'],
          })
        ).length;
      }, 20);
      const latestMs = await timeIt(() => store.latest({ deviceId: 'edge-42' }), 20);
      const countMs = await timeIt(() => store.counts(), 20);
      process.stdout.write(
        `query over ${big} rows (median of 20):\n` +
          `  raw 1000 points, one device           ${raw.toFixed(1)} ms\n` +
          `  raw 1000 points after a cursor        ${rawAfter.toFixed(1)} ms\n` +
          `  raw 1000 points, one metric, desc     ${rawMetric.toFixed(1)} ms\n` +
          `  buckets 1 min over ${span / 1000} s (${buckets} buckets) ${bucketMs.toFixed(1)} ms\n` +
          `  latest per metric, one device         ${latestMs.toFixed(1)} ms\n` +
          `  counts()                              ${countMs.toFixed(1)} ms\n`,
      );
      await store.close();
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  },
};

// ---------------------------------------------------------------------------------------------------
// --dynamodb

interface Tally {
  requests: Map<string, number>;
  wru: number;
  rru: number;
  conditionFailures: number;
}

const ACTIONS: Record<string, string> = {
  PutCommand: 'PutItem',
  GetCommand: 'GetItem',
  UpdateCommand: 'UpdateItem',
  QueryCommand: 'Query',
  BatchGetCommand: 'BatchGetItem',
  BatchWriteCommand: 'BatchWriteItem',
};

const newTally = (): Tally => ({ requests: new Map(), wru: 0, rru: 0, conditionFailures: 0 });

/** DynamoDB's item size: attribute names + values (UTF-8 strings; numbers ~ 1 byte per 2 digits + 1). */
function dynamoItemBytes(item: Record<string, unknown>): number {
  let n = 0;
  for (const [k, v] of Object.entries(item)) {
    n += Buffer.byteLength(k, 'utf8');
    if (typeof v === 'string') n += Buffer.byteLength(v, 'utf8');
    else if (typeof v === 'number') n += Math.ceil(String(Math.abs(v)).replace(/[.e+-]/g, '').length / 2) + 1;
    else if (typeof v === 'boolean') n += 1;
    else if (v instanceof Uint8Array) n += v.byteLength;
    else n += Buffer.byteLength(JSON.stringify(v), 'utf8');
  }
  return n;
}

/** A document client whose every request asks for consumed capacity and is counted in `tally.current`. */
function countingClient(doc: DynamoDBDocumentClient, tally: { current: Tally }): DynamoDBDocumentClient {
  const counted = Object.create(doc) as DynamoDBDocumentClient;
  const send = async (command: { input: Record<string, unknown>; constructor: { name: string } }) => {
    const t = tally.current;
    const action = ACTIONS[command.constructor.name] ?? command.constructor.name;
    t.requests.set(action, (t.requests.get(action) ?? 0) + 1);
    command.input.ReturnConsumedCapacity = 'TOTAL';
    try {
      const out = (await doc.send(command as never)) as {
        ConsumedCapacity?: { CapacityUnits?: number } | Array<{ CapacityUnits?: number }>;
      };
      const caps = Array.isArray(out.ConsumedCapacity) ? out.ConsumedCapacity : [out.ConsumedCapacity];
      const units = caps.reduce((a, c) => a + (c?.CapacityUnits ?? 0), 0);
      if (/^(Get|Query|BatchGet)/.test(action)) t.rru += units;
      else t.wru += units;
      return out;
    } catch (error) {
      if ((error as Error).name === 'ConditionalCheckFailedException') {
        t.conditionFailures++;
        // DynamoDB bills a failed conditional write like the write (per started KB of the item).
        const item = command.input.Item as Record<string, unknown> | undefined;
        t.wru += Math.max(1, Math.ceil(dynamoItemBytes(item ?? {}) / 1024));
      }
      throw error;
    }
  };
  (counted as unknown as { send: typeof send }).send = send;
  return counted;
}

const DYN_UNITS = ['Cel', '%RH', 'kPa', 'm3/h', 'A', 'V', 'W', 'Hz'];

/** One message of device d at time t with k readings (metrics 0..k-1, shaped like the fleet's). */
function dynMessage(d: number, t: number, k: number): EnrichedReading[] {
  const out: EnrichedReading[] = [];
  for (let m = 0; m < k; m++) {
    const boolean = m % 10 === 9;
    const r: EnrichedReading = {
      protocol: 'sparkplug',
      deviceId: `node-${d}`,
      group: `plant-${d % 20}`,
      subDevice: `dev-${d % 3}`,
      metric: `Sensors/Channel-${m}`,
      name: `Channel ${m}`,
      type: boolean ? 'Boolean' : m % 2 === 0 ? 'Float' : 'Double',
      // Float: a float32 widened to a double, as the Sparkplug decoder gives it; Double: 17 digits.
      value: boolean
        ? (t / 10_000 + m) % 2 === 0
        : m % 2 === 0
          ? Math.fround(Math.sin(t / 1e4 + m + d) * 100)
          : Math.sin(t / 1e4 + m + d) * 100,
      time: t,
      historical: false,
      transient: false,
      quality: 'GOOD',
      enrichment: {
        deviceType: TYPES[d % TYPES.length] as string,
        site: `site-${d % 8}`,
        applications: ['app'],
      },
    };
    if (!boolean) r.unit = DYN_UNITS[m % DYN_UNITS.length] as string;
    out.push(r);
  }
  return out;
}

async function startBenchDynalite(): Promise<{
  doc: DynamoDBDocumentClient;
  table: () => Promise<string>;
  stop(): Promise<void>;
}> {
  const server = dynalite({ createTableMs: 0, deleteTableMs: 0 });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const port = (server.address() as AddressInfo).port;
  const client = new DynamoDBClient({
    endpoint: `http://127.0.0.1:${port}`,
    region: 'us-east-1',
    credentials: { accessKeyId: 'x', secretAccessKey: 'x' },
  });
  const doc = DynamoDBDocumentClient.from(client, { marshallOptions: { removeUndefinedValues: true } });
  let n = 0;
  return {
    doc,
    async table() {
      const name = `telemetry-bench-${++n}`;
      await client.send(
        new CreateTableCommand({
          TableName: name,
          BillingMode: TELEMETRY_TABLE_SCHEMA.billingMode,
          KeySchema: [
            { AttributeName: 'pk', KeyType: 'HASH' },
            { AttributeName: 'sk', KeyType: 'RANGE' },
          ],
          AttributeDefinitions: [
            { AttributeName: 'pk', AttributeType: 'S' },
            { AttributeName: 'sk', AttributeType: 'S' },
          ],
        }),
      );
      // dynalite answers CreateTable before the table is ACTIVE.
      while (
        (await client.send(new DescribeTableCommand({ TableName: name }))).Table?.TableStatus !== 'ACTIVE'
      ) {
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
      return name;
    },
    async stop() {
      client.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function tallyLine(label: string, t: Tally, messages: number, readings: number): string {
  const reqs = [...t.requests.entries()]
    .sort()
    .map(([a, n]) => `${a} ${(n / messages).toFixed(3)}`)
    .join(', ');
  return (
    `  ${label}: per message WRU ${(t.wru / messages).toFixed(3)}, RRU ${(t.rru / messages).toFixed(3)}; ` +
    `per reading WRU ${(t.wru / readings).toFixed(4)}, RRU ${(t.rru / readings).toFixed(4)}; ` +
    `requests per message: ${reqs}; failed conditions ${t.conditionFailures}\n`
  );
}

async function storedBytes(
  doc: DynamoDBDocumentClient,
  table: string,
): Promise<Map<string, { items: number; bytes: number }>> {
  const kinds = new Map<string, { items: number; bytes: number }>();
  let start: Record<string, unknown> | undefined;
  do {
    const out = await doc.send(new ScanCommand({ TableName: table, ExclusiveStartKey: start }));
    for (const item of out.Items ?? []) {
      const kind =
        String(item.pk).slice(0, 1) + (String(item.pk).startsWith('D#') ? String(item.sk).slice(0, 1) : '');
      const k = kinds.get(kind) ?? { items: 0, bytes: 0 };
      k.items++;
      k.bytes += dynamoItemBytes(item) + 100;
      kinds.set(kind, k);
    }
    start = out.LastEvaluatedKey;
  } while (start !== undefined);
  return kinds;
}

async function runDynamo(args: string[]): Promise<void> {
  const devices = intOption(args, 'devices', 200);
  const messages = intOption(args, 'messages', 30);
  const runs = intOption(args, 'runs', 7);
  const local = await startBenchDynalite();
  const tally = { current: newTally() };
  const client = countingClient(local.doc, tally);
  const summary: Record<string, unknown> = {};
  try {
    for (const k of [1, 50]) {
      const table = await local.table();
      const end = T0 + (messages + 1) * 10_000;
      const store = new DynamoTelemetryStore({ client, tableName: table, clock: () => end });
      // Messages in time order, cut into write() calls of 100 messages (a Lambda batch): the warm-up
      // round (one message per device) apart from the steady rounds.
      const cut = (from: number, to: number): EnrichedReading[][] => {
        const out: EnrichedReading[][] = [];
        let call: EnrichedReading[] = [];
        let inCall = 0;
        for (let i = from; i < to; i++) {
          for (let d = 0; d < devices; d++) {
            call.push(...dynMessage(d, T0 + i * 10_000, k));
            if (++inCall === 100) {
              out.push(call);
              call = [];
              inCall = 0;
            }
          }
        }
        if (call.length > 0) out.push(call);
        return out;
      };
      const warmCalls = cut(0, 1);
      const steadyCalls = cut(1, messages + 1);
      tally.current = newTally();
      for (const c of warmCalls) await store.write(c);
      const warm = tally.current;
      tally.current = newTally();
      const t = performance.now();
      let written = 0;
      for (const c of steadyCalls) written += (await store.write(c)).written;
      const ms = performance.now() - t;
      const steady = tally.current;
      const steadyMessages = devices * messages;
      if (written !== steadyMessages * k)
        throw new Error(`wrote ${written} of ${steadyMessages * k} readings`);
      tally.current = newTally();
      let dups = 0;
      for (const c of steadyCalls) dups += (await store.write(c)).duplicates;
      if (dups !== steadyMessages * k) throw new Error(`re-write found ${dups} duplicates`);
      const redelivery = tally.current;
      const kinds = await storedBytes(local.doc, table);
      const total = [...kinds.values()].reduce((a, b) => a + b.bytes, 0);
      const readingsStored = (messages + 1) * devices * k;
      process.stdout.write(
        `write ${k} reading(s) per message, ${devices} devices × ${messages} messages after a warm-up message each, calls of 100 messages:\n` +
          tallyLine('warm-up (catalogs created)', warm, devices, devices * k) +
          tallyLine('steady state', steady, steadyMessages, steadyMessages * k) +
          tallyLine('redelivery (all duplicates)', redelivery, steadyMessages, steadyMessages * k) +
          `  stored: ${[...kinds.entries()].map(([kind, v]) => `${kind} ${v.items} items ${Math.round(v.bytes / v.items)} B avg`).join(', ')}; ` +
          `${(total / readingsStored).toFixed(1)} B per reading (items + 100 B overhead each)\n` +
          `  dynalite wall time ${(readingsStored / (ms / 1000)).toFixed(0)} readings/s (not DynamoDB's)\n`,
      );
      summary[`k${k}`] = {
        wruPerMessage: steady.wru / steadyMessages,
        rruPerMessage: steady.rru / steadyMessages,
        requestsPerMessage: Object.fromEntries([...steady.requests].map(([a, n]) => [a, n / steadyMessages])),
        bytesPerReading: total / readingsStored,
        redeliveryWruPerMessage: redelivery.wru / steadyMessages,
        redeliveryRruPerMessage: redelivery.rru / steadyMessages,
      };
    }

    // Query latency: 24 h of one device, 1 message / 10 s, 50 readings each.
    const table = await local.table();
    const dayEnd = Math.floor((T0 + 86_400_000) / 3_600_000) * 3_600_000;
    const dayStart = dayEnd - 86_400_000;
    const now = dayEnd + 300_000;
    // Loaded as live ingestion would: the clock follows the data (no late writes, no stale chunk marks).
    let loadClock = dayStart;
    const loader = new DynamoTelemetryStore({ client: local.doc, tableName: table, clock: () => loadClock });
    const t0 = performance.now();
    const batch: EnrichedReading[] = [];
    for (let t = dayStart; t < dayEnd; t += 10_000) {
      batch.push(...dynMessage(0, t, 50));
      loadClock = t + 1000;
      if (batch.length >= 5_000) await loader.write(batch.splice(0));
    }
    if (batch.length > 0) await loader.write(batch.splice(0));
    process.stdout.write(
      `load 24 h of one device (8,640 messages × 50 readings) in ${((performance.now() - t0) / 1000).toFixed(1)} s\n`,
    );
    const store = (chunks: boolean) =>
      new DynamoTelemetryStore({
        client,
        tableName: table,
        clock: () => now,
        ...(chunks ? {} : { chunkGraceMs: false }),
      });
    const dev = 'node-0';
    const lastHour = { deviceId: dev, from: dayEnd - 3_600_000, to: dayEnd };
    const day = {
      deviceId: dev,
      from: dayStart,
      to: dayEnd,
      intervalMs: 60_000,
      aggs: ['avg', 'min', 'max', 'count', 'first', 'last'] as const,
    };
    const measure = async (label: string, fn: (i: number) => Promise<unknown>, n = runs) => {
      const ms: number[] = [];
      const caps: Tally[] = [];
      for (let i = 0; i < n; i++) {
        tally.current = newTally();
        const t = performance.now();
        await fn(i);
        ms.push(performance.now() - t);
        caps.push(tally.current);
      }
      const rru = median(caps.map((c) => c.rru));
      const wru = median(caps.map((c) => c.wru));
      const requests = median(caps.map((c) => [...c.requests.values()].reduce((a, b) => a + b, 0)));
      process.stdout.write(
        `  ${label.padEnd(52)} ${median(ms).toFixed(1).padStart(7)} ms  RRU ${rru.toFixed(1)}  WRU ${wru.toFixed(1)}  requests ${requests}\n`,
      );
      return { ms: median(ms), rru, wru, requests };
    };
    process.stdout.write(`query latency against dynalite (median of ${runs}; capacity per query):\n`);
    const s = store(true);
    summary.rawHourOneMetric = await measure('raw 1 h, one metric (360 points)', () =>
      s.queryRaw({ ...lastHour, metric: 'Sensors/Channel-3', limit: 1000 }),
    );
    summary.rawHourAll = await measure('raw 1 h, all metrics, first page of 1,000', () =>
      s.queryRaw({ ...lastHour, limit: 1000 }),
    );
    summary.bucketsCold = await measure('buckets 24 h at 1 min, cold (builds 23 hour chunks)', (i) =>
      s.queryBuckets({ ...day, aggs: [...day.aggs], metric: `Sensors/Channel-${10 + i}` }),
    );
    summary.bucketsWarm = await measure('buckets 24 h at 1 min, warm (23 chunks + open hour)', (i) =>
      s.queryBuckets({ ...day, aggs: [...day.aggs], metric: `Sensors/Channel-${10 + i}` }),
    );
    const frames = store(false);
    summary.bucketsFrames = await measure(
      'buckets 24 h at 1 min, frames only (chunks off)',
      () => frames.queryBuckets({ ...day, aggs: [...day.aggs], metric: 'Sensors/Channel-3' }),
      Math.min(runs, 3),
    );
    summary.latest = await measure('latest, one device (50 metrics)', () => s.latest({ deviceId: dev }));
    process.stdout.write(`summary ${JSON.stringify(summary)}\n`);
  } finally {
    await local.stop();
  }
}
