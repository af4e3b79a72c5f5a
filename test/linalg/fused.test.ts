/**
 * The fused kernels on every available backend: matmulAdd (c + α·op(a)·op(b)) against a float64
 * product, and the bf16/f16 conversions of encodeAs/decodeAs bit for bit against core/dtype's
 * (which test/core/dtype.test.ts checks against float64 references and numpy).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as linalg from '../../src/linalg/index.js';
import { encodeFloat, tensor } from '../../src/core/tensor.js';
import type { FloatDType } from '../../src/core/dtype.js';
import { bf16ToF32, f16ToF32, f32ToBf16, f32ToF16 } from '../../src/core/dtype.js';
import { LowrankError } from '../../src/core/errors.js';
import { rng } from '../../src/core/rng.js';
import { mul, transpose } from './cases.js';

/** max |C − C_ref| / (max |c| + |α|·max_ij Σ_k |a_ik||b_kj|): the rounding of one gemm and one add. */
const TOL: Record<'f32' | 'f64', number> = { f32: 1e-5, f64: 1e-12 };
const BACKENDS = linalg.backendStatus().filter((b) => b.available).map((b) => b.name);

function maxAbs(x: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < x.length; i++) m = Math.max(m, Math.abs(x[i]));
  return m;
}

for (const be of BACKENDS) {
  for (const dtype of ['f32', 'f64'] as const satisfies readonly FloatDType[]) {
    test(`${be} ${dtype}: matmulAdd equals c + α·op(a)·op(b) in float64, leaves c alone, checks shapes`, async () => {
      linalg.useBackend(be);
      const g = rng(41);
      const F = dtype === 'f32' ? Float32Array : Float64Array;
      // Small (the synchronous path), tall-skinny (a residual W − s·B·A) and one with k = 0.
      for (const [m, k, n] of [[3, 2, 4], [70, 16, 90], [300, 5, 257], [4, 0, 3]] as const) {
        for (const [transA, transB] of [[false, false], [true, false], [false, true], [true, true]] as const) {
          const a64 = g.fillNormal(new Float64Array(m * k));
          const b64 = g.fillNormal(new Float64Array(k * n));
          const c64 = g.fillNormal(new Float64Array(m * n));
          const alpha = -0.75;
          // Round the inputs to the dtype first: the reference sees the same values.
          const a = F.from(a64);
          const b = F.from(b64);
          const c = F.from(c64);
          const at = tensor(dtype, transA ? [k, m] : [m, k], F.from(transA ? transpose(a, m, k) : a));
          const bt = tensor(dtype, transB ? [n, k] : [k, n], F.from(transB ? transpose(b, k, n) : b));
          const ct = tensor(dtype, [m, n], F.from(c));
          const got = await linalg.matmulAdd(ct, at, bt, { alpha, transA, transB });
          assert.deepEqual(got.shape, [m, n]);
          assert.deepEqual(Array.from(ct.data), Array.from(c), 'c is not modified');
          const p = mul(a, m, k, b, n);
          const absP = mul(Float64Array.from(a, Math.abs), m, k, Float64Array.from(b, Math.abs), n);
          const scale = maxAbs(c) + Math.abs(alpha) * maxAbs(absP);
          let err = 0;
          for (let i = 0; i < m * n; i++) err = Math.max(err, Math.abs(got.data[i] - (c[i] + alpha * p[i])));
          assert.ok(err <= TOL[dtype] * scale, `${m}×${k}×${n} ${transA ? 'Aᵀ' : 'A'}${transB ? 'Bᵀ' : 'B'}: error ${err / scale} > ${TOL[dtype]}`);
        }
      }
      const two = tensor(dtype, [2, 2]);
      await assert.rejects(linalg.matmulAdd(tensor(dtype, [3, 2]), two, two), (e: unknown) => e instanceof LowrankError && e.code === 'E_SHAPE');
      await assert.rejects(linalg.matmulAdd(two, two, tensor(dtype, [2, 2], F.of(1, NaN, 0, 0))), (e: unknown) => e instanceof LowrankError && e.code === 'E_NONFINITE');
    });
  }

  test(`${be}: matmulAddAs rounds c + α·op(a)·op(b) once to bf16/f16 (within half a unit in the last place of the float64 value)`, async () => {
    linalg.useBackend(be);
    const g = rng(43);
    // 700 × 300: several row blocks of the native kernel, and a last partial one.
    for (const [m, k, n] of [[5, 3, 4], [700, 16, 300]] as const) {
      for (const [transA, transB] of [[false, false], [true, true]] as const) {
        const a = Float32Array.from(g.fillNormal(new Float64Array(m * k)));
        const b = Float32Array.from(g.fillNormal(new Float64Array(k * n)));
        const c = Float32Array.from(g.fillNormal(new Float64Array(m * n)));
        const at = tensor('f32', transA ? [k, m] : [m, k], Float32Array.from(transA ? transpose(a, m, k) : a));
        const bt = tensor('f32', transB ? [n, k] : [k, n], Float32Array.from(transB ? transpose(b, k, n) : b));
        const p = mul(a, m, k, b, n);
        for (const format of ['bf16', 'f16'] as const) {
          const got = await linalg.matmulAddAs(tensor('f32', [m, n], c), at, bt, format, { alpha: 0.5, transA, transB });
          assert.equal(got.dtype, format);
          const values = format === 'bf16' ? bf16ToF32(got.data) : f16ToF32(got.data);
          const halfUlp = format === 'bf16' ? 2 ** -8 : 2 ** -11;
          for (let i = 0; i < m * n; i++) {
            const want = c[i] + 0.5 * p[i];
            // rounding to the 16-bit type, plus the float32 sum's own error (k·2^-24 of the terms)
            const bound = halfUlp * Math.abs(want) + 2 ** -24 * (Math.abs(c[i]) + 0.5 * k * 16) + (format === 'f16' ? 2 ** -25 : 0);
            assert.ok(Math.abs(values[i] - want) <= bound, `${format} ${m}×${k}×${n} [${i}]: ${values[i]} vs ${want}`);
          }
        }
      }
    }
  });

  test(`${be}: bf16/f16 encodeAs and decodeAs equal core/dtype's conversions bit for bit`, async () => {
    linalg.useBackend(be);
    const codes = new Uint16Array(65536).map((_, i) => i);
    for (const format of ['bf16', 'f16'] as const) {
      const want = format === 'bf16' ? bf16ToF32(codes) : f16ToF32(codes);
      const got = await linalg.decodeAs(tensor(format, [256, 256], codes), 'f32');
      assert.equal(got.dtype, 'f32');
      assert.deepEqual(got.shape, [256, 256]);
      const gotBits = new Uint32Array(got.data.buffer, got.data.byteOffset, got.data.length);
      const wantBits = new Uint32Array(want.buffer);
      for (let i = 0; i < 65536; i++) assert.equal(gotBits[i], wantBits[i], `${format} code ${i.toString(16)}`);
    }
    // Random bit patterns (NaN, Inf and subnormal f32 included), values in f16's range, and ties.
    const g = rng(5);
    const bits = new Uint32Array(300_000);
    for (let i = 0; i < bits.length; i++) bits[i] = g.uint32();
    const f = new Float32Array(bits.buffer);
    for (let i = 0; i < 100_000; i++) f[i] = (g.uniform() - 0.5) * 2 ** (g.uniform() * 48 - 30);
    for (let i = 100_000; i < 110_000; i++) bits[i] = (bits[i] & 0xffff0000) | 0x8000; // bf16 ties
    for (let i = 110_000; i < 120_000; i++) bits[i] = (bits[i] & 0xffffe000) | 0x1000; // f16 ties
    bits.set([0x7f800000, 0xff800000, 0x7fc00000, 0x7f800001, 0xffffffff, 0, 0x80000000, 1, 0x477fefff, 0x477ff000], 120_000);
    for (const format of ['bf16', 'f16'] as const) {
      const want = format === 'bf16' ? f32ToBf16(f) : f32ToF16(f);
      const got = await linalg.encodeAs(tensor('f32', [bits.length], f), format);
      assert.equal(got.dtype, format);
      for (let i = 0; i < bits.length; i++) assert.equal(got.data[i], want[i], `${format} of f32 bits ${bits[i].toString(16)}`);
    }
    // Other dtype pairs go through core/tensor unchanged.
    const x64 = tensor('f64', [3], Float64Array.of(1 / 3, -2.5, 1e-9));
    assert.deepEqual(Array.from((await linalg.encodeAs(x64, 'bf16')).data), Array.from(encodeFloat(x64, 'bf16').data));
    assert.deepEqual(Array.from((await linalg.decodeAs(tensor('bf16', [2], Uint16Array.of(0x3f80, 0xc020)), 'f64')).data), [1, -2.5]);
  });
}
