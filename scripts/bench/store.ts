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
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { EnrichedReading } from '../../functions/core/reading.js';
import type { Benchmark } from '../../infra/cli/bench.js';
import { DuckDbTelemetryStore } from '../../infra/local/duckdb-store.js';

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

function option(args: string[], name: string, fallback: number): number {
  const i = args.indexOf(`--${name}`);
  const v = i >= 0 ? Number(args[i + 1]) : fallback;
  if (!Number.isSafeInteger(v) || v < 1) throw new Error(`--${name} must be a positive integer`);
  return v;
}

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
  summary: 'DuckDB telemetry store: write throughput and query latency',
  async run(args) {
    const rows = option(args, 'rows', 200_000);
    const runs = option(args, 'runs', 5);
    const batch = option(args, 'batch', 10_000);
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
