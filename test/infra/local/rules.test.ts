import { describe, expect, it } from 'vitest';
import { ValidationError } from '../../../functions/core/errors.js';
import {
  compileRule,
  createRuleEngine,
  NO_CLIENT_ID,
  parseRuleSql,
  RuleActionError,
  topicMatches,
} from '../../../infra/local/rules.js';
import { pipeline, type RuleDef } from '../../../infra/pipeline.js';

const T0 = 1_700_000_000_000;
const msg = (topic: string, clientId: string) => ({
  topic,
  clientId,
  payload: new Uint8Array([1, 2, 3]),
  timestamp: T0,
});
const rule = (sql: string, partitionKey = 'k'): RuleDef => ({
  name: 'r',
  sql,
  sqlVersion: '2016-03-23',
  stream: 'lwm2m',
  partitionKey,
});

describe('local IoT rule engine: the pipeline rules', () => {
  const engine = createRuleEngine(pipeline.rules, { clock: () => T0 });

  it('routes Sparkplug messages with the envelope and the group/node partition key', () => {
    // Act
    const out = engine.evaluate('spBv1.0/plant/DDATA/edge-1/pump', new Uint8Array([1, 2, 3]), 'edge-1');

    // Assess
    expect(out).toHaveLength(1);
    expect(out[0]).toMatchObject({
      rule: 'dualpath_sparkplug',
      stream: 'sparkplug',
      partitionKey: 'plant/edge-1',
    });
    expect(JSON.parse(out[0]!.data.toString())).toEqual({
      payload: 'AQID',
      topic: 'spBv1.0/plant/DDATA/edge-1/pump',
      receivedAt: T0,
      clientId: 'edge-1',
    });
  });

  it('keys node-level messages by group/node too, so a node and its devices share one shard', () => {
    const node = engine.evaluate('spBv1.0/plant/NDATA/edge-1', new Uint8Array(), 'edge-1');
    expect(node[0]?.partitionKey).toBe('plant/edge-1');
  });

  it('keeps STATE off the Sparkplug stream', () => {
    expect(engine.evaluate('spBv1.0/STATE/scada', Buffer.from('{"online":true}'), 'scada')).toEqual([]);
  });

  it("skips the pipeline's own NCMD / DCMD publishes (and any host's), keeps every edge message type", () => {
    // The ingest function and the API publish commands through the data plane; a host may too.
    for (const cmd of ['spBv1.0/plant/NCMD/edge-1', 'spBv1.0/plant/DCMD/edge-1/pump']) {
      expect(engine.evaluate(cmd, new Uint8Array([1]), NO_CLIENT_ID)).toEqual([]);
      expect(engine.evaluate(cmd, new Uint8Array([1]), 'scada')).toEqual([]);
    }
    for (const type of ['NBIRTH', 'NDATA', 'NDEATH', 'DBIRTH', 'DDATA', 'DDEATH']) {
      const topic = type.startsWith('N')
        ? `spBv1.0/plant/${type}/edge-1`
        : `spBv1.0/plant/${type}/edge-1/pump`;
      expect(engine.evaluate(topic, new Uint8Array([1]), 'edge-1'), type).toHaveLength(1);
    }
    // A group named like a command type is still data (topic(2) is the group, topic(3) the type).
    expect(engine.evaluate('spBv1.0/NCMD/NDATA/edge-1', new Uint8Array([1]), 'edge-1')).toHaveLength(1);
  });

  it('forwards LwM2M messages only when the client id is the endpoint', () => {
    const ok = engine.evaluate('lwm2m/rd/ep-1', new Uint8Array([0xa0]), 'ep-1');
    expect(ok).toHaveLength(1);
    expect(ok[0]).toMatchObject({ stream: 'lwm2m', partitionKey: 'ep-1' });
    expect(JSON.parse(ok[0]!.data.toString()).payload).toBe('oA==');
    // The server's own publishes (data plane: clientid() is n/a) and other clients are dropped.
    expect(engine.evaluate('lwm2m/rd/ep-1', new Uint8Array(), NO_CLIENT_ID)).toEqual([]);
    expect(engine.evaluate('lwm2m/rd/ep-1', new Uint8Array(), 'ep-2')).toEqual([]);
    expect(engine.evaluate('lwm2m/bs/ep-1', new Uint8Array(), 'ep-1')).toEqual([]);
    expect(engine.evaluate('lwm2m/rd/ep-1/x', new Uint8Array(), 'ep-1')).toEqual([]);
  });

  it('reads the clock once per message', () => {
    let now = T0;
    const e = createRuleEngine(pipeline.rules, { clock: () => now++ });
    const a = JSON.parse(e.evaluate('lwm2m/rd/x', new Uint8Array(), 'x')[0]!.data.toString());
    const b = JSON.parse(e.evaluate('lwm2m/rd/x', new Uint8Array(), 'x')[0]!.data.toString());
    expect([a.receivedAt, b.receivedAt]).toEqual([T0, T0 + 1]);
  });
});

