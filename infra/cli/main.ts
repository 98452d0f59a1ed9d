/**
 * `dualpath <command>`: one CLI for the local stack, the simulator and the tools. Each command lives in
 * its own module and is loaded only when used, so `dualpath decode` does not load the AWS SDK.
 */
export interface Command {
  summary: string;
  run(args: string[]): Promise<number>;
}

const commands: Record<string, () => Promise<Command>> = {
  start: async () => (await import('./start.js')).startCommand,
  simulate: async () => (await import('./simulate.js')).simulateCommand,
  decode: async () => (await import('./decode.js')).decodeCommand,
  bench: async () => (await import('./bench.js')).benchCommand,
  faults: async () => (await import('./faults.js')).faultsCommand,
  soak: async () => (await import('./soak.js')).soakCommand,
  cost: async () => (await import('./cost.js')).costCommand,
  preflight: async () => (await import('./preflight.js')).preflightCommand,
  provision: async () => (await import('./provision.js')).provisionCommand,
  redrive: async () => (await import('./redrive.js')).redriveCommand,
  cert: async () => (await import('./cert.js')).certCommand,
  live: async () => (await import('./live.js')).liveCommand,
};

function usage(): string {
  const lines = ['usage: dualpath <command> [options]', '', 'commands:'];
  for (const name of Object.keys(commands)) lines.push(`  ${name}`);
  lines.push('', 'Run `dualpath <command> --help` for its options.');
  return lines.join('\n');
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(`${usage()}\n`);
    return name === undefined ? 1 : 0;
  }
  const load = commands[name];
  if (!load) {
    process.stderr.write(`dualpath: unknown command "${name}"\n${usage()}\n`);
    return 2;
  }
  const command = await load();
  return command.run(rest);
}
