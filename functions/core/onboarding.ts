/**
 * Device onboarding (ADR 0018): the decision of the fleet-provisioning pre-provisioning hook. AWS IoT
 * calls the hook on every RegisterThing with the parameters the device sent; provisioning goes on only
 * if the answer is `allowProvisioning: true`. A device may be provisioned when
 *   - the registry knows it, it is active, and the type it claims is its registered type; or
 *   - the registry does not know it and its type is one the deployment lets register itself at
 *     onboarding (the simulator's types for ids with the simulator's prefix, or any type and id with
 *     `autoRegister=true`): the device is then registered here, so its first reading is not
 *     quarantined as an unknown device.
 * Everything else is refused with a reason (logged, never sent to the device: IoT answers a refusal
 * with ACCESS_DENIED only). Pure over the registry port: the Lambda (functions/provisioning-hook) and
 * the tests' fake fleet-provisioning broker build it through the same composition root.
 */
import { ConflictError } from './errors.js';
import type { RegistryPort } from './registry.js';
import { autoRegisteredDevice, ensureDeviceType, validateDeviceId, validateTypeId } from './registry.js';

/** The fleet-provisioning MQTT API topics (JSON payloads); answers on `<topic>/accepted|rejected`. */
export const FLEET_TOPICS = {
  createFromCsr: '$aws/certificates/create-from-csr/json',
  provision: (template: string) => `$aws/provisioning-templates/${template}/provision/json`,
} as const;

/** Client ids of claim connections start with this (the claim policy allows no other). */
export const CLAIM_CLIENT_PREFIX = 'provision-';

/** The RegisterThing parameters of the Dualpath provisioning template. */
export const PROVISIONING_PARAMETERS = { deviceId: 'DeviceId', deviceType: 'DeviceType' } as const;

/** What AWS IoT sends the hook (payload version 2020-04-01). */
export interface PreProvisioningHookRequest {
  claimCertificateId?: string;
  certificateId?: string;
  certificatePem?: string;
  templateArn?: string;
  clientId?: string;
  parameters?: Record<string, string>;
}

export interface PreProvisioningHookResponse {
  allowProvisioning: boolean;
  /** Added to (or replacing) the RegisterThing parameters the template sees. */
  parameterOverrides?: Record<string, string>;
}

export interface OnboardingDecision extends PreProvisioningHookResponse {
  deviceId?: string;
  /** Why: 'registered' | 'self-registered' | the refusal's code. */
  reason: string;
  message: string;
}

export interface OnboardingOptions {
  registry: RegistryPort;
  clock: () => number;
  /** Types whose unknown devices register themselves at onboarding; '*' = any type. */
  selfRegisterTypes: ReadonlySet<string>;
  /** Self-registration only for device ids starting with this (e.g. the simulator's); default any. */
  selfRegisterIdPrefix?: string;
}

function refuse(reason: string, message: string, deviceId?: string): OnboardingDecision {
  return { allowProvisioning: false, reason, message, ...(deviceId ? { deviceId } : {}) };
}

/**
 * Parses the hook's SELF_REGISTER_TYPES: 'none' (or empty), '*' for any type, or a comma-separated
 * list of type ids.
 */
export function parseTypeList(raw: string | undefined): Set<string> {
  const out = new Set<string>();
  if (raw === undefined || raw.trim() === 'none') return out;
  for (const part of raw.split(',')) {
    const t = part.trim();
    if (t === '') continue;
    out.add(t === '*' ? '*' : validateTypeId(t, 'SELF_REGISTER_TYPES'));
  }
  return out;
}

export async function decideOnboarding(
  request: PreProvisioningHookRequest,
  opts: OnboardingOptions,
): Promise<OnboardingDecision> {
  const params = request.parameters ?? {};
  let deviceId: string;
  let type: string;
  try {
    deviceId = validateDeviceId(params[PROVISIONING_PARAMETERS.deviceId], PROVISIONING_PARAMETERS.deviceId);
    type = validateTypeId(params[PROVISIONING_PARAMETERS.deviceType], PROVISIONING_PARAMETERS.deviceType);
  } catch (error) {
    return refuse('INVALID_PARAMETERS', (error as Error).message);
  }
  const { registry } = opts;
  const known = await registry.getDevice(deviceId);
  if (known) {
    if (known.status !== 'active')
      return refuse('DEVICE_DISABLED', `device ${deviceId} is disabled`, deviceId);
    if (known.type !== type) {
      return refuse(
        'TYPE_MISMATCH',
        `device ${deviceId} is registered as type ${known.type}, not ${type}`,
        deviceId,
      );
    }
    return {
      allowProvisioning: true,
      parameterOverrides: { [PROVISIONING_PARAMETERS.deviceType]: known.type },
      deviceId,
      reason: 'registered',
      message: `device ${deviceId} is registered`,
    };
  }
  if (!opts.selfRegisterTypes.has('*') && !opts.selfRegisterTypes.has(type)) {
    return refuse(
      'UNKNOWN_DEVICE',
      `device ${deviceId} is not registered and type ${type} does not register itself at onboarding`,
      deviceId,
    );
  }
  if (opts.selfRegisterIdPrefix && !deviceId.startsWith(opts.selfRegisterIdPrefix)) {
    return refuse(
      'UNKNOWN_DEVICE',
      `device ${deviceId} is not registered and only ids starting with ${opts.selfRegisterIdPrefix} register themselves`,
      deviceId,
    );
  }
  const now = opts.clock();
  await ensureDeviceType(registry, {
    id: type,
    name: type,
    category: 'self-registered',
    capabilities: [],
    units: {},
    description: 'Created when the first device of this type was onboarded by fleet provisioning',
  });
  const device = autoRegisteredDevice(deviceId, type, now, { onboarding: 'fleet-provisioning' });
  try {
    await registry.putDevice(device, 'create');
  } catch (error) {
    if (!(error instanceof ConflictError)) throw error;
    // Registered meanwhile (by an operator or a concurrent request): decide on what is stored now.
    return decideOnboarding(request, { ...opts, selfRegisterTypes: new Set() });
  }
  return {
    allowProvisioning: true,
    parameterOverrides: { [PROVISIONING_PARAMETERS.deviceType]: type },
    deviceId,
    reason: 'self-registered',
    message: `device ${deviceId} registered as ${type} at onboarding`,
  };
}
