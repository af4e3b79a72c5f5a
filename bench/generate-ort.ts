/**
 * The onnxruntime-node peer of the generate suite, its own process: `node dist/bench/generate-ort.js
 * <peers dir> <model.onnx> <model dir> <ids file> <batch> <prompt len> <new tokens> <warmup> <reps>
 * <intra-op threads>` runs the same greedy loop as the PyTorch peer on the graph that
 * `torch.onnx.export` wrote from that PyTorch module (inputs `input_ids` [B, T] int64 and
 * `past_k_<l>`, `past_v_<l>` [B, kv heads, past, head dim]; outputs `logits` of the last position
 * [B, vocab] and `present_k_<l>`, `present_v_<l>`), with the default CPU execution provider, the
 * cache fed back as the next step's inputs — what transformers.js does. onnxruntime-node is not a
 * dependency of lowrank: the suite installs it into `<peers dir>` and this script requires it from
 * there. Prints one JSON line like the other peers.
 */
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { now, peakRssBytes } from './util.js';

/** The part of onnxruntime-node's API this script uses (its types are not installed with lowrank). */
interface OrtTensor {
  readonly dims: readonly number[];
  readonly data: Float32Array | BigInt64Array;
}
interface Ort {
  Tensor: new (type: 'float32' | 'int64', data: Float32Array | BigInt64Array, dims: readonly number[]) => OrtTensor;
  InferenceSession: {
    create(path: string, opts: Record<string, unknown>): Promise<{ run(feeds: Record<string, OrtTensor>): Promise<Record<string, OrtTensor>>; release(): Promise<void> }>;
  };
  env: { versions: Record<string, string> };
}

async function main(): Promise<void> {
  const [peers, onnxFile, dir, idsFile, batchS, promptS, newS, warmupS, repsS, threadsS] = process.argv.slice(2);
  const [B, T, maxNew, warmup, reps, threads] = [batchS, promptS, newS, warmupS, repsS, threadsS].map(Number);
  const ort = createRequire(join(peers, 'package.json'))('onnxruntime-node') as Ort;
  const cfg = JSON.parse(await readFile(join(dir, 'config.json'), 'utf8')) as Record<string, number | undefined>;
  const layers = cfg.num_hidden_layers as number;
  const heads = cfg.num_attention_heads as number;
  const kvHeads = cfg.num_key_value_heads ?? heads;
  const headDim = cfg.head_dim ?? (cfg.hidden_size as number) / heads;
  const session = await ort.InferenceSession.create(onnxFile, { intraOpNumThreads: threads, interOpNumThreads: 1, executionMode: 'sequential', graphOptimizationLevel: 'all' });
  const bytes = await readFile(idsFile);
  const prompt = new Int32Array(bytes.buffer, bytes.byteOffset, B * T);

  /** Greedy: the first index of each row's largest logit (as torch.argmax). */
  const argmax = (logits: OrtTensor): number[] => {
    const data = logits.data as Float32Array;
    const V = logits.dims[1];
    return Array.from({ length: B }, (_, b) => {
      let best = 0;
      for (let i = 1, o = b * V; i < V; i++) if (data[o + i] > data[o + best]) best = i;
      return best;
    });
  };
  const generateOnce = async (): Promise<{ prefill: number; decode: number; tokens: number[][] }> => {
    const tokens: number[][] = Array.from({ length: B }, () => []);
    let feeds: Record<string, OrtTensor> = { input_ids: new ort.Tensor('int64', BigInt64Array.from(prompt, (x) => BigInt(x)), [B, T]) };
    for (let l = 0; l < layers; l++) {
      for (const kv of 'kv') feeds[`past_${kv}_${l}`] = new ort.Tensor('float32', new Float32Array(0), [B, kvHeads, 0, headDim]);
    }
    const t0 = now();
    let t1 = t0;
    for (let step = 0; step < maxNew; step++) {
      const out = await session.run(feeds);
      const next = argmax(out.logits);
      next.forEach((id, b) => tokens[b].push(id));
      feeds = { input_ids: new ort.Tensor('int64', BigInt64Array.from(next, (x) => BigInt(x)), [B, 1]) };
      for (let l = 0; l < layers; l++) for (const kv of 'kv') feeds[`past_${kv}_${l}`] = out[`present_${kv}_${l}`];
      if (step === 0) t1 = now();
    }
    return { prefill: t1 - t0, decode: now() - t1, tokens };
  };
  const prefillSeconds: number[] = [];
  const decodeSeconds: number[] = [];
  let tokens: number[][] = [];
  for (let i = 0; i < warmup + reps; i++) {
    const r = await generateOnce();
    if (i >= warmup) {
      prefillSeconds.push(r.prefill);
      decodeSeconds.push(r.decode);
    }
    tokens = r.tokens;
  }
  await session.release();
  console.log(JSON.stringify({ prefillSeconds, decodeSeconds, tokens, version: ort.env.versions.node ?? ort.env.versions.common, maxRssBytes: peakRssBytes() }));
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
