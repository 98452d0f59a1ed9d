import { describe, expect, it } from 'vitest';
import { createRuleEngine } from '../../infra/local/rules.js';
import { ingestFunctionFor, pipeline } from '../../infra/pipeline.js';

describe('pipeline definition', () => {
  it('has IoT-valid rule names, SQL version 2016-03-23 and rules the local engine compiles', () => {
    for (const r of pipeline.rules) {
      expect(r.name).toMatch(/^[A-Za-z0-9_]{1,128}$/);
      expect(r.sqlVersion).toBe('2016-03-23');
      expect(r.sql).toContain("encode(*, 'base64') AS payload");
    }
    expect(createRuleEngine(pipeline.rules).rules.map((r) => [r.filter, r.stream])).toEqual([
      ['spBv1.0/#', 'sparkplug'],
      ['lwm2m/rd/+', 'lwm2m'],
    ]);
  });

  it('routes every stream to exactly one rule and one ingest function', () => {
    for (const stream of ['sparkplug', 'lwm2m'] as const) {
      expect(pipeline.rules.filter((r) => r.stream === stream)).toHaveLength(1);
      expect(ingestFunctionFor(stream).stream).toBe(stream);
    }
    expect(ingestFunctionFor('sparkplug').entry).toBe('functions/sparkplug-ingest/handler.ts');
    expect(ingestFunctionFor('lwm2m').entry).toBe('functions/lwm2m-ingest/handler.ts');
  });

  it('keeps event-source settings inside the AWS ranges and bounded against poison records', () => {
    for (const fn of [pipeline.functions.sparkplugIngest, pipeline.functions.lwm2mIngest]) {
      const es = fn.eventSource;
      expect(es.batchSize).toBeGreaterThanOrEqual(1);
      expect(es.batchSize).toBeLessThanOrEqual(10_000);
      expect(es.maxBatchingWindowSeconds).toBeGreaterThanOrEqual(0);
      expect(es.maxBatchingWindowSeconds).toBeLessThanOrEqual(300);
      expect(es.parallelizationFactor).toBeGreaterThanOrEqual(1);
      expect(es.parallelizationFactor).toBeLessThanOrEqual(10);
      // Bounded retries and age (−1 = forever would let a poison record block its shard).
      expect(es.maxRetryAttempts).toBeGreaterThanOrEqual(0);
      expect(es.maxRetryAttempts).toBeLessThanOrEqual(10_000);
      expect(es.maxRecordAgeSeconds).toBeGreaterThanOrEqual(60);
      expect(es.maxRecordAgeSeconds).toBeLessThanOrEqual(604_800);
      expect(es).toMatchObject({ bisectBatchOnFunctionError: true, reportBatchItemFailures: true });
      expect(fn).toMatchObject({ runtime: 'nodejs22.x', architecture: 'arm64' });
      expect(fn.timeoutSeconds).toBeLessThanOrEqual(900);
    }
    expect(pipeline.functions.api.timeoutSeconds).toBeLessThanOrEqual(29); // API Gateway's limit
  });

  it('declares encrypted streams within Kinesis retention limits and pk/sk tables with their GSI and TTL', () => {
    for (const s of Object.values(pipeline.streams)) {
      expect(s.encrypted).toBe(true);
      expect(s.retentionHours).toBeGreaterThanOrEqual(24);
      expect(s.retentionHours).toBeLessThanOrEqual(8760);
      expect(s.shardCount).toBeGreaterThanOrEqual(1);
    }
    for (const t of Object.values(pipeline.tables)) {
      expect(t.partitionKey).toEqual({ name: 'pk', type: 'S' });
      expect(t.sortKey).toEqual({ name: 'sk', type: 'S' });
    }
    expect(pipeline.tables.registry.gsis).toEqual([
      { name: 'gsi1', partitionKey: 'gsi1pk', sortKey: 'gsi1sk' },
    ]);
    expect(pipeline.tables.state.ttlAttribute).toBe('expiresAt');
    expect(pipeline.tables.events.ttlAttribute).toBe('expiresAt');
  });
});
