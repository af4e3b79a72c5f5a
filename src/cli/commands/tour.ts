/**
 * `lowrank tour` (what `npm start` runs until the training job lands): writes a small sharded
 * Llama-shaped checkpoint and a PEFT LoRA adapter for it, inspects both, and round-trips a weight
 * through .npy — a short look at what exists, on real files.
 */
import type { Command } from 'commander';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { rng } from '../../core/rng.js';
import { tensor } from '../../core/tensor.js';
import { LowrankError } from '../../core/errors.js';
import { describe } from '../../io/describe.js';
import { llamaConfig, llamaTensors, randomWeights, type LlamaShape } from '../../io/synthetic.js';
import { openModel, writeModel } from '../../io/hf.js';
import { writeAdapter, type LoraModuleTensors } from '../../io/peft.js';
import { readNpy, writeNpy } from '../../io/npy.js';
import { formatBytes, formatCount } from '../../core/units.js';
import { progress } from '../progress.js';

const SHAPE: LlamaShape = { hidden_size: 128, intermediate_size: 344, num_hidden_layers: 4, num_attention_heads: 4, num_key_value_heads: 2, vocab_size: 1024 };

/** Adds the command to the program. */
export function register(program: Command): void {
  program
    .command('tour')
    .description('write a small sharded Llama-shaped checkpoint and a LoRA adapter for it, inspect both, and round-trip a weight through .npy')
    .option('--out <dir>', 'folder to write into (default: a new temporary folder)')
    .action(async (opts: { out?: string }) => {
      const out = resolve(opts.out ?? (await mkdtemp(join(tmpdir(), 'lowrank-tour-'))));
      await runTour(out);
    });
}

async function runTour(out: string): Promise<void> {
  const say = (s = ''): boolean => process.stdout.write(s + '\n');
  say(`lowrank tour: writing into ${out}`);

  const modelDir = join(out, 'tiny-llama');
  const specs = llamaTensors(SHAPE);
  const bar = progress('writing model', specs.length);
  const sources = randomWeights(specs, { seed: 1, dtype: 'bf16' }).map((s) => ({
    ...s,
    data: async () => {
      bar.tick(1, s.name);
      return typeof s.data === 'function' ? s.data() : s.data;
    },
  }));
  const written = await writeModel(modelDir, sources, { config: llamaConfig(SHAPE), maxShardSize: 600_000 }).finally(() => bar.stop());
  const layout = written.shards.length > 1 ? `${written.shards.length} shards + model.safetensors.index.json` : 'model.safetensors';
  say(`\n1. wrote a Llama-shaped checkpoint: ${specs.length} bf16 tensors, ${formatBytes(written.totalSize)} in ${layout}`);

  const m = await describe(modelDir);
  say(`   inspect: ${m.tensors.length} tensors, ${formatCount(m.totals.parameters)} parameters, ${formatBytes(m.totals.bytes)}; ` +
    `hidden ${m.architecture?.hidden_size}, ${m.architecture?.num_hidden_layers} layers, ${m.architecture?.num_attention_heads} heads (${m.architecture?.num_key_value_heads} kv)`);

  const adapterDir = join(out, 'tiny-llama-lora');
  const r = 8;
  const g = rng(2);
  const modules: LoraModuleTensors[] = [];
  for (const t of specs.filter((s) => /\.(q_proj|v_proj)\.weight$/.test(s.name))) {
    const [outF, inF] = t.shape;
    const bound = 1 / Math.sqrt(inF); // PEFT's default: kaiming_uniform(a=sqrt(5)) on A, zeros on B
    modules.push({ name: t.name.replace(/\.weight$/, ''), A: tensor('f32', [r, inF], g.fillUniform(new Float32Array(r * inF), -bound, bound)), B: tensor('f32', [outF, r]) });
  }
  await writeAdapter(adapterDir, { r, lora_alpha: 16, target_modules: ['q_proj', 'v_proj'], base_model_name_or_path: modelDir }, modules);
  const a = await describe(adapterDir);
  say(`2. wrote a PEFT LoRA adapter: ${a.adapter?.modules} modules (${JSON.stringify(a.adapter?.target_modules)}), rank ${a.adapter?.r}, alpha ${a.adapter?.lora_alpha}, ` +
    `${formatCount(a.totals.parameters)} trainable parameters (${((100 * a.totals.parameters) / m.totals.parameters).toFixed(2)}% of the model)`);

  const name = 'model.layers.0.self_attn.q_proj.weight';
  const model = await openModel(modelDir);
  const w = await model.readAs(name, 'f32').finally(() => model.close());
  const npyPath = join(out, 'q_proj.npy');
  await writeNpy(npyPath, w);
  const back = await readNpy(npyPath);
  const same = back.dtype === 'f32' && (back.data as Float32Array).every((v, i) => Object.is(v, w.data[i]));
  if (!same) throw new LowrankError('E_INTERNAL', `${npyPath} did not read back bit-exactly`);
  say(`3. read ${name} (bf16 → f32, [${w.shape.join(', ')}]) and round-tripped it through ${npyPath}: bit-exact`);
  say('\nnext:');
  say(`  lowrank inspect ${modelDir}`);
  say(`  lowrank inspect ${adapterDir} --json`);
  say(`  python3 -c "import numpy as np; print(np.load('${npyPath}').shape)"`);
}
