/**
 * `dualpath faults [--devices N] [--seconds S] [--seed N] [--only NAME]` (`npm run faults`): runs a
 * simulated fleet through the local stack once per fault scenario (scripts/faults.ts) — store throttling
 * and timeouts, DynamoDB errors, handler crashes mid-batch, event-source runners restarted, the broker
 * restarted, and all of them at once — drains, and prints the exact counts. Exits 1 unless, in every
 * scenario, rows stored == readings the broker accepted, no duplicate rows, nothing quarantined and
 * nothing in the DLQ.
 */
import { parseArgs } from 'node:util';
import { runFaults, SCENARIOS } from '../../scripts/faults.js';
import type { Command } from './main.js';

const HELP = `usage: dualpath faults [--devices N] [--seconds S] [--seed N] [--only NAME]

Scenarios: ${SCENARIOS.map((s) => s.name).join('; ')}.
Defaults: 20 devices, 15 s of publishing per scenario. --only runs the scenarios whose name contains NAME.
`;

export const faultsCommand: Command = {
  summary: 'fault-injection runs through the local stack with exact counts (exit 1 on any loss)',
  async run(args) {
    const { values } = parseArgs({
      args,
      options: {
        devices: { type: 'string' },
        seconds: { type: 'string' },
        seed: { type: 'string' },
        only: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
    });
    if (values.help) {
      process.stdout.write(HELP);
      return 0;
    }
    const devices = Number(values.devices ?? 20);
    const seconds = Number(values.seconds ?? 15);
    const seed = Number(values.seed ?? 1);
    if (!Number.isInteger(devices) || devices < 1 || !(seconds > 0) || !Number.isInteger(seed)) {
      process.stderr.write(HELP);
      return 2;
    }
    const ok = await runFaults({
      devices,
      seconds,
      seed,
      ...(values.only ? { only: values.only } : {}),
      log: (line) => process.stderr.write(`${line}\n`),
    });
    return ok ? 0 : 1;
  },
};
