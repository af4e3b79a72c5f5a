/**
 * Child process of the generate suite (the lowrank side): `node dist/bench/generate-child.js
 * <model dir> <ids file> <batch> <prompt len> <new tokens> <warmup> <reps> [<adapters> <dir>...]`
 * loads the model in float32 and runs greedy generation (no stop token) on the prompts of the ids
 * file (int32, batch rows of prompt len), `warmup` untimed and `reps` timed times. `<adapters>`:
 * `merged` folds the adapter folders into the weights first, `unmerged` activates them all at once
 * (y = Wx + Σ adapter terms), `none` (or nothing) runs the base model. Prints one JSON line: the
 * prefill and decode seconds of each timed run, the generated ids of the last run, its peak RSS.
 */
import { readFile } from 'node:fs/promises';
import { openModel } from '../src/io/hf.js';
import { loadCausalLm } from '../src/nn/causalLm.js';
import { generate } from '../src/infer/generate.js';
import { activate, loadAdapter, mergeAdapters } from '../src/infer/adapters.js';
import { peakRssBytes } from './util.js';

async function main(): Promise<void> {
  const [dir, idsFile, batchS, promptS, newS, warmupS, repsS, mode = 'none', ...adapterDirs] = process.argv.slice(2);
  const [batch, promptLen, maxNewTokens, warmup, reps] = [batchS, promptS, newS, warmupS, repsS].map(Number);
  const folder = await openModel(dir);
  const model = await loadCausalLm(folder, 'f32').finally(() => folder.close());
  const adapters = await Promise.all(adapterDirs.map((d) => loadAdapter(model, d)));
  if (mode === 'merged') await mergeAdapters(model, adapters);
  else if (mode === 'unmerged') activate(model, adapters);
  else if (mode !== 'none') throw new Error(`unknown adapter mode ${mode} (merged, unmerged or none)`);
  const bytes = await readFile(idsFile);
  const all = new Int32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
  const prompts = Array.from({ length: batch }, (_, b) => all.slice(b * promptLen, (b + 1) * promptLen));
  const prefillSeconds: number[] = [];
  const decodeSeconds: number[] = [];
  let last: Awaited<ReturnType<typeof generate>> | undefined;
  for (let i = 0; i < warmup + reps; i++) {
    last = await generate(model, prompts, { maxNewTokens, stopIds: [] });
    if (i >= warmup) {
      prefillSeconds.push(last.prefillSeconds);
      decodeSeconds.push(last.decodeSeconds);
    }
  }
  if (last === undefined) throw new Error('no run (warmup + reps is 0)');
  console.log(
    JSON.stringify({
      prefillSeconds,
      decodeSeconds,
      // What the library counts, to check against the suite's batch·prompt and batch·(new − 1).
      prefillTokens: last.prefillTokens,
      decodeTokens: last.decodeTokens,
      tokens: last.outputs.map((o) => Array.from(o.generatedIds)),
      maxRssBytes: peakRssBytes(),
    }),
  );
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
