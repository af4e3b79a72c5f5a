#!/usr/bin/env node
import { takeWorkers } from '../dist/src/cli/workers.js';

const taken = takeWorkers(process.argv.slice(2));
if ('error' in taken) {
  process.stderr.write(`lowrank: error: ${taken.error}\n`);
  process.exitCode = 1;
} else {
  Object.assign(process.env, taken.env);
  const { main } = await import('../dist/src/cli/main.js');
  process.exitCode = await main(taken.argv);
}
