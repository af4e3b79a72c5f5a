/**
 * `lowrank analyze <model>`: the spectral metrics of every matrix (WeightWatcher's definitions), and
 * with --compare or --adapter how a fine-tune changed each one; a table and a summary, every number
 * with --json.
 */
import type { Command } from 'commander';
import { LowrankError } from '../../core/errors.js';
import { checkOutput, writeFileAtomic } from '../../io/atomic.js';
import { analyzeModel, type LayerRecord, type ModelAnalysis } from '../../analysis/model.js';
import { table } from '../format.js';
import { formatCount } from '../../core/units.js';
import { progress, type Progress } from '../progress.js';

interface Options {
  compare?: string;
  adapter?: string;
  json?: string;
  html?: string;
  force?: boolean;
  fast?: boolean;
  targets?: string;
}

/** Adds the command to the program. */
export function register(program: Command): void {
  program
    .command('analyze')
    .description(
      'spectral metrics of every matrix of a model, as WeightWatcher defines them: σmax, stable and effective rank, energy ranks, ' +
        'the power-law exponent alpha of the eigenvalue spectrum, the rank at 1% error; with --compare or --adapter, how a fine-tune ' +
        'changed each matrix (update rank, principal angles, intruder dimensions); streams one tensor at a time',
    )
    .argument('<model>', 'model folder or .safetensors file (with --compare: the fine-tuned model)')
    .option('--compare <base>', 'the base model <model> was fine-tuned from: adds the update ΔW = model − base and intruder dimensions')
    .option('--adapter <dir>', 'a PEFT LoRA adapter for <model>: compares each adapted matrix with itself plus scaling·B·A')
    .option('--json <file>', 'also write every number to this JSON file (atomically)')
    .option('--html <file>', 'also write an HTML report with charts (spectra, energy, effective rank, alpha, heatmap, intruders; written atomically)')
    .option('--force', 'replace the --json or --html file if it exists')
    .option('--fast', 'only the top 64 singular values (randomized SVD): faster on large matrices; estimates are marked approximate in the JSON')
    .option('--targets <regex>', 'only tensors whose name matches this regular expression')
    .action(async (model: string, opts: Options) => {
      if (opts.compare !== undefined && opts.adapter !== undefined) throw new LowrankError('E_USAGE', '--compare and --adapter cannot be used together');
      for (const out of [opts.json, opts.html]) {
        if (out !== undefined) await checkOutput(out, opts.force);
      }
      let bar: Progress | undefined;
      const res = await analyzeModel(model, {
        compare: opts.compare,
        adapter: opts.adapter,
        fast: opts.fast === true,
        targets: opts.targets,
        keepSpectra: opts.html !== undefined,
        onTensor: (name, _i, n) => {
          bar ??= progress('analyzing', n);
          bar.tick(1, name);
        },
      }).finally(() => bar?.stop());
      process.stdout.write(render(res));
      if (opts.json !== undefined) {
        const text = JSON.stringify(res, null, 2) + '\n';
        await writeFileAtomic(opts.json, (fh) => fh.writeFile(text), { overwrite: opts.force === true });
        process.stdout.write(`\nwrote ${opts.json}\n`);
      }
      if (opts.html !== undefined) {
        // Loaded here: vega and vega-lite take a while to import, and only this option needs them.
        const { renderReport } = await import('../../analysis/report.js');
        const html = await renderReport(res, { title: `lowrank analyze ${model}` });
        await writeFileAtomic(opts.html, (fh) => fh.writeFile(html), { overwrite: opts.force === true });
        process.stdout.write(`${opts.json === undefined ? '\n' : ''}wrote ${opts.html}\n`);
      }
    });
}

function num(x: number | null, digits = 4): string {
  if (x === null) return '-';
  if (x === 0) return '0';
  const a = Math.abs(x);
  return a >= 1e5 || a < 1e-3 ? x.toExponential(digits - 1) : String(+x.toPrecision(digits));
}