describe('local IoT rule engine: SQL subset', () => {
  it('matches MQTT topic filters', () => {
    expect(topicMatches('spBv1.0/#', 'spBv1.0/a/b')).toBe(true);
    expect(topicMatches('spBv1.0/#', 'spBv1.0')).toBe(true);
    expect(topicMatches('spBv1.0/#', 'spBv2.0/a')).toBe(false);
    expect(topicMatches('lwm2m/rd/+', 'lwm2m/rd/x')).toBe(true);
    expect(topicMatches('lwm2m/rd/+', 'lwm2m/rd/x/y')).toBe(false);
    expect(topicMatches('lwm2m/rd/+', 'lwm2m/rd')).toBe(false);
  });

  it('evaluates NOT, OR, AND precedence and parentheses', () => {
    const r = compileRule(
      rule(
        "SELECT topic() AS t FROM 'a/#' WHERE NOT (topic(2) = 'x' OR topic(2) = 'y') AND clientid() <> 'bad'",
        'k-${topic(2)}',
      ),
    );
    expect(r.where(msg('a/z', 'ok'))).toBe(true);
    expect(r.where(msg('a/x', 'ok'))).toBe(false);
    expect(r.where(msg('a/y', 'ok'))).toBe(false);
    expect(r.where(msg('a/z', 'bad'))).toBe(false);
    expect(r.partitionKey(msg('a/z', 'ok'))).toBe('k-z');
    // AND binds tighter than OR.
    const p = compileRule(
      rule("SELECT topic() AS t FROM '#' WHERE topic(1) = 'a' OR topic(1) = 'b' AND clientid() = 'c'"),
    );
    expect(p.where(msg('a', 'zz'))).toBe(true);
    expect(p.where(msg('b', 'zz'))).toBe(false);
    expect(p.where(msg('b', 'c'))).toBe(true);
  });

  it('treats comparisons with Undefined as Undefined: neither = nor <> keeps the message', () => {
    const eq = compileRule(rule("SELECT topic() AS t FROM '#' WHERE topic(5) = 'x'"));
    const ne = compileRule(rule("SELECT topic() AS t FROM '#' WHERE topic(5) <> 'x'"));
    const not = compileRule(rule("SELECT topic() AS t FROM '#' WHERE NOT topic(5) = 'x'"));
    expect(eq.where(msg('a/b', 'c'))).toBe(false);
    expect(ne.where(msg('a/b', 'c'))).toBe(false);
    expect(not.where(msg('a/b', 'c'))).toBe(false);
    expect(ne.where(msg('a/b/c/d/e', 'c'))).toBe(true);
  });

  it('leaves Undefined values out of the record and handles quoted quotes', () => {
    const r = compileRule(rule("SELECT topic(3) AS third, 'it''s' AS s, timestamp() AS ts FROM '#'"));
    expect(JSON.parse(r.data(msg('a/b', 'c')).toString())).toEqual({ s: "it's", ts: T0 });
  });

  it('forwards the payload unchanged for SELECT *', () => {
    const r = compileRule(rule("SELECT * FROM 'a/+'"));
    expect([...r.data(msg('a/b', 'c'))]).toEqual([1, 2, 3]);
  });

  it('reports a partition key Kinesis would refuse as an action error, and keeps the other rules', () => {
    const errors: string[] = [];
    const engine = createRuleEngine(
      [
        { ...rule("SELECT topic() AS t FROM 'a/#'", '${topic(3)}'), name: 'empty_key' },
        { ...rule("SELECT topic() AS t FROM 'a/#'", 'fixed'), name: 'fine' },
      ],
      { clock: () => T0, onActionError: (e) => errors.push(e.message) },
    );
    const out = engine.evaluate('a/b', new Uint8Array(), 'c');
    expect(out.map((o) => o.rule)).toEqual(['fine']);
    expect(errors).toEqual([expect.stringContaining('rule empty_key: partition key')]);
    expect(() =>
      compileRule(rule("SELECT * FROM '#'", '${topic()}')).partitionKey(msg('x'.repeat(300), 'c')),
    ).toThrow(RuleActionError);
  });

  it("reports a record above Kinesis' 1 MiB as an action error (the base64 envelope of a large payload)", () => {
    // The pipeline's envelope base64-encodes the payload: 786 KB become more than 1 MiB.
    const errors: string[] = [];
    const engine = createRuleEngine(
      [{ ...rule("SELECT encode(*, 'base64') AS payload FROM 'a/#'", 'k'), name: 'envelope' }],
      { clock: () => T0, onActionError: (e) => errors.push(e.message) },
    );
    expect(engine.evaluate('a/b', new Uint8Array(700 * 1024), 'c')).toHaveLength(1);
    expect(engine.evaluate('a/b', new Uint8Array(800 * 1024), 'c')).toEqual([]);
    expect(errors).toEqual([
      expect.stringMatching(/^rule envelope: the record data is \d+ bytes, more than/),
    ]);
  });

  it('parses case-insensitive keywords and function names', () => {
    const parsed = parseRuleSql("select TOPIC(2) as g from 'a/#' where ClientId() <> 'x'");
    expect(parsed.from).toBe('a/#');
    expect(parsed.select?.map((s) => s.alias)).toEqual(['g']);
  });

  it('fails loudly at startup on SQL outside the supported subset, naming the rule', () => {
    const bad = [
      "SELECT upper(topic()) AS x FROM 'a'",
      "SELECT topic() FROM 'a'",
      'SELECT topic() AS t FROM a',
      "SELECT topic() AS t FROM 'a' LIMIT 1",
      "SELECT topic() AS t FROM 'a' WHERE topic(2) > 'b'",
      "SELECT topic(0) AS t FROM 'a'",
      "SELECT topic('x') AS t FROM 'a'",
      "SELECT clientid(1) AS t FROM 'a'",
      "SELECT encode(*, 'hex') AS p FROM 'a'",
      "SELECT encode(topic(), 'base64') AS p FROM 'a'",
      "SELECT topic() AS t, clientid() AS t FROM 'a'",
      "SELECT topic() AS t FROM 'a/#/b'",
      "SELECT topic() AS t FROM 'a/b+'",
      "SELECT topic() AS t FROM 'a' WHERE (topic(1) = 'a'",
      "SELECT topic() AS t FROM 'a' WHERE",
      "SELECT topic() AS t FROM 'a' WHERE topic(1) = 'unterminated",
      "SELECT a.b AS t FROM 'a'",
    ];
    for (const sql of bad) {
      let error: unknown;
      try {
        compileRule(rule(sql));
      } catch (e) {
        error = e;
      }
      expect(error, sql).toBeInstanceOf(ValidationError);
      expect((error as Error).message, sql).toMatch(/^rule r: /);
    }
  });

  it('refuses bad rule names, other SQL versions and broken templates', () => {
    expect(() => compileRule({ ...rule("SELECT * FROM 'a'"), name: 'bad-name' })).toThrow(ValidationError);
    expect(() => compileRule({ ...rule("SELECT * FROM 'a'"), sqlVersion: '2015-10-08' as never })).toThrow(
      /SQL version/,
    );
    expect(() => compileRule(rule("SELECT * FROM 'a'", '${topic(1)'))).toThrow(/unterminated/);
    expect(() => compileRule(rule("SELECT * FROM 'a'", '${nope()}'))).toThrow(/unsupported function/);
  });
});

