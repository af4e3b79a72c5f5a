/**
 * How a fine-tune changed a matrix: the spectrum of the update ΔW = W1 − W0, the principal angles
 * between the top singular subspaces of W0 and W1, and intruder dimensions.
 *
 * Intruder dimensions (Shuttleworth, Andreas, Torralba and Sharma, "LoRA vs Full Fine-tuning: An
 * Illusion of Equivalence", 2024, Algorithm 1): a top-k left singular vector of the fine-tuned W1
 * whose largest |cosine similarity| with every left singular vector of W0 is below a threshold ε.
 * The method catalogue gives no defaults, so k = 10 and ε = 0.5. "Every left singular vector of
 * W0" is the thin basis, the min(m, n) vectors that carry a singular value: the completion of a
 * full U for a tall matrix is an arbitrary basis of the complement, so the largest cosine against
 * it would depend on that choice. Singular vectors are compared as stored: for a weight stored
 * [in, out] (GPT-2's Conv1D) the left vectors live in the input space.
 *
 * An adapter's update s·B·A has rank ≤ r; its singular values come from the small factors: with
 * B = Q_B R_B and Aᵀ = Q_A R_A (thin QR), B·A = Q_B (R_B R_Aᵀ) Q_Aᵀ, so σ(B·A) = σ(R_B R_Aᵀ), an
 * r×r SVD (computed in float64), times |s|; the other singular values are exactly 0.
 */
import { transpose } from '../linalg/lowrank.js';
import { applyDoraMagnitude } from '../methods/dora.js';
import { LowrankError } from '../core/errors.js';
import { tensor, toFloat, type Tensor } from '../core/tensor.js';
import type { FloatDType } from '../core/dtype.js';
import { matmul, principalAngles, qr, rsvd, svd, svdvals } from '../linalg/index.js';
import { asMatrix, fastRank, spectrumMetrics, spectrumOptions, type MatrixOptions, type SpectrumMetrics } from './spectrum.js';

/** Defaults of the comparison. */
export const COMPARE_DEFAULTS = { angleK: 16, intruderK: 10, intruderThreshold: 0.5 } as const;

/** Options of {@link compareMatrices} and {@link compareAdapter}. */
export interface CompareOptions extends MatrixOptions {
  /** Dimension of the top left singular subspaces whose principal angles are reported (default 16). */
  angleK?: number;
  /** How many top singular vectors of the tuned matrix are checked for intruders (default 10). */
  intruderK?: number;
  /** A vector is an intruder when its largest |cosine| with the base's singular vectors is below this (default 0.5). */
  intruderThreshold?: number;
}

/** The intruder dimensions of a tuned matrix. */
export interface Intruders {
  /** How many top singular vectors of the tuned matrix were checked. */
  readonly k: number;
  readonly threshold: number;
  /** How many left singular vectors of the base they were compared with (min(m, n); the top k in fast mode). */
  readonly basis: number;
  readonly count: number;
  /** 0-based ranks (in the tuned matrix's singular order) of the intruders. */
  readonly indices: readonly number[];
  /** For each checked vector, its largest |cosine| with a base singular vector. */
  readonly maxCosines: readonly number[];
}

/** Base vs tuned for one matrix. */
export interface Comparison {
  /** The spectrum of W0. */
  readonly base: SpectrumMetrics;
  /** The spectrum of W1. */
  readonly tuned: SpectrumMetrics;
  /** The spectrum of ΔW = W1 − W0 (numericalRank is the update's rank). */
  readonly update: SpectrumMetrics;
  /** ‖ΔW‖_F / ‖W0‖_F (null when W0 is zero). */
  readonly relativeUpdate: number | null;
  /** True when W1 equals W0 element for element. */
  readonly identical: boolean;
  /** How many principal angles: the dimension of the subspaces compared. */
  readonly angleK: number;
  /** Principal angles (radians, ascending) between the top-angleK left singular subspaces of W0 and W1. */
  readonly principalAngles: readonly number[];
  readonly intruders: Intruders;
  /** Parts that are estimates (fast mode): 'update', 'principalAngles', 'intruders'. */
  readonly approximate: readonly string[];
  readonly notes: readonly string[];
}

