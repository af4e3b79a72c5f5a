/** `lowrank extract --base <model> --tuned <model> --rank R --out <dir>`: a LoRA from a fine-tune and its base. */
import { Option, type Command } from 'commander';
import { LowrankError } from '../../core/errors.js';
import { extractLora, type ExtractFormat, type ExtractReport, type FactorDType } from '../../tools/extract.js';
import { parseRankRule } from '../../tools/ranks.js';
import { notes, table } from '../format.js';
import { formatCount } from '../../core/units.js';
import { progress, type Progress } from '../progress.js';

interface ExtractFlags {
  base: string;
  tuned: string;
  rank: string;
  out: string;
  dynamic?: string;
  clampQuantile?: string;
  targets?: string;
  format: ExtractFormat;
  saveModules?: boolean;
  dtype?: FactorDType;
  baseModelName?: string;
  force?: boolean;
  json?: boolean;
  exact?: boolean;
}

function positiveInt(text: string, flag: string): number {
  const n = Number(text);
  if (!/^\s*\d+\s*$/.test(text) || !Number.isSafeInteger(n) || n < 1) throw new LowrankError('E_USAGE', `${flag} must be a positive integer, got '${text}'`);
  return n;
}

function fraction(text: string, flag: string): number {
  const q = Number(text);
  if (text.trim() === '' || !(q > 0 && q <= 1)) throw new LowrankError('E_USAGE', `${flag} must be a number in (0, 1], got '${text}'`);
  return q;
}

/** Adds the command to the program. */
export function register(program: Command): void {
  program
    .command('extract')
    .description('extract a LoRA adapter from a fine-tuned model and its base: per weight matrix, the truncated SVD of tuned − base (as mergekit-extract-lora and kohya do); streams one tensor at a time')
    .requiredOption('--base <model>', 'base model folder or .safetensors file')
    .requiredOption('--tuned <model>', 'fine-tuned model folder or .safetensors file (same tensor names)')
    .requiredOption('--rank <r>', 'largest rank of any module')
    .requiredOption('--out <path>', 'output adapter folder (peft) or .safetensors file (kohya), written atomically')
    .option('--dynamic <rule:value>', "per-module rank by kohya's rules, capped at --rank: sv_ratio:X (keep σ > σ_max/X), sv_fro:X (keep ≥ X of ‖ΔW‖_F), sv_cumulative:X (keep ≥ X of Σσ)")
    .option('--clamp-quantile <q>', "clamp A and B to ±(the q-quantile of their magnitudes), as kohya does with 0.99; off by default (it gives up the best-approximation guarantee)")
    .option('--targets <regex>', 'modules to extract: a regex searched in module names (default: every 2-D weight except embeddings and the output head)')
    .addOption(new Option('--format <format>', 'output layout').choices(['peft', 'kohya', 'mlx']).default('peft'))
    .option('--save-modules', 'save changed tensors that no LoRA carries (norms, biases, resized embeddings) in full as modules_to_save (peft)')
    .addOption(new Option('--dtype <dtype>', "store the factors as this dtype (default: each tuned weight's own)").choices(['f32', 'bf16', 'f16']))
    .option('--exact', 'decompose every ΔW by the full SVD (default: a randomized SVD where the rank is small against the matrix, within 1 % of the optimum)')
    .option('--base-model-name <id>', 'base_model_name_or_path written in the adapter config (default: --base as given)')
    .option('--force', 'replace the output if it exists')
    .option('--json', 'print the report as JSON')
    .action(async (opts: ExtractFlags) => {
      let bar: Progress | undefined;
      const report = await extractLora({
        base: opts.base,
        tuned: opts.tuned,
        out: opts.out,
        rank: positiveInt(opts.rank, '--rank'),
        dynamic: opts.dynamic === undefined ? undefined : parseRankRule(opts.dynamic),
        clampQuantile: opts.clampQuantile === undefined ? undefined : fraction(opts.clampQuantile, '--clamp-quantile'),
        targets: opts.targets,
        format: opts.format,
        saveModules: opts.saveModules === true,
        dtype: opts.dtype,
        svd: opts.exact === true ? 'exact' : 'auto',
        baseModelName: opts.baseModelName,
        overwrite: opts.force === true,
        onTensor: (name, _i, n) => {
          bar ??= progress('extracting', n);
          bar.tick(1, name);
        },
      }).finally(() => bar?.stop());
      process.stdout.write(opts.json === true ? JSON.stringify(report, null, 2) + '\n' : render(report));
    });
}

