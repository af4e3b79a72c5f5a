/**
 * Inference: text generation with a KV cache over a Llama-family or GPT-2 model folder, adapters
 * applied unmerged, hot-swapped and merged on demand.
 *
 * @example
 * const folder = await io.openModel('path/to/model');
 * const model = await infer.loadCausalLm(folder, 'f32');
 * const tok = await infer.loadTokenizer('path/to/model');
 * infer.activate(model, [await infer.loadAdapter(model, 'path/to/adapter')]);
 * const [answer] = await infer.generateText(model, tok, ['12 plus 7 is'], { maxNewTokens: 8, stopIds: [tok.eosId ?? 0] });
 */
export { generate, type Finish, type Generation, type GenerateOptions, type GenerateResult } from './generate.js';
export { argmax, sampleToken, type SamplingOptions } from './sample.js';
export { exactMatch, generateText, type TextAnswer, type TextOptions } from './text.js';
export { activate, loadAdapter, mergeAdapters, type LoadedAdapter } from './adapters.js';
export { loadCausalLm, type CausalLm, type Family } from '../nn/causalLm.js';
export type { KvCache } from '../nn/kvcache.js';
export { loadTokenizer, type TextTokenizer } from '../train/tokenizer.js';
