/**
 * Batch operations on the local stack (ADR 0022): the operation store on the registry table (dynalite),
 * firmware packages in the data directory served by signed URL, and the worker's composition root run
 * on a timer (one pass at a time).
 */
import { randomUUID } from 'node:crypto';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { DynamoOperationStore } from '../../functions/adapters/dynamo-operations.js';
import type { PublisherPort } from '../../functions/core/ingest.js';
import { type LivePublisher, operationPassEvents } from '../../functions/core/live.js';
import type { PendingRequestStore, RegistrationStore } from '../../functions/core/lwm2m/server/state.js';
import type { TickResult } from '../../functions/core/operations/service.js';
import type { RegistryPort } from '../../functions/core/registry.js';
import { composeOperationsWorker } from '../../functions/operations-worker/compose.js';
import { LocalPackageStore } from './firmware-store.js';

export interface LocalOperationsOptions {
  doc: DynamoDBDocumentClient;
  registryTable: string;
  dataDir: string;
  /** The HTTP server's base URL (known once it listens). */
  baseUrl: () => string;
  registry: RegistryPort;
  registrations: RegistrationStore;
  pending: PendingRequestStore;
  publisher: PublisherPort;
  clock: () => number;
  log: (line: string) => void;
  /** Operation progress pushed to live subscribers (ADR 0023) after each pass that changed something. */
  live?: LivePublisher;
  /** Worker pass period (default 250 ms). */
  passMs?: number;
}

export function localOperations(o: LocalOperationsOptions) {
  const store = new DynamoOperationStore({ client: o.doc, tableName: o.registryTable });
  const packages = new LocalPackageStore(o.dataDir, o.baseUrl, o.clock);
  const worker = composeOperationsWorker({
    registry: o.registry,
    registrations: o.registrations,
    pending: o.pending,
    publisher: o.publisher,
    store,
    packages,
    clock: o.clock,
    newId: randomUUID,
  });
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<unknown> | undefined;
  let errors = 0;
  const pass = () => {
    if (running) return;
    running = worker
      .tick()
      .then((results) => {
        if (o.live) publishProgress(o.live, results);
      })
      .catch((error: Error) => {
        if (errors++ % 100 === 0) o.log(`operations worker: ${error.message}`);
      })
      .finally(() => {
        running = undefined;
      });
  };
  return {
    apiPorts: { store, packages },
    serve: (path: string, query: URLSearchParams) => packages.serve(path, query),
    worker,
    start() {
      timer = setInterval(pass, o.passMs ?? 250);
    },
    async stop() {
      if (timer) clearInterval(timer);
      await running;
    },
  };
}

/** One progress event per operation that moved (core/live.ts operationPassEvents). */
function publishProgress(live: LivePublisher, results: TickResult[]): void {
  const events = operationPassEvents(results);
  if (events.length > 0) live.publish(events);
}
