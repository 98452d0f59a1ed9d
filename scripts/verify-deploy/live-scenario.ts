/**
 * Live updates in the deploy harness (ADR 0023): WebSocket connections through the template's routes
 * and the live-connections function ($connect with the key in Sec-WebSocket-Protocol, the REST scoping:
 * an application key asking for another type's device is refused with 403 like GET /devices/{id};
 * a subscribe message; $disconnect), then the publishers — both ingest functions, the rules clock and
 * the operations worker — post to the connections through PostToConnection with the template's env and
 * IAM. Before each publisher's first run a connection the endpoint answers 410 Gone for is added: each
 * publisher lists it, posts, gets 410 and deletes it (its DeleteItem grant is exercised).
 */
import type { ScenarioContext } from './scenario.js';

const ADMIN_CONN = 'live-admin-0001';
const APP_CONN = 'live-app-0001';

interface LiveMessage {
  events: Array<{ kind: string; deviceId?: string; deviceType?: string }>;
}

export interface LiveScenario {
  /** A connection that answers 410 Gone, added before a publisher's first run. */
  gone(label: string): Promise<void>;
  /** The checks after every publisher ran. */
  check(publishers: readonly string[]): Promise<void>;
}

export async function startLiveScenario(
  ctx: ScenarioContext,
  o: { device: string; otherTypeDevice: string; appKey: string | undefined },
): Promise<LiveScenario | undefined> {
  const { d } = ctx;
  if (!d.liveApi()) {
    ctx.fail('scenario live: the template has no WebSocket API');
    return undefined;
  }
  // A device of another type, which the application key may not see.
  await d.api('PUT', '/device-types/other', { key: ctx.adminKey, body: { name: 'Other' } });
  await d.api('PUT', `/devices/${o.otherTypeDevice}`, { key: ctx.adminKey, body: { type: 'other' } });
  const proto = (key: string) => ({ 'Sec-WebSocket-Protocol': `dualpath, ${key}` });
  const admin = await d.ws('connect', ADMIN_CONN, { headers: proto(ctx.adminKey) });
  if (admin.status !== 200 || admin.headers['Sec-WebSocket-Protocol'] !== 'dualpath')
    ctx.fail(`scenario live: admin $connect answered ${admin.status} ${JSON.stringify(admin.headers)}`);
  const none = await d.ws('connect', 'live-nokey', {});
  if (none.status !== 401) ctx.fail(`scenario live: $connect without a key answered ${none.status}, not 401`);
  const wrong = await d.ws('connect', 'live-wrong', { headers: proto('dp_app_not-a-key-000000000000') });
  if (wrong.status !== 401)
    ctx.fail(`scenario live: $connect with a wrong key answered ${wrong.status}, not 401`);
  if (o.appKey) {
    const app = await d.ws('connect', APP_CONN, {
      headers: proto(o.appKey),
      query: { device: o.device, kinds: 'reading' },
    });
    if (app.status !== 200)
      ctx.fail(`scenario live: app $connect answered ${app.status}: ${JSON.stringify(app.body)}`);
    // Another type's device: the same 403 as GET /devices/{id} with this key.
    const other = await d.ws('connect', 'live-app-other', {
      headers: proto(o.appKey),
      query: { device: o.otherTypeDevice },
    });
    if (other.status !== 403)
      ctx.fail(`scenario live: app $connect for another type's device answered ${other.status}, not 403`);
    const sub = await d.ws('message', APP_CONN, {
      body: { action: 'subscribe', device: o.device, kinds: 'reading,alert' },
    });
    if (sub.status !== 200 || sub.body.type !== 'subscribed')
      ctx.fail(`scenario live: subscribe answered ${sub.status} ${JSON.stringify(sub.body)}`);
    const otherSub = await d.ws('message', APP_CONN, {
      body: { action: 'subscribe', device: o.otherTypeDevice },
    });
    if (otherSub.status !== 403)
      ctx.fail(`scenario live: subscribe to another type's device answered ${otherSub.status}, not 403`);
  }
  const goneIds: string[] = [];
  return {
    async gone(label) {
      const id = `live-gone-${label}`;
      const r = await d.ws('connect', id, { headers: proto(ctx.adminKey) });
      if (r.status !== 200) ctx.fail(`scenario live: $connect of ${id} answered ${r.status}`);
      d.endpoint.goneConnections.add(id);
      goneIds.push(id);
    },
    async check(publishers) {
      const posts = d.endpoint.livePosts;
      const parse = (data: string): LiveMessage | undefined => {
        try {
          return JSON.parse(data) as LiveMessage;
        } catch {
          ctx.fail(`scenario live: a posted message is not JSON: ${data.slice(0, 120)}`);
          return undefined;
        }
      };
      for (const fn of publishers) {
        const mine = posts.filter((p) => p.function === fn);
        if (!mine.some((p) => p.connectionId === ADMIN_CONN && p.status === 200))
          ctx.fail(`scenario live: ${fn} posted nothing to the admin connection`);
        if (!mine.some((p) => p.status === 410))
          ctx.fail(`scenario live: ${fn} never met a gone connection (410)`);
      }
      // A gone connection is deleted by the first publisher that meets it: nobody posts to it twice.
      for (const id of goneIds) {
        const n = posts.filter((p) => p.connectionId === id).length;
        if (n !== 1) ctx.fail(`scenario live: ${n} posts to the gone connection ${id}, expected 1`);
      }
      const kinds = new Set(
        posts
          .filter((p) => p.connectionId === ADMIN_CONN)
          .flatMap((p) => parse(p.data)?.events ?? [])
          .map((e) => e.kind),
      );
      for (const k of ['reading', 'lifecycle', 'alert', 'operation'])
        if (!kinds.has(k)) ctx.fail(`scenario live: the admin connection got no ${k} event`);
      if (o.appKey) {
        const appEvents = posts
          .filter((p) => p.connectionId === APP_CONN)
          .flatMap((p) => parse(p.data)?.events ?? []);
        if (appEvents.length === 0) ctx.fail('scenario live: the application connection got no event');
        const stray = appEvents.find(
          (e) => e.deviceId !== o.device || (e.kind !== 'reading' && e.kind !== 'alert'),
        );
        if (stray)
          ctx.fail(
            `scenario live: the application connection got an event outside its subscription: ${JSON.stringify(stray)}`,
          );
        const bye = await d.ws('disconnect', APP_CONN);
        if (bye.status !== 200) ctx.fail(`scenario live: $disconnect answered ${bye.status}`);
        const after = await d.ws('message', APP_CONN, { body: { action: 'subscribe' } });
        if (after.status !== 401)
          ctx.fail(`scenario live: subscribe after $disconnect answered ${after.status}, not 401`);
      }
      const ping = await d.ws('message', ADMIN_CONN, { body: { action: 'ping' } });
      if (ping.body.type !== 'pong') ctx.fail(`scenario live: ping answered ${JSON.stringify(ping.body)}`);
    },
  };
}
