/**
 * Configuration parsed and validated once (at cold start / process start). Missing required keys,
 * malformed values and unknown DUALPATH_* keys fail loudly with the key named.
 */
import { ValidationError } from './errors.js';

type Kind = 'string' | 'int' | 'bool' | 'enum';

interface KeySpec {
  kind: Kind;
  required?: boolean;
  default?: string;
  values?: readonly string[];
  min?: number;
  max?: number;
}

export type ConfigSpec = Record<string, KeySpec>;

type ValueOf<S extends KeySpec> = S['kind'] extends 'int'
  ? number
  : S['kind'] extends 'bool'
    ? boolean
    : string;

export type ConfigOf<S extends ConfigSpec> = {
  [K in keyof S]: S[K]['required'] extends true
    ? ValueOf<S[K]>
    : S[K]['default'] extends string
      ? ValueOf<S[K]>
      : ValueOf<S[K]> | undefined;
};

export function parseConfig<S extends ConfigSpec>(
  spec: S,
  env: Record<string, string | undefined>,
  opts: { strictPrefix?: string } = {},
): ConfigOf<S> {
  const out: Record<string, unknown> = {};
  for (const [key, s] of Object.entries(spec)) {
    const raw = env[key] ?? s.default;
    if (raw === undefined || raw === '') {
      if (s.required)
        throw new ValidationError(`configuration ${key} is required`, { field: key, code: 'CONFIG_MISSING' });
      continue;
    }
    out[key] = parseValue(key, raw, s);
  }
  if (opts.strictPrefix) {
    for (const key of Object.keys(env)) {
      if (key.startsWith(opts.strictPrefix) && !(key in spec)) {
        throw new ValidationError(`unknown configuration key ${key}`, { field: key, code: 'CONFIG_UNKNOWN' });
      }
    }
  }
  return out as ConfigOf<S>;
}

function parseValue(key: string, raw: string, s: KeySpec): unknown {
  switch (s.kind) {
    case 'string':
      return raw;
    case 'int': {
      if (!/^-?\d+$/.test(raw)) throw invalid(key, raw, 'an integer');
      const n = Number(raw);
      if ((s.min !== undefined && n < s.min) || (s.max !== undefined && n > s.max)) {
        throw invalid(key, raw, `an integer in [${s.min ?? '-∞'}, ${s.max ?? '∞'}]`);
      }
      return n;
    }
    case 'bool':
      if (/^(true|1|yes|on)$/i.test(raw)) return true;
      if (/^(false|0|no|off)$/i.test(raw)) return false;
      throw invalid(key, raw, 'true or false');
    case 'enum':
      if (!s.values?.includes(raw)) throw invalid(key, raw, `one of ${s.values?.join(', ')}`);
      return raw;
  }
}

function invalid(key: string, raw: string, expected: string): ValidationError {
  return new ValidationError(`configuration ${key}="${raw}" must be ${expected}`, {
    field: key,
    code: 'CONFIG_INVALID',
  });
}

/** Settings of both ingest functions (Lambda environment variables, set by the CDK stack). */
export const ingestConfigSpec = {
  REGISTRY_TABLE: { kind: 'string', required: true },
  STATE_TABLE: { kind: 'string', required: true },
  EVENTS_TABLE: { kind: 'string', required: true },
  TELEMETRY_BACKEND: { kind: 'enum', values: ['timestream', 'dynamodb', 'none'], default: 'dynamodb' },
  TELEMETRY_TABLE: { kind: 'string' },
  TIMESTREAM_DATABASE: { kind: 'string' },
  TIMESTREAM_TABLE: { kind: 'string' },
  /** The table's memory-store retention: older readings go to the magnetic store (pending, ADR 0020). */
  TIMESTREAM_MEMORY_RETENTION_HOURS: { kind: 'int', default: '6', min: 1, max: 8766 },
  IOT_DATA_ENDPOINT: { kind: 'string' },
  AUTO_REGISTER: { kind: 'bool', default: 'false' },
  DEFAULT_DEVICE_TYPE: { kind: 'string', default: 'unclassified' },
  REBIRTH_THROTTLE_MS: { kind: 'int', default: '5000', min: 0 },
  REORDER_TIMEOUT_MS: { kind: 'int', default: '2000', min: 0 },
  REGISTRY_CACHE_TTL_MS: { kind: 'int', default: '60000', min: 0 },
  INGEST_CONCURRENCY: { kind: 'int', default: '8', min: 1, max: 256 },
  // Rules and alerts (ADR 0016): evaluated on ingest when RULES_ENABLED; transitions to the topic / bus.
  RULES_ENABLED: { kind: 'bool', default: 'false' },
  RULES_CACHE_TTL_MS: { kind: 'int', default: '30000', min: 0 },
  // Rule states whose change is only their last reading or window are written at most this often, and
  // read back by replaying the stored readings (DynamoDB telemetry store only; 0: every batch).
  RULES_STATE_FLUSH_MS: { kind: 'int', default: '300000', min: 0 },
  ALERTS_TOPIC_ARN: { kind: 'string' },
  ALERTS_EVENT_BUS: { kind: 'string' },
  // Live updates over the WebSocket API (ADR 0023): the connections table and the API's management
  // endpoint (https://{api}.execute-api.{region}.amazonaws.com/{stage}); publishers are on when both are set.
  LIVE_CONNECTIONS_TABLE: { kind: 'string' },
  LIVE_ENDPOINT: { kind: 'string' },
  /** How long a publisher trusts its list of connections (a new dashboard gets events after at most this). */
  LIVE_CACHE_TTL_MS: { kind: 'int', default: '10000', min: 0 },
  // Firmware packages in S3 (ADR 0022): the bucket, the secret keying the devices' signed download
  // paths, and the API's base URL those paths start with; packages are served when all three are set.
  FIRMWARE_BUCKET: { kind: 'string' },
  FIRMWARE_URL_KEY_SECRET_ARN: { kind: 'string' },
  PACKAGE_BASE_URL: { kind: 'string' },
} as const satisfies ConfigSpec;

export type IngestConfig = ConfigOf<typeof ingestConfigSpec>;
