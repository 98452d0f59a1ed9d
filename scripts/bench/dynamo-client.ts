/**
 * `npm run bench -- dynamo-client [--calls 3000] [--rounds 5] [--concurrency 16]`: the client-side CPU of
 * one DynamoDB call from the local stack to its embedded dynalite (a child process, as in the stack),
 * through the SDK's document client (unsigned, as the stack configured it before ADR 0027 amendment 1)
 * and through the wire client that replaced it (infra/local/dynamo-wire.ts). Per round and client:
 * `calls` conditional PutItem of a node-state-sized item, the same number of GetItem, and BatchGetItem of
 * 100 keys (calls / 100 of them), `concurrency` in flight; the two clients alternate within each round.
 * Prints this process's CPU per call (µs; dynalite's own CPU is in its process), medians over the rounds
 * after one warm-up round, and the ratio SDK / wire.
 */
import { BatchGetCommand, type DynamoDBDocumentClient, GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import type { Benchmark } from '../../infra/cli/bench.js';
import { createDynamoClients } from '../../infra/local/aws-clients.js';
import { wireDocumentClient } from '../../infra/local/dynamo-wire.js';
import { startEmulators } from '../../infra/local/emulators.js';
import { intOption, median } from '../bench-args.js';

/** A Sparkplug node state of the size the storm writes (a few aliases and metric definitions). */
function nodeItem(pk: string) {
  return {
    pk,
    sk: 'NODE',
    version: 1,
    online: true,
    seq: 3,
    bdSeq: 7,
    birthAt: 1_765_000_000_000,
    aliases: Object.fromEntries(Array.from({ length: 10 }, (_, i) => [`m${i}`, i + 1])),
    metrics: Array.from({ length: 10 }, (_, i) => ({ name: `m${i}`, alias: i + 1, type: 10 })),
  };
}

/** CPU µs of this process per call of `f`, `concurrency` at a time. */
async function cpuPerCall(calls: number, concurrency: number, f: (i: number) => Promise<unknown>) {
  const c0 = process.cpuUsage();
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < calls) await f(next++);
    }),
  );
  const c = process.cpuUsage(c0);
  return (c.user + c.system) / calls;
}

export const benchmark: Benchmark = {
  summary: "client CPU per DynamoDB call to the local stack's dynalite: SDK document client vs wire client",
  async run(args) {
    const calls = intOption(args, 'calls', 3000);
    const rounds = intOption(args, 'rounds', 5);
    const concurrency = intOption(args, 'concurrency', 16);
    const emu = await startEmulators({ env: {} });
    const { client, doc: sdk } = createDynamoClients({ endpoint: emu.endpoints.dynamodb, unsigned: true });
    const wire = wireDocumentClient({ endpoint: emu.endpoints.dynamodb, sdk, region: 'us-east-1' });
    const TableName = emu.tableNames.state;
    const clients: Array<[string, DynamoDBDocumentClient]> = [
      ['sdk', sdk],
      ['wire', wire.doc],
    ];
    const ops = ['PutItem', 'GetItem', 'BatchGetItem (100 keys)'] as const;
    const figures: Record<string, number[]> = {};
    try {
      for (let round = 0; round <= rounds; round++) {
        for (const [name, doc] of clients) {
          const prefix = `${name}-${round}-`;
          const put = await cpuPerCall(calls, concurrency, (i) =>
            doc.send(
              new PutCommand({
                TableName,
                Item: nodeItem(`${prefix}${i}`),
                ConditionExpression: 'attribute_not_exists(pk)',
              }),
            ),
          );
          const get = await cpuPerCall(calls, concurrency, (i) =>
            doc.send(new GetCommand({ TableName, Key: { pk: `${prefix}${i}`, sk: 'NODE' } })),
          );
          const batches = Math.max(1, Math.floor(calls / 100));
          const batch = await cpuPerCall(batches, Math.min(4, concurrency), (b) =>
            doc.send(
              new BatchGetCommand({
                RequestItems: {
                  [TableName]: {
                    Keys: Array.from({ length: 100 }, (_, k) => ({
                      pk: `${prefix}${b * 100 + k}`,
                      sk: 'NODE',
                    })),
                  },
                },
              }),
            ),
          );
          if (round === 0) continue; // warm-up
          for (const [op, us] of [
            [ops[0], put],
            [ops[1], get],
            [ops[2], batch],
          ] as const)
            figures[`${op}|${name}`] = [...(figures[`${op}|${name}`] ?? []), us];
        }
      }
    } finally {
      wire.destroy();
      client.destroy();
      await emu.stop();
    }
    const out = process.stdout;
    out.write(
      `DynamoDB client CPU per call (µs, this process), node ${process.version}, ${calls} calls × ${rounds} rounds ` +
        `after 1 warm-up, ${concurrency} in flight, embedded dynalite\n`,
    );
    for (const op of ops) {
      const s = figures[`${op}|sdk`]!;
      const w = figures[`${op}|wire`]!;
      out.write(
        `${op}: sdk ${median(s).toFixed(0)} (${s.map((x) => x.toFixed(0)).join(' / ')}), ` +
          `wire ${median(w).toFixed(0)} (${w.map((x) => x.toFixed(0)).join(' / ')}), ` +
          `sdk / wire ${(median(s) / median(w)).toFixed(1)}×\n`,
      );
    }
  },
};
