/**
 * The lwm2m-ingest function, whole — its one composition root. Kinesis stream "lwm2m" → LwM2M 1.2
 * server (owning its write-back registration cache) → registry enrichment → telemetry store; responses
 * published to devices, lifecycle events logged, and the API's commands completed when the device's
 * answer arrives. The Lambda entry (handler.ts), the local stack and the benchmarks all build the
 * function here and differ only in the ports they pass.
 */
import { completingCommands } from '../core/commands.js';
import { Lwm2mServer } from '../core/lwm2m/server/server.js';
import type { PendingRequestStore, RegistrationStore } from '../core/lwm2m/server/state.js';
import {
  assembleIngest,
  type IngestFunction,
  type IngestHooks,
  type IngestPorts,
  type IngestSettings,
  ingestEnricher,
} from '../shared/ingest-function.js';

export interface Lwm2mIngestPorts extends IngestPorts {
  /** Registrations (lifetime, objects, observations) per endpoint. */
  registrations: RegistrationStore;
  /** Requests the API sent to devices, awaiting their responses (token → command). */
  pending: PendingRequestStore;
}

export function composeLwm2mIngest(
  ports: Lwm2mIngestPorts,
  settings: IngestSettings = {},
  hooks: IngestHooks = {},
): IngestFunction {
  const server = new Lwm2mServer({
    registrations: ports.registrations,
    pending: ports.pending,
    clock: ports.clock,
    writeBack: true,
  });
  const enricher = ingestEnricher(ports, settings);
  // A device's answer to a command completes that command as its response event is logged.
  const events = completingCommands(ports.events, ports.registry, ports.clock);
  return assembleIngest('lwm2m', { processor: server, enricher, events }, ports, settings, hooks);
}
