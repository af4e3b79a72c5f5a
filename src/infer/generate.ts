/**
 * Text generation with a KV cache: the prompts of a batch are left-padded to one length and run
 * through the model once (prefill), then each step feeds every sequence's last token and reads the
 * next from the logits (greedy, or sampled: sample.ts). Sequences that stop (a stop token, the
 * `stop` test) idle on padding until the batch ends; the adapters on the model apply unmerged.
 */
import { LowrankError } from '../core/errors.js';
import { rng as makeRng } from '../core/rng.js';
import type { FloatDType } from '../core/dtype.js';
import type { CausalLm } from '../nn/causalLm.js';
import type { KvCache } from '../nn/kvcache.js';
import { backend } from '../backend/index.js';
import { checkSampling, sampleToken, type SamplingOptions } from './sample.js';

export interface GenerateOptions extends SamplingOptions {
  /** New tokens per prompt at most (default 64; capped by the model's context). */
  readonly maxNewTokens?: number;
  /** Token ids that end a sequence (kept as its last generated id, as Hugging Face does). */
  readonly stopIds?: readonly number[];
  /** Ends a sequence when this holds of its generated ids so far (e.g. a stop text); called after `onToken`. */
  readonly stop?: (generated: Int32Array, sequence: number) => boolean;
  /** What an empty prompt starts from (the model's BOS token); without it an empty prompt is an error. */
  readonly bosId?: number;
  /** Called with each new token as it is chosen (streaming). */
  readonly onToken?: (sequence: number, id: number, generated: Int32Array) => void;
  /** Stops generation between steps: every sequence ends as 'aborted' with what it has. */
  readonly signal?: AbortSignal;
}

/**
 * Lets the event loop run (signals, timers, I/O) between steps: small kernels settle their promises
 * at once, so a loop of them would otherwise run as one chain of microtasks that Ctrl-C cannot stop.
 */
const yieldToEventLoop = (): Promise<void> => new Promise((resolve) => (typeof setImmediate === 'function' ? setImmediate(resolve) : setTimeout(resolve, 0)));

/** Why a sequence ended. */
export type Finish = 'stop' | 'length' | 'aborted';

export interface Generation {
  readonly promptIds: Int32Array;
  readonly generatedIds: Int32Array;
  readonly finish: Finish;
  /** From the start of the call to this sequence's last token. */
  readonly seconds: number;
}

export interface GenerateResult {
  readonly outputs: Generation[];
  /** The prompts' forward pass (filling the cache). */
  readonly prefillSeconds: number;
  /** Every step after it. */
  readonly decodeSeconds: number;
  /** Prompt tokens run in the prefill (padding included) and tokens fed in the decode steps. */
  readonly prefillTokens: number;
  readonly decodeTokens: number;
}

/**
 * Continues each prompt (token ids) with up to `maxNewTokens` tokens.
 *
 * @example
 * const m = await loadCausalLm(await openModel(dir), 'f32');
 * const { outputs } = await generate(m, [tok.encode('12 plus 7 is')], { maxNewTokens: 8, stopIds: [tok.eosId] });
 */
