/** `lowrank convert <model> --out <dir>`: change dtype and sharding of a model, tensor by tensor. */
import { Option, type Command } from 'commander';
import { convertModel, TORCH_DTYPES, type ModelDType } from '../../io/convert.js';
import { parseSize } from '../../io/hf.js';
import { formatBytes } from '../../core/units.js';
import { progress, type Progress } from '../progress.js';

/** Adds the command to the program. */
export function register(program: Command): void {
  program
    .command('convert')
    .description('rewrite a model folder or .safetensors file as a Hugging Face model folder, optionally in another dtype and sharded; streams one tensor at a time')
    .argument('<model>', 'model folder or .safetensors file')
    .requiredOption('--out <dir>', 'output folder (written atomically)')
    .addOption(new Option('--dtype <dtype>', 'store float tensors as this dtype (round to nearest even)').choices(Object.keys(TORCH_DTYPES)))
    .option('--max-shard-size <size>', 'largest shard, e.g. 5GB or 500MiB (default: one file)')
    .option('--force', 'replace the output folder if it exists')
    .option('--json', 'print what was written as JSON')
    .action(async (model: string, opts: { out: string; dtype?: ModelDType; maxShardSize?: string; force?: boolean; json?: boolean }) => {
      let bar: Progress | undefined;
      const res = await convertModel(model, opts.out, {
        dtype: opts.dtype,
        maxShardSize: opts.maxShardSize === undefined ? undefined : parseSize(opts.maxShardSize),
        overwrite: opts.force === true,
        onTensor: (name, _i, n) => {
          bar ??= progress('converting', n);
          bar.tick(1, name);
        },
      }).finally(() => bar?.stop());
      if (opts.json === true) process.stdout.write(JSON.stringify({ out: opts.out, ...res }, null, 2) + '\n');
      else process.stdout.write(`wrote ${opts.out}: ${formatBytes(res.totalSize)} of tensors in ${res.shards.length === 1 ? res.shards[0] : `${res.shards.length} shards with an index`}\n`);
    });
}