interface Decomposed {
  readonly metrics: SpectrumMetrics;
  /** Left singular vectors as columns (m × c): all K, or the top k in fast mode. */
  readonly u: Tensor<FloatDType>;
  readonly exact: boolean;
}

async function decompose(a: Tensor<FloatDType>, opts: CompareOptions): Promise<Decomposed> {
  const shape = a.shape as [number, number];
  const K = Math.min(...shape);
  const k = opts.fast === true ? fastRank(shape, opts) : K;
  const exact = k === K;
  const { u, s } = exact ? await svd(a) : await rsvd(a, k, { niter: opts.niter ?? 2, seed: opts.seed ?? 0 });
  return { metrics: spectrumMetrics(s.data, shape, spectrumOptions(a, exact, opts)), u, exact };
}

function columns<F extends FloatDType>(t: Tensor<F>, k: number): Tensor<F> {
  const [m, c] = t.shape;
  if (k === c) return t;
  const out = tensor(t.dtype, [m, k]);
  for (let i = 0; i < m; i++) out.data.set(t.data.subarray(i * c, i * c + k), i * k);
  return out;
}

function positiveInt(name: string, v: number): number {
  if (!Number.isInteger(v) || v < 1) throw new LowrankError('E_USAGE', `${name} must be a positive integer, got ${v}`);
  return v;
}

/** Principal angles and intruders between two decompositions, plus the pieces every comparison shares. */
async function relate(d0: Decomposed, d1: Decomposed, update: SpectrumMetrics, identical: boolean, opts: CompareOptions, notes: string[], updateApprox: boolean): Promise<Comparison> {
  const angleK = Math.min(positiveInt('angleK', opts.angleK ?? COMPARE_DEFAULTS.angleK), d0.u.shape[1], d1.u.shape[1]);
  const ik = Math.min(positiveInt('intruderK', opts.intruderK ?? COMPARE_DEFAULTS.intruderK), d1.u.shape[1]);
  const threshold = opts.intruderThreshold ?? COMPARE_DEFAULTS.intruderThreshold;
  if (!Number.isFinite(threshold) || threshold < 0 || threshold > 1) throw new LowrankError('E_USAGE', `intruderThreshold must be in [0, 1], got ${threshold}`);
  let angles: number[];
  let maxCos: number[];
  if (identical) {
    angles = new Array<number>(angleK).fill(0);
    maxCos = new Array<number>(ik).fill(1);
  } else {
    angles = Array.from((await principalAngles(columns(d0.u, angleK), columns(d1.u, angleK))).data);
    // |cos| between every base vector (rows) and each of the top ik tuned vectors (columns).
    const c = await matmul(d0.u, columns(d1.u, ik), { transA: true });
    maxCos = new Array<number>(ik).fill(0);
    const rows = c.shape[0];
    for (let i = 0; i < rows; i++) for (let j = 0; j < ik; j++) maxCos[j] = Math.max(maxCos[j], Math.abs(c.data[i * ik + j]));
    maxCos = maxCos.map((v) => Math.min(1, v));
  }
  const indices = maxCos.flatMap((v, j) => (v < threshold ? [j] : []));
  const approximate: string[] = [];
  if (updateApprox) approximate.push('update');
  if (!d0.exact || !d1.exact) {
    approximate.push('principalAngles', 'intruders');
    notes.push(`fast: singular vectors by randomized SVD; intruders are checked against the top ${d0.u.shape[1]} base vectors only, so the count can only be too high`);
  }
  const base = d0.metrics;
  return {
    base,
    tuned: d1.metrics,
    update,
    relativeUpdate: base.frobenius > 0 ? update.frobenius / base.frobenius : null,
    identical,
    angleK,
    principalAngles: angles,
    intruders: { k: ik, threshold, basis: d0.u.shape[1], count: indices.length, indices, maxCosines: maxCos },
    approximate,
    notes,
  };
}

