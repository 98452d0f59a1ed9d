/**
 * Simulated devices onboard as real ones do (ADR 0018): at start-up a task provisions each of its
 * devices by claim through the stack's template (own key, certificate and thing; the hook registers
 * them), paced under the account's provisioning rate, resumable from the credentials directory, and
 * then connects each device with its own certificate. Thing names (= client ids) carry the task's id,
 * so two tasks never use the same client id.
 */
import { randomBytes } from 'node:crypto';
import * as path from 'node:path';
import { ValidationError } from '../functions/core/errors.js';
import { type FleetOptions, typeAt } from './fleet.js';
import { type ClaimConnection, provisionFleet, readConnection } from './provisioning.js';

/** The claim certificate (PEM, from IoT) and key (from the claim secret), read with AWS credentials. */
export async function loadClaimFromAws(o: {
  certificateId: string;
  keySecret: string;
}): Promise<{ cert: string; key: string }> {
  const { IoTClient, DescribeCertificateCommand } = await import('@aws-sdk/client-iot');
  const { SecretsManagerClient, GetSecretValueCommand } = await import('@aws-sdk/client-secrets-manager');
  const [cert, secret] = await Promise.all([
    new IoTClient({}).send(new DescribeCertificateCommand({ certificateId: o.certificateId })),
    new SecretsManagerClient({}).send(new GetSecretValueCommand({ SecretId: o.keySecret })),
  ]);
  const pem = cert.certificateDescription?.certificatePem;
  let key: unknown;
  try {
    key = (JSON.parse(secret.SecretString ?? '') as { privateKey?: unknown }).privateKey;
  } catch {
    key = undefined;
  }
  if (!pem)
    throw new ValidationError(`claim certificate ${o.certificateId} has no PEM`, {
      field: 'CLAIM_CERTIFICATE_ID',
    });
  if (typeof key !== 'string')
    throw new ValidationError('the claim key secret holds no privateKey', { field: 'CLAIM_KEY_SECRET' });
  return { cert: pem, key };
}

/**
 * A short id of this task for thing names: the ECS task id (from the task metadata endpoint),
 * SIM_TASK_ID if set, else random. Lowercase hex/alphanumerics, 8 characters.
 */
export async function taskTag(
  env: NodeJS.ProcessEnv,
  fetchJson: (url: string) => Promise<unknown> = async (u) => (await fetch(u)).json(),
): Promise<string> {
  if (env.SIM_TASK_ID) {
    if (!/^[a-z0-9]{1,16}$/.test(env.SIM_TASK_ID))
      throw new ValidationError('SIM_TASK_ID must be 1-16 of a-z 0-9', { field: 'SIM_TASK_ID' });
    return env.SIM_TASK_ID;
  }
  const meta = env.ECS_CONTAINER_METADATA_URI_V4;
  if (meta) {
    try {
      const task = (await fetchJson(`${meta}/task`)) as { TaskARN?: string };
      const id = task.TaskARN?.split('/').at(-1);
      if (id && /^[a-z0-9]+$/.test(id)) return id.slice(0, 8);
    } catch {
      // fall through: a random tag still keeps client ids unique
    }
  }
  return randomBytes(4).toString('hex');
}

/** Thing names of this task's devices: {prefix}{tag}-{index}. */
export function taskDeviceIds(prefix: string, tag: string, count: number, firstIndex = 0): string[] {
  const width = Math.max(4, String(firstIndex + count - 1).length);
  return Array.from(
    { length: count },
    (_, n) => `${prefix}${tag}-${String(firstIndex + n).padStart(width, '0')}`,
  );
}

export interface OnboardingEnvResult {
  provisioned: number;
  skipped: number;
  failed: number;
}

/**
 * With PROVISIONING_TEMPLATE set: provisions this task's devices and sets `opts.ids` and
 * `opts.mqttFor`; devices that could not be provisioned are left out (and counted). The claim comes
 * from CLAIM_CERT_FILE/CLAIM_KEY_FILE, or CLAIM_CERTIFICATE_ID + CLAIM_KEY_SECRET read from AWS.
 */
