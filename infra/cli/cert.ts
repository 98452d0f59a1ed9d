/**
 * `dualpath cert`: the local CA behind `dualpath start --tls` (ADR 0019). `cert issue <device-id>`
 * writes a device certificate (CN = the thing name, which must also be the MQTT client id) and its key
 * into the data directory; `cert ca` prints where the CA is (and creates it on first use).
 */
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { ValidationError } from '../../functions/core/errors.js';
import { ensureLocalCa, issueDeviceCert } from '../local/ca.js';
import type { Command } from './main.js';

const HELP = `usage: dualpath cert issue <device-id> [--data-dir DIR] [--json]
       dualpath cert ca [--data-dir DIR] [--json]

  issue <device-id>   issue a device certificate from the local CA: <data-dir>/tls/devices/<id>.crt + .key
                      (CN = device id; connect with client id = device id to mqtts://127.0.0.1:8883)
  ca                  print the CA certificate's path (created on first use; trust it to reach the broker)
  --data-dir DIR      the local stack's data directory (DUALPATH_DATA_DIR, default .dualpath)
  --json              print the paths as JSON

  Local development only: the CA key is a file in the data directory (mode 0600).
`;

export const certCommand: Command = {
  summary: 'issue device certificates from the local CA (for `dualpath start --tls`)',
  async run(args) {
    const { values, positionals } = parseArgs({
      args,
      options: {
        'data-dir': { type: 'string' },
        json: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
      allowPositionals: true,
      strict: true,
    });
    const [action, deviceId, ...extra] = positionals;
    if (values.help || action === undefined) {
      process.stdout.write(HELP);
      return values.help ? 0 : 2;
    }
    const dataDir = resolve(values['data-dir'] ?? process.env.DUALPATH_DATA_DIR ?? '.dualpath');
    const out = (line: string) => process.stdout.write(`${line}\n`);
    try {
      if (action === 'ca' && deviceId === undefined) {
        const { paths, created } = await ensureLocalCa(dataDir);
        if (values.json) out(JSON.stringify({ ca: paths.caCert, created }));
        else out(`${created ? 'created' : 'local CA'}: ${paths.caCert}`);
        return 0;
      }
      if (action === 'issue' && deviceId !== undefined && extra.length === 0) {
        const files = await issueDeviceCert(dataDir, deviceId);
        if (values.json) out(JSON.stringify({ deviceId, ...files }));
        else {
          out(`certificate  ${files.cert}   (CN=${deviceId})`);
          out(`key          ${files.key}   (0600)`);
          out(`CA           ${files.ca}`);
          out(
            `connect to mqtts://127.0.0.1:8883 with client id "${deviceId}" and these three files; it may publish on ` +
              `spBv1.0/<group>/{N,D}{BIRTH,DATA,DEATH}/${deviceId}[/...] and lwm2m/rd/${deviceId} (no retained publishes)`,
          );
        }
        return 0;
      }
      process.stderr.write(`dualpath cert: expected "issue <device-id>" or "ca"\n${HELP}`);
      return 2;
    } catch (error) {
      if (error instanceof ValidationError) {
        process.stderr.write(`dualpath cert: ${error.code}: ${error.message}\n`);
        return 2;
      }
      throw error;
    }
  },
};