function sameShape(routine: string, a: readonly number[], b: readonly number[]): void {
  if (a.length !== b.length || a.some((d, i) => d !== b[i])) throw new LowrankError('E_SHAPE', `${routine}: shapes [${a.join(', ')}] and [${b.join(', ')}] differ`);
}

function matched(w0: Tensor, w1: Tensor): [Tensor<FloatDType>, Tensor<FloatDType>] {
  let a0 = asMatrix(w0);
  let a1 = asMatrix(w1);
  if (a0.dtype !== a1.dtype) [a0, a1] = [toFloat(a0, 'f64'), toFloat(a1, 'f64')];
  return [a0, a1];
}

/**
 * Compares a base matrix W0 with a tuned W1 of the same shape (tensors of more dimensions are
 * flattened to first × rest): both spectra, the spectrum of ΔW = W1 − W0, principal angles between
 * their top left singular subspaces, and intruder dimensions of W1.
 *
 * @example
 * const c = await compareMatrices(base, tuned); // c.update.numericalRank, c.intruders.count
 */
export async function compareMatrices(w0: Tensor, w1: Tensor, opts: CompareOptions = {}): Promise<Comparison> {
  sameShape('compareMatrices', w0.shape, w1.shape);
  const [a0, a1] = matched(w0, w1);
  const shape = a0.shape as [number, number];
  const delta = tensor(a0.dtype, shape);
  let identical = true;
  for (let i = 0; i < delta.data.length; i++) {
    const d = a1.data[i] - a0.data[i];
    delta.data[i] = d;
    if (d !== 0) identical = false;
  }
  const d0 = await decompose(a0, opts);
  const d1 = identical ? d0 : await decompose(a1, opts);
  const notes: string[] = [];
  let update: SpectrumMetrics;
  let approx = false;
  if (identical) {
    update = spectrumMetrics([], shape, { ...spectrumOptions(delta, true, opts) });
    notes.push('identical: the tuned matrix equals the base');
  } else {
    const K = Math.min(...shape);
    const k = opts.fast === true ? fastRank(shape, opts) : K;
    if (k === K) update = spectrumMetrics((await svdvals(delta)).data, shape, spectrumOptions(delta, true, opts));
    else {
      update = spectrumMetrics((await rsvd(delta, k, { niter: opts.niter ?? 2, seed: opts.seed ?? 0 })).s.data, shape, spectrumOptions(delta, false, opts));
      approx = true;
    }
  }
  return relate(d0, d1, update, identical, opts, notes, approx);
}

/**
 * The singular values (descending) of the product L·R (L m×r, R r×n) from its factors: thin QR of L
 * and of Rᵀ, then the singular values of the small R_L·R_Rᵀ, in float64.
 *
 * @example
 * const s = await lowRankSingularValues(loraB, loraA); // σ(B·A), r of them
 */
export async function lowRankSingularValues(l: Tensor, r: Tensor): Promise<Float64Array> {
  const L = toFloat(asMatrix(l), 'f64');
  const R = toFloat(asMatrix(r), 'f64');
  if (L.shape[1] !== R.shape[0]) throw new LowrankError('E_SHAPE', `lowRankSingularValues: [${L.shape.join(', ')}] · [${R.shape.join(', ')}] do not chain`);
  const rl = (await qr(L)).r; // min(m, r) × r
  const rr = (await qr(transpose(R))).r; // min(n, r) × r
  const core = await matmul(rl, rr, { transB: true });
  return (await svdvals(core)).data;
}

/** One LoRA module's factors, as PEFT stores them. */
export interface AdapterFactors {
  /** lora_A [r, in] (or [r, in, kh, kw] for a convolution), or lora_embedding_A [r, vocab]. */
  readonly A: Tensor;
  /** lora_B [out, r] (or [out, r, 1, 1]), or lora_embedding_B [dim, r]. */
  readonly B: Tensor;
  /** alpha / r, or alpha / √r with rsLoRA. */
  readonly scaling: number;
  /** 'embedding': the update is (B·A)ᵀ, matching the [vocab, dim] embedding weight. */
  readonly kind?: 'linear' | 'embedding';
  /** The base weight is stored [in, out] (PEFT's fan_in_fan_out, GPT-2's Conv1D): the update is (B·A)ᵀ. */
  readonly fanInFanOut?: boolean;
  /** DoRA's magnitude vector [out] (linear layers only). */
  readonly magnitude?: Tensor;
}

