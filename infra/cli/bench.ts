/**
 * `dualpath bench <name>` (= `npm run bench -- <name>`): runs a benchmark script from scripts/bench and
 * prints its figures. Benchmarks are never timed assertions in tests.
 */
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Command } from './main.js';

export interface Benchmark {
  summary: string;
  run(args: string[]): Promise<void>;
}

const dir = fileURLToPath(new URL('../../scripts/bench/', import.meta.url));

function available(): string[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.ts'))
    .map((f) => f.slice(0, -3))
    .sort();
}

export const benchCommand: Command = {
  summary: 'run a benchmark (sparkplug, lwm2m, ingest, e2e, simulator, anomaly, coldstart, ...)',
  async run(args) {
    const [name, ...rest] = args;
    const names = available();
    if (name === undefined || name === '--help') {
      process.stdout.write(`usage: dualpath bench <${names.join('|')}> [options]\n`);
      return name === undefined ? 1 : 0;
    }
    if (!names.includes(name)) {
      process.stderr.write(`unknown benchmark "${name}"; available: ${names.join(', ')}\n`);
      return 2;
    }
    const mod = (await import(new URL(`../../scripts/bench/${name}.ts`, import.meta.url).href)) as {
      benchmark: Benchmark;
    };
    await mod.benchmark.run(rest);
    return 0;
  },
};
