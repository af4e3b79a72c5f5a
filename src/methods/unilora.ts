/**
 * Uni-LoRA (Li et al. 2025, "Uni-LoRA: One Vector is All You Need"): the LoRA factors of every
 * targeted layer, flattened and concatenated into θ_D ∈ R^D (D = Σ_layers r·(in + out)), are one
 * fixed isometric projection of a single trained vector for the whole model: θ_D = P·θ_d, θ_d ∈ R^d.
 * P has one nonzero per row: entry t of θ_D is θ_d[idx_t]/√count(idx_t), so PᵀP = I on the used
 * columns. The slots idx are PEFT's balanced assignment (every θ index ⌊D/d⌋ times, plus D mod d
 * distinct extra ones, then a shuffle: each used ⌊D/d⌋ or ⌈D/d⌉ times), consumed layer by layer:
 * A's r·in entries, then B's out·r, both row-major.
 *   forward   A = θ[idxA]·sA [r, in],  B = θ[idxB]·sB [out, r];  y += (x·Aᵀ)·Bᵀ  (no alpha, scaling 1)
 *   backward  composedTerm's dA, dB;  dθ[idxA] += dA·sA,  dθ[idxB] += dB·sB  (summed over the layers)
 * Trainable parameters: d (theta_d_length) for the whole model, none per layer; each layer stores
 * its indices and scales, 2·r·(in + out) frozen numbers. θ_d starts nonzero, so ΔW ≠ 0 at start.
 * †The shuffle: PEFT draws it with numpy's PCG64 (default_rng(proj_seed)); here it is lowrank's own
 * seeded RNG from proj_seed — the same counts and scales, other slots — so an adapter is always
 * saved with its indices and scales (PEFT's save_indices=true layout, which PEFT loads back), and
 * one saved without them (save_indices=false) cannot be read. θ_d ~ U(±init_theta_d_bound) from the
 * seed (PEFT: torch's global RNG).
 * A layer's chunk is found by its place among the targeted layers (InitOptions.layer.index), in
 * the order prepare was given them: A (r·in) then B (out·r) per layer, PEFT's order.
 */
import { LowrankError } from '../core/errors.js';
import { tensor, type Tensor } from '../core/tensor.js';
import type { FloatDType } from '../core/dtype.js';
import { rng } from '../core/rng.js';
import { composedTerm, pairDelta, type Pair } from './composed.js';
import { configOf, defineOptions } from './options.js';
import { needShared, sharedState } from './shared.js';
import type { AdapterMethod, InitOptions, LayerInit, Shared } from './types.js';

const OPTIONS = defineOptions({
  // Indices are held as floats: exact in float32 up to 2^24.
  theta_d_length: { kind: 'int', default: 256, min: 1, max: 2 ** 24, help: 'd, the length of the one trained vector θ_d shared by every layer' },
  proj_seed: { kind: 'int', default: 42, min: 0, max: 2 ** 32 - 1, help: 'seed of the projection: which θ_d entry each LoRA entry reads' },
  init_theta_d_bound: { kind: 'number', default: 0.02, above: 0, help: 'θ_d starts uniform in ±bound' },
});
const config = (opts: InitOptions): { d: number; projSeed: number; bound: number } => {
  const c = configOf('unilora', OPTIONS, opts.options);
  return { d: c.theta_d_length, projSeed: c.proj_seed, bound: c.init_theta_d_bound };
};

const KEYS = { indices_A: 'unilora_indices_A', indices_B: 'unilora_indices_B', scales_A: 'unilora_scales_A', scales_B: 'unilora_scales_B' } as const;
type Role = keyof typeof KEYS;

function rankOf(opts: InitOptions): number {
  const r = opts.rank;
  if (!Number.isSafeInteger(r) || r < 1) throw new LowrankError('E_USAGE', `unilora rank (PEFT's r) must be an integer ≥ 1, got ${r}`);
  return r;
}

