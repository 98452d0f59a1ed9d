/**
 * The rule engine fed by the real Sparkplug ingest function (its composition root, in-memory ports):
 * the enriched readings the store receives and the lifecycle events the event log receives are what
 * the engine evaluates — the shapes the lead's integration will hand it. Not wired into ingest here.
 */
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { describe, expect, it } from 'vitest';
import { InMemoryEventLog, type StoredEvent } from '../../../functions/core/events.js';
import type { IngestRecord } from '../../../functions/core/ingest.js';
import type { EnrichedReading } from '../../../functions/core/reading.js';
import { InMemoryRegistry } from '../../../functions/core/registry-memory.js';
import {
  InMemoryAlertStore,
  InMemoryRuleStateStore,
  InMemoryRuleStore,
  RuleEngine,
  validateRule,
} from '../../../functions/core/rules/index.js';
import { encodePayload } from '../../../functions/core/sparkplug/codec.js';
import { InMemorySparkplugStateStore } from '../../../functions/core/sparkplug/host/state.js';
import { DataType } from '../../../functions/core/sparkplug/types.js';
import { composeSparkplugIngest } from '../../../functions/sparkplug-ingest/compose.js';

const T0 = 1_700_000_000_000;
let seq = 0;

function record(kind: 'NBIRTH' | 'NDATA' | 'NDEATH', t: number, current?: number): IngestRecord {
  const metrics =
    kind === 'NBIRTH'
      ? [
          { name: 'bdSeq', datatype: DataType.Int64, value: 0 },
          { name: 'L1/current', alias: 1, datatype: DataType.Double, value: 10, timestamp: t },
        ]
      : kind === 'NDEATH'
        ? [{ name: 'bdSeq', datatype: DataType.Int64, value: 0 }]
        : [{ alias: 1, datatype: DataType.Double, value: current!, timestamp: t }];
  const payload = encodePayload(
    kind === 'NDEATH' ? { metrics } : { timestamp: t, seq: seq++ % 256, metrics },
  );
  return {
    sequenceNumber: String(seq).padStart(12, '0'),
    partitionKey: 'plant/breaker-1',
    data: Buffer.from(
      JSON.stringify({
        payload: Buffer.from(payload).toString('base64'),
        topic: `spBv1.0/plant/${kind}/breaker-1`,
        receivedAt: t,
        clientId: 'breaker-1',
      }),
    ),
  };
}

describe('rules over the Sparkplug ingest function', () => {
  it('a threshold rule and an offline rule fire from what ingest produces', async () => {
    const registry = new InMemoryRegistry();
    await registry.putDeviceType({ id: 'breaker', name: 'Breaker', capabilities: [], units: {} });
    const stored: EnrichedReading[] = [];
    const events: StoredEvent[] = [];
    const log = new InMemoryEventLog(1000);
    const append = log.append.bind(log);
    log.append = async (es: StoredEvent[]) => {
      events.push(...es);
      return append(es);
    };
    const fn = composeSparkplugIngest(
      {
        registry,
        events: log,
        store: {
          write: async (rs: EnrichedReading[]) => {
            stored.push(...rs);
            return { written: rs.length, duplicates: 0, rejected: [] };
          },
        },
        publisher: { publish: async () => {} },
        clock: () => T0 + 60_000,
        logger: new Logger({ serviceName: 'test', logLevel: 'ERROR' }),
        metrics: new Metrics({ namespace: 'test' }),
        sparkplugState: new InMemorySparkplugStateStore(),
      },
      { autoRegister: true, defaultDeviceType: 'breaker' },
    );
    await fn.processRecords([
      record('NBIRTH', T0),
      ...[70, 85, 85, 85, 85, 74].map((v, i) => record('NDATA', T0 + (i + 1) * 10_000, v)),
      record('NDEATH', T0 + 70_000),
    ]);

    const rules = new InMemoryRuleStore();
    const doc = { severity: 'critical', select: { deviceType: 'breaker', group: 'plant' } };
    await rules.put(
      validateRule(
        {
          ...doc,
          name: 'L1 over current',
          condition: 'value > 80 for 30s clear < 75',
          select: { ...doc.select, metric: 'L1/*' },
        },
        { id: 'l1', now: T0 },
      ),
      'create',
    );
    await rules.put(
      validateRule({ ...doc, name: 'offline', condition: 'offline' }, { id: 'off', now: T0 }),
      'create',
    );
    const engine = new RuleEngine({
      rules,
      state: new InMemoryRuleStateStore(),
      alerts: new InMemoryAlertStore(),
      clock: () => T0 + 60_000,
    });
    engine.begin();
    await engine.evaluate({
      readings: stored,
      events,
      enrichmentOf: (id) => stored.find((r) => r.deviceId === id)?.enrichment,
    });
    const delivered = await engine.commit();
    expect(delivered.map((t) => `${t.ruleId}:${t.kind}@${(t.at - T0) / 1000}`)).toEqual([
      'l1:open@50',
      'l1:resolve@60',
      'off:open@70',
    ]);
    expect(delivered[0]).toMatchObject({ series: 'breaker-1|L1/current', deviceType: 'breaker', value: 85 });
  });
});
