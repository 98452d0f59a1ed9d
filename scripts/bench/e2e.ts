/**
 * `npm run bench -- e2e [devices] [rate] [seconds] [readingsPerSend]`: end-to-end through the local
 * stack — simulated devices publish over MQTT, the broker ACL and rules forward to kinesalite, the
 * event-source runner drives the real handlers into DuckDB. Prints sustained readings/s stored and
 * publish → stored latency (p50/p99/max) of live readings, plus the efficiency counters the cost model
 * uses (messages, Kinesis records, invocations, readings per message).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Benchmark } from '../../infra/cli/bench.js';
import { startLocalStack } from '../../infra/local/stack.js';
import { startFleet } from '../../simulator/fleet.js';

export const benchmark: Benchmark = {
  summary: 'end-to-end readings/s and latency through the local stack',
  async run(args) {
    const devices = Number(args[0] ?? 200);
    const rate = Number(args[1] ?? 5);
    const seconds = Number(args[2] ?? 20);
    const perSend = Number(args[3] ?? 50);
    const dir = mkdtempSync(join(tmpdir(), 'dualpath-e2e-'));
    const stack = await startLocalStack({ dataDir: dir, mqttPort: 0, httpPort: 0 });
    const fleet = await startFleet({
      url: `mqtt://127.0.0.1:${stack.mqttPort}`,
      devices,
      rate,
      seed: 7,
      readingsPerSend: perSend,
    });
    // Warm up, then measure a steady window.
    await new Promise((r) => setTimeout(r, 3000));
    stack.latency.reset();
    const s0 = stack.status();
    const t0 = Date.now();
    const samples: number[] = [];
    for (let i = 0; i < seconds; i++) {
      const before = stack.status().readingsStored;
      await new Promise((r) => setTimeout(r, 1000));
      samples.push(stack.status().readingsStored - before);
    }
    const s1 = stack.status();
    const elapsed = (Date.now() - t0) / 1000;
    const lat = stack.latency.percentiles();
    await fleet.stop();
    await stack.stop();
    const f = fleet.stats();
    const final = stack.status();
    rmSync(dir, { recursive: true, force: true });
    samples.sort((a, b) => a - b);
    const stored = s1.readingsStored - s0.readingsStored;
    const messages = s1.messages.sparkplug + s1.messages.lwm2m - s0.messages.sparkplug - s0.messages.lwm2m;
    process.stdout.write(
      `${[
        `End-to-end (local stack), node ${process.version}: ${devices} devices, ${rate} Sparkplug msg/s each (10-11 metrics), LwM2M Send every ${perSend} records`,
        `window ${elapsed.toFixed(1)} s: stored ${stored.toLocaleString('en-US')} readings = ${Math.round(stored / elapsed).toLocaleString('en-US')} readings/s (median second ${samples[Math.floor(samples.length / 2)]!.toLocaleString('en-US')})`,
        `latency publish → stored (live readings, n=${lat.count}): p50 ${lat.p50} ms, p99 ${lat.p99} ms, max ${lat.max} ms`,
        `efficiency: ${messages.toLocaleString('en-US')} MQTT messages = ${messages.toLocaleString('en-US')} Kinesis records, ${(stored / Math.max(1, messages)).toFixed(1)} readings per message`,
        `accounting after drain: published ${(f.readings.sparkplug + f.readings.lwm2m).toLocaleString('en-US')} readings, stored ${final.readingsStored.toLocaleString('en-US')}, quarantined ${final.quarantined}, DLQ ${final.dlqRecords}`,
      ].join('\n')}\n`,
    );
  },
};
