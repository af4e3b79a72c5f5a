/**
 * The adapter-method interface: each method is one file in this folder exporting `method`, found by
 * the registry (registry.ts) through the generated list in all.ts, so adding a method touches no
 * other file.
 */
import type { Tensor } from '../core/tensor.js';
import type { FloatDType } from '../core/dtype.js';
import type { LinearAdapter } from '../nn/linear.js';
import type { LowRank } from '../linalg/lowrank.js';
import type { OptionSpecs, OptionValues } from './options.js';

/** What every initializer is given besides the weight. */
export interface InitOptions {
  /** The adapter rank r. */
  readonly rank: number;
  /** PEFT's lora_alpha (default r, i.e. scaling 1). */
  readonly alpha?: number;
  /** rsLoRA scaling alpha/√r instead of alpha/r. */
  readonly useRslora?: boolean;
  /** Power iterations of a randomized SVD; methods without one ignore it. Undefined: exact. */
  readonly niter?: number;
  /** Seed of random sketches and random inits. Default 0. */
  readonly seed?: number;
  /**
   * Methods that choose their rank from the spectrum (SVFit, SoKA): the smallest rank whose
   * singular values keep this fraction of Σσ², capped at `rank`.
   */
  readonly energy?: number;
  /** SoKA: the rank at the elbow of the spectrum instead (capped at `rank`). */
  readonly elbow?: boolean;
  /** The method's own options (its `options` declaration), as given; `configOf` fills the defaults. */
  readonly options?: OptionValues;
  /** The layer being initialized: its module name and its place among the targeted layers (from 0). */
  readonly layer?: { readonly name: string; readonly index: number };
}

/**
 * A part of W: scale·left·right (left [out, r], right [r, in]), kept low-rank so the residual can
 * be made in one pass over W, or a dense [out, in] tensor.
 */
export type Removed = LowRank | { readonly dense: Tensor<FloatDType> };

/** The result of initializing one layer. */
export interface LayerInit {
  /** The adapter tensors by role (for LoRA-shaped methods: A [r, in], B [out, r]). */
  readonly tensors: Readonly<Record<string, Tensor<FloatDType>>>;
  /**
   * For methods that change the base: what moves out of W into the adapter. The base keeps the
   * residual W − removed (split.ts `residual` / `residualAs` compute it, in the dtype wanted).
   */
  readonly removed?: Removed;
  /** The rank the method chose, when it chooses (SVFit, SoKA); else the rank asked for. */
  readonly rank?: number;
}

/** A targeted layer as the methods see it: its module name and its [out, in] shape. */
export interface LayerShape {
  readonly name: string;
  readonly shape: readonly [number, number];
}

/**
 * State shared across layers (one seeded basis, a vector bank, one global vector): its tensors by
 * role, and the gradients of those that train (a shared tensor's gradient sums over the layers).
 */
export interface Shared<F extends FloatDType = FloatDType> {
  readonly tensors: Readonly<Record<string, Tensor<F>>>;
  readonly grads: Readonly<Record<string, Tensor<F>>>;
}

/**
 * Where a method's adapter is saved when it is not a PEFT LoRA: a PEFT tuner's folder (`peftType`
 * VERA, VBLORA, ...: its config fields and exact keys) or lowrank's own `LOWRANK` layout.
 */
export interface AdapterFormat {
  /** adapter_config.json's peft_type. */
  readonly peftType: string;
  /** The key suffix after `base_model.model.<module>.` of each per-layer role. */
  readonly moduleKeys: Readonly<Record<string, string>>;
  /** The full key of each shared role that is saved (roles regenerated from a seed are not). */
  readonly sharedKeys: Readonly<Record<string, string>>;
  /**
   * Per-layer keys that hold a copy of a shared role (key suffix → role), as PEFT's RandLoRA saves
   * its bases under every layer too: written for every layer, skipped when read.
   */
  readonly layerCopies?: Readonly<Record<string, string>>;
  /** Roles stored as integers (indices; held as floats in memory); the others are saved in float32. */
  readonly integerRoles?: Readonly<Record<string, 'i64' | 'i32' | 'i16' | 'u8'>>;
  /** Config fields besides the method's options and the common ones (PEFT's `r`, ...). */
  fields?(opts: InitOptions, layers: readonly LayerShape[]): Record<string, unknown>;
  /** The InitOptions a config read back stands for (rank, alpha, ...), besides the options. */
  readOptions?(config: Readonly<Record<string, unknown>>): Partial<InitOptions>;
}

