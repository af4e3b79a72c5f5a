/**
 * Child process of the train suite: `node dist/bench/train-child.js <model dir> <ids file> <batch>
 * <seq len> <warmup steps> <timed steps> <rank> <targets> [<method> <options JSON> <adapter dir>]`
 * loads the model in float32, attaches a LoRA (or the method; alpha = 2r), trains on the token ids
 * of the file (int32, (warmup + timed)·batch rows of seq len + 1) and prints one JSON line: tokens
 * per second over the timed steps (median step time), the losses, its peak RSS, the model FLOP
 * utilization (below) and, with an adapter dir, the bytes of the saved adapter's weights file.
 *
 * MFU: useful FLOP per second over this process's own sgemm peak (a 2048² float32 product on the
 * backend in use, median of 5, measured after training under the same environment). Useful FLOP per
 * token: 4·N, N the weights that enter products (every 2-D weight but the embedding lookup; a tied
 * output head counts once): the forward product and the gradient of its input. Attention's
 * products, LoRA's own and the elementwise work are left out, so this is a lower bound on the work.
 */
import { openModel } from '../src/io/hf.js';
import { loadCausalLm } from '../src/nn/causalLm.js';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { attachAdapter, saveTrainedAdapter, train, type TrainOptions } from '../src/train/loop.js';
import type { OptionValues } from '../src/methods/options.js';
import type { Sequence } from '../src/train/data.js';
import { parseLayerTargets } from '../src/tools/targets.js';
import { maxRssBytes, median, now, timeRepeated } from './util.js';
import { backend } from '../src/backend/index.js';
import { rng } from '../src/core/rng.js';

async function main(): Promise<void> {
  const [dir, idsFile, batchS, seqS, warmupS, stepsS, rankS, targetsS, method = 'lora', optionsS = '{}', adapterDir] = process.argv.slice(2);
  const [batch, seq, warmup, steps, rank] = [batchS, seqS, warmupS, stepsS, rankS].map(Number);
  const folder = await openModel(dir);
  const productWeights = folder.tensors.filter((t) => t.shape.length === 2 && (t.name !== 'model.embed_tokens.weight' || !folder.has('lm_head.weight'))).reduce((sum, t) => sum + t.shape[0] * t.shape[1], 0);
  const m = await loadCausalLm(folder, 'f32').finally(() => folder.close());
  const bytes = await readFile(idsFile);
  const all = new Int32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
  // Every step sees its own sequences (no reuse), as a run over a real dataset would.
  const data: Sequence[] = Array.from({ length: batch * (warmup + steps) }, (_, i) => {
    const ids = all.subarray(i * (seq + 1), (i + 1) * (seq + 1));
    return { inputs: ids.subarray(0, seq), targets: ids.subarray(1) };
  });
  const opts: TrainOptions = { method, options: JSON.parse(optionsS) as OptionValues, rank, alpha: 2 * rank, targets: parseLayerTargets(targetsS), steps: warmup + steps, batch, lr: 1e-4, warmup: 0, seed: 0 };
  const adapter = await attachAdapter(m, opts);
  const times: number[] = [];
  let t = now();
  const losses = await train(m, adapter, data, {
    ...opts,
    onStep: ({ step }) => {
      const n = now();
      if (step > warmup) times.push(n - t);
      t = n;
    },
  });
  const perStep = median(times);
  let adapterBytes: number | undefined;
  if (adapterDir !== undefined) {
    await saveTrainedAdapter(adapter, adapterDir, { baseModel: dir });
    adapterBytes = (await stat(join(adapterDir, 'adapter_model.safetensors'))).size;
  }
  const sgemmFlops = await sgemmPeak();
  const tokensPerSecond = (batch * seq) / perStep;
  const mfu = (tokensPerSecond * 4 * productWeights) / sgemmFlops;
  console.log(JSON.stringify({ tokensPerSecond, secondsPerStep: perStep, losses, maxRssBytes: maxRssBytes(), adapterBytes, productWeights, sgemmFlops, mfu }));
}

/** FLOP/s of a 2048² float32 product on the backend in use, median of 5 after one warmup. */
async function sgemmPeak(): Promise<number> {
  const n = 2048;
  const a = { rows: n, cols: n, data: rng(1).fillNormal(new Float32Array(n * n)) };
  const b = { rows: n, cols: n, data: rng(2).fillNormal(new Float32Array(n * n)) };
  return (2 * n ** 3) / (await timeRepeated(() => backend().matmul(a, b, false, false), 5, 1)).median;
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
