/** The LwM2M server: public entry points. */
import type { Clock } from '../../processor.js';
import { Lwm2mServer } from './server.js';
import { InMemoryPendingRequestStore, InMemoryRegistrationStore } from './state.js';

export { recordsToReadings } from './readings.js';
export * from './requests.js';
export { Lwm2mServer, type Lwm2mServerOptions } from './server.js';
export * from './state.js';

/** A server over in-memory stores (the decode CLI, tests, benchmarks). */
export function createInMemoryLwm2mServer(opts: {
  clock: Clock;
  defaultLifetime?: number;
  requestTimeoutMs?: number;
}): Lwm2mServer {
  return new Lwm2mServer({
    registrations: new InMemoryRegistrationStore(),
    pending: new InMemoryPendingRequestStore(),
    ...opts,
  });
}
