/**
 * The checks every method of the adapter engine passes, in float64, on a few random layers that
 * share the method's state (two of one shape, one of another):
 *  - the layers start unchanged (for methods that start at ΔW = 0);
 *  - after moving every trained tensor (per-layer and shared) off its init, the analytic gradients
 *    of x, of every per-layer tensor and of every shared tensor (summed over the layers) match
 *    central differences of Σ_layers ⟨y, r⟩;
 *  - the method's ΔW (`delta`) added to the original weight gives the trained layer (merged equals
 *    unmerged);
 *  - saved in its format and read back, the adapter's ΔW is the same (to float32 rounding), and
 *    the trainable-parameter counts are the sizes of the trained tensors.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { tensor, type Tensor } from '../../src/core/tensor.js';
import { rng } from '../../src/core/rng.js';
import { linearBackward, linearForward } from '../../src/nn/linear.js';
import { matmul } from '../../src/linalg/matmul.js';
import { toDense } from '../../src/linalg/lowrank.js';
import { getMethod } from '../../src/methods/registry.js';
import { residual } from '../../src/methods/split.js';
import { readMethodFolder, writeMethodFolder } from '../../src/methods/adapterFile.js';
import { NO_SHARED } from '../../src/methods/shared.js';
import { type InitOptions, type LayerShape, type Shared, type TrainTerm } from '../../src/methods/types.js';
import { checkGradient, someEntries } from '../helpers/gradcheck.js';
import { tempDir } from '../helpers/tmp.js';

const H = 1e-5;
const TOL = 1e-7; // |numeric − analytic| ≤ TOL·max|analytic|
const SAME = 1e-12; // outputs that must agree, relative to their largest entry
const SAVED = 2e-6; // after a float32 round trip

export function rand(seed: number, shape: readonly number[], std = 1): Tensor<'f64'> {
  return tensor('f64', shape, rng(seed).fillNormal(new Float64Array(shape.reduce((a, b) => a * b, 1)), 0, std));
}
const dot = (a: Tensor<'f64'>, b: Tensor<'f64'>): number => a.data.reduce((s, x, i) => s + x * b.data[i], 0);
const maxAbs = (t: Tensor<'f64'>): number => Math.max(1e-300, ...Array.from(t.data, Math.abs));
function assertClose(got: Tensor<'f64'>, want: Tensor<'f64'>, tol: number, what: string): void {
  const scale = maxAbs(want);
  const worst = got.data.reduce((m, v, i) => Math.max(m, Math.abs(v - want.data[i])), 0);
  assert.ok(worst <= tol * scale, `${what}: max difference ${worst} > ${tol}·${scale}`);
}

export interface HarnessOptions {
  readonly opts: InitOptions;
  /** Layer shapes [out, in]; default two 6×8 and one 4×8. */
  readonly shapes?: readonly (readonly [number, number])[];
  /** The method starts at ΔW = 0. */
  readonly startsUnchanged: boolean;
  /** Std of the moves of the trained tensors before the gradient check. Default 0.3. */
  readonly move?: number;
  /** Entries checked per tensor (first, last and this many seeded picks); default all. */
  readonly sample?: number;
}

