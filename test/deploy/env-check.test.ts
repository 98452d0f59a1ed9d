import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ConfigSpec } from '../../functions/core/config.js';
import {
  bundleMentions,
  checkObservedReads,
  constructsSdkClient,
  findEnvReads,
  isLambdaProvided,
  readBundle,
  readBundleInputs,
  type SpecUse,
  staticEnvCheck,
  staticEnvCheckAll,
} from '../../scripts/verify-deploy/env-check.js';
import {
  type Assembly,
  type CfnTemplate,
  loadAssembly,
  TemplateModel,
} from '../../scripts/verify-deploy/template.js';
import { ACCOUNT, clone, REGION, SYNTH_TIMEOUT_MS, synthesize } from './fixtures/synth.js';

describe('bundle scanning', () => {
  it('finds process.env reads in minified code', () => {
    const code =
      'var a=process.env.TABLE_NAME,b=process.env["QUEUE_URL"];let c=process.env?.MODE;' +
      "const{REGION_X:r,FLAG=1}=process.env;x(process.env['SINGLE'])";
    expect(findEnvReads(code)).toEqual(['FLAG', 'MODE', 'QUEUE_URL', 'REGION_X', 'SINGLE', 'TABLE_NAME']);
  });

  it('matches whole names only', () => {
    expect(bundleMentions('a={TABLE_NAME:{kind:"string"}}', 'TABLE_NAME')).toBe(true);
    expect(bundleMentions('a.TABLE_NAMES', 'TABLE_NAME')).toBe(false);
    expect(bundleMentions('MY_TABLE_NAME', 'TABLE_NAME')).toBe(false);
  });

  it('tells an SDK client constructed from one only imported', () => {
    const imported =
      'import{IoTDataPlaneClient as ba,PublishCommand as va}from"@aws-sdk/client-iot-data-plane";';
    expect(constructsSdkClient(imported, '@aws-sdk/client-iot-data-plane', 'IoTDataPlaneClient')).toBe(false);
    expect(
      constructsSdkClient(
        `${imported}function f(e){return new ba({endpoint:e})}`,
        '@aws-sdk/client-iot-data-plane',
        'IoTDataPlaneClient',
      ),
    ).toBe(true);
  });

  it('tells a bundled SDK client by the bundle metafile inputs (minified code keeps no class name)', () => {
    const pkg = '@aws-sdk/client-iot-data-plane';
    const kept = [
      'functions/adapters/publisher.ts',
      `node_modules/${pkg}/dist-es/IoTDataPlaneClient.js`,
      `node_modules/${pkg}/dist-es/commands/PublishCommand.js`,
    ];
    expect(constructsSdkClient('var a=class{}', pkg, 'IoTDataPlaneClient', kept)).toBe(true);
    // Shaken out: only other clients' modules (or this package's commands) are in the bundle.
    const shaken = [
      'node_modules/@aws-sdk/client-dynamodb/dist-es/DynamoDBClient.js',
      `node_modules/${pkg}/dist-es/commands/PublishCommand.js`,
    ];
    expect(constructsSdkClient('var a=class{}', pkg, 'IoTDataPlaneClient', shaken)).toBe(false);
  });

  it('reads the inputs that put bytes in the bundle from its metafile', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'env-check-meta-'));
    try {
      expect(readBundleInputs(dir)).toBeUndefined();
      fs.writeFileSync(
        path.join(dir, 'index.meta.json'),
        JSON.stringify({
          inputs: {},
          outputs: {
            'index.mjs': {
              inputs: {
                'node_modules/@aws-sdk/client-sns/dist-es/SNSClient.js': { bytesInOutput: 812 },
                'node_modules/@aws-sdk/client-sns/dist-es/index.js': { bytesInOutput: 0 },
              },
            },
          },
        }),
      );
      expect(readBundleInputs(dir)).toEqual(['node_modules/@aws-sdk/client-sns/dist-es/SNSClient.js']);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('reads a split bundle as the entry and its chunks, the entry first', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'env-check-split-'));
    try {
      fs.writeFileSync(path.join(dir, 'index.mjs'), 'import("./chunk-B.mjs");process.env.ENTRY_VAR;');
      fs.writeFileSync(path.join(dir, 'chunk-B.mjs'), 'export const t=process.env.CHUNK_VAR;');
      fs.writeFileSync(path.join(dir, 'index.mjs.map'), '{"mappings":"process.env.MAP_VAR"}');
      const bundle = readBundle(dir);
      expect(bundle?.file).toBe(path.join(dir, 'index.mjs'));
      expect(bundle?.code.startsWith('import("./chunk-B.mjs")')).toBe(true);
      expect(findEnvReads(bundle?.code ?? '').sort()).toEqual(['CHUNK_VAR', 'ENTRY_VAR']);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('knows the variables Lambda provides', () => {
    for (const n of [
      'AWS_REGION',
      'AWS_LAMBDA_FUNCTION_NAME',
      'LAMBDA_TASK_ROOT',
      '_HANDLER',
      '_X_AMZN_TRACE_ID',
      'TZ',
      'NODE_OPTIONS',
    ])
      expect(isLambdaProvided(n), n).toBe(true);
    expect(isLambdaProvided('REGISTRY_TABLE')).toBe(false);
  });
});

