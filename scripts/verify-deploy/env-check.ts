/**
 * Every environment variable a function's code reads is set by the template — checked two ways:
 *
 * (a) statically (`staticEnvCheck`), from what ships: the function's BUNDLE (the asset CDK built) and
 *     the config specs of functions/core/config.ts. A spec applies to a bundle when the bundle names
 *     all of the spec's required keys (the spec object is bundled with its key names). The code can
 *     read: the keys of every applying spec, the `process.env.X` / `process.env['X']` reads of the
 *     bundle (minified code keeps property names), and the variables of the requirement rules whose
 *     marker the bundle contains. Then, against the template's Environment:
 *       - a REQUIRED variable the template does not set is an error (spec `required`, or a rule:
 *         TELEMETRY_TABLE when TELEMETRY_BACKEND=dynamodb, ADMIN_KEY_SECRET_ARN where the code reads
 *         the admin key, IOT_DATA_ENDPOINT where the code publishes to the IoT data plane, ...);
 *       - a value the spec would reject (enum, integer, boolean), an unknown DUALPATH_* key, or a
 *         variable Lambda reserves is an error;
 *       - a variable the template sets that the bundle never names is a warning.
 * (b) dynamically (`checkObservedReads`), from the names the harness's runtime recorded reading:
 *     a read that is neither set by the template, nor provided by Lambda, nor an optional key whose
 *     absence the code handles (a spec key with a default, or optional and not required by a rule) is
 *     an error naming the function and the variable.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { type ConfigSpec, ingestConfigSpec, parseConfig } from '../../functions/core/config.js';

/** A config spec the functions parse, and the prefix parseConfig rejects unknown keys under. */
export interface SpecUse {
  name: string;
  spec: ConfigSpec;
  strictPrefix?: string;
}

/** The specs of functions/core/config.ts (loadConfig in functions/shared/aws.ts parses ingestConfigSpec). */
export const CONFIG_SPECS: readonly SpecUse[] = [
  { name: 'ingestConfigSpec', spec: ingestConfigSpec, strictPrefix: 'DUALPATH_' },
];

/**
 * A variable the code requires beyond a spec's `required` keys. The rule applies to a bundle that
 * contains `ifBundleContains` (a marker of the code path that needs it: its error message, or the
 * SDK client it configures) and, with `when`, only when that variable has that value in the template
 * (or, absent, its spec default).
 */
export interface EnvRule {
  variable: string;
  /** A text the bundle must contain for the rule to apply. */
  ifBundleContains?: string;
  /** Or a predicate over the bundle text and the inputs the bundle holds code of (its metafile). */
  ifBundle?: (code: string, inputs?: readonly string[]) => boolean;
  when?: { variable: string; equals: string };
  reason: string;
}

export const ENV_RULES: readonly EnvRule[] = [
  {
    variable: 'TELEMETRY_TABLE',
    when: { variable: 'TELEMETRY_BACKEND', equals: 'dynamodb' },
    ifBundleContains: 'TELEMETRY_TABLE is required',
    reason: 'the DynamoDB telemetry store is built on it (TELEMETRY_BACKEND=dynamodb)',
  },
  {
    variable: 'TIMESTREAM_DATABASE',
    when: { variable: 'TELEMETRY_BACKEND', equals: 'timestream' },
    ifBundleContains: 'TIMESTREAM_DATABASE and TIMESTREAM_TABLE are required',
    reason: 'the Timestream telemetry store is built on it (TELEMETRY_BACKEND=timestream)',
  },
  {
    variable: 'TIMESTREAM_TABLE',
    when: { variable: 'TELEMETRY_BACKEND', equals: 'timestream' },
    ifBundleContains: 'TIMESTREAM_DATABASE and TIMESTREAM_TABLE are required',
    reason: 'the Timestream telemetry store is built on it (TELEMETRY_BACKEND=timestream)',
  },
  {
    variable: 'ADMIN_KEY_SECRET_ARN',
    ifBundleContains: 'ADMIN_KEY_SECRET_ARN',
    reason: 'the admin key hash is read from that secret at cold start',
  },
  {
    variable: 'IOT_DATA_ENDPOINT',
    ifBundle: (code, inputs) =>
      constructsSdkClient(code, '@aws-sdk/client-iot-data-plane', 'IoTDataPlaneClient', inputs),
    reason:
      'without it the IoT data-plane client publishes to the legacy default endpoint, not the account ATS endpoint',
  },
];

