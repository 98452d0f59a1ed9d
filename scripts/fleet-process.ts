/**
 * A simulated fleet in its own process (`dualpath simulate --json`), for runs that measure the local
 * stack: the devices do not share the stack's event loop, and their memory is the child's.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FleetStats } from '../simulator/fleet.js';

const BIN = resolve(fileURLToPath(import.meta.url), '../../bin/dualpath.mjs');

export interface FleetProcess {
  pid: number;
  /** Whether the child exited before stop() was asked (a crash). */
  exited(): boolean;
  /** SIGTERM (clean stop: deaths, de-registrations) and the fleet's final counters. */
  stop(): Promise<FleetStats>;
}

export function spawnFleet(simulateArgs: string[]): FleetProcess {
  const child: ChildProcess = spawn(process.execPath, [BIN, 'simulate', ...simulateArgs, '--json'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => {
    out += d.toString();
  });
  let code: number | null = null;
  const exited = new Promise<number>((r) =>
    child.once('exit', (c) => {
      code = c ?? 1;
      r(code);
    }),
  );
  return {
    pid: child.pid ?? -1,
    exited: () => code !== null,
    async stop() {
      if (code === null) child.kill('SIGTERM');
      const exitCode = await exited;
      const line = out.trim().split('\n').at(-1);
      if (exitCode !== 0 || !line) throw new Error(`simulator exited with ${exitCode}`);
      return JSON.parse(line) as FleetStats;
    },
  };
}
