/**
 * Training data: JSONL files of `{"text": ...}` documents or `{"prompt": ..., "completion": ...}`
 * pairs (the loss masked on the prompt), tokenized with an end-of-sequence token after each
 * example, packed into fixed-length sequences, shuffled from a seed.
 */
import { fs } from '../io/fs.js';
import { LowrankError, fromSystemError } from '../core/errors.js';
import { rng } from '../core/rng.js';
import { IGNORE } from '../nn/loss.js';
import type { TextTokenizer } from './tokenizer.js';

/** One tokenized example: ids, and the label of each position (IGNORE where the loss is masked). */
export interface Example {
  readonly ids: Int32Array;
  readonly labels: Int32Array;
}

/** A packed sequence: inputs [T] and the targets [T] they predict (the next token's label). */
export interface Sequence {
  readonly inputs: Int32Array;
  readonly targets: Int32Array;
}

/** The records of a JSONL file, each with its line number (E_FORMAT naming the line of a bad one). */
async function jsonlRecords(path: string): Promise<{ rec: Record<string, unknown>; bad: (why: string) => never }[]> {
  const text = new TextDecoder().decode(
    await fs().readFile(path).catch((e: unknown) => {
      throw fromSystemError(e, 'reading the data file', path);
    }),
  );
  const out: { rec: Record<string, unknown>; bad: (why: string) => never }[] = [];
  text.split('\n').forEach((line, i) => {
    if (line.trim() === '') return;
    const bad = (why: string): never => {
      throw new LowrankError('E_FORMAT', `line ${i + 1}: ${why}`, { file: path });
    };
    let rec: unknown;
    try {
      rec = JSON.parse(line);
    } catch {
      bad('not valid JSON');
    }
    if (typeof rec !== 'object' || rec === null || Array.isArray(rec)) bad('not a JSON object');
    out.push({ rec: rec as Record<string, unknown>, bad });
  });
  if (out.length === 0) throw new LowrankError('E_FORMAT', 'the data file has no records', { file: path });
  return out;
}

/** Reads and tokenizes a JSONL file (E_FORMAT naming the line of a bad record). */
export async function readJsonl(path: string, tok: TextTokenizer): Promise<Example[]> {
  const eos = tok.eosId === undefined ? [] : [tok.eosId];
  return (await jsonlRecords(path)).map(({ rec: r, bad }) => {
    if (typeof r.text === 'string') {
      const ids = Int32Array.from([...tok.encode(r.text), ...eos]);
      return { ids, labels: ids.slice() };
    }
    if (typeof r.prompt === 'string' && typeof r.completion === 'string') {
      const p = tok.encode(r.prompt);
      const c = Int32Array.from([...tok.encode(r.completion), ...eos]);
      const ids = new Int32Array(p.length + c.length);
      ids.set(p);
      ids.set(c, p.length);
      const labels = ids.slice();
      labels.fill(IGNORE, 0, p.length);
      return { ids, labels };
    }
    return bad('expected {"text": string} or {"prompt": string, "completion": string}');
  });
}

/** Prompts to generate from: a JSONL file of {"prompt": string} records (a "completion" is kept as the reference answer). */
export async function readPrompts(path: string): Promise<{ prompt: string; completion?: string }[]> {
  return (await jsonlRecords(path)).map(({ rec: r, bad }) => {
    const { prompt, completion } = r;
    if (typeof prompt !== 'string') return bad('expected {"prompt": string}');
    if (completion !== undefined && typeof completion !== 'string') return bad('"completion" must be a string');
    return { prompt, ...(completion !== undefined ? { completion } : {}) };
  });
}

/**
 * Concatenates the examples (in order) and cuts the stream into sequences of `seqLen` inputs, each
 * target being the label of the next position; a tail shorter than seqLen + 1 is dropped.
 */
export function pack(examples: readonly Example[], seqLen: number): Sequence[] {
  const total = examples.reduce((s, e) => s + e.ids.length, 0);
  const ids = new Int32Array(total);
  const labels = new Int32Array(total);
  let off = 0;
  for (const e of examples) {
    ids.set(e.ids, off);
    labels.set(e.labels, off);
    off += e.ids.length;
  }
  const out: Sequence[] = [];
  for (let s = 0; s + seqLen + 1 <= total; s += seqLen) out.push({ inputs: ids.slice(s, s + seqLen), targets: labels.slice(s + 1, s + seqLen + 1) });
  return out;
}

/** A seeded Fisher–Yates shuffle (a new array). */
export function shuffled<T>(items: readonly T[], seed: number): T[] {
  const out = [...items];
  const g = rng(seed);
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(g.uniform() * (i + 1));
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

/** Batch `index` (wrapping around the epoch) of `batch` sequences, flattened batch-major. */
export function batchAt(seqs: readonly Sequence[], batch: number, index: number): { inputs: Int32Array; targets: Int32Array } {
  const t = seqs[0].inputs.length;
  const inputs = new Int32Array(batch * t);
  const targets = new Int32Array(batch * t);
  for (let b = 0; b < batch; b++) {
    const s = seqs[(index * batch + b) % seqs.length];
    inputs.set(s.inputs, b * t);
    targets.set(s.targets, b * t);
  }
  return { inputs, targets };
}
