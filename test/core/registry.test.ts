import { describe, expect, it } from 'vitest';
import { ValidationError } from '../../functions/core/errors.js';
import {
  commandExpiresAt,
  decodeKeyToken,
  encodePageToken,
  validateApplicationId,
  validateApplicationInput,
  validateDeviceId,
  validateDeviceInput,
  validateDeviceTypeInput,
  validateKeyHash,
  validateTags,
  validateTypeId,
} from '../../functions/core/registry.js';

/** Runs fn and returns the ValidationError's field (fails the test if it does not throw one). */
function fieldOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(ValidationError);
    expect((error as ValidationError).message).toContain((error as ValidationError).field ?? '<none>');
    return (error as ValidationError).field;
  }
  throw new Error('expected a ValidationError');
}

describe('registry validators', () => {
  it('accepts device ids that are valid LwM2M endpoints / thing names and rejects the rest', () => {
    // Prepare
    const good = ['node-1', 'plant:line_2.press', 'A'.repeat(128)];
    const bad = ['', 'a/b', 'a+b', 'x#', 'A'.repeat(129), 'space here', 42, null];
    // Act / Assess
    for (const id of good) expect(validateDeviceId(id)).toBe(id);
    for (const id of bad) expect(fieldOf(() => validateDeviceId(id))).toBe('id');
    expect(fieldOf(() => validateDeviceId('a/b', 'deviceId'))).toBe('deviceId');
  });

  it('accepts lowercase type ids and rejects uppercase, leading punctuation and overlong ids', () => {
    expect(validateTypeId('env-sensor.v2')).toBe('env-sensor.v2');
    for (const t of ['Env', '-x', '', 'a'.repeat(65), 'a b'])
      expect(fieldOf(() => validateTypeId(t))).toBe('type');
  });

  it('checks application ids and key hashes', () => {
    expect(validateApplicationId('0b6f1f6e-2d3c-4a8e-9f00-1234567890ab')).toMatch(/^0b6f/);
    expect(fieldOf(() => validateApplicationId('../etc'))).toBe('appId');
    expect(validateKeyHash('a'.repeat(64))).toHaveLength(64);
    expect(fieldOf(() => validateKeyHash('A'.repeat(64)))).toBe('keyHash');
    expect(fieldOf(() => validateKeyHash('ab'))).toBe('keyHash');
  });

  it('bounds tags at 50 entries and names the offending tag', () => {
    const fifty = Object.fromEntries(Array.from({ length: 50 }, (_, i) => [`k${i}`, 'v']));
    expect(Object.keys(validateTags(fifty))).toHaveLength(50);
    expect(fieldOf(() => validateTags({ ...fifty, k50: 'v' }))).toBe('tags');
    expect(fieldOf(() => validateTags({ floor: 3 }))).toBe('tags.floor');
    expect(fieldOf(() => validateTags({ long: 'x'.repeat(257) }))).toBe('tags.long');
    expect(fieldOf(() => validateTags(['a']))).toBe('tags');
    expect(validateTags(undefined)).toEqual({});
  });

  it('validates a device body: required type, optional bounded strings, status, no unknown fields', () => {
    expect(
      validateDeviceInput({
        type: 'breaker',
        name: 'Breaker 7',
        group: 'site-a',
        tags: { a: 'b' },
        status: 'disabled',
      }),
    ).toEqual({ type: 'breaker', name: 'Breaker 7', group: 'site-a', tags: { a: 'b' }, status: 'disabled' });
    expect(validateDeviceInput({ type: 'breaker' })).toEqual({ type: 'breaker', tags: {} });
    expect(fieldOf(() => validateDeviceInput({}))).toBe('type');
    expect(fieldOf(() => validateDeviceInput({ type: 'x', name: '' }))).toBe('name');
    expect(fieldOf(() => validateDeviceInput({ type: 'x', name: 'n'.repeat(129) }))).toBe('name');
    expect(fieldOf(() => validateDeviceInput({ type: 'x', group: 'a\nb' }))).toBe('group');
    expect(fieldOf(() => validateDeviceInput({ type: 'x', status: 'deleted' }))).toBe('status');
    expect(fieldOf(() => validateDeviceInput({ type: 'x', lastSeen: 5 }))).toBe('lastSeen');
    expect(fieldOf(() => validateDeviceInput('nope'))).toBe('body');
  });

  it('validates a device type body against its path id', () => {
    expect(
      validateDeviceTypeInput('breaker', {
        name: 'Smart breaker',
        category: 'energy',
        capabilities: ['trip', 'trip', 'reset'],
        units: { '/3303/0/5700': 'Cel', Current: 'A' },
      }),
    ).toEqual({
      id: 'breaker',
      name: 'Smart breaker',
      category: 'energy',
      capabilities: ['trip', 'reset'],
      units: { '/3303/0/5700': 'Cel', Current: 'A' },
    });
    expect(fieldOf(() => validateDeviceTypeInput('Breaker', { name: 'x' }))).toBe('type');
    expect(fieldOf(() => validateDeviceTypeInput('breaker', { name: 'x', id: 'other' }))).toBe('id');
    expect(fieldOf(() => validateDeviceTypeInput('breaker', {}))).toBe('name');
    expect(fieldOf(() => validateDeviceTypeInput('breaker', { name: 'x', capabilities: 'trip' }))).toBe(
      'capabilities',
    );
    expect(fieldOf(() => validateDeviceTypeInput('breaker', { name: 'x', capabilities: [''] }))).toBe(
      'capabilities[0]',
    );
    expect(
      fieldOf(() => validateDeviceTypeInput('breaker', { name: 'x', units: { V: 'v'.repeat(33) } })),
    ).toBe('units.V');
  });

  it('validates an application body: 1-32 known-shaped device types, deduplicated', () => {
    expect(
      validateApplicationInput({
        name: 'Grid',
        developer: 'ACME',
        deviceTypes: ['breaker', 'meter', 'breaker'],
      }),
    ).toEqual({ name: 'Grid', developer: 'ACME', deviceTypes: ['breaker', 'meter'] });
    expect(fieldOf(() => validateApplicationInput({ name: 'Grid', deviceTypes: [] }))).toBe('deviceTypes');
    expect(
      fieldOf(() =>
        validateApplicationInput({
          name: 'Grid',
          deviceTypes: Array.from({ length: 33 }, (_, i) => `t${i}`),
        }),
      ),
    ).toBe('deviceTypes');
    expect(fieldOf(() => validateApplicationInput({ name: 'Grid', deviceTypes: ['ok', 'Bad'] }))).toBe(
      'deviceTypes[1]',
    );
    expect(fieldOf(() => validateApplicationInput({ deviceTypes: ['ok'] }))).toBe('name');
    expect(fieldOf(() => validateApplicationInput({ name: 'G', deviceTypes: ['ok'], keyHash: 'x' }))).toBe(
      'keyHash',
    );
  });

  it('round-trips key tokens and rejects tokens of another shape', () => {
    const token = encodePageToken({ pk: 'DEVICE#a', sk: 'META' });
    expect(decodeKeyToken(token, ['pk', 'sk'])).toEqual({ pk: 'DEVICE#a', sk: 'META' });
    expect(fieldOf(() => decodeKeyToken(token, ['pk', 'sk', 'gsi1pk', 'gsi1sk']))).toBe('nextToken');
    expect(fieldOf(() => decodeKeyToken(encodePageToken({ pk: 1, sk: 'META' }), ['pk', 'sk']))).toBe(
      'nextToken',
    );
    expect(fieldOf(() => decodeKeyToken('%%%not-base64', ['pk', 'sk']))).toBe('nextToken');
  });

  it('expires command items 30 days after creation unless told otherwise', () => {
    const base = {
      deviceId: 'd',
      commandId: 'c',
      protocol: 'lwm2m' as const,
      operation: 'read',
      request: {},
      status: 'pending' as const,
      createdAt: 1_700_000_000_000,
      updatedAt: 1_700_000_000_000,
      deadline: 1_700_000_060_000,
    };
    expect(commandExpiresAt(base)).toBe(1_700_000_000 + 30 * 86_400);
    expect(commandExpiresAt({ ...base, expiresAt: 42 })).toBe(42);
  });
});
