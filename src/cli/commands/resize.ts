/** `lowrank resize <adapter> --out <dir>`: re-rank a PEFT LoRA adapter (kohya's resize_lora). */
import type { Command } from 'commander';
import { LowrankError } from '../../core/errors.js';
import { parseRankRule, RANK_RULES } from '../../tools/ranks.js';
import { resizeAdapter, type ResizeResult } from '../../tools/resize.js';
import { table } from '../format.js';
import { formatCount } from '../../core/units.js';
import { progress, type Progress } from '../progress.js';

/** Adds the command to the program. */
export function register(program: Command): void {
  program
    .command('resize')
    .description("re-rank a PEFT LoRA adapter by truncated SVD of each module's update (kohya's resize_lora): a fixed rank, or a dynamic rule capped by --rank")
    .argument('<adapter>', 'PEFT LoRA adapter folder')
    .requiredOption('--out <dir>', 'output adapter folder (written atomically)')
    .option('--rank <r>', 'new rank; with --dynamic, the largest rank the rule may pick')
    .option('--dynamic <rule:value>', `pick each module's rank: ${RANK_RULES.map((r) => `${r}:X`).join(', ')} (sv_ratio keeps σ > σmax/X; sv_fro and sv_cumulative keep the fraction X of the Frobenius norm or of Σσ)`)
    .option('--force', 'replace the output folder if it exists')
    .option('--json', 'print the per-module report as JSON')
    .action(async (adapter: string, opts: { out: string; rank?: string; dynamic?: string; force?: boolean; json?: boolean }) => {
      const rank = opts.rank === undefined ? undefined : parseRank(opts.rank);
      const dynamic = opts.dynamic === undefined ? undefined : parseRankRule(opts.dynamic);
      if (rank === undefined && dynamic === undefined) throw new LowrankError('E_USAGE', 'give --rank r, --dynamic rule:value, or both');
      let bar: Progress | undefined;
      const res = await resizeAdapter({
        adapter,
        out: opts.out,
        rank,
        dynamic,
        overwrite: opts.force === true,
        onModule: (name, _i, n) => {
          bar ??= progress('resizing', n);
          bar.tick(1, name);
        },
      }).finally(() => bar?.stop());
      process.stdout.write(opts.json === true ? JSON.stringify(toJson(res), null, 2) + '\n' : render(res));
    });
}

function parseRank(text: string): number {
  const r = Number(text);
  if (!/^\d+$/.test(text.trim()) || !Number.isSafeInteger(r) || r < 1) throw new LowrankError('E_USAGE', `--rank must be a positive integer, got '${text}'`);
  return r;
}

function toJson(res: ResizeResult): object {
  return {
    out: res.out,
    r: res.config.r,
    parameters: res.parameters,
    modules: res.modules.map((m) => ({
      name: m.name,
      oldRank: m.oldRank,
      newRank: m.newRank,
      sumRetained: m.sumRetained,
      froRetained: m.froRetained,
      // JSON has no Infinity: a zero σ_k (a rank above the update's own) is written as null.
      maxRatio: Number.isFinite(m.maxRatio) ? m.maxRatio : null,
      froError: m.froError,
      froNorm: m.froNorm,
    })),
  };
}

function render(res: ResizeResult): string {
  const pct = (x: number): string => `${(100 * x).toFixed(1)}%`;
  const rows = res.modules.map((m) => [m.name, String(m.oldRank), String(m.newRank), pct(m.froRetained), pct(m.sumRetained), Number.isFinite(m.maxRatio) ? m.maxRatio.toFixed(1) : 'inf']);
  const meanFro = res.modules.reduce((s, m) => s + m.froRetained, 0) / res.modules.length;
  const { before, after } = res.parameters;
  return [
    table(['module', 'old r', 'new r', 'fro retained', 'sum retained', 'max ratio'], rows, [1, 2, 3, 4, 5]),
    '',
    `wrote ${res.out}: ${res.modules.length} modules, r = lora_alpha = ${res.config.r} (scaling 1), LoRA parameters ${formatCount(before)} → ${formatCount(after)} (${pct(after / before)}), mean fro retained ${pct(meanFro)}`,
    '',
  ].join('\n');
}