/** Variables Lambda sets (or that configure the runtime/SDK) — never expected in a template. */
const PROVIDED_PATTERNS: readonly RegExp[] = [
  /^AWS_/,
  /^LAMBDA_/,
  /^_HANDLER$/,
  /^_X_AMZN_TRACE_ID$/,
  /^_AWS_XRAY_/,
  /^NODE_/,
  /^(TZ|LANG|PATH|LD_LIBRARY_PATH|HOME|PWD|SHLVL|HOSTNAME|TMPDIR|TEMP|TMP|TERM|USER)$/,
];

/** Variables a library reads as optional tuning (its defaults apply when absent). */
const LIBRARY_OPTIONAL_PATTERNS: readonly RegExp[] = [
  /^POWERTOOLS_/,
  /^LOG_LEVEL$/,
  /^DEBUG$/,
  /^NO_COLOR$/,
  /^FORCE_COLOR$/,
];

/** Template variables consumed by the Lambda runtime itself, not by the code. */
const RUNTIME_CONSUMED: ReadonlySet<string> = new Set([
  'NODE_OPTIONS',
  'NODE_EXTRA_CA_CERTS',
  'AWS_LAMBDA_EXEC_WRAPPER',
  'AWS_NODEJS_CONNECTION_REUSE_ENABLED',
  'TZ',
]);

/** Keys Lambda reserves: a function's configuration may not set them. */
const RESERVED: ReadonlySet<string> = new Set([
  '_HANDLER',
  '_X_AMZN_TRACE_ID',
  'AWS_DEFAULT_REGION',
  'AWS_REGION',
  'AWS_EXECUTION_ENV',
  'AWS_LAMBDA_FUNCTION_NAME',
  'AWS_LAMBDA_FUNCTION_MEMORY_SIZE',
  'AWS_LAMBDA_FUNCTION_VERSION',
  'AWS_LAMBDA_INITIALIZATION_TYPE',
  'AWS_LAMBDA_LOG_GROUP_NAME',
  'AWS_LAMBDA_LOG_STREAM_NAME',
  'AWS_ACCESS_KEY',
  'AWS_ACCESS_KEY_ID',
  'AWS_SECRET_ACCESS_KEY',
  'AWS_SESSION_TOKEN',
  'AWS_LAMBDA_RUNTIME_API',
  'LAMBDA_TASK_ROOT',
  'LAMBDA_RUNTIME_DIR',
]);

/** True for variables the Lambda runtime provides (or that configure the runtime and SDK). */
export function isLambdaProvided(name: string): boolean {
  return PROVIDED_PATTERNS.some((p) => p.test(name));
}

/** True for optional tuning variables of bundled libraries (Powertools, ...). */
export function isLibraryOptional(name: string): boolean {
  return LIBRARY_OPTIONAL_PATTERNS.some((p) => p.test(name));
}

export interface EnvFinding {
  functionLogicalId: string;
  variable: string;
  severity: 'error' | 'warning';
  message: string;
}

/** What the static check needs of a function (a FunctionModel of template.ts fits). */
export interface FunctionEnvInput {
  logicalId: string;
  environment: Record<string, string>;
  assetDir?: string;
  inlineCode?: string;
}

export interface StaticEnvReport {
  functionLogicalId: string;
  /** The bundle file scanned, if any. */
  codeFile?: string;
  /** Specs that apply to this bundle. */
  specs: string[];
  /** Direct `process.env` reads found in the bundle. */
  directReads: string[];
  /** Every variable the code can read (specs, direct reads, rules), Lambda-provided ones excluded. */
  readable: string[];
  /** Variables the code requires in this template (spec required keys and applying rules). */
  required: string[];
  errors: EnvFinding[];
  warnings: EnvFinding[];
}

const BUNDLE_FILES = ['index.mjs', 'index.js', 'index.cjs'];

