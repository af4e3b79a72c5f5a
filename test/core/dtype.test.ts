import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  bf16ToF32, bitsToF32, f16ToF32, f32BitsToBf16, f32ToBf16, f32ToBits, f32ToF16, f64ToHalf, f8e4m3Table, f8e5m2Table,
} from '../../src/core/dtype.js';
import { rng } from '../../src/core/rng.js';
import { pythonJson } from '../helpers/python.js';

/** Value of a positive 16-bit float with `eb` exponent bits and bias (1 + mantissa/2^mb) * 2^(e - bias), in f64. */
function value16(h: number, eb: number): number {
  const mb = 15 - eb;
  const bias = (1 << (eb - 1)) - 1;
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> mb) & ((1 << eb) - 1);
  const m = h & ((1 << mb) - 1);
  if (e === 0) return s * m * 2 ** (1 - bias - mb);
  if (e === (1 << eb) - 1) return m === 0 ? s * Infinity : NaN;
  return s * (1 + m / 2 ** mb) * 2 ** (e - bias);
}

/** Edge-case f32 bit patterns: zeros, subnormals, halfway points, max, Inf, NaN, plus `n` random ones. */
function f32Samples(n: number, seed: number): Uint32Array {
  const fixed = [
    0, 0x80000000, 1, 0x007fffff, 0x00800000, 0x3f800000, 0x3f808000, 0x3f818000, 0x3f80c000, 0x7f7fffff, 0x7f7f8000,
    0x7f7f7fff, 0x7f800000, 0xff800000, 0x7fc00000, 0xffc00000, 0x7f800001, 0x33000000, 0x33000001, 0x387fc000,
    0x387fe000, 0x38800000, 0x477fe000, 0x477ff000, 0x477fefff, 0x47800000, 0x32ffffff, 0x33800000, 0x33c00000,
  ];
  const out = new Uint32Array(n + fixed.length);
  out.set(fixed);
  const g = rng(seed);
  for (let i = fixed.length; i < out.length; i++) {
    // Half fully random bit patterns, half in the f16 range where rounding matters most.
    out[i] = i % 2 === 0 ? g.uint32() : f32ToBits((g.uniform() * 2 - 1) * 2 ** (Math.floor(g.uniform() * 44) - 28));
  }
  return out;
}

test('bf16 → f32 is exact for all 65536 codes (checked against the f64 value of each code)', () => {
  const codes = Uint16Array.from({ length: 65536 }, (_, i) => i);
  const out = bf16ToF32(codes);
  for (let h = 0; h < 65536; h++) {
    const e = (h >> 7) & 0xff;
    if (e === 0xff) {
      assert.equal(Number.isNaN(out[h]), (h & 0x7f) !== 0, `code ${h}`);
      if ((h & 0x7f) === 0) assert.equal(out[h], h & 0x8000 ? -Infinity : Infinity);
    } else {
      assert.ok(Object.is(out[h], value16(h, 8)), `code ${h}: ${out[h]} vs ${value16(h, 8)}`);
    }
  }
});

test('f32 → bf16 rounds to nearest, ties to even, against an f64 reference (tolerance: exact)', () => {
  const samples = f32Samples(400_000, 11);
  const f32 = new Float32Array(samples.buffer);
  const got = f32ToBf16(f32);
  const up = (h: number): number => ((h & 0x7f80) === 0x7f80 ? Infinity : Math.abs(value16(h, 8)));
  for (let i = 0; i < samples.length; i++) {
    const b = samples[i];
    const x = f32[i];
    if (Number.isNaN(x)) {
      assert.ok(Number.isNaN(bitsToF32(got[i] << 16)), `NaN stays NaN (bits ${b.toString(16)})`);
      assert.equal(got[i] & 0x8000, (b >>> 16) & 0x8000, 'NaN keeps its sign');
      continue;
    }
    const lo = b >>> 16; // truncation toward zero in magnitude
    const hi = lo + 1;
    const ax = Math.abs(x);
    const vlo = Math.abs(value16(lo & 0x7fff, 8));
    // The value the next code would have if the exponent did not saturate: 2^128 for Inf.
    const vhi = (hi & 0x7f80) === 0x7f80 ? 2 ** 128 : up(hi & 0x7fff);
    let want: number;
    if (!Number.isFinite(x)) want = lo;
    else if (ax - vlo < vhi - ax) want = lo;
    else if (ax - vlo > vhi - ax) want = hi;
    else want = (lo & 1) === 0 ? lo : hi;
    assert.equal(got[i], want & 0xffff, `f32 bits ${b.toString(16)} → bf16 ${got[i].toString(16)}, want ${want.toString(16)}`);
  }
  assert.equal(f32BitsToBf16(0x3f808000), 0x3f80, 'tie 1 + 2^-8 rounds to even (down)');
  assert.equal(f32BitsToBf16(0x3f818000), 0x3f82, 'tie 1 + 3·2^-8 rounds to even (up)');
});

