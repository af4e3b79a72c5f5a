/**
 * Matrix-product kernels for lowrank's wasm backend (AssemblyScript, compiled by
 * scripts/build-wasm.mjs into a relaxed-SIMD and a plain SIMD128 build, each with a shared and a
 * non-shared memory).
 *
 * C (m×n) = op(A) (m×k) · op(B) (k×n), all row-major with leading dimensions (in elements) lda,
 * ldb, ldc; op transposes when the flag is set. BLIS-style blocking: a KC×NC panel of op(B) and an
 * MC×KC block of op(A) are packed into the caller's scratch (micro-panels of NR columns and MR
 * rows, zero-padded at the edges), and a 6×8 (float32) or 6×4 (float64) register-blocked
 * micro-kernel with twelve v128 accumulators multiplies them.
 *
 * Rounding: the micro-kernel loads its accumulators from C after the first KC block, so every
 * element of C is the plain left-to-right sum over p = 0 … k−1 of op(A)[i,p]·op(B)[p,j] in the
 * element type (one rounding per multiply and per add; with relaxed SIMD, a fused multiply-add
 * where the CPU has one). That order does not depend on the blocking or on which part of C a call
 * computes, so splitting C among threads gives bit-identical results.
 *
 * Rules that let several threads run these kernels on one shared memory: the kernels take
 * pointers only (byte addresses into the imported memory), allocate nothing and keep no mutable
 * globals; the caller (JavaScript) owns every buffer, including each thread's scratch, whose size
 * sgemmScratchBytes() / dgemmScratchBytes() report.
 */

// ---------------------------------------------------------------------------------------------
// Blocking parameters

/** float32: rows of a micro-tile. */
const SMR: i32 = 6;
/** float32: columns of a micro-tile (two v128 of four lanes). */
const SNR: i32 = 8;
/** float32: depth of a packed panel. */
const SKC: i32 = 256;
/** float32: rows of a packed block of op(A) (kept in L2). */
const SMC: i32 = 96;
/** float32: columns of a packed panel of op(B). */
const SNC: i32 = 1024;

/** float64: rows of a micro-tile. */
const DMR: i32 = 6;
/** float64: columns of a micro-tile (two v128 of two lanes). */
const DNR: i32 = 4;
/** float64: depth of a packed panel. */
const DKC: i32 = 256;
/** float64: rows of a packed block of op(A). */
const DMC: i32 = 48;
/** float64: columns of a packed panel of op(B). */
const DNC: i32 = 512;

/** Byte alignment of each scratch area. */
const ALIGN: i32 = 64;

function roundUp(x: i32, to: i32): i32 {
  return ((x + to - 1) / to) * to;
}

/** Bytes of scratch one sgemm call needs: packed A block, packed B panel, one edge tile. */
export function sgemmScratchBytes(): i32 {
  return roundUp(SMC * SKC * 4, ALIGN) + roundUp(SKC * SNC * 4, ALIGN) + roundUp(SMR * SNR * 4, ALIGN);
}

/** Bytes of scratch one dgemm call needs: packed A block, packed B panel, one edge tile. */
export function dgemmScratchBytes(): i32 {
  return roundUp(DMC * DKC * 8, ALIGN) + roundUp(DKC * DNC * 8, ALIGN) + roundUp(DMR * DNR * 8, ALIGN);
}

// ---------------------------------------------------------------------------------------------
// Multiply-add: fused (relaxed SIMD) or multiply then add (SIMD128)

function maddF32(a: v128, b: v128, c: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) {
    return f32x4.relaxed_madd(a, b, c);
  } else {
    return f32x4.add(f32x4.mul(a, b), c);
  }
}

function maddF64(a: v128, b: v128, c: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) {
    return f64x2.relaxed_madd(a, b, c);
  } else {
    return f64x2.add(f64x2.mul(a, b), c);
  }
}

// ---------------------------------------------------------------------------------------------
// float32