function num(x: number): string {
  return Number.isFinite(x) ? x.toPrecision(4) : String(x);
}

function render(r: ExtractReport): string {
  const out: string[] = [];
  const rel = (x: number, d: number): string => (d === 0 ? '0' : num(x / d));
  // An optimum from a randomized SVD is a lower estimate: marked ≈.
  const rows = r.modules.map((m) => [m.name, m.kind, `[${m.shape.join(', ')}]`, String(m.rank), m.method, num(m.deltaNorm), rel(m.residual, m.deltaNorm), `${m.optimumExact ? '' : '≈'}${rel(m.optimum, m.deltaNorm)}`, `${(100 * m.energyRetained).toFixed(2)}%`]);
  out.push(table(['module', 'kind', 'shape', 'rank', 'svd', '‖ΔW‖', '‖ΔW−BA‖/‖ΔW‖', 'optimum/‖ΔW‖', 'energy kept'], rows, [3, 5, 6, 7, 8]));
  const t = r.totals;
  out.push('', `${t.modules} modules, ${formatCount(t.parameters)} adapter parameters; ‖ΔW − BA‖/‖ΔW‖ = ${rel(t.residual, t.deltaNorm)} (Eckart–Young optimum ${rel(t.optimum, t.deltaNorm)}), ${(100 * t.energyRetained).toFixed(2)}% of the energy kept`);
  const worst = Math.max(...r.modules.map((m) => (m.optimum > 0 ? m.residual / m.optimum - 1 : 0)));
  const estimated = r.modules.some((m) => !m.optimumExact);
  out.push(`largest excess over the optimum: ${(100 * worst).toFixed(2)}%${estimated ? ' (≈: against a lower estimate of the optimum)' : ''}`);
  out.push(...notes(r.modules.map((m) => [m.name, m.note])).map((line) => `  ${line}`));
  if (r.unchanged.length > 0) out.push(`${r.unchanged.length} target modules unchanged (ΔW = 0), skipped`);
  if (r.changed.length > 0) {
    out.push('', 'changed tensors not in the LoRA:');
    for (const c of r.changed) {
      const shape = c.reason === 'shape mismatch' ? ` [${c.baseShape.join(', ')}] → [${c.tunedShape.join(', ')}]` : '';
      const diff = c.maxAbsDiff !== undefined ? `, max |Δ| ${num(c.maxAbsDiff)}` : '';
      const fate = c.saved ? 'saved (modules_to_save)' : c.note !== undefined ? `not saved: ${c.note}` : 'not saved (--save-modules saves it)';
      out.push(`  ${c.name}: ${c.reason}${shape}${diff}; ${fate}`);
    }
  }
  if (r.onlyInBase.length > 0) out.push(`only in the base model: ${r.onlyInBase.join(', ')}`);
  if (r.onlyInTuned.length > 0) out.push(`only in the tuned model: ${r.onlyInTuned.join(', ')}`);
  const what = r.format === 'mlx' ? 'mlx-lm adapter (adapters.safetensors, scale 1)' : r.format === 'peft' ? `PEFT adapter (r = lora_alpha = ${r.config?.r}${Object.keys(r.config?.rank_pattern ?? {}).length > 0 ? ', lower ranks in rank_pattern' : ''})` : 'kohya LoRA file';
  out.push('', `wrote ${r.out}: ${what}`);
  return out.join('\n') + '\n';
}
