/**
 * `npm run bench -- local-pipeline [--messages N] [--clients C] [--runs R]`: throughput of the local
 * plumbing without the ingest handlers — (1) the rule engine alone, (2) MQTT QoS 1 publishes through
 * Aedes → ACL → rules → batched PutRecords into kinesalite (a PUBACK means the record is stored), and
 * (3) the event-source runner reading those records back into a no-op handler. Medians of R runs.
 */
import { performance } from 'node:perf_hooks';
import mqtt from 'mqtt';
import type { Benchmark } from '../../infra/cli/bench.js';
import { createBroker } from '../../infra/local/broker.js';
import { startEmulators } from '../../infra/local/emulators.js';
import { EventSourceRunner } from '../../infra/local/event-source.js';
import { createRuleEngine } from '../../infra/local/rules.js';
import { pipeline } from '../../infra/pipeline.js';
import { intOption, median } from '../bench-args.js';

export const benchmark: Benchmark = {
  summary: 'local plumbing: rule engine, MQTT → rules → kinesalite, event-source runner read-back',
  async run(args) {
    const messages = intOption(args, 'messages', 20_000);
    const clients = intOption(args, 'clients', 20);
    const runs = intOption(args, 'runs', 3);
    const payload = Buffer.alloc(200, 7);

    // (1) rule engine only
    const engine = createRuleEngine(pipeline.rules);
    const ruleRates: number[] = [];
    for (let r = 0; r < runs; r++) {
      const t = performance.now();
      for (let i = 0; i < 200_000; i++)
        engine.evaluate(`spBv1.0/g/DDATA/node-${i % 100}/d`, payload, `node-${i % 100}`);
      ruleRates.push(200_000 / ((performance.now() - t) / 1000));
    }

    const ingestRates: number[] = [];
    const readRates: number[] = [];
    for (let r = 0; r < runs; r++) {
      const emu = await startEmulators({ env: {} });
      const broker = await createBroker({
        port: 0,
        rules: pipeline.rules,
        kinesis: emu.kinesis,
        streamNames: emu.streamNames,
        // Off, as `start --publish-limit 0`: this measures the plumbing's capacity, and IoT Core's
        // 100 publishes/s per connection (on by default) disconnects a client sending flat out.
        publishLimit: false,
      });
      const conns = await Promise.all(
        Array.from({ length: clients }, async (_, c) => {
          const m = mqtt.connect(broker.url, { clientId: `node-${c}`, reconnectPeriod: 0 });
          await new Promise((res) => m.once('connect', res));
          return m;
        }),
      );
      // (2) publish: each client sends its share, QoS 1, up to 50 in flight per client.
      const per = Math.ceil(messages / clients);
      const t0 = performance.now();
      const publishAll = async (m: mqtt.MqttClient, c: number) => {
        for (let i = 0; i < per; i += 50) {
          const n = Math.min(50, per - i);
          await Promise.all(
            Array.from({ length: n }, () =>
              m.publishAsync(`spBv1.0/bench/NDATA/node-${c}`, payload, { qos: 1 }),
            ),
          );
        }
      };
      await Promise.all(
        conns.map(
          (m, c) =>
            // A refused publish closes the connection, and mqtt.js keeps the QoS 1 publishes in flight
            // for a reconnect that reconnectPeriod 0 never makes: fail instead of waiting forever.
            new Promise<void>((resolve, reject) => {
              const closed = () =>
                reject(new Error(`node-${c}: connection closed (${broker.counters.refused} refused)`));
              m.once('close', closed);
              publishAll(m, c).then(() => {
                m.off('close', closed);
                resolve();
              }, reject);
            }),
        ),
      );
      const t1 = performance.now();
      ingestRates.push((per * clients) / ((t1 - t0) / 1000));

      // (3) read back with the pipeline's settings and a no-op handler.
      const runner = new EventSourceRunner({
        kinesis: emu.kinesis,
        streamName: emu.streamNames.sparkplug,
        functionName: 'bench',
        settings: { ...pipeline.functions.sparkplugIngest.eventSource, maxBatchingWindowSeconds: 0 },
        handler: async () => {},
        idleMs: 5,
      });
      const t2 = performance.now();
      await runner.start();
      while (runner.counters.recordsDone < per * clients) await new Promise((res) => setTimeout(res, 5));
      readRates.push((per * clients) / ((performance.now() - t2) / 1000));
      await runner.stop();
      for (const m of conns) m.end(true);
      await broker.close();
      await emu.stop();
    }

    const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
    process.stdout.write(
      [
        `rule engine: ${fmt(median(ruleRates))} messages/s (median of ${runs})`,
        `MQTT QoS1 → ACL → rules → PutRecords → kinesalite: ${fmt(median(ingestRates))} records/s ` +
          `(${messages} messages of ${payload.length} B from ${clients} clients; median of ${runs}: ${ingestRates.map(fmt).join(', ')})`,
        `event-source runner read-back (batch 500, PF 2, no-op handler): ${fmt(median(readRates))} records/s ` +
          `(median of ${runs}: ${readRates.map(fmt).join(', ')})`,
        '',
      ].join('\n'),
    );
  },
};
