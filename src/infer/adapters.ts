/**
 * Adapters at inference time: read once over a base model, applied without merging
 * (y = W·x + Σ term(x)), switched per request without reloading the base, and merged on demand.
 * Any adapter the training loop can evaluate loads: PEFT LoRA and DoRA folders (the PiSSA family
 * saves as LoRA on the original base) and the methods with a format of their own.
 */
import { LowrankError } from '../core/errors.js';
import { tensor, type Tensor } from '../core/tensor.js';
import type { FloatDType } from '../core/dtype.js';
import { openAdapter } from '../io/peft.js';
import { isMethodFolder, readMethodFolder } from '../methods/adapterFile.js';
import { loraTerm } from '../methods/lora.js';
import { doraTerm } from '../methods/dora.js';
import type { CausalLm } from '../nn/causalLm.js';
import type { LinearAdapter } from '../nn/linear.js';
import { addInto } from '../nn/weights.js';
import { basename } from '../io/paths.js';

/** An adapter read over a model: its term per module (module name without `.weight`), not applied. */
export interface LoadedAdapter<F extends FloatDType> {
  readonly name: string;
  readonly dir: string;
  readonly terms: ReadonlyMap<string, LinearAdapter<F>>;
}

/**
 * Reads the adapter folder `dir` over the model's weights. A module the model lacks, or whose
 * tensors do not fit the model's layer, is an E_SHAPE error naming it.
 */
export async function loadAdapter<F extends FloatDType>(m: CausalLm<F>, dir: string, name = basename(dir)): Promise<LoadedAdapter<F>> {
  const dtype = m.dtype;
  const layer = (module: string): Tensor<F> => {
    const w = m.weights.get(`${module}.weight`);
    if (w === undefined || w.shape.length !== 2) throw new LowrankError('E_SHAPE', `the adapter has module ${module}, which the model does not`, { file: dir });
    return w;
  };
  const terms = new Map<string, LinearAdapter<F>>();
  if (await isMethodFolder(dir)) {
    const shapes = new Map([...m.weights].filter(([n, t]) => t.shape.length === 2 && n.endsWith('.weight')).map(([n, t]) => [n.slice(0, -'.weight'.length), [t.shape[0], t.shape[1]] as const]));
    const a = await readMethodFolder(dir, dtype, { shapes });
    if (a.method.trainTerm === undefined || a.method.changesBase) throw new LowrankError('E_UNSUPPORTED', `applying a ${a.method.name} adapter unmerged is not supported`, { file: dir });
    for (const [index, l] of a.layers.entries()) terms.set(l.name, a.method.trainTerm(layer(l.name), { tensors: a.modules.get(l.name) ?? {} }, { ...a.opts, layer: { name: l.name, index } }, a.shared));
    return { name, dir, terms };
  }
  const a = await openAdapter(dir);
  try {
    for (const mod of a.modules) {
      const w = layer(mod.name);
      const [A, B] = [await a.readAs(mod.A.name, dtype), await a.readAs(mod.B.name, dtype)];
      const [out, inF] = w.shape;
      if (A.shape[1] !== inF || B.shape[0] !== out || A.shape[0] !== B.shape[1]) {
        throw new LowrankError('E_SHAPE', `module ${mod.name}: lora_A [${A.shape.join(', ')}] and lora_B [${B.shape.join(', ')}] do not fit the model's [${out}, ${inF}] weight`, { file: dir });
      }
      terms.set(mod.name, mod.magnitude === undefined ? loraTerm(A, B, mod.scaling) : doraTerm(w, A, B, await a.readAs(mod.magnitude.name, dtype), mod.scaling));
    }
  } finally {
    await a.close();
  }
  return { name, dir, terms };
}

/** Several terms on one module as one: outputs summed, their dx shares summed. */
function sumOf<F extends FloatDType>(terms: readonly LinearAdapter<F>[]): LinearAdapter<F> {
  if (terms.length === 1) return terms[0];
  const add = async (parts: Promise<Tensor<F>>[]): Promise<Tensor<F>> => {
    const [first, ...rest] = await Promise.all(parts);
    for (const r of rest) addInto(first, r);
    return first;
  };
  return { forward: (x) => add(terms.map((t) => t.forward(x))), backward: (x, dy) => add(terms.map((t) => t.backward(x, dy))) };
}

/**
 * Makes exactly these adapters active on the model (hot swap: nothing is reloaded): each linear
 * module adds the terms of every active adapter that has it, as PEFT's several active adapters do.
 * `activate(m, [])` leaves the base model.
 */
export function activate<F extends FloatDType>(m: CausalLm<F>, adapters: readonly LoadedAdapter<F>[]): void {
  m.adapters.clear();
  for (const [module, terms] of termsByModule(adapters)) m.adapters.set(module, sumOf(terms));
}

/** The adapters' terms grouped by the module they apply to. */
function termsByModule<F extends FloatDType>(adapters: readonly LoadedAdapter<F>[]): Map<string, LinearAdapter<F>[]> {
  const modules = new Map<string, LinearAdapter<F>[]>();
  for (const a of adapters) for (const [module, term] of a.terms) modules.set(module, [...(modules.get(module) ?? []), term]);
  return modules;
}

/** The rows of the identity taken at a time when an update is read out of a term. */
const CHUNK = 256;

/**
 * Folds the adapters into the model's weights, W ← W + ΔW per module (several: their updates, each
 * on the weights as they were, summed), and leaves no adapter active. ΔW is read out of each
 * module's terms by applying them to the identity (every term is linear in x), so it is exact for
 * every method; one module's ΔW is held at a time. The base changes in place: adapters loaded
 * before over these weights (DoRA's norms) are stale after.
 */
export async function mergeAdapters<F extends FloatDType>(m: CausalLm<F>, adapters: readonly LoadedAdapter<F>[]): Promise<void> {
  // Every module found before the first weight changes, so a mismatch leaves the model as it was.
  const targets = [...termsByModule(adapters)].map(([module, terms]) => {
    const w = m.weights.get(`${module}.weight`);
    if (w === undefined) throw new LowrankError('E_SHAPE', `an adapter has module ${module}, which the model does not`, { file: adapters.find((a) => a.terms.has(module))?.dir });
    return { w, terms };
  });
  for (const { w, terms } of targets) {
    const term = sumOf(terms);
    const [out, inF] = w.shape;
    // Read whole before W changes: a term may read W (DoRA).
    const delta = tensor(w.dtype, [out, inF]);
    for (let from = 0; from < inF; from += CHUNK) {
      const rows = Math.min(CHUNK, inF - from);
      const eye = tensor(w.dtype, [rows, inF]);
      for (let i = 0; i < rows; i++) eye.data[i * inF + from + i] = 1;
      const part = await term.forward(eye); // [rows, out] = columns from .. from + rows of ΔW, transposed
      for (let i = 0; i < rows; i++) for (let o = 0; o < out; o++) delta.data[o * inF + from + i] = part.data[i * out + o];
    }
    addInto(w, delta);
  }
  m.adapters.clear();
}
