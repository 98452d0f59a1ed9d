/** Deploy-time settings from CDK context (cdk.json defaults, `-c key=value` overrides), validated once. */
import { ValidationError } from '../../functions/core/errors.js';

export interface DeploySettings {
  telemetry: 'timestream' | 'dynamodb' | 'none';
  kinesisMode: 'on-demand' | 'provisioned';
  shardCount: number;
  memoryRetentionHours: number;
  magneticRetentionDays: number;
  simulatorTasks: number;
  simulatorDevices: number;
  simulatorRate: number;
  autoRegister: boolean;
  logRetentionDays: number;
  removalPolicy: 'retain' | 'destroy';
  /**
   * Names of an existing Timestream database/table to keep using (upgrades of stacks deployed before
   * names were generated: `<stackName>-telemetry` / `readings`). Empty: CloudFormation generates them.
   */
  timestreamDatabaseName: string;
  timestreamTableName: string;
}

type Lookup = (key: string) => unknown;

function int(get: Lookup, key: string, min: number, max: number): number {
  const raw = get(key);
  const n = typeof raw === 'string' ? Number(raw) : raw;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < min || n > max) {
    throw new ValidationError(`context ${key}=${String(raw)} must be an integer in [${min}, ${max}]`, {
      field: key,
    });
  }
  return n;
}

function oneOf<T extends string>(get: Lookup, key: string, values: readonly T[]): T {
  const raw = get(key);
  if (typeof raw !== 'string' || !values.includes(raw as T)) {
    throw new ValidationError(`context ${key}=${String(raw)} must be one of ${values.join(', ')}`, {
      field: key,
    });
  }
  return raw as T;
}

/** An optional Timestream name: empty, or 3-256 letters, digits, `.`, `_`, `-`. */
function optionalName(get: Lookup, key: string): string {
  const raw = get(key) ?? '';
  if (raw === '') return '';
  if (typeof raw !== 'string' || !/^[a-zA-Z0-9_.-]{3,256}$/.test(raw)) {
    throw new ValidationError(`context ${key}=${String(raw)} must be empty or a Timestream name`, {
      field: key,
    });
  }
  return raw;
}

function bool(get: Lookup, key: string): boolean {
  const raw = get(key);
  if (raw === true || raw === 'true') return true;
  if (raw === false || raw === 'false') return false;
  throw new ValidationError(`context ${key}=${String(raw)} must be true or false`, { field: key });
}

export function readSettings(get: Lookup): DeploySettings {
  return {
    telemetry: oneOf(get, 'telemetry', ['timestream', 'dynamodb', 'none'] as const),
    kinesisMode: oneOf(get, 'kinesisMode', ['on-demand', 'provisioned'] as const),
    shardCount: int(get, 'shardCount', 1, 500),
    memoryRetentionHours: int(get, 'memoryRetentionHours', 1, 8766),
    magneticRetentionDays: int(get, 'magneticRetentionDays', 1, 73000),
    simulatorTasks: int(get, 'simulatorTasks', 0, 100),
    simulatorDevices: int(get, 'simulatorDevices', 1, 10000),
    simulatorRate: int(get, 'simulatorRate', 1, 100),
    autoRegister: bool(get, 'autoRegister'),
    logRetentionDays: int(get, 'logRetentionDays', 1, 3653),
    removalPolicy: oneOf(get, 'removalPolicy', ['retain', 'destroy'] as const),
    timestreamDatabaseName: optionalName(get, 'timestreamDatabaseName'),
    timestreamTableName: optionalName(get, 'timestreamTableName'),
  };
}

// -------------------------------------------------------------------------------------------------
// Where each setting comes from: `-c key=value` > the deployment config file > cdk.json defaults.

/** Settings a deployment can persist in the config file (DeploySettings plus the stack name). */
export const SETTING_KEYS = [
  'stackName',
  'telemetry',
  'kinesisMode',
  'shardCount',
  'memoryRetentionHours',
  'magneticRetentionDays',
  'simulatorTasks',
  'simulatorDevices',
  'simulatorRate',
  'autoRegister',
  'logRetentionDays',
  'removalPolicy',
  'timestreamDatabaseName',
  'timestreamTableName',
] as const;