test('f16 ↔ f32 match numpy bit for bit (all 65536 codes; 200k f32 values incl. subnormals and ties)', () => {
  const codes = Uint16Array.from({ length: 65536 }, (_, i) => i);
  const ours = new Uint32Array(f16ToF32(codes).buffer);
  const ref = pythonJson<number[]>('import json; print(json.dumps(np.arange(65536, dtype=np.uint16).view(np.float16).astype(np.float32).view(np.uint32).tolist()))');
  for (let h = 0; h < 65536; h++) {
    const isNan = (h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0;
    if (isNan) {
      assert.ok(Number.isNaN(bitsToF32(ours[h])) && (ours[h] >>> 31) === h >>> 15, `NaN code ${h}`);
    } else {
      assert.equal(ours[h], ref[h], `f16 code ${h}`);
      assert.ok(Object.is(bitsToF32(ours[h]), value16(h, 5)), `f16 code ${h} against its f64 value`);
    }
  }
  const samples = f32Samples(200_000, 12);
  const got = f32ToF16(new Float32Array(samples.buffer));
  const want = pythonJson<number[]>(
    'import sys, json; a = np.array(json.loads(sys.stdin.read()), dtype=np.uint32).view(np.float32)\n' +
      'print(json.dumps(a.astype(np.float16).view(np.uint16).tolist()))',
    [],
    JSON.stringify(Array.from(samples)),
  );
  for (let i = 0; i < samples.length; i++) {
    if (Number.isNaN(bitsToF32(samples[i]))) {
      assert.ok((got[i] & 0x7c00) === 0x7c00 && (got[i] & 0x3ff) !== 0, 'NaN stays NaN');
      assert.equal(got[i] >>> 15, samples[i] >>> 31, 'NaN keeps its sign');
    } else {
      assert.equal(got[i], want[i], `f32 bits ${samples[i].toString(16)}`);
    }
  }
});

test('fp8 tables follow the OCP FP8 definitions (E4M3FN: max 448, no Inf; E5M2: IEEE-like)', () => {
  const e4 = f8e4m3Table();
  assert.equal(e4[0x38], 1);
  assert.equal(e4[0x7e], 448);
  assert.equal(e4[0xfe], -448);
  assert.equal(e4[0x01], 2 ** -9);
  assert.equal(e4[0x08], 2 ** -6);
  assert.ok(Number.isNaN(e4[0x7f]) && Number.isNaN(e4[0xff]));
  assert.ok(Object.is(e4[0x80], -0));
  const e5 = f8e5m2Table();
  assert.equal(e5[0x3c], 1);
  assert.equal(e5[0x7b], 57344);
  assert.equal(e5[0x7c], Infinity);
  assert.equal(e5[0xfc], -Infinity);
  assert.ok(Number.isNaN(e5[0x7d]) && Number.isNaN(e5[0x7f]));
  assert.equal(e5[0x01], 2 ** -16);
  assert.equal(e5[0x04], 2 ** -14);
  for (const [t, last] of [[e4, 0x7e], [e5, 0x7b]] as const) {
    for (let c = 1; c <= last; c++) assert.ok(t[c] > t[c - 1], `codes increase at ${c}`);
    for (let c = 0; c <= last; c++) assert.ok(Object.is(t[c | 0x80], -t[c]), `sign bit at ${c}`);
  }
});

test('f64 → bf16/f16 rounds once (no double rounding through f32): f16 against numpy, bf16 against an f64 reference', () => {
  const g = rng(13);
  const xs = new Float64Array(100_000);
  for (let i = 0; i < xs.length; i++) xs[i] = (g.uniform() * 2 - 1) * 2 ** (Math.floor(g.uniform() * 40) - 26);
  // Values just above a bf16/f16 halfway point by less than an f32 ulp: f64 → f32 → 16-bit rounds them wrongly.
  xs.set([1 + 2 ** -8 + 2 ** -30, 1 + 2 ** -11 + 2 ** -40, -(1 + 2 ** -8 + 2 ** -30), 1 + 3 * 2 ** -8 - 2 ** -30, 65519.99999, 2 ** -25 + 2 ** -60, 1e300, 0, -0]);
  const f16 = f64ToHalf(xs, 'f16');
  const want = pythonJson<number[]>(
    'import sys, json, base64; a = np.frombuffer(base64.b64decode(sys.stdin.read()), dtype=np.float64)\nprint(json.dumps(a.astype(np.float16).view(np.uint16).tolist()))',
    [],
    Buffer.from(xs.buffer).toString('base64'),
  );
  for (let i = 0; i < xs.length; i++) assert.equal(f16[i], want[i], `f16 of ${xs[i]}`);
  const bf = f64ToHalf(xs, 'bf16');
  for (let i = 0; i < xs.length; i++) {
    const x = xs[i];
    const got = value16(bf[i], 8);
    // Nearest bf16 by exhaustive comparison with the two neighbours of the result.
    for (const nb of [bf[i] - 1, bf[i] + 1]) {
      if ((nb & 0x7fff) >= 0x7f80 || (bf[i] & 0x7fff) >= 0x7f80 || nb < 0 || nb > 0xffff || (bf[i] & 0x7fff) === 0) continue;
      const other = value16(nb, 8);
      const dGot = Math.abs(x - got);
      const dOther = Math.abs(x - other);
      assert.ok(dGot < dOther || (dGot === dOther && (bf[i] & 1) === 0), `bf16 of ${x}: ${got} but ${other} is nearer`);
    }
  }
  assert.equal(f64ToHalf(Float64Array.of(1 + 2 ** -8 + 2 ** -30), 'bf16')[0], 0x3f81, 'the double-rounding case');
});
