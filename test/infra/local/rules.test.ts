import { describe, expect, it } from 'vitest';
import { ValidationError } from '../../../functions/core/errors.js';
import { compileRule, createRuleEngine, topicMatches } from '../../../infra/local/rules.js';
import { pipeline } from '../../../infra/pipeline.js';

const ctx = (topic: string, clientId: string) => ({
  topic,
  clientId,
  payload: new Uint8Array([1, 2, 3]),
  timestamp: 1_700_000_000_000,
});

describe('local IoT rule engine (the pipeline SQL)', () => {
  const engine = createRuleEngine(pipeline.rules);

  it('routes Sparkplug messages with the envelope and the group/node partition key', () => {
    const [out] = engine.evaluate(ctx('spBv1.0/plant/DDATA/edge-1/pump', 'edge-1'));
    expect(out).toMatchObject({ stream: 'sparkplug', partitionKey: 'plant/edge-1' });
    expect(JSON.parse(out!.data.toString())).toEqual({
      payload: 'AQID',
      topic: 'spBv1.0/plant/DDATA/edge-1/pump',
      receivedAt: 1_700_000_000_000,
      clientId: 'edge-1',
    });
  });

  it('keeps STATE off the Sparkplug stream', () => {
    expect(engine.evaluate(ctx('spBv1.0/STATE/scada', 'scada'))).toEqual([]);
  });

  it('forwards LwM2M messages only when the client id is the endpoint', () => {
    expect(engine.evaluate(ctx('lwm2m/rd/ep-1', 'ep-1'))[0]).toMatchObject({
      stream: 'lwm2m',
      partitionKey: 'ep-1',
    });
    expect(engine.evaluate(ctx('lwm2m/rd/ep-1', ''))).toEqual([]);
    expect(engine.evaluate(ctx('lwm2m/rd/ep-1', 'ep-2'))).toEqual([]);
    expect(engine.evaluate(ctx('lwm2m/bs/ep-1', 'ep-1'))).toEqual([]);
  });

  it('matches MQTT topic filters', () => {
    expect(topicMatches('spBv1.0/#', 'spBv1.0/a/b')).toBe(true);
    expect(topicMatches('lwm2m/rd/+', 'lwm2m/rd/x')).toBe(true);
    expect(topicMatches('lwm2m/rd/+', 'lwm2m/rd/x/y')).toBe(false);
  });

  it('evaluates NOT, OR and parentheses', () => {
    const r = compileRule({
      name: 'r',
      sql: "SELECT topic() AS t FROM 'a/#' WHERE NOT (topic(2) = 'x' OR topic(2) = 'y') AND clientid() <> 'bad'",
      stream: 'lwm2m',
      partitionKey: 'k-${topic(2)}',
    });
    expect(r.where(ctx('a/z', 'ok'))).toBe(true);
    expect(r.where(ctx('a/x', 'ok'))).toBe(false);
    expect(r.where(ctx('a/z', 'bad'))).toBe(false);
    expect(r.partitionKey(ctx('a/z', 'ok'))).toBe('k-z');
  });

  it('fails loudly on SQL outside the supported subset', () => {
    for (const sql of [
      "SELECT * FROM 'a'",
      "SELECT upper(topic()) AS x FROM 'a'",
      'SELECT topic() AS t FROM a',
      "SELECT topic() AS t FROM 'a' LIMIT 1",
    ]) {
      expect(() => compileRule({ name: 'r', sql, stream: 'lwm2m', partitionKey: 'k' }), sql).toThrow(
        ValidationError,
      );
    }
  });
});
