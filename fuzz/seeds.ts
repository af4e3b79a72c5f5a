/**
 * The seed corpus: small valid inputs of every format, made by lowrank's own writers (so they are
 * what the readers expect) plus the PEFT-written adapters in test/fixtures. Mutations start here.
 */
import { readFile, stat } from 'node:fs/promises';
import { withTempDir } from '../bench/util.js';
import { join } from 'node:path';
import { tensor, type Tensor } from '../src/core/tensor.js';
import { makeStorage, type DType } from '../src/core/dtype.js';
import { rng } from '../src/core/rng.js';
import { writeSafetensors, type TensorSource } from '../src/io/safetensors/writer.js';
import { writeModel } from '../src/io/hf.js';
import { writeAdapter, patternKey } from '../src/io/peft.js';
import { writeMethodAdapter } from '../src/io/methodAdapter.js';
import { encodeNpy } from '../src/io/npy.js';
import { encodeNpz } from '../src/io/npz.js';
import { gpt2Config, gpt2Tensors, llamaConfig, llamaTensors, randomWeights } from '../src/io/synthetic.js';
import { initAdapter } from '../src/tools/init.js';
import { readFolder, type Sample } from './sample.js';

/** A tensor of `dtype` with seeded contents. */
function filled(dtype: DType, shape: number[], seed: number): Tensor {
  const n = shape.reduce((a, d) => a * d, 1);
  const data = makeStorage(dtype, n);
  const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  const g = rng(seed);
  for (let i = 0; i < bytes.length; i++) bytes[i] = g.uint32() & 0xff;
  if (dtype === 'f32' || dtype === 'f64') (data as Float32Array | Float64Array).set(g.fillNormal(new Float64Array(n)));
  if (dtype === 'bool') bytes.forEach((b, i) => (bytes[i] = b & 1));
  return tensor(dtype, shape, data);
}

const source = (name: string, t: Tensor): TensorSource => ({ name, dtype: t.dtype, shape: t.shape, data: t.data });

const TINY_LLAMA = { hidden_size: 8, intermediate_size: 16, num_hidden_layers: 1, num_attention_heads: 2, num_key_value_heads: 1, vocab_size: 12 };

/** Builds every seed (about a second: a few tiny models and adapters are written and read back). */
export async function buildSeeds(): Promise<Sample[]> {
  return withTempDir('lowrank-fuzz-seeds-', async (tmp) => [...(await safetensorsSeeds(tmp)), ...(await modelSeeds(tmp)), ...(await adapterSeeds(tmp)), ...npySeeds(), ...npzSeeds()]);
}

async function safetensorsSeeds(tmp: string): Promise<Sample[]> {
  const mixed: [string, DType, number[]][] = [
    ['w.f32', 'f32', [3, 4]], ['w.bf16', 'bf16', [2, 5]], ['w.f16', 'f16', [4]], ['w.f64', 'f64', [2, 2]], ['i.i8', 'i8', [6]],
    ['i.i64', 'i64', [3]], ['u.u8', 'u8', [2, 3]], ['b.bool', 'bool', [5]], ['f8.e4m3', 'f8_e4m3', [4]], ['f8.e5m2', 'f8_e5m2', [2, 2]],
    ['empty', 'f32', [0, 3]], ['scalar', 'f32', []],
  ];
  const seeds: Sample[] = [];
  const write = async (name: string, tensors: TensorSource[], metadata?: Record<string, string>): Promise<void> => {
    const path = join(tmp, `${name}.safetensors`);
    await writeSafetensors(path, tensors, { metadata });
    seeds.push({ format: 'safetensors', files: { 'input.safetensors': new Uint8Array(await readFile(path)) } });
  };
  await write('mixed', mixed.map(([n, d, s], i) => source(n, filled(d, s, i))), { format: 'pt', note: 'seed' });
  await write('one', [source('a', filled('f32', [2, 2], 7))]);
  await write('none', []);
  return seeds;
}

async function modelSeeds(tmp: string): Promise<Sample[]> {
  const llama = join(tmp, 'llama');
  await writeModel(llama, randomWeights(llamaTensors(TINY_LLAMA), { seed: 1, dtype: 'bf16' }), { config: llamaConfig(TINY_LLAMA) });
  const gpt2Shape = { n_embd: 8, n_layer: 1, n_head: 2, n_positions: 4, vocab_size: 10 };
  const gpt2 = join(tmp, 'gpt2');
  await writeModel(gpt2, randomWeights(gpt2Tensors(gpt2Shape), { seed: 2, dtype: 'f32' }), { config: gpt2Config(gpt2Shape) });
  const sharded = join(tmp, 'sharded');
  await writeModel(sharded, randomWeights(llamaTensors(TINY_LLAMA), { seed: 3, dtype: 'f16' }), { config: llamaConfig(TINY_LLAMA, 'float16'), maxShardSize: 400 });
  return [
    { format: 'model', files: await readFolder(llama) },
    { format: 'model', files: await readFolder(gpt2) },
    { format: 'sharded', files: await readFolder(sharded) },
  ];
}

