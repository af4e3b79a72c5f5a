/** `lowrank compress <model> --policy P --out <dir>`: SVD compression of weight matrices with per-layer rank policies. */
import type { Command } from 'commander';
import { compressModel, type CompressReport } from '../../tools/compress.js';
import { parsePolicy } from '../../tools/policy.js';
import { formatCount } from '../../core/units.js';
import { progress, type Progress } from '../progress.js';
import { notes, table } from '../format.js';

interface CompressFlags {
  policy: string;
  out: string;
  targets?: string;
  materialize?: boolean;
  force?: boolean;
  json?: boolean;
  exact?: boolean;
}

/** Adds the command to the program. */
export function register(program: Command): void {
  program
    .command('compress')
    .description('compress weight matrices by truncated SVD, with a rank per layer from a policy; writes factors <module>.lowrank_U/lowrank_V and lowrank_manifest.json (or dense weights with --materialize)')
    .argument('<model>', 'model folder or .safetensors file')
    .requiredOption(
      '--policy <policy>',
      'rank:K (fixed), ratio:F (⌈F·min(m,n)⌉), energy:E (keep ≥ E of Σσ²), budget:F (keep F of the targeted parameters, greedy by energy per parameter), heavy-tail[:F] (WeLore-style global threshold on σ/σ₁, F of the parameters, default 0.5)',
    )
    .requiredOption('--out <dir>', 'output model folder (written atomically)')
    .option('--targets <regex>', 'modules to compress: a regex searched in module names (default: every 2-D weight except embeddings and the output head)')
    .option('--materialize', 'write the dense rank-k weights in the original names and dtypes (a normal model folder) instead of factors')
    .option('--exact', 'decompose every weight by the full SVD (default: randomized where the rank is small against the matrix, the Gram matrix where it is large; energies met as measured on the stored factors)')
    .option('--force', 'replace the output folder if it exists')
    .option('--json', 'print the report as JSON')
    .action(async (model: string, opts: CompressFlags) => {
      const policy = parsePolicy(opts.policy);
      let bar: Progress | undefined;
      const report = await compressModel({
        model,
        policy,
        out: opts.out,
        targets: opts.targets,
        materialize: opts.materialize === true,
        svd: opts.exact === true ? 'exact' : 'auto',
        overwrite: opts.force === true,
        onTensor: (name, _step, steps) => {
          bar ??= progress('compressing', steps);
          bar.tick(1, name);
        },
      }).finally(() => bar?.stop());
      process.stdout.write(opts.json === true ? JSON.stringify(report, null, 2) + '\n' : render(report));
    });
}

function render(r: CompressReport): string {
  const pct = (a: number, b: number): string => `${((100 * a) / b).toFixed(1)}%`;
  // An optimum from a randomized SVD is a lower estimate: marked ≈.
  const rows = r.layers.map((l) => [l.module, `${l.shape[0]}×${l.shape[1]}`, String(l.rank), l.factored ? `factored (${l.method ?? 'exact'})` : 'dense (no saving)', formatCount(l.paramsBefore), formatCount(l.paramsAfter), l.relativeError.toExponential(3), l.factored ? `${l.optimumExact ? '' : '≈'}${l.optimumError.toExponential(3)}` : '']);
  const { targeted, total } = r.parameters;
  const factored = r.layers.filter((l) => l.factored).length;
  return [
    table(['module', 'shape', 'rank', 'kept as', 'params', 'after', 'rel. error', 'optimum'], rows, [2, 4, 5, 6, 7]),
    '',
    ...notes(r.layers.map((l) => [l.module, l.note])),
    `policy ${r.policy}: ${factored} of ${r.layers.length} layers factored${r.materialized ? ' (materialized dense)' : ''}`,
    `targeted parameters ${formatCount(targeted.before)} → ${formatCount(targeted.after)} (${pct(targeted.after, targeted.before)})`,
    `total parameters ${formatCount(total.before)} → ${formatCount(total.after)} (${pct(total.after, total.before)})`,
    `wrote ${r.out}`,
    '',
  ].join('\n');
}