/** Runs every check of the module comment for one method. */
export async function checkMethod(t: TestContext, name: string, h: HarnessOptions): Promise<void> {
  const method = getMethod(name);
  const shapes = h.shapes ?? [[6, 8], [6, 8], [4, 8]];
  const layers: LayerShape[] = shapes.map((shape, i) => ({ name: `model.layers.${i}.proj`, shape: [shape[0], shape[1]] }));
  const shared: Shared<'f64'> = method.prepare === undefined ? NO_SHARED : await method.prepare(layers, h.opts, 'f64');
  const ws = layers.map((l, i) => rand(100 + i, l.shape));
  const built: { term: TrainTerm<'f64'>; base: Tensor<'f64'>; frozen: Record<string, Tensor<'f64'>>; x: Tensor<'f64'>; r: Tensor<'f64'>; opts: InitOptions }[] = [];
  for (const [i, l] of layers.entries()) {
    const opts = { ...h.opts, seed: (h.opts.seed ?? 0) + i, layer: { name: l.name, index: i } };
    const init = await method.init(ws[i], opts, shared);
    const base = init.removed === undefined ? ws[i] : ((await residual(ws[i], init.removed)) as Tensor<'f64'>);
    assert.ok(method.trainTerm !== undefined, `${name} has a training term`);
    const term = method.trainTerm(base, init, opts, shared);
    built.push({ term, base, frozen: init.tensors as Record<string, Tensor<'f64'>>, x: rand(200 + i, [5, l.shape[1]]), r: rand(300 + i, [5, l.shape[0]]), opts });
  }
  const forward = (i: number): Promise<Tensor<'f64'>> => linearForward({ weight: built[i].base, adapter: built[i].term }, built[i].x);
  if (h.startsUnchanged) {
    for (const [i, b] of built.entries()) assertClose(await forward(i), await matmul(b.x, ws[i], { transB: true }), SAME, `${name} layer ${i} starts unchanged`);
  }

  // Per-layer trained tensors and shared ones, moved off their init.
  const sharedTrained = Object.keys(shared.grads);
  let s = 10;
  const move = (p: Tensor<'f64'>): void => {
    for (let i = 0; i < p.data.length; i++) p.data[i] += (h.move ?? 0.3) * rng(s++).normal();
  };
  for (const b of built) for (const p of Object.values(b.term.params)) move(p);
  for (const role of sharedTrained) move(shared.tensors[role]);

  const loss = async (): Promise<number> => {
    let total = 0;
    for (const [i, b] of built.entries()) total += dot(await forward(i), b.r);
    return total;
  };
  for (const b of built) for (const g of Object.values(b.term.grads)) g.data.fill(0);
  for (const g of Object.values(shared.grads)) g.data.fill(0);
  const dxs: Tensor<'f64'>[] = [];
  for (const b of built) dxs.push(await linearBackward({ weight: b.base, adapter: b.term }, b.x, b.r));
  const pick = (n: number, seed: number): Iterable<number> | undefined => (h.sample === undefined ? undefined : someEntries(n, rng(seed).uniform, h.sample));
  const check = { h: H, tol: TOL };
  for (const [i, b] of built.entries()) {
    await checkGradient(`${name} layer ${i} dx`, b.x, dxs[i], loss, { ...check, entries: pick(b.x.data.length, i) });
    for (const [role, p] of Object.entries(b.term.params)) await checkGradient(`${name} layer ${i} d${role}`, p, b.term.grads[role], loss, { ...check, entries: pick(p.data.length, 50 + i) });
  }
  for (const role of sharedTrained) await checkGradient(`${name} shared d${role}`, shared.tensors[role], shared.grads[role], loss, { ...check, entries: pick(shared.tensors[role].data.length, 99) });

  // Merged equals unmerged: W + ΔW on the original weight gives the trained layer.
  assert.ok(method.delta !== undefined, `${name} has a delta`);
  const tensorsOf = (b: (typeof built)[number]): Record<string, Tensor<'f64'>> => ({ ...b.frozen, ...b.term.params });
  const deltas: Tensor<'f64'>[] = [];
  for (const [i, b] of built.entries()) {
    const d = await toDense(await method.delta(tensorsOf(b), shared, b.opts, layers[i].shape));
    deltas.push(d);
    const merged = tensor('f64', ws[i].shape, ws[i].data.map((v, j) => v + d.data[j]));
    assertClose(await matmul(b.x, merged, { transB: true }), await forward(i), SAME, `${name} layer ${i}: merged vs unmerged`);
  }

  // Saved in the method's format and read back: the same ΔW.
  const dir = join(await tempDir(t), 'adapter');
  const modules = new Map(layers.map((l, i) => [l.name, tensorsOf(built[i])]));
  await writeMethodFolder(dir, { method, opts: h.opts, layers, modules, shared, fanInFanOut: false });
  const back = await readMethodFolder(dir, 'f64');
  assert.equal(back.method.name, name);
  assert.deepEqual(back.layers.map((l) => [l.name, ...l.shape]), layers.map((l) => [l.name, ...l.shape]));
  for (const [i, l] of layers.entries()) {
    const d = await toDense(await method.delta(back.modules.get(l.name) ?? {}, back.shared, { ...back.opts, seed: built[i].opts.seed }, l.shape));
    assertClose(d, deltas[i], SAVED, `${name} layer ${i}: ΔW after save and load`);
  }

  // Parameter counts are the trained tensors' sizes.
  for (const [i, b] of built.entries()) {
    const n = Object.values(b.term.params).reduce((a, p) => a + p.data.length, 0);
    assert.equal(method.trainableParams(layers[i].shape[0], layers[i].shape[1], h.opts.rank, h.opts), n, `${name} layer ${i} trainable parameters`);
  }
  const nShared = sharedTrained.reduce((a, r) => a + shared.tensors[r].data.length, 0);
  assert.equal(method.sharedParams?.(layers, h.opts) ?? 0, nShared, `${name} shared trainable parameters`);
}
