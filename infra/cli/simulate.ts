/**
 * `dualpath simulate`: a fleet against any MQTT broker — the local stack, or AWS IoT Core with mutual
 * TLS (`--from-env` reads DEVICE_CREDENTIALS {certificatePem, privateKey, endpoint} as written by the
 * CDK provisioner, with SIM_DEVICES / SIM_RATE / SIM_THING_PREFIX).
 */
import { parseArgs } from 'node:util';
import { ValidationError } from '../../functions/core/errors.js';
import { type FleetOptions, startFleet } from '../../simulator/fleet.js';
import { MODEL_TYPES } from '../../simulator/models.js';
import type { Command } from './main.js';

export const simulateCommand: Command = {
  summary: 'run a simulated fleet (both protocols on one MQTT session per device)',
  async run(args) {
    const { values } = parseArgs({
      args,
      options: {
        url: { type: 'string' },
        devices: { type: 'string' },
        rate: { type: 'string' },
        duration: { type: 'string' },
        seed: { type: 'string' },
        types: { type: 'string' },
        'readings-per-message': { type: 'string' },
        'bad-ratio': { type: 'string' },
        'from-env': { type: 'boolean' },
        json: { type: 'boolean' },
        help: { type: 'boolean' },
      },
      strict: true,
    });
    if (values.help) {
      process.stdout.write(
        `usage: dualpath simulate [--url mqtt://127.0.0.1:1883] [--devices N] [--rate R] [--duration S] [--seed X]\n` +
          `  [--types ${MODEL_TYPES.join(',')}] [--readings-per-message K] [--bad-ratio 0.01] [--from-env] [--json]\n`,
      );
      return 0;
    }
    const num = (raw: string | undefined, fallback: number, field: string) => {
      if (raw === undefined) return fallback;
      const n = Number(raw);
      if (!Number.isFinite(n) || n < 0)
        throw new ValidationError(`--${field} must be a non-negative number`, { field });
      return n;
    };
    const env = process.env;
    const opts: FleetOptions = {
      url: values.url ?? 'mqtt://127.0.0.1:1883',
      devices: num(values.devices ?? (values['from-env'] ? env.SIM_DEVICES : undefined), 10, 'devices'),
      rate: Math.min(num(values.rate ?? (values['from-env'] ? env.SIM_RATE : undefined), 1, 'rate'), 100),
      seed: num(values.seed, 1, 'seed'),
      readingsPerSend: num(values['readings-per-message'], 50, 'readings-per-message'),
      badRatio: num(values['bad-ratio'], 0, 'bad-ratio'),
      ...(values.types ? { types: values.types.split(',') } : {}),
    };
    if (values['from-env']) {
      if (env.SIM_THING_PREFIX) opts.prefix = env.SIM_THING_PREFIX;
      if (env.DEVICE_CREDENTIALS) {
        // AWS IoT Core: mutual TLS on 8883 to the ATS endpoint; IoT Core caps a connection at 100 publishes/s.
        const creds = JSON.parse(env.DEVICE_CREDENTIALS) as {
          certificatePem: string;
          privateKey: string;
          endpoint: string;
        };
        opts.url = `mqtts://${creds.endpoint}:8883`;
        opts.mqtt = { cert: creds.certificatePem, key: creds.privateKey, rejectUnauthorized: true };
      }
    }
    const fleet = await startFleet(opts);
    const duration = num(values.duration, 0, 'duration');
    const tick = setInterval(() => {
      const s = fleet.stats();
      if (process.stderr.isTTY) {
        process.stderr.write(
          `\rconnected ${s.connected}/${s.devices} | msgs sp ${s.messages.sparkplug} lw ${s.messages.lwm2m} | readings ${s.readings.sparkplug + s.readings.lwm2m} | bad ${s.bad}   `,
        );
      }
    }, 1000);
    await new Promise<void>((resolveStop) => {
      process.once('SIGINT', () => resolveStop());
      process.once('SIGTERM', () => resolveStop());
      if (duration > 0) setTimeout(resolveStop, duration * 1000).unref();
    });
    clearInterval(tick);
    await fleet.stop();
    const s = fleet.stats();
    process.stdout.write(`${values.json ? JSON.stringify(s) : `\nsummary: ${JSON.stringify(s)}`}\n`);
    return 0;
  },
};