export async function onboardFromEnv(
  env: NodeJS.ProcessEnv,
  opts: FleetOptions,
  deps: {
    loadClaim?: typeof loadClaimFromAws;
    log?: (line: string) => void;
    claimUrl?: string;
  } = {},
): Promise<OnboardingEnvResult | undefined> {
  const template = env.PROVISIONING_TEMPLATE;
  if (!template) return undefined;
  const log = deps.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  const { readFile } = await import('node:fs/promises');
  let tls: ClaimConnection['tls'];
  if (env.CLAIM_CERT_FILE && env.CLAIM_KEY_FILE) {
    tls = {
      cert: await readFile(env.CLAIM_CERT_FILE, 'utf8'),
      key: await readFile(env.CLAIM_KEY_FILE, 'utf8'),
    };
  } else if (env.CLAIM_CERTIFICATE_ID && env.CLAIM_KEY_SECRET) {
    tls = await (deps.loadClaim ?? loadClaimFromAws)({
      certificateId: env.CLAIM_CERTIFICATE_ID,
      keySecret: env.CLAIM_KEY_SECRET,
    });
  } else {
    throw new ValidationError(
      'PROVISIONING_TEMPLATE needs CLAIM_CERTIFICATE_ID + CLAIM_KEY_SECRET or CLAIM_CERT_FILE + CLAIM_KEY_FILE',
      { field: 'PROVISIONING_TEMPLATE' },
    );
  }
  const rate = env.SIM_PROVISION_RATE === undefined ? 10 : Number(env.SIM_PROVISION_RATE);
  if (!(rate > 0))
    throw new ValidationError('SIM_PROVISION_RATE must be > 0', { field: 'SIM_PROVISION_RATE' });
  const tag = await taskTag(env);
  const first = opts.firstIndex ?? 0;
  const ids = taskDeviceIds(opts.prefix ?? 'sim-', tag, opts.devices, first);
  const devices = ids.map((id, n) => ({ id, type: typeAt(opts, first + n) }));
  const dir = env.SIM_CREDENTIALS_DIR ?? path.join('/tmp', 'dualpath-credentials');
  const url = opts.url;
  log(
    `onboarding ${devices.length} devices through ${template} at ${rate}/s (task ${tag}, credentials in ${dir})`,
  );
  const started = Date.now();
  const result = await provisionFleet({
    devices,
    templateName: template,
    claim: { url: deps.claimUrl ?? url, ...(tls ? { tls } : {}) },
    dir,
    deviceUrl: url,
    ratePerSecond: rate,
    clientIdPrefix: tag,
    onProgress: (done, total) => {
      if (done % 500 === 0 || done === total) log(`onboarded ${done}/${total}`);
    },
  });
  for (const f of result.failed.slice(0, 5)) log(`onboarding failed for ${f.id}: ${f.error}`);
  const failed = new Set(result.failed.map((f) => f.id));
  const kept = devices.filter((d) => !failed.has(d.id));
  const creds = new Map<string, { cert: string; key: string }>();
  for (const d of kept) {
    const c = await readConnection(path.join(dir, `${d.id}.connection.json`));
    creds.set(d.id, { cert: c.cert, key: c.key });
  }
  opts.ids = kept.map((d) => d.id);
  if (failed.size > 0) {
    // Left-out devices are dropped; the others keep the types they were provisioned with.
    opts.types = kept.map((d) => d.type);
    opts.devices = kept.length;
    opts.firstIndex = 0;
  }
  opts.mqttFor = (id) => {
    const c = creds.get(id);
    return c ? { cert: c.cert, key: c.key, rejectUnauthorized: true } : undefined;
  };
  log(
    `onboarding done in ${((Date.now() - started) / 1000).toFixed(1)} s: ${result.provisioned} provisioned, ` +
      `${result.skipped} already had credentials, ${result.failed.length} failed`,
  );
  return { provisioned: result.provisioned, skipped: result.skipped, failed: result.failed.length };
}
