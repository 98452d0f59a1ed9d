/**
 * `dualpath redrive` (ADR 0017): puts records the event source mapping gave up on back on their stream,
 * for the same ingest functions to process again — idempotently (event ids from the first sequence
 * number, keyed telemetry writes, protocol state never committed for a failed batch).
 *
 *   dualpath redrive [--data-dir DIR]          the local stack's DLQ (dlq.jsonl): the stack is started
 *                                              on DIR, the DLQ redriven and drained, the stack stopped
 *   dualpath redrive --from PATH... [--dry-run] objects of the AWS on-failure archive bucket, downloaded
 *                                              with `aws s3 sync`: put back on the stream each record
 *                                              came from (AWS credentials and region from the env)
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { KinesisClient } from '@aws-sdk/client-kinesis';
import { ValidationError } from '../../functions/core/errors.js';
import { type FailedRecord, parseFailedBatches, redrive } from '../redrive.js';
import type { Command } from './main.js';

const HELP = `usage: dualpath redrive [--data-dir DIR]
       dualpath redrive --from PATH [--from PATH ...] [--dry-run]

Puts failed records back on their stream for the same handlers; safe to repeat (ADR 0017).
  --data-dir DIR   local: redrive the local stack's DLQ (DUALPATH_DATA_DIR, default .dualpath).
                   Stop \`npm start\` first: the stack is started on DIR for the redrive.
  --from PATH      AWS: files or directories synced from the on-failure archive bucket
                   (aws s3 sync s3://<FailureArchiveBucket> ./failed); records go to the stream
                   named in each object. Uses the AWS credentials and region of the environment.
  --dry-run        with --from: parse and count only.
See docs/deploy.md, "Recovery runbook".
`;

/** Every file under the paths (directories recursively), in name order. */
function files(paths: string[]): string[] {
  const out: string[] = [];
  const walk = (p: string) => {
    if (statSync(p).isDirectory()) {
      for (const name of readdirSync(p).sort()) walk(join(p, name));
    } else out.push(p);
  };
  for (const p of paths) walk(resolve(p));
  return out;
}

export const redriveCommand: Command = {
  summary: 'put records the stream gave up on (local DLQ, AWS on-failure archive) back on their stream',
  async run(args) {
    const { values } = parseArgs({
      args,
      options: {
        'data-dir': { type: 'string' },
        from: { type: 'string', multiple: true },
        'dry-run': { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
    });
    if (values.help) {
      process.stdout.write(HELP);
      return 0;
    }
    const out = (line: string) => process.stdout.write(`${line}\n`);
    try {
      if (values.from && values.from.length > 0) {
        if (values['data-dir']) throw new ValidationError('--from and --data-dir exclude each other');
        const records: FailedRecord[] = [];
        const list = files(values.from);
        for (const f of list) for (const r of parseFailedBatches(readFileSync(f, 'utf8'), f)) records.push(r);
        out(`${records.length} records in ${list.length} files`);
        if (values['dry-run'] || records.length === 0) return 0;
        const result = await redrive(records, {
          kinesis: new KinesisClient({}),
          target: (r) => {
            if (!r.streamArn)
              throw new ValidationError('a record without its stream ARN', { field: 'eventSourceARN' });
            return { StreamARN: r.streamArn };
          },
        });
        for (const [stream, n] of Object.entries(result.byStream))
          out(`  ${n} records put back on ${stream}`);
        out('done: the ingest functions process them now (watch the dashboard; see the runbook)');
        return 0;
      }
      if (values['dry-run']) throw new ValidationError('--dry-run needs --from', { field: 'dry-run' });
      const { startLocalStack } = await import('../local/stack.js');
      const dataDir = resolve(values['data-dir'] ?? process.env.DUALPATH_DATA_DIR ?? '.dualpath');
      const stack = await startLocalStack({ dataDir, mqttPort: 0, httpPort: 0, log: out });
      try {
        const before = stack.status();
        const rows = (await stack.store.counts()).readings;
        const { records, files: taken } = await stack.redrive();
        out(`${records} records from ${taken.length} DLQ files put back on the local streams`);
        if (!(await stack.drain(120_000)))
          throw new Error('the local stack did not drain the redrive in 120 s');
        const after = stack.status();
        out(
          `stored ${(await stack.store.counts()).readings - rows} new rows ` +
            `(re-writes absorbed: ${after.duplicates - before.duplicates}), ` +
            `quarantined ${after.quarantined - before.quarantined}, ` +
            `back in the DLQ ${after.dlqRecords - before.dlqRecords}`,
        );
      } finally {
        await stack.stop();
      }
      return 0;
    } catch (error) {
      const e = error as Error;
      process.stderr.write(`dualpath redrive: ${e.message}\n`);
      if (/lock/i.test(e.message))
        process.stderr.write('  (is `npm start` running on this data directory? stop it first)\n');
      return 1;
    }
  },
};
