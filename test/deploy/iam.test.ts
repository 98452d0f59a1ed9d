import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type AwsCall,
  actionMatches,
  conditionMatches,
  evaluate,
  formatDenial,
  formatEvaluation,
  formatExcess,
  type IamStatement,
  resourceMatches,
} from '../../scripts/verify-deploy/iam.js';
import { type Assembly, loadAssembly, TemplateModel } from '../../scripts/verify-deploy/template.js';
import { ACCOUNT, clone, REGION, SYNTH_TIMEOUT_MS, synthesize } from './fixtures/synth.js';

const TABLE = 'arn:aws:dynamodb:us-east-1:123456789012:table/Registry';
const call = (action: string, resource: string, extra: Partial<AwsCall> = {}): AwsCall => {
  const [service, name] = action.split(':') as [string, string];
  return { service, action: name, resource, ...extra };
};

describe('action matching', () => {
  it('is case-insensitive and supports * and ?', () => {
    expect(actionMatches('dynamodb:PutItem', 'DynamoDB:putitem')).toBe(true);
    expect(actionMatches('dynamodb:*Item', 'dynamodb:BatchGetItem')).toBe(true);
    expect(actionMatches('dynamodb:*Item', 'dynamodb:Query')).toBe(false);
    expect(actionMatches('dynamodb:?etItem', 'dynamodb:GetItem')).toBe(true);
    expect(actionMatches('dynamodb:?etItem', 'dynamodb:BatchGetItem')).toBe(false);
    expect(actionMatches('*', 'iot:Publish')).toBe(true);
    expect(actionMatches('dynamodb:*', 'dynamodbx:GetItem')).toBe(false);
  });
});

describe('resource matching', () => {
  it('matches exact ARNs case-sensitively', () => {
    expect(resourceMatches(TABLE, TABLE)).toBe(true);
    expect(resourceMatches(TABLE, TABLE.replace('Registry', 'registry'))).toBe(false);
    expect(resourceMatches(TABLE, `${TABLE}/index/gsi1`)).toBe(false);
  });

  it('lets * span / inside a segment, and a trailing * cross colons', () => {
    expect(resourceMatches(`${TABLE}/*`, `${TABLE}/index/gsi1`)).toBe(true);
    expect(resourceMatches(`${TABLE}*`, `${TABLE}/index/gsi1`)).toBe(true);
    expect(
      resourceMatches(
        'arn:aws:iot:us-east-1:123456789012:topic/spBv1.0/*/NCMD/*',
        'arn:aws:iot:us-east-1:123456789012:topic/spBv1.0/g1/NCMD/n1',
      ),
    ).toBe(true);
    expect(
      resourceMatches(
        'arn:aws:iot:us-east-1:123456789012:topic/spBv1.0/*/NCMD/*',
        'arn:aws:iot:us-east-1:123456789012:topic/spBv1.0/g1/DCMD/n1/d1',
      ),
    ).toBe(false);
    // a * in the middle of a segment does not cross a colon
    expect(resourceMatches('arn:aws:dynamodb:*east*:123456789012:table/Registry', TABLE)).toBe(true);
    expect(resourceMatches('arn:aws:dynamodb:us*2:table/Registry', TABLE)).toBe(false);
    expect(
      resourceMatches(
        'arn:aws:iot:us-east-1:123456789012:topic/a*/c',
        'arn:aws:iot:us-east-1:123456789012:topic/a/b/c',
      ),
    ).toBe(true);
    // a * at the end of a segment may expand beyond it
    expect(resourceMatches('arn:aws:dynamodb:*:table/Registry', TABLE)).toBe(true);
    expect(resourceMatches('arn:aws:dynamodb:us-east-?:123456789012:table/Registry', TABLE)).toBe(true);
    expect(resourceMatches('*', 'anything:at:all')).toBe(true);
  });
});

