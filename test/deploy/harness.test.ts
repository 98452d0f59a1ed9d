/**
 * The deploy harness can fail: a copy of the synthesized default template with one environment
 * variable, one IAM statement or one table removed makes it fail with a message naming what is
 * missing. (The positive run over every documented variant is `npm run verify:deploy`.)
 * Set VERIFY_DEPLOY_ASSEMBLY=<dir> to reuse an assembly synthesized before.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runHarness } from '../../scripts/verify-deploy/harness.js';
import { synthesize } from '../../scripts/verify-deploy/main.js';

let root: string;
let assembly: string;

interface Template {
  Resources: Record<string, { Type: string; Properties?: Record<string, unknown> }>;
}

function templateFile(dir: string): string {
  return path.join(dir, fs.readdirSync(dir).find((f) => f.endsWith('.template.json'))!);
}

/** A copy of the assembly with its template changed by `edit`. */
function mutated(name: string, edit: (t: Template) => void): string {
  const dir = path.join(root, name);
  fs.cpSync(assembly, dir, { recursive: true });
  const file = templateFile(dir);
  const t = JSON.parse(fs.readFileSync(file, 'utf8')) as Template;
  edit(t);
  fs.writeFileSync(file, JSON.stringify(t));
  return dir;
}

function idOf(t: Template, type: string, prefix: string): string {
  const id = Object.keys(t.Resources).find((k) => k.startsWith(prefix) && t.Resources[k]!.Type === type);
  if (!id) throw new Error(`no ${type} ${prefix}* in the template`);
  return id;
}

beforeAll(async () => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'harness-test-'));
  const reuse = process.env.VERIFY_DEPLOY_ASSEMBLY;
  if (reuse) assembly = reuse;
  else {
    const s = await synthesize({}, path.join(root, 'default'));
    assembly = s.outdir;
    // cdk-nag findings fail the synth but still write the assembly; the harness needs the template.
    expect(fs.existsSync(templateFile(assembly))).toBe(true);
  }
}, 240_000);

afterAll(() => {
  fs.rmSync(root, { recursive: true, force: true });
});

describe('deploy harness negative cases', () => {
  it('fails naming the variable when an environment variable the API reads is dropped', async () => {
    const dir = mutated('no-env', (t) => {
      const api = idOf(t, 'AWS::Lambda::Function', 'ApiFunction');
      const vars = (t.Resources[api]!.Properties!.Environment as { Variables: Record<string, unknown> })
        .Variables;
      delete vars.REGISTRY_TABLE;
    });
    const report = await runHarness({ assemblyDir: dir, variant: 'no-env', scenarios: ['registry'] });
    expect(report.failures.join('\n')).toMatch(
      /ApiFunction\w*: reads? environment variable REGISTRY_TABLE,? which the template does not set/,
    );
  }, 120_000);

  it('fails naming the call when an IAM statement is dropped', async () => {
    const dir = mutated('no-statement', (t) => {
      const policy = idOf(t, 'AWS::IAM::Policy', 'AuthorizerFunctionServiceRoleDefaultPolicy');
      const doc = t.Resources[policy]!.Properties!.PolicyDocument as { Statement: Array<{ Sid?: string }> };
      doc.Statement = doc.Statement.filter((s) => s.Sid !== 'ReadAdminKey');
    });
    const report = await runHarness({ assemblyDir: dir, variant: 'no-statement', scenarios: ['registry'] });
    expect(report.failures.join('\n')).toMatch(
      /AuthorizerFunction\w*: secretsmanager:GetSecretValue on arn:aws:secretsmanager:\S+AdminKeySecret\S+ is not allowed by its role/,
    );
  }, 120_000);

  it('fails naming the table when a table is dropped', async () => {
    let table = '';
    const dir = mutated('no-table', (t) => {
      table = idOf(t, 'AWS::DynamoDB::Table', 'TablesEventsTable');
      delete t.Resources[table];
    });
    const report = await runHarness({ assemblyDir: dir, variant: 'no-table', scenarios: ['registry'] });
    expect(report.failures.join('\n')).toContain(table);
  }, 120_000);

  it('passes the unchanged registry scenario with no denied call and no missing variable', async () => {
    const report = await runHarness({ assemblyDir: assembly, variant: 'default', scenarios: ['registry'] });
    const serious = report.failures.filter((f) => !f.includes('never used (excess'));
    expect(serious).toEqual([]);
    expect(report.functions.map((f) => f.logicalId).some((id) => id.startsWith('AuthorizerFunction'))).toBe(
      true,
    );
  }, 120_000);
});
