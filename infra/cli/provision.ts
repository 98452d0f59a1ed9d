/**
 * `dualpath provision <device-id>…`: turns device ids into credentials through the stack's fleet
 * provisioning by claim (ADR 0018) — a key made here, its CSR signed by AWS IoT, RegisterThing checked
 * by the pre-provisioning hook — and writes, per device, `<id>.key.pem` (0600), `<id>.cert.pem` and
 * `<id>.connection.json`, which a real device or `dualpath simulate --connection` uses to connect with
 * its own identity. Devices already in --out are skipped (run it again after a failure).
 */
import { readFile } from 'node:fs/promises';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { ValidationError } from '../../functions/core/errors.js';
import { validateDeviceId, validateTypeId } from '../../functions/core/registry.js';
import type { Command } from './main.js';

const HELP = `usage: dualpath provision <device-id> [<device-id>…] --type TYPE [options]

  --type T                      the device type (the registered one, or a type that registers itself)
  --url URL                     mqtts://<IotEndpoint>:8883 (stack output IotEndpoint)
  --template NAME               provisioning template (stack output ProvisioningTemplateName)
  --claim-certificate-id ID     the claim, read with your AWS credentials: certificate id (stack output
  --claim-key-secret ARN          ClaimCertificateId) and key secret (stack output ClaimKeySecretArn)
  --claim-cert F --claim-key F  the claim certificate and key as files instead
  --ca F                        CA of the broker (default: Node's CAs, which include Amazon Root CA 1)
  --out DIR                     where credentials go (default ./credentials)
  --rate R                      RegisterThing requests per second (default 10)
  --json                        print the connection files as JSON
`;

export const provisionCommand: Command = {
  summary: 'turn device ids into credentials and connection files (fleet provisioning by claim)',
  async run(args) {
    const { values, positionals } = parseArgs({
      args,
      allowPositionals: true,
      options: {
        type: { type: 'string' },
        url: { type: 'string' },
        template: { type: 'string' },
        'claim-certificate-id': { type: 'string' },
        'claim-key-secret': { type: 'string' },
        'claim-cert': { type: 'string' },
        'claim-key': { type: 'string' },
        ca: { type: 'string' },
        out: { type: 'string' },
        rate: { type: 'string' },
        json: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
    });
    if (values.help) {
      process.stdout.write(HELP);
      return 0;
    }
    if (positionals.length === 0)
      throw new ValidationError('name at least one device id', { field: 'device-id' });
    const ids = positionals.map((id) => validateDeviceId(id, 'device-id'));
    const type = validateTypeId(values.type, 'type');
    const need = (v: string | undefined, field: string): string => {
      if (!v) throw new ValidationError(`--${field} is required (see --help)`, { field });
      return v;
    };
    const url = need(values.url, 'url');
    if (!/^mqtts?:\/\//.test(url))
      throw new ValidationError('--url must be mqtts:// (or mqtt:// for a local broker)', { field: 'url' });
    const template = need(values.template, 'template');
    const rate = values.rate === undefined ? 10 : Number(values.rate);
    if (!(rate > 0)) throw new ValidationError('--rate must be > 0', { field: 'rate' });

    let claim: { cert: string; key: string };
    if (values['claim-cert'] && values['claim-key']) {
      claim = {
        cert: await readFile(values['claim-cert'], 'utf8'),
        key: await readFile(values['claim-key'], 'utf8'),
      };
    } else if (values['claim-certificate-id'] && values['claim-key-secret']) {
      const { loadClaimFromAws } = await import('../../simulator/onboard-fleet.js');
      claim = await loadClaimFromAws({
        certificateId: values['claim-certificate-id'],
        keySecret: values['claim-key-secret'],
      });
    } else {
      throw new ValidationError(
        'give the claim: --claim-certificate-id and --claim-key-secret, or --claim-cert and --claim-key',
        { field: 'claim' },
      );
    }
    const ca = values.ca ? await readFile(values.ca, 'utf8') : undefined;
    const out = path.resolve(values.out ?? 'credentials');
    const { provisionFleet, readConnection } = await import('../../simulator/provisioning.js');
    const result = await provisionFleet({
      devices: ids.map((id) => ({ id, type })),
      templateName: template,
      claim: { url, tls: { ...claim, ...(ca ? { ca } : {}) } },
      dir: out,
      deviceUrl: url,
      ratePerSecond: rate,
      connections: Math.min(4, ids.length),
      attempts: 4,
    });
    for (const f of result.failed) {
      process.stderr.write(`dualpath provision: ${f.id}: ${f.error}\n`);
      if (/403|AccessDenied/.test(f.error))
        process.stderr.write(
          `  refused by the pre-provisioning hook: register ${f.id} first (PUT /devices/${f.id} with type ${type}), or check its type and status\n`,
        );
    }
    const files = [];
    for (const id of ids) {
      if (result.failed.some((f) => f.id === id)) continue;
      const file = path.join(out, `${id}.connection.json`);
      files.push((await readConnection(file)).conn);
      if (!values.json) process.stderr.write(`${id}: ${file}\n`);
    }
    if (values.json) process.stdout.write(`${JSON.stringify(files, null, 2)}\n`);
    process.stderr.write(
      `provisioned ${result.provisioned}, already there ${result.skipped}, failed ${result.failed.length}\n`,
    );
    return result.failed.length === 0 ? 0 : 1;
  },
};
