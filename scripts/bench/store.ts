/**
 * `npm run bench -- store [--rows N] [--runs N] [--batch N]`: the local DuckDB TelemetryStore.
 * - write throughput: N fresh readings per run (default 100,000, in write() calls of --batch readings,
 *   default 10,000) into a new store file, median of --runs (default 5); plus one idempotent re-write;
 * - query latency over a 1,000,000-row store: raw page (1,000 points), raw page after a cursor,
 *   1-minute buckets over a day, latest per metric (medians of 20 queries each).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { EnrichedReading } from '../../functions/core/reading.js';
import type { Benchmark } from '../../infra/cli/bench.js';
import { DuckDbTelemetryStore } from '../../infra/local/duckdb-store.js';

const T0 = Date.UTC(2025, 0, 1);
const DEVICES = 100;
const METRICS = 10;

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
    const rows = option(args, 'rows', 100_000);
    const runs = option(args, 'runs', 5);
    const batch = option(args, 'batch', 10_000);
    const root = mkdtempSync(join(tmpdir(), 'dualpath-bench-store-'));
    try {
      // Write throughput: fresh store per run; readings are generated outside the timed section.
      const rates: number[] = [];
      let rewriteRate = 0;
      for (let r = 0; r < runs; r++) {
        const store = await DuckDbTelemetryStore.open({ dataDir: join(root, `w${r}`) });
        const batches: EnrichedReading[][] = [];
        for (let off = 0; off < rows; off += batch) batches.push(readings(off, Math.min(batch, rows - off)));
        let t = performance.now();
        for (const b of batches) await store.write(b);
        rates.push(rows / ((performance.now() - t) / 1000));
        if (r === 0) {
          t = performance.now();
          let dup = 0;
          for (const b of batches) dup += (await store.write(b)).duplicates;
          rewriteRate = rows / ((performance.now() - t) / 1000);
          if (dup !== rows) throw new Error(`re-write found ${dup} duplicates, expected ${rows}`);
        }
        await store.close();
      }
      process.stdout.write(
        `write  ${rows} readings in batches of ${batch}: median ${Math.round(median(rates))} readings/s ` +
          `(runs: ${rates.map((x) => Math.round(x)).join(', ')})\n` +
          `rewrite (all duplicates): ${Math.round(rewriteRate)} readings/s\n`,
      );

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
