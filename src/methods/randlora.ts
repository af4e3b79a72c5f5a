/**
 * RandLoRA (Albert et al. 2025, "RandLoRA: full-rank parameter-efficient fine-tuning of large
 * models"): a full-rank update as a sum of n = ⌈min(in, out)/r⌉ frozen random rank-r products, each
 * scaled by two small trained diagonals, ΔW = s·Σ_b B_b·diag(λ_b)·A_b·diag(γ_b) (A_b's rows are the
 * shared A's, γ_b the b-th row of γ; the paper's idea, PEFT's exact pairing below).
 * As PEFT's tuner (peft_type RANDLORA): one shared A [r, 1, mg] and B [Mg, ng, r] for all the
 * targeted layers, sized by the largest dims (mg, Mg: min and max of (out_max, in_max)); a layer of
 * m = min(out, in), M = max(out, in) slices A_s = A[:, 0, :m] and B_s = B[:M, :n, :]. With λ [r, n]
 * and γ [n, m] trained per layer, s = randlora_alpha/r:
 *   Â [r·n, m]:  Â[k·n + b, j] = λ[k, b]·A_s[k, j]·γ[b, j]
 *   B̂ [M, n·r]:  B̂[p, b·r + k] = B_s[p, b, k]
 *   ΔW = s·B̂·Â if in ≤ out, else s·(B̂·Â)ᵀ
 * Term j of B̂·Â pairs Â's row j (λ[j div n, j mod n], A row j div n, γ row j mod n) with B̂'s column j
 * (B_s[:, j div r, j mod r]): the two flattenings differ, and PEFT's pairing is kept as it is.
 * As a LoRA pair (A' [n·r, in], B' [out, n·r]) for composedTerm:
 *   in ≤ out: A' = Â, B' = B̂;   in > out: A' = B̂ᵀ, B' = Âᵀ
 * and back from dÂ (dA' or dB'ᵀ):
 *   dλ[k, b] = Σ_j dÂ[k·n + b, j]·A_s[k, j]·γ[b, j];   dγ[b, j] = Σ_k dÂ[k·n + b, j]·λ[k, b]·A_s[k, j]
 * Init (PEFT's init_weights=true): λ = 0, γ = 1/max(n, m), so the layer starts unchanged;
 * init_weights=false: λ ~ N(0, 1) (seeded) and γ = 1/max(out, in), PEFT's values before its reset.
 * Trainable parameters per layer: r·n + n·min(out, in). The bases are frozen and shared: none per layer.
 * Bases as PEFT draws them, from lowrank's seeded generator (projection_prng_key): dense A from
 * U(±1/√mg), B from ng pieces [Mg, 1, r] of U(±1/√r), each divided by its unbiased std; sparse:
 * U[0, 1) draws made ternary (< 1/(2s) → −1, > 1 − 1/(2s) → +1, else 0) with s = 3, or s = √mg for
 * very_sparse (which wins over sparse), then divided by the std.
 * †The values cannot be torch's (another generator, computed in the layer's dtype rather than
 * bf16), so the adapter always saves them under PEFT's base_model.randlora_A / base_model.randlora_B
 * and PEFT loads them over its own draw: save_projection=false is refused. PEFT also saves a full
 * copy of both under each layer's key; the layers' buffers are the same BufferDict as the model's,
 * so loading the two model-level keys fills every layer and the copies are not written (PEFT's
 * from_pretrained lists them in its "missing adapter keys" warning). randlora_dropout is 0 (the
 * engine trains without dropout).
 */
import { LowrankError } from '../core/errors.js';
import { tensor, type Tensor } from '../core/tensor.js';
import type { FloatDType } from '../core/dtype.js';
import { rng } from '../core/rng.js';
import { composedTerm, pairDelta, type Pair } from './composed.js';
import { configOf, defineOptions, type ConfigOf } from './options.js';
import { needShared, sharedState } from './shared.js';
import type { AdapterMethod, InitOptions, Shared } from './types.js';

const OPTIONS = defineOptions({
  randlora_alpha: { kind: 'number', default: 640, above: 0, help: 'the scaling is randlora_alpha/r (PEFT suggests 20·r)' },
  projection_prng_key: { kind: 'int', default: 0, min: 0, max: 0xffffffff, help: 'seed of the shared random bases' },
  save_projection: { kind: 'bool', default: true, help: 'save the bases (must be true: PEFT cannot regenerate them)' },
  sparse: { kind: 'bool', default: false, help: 'ternary bases, P(±1) = 1/6 each' },
  very_sparse: { kind: 'bool', default: false, help: 'ternary bases, P(±1) = 1/(2·√min dim) each (wins over sparse)' },
  init_weights: { kind: 'bool', default: true, help: 'λ = 0 (start unchanged); false: λ ~ N(0, 1)' },
});
type Config = ConfigOf<typeof OPTIONS>;

