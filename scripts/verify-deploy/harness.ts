/**
 * The deploy harness on one synthesized assembly: deploy it locally (deployment.ts), drive it with
 * the scenarios, then judge every function: IAM by execution (iam.ts: every recorded call allowed by
 * the function's role in the template, every grant used), environment (every variable the code read
 * is set by the template or by Lambda), and no function error or unexpected response.
 */

import * as fs from 'node:fs';
import * as path from 'node:path';
import type { RecordedCall } from './aws-endpoint.js';
import { checkEnvReads, type EnvVerdict, LIBRARY_READS } from './checks.js';
import { Deployment } from './deployment.js';
import { checkObservedReads, readBundleInputs, staticEnvCheck } from './env-check.js';
import { type AwsCall, type Evaluation, evaluate, formatEvaluation } from './iam.js';
import { runScenarios, SCENARIOS, type ScenarioName } from './scenario.js';

export interface HarnessOptions {
  assemblyDir: string;
  variant: string;
  scenarios?: readonly ScenarioName[];
  log?: (line: string) => void;
  verbose?: boolean;
}

export interface FunctionReport {
  logicalId: string;
  name: string;
  runtime: string;
  calls: RecordedCall[];
  iam: Evaluation;
  env: EnvVerdict;
  envReads: string[];
  /** False when no invocation of the function succeeded: its grants are listed, not judged for excess. */
  driven: boolean;
}

export interface HarnessReport {
  variant: string;
  functions: FunctionReport[];
  /** Every reason the run fails, each naming the function, variable, statement or table. */
  failures: string[];
  notes: string[];
  /** What the harness could not drive; printed with every report. */
  limitations: string[];
}

export function toAwsCall(c: RecordedCall): AwsCall {
  return {
    service: c.action.split(':')[0]!,
    action: c.action.split(':').slice(1).join(':'),
    resource: c.resource,
    via: c.origin === 'service' ? 'service' : 'function',
    ...(c.context ? { context: c.context } : {}),
  };
}

