/* Products with a narrow side (at most 32 wide) and a tall-skinny orthonormal basis, float32 (skinny.c). */
#ifndef LOWRANK_SKINNY_H
#define LOWRANK_SKINNY_H

#include <stddef.h>
#include <stdint.h>

/* The large side must have at least this many elements (below it a call costs microseconds either way). */
#define SKINNY_MIN_ELEMENTS ((size_t)1 << 12)

/*
 * C (m×n) = op(A)·op(B) when n or m is at most 32 and the other operand is large, as CBLAS's
 * row-major sgemm with alpha 1 and beta 0 (lda, ldb the stored column counts). Returns 0, having
 * written nothing, when the shape is not one it takes (or memory ran out): the caller uses sgemm.
 */
int skinny_gemm(float *c, const float *a, int lda, const float *b, int ldb, int m, int n, int k, int ta, int tb);

/*
 * Q (m×l) with orthonormal columns spanning X's (m×l, l ≤ 32, m ≥ l): CholeskyQR2 with the Gram
 * matrices in float64. Returns 0 when X is too ill-conditioned for it (cond beyond ~10^7, or rank
 * deficient): the caller uses Householder QR.
 */
int skinny_orthonormalize(float *q, const float *x, int m, int l);

/*
 * out = C + alpha·A·B rounded to bfloat16 (f16 0) or float16 (f16 1) bits, for
 * C m×n, A m×k, B k×n, 1 ≤ k ≤ 32. Returns 0 when it does not take the shape.
 */
int skinny_residual_half(uint16_t *out, const float *c, const float *a, const float *b, int m, int n, int k, float alpha, int f16);

#endif