function config(opts: InitOptions): Config {
  const c = configOf('randlora', OPTIONS, opts.options);
  if (!c.save_projection) {
    throw new LowrankError('E_UNSUPPORTED', 'randlora option save_projection=false is not supported: lowrank draws the bases with its own generator, which PEFT cannot regenerate, so they are always saved');
  }
  return c;
}

function rankOf(opts: InitOptions): number {
  const r = opts.rank;
  if (!Number.isSafeInteger(r) || r < 1) throw new LowrankError('E_USAGE', `randlora's rank r must be a positive integer, got ${r}`);
  return r;
}

/** A layer's sizes: m = min(out, in), M = max(out, in), n = ⌈m/r⌉ bases. */
function dims(out: number, inF: number, r: number): { m: number; M: number; n: number } {
  const m = Math.min(out, inF);
  return { m, M: Math.max(out, inF), n: Math.ceil(m / r) };
}

/** Divides t by its unbiased std, as PEFT does with each basis. */
function normalize<F extends FloatDType>(t: Tensor<F>, role: string): Tensor<F> {
  const d = t.data;
  let mean = 0;
  for (const v of d) mean += v;
  mean /= d.length;
  let ss = 0;
  for (const v of d) ss += (v - mean) ** 2;
  const std = Math.sqrt(ss / (d.length - 1));
  if (!(std > 0)) {
    throw new LowrankError('E_USAGE', `randlora's shared basis ${role} [${t.shape.join(', ')}] has no spread (std ${std}), so it cannot be normalized: use another projection_prng_key, or sparse/very_sparse off, or more entries (rank, layer sizes)`);
  }
  for (let i = 0; i < d.length; i++) d[i] /= std;
  return t;
}

/** U[0, 1) draws made −1, 0 or +1 with sparsity s. */
function ternary(d: Float32Array | Float64Array, s: number): void {
  const lo = 1 / (2 * s);
  for (let i = 0; i < d.length; i++) d[i] = d[i] < lo ? -1 : d[i] > 1 - lo ? 1 : 0;
}

/** Â [r·n, m] (or Âᵀ [m, r·n] when `t`): λ[k, b]·A_s[k, j]·γ[b, j] at row k·n + b, column j. */
function scaledA<F extends FloatDType>(lam: Tensor<F>, gam: Tensor<F>, a: Tensor<F>, r: number, n: number, m: number, t: boolean): Tensor<F> {
  const mg = a.shape[2];
  const rn = r * n;
  const out = tensor(lam.dtype, t ? [m, rn] : [rn, m]);
  const [rs, cs] = t ? [1, rn] : [m, 1];
  for (let k = 0; k < r; k++) {
    for (let b = 0; b < n; b++) {
      const l = lam.data[k * n + b];
      const row = k * n + b;
      for (let j = 0; j < m; j++) out.data[row * rs + j * cs] = l * a.data[k * mg + j] * gam.data[b * m + j];
    }
  }
  return out;
}

/** B̂ [M, n·r] (or B̂ᵀ [n·r, M] when `t`): B̂[p, c] = B[p, c div r, c mod r] for c < n·r. */
function flatB<F extends FloatDType>(bb: Tensor<F>, n: number, M: number, t: boolean): Tensor<F> {
  const [, ng, r] = bb.shape;
  const rn = r * n;
  const out = tensor(bb.dtype, t ? [rn, M] : [M, rn]);
  for (let p = 0; p < M; p++) {
    for (let c = 0; c < rn; c++) out.data[t ? c * M + p : p * rn + c] = bb.data[p * ng * r + c];
  }
  return out;
}

function pair<F extends FloatDType>(t: Readonly<Record<string, Tensor<F>>>, shared: Shared<F>, r: number, shape: readonly [number, number]): Pair<F> {
  const [out, inF] = shape;
  const { m, M, n } = dims(out, inF, r);
  const [A, B] = [shared.tensors.A, shared.tensors.B];
  if (A.shape[0] !== r || A.shape[2] < m || B.shape[0] < M || B.shape[1] < n || B.shape[2] !== r) {
    throw new LowrankError('E_SHAPE', `randlora's shared A [${A.shape.join(', ')}] and B [${B.shape.join(', ')}] do not fit a ${out}×${inF} layer at r = ${r}: it needs A [${r}, 1, ≥${m}] and B [≥${M}, ≥${n}, ${r}]`);
  }
  const wide = inF > out;
  const a = scaledA(t.lambda, t.gamma, A, r, n, m, wide);
  const b = flatB(B, n, M, wide);
  return wide ? { A: b, B: a } : { A: a, B: b };
}

