/** `lowrank studio`: serves the studio page (analysis and adapter tools in a browser tab) on this machine. */
import { spawn } from 'node:child_process';
import type { Command } from 'commander';
import { LowrankError } from '../../core/errors.js';
import { serveStudio } from '../../studio/serve.js';
import { integerFlag } from '../parse.js';

/** Adds the command to the program. */
export function register(program: Command): void {
  program
    .command('studio')
    .description('serve the studio page: drop model and adapter folders on it to inspect, analyze, extract, merge and resize in the browser tab (nothing is uploaded)')
    .option('--port <n>', 'the port (0: any free one)', '8080')
    .option('--host <address>', 'the address to listen on', '127.0.0.1')
    .option('--open', 'open the page in the default browser')
    .action(async (opts: { port: string; host: string; open?: boolean }) => {
      const port = integerFlag('--port', opts.port, 0);
      if (port > 65535) throw new LowrankError('E_USAGE', `--port must be at most 65535, got '${opts.port}'`);
      const server = await serveStudio({ port, host: opts.host });
      process.stdout.write(`lowrank studio: ${server.url} (Ctrl-C to stop)\n`);
      if (opts.open === true) openBrowser(server.url);
      await new Promise<never>(() => undefined); // serves until the process is stopped
    });
}

/** Opens `url` with the desktop's opener; says so when there is none. */
function openBrowser(url: string): void {
  const [cmd, args] = process.platform === 'darwin' ? ['open', [url]] : process.platform === 'win32' ? ['cmd', ['/c', 'start', '', url]] : ['xdg-open', [url]];
  const child = spawn(cmd, args, { stdio: 'ignore', detached: true });
  child.on('error', () => process.stderr.write(`lowrank studio: could not start ${cmd}; open ${url} yourself\n`));
  child.unref();
}