/**
 * Compares a base matrix W0 with W0 + s·B·A (PEFT's merge of a LoRA module; with DoRA's magnitude
 * m, each output's weights are rescaled to m_o / ‖(W0 + s·B·A)_o‖). The update spectrum of a plain
 * LoRA comes from the factors (see the module notes); with DoRA the update is no longer low-rank and
 * its spectrum is computed from the dense difference.
 *
 * @example
 * const c = await compareAdapter(w0, { A, B, scaling: module.scaling });
 */
export async function compareAdapter(w0: Tensor, f: AdapterFactors, opts: CompareOptions = {}): Promise<Comparison> {
  const a0 = asMatrix(w0);
  const shape = a0.shape as [number, number];
  const A = toFloat(asMatrix(f.A), 'f64');
  const B = toFloat(asMatrix(f.B), 'f64');
  if (!Number.isFinite(f.scaling)) throw new LowrankError('E_USAGE', `compareAdapter: scaling must be finite, got ${f.scaling}`);
  const transposed = (f.kind ?? 'linear') === 'embedding' || f.fanInFanOut === true;
  const [L, R] = transposed ? [transpose(A), transpose(B)] : [B, A];
  if (L.shape[0] !== shape[0] || R.shape[1] !== shape[1] || L.shape[1] !== R.shape[0]) {
    const what = transposed ? '(B·A)ᵀ' : 'B·A';
    throw new LowrankError('E_SHAPE', `compareAdapter: ${what} is [${L.shape[0]}, ${R.shape[1]}] (A [${f.A.shape.join(', ')}], B [${f.B.shape.join(', ')}]), the weight is [${shape.join(', ')}]`);
  }
  const product = await matmul(L, R); // float64
  const notes: string[] = [];
  const w1 = tensor(a0.dtype, shape);
  for (let i = 0; i < w1.data.length; i++) w1.data[i] = a0.data[i] + f.scaling * product.data[i];
  let update: SpectrumMetrics;
  if (f.magnitude !== undefined) {
    if ((f.kind ?? 'linear') === 'embedding') throw new LowrankError('E_UNSUPPORTED', 'compareAdapter: DoRA on an embedding is not supported');
    applyDoraMagnitude(w1, toFloat(f.magnitude, 'f64').data, f.fanInFanOut === true);
    const delta = tensor(a0.dtype, shape);
    for (let i = 0; i < delta.data.length; i++) delta.data[i] = w1.data[i] - a0.data[i];
    update = spectrumMetrics((await svdvals(delta)).data, shape, spectrumOptions(delta, true, opts));
    notes.push('DoRA: the magnitude vector is applied; the update spectrum is that of the dense difference');
  } else {
    const s = await lowRankSingularValues(L, R);
    update = spectrumMetrics(s.map((v) => v * Math.abs(f.scaling)), shape, { rest: 'zero', eps: spectrumOptions(a0, true, opts).eps, minEvals: opts.minEvals, evalsThresh: opts.evalsThresh });
    notes.push(`update spectrum from the rank-${L.shape[1]} factors (QR of each, then an SVD of the ${L.shape[1]}×${L.shape[1]} core)`);
  }
  let identical = true;
  for (let i = 0; i < w1.data.length && identical; i++) if (w1.data[i] !== a0.data[i]) identical = false;
  const d0 = await decompose(a0, opts);
  const d1 = identical ? d0 : await decompose(w1, opts);
  if (identical) notes.push('identical: the merged matrix equals the base (a zero update, e.g. lora_B still at its zero init)');
  return relate(d0, d1, update, identical, opts, notes, false);
}

