#!/usr/bin/env node
// Entry point of the `dualpath` command. The sources are TypeScript; tsx compiles them on load so
// `npm ci && npx dualpath ...` works with no build step.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../infra/cli/main.ts');
process.exitCode = await main(process.argv.slice(2));
