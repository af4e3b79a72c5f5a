/**
 * The training kernels of every available backend (attention, RMSNorm, SwiGLU, cross-entropy,
 * forward and backward) in float32 and float64, against the float64 reference of
 * src/backend/js/nn.ts run on float64 copies of the same inputs. That reference is itself checked
 * against central differences (test/nn/gradcheck.test.ts) and a numpy forward pass
 * (test/nn/llama.test.ts). Sizes cover the small synchronous path, the multi-threaded one
 * (native: ≥ 2^16 elements, several sequence × kv-head units), grouped-query heads, odd lengths,
 * ignored targets, and inputs where the exponentials clamp.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as linalg from '../../src/linalg/index.js';
import { backend } from '../../src/backend/index.js';
import * as ref from '../../src/backend/js/nn.js';
import type { AttentionShape, FloatArray } from '../../src/backend/types.js';
import { rng } from '../../src/core/rng.js';
import { IGNORE } from '../../src/nn/loss.js';

const BACKENDS = linalg.backendStatus().filter((b) => b.available).map((b) => b.name);

/**
 * max |got − want| / max(max |want|, floor): float32 kernels round every product and accumulate
 * short sums in float32 (T ≤ 64 terms in attention; rows of ≤ 1500 in the reductions, which are
 * summed in double); float64 ones differ from the reference only in summation order.
 */
const TOL = { f32: 2e-5, f64: 1e-12 } as const;

function maxAbs(x: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < x.length; i++) m = Math.max(m, Math.abs(x[i]));
  return m;
}

function close(name: string, got: ArrayLike<number>, want: ArrayLike<number>, tol: number): void {
  assert.equal(got.length, want.length, `${name}: length`);
  let err = 0;
  for (let i = 0; i < got.length; i++) err = Math.max(err, Math.abs(got[i] - want[i]));
  const rel = err / Math.max(maxAbs(want), 1e-30);
  assert.ok(rel <= tol, `${name}: max error ${rel.toExponential(2)} of the largest value (tolerance ${tol})`);
}

/** Normal values of the given scale, rounded to float32 (so both sides see the same inputs). */
function normals(seed: number, n: number, scale = 1): Float64Array {
  const x = rng(seed).fillNormal(new Float64Array(n));
  for (let i = 0; i < n; i++) x[i] = Math.fround(x[i] * scale);
  return x;
}

const as = (dtype: 'f32' | 'f64', x: Float64Array): FloatArray => (dtype === 'f32' ? Float32Array.from(x) : Float64Array.from(x));

const SHAPES: AttentionShape[] = [
  { batch: 2, t: 37, heads: 6, kvHeads: 2, headDim: 8 },
  { batch: 3, t: 64, heads: 4, kvHeads: 4, headDim: 16 },
  { batch: 1, t: 1, heads: 2, kvHeads: 1, headDim: 4 },
];

