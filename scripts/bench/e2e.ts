/**
 * `npm run bench -- e2e [devices] [rate] [seconds] [readingsPerMessage] [--in-process]`: end to end
 * through the local stack — simulated devices publish over MQTT, the broker ACL and rules forward to
 * kinesalite, the event-source runner drives the real handlers into DuckDB and dynalite. Prints
 * sustained readings/s stored, publish → stored latency (p50/p99/max) per message, the stream lag,
 * the efficiency counters the cost model uses, and the accounting after the drain.
 *
 * The fleet runs as a child process (`dualpath simulate`) so it does not share the stack's event loop;
 * `--in-process` runs it in the same process instead (the way `npm start` does).
 * `--ingest-workers=N` runs the ingest handlers in N worker threads (0: on the stack's main thread;
 * default: the stack's, ADR 0026); the busy share of the main thread and of each worker is printed.
 * `--parallelization=N` sets the event source's parallelization factor (concurrent invocations per
 * stream; default: the pipeline's, as in AWS); `--batch-size=N` its batch size (records per invocation).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { Benchmark } from '../../infra/cli/bench.js';
import { type LocalStatus, startLocalStack } from '../../infra/local/stack.js';
import { type FleetStats, startFleet } from '../../simulator/fleet.js';
import { spawnFleet } from '../fleet-process.js';
import { cpuSeconds, emulatorPids } from '../proc-stats.js';

const WARMUP_S = 5;
const WARMUP_MAX_S = 90;

interface FleetHandle {
  /** The fleet's process (this one when it runs in process). */
  pid: number;
  /** Stops the devices (clean: deaths, de-registrations) and returns their final counters. */
  stop(): Promise<FleetStats>;
}

/** What the handlers sent devices and how often they retried, since `from` (or since the start). */
function recoveryOf(to: LocalStatus, from?: LocalStatus): string {
  const d = (k: keyof LocalStatus['recovery']) => to.recovery[k] - (from?.recovery[k] ?? 0);
  const actions = to.actionsPublished - (from?.actionsPublished ?? 0);
  return `${actions.toLocaleString('en-US')} actions, ${d('ingestRetries')} ingest retries, ${d('transientFailures')} transient failures, ${d('streamRetries')} stream retries, ${d('bisections')} bisections`;
}

/** CPU seconds so far of each process, by name. */
const cpuOf = (pids: Record<string, number>): Record<string, number> =>
  Object.fromEntries(Object.entries(pids).map(([k, pid]) => [k, cpuSeconds(pid)]));

/** "ECONNRESET 12, connack timeout 3": the most frequent first. */
const reasons = (r: Record<string, number> | undefined) =>
  Object.entries(r ?? {})
    .sort((a, b) => b[1] - a[1])
    .map(([k, v]) => `${k} ${v}`)
    .join(', ');

