/**
 * The tensor building blocks against numpy (float64, on the same seeded inputs): unfold and fold
 * (TensorLy's ordering: moveaxis(x, n, 0).reshape(I_n, -1)), mode products (every route: first,
 * middle with wide and narrow trailing blocks, last mode; with and without transpose), the
 * multi-mode product, Khatri–Rao (TensorLy's ordering), Kronecker, permute and reshape; and their
 * typed errors.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tensor, type Tensor } from '../../src/core/tensor.js';
import { rng } from '../../src/core/rng.js';
import { LowrankError } from '../../src/core/errors.js';
import { fold, permute, reshape, unfold } from '../../src/tensor/unfold.js';
import { khatriRao, kron, modeProduct, multiModeProduct } from '../../src/tensor/products.js';
import { pythonJson } from '../helpers/python.js';

type Dt = 'f32' | 'f64';
/** Relative tolerances of results against numpy's float64 (a few roundings per element). */
const TOL: Record<Dt, number> = { f32: 1e-6, f64: 1e-14 };

function random(dt: Dt, shape: number[], seed: number): Tensor<Dt> {
  const values = rng(seed).fillNormal(new Float64Array(shape.reduce((a, b) => a * b, 1)));
  return tensor(dt, shape, dt === 'f32' ? Float32Array.from(values) : values) as Tensor<Dt>;
}

/** Runs numpy on the given arrays (sent as nested lists of float64) and returns a flat result with its shape. */
function numpy(script: string, arrays: Record<string, Tensor<Dt>>): { shape: number[]; data: number[] } {
  const input = JSON.stringify(Object.fromEntries(Object.entries(arrays).map(([k, t]) => [k, { shape: t.shape, data: Array.from(t.data) }])));
  return pythonJson(
    `import json, sys
d = {k: np.array(v['data'], dtype=np.float64).reshape(v['shape']) for k, v in json.loads(sys.stdin.read()).items()}
${script}
print(json.dumps({'shape': list(r.shape), 'data': r.ravel().tolist()}))`,
    [],
    input,
  );
}

function assertClose(got: Tensor<Dt>, want: { shape: number[]; data: number[] }, tol: number, label: string): void {
  assert.deepEqual(got.shape, want.shape, `${label}: shape`);
  let big = 0;
  for (const v of want.data) big = Math.max(big, Math.abs(v));
  for (let i = 0; i < want.data.length; i++) {
    assert.ok(Math.abs(got.data[i] - want.data[i]) <= tol * Math.max(big, 1), `${label}: element ${i} is ${got.data[i]}, numpy ${want.data[i]}`);
  }
}