for (const be of BACKENDS) {
  for (const dtype of ['f32', 'f64'] as const) {
    const tol = TOL[dtype];

    test(`${be} ${dtype}: attention forward and backward equal the float64 reference (grouped-query heads, causal)`, async () => {
      linalg.useBackend(be);
      for (const [i, s] of SHAPES.entries()) {
        const n = s.batch * s.t;
        const [q, k, v, dout] = [normals(10 + i, n * s.heads * s.headDim), normals(20 + i, n * s.kvHeads * s.headDim), normals(30 + i, n * s.kvHeads * s.headDim), normals(40 + i, n * s.heads * s.headDim)];
        const want = ref.attention(q, k, v, s);
        const got = await backend().attention(as(dtype, q), as(dtype, k), as(dtype, v), s);
        close(`o ${i}`, got.o, want.o, tol);
        close(`p ${i}`, got.p, want.p, tol);
        // The future is masked: P is zero above the diagonal.
        for (let r = 0; r < s.t; r++) for (let c = r + 1; c < s.t; c++) assert.equal(got.p[r * s.t + c], 0);
        const wantGrad = ref.attentionBackward(q, k, v, Float64Array.from(want.p), dout, s);
        const gotGrad = await backend().attentionBackward(as(dtype, q), as(dtype, k), as(dtype, v), as(dtype, Float64Array.from(want.p)), as(dtype, dout), s);
        close(`dq ${i}`, gotGrad.dq, wantGrad.dq, tol);
        close(`dk ${i}`, gotGrad.dk, wantGrad.dk, tol);
        close(`dv ${i}`, gotGrad.dv, wantGrad.dv, tol);
      }
    });

    test(`${be} ${dtype}: cached attention equals the float64 reference, which equals training attention on the rows it recomputes; left padding is masked`, async () => {
      linalg.useBackend(be);
      const cases = [
        { batch: 3, t: 5, past: 0, capacity: 9, heads: 6, kvHeads: 2, headDim: 8, start: [0, 2, 4] },
        { batch: 2, t: 1, past: 7, capacity: 12, heads: 4, kvHeads: 4, headDim: 16, start: [0, 3] },
        { batch: 1, t: 1, past: 300, capacity: 301, heads: 12, kvHeads: 4, headDim: 64, start: [0] }, // enough work for threads
      ];
      for (const [i, c] of cases.entries()) {
        const width = c.kvHeads * c.headDim;
        const start = Int32Array.from(c.start);
        const [q, kc, vc] = [normals(50 + i, c.batch * c.t * c.heads * c.headDim), normals(60 + i, c.batch * c.capacity * width), normals(70 + i, c.batch * c.capacity * width)];
        const want = ref.attentionCached(q, kc, vc, start, c);
        close(`o ${i}`, await backend().attentionCached(as(dtype, q), as(dtype, kc), as(dtype, vc), start, c), want, tol);
        // Sequence b alone, its padding dropped and its rows start[b] .. past + t − 1 recomputed by
        // training attention: the query rows that are not padding are the cached answer; padding rows are zero.
        const qw = c.heads * c.headDim;
        for (let b = 0; b < c.batch; b++) {
          const n = c.past + c.t - c.start[b];
          const real = Math.min(c.t, n);
          const rows = (x: Float64Array, from: number) => x.slice(from * width, (from + n) * width);
          const qFull = new Float64Array(n * qw);
          qFull.set(q.subarray((b * c.t + c.t - real) * qw, (b + 1) * c.t * qw), (n - real) * qw);
          const full = ref.attention(qFull, rows(kc, b * c.capacity + c.start[b]), rows(vc, b * c.capacity + c.start[b]), { batch: 1, t: n, heads: c.heads, kvHeads: c.kvHeads, headDim: c.headDim });
          close(`o ${i} sequence ${b}`, want.subarray((b * c.t + c.t - real) * qw, (b + 1) * c.t * qw), full.o.subarray((n - real) * qw), 1e-12);
          assert.equal(maxAbs(want.subarray(b * c.t * qw, (b * c.t + c.t - real) * qw)), 0, `padding rows of sequence ${b}`);
        }
      }
    });

    test(`${be} ${dtype}: RMSNorm forward and backward equal the float64 reference`, async () => {
      linalg.useBackend(be);
      for (const [rows, cols] of [[5, 7], [300, 257]] as const) {
        const [x, g, dy] = [normals(1, rows * cols, 3), normals(2, cols), normals(3, rows * cols)];
        const want = ref.rmsNorm({ rows, cols, data: x }, g, 1e-5);
        const got = await backend().rmsNorm({ rows, cols, data: as(dtype, x) }, as(dtype, g), 1e-5);
        close('y', got.y, want.y, tol);
        close('rstd', got.rstd, want.rstd, tol);
        const wantGrad = ref.rmsNormBackward({ rows, cols, data: dy }, x, g, Float64Array.from(want.rstd));
        const gotGrad = await backend().rmsNormBackward({ rows, cols, data: as(dtype, dy) }, as(dtype, x), as(dtype, g), as(dtype, Float64Array.from(want.rstd)));
        close('dx', gotGrad.dx, wantGrad.dx, tol);
        close('dg', gotGrad.dg, wantGrad.dg, tol);
      }
    });

    test(`${be} ${dtype}: SwiGLU forward and backward equal the float64 reference, large |gate| included`, async () => {
      linalg.useBackend(be);
      for (const n of [9, 100_003]) {
        const [gate, up, dh] = [normals(4, n, 4), normals(5, n), normals(6, n)];
        // Where e^(−a) over- or underflows float32 (and the native exponential clamps).
        gate.set([120, -120, 90, -90, 0].slice(0, n));
        const want = ref.swiglu(gate, up);
        close('h', await backend().swiglu(as(dtype, gate), as(dtype, up)), want, tol);
        const wantGrad = ref.swigluBackward(dh, gate, up);
        const gotGrad = await backend().swigluBackward(as(dtype, dh), as(dtype, gate), as(dtype, up));
        close('dgate', gotGrad.dgate, wantGrad.dgate, tol);
        close('dup', gotGrad.dup, wantGrad.dup, tol);
      }
    });

    test(`${be} ${dtype}: cross-entropy loss and gradient equal the float64 reference; ignored rows count for nothing; NaN shows`, async () => {
      linalg.useBackend(be);
      for (const [rows, vocab] of [[4, 11], [70, 1500]] as const) {
        const x = normals(7, rows * vocab, 5);
        x[3] = 80; // a row whose softmax is one-hot to float32 precision
        const g = rng(8);
        const targets = Int32Array.from({ length: rows }, (_, i) => (i % 3 === 2 ? IGNORE : g.uint32() % vocab));
        const want = ref.crossEntropy({ rows, cols: vocab, data: x }, targets, IGNORE);
        const got = await backend().crossEntropy({ rows, cols: vocab, data: as(dtype, x) }, targets, IGNORE);
        close('loss', [got.lossSum], [want.lossSum], tol);
        close('dlogits', got.dlogits, want.dlogits, tol);
        for (let i = 2; i < rows; i += 3) assert.equal(maxAbs(got.dlogits.subarray(i * vocab, (i + 1) * vocab)), 0, `ignored row ${i}`);
        const bad = as(dtype, x);
        bad[vocab + 1] = NaN;
        assert.ok(Number.isNaN((await backend().crossEntropy({ rows, cols: vocab, data: bad }, targets, IGNORE)).lossSum), 'a NaN logit makes the loss NaN');
      }
    });
  }
}
