/**
 * `dualpath cost --devices N --interval S --readings-per-message K [...]`: AWS cost per million
 * readings and per month for a fleet shape, from the cost model and the price table
 * (infra/cost/prices.ts): first the telemetry store alone (default: the packed DynamoDB store, from its
 * measured request and capacity counts), then the whole pipeline; fixed monthly costs apart.
 * `--counters FILE` takes measured efficiency counters (JSON written by the e2e benchmark) in place of
 * the defaults.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { ValidationError } from '../../functions/core/errors.js';
import { compareStores } from '../cost/compare.js';
import {
  type CostInputs,
  type CostReport,
  DEFAULT_INPUTS,
  DYNAMO_STORE_MEASURED,
  estimateCost,
} from '../cost/model.js';
import { PRICES } from '../cost/prices.js';
import { workedExample } from '../cost/worked-example.js';
import type { Command } from './main.js';

const NUMERIC: Array<[string, keyof CostInputs]> = [
  ['devices', 'devices'],
  ['interval', 'intervalSeconds'],
  ['readings-per-message', 'readingsPerMessage'],
  ['bytes-per-reading', 'bytesPerReading'],
  ['records-per-invocation', 'recordsPerInvocation'],
  ['us-per-reading', 'usPerReading'],
  ['memory-mb', 'lambdaMemoryMb'],
  ['memory-store-hours', 'memoryStoreHours'],
  ['retention-days', 'retentionDays'],
  ['bucket-queries', 'bucketQueriesPerDevicePerDay'],
  ['raw-queries', 'rawQueriesPerDevicePerDay'],
  ['latest-queries', 'latestQueriesPerDevicePerDay'],
  ['alarms', 'alarms'],
  ['dashboards', 'dashboards'],
  ['secrets', 'secrets'],
];

function parseFlags(args: string[]) {
  return parseArgs({
    args,
    options: {
      ...Object.fromEntries(NUMERIC.map(([flag]) => [flag, { type: 'string' as const }])),
      kinesis: { type: 'string' },
      store: { type: 'string' },
      counters: { type: 'string' },
      json: { type: 'boolean' },
      'compare-stores': { type: 'boolean' },
      'worked-example': { type: 'boolean' },
    },
    strict: true,
    allowNegative: false,
  });
}

export function parseCostArgs(
  args: string[],
): Partial<CostInputs> & { json?: boolean; compareStores?: boolean; workedExample?: boolean } {
  let values: ReturnType<typeof parseFlags>['values'];
  try {
    values = parseFlags(args).values;
  } catch (error) {
    throw new ValidationError((error as Error).message, { field: 'args' });
  }
  const out: Partial<CostInputs> & { json?: boolean; compareStores?: boolean; workedExample?: boolean } = {};
  if (typeof values.counters === 'string') {
    Object.assign(out, JSON.parse(readFileSync(values.counters, 'utf8')) as Partial<CostInputs>);
  }
  for (const [flag, key] of NUMERIC) {
    const raw = (values as Record<string, string | boolean | undefined>)[flag];
    if (raw === undefined) continue;
    const n = Number(raw);
    if (!Number.isFinite(n) || n <= 0)
      throw new ValidationError(`--${flag} must be a positive number`, { field: flag });
    (out as Record<string, number>)[key] = n;
  }
  if (values.kinesis !== undefined) {
    if (values.kinesis !== 'on-demand' && values.kinesis !== 'provisioned') {
      throw new ValidationError('--kinesis must be on-demand or provisioned', { field: 'kinesis' });
    }
    out.kinesisMode = values.kinesis;
  }
  if (values.store !== undefined) {
    if (values.store !== 'dynamodb' && values.store !== 'timestream') {
      throw new ValidationError('--store must be dynamodb or timestream', { field: 'store' });
    }
    out.store = values.store;
  }
  if (values.json === true) out.json = true;
  if (values['compare-stores'] === true) out.compareStores = true;
  if (values['worked-example'] === true) out.workedExample = true;
  return out;
}

const usd = (n: number) => (n >= 100 ? `$${n.toFixed(0)}` : n >= 1 ? `$${n.toFixed(2)}` : `$${n.toFixed(4)}`);

export function formatReport(r: CostReport): string {
  const widths = [16, 66, 11, 14];
  const fmt = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join(' ');
  const table = (lines: CostReport['lines']) =>
    lines.map((l) => fmt([l.service, l.item, usd(l.monthly), usd(l.perMillionReadings)]));
  const storeLines = r.lines.filter((l) => l.store);
  const rest = r.lines.filter((l) => !l.store);
  const variableTotal = r.monthlyTotal - r.fixedMonthly;
  const measured =
    r.inputs.store === 'dynamodb'
      ? `  (request and capacity counts measured by \`${DYNAMO_STORE_MEASURED.command}\`; prices infra/cost/prices.ts)`
      : '  (Timestream for LiveAnalytics: existing customers only; write size from the adapter; queries billed in TCU-hours, not priced in our sources)';
  return [
    `Fleet: ${r.inputs.devices} devices, one message every ${r.inputs.intervalSeconds} s, ${r.inputs.readingsPerMessage} readings per message (${r.volumes.messageBytes} B)`,
    `Volume: ${(r.volumes.messagesPerMonth / 1e6).toFixed(1)} M messages, ${(r.volumes.readingsPerMonth / 1e6).toFixed(1)} M readings per month; prices ${PRICES.region} as of ${PRICES.asOf}`,
    '',
    `TELEMETRY STORE: ${r.store.name}`,
    measured,
    fmt(['service', 'item', 'per month', 'per M readings']),
    ...table(storeLines),
    `Store: ${usd(r.store.perMillionReadings)} per million readings (writes, ${r.inputs.retentionDays}-day storage, API queries); fixed ${usd(r.store.fixedMonthly)} per month; all-in ${usd(r.store.perMillionReadingsAllIn)} per million readings`,
    '',
    'REST OF THE PIPELINE (IoT Core, Kinesis, Lambda, registry and state tables, monitoring)',
    fmt(['service', 'item', 'per month', 'per M readings']),
    ...table(rest.filter((l) => l.variable)),
    'fixed monthly:',
    ...table(rest.filter((l) => !l.variable)),
    '',
    `WHOLE PIPELINE incl. store: usage-priced ${usd(variableTotal)} per month = ${usd(r.perMillionReadingsVariable)} per million readings; fixed ${usd(r.fixedMonthly)} per month; total ${usd(r.monthlyTotal)} per month = ${usd(r.perMillionReadings)} per million readings`,
  ].join('\n');
}

/** The ADR 0013 candidates at 1 and at 50 readings per message for the fleet's devices and interval. */
export function formatComparison(inputs: Partial<CostInputs>): string {
  const cell = (n: number | undefined) => (n === undefined ? 'n/p' : usd(n));
  const out: string[] = [
    'Telemetry store candidates, $ per million readings (n/p = not priced in our sources)',
    `fleet: ${inputs.devices ?? DEFAULT_INPUTS.devices} devices, one message every ${inputs.intervalSeconds ?? DEFAULT_INPUTS.intervalSeconds} s; ${inputs.retentionDays ?? DEFAULT_INPUTS.retentionDays}-day storage; queries as in the cost model`,
  ];
  for (const k of [1, 50]) {
    out.push('', `${k} reading(s) per message:`);
    out.push(
      `  ${'candidate'.padEnd(64)} ${'writes'.padEnd(9)} ${'storage'.padEnd(9)} ${'queries'.padEnd(9)} known sum`,
    );
    for (const c of compareStores({ ...inputs, readingsPerMessage: k })) {
      out.push(
        `  ${c.name.padEnd(64)} ${cell(c.writes).padEnd(9)} ${cell(c.storage).padEnd(9)} ${cell(c.queries).padEnd(9)} ${usd(c.known)}`,
      );
      for (const u of c.unpriced) out.push(`      + not priced: ${u}`);
      for (const n of c.notes) out.push(`      ${n}`);
    }
  }
  return out.join('\n');
}

export const costCommand: Command = {
  summary: 'AWS cost per million readings and per month for a fleet shape',
  async run(args) {
    if (args.includes('--help')) {
      process.stdout.write(
        `usage: dualpath cost --devices N --interval S --readings-per-message K [--store dynamodb|timestream] [--retention-days D] [--kinesis on-demand|provisioned] [--counters FILE] [--json] [--compare-stores] [--worked-example]\ndefaults: ${JSON.stringify(DEFAULT_INPUTS)}\n`,
      );
      return 0;
    }
    const { json, compareStores: compare, workedExample: worked, ...inputs } = parseCostArgs(args);
    if (worked) {
      // docs/deploy.md's table (ADR 0020); flags other than the fleet's are ignored so it stays comparable.
      process.stdout.write(`${workedExample()}\n`);
      return 0;
    }
    if (compare) {
      process.stdout.write(`${formatComparison(inputs)}\n`);
      return 0;
    }
    const report = estimateCost(inputs);
    process.stdout.write(json ? `${JSON.stringify(report, null, 2)}\n` : `${formatReport(report)}\n`);
    return 0;
  },
};
