/**
 * Soak run (`npm run soak`, infra/cli/soak.ts): the local stack under a steady simulated fleet for
 * minutes, sampled every few seconds — readings stored per second, stream lag, publish → stored
 * latency, event-loop delay, CPU, the stack's heap after a full GC and its RSS, the simulator's and the
 * emulators' RSS. After the warm-up, each series gets a trend verdict (scripts/soak-trend.ts); the run
 * fails if lag or memory keeps growing, if anything published was not stored exactly once, or if a
 * process died.
 *
 * The stack runs in this process, as under `npm start`; the fleet runs in a child process so its
 * memory is its own. kinesalite's RSS is reported but not judged: like Kinesis it keeps every record
 * for the stream's retention period (24 h), so it grows with the data by design.
 *
 * The stack's RSS is judged without DuckDB's own accounting (`duckdb_memory()`): DuckDB's buffer cache
 * fills up to its memory limit (512 MB by default, DUALPATH_DUCKDB_MEMORY) and at the soak's rate that
 * takes longer than the run, so a 10-minute window sees it rise — bounded, not a leak. What DuckDB
 * accounts for is checked against that limit instead (the run fails above it); everything else in the
 * stack's RSS — JS heap, Buffers, the allocator's slack, DuckDB memory outside its accounting — is
 * judged for growth as before.
 */

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { DEFAULT_MEMORY_LIMIT } from '../infra/local/duckdb-store.js';
import { startLocalStack } from '../infra/local/stack.js';
import { spawnFleet } from './fleet-process.js';
import { emulatorPids, rssMB } from './proc-stats.js';
import { afterWarmup, type GrowthRule, type Point, type Trend, trend } from './soak-trend.js';

export interface SoakOptions {
  devices: number;
  /** Sparkplug DDATA per device per second (LwM2M Sends at a tenth of it). */
  rate: number;
  readingsPerMessage: number;
  seconds: number;
  /** Seconds between samples. */
  interval: number;
  /** Seconds excluded from the verdicts (connect storm, caches filling, JIT). Default 20 % of the run, ≥ 30 s. */
  warmup?: number;
  seed?: number;
  log?: (line: string) => void;
}

export interface SoakSample {
  /** Seconds since the fleet started. */
  t: number;
  storedPerSecond: number;
  /** Records in the streams not yet read by the event-source runners. */
  lagRecords: number;
  latencyP50Ms: number;
  latencyP99Ms: number;
  eventLoopP99Ms: number;
  /** CPU of this process (stack) over the interval, in cores. */
  stackCpu: number;
  stackHeapMB: number;
  stackRssMB: number;
  /** stackRssMB − duckdbMB: the stack's RSS less DuckDB's own (limit-bounded) accounting. Judged. */
  stackRssOutsideDuckdbMB: number;
  /** Memory outside the JS heap that V8 knows of (Buffers, ArrayBuffers): RSS growth not seen here is native. */
  stackExternalMB: number;
  /** What DuckDB accounts for (buffer pool, query memory): native RSS of the stack not in the JS heap. */
  duckdbMB: number;
  simulatorRssMB: number;
  kinesaliteRssMB: number;
  dynaliteRssMB: number;
  devicesOnline: number;
}

/** The series judged, their unit and what "keeps growing" means for each. */
type Judged =
  | 'lagRecords'
  | 'latencyP99Ms'
  | 'eventLoopP99Ms'
  | 'stackHeapMB'
  | 'stackRssOutsideDuckdbMB'
  | 'simulatorRssMB'
  | 'dynaliteRssMB';

export function growthRules(offeredRecordsPerSecond: number): Record<Judged, GrowthRule> {
  return {
    // A backlog growing by more than 5 s of traffic over the window is falling behind.
    lagRecords: { minGrowth: Math.max(500, offeredRecordsPerSecond * 5), minRelative: 0 },
    latencyP99Ms: { minGrowth: 1_000, minRelative: 0 },
    eventLoopP99Ms: { minGrowth: 100, minRelative: 0 },
    // Heap after a full GC: what is really retained.
    stackHeapMB: { minGrowth: 16, minRelative: 0.1 },
    // RSS less DuckDB's accounting still includes the allocator's slack: a coarser floor.
    stackRssOutsideDuckdbMB: { minGrowth: 64, minRelative: 0.15 },
    simulatorRssMB: { minGrowth: 32, minRelative: 0.15 },
    dynaliteRssMB: { minGrowth: 32, minRelative: 0.15 },
  };
}

export interface SoakResult {
  ok: boolean;
  samples: SoakSample[];
  warmup: number;
  verdicts: Record<Judged, Trend>;
  accounting: {
    published: number;
    stored: number;
    duplicates: number;
    quarantined: number;
    dlq: number;
    publishErrors: number;
    dropped: number;
  };
  failures: string[];
}

