import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { initAdapter } from '../../src/tools/init.js';
import { convertToLora } from '../../src/tools/convertToLora.js';
import { getMethod, methodNames } from '../../src/methods/registry.js';
import { openAdapter, type Adapter } from '../../src/io/peft.js';
import { openModel } from '../../src/io/hf.js';
import { tensor } from '../../src/core/tensor.js';
import { LowrankError } from '../../src/core/errors.js';
import { plantedSpectrum, referenceProduct } from '../helpers/reference.js';
import { pythonJson } from '../helpers/python.js';
import { tempDir } from '../helpers/tmp.js';
import { cli } from '../helpers/cli.js';

// Tolerances:
const RECON_TOL = 1e-6; // ‖residual + s·B·A − W‖_F ≤ RECON_TOL·‖W‖_F, float32 (the bound)
const PEFT_RESIDUAL_TOL = 1e-5; // |ours − PEFT's| residual ≤ this·max|W| (two float32 SVD/QR implementations)
const PEFT_FACTOR_TOL = 1e-4; // factors ≤ this·max|factor| apart, up to one sign per component
const NITER_TOL = 1e-3; // randomized PiSSA (niter 4): captured energy within this of the exact top-r energy
const MINOR_TOL = 1e-8; // MiLoRA in float64, σ down to 1e-6: ‖s·B·A − U_min·S·V_minᵀ‖ ≤ this·‖U_min·S·V_minᵀ‖

const FIXTURES = fileURLToPath(new URL('../../../test/fixtures/peft-init/', import.meta.url));
const BASE = join(FIXTURES, 'base');
const TARGETS = ['q_proj', 'v_proj', 'up_proj', 'down_proj'];

function maxAbs(x: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < x.length; i++) m = Math.max(m, Math.abs(x[i]));
  return m;
}

async function factors(a: Adapter): Promise<Map<string, { A: Float64Array; B: Float64Array; r: number; inF: number; out: number; scaling: number }>> {
  const res = new Map<string, { A: Float64Array; B: Float64Array; r: number; inF: number; out: number; scaling: number }>();
  for (const m of a.modules) {
    res.set(m.name, { A: (await a.readAs(m.A.name, 'f64')).data, B: (await a.readAs(m.B.name, 'f64')).data, r: m.A.shape[0], inF: m.A.shape[1], out: m.B.shape[0], scaling: m.scaling });
  }
  return res;
}

test('the registry lists pissa, milora and olora; an unknown method is a usage error naming them', () => {
  for (const n of ['milora', 'olora', 'pissa']) assert.ok(methodNames().includes(n), n);
  assert.throws(() => getMethod('lorax'), (e: unknown) => e instanceof LowrankError && e.code === 'E_USAGE' && /known: .*pissa/.test(e.message));
});

