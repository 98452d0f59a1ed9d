/**
 * The local half of `dualpath redrive` (ADR 0017): the event-source runner's DLQ (`dlq.jsonl` in the
 * data directory, one line per failed batch WITH its records) is put back on the local streams, where
 * the same handlers process it. The file is first renamed (the runner may append new failures to a
 * fresh dlq.jsonl meanwhile); once every record is back on its stream it is kept as
 * `dlq-redriven-<time>.jsonl`. A file whose redrive failed stays `dlq-redriving-*.jsonl` and is taken
 * again by the next redrive.
 */
import { existsSync, readdirSync, readFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import type { KinesisClient } from '@aws-sdk/client-kinesis';
import { ValidationError } from '../../functions/core/errors.js';
import type { StreamKey } from '../pipeline.js';
import { parseFailedBatches, redrive } from '../redrive.js';

export const LOCAL_DLQ_FILE = 'dlq.jsonl';

export async function redriveLocalDlq(o: {
  dataDir: string;
  kinesis: KinesisClient;
  streamNames: Record<StreamKey, string>;
}): Promise<{ records: number; files: string[] }> {
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const dlq = join(o.dataDir, LOCAL_DLQ_FILE);
  if (existsSync(dlq)) renameSync(dlq, join(o.dataDir, `dlq-redriving-${stamp}.jsonl`));
  const files = readdirSync(o.dataDir)
    .filter((f) => /^dlq-redriving-.*\.jsonl$/.test(f))
    .sort();
  let records = 0;
  for (const file of files) {
    const path = join(o.dataDir, file);
    const failed = parseFailedBatches(readFileSync(path, 'utf8'), file);
    const out = await redrive(failed, {
      kinesis: o.kinesis,
      target: (r) => {
        if (!r.stream) throw new ValidationError(`${file}: a record without its stream`, { field: 'stream' });
        return { StreamName: o.streamNames[r.stream] };
      },
    });
    records += out.records;
    renameSync(path, join(o.dataDir, file.replace('dlq-redriving-', 'dlq-redriven-')));
  }
  return { records, files };
}