describe('evaluate', () => {
  const allowTable: IamStatement = {
    Sid: 'Registry',
    Effect: 'Allow',
    Action: ['dynamodb:GetItem', 'dynamodb:PutItem'],
    Resource: TABLE,
  };

  it('allows a matched call and denies an unmatched one, naming it', () => {
    const ev = evaluate([allowTable], [call('dynamodb:GetItem', TABLE), call('dynamodb:DeleteItem', TABLE)]);
    expect(ev.allowed.map((a) => a.call.action)).toEqual(['GetItem']);
    expect(ev.denied).toHaveLength(1);
    expect(ev.denied[0]!.reason).toMatch(/implicit deny/);
    expect(formatDenial('SparkplugIngestFunction', ev.denied[0]!)).toBe(
      `SparkplugIngestFunction: dynamodb:DeleteItem on ${TABLE} is not allowed by its role — no statement allows it (implicit deny)`,
    );
  });

  it('reports every unused (action × resource) of an Allow as excess', () => {
    const st: IamStatement = { ...allowTable, Resource: [TABLE, `${TABLE}/index/*`] };
    const ev = evaluate([st], [call('dynamodb:GetItem', TABLE)]);
    expect(ev.excess.map((e) => `${e.action} ${e.resource}`)).toEqual([
      `dynamodb:GetItem ${TABLE}/index/*`,
      `dynamodb:PutItem ${TABLE}`,
      `dynamodb:PutItem ${TABLE}/index/*`,
    ]);
    expect(formatExcess('ApiFunction', ev.excess[1]!)).toBe(
      `ApiFunction: grant dynamodb:PutItem on ${TABLE} never used (excess; statement 0 (Registry))`,
    );
  });

  it('lets an explicit Deny win over an Allow', () => {
    const deny: IamStatement = { Sid: 'NoWrites', Effect: 'Deny', Action: 'dynamodb:Put*', Resource: '*' };
    const ev = evaluate(
      [allowTable, deny],
      [call('dynamodb:PutItem', TABLE), call('dynamodb:GetItem', TABLE)],
    );
    expect(ev.denied).toHaveLength(1);
    expect(ev.denied[0]!.reason).toBe('explicitly denied by statement 1 (NoWrites)');
    expect(ev.denied[0]!.deniedBy).toEqual({ statementIndex: 1, sid: 'NoWrites' });
    // the denied PutItem does not count as a use of the Allow
    expect(ev.excess.map((e) => e.action)).toEqual(['dynamodb:PutItem']);
  });

  it('handles NotAction: everything except the listed actions', () => {
    const st: IamStatement = { Effect: 'Allow', NotAction: ['iam:*', 'dynamodb:Delete*'], Resource: '*' };
    const ev = evaluate(
      [st],
      [call('dynamodb:GetItem', TABLE), call('dynamodb:DeleteItem', TABLE), call('iam:PassRole', '*')],
    );
    expect(ev.allowed.map((a) => a.call.action)).toEqual(['GetItem']);
    expect(ev.denied.map((d) => d.call.action)).toEqual(['DeleteItem', 'PassRole']);
    expect(ev.excess).toEqual([]);
  });

  it('handles a Deny with NotAction (deny all but reads)', () => {
    const guard: IamStatement = { Effect: 'Deny', NotAction: 'dynamodb:Get*', Resource: TABLE };
    const ev = evaluate(
      [{ Effect: 'Allow', Action: 'dynamodb:*', Resource: '*' }, guard],
      [
        call('dynamodb:GetItem', TABLE),
        call('dynamodb:PutItem', TABLE),
        call('dynamodb:PutItem', `${TABLE}2`),
      ],
    );
    expect(ev.denied.map((d) => d.call.resource)).toEqual([TABLE]);
    expect(ev.allowed).toHaveLength(2);
  });

  it('handles NotResource', () => {
    const st: IamStatement = { Effect: 'Allow', Action: 'dynamodb:GetItem', NotResource: `${TABLE}*` };
    const ev = evaluate(
      [st],
      [call('dynamodb:GetItem', TABLE), call('dynamodb:GetItem', `${TABLE.replace('Registry', 'Other')}`)],
    );
    expect(ev.denied.map((d) => d.call.resource)).toEqual([TABLE]);
    expect(ev.allowed).toHaveLength(1);
  });

  it('requires a table index grant for a Query on an index', () => {
    const ev = evaluate(
      [{ Effect: 'Allow', Action: 'dynamodb:Query', Resource: TABLE }],
      [call('dynamodb:Query', `${TABLE}/index/gsi1`)],
    );
    expect(ev.denied).toHaveLength(1);
    expect(formatEvaluation('ApiFunction', ev)[0]).toContain(
      `dynamodb:Query on ${TABLE}/index/gsi1 is not allowed`,
    );
  });

  it('evaluates conditions and warns about an unknown operator (the statement then does not match)', () => {
    const st: IamStatement = {
      Effect: 'Allow',
      Action: 'dynamodb:GetItem',
      Resource: TABLE,
      Condition: { DateGreaterThan: { 'aws:CurrentTime': '2020-01-01T00:00:00Z' } },
    };
    const ev = evaluate(
      [st],
      [call('dynamodb:GetItem', TABLE, { context: { 'aws:CurrentTime': '2026-01-01' } })],
    );
    expect(ev.denied).toHaveLength(1);
    expect(ev.warnings).toEqual([
      'statement 0: condition operator DateGreaterThan is not supported by the harness; the statement does not match',
    ]);
  });

  it('marks calls the service makes on the function’s behalf in the message', () => {
    const ev = evaluate(
      [],
      [call('kinesis:GetRecords', 'arn:aws:kinesis:us-east-1:1:stream/s', { via: 'service' })],
    );
    expect(formatDenial('Fn', ev.denied[0]!)).toContain('(called by the service on its behalf)');
  });

  it('applies an excess filter', () => {
    const ev = evaluate([allowTable], [], { excessFilter: (g) => g.action !== 'dynamodb:GetItem' });
    expect(ev.excess.map((e) => e.action)).toEqual(['dynamodb:PutItem']);
  });
});