async function adapterSeeds(tmp: string): Promise<Sample[]> {
  const seeds: Sample[] = [];
  const lora = (name: string, r: number, out: number, inF: number, seed: number): { name: string; A: Tensor; B: Tensor } => ({ name, A: filled('f32', [r, inF], seed), B: filled('f32', [out, r], seed + 1) });
  const q = 'model.layers.0.self_attn.q_proj';
  const v = 'model.layers.0.self_attn.v_proj';
  const plain = join(tmp, 'peft-plain');
  await writeAdapter(plain, { r: 2, lora_alpha: 4 }, [lora(q, 2, 8, 8, 1), lora(v, 2, 4, 8, 3)]);
  const patterned = join(tmp, 'peft-patterns');
  await writeAdapter(
    patterned,
    { r: 2, lora_alpha: 4, target_modules: '.*\\.(q|v)_proj', rank_pattern: { [patternKey(v)]: 1 }, alpha_pattern: { 'v_proj': 3 }, layers_pattern: 'layers', modules_to_save: ['lm_head'], exclude_modules: ['k_proj'], use_rslora: true },
    [lora(q, 2, 8, 8, 5), lora(v, 1, 4, 8, 7)],
    { extra: [source('base_model.model.lm_head.modules_to_save.default.weight', filled('f32', [12, 8], 9))] },
  );
  const dora = join(tmp, 'peft-dora');
  await writeAdapter(dora, { r: 2, lora_alpha: 2, use_dora: true }, [{ ...lora(q, 2, 8, 8, 11), magnitude: filled('f32', [8], 13) }]);
  const embed = join(tmp, 'peft-embedding');
  await writeAdapter(embed, { r: 2, lora_alpha: 2, target_modules: ['embed_tokens'] }, [{ name: 'model.embed_tokens', kind: 'embedding', A: filled('f32', [2, 12], 15), B: filled('f32', [8, 2], 16) }]);
  for (const dir of [plain, patterned, dora, embed]) seeds.push({ format: 'peft', files: await readFolder(dir) });
  // Written by PEFT itself (test/fixtures/peft-init/make.py).
  const fixture = join(import.meta.dirname, '..', '..', 'test', 'fixtures', 'peft-init', 'pissa', 'adapter');
  if (await stat(fixture).then((s) => s.isDirectory(), () => false)) seeds.push({ format: 'peft', files: await readFolder(fixture) });

  const method = join(tmp, 'method-plain');
  await writeMethodAdapter(method, { lowrank_method: 'svfit', r: 2, lowrank_keys: { sigma: 'svfit_sigma', U: 'svfit_U' } }, [
    { module: q, key: 'svfit_sigma', tensor: filled('f32', [2], 17) },
    { module: q, key: 'svfit_U', tensor: filled('f32', [8, 2], 18) },
  ]);
  seeds.push({ format: 'method', files: await readFolder(method) });
  // Adapters in each method's own format, from a tiny base (shared projections included).
  const base = join(tmp, 'base');
  await writeModel(base, randomWeights(llamaTensors(TINY_LLAMA), { seed: 4, dtype: 'f32' }), { config: llamaConfig(TINY_LLAMA, 'float32') });
  const options: Record<string, Record<string, number>> = { vblora: { vector_length: 4, num_vectors: 8 }, tinylora: { u: 4 } };
  for (const name of ['svfit', 'loldu', 'vera', 'randlora', 'nola', 'vblora', 'tinylora', 'mos']) {
    const out = join(tmp, `init-${name}`);
    await initAdapter({ model: base, method: name, rank: 2, targets: ['q_proj', 'v_proj'], out, seed: 5, options: options[name] });
    seeds.push({ format: 'method', files: await readFolder(out) });
  }
  return seeds;
}

function npySeeds(): Sample[] {
  const arrays: Tensor[] = [filled('f32', [3, 4], 20), filled('i64', [5], 21), filled('bool', [2, 2], 22), filled('u8', [0], 23), filled('f64', [], 24), filled('f16', [2, 3, 2], 25)];
  return arrays.map((t) => ({ format: 'npy', files: { 'input.npy': encodeNpy(t) } }));
}

function npzSeeds(): Sample[] {
  const arrays = { a: filled('f32', [3, 4], 30), b: filled('i32', [6], 31), 'dir/c': filled('u8', [2, 2], 32) };
  return [
    { format: 'npz', files: { 'input.npz': encodeNpz(arrays) } },
    { format: 'npz', files: { 'input.npz': encodeNpz(arrays, { compress: true }) } },
    { format: 'npz', files: { 'input.npz': encodeNpz({ only: filled('f64', [200], 33) }, { compress: true }) } },
  ];
}