for (const dt of ['f32', 'f64'] as const) {
  test(`unfold and fold ${dt} match numpy's moveaxis/reshape and invert each other`, () => {
    const x = random(dt, [3, 4, 5, 2], 1);
    for (let n = 0; n < 4; n++) {
      const u = unfold(x, n);
      assertClose(u, numpy(`r = np.moveaxis(d['x'], ${n}, 0).reshape(${x.shape[n]}, -1)`, { x }), 0, `unfold mode ${n}`);
      assert.deepEqual(Array.from(fold(u, n, x.shape).data), Array.from(x.data), `fold(unfold(x, ${n}))`);
    }
    assert.deepEqual(unfold(x, -1).shape, [2, 60]);
  });

  test(`modeProduct ${dt} matches numpy on every route (first, middle wide and narrow, last; transposed)`, async () => {
    const cases: [number[], number][] = [
      [[6, 40, 3], 0],
      [[5, 7, 40], 1],
      [[5, 7, 3], 1],
      [[4, 5, 6, 2], 2],
      [[5, 7, 9], 2],
    ];
    for (const [k, [shape, n]] of cases.entries()) {
      const x = random(dt, shape, 10 + k);
      const m = random(dt, [4, shape[n]], 20 + k);
      const want = numpy(`r = np.moveaxis(np.tensordot(d['m'], d['x'], axes=([1], [${n}])), 0, ${n})`, { x, m });
      assertClose(await modeProduct(x, m, n), want, TOL[dt], `x[${shape}] ×${n} M`);
      const mt = random(dt, [shape[n], 4], 30 + k);
      const wantT = numpy(`r = np.moveaxis(np.tensordot(d['m'].T, d['x'], axes=([1], [${n}])), 0, ${n})`, { x, m: mt });
      assertClose(await modeProduct(x, mt, n, { transpose: true }), wantT, TOL[dt], `x[${shape}] ×${n} Mᵀ`);
    }
  });

  test(`multiModeProduct ${dt} equals the chain of mode products in any order`, async () => {
    const x = random(dt, [6, 5, 4], 40);
    const ms = [random(dt, [6, 2], 41), random(dt, [5, 3], 42), random(dt, [4, 4], 43)];
    const want = numpy("r = np.einsum('ijk,ia,jb,kc->abc', d['x'], d['a'], d['b'], d['c'])", { x, a: ms[0], b: ms[1], c: ms[2] });
    assertClose(await multiModeProduct(x, ms, { transpose: true }), want, 4 * TOL[dt], 'x ×₀ Aᵀ ×₁ Bᵀ ×₂ Cᵀ');
    const sub = await multiModeProduct(x, [ms[2], ms[0]], { transpose: true, modes: [2, 0] });
    const wantSub = numpy("r = np.einsum('ijk,ia,kc->ajc', d['x'], d['a'], d['c'])", { x, a: ms[0], c: ms[2] });
    assertClose(sub, wantSub, 4 * TOL[dt], 'modes [2, 0]');
  });

  test(`khatriRao and kron ${dt} match numpy`, () => {
    const a = random(dt, [3, 4], 50);
    const b = random(dt, [5, 4], 51);
    const c = random(dt, [2, 4], 52);
    const want = numpy("r = np.einsum('ir,jr,kr->ijkr', d['a'], d['b'], d['c']).reshape(-1, 4)", { a, b, c });
    assertClose(khatriRao([a, b, c]), want, TOL[dt], 'khatriRao([a, b, c])');
    const p = random(dt, [2, 3], 53);
    const q = random(dt, [4, 5], 54);
    assertClose(kron(p, q), numpy("r = np.kron(d['p'], d['q'])", { p, q }), TOL[dt], 'kron(p, q)');
  });

  test(`permute and reshape ${dt}`, () => {
    const x = random(dt, [2, 3, 4, 5], 60);
    assertClose(permute(x, [2, 0, 3, 1]), numpy("r = np.transpose(d['x'], (2, 0, 3, 1))", { x }), 0, 'permute');
    const y = reshape(x, [6, -1]);
    assert.deepEqual(y.shape, [6, 20]);
    assert.equal(y.data, x.data, 'reshape shares the data');
  });
}

test('building blocks reject bad arguments with typed errors', async () => {
  const x = random('f64', [3, 4, 5], 70);
  const code = (c: string) => (e: unknown) => e instanceof LowrankError && e.code === c;
  assert.throws(() => unfold(x, 3), code('E_USAGE'));
  assert.throws(() => unfold(x, 1.5), code('E_USAGE'));
  assert.throws(() => fold(unfold(x, 0), 1, x.shape), code('E_SHAPE'));
  await assert.rejects(modeProduct(x, random('f64', [2, 5], 71), 1), code('E_SHAPE'));
  await assert.rejects(modeProduct(x, random('f32', [2, 4], 72), 1), code('E_USAGE'));
  assert.throws(() => khatriRao([random('f64', [3, 2], 73), random('f64', [3, 3], 74)]), code('E_SHAPE'));
  assert.throws(() => reshape(x, [7, -1]), code('E_SHAPE'));
  assert.throws(() => reshape(x, [-1, -1]), code('E_SHAPE'));
  assert.throws(() => permute(x, [0, 0, 1]), code('E_USAGE'));
  const bad = random('f64', [2, 2], 75);
  bad.data[3] = Number.NaN;
  assert.throws(() => unfold(bad, 0), code('E_NONFINITE'));
  assert.throws(() => unfold(tensor('f64', [0, 3]), 0), code('E_SHAPE'));
});
