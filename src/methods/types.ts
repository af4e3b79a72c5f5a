/**
 * The adapter-method interface: each method is one file in this folder exporting `method`, found by
 * the registry (registry.ts) through the generated list in all.ts, so adding a method touches no
 * other file.
 */
import type { Tensor } from '../core/tensor.js';
import type { FloatDType } from '../core/dtype.js';

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

/** The result of initializing one layer. */
export interface LayerInit {
  /** The adapter tensors by role (for LoRA-shaped methods: A [r, in], B [out, r]). */
  readonly tensors: Readonly<Record<string, Tensor<FloatDType>>>;
  /** The weight that replaces W in the base model, for methods that change it. */
  readonly residual?: Tensor<FloatDType>;
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
}

/** PEFT's scaling of a LoRA module: alpha/r, or alpha/√r with rsLoRA. */
export function scalingOf(opts: InitOptions): number {
  const alpha = opts.alpha ?? opts.rank;
  return opts.useRslora === true ? alpha / Math.sqrt(opts.rank) : alpha / opts.rank;
}