/**
 * The 6×8 float32 micro-kernel: C[0..6, 0..8] (row stride ldcBytes) = (first ? 0 : C) + the
 * product of a packed 6×kc micro-panel of A (6 values per p) and a packed kc×8 micro-panel of B
 * (8 values per p). Twelve v128 accumulators, two B vectors and one broadcast fit V8's fifteen
 * allocatable xmm registers; the C row addresses are recomputed after the loop so that they do not
 * hold general registers during it.
 */
function kernelF32(kc: i32, pa: usize, pb: usize, c: usize, ldcBytes: usize, first: bool): void {
  let c00 = f32x4.splat(0);
  let c01 = f32x4.splat(0);
  let c10 = f32x4.splat(0);
  let c11 = f32x4.splat(0);
  let c20 = f32x4.splat(0);
  let c21 = f32x4.splat(0);
  let c30 = f32x4.splat(0);
  let c31 = f32x4.splat(0);
  let c40 = f32x4.splat(0);
  let c41 = f32x4.splat(0);
  let c50 = f32x4.splat(0);
  let c51 = f32x4.splat(0);
  if (!first) {
    let q = c;
    c00 = v128.load(q);
    c01 = v128.load(q, 16);
    q += ldcBytes;
    c10 = v128.load(q);
    c11 = v128.load(q, 16);
    q += ldcBytes;
    c20 = v128.load(q);
    c21 = v128.load(q, 16);
    q += ldcBytes;
    c30 = v128.load(q);
    c31 = v128.load(q, 16);
    q += ldcBytes;
    c40 = v128.load(q);
    c41 = v128.load(q, 16);
    q += ldcBytes;
    c50 = v128.load(q);
    c51 = v128.load(q, 16);
  }
  const end = pb + (<usize>kc << 5);
  while (pb < end) {
    const b0 = v128.load(pb);
    const b1 = v128.load(pb, 16);
    let a = v128.load32_splat(pa);
    c00 = maddF32(a, b0, c00);
    c01 = maddF32(a, b1, c01);
    a = v128.load32_splat(pa, 4);
    c10 = maddF32(a, b0, c10);
    c11 = maddF32(a, b1, c11);
    a = v128.load32_splat(pa, 8);
    c20 = maddF32(a, b0, c20);
    c21 = maddF32(a, b1, c21);
    a = v128.load32_splat(pa, 12);
    c30 = maddF32(a, b0, c30);
    c31 = maddF32(a, b1, c31);
    a = v128.load32_splat(pa, 16);
    c40 = maddF32(a, b0, c40);
    c41 = maddF32(a, b1, c41);
    a = v128.load32_splat(pa, 20);
    c50 = maddF32(a, b0, c50);
    c51 = maddF32(a, b1, c51);
    pa += 24;
    pb += 32;
  }
  v128.store(c, c00);
  v128.store(c, c01, 16);
  v128.store(c + ldcBytes, c10);
  v128.store(c + ldcBytes, c11, 16);
  v128.store(c + 2 * ldcBytes, c20);
  v128.store(c + 2 * ldcBytes, c21, 16);
  v128.store(c + 3 * ldcBytes, c30);
  v128.store(c + 3 * ldcBytes, c31, 16);
  v128.store(c + 4 * ldcBytes, c40);
  v128.store(c + 4 * ldcBytes, c41, 16);
  v128.store(c + 5 * ldcBytes, c50);
  v128.store(c + 5 * ldcBytes, c51, 16);
}

/**
 * Packs the mc×kc block of op(A) whose top-left element is at `a` into micro-panels of SMR rows:
 * panel r holds, for each p, the SMR values op(A)[r·SMR + 0..SMR, p] (zeros past row mc).
 */
