/**
 * The adapter-method interface: each method is one file in this folder exporting `method`, found by
 * the registry (registry.ts) through the generated list in all.ts, so adding a method touches no
 * other file.
 */
import type { Tensor } from '../core/tensor.js';
import type { FloatDType } from '../core/dtype.js';
import type { LinearAdapter } from '../nn/linear.js';

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
}

/**
 * A part of W: scale·left·right (left [out, r], right [r, in]), kept low-rank so the residual can
 * be made in one pass over W, or a dense [out, in] tensor.
 */
export type Removed =
  | { readonly left: Tensor<FloatDType>; readonly right: Tensor<FloatDType>; readonly scale: number }
  | { readonly dense: Tensor<FloatDType> };

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

/** One adapter method. */
export interface AdapterMethod {
  /** The name `lowrank init --method` takes. */
  readonly name: string;
  /** One line for help texts. */
  readonly summary: string;
  /** True when the method replaces W by a residual the adapter is trained over. */
  readonly changesBase: boolean;
  /** The roles of `LayerInit.tensors` and the PEFT key suffix each is saved under. */
  readonly keys: Readonly<Record<string, string>>;
  /** Initializes one layer from its weight W [out, in] (float32 or float64; computed in its dtype). */
  init(w: Tensor<FloatDType>, opts: InitOptions): Promise<LayerInit>;
  /** Trainable parameters of one [out, in] layer at rank r. */
  trainableParams(out: number, inF: number, rank: number): number;
  /** Parameters the adapter stores but does not train (frozen factors), for one [out, in] layer. */
  frozenParams?(out: number, inF: number, rank: number): number;
  /**
   * The layer's term while it trains, over its weight w (the residual, for methods that change the
   * base) from the method's init of that layer. Absent where training is not implemented.
   */
  trainTerm?<F extends FloatDType>(w: Tensor<F>, init: LayerInit, opts: InitOptions): TrainTerm<F>;
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
  /** The layer as trained so far, as a LoRA on the original weight (before any residual). */
  toLora(): LoraUpdate;
}

/** PEFT's scaling of a LoRA module: alpha/r, or alpha/√r with rsLoRA. */
export function scalingOf(opts: InitOptions): number {
  const alpha = opts.alpha ?? opts.rank;
  return opts.useRslora === true ? alpha / Math.sqrt(opts.rank) : alpha / opts.rank;
}
