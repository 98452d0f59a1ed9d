/**
 * Per-process figures from /proc (Linux) for the runs that measure the local stack: RSS, CPU time, and
 * which children are the emulators. Every function returns 0/empty where /proc is not there.
 */
import { readFileSync } from 'node:fs';

/** RSS of a process in MB (0 when it is gone or /proc is not there). */
export function rssMB(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : 0;
  } catch {
    return 0;
  }
}

/** User + system CPU seconds a process has used so far, all its threads (0 when unknown). */
export function cpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may contain spaces) — utime and stime are 14th and 15th.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
  } catch {
    return 0;
  }
}

/** USER_HZ: 100 on every Linux Node supports. */
const CLOCK_TICKS = 100;

/** This process's emulator children (infra/local/emulator-process.mjs kinesalite|dynalite), by kind. */
export function emulatorPids(): { kinesalite?: number; dynalite?: number } {
  const found: { kinesalite?: number; dynalite?: number } = {};
  let children: string[] = [];
  try {
    children = readFileSync(`/proc/${process.pid}/task/${process.pid}/children`, 'utf8').trim().split(/\s+/);
  } catch {
    return found;
  }
  for (const c of children) {
    const pid = Number(c);
    if (!pid) continue;
    try {
      const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
      if (!argv.some((a) => a.endsWith('emulator-process.mjs'))) continue;
      if (argv.includes('kinesalite')) found.kinesalite = pid;
      if (argv.includes('dynalite')) found.dynalite = pid;
    } catch {}
  }
  return found;
}