function packAF32(trans: bool, a: usize, lda: i32, mc: i32, kc: i32, dst: usize): void {
  const ldaBytes = <usize>lda << 2;
  for (let ir = 0; ir < mc; ir += SMR) {
    const mr = min(SMR, mc - ir);
    if (!trans) {
      // op(A)[i, p] = A[i·lda + p]: six rows read in step.
      const r0 = a + <usize>ir * ldaBytes;
      if (mr == SMR) {
        const r1 = r0 + ldaBytes;
        const r2 = r1 + ldaBytes;
        const r3 = r2 + ldaBytes;
        const r4 = r3 + ldaBytes;
        const r5 = r4 + ldaBytes;
        let p = 0;
        for (; p + 4 <= kc; p += 4) {
          // Columns p..p+3: a 4×4 transpose of rows 0-3 and a 2×4 interleave of rows 4-5.
          const off = <usize>p << 2;
          const x0 = v128.load(r0 + off);
          const x1 = v128.load(r1 + off);
          const x2 = v128.load(r2 + off);
          const x3 = v128.load(r3 + off);
          const x4 = v128.load(r4 + off);
          const x5 = v128.load(r5 + off);
          const t0 = v128.shuffle<f32>(x0, x1, 0, 4, 1, 5);
          const t1 = v128.shuffle<f32>(x2, x3, 0, 4, 1, 5);
          const t2 = v128.shuffle<f32>(x0, x1, 2, 6, 3, 7);
          const t3 = v128.shuffle<f32>(x2, x3, 2, 6, 3, 7);
          const u0 = v128.shuffle<f32>(x4, x5, 0, 4, 1, 5);
          const u1 = v128.shuffle<f32>(x4, x5, 2, 6, 3, 7);
          v128.store(dst, v128.shuffle<f32>(t0, t1, 0, 1, 4, 5));
          v128.store_lane<i64>(dst, u0, 0, 16);
          v128.store(dst, v128.shuffle<f32>(t0, t1, 2, 3, 6, 7), 24);
          v128.store_lane<i64>(dst, u0, 1, 40);
          v128.store(dst, v128.shuffle<f32>(t2, t3, 0, 1, 4, 5), 48);
          v128.store_lane<i64>(dst, u1, 0, 64);
          v128.store(dst, v128.shuffle<f32>(t2, t3, 2, 3, 6, 7), 72);
          v128.store_lane<i64>(dst, u1, 1, 88);
          dst += 96;
        }
        for (; p < kc; p++) {
          const off = <usize>p << 2;
          store<f32>(dst, load<f32>(r0 + off));
          store<f32>(dst, load<f32>(r1 + off), 4);
          store<f32>(dst, load<f32>(r2 + off), 8);
          store<f32>(dst, load<f32>(r3 + off), 12);
          store<f32>(dst, load<f32>(r4 + off), 16);
          store<f32>(dst, load<f32>(r5 + off), 20);
          dst += 24;
        }
      } else {
        for (let p = 0; p < kc; p++) {
          const off = <usize>p << 2;
          for (let r = 0; r < SMR; r++) {
            store<f32>(dst + (<usize>r << 2), r < mr ? load<f32>(r0 + <usize>r * ldaBytes + off) : 0);
          }
          dst += 24;
        }
      }
    } else {
      // op(A)[i, p] = A[p·lda + i]: the SMR values for one p are adjacent.
      const col = a + (<usize>ir << 2);
      if (mr == SMR) {
        for (let p = 0; p < kc; p++) {
          const src = col + <usize>p * ldaBytes;
          v128.store(dst, v128.load(src));
          store<u64>(dst, load<u64>(src, 16), 16);
          dst += 24;
        }
      } else {
        for (let p = 0; p < kc; p++) {
          const row = col + <usize>p * ldaBytes;
          for (let r = 0; r < SMR; r++) {
            store<f32>(dst + (<usize>r << 2), r < mr ? load<f32>(row + (<usize>r << 2)) : 0);
          }
          dst += 24;
        }
      }
    }
  }
}