describe('Basic Ingest ($aws/rules/{rule}/{topic}, ADR 0024)', () => {
  const engine = createRuleEngine(pipeline.rules, { clock: () => T0 });
  it('runs only the named rule, on the topic without the prefix (its WHERE still applies)', () => {
    const out = engine.evaluate('$aws/rules/dualpath_lwm2m/lwm2m/rd/ep-1', new Uint8Array([1]), 'ep-1');
    expect(out.map((o) => [o.rule, o.stream, o.partitionKey])).toEqual([['dualpath_lwm2m', 'lwm2m', 'ep-1']]);
    expect(JSON.parse(out[0]!.data.toString()).topic).toBe('lwm2m/rd/ep-1');
    // WHERE clientid() = topic(3): another client's uplink for ep-1 is dropped.
    expect(engine.evaluate('$aws/rules/dualpath_lwm2m/lwm2m/rd/ep-1', new Uint8Array([1]), 'ep-2')).toEqual(
      [],
    );
  });
  it('invokes nothing for an unknown rule, and the named rule only (not every rule whose FROM matches)', () => {
    expect(engine.evaluate('$aws/rules/nope/lwm2m/rd/ep-1', new Uint8Array([1]), 'ep-1')).toEqual([]);
    const sp = engine.evaluate('$aws/rules/dualpath_lwm2m/spBv1.0/g/NDATA/n1', new Uint8Array([1]), 'n1');
    expect(sp.every((o) => o.rule === 'dualpath_lwm2m')).toBe(true);
  });
});