describe('conditions', () => {
  const ctx = {
    'aws:SecureTransport': 'true',
    'dynamodb:LeadingKeys': 'dev#1,dev#2',
    'aws:SourceArn': TABLE,
  };
  const holds = (c: IamStatement['Condition'], context: Record<string, string> = ctx) =>
    conditionMatches(c, context).matches;

  it('StringEquals / StringNotEquals / StringLike, keys case-insensitive', () => {
    expect(holds({ StringEquals: { 'AWS:securetransport': 'true' } })).toBe(true);
    expect(holds({ StringEquals: { 'aws:SecureTransport': ['false', 'true'] } })).toBe(true);
    expect(holds({ StringNotEquals: { 'aws:SecureTransport': 'true' } })).toBe(false);
    expect(holds({ StringLike: { 'aws:SourceArn': 'arn:aws:dynamodb:*:table/Reg*' } })).toBe(true);
    expect(holds({ StringEquals: { 'aws:Missing': 'x' } })).toBe(false);
    expect(holds({ StringEqualsIfExists: { 'aws:Missing': 'x' } })).toBe(true);
    // a missing key: negated operators hold, the others do not
    expect(holds({ StringNotEquals: { 'aws:Missing': 'x' } })).toBe(true);
    expect(holds({ StringNotLike: { 'aws:Missing': 'x*' } })).toBe(true);
    expect(holds({ ArnNotLike: { 'aws:Missing': 'arn:*' } })).toBe(true);
    expect(holds({ StringLike: { 'aws:Missing': '*' } })).toBe(false);
  });

  it('ArnEquals / ArnLike, Bool and Null', () => {
    expect(holds({ ArnLike: { 'aws:SourceArn': 'arn:aws:dynamodb:us-east-1:*:table/*' } })).toBe(true);
    expect(holds({ ArnEquals: { 'aws:SourceArn': `${TABLE}2` } })).toBe(false);
    expect(holds({ Bool: { 'aws:SecureTransport': 'true' } })).toBe(true);
    expect(holds({ Bool: { 'aws:SecureTransport': false } })).toBe(false);
    expect(holds({ Null: { 'aws:Missing': 'true' } })).toBe(true);
    expect(holds({ Null: { 'aws:SecureTransport': 'true' } })).toBe(false);
    expect(holds({ Null: { 'aws:SecureTransport': 'false' } })).toBe(true);
  });

  it('ForAllValues and ForAnyValue over a multi-valued key', () => {
    expect(holds({ 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': 'dev#*' } })).toBe(true);
    expect(holds({ 'ForAllValues:StringEquals': { 'dynamodb:LeadingKeys': ['dev#1'] } })).toBe(false);
    expect(holds({ 'ForAnyValue:StringEquals': { 'dynamodb:LeadingKeys': ['dev#2', 'dev#9'] } })).toBe(true);
    expect(holds({ 'ForAnyValue:StringEquals': { 'dynamodb:LeadingKeys': ['dev#9'] } })).toBe(false);
    // ForAllValues over a missing key is true (an empty set), ForAnyValue false
    expect(holds({ 'ForAllValues:StringEquals': { 'aws:Missing': 'x' } })).toBe(true);
    expect(holds({ 'ForAnyValue:StringEquals': { 'aws:Missing': 'x' } })).toBe(false);
  });

  it('all operators and all keys must hold', () => {
    expect(
      holds({ Bool: { 'aws:SecureTransport': 'true' }, StringEquals: { 'aws:SourceArn': 'other' } }),
    ).toBe(false);
  });
});

// ─────────── the real synthesized template ───────────

describe('the synthesized default template', () => {
  let asm: Assembly;
  let cleanup = () => {};
  let model: TemplateModel;

  const overridesFor = (m: TemplateModel): Record<string, string> => {
    const out: Record<string, string> = {};
    for (const c of m.customResources()) out[`${c.logicalId}.endpointAddress`] = 'localhost:8883';
    return out;
  };
  const build = (template = asm.stacks[0]!.template) => {
    const base = new TemplateModel(template, {
      region: REGION,
      account: ACCOUNT,
      stackName: asm.stacks[0]!.stackName,
    });
    return new TemplateModel(template, {
      region: REGION,
      account: ACCOUNT,
      stackName: asm.stacks[0]!.stackName,
      assemblyDir: asm.outdir,
      assetDirs: asm.stacks[0]!.assetDirs,
      overrides: overridesFor(base),
    });
  };
  const fnId = (m: TemplateModel, prefix: string) => {
    const f = m.functions().find((x) => x.logicalId.startsWith(prefix));
    if (!f) throw new Error(`no function ${prefix}* in the template`);
    return f.logicalId;
  };
  const tableArn = (m: TemplateModel, prefix: string) => {
    const t = m.tables().find((x) => x.logicalId.startsWith(prefix));
    if (!t) throw new Error(`no table ${prefix}* in the template`);
    return t.arn;
  };
  const topic = (t: string) => `arn:aws:iot:${REGION}:${ACCOUNT}:topic/${t}`;

  beforeAll(async () => {
    const s = await synthesize();
    cleanup = s.cleanup;
    asm = loadAssembly(s.outdir);
    model = build();
  }, SYNTH_TIMEOUT_MS);
  afterAll(() => cleanup());

  it('allows the calls each function makes and denies the ones its role does not grant', () => {
    const sparkplug = fnId(model, 'SparkplugIngestFunction');
    const api = fnId(model, 'ApiFunction');
    const authorizer = fnId(model, 'AuthorizerFunction');
    const registry = tableArn(model, 'TablesRegistryTable');
    const secret = model.secrets()[0]!.arn;

    const sp = evaluate(model.policiesFor(sparkplug).statements, [
      call('dynamodb:UpdateItem', registry),
      call('dynamodb:BatchGetItem', registry),
      call('iot:Publish', topic('spBv1.0/plant/NCMD/edge-1')),
      // not granted: device commands, the admin secret, registry scans
      call('iot:Publish', topic('spBv1.0/plant/DCMD/edge-1/dev')),
      call('secretsmanager:GetSecretValue', secret),
      call('dynamodb:Scan', registry),
    ]);
    expect(sp.allowed).toHaveLength(3);
    expect(sp.denied.map((d) => formatDenial(sparkplug, d))).toEqual([
      `${sparkplug}: iot:Publish on ${topic('spBv1.0/plant/DCMD/edge-1/dev')} is not allowed by its role — no statement allows it (implicit deny)`,
      `${sparkplug}: secretsmanager:GetSecretValue on ${secret} is not allowed by its role — no statement allows it (implicit deny)`,
      `${sparkplug}: dynamodb:Scan on ${registry} is not allowed by its role — no statement allows it (implicit deny)`,
    ]);

    // The API trusts the authorizer's decision: it cannot read the admin key (ADR 0025 amendment 2).
    const ap = evaluate(model.policiesFor(api).statements, [
      call('dynamodb:Query', `${registry}/index/gsi1`),
      call('iot:Publish', topic('spBv1.0/plant/DCMD/edge-1/dev')),
      call('iot:Publish', topic('lwm2m/rd/ep-1')),
      call('secretsmanager:GetSecretValue', secret),
    ]);
    expect(ap.denied.map((d) => d.call.action)).toEqual(['GetSecretValue']);

    const au = evaluate(model.policiesFor(authorizer).statements, [
      call('dynamodb:GetItem', registry),
      call('secretsmanager:GetSecretValue', secret),
      call('dynamodb:PutItem', registry),
    ]);
    expect(au.denied.map((d) => d.call.action)).toEqual(['PutItem']);
  });

  it('reports no excess when every granted (action × resource) is called, and names the unused ones', () => {
    const sparkplug = fnId(model, 'SparkplugIngestFunction');
    const statements = model.policiesFor(sparkplug).statements;
    const calls: AwsCall[] = [];
    for (const st of statements) {
      for (const a of [st.Action ?? []].flat()) {
        for (const r of [st.Resource ?? []].flat()) {
          const [service, action] = a.split(':') as [string, string];
          calls.push({ service, action, resource: r.replace(/\*/g, 'x') });
        }
      }
    }
    expect(calls.length).toBeGreaterThan(5);
    const all = evaluate(statements, calls);
    expect(all.denied).toEqual([]);
    expect(all.excess).toEqual([]);

    const withoutPut = evaluate(
      statements,
      calls.filter(
        (c) => !(c.action === 'UpdateItem' && c.resource === tableArn(model, 'TablesRegistryTable')),
      ),
    );
    expect(formatEvaluation(sparkplug, withoutPut)).toContain(
      `${sparkplug}: grant dynamodb:UpdateItem on ${tableArn(model, 'TablesRegistryTable')} never used (excess; statement ${withoutPut.excess[0]!.statementIndex}${withoutPut.excess[0]!.sid ? ` (${withoutPut.excess[0]!.sid})` : ''} of ${withoutPut.excess[0]!.source})`,
    );
  });

  it('denies a call, naming it, once its statement is dropped from a copy of the template', () => {
    const sparkplug = fnId(model, 'SparkplugIngestFunction');
    const registry = tableArn(model, 'TablesRegistryTable');
    const calls = [call('dynamodb:UpdateItem', registry), call('iot:Publish', topic('spBv1.0/g/NCMD/n'))];
    expect(evaluate(model.policiesFor(sparkplug).statements, calls).denied).toEqual([]);

    const copy = clone(asm.stacks[0]!.template);
    const registryId = model.tables().find((t) => t.arn === registry)!.logicalId;
    let dropped = 0;
    for (const r of Object.values(copy.Resources)) {
      if (r.Type !== 'AWS::IAM::Policy') continue;
      const roles = JSON.stringify(r.Properties?.Roles);
      if (!roles.includes(model.function(sparkplug).roleLogicalId!)) continue;
      const doc = r.Properties!.PolicyDocument as { Statement: Array<{ Resource?: unknown }> };
      const before = doc.Statement.length;
      doc.Statement = doc.Statement.filter(
        (s) => !JSON.stringify(s.Resource ?? '').includes(`"${registryId}"`),
      );
      dropped += before - doc.Statement.length;
    }
    // The registry table's statement and its gsi1 index's (the rule list, ADR 0016).
    expect(dropped).toBe(2);
    const ev = evaluate(build(copy).policiesFor(sparkplug).statements, calls);
    expect(ev.denied.map((d) => formatDenial(sparkplug, d))).toEqual([
      `${sparkplug}: dynamodb:UpdateItem on ${registry} is not allowed by its role — no statement allows it (implicit deny)`,
    ]);
  });

  it('lets a Deny added to a copy of the template override the role’s Allow', () => {
    const api = fnId(model, 'ApiFunction');
    const copy = clone(asm.stacks[0]!.template);
    const roleId = model.function(api).roleLogicalId!;
    copy.Resources.TestDenyDeletes = {
      Type: 'AWS::IAM::Policy',
      Properties: {
        PolicyName: 'deny-deletes',
        Roles: [{ Ref: roleId }],
        PolicyDocument: {
          Version: '2012-10-17',
          Statement: [{ Sid: 'NoDeletes', Effect: 'Deny', Action: 'dynamodb:Delete*', Resource: '*' }],
        },
      },
    };
    const registry = tableArn(model, 'TablesRegistryTable');
    const ev = evaluate(build(copy).policiesFor(api).statements, [
      call('dynamodb:DeleteItem', registry),
      call('dynamodb:GetItem', registry),
    ]);
    expect(ev.denied).toHaveLength(1);
    expect(ev.denied[0]!.call.action).toBe('DeleteItem');
    expect(ev.denied[0]!.reason).toMatch(
      /^explicitly denied by statement \d+ \(NoDeletes\) of TestDenyDeletes$/,
    );
  });
});
