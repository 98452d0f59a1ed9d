/**
 * The provisioning-hook function, whole — its composition root (ADR 0018). AWS IoT fleet provisioning
 * calls it on every RegisterThing of the Dualpath template; it answers from the registry
 * (functions/core/onboarding.ts) and logs every decision as one JSON line (never the certificate).
 * The Lambda entry (handler.ts) and the tests' fake fleet-provisioning broker build it here and differ
 * only in the ports they pass.
 */
import {
  decideOnboarding,
  type PreProvisioningHookRequest,
  type PreProvisioningHookResponse,
} from '../core/onboarding.js';
import type { RegistryPort } from '../core/registry.js';

export interface ProvisioningHookPorts {
  registry: RegistryPort;
  clock: () => number;
  log?: (line: Record<string, unknown>) => void;
}

export interface ProvisioningHookSettings {
  /** Types whose unknown devices register themselves at onboarding ('*' = any). */
  selfRegisterTypes: ReadonlySet<string>;
  /** ... and only for ids starting with this (undefined: any id). */
  selfRegisterIdPrefix?: string;
}

export type ProvisioningHook = (event: PreProvisioningHookRequest) => Promise<PreProvisioningHookResponse>;

export function composeProvisioningHook(
  ports: ProvisioningHookPorts,
  settings: ProvisioningHookSettings,
): ProvisioningHook {
  const log = ports.log ?? ((line) => console.log(JSON.stringify(line)));
  return async (event) => {
    const decision = await decideOnboarding(event ?? {}, {
      registry: ports.registry,
      clock: ports.clock,
      selfRegisterTypes: settings.selfRegisterTypes,
      ...(settings.selfRegisterIdPrefix ? { selfRegisterIdPrefix: settings.selfRegisterIdPrefix } : {}),
    });
    log({
      level: decision.allowProvisioning ? 'INFO' : 'WARN',
      message: decision.allowProvisioning ? 'provisioning allowed' : 'provisioning refused',
      reason: decision.reason,
      detail: decision.message,
      deviceId: decision.deviceId,
      certificateId: event?.certificateId,
      clientId: event?.clientId,
    });
    return decision.parameterOverrides
      ? { allowProvisioning: decision.allowProvisioning, parameterOverrides: decision.parameterOverrides }
      : { allowProvisioning: decision.allowProvisioning };
  };
}
