/**
 * The REST API: one router, served by API Gateway (functions/api/handler.ts) and by the local stack's
 * HTTP server. Every route but GET /health and GET /openapi.json needs a credential; application keys
 * see only the device types they registered for, and anything else is 403 — never silently empty
 * (ADR 0010). One module per resource under ./routes.
 */
import type { Principal } from './auth.js';
import { Router } from './http.js';
import { registerAlertRoutes } from './routes/alerts.js';
import { registerAppRoutes } from './routes/apps.js';
import { registerCommandRoutes } from './routes/commands.js';
import { type ApiDeps, json } from './routes/context.js';
import { registerDeviceTypeRoutes } from './routes/device-types.js';
import { registerDeviceRoutes } from './routes/devices.js';
import { registerEventRoutes } from './routes/events.js';
import { registerHealthRoutes } from './routes/health.js';
import { registerOperationRoutes } from './routes/operations.js';
import { registerRuleRoutes } from './routes/rules.js';
import { registerShadowRoutes } from './routes/shadow.js';
import { registerTelemetryRoutes } from './routes/telemetry.js';

export type { ApiDeps, HealthCounts } from './routes/context.js';

export function createApiRouter(deps: ApiDeps): Router<Principal> {
  const r = new Router<Principal>((req) => deps.authenticator.authenticate(req), deps.onError);
  registerHealthRoutes(r, deps);
  // The document (~30 KB of code) is loaded on its first request: no other route needs it, so a cold
  // start does not compile it (ADR 0025 amendment 2).
  r.add('GET', '/openapi.json', async () => json((await import('./openapi.js')).openApiDocument()), {
    public: true,
  });
  registerDeviceRoutes(r, deps);
  registerTelemetryRoutes(r, deps);
  registerCommandRoutes(r, deps);
  registerDeviceTypeRoutes(r, deps);
  registerAppRoutes(r, deps);
  registerEventRoutes(r, deps);
  registerRuleRoutes(r, deps);
  registerAlertRoutes(r, deps);
  registerOperationRoutes(r, deps.operationsApi);
  if (deps.shadow) registerShadowRoutes(r, deps, deps.shadow);
  return r;
}
