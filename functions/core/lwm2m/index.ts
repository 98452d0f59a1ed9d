/**
 * LwM2M 1.2 over the OMA MQTT binding: the public API in one place. The server side (registrations,
 * information reporting, device management requests, correlation; ADR 0005) and, for convenience, the
 * codec layer it is built on (binding envelope, content formats, SenML, link format, object registry;
 * ADR 0004).
 */
export * from '../cbor/index.js';
export * from '../senml/index.js';
export * from './content.js';
export * from './link-format.js';
export * from './lwm2m-cbor.js';
export * from './message.js';
export * from './objects.js';
export { createInMemoryLwm2mServer } from './server/index.js';
export { recordsToReadings } from './server/readings.js';
export * from './server/requests.js';
export { Lwm2mServer, type Lwm2mServerOptions } from './server/server.js';
export * from './server/state.js';