export async function generate<F extends FloatDType>(m: CausalLm<F>, prompts: Int32Array | readonly Int32Array[], opts: GenerateOptions = {}): Promise<GenerateResult> {
  checkSampling(opts);
  const given = prompts instanceof Int32Array ? [prompts] : prompts;
  const list = given.map((p, i) => {
    if (p.length > 0) return p;
    if (opts.bosId === undefined) throw new LowrankError('E_USAGE', `prompt ${i + 1} is empty and the model names no BOS token to start from`);
    return Int32Array.of(opts.bosId);
  });
  const maxNew = opts.maxNewTokens ?? 64;
  if (!(Number.isInteger(maxNew) && maxNew >= 0)) throw new LowrankError('E_USAGE', `max new tokens must be an integer ≥ 0, got ${maxNew}`);
  const batch = list.length;
  const t0 = performance.now();
  const seconds = (): number => (performance.now() - t0) / 1000;
  if (batch === 0) return { outputs: [], prefillSeconds: 0, decodeSeconds: 0, prefillTokens: 0, decodeTokens: 0 };
  const width = Math.max(...list.map((p) => p.length));
  for (const [i, p] of list.entries()) if (p.length > m.context) throw new LowrankError('E_USAGE', `prompt ${i + 1} has ${p.length} tokens; the model takes at most ${m.context}`);
  const steps = Math.min(maxNew, m.context - width);
  if (steps === 0) return { outputs: given.map((promptIds) => ({ promptIds, generatedIds: new Int32Array(0), finish: 'length', seconds: 0 })), prefillSeconds: 0, decodeSeconds: 0, prefillTokens: 0, decodeTokens: 0 };

  // Left padding: every prompt ends at row width − 1; padding rows repeat the prompt's first token (masked anyway).
  const start = Int32Array.from(list, (p) => width - p.length);
  const ids = new Int32Array(batch * width);
  for (const [b, p] of list.entries()) {
    ids.fill(p[0], b * width, b * width + start[b]);
    ids.set(p, b * width + start[b]);
  }
  // Every step allocates the same sizes again: keep freed memory for reuse (no page faults), as training does.
  const release = backend().retainFreedMemory();
  try {
    const { ended, ...times } = await run(m, m.kvCache(batch, width + steps, start), ids, steps, opts, seconds);
    return { ...times, outputs: ended.map((e, b) => ({ promptIds: given[b], ...e })), prefillTokens: batch * width };
  } finally {
    release();
  }
}

/** Prefill, then one step per new token until every sequence has finished. */
async function run<F extends FloatDType>(
  m: CausalLm<F>,
  cache: KvCache<F>,
  ids: Int32Array,
  steps: number,
  opts: GenerateOptions,
  seconds: () => number,
): Promise<{ ended: Omit<Generation, 'promptIds'>[]; prefillSeconds: number; decodeSeconds: number; decodeTokens: number }> {
  const batch = cache.batch;
  const stopIds = new Set(opts.stopIds ?? []);
  const rngs = Array.from({ length: batch }, (_, b) => makeRng((opts.seed ?? 0) + b));
  const out = Array.from({ length: batch }, () => new Int32Array(steps));
  const count = new Int32Array(batch);
  const finish: (Finish | undefined)[] = Array.from({ length: batch }, () => undefined);
  const ended = new Float64Array(batch);
  let logits = await m.step(cache, ids);
  const prefillSeconds = seconds();
  let decodeTokens = 0;
  const next = new Int32Array(batch);
  for (;;) {
    const vocab = logits.shape[1];
    for (let b = 0; b < batch; b++) {
      if (finish[b] !== undefined) continue;
      const id = sampleToken(logits.data.subarray(b * vocab, (b + 1) * vocab), opts, rngs[b]);
      out[b][count[b]++] = id;
      next[b] = id;
      const generated = out[b].subarray(0, count[b]);
      opts.onToken?.(b, id, generated);
      if (stopIds.has(id) || opts.stop?.(generated, b) === true) finish[b] = 'stop';
      else if (count[b] === steps) finish[b] = 'length';
      if (finish[b] !== undefined) ended[b] = seconds();
    }
    if (finish.every((f) => f !== undefined)) break;
    await yieldToEventLoop();
    if (opts.signal?.aborted === true) {
      for (let b = 0; b < batch; b++) if (finish[b] === undefined) [finish[b], ended[b]] = ['aborted', seconds()];
      break;
    }
    logits = await m.step(cache, next);
    decodeTokens += batch;
  }
  return {
    ended: out.map((generated, b) => ({ generatedIds: generated.slice(0, count[b]), finish: finish[b] ?? 'length', seconds: ended[b] })),
    prefillSeconds,
    decodeSeconds: seconds() - prefillSeconds,
    decodeTokens,
  };
}
