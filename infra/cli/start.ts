/**
 * `dualpath start` (= `npm start`): the whole pipeline on this machine — no AWS account, no Docker —
 * plus, by default, a simulated fleet. Live status on the terminal; Ctrl-C stops cleanly and loses
 * nothing already accepted (the broker stops first, then every accepted record is processed).
 */
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { checkAdminKeyStrength } from '../../functions/api/auth.js';
import { ValidationError } from '../../functions/core/errors.js';
import { type Fleet, startFleet } from '../../simulator/fleet.js';
import { endpointsFromEnv } from '../local/aws-clients.js';
import { startLocalStack } from '../local/stack.js';
import type { Command } from './main.js';

const HELP = `usage: dualpath start [options]

  --mqtt-port N      MQTT broker port (MQTT_PORT, default 1883)
  --port N           API and dashboard port (PORT, default 3000)
  --data-dir DIR     where DuckDB and the registry live (DUALPATH_DATA_DIR, default .dualpath)
  --devices N        simulated devices (default 20)
  --rate R           Sparkplug messages per second per device (default 1)
  --no-simulator     run the stack only
  --duration S       stop after S seconds (default: run until Ctrl-C)
  Admin API key: DUALPATH_ADMIN_KEY (at least 32 characters, not repetitive), generated and printed when unset.
  AWS_ENDPOINT_URL: use LocalStack's Kinesis and DynamoDB instead of the embedded emulators.
`;

function int(raw: string | undefined, fallback: number, field: string, min = 0): number {
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < min)
    throw new ValidationError(`--${field} must be a number ≥ ${min}`, { field });
  return n;
}

export const startCommand: Command = {
  summary:
    'run the whole pipeline locally (broker, rules, emulators, handlers, store, API, dashboard, simulator)',
  async run(args) {
    const { values } = parseArgs({
      args,
      options: {
        'mqtt-port': { type: 'string' },
        port: { type: 'string' },
        'data-dir': { type: 'string' },
        devices: { type: 'string' },
        rate: { type: 'string' },
        'no-simulator': { type: 'boolean' },
        duration: { type: 'string' },
        help: { type: 'boolean' },
      },
      strict: true,
    });
    if (values.help) {
      process.stdout.write(HELP);
      return 0;
    }
    const out = (line: string) => process.stdout.write(`${line}\n`);
    const chosenKey = process.env.DUALPATH_ADMIN_KEY;
    if (chosenKey) {
      try {
        checkAdminKeyStrength(chosenKey, 'DUALPATH_ADMIN_KEY');
      } catch (error) {
        process.stderr.write(`dualpath start: ${(error as Error).message}\n`);
        return 2;
      }
    }
    const stack = await startLocalStack({
      dataDir: resolve(values['data-dir'] ?? process.env.DUALPATH_DATA_DIR ?? '.dualpath'),
      mqttPort: int(values['mqtt-port'] ?? process.env.MQTT_PORT, 1883, 'mqtt-port'),
      httpPort: int(values.port ?? process.env.PORT, 3000, 'port'),
      ...(process.env.DUALPATH_ADMIN_KEY ? { adminKey: process.env.DUALPATH_ADMIN_KEY } : {}),
      // AWS_ENDPOINT_URL[_KINESIS|_DYNAMODB] (e.g. LocalStack): that service is not emulated here.
      endpoints: endpointsFromEnv(process.env),
      log: (line) => process.stderr.write(`${line}\n`),
    });
    out(`Dualpath local stack is up.`);
    out(
      `  MQTT broker   mqtt://127.0.0.1:${stack.mqttPort}   (client id = thing name; per-device topic ACL)`,
    );
    out(`  API           http://127.0.0.1:${stack.httpPort}   (GET /health, /openapi.json)`);
    out(`  Dashboard     http://127.0.0.1:${stack.httpPort}/#key=${stack.adminKey}`);
    if (!process.env.DUALPATH_ADMIN_KEY)
      out(`  Admin key     ${stack.adminKey}   (set DUALPATH_ADMIN_KEY to choose it)`);
    if (stack.demoApp)
      out(
        `  App key       ${stack.demoApp.apiKey}   (${stack.demoApp.name}: sees breakers only; shown once)`,
      );

    let fleet: Fleet | undefined;
    if (!values['no-simulator']) {
      const devices = int(values.devices, 20, 'devices');
      if (devices > 0) {
        const rate = int(values.rate, 1, 'rate');
        fleet = await startFleet({
          url: `mqtt://127.0.0.1:${stack.mqttPort}`,
          devices,
          rate,
          seed: 1,
          readingsPerSend: 20,
          badRatio: 0.002,
        });
        // The operator registers the simulated devices with their types (unknown devices would be
        // auto-registered as "unclassified").
        for (const d of fleet.devices) {
          if (!(await stack.registry.getDevice(d.id))) {
            const now = Date.now();
            await stack.registry.putDevice({
              id: d.id,
              type: d.type,
              tags: { simulated: 'true' },
              status: 'active',
              protocols: [],
              createdAt: now,
              updatedAt: now,
            });
          }
        }
        out(
          `  Simulator     ${devices} devices, ${rate} msg/s each, both protocols on one MQTT session per device`,
        );
      }
    }
    out('Ctrl-C to stop.');

    const tty = process.stderr.isTTY;
    let last = 0;
    const timer = setInterval(async () => {
      const s = stack.status();
      const f = fleet?.stats();
      const line =
        `online sp ${s.online.sparkplug} lw ${s.online.lwm2m} | in sp ${s.messages.sparkplug} lw ${s.messages.lwm2m} | ` +
        `stored ${s.readingsStored} (+${s.readingsStored - last}/s) | quarantined ${s.quarantined} | lag ${s.lag.records} rec` +
        (f ? ` | sim ${f.connected}/${f.devices} up` : '');
      last = s.readingsStored;
      if (tty) process.stderr.write(`\r${line.padEnd(140)}`);
      else if (Math.floor(s.uptimeMs / 1000) % 10 === 0) process.stderr.write(`${line}\n`);
    }, 1000);

    const stop = new Promise<string>((resolveStop) => {
      process.once('SIGINT', () => resolveStop('SIGINT'));
      process.once('SIGTERM', () => resolveStop('SIGTERM'));
      const duration = int(values.duration, 0, 'duration');
      if (duration > 0) setTimeout(() => resolveStop('duration'), duration * 1000).unref();
    });
    const why = await stop;
    clearInterval(timer);
    process.stderr.write(
      `\nstopping (${why}): devices send their deaths and de-register, then every accepted record is processed…\n`,
    );
    await fleet?.stop();
    await stack.stop();
    const s = stack.status();
    out(
      JSON.stringify({
        messagesIn: s.messages,
        readingsStored: s.readingsStored,
        quarantined: s.quarantined,
        refused: s.refused,
        ...(fleet ? { simulator: fleet.stats() } : {}),
      }),
    );
    return 0;
  },
};
