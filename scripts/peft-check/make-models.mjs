// Writes the model folders that check.py loads in PEFT (run by make.sh from scripts/peft-check/work).
import { writeModel, openModel } from '../../dist/src/io/hf.js';
import { llamaConfig, llamaTensors, gpt2Config, gpt2Tensors, randomWeights } from '../../dist/src/io/synthetic.js';
import { rng } from '../../dist/src/core/rng.js';
import { tensor } from '../../dist/src/core/tensor.js';

const LLAMA = { hidden_size: 64, intermediate_size: 128, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, vocab_size: 100 };
const GPT2 = { n_embd: 64, n_layer: 2, n_head: 4, n_positions: 32, vocab_size: 100 };

async function tuned(basePath, out, specs, config, pattern) {
  const base = await openModel(basePath);
  const sources = specs.map((spec, i) => ({
    name: spec.name, dtype: 'f32', shape: spec.shape,
    data: async () => {
      const w = (await base.readAs(spec.name, 'f32')).data;
      const g = rng(1000 + i);
      for (let k = 0; k < w.length; k++) w[k] += 1e-4 * g.normal();
      if (spec.shape.length === 2 && pattern.test(spec.name)) {
        const [m, n] = spec.shape;
        const r = 4;
        const b = g.fillNormal(new Float32Array(m * r), 0, 0.05), a = g.fillNormal(new Float32Array(r * n), 0, 0.05);
        for (let p = 0; p < m; p++) for (let q = 0; q < n; q++) { let s = 0; for (let t = 0; t < r; t++) s += b[p * r + t] * a[t * n + q]; w[p * n + q] += s; }
      }
      if (spec.shape.length === 1) for (let k = 0; k < w.length; k++) w[k] += 0.01 * g.normal();
      return tensor('f32', spec.shape, w).data;
    },
  }));
  await writeModel(out, sources, { config });
  await base.close();
}

await writeModel('llama-base', randomWeights(llamaTensors(LLAMA), { seed: 1, dtype: 'f32', std: 0.05 }), { config: llamaConfig(LLAMA, 'float32') });
await tuned('llama-base', 'llama-tuned', llamaTensors(LLAMA), llamaConfig(LLAMA, 'float32'), /(q_proj|v_proj|down_proj)/);
await tuned('llama-base', 'llama-tuned2', llamaTensors(LLAMA), llamaConfig(LLAMA, 'float32'), /(q_proj|k_proj|up_proj)/);
await writeModel('gpt2-base', randomWeights(gpt2Tensors(GPT2), { seed: 2, dtype: 'f32', std: 0.05 }), { config: gpt2Config(GPT2) });
await tuned('gpt2-base', 'gpt2-tuned', gpt2Tensors(GPT2), gpt2Config(GPT2), /(c_attn|c_fc)/);
await writeModel('llama-tok', randomWeights(llamaTensors({ ...LLAMA, vocab_size: 459 }), { seed: 3, dtype: 'f32', std: 0.05 }), { config: llamaConfig({ ...LLAMA, vocab_size: 459 }, 'float32') });