/**
 * PEFT's generate_index: `total` slots over 0..d−1, each index ⌊total/d⌋ times (np.repeat order),
 * then total mod d distinct extra indices (a partial Fisher–Yates), then all shuffled (Fisher–Yates).
 */
function balancedSlots(total: number, d: number, seed: number): Int32Array {
  const g = rng(seed);
  const below = (n: number): number => Math.floor(g.uniform() * n);
  const base = Math.floor(total / d);
  const out = new Int32Array(total);
  let t = 0;
  for (let j = 0; j < d; j++) for (let c = 0; c < base; c++) out[t++] = j;
  if (t < total) {
    const pool = Int32Array.from({ length: d }, (_, j) => j);
    for (let i = 0; t < total; i++) {
      const k = i + below(d - i);
      const v = pool[k];
      pool[k] = pool[i];
      pool[i] = v;
      out[t++] = v;
    }
  }
  for (let i = total - 1; i > 0; i--) {
    const k = below(i + 1);
    const v = out[k];
    out[k] = out[i];
    out[i] = v;
  }
  return out;
}

/** θ[idx]·s, shaped like idx. */
function gather<F extends FloatDType>(theta: Tensor<F>, idx: Tensor<F>, s: Tensor<F>): Tensor<F> {
  const out = tensor(theta.dtype, idx.shape);
  for (let i = 0; i < out.data.length; i++) out.data[i] = theta.data[idx.data[i]] * s.data[i];
  return out;
}

/** g[idx] += dX·s. */
function scatter<F extends FloatDType>(dX: Tensor<F>, idx: Tensor<F>, s: Tensor<F>, g: Tensor<F>): void {
  for (let i = 0; i < dX.data.length; i++) g.data[idx.data[i]] += dX.data[i] * s.data[i];
}

function pair<F extends FloatDType>(t: Readonly<Record<Role, Tensor<F>>>, theta: Tensor<F>): Pair<F> {
  return { A: gather(theta, t.indices_A, t.scales_A), B: gather(theta, t.indices_B, t.scales_B) };
}

/** Saved tensors (possibly PEFT's) checked against the layer's shape and θ's length. */
function checkSaved(t: Readonly<Record<string, Tensor<FloatDType>>>, r: number, [out, inF]: readonly [number, number], d: number): void {
  const want: Record<Role, number> = { indices_A: r * inF, scales_A: r * inF, indices_B: out * r, scales_B: out * r };
  for (const [role, n] of Object.entries(want)) {
    const x = t[role] as Tensor<FloatDType> | undefined;
    if (x === undefined) throw new LowrankError('E_USAGE', `unilora needs the layer's ${role} (${KEYS[role as Role]})`);
    if (x.data.length !== n) throw new LowrankError('E_SHAPE', `unilora ${role} has ${x.data.length} entries, a ${out}×${inF} layer at r=${r} needs ${n}`, { shape: x.shape });
  }
  for (const role of ['indices_A', 'indices_B'] as const) {
    for (const j of t[role].data) {
      if (!Number.isInteger(j) || j < 0 || j >= d) throw new LowrankError('E_FORMAT', `unilora ${role} holds ${j}, not an index into θ_d of length ${d} (theta_d_length)`);
    }
  }
}

