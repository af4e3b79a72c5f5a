/**
 * `lowrank convert-to-lora --initial <dir> --trained <dir> --out <dir>`: a trained PiSSA / MiLoRA /
 * OLoRA adapter as a rank-2r LoRA on the original base weights (PEFT's conversion).
 */
import type { Command } from 'commander';
import { convertToLora } from '../../tools/convertToLora.js';

/** Adds the command to the program. */
export function register(program: Command): void {
  program
    .command('convert-to-lora')
    .description('turn an adapter trained over a residual base (PiSSA, MiLoRA, OLoRA) into a rank-2r LoRA on the original weights: [B | −B0]·[A ; A0]')
    .requiredOption('--initial <dir>', 'the adapter as initialized (before training)')
    .requiredOption('--trained <dir>', 'the trained adapter')
    .requiredOption('--out <dir>', 'output adapter folder (written atomically)')
    .option('--force', 'replace the output folder if it exists')
    .action(async (opts: { initial: string; trained: string; out: string; force?: boolean }) => {
      const res = await convertToLora({ initial: opts.initial, trained: opts.trained, out: opts.out, overwrite: opts.force === true });
      process.stdout.write(`wrote ${res.out}: ${res.modules} modules, r = ${res.config.r}, lora_alpha = ${res.config.lora_alpha} (apply it to the original base model)\n`);
    });
}
