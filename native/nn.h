/* The training kernels of the native backend (nn.c), float32. */
#ifndef LOWRANK_NN_H
#define LOWRANK_NN_H

#include <stddef.h>
#include <stdint.h>

void nn_attention_forward(float *o, float *p, const float *q, const float *k, const float *v, int B, int T, int H, int KV, int D);
int nn_attention_backward(float *dq, float *dk, float *dv, const float *dout, const float *q, const float *k, const float *v, const float *p, int B, int T, int H, int KV, int D);
int nn_attention_cached(float *o, const float *q, const float *kc, const float *vc, const int32_t *start, int B, int T, int H, int KV, int D, int past, int cap);
void nn_rmsnorm_forward(float *y, float *rstd, const float *x, const float *g, int N, int C, double eps);
void nn_rmsnorm_backward(float *dx, float *dg, const float *dy, const float *x, const float *g, const float *rstd, int N, int C);
void nn_swiglu_forward(float *h, const float *gate, const float *up, size_t n);
void nn_swiglu_backward(float *dgate, float *dup, const float *dh, const float *gate, const float *up, size_t n);
void nn_gemv_small(float *y, const float *x, const float *b, int n, int k, int ldb, float alpha, int accumulate);
/*
 * Runs fn(ctx, part, parts) for part = 0..parts−1 on as many threads (the caller's is part 0) and
 * waits; with blas set, OpenBLAS runs single-threaded meanwhile. nn_parts_for(n): OpenBLAS's thread
 * count, at most n.
 */
void nn_parallel(void (*fn)(void *, int, int), void *ctx, int parts, int blas);
int nn_parts_for(int n);
double nn_cross_entropy(float *dlogits, const float *logits, const int32_t *targets, int N, int V, int ignore);

#endif
