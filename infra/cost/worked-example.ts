/**
 * The worked example of docs/deploy.md (`dualpath cost --worked-example`): 1,000 devices, one message
 * every 10 s, at 1 and at 50 readings per message, for the default store (packed DynamoDB), Timestream
 * for LiveAnalytics and the other ADR 0013 candidates, usage-priced and fixed monthly costs apart. The
 * cost test recomputes it and compares it with the figures in the doc.
 */
import { compareStores } from './compare.js';
import { type CostInputs, estimateCost, type TelemetryStoreKind } from './model.js';

export const WORKED_EXAMPLE: Partial<CostInputs> = { devices: 1000, intervalSeconds: 10 };
export const WORKED_READINGS = [1, 50] as const;

const usd = (n: number) => (n >= 100 ? `$${n.toFixed(0)}` : n >= 1 ? `$${n.toFixed(2)}` : `$${n.toFixed(4)}`);

export function workedExample(base: Partial<CostInputs> = WORKED_EXAMPLE): string {
  const out: string[] = [
    `Fleet: ${base.devices} devices, one message every ${base.intervalSeconds} s (us-east-1 list prices, infra/cost/prices.ts).`,
    '',
    '| store | readings / message | store $ / M readings | pipeline usage $ / month | fixed $ / month | total $ / month | all-in $ / M readings |',
    '|---|---:|---:|---:|---:|---:|---:|',
  ];
  const stores: Array<[TelemetryStoreKind, string]> = [
    ['dynamodb', 'DynamoDB, packed (default)'],
    ['timestream', 'Timestream for LiveAnalytics'],
  ];
  for (const [store, name] of stores) {
    for (const k of WORKED_READINGS) {
      const r = estimateCost({ ...base, store, readingsPerMessage: k });
      out.push(
        `| ${name} | ${k} | ${usd(r.store.perMillionReadings)} | ${usd(r.monthlyTotal - r.fixedMonthly)} | ${usd(r.fixedMonthly)} | ${usd(r.monthlyTotal)} | ${usd(r.perMillionReadings)} |`,
      );
    }
  }
  const fixed = estimateCost({ ...base, readingsPerMessage: 50 }).lines.filter((l) => !l.variable);
  out.push('', 'Fixed monthly costs (default store; the same at 1 and 50 readings per message):', '');
  out.push('| service | item | $ / month |', '|---|---|---:|');
  for (const l of fixed) out.push(`| ${l.service} | ${l.item} | ${usd(l.monthly)} |`);
  // ADR 0024: LwM2M uplinks by Basic Ingest carry no messaging charge and are never echoed; the
  // comparison row prices every LwM2M device on the plain binding topic (echoed unless No Local works).
  out.push('', 'IoT Core messaging (default store; half the messages LwM2M, ADR 0024):', '');
  out.push(
    '| readings / message | LwM2M uplinks | messaging $ / month | LwM2M echoes $ / month | IoT Core usage $ / month |',
    '|---:|---|---:|---:|---:|',
  );
  for (const k of WORKED_READINGS) {
    for (const [how, share] of [
      ['Basic Ingest (default)', 1],
      ['binding topic, echoed', 0],
    ] as const) {
      const r = estimateCost({ ...base, readingsPerMessage: k, lwm2mBasicIngestShare: share });
      const iot = r.lines.filter((l) => l.service === 'IoT Core' && l.variable);
      const sum = (prefix: string) =>
        iot.filter((l) => l.item.startsWith(prefix)).reduce((a, l) => a + l.monthly, 0);
      out.push(
        `| ${k} | ${how} | ${usd(sum('messaging'))} | ${sum('LwM2M echoes') > 0 ? usd(sum('LwM2M echoes')) : '—'} | ${usd(iot.reduce((a, l) => a + l.monthly, 0))} |`,
      );
    }
  }
  out.push('', 'Other telemetry store candidates (ADR 0013), store only, $ per million readings:', '');
  out.push('| candidate | readings / message | writes | storage | queries | known sum | not priced |');
  out.push('|---|---:|---:|---:|---:|---:|---|');
  const cell = (n: number | undefined) => (n === undefined ? 'n/p' : usd(n));
  for (const k of WORKED_READINGS) {
    for (const c of compareStores({ ...base, readingsPerMessage: k })) {
      out.push(
        `| ${c.name} | ${k} | ${cell(c.writes)} | ${cell(c.storage)} | ${cell(c.queries)} | ${usd(c.known)} | ${c.unpriced.join('; ') || '—'} |`,
      );
    }
  }
  return out.join('\n');
}
