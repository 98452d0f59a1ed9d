/**
 * Deployment settings: `-c key=value` > the config file (deploy.config.json) > cdk.json defaults, as
 * infra/aws/app.ts resolves them (no synth needed), and the checked-in files themselves.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Stack } from 'aws-cdk-lib';
import { describe, expect, it } from 'vitest';
import { createApp } from '../../../infra/aws/app.js';
import {
  DEPLOY_CONFIG_FILE,
  parseDeployConfig,
  resolveDeployment,
  SETTING_KEYS,
} from '../../../infra/aws/settings.js';
import { REPO_ROOT } from '../../../infra/aws/stack.js';
import { pipeline } from './synth.js';

const cdkJson = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'cdk.json'), 'utf8')) as {
  context: Record<string, unknown>;
};
const defaults = cdkJson.context;

/** The app's context as the CDK CLI builds it: cdk.json context, then `-c` flags on top. */
const cliContext =
  (flags: Record<string, string> = {}) =>
  (key: string) =>
    flags[key] ?? defaults[key];

describe('cdk.json defaults', () => {
  it('default to DynamoDB telemetry, no simulator, retained data, stack name Dualpath', () => {
    expect(defaults.telemetry).toBe('dynamodb');
    expect(defaults.simulatorTasks).toBe(0);
    expect(defaults.removalPolicy).toBe('retain');
    expect(defaults.stackName).toBe('Dualpath');
    for (const k of SETTING_KEYS) expect(defaults[k], k).toBeDefined();
  });

  it('resolve to valid settings with no flag and no file', () => {
    const r = resolveDeployment({ context: cliContext(), defaults });
    expect(r.settings.telemetry).toBe('dynamodb');
    expect(r.stackName).toBe('Dualpath');
    expect(new Set(Object.values(r.origins))).toEqual(new Set(['cdk.json']));
  });
});

describe('precedence: -c > config file > cdk.json', () => {
  const file = { telemetry: 'timestream', shardCount: 4, stackName: 'Plant7' };

  it('the file overrides cdk.json, so a plain deploy keeps the persisted choice', () => {
    const r = resolveDeployment({ context: cliContext(), defaults, file });
    expect(r.settings.telemetry).toBe('timestream');
    expect(r.settings.shardCount).toBe(4);
    expect(r.stackName).toBe('Plant7');
    expect(r.origins.telemetry).toBe('config file');
    expect(r.origins.kinesisMode).toBe('cdk.json');
  });

  it('-c overrides the file and cdk.json', () => {
    const r = resolveDeployment({
      context: cliContext({ telemetry: 'none', shardCount: '2', stackName: 'Other' }),
      defaults,
      file,
    });
    expect(r.settings.telemetry).toBe('none');
    expect(r.settings.shardCount).toBe(2);
    expect(r.stackName).toBe('Other');
    expect(r.origins.telemetry).toBe('command line');
  });

  it('-c overrides cdk.json without a file (string values from the CLI are parsed)', () => {
    const r = resolveDeployment({
      context: cliContext({ simulatorTasks: '1', autoRegister: 'true' }),
      defaults,
    });
    expect(r.settings.simulatorTasks).toBe(1);
    expect(r.settings.autoRegister).toBe(true);
    expect(r.origins.simulatorTasks).toBe('command line');
  });

  it('a -c equal to the cdk.json default cannot be told from no flag: the file still applies', () => {
    // The CLI merges cdk.json and -c before the app sees them; docs/deploy.md says to edit the file.
    const r = resolveDeployment({ context: cliContext({ telemetry: 'dynamodb' }), defaults, file });
    expect(r.settings.telemetry).toBe('timestream');
  });

  it('rejects invalid values wherever they come from', () => {
    expect(() =>
      resolveDeployment({ context: cliContext(), defaults, file: { telemetry: 'influx' } }),
    ).toThrow(/telemetry=influx/);
    expect(() => resolveDeployment({ context: cliContext({ shardCount: '0' }), defaults })).toThrow(
      /shardCount/,
    );
    expect(() => resolveDeployment({ context: cliContext({ stackName: 'bad name' }), defaults })).toThrow(
      /stackName/,
    );
  });
});

describe('the config file', () => {
  it('is checked in, parses, and holds only known settings', () => {
    const raw = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, DEPLOY_CONFIG_FILE), 'utf8'));
    const parsed = parseDeployConfig(raw);
    for (const k of Object.keys(parsed)) expect(SETTING_KEYS as readonly string[]).toContain(k);
    // Whatever it holds, it resolves with cdk.json to valid settings.
    expect(() => resolveDeployment({ context: cliContext(), defaults, file: parsed })).not.toThrow();
  });

  it('ignores $-keys (comments) and rejects unknown keys and non-scalar values', () => {
    expect(parseDeployConfig({ $comment: 'x', telemetry: 'dynamodb' })).toEqual({ telemetry: 'dynamodb' });
    expect(() => parseDeployConfig({ telemtry: 'dynamodb' })).toThrow(/unknown setting "telemtry"/);
    expect(() => parseDeployConfig({ shardCount: [1] })).toThrow(/shardCount/);
    expect(() => parseDeployConfig([])).toThrow(/JSON object/);
  });
});

describe('the CDK app (infra/aws/app.ts) applies the precedence', () => {
  // The app built in-process exactly as `cdk synth` runs it, with its context as the CLI would pass it
  // (cdk.json context, then -c flags); bundling skipped — only the construct tree is inspected.
  const build = (root: string, flags: Record<string, string> = {}) =>
    createApp({
      root,
      pipeline,
      log: () => {},
      context: { ...defaults, ...flags, 'aws:cdk:bundling-stacks': [] },
    });
  const tempRoot = (config?: Record<string, unknown>) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dualpath-app-'));
    fs.copyFileSync(path.join(REPO_ROOT, 'cdk.json'), path.join(dir, 'cdk.json'));
    if (config) fs.writeFileSync(path.join(dir, DEPLOY_CONFIG_FILE), JSON.stringify(config));
    return dir;
  };
  const hasTimestream = (stack: Stack) => stack.node.tryFindChild('Telemetry') !== undefined;
  const hasDynamoTelemetry = (stack: Stack) => stack.node.tryFindChild('TelemetryStore') !== undefined;

  it('without a config file: cdk.json (DynamoDB telemetry, stack Dualpath)', () => {
    const { stack } = build(tempRoot());
    expect(stack.stackName).toBe('Dualpath');
    expect(hasDynamoTelemetry(stack)).toBe(true);
    expect(hasTimestream(stack)).toBe(false);
  });

  it('a plain deploy keeps what deploy.config.json says', () => {
    const { stack, deployment } = build(tempRoot({ telemetry: 'timestream', stackName: 'Plant7' }));
    expect(stack.stackName).toBe('Plant7');
    expect(hasTimestream(stack)).toBe(true);
    expect(hasDynamoTelemetry(stack)).toBe(false);
    expect(deployment.origins.telemetry).toBe('config file');
  });

  it('-c wins over the file; -c deployConfig names another file', () => {
    const root = tempRoot({ telemetry: 'timestream', stackName: 'Plant7' });
    const { stack } = build(root, { telemetry: 'none', stackName: 'Other' });
    expect(stack.stackName).toBe('Other');
    expect(hasTimestream(stack) || hasDynamoTelemetry(stack)).toBe(false);
    const other = path.join(root, 'other.json');
    fs.writeFileSync(other, JSON.stringify({ stackName: 'FromOther' }));
    expect(build(root, { deployConfig: other }).stack.stackName).toBe('FromOther');
  });
});
