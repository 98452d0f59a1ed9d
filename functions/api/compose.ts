/**
 * The api and authorizer functions, whole — their composition roots. The REST router over the registry,
 * the event log, the telemetry store, Sparkplug state (node catalogs) and the command service (LwM2M
 * requests through an LwM2M server that writes at once, Sparkplug NCMD/DCMD); the authenticator over the
 * admin key's hash and the registry's application keys. The Lambda entries (handler.ts, authorizer.ts)
 * and the local stack build them here and differ only in the ports they pass.
 */
import { CommandService } from '../core/commands.js';
import type { EventLog } from '../core/events.js';
import type { PublisherPort } from '../core/ingest.js';
import type { LivePublisher } from '../core/live.js';
import { Lwm2mServer } from '../core/lwm2m/server/server.js';
import type { PendingRequestStore, RegistrationStore } from '../core/lwm2m/server/state.js';
import type { PackageStore } from '../core/operations/packages.js';
import { selectDevicesFrom } from '../core/operations/select.js';
import { OperationService } from '../core/operations/service.js';
import type { OperationStore } from '../core/operations/store.js';
import type { Clock } from '../core/processor.js';
import type { RegistryPort } from '../core/registry.js';
import type { AlertStore, RuleStore } from '../core/rules/store.js';
import { ShadowService, type ShadowStore } from '../core/shadow.js';
import type { SparkplugStateStore } from '../core/sparkplug/host/state.js';
import type { TelemetryStore } from '../core/telemetry.js';
import { Authenticator, type Principal } from './auth.js';
import type { ApiRequest, Router } from './http.js';
import { type ApiDeps, createApiRouter, type HealthCounts } from './router.js';
import { registryHealth } from './routes/health.js';

export interface AuthorizerPorts {
  registry: RegistryPort;
  /** SHA-256 (hex) of the admin key; the key itself is never held. */
  adminKeyHash: string;
}

export interface ApiPorts extends Omit<AuthorizerPorts, 'adminKeyHash'> {
  /**
   * SHA-256 (hex) of the admin key, to check the key of a request that carries no authorizer decision
   * (the local stack). Undefined behind the REST authorizer (AWS): only its decision is trusted, and a
   * request without one is 401 (ADR 0025 amendment 2).
   */
  adminKeyHash: string | undefined;
  events: EventLog;
  store: TelemetryStore;
  registrations: RegistrationStore;
  pending: PendingRequestStore;
  sparkplugState: Pick<SparkplugStateStore, 'getNode' | 'getDevice'>;
  publisher: PublisherPort;
  clock: Clock;
  newId: () => string;
  /** Counts for GET /health (default: a cached scan of the registry). */
  health?: () => Promise<HealthCounts>;
  /** Rules and alerts (ADR 0016): /rules and /alerts are served when given. */
  rules?: { rules: RuleStore; alerts: AlertStore; onChange?: () => void };
  /** Batch operations (ADR 0022): /operations and /firmware are served when given. */
  operations?: { store: OperationStore; packages?: PackageStore };
  /** Live updates (ADR 0023): where routes publish (operation progress). */
  live?: LivePublisher;
  /** Device shadows (ADR 0023): served when a shadow store is given. */
  shadows?: ShadowStore;
  /** Where the cause of a 5xx answer is logged (the response says only "internal error"). */
  onError?: (error: unknown, req: ApiRequest) => void;
}

export function composeAuthorizer(ports: AuthorizerPorts): Authenticator {
  return new Authenticator(ports.adminKeyHash, ports.registry);
}

export function composeApi(ports: ApiPorts): {
  router: Router<Principal>;
  authenticator: Authenticator;
  commands: CommandService;
} {
  const { registry, clock } = ports;
  // Issues requests only: the server's responses are handled by lwm2m-ingest.
  const lwm2m = new Lwm2mServer({ registrations: ports.registrations, pending: ports.pending, clock });
  const commands = new CommandService({
    registry,
    lwm2m,
    publish: (actions) => ports.publisher.publish(actions),
    clock,
    newId: ports.newId,
  });
  const authenticator = new Authenticator(ports.adminKeyHash, registry);
  const deps: ApiDeps = {
    registry,
    store: ports.store,
    events: ports.events,
    commands,
    authenticator,
    clock,
    health: ports.health ?? registryHealth(registry, clock),
    sparkplugState: ports.sparkplugState,
    newId: ports.newId,
    ...(ports.live ? { live: ports.live } : {}),
    ...(ports.onError ? { onError: ports.onError } : {}),
  };
  if (ports.shadows)
    deps.shadow = new ShadowService({
      registry,
      telemetry: ports.store,
      commands,
      shadows: ports.shadows,
      clock,
    });
  if (ports.rules) {
    const { rules, alerts, onChange } = ports.rules;
    deps.rulesApi = { rules, ...(onChange ? { onChange } : {}) };
    deps.alertsApi = { alerts };
  }
  if (ports.operations) {
    const operations = new OperationService({
      store: ports.operations.store,
      commands,
      selectDevices: selectDevicesFrom(registry, clock),
      ...(ports.operations.packages ? { packages: ports.operations.packages } : {}),
      clock,
      newId: ports.newId,
    });
    deps.operationsApi = {
      operations,
      ...(ports.operations.packages ? { packages: ports.operations.packages } : {}),
      newId: ports.newId,
      clock,
    };
  }
  return { router: createApiRouter(deps), authenticator, commands };
}
