/** `lowrank doctor`: which compute backends were found, which is in use and why. */
import type { Command } from 'commander';
import { availableParallelism } from 'node:os';
import { backend, backendReason, backendStatus } from '../../backend/index.js';
import { nativeInfo } from '../../backend/native/index.js';
import { wasmInfo } from '../../backend/wasm/index.js';

/** Adds the command to the program. */
export function register(program: Command): void {
  program
    .command('doctor')
    .description('show which compute backends (native OpenBLAS/LAPACK, WebAssembly, plain JS) are available, which is in use, and why')
    .option('--json', 'print the report as JSON')
    .action((opts: { json?: boolean }) => {
      const report = {
        node: process.version,
        cpus: availableParallelism(),
        inUse: backend().name,
        why: backendReason(),
        backends: backendStatus(),
        native: nativeInfo(),
        wasm: wasmInfo(),
      };
      if (opts.json === true) {
        process.stdout.write(JSON.stringify(report, null, 2) + '\n');
        return;
      }
      const lines = [`lowrank doctor (node ${report.node}, ${report.cpus} CPUs)`, ''];
      for (const b of report.backends) lines.push(`  ${b.available ? '✓' : '✗'} ${b.name.padEnd(7)} ${b.detail}`);
      lines.push('', `in use: ${report.inUse} (${report.why}); LOWRANK_BACKEND=js|wasm|native forces one`);
      const n = report.native;
      if (n.available) lines.push(`native: ${n.config.trim()}; ${n.threads} threads`);
      else lines.push('fast path: install libopenblas-dev and liblapacke-dev (Debian/Ubuntu), then `npm rebuild lowrank`');
      const w = report.wasm;
      if (w.available) lines.push(`wasm: ${w.simd === 'relaxed' ? 'relaxed SIMD (fused multiply-add)' : 'SIMD128'}, ${w.threads} thread(s)${w.threadsNote ? ` (${w.threadsNote})` : ''}`);
      process.stdout.write(lines.join('\n') + '\n');
    });
}