/** A full GC on demand: `--expose-gc` switched on at run time (the flag must precede the function's creation). */
function gcFunction(): () => void {
  const existing = (globalThis as { gc?: () => void }).gc;
  if (existing) return existing;
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
}

/** A DuckDB memory limit ('512MB', '1GB', '1.5GiB') in MiB; undefined when it cannot be read. */
export function memoryLimitMB(limit: string): number | undefined {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)?\s*$/i.exec(limit);
  if (!m) return undefined;
  const unit = (m[2] ?? 'B').toLowerCase();
  const bytes: Record<string, number> = {
    b: 1,
    kb: 1e3,
    mb: 1e6,
    gb: 1e9,
    tb: 1e12,
    kib: 2 ** 10,
    mib: 2 ** 20,
    gib: 2 ** 30,
    tib: 2 ** 40,
  };
  return (Number(m[1]) * bytes[unit]!) / 2 ** 20;
}

/** DuckDB's own memory accounting, when the store offers it (0 otherwise). */
async function duckdbMemory(store: object): Promise<number> {
  const s = store as { memoryBytes?: () => Promise<number> };
  return typeof s.memoryBytes === 'function' ? s.memoryBytes() : 0;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const round = (x: number, digits = 1) => Math.round(x * 10 ** digits) / 10 ** digits;

export async function runSoak(o: SoakOptions): Promise<SoakResult> {
  const log = o.log ?? (() => {});
  const lwm2mRate = o.rate / 10;
  const offeredRecords = o.devices * (o.rate + lwm2mRate);
  const warmup = o.warmup ?? Math.max(30, Math.round(o.seconds * 0.2));
  const gc = gcFunction();
  const dir = mkdtempSync(join(tmpdir(), 'dualpath-soak-'));
  const stack = await startLocalStack({ dataDir: dir, mqttPort: 0, httpPort: 0, log: () => {} });
  const emulators = emulatorPids();
  const fleet = spawnFleet([
    `--url=mqtt://127.0.0.1:${stack.mqttPort}`,
    `--devices=${o.devices}`,
    `--rate=${o.rate}`,
    `--lwm2m-rate=${lwm2mRate}`,
    `--readings-per-message=${o.readingsPerMessage}`,
    `--seed=${o.seed ?? 11}`,
    '--publish-rate=1000',
  ]);
  log(
    `soak: ${o.devices} devices × (${o.rate} DDATA + ${lwm2mRate} Send)/s × ${o.readingsPerMessage} readings = ${Math.round(offeredRecords * o.readingsPerMessage).toLocaleString('en-US')} readings/s offered, ${o.seconds} s, a sample every ${o.interval} s, verdicts after ${warmup} s`,
  );
  log(
    '    t  stored/s   lag rec  p50 ms  p99 ms  loop p99  cpu  heap MB  ext MB  duckdb MB  rss MB  rss-duckdb MB  sim MB  kinesalite MB  dynalite MB  online',
  );

  const samples: SoakSample[] = [];
  const loop = monitorEventLoopDelay({ resolution: 10 });
  loop.enable();
  const failures: string[] = [];
  const start = Date.now();
  let lastStored = stack.status().readingsStored;
  let lastCpu = process.cpuUsage();
  let lastAt = start;
  stack.latency.reset();
  try {
    while (Date.now() - start < o.seconds * 1000) {
      await sleep(Math.min(o.interval * 1000, start + o.seconds * 1000 - Date.now()));
      if (fleet.exited()) {
        failures.push('the simulator process exited during the run');
        break;
      }
      const now = Date.now();
      const dt = (now - lastAt) / 1000;
      const s = stack.status();
      const lat = stack.latency.percentiles();
      stack.latency.reset();
      const cpu = process.cpuUsage(lastCpu);
      gc();
      const mem = process.memoryUsage();
      const duckdbMB = round((await duckdbMemory(stack.store)) / 2 ** 20);
      const sample: SoakSample = {
        t: round((now - start) / 1000),
        storedPerSecond: Math.round((s.readingsStored - lastStored) / dt),
        lagRecords: s.lag.records,
        latencyP50Ms: lat.p50,
        latencyP99Ms: lat.p99,
        eventLoopP99Ms: round(loop.percentile(99) / 1e6),
        stackCpu: round((cpu.user + cpu.system) / 1e6 / dt, 2),
        stackHeapMB: round(mem.heapUsed / 2 ** 20),
        stackRssMB: round(mem.rss / 2 ** 20),
        stackRssOutsideDuckdbMB: round(mem.rss / 2 ** 20 - duckdbMB),
        stackExternalMB: round(mem.external / 2 ** 20),
        duckdbMB,
        simulatorRssMB: round(rssMB(fleet.pid)),
        kinesaliteRssMB: emulators.kinesalite ? round(rssMB(emulators.kinesalite)) : 0,
        dynaliteRssMB: emulators.dynalite ? round(rssMB(emulators.dynalite)) : 0,
        devicesOnline: Math.min(s.online.sparkplug, s.online.lwm2m),
      };
      loop.reset();
      samples.push(sample);
      lastStored = s.readingsStored;
      lastCpu = process.cpuUsage();
      lastAt = now;
      log(formatSample(sample));
    }
  } finally {
    loop.disable();
  }

  let published = 0;
  let publishErrors = 0;
  let dropped = 0;
  try {
    const f = await fleet.stop();
    published = f.readings.sparkplug + f.readings.lwm2m;
    publishErrors = f.publishErrors;
    dropped = f.dropped;
  } catch (error) {
    failures.push(`simulator: ${(error as Error).message}`);
  }
  await stack.stop();
  const final = stack.status();
  rmSync(dir, { recursive: true, force: true });

  const rules = growthRules(offeredRecords);
  const verdicts = {} as Record<Judged, Trend>;
  for (const key of Object.keys(rules) as Judged[]) {
    const points: Point[] = afterWarmup(
      samples.map((x) => ({ t: x.t, v: x[key] })),
      warmup,
    );
    verdicts[key] = trend(points, rules[key]);
    if (verdicts[key].growing) failures.push(`${key} keeps growing: ${verdicts[key].reason}`);
  }
  const accounting = {
    published,
    stored: final.readingsStored,
    duplicates: final.duplicates,
    quarantined: final.quarantined,
    dlq: final.dlqRecords,
    publishErrors,
    dropped,
  };
  // DuckDB's accounting is left out of the judged RSS because its limit bounds it: check that it does.
  const duckdbLimit = process.env.DUALPATH_DUCKDB_MEMORY || DEFAULT_MEMORY_LIMIT;
  const limitMB = memoryLimitMB(duckdbLimit);
  const duckdbPeak = Math.max(0, ...samples.map((x) => x.duckdbMB));
  if (limitMB === undefined) failures.push(`DuckDB memory limit "${duckdbLimit}" cannot be read`);
  else if (duckdbPeak > limitMB)
    failures.push(`DuckDB memory ${duckdbPeak} MB is above its limit ${duckdbLimit} (${round(limitMB)} MB)`);
  if (published !== final.readingsStored)
    failures.push(`published ${published} readings but stored ${final.readingsStored}`);
  if (final.duplicates > 0) failures.push(`${final.duplicates} duplicate rows`);
  if (final.dlqRecords > 0) failures.push(`${final.dlqRecords} records in the DLQ`);
  if (final.quarantined > 0) failures.push(`${final.quarantined} records quarantined`);
  return { ok: failures.length === 0, samples, warmup, verdicts, accounting, failures };
}

function formatSample(x: SoakSample): string {
  const pad = (v: number | string, w: number) => String(v).padStart(w);
  return [
    pad(x.t.toFixed(0), 5),
    pad(x.storedPerSecond.toLocaleString('en-US'), 9),
    pad(x.lagRecords.toLocaleString('en-US'), 9),
    pad(x.latencyP50Ms, 7),
    pad(x.latencyP99Ms, 7),
    pad(x.eventLoopP99Ms, 9),
    pad(x.stackCpu.toFixed(2), 4),
    pad(x.stackHeapMB, 8),
    pad(x.stackExternalMB, 7),
    pad(x.duckdbMB, 10),
    pad(x.stackRssMB, 7),
    pad(x.stackRssOutsideDuckdbMB, 14),
    pad(x.simulatorRssMB, 7),
    pad(x.kinesaliteRssMB, 14),
    pad(x.dynaliteRssMB, 12),
    pad(x.devicesOnline, 7),
  ].join(' ');
}

/** The verdict table and accounting, as printed at the end of a run. */
export function formatResult(r: SoakResult): string {
  const lines = [`verdicts over the samples after ${r.warmup} s (Theil–Sen slope, thirds' medians):`];
  for (const [key, v] of Object.entries(r.verdicts)) {
    lines.push(
      `  ${key.padEnd(15)} ${v.growing ? 'GROWING' : 'steady '}  slope ${round(v.slopePerMinute, 2)}/min  — ${v.reason}`,
    );
  }
  const a = r.accounting;
  lines.push(
    `accounting after the drain: published ${a.published.toLocaleString('en-US')} readings, stored ${a.stored.toLocaleString('en-US')}, duplicates ${a.duplicates}, quarantined ${a.quarantined}, DLQ ${a.dlq}, publish errors ${a.publishErrors}, dropped ${a.dropped}`,
  );
  lines.push(r.ok ? 'soak: PASS' : `soak: FAIL\n${r.failures.map((f) => `  - ${f}`).join('\n')}`);
  return lines.join('\n');
}
