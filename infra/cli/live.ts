/**
 * `dualpath live` (ADR 0023): a minimal client of the AWS live-updates WebSocket API — connects with
 * the key in `Sec-WebSocket-Protocol` (as the dashboard would; never in the URL), optionally filtered
 * by device and kinds, and prints one JSON line per event until interrupted. A ping every 5 minutes
 * keeps the connection under API Gateway's 10-minute idle limit. Needs Node.js 22 (global WebSocket).
 *
 *   DUALPATH_API_KEY=<key> dualpath live --url wss://<api>.execute-api.<region>.amazonaws.com/v1 \
 *     [--device pump-7] [--kinds reading,alert]
 */
import { parseArgs } from 'node:util';
import { ValidationError } from '../../functions/core/errors.js';
import { LIVE_KINDS } from '../../functions/core/live.js';
import type { Command } from './main.js';

const HELP = `usage: dualpath live --url wss://... [--device ID] [--kinds reading,lifecycle,alert,operation]

Prints live events of the AWS stack (its LiveUrl output) as JSON lines, with the REST scoping of the key.
  --url URL      the stack output LiveUrl (wss://<api>.execute-api.<region>.amazonaws.com/v1)
  --device ID    only events of this device (an application key gets 403 for another type's device)
  --kinds LIST   only these kinds (default all): ${LIVE_KINDS.join(', ')}
  --key KEY      the API key; better DUALPATH_API_KEY in the environment (not in the process list)
Message format: every message is {"events":[...]} (ADR 0023); send {"action":"subscribe","device":..,
"kinds":..} to change the subscription, {"action":"ping"} to keep a quiet connection open.
`;

/** The connect URL: the stage URL with the (non-secret) subscription in the query string. */
export function liveConnectUrl(url: string, o: { device?: string; kinds?: string }): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new ValidationError(`--url "${url}" is not a URL`, { field: 'url' });
  }
  if (u.protocol !== 'wss:' && u.protocol !== 'ws:')
    throw new ValidationError('--url must be a wss:// URL (the stack output LiveUrl)', { field: 'url' });
  if (o.kinds !== undefined) {
    const bad = o.kinds.split(',').find((k) => !(LIVE_KINDS as readonly string[]).includes(k));
    if (bad !== undefined)
      throw new ValidationError(`--kinds: "${bad}" is not one of ${LIVE_KINDS.join(', ')}`, {
        field: 'kinds',
      });
    u.searchParams.set('kinds', o.kinds);
  }
  if (o.device !== undefined) u.searchParams.set('device', o.device);
  return u.toString();
}

export const liveCommand: Command = {
  summary: 'print live events of the AWS stack (WebSocket API) as JSON lines',
  async run(args) {
    const { values } = parseArgs({
      args,
      options: {
        url: { type: 'string' },
        device: { type: 'string' },
        kinds: { type: 'string' },
        key: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    });
    if (values.help) {
      process.stdout.write(HELP);
      return 0;
    }
    const key = values.key ?? process.env.DUALPATH_API_KEY;
    if (!values.url || !key) {
      process.stderr.write(
        `dualpath live: --url and a key (DUALPATH_API_KEY or --key) are required\n${HELP}`,
      );
      return 2;
    }
    const WS = (globalThis as { WebSocket?: typeof WebSocket }).WebSocket;
    if (!WS) {
      process.stderr.write('dualpath live: needs Node.js 22 or later (global WebSocket)\n');
      return 2;
    }
    let url: string;
    try {
      url = liveConnectUrl(values.url, {
        ...(values.device !== undefined ? { device: values.device } : {}),
        ...(values.kinds !== undefined ? { kinds: values.kinds } : {}),
      });
    } catch (error) {
      process.stderr.write(`dualpath live: ${(error as Error).message}\n`);
      return 2;
    }
    return new Promise<number>((resolve) => {
      const ws = new WS(url, ['dualpath', key]);
      let opened = false;
      const ping = setInterval(() => ws.send(JSON.stringify({ action: 'ping' })), 5 * 60_000);
      ws.addEventListener('open', () => {
        opened = true;
        process.stderr.write(`dualpath live: connected to ${url}\n`);
      });
      ws.addEventListener('message', (m) => {
        const text = typeof m.data === 'string' ? m.data : String(m.data);
        try {
          const body = JSON.parse(text) as { events?: unknown[] };
          if (Array.isArray(body.events))
            for (const e of body.events) process.stdout.write(`${JSON.stringify(e)}\n`);
          else process.stderr.write(`${text}\n`);
        } catch {
          process.stderr.write(`${text}\n`);
        }
      });
      ws.addEventListener('close', (c) => {
        clearInterval(ping);
        // A refused upgrade (401/403 from $connect) closes before it opened.
        process.stderr.write(
          opened
            ? `dualpath live: closed (${c.code}${c.reason ? ` ${c.reason}` : ''})\n`
            : 'dualpath live: the connection was refused (a wrong key, or a device this key may not see)\n',
        );
        resolve(opened ? 0 : 1);
      });
      process.once('SIGINT', () => ws.close(1000));
    });
  },
};
