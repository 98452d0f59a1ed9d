import { describe, expect, it } from 'vitest';
import type { Action, Target } from '../../../functions/core/operations/model.js';
import { firmwareStatus, step } from '../../../functions/core/operations/target.js';

const fw: Action = { kind: 'firmware-update', packageId: 'p' };
const settings = { pollMs: 1000, targetTimeoutMs: 30_000 };
const fresh: Target = { operationId: 'o', deviceId: 'd', status: 'pending', attempts: 0, updatedAt: 0 };
const read = (state: number, result: number) => ({
  kind: 'answer' as const,
  status: 'succeeded' as const,
  response: {
    result: 205,
    readings: [
      { metric: '/5/0/3', value: state },
      { metric: '/5/0/5', value: result },
    ],
  },
});

function started(): Target {
  const s = step(fw, settings, fresh, { kind: 'start', packageUri: 'http://h/f#sha256=aa' }, 100);
  expect(s.send).toEqual({
    protocol: 'lwm2m',
    operation: 'write',
    path: '/5/0/1',
    value: 'http://h/f#sha256=aa',
  });
  expect(s.target).toMatchObject({ status: 'sent', phase: 'write-uri', attempts: 1, deadline: 30_100 });
  return { ...s.target, commandId: 'c1' };
}

describe('firmware target (LwM2M object 5)', () => {
  it('write URI → Downloading → Downloaded → Execute → Updating → Idle with result 1', () => {
    let t = started();
    let s = step(fw, settings, t, { kind: 'answer', status: 'succeeded', response: { result: 204 } }, 200);
    expect(s.send).toBeUndefined();
    expect(s.target).toMatchObject({ phase: 'await-download', nextAt: 1200 });
    expect(step(fw, settings, s.target, { kind: 'due' }, 1100).send).toBeUndefined();
    s = step(fw, settings, s.target, { kind: 'due' }, 1200);
    expect(s.send).toMatchObject({ operation: 'read-composite', paths: ['/5/0/3', '/5/0/5'] });
    t = { ...s.target, commandId: 'c2' };
    s = step(fw, settings, t, read(1, 0), 1300);
    expect(s.target).toMatchObject({ phase: 'await-download', lastState: 1, nextAt: 2300 });
    t = { ...step(fw, settings, s.target, { kind: 'due' }, 2300).target, commandId: 'c3' };
    s = step(fw, settings, t, read(2, 0), 2400);
    expect(s.send).toEqual({ protocol: 'lwm2m', operation: 'execute', path: '/5/0/2' });
    t = { ...s.target, commandId: 'c4' };
    s = step(fw, settings, t, { kind: 'answer', status: 'succeeded', response: { result: 204 } }, 2500);
    expect(s.target.phase).toBe('await-update');
    t = { ...step(fw, settings, s.target, { kind: 'due' }, 3500).target, commandId: 'c5' };
    s = step(fw, settings, t, read(3, 0), 3600);
    expect(s.target.status).toBe('sent');
    // The device reboots: a read times out, and is simply read again.
    t = { ...step(fw, settings, s.target, { kind: 'due' }, 4600).target, commandId: 'c6' };
    s = step(fw, settings, t, { kind: 'answer', status: 'timed-out' }, 4700);
    expect(s.target).toMatchObject({ status: 'sent', nextAt: 5700 });
    t = { ...step(fw, settings, s.target, { kind: 'due' }, 5700).target, commandId: 'c7' };
    s = step(fw, settings, t, read(0, 1), 5800);
    expect(s.target.status).toBe('succeeded');
    expect(s.target.commandId).toBeUndefined();
  });

  it.each([
    [2, 'not enough flash'],
    [5, 'integrity check failure'],
    [7, 'invalid URI'],
  ])('a download that ends Idle with Update Result %i fails with it', (code, text) => {
    const t = { ...started(), phase: 'await-download' as const };
    const s = step(fw, settings, t, read(0, code), 500);
    expect(s.target.status).toBe('failed');
    expect(s.target.reason).toMatchObject({ code: 'UPDATE_RESULT', updateResult: code });
    expect(s.target.reason?.message).toContain(text);
  });

  it('an update that fails (result 8) fails, whether the device is Downloaded or Idle', () => {
    for (const state of [0, 2]) {
      const t = { ...started(), phase: 'await-update' as const };
      expect(step(fw, settings, t, read(state, 8), 500).target.reason?.updateResult).toBe(8);
    }
  });

  it('a refused Package URI write is explained by the next read', () => {
    let s = step(
      fw,
      settings,
      started(),
      { kind: 'answer', status: 'failed', response: { result: 400 } },
      200,
    );
    expect(s.target).toMatchObject({ status: 'sent', rejected: 400 });
    const t = { ...step(fw, settings, s.target, { kind: 'due' }, 1200).target, commandId: 'c2' };
    s = step(fw, settings, t, read(0, 0), 1300);
    expect(s.target.reason).toMatchObject({ code: 'DEVICE_ERROR', result: 400 });
  });

  it('never Executes a package the device already held when it refused this URI (State 2)', () => {
    const s = step(
      fw,
      settings,
      started(),
      { kind: 'answer', status: 'failed', response: { result: 400 } },
      200,
    );
    const t = { ...step(fw, settings, s.target, { kind: 'due' }, 1200).target, commandId: 'c2' };
    const after = step(fw, settings, t, read(2, 8), 1300);
    expect(after.send).toBeUndefined();
    expect(after.target).toMatchObject({ status: 'failed' });
    expect(after.target.reason).toMatchObject({ code: 'DEVICE_ERROR', result: 400 });
  });

  it('a refused write without a CoAP code fails at once', () => {
    const s = step(fw, settings, started(), { kind: 'answer', status: 'failed', response: {} }, 200);
    expect(s.send).toBeUndefined();
    expect(s.target.reason).toMatchObject({ code: 'DEVICE_ERROR' });
  });

  const ok204 = { kind: 'answer' as const, status: 'succeeded' as const, response: { result: 204 } };
  const CANCEL = { protocol: 'lwm2m', operation: 'execute', path: '/5/0/10' };
  /** A target whose device is Downloading (URI written, a State poll due at 1200). */
  const downloading = () => step(fw, settings, started(), ok204, 200).target;

  it('cancel while Downloading: Execute /5/0/10 at once, then cancelled with Update Result 10', () => {
    let s = step(fw, settings, downloading(), { kind: 'cancel' }, 300);
    expect(s.send).toEqual(CANCEL);
    expect(s.target).toMatchObject({ status: 'sent', phase: 'cancel', cancelRequested: true });
    // A second cancel event changes nothing.
    expect(
      step(fw, settings, { ...s.target, commandId: 'c9' }, { kind: 'cancel' }, 310).send,
    ).toBeUndefined();
    s = step(fw, settings, { ...s.target, commandId: 'c9' }, ok204, 400);
    expect(s.target.phase).toBe('await-cancel');
    const t = { ...step(fw, settings, s.target, { kind: 'due' }, 1400).target, commandId: 'c10' };
    s = step(fw, settings, t, read(0, 10), 1500);
    expect(s.target).toMatchObject({
      status: 'cancelled',
      reason: { code: 'CANCELLED', updateResult: 10 },
    });
  });

  it('cancel with a command in flight waits for its answer; Downloaded then is cancelled, never Executed', () => {
    const polling = { ...step(fw, settings, downloading(), { kind: 'due' }, 1200).target, commandId: 'c2' };
    let s = step(fw, settings, polling, { kind: 'cancel' }, 1250);
    expect(s.send).toBeUndefined();
    expect(s.target.cancelRequested).toBe(true);
    s = step(fw, settings, s.target, read(2, 0), 1300);
    expect(s.send).toEqual(CANCEL);
  });

  it('a device that refuses Cancel: Downloaded is left unexecuted (cancelled); Updating runs to its end', () => {
    let s = step(fw, settings, downloading(), { kind: 'cancel' }, 300);
    s = step(
      fw,
      settings,
      { ...s.target, commandId: 'c9' },
      { kind: 'answer', status: 'failed', response: { result: 405 } },
      400,
    );
    expect(s.target).toMatchObject({ phase: 'await-cancel', cancelRefused: 405 });
    let t = { ...step(fw, settings, s.target, { kind: 'due' }, 1400).target, commandId: 'c10' };
    // Still downloading: wait.
    s = step(fw, settings, t, read(1, 0), 1500);
    expect(s.target).toMatchObject({ status: 'sent', phase: 'await-cancel' });
    t = { ...step(fw, settings, s.target, { kind: 'due' }, 2500).target, commandId: 'c11' };
    s = step(fw, settings, t, read(2, 0), 2600);
    expect(s.send).toBeUndefined();
    expect(s.target).toMatchObject({ status: 'cancelled', reason: { code: 'CANCELLED', result: 405 } });
    expect(s.target.reason!.message).toContain('4.05');

    // Told to Update before the cancel: no Cancel is sent, and the update decides the outcome.
    const updating: Target = { ...downloading(), phase: 'await-update', nextAt: 5000 };
    s = step(fw, settings, updating, { kind: 'cancel' }, 4000);
    expect(s.send).toBeUndefined();
    expect(s.target).toMatchObject({ cancelRequested: true, phase: 'await-update' });
    t = { ...step(fw, settings, s.target, { kind: 'due' }, 5000).target, commandId: 'c12' };
    expect(step(fw, settings, t, read(0, 1), 5100).target.status).toBe('succeeded');
  });

  it('a retry starts clean: no cancel marks survive a new start', () => {
    const cancelled: Target = {
      ...downloading(),
      status: 'failed',
      cancelRequested: true,
      cancelRefused: 405,
    };
    const s = step(fw, settings, cancelled, { kind: 'start', packageUri: 'http://h/f' }, 9000);
    expect(s.target.cancelRequested).toBeUndefined();
    expect(s.target.cancelRefused).toBeUndefined();
  });

  it('times out at the deadline, naming the phase and the last state', () => {
    const t = { ...started(), phase: 'await-download' as const, lastState: 1 };
    const s = step(fw, settings, t, { kind: 'due' }, 30_100);
    expect(s.target.status).toBe('timed-out');
    expect(s.target.reason?.message).toContain('await-download, last State 1');
  });

  it('reads State and Update Result out of a response, ignoring other readings', () => {
    expect(
      firmwareStatus({
        readings: [
          { metric: '/5/0/3', value: 2n },
          { metric: '/3/0/0', value: 7 },
        ],
      }),
    ).toEqual({ state: 2 });
    expect(firmwareStatus(undefined)).toEqual({});
  });
});

describe('single-command target', () => {
  const cmd: Action = { kind: 'command', command: { protocol: 'lwm2m', operation: 'read', path: '/3/0/0' } };
  it('succeeds, or fails with the CoAP code and reason', () => {
    const t = { ...step(cmd, settings, fresh, { kind: 'start' }, 0).target, commandId: 'c' };
    expect(
      step(cmd, settings, t, { kind: 'answer', status: 'succeeded', response: { result: 205 } }, 1).target
        .status,
    ).toBe('succeeded');
    const f = step(
      cmd,
      settings,
      t,
      { kind: 'answer', status: 'failed', response: { result: 404, reason: 'no such' } },
      1,
    );
    expect(f.target.reason).toEqual({
      code: 'DEVICE_ERROR',
      message: 'the device answered 4.04: no such',
      result: 404,
    });
  });
});