export type SettingKey = (typeof SETTING_KEYS)[number];

/** The checked-in deployment config file (repository root); `-c deployConfig=<path>` names another. */
export const DEPLOY_CONFIG_FILE = 'deploy.config.json';

export type SettingOrigin = 'command line' | 'config file' | 'cdk.json';

export interface ResolvedDeployment {
  stackName: string;
  settings: DeploySettings;
  /** Where each setting's value came from. */
  origins: Record<SettingKey, SettingOrigin>;
  /** The merged values, as a context lookup (what `readSettings` reads). */
  values: Record<SettingKey, unknown>;
}

export interface DeploymentSources {
  /** The app's context: cdk.json context merged with `-c` flags by the CDK CLI. */
  context: Lookup;
  /** cdk.json's `context` object as written in the file (the defaults). */
  defaults: Record<string, unknown>;
  /** The parsed config file, if there is one. */
  file?: Record<string, unknown>;
  /** For messages. */
  fileName?: string;
}

const STACK_NAME = /^[A-Za-z][A-Za-z0-9-]{0,127}$/;

/** Validates a parsed config file: an object of known keys (keys starting with `$` are comments). */
export function parseDeployConfig(raw: unknown, fileName = DEPLOY_CONFIG_FILE): Record<string, unknown> {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new ValidationError(`${fileName} must hold a JSON object`, { field: fileName });
  }
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(raw as Record<string, unknown>)) {
    if (key.startsWith('$')) continue;
    if (!(SETTING_KEYS as readonly string[]).includes(key)) {
      throw new ValidationError(`${fileName}: unknown setting "${key}" (known: ${SETTING_KEYS.join(', ')})`, {
        field: key,
      });
    }
    if (!['string', 'number', 'boolean'].includes(typeof value)) {
      throw new ValidationError(`${fileName}: ${key} must be a string, number or boolean`, { field: key });
    }
    out[key] = value;
  }
  return out;
}

/**
 * Merges the three sources. The CDK CLI hands the app ONE context in which cdk.json's defaults and the
 * `-c` flags are already merged, so a flag is recognised by differing from the cdk.json default: a
 * `-c key=<the cdk.json default>` is indistinguishable from no flag, and the config file's value then
 * applies (change the file to go back to a default; docs/deploy.md says so).
 */
export function resolveDeployment(src: DeploymentSources): ResolvedDeployment {
  const values = {} as Record<SettingKey, unknown>;
  const origins = {} as Record<SettingKey, SettingOrigin>;
  for (const key of SETTING_KEYS) {
    const fromContext = src.context(key);
    const fallback = src.defaults[key];
    const fromFile = src.file?.[key];
    if (fromContext !== undefined && (fallback === undefined || String(fromContext) !== String(fallback))) {
      values[key] = fromContext;
      origins[key] = 'command line';
    } else if (fromFile !== undefined) {
      values[key] = fromFile;
      origins[key] = 'config file';
    } else {
      values[key] = fromContext ?? fallback;
      origins[key] = 'cdk.json';
    }
  }
  const stackName = values.stackName;
  if (typeof stackName !== 'string' || !STACK_NAME.test(stackName)) {
    throw new ValidationError(
      `stackName=${String(stackName)} must start with a letter and hold only letters, digits and hyphens (≤ 128)`,
      { field: 'stackName' },
    );
  }
  const settings = readSettings((k) => values[k as SettingKey]);
  return { stackName, settings, origins, values };
}

/** One line per setting for the synth log: `telemetry=dynamodb (cdk.json)`. */
export function describeDeployment(r: ResolvedDeployment): string {
  return SETTING_KEYS.map((k) => `${k}=${String(r.values[k])} (${r.origins[k]})`).join(', ');
}
