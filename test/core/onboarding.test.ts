/** The pre-provisioning hook's decision (functions/core/onboarding.ts) through its composition root. */
import { describe, expect, it } from 'vitest';
import { ConflictError } from '../../functions/core/errors.js';
import { decideOnboarding, parseTypeList } from '../../functions/core/onboarding.js';
import { InMemoryRegistry } from '../../functions/core/registry-memory.js';
import { composeProvisioningHook } from '../../functions/provisioning-hook/compose.js';

const req = (DeviceId: unknown, DeviceType: unknown) => ({
  certificateId: 'c1',
  clientId: 'provision-x',
  parameters: { DeviceId, DeviceType } as Record<string, string>,
});

async function registryWith(status: 'active' | 'disabled' = 'active') {
  const registry = new InMemoryRegistry();
  await registry.putDeviceType({ id: 'breaker', name: 'Breaker', capabilities: [], units: {} }, 'create');
  await registry.putDevice(
    { id: 'b-1', type: 'breaker', tags: {}, status, protocols: [], createdAt: 1, updatedAt: 1 },
    'create',
  );
  return registry;
}

describe('pre-provisioning hook', () => {
  it('allows a registered active device with its registered type, and writes nothing', async () => {
    const registry = await registryWith();
    registry.resetCalls();
    const logs: Array<Record<string, unknown>> = [];
    const hook = composeProvisioningHook(
      { registry, clock: () => 5, log: (l) => logs.push(l) },
      { selfRegisterTypes: new Set() },
    );
    expect(await hook(req('b-1', 'breaker'))).toEqual({
      allowProvisioning: true,
      parameterOverrides: { DeviceType: 'breaker' },
    });
    expect(registry.calls.putDevice ?? 0).toBe(0);
    expect(logs[0]).toMatchObject({
      level: 'INFO',
      reason: 'registered',
      deviceId: 'b-1',
      certificateId: 'c1',
    });
    expect(JSON.stringify(logs)).not.toContain('BEGIN CERTIFICATE');
  });

  it('refuses disabled devices, type mismatches, unknown devices and bad parameters', async () => {
    const opts = { clock: () => 5, selfRegisterTypes: new Set<string>() };
    const disabled = await decideOnboarding(req('b-1', 'breaker'), {
      ...opts,
      registry: await registryWith('disabled'),
    });
    expect(disabled).toMatchObject({ allowProvisioning: false, reason: 'DEVICE_DISABLED' });
    const registry = await registryWith();
    expect(await decideOnboarding(req('b-1', 'meter'), { ...opts, registry })).toMatchObject({
      allowProvisioning: false,
      reason: 'TYPE_MISMATCH',
    });
    expect(await decideOnboarding(req('nobody', 'breaker'), { ...opts, registry })).toMatchObject({
      allowProvisioning: false,
      reason: 'UNKNOWN_DEVICE',
    });
    for (const bad of [
      req('a/b', 'breaker'),
      req('', 'breaker'),
      req('b-1', 'Bad Type'),
      req(undefined, 'x'),
      {},
    ]) {
      const d = await decideOnboarding(bad, { ...opts, registry });
      expect(d).toMatchObject({ allowProvisioning: false, reason: 'INVALID_PARAMETERS' });
      expect(d.message).toMatch(/DeviceId|DeviceType/);
    }
    expect(registry.devices.size).toBe(1);
  });

  it('self-registers an unknown device of an allowed type (and its type), once', async () => {
    const registry = new InMemoryRegistry();
    const opts = { registry, clock: () => 42, selfRegisterTypes: new Set(['env-sensor']) };
    expect(await decideOnboarding(req('s-1', 'env-sensor'), opts)).toMatchObject({
      allowProvisioning: true,
      reason: 'self-registered',
    });
    expect(await registry.getDevice('s-1')).toMatchObject({
      type: 'env-sensor',
      status: 'active',
      autoRegistered: true,
      createdAt: 42,
    });
    expect(await registry.getDeviceType('env-sensor')).toMatchObject({ category: 'self-registered' });
    // Provisioning again (a new certificate for the same device) finds it registered.
    expect(await decideOnboarding(req('s-1', 'env-sensor'), opts)).toMatchObject({ reason: 'registered' });
    // Another type is still refused; '*' allows any.
    expect(await decideOnboarding(req('s-2', 'breaker'), opts)).toMatchObject({ allowProvisioning: false });
    expect(
      await decideOnboarding(req('s-2', 'breaker'), { ...opts, selfRegisterTypes: new Set(['*']) }),
    ).toMatchObject({ allowProvisioning: true });
  });

  it('self-registration can be limited to an id prefix (the simulator’s things)', async () => {
    const registry = new InMemoryRegistry();
    const opts = {
      registry,
      clock: () => 1,
      selfRegisterTypes: new Set(['env-sensor']),
      selfRegisterIdPrefix: 'Stack-sim-',
    };
    expect(await decideOnboarding(req('Stack-sim-ab12-0000', 'env-sensor'), opts)).toMatchObject({
      allowProvisioning: true,
    });
    expect(await decideOnboarding(req('intruder-1', 'env-sensor'), opts)).toMatchObject({
      allowProvisioning: false,
      reason: 'UNKNOWN_DEVICE',
    });
    expect(await registry.getDevice('intruder-1')).toBeUndefined();
  });

  it('a device registered concurrently is decided on what is stored', async () => {
    const registry = await registryWith();
    const racing = Object.create(registry) as InMemoryRegistry;
    let first = true;
    racing.getDevice = async (id) => {
      if (first) {
        first = false;
        return undefined; // not there yet when read...
      }
      return registry.getDevice(id);
    };
    racing.putDevice = async () => {
      throw new ConflictError('exists'); // ...but there when written
    };
    const d = await decideOnboarding(req('b-1', 'env-sensor'), {
      registry: racing,
      clock: () => 1,
      selfRegisterTypes: new Set(['env-sensor']),
    });
    expect(d).toMatchObject({ allowProvisioning: false, reason: 'TYPE_MISMATCH' });
  });

  it('parses SELF_REGISTER_TYPES and rejects a bad type naming the variable', () => {
    expect([...parseTypeList(' breaker, env-sensor ,')]).toEqual(['breaker', 'env-sensor']);
    expect([...parseTypeList('*')]).toEqual(['*']);
    expect(parseTypeList(undefined).size).toBe(0);
    expect(parseTypeList('none').size).toBe(0);
    expect(() => parseTypeList('Bad Type')).toThrow(/SELF_REGISTER_TYPES/);
  });
});
