/**
 * `npm run bench -- simulator [--sessions 10000] [--preset default|bulk50|both] [--runs 3]
 *   [--rate 1[,1.5,...]] [--metrics 4] [--lwm2m-rate 0.1] [--per-send 10]
 *   [--warmup-ms 15000] [--measure-ms 60000] [--connects 2000]`
 *
 * How many device sessions one simulator process holds and what it publishes (issue #5: 10,000
 * sessions and 50,000 readings/s from one process on 2 cores).
 *
 * The broker is NOT in this process: it is a minimal MQTT 3.1.1 sink (simulator/sink.ts: CONNACK,
 * SUBACK, PUBACK, 2.01 to LwM2M Register, nothing routed or stored) in a CHILD process. An in-process
 * Aedes would share the simulator's event loop and dominate the profile; the sink costs the other core
 * a fraction of what Aedes would, so the figures are the simulator's. The sink's own count of PUBLISHes
 * received is printed as a cross-check of the simulator's counts.
 *
 * Each run: start the fleet (ramped at --connects/s), wait until every session is connected and
 * LwM2M-registered, warm up (LwM2M Sends start once a bulk is sampled), then measure ONE window of
 * --measure-ms: messages/s per protocol, readings/s (what the cloud side turns into readings), the
 * offered load (what the configuration asks for), publish errors / connect failures / drops, event-loop
 * lag (p50 / p99 / max) and the peak RSS. A long window matters: a device sends a bulk when K records
 * are buffered, and all devices start within seconds of each other with empty buffers, so their partial
 * bulks stay in step (a breaker samples 7 records a tick: with K = 10 its buffer level repeats every
 * 70 s). A window then starts and ends with systematically different amounts held back, and the LwM2M
 * readings sent in it are a few % off the sampled rate, either way. Both are printed: "sampled" (sent +
 * change in what devices hold) is what the devices produced, "sent" what was acknowledged. After --runs
 * runs of a configuration, the medians are printed.
 *
 * Presets (flags override them; --preset a,b or all):
 *   default  what `dualpath simulate` publishes with no bulk flags: 1 DDATA/s carrying one sample of
 *            every metric of the child device whose turn it is (1-12 by type, 4.375 on average over
 *            the four types) + 0.1 Send/s × 20 records per device: ~6.4 readings/s per device, 63,750
 *            readings/s offered at 10,000 sessions, ~11,000 messages/s.
 *   fixed4   the former bench mix: 1 DDATA/s × 4 metrics + 0.1 Send/s × 10 records per device:
 *            5 readings/s per device, exactly 50,000 readings/s offered at 10,000 sessions.
 *   bulk50   50 metrics per DDATA (1 DDATA/s) and 50 records per Send (0.1 Send/s): an edge node
 *            batching fast samples (each metric with its own timestamp); 550,000 readings/s offered at
 *            10,000 sessions, so the figure is what the process can sample, encode and publish.
 * --rate 1,1.25,1.5 runs each rate in turn (headroom: does the process still deliver what it is asked?).
 */
import { type ChildProcess, fork } from 'node:child_process';
import { loadavg } from 'node:os';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { Benchmark } from '../../infra/cli/bench.js';
import { getDeviceType } from '../../simulator/device-types.js';
import { type FleetStats, startFleet, typeAt } from '../../simulator/fleet.js';

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return 0;
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

/** metrics undefined: one sample of every metric of the child device (the fleet's default). */
const PRESETS: Record<string, { rate: number; metrics?: number; lwm2mRate: number; perSend: number }> = {
  default: { rate: 1, lwm2mRate: 0.1, perSend: 20 },
  fixed4: { rate: 1, metrics: 4, lwm2mRate: 0.1, perSend: 10 },
  bulk50: { rate: 1, metrics: 50, lwm2mRate: 0.1, perSend: 50 },
};

interface Sink {
  child: ChildProcess;
  port: number;
  publishes: () => number;
}