/**
 * Packs the kc×nc panel of op(B) whose top-left element is at `b` into micro-panels of SNR
 * columns: panel j holds, for each p, the SNR values op(B)[p, j·SNR + 0..SNR] (zeros past nc).
 */
function packBF32(trans: bool, b: usize, ldb: i32, kc: i32, nc: i32, dst: usize): void {
  const ldbBytes = <usize>ldb << 2;
  for (let jr = 0; jr < nc; jr += SNR) {
    const nr = min(SNR, nc - jr);
    if (!trans) {
      // op(B)[p, j] = B[p·ldb + j]: the SNR values for one p are adjacent.
      const col = b + (<usize>jr << 2);
      if (nr == SNR) {
        for (let p = 0; p < kc; p++) {
          const src = col + <usize>p * ldbBytes;
          v128.store(dst, v128.load(src));
          v128.store(dst, v128.load(src, 16), 16);
          dst += 32;
        }
      } else {
        for (let p = 0; p < kc; p++) {
          const src = col + <usize>p * ldbBytes;
          for (let j = 0; j < SNR; j++) {
            store<f32>(dst + (<usize>j << 2), j < nr ? load<f32>(src + (<usize>j << 2)) : 0);
          }
          dst += 32;
        }
      }
    } else {
      // op(B)[p, j] = B[j·ldb + p]: SNR rows of B read in step.
      const r0 = b + <usize>jr * ldbBytes;
      if (nr == SNR) {
        let p = 0;
        for (; p + 4 <= kc; p += 4) {
          // Two 4×4 transposes: rows r0..r0+3 and r0+4..r0+7 of B, columns p..p+3.
          const off = <usize>p << 2;
          for (let h = 0; h < 2; h++) {
            const base = r0 + <usize>(h * 4) * ldbBytes + off;
            const x0 = v128.load(base);
            const x1 = v128.load(base + ldbBytes);
            const x2 = v128.load(base + 2 * ldbBytes);
            const x3 = v128.load(base + 3 * ldbBytes);
            const t0 = v128.shuffle<f32>(x0, x1, 0, 4, 1, 5);
            const t1 = v128.shuffle<f32>(x2, x3, 0, 4, 1, 5);
            const t2 = v128.shuffle<f32>(x0, x1, 2, 6, 3, 7);
            const t3 = v128.shuffle<f32>(x2, x3, 2, 6, 3, 7);
            const d = dst + (<usize>h << 4);
            v128.store(d, v128.shuffle<f32>(t0, t1, 0, 1, 4, 5));
            v128.store(d, v128.shuffle<f32>(t0, t1, 2, 3, 6, 7), 32);
            v128.store(d, v128.shuffle<f32>(t2, t3, 0, 1, 4, 5), 64);
            v128.store(d, v128.shuffle<f32>(t2, t3, 2, 3, 6, 7), 96);
          }
          dst += 128;
        }
        for (; p < kc; p++) {
          const off = <usize>p << 2;
          for (let j = 0; j < SNR; j++) {
            store<f32>(dst + (<usize>j << 2), load<f32>(r0 + <usize>j * ldbBytes + off));
          }
          dst += 32;
        }
      } else {
        for (let p = 0; p < kc; p++) {
          const off = <usize>p << 2;
          for (let j = 0; j < SNR; j++) {
            store<f32>(dst + (<usize>j << 2), j < nr ? load<f32>(r0 + <usize>j * ldbBytes + off) : 0);
          }
          dst += 32;
        }
      }
    }
  }
}

/**
 * C = op(A) · op(B) (accumulate = 0) or C += op(A) · op(B) (accumulate ≠ 0) in float32: C m×n,
 * op(A) m×k, op(B) k×n, row-major, leading dimensions in elements, pointers byte addresses. A and
 * B are unchanged. Accumulating continues each element's left-to-right sum, so splitting k into
 * consecutive calls gives the same bits as one call. `scratch` must hold sgemmScratchBytes()
 * bytes, 16-byte aligned, used by no other call running at the same time.
 */
