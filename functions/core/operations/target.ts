/**
 * The state machine of one target (a device in an operation), pure: given the target, an event and the
 * time, it returns the next target and the device command to send, if any. The service sends that
 * command through the single-device command path (functions/core/commands.ts) and feeds its answer back
 * as the next event.
 *
 * A single command: start → send it → its answer decides (succeeded / failed with the CoAP result /
 * timed-out).
 *
 * A firmware update, LwM2M object 5 (OMA Firmware Update): start → Write /5/0/1 Package URI → the device
 * downloads (State 1 Downloading) and checks the package → State 2 Downloaded → Execute /5/0/2 Update →
 * State 3 Updating → State 0 Idle with Update Result 1 (success). A failed download returns the device to
 * Idle with Update Result 2-7 or 9; a failed update sets Update Result 8 (the device stays Downloaded or
 * returns to Idle). State and Update Result are read together (Read-Composite /5/0/3, /5/0/5) every
 * `pollMs` while the device downloads or updates; a read that fails or times out (a device rebooting
 * into its new firmware) is simply read again until the target's deadline.
 *
 * Cancel (the operation cancelled while a firmware target is in flight): a device that has not been told
 * to Update yet (Package URI written, Downloading or Downloaded) gets Execute /5/0/10 Cancel — object 5
 * allows it in Downloading and Downloaded, the device returns to Idle with Update Result 10 — and the
 * target ends `cancelled` once State 0 / Result 10 is read. A device that refuses Cancel (4.05: it is
 * Updating, or has no resource 10) is left alone: Downloaded, it is never Executed and the target ends
 * `cancelled`; already Updating, the update runs to its end and decides. A command in flight is answered
 * first.
 */
import type { CommandStatus } from '../registry.js';
import type { Action, OperationSettings, Target, TargetReason } from './model.js';

export const FW = {
  state: '/5/0/3',
  result: '/5/0/5',
  uri: '/5/0/1',
  update: '/5/0/2',
  cancel: '/5/0/10',
} as const;

/** Update Result 10: "Firmware update cancelled" (object 5, after Execute /5/0/10). */
const RESULT_CANCELLED = 10;

/** OMA object 5 Update Result (resource 5) codes. */
export const UPDATE_RESULTS: Readonly<Record<number, string>> = {
  0: 'initial value',
  1: 'firmware updated successfully',
  2: 'not enough flash memory for the new firmware package',
  3: 'out of RAM during the download',
  4: 'connection lost during the download',
  5: 'integrity check failure for the downloaded package',
  6: 'unsupported package type',
  7: 'invalid URI',
  8: 'firmware update failed',
  9: 'unsupported protocol',
  10: 'firmware update cancelled',
  11: 'firmware update deferred',
};

export type TargetEvent =
  | { kind: 'start'; packageUri?: string }
  /** The operation was cancelled: a firmware target not yet Executed is cancelled on the device. */
  | { kind: 'cancel' }
  | { kind: 'answer'; status: CommandStatus; response?: Record<string, unknown> }
  | { kind: 'due' };

export interface Step {
  target: Target;
  /** A single-device command body (POST /devices/{id}/commands) to send now. */
  send?: Record<string, unknown>;
}

const POLL = { protocol: 'lwm2m', operation: 'read-composite', paths: [FW.state, FW.result] };
const EXECUTE = { protocol: 'lwm2m', operation: 'execute', path: FW.update };
const CANCEL = { protocol: 'lwm2m', operation: 'execute', path: FW.cancel };

/** Phases in which the device has not been told to Update: Execute /5/0/10 may still stop it. */
const CANCELLABLE: ReadonlySet<string | undefined> = new Set(['write-uri', 'await-download']);

function fail(t: Target, now: number, reason: TargetReason): Step {
  const { commandId: _c, nextAt: _n, ...rest } = t;
  return { target: { ...rest, status: 'failed', reason, updatedAt: now } };
}

function resultCode(response: Record<string, unknown> | undefined): number | undefined {
  return typeof response?.result === 'number' ? response.result : undefined;
}

function coap(code: number | undefined): string {
  return code === undefined
    ? 'no result'
    : `${Math.floor(code / 100)}.${String(code % 100).padStart(2, '0')}`;
}

