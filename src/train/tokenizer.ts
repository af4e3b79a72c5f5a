/**
 * A model folder's tokenizer: tokenizer.json (and tokenizer_config.json when present) through
 * @huggingface/tokenizers, the pure-JS implementation of Hugging Face's tokenizers.
 */
import { fs } from '../io/fs.js';
import { join } from '../io/paths.js';
import { Tokenizer as HfTokenizer } from '@huggingface/tokenizers';
import { LowrankError } from '../core/errors.js';
import { readJsonObject } from '../io/files.js';

/** Text ↔ token ids. */
export interface TextTokenizer {
  /** Token ids of `text`, without special tokens. */
  encode(text: string): Int32Array;
  decode(ids: ArrayLike<number>): string;
  /** The end-of-sequence id (tokenizer_config.json's eos_token), appended after each document. */
  readonly eosId: number | undefined;
  readonly vocabSize: number;
}

/**
 * Loads `<dir>/tokenizer.json` (E_NOT_FOUND without one).
 *
 * @example
 * const tok = await loadTokenizer('path/to/model');
 * const ids = tok.encode('Hello world');
 */
export async function loadTokenizer(dir: string): Promise<TextTokenizer> {
  const file = join(dir, 'tokenizer.json');
  if (!(await fs().stat(file).then((s) => s.isFile(), () => false))) throw new LowrankError('E_NOT_FOUND', 'the model folder has no tokenizer.json', { file: dir });
  const json = await readJsonObject(file);
  const cfgFile = join(dir, 'tokenizer_config.json');
  const config = (await fs().stat(cfgFile).then((s) => s.isFile(), () => false)) ? await readJsonObject(cfgFile) : {};
  let tok: HfTokenizer;
  try {
    tok = new HfTokenizer(json, config);
  } catch (e) {
    throw new LowrankError('E_FORMAT', `tokenizer.json could not be loaded: ${e instanceof Error ? e.message : String(e)}`, { file });
  }
  const vocab = (json.model as { vocab?: Record<string, number> } | undefined)?.vocab ?? {};
  const added = Array.isArray(json.added_tokens) ? (json.added_tokens as { id: number; content: string }[]) : [];
  const idOf = (token: unknown): number | undefined => {
    const text = typeof token === 'string' ? token : typeof token === 'object' && token !== null ? (token as { content?: string }).content : undefined;
    if (text === undefined) return undefined;
    return added.find((a) => a.content === text)?.id ?? vocab[text];
  };
  const vocabSize = Math.max(Object.keys(vocab).length, ...added.map((a) => a.id + 1), ...Object.values(vocab).map((v) => v + 1));
  return {
    encode: (text) => Int32Array.from(tok.encode(text, { add_special_tokens: false }).ids),
    decode: (ids) => (ids.length === 0 ? '' : tok.decode(Array.from(ids), { skip_special_tokens: false })),
    eosId: idOf(config.eos_token),
    vocabSize,
  };
}