export const benchmark: Benchmark = {
  summary: 'end-to-end readings/s and latency through the local stack',
  async run(argv) {
    const inProcess = argv.includes('--in-process');
    const workersArg = argv.find((a) => a.startsWith('--ingest-workers='))?.split('=')[1];
    const ingestWorkers = workersArg === undefined ? undefined : Number(workersArg);
    // --parallelization=N: concurrent invocations per stream (the event source's parallelization factor).
    const parArg = argv.find((a) => a.startsWith('--parallelization='))?.split('=')[1];
    const parallelizationFactor = parArg === undefined ? undefined : Number(parArg);
    // --batch-size=N: records per invocation at most (the event source's batch size).
    const batchArg = argv.find((a) => a.startsWith('--batch-size='))?.split('=')[1];
    const batchSize = batchArg === undefined ? undefined : Number(batchArg);
    const args = argv.filter((a) => !a.startsWith('--'));
    const devices = Number(args[0] ?? 1000);
    const rate = Number(args[1] ?? 1);
    const seconds = Number(args[2] ?? 30);
    const perMessage = Number(args[3] ?? 50);
    const lwm2mRate = rate / 10;
    const dir = mkdtempSync(join(tmpdir(), 'dualpath-e2e-'));
    const stack = await startLocalStack({
      dataDir: dir,
      mqttPort: 0,
      httpPort: 0,
      log: () => {},
      ...(ingestWorkers !== undefined ? { ingestWorkers } : {}),
      ...(parallelizationFactor !== undefined || batchSize !== undefined
        ? {
            eventSource: {
              ...(parallelizationFactor !== undefined ? { parallelizationFactor } : {}),
              ...(batchSize !== undefined ? { batchSize } : {}),
            },
          }
        : {}),
    });
    const url = `mqtt://127.0.0.1:${stack.mqttPort}`;
    const fleetOpts = {
      devices,
      rate,
      lwm2mRate,
      readingsPerMessage: perMessage,
      seed: 7,
      connectsPerSecond: 500,
    };
    let fleet: FleetHandle;
    if (inProcess) {
      const f = await startFleet({ url, ...fleetOpts });
      fleet = {
        pid: process.pid,
        async stop() {
          await f.stop();
          return f.stats();
        },
      };
    } else {
      fleet = spawnFleet([
        `--url=${url}`,
        `--devices=${devices}`,
        `--rate=${rate}`,
        `--lwm2m-rate=${lwm2mRate}`,
        `--readings-per-message=${perMessage}`,
        '--seed=7',
        // The local broker has no IoT Core publish limit; the connect ramp is IoT Core's account
        // quota (500 CONNECT/s): a 10,000-device storm arrives in 20 s, as fast as it could in AWS.
        '--publish-rate=1000',
        '--connects-per-second=500',
      ]);
    }
    // Warm up: the connect storm (births, registrations, auto-registered devices, first state reads)
    // is not the steady state. Wait until every device is connected and the stack has caught up with
    // the storm (lag under 1 s of traffic for 3 s in a row), at most WARMUP_MAX_S.
    const warmStart = Date.now();
    const emu = emulatorPids();
    const pids = {
      stack: process.pid,
      ...(inProcess ? {} : { simulator: fleet.pid }),
      ...(emu.kinesalite ? { kinesalite: emu.kinesalite } : {}),
      ...(emu.dynalite ? { dynalite: emu.dynalite } : {}),
    };
    // The warm-up's CPU: what absorbing the storm cost each process, whatever its duration.
    const warmCpu0 = cpuOf(pids);
    // The lag every 10 s of the warm-up: how large the storm's backlog grew and whether it drained.
    const warmLag: number[] = [];
    for (let i = 1; i <= WARMUP_S; i++) {
      await new Promise((r) => setTimeout(r, 1000));
      if (i % 10 === 0) warmLag.push(stack.status().lag.records);
    }
    for (let calm = 0, i = WARMUP_S; calm < 3 && Date.now() - warmStart < WARMUP_MAX_S * 1000; ) {
      await new Promise((r) => setTimeout(r, 1000));
      const lagNow = stack.status().lag.records;
      if (++i % 10 === 0) warmLag.push(lagNow);
      const all = stack.status().connected >= devices;
      calm = all && lagNow < devices * (rate + lwm2mRate) ? calm + 1 : 0;
    }
    const warmupS = (Date.now() - warmStart) / 1000;
    stack.latency.reset();
    const s0 = stack.status();
    // CPU seconds of each process over the window: the stack's share per reading is the figure that
    // changes with the code, while readings/s also moves with whatever else the machine runs.
    const cpu0 = cpuOf(pids);
    const warmCpu = Object.entries(cpu0).map(([k, sec]) => [k, sec - warmCpu0[k]!] as const);
    const load0 = loadavg()[0]!;
    const elu0 = performance.eventLoopUtilization();
    const workerElu0 = stack.ingestWorkers?.utilization() ?? [];
    const t0 = Date.now();
    const perSecond: number[] = [];
    const lag: number[] = [];
    for (let i = 0; i < seconds; i++) {
      const before = stack.status().readingsStored;
      await new Promise((r) => setTimeout(r, 1000));
      const now = stack.status();
      perSecond.push(now.readingsStored - before);
      lag.push(now.lag.records);
    }
    const s1 = stack.status();
    const mainBusy = performance.eventLoopUtilization(elu0).utilization;
    const workerBusy = (stack.ingestWorkers?.utilization() ?? []).map((e, i) => {
      const before = workerElu0[i];
      return before ? performance.eventLoopUtilization(e, before).utilization : e.utilization;
    });
    const load1 = loadavg()[0]!;
    const elapsed = (Date.now() - t0) / 1000;
    const cpu = Object.entries(pids).map(([k, pid]) => [k, cpuSeconds(pid) - cpu0[k]!] as const);
    const lat = stack.latency.percentiles();
    // A simulator that does not stop cleanly (a loaded machine) still leaves the window's figures.
    const f = await fleet.stop().catch((error: unknown) => {
      process.stderr.write(`simulator: ${(error as Error).message}\n`);
      return undefined;
    });
    const drainStart = Date.now();
    await stack.stop();
    const drainS = (Date.now() - drainStart) / 1000;
    const final = stack.status();
    rmSync(dir, { recursive: true, force: true });
    const sorted = [...perSecond].sort((a, b) => a - b);
    const stored = s1.readingsStored - s0.readingsStored;
    const messages = s1.messages.sparkplug + s1.messages.lwm2m - s0.messages.sparkplug - s0.messages.lwm2m;
    const n = (x: number) => Math.round(x).toLocaleString('en-US');
    const records = s1.recordsForwarded - s0.recordsForwarded;
    const invocations = s1.invocations - s0.invocations;
    const callsSince = (now: Record<string, number>, before: Record<string, number>) =>
      Object.entries(now)
        .map(([op, c]) => [op, c - (before[op] ?? 0)] as const)
        .filter(([, c]) => c > 0)
        .map(([op, c]) => `${op} ${n(c)}`)
        .join(', ') || 'none';
    const dynamo = callsSince(s1.dynamoCalls, s0.dynamoCalls);
    const kinesisCalls = callsSince(s1.kinesisCalls, s0.kinesisCalls);
    const offered = devices * (rate + lwm2mRate) * perMessage;
    const published = f ? f.readings.sparkplug + f.readings.lwm2m : Number.NaN;
    process.stdout.write(
      `${[
        `End to end (local stack), node ${process.version}, fleet ${inProcess ? 'in process' : 'in a child process'}: ${n(devices)} devices × (${rate} DDATA + ${lwm2mRate} Send)/s × ${perMessage} readings/message = ${n(offered)} readings/s offered`,
        `window ${elapsed.toFixed(1)} s after a ${warmupS.toFixed(0)} s warm-up: stored ${n(stored)} readings = ${n(stored / elapsed)} readings/s (median second ${n(sorted[Math.floor(sorted.length / 2)]!)}, min ${n(sorted[0]!)})`,
        `latency publish → stored (messages with readings, n=${n(lat.count)}): p50 ${lat.p50} ms, p99 ${lat.p99} ms, max ${lat.max} ms`,
        `stream lag (records not yet read, sampled each second): first ${n(lag[0]!)}, last ${n(lag.at(-1)!)}, max ${n(Math.max(...lag))}`,
        `efficiency: ${n(messages)} MQTT messages → ${n(records)} Kinesis records, ${(stored / Math.max(1, records)).toFixed(1)} readings per record, ${n(invocations)} handler invocations (${(records / Math.max(1, invocations)).toFixed(0)} records each)`,
        `AWS calls in the window: Kinesis ${kinesisCalls}; DynamoDB ${dynamo}`,
        `AWS calls in the warm-up (the storm): Kinesis ${callsSince(s0.kinesisCalls, {})}; DynamoDB ${callsSince(s0.dynamoCalls, {})}`,
        `CPU in the window (cores busy): ${cpu.map(([k, s]) => `${k} ${(s / elapsed).toFixed(2)}`).join(', ')}; total ${(cpu.reduce((n, [, s]) => n + s, 0) / elapsed).toFixed(2)}; stack ${((cpu.find(([k]) => k === 'stack')![1] / Math.max(1, stored)) * 1e6).toFixed(1)} µs CPU per stored reading`,
        `event source time in the window (per stream: invocations, mean invocation wall ms, share of the window in invocations summed over lanes, in GetRecords waits): ${(
          ['sparkplug', 'lwm2m'] as const
        )
          .map((k) => {
            const a = s0.eventSource[k];
            const b = s1.eventSource[k];
            const inv = b.invocations - a.invocations;
            const ms = b.invocationMs - a.invocationMs;
            return `${k} ${inv}, ${(ms / Math.max(1, inv)).toFixed(0)} ms, ${((100 * ms) / (elapsed * 1000)).toFixed(0)} %, ${((100 * (b.readWaitMs - a.readWaitMs)) / (elapsed * 1000)).toFixed(0)} %`;
          })
          .join('; ')}`,
        `event source: ${parallelizationFactor ?? 'default'} invocations per stream, batch size ${batchSize ?? 'default'}; ingest handlers ${s1.ingestWorkers ? `in ${s1.ingestWorkers.workers} worker thread(s) (${s1.ingestWorkers.crashes} crashes)` : 'on the main thread'}; event loop busy in the window: main ${(mainBusy * 100).toFixed(0)} %${workerBusy.map((u, i) => `, worker ${i + 1} ${(u * 100).toFixed(0)} %`).join('')}`,
        `machine load average (1 min): ${load0.toFixed(1)} at the window's start, ${load1.toFixed(1)} at its end`,
        `warm-up lag (records, every 10 s): ${warmLag.map(n).join(' → ') || '(under 10 s)'}; devices connected at the window's start: ${n(s0.connected)} of ${n(devices)}`,
        `CPU in the warm-up (CPU-seconds over ${warmupS.toFixed(0)} s): ${warmCpu.map(([k, sec]) => `${k} ${sec.toFixed(1)}`).join(', ')}`,
        `lag trend (records, every 10 s): ${lag
          .filter((_, i) => i % 10 === 9 || i === lag.length - 1)
          .map(n)
          .join(' → ')}`,
        `accounting after a ${drainS.toFixed(1)} s drain: devices published ${f ? n(published) : 'unknown'} readings, stored ${n(final.readingsStored)}, duplicates ${n(final.duplicates)}, quarantined ${final.quarantined}, DLQ ${final.dlqRecords}, publish errors ${f?.publishErrors ?? 'unknown'}, dropped ${f?.dropped ?? 'unknown'}`,
        `handler actions published (Sparkplug rebirth requests, LwM2M responses and requests), retries: warm-up ${recoveryOf(s0)}; window ${recoveryOf(s1, s0)}`,
        `device commands received: sparkplug ${f ? n(f.commands.sparkplug) : 'unknown'}, lwm2m ${f ? n(f.commands.lwm2m) : 'unknown'}`,
        `connect failures: ${f ? n(f.connectFailures) : 'unknown'}${f && f.connectFailures > 0 ? ` (${reasons(f.connectFailureReasons)})` : ''}, reconnects ${f ? n(f.reconnects) : 'unknown'}`,
      ].join('\n')}\n`,
    );
  },
};
