// Entry of an ingest worker thread (ADR 0026): the sources are TypeScript, so tsx compiles them on
// load in this thread too (the stack's own loader does not reach worker threads under every runner).
import { register } from 'tsx/esm/api';

register();
await import('./ingest-worker-thread.ts');