/** /5/0/3 and /5/0/5 out of a Read-Composite response's readings. */
export function firmwareStatus(response: Record<string, unknown> | undefined): {
  state?: number;
  result?: number;
} {
  const out: { state?: number; result?: number } = {};
  const readings = Array.isArray(response?.readings) ? response.readings : [];
  for (const r of readings as Array<{ metric?: unknown; value?: unknown }>) {
    const v = typeof r.value === 'bigint' ? Number(r.value) : r.value;
    if (typeof v !== 'number') continue;
    if (r.metric === FW.state) out.state = v;
    if (r.metric === FW.result) out.result = v;
  }
  return out;
}

function updateFailure(result: number): TargetReason {
  return {
    code: 'UPDATE_RESULT',
    message: `Update Result ${result}: ${UPDATE_RESULTS[result] ?? 'unknown result'}`,
    updateResult: result,
  };
}

/** The next step of `t` on `e` at `now`. A target past its deadline times out whatever the event. */
export function step(
  action: Action,
  settings: Pick<OperationSettings, 'pollMs' | 'targetTimeoutMs'>,
  t: Target,
  e: TargetEvent,
  now: number,
): Step {
  if (e.kind === 'start') {
    const started: Target = {
      ...t,
      status: 'sent',
      attempts: t.attempts + 1,
      startedAt: now,
      deadline: now + settings.targetTimeoutMs,
      updatedAt: now,
    };
    for (const k of [
      'commandId',
      'nextAt',
      'phase',
      'rejected',
      'lastState',
      'reason',
      'response',
      'cancelRequested',
      'cancelRefused',
    ] as const)
      delete started[k];
    if (action.kind === 'command') return { target: started, send: action.command };
    if (!e.packageUri) throw new Error('a firmware target starts with its package URI');
    return {
      target: { ...started, phase: 'write-uri' },
      send: { protocol: 'lwm2m', operation: 'write', path: FW.uri, value: e.packageUri },
    };
  }
  if (t.status !== 'sent') return { target: t };

  if (e.kind === 'answer' && action.kind === 'command') {
    const { commandId: _c, ...rest } = t;
    const response = e.response ?? {};
    if (e.status === 'succeeded')
      return { target: { ...rest, status: 'succeeded', response, updatedAt: now } };
    if (e.status === 'timed-out' || (t.deadline !== undefined && now >= t.deadline))
      return {
        target: {
          ...rest,
          status: 'timed-out',
          reason: { code: 'TIMED_OUT', message: 'the device did not answer in time' },
          updatedAt: now,
        },
      };
    if (e.status === 'failed') {
      const result = resultCode(response);
      const detail = typeof response.reason === 'string' && response.reason ? `: ${response.reason}` : '';
      return fail({ ...rest, response }, now, {
        code: 'DEVICE_ERROR',
        message: `the device answered ${coap(result)}${detail}`,
        ...(result === undefined ? {} : { result }),
      });
    }
    return { target: t };
  }

  if (t.deadline !== undefined && now >= t.deadline) {
    const { commandId: _c, nextAt: _n, ...rest } = t;
    const where = t.phase ? ` (${t.phase}, last State ${t.lastState ?? 'unknown'})` : '';
    return {
      target: {
        ...rest,
        status: 'timed-out',
        reason: { code: 'TIMED_OUT', message: `no outcome before the deadline${where}` },
        updatedAt: now,
      },
    };
  }
  if (action.kind === 'command') return { target: t };

  // ---- firmware update ----
  const poll = (x: Target, phase = x.phase): Step => {
    const { commandId: _c, ...rest } = x;
    return {
      target: { ...rest, ...(phase ? { phase } : {}), nextAt: now + settings.pollMs, updatedAt: now },
    };
  };
  const sendCancel = (x: Target): Step => {
    const { nextAt: _n, commandId: _c, ...rest } = x;
    return { target: { ...rest, phase: 'cancel', cancelRequested: true, updatedAt: now }, send: CANCEL };
  };
  if (e.kind === 'cancel') {
    if (t.cancelRequested) return { target: t };
    const marked: Target = { ...t, cancelRequested: true, updatedAt: now };
    // Told to Update already (Execute /5/0/2 sent): it runs to its end. A command in flight: its answer first.
    if (!CANCELLABLE.has(t.phase) || t.commandId !== undefined) return { target: marked };
    return sendCancel(marked);
  }
  if (e.kind === 'due') {
    if (t.commandId !== undefined || t.nextAt === undefined) return { target: t };
    // Cancel requested and not (or not successfully) sent yet: send it now, not at the next poll.
    if (t.cancelRequested && (CANCELLABLE.has(t.phase) || t.phase === 'cancel')) return sendCancel(t);
    if (now < t.nextAt) return { target: t };
    const { nextAt: _n, ...rest } = t;
    return { target: { ...rest, updatedAt: now }, send: POLL };
  }
  // An answer to the command in flight.
  const { commandId: _c, ...t0 } = t;
  const code = resultCode(e.response);
  switch (t.phase) {
    case 'write-uri':
      if (e.status === 'succeeded') return poll(t0, 'await-download');
      if (e.status === 'failed') {
        if (code === undefined)
          return fail(t0, now, { code: 'DEVICE_ERROR', message: 'the device refused the Package URI write' });
        // Read State/Update Result once: the device may have set 7 (Invalid URI) or 9 (unsupported protocol).
        return poll({ ...t0, rejected: code }, 'await-download');
      }
      return fail(t0, now, { code: 'TIMED_OUT', message: 'the device did not answer the Package URI write' });
    case 'execute':
      if (e.status === 'succeeded') return poll(t0, 'await-update');
      return fail(t0, now, {
        code: e.status === 'failed' ? 'DEVICE_ERROR' : 'TIMED_OUT',
        message:
          e.status === 'failed'
            ? `the device refused Execute /5/0/2 Update with ${coap(code)}`
            : 'the device did not answer Execute /5/0/2 Update',
        ...(code === undefined ? {} : { result: code }),
      });
    case 'await-download':
    case 'await-update': {
      if (e.status !== 'succeeded') return poll(t0);
      const { state, result } = firmwareStatus(e.response);
      const t1: Target = state === undefined ? t0 : { ...t0, lastState: state };
      if (t.phase === 'await-download') {
        if (t.rejected !== undefined) {
          // The device did not take this operation's URI: whatever it holds (a package Downloaded by an
          // earlier attempt, State 2) is not this package, so it is never Executed.
          if (state === 0 && result !== undefined && result >= 2) return fail(t1, now, updateFailure(result));
          return fail(t1, now, {
            code: 'DEVICE_ERROR',
            message: `the device refused the Package URI with ${coap(t.rejected)} (State ${state ?? 'unknown'})`,
            result: t.rejected,
          });
        }
        if (state === 2 && t.cancelRequested) return sendCancel(t1);
        if (state === 2) return { target: { ...t1, phase: 'execute', updatedAt: now }, send: EXECUTE };
        if (state === 0 && result !== undefined && result >= 2) return fail(t1, now, updateFailure(result));
        return poll(t1);
      }
      if (state === 0 && result === 1) {
        const { reason: _r, ...ok } = t1;
        return { target: { ...ok, status: 'succeeded', updatedAt: now } };
      }
      if ((state === 0 || state === 2) && result !== undefined && result >= 2)
        return fail(t1, now, updateFailure(result));
      return poll(t1);
    }
    case 'cancel':
      // Refused (4.05: Updating already, or no Cancel resource) or unanswered: read where the device is.
      if (e.status === 'succeeded') return poll(t0, 'await-cancel');
      return poll(code === undefined ? t0 : { ...t0, cancelRefused: code }, 'await-cancel');
    case 'await-cancel': {
      if (e.status !== 'succeeded') return poll(t0);
      const { state, result } = firmwareStatus(e.response);
      const t1: Target = state === undefined ? t0 : { ...t0, lastState: state };
      const cancelled = (reason: TargetReason): Step => {
        const { nextAt: _n, ...rest } = t1;
        return { target: { ...rest, status: 'cancelled', reason, updatedAt: now } };
      };
      if (state === 0 && result === RESULT_CANCELLED)
        return cancelled({
          code: 'CANCELLED',
          message: `Update Result 10: ${UPDATE_RESULTS[10]}`,
          updateResult: RESULT_CANCELLED,
        });
      // Updating when the cancel came: the update decides.
      if (state === 0 && result === 1) {
        const { reason: _r, ...ok } = t1;
        return { target: { ...ok, status: 'succeeded', updatedAt: now } };
      }
      if (state === 0 && result !== undefined && result >= 2) return fail(t1, now, updateFailure(result));
      // Downloaded and the device would not cancel: it is never told to Update.
      if (state === 2 && t.cancelRefused !== undefined)
        return cancelled({
          code: 'CANCELLED',
          message: `not updated: the device refused Execute /5/0/10 Cancel with ${coap(t.cancelRefused)}; its downloaded package was not executed`,
          result: t.cancelRefused,
        });
      // Still downloading after a refused cancel: wait for Downloaded (then stop) or a download failure.
      return poll(t1);
    }
    default:
      return { target: t };
  }
}
