/**
 * `npm run bench -- ingest`: handler throughput on one core, warm cache, store mocked — a 10,000-record
 * Kinesis batch per protocol through the function its composition root builds (envelope → decode →
 * protocol state (the host's write-behind cache over an in-memory port instead of DynamoDB) → enrich →
 * store port).
 * Prints readings/s, median of several runs.
 */

import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { InMemoryEventLog } from '../../functions/core/events.js';
import type { IngestRecord } from '../../functions/core/ingest.js';
import { ContentFormat, encodeMessage, Operation } from '../../functions/core/lwm2m/message.js';
import {
  InMemoryPendingRequestStore,
  InMemoryRegistrationStore,
} from '../../functions/core/lwm2m/server/state.js';
import type { Protocol } from '../../functions/core/reading.js';
import { InMemoryRegistry } from '../../functions/core/registry-memory.js';
import { compressRecords, encodeSenml } from '../../functions/core/senml/index.js';
import { encodePayload } from '../../functions/core/sparkplug/codec.js';
import { InMemorySparkplugStateStore } from '../../functions/core/sparkplug/host/state.js';
import { DataType } from '../../functions/core/sparkplug/types.js';
import { composeLwm2mIngest } from '../../functions/lwm2m-ingest/compose.js';
import { composeSparkplugIngest } from '../../functions/sparkplug-ingest/compose.js';
import type { Benchmark } from '../../infra/cli/bench.js';

const T0 = 1_700_000_000_000;
const DEVICES = 100;
const RECORDS = 10_000;

const envelope = (topic: string, payload: Uint8Array, receivedAt: number, clientId: string) =>
  Buffer.from(
    JSON.stringify({ payload: Buffer.from(payload).toString('base64'), topic, receivedAt, clientId }),
  );

function sparkplugBatch(): { births: IngestRecord[]; batch: IngestRecord[] } {
  const types = [
    DataType.Int32,
    DataType.Float,
    DataType.Double,
    DataType.Boolean,
    DataType.Int16,
    DataType.Double,
    DataType.Float,
    DataType.Int64,
    DataType.UInt32,
    DataType.Double,
  ];
  const births: IngestRecord[] = [];
  const batch: IngestRecord[] = [];
  for (let d = 0; d < DEVICES; d++) {
    const node = `node-${d}`;
    births.push({
      sequenceNumber: String(d).padStart(12, '0'),
      partitionKey: `g/${node}`,
      data: envelope(
        `spBv1.0/g/NBIRTH/${node}`,
        encodePayload({
          timestamp: T0,
          seq: 0,
          metrics: [
            { name: 'bdSeq', datatype: DataType.Int64, value: 0 },
            ...types.map((t, i) => ({
              name: `m${i}`,
              alias: i + 1,
              datatype: t,
              value: t === DataType.Boolean ? true : 1,
              timestamp: T0,
            })),
          ],
        }),
        T0,
        node,
      ),
    });
  }
  for (let i = 0; i < RECORDS; i++) {
    const d = i % DEVICES;
    const n = Math.floor(i / DEVICES);
    const node = `node-${d}`;
    batch.push({
      sequenceNumber: String(1_000_000 + i).padStart(12, '0'),
      partitionKey: `g/${node}`,
      data: envelope(
        `spBv1.0/g/NDATA/${node}`,
        encodePayload({
          timestamp: T0 + n * 1000,
          seq: (n + 1) % 256,
          metrics: types.map((t, k) => ({
            alias: k + 1,
            datatype: t,
            value: t === DataType.Boolean ? k % 2 === 0 : (n * 7 + k) % 1000,
            omitDatatype: true,
            timestamp: T0 + n * 1000,
          })),
        }),
        T0 + n * 1000,
        node,
      ),
    });
  }
  return { births, batch };
}

function lwm2mBatch(): { births: IngestRecord[]; batch: IngestRecord[] } {
  const births: IngestRecord[] = [];
  const batch: IngestRecord[] = [];
  for (let d = 0; d < DEVICES; d++) {
    const ep = `ep-${d}`;
    births.push({
      sequenceNumber: String(d).padStart(12, '0'),
      partitionKey: ep,
      data: envelope(
        `lwm2m/rd/${ep}`,
        encodeMessage({
          operation: Operation.Register,
          token: 1,
          ep,
          lifetime: 0,
          version: '1.2',
          payload: new TextEncoder().encode('</3303/0>'),
        }),
        T0,
        ep,
      ),
    });
  }
  for (let i = 0; i < RECORDS; i++) {
    const d = i % DEVICES;
    const ep = `ep-${d}`;
    const base = T0 + Math.floor(i / DEVICES) * 50_000;
    const records = Array.from({ length: 50 }, (_, k) => ({
      name: '/3303/0/5700',
      time: base + k * 1000,
      value: { kind: 'v' as const, value: 20 + (k % 10) / 10 },
    }));
    batch.push({
      sequenceNumber: String(1_000_000 + i).padStart(12, '0'),
      partitionKey: ep,
      data: envelope(
        `lwm2m/rd/${ep}`,
        encodeMessage({
          operation: Operation.Send,
          token: i + 2,
          contentFormat: ContentFormat.SenmlCbor,
          payload: encodeSenml(compressRecords(records), 112),
        }),
        base + 60_000,
        ep,
      ),
    });
  }
  return { births, batch };
}