export const method: AdapterMethod = {
  name: 'unilora',
  summary: 'every LoRA entry reads one scaled entry of a single trained vector θ_d for the whole model, an isometric projection (Uni-LoRA)',
  changesBase: false,
  keys: KEYS,
  options: OPTIONS,
  async prepare(layers, opts, dtype) {
    const { d, projSeed, bound } = config(opts);
    const r = rankOf(opts);
    const total = layers.reduce((n, l) => n + r * (l.shape[0] + l.shape[1]), 0);
    const theta = tensor(dtype, [d]);
    rng(opts.seed ?? 0).fillUniform(theta.data, -bound, bound);
    const slots = balancedSlots(total, d, projSeed);
    const counts = new Float64Array(d);
    for (const j of slots) counts[j]++;
    const index = tensor(dtype, [total]);
    index.data.set(slots);
    const scale = tensor(dtype, [d]);
    for (let j = 0; j < d; j++) scale.data[j] = counts[j] > 0 ? 1 / Math.sqrt(counts[j]) : 0;
    const layout = tensor(dtype, [layers.length, 2]);
    layers.forEach((l, k) => layout.data.set(l.shape, 2 * k));
    return sharedState({ theta_d: theta, index, scale, layout }, ['theta_d']);
  },
  async init(w, opts, shared) {
    const { index, scale, layout } = needShared(shared, 'unilora').tensors;
    const r = rankOf(opts);
    const [out, inF] = w.shape;
    const layers = layout.data.length / 2;
    let total = 0;
    for (let k = 0; k < layers; k++) total += r * (layout.data[2 * k] + layout.data[2 * k + 1]);
    if (total !== index.data.length) throw new LowrankError('E_USAGE', `unilora rank ${r} is not the rank its shared state was prepared with (${index.data.length} projected entries, r=${r} makes ${total})`);
    const k = opts.layer?.index;
    if (k === undefined || !(k >= 0 && k < layers) || layout.data[2 * k] !== out || layout.data[2 * k + 1] !== inF) {
      throw new LowrankError('E_USAGE', `unilora: layer ${String(k)} (${out}×${inF}) is not one of the ${layers} layers its shared state was prepared for`, { shape: w.shape });
    }
    let offset = 0;
    for (let j = 0; j < k; j++) offset += r * (layout.data[2 * j] + layout.data[2 * j + 1]);
    const take = (rows: number, cols: number, from: number): { idx: Tensor<FloatDType>; s: Tensor<FloatDType> } => {
      const idx = tensor(w.dtype, [rows, cols]);
      const s = tensor(w.dtype, [rows, cols]);
      for (let t = 0; t < idx.data.length; t++) {
        idx.data[t] = index.data[from + t];
        s.data[t] = scale.data[idx.data[t]];
      }
      return { idx, s };
    };
    const a = take(r, inF, offset);
    const b = take(out, r, offset + r * inF);
    return { tensors: { indices_A: a.idx, indices_B: b.idx, scales_A: a.s, scales_B: b.s } };
  },
  trainableParams: () => 0,
  frozenParams: (out, inF, r) => 2 * r * (out + inF),
  sharedParams: (_layers, opts) => config(opts).d,
  trainTerm<F extends FloatDType>(_w: Tensor<F>, init: LayerInit, _opts: InitOptions, shared?: Shared<F>) {
    const t = init.tensors as Readonly<Record<Role, Tensor<F>>>;
    const sh = needShared(shared, 'unilora');
    const theta = sh.tensors.theta_d;
    const g = sh.grads.theta_d;
    return composedTerm<F>({
      params: {},
      grads: {},
      scaling: 1,
      factors: () => pair(t, theta),
      pullback(dA, dB) {
        scatter(dA, t.indices_A, t.scales_A, g);
        scatter(dB, t.indices_B, t.scales_B, g);
      },
    });
  },
  async delta(tensors, shared, opts, shape) {
    const theta = shared.tensors.theta_d;
    checkSaved(tensors, rankOf(opts), shape, theta.data.length);
    return pairDelta(pair(tensors, theta), 1);
  },
  format: {
    peftType: 'UNILORA',
    moduleKeys: KEYS,
    sharedKeys: { theta_d: 'base_model.unilora_theta_d' },
    integerRoles: { indices_A: 'i64', indices_B: 'i64' },
    fields: () => ({ save_indices: true, init_weights: true, unilora_dropout: 0 }),
    readOptions(config) {
      if (config.save_indices !== true) {
        throw new LowrankError('E_UNSUPPORTED', "is a Uni-LoRA adapter saved without its indices (save_indices=false): its projection is numpy's PCG64 stream, which lowrank does not regenerate; save it from PEFT with save_indices=true");
      }
      return {};
    },
  },
};
