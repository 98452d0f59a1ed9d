/**
 * Batch operations and firmware packages (ADR 0022, amendment 2026-12-05 for application keys).
 *   POST /firmware                     upload a package {name, version, contentBase64} → 201 (admin)
 *   GET  /firmware, /firmware/{id}     packages (metadata and SHA-256; never the bytes)
 *   POST /operations                   {filter, operation, settings?} → 202 with the operation
 *   GET  /operations                   newest first
 *   GET  /operations/{id}              the operation, its counts and progress
 *   GET  /operations/{id}/targets      per-device status (?status= to filter)
 *   POST /operations/{id}/cancel       pending devices are not started; firmware downloads in flight are
 *                                      cancelled on the device (Execute /5/0/10); other commands in flight finish
 *   POST /operations/{id}/retry        re-runs only the failed and timed-out devices
 *   GET  /packages/{id}/{name}?e&s     public: a device fetching a package by its signed path → 302 to
 *                                      the bytes (stores that keep them elsewhere: S3), 403 bad/expired
 *                                      signature, 404 no package. The signature is the credential.
 * The admin key reaches every device and operation. An application key starts operations on its device
 * types only (another type in the filter: 403; another type's device id: unknown) and sees, cancels and
 * retries only the operations it started (any other: 404, as if absent). Uploading firmware stays with
 * the admin: a package may be sent to any type's devices, so its bytes are the operator's to vouch for.
 */
import { NotFoundError } from '../../core/errors.js';
import { type Operation, TARGET_STATUSES, type TargetStatus } from '../../core/operations/model.js';
import { type PackageStore, parsePackageUpload } from '../../core/operations/packages.js';
import type { OperationService } from '../../core/operations/service.js';
import { type Principal, requireAdmin } from '../auth.js';
import { badRequest, notFound, queryInt, type Router } from '../http.js';
import { json } from './context.js';

export interface OperationsApiDeps {
  operations: OperationService;
  packages?: PackageStore;
  newId: () => string;
  clock: () => number;
}

/** The operation as the API shows it: its counts and a progress figure. */
export function operationView(op: Operation) {
  const finished = op.total - op.counts.pending - op.counts.sent;
  return {
    ...op,
    progress: {
      finished,
      total: op.total,
      percent: op.total ? Math.floor((finished * 100) / op.total) : 100,
    },
  };
}

export function registerOperationRoutes(r: Router<Principal>, api: OperationsApiDeps | undefined): void {
  if (!api) return;
  const { operations, packages } = api;
  /** The operation, if this principal may see it (an application: only its own). */
  const mustGet = async (id: string, principal: Principal) => {
    const op = await operations.get(id);
    if (!op || (principal.kind === 'app' && op.appId !== principal.appId))
      throw notFound(`operation ${id} not found`);
    return op;
  };

  r.add('POST', '/firmware', async (req, _p, principal) => {
    requireAdmin(principal);
    if (!packages) throw notFound('firmware packages are not configured');
    const id = api
      .newId()
      .replace(/[^A-Za-z0-9_-]/g, '')
      .slice(0, 64);
    const { pkg, bytes } = parsePackageUpload(req.body, id, api.clock());
    await packages.put(pkg, bytes);
    return { ...json(pkg, 201), headers: { location: `/firmware/${encodeURIComponent(pkg.id)}` } };
  });
  r.add('GET', '/firmware', async () => {
    return json({ packages: packages ? await packages.list() : [] });
  });
  r.add('GET', '/firmware/{id}', async (_req, p) => {
    const pkg = await packages?.get(p.id!);
    if (!pkg) throw notFound(`firmware package ${p.id} not found`);
    return json(pkg);
  });

  // Served here where the bytes live elsewhere (S3); the local stack's HTTP server serves them itself.
  r.add(
    'GET',
    '/packages/{id}/{name}',
    async (req, p) => {
      const out = packages?.redirect ? await packages.redirect(p.id!, req.query) : { status: 404 as const };
      if (out.status === 302)
        return { status: 302, body: null, headers: { location: out.location, 'cache-control': 'no-store' } };
      return out.status === 403
        ? {
            status: 403,
            body: { error: { code: 'FORBIDDEN', message: 'the link is not valid or has expired' } },
          }
        : {
            status: 404,
            body: { error: { code: 'NOT_FOUND', message: `firmware package ${p.id} not found` } },
          };
    },
    { public: true },
  );

  r.add('POST', '/operations', async (req, _p, principal) => {
    const op = await operations.create(
      req.body,
      principal.kind === 'app'
        ? { kind: 'app', appId: principal.appId, deviceTypes: principal.deviceTypes }
        : { kind: 'admin' },
    );
    return {
      ...json(operationView(op), 202),
      headers: { location: `/operations/${encodeURIComponent(op.id)}` },
    };
  });
  r.add('GET', '/operations', async (req, _p, principal) => {
    const limit = queryInt(req.query, 'limit', { min: 1, max: 100, default: 50 })!;
    const appId = principal.kind === 'app' ? principal.appId : undefined;
    return json({ operations: (await operations.list(limit, appId)).map(operationView) });
  });
  r.add('GET', '/operations/{id}', async (_req, p, principal) => {
    return json(operationView(await mustGet(p.id!, principal)));
  });
  r.add('GET', '/operations/{id}/targets', async (req, p, principal) => {
    const status = req.query.status;
    if (status !== undefined && !TARGET_STATUSES.includes(status as TargetStatus))
      throw badRequest(`status must be one of ${TARGET_STATUSES.join(', ')}`, 'status');
    await mustGet(p.id!, principal);
    return json({ targets: await operations.targets(p.id!, status) });
  });
  r.add('POST', '/operations/{id}/cancel', async (_req, p, principal) => {
    await mustGet(p.id!, principal);
    return json(operationView(await operations.cancel(p.id!)), 202);
  });
  r.add('POST', '/operations/{id}/retry', async (_req, p, principal) => {
    await mustGet(p.id!, principal);
    try {
      return json(operationView(await operations.retry(p.id!)), 202);
    } catch (error) {
      if (error instanceof NotFoundError) throw notFound(error.message);
      throw error;
    }
  });
}
