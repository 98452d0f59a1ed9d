/**
 * `npm run bench -- sparkplug [--runs 7] [--ms 400]`: Sparkplug B payload decode/encode throughput on one
 * core for a typical 10-metric DDATA (aliases, datatypes, metric timestamps, seq; Int32/Float/Double/
 * Boolean/String), ours next to npm `sparkplug-payload` (Tahu JS, protobufjs) measured in the same run.
 * Prints the median of the runs (messages/s and metrics/s) and the ratio ours/peer.
 */
import { performance } from 'node:perf_hooks';
import sparkplug from 'sparkplug-payload';
import { decodePayload, encodePayload, type SpPayloadInput } from '../../functions/core/sparkplug/codec.js';
import { DataType } from '../../functions/core/sparkplug/types.js';
import type { Benchmark } from '../../infra/cli/bench.js';

interface PeerCodec {
  encodePayload(p: unknown): Uint8Array;
  decodePayload(b: Uint8Array): { metrics?: unknown[] };
}

const T0 = 1_700_000_000_000;
const KINDS = [
  { datatype: DataType.Int32, peer: 'Int32', value: (i: number) => -1000 * i - 7 },
  { datatype: DataType.Float, peer: 'Float', value: (i: number) => 20.5 + i },
  { datatype: DataType.Double, peer: 'Double', value: (i: number) => 1013.25 + i / 3 },
  { datatype: DataType.Boolean, peer: 'Boolean', value: (i: number) => i % 2 === 0 },
  { datatype: DataType.String, peer: 'String', value: (i: number) => `state-${i}` },
] as const;

/** The typical DDATA: 10 metrics, two of each kind, aliases 1..10, per-metric timestamps, seq. */
export function typicalDdata(): { ours: SpPayloadInput; peer: unknown } {
  const metrics = Array.from({ length: 10 }, (_, i) => {
    const kind = KINDS[i % KINDS.length]!;
    return { i, kind, value: kind.value(i) };
  });
  return {
    ours: {
      timestamp: T0,
      seq: 42,
      metrics: metrics.map(({ i, kind, value }) => ({
        name: `Sensors/Line 1/Metric ${i}`,
        alias: i + 1,
        timestamp: T0 - i,
        datatype: kind.datatype,
        value,
      })),
    },
    peer: {
      timestamp: T0,
      seq: 42,
      metrics: metrics.map(({ i, kind, value }) => ({
        name: `Sensors/Line 1/Metric ${i}`,
        alias: i + 1,
        timestamp: T0 - i,
        type: kind.peer,
        value,
      })),
    },
  };
}

/** Runs `fn` in a loop for about `ms` milliseconds; returns calls per second. */
/**
 * Runs `fn` in a loop for about `ms` milliseconds; returns calls per CPU-second of the process (GC
 * threads included). CPU time, not wall time: on a shared machine a preempted window would otherwise
 * count as slow code.
 */
function rate(fn: () => number, ms: number): number {
  let calls = 0;
  let sink = 0;
  const start = performance.now();
  const cpu0 = process.cpuUsage();
  while (performance.now() - start < ms) {
    for (let k = 0; k < 200; k++) sink += fn();
    calls += 200;
  }
  const cpu = process.cpuUsage(cpu0);
  if (sink === -1) process.stdout.write(''); // keep `sink` observable
  return (calls * 1e6) / (cpu.user + cpu.system);
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

function arg(args: string[], name: string, fallback: number): number {
  const i = args.indexOf(name);
  const v = i >= 0 ? Number(args[i + 1]) : fallback;
  return Number.isFinite(v) && v > 0 ? v : fallback;
}

const fmt = (n: number): string => Math.round(n).toLocaleString('en-US');

export const benchmark: Benchmark = {
  summary: 'Sparkplug B decode/encode throughput vs sparkplug-payload',
  async run(args) {
    const runs = Math.max(5, arg(args, '--runs', 7));
    const ms = arg(args, '--ms', 400);
    const peer = (sparkplug as unknown as { get(ns: string): PeerCodec | null }).get('spBv1.0')!;
    const input = typicalDdata();
    const bytes = encodePayload(input.ours);
    const peerBytes = peer.encodePayload(input.peer);
    const metricsPerMsg = input.ours.metrics!.length;

    // Sanity: both decoders read the same message to the same number of metrics.
    if (
      decodePayload(bytes).metrics.length !== metricsPerMsg ||
      peer.decodePayload(bytes).metrics?.length !== 10
    ) {
      throw new Error('bench payload does not decode to 10 metrics');
    }

    const cases = {
      'decode ours': () => decodePayload(bytes).metrics.length,
      'decode sparkplug-payload': () => peer.decodePayload(bytes).metrics?.length ?? 0,
      'encode ours': () => encodePayload(input.ours).length,
      'encode sparkplug-payload': () => peer.encodePayload(input.peer).length,
    };
    const results: Record<string, number[]> = {};
    for (const [name, fn] of Object.entries(cases)) {
      rate(fn, ms); // warm-up
      results[name] = [];
    }
    for (let r = 0; r < runs; r++) {
      for (const [name, fn] of Object.entries(cases)) results[name]!.push(rate(fn, ms));
    }

    const out = process.stdout;
    out.write(
      `Sparkplug B codec, node ${process.version}, one core, ${runs} runs x ${ms} ms, median, per CPU-second\n` +
        `payload: DDATA, ${metricsPerMsg} metrics (alias+datatype+timestamp; Int32/Float/Double/Boolean/String), ` +
        `seq; ${bytes.length} bytes (ours) / ${peerBytes.length} bytes (peer)\n\n`,
    );
    out.write(`${'case'.padEnd(28)}${'messages/s'.padStart(14)}${'metrics/s'.padStart(16)}\n`);
    const med: Record<string, number> = {};
    for (const name of Object.keys(cases)) {
      med[name] = median(results[name]!);
      out.write(
        `${name.padEnd(28)}${fmt(med[name]!).padStart(14)}${fmt(med[name]! * metricsPerMsg).padStart(16)}\n`,
      );
    }
    // Each run measured ours and the peer back to back: the median of the per-run ratios cancels
    // most of the drift a shared machine adds between runs.
    const ratio = (a: string, b: string): number => median(results[a]!.map((v, i) => v / results[b]![i]!));
    const dec = ratio('decode ours', 'decode sparkplug-payload');
    const enc = ratio('encode ours', 'encode sparkplug-payload');
    out.write(
      `\ndecode ratio ours/sparkplug-payload: ${dec.toFixed(2)}x (median of ${runs} paired runs; target >= 2.5x)\n`,
    );
    out.write(
      `encode ratio ours/sparkplug-payload: ${enc.toFixed(2)}x (median of ${runs} paired runs; target >= 1.5x)\n`,
    );
  },
};
