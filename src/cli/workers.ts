/**
 * `--workers <n>`: the compute threads of the run (OpenBLAS threads for the native backend, Web
 * Workers for wasm). Both libraries fix their thread count when they load, so the launcher takes
 * this option out of argv and sets the environment before the CLI (and the backend) is imported.
 * This module imports nothing that loads a backend.
 */

/** argv without `--workers`, and the environment it asks for; or an error message. */
export function takeWorkers(argv: readonly string[]): { argv: string[]; env: Record<string, string> } | { error: string } {
  const rest: string[] = [];
  let value: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--') {
      rest.push(...argv.slice(i));
      break;
    }
    if (a === '--workers') {
      if (i + 1 >= argv.length) return { error: "option '--workers <n>' argument missing" };
      value = argv[++i];
    } else if (a.startsWith('--workers=')) value = a.slice('--workers='.length);
    else rest.push(a);
  }
  if (value === undefined) return { argv: rest, env: {} };
  const n = Number(value);
  if (!/^\s*\d+\s*$/.test(value) || !Number.isSafeInteger(n) || n < 1) return { error: `--workers must be a positive integer, got '${value}'` };
  return { argv: rest, env: { OPENBLAS_NUM_THREADS: String(n), LOWRANK_WASM_THREADS: String(n) } };
}