for (const method of ['pissa', 'olora'] as const) {
  test(`${method}: same residual model and (up to sign) the same factors as PEFT 0.21's init_lora_weights="${method}" (fixture)`, async (t) => {
    const root = await tempDir(t);
    const out = join(root, 'adapter');
    const res = await initAdapter({ model: BASE, method, rank: 4, alpha: 8, targets: TARGETS, out });
    assert.equal(res.residualOut, `${out}-residual`);
    const [ours, peft] = [await openAdapter(out), await openAdapter(join(FIXTURES, method, 'adapter'))];
    const [mo, mp, base] = [await openModel(`${out}-residual`), await openModel(join(FIXTURES, method, 'residual')), await openModel(BASE)];
    try {
      assert.deepEqual(ours.file.entries.map((e) => `${e.name} ${e.dtype} ${e.shape.join('x')}`).sort(), peft.file.entries.map((e) => `${e.name} ${e.dtype} ${e.shape.join('x')}`).sort());
      for (const key of ['r', 'lora_alpha', 'use_rslora', 'fan_in_fan_out'] as const) assert.deepEqual(ours.config[key], peft.config[key], key);
      // PEFT would run the init again on load if the config said "${method}": the method is in the file's metadata.
      assert.equal(ours.config.init_lora_weights, true);
      assert.equal(ours.file.metadata?.lowrank_init, method);
      assert.deepEqual([...(ours.config.target_modules as string[])].sort(), [...(peft.config.target_modules as string[])].sort());
      for (const e of mb(base)) {
        const w = (await base.readAs(e, 'f64')).data;
        const got = (await mo.readAs(e, 'f64')).data;
        const ref = (await mp.readAs(e, 'f64')).data;
        const d = got.reduce((m, x, i) => Math.max(m, Math.abs(x - ref[i])), 0);
        assert.ok(d <= PEFT_RESIDUAL_TOL * maxAbs(w), `${e}: residual differs from PEFT's by ${d}`);
      }
      const [fo, fp] = [await factors(ours), await factors(peft)];
      for (const [name, o] of fo) {
        const p = fp.get(name);
        assert.ok(p !== undefined, name);
        for (let k = 0; k < o.r; k++) {
          const rowO = o.A.subarray(k * o.inF, (k + 1) * o.inF);
          const rowP = p.A.subarray(k * o.inF, (k + 1) * o.inF);
          const sign = rowO.reduce((s, x, j) => s + x * rowP[j], 0) < 0 ? -1 : 1;
          const dA = rowO.reduce((m, x, j) => Math.max(m, Math.abs(x - sign * rowP[j])), 0);
          let dB = 0;
          for (let i = 0; i < o.out; i++) dB = Math.max(dB, Math.abs(o.B[i * o.r + k] - sign * p.B[i * o.r + k]));
          assert.ok(dA <= PEFT_FACTOR_TOL * maxAbs(p.A) && dB <= PEFT_FACTOR_TOL * maxAbs(p.B), `${name} component ${k}: A ${dA}, B ${dB}`);
        }
      }
    } finally {
      await Promise.all([ours.close(), peft.close(), mo.close(), mp.close(), base.close()]);
    }
  });
}

/** The targeted weight names of the fixture base. */
function mb(base: { tensors: readonly { name: string }[] }): string[] {
  return base.tensors.map((t) => t.name).filter((n) => TARGETS.some((s) => n.endsWith(`.${s}.weight`)));
}

test('pissa, milora, olora: residual + scaling·B·A reproduces W to 1e-6 (float32), so the layer output is unchanged', async (t) => {
  const root = await tempDir(t);
  const base = await openModel(BASE);
  try {
    for (const method of ['pissa', 'milora', 'olora']) {
      for (const [alpha, rslora] of [[8, false], [3, true]] as const) {
        const out = join(root, `${method}-${alpha}`);
        await initAdapter({ model: BASE, method, rank: 4, alpha, useRslora: rslora, targets: 'all-linear', out });
        const [a, res] = [await openAdapter(out), await openModel(`${out}-residual`)];
        try {
          assert.equal(a.file.metadata?.lowrank_init, method);
          assert.equal(a.modules.length, 7);
          for (const [name, f] of await factors(a)) {
            assert.equal(f.scaling, rslora ? alpha / 2 : alpha / 4);
            const w = (await base.readAs(`${name}.weight`, 'f64')).data;
            const r = (await res.readAs(`${name}.weight`, 'f64')).data;
            const ba = referenceProduct(f.B, f.out, f.r, f.A, f.inF);
            let err = 0;
            let norm = 0;
            for (let i = 0; i < w.length; i++) {
              err += (r[i] + f.scaling * ba[i] - w[i]) ** 2;
              norm += w[i] ** 2;
            }
            assert.ok(Math.sqrt(err / norm) <= RECON_TOL, `${method} ${name}: ${Math.sqrt(err / norm)}`);
          }
        } finally {
          await Promise.all([a.close(), res.close()]);
        }
      }
    }
  } finally {
    await base.close();
  }
});

test('randomized PiSSA (niter 4) captures the top-r energy within 1e-3 of exact PiSSA, on a weight-like spectrum σ_i = i^(-1/2)', async () => {
  const [m, n, r] = [256, 192, 16];
  const sigma = Array.from({ length: n }, (_, i) => (i + 1) ** -0.5);
  const w = tensor('f32', [m, n], Float32Array.from(plantedSpectrum(m, n, sigma, 41).data));
  const captured = async (niter: number | undefined): Promise<number> => {
    const init = await getMethod('pissa').init(w, { rank: r, alpha: 32, niter });
    const ba = referenceProduct(Float64Array.from(init.tensors.B.data), m, r, Float64Array.from(init.tensors.A.data), n);
    return ba.reduce((s, x) => s + (2 * x) ** 2, 0);
  };
  const exact = sigma.slice(0, r).reduce((s, x) => s + x * x, 0); // the planted float64 spectrum
  const [full, randomized] = [await captured(undefined), await captured(4)];
  assert.ok(Math.abs(full - exact) <= 1e-5 * exact, `exact PiSSA ${full} vs ${exact}`);
  assert.ok(Math.abs(randomized - exact) <= NITER_TOL * exact, `niter 4: ${randomized} vs exact ${exact}`);
});

