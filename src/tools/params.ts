/**
 * Trainable parameters of adapter methods on a model's layers, from the shapes alone (headers,
 * no weights read): per method, the count at the given rank next to LoRA's at the same rank —
 * for checking the papers' parameter claims on real shapes. Methods that choose their rank from
 * the spectrum (SVFit and SoKA with energy or elbow) are counted at the rank given, their upper
 * bound. Parameters shared by all layers (Uni-LoRA's vector, VB-LoRA's bank, MoS's pools) count once.
 */
import { openModel } from '../io/hf.js';
import { LowrankError } from '../core/errors.js';
import { getMethod, methodNames } from '../methods/registry.js';
import { selectLayers, type LayerTargets } from './targets.js';
import { outIn } from '../io/layout.js';
import type { InitOptions, LayerShape } from '../methods/types.js';
import type { OptionValues } from '../methods/options.js';

/** One method's count. */
export interface MethodParams {
  readonly method: string;
  readonly trainable: number;
  /** Parameters stored but frozen (e.g. SVFit's U_r and V_r). */
  readonly frozen: number;
  /** LoRA's trainable parameters at the same rank, divided by this method's. */
  readonly fewerThanLora: number;
}

/** The counts for every method asked for (default: all), on the targeted layers. */
export async function adapterParams(opts: { model: string; rank: number; methods?: readonly string[]; targets?: LayerTargets; options?: Readonly<Record<string, OptionValues>> }): Promise<{ layers: number; modelParams: number; lora: number; methods: MethodParams[] }> {
  if (!Number.isInteger(opts.rank) || opts.rank < 1) throw new LowrankError('E_USAGE', `rank must be a positive integer, got ${opts.rank}`);
  const methods = (opts.methods ?? methodNames()).map(getMethod);
  const model = await openModel(opts.model);
  try {
    const chosen = selectLayers(model.tensors, opts.targets ?? 'all-linear');
    const layers = chosen.map((t) => outIn(model, t.name, t.shape));
    const shapes: LayerShape[] = chosen.map((t, i) => ({ name: t.name.slice(0, -'.weight'.length), shape: layers[i] }));
    if (layers.length === 0) throw new LowrankError('E_USAGE', 'no 2-D weight of the model matches the targets', { file: opts.model });
    const count = (f: (o: number, i: number, r: number) => number): number => layers.reduce((s, [o, i]) => s + f(o, i, Math.min(opts.rank, o, i)), 0);
    const lora = count((o, i, r) => r * (o + i));
    const modelParams = model.tensors.reduce((s, t) => s + t.shape.reduce((a, b) => a * b, 1), 0);
    return {
      layers: layers.length,
      modelParams,
      lora,
      methods: methods.map((m) => {
        const init: InitOptions = { rank: opts.rank, options: opts.options?.[m.name] };
        const trainable = count((o, i, r) => m.trainableParams(o, i, r, { ...init, rank: r })) + (m.sharedParams?.(shapes, init) ?? 0);
        return { method: m.name, trainable, frozen: count((o, i, r) => m.frozenParams?.(o, i, r, { ...init, rank: r }) ?? 0), fewerThanLora: lora / trainable };
      }),
    };
  } finally {
    await model.close();
  }
}