async function startSinkProcess(): Promise<Sink> {
  const path = fileURLToPath(new URL('../../simulator/sink.ts', import.meta.url));
  const child = fork(path, [], {
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  let publishes = 0;
  const port = await new Promise<number>((resolve, reject) => {
    child.once('error', reject);
    child.on('message', (m: { port?: number; counters?: { publishes: number } }) => {
      if (m.port !== undefined) resolve(m.port);
      if (m.counters) publishes = m.counters.publishes;
    });
  });
  return { child, port, publishes: () => publishes };
}

interface RunResult {
  connected: number;
  registered: number;
  ready: boolean;
  rampS: number;
  sp: number;
  lw: number;
  readings: number;
  /** LwM2M records sampled per second (sent + change in the partial bulks devices hold). */
  lwSampled: number;
  lwPublished: number;
  offered: number;
  sinkMsgs: number;
  errors: number;
  connectFailures: number;
  dropped: number;
  throttled: number;
  lagP50: number;
  lagP99: number;
  lagMax: number;
  rssMiB: number;
  heapMiB: number;
  /** 1-minute load average at the end of the window (the machine is shared: context for the figures). */
  load: number;
}

interface Config {
  sessions: number;
  rate: number;
  metrics: number | undefined;
  lwm2mRate: number;
  perSend: number;
  connects: number;
  warmupMs: number;
  measureMs: number;
}

/** The histogram records the sampling timer's whole interval: lag is what exceeds it. */
const LAG_RESOLUTION_MS = 10;
const lagMs = (ns: number) => Math.max(0, ns / 1e6 - LAG_RESOLUTION_MS);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Readings/s the configuration asks for: DDATA rate × metrics (by default every metric of the child
 * device whose turn it is, round robin) + Send rate × records per Send, summed over the fleet's types.
 */
function offered(c: Config): number {
  let total = 0;
  const o = { url: 'mqtt://x', devices: c.sessions, seed: 1 };
  for (let i = 0; i < c.sessions; i++) {
    const type = getDeviceType(typeAt(o, i))!;
    const perChild = type.childDevices.map(
      (d) => type.signals.filter((s) => s.sparkplug?.device === d).length,
    );
    const metrics = c.metrics ?? perChild.reduce((a, b) => a + b, 0) / perChild.length;
    total += c.rate * metrics + c.lwm2mRate * c.perSend;
  }
  return total;
}

async function runOnce(sink: Sink, url: string, c: Config): Promise<RunResult> {
  const t0 = Date.now();
  const fleet = await startFleet({
    url,
    devices: c.sessions,
    rate: c.rate,
    ...(c.metrics === undefined ? {} : { metricsPerData: c.metrics }),
    lwm2mRate: c.lwm2mRate,
    readingsPerSend: c.perSend,
    connectsPerSecond: c.connects,
    keepalive: 300,
    ndataEveryS: 300,
    seed: 1,
  });
  try {
    const ready = await fleet.ready(180_000);
    const rampS = (Date.now() - t0) / 1000;
    await sleep(c.warmupMs);
    const lag = monitorEventLoopDelay({ resolution: LAG_RESOLUTION_MS });
    let rss = 0;
    const rssTimer = setInterval(() => {
      rss = Math.max(rss, process.memoryUsage().rss);
    }, 1000);
    const before: FleetStats = fleet.stats();
    const sinkBefore = sink.publishes();
    lag.enable();
    await sleep(c.measureMs);
    lag.disable();
    clearInterval(rssTimer);
    rss = Math.max(rss, process.memoryUsage().rss);
    const after = fleet.stats();
    const sinkAfter = sink.publishes();
    const dt = (after.elapsedMs - before.elapsedMs) / 1000;
    const delta = (f: (s: FleetStats) => number) => f(after) - f(before);
    return {
      connected: after.connected,
      registered: after.registered,
      ready,
      rampS,
      sp: delta((s) => s.messages.sparkplug) / dt,
      lw: delta((s) => s.messages.lwm2m) / dt,
      readings: delta((s) => s.readings.sparkplug + s.readings.lwm2m) / dt,
      lwPublished: delta((s) => s.readings.lwm2m) / dt,
      lwSampled: delta((s) => s.readings.lwm2m + s.buffered) / dt,
      offered: offered(c),
      // The sink reports every 500 ms: a cross-check, not an exact count.
      sinkMsgs: (sinkAfter - sinkBefore) / dt,
      errors: after.publishErrors,
      connectFailures: after.connectFailures,
      dropped: after.dropped,
      throttled: after.throttled,
      lagP50: lagMs(lag.percentile(50)),
      lagP99: lagMs(lag.percentile(99)),
      lagMax: lagMs(lag.max),
      rssMiB: rss / 2 ** 20,
      heapMiB: process.memoryUsage().heapUsed / 2 ** 20,
      load: loadavg()[0]!,
    };
  } finally {
    await fleet.stop();
  }
}

function line(r: RunResult): string {
  const k = (x: number) => Math.round(x).toLocaleString('en-US');
  return (
    `connected ${r.connected} registered ${r.registered}${r.ready ? '' : ' (NOT all ready)'} | ` +
    `msg/s sparkplug ${k(r.sp)} lwm2m ${k(r.lw)} (sink saw ${k(r.sinkMsgs)}) | ` +
    `readings/s ${k(r.readings)} of ${k(r.offered)} offered (LwM2M records ${k(r.lwPublished)} sent, ${k(r.lwSampled)} sampled) | ` +
    `publish errors ${r.errors} connect failures ${r.connectFailures} dropped ${r.dropped} throttled ${r.throttled} | ` +
    `event-loop lag p50 ${r.lagP50.toFixed(1)} p99 ${r.lagP99.toFixed(1)} max ${r.lagMax.toFixed(0)} ms | ` +
    `RSS ${Math.round(r.rssMiB)} MiB heap ${Math.round(r.heapMiB)} MiB | load ${r.load.toFixed(1)}`
  );
}

export const benchmark: Benchmark = {
  summary: 'simulator: sessions held and publish rate of one process (sink broker in a child process)',
  async run(args) {
    const { values } = parseArgs({
      args,
      options: {
        sessions: { type: 'string', default: '10000' },
        preset: { type: 'string', default: 'default,fixed4' },
        runs: { type: 'string', default: '3' },
        rate: { type: 'string' },
        metrics: { type: 'string' },
        'lwm2m-rate': { type: 'string' },
        'per-send': { type: 'string' },
        'warmup-ms': { type: 'string', default: '15000' },
        'measure-ms': { type: 'string', default: '60000' },
        connects: { type: 'string', default: '2000' },
      },
    });
    const presets: string[] = values.preset === 'all' ? Object.keys(PRESETS) : values.preset.split(',');
    for (const p of presets) {
      if (!(p in PRESETS))
        throw new Error(`--preset must be ${Object.keys(PRESETS).join(', ')} or all (got "${p}")`);
    }
    const runs = Math.max(1, Number(values.runs));
    const sink = await startSinkProcess();
    const url = `mqtt://127.0.0.1:${sink.port}`;
    process.stdout.write(
      `simulator bench: node ${process.version}, ${runs} run(s) per configuration, ${Number(values['measure-ms']) / 1000} s measured after ${Number(values['warmup-ms']) / 1000} s warm-up; sink broker in a child process\n`,
    );
    try {
      for (const preset of presets) {
        const base = PRESETS[preset]!;
        const rates = (values.rate ?? String(base.rate)).split(',').map(Number);
        for (const sessions of values.sessions.split(',').map(Number)) {
          for (const rate of rates) {
            const c: Config = {
              sessions,
              rate,
              metrics: values.metrics !== undefined ? Number(values.metrics) : base.metrics,
              lwm2mRate: Number(values['lwm2m-rate'] ?? base.lwm2mRate),
              perSend: Number(values['per-send'] ?? base.perSend),
              connects: Number(values.connects),
              warmupMs: Number(values['warmup-ms']),
              measureMs: Number(values['measure-ms']),
            };
            process.stdout.write(
              `${preset}: ${sessions} sessions, ${c.rate} DDATA/s × ${c.metrics ?? 'all child'} metrics + ${c.lwm2mRate} Send/s × ${c.perSend} records per device\n`,
            );
            const results: RunResult[] = [];
            for (let i = 0; i < runs; i++) {
              const r = await runOnce(sink, url, c);
              results.push(r);
              process.stdout.write(`  run ${i + 1} (ramp ${r.rampS.toFixed(1)} s): ${line(r)}\n`);
              await sleep(2000);
            }
            const med = Object.fromEntries(
              Object.keys(results[0]!).map((key) => [
                key,
                typeof results[0]![key as keyof RunResult] === 'boolean'
                  ? results.every((r) => r[key as keyof RunResult])
                  : median(results.map((r) => r[key as keyof RunResult] as number)),
              ]),
            ) as unknown as RunResult;
            process.stdout.write(`  median of ${runs}: ${line(med)}\n`);
          }
        }
      }
    } finally {
      sink.child.send('stop');
    }
  },
};