test('MiLoRA: the minor components are right when the smallest singular values are 1e-6 of the largest (float64, numpy)', async () => {
  const [m, n, r] = [40, 30, 4];
  const sigma = Array.from({ length: n }, (_, i) => 10 ** (-6 * i / (n - 1)));
  const w = plantedSpectrum(m, n, sigma, 5).data;
  const init = await getMethod('milora').init(tensor('f64', [m, n], w), { rank: r, alpha: 8 });
  const ba = referenceProduct(Float64Array.from(init.tensors.B.data), m, r, Float64Array.from(init.tensors.A.data), n).map((x) => 2 * x);
  const ref = pythonJson<number[]>(`import json,sys
w=np.array(json.load(sys.stdin),dtype=np.float64).reshape(${m},${n})
U,S,Vt=np.linalg.svd(w,full_matrices=False)
print(json.dumps(((U[:,-${r}:]*S[-${r}:])@Vt[-${r}:]).ravel().tolist()))`, [], JSON.stringify([...w]));
  const norm = Math.sqrt(ref.reduce((s, x) => s + x * x, 0));
  const err = Math.sqrt(ba.reduce((s, x, i) => s + (x - ref[i]) ** 2, 0));
  assert.ok(norm > 0 && err <= MINOR_TOL * norm, `minor part error ${err / norm} (norm ${norm})`);
});

for (const method of ['pissa', 'olora'] as const) {
  test(`convert-to-lora equals PEFT's conversion of a trained ${method} adapter (fixture: r 4 → 8, alpha 8 → 16, [B | −B0]·[A ; A0])`, async (t) => {
    const root = await tempDir(t);
    const dir = join(FIXTURES, method);
    const res = await convertToLora({ initial: join(dir, 'init'), trained: join(dir, 'trained'), out: join(root, 'conv') });
    assert.equal(res.config.r, 8);
    assert.equal(res.config.lora_alpha, 16);
    const [ours, peft] = [await openAdapter(res.out), await openAdapter(join(dir, 'converted'))];
    try {
      assert.deepEqual(ours.file.entries.map((e) => e.name).sort(), peft.file.entries.map((e) => e.name).sort());
      for (const e of peft.file.entries) assert.deepEqual((await ours.read(e.name)).data, (await peft.read(e.name)).data, e.name);
      assert.equal(peft.config.r, 8);
      assert.equal(peft.config.lora_alpha, 16);
    } finally {
      await Promise.all([ours.close(), peft.close()]);
    }
  });
}

test('lowrank init and convert-to-lora CLI: writes adapter and residual, refuses existing outputs, clear errors', async (t) => {
  const root = await tempDir(t);
  const out = join(root, 'pissa');
  const r = cli(['init', '--model', BASE, '--method', 'pissa', '--rank', '4', '--targets', 'q_proj,v_proj', '--niter', '4', '--out', out]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /pissa/);
  const again = cli(['init', '--model', BASE, '--method', 'pissa', '--rank', '4', '--out', out]);
  assert.equal(again.code, 1);
  assert.match(again.stderr, /already exists/);
  const bad = cli(['init', '--model', BASE, '--method', 'nope', '--rank', '4', '--out', join(root, 'x')]);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /unknown method 'nope'/);
  const tooBig = cli(['init', '--model', BASE, '--method', 'olora', '--rank', '40', '--out', join(root, 'y')]);
  assert.equal(tooBig.code, 1);
  assert.match(tooBig.stderr, /rank must be an integer in 1\.\.32/);
  const c = cli(['convert-to-lora', '--initial', join(FIXTURES, 'pissa', 'init'), '--trained', join(FIXTURES, 'pissa', 'trained'), '--out', join(root, 'conv')]);
  assert.equal(c.code, 0, c.stderr);
  assert.match(c.stdout, /r = 8/);
});
