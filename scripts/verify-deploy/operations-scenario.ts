/**
 * Batch operations in the deploy harness (ADR 0022): the API creates operations (a LwM2M Read, a
 * Sparkplug NCMD write and a DCMD write over the scenario's device), the scheduled operations worker
 * sends them through the command path, the device's answer comes back through lwm2m-ingest, and the
 * next scheduled pass completes the operations; the API then lists them and their targets.
 * Needs the device registered over LwM2M (lwm2m scenario) with a Sparkplug session and its `meter`
 * device (sparkplug scenario).
 */
import { decodeMessage, encodeMessage, Operation } from '../../functions/core/lwm2m/message.js';
import type { ApiResponse } from './deployment.js';
import type { ScenarioContext } from './scenario.js';

export async function runOperationsScenario(
  ctx: ScenarioContext,
  o: { device: string; answerReads: boolean },
): Promise<void> {
  const { d } = ctx;
  const key = ctx.adminKey;
  const ok = (step: string, res: ApiResponse, status: number) => {
    if (res.status === status) return true;
    ctx.fail(
      `scenario operations: ${step}: HTTP ${res.status} (expected ${status}): ${res.raw.slice(0, 300)}`,
    );
    return false;
  };
  if (o.answerReads) {
    d.subscribe((topic, payload) => {
      if (topic !== `lwm2m/rd/${o.device}`) return;
      const m = decodeMessage(new Uint8Array(payload));
      if (m.operation !== Operation.Read) return;
      d.publish(
        `lwm2m/rd/${o.device}`,
        encodeMessage({
          result: 205,
          token: m.token!,
          contentFormat: 0,
          payload: new TextEncoder().encode('ACME'),
        }),
        o.device,
      );
    });
  }
  const commands = [
    { protocol: 'lwm2m', operation: 'read', path: '/3/0/0' },
    {
      protocol: 'sparkplug',
      operation: 'write',
      metrics: [{ name: 'Node Control/Reboot', type: 'Boolean', value: false }],
    },
    {
      protocol: 'sparkplug',
      operation: 'write',
      device: 'meter',
      metrics: [{ name: 'Energy', type: 'Double', value: 0 }],
    },
  ];
  const ids: string[] = [];
  for (const command of commands) {
    const res = await d.api('POST', '/operations', {
      key,
      body: {
        filter: { deviceIds: [o.device] },
        operation: { kind: 'command', command },
        settings: { pollMs: 100 },
      },
    });
    if (ok(`POST /operations ${command.protocol} ${command.operation}`, res, 202))
      ids.push(String(res.body.id));
  }
  // First pass: the worker sends the commands; the device answers the Read; lwm2m-ingest completes it.
  // Only the worker's schedule: the rules scenario times the rules clock's runs itself.
  const worker = (id: string) => id.startsWith('OperationsWorkerFunction');
  const invoked = await d.runSchedules(worker);
  if (!invoked.some(worker))
    ctx.fail(`scenario operations: no scheduled operations worker among ${invoked.join(', ')}`);
  await d.drain();
  // Second pass: the worker collects the answer.
  await d.runSchedules(worker);
  for (const id of ids) {
    const op = await d.api('GET', `/operations/${id}`, { key });
    if (!ok('GET /operations/{id}', op, 200)) continue;
    const counts = op.body.counts as Record<string, number> | undefined;
    if (op.body.status !== 'completed' || counts?.succeeded !== 1)
      ctx.fail(
        `scenario operations: operation ${id} is ${JSON.stringify(op.body).slice(0, 300)}, expected completed with 1 succeeded`,
      );
  }
  const list = await d.api('GET', '/operations', { key });
  if (
    ok('GET /operations', list, 200) &&
    (list.body.operations as unknown[] | undefined)?.length !== ids.length
  )
    ctx.fail(`scenario operations: GET /operations lists ${list.raw.slice(0, 200)}`);
  if (ids[0]) {
    const targets = await d.api('GET', `/operations/${ids[0]}/targets`, { key });
    if (ok('GET /operations/{id}/targets', targets, 200)) {
      const t = (targets.body.targets as Array<{ response?: { readings?: Array<{ value?: unknown }> } }>)[0];
      if (t?.response?.readings?.[0]?.value !== 'ACME')
        ctx.fail(`scenario operations: the Read target is ${JSON.stringify(t).slice(0, 300)}`);
    }
  }
}
