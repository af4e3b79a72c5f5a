/**
 * The `lowrank` command line: one file per command under commands/, each a thin shell over the
 * library. Exit codes: 0 ok, 1 bad input or usage, 2 internal error (a bug).
 */
import { Command, CommanderError } from 'commander';
import { readFileSync } from 'node:fs';
import { isLowrankError } from '../core/errors.js';
import { removeTempOutputsSync } from '../io/atomic.js';
import { register as analyze } from './commands/analyze.js';
import { register as compare } from './commands/compare.js';
import { register as compress } from './commands/compress.js';
import { register as convert } from './commands/convert.js';
import { register as convertToLora } from './commands/convert-to-lora.js';
import { register as doctor } from './commands/doctor.js';
import { register as extract } from './commands/extract.js';
import { register as generate } from './commands/generate.js';
import { register as init } from './commands/init.js';
import { register as inspect } from './commands/inspect.js';
import { register as merge } from './commands/merge.js';
import { register as params } from './commands/params.js';
import { register as resize } from './commands/resize.js';
import { register as start } from './commands/start.js';
import { register as studio } from './commands/studio.js';
import { register as tour } from './commands/tour.js';
import { register as train } from './commands/train.js';

const COMMANDS = [inspect, convert, analyze, compress, extract, merge, resize, init, convertToLora, params, train, generate, compare, start, studio, doctor, tour];

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

/** Builds the command tree (exported for tests that check every command's --help). */
export function buildProgram(): Command {
  const program = new Command('lowrank')
    .description('low-rank structure of neural networks: inspect, decompose, adapt, compress and analyze checkpoints')
    .version(version())
    .option('--workers <n>', 'compute threads, used inside each decomposition: OpenBLAS threads (native) or workers (wasm); default: every core')
    .exitOverride()
    .showHelpAfterError('(run with --help for usage)')
    .configureOutput({ writeErr: (s) => process.stderr.write(s), writeOut: (s) => process.stdout.write(s) });
  for (const add of COMMANDS) add(program);
  return program;
}

let signalsInstalled = false;

/** Ctrl-C and SIGTERM remove whatever temporary outputs are in progress, then exit 130/143. */
export function installSignalCleanup(): void {
  if (signalsInstalled) return;
  signalsInstalled = true;
  for (const [sig, code] of [['SIGINT', 130], ['SIGTERM', 143]] as const) {
    process.on(sig, () => {
      removeTempOutputsSync();
      process.stderr.write(`\nlowrank: interrupted (${sig}); no partial output was left\n`);
      process.exit(code);
    });
  }
}

/** Runs the CLI on `argv` (without node and script) and returns the exit code. */
export async function main(argv: readonly string[]): Promise<number> {
  installSignalCleanup();
  const program = buildProgram();
  try {
    if (argv.length === 0) {
      program.outputHelp({ error: true });
      return 1;
    }
    await program.parseAsync([...argv], { from: 'user' });
    return 0;
  } catch (e) {
    if (e instanceof CommanderError) {
      return e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.code === 'commander.help' ? 0 : 1;
    }
    if (isLowrankError(e)) {
      process.stderr.write(`lowrank: error: ${e.message}\n`);
      return e.code === 'E_INTERNAL' ? 2 : 1;
    }
    const detail = process.env.LOWRANK_DEBUG === '1' && e instanceof Error ? `\n${e.stack}` : ' (set LOWRANK_DEBUG=1 for a stack trace, and please report it)';
    process.stderr.write(`lowrank: internal error: ${e instanceof Error ? e.message : String(e)}${detail}\n`);
    return 2;
  }
}
