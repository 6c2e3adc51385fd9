#!/usr/bin/env node
// The meshwork CLI. Its code is TypeScript shared with the workers (one validator for the CLI,
// the build and the control plane), loaded through tsx so there is no separate compile step.
import { register } from 'tsx/esm/api';

// Output piped into `head` and the like: a closed pipe ends the command quietly.
process.stdout.on('error', (e) => {
  if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  throw e;
});

register();
const { main } = await import('../src/node/cli/main.ts');
process.exitCode = await main(process.argv.slice(2));
