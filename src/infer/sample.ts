/**
 * Choosing the next token from a row of logits: greedy (the first largest logit), or a draw from
 * softmax(logits / temperature) restricted to the top k and then to the smallest set of tokens
 * whose probability reaches top p (nucleus sampling), as Hugging Face's generate applies them.
 */
import { LowrankError } from '../core/errors.js';
import type { Rng } from '../core/rng.js';

export interface SamplingOptions {
  /** 0 (the default): greedy decoding; above 0, sampling at this temperature. */
  readonly temperature?: number;
  /** Keep only the k most likely tokens (0 or absent: all). */
  readonly topK?: number;
  /** Keep the most likely tokens up to this total probability (1 or absent: all). */
  readonly topP?: number;
  /** Seed of the draws (sequence i of a batch draws from seed + i). Default 0. */
  readonly seed?: number;
}

/** Checks the options once (E_USAGE naming the bad one). */
export function checkSampling(o: SamplingOptions): void {
  const bad = (what: string): never => {
    throw new LowrankError('E_USAGE', what);
  };
  if (o.temperature !== undefined && !(o.temperature >= 0 && Number.isFinite(o.temperature))) bad(`temperature must be a finite number ≥ 0, got ${o.temperature}`);
  if (o.topK !== undefined && !(Number.isInteger(o.topK) && o.topK >= 0)) bad(`top-k must be an integer ≥ 0, got ${o.topK}`);
  if (o.topP !== undefined && !(o.topP > 0 && o.topP <= 1)) bad(`top-p must be in (0, 1], got ${o.topP}`);
}

/** The index of the first largest value. */
export function argmax(row: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < row.length; i++) if (row[i] > row[best]) best = i;
  return best;
}

/** The next token from one row of logits. */
export function sampleToken(row: ArrayLike<number>, o: SamplingOptions, rng: Rng): number {
  const temperature = o.temperature ?? 0;
  if (temperature === 0) return argmax(row);
  // Candidates by logit, largest first (stable: ties keep the lower id first).
  let ids = Array.from({ length: row.length }, (_, i) => i).sort((a, b) => row[b] - row[a] || a - b);
  if (o.topK !== undefined && o.topK > 0) ids = ids.slice(0, o.topK);
  const max = row[ids[0]];
  const w = ids.map((i) => Math.exp((row[i] - max) / temperature));
  let total = w.reduce((s, x) => s + x, 0);
  const topP = o.topP ?? 1;
  if (topP < 1) {
    let keep = 0;
    for (let acc = 0; keep < w.length && acc < topP * total; keep++) acc += w[keep];
    ids = ids.slice(0, Math.max(1, keep));
    w.length = ids.length;
    total = w.reduce((s, x) => s + x, 0);
  }
  let u = rng.uniform() * total;
  for (let i = 0; i < ids.length; i++) {
    u -= w[i];
    if (u < 0) return ids[i];
  }
  return ids[ids.length - 1];
}
