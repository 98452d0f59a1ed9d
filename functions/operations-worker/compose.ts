/**
 * The operations worker, whole — its one composition root (ADR 0022). It drives batch operations: each
 * pass (`tick`) collects the answers of the device commands in flight, advances every target's state
 * machine, and starts pending targets as the operation's concurrency and rate allow. Commands go out
 * through the single-device command path (CommandService over an LwM2M server that writes at once, and
 * the publisher), so they are recorded, correlated and completed (by lwm2m-ingest) like any other.
 *
 * Locally the stack runs `tick` on a short timer. In AWS a scheduled invocation loops over passes for
 * up to `budgetMs` (handler.ts) inside a 1-minute schedule with no retries, so runs rarely overlap;
 * every operation write is version-checked, so an overlap cannot corrupt an operation (ADR 0022).
 */
import { CommandService } from '../core/commands.js';
import type { PublisherPort } from '../core/ingest.js';
import { type LivePublisher, operationPassEvents } from '../core/live.js';
import { Lwm2mServer } from '../core/lwm2m/server/server.js';
import type { PendingRequestStore, RegistrationStore } from '../core/lwm2m/server/state.js';
import type { PackageStore } from '../core/operations/packages.js';
import { selectDevicesFrom } from '../core/operations/select.js';
import { OperationService, type TickResult } from '../core/operations/service.js';
import type { OperationStore } from '../core/operations/store.js';
import type { Clock } from '../core/processor.js';
import type { RegistryPort } from '../core/registry.js';

export interface WorkerLogger {
  error(message: string, error: Error): void;
}

export interface OperationsWorkerPorts {
  registry: RegistryPort;
  registrations: RegistrationStore;
  pending: PendingRequestStore;
  publisher: PublisherPort;
  store: OperationStore;
  packages?: PackageStore;
  clock: Clock;
  newId: () => string;
  logger?: WorkerLogger;
  /** Live updates (ADR 0023): each pass's progress is published (and flushed) when given. */
  live?: LivePublisher;
  /** Waits between passes inside one invocation (default setTimeout). */
  sleep?: (ms: number) => Promise<void>;
}

export interface OperationsWorkerSettings {
  /** How long one invocation keeps making passes (default 50 s: a one-minute schedule, no overlap). */
  budgetMs?: number;
  /** Pause between two passes (default 1 s). */
  passMs?: number;
  /**
   * Passes in a row that change nothing before the invocation ends early (default 10): slow devices
   * (a real download takes minutes) are left to the next scheduled invocation.
   */
  idlePasses?: number;
}

export interface OperationsWorker {
  service: OperationService;
  /** One pass over every active operation. */
  tick(): Promise<TickResult[]>;
  /** Lambda entry: passes until the budget is spent or nothing is active. */
  handler: (event: unknown) => Promise<{ passes: number; sent: number; changed: number; active: number }>;
}

export function composeOperationsWorker(
  ports: OperationsWorkerPorts,
  settings: OperationsWorkerSettings = {},
): OperationsWorker {
  const lwm2m = new Lwm2mServer({
    registrations: ports.registrations,
    pending: ports.pending,
    clock: ports.clock,
  });
  const commands = new CommandService({
    registry: ports.registry,
    lwm2m,
    publish: (actions) => ports.publisher.publish(actions),
    clock: ports.clock,
    newId: ports.newId,
  });
  const service = new OperationService({
    store: ports.store,
    commands,
    selectDevices: selectDevicesFrom(ports.registry, ports.clock),
    ...(ports.packages ? { packages: ports.packages } : {}),
    clock: ports.clock,
    newId: ports.newId,
  });
  const sleep = ports.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const budgetMs = settings.budgetMs ?? 50_000;
  const passMs = settings.passMs ?? 1000;
  return {
    service,
    tick: () => service.tickAll(),
    handler: async () => {
      const until = ports.clock() + budgetMs;
      const idleLimit = settings.idlePasses ?? 10;
      let passes = 0;
      let sent = 0;
      let changed = 0;
      let active = 0;
      let idle = 0;
      do {
        const results = await service.tickAll();
        passes++;
        await publishPass(ports.live, results);
        const c = results.reduce((n, r) => n + r.changed, 0);
        sent += results.reduce((n, r) => n + r.sent, 0);
        changed += c;
        idle = c === 0 ? idle + 1 : 0;
        active = results.filter(
          (r) => r.operation.status === 'running' || r.operation.status === 'cancelling',
        ).length;
        if (active === 0 || idle >= idleLimit) break;
        await sleep(passMs);
      } while (ports.clock() + passMs < until);
      return { passes, sent, changed, active };
    },
  };
}

/** Progress of one pass to the live publisher; never fails the pass (best effort, REST is the truth). */
async function publishPass(live: LivePublisher | undefined, results: TickResult[]): Promise<void> {
  if (!live) return;
  try {
    const events = operationPassEvents(results);
    if (events.length > 0) live.publish(events);
    await live.flush?.();
  } catch {
    // Best effort.
  }
}