/**
 * The bundle text of an asset directory (index.mjs/js/cjs), or undefined. A split bundle (ADR 0025,
 * amendment 1) is the entry plus its chunks: the text is all of them, the entry first.
 */
export function readBundle(assetDir: string): { file: string; code: string } | undefined {
  for (const f of BUNDLE_FILES) {
    const file = path.join(assetDir, f);
    if (!fs.existsSync(file)) continue;
    const chunks = fs
      .readdirSync(assetDir)
      .filter((c) => c !== f && /\.(mjs|js|cjs)$/.test(c))
      .sort()
      .map((c) => fs.readFileSync(path.join(assetDir, c), 'utf8'));
    return { file, code: [fs.readFileSync(file, 'utf8'), ...chunks].join('\n') };
  }
  return undefined;
}

/** `process.env.X`, `process.env['X']`, `process.env?.X` and `{ X } = process.env` reads of a bundle. */
export function findEnvReads(code: string): string[] {
  const names = new Set<string>();
  const patterns = [
    /process\.env\??\.([A-Za-z_$][\w$]*)/g,
    /process\.env\??\.?\[\s*(['"`])([A-Za-z_][\w]*)\1\s*\]/g,
    /\{([^{}]{1,400})\}\s*=\s*process\.env\b/g,
  ];
  for (const m of code.matchAll(patterns[0]!)) names.add(m[1]!);
  for (const m of code.matchAll(patterns[1]!)) names.add(m[2]!);
  for (const m of code.matchAll(patterns[2]!)) {
    for (const part of m[1]!.split(',')) {
      const key = part.split(/[:=]/)[0]!.trim();
      if (/^[A-Za-z_][\w]*$/.test(key)) names.add(key);
    }
  }
  return [...names].sort();
}

/** Does the code name this variable anywhere (property, string, identifier)? */
export function bundleMentions(code: string, name: string): boolean {
  return new RegExp(`(^|[^A-Za-z0-9_$])${name.replace(/[$]/g, '\\$')}($|[^A-Za-z0-9_$])`).test(code);
}

function specApplies(code: string, use: SpecUse): boolean {
  const required = Object.entries(use.spec)
    .filter(([, s]) => s.required)
    .map(([k]) => k);
  const keys = required.length > 0 ? required : Object.keys(use.spec);
  return keys.length > 0 && keys.every((k) => bundleMentions(code, k));
}

/**
 * Does the bundle construct this SDK client? Two cases:
 * - the SDK external (the Lambda runtime's copy): an import can survive tree shaking in a bundle that
 *   never uses it, so only a construction (`new IoTDataPlaneClient(` under its import alias) counts;
 * - the SDK bundled in (ADR 0025; `inputs` = the files the bundle holds code of, from esbuild's
 *   metafile): minified code keeps no class names, but tree shaking keeps the client's own module
 *   (`<pkg>/dist-es/<ClientClass>.js`) only where code reaches the client, so its presence counts.
 */
export function constructsSdkClient(
  code: string,
  pkg: string,
  clientClass: string,
  inputs?: readonly string[],
): boolean {
  if (inputs?.some((f) => f.includes(`node_modules/${pkg}/`) && f.endsWith(`/${clientClass}.js`)))
    return true;
  const aliases = new Set<string>();
  const escPkg = pkg.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
  const importRe = new RegExp(`import\\s*\\{([^}]*)\\}\\s*from\\s*["']${escPkg}["']`, 'g');
  for (const m of code.matchAll(importRe)) {
    for (const part of m[1]!.split(',')) {
      const [name, alias] = part.trim().split(/\s+as\s+/);
      if (name === clientClass) aliases.add((alias ?? name).trim());
    }
  }
  if (aliases.size === 0 && code.includes(pkg)) aliases.add(clientClass);
  return [...aliases].some((a) => new RegExp(`new\\s+${a.replace(/[$]/g, '\\$')}\\s*\\(`).test(code));
}

/**
 * The source files a bundle holds code of (bytes in the output), from the esbuild metafile CDK writes
 * beside it (`index.meta.json`, bundling option `metafile`); undefined without one.
 */
export function readBundleInputs(assetDir: string): string[] | undefined {
  const file = path.join(assetDir, 'index.meta.json');
  if (!fs.existsSync(file)) return undefined;
  const meta = JSON.parse(fs.readFileSync(file, 'utf8')) as {
    outputs?: Record<string, { inputs?: Record<string, { bytesInOutput?: number }> }>;
  };
  const inputs = new Set<string>();
  for (const out of Object.values(meta.outputs ?? {}))
    for (const [f, i] of Object.entries(out.inputs ?? {})) if ((i.bytesInOutput ?? 0) > 0) inputs.add(f);
  return [...inputs].sort();
}

function ruleMarked(rule: EnvRule, code: string, inputs?: readonly string[]): boolean {
  if (rule.ifBundleContains !== undefined && !code.includes(rule.ifBundleContains)) return false;
  if (rule.ifBundle && !rule.ifBundle(code, inputs)) return false;
  return rule.ifBundleContains !== undefined || rule.ifBundle !== undefined;
}

function ruleApplies(
  rule: EnvRule,
  code: string,
  env: Record<string, string>,
  specs: readonly SpecUse[],
  inputs?: readonly string[],
): boolean {
  if (!ruleMarked(rule, code, inputs)) return false;
  if (!rule.when) return true;
  let value: string | undefined = env[rule.when.variable];
  if (value === undefined || value === '') {
    for (const u of specs) {
      const d = u.spec[rule.when.variable]?.default;
      if (d !== undefined) value = d;
    }
  }
  return value === rule.when.equals;
}

export interface EnvCheckOptions {
  /** The bundle text (else read from assetDir, or inlineCode). */
  code?: string;
  specs?: readonly SpecUse[];
  rules?: readonly EnvRule[];
  /** The files the bundle holds code of (else read from assetDir's metafile, if any). */
  bundledInputs?: readonly string[];
}

/** The static check of one function; see the module comment. */
export function staticEnvCheck(fn: FunctionEnvInput, opts: EnvCheckOptions = {}): StaticEnvReport {
  const id = fn.logicalId;
  const env = fn.environment;
  const errors: EnvFinding[] = [];
  const warnings: EnvFinding[] = [];
  const err = (variable: string, message: string) =>
    errors.push({ functionLogicalId: id, variable, severity: 'error', message: `${id}: ${message}` });
  const warn = (variable: string, message: string) =>
    warnings.push({ functionLogicalId: id, variable, severity: 'warning', message: `${id}: ${message}` });

  let code = opts.code;
  let codeFile: string | undefined;
  if (code === undefined && fn.assetDir) {
    const b = readBundle(fn.assetDir);
    if (b) {
      code = b.code;
      codeFile = b.file;
    }
  }
  if (code === undefined && fn.inlineCode !== undefined) code = fn.inlineCode;
  const inputs = opts.bundledInputs ?? (fn.assetDir ? readBundleInputs(fn.assetDir) : undefined);
  const report: StaticEnvReport = {
    functionLogicalId: id,
    ...(codeFile ? { codeFile } : {}),
    specs: [],
    directReads: [],
    readable: [],
    required: [],
    errors,
    warnings,
  };
  for (const k of Object.keys(env)) {
    if (RESERVED.has(k))
      err(k, `environment variable ${k} is reserved by Lambda and may not be set by the template`);
  }
  if (code === undefined) {
    warn('', `no bundle found${fn.assetDir ? ` in ${fn.assetDir}` : ''}; its environment cannot be checked`);
    return report;
  }

  const specs = (opts.specs ?? CONFIG_SPECS).filter((u) => specApplies(code, u));
  const rules = opts.rules ?? ENV_RULES;
  report.specs = specs.map((s) => s.name);
  report.directReads = findEnvReads(code);
  const readable = new Set<string>(report.directReads.filter((n) => !isLambdaProvided(n)));
  const required = new Map<string, string>();

  for (const use of specs) {
    for (const [key, s] of Object.entries(use.spec)) {
      readable.add(key);
      if (s.required) required.set(key, `${use.name} requires it`);
      const value = env[key];
      if (value === undefined || value === '') continue;
      try {
        parseConfig({ [key]: s }, { [key]: value });
      } catch (error) {
        err(key, `environment variable ${key}: ${(error as Error).message}`);
      }
    }
    if (use.strictPrefix) {
      for (const key of Object.keys(env)) {
        if (key.startsWith(use.strictPrefix) && !(key in use.spec))
          err(
            key,
            `environment variable ${key} is not a key of ${use.name}; parseConfig rejects unknown ${use.strictPrefix}* keys`,
          );
      }
    }
  }
  for (const rule of rules) {
    if (!ruleMarked(rule, code, inputs)) continue;
    readable.add(rule.variable);
    if (ruleApplies(rule, code, env, specs, inputs) && !required.has(rule.variable))
      required.set(rule.variable, rule.reason);
  }

  for (const [key, why] of required) {
    if (env[key] === undefined || env[key] === '')
      err(
        key,
        `environment variable ${key} is required by its code (${why}) but the template does not set it`,
      );
  }
  for (const key of Object.keys(env)) {
    if (readable.has(key) || RUNTIME_CONSUMED.has(key) || RESERVED.has(key)) continue;
    if (bundleMentions(code, key)) {
      readable.add(key);
      continue;
    }
    warn(key, `environment variable ${key} is set by the template but its code never reads it`);
  }
  report.readable = [...readable].sort();
  report.required = [...required.keys()].sort();
  return report;
}

/** The static check of several functions (e.g. `model.functions()`), flattened. */
export function staticEnvCheckAll(
  fns: readonly FunctionEnvInput[],
  opts: Omit<EnvCheckOptions, 'code'> = {},
): { reports: StaticEnvReport[]; errors: EnvFinding[]; warnings: EnvFinding[] } {
  const reports = fns.map((f) => staticEnvCheck(f, opts));
  return {
    reports,
    errors: reports.flatMap((r) => r.errors),
    warnings: reports.flatMap((r) => r.warnings),
  };
}

export interface ObservedReadOptions {
  specs?: readonly SpecUse[];
  rules?: readonly EnvRule[];
  /** The bundle text, so that requirement rules can apply (without it only spec semantics are used). */
  code?: string;
  /** The files the bundle holds code of (its metafile), for rules over bundled SDK clients. */
  bundledInputs?: readonly string[];
}

/**
 * The dynamic check: `readNames` are the variables the function read while it ran (the harness
 * records them). Reported, as errors naming the function and the variable: every read that the
 * template does not set, that Lambda does not provide, and whose absence the code does not handle
 * (a required spec key, a key required by an applying rule, or a name outside every spec).
 * Optional spec keys with a default, optional keys no rule requires, and optional library tuning
 * variables (POWERTOOLS_*) are not reported.
 */
export function checkObservedReads(
  functionLogicalId: string,
  readNames: Iterable<string>,
  templateEnv: Record<string, string>,
  opts: ObservedReadOptions = {},
): EnvFinding[] {
  const specs = opts.specs ?? CONFIG_SPECS;
  const rules = opts.rules ?? ENV_RULES;
  const out: EnvFinding[] = [];
  const seen = new Set<string>();
  for (const name of readNames) {
    if (seen.has(name)) continue;
    seen.add(name);
    if (name in templateEnv && templateEnv[name] !== '') continue;
    if (isLambdaProvided(name) || isLibraryOptional(name)) continue;
    const keySpec = specs.map((u) => ({ u, s: u.spec[name] })).find((x) => x.s !== undefined);
    const requiredByRule =
      opts.code !== undefined
        ? rules.find(
            (r) => r.variable === name && ruleApplies(r, opts.code!, templateEnv, specs, opts.bundledInputs),
          )
        : undefined;
    let why: string | undefined;
    if (requiredByRule) why = `required: ${requiredByRule.reason}`;
    else if (keySpec?.s?.required) why = `required by ${keySpec.u.name}`;
    else if (keySpec)
      continue; // optional key: a default applies or the code handles its absence
    else why = 'no config spec declares it, so nothing guarantees its absence is handled';
    out.push({
      functionLogicalId,
      variable: name,
      severity: 'error',
      message: `${functionLogicalId}: read environment variable ${name}, which the template does not set (${why})`,
    });
  }
  return out;
}
