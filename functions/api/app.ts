/** Kept for existing importers: the router now lives in ./router.ts (one module per resource in ./routes). */

export { openApiDocument } from './openapi.js';
export { type ApiDeps, createApiRouter } from './router.js';
