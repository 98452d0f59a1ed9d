import { describe, expect, it } from 'vitest';
import { ingestConfigSpec, parseConfig } from '../../functions/core/config.js';
import { ValidationError } from '../../functions/core/errors.js';

const base = { REGISTRY_TABLE: 'r', STATE_TABLE: 's', EVENTS_TABLE: 'e' };

describe('parseConfig', () => {
  it('applies defaults and parses types', () => {
    const config = parseConfig(ingestConfigSpec, { ...base, AUTO_REGISTER: 'true', INGEST_CONCURRENCY: '4' });
    expect(config).toMatchObject({
      REGISTRY_TABLE: 'r',
      AUTO_REGISTER: true,
      INGEST_CONCURRENCY: 4,
      REBIRTH_THROTTLE_MS: 5000,
      TELEMETRY_BACKEND: 'dynamodb',
    });
  });

  it.each([
    [{ STATE_TABLE: 's', EVENTS_TABLE: 'e' }, 'REGISTRY_TABLE', 'CONFIG_MISSING'],
    [{ ...base, AUTO_REGISTER: 'maybe' }, 'AUTO_REGISTER', 'CONFIG_INVALID'],
    [{ ...base, INGEST_CONCURRENCY: '0' }, 'INGEST_CONCURRENCY', 'CONFIG_INVALID'],
    [{ ...base, TELEMETRY_BACKEND: 'influx' }, 'TELEMETRY_BACKEND', 'CONFIG_INVALID'],
    [{ ...base, DUALPATH_TYPO: 'x' }, 'DUALPATH_TYPO', 'CONFIG_UNKNOWN'],
  ])('fails loudly naming the key (%#)', (env, field, code) => {
    let caught: unknown;
    try {
      parseConfig(ingestConfigSpec, env, { strictPrefix: 'DUALPATH_' });
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(ValidationError);
    expect((caught as ValidationError).field).toBe(field);
    expect((caught as ValidationError).code).toBe(code);
  });
});