function rank(x: number | null, computed: number): string {
  return x === null ? `>${computed}` : String(x);
}

function row(l: LayerRecord, compared: boolean): string[] {
  const s = l.spectrum;
  const cells = [
    l.name,
    l.shape.join('×'),
    num(s.sigmaMax),
    num(s.stableRank),
    num(s.effectiveRank),
    rank(s.energyRanks.r99, s.computed),
    num(s.alpha, 3),
    s.warning ?? '',
  ];
  if (compared) {
    const c = l.comparison;
    cells.push(c === undefined ? '' : c.identical ? 'same' : rank(c.update.numericalRank, c.update.computed), c === undefined ? '' : String(c.intruders.count));
  }
  return cells;
}

function render(a: ModelAnalysis): string {
  const out: string[] = [];
  const compared = a.compare !== null || a.adapter !== null;
  const against = a.compare !== null ? ` against base ${a.compare}` : a.adapter !== null ? ` with adapter ${a.adapter}` : '';
  out.push(`spectra of ${a.model}${against}${a.fast ? ' (fast: top ' + a.settings.fastK + ' singular values; some values are estimates)' : ''}`, '');
  const header = ['name', 'shape', 'σmax', 'stable rank', 'eff. rank', 'r99', 'alpha', 'warning', ...(compared ? ['Δ rank', 'intruders'] : [])];
  const right = compared ? [2, 3, 4, 5, 6, 8, 9] : [2, 3, 4, 5, 6];
  out.push(table(header, a.layers.map((l) => row(l, compared)), right));
  const s = a.summary;
  out.push('', 'summary:');
  out.push(`  ${s.matrices} of ${s.tensors} tensors analyzed as matrices (${formatCount(s.parameters)} parameters); ${s.skipped} skipped (1-D, not float or not finite)`);
  if (s.withAlpha > 0) {
    out.push(`  alpha: mean ${num(s.meanAlpha, 3)} over ${s.withAlpha} matrices with a fit (${s.overTrained} over-trained α < 2, ${s.underTrained} under-trained α > 6); mean alpha-weighted ${num(s.meanAlphaWeighted, 3)}`);
  } else {
    out.push('  alpha: no matrix has the 50 eigenvalues a power-law fit needs');
  }
  out.push(`  mean stable rank ${num(s.meanStableRank)}, mean effective rank ${num(s.meanEffectiveRank)}, mean log norm ${num(s.meanLogNorm, 3)}, mean log spectral norm ${num(s.meanLogSpectralNorm, 3)}`);
  const pct = s.parameters > 0 ? ` (${((100 * s.parametersSavedAt1pct) / s.parameters).toFixed(1)}%)` : '';
  const unknown = s.savedUnknown > 0 ? `; ${s.savedUnknown} matrices need more than the computed values and are not counted` : '';
  out.push(`  factorizing each matrix at 1% relative Frobenius error would save ${formatCount(s.parametersSavedAt1pct)} parameters${pct}${unknown}`);
  const c = s.comparison;
  if (c !== undefined) {
    out.push(
      `  compared ${c.compared} matrices: ${c.changed} changed, mean update rank ${num(c.meanUpdateRank)}, mean ‖ΔW‖/‖W‖ ${num(c.meanRelativeUpdate, 3)}; ` +
        `${c.intruders} intruder dimension${c.intruders === 1 ? '' : 's'} (top ${a.settings.intruderK}, |cos| < ${a.settings.intruderThreshold}) in ${c.layersWithIntruders} matri${c.layersWithIntruders === 1 ? 'x' : 'ces'}`,
    );
  }
  if (a.unmatched.length > 0) {
    out.push('', `unmatched (${a.unmatched.length}, analyzed without a comparison where the model has them):`);
    for (const u of a.unmatched) out.push(`  ${u.name}: ${u.reason}`);
  }
  return out.join('\n') + '\n';
}