describe('staticEnvCheck on a hand-written bundle', () => {
  const spec = {
    TABLE: { kind: 'string', required: true },
    MODE: { kind: 'enum', values: ['a', 'b'], default: 'a' },
    LIMIT: { kind: 'int', default: '5' },
    BUCKET: { kind: 'string' },
  } as const satisfies ConfigSpec;
  const specs: SpecUse[] = [{ name: 'demoSpec', spec, strictPrefix: 'DEMO_' }];
  const code =
    'var s={TABLE:{kind:"string",required:!0},MODE:{kind:"enum"},LIMIT:{kind:"int"},BUCKET:{kind:"string"}};' +
    'var k=process.env.API_KEY_ARN;if(m==="b"&&!c.BUCKET)throw Error("BUCKET is required in mode b")';
  const rules = [
    {
      variable: 'BUCKET',
      when: { variable: 'MODE', equals: 'b' },
      ifBundleContains: 'BUCKET is required',
      reason: 'mode b writes there',
    },
    { variable: 'API_KEY_ARN', ifBundleContains: 'API_KEY_ARN', reason: 'the key is read at cold start' },
  ];
  const check = (environment: Record<string, string>) =>
    staticEnvCheck({ logicalId: 'DemoFunction', environment }, { code, specs, rules });

  it('passes a complete environment', () => {
    const r = check({ TABLE: 't', API_KEY_ARN: 'arn', NODE_OPTIONS: '--enable-source-maps' });
    expect(r.errors).toEqual([]);
    expect(r.warnings).toEqual([]);
    expect(r.specs).toEqual(['demoSpec']);
    expect(r.required).toEqual(['API_KEY_ARN', 'TABLE']);
    expect(r.readable).toEqual(['API_KEY_ARN', 'BUCKET', 'LIMIT', 'MODE', 'TABLE']);
  });

  it('names a missing required variable, from the spec or a rule', () => {
    const r = check({ API_KEY_ARN: 'arn', MODE: 'b' });
    expect(r.errors.map((e) => e.message)).toEqual([
      'DemoFunction: environment variable TABLE is required by its code (demoSpec requires it) but the template does not set it',
      'DemoFunction: environment variable BUCKET is required by its code (mode b writes there) but the template does not set it',
    ]);
    expect(r.errors.map((e) => e.variable)).toEqual(['TABLE', 'BUCKET']);
  });

  it('rejects values the spec rejects, unknown prefixed keys and reserved keys', () => {
    const r = check({
      TABLE: 't',
      API_KEY_ARN: 'a',
      MODE: 'c',
      LIMIT: 'ten',
      DEMO_EXTRA: '1',
      AWS_REGION: 'x',
    });
    expect(r.errors.map((e) => e.variable).sort()).toEqual(['AWS_REGION', 'DEMO_EXTRA', 'LIMIT', 'MODE']);
    expect(r.errors.find((e) => e.variable === 'MODE')!.message).toBe(
      'DemoFunction: environment variable MODE: configuration MODE="c" must be one of a, b',
    );
  });

  it('warns about a variable the code never reads', () => {
    const r = check({ TABLE: 't', API_KEY_ARN: 'a', LEFTOVER: 'x' });
    expect(r.errors).toEqual([]);
    expect(r.warnings.map((w) => w.message)).toEqual([
      'DemoFunction: environment variable LEFTOVER is set by the template but its code never reads it',
    ]);
  });

  it('does not apply a spec the bundle does not contain', () => {
    const r = staticEnvCheck(
      { logicalId: 'Other', environment: {} },
      { code: 'console.log(1)', specs, rules },
    );
    expect(r.specs).toEqual([]);
    expect(r.errors).toEqual([]);
  });

  it('reads the bundle from the asset directory, and warns when there is none', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'env-check-'));
    try {
      fs.writeFileSync(path.join(dir, 'index.mjs'), code);
      const r = staticEnvCheck(
        { logicalId: 'DemoFunction', environment: {}, assetDir: dir },
        { specs, rules },
      );
      expect(r.codeFile).toBe(path.join(dir, 'index.mjs'));
      expect(r.errors.map((e) => e.variable)).toEqual(['TABLE', 'API_KEY_ARN']);
      const none = staticEnvCheck({ logicalId: 'X', environment: {}, assetDir: path.join(dir, 'nope') });
      expect(none.warnings[0]!.message).toMatch(/^X: no bundle found in /);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('checkObservedReads', () => {
  const env = { REGISTRY_TABLE: 't', STATE_TABLE: 's', EVENTS_TABLE: 'e', TELEMETRY_BACKEND: 'dynamodb' };

  it('ignores Lambda-provided variables, template variables and optional keys', () => {
    expect(
      checkObservedReads(
        'SparkplugIngestFunction',
        [
          'AWS_REGION',
          '_HANDLER',
          'REGISTRY_TABLE',
          'REBIRTH_THROTTLE_MS',
          'TIMESTREAM_DATABASE',
          'POWERTOOLS_DEV',
          'TZ',
        ],
        env,
      ),
    ).toEqual([]);
  });

  it('reports a required key or an undeclared name the template does not set', () => {
    const out = checkObservedReads(
      'ApiFunction',
      ['STATE_TABLE', 'EVENTS_TABLE', 'ADMIN_KEY_SECRET_ARN', 'SECRET_TOKEN'],
      {
        REGISTRY_TABLE: 't',
        STATE_TABLE: 's',
      },
    );
    expect(out.map((f) => f.message)).toEqual([
      'ApiFunction: read environment variable EVENTS_TABLE, which the template does not set (required by ingestConfigSpec)',
      'ApiFunction: read environment variable ADMIN_KEY_SECRET_ARN, which the template does not set (no config spec declares it, so nothing guarantees its absence is handled)',
      'ApiFunction: read environment variable SECRET_TOKEN, which the template does not set (no config spec declares it, so nothing guarantees its absence is handled)',
    ]);
  });

  it('reports an optional key a rule requires, given the bundle', () => {
    const code = 'throw Error("TELEMETRY_TABLE is required with TELEMETRY_BACKEND=dynamodb")';
    expect(checkObservedReads('Fn', ['TELEMETRY_TABLE'], env)).toEqual([]);
    expect(checkObservedReads('Fn', ['TELEMETRY_TABLE'], env, { code }).map((f) => f.variable)).toEqual([
      'TELEMETRY_TABLE',
    ]);
  });
});

// ─────────── the real synthesized template ───────────

describe('the env check on the synthesized default template', () => {
  let asm: Assembly;
  let cleanup = () => {};
  beforeAll(async () => {
    const s = await synthesize();
    cleanup = s.cleanup;
    asm = loadAssembly(s.outdir);
  }, SYNTH_TIMEOUT_MS);
  afterAll(() => cleanup());

  const model = (template: CfnTemplate = asm.stacks[0]!.template) => {
    const stack = asm.stacks[0]!;
    const base = new TemplateModel(template, {
      region: REGION,
      account: ACCOUNT,
      stackName: stack.stackName,
    });
    const overrides: Record<string, string> = {};
    for (const c of base.customResources()) overrides[`${c.logicalId}.endpointAddress`] = 'localhost:8883';
    return new TemplateModel(template, {
      region: REGION,
      account: ACCOUNT,
      stackName: stack.stackName,
      assemblyDir: asm.outdir,
      assetDirs: stack.assetDirs,
      overrides,
    });
  };
  const idOf = (prefix: string) => {
    const id = Object.keys(asm.stacks[0]!.template.Resources).find(
      (k) => k.startsWith(prefix) && asm.stacks[0]!.template.Resources[k]!.Type === 'AWS::Lambda::Function',
    );
    if (!id) throw new Error(`no function ${prefix}*`);
    return id;
  };
  /** A copy of the template with one function's environment changed. */
  const withEnv = (fnPrefix: string, change: (vars: Record<string, unknown>) => void): CfnTemplate => {
    const copy = clone(asm.stacks[0]!.template);
    const props = copy.Resources[idOf(fnPrefix)]!.Properties as {
      Environment: { Variables: Record<string, unknown> };
    };
    change(props.Environment.Variables);
    return copy;
  };
  const errorsOf = (t: CfnTemplate) => staticEnvCheckAll(model(t).functions()).errors.map((e) => e.message);

  it('finds every required variable set, and the config spec applied to each of our functions', () => {
    const all = staticEnvCheckAll(model().functions());
    expect(all.errors).toEqual([]);
    for (const prefix of [
      'SparkplugIngestFunction',
      'Lwm2mIngestFunction',
      'ApiFunction',
      'AuthorizerFunction',
    ]) {
      const r = all.reports.find((x) => x.functionLogicalId === idOf(prefix))!;
      expect(r.specs, prefix).toEqual(['ingestConfigSpec']);
      expect(r.required, prefix).toEqual(
        expect.arrayContaining(['REGISTRY_TABLE', 'STATE_TABLE', 'EVENTS_TABLE']),
      );
    }
    const authorizer = all.reports.find((x) => x.functionLogicalId === idOf('AuthorizerFunction'))!;
    expect(authorizer.required).toContain('ADMIN_KEY_SECRET_ARN');
    // The API trusts the authorizer's decision and never reads the admin key (ADR 0025 amendment 2).
    const api = all.reports.find((x) => x.functionLogicalId === idOf('ApiFunction'))!;
    expect(api.required).not.toContain('ADMIN_KEY_SECRET_ARN');
    const sparkplug = all.reports.find((x) => x.functionLogicalId === idOf('SparkplugIngestFunction'))!;
    expect(sparkplug.required).toEqual(expect.arrayContaining(['TELEMETRY_TABLE', 'IOT_DATA_ENDPOINT']));
  });

  it('names the function and the variable when one is dropped from a copy of the template', () => {
    const sp = idOf('SparkplugIngestFunction');
    expect(errorsOf(withEnv('SparkplugIngestFunction', (v) => delete v.REGISTRY_TABLE))).toEqual([
      `${sp}: environment variable REGISTRY_TABLE is required by its code (ingestConfigSpec requires it) but the template does not set it`,
    ]);
    expect(errorsOf(withEnv('Lwm2mIngestFunction', (v) => delete v.TELEMETRY_TABLE))).toEqual([
      `${idOf('Lwm2mIngestFunction')}: environment variable TELEMETRY_TABLE is required by its code (the DynamoDB telemetry store is built on it (TELEMETRY_BACKEND=dynamodb)) but the template does not set it`,
    ]);
    expect(errorsOf(withEnv('AuthorizerFunction', (v) => delete v.ADMIN_KEY_SECRET_ARN))).toEqual([
      `${idOf('AuthorizerFunction')}: environment variable ADMIN_KEY_SECRET_ARN is required by its code (the admin key hash is read from that secret at cold start) but the template does not set it`,
    ]);
    expect(errorsOf(withEnv('SparkplugIngestFunction', (v) => delete v.IOT_DATA_ENDPOINT))).toEqual([
      expect.stringMatching(
        new RegExp(`^${sp}: environment variable IOT_DATA_ENDPOINT is required by its code`),
      ),
    ]);
  });

  it('names the variables a changed backend needs, and a value the spec rejects', () => {
    const sp = idOf('SparkplugIngestFunction');
    // TELEMETRY_BACKEND absent: the spec default (dynamodb) applies and needs its table
    expect(
      errorsOf(
        withEnv('SparkplugIngestFunction', (v) => {
          delete v.TELEMETRY_BACKEND;
          delete v.TELEMETRY_TABLE;
        }),
      ),
    ).toEqual([expect.stringContaining(`${sp}: environment variable TELEMETRY_TABLE is required`)]);
    // Switched to Timestream without its table names
    expect(errorsOf(withEnv('SparkplugIngestFunction', (v) => (v.TELEMETRY_BACKEND = 'timestream')))).toEqual(
      [
        expect.stringContaining(`${sp}: environment variable TIMESTREAM_DATABASE is required`),
        expect.stringContaining(`${sp}: environment variable TIMESTREAM_TABLE is required`),
      ],
    );
    expect(errorsOf(withEnv('SparkplugIngestFunction', (v) => (v.AUTO_REGISTER = 'maybe')))).toEqual([
      `${sp}: environment variable AUTO_REGISTER: configuration AUTO_REGISTER="maybe" must be true or false`,
    ]);
  });

  it('warns about a variable the code never reads', () => {
    const t = withEnv('SparkplugIngestFunction', (v) => (v.LEGACY_QUEUE_URL = 'x'));
    const warnings = staticEnvCheckAll(model(t).functions()).warnings.map((w) => w.message);
    expect(warnings).toContain(
      `${idOf('SparkplugIngestFunction')}: environment variable LEGACY_QUEUE_URL is set by the template but its code never reads it`,
    );
  });

  it('checks observed reads against the real environment', () => {
    const m = model();
    const fn = m.function(idOf('AuthorizerFunction'));
    const code = fs.readFileSync(path.join(fn.assetDir!, 'index.mjs'), 'utf8');
    // what loadConfig and adminKeySecretArn read at a cold start of the authorizer
    const reads = [
      'REGISTRY_TABLE',
      'STATE_TABLE',
      'EVENTS_TABLE',
      'TELEMETRY_BACKEND',
      'TELEMETRY_TABLE',
      'TIMESTREAM_DATABASE',
      'TIMESTREAM_TABLE',
      'IOT_DATA_ENDPOINT',
      'AUTO_REGISTER',
      'DEFAULT_DEVICE_TYPE',
      'INGEST_CONCURRENCY',
      'ADMIN_KEY_SECRET_ARN',
      'AWS_REGION',
    ];
    expect(checkObservedReads(fn.logicalId, reads, fn.environment, { code })).toEqual([]);
    const { ADMIN_KEY_SECRET_ARN: _dropped, ...without } = fn.environment;
    expect(checkObservedReads(fn.logicalId, reads, without, { code }).map((f) => f.message)).toEqual([
      `${fn.logicalId}: read environment variable ADMIN_KEY_SECRET_ARN, which the template does not set (required: the admin key hash is read from that secret at cold start)`,
    ]);
  });
});
