/**
 * `npm run bench -- simulator [--sessions 1000,10000] [--rate 1] [--metrics 4] [--lwm2m-rate 0.1]
 *   [--per-send 10] [--warmup-ms 12000] [--windows 5] [--window-ms 3000] [--connects 2000]`
 * How many device sessions one simulator process holds and what it publishes. The broker is a minimal
 * MQTT sink in a CHILD process (simulator/sink.ts), so this process is the simulator alone. For each
 * session count: ramp up, wait until all are connected and registered, then measure several windows
 * and print the median messages/s (per protocol), readings/s and the RSS.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { Benchmark } from '../../infra/cli/bench.js';
import { type FleetStats, startFleet } from '../../simulator/fleet.js';

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? 0 : s[Math.floor(s.length / 2)]!;
};

async function startSinkProcess(): Promise<{ child: ChildProcess; port: number; publishes: () => number }> {
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

export const benchmark: Benchmark = {
  summary: 'simulator: sessions held and publish rate of one process (sink broker in a child process)',
  async run(args) {
    const { values } = parseArgs({
      args,
      options: {
        sessions: { type: 'string', default: '1000,10000' },
        rate: { type: 'string', default: '1' },
        metrics: { type: 'string', default: '4' },
        'lwm2m-rate': { type: 'string', default: '0.1' },
        'per-send': { type: 'string', default: '10' },
        'warmup-ms': { type: 'string', default: '12000' },
        windows: { type: 'string', default: '5' },
        'window-ms': { type: 'string', default: '3000' },
        connects: { type: 'string', default: '2000' },
      },
    });
    const sink = await startSinkProcess();
    const url = `mqtt://127.0.0.1:${sink.port}`;
    process.stdout.write(
      `simulator bench: rate ${values.rate} DDATA/s/device × ${values.metrics} metrics, LwM2M ${values['lwm2m-rate']} Send/s/device × ${values['per-send']} records; node ${process.version}\n`,
    );
    try {
      for (const n of values.sessions.split(',').map(Number)) {
        const t0 = Date.now();
        const fleet = await startFleet({
          url,
          devices: n,
          rate: Number(values.rate),
          metricsPerData: Number(values.metrics),
          lwm2mRate: Number(values['lwm2m-rate']),
          readingsPerSend: Number(values['per-send']),
          connectsPerSecond: Number(values.connects),
          keepalive: 300,
          ndataEveryS: 300,
          seed: 1,
        });
        const ready = await fleet.ready(120_000);
        const rampS = (Date.now() - t0) / 1000;
        // Warm-up: LwM2M Sends start once a bulk is sampled (readings per Send / sampling rate).
        await new Promise((r) => setTimeout(r, Number(values['warmup-ms'])));
        const windows: Array<{ sp: number; lw: number; readings: number; rss: number }> = [];
        let prev: FleetStats = fleet.stats();
        for (let w = 0; w < Number(values.windows); w++) {
          await new Promise((r) => setTimeout(r, Number(values['window-ms'])));
          const s = fleet.stats();
          const dt = (s.elapsedMs - prev.elapsedMs) / 1000;
          windows.push({
            sp: (s.messages.sparkplug - prev.messages.sparkplug) / dt,
            lw: (s.messages.lwm2m - prev.messages.lwm2m) / dt,
            readings:
              (s.readings.sparkplug + s.readings.lwm2m - prev.readings.sparkplug - prev.readings.lwm2m) / dt,
            rss: process.memoryUsage().rss,
          });
          prev = s;
        }
        const s = fleet.stats();
        await fleet.stop();
        process.stdout.write(
          `  sessions ${n}: connected ${s.connected} registered ${s.registered}${ready ? '' : ' (NOT all ready)'} in ${rampS.toFixed(1)} s | ` +
            `median msg/s sparkplug ${Math.round(median(windows.map((w) => w.sp)))} lwm2m ${Math.round(median(windows.map((w) => w.lw)))} | ` +
            `readings/s ${Math.round(median(windows.map((w) => w.readings)))} | RSS ${Math.round(median(windows.map((w) => w.rss)) / 2 ** 20)} MiB | ` +
            `throttled ${s.throttled} dropped ${s.dropped} errors ${s.publishErrors + s.connectFailures}\n`,
        );
        await new Promise((r) => setTimeout(r, 1000));
      }
    } finally {
      sink.child.send('stop');
    }
  },
};
