// Entry of a handler thread of `npm run bench -- anomaly --aws` (scripts/bench/aws-handler-thread.ts):
// the sources are TypeScript, so tsx compiles them on load in this thread too.
import { register } from 'tsx/esm/api';

register();
await import('./aws-handler-thread.ts');
