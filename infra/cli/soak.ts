/**
 * `dualpath soak [--devices N] [--rate R] [--readings-per-message K] [--minutes M] [--interval S]
 * [--warmup S] [--json FILE]` (`npm run soak`): the local stack under a steady simulated fleet for
 * minutes (scripts/soak.ts); prints a sample line every interval, then a trend verdict per series.
 * Exits 1 if lag or memory keeps growing, or if anything published was not stored exactly once.
 */
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { formatResult, runSoak } from '../../scripts/soak.js';
import type { Command } from './main.js';

const HELP = `usage: dualpath soak [options]

  --devices N               simulated devices (default 150: 8,250 readings/s with the defaults below)
  --rate R                  Sparkplug DDATA per device per second; LwM2M Sends at R/10 (default 1)
  --readings-per-message K  readings per DDATA and per Send (default 50)
  --minutes M               length of the run (default 10)
  --interval S              seconds between samples (default 10)
  --warmup S                seconds left out of the verdicts (default 20 % of the run, at least 30)
  --json FILE               also write the samples and verdicts to FILE

Exits 1 if stream lag, latency, event-loop delay or memory keeps growing after the warm-up, or if
the readings published and stored differ.
`;

export const soakCommand: Command = {
  summary: 'soak run of the local stack: memory and lag over time, exit 1 if they keep growing',
  async run(args) {
    const { values } = parseArgs({
      args,
      options: {
        devices: { type: 'string' },
        rate: { type: 'string' },
        'readings-per-message': { type: 'string' },
        minutes: { type: 'string' },
        interval: { type: 'string' },
        warmup: { type: 'string' },
        json: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
    });
    if (values.help) {
      process.stdout.write(HELP);
      return 0;
    }
    const devices = Number(values.devices ?? 150);
    const rate = Number(values.rate ?? 1);
    const readingsPerMessage = Number(values['readings-per-message'] ?? 50);
    const seconds = Number(values.minutes ?? 10) * 60;
    const interval = Number(values.interval ?? 10);
    const warmup = values.warmup === undefined ? undefined : Number(values.warmup);
    const bad = (name: string) => {
      process.stderr.write(`dualpath soak: invalid --${name}\n${HELP}`);
      return 2;
    };
    if (!Number.isInteger(devices) || devices < 1) return bad('devices');
    if (!(rate > 0)) return bad('rate');
    if (!Number.isInteger(readingsPerMessage) || readingsPerMessage < 1) return bad('readings-per-message');
    if (!(seconds > 0)) return bad('minutes');
    if (!(interval > 0) || interval > seconds) return bad('interval');
    if (warmup !== undefined && !(warmup >= 0 && warmup < seconds)) return bad('warmup');
    const result = await runSoak({
      devices,
      rate,
      readingsPerMessage,
      seconds,
      interval,
      ...(warmup !== undefined ? { warmup } : {}),
      log: (line) => process.stdout.write(`${line}\n`),
    });
    process.stdout.write(`${formatResult(result)}\n`);
    if (values.json) writeFileSync(values.json, `${JSON.stringify(result, null, 2)}\n`);
    return result.ok ? 0 : 1;
  },
};
