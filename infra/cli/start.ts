/**
 * `dualpath start` (= `npm start`): the whole pipeline on this machine — no AWS account, no Docker —
 * plus, by default, a simulated fleet. Live status on the terminal; Ctrl-C stops cleanly and loses
 * nothing already accepted (the broker stops first, then every accepted record is processed).
 */
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { checkAdminKeyStrength } from '../../functions/api/auth.js';
import { ValidationError } from '../../functions/core/errors.js';
import { type Fleet, type FleetOptions, plannedDevices, startFleet } from '../../simulator/fleet.js';
import { endpointsFromEnv } from '../local/aws-clients.js';
import { PUBLISH_BURST_PER_CONNECTION, PUBLISH_RATE_PER_CONNECTION } from '../local/broker.js';
import { deviceTlsOptions } from '../local/ca.js';
import { DEFAULT_INGEST_WORKERS } from '../local/ingest-workers.js';
import { startLocalStack } from '../local/stack.js';
import type { Command } from './main.js';

const HELP = `usage: dualpath start [options]

  --mqtt-port N      plain MQTT port on 127.0.0.1 (MQTT_PORT, default 1883): no TLS, no password;
                     the client id is the thing name (the zero-setup default)
  --tls              also MQTT over TLS with client certificates from the local CA in <data-dir>/tls
                     (certificate CN = thing name = client id); issue one with \`dualpath cert issue <id>\`
  --tls-port N       its port (MQTT_TLS_PORT, default 8883)
  --ws               also MQTT over WebSocket, ws://127.0.0.1:<ws-port>/mqtt (unauthenticated, like plain)
  --ws-port N        its port (MQTT_WS_PORT, default 9001)
  --publish-limit N  publishes per second per connection (default ${PUBLISH_RATE_PER_CONNECTION}, IoT Core's limit; burst 2 s worth;
                     0 = none); a client above it is disconnected
  --auto-register    register unknown devices on their first message (default off, as deployed:
                     readings of unregistered devices are quarantined with UNKNOWN_DEVICE)
  --ingest-workers N worker threads the ingest handlers run in (DUALPATH_INGEST_WORKERS, default
                     ${DEFAULT_INGEST_WORKERS}); 0 = on the main thread with the broker and the API
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
        tls: { type: 'boolean' },
        'tls-port': { type: 'string' },
        ws: { type: 'boolean' },
        'ws-port': { type: 'string' },
        'publish-limit': { type: 'string' },
        'auto-register': { type: 'boolean' },
        'ingest-workers': { type: 'string' },
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
    const dataDir = resolve(values['data-dir'] ?? process.env.DUALPATH_DATA_DIR ?? '.dualpath');
    const publishLimit = int(values['publish-limit'], PUBLISH_RATE_PER_CONNECTION, 'publish-limit');
    const autoRegister = values['auto-register'] ?? false;
    const stack = await startLocalStack({
      dataDir,
      mqttPort: int(values['mqtt-port'] ?? process.env.MQTT_PORT, 1883, 'mqtt-port'),
      ...(values.tls
        ? { tls: { port: int(values['tls-port'] ?? process.env.MQTT_TLS_PORT, 8883, 'tls-port') } }
        : {}),
      ...(values.ws
        ? { ws: { port: int(values['ws-port'] ?? process.env.MQTT_WS_PORT, 9001, 'ws-port') } }
        : {}),
      publishLimit:
        publishLimit === 0
          ? false
          : {
              perSecond: publishLimit,
              burst: Math.max(
                1,
                Math.round((publishLimit * PUBLISH_BURST_PER_CONNECTION) / PUBLISH_RATE_PER_CONNECTION),
              ),
            },
      autoRegister,
      ...(values['ingest-workers'] !== undefined
        ? { ingestWorkers: int(values['ingest-workers'], DEFAULT_INGEST_WORKERS, 'ingest-workers') }
        : {}),
      httpPort: int(values.port ?? process.env.PORT, 3000, 'port'),
      ...(process.env.DUALPATH_ADMIN_KEY ? { adminKey: process.env.DUALPATH_ADMIN_KEY } : {}),
      // AWS_ENDPOINT_URL[_KINESIS|_DYNAMODB] (e.g. LocalStack): that service is not emulated here.
      endpoints: endpointsFromEnv(process.env),
      log: (line) => process.stderr.write(`${line}\n`),
    });
    out(`Dualpath local stack is up.`);
    out(
      `  MQTT broker   mqtt://127.0.0.1:${stack.mqttPort}   (plain, unauthenticated, this machine only: client id = thing name; per-device topic ACL)`,
    );
    if (stack.tls) {
      out(
        `  MQTT + TLS    mqtts://127.0.0.1:${stack.tls.port}   (client certificate from the local CA; its CN must equal the client id)`,
      );
      out(`                CA ${stack.tls.paths.caCert}`);
      out(
        '                device certificate: dualpath cert issue <device-id>   (writes <data-dir>/tls/devices/)',
      );
    }
    if (stack.wsPort !== undefined)
      out(`  MQTT over WS  ws://127.0.0.1:${stack.wsPort}/mqtt   (unauthenticated, like plain MQTT)`);
    out(
      `  Refused       retained publishes, payloads > 128 KB, ${publishLimit > 0 ? `> ${publishLimit} publishes/s per connection` : 'no rate limit'}, ` +
        `other devices' topics; unknown devices ${autoRegister ? 'auto-registered (--auto-register)' : 'quarantined (--auto-register to accept)'}`,
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
        const fleetOptions: FleetOptions = {
          url: `mqtt://127.0.0.1:${stack.mqttPort}`,
          devices,
          rate,
          seed: 1,
          readingsPerSend: 20,
          badRatio: 0.002,
          ...(publishLimit > 0 ? { publishRate: publishLimit } : {}),
        };
        const planned = plannedDevices(fleetOptions);
        if (stack.tls) {
          // With --tls the simulated devices connect over TLS, each with its own certificate.
          fleetOptions.url = `mqtts://127.0.0.1:${stack.tls.port}`;
          fleetOptions.mqttFor = await deviceTlsOptions(
            dataDir,
            planned.map((d) => d.id),
          );
        }
        // The operator registers the simulated devices with their types before they send (unknown
        // devices would be quarantined, or auto-registered as "unclassified" with --auto-register).
        for (const d of planned) {
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
        fleet = await startFleet(fleetOptions);
        out(
          `  Simulator     ${devices} devices, ${rate} msg/s each, both protocols on one MQTT session per device` +
            (stack.tls ? ' (over TLS, a certificate each)' : ''),
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