export function sgemm(
  transA: i32,
  transB: i32,
  m: i32,
  n: i32,
  k: i32,
  a: usize,
  lda: i32,
  b: usize,
  ldb: i32,
  c: usize,
  ldc: i32,
  accumulate: i32,
  scratch: usize,
): void {
  const ta = transA != 0;
  const tb = transB != 0;
  const ldcBytes = <usize>ldc << 2;
  if (k <= 0) {
    if (accumulate == 0) for (let i = 0; i < m; i++) memory.fill(c + <usize>i * ldcBytes, 0, <usize>n << 2);
    return;
  }
  const packA = scratch;
  const packB = packA + <usize>roundUp(SMC * SKC * 4, ALIGN);
  const tile = packB + <usize>roundUp(SKC * SNC * 4, ALIGN);
  const tileLd: usize = <usize>SNR << 2;
  for (let jc = 0; jc < n; jc += SNC) {
    const nc = min(SNC, n - jc);
    for (let pc = 0; pc < k; pc += SKC) {
      const kc = min(SKC, k - pc);
      const first = pc == 0 && accumulate == 0;
      // op(B)[pc, jc]
      const bBlock = tb ? b + ((<usize>jc * <usize>ldb + <usize>pc) << 2) : b + ((<usize>pc * <usize>ldb + <usize>jc) << 2);
      packBF32(tb, bBlock, ldb, kc, nc, packB);
      for (let ic = 0; ic < m; ic += SMC) {
        const mc = min(SMC, m - ic);
        // op(A)[ic, pc]
        const aBlock = ta ? a + ((<usize>pc * <usize>lda + <usize>ic) << 2) : a + ((<usize>ic * <usize>lda + <usize>pc) << 2);
        packAF32(ta, aBlock, lda, mc, kc, packA);
        for (let jr = 0; jr < nc; jr += SNR) {
          const nr = min(SNR, nc - jr);
          const pb = packB + <usize>jr * <usize>kc * 4;
          for (let ir = 0; ir < mc; ir += SMR) {
            const mr = min(SMR, mc - ir);
            const pa = packA + <usize>ir * <usize>kc * 4;
            const cTile = c + ((<usize>(ic + ir) * <usize>ldc + <usize>(jc + jr)) << 2);
            if (mr == SMR && nr == SNR) {
              kernelF32(kc, pa, pb, cTile, ldcBytes, first);
            } else {
              // Edge: run the same kernel on a full tile, copying the valid part in and out.
              if (!first) {
                for (let r = 0; r < mr; r++) {
                  for (let j = 0; j < nr; j++) {
                    store<f32>(tile + <usize>r * tileLd + (<usize>j << 2), load<f32>(cTile + <usize>r * ldcBytes + (<usize>j << 2)));
                  }
                }
              }
              kernelF32(kc, pa, pb, tile, tileLd, first);
              for (let r = 0; r < mr; r++) {
                for (let j = 0; j < nr; j++) {
                  store<f32>(cTile + <usize>r * ldcBytes + (<usize>j << 2), load<f32>(tile + <usize>r * tileLd + (<usize>j << 2)));
                }
              }
            }
          }
        }
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// float64

/**
 * The 6×4 float64 micro-kernel: C[0..6, 0..4] (row stride ldcBytes) = (first ? 0 : C) + the
 * product of a packed 6×kc micro-panel of A and a packed kc×4 micro-panel of B; twelve
 * accumulators, as in kernelF32.
 */
function kernelF64(kc: i32, pa: usize, pb: usize, c: usize, ldcBytes: usize, first: bool): void {
  let c00 = f64x2.splat(0);
  let c01 = f64x2.splat(0);
  let c10 = f64x2.splat(0);
  let c11 = f64x2.splat(0);
  let c20 = f64x2.splat(0);
  let c21 = f64x2.splat(0);
  let c30 = f64x2.splat(0);
  let c31 = f64x2.splat(0);
  let c40 = f64x2.splat(0);
  let c41 = f64x2.splat(0);
  let c50 = f64x2.splat(0);
  let c51 = f64x2.splat(0);
  if (!first) {
    let q = c;
    c00 = v128.load(q);
    c01 = v128.load(q, 16);
    q += ldcBytes;
    c10 = v128.load(q);
    c11 = v128.load(q, 16);
    q += ldcBytes;
    c20 = v128.load(q);
    c21 = v128.load(q, 16);
    q += ldcBytes;
    c30 = v128.load(q);
    c31 = v128.load(q, 16);
    q += ldcBytes;
    c40 = v128.load(q);
    c41 = v128.load(q, 16);
    q += ldcBytes;
    c50 = v128.load(q);
    c51 = v128.load(q, 16);
  }
  const end = pb + (<usize>kc << 5);
  while (pb < end) {
    const b0 = v128.load(pb);
    const b1 = v128.load(pb, 16);
    let a = v128.load64_splat(pa);
    c00 = maddF64(a, b0, c00);
    c01 = maddF64(a, b1, c01);
    a = v128.load64_splat(pa, 8);
    c10 = maddF64(a, b0, c10);
    c11 = maddF64(a, b1, c11);
    a = v128.load64_splat(pa, 16);
    c20 = maddF64(a, b0, c20);
    c21 = maddF64(a, b1, c21);
    a = v128.load64_splat(pa, 24);
    c30 = maddF64(a, b0, c30);
    c31 = maddF64(a, b1, c31);
    a = v128.load64_splat(pa, 32);
    c40 = maddF64(a, b0, c40);
    c41 = maddF64(a, b1, c41);
    a = v128.load64_splat(pa, 40);
    c50 = maddF64(a, b0, c50);
    c51 = maddF64(a, b1, c51);
    pa += 48;
    pb += 32;
  }
  v128.store(c, c00);
  v128.store(c, c01, 16);
  v128.store(c + ldcBytes, c10);
  v128.store(c + ldcBytes, c11, 16);
  v128.store(c + 2 * ldcBytes, c20);
  v128.store(c + 2 * ldcBytes, c21, 16);
  v128.store(c + 3 * ldcBytes, c30);
  v128.store(c + 3 * ldcBytes, c31, 16);
  v128.store(c + 4 * ldcBytes, c40);
  v128.store(c + 4 * ldcBytes, c41, 16);
  v128.store(c + 5 * ldcBytes, c50);
  v128.store(c + 5 * ldcBytes, c51, 16);
}

/** packAF32 for float64: micro-panels of DMR rows, zero-padded past row mc. */
function packAF64(trans: bool, a: usize, lda: i32, mc: i32, kc: i32, dst: usize): void {
  const ldaBytes = <usize>lda << 3;
  for (let ir = 0; ir < mc; ir += DMR) {
    const mr = min(DMR, mc - ir);
    if (!trans) {
      const r0 = a + <usize>ir * ldaBytes;
      if (mr == DMR) {
        const r1 = r0 + ldaBytes;
        const r2 = r1 + ldaBytes;
        const r3 = r2 + ldaBytes;
        const r4 = r3 + ldaBytes;
        const r5 = r4 + ldaBytes;
        let p = 0;
        for (; p + 2 <= kc; p += 2) {
          // Columns p, p+1: 2×2 transposes of the row pairs (0, 1), (2, 3), (4, 5).
          const off = <usize>p << 3;
          const x0 = v128.load(r0 + off);
          const x1 = v128.load(r1 + off);
          const x2 = v128.load(r2 + off);
          const x3 = v128.load(r3 + off);
          const x4 = v128.load(r4 + off);
          const x5 = v128.load(r5 + off);
          v128.store(dst, v128.shuffle<f64>(x0, x1, 0, 2));
          v128.store(dst, v128.shuffle<f64>(x2, x3, 0, 2), 16);
          v128.store(dst, v128.shuffle<f64>(x4, x5, 0, 2), 32);
          v128.store(dst, v128.shuffle<f64>(x0, x1, 1, 3), 48);
          v128.store(dst, v128.shuffle<f64>(x2, x3, 1, 3), 64);
          v128.store(dst, v128.shuffle<f64>(x4, x5, 1, 3), 80);
          dst += 96;
        }
        for (; p < kc; p++) {
          const off = <usize>p << 3;
          store<f64>(dst, load<f64>(r0 + off));
          store<f64>(dst, load<f64>(r1 + off), 8);
          store<f64>(dst, load<f64>(r2 + off), 16);
          store<f64>(dst, load<f64>(r3 + off), 24);
          store<f64>(dst, load<f64>(r4 + off), 32);
          store<f64>(dst, load<f64>(r5 + off), 40);
          dst += 48;
        }
      } else {
        for (let p = 0; p < kc; p++) {
          const off = <usize>p << 3;
          for (let r = 0; r < DMR; r++) {
            store<f64>(dst + (<usize>r << 3), r < mr ? load<f64>(r0 + <usize>r * ldaBytes + off) : 0);
          }
          dst += 48;
        }
      }
    } else {
      const col = a + (<usize>ir << 3);
      if (mr == DMR) {
        for (let p = 0; p < kc; p++) {
          const src = col + <usize>p * ldaBytes;
          v128.store(dst, v128.load(src));
          v128.store(dst, v128.load(src, 16), 16);
          v128.store(dst, v128.load(src, 32), 32);
          dst += 48;
        }
      } else {
        for (let p = 0; p < kc; p++) {
          const row = col + <usize>p * ldaBytes;
          for (let r = 0; r < DMR; r++) {
            store<f64>(dst + (<usize>r << 3), r < mr ? load<f64>(row + (<usize>r << 3)) : 0);
          }
          dst += 48;
        }
      }
    }
  }
}

/** packBF32 for float64: micro-panels of DNR columns, zero-padded past column nc. */
function packBF64(trans: bool, b: usize, ldb: i32, kc: i32, nc: i32, dst: usize): void {
  const ldbBytes = <usize>ldb << 3;
  for (let jr = 0; jr < nc; jr += DNR) {
    const nr = min(DNR, nc - jr);
    if (!trans) {
      const col = b + (<usize>jr << 3);
      if (nr == DNR) {
        for (let p = 0; p < kc; p++) {
          const src = col + <usize>p * ldbBytes;
          v128.store(dst, v128.load(src));
          v128.store(dst, v128.load(src, 16), 16);
          dst += 32;
        }
      } else {
        for (let p = 0; p < kc; p++) {
          const src = col + <usize>p * ldbBytes;
          for (let j = 0; j < DNR; j++) {
            store<f64>(dst + (<usize>j << 3), j < nr ? load<f64>(src + (<usize>j << 3)) : 0);
          }
          dst += 32;
        }
      }
    } else {
      const r0 = b + <usize>jr * ldbBytes;
      if (nr == DNR) {
        const r1 = r0 + ldbBytes;
        const r2 = r1 + ldbBytes;
        const r3 = r2 + ldbBytes;
        let p = 0;
        for (; p + 2 <= kc; p += 2) {
          const off = <usize>p << 3;
          const x0 = v128.load(r0 + off);
          const x1 = v128.load(r1 + off);
          const x2 = v128.load(r2 + off);
          const x3 = v128.load(r3 + off);
          v128.store(dst, v128.shuffle<f64>(x0, x1, 0, 2));
          v128.store(dst, v128.shuffle<f64>(x2, x3, 0, 2), 16);
          v128.store(dst, v128.shuffle<f64>(x0, x1, 1, 3), 32);
          v128.store(dst, v128.shuffle<f64>(x2, x3, 1, 3), 48);
          dst += 64;
        }
        for (; p < kc; p++) {
          const off = <usize>p << 3;
          store<f64>(dst, load<f64>(r0 + off));
          store<f64>(dst, load<f64>(r1 + off), 8);
          store<f64>(dst, load<f64>(r2 + off), 16);
          store<f64>(dst, load<f64>(r3 + off), 24);
          dst += 32;
        }
      } else {
        for (let p = 0; p < kc; p++) {
          const off = <usize>p << 3;
          for (let j = 0; j < DNR; j++) {
            store<f64>(dst + (<usize>j << 3), j < nr ? load<f64>(r0 + <usize>j * ldbBytes + off) : 0);
          }
          dst += 32;
        }
      }
    }
  }
}

/** {@link sgemm} for float64; `scratch` must hold dgemmScratchBytes() bytes. */
export function dgemm(
  transA: i32,
  transB: i32,
  m: i32,
  n: i32,
  k: i32,
  a: usize,
  lda: i32,
  b: usize,
  ldb: i32,
  c: usize,
  ldc: i32,
  accumulate: i32,
  scratch: usize,
): void {
  const ta = transA != 0;
  const tb = transB != 0;
  const ldcBytes = <usize>ldc << 3;
  if (k <= 0) {
    if (accumulate == 0) for (let i = 0; i < m; i++) memory.fill(c + <usize>i * ldcBytes, 0, <usize>n << 3);
    return;
  }
  const packA = scratch;
  const packB = packA + <usize>roundUp(DMC * DKC * 8, ALIGN);
  const tile = packB + <usize>roundUp(DKC * DNC * 8, ALIGN);
  const tileLd: usize = <usize>DNR << 3;
  for (let jc = 0; jc < n; jc += DNC) {
    const nc = min(DNC, n - jc);
    for (let pc = 0; pc < k; pc += DKC) {
      const kc = min(DKC, k - pc);
      const first = pc == 0 && accumulate == 0;
      const bBlock = tb ? b + ((<usize>jc * <usize>ldb + <usize>pc) << 3) : b + ((<usize>pc * <usize>ldb + <usize>jc) << 3);
      packBF64(tb, bBlock, ldb, kc, nc, packB);
      for (let ic = 0; ic < m; ic += DMC) {
        const mc = min(DMC, m - ic);
        const aBlock = ta ? a + ((<usize>pc * <usize>lda + <usize>ic) << 3) : a + ((<usize>ic * <usize>lda + <usize>pc) << 3);
        packAF64(ta, aBlock, lda, mc, kc, packA);
        for (let jr = 0; jr < nc; jr += DNR) {
          const nr = min(DNR, nc - jr);
          const pb = packB + <usize>jr * <usize>kc * 8;
          for (let ir = 0; ir < mc; ir += DMR) {
            const mr = min(DMR, mc - ir);
            const pa = packA + <usize>ir * <usize>kc * 8;
            const cTile = c + ((<usize>(ic + ir) * <usize>ldc + <usize>(jc + jr)) << 3);
            if (mr == DMR && nr == DNR) {
              kernelF64(kc, pa, pb, cTile, ldcBytes, first);
            } else {
              if (!first) {
                for (let r = 0; r < mr; r++) {
                  for (let j = 0; j < nr; j++) {
                    store<f64>(tile + <usize>r * tileLd + (<usize>j << 3), load<f64>(cTile + <usize>r * ldcBytes + (<usize>j << 3)));
                  }
                }
              }
              kernelF64(kc, pa, pb, tile, tileLd, first);
              for (let r = 0; r < mr; r++) {
                for (let j = 0; j < nr; j++) {
                  store<f64>(cTile + <usize>r * ldcBytes + (<usize>j << 3), load<f64>(tile + <usize>r * tileLd + (<usize>j << 3)));
                }
              }
            }
          }
        }
      }
    }
  }
}
