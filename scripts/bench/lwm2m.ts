/**
 * `npm run bench -- lwm2m [--runs 7] [--ms 400] [--records 50]`: LwM2M codec throughput on one core.
 * The full decode path of the ingest handler for a Send (op 24) carrying a multi-record SenML pack:
 * decodeMessage (binding envelope, CBOR) → decodeContent (SenML resolution to ResolvedRecord[]),
 * for the same records as SenML CBOR (112), SenML JSON (110) and LwM2M CBOR (11544); plus encode.
 * Prints message sizes and the median of the runs in messages/s and readings/s.
 */
import { performance } from 'node:perf_hooks';
import { decodeContent } from '../../functions/core/lwm2m/content.js';
import { encodeLwm2mCbor } from '../../functions/core/lwm2m/lwm2m-cbor.js';
import {
  ContentFormat,
  decodeMessage,
  encodeMessage,
  Operation,
} from '../../functions/core/lwm2m/message.js';
import { compressRecords, encodeSenml, type SenmlValue } from '../../functions/core/senml/index.js';
import type { Benchmark } from '../../infra/cli/bench.js';

const T0 = 1_700_000_000_000;
const RECEIVED_AT = T0 + 60_000;

/**
 * A typical bulk Send: 5 sensors (temperature, humidity, voltage, current, power; instance 0 each),
 * `records / 5` stored samples of each, 10 s apart, float values; bn/bt factored out by compressRecords.
 */
export function sendRecords(records: number): { name: string; time: number; value: SenmlValue }[] {
  const objects = [3303, 3304, 3316, 3317, 3328];
  return Array.from({ length: records }, (_, i) => {
    const obj = objects[i % objects.length]!;
    const sample = Math.floor(i / objects.length);
    return {
      name: `/${obj}/0/5700`,
      time: T0 + sample * 10_000,
      value: { kind: 'v' as const, value: Math.round((20 + obj / 1000 + Math.sin(i) * 3) * 100) / 100 },
    };
  });
}

function rate(fn: () => number, ms: number): number {
  let calls = 0;
  let sink = 0;
  const start = performance.now();
  let now = start;
  while (now - start < ms) {
    for (let k = 0; k < 50; k++) sink += fn();
    calls += 50;
    now = performance.now();
  }
  if (sink === -1) process.stdout.write('');
  return (calls * 1000) / (now - start);
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
  summary: 'LwM2M Send decode (message + SenML CBOR/JSON, LwM2M CBOR) throughput in readings/s',
  async run(args) {
    const runs = Math.max(5, arg(args, '--runs', 7));
    const ms = arg(args, '--ms', 400);
    const n = arg(args, '--records', 50);
    const records = sendRecords(n);
    const compressed = compressRecords(records);
    const send = (ct: number, payload: Uint8Array): Uint8Array =>
      encodeMessage({ operation: Operation.Send, token: 4711, contentFormat: ct, payload });
    const senmlCbor = encodeSenml(compressed, 112);
    const senmlJson = encodeSenml(compressed, 110);
    // LwM2M CBOR carries no time and one value per path: the latest sample of each sensor.
    const latest = [...new Map(records.map((r) => [r.name, r])).values()];
    const lwm2mCbor = encodeLwm2mCbor(latest);
    const messages = {
      'SenML CBOR (112)': {
        bytes: send(ContentFormat.SenmlCbor, senmlCbor),
        payload: senmlCbor,
        readings: n,
      },
      'SenML JSON (110)': {
        bytes: send(ContentFormat.SenmlJson, senmlJson),
        payload: senmlJson,
        readings: n,
      },
      'LwM2M CBOR (11544)': {
        bytes: send(ContentFormat.Lwm2mCbor, lwm2mCbor),
        payload: lwm2mCbor,
        readings: latest.length,
      },
    };

    const decode = (bytes: Uint8Array): number => {
      const msg = decodeMessage(bytes);
      return decodeContent(msg.payload!, msg.contentFormat, { receivedAt: RECEIVED_AT }).length;
    };
    // Sanity: every message decodes to its readings, with the right times.
    for (const [name, m] of Object.entries(messages)) {
      if (decode(m.bytes) !== m.readings)
        throw new Error(`${name} does not decode to ${m.readings} readings`);
    }
    const first = decodeContent(senmlCbor, 112, { receivedAt: RECEIVED_AT });
    if (first[n - 1]!.time !== records[n - 1]!.time || first[0]!.name !== records[0]!.name) {
      throw new Error('SenML CBOR bench payload does not resolve to its records');
    }

    const cases: Record<string, { fn: () => number; readings: number }> = {};
    for (const [name, m] of Object.entries(messages)) {
      cases[`decode ${name}`] = { fn: () => decode(m.bytes), readings: m.readings };
    }
    cases['encode SenML CBOR (compress+encode+message)'] = {
      fn: () => send(112, encodeSenml(compressRecords(records), 112)).length,
      readings: n,
    };
    const results: Record<string, number[]> = {};
    for (const [name, c] of Object.entries(cases)) {
      rate(c.fn, ms);
      results[name] = [];
    }
    for (let r = 0; r < runs; r++)
      for (const [name, c] of Object.entries(cases)) results[name]!.push(rate(c.fn, ms));

    const out = process.stdout;
    out.write(`LwM2M codec, node ${process.version}, one core, ${runs} runs x ${ms} ms, median\n`);
    out.write(`Send (op 24) with ${n} float readings (5 sensors x ${n / 5} stored samples, bn/bt/t)\n\n`);
    out.write(
      `${'message'.padEnd(22)}${'payload B'.padStart(11)}${'message B'.padStart(11)}${'B/reading'.padStart(11)}\n`,
    );
    for (const [name, m] of Object.entries(messages)) {
      out.write(
        `${name.padEnd(22)}${String(m.payload.length).padStart(11)}${String(m.bytes.length).padStart(11)}` +
          `${(m.bytes.length / m.readings).toFixed(1).padStart(11)}\n`,
      );
    }
    out.write(`\n${'case'.padEnd(46)}${'messages/s'.padStart(13)}${'readings/s'.padStart(15)}\n`);
    for (const [name, c] of Object.entries(cases)) {
      const med = median(results[name]!);
      out.write(`${name.padEnd(46)}${fmt(med).padStart(13)}${fmt(med * c.readings).padStart(15)}\n`);
    }
    out.write(
      '\ntarget: SenML CBOR decode well above 1,000,000 readings/s (ingest handler budget per core)\n',
    );
  },
};
