/**
 * Runs python3 with numpy for reference checks. The suite needs them: a machine without numpy fails
 * these tests with a message saying so, rather than skipping them.
 */
import { spawnSync } from 'node:child_process';

/** Runs a python script (numpy is imported as np before it) with the given arguments; returns stdout. */
export function python(script: string, args: readonly string[] = [], input?: string): string {
  const r = spawnSync('python3', ['-c', `import numpy as np\n${script}`, ...args], {
    encoding: 'utf8',
    input,
    maxBuffer: 1 << 30,
  });
  if (r.error !== undefined) throw new Error(`python3 could not be started (reference checks need python3 with numpy): ${r.error.message}`);
  if (r.status !== 0) throw new Error(`python3 failed (reference checks need python3 with numpy):\n${r.stderr}`);
  return r.stdout;
}

/** Runs a python script and parses its stdout as JSON. */
export function pythonJson<T>(script: string, args: readonly string[] = [], input?: string): T {
  return JSON.parse(python(script, args, input)) as T;
}