/** What a method's `onStep` hook is given after each optimizer step. */
export interface StepContext<F extends FloatDType = FloatDType> {
  /** Steps done (1 after the first). */
  readonly step: number;
  readonly totalSteps: number;
  /** Every layer's term, by module name. */
  readonly terms: ReadonlyMap<string, TrainTerm<F>>;
  readonly shared: Shared<F>;
}

/** One adapter method (a plugin: one file in src/methods exporting `method`). */
export interface AdapterMethod {
  /** The name `lowrank init --method` takes. */
  readonly name: string;
  /** One line for help texts. */
  readonly summary: string;
  /** True when the method replaces W by a residual the adapter is trained over. */
  readonly changesBase: boolean;
  /** The roles of `LayerInit.tensors` and the PEFT key suffix each is saved under. */
  readonly keys: Readonly<Record<string, string>>;
  /** The method's own options (`--set key=value`), each with its default, bounds and PEFT field. */
  readonly options?: OptionSpecs;
  /**
   * The state shared across the targeted layers, in the dtype the layers compute in; called once
   * before any `init` (and again when an adapter is read back, before its saved tensors overwrite it).
   */
  prepare?<F extends FloatDType>(layers: readonly LayerShape[], opts: InitOptions, dtype: F): Promise<Shared<F>>;
  /** Initializes one layer from its weight W [out, in] (float32 or float64; computed in its dtype). */
  init(w: Tensor<FloatDType>, opts: InitOptions, shared?: Shared): Promise<LayerInit>;
  /** Trainable parameters of one [out, in] layer at rank r (shared ones are `sharedParams`). */
  trainableParams(out: number, inF: number, rank: number, opts?: InitOptions): number;
  /** Parameters the adapter stores but does not train (frozen factors), for one [out, in] layer. */
  frozenParams?(out: number, inF: number, rank: number, opts?: InitOptions): number;
  /** Trainable parameters shared across all the layers (Uni-LoRA's vector, VB-LoRA's bank). */
  sharedParams?(layers: readonly LayerShape[], opts: InitOptions): number;
  /**
   * The layer's term while it trains, over its weight w (the residual, for methods that change the
   * base) from the method's init of that layer. Absent where training is not implemented.
   */
  trainTerm?<F extends FloatDType>(w: Tensor<F>, init: LayerInit, opts: InitOptions, shared?: Shared<F>): TrainTerm<F>;
  /** After each optimizer step (AdaLoRA-style pruning, rank growth). */
  onStep?<F extends FloatDType>(ctx: StepContext<F>): void;
  /**
   * The slot the data-aware methods fill (CorDA, EVA, LoRA-GA): statistics of each target layer
   * from a model's activations or gradients, handed to `init` through `opts.options`. Declared here
   * so the engine has one place for it; no method implements it yet.
   */
  calibrate?(layers: readonly LayerShape[], batches: AsyncIterable<unknown>, opts: InitOptions): Promise<OptionValues>;
  /**
   * The layer's ΔW on the original weight, from its saved tensors (per-layer roles) and the shared
   * state: what merge adds and what convert-to-lora truncates. Methods with their own format have it.
   */
  delta?<F extends FloatDType>(tensors: Readonly<Record<string, Tensor<F>>>, shared: Shared<F>, opts: InitOptions, shape: readonly [number, number]): Promise<LowRank<F>>;
  /** The method's own save format; without it a trained adapter is saved as a PEFT LoRA (`toLora`). */
  readonly format?: AdapterFormat;
}

/** A trained layer as a PEFT LoRA on the original weight W: W + scaling·B·A (DoRA: with its magnitude). */
export interface LoraUpdate {
  /** [r, in] */
  readonly A: Tensor<FloatDType>;
  /** [out, r] */
  readonly B: Tensor<FloatDType>;
  readonly scaling: number;
  /** DoRA's magnitude vector [out]. */
  readonly magnitude?: Tensor<FloatDType>;
}

/** One layer's adapter at training time: a term added to the layer's output, and its parameters. */
export interface TrainTerm<F extends FloatDType> extends LinearAdapter<F> {
  /** The trained tensors by role, updated in place by the optimizer. */
  readonly params: Readonly<Record<string, Tensor<F>>>;
  /** Their gradients, by the same roles: backward adds into them. */
  readonly grads: Readonly<Record<string, Tensor<F>>>;
  /**
   * The layer as trained so far, as a LoRA on the original weight (before any residual); methods
   * with their own format save their tensors instead and may leave it out.
   */
  toLora?(): LoraUpdate;
}

/** PEFT's scaling of a LoRA module: alpha/r, or alpha/√r with rsLoRA. */
export function scalingOf(opts: InitOptions): number {
  const alpha = opts.alpha ?? opts.rank;
  return opts.useRslora === true ? alpha / Math.sqrt(opts.rank) : alpha / opts.rank;
}
