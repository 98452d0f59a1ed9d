/**
 * `npm run bench -- capacity`: the AWS capacity plan of docs/benchmarks.md ("Capacity plan") from the
 * cost model's inputs (per-reading CPU, records per invocation, request counts) and quotas
 * (infra/cost/capacity.ts) — no measurement of its own; prints the Markdown table.
 */
import type { Benchmark } from '../../infra/cli/bench.js';
import { capacityTable } from '../../infra/cost/capacity.js';

export const benchmark: Benchmark = {
  summary: 'AWS capacity plan for 10k / 100k / 1M devices (shards, concurrency, quotas, cost)',
  async run() {
    process.stdout.write(capacityTable());
  },
};
