/**
 * Child process of the train suite: `node dist/bench/train-child.js <model dir> <ids file> <batch>
 * <seq len> <warmup steps> <timed steps> <rank> <targets> [<method> <options JSON> <adapter dir>]`
 * loads the model in float32, attaches a LoRA (or the method; alpha = 2r), trains on the token ids
 * of the file (int32, (warmup + timed)·batch rows of seq len + 1) and prints one JSON line: tokens
 * per second over the timed steps (median step time), the losses, its peak RSS and, with an
 * adapter dir, the bytes of the saved adapter's weights file.
 */
import { openModel } from '../src/io/hf.js';
import { loadCausalLm } from '../src/nn/causalLm.js';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { attachAdapter, saveTrainedAdapter, train, type TrainOptions } from '../src/train/loop.js';
import type { OptionValues } from '../src/methods/options.js';
import type { Sequence } from '../src/train/data.js';
import { parseLayerTargets } from '../src/tools/targets.js';
import { maxRssBytes, median, now } from './util.js';

async function main(): Promise<void> {
  const [dir, idsFile, batchS, seqS, warmupS, stepsS, rankS, targetsS, method = 'lora', optionsS = '{}', adapterDir] = process.argv.slice(2);
  const [batch, seq, warmup, steps, rank] = [batchS, seqS, warmupS, stepsS, rankS].map(Number);
  const folder = await openModel(dir);
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
  console.log(JSON.stringify({ tokensPerSecond: (batch * seq) / perStep, secondsPerStep: perStep, losses, maxRssBytes: maxRssBytes(), adapterBytes }));
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
