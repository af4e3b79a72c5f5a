/**
 * `lowrank convert-to-lora <adapter> --rank r | --energy f --out <dir>`: any method's adapter as a
 * PEFT LoRA by a truncated SVD of each module's ΔW (PEFT's convert_to_lora). And
 * `lowrank convert-to-lora --initial <dir> --trained <dir> --out <dir>`: a trained PiSSA / MiLoRA /
 * OLoRA adapter as a rank-2r LoRA on the original base weights (PEFT's conversion).
 */
import type { Command } from 'commander';
import { LowrankError } from '../../core/errors.js';
import { convertToLora, methodToLora } from '../../tools/convertToLora.js';
import { table } from '../format.js';
import { fractionFlag, integerFlag } from '../parse.js';

interface Flags {
  initial?: string;
  trained?: string;
  rank?: string;
  energy?: string;
  base?: string;
  out: string;
  force?: boolean;
}

/** Adds the command to the program. */
export function register(program: Command): void {
  program
    .command('convert-to-lora')
    .argument('[adapter]', "an adapter of any method (VeRA, NOLA, RandLoRA, ...): each module's ΔW truncated by SVD into a LoRA")
    .description('turn an adapter into a PEFT LoRA: any method by a truncated SVD of each ΔW (--rank/--energy), or one trained over a residual base (PiSSA, MiLoRA, OLoRA: --initial/--trained) into a rank-2r LoRA [B | −B0]·[A ; A0] on the original weights')
    .option('--rank <r>', 'the largest rank kept per module (exact when ΔW has no higher rank)')
    .option('--energy <f>', 'per module, the smallest rank keeping this fraction of Σσ² (capped at --rank)')
    .option('--base <model>', 'the base model (for a PEFT-written adapter whose module shapes are not recorded)')
    .option('--initial <dir>', 'the residual-method adapter as initialized (before training)')
    .option('--trained <dir>', 'the trained residual-method adapter')
    .requiredOption('--out <dir>', 'output adapter folder (written atomically)')
    .option('--force', 'replace the output folder if it exists')
    .action(async (adapter: string | undefined, f: Flags) => {
      const overwrite = f.force === true;
      if (adapter === undefined) {
        if (f.initial === undefined || f.trained === undefined) throw new LowrankError('E_USAGE', 'give an adapter with --rank/--energy, or --initial and --trained');
        const res = await convertToLora({ initial: f.initial, trained: f.trained, out: f.out, overwrite });
        process.stdout.write(`wrote ${res.out}: ${res.modules} modules, r = ${res.config.r}, lora_alpha = ${res.config.lora_alpha} (apply it to the original base model)\n`);
        return;
      }
      if (f.initial !== undefined || f.trained !== undefined) throw new LowrankError('E_USAGE', '--initial/--trained convert a residual-method pair; they do not go with an adapter argument');
      const rank = f.rank === undefined ? undefined : integerFlag('--rank', f.rank, 1);
      const energy = f.energy === undefined ? undefined : fractionFlag('--energy', f.energy);
      const res = await methodToLora({ adapter, rank, energy, base: f.base, out: f.out, overwrite });
      const rows = res.modules.map((m) => [m.name, String(m.rank), m.relError.toExponential(2)]);
      process.stdout.write(`${table(['module', 'rank', 'relative error'], rows, [1, 2])}\n\nwrote ${res.out}: a PEFT LoRA, r = ${res.config.r} (per-module ranks in rank_pattern), scaling 1\n`);
    });
}