export async function runHarness(o: HarnessOptions): Promise<HarnessReport> {
  const log = o.log ?? (() => {});
  const d = new Deployment({ assemblyDir: o.assemblyDir, log, ...(o.verbose ? { verbose: true } : {}) });
  const failures: string[] = [];
  try {
    try {
      await d.start();
    } catch (error) {
      failures.push(`deployment: ${error instanceof Error ? error.message : String(error)}`);
      return {
        variant: o.variant,
        functions: [],
        failures: [...failures, ...d.failures],
        notes: d.notes,
        limitations: d.limitations,
      };
    }
    const adminSecret = [...d.secrets.values()][0];
    const telemetryReadable = [...d.functions.values()].some(
      (f) => f.model.environment.TELEMETRY_BACKEND === 'dynamodb',
    );
    await runScenarios(
      {
        d,
        adminKey: adminSecret ?? '',
        telemetryReadable,
        fail: (m) => failures.push(m),
        log,
      },
      o.scenarios ?? SCENARIOS,
    );
    const timestream = [...d.functions.values()].some(
      (f) => f.model.environment.TELEMETRY_BACKEND === 'timestream',
    );
    if (timestream) {
      // The emulated Timestream answers queries empty: the readings are checked where they were written.
      const n = d.endpoint.timestreamWrites.reduce((s, w) => s + w.records, 0);
      log(`  Timestream WriteRecords: ${n} records in ${d.endpoint.timestreamWrites.length} requests`);
      const ingestRan = (o.scenarios ?? SCENARIOS).some(
        (x) => x === 'sparkplug' || x === 'lwm2m' || x === 'reads',
      );
      if (ingestRan && n === 0) failures.push('scenario: the ingest functions wrote no Timestream records');
    }

    const functions: FunctionReport[] = [];
    for (const [id, f] of d.functions) {
      const calls = d.endpoint.calls.filter((c) => c.function === id);
      const statements = f.model.statements.map((s) => ({ ...s, source: s.policy }));
      const driven = f.process.succeeded > 0;
      const iam = evaluate(
        statements as never,
        calls.map(toAwsCall),
        driven ? {} : { excessFilter: () => false },
      );
      if (!driven) {
        d.limitations.push(
          `${id} never ran an invocation to completion (${f.process.invoked} invoked; a provider that fails to load is not invoked): its ${statements.length} statement(s) are not judged for excess`,
        );
      }
      const envReads = await f.process.envReads();
      const env = checkEnvReads(envReads, f.model.environment);
      // env-check.ts: the static check of what ships (bundle + config specs vs the template's
      // Environment), and its verdict on the reads observed (library-internal reads left out).
      const bundle = ['index.mjs', 'index.js', 'index.cjs']
        .map((b) => path.join(f.model.assetDir, b))
        .find((file) => fs.existsSync(file));
      const code = bundle ? fs.readFileSync(bundle, 'utf8') : undefined;
      const statics = staticEnvCheck({
        logicalId: id,
        environment: f.model.environment,
        assetDir: f.model.assetDir,
      });
      for (const e of statics.errors)
        env.missing.includes(e.variable) || failures.push(`static env check: ${e.message}`);
      for (const w of statics.warnings) d.notes.push(`static env check: ${w.message}`);
      const observed = checkObservedReads(
        id,
        envReads.filter((r) => !LIBRARY_READS.has(r)),
        f.model.environment,
        code !== undefined ? { code, bundledInputs: readBundleInputs(f.model.assetDir) } : {},
      );
      for (const e of observed) if (!env.missing.includes(e.variable)) env.missing.push(e.variable);
      functions.push({
        logicalId: id,
        name: f.model.name,
        runtime: f.model.runtime,
        calls,
        iam,
        env,
        envReads,
        driven,
      });
      failures.push(...formatEvaluation(id, iam).filter((m) => !iam.warnings.some((w) => m.endsWith(w))));
      for (const v of env.missing) {
        failures.push(`${id}: reads environment variable ${v}, which the template does not set`);
      }
    }
    const unknown = d.endpoint.calls.filter((c) => !d.functions.has(c.function));
    for (const c of unknown)
      failures.push(`an AWS call from an unknown caller: ${c.action} on ${c.resource}`);
    failures.push(...d.endpoint.unhandled.map((u) => `unhandled AWS request: ${u}`));
    failures.push(...d.failures);
    return { variant: o.variant, functions, failures, notes: d.notes, limitations: d.limitations };
  } finally {
    await d.stop();
  }
}

/** The per-function report: IAM calls observed (service:action on resource), verdicts. */
export function formatReport(r: HarnessReport): string[] {
  const out: string[] = [`== variant ${r.variant}`];
  for (const f of r.functions) {
    out.push(`-- ${f.logicalId} (${f.runtime})`);
    const seen = new Map<string, { n: number; origin: string }>();
    for (const c of f.calls) {
      const key = `${c.action} on ${c.resource}`;
      const e = seen.get(key) ?? { n: 0, origin: c.origin };
      e.n++;
      seen.set(key, e);
    }
    for (const [key, e] of [...seen].sort()) {
      out.push(`   ${e.origin === 'service' ? 'service' : 'code   '}  ${key}${e.n > 1 ? `  ×${e.n}` : ''}`);
    }
    out.push(
      `   IAM: ${f.iam.allowed.length} allowed, ${f.iam.denied.length} denied, ${f.iam.excess.length} excess grant(s)`,
    );
    for (const w of f.iam.warnings) out.push(`   IAM warning: ${w}`);
    out.push(
      `   env: ${f.env.missing.length === 0 ? 'every variable read is set' : `MISSING ${f.env.missing.join(', ')}`}${f.env.optional.length > 0 ? `; optional, unset: ${f.env.optional.join(', ')}` : ''}`,
    );
  }
  for (const n of r.notes) out.push(`note: ${n}`);
  for (const n of r.limitations) out.push(`NOT DRIVEN (harness limitation): ${n}`);
  if (r.failures.length === 0) out.push(`verdict ${r.variant}: PASS`);
  else {
    out.push(`verdict ${r.variant}: FAIL (${r.failures.length})`);
    for (const f of r.failures) out.push(`  ✗ ${f}`);
  }
  return out;
}
