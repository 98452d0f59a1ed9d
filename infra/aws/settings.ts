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
  };
}