async function measure(
  protocol: Protocol,
  runs: number,
): Promise<{ readings: number; medianMs: number; rates: number[]; cpuRates: number[] }> {
  const { births, batch } = protocol === 'sparkplug' ? sparkplugBatch() : lwm2mBatch();
  const rates: number[] = [];
  let readings = 0;
  const times: number[] = [];
  const cpuRates: number[] = [];
  for (let r = 0; r < runs; r++) {
    const registry = new InMemoryRegistry();
    await registry.putDeviceType({ id: 'bench', name: 'bench', capabilities: [], units: {} });
    // The function as the Lambda builds it (its composition root), over in-memory ports: the host's
    // write-behind cache sits over an in-memory state port instead of DynamoDB.
    const ports = {
      registry,
      events: new InMemoryEventLog(1000),
      store: { write: async (rs: unknown[]) => ({ written: rs.length, duplicates: 0, rejected: [] }) },
      publisher: { publish: async () => {} },
      clock: () => T0,
      logger: new Logger({ serviceName: 'bench', logLevel: 'ERROR' }),
      metrics: new Metrics({ namespace: 'bench' }),
    };
    const settings = { autoRegister: true, defaultDeviceType: 'bench', concurrency: 8 };
    const fn =
      protocol === 'sparkplug'
        ? composeSparkplugIngest({ ...ports, sparkplugState: new InMemorySparkplugStateStore() }, settings)
        : composeLwm2mIngest(
            {
              ...ports,
              registrations: new InMemoryRegistrationStore(),
              pending: new InMemoryPendingRequestStore(),
            },
            settings,
          );
    await fn.processRecords(births); // births + warm cache (not timed)
    const t0 = performance.now();
    const c0 = process.cpuUsage();
    const out = await fn.processRecords(batch);
    const cpu = process.cpuUsage(c0);
    const ms = performance.now() - t0;
    readings = out.stats.readingsDecoded;
    times.push(ms);
    rates.push((readings / ms) * 1000);
    // CPU time of the process (all its threads, GC helpers included): robust on a shared machine.
    cpuRates.push(readings / ((cpu.user + cpu.system) / 1e6));
  }
  times.sort((a, b) => a - b);
  rates.sort((a, b) => a - b);
  cpuRates.sort((a, b) => a - b);
  return { readings, medianMs: times[Math.floor(runs / 2)]!, rates, cpuRates };
}

export const benchmark: Benchmark = {
  summary: 'ingest handler throughput per protocol (10,000-record batch, warm cache, store mocked)',
  async run(args) {
    const runs = Number(args[0] ?? 7);
    process.stdout.write(
      `Ingest path (processBatch), node ${process.version}, one core, ${RECORDS}-record batch, median of ${runs} runs\n`,
    );
    process.stdout.write(
      `${'protocol'.padEnd(12)}${'readings/batch'.padStart(16)}${'batch ms'.padStart(12)}${'readings/s'.padStart(16)}${'records/s'.padStart(14)}${'readings/cpu-s'.padStart(18)}\n`,
    );
    const only = args[1];
    for (const protocol of ['sparkplug', 'lwm2m'] as const) {
      if (only && only !== protocol) continue;
      const { readings, medianMs, rates, cpuRates } = await measure(protocol, runs);
      const cpuMedian = cpuRates[Math.floor(cpuRates.length / 2)]!;
      const median = rates[Math.floor(rates.length / 2)]!;
      process.stdout.write(
        `${protocol.padEnd(12)}${readings.toLocaleString('en-US').padStart(16)}${medianMs.toFixed(1).padStart(12)}${Math.round(median).toLocaleString('en-US').padStart(16)}${Math.round(
          (RECORDS / medianMs) * 1000,
        )
          .toLocaleString('en-US')
          .padStart(14)}${Math.round(cpuMedian).toLocaleString('en-US').padStart(18)}\n`,
      );
    }
    process.stdout.write('target: >= 1,000,000 readings/s per core\n');
  },
};