export const method: AdapterMethod = {
  name: 'randlora',
  summary: 'a full-rank ΔW as ⌈min(in, out)/r⌉ shared random rank-r bases, each scaled by trained λ and γ diagonals (RandLoRA)',
  changesBase: false,
  keys: { lambda: 'randlora_lambda', gamma: 'randlora_gamma' },
  options: OPTIONS,
  async prepare(layers, opts, dtype) {
    const c = config(opts);
    const r = rankOf(opts);
    if (layers.length === 0) throw new LowrankError('E_USAGE', 'randlora needs at least one targeted layer to size its shared bases');
    const outMax = Math.max(...layers.map((l) => l.shape[0]));
    const inMax = Math.max(...layers.map((l) => l.shape[1]));
    const { m: mg, M: Mg, n: ng } = dims(outMax, inMax, r);
    const g = rng(c.projection_prng_key);
    const A = tensor(dtype, [r, 1, mg]);
    const B = tensor(dtype, [Mg, ng, r]);
    if (c.sparse || c.very_sparse) {
      const s = c.very_sparse ? Math.sqrt(mg) : 3;
      ternary(g.fillUniform(A.data, 0, 1), s);
      ternary(g.fillUniform(B.data, 0, 1), s);
    } else {
      g.fillUniform(A.data, -1 / Math.sqrt(mg), 1 / Math.sqrt(mg));
      // ng pieces [Mg, 1, r] drawn one after another, side by side along B's middle axis
      const piece = tensor(dtype, [Mg, r]);
      for (let b = 0; b < ng; b++) {
        g.fillUniform(piece.data, -1 / Math.sqrt(r), 1 / Math.sqrt(r));
        for (let p = 0; p < Mg; p++) B.data.set(piece.data.subarray(p * r, (p + 1) * r), (p * ng + b) * r);
      }
    }
    return sharedState({ A: normalize(A, 'A'), B: normalize(B, 'B') }, []);
  },
  async init(w, opts) {
    const c = config(opts);
    const [out, inF] = w.shape;
    const r = rankOf(opts);
    const { m, M, n } = dims(out, inF, r);
    const lambda = tensor(w.dtype, [r, n]);
    const gamma = tensor(w.dtype, [n, m]);
    if (c.init_weights) gamma.data.fill(1 / Math.max(n, m));
    else {
      rng(opts.seed ?? 0).fillNormal(lambda.data);
      gamma.data.fill(1 / M);
    }
    return { tensors: { lambda, gamma } };
  },
  trainableParams(out, inF, rank) {
    const { m, n } = dims(out, inF, rank);
    return rank * n + n * m;
  },
  frozenParams: () => 0,
  trainTerm<F extends FloatDType>(w: Tensor<F>, init: { tensors: Readonly<Record<string, Tensor<FloatDType>>> }, opts: InitOptions, shared?: Shared<F>) {
    const [out, inF] = w.shape;
    const r = opts.rank;
    const { m, n } = dims(out, inF, r);
    const wide = inF > out;
    const t = init.tensors as Readonly<Record<'lambda' | 'gamma', Tensor<F>>>;
    const sh = needShared(shared, 'randlora');
    const a = sh.tensors.A;
    const mg = a.shape[2];
    const rn = r * n;
    const grads = { lambda: tensor(w.dtype, t.lambda.shape), gamma: tensor(w.dtype, t.gamma.shape) };
    // dÂ[row, j] is dA'[row, j] (in ≤ out: A' = Â, B' the frozen bases) or dB'[j, row] (in > out: B' = Âᵀ).
    const [rs, cs] = wide ? [1, rn] : [m, 1];
    const pullHat = (dHat: ArrayLike<number>): void => {
      for (let k = 0; k < r; k++) {
        for (let b = 0; b < n; b++) {
          const row = k * n + b;
          const l = t.lambda.data[row];
          let dl = 0;
          for (let j = 0; j < m; j++) {
            const g = dHat[row * rs + j * cs] * a.data[k * mg + j];
            dl += g * t.gamma.data[b * m + j];
            grads.gamma.data[b * m + j] += g * l;
          }
          grads.lambda.data[row] += dl;
        }
      }
    };
    const common = { params: { lambda: t.lambda, gamma: t.gamma }, grads, scaling: config(opts).randlora_alpha / r, factors: () => pair(t, sh, r, [out, inF]) };
    return composedTerm<F>(wide ? { ...common, frozen: 'A', pullback: (dB) => pullHat(dB.data) } : { ...common, frozen: 'B', pullback: (dA) => pullHat(dA.data) });
  },
  async delta(tensors, shared, opts, shape) {
    return pairDelta(pair(tensors, shared, opts.rank, shape), config(opts).randlora_alpha / opts.rank);
  },
  format: {
    peftType: 'RANDLORA',
    moduleKeys: { lambda: 'randlora_lambda', gamma: 'randlora_gamma' },
    sharedKeys: { A: 'base_model.randlora_A', B: 'base_model.randlora_B' },
    // PEFT saves the shared pair under every layer too; written as PEFT writes it, skipped when read.
    layerCopies: { randlora_A: 'A', randlora_B: 'B' },
    fields: () => ({ randlora_dropout: 0 }),
  },
};
