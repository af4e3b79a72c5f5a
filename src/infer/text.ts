/**
 * Generation from text: prompts encoded with the model's tokenizer, run in batches, the answers
 * decoded, cut at a stop text and streamed as they grow (what `lowrank generate` and the main job's
 * accuracy use).
 */
import type { FloatDType } from '../core/dtype.js';
import type { CausalLm } from '../nn/causalLm.js';
import type { TextTokenizer } from '../train/tokenizer.js';
import { generate, type Generation, type GenerateOptions } from './generate.js';

export interface TextOptions extends Omit<GenerateOptions, 'stop' | 'onToken'> {
  /** Ends an answer where this text appears (it is not part of the answer). */
  readonly stopText?: string;
  /** Prompts per batch (default 8). */
  readonly batch?: number;
  /** The answer's text as it grows: each call gives the new part of prompt `index` (across batches). */
  readonly onText?: (index: number, delta: string) => void;
}

export interface TextAnswer {
  readonly prompt: string;
  /** The generated text, without the stop token or the stop text. */
  readonly text: string;
  readonly generation: Generation;
}

/** The text of generated ids: stop tokens dropped from the end, cut before the stop text. */
function answerText(tok: TextTokenizer, ids: Int32Array, stopIds: ReadonlySet<number>, stopText: string | undefined): { text: string; stopped: boolean } {
  let end = ids.length;
  while (end > 0 && stopIds.has(ids[end - 1])) end--;
  const text = tok.decode(ids.subarray(0, end));
  const at = stopText === undefined || stopText === '' ? -1 : text.indexOf(stopText);
  return at < 0 ? { text, stopped: false } : { text: text.slice(0, at), stopped: true };
}

/** Greedy (or sampled) answers to text prompts. */
export async function generateText<F extends FloatDType>(m: CausalLm<F>, tok: TextTokenizer, prompts: readonly string[], opts: TextOptions = {}): Promise<TextAnswer[]> {
  const stopIds = new Set(opts.stopIds ?? []);
  const batch = opts.batch ?? 8;
  const stopText = opts.stopText === '' ? undefined : opts.stopText;
  const answers: TextAnswer[] = [];
  for (let from = 0; from < prompts.length; from += batch) {
    const part = prompts.slice(from, from + batch);
    // Each answer's text so far, decoded once per token when something follows it (the stop text, the stream).
    const latest = part.map(() => ({ text: '', stopped: false }));
    const follow = opts.onText !== undefined || stopText !== undefined;
    const shown = part.map(() => 0);
    // Text is streamed up to what can no longer change: a stop text may still complete at the end,
    // and a byte-level token may end inside a character (decoded as U+FFFD until the rest comes).
    const hold = Math.max(0, (stopText ?? '').length - 1);
    const stream = (b: number, final: boolean): void => {
      if (opts.onText === undefined) return;
      const { text, stopped } = latest[b];
      let upto = final || stopped ? text.length : Math.max(0, text.length - hold);
      if (!final && !stopped) while (upto > 0 && text[upto - 1] === '\uFFFD') upto--;
      if (upto > shown[b]) {
        opts.onText(from + b, text.slice(shown[b], upto));
        shown[b] = upto;
      }
    };
    const r = await generate(m, part.map((p) => tok.encode(p)), {
      ...opts,
      stop: stopText === undefined ? undefined : (_generated, b) => latest[b].stopped,
      onToken: follow
        ? (b, _id, generated) => {
            latest[b] = answerText(tok, generated, stopIds, stopText);
            stream(b, false);
          }
        : undefined,
    });
    for (const [b, g] of r.outputs.entries()) {
      if (!follow) latest[b] = answerText(tok, g.generatedIds, stopIds, stopText); // else already decoded at its last token
      stream(b, true);
      answers.push({ prompt: part[b], text: latest[b].text, generation: g });
    }
  }
  return answers;
}

/** Exact match: greedy answers (up to the stop tokens) that equal the expected completion. */
export async function exactMatch<F extends FloatDType>(m: CausalLm<F>, tok: TextTokenizer, pairs: readonly { prompt: string; completion: string }[], opts: TextOptions = {}): Promise<{ correct: number; total: number; answers: string[] }> {
  const longest = Math.max(0, ...pairs.map((p) => tok.encode(p.completion).length));
  const answers = (await generateText(m, tok, pairs.map((p) => p.prompt), { maxNewTokens: longest + 2, batch: 64, ...opts })).map((a) => a.text);
  return { correct: answers.filter((a, i) => a === pairs[i].completion).length, total: pairs.length, answers };
}
