/**
 * `npm run verify:deploy`: synthesize every documented deployment variant (infra/aws/variants.ts)
 * with the pinned CDK CLI, run each assembly through the deploy harness, print per variant and
 * function the AWS calls observed and the verdicts, and exit non-zero on any failure.
 *
 *   npm run verify:deploy                       every documented variant
 *   npm run verify:deploy -- --variant default  one variant
 *   npm run verify:deploy -- --assembly <dir>   an already synthesized assembly (no synth)
 *   VERIFY_DEPLOY_VERBOSE=1                     print the functions' logs too
 */
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { DOCUMENTED_VARIANTS } from '../../infra/aws/variants.js';
import { formatReport, type HarnessReport, runHarness } from './harness.js';
import { SCENARIOS, type ScenarioName } from './scenario.js';

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

export interface SynthResult {
  outdir: string;
  ok: boolean;
  output: string;
}

/** `cdk synth` of one variant into a fresh directory, with the CLI pinned in devDependencies. */
export function synthesize(context: Record<string, string>, outdir: string): Promise<SynthResult> {
  const args = ['cdk', 'synth', '--no-notices', '--quiet', '-o', outdir];
  for (const [k, v] of Object.entries(context)) args.push('-c', `${k}=${v}`);
  return new Promise((resolve) => {
    execFile(
      'npx',
      args,
      {
        cwd: REPO_ROOT,
        env: { ...process.env, CDK_DISABLE_CLI_TELEMETRY: 'true' },
        maxBuffer: 64 * 1024 * 1024,
      },
      (error, stdout, stderr) => resolve({ outdir, ok: !error, output: `${stdout}${stderr}` }),
    );
  });
}

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

async function main(): Promise<number> {
  const started = Date.now();
  const verbose = process.env.VERIFY_DEPLOY_VERBOSE === '1';
  const scenarios = (arg('--scenarios')?.split(',') ?? [...SCENARIOS]) as ScenarioName[];
  const log = (line: string) => process.stdout.write(`${line}\n`);
  const reports: HarnessReport[] = [];
  const assembly = arg('--assembly');
  if (assembly) {
    reports.push(
      await runHarness({ assemblyDir: assembly, variant: path.basename(assembly), scenarios, log, verbose }),
    );
  } else {
    const only = arg('--variant');
    const variants = DOCUMENTED_VARIANTS.filter((v) => !only || v.name === only);
    if (variants.length === 0) throw new Error(`no documented variant named ${only}`);
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'verify-deploy-synth-'));
    try {
      // Two synths at a time (each is mostly one CPU of tsx + esbuild + cdk-nag).
      const synths = new Map<string, Promise<SynthResult>>();
      const queue = [...variants];
      const running: Array<Promise<unknown>> = [];
      const startNext = () => {
        const v = queue.shift();
        if (!v) return;
        log(
          `synth ${v.name} (${
            Object.entries(v.context)
              .map(([k, x]) => `-c ${k}=${x}`)
              .join(' ') || 'no context'
          })`,
        );
        const p = synthesize(v.context, path.join(root, v.name));
        synths.set(v.name, p);
        running.push(p.then(startNext));
      };
      startNext();
      startNext();
      for (const v of variants) {
        while (!synths.has(v.name)) await Promise.race(running);
        const s = await synths.get(v.name)!;
        const hasTemplate =
          fs.existsSync(s.outdir) && fs.readdirSync(s.outdir).some((f) => f.endsWith('.template.json'));
        if (!s.ok)
          log(
            `synth ${v.name} FAILED:\n${s.output
              .split('\n')
              .filter((l) => /error|Error/.test(l))
              .slice(0, 30)
              .join('\n')}`,
          );
        if (!hasTemplate) {
          reports.push({
            variant: v.name,
            functions: [],
            failures: [`synth of ${v.name} produced no template`],
            notes: [],
            limitations: [],
          });
          continue;
        }
        const r = await runHarness({ assemblyDir: s.outdir, variant: v.name, scenarios, log, verbose });
        if (!s.ok) r.failures.unshift(`cdk synth of variant ${v.name} failed (see its errors above)`);
        reports.push(r);
        for (const line of formatReport(r)) log(line);
      }
    } finally {
      fs.rmSync(root, { recursive: true, force: true });
    }
  }
  if (assembly) for (const line of formatReport(reports[0]!)) log(line);
  const failed = reports.filter((r) => r.failures.length > 0);
  log(
    `verify:deploy: ${reports.length - failed.length}/${reports.length} variant(s) pass${failed.length ? ` (failing: ${failed.map((r) => r.variant).join(', ')})` : ''} in ${Math.round((Date.now() - started) / 1000)} s`,
  );
  return failed.length > 0 ? 1 : 0;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().then(
    (code) => process.exit(code),
    (error: unknown) => {
      process.stderr.write(
        `verify:deploy: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
      );
      process.exit(2);
    },
  );
}
