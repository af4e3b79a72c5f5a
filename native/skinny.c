/*
 * Products with one side at most 32 wide, the shape of every randomized SVD step
 * (W·Ω, Wᵀ·Q, Qᵀ·W with 26 columns for rank 16) and of a residual W − s·B·A: OpenBLAS 0.3.21 packs
 * the large matrix for such a product. These kernels stream the large matrix once, in place, with
 * the narrow side held in registers: 16 accumulators of 16 float lanes (8 rows or columns of the
 * large matrix × 32 columns of the narrow one). `npm run bench -- skinny` times them next to numpy.
 * Float32 only; the sums run in the order of the inner index with fused multiply-adds where the
 * CPU has them.
 * Also: CholeskyQR2 for a tall-skinny orthonormal basis, and a residual rounded straight to
 * bfloat16/float16.
 */
/* binding.gyp's -std=c11 turns GCC's contraction of a*b + c into one FMA off; these loops want it. */
#pragma GCC optimize("fp-contract=fast")
#include "skinny.h"
#include "nn.h"
#include "half.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Compiled for AVX-512, AVX2 and the baseline; the loader picks one by CPU (see nn.c). */
#if defined(__x86_64__) && defined(__linux__) && defined(__GNUC__) && !defined(__clang__)
#define SKINNY_LANES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define SKINNY_LANES
#endif

#define NARROW 32 /* the narrow side, padded */

/*
 * Scratch memory kept between calls: a fresh page costs ~2.4 us to fault in on the development
 * VM, so a padded copy and an output buffer allocated per call cost as much as a product of a
 * 2048-wide weight. Calls are serialized by the native backend; one that finds the scratch in use
 * anyway allocates its own.
 */
#include <pthread.h>

typedef struct {
  void *data[2];
  size_t bytes[2];
} scratch_set;

static scratch_set kept;
static pthread_mutex_t kept_lock = PTHREAD_MUTEX_INITIALIZER;

/* Takes the kept scratch (1) or a fresh empty set (0). */
static int scratch_begin(scratch_set **set, scratch_set *own) {
  if (pthread_mutex_trylock(&kept_lock) == 0) {
    *set = &kept;
    return 1;
  }
  memset(own, 0, sizeof *own);
  *set = own;
  return 0;
}

/* Buffer i of the set, at least `bytes` long (contents not kept), or NULL when out of memory. */
static void *scratch(scratch_set *set, int i, size_t bytes) {
  if (set->bytes[i] >= bytes) return set->data[i];
  free(set->data[i]);
  set->data[i] = malloc(bytes);
  set->bytes[i] = set->data[i] != NULL ? bytes : 0;
  return set->data[i];
}

static void scratch_end(scratch_set *set, int was_kept) {
  if (was_kept) {
    pthread_mutex_unlock(&kept_lock);
    return;
  }
  for (int i = 0; i < 2; i++) free(set->data[i]);
}
typedef float lanes16 __attribute__((vector_size(64)));
typedef uint32_t bits16 __attribute__((vector_size(64)));
typedef uint16_t half16 __attribute__((vector_size(32)));
#define LOAD16(v, p) memcpy(&(v), (p), sizeof(lanes16))
#define STORE16(p, v) memcpy((p), &(v), sizeof(lanes16))

/* Y (rows×32) = M (rows×cols, row stride ld) · Z (cols×32), for rows r0..r1, 8 at a time. */
typedef struct {
  const float *m;
  size_t ld;
  int rows, cols;
  const float *z;
  float *y;
} prod_args;

SKINNY_LANES void skinny_rows_part(void *ctx, int part, int parts) {
  const prod_args *a = ctx;
  const int blocks = (a->rows + 7) / 8;
  const int r0 = (int)((long)blocks * part / parts) * 8, r1 = (int)((long)blocks * (part + 1) / parts) * 8;
  for (int i = r0; i < r1 && i < a->rows; i += 8) {
    const int n = a->rows - i < 8 ? a->rows - i : 8;
    const float *w[8];
    for (int r = 0; r < 8; r++) w[r] = a->m + (size_t)(i + (r < n ? r : 0)) * a->ld;
    lanes16 s00 = {0}, s01 = {0}, s10 = {0}, s11 = {0}, s20 = {0}, s21 = {0}, s30 = {0}, s31 = {0};
    lanes16 s40 = {0}, s41 = {0}, s50 = {0}, s51 = {0}, s60 = {0}, s61 = {0}, s70 = {0}, s71 = {0};
    for (int k = 0; k < a->cols; k++) {
      lanes16 z0, z1;
      LOAD16(z0, a->z + (size_t)k * NARROW), LOAD16(z1, a->z + (size_t)k * NARROW + 16);
#define ROW(r) { const float b = w[r][k]; s##r##0 += b * z0; s##r##1 += b * z1; }
      ROW(0) ROW(1) ROW(2) ROW(3) ROW(4) ROW(5) ROW(6) ROW(7)
#undef ROW
    }
    lanes16 *acc[8][2] = {{&s00, &s01}, {&s10, &s11}, {&s20, &s21}, {&s30, &s31}, {&s40, &s41}, {&s50, &s51}, {&s60, &s61}, {&s70, &s71}};
    for (int r = 0; r < n; r++) STORE16(a->y + (size_t)(i + r) * NARROW, *acc[r][0]), STORE16(a->y + (size_t)(i + r) * NARROW + 16, *acc[r][1]);
  }
}

/*
 * Y (cols×32) = Mᵀ · Z (rows×32), for columns c0..c1: panels of 512 columns × 256 rows of M (half a
 * MiB, kept in L2 while 8 columns at a time are summed over its rows).
 */
#define PANEL_COLS 512
#define PANEL_ROWS 256

SKINNY_LANES void skinny_cols_part(void *ctx, int part, int parts) {
  const prod_args *a = ctx;
  const int blocks = (a->cols + 7) / 8;
  const int c0 = (int)((long)blocks * part / parts) * 8;
  int c1 = (int)((long)blocks * (part + 1) / parts) * 8;
  c1 = c1 < a->cols ? c1 : a->cols;
  if (c0 >= c1) return;
  memset(a->y + (size_t)c0 * NARROW, 0, (size_t)(c1 - c0) * NARROW * sizeof(float));
  for (int p0 = c0; p0 < c1; p0 += PANEL_COLS) {
    const int p1 = c1 - p0 < PANEL_COLS ? c1 : p0 + PANEL_COLS;
    for (int i0 = 0; i0 < a->rows; i0 += PANEL_ROWS) {
      const int i1 = a->rows - i0 < PANEL_ROWS ? a->rows : i0 + PANEL_ROWS;
      for (int c = p0; c < p1; c += 8) {
        float *y = a->y + (size_t)c * NARROW;
        if (p1 - c < 8) { /* the last few columns */
          for (int i = i0; i < i1; i++) {
            lanes16 z0, z1;
            LOAD16(z0, a->z + (size_t)i * NARROW), LOAD16(z1, a->z + (size_t)i * NARROW + 16);
            for (int t = 0; t < p1 - c; t++) {
              const float b = a->m[(size_t)i * a->ld + c + t];
              lanes16 y0, y1;
              LOAD16(y0, y + t * NARROW), LOAD16(y1, y + t * NARROW + 16);
              y0 += b * z0, y1 += b * z1;
              STORE16(y + t * NARROW, y0), STORE16(y + t * NARROW + 16, y1);
            }
          }
          continue;
        }
        lanes16 s00, s01, s10, s11, s20, s21, s30, s31, s40, s41, s50, s51, s60, s61, s70, s71;
        lanes16 *acc[8][2] = {{&s00, &s01}, {&s10, &s11}, {&s20, &s21}, {&s30, &s31}, {&s40, &s41}, {&s50, &s51}, {&s60, &s61}, {&s70, &s71}};
        for (int t = 0; t < 8; t++) LOAD16(*acc[t][0], y + t * NARROW), LOAD16(*acc[t][1], y + t * NARROW + 16);
        for (int i = i0; i < i1; i++) {
          lanes16 z0, z1;
          LOAD16(z0, a->z + (size_t)i * NARROW), LOAD16(z1, a->z + (size_t)i * NARROW + 16);
          const float *w = a->m + (size_t)i * a->ld + c;
#define COL(t) { const float b = w[t]; s##t##0 += b * z0; s##t##1 += b * z1; }
          COL(0) COL(1) COL(2) COL(3) COL(4) COL(5) COL(6) COL(7)
#undef COL
        }
        for (int t = 0; t < 8; t++) STORE16(y + t * NARROW, *acc[t][0]), STORE16(y + t * NARROW + 16, *acc[t][1]);
      }
    }
  }
}

/* Element (r, c) of op(X) for X stored row-major with ld columns. */
static inline float at(const float *x, size_t ld, int trans, int r, int c) {
  return trans ? x[(size_t)c * ld + r] : x[(size_t)r * ld + c];
}

/* Work below this many multiply-adds runs on one thread (a thread start costs ~20-50 us). */
#define SKINNY_PARALLEL_MIN ((size_t)1 << 20)

/*
 * Runs M·Z (cols_side 0) or Mᵀ·Z (1) for Z = op(X) copied into a zero-padded [inner × 32] buffer
 * (x stored with ldx columns, its logical shape inner × narrow), into out (outer × 32).
 */
static int skinny_run(const float *m, size_t ld, int rows, int cols, int cols_side, const float *x, size_t ldx, int xtrans, int narrow,
                      float *out, float *z) {
  const int inner = cols_side ? rows : cols;
  for (int i = 0; i < inner; i++) {
    float *zi = z + (size_t)i * NARROW;
    for (int j = 0; j < narrow; j++) zi[j] = at(x, ldx, xtrans, i, j);
    for (int j = narrow; j < NARROW; j++) zi[j] = 0.0f;
  }
  prod_args a = {m, ld, rows, cols, z, out};
  const size_t work = (size_t)rows * cols * NARROW;
  const int units = ((cols_side ? cols : rows) + 7) / 8;
  const int parts = work < SKINNY_PARALLEL_MIN ? 1 : nn_parts_for(units);
  nn_parallel(cols_side ? skinny_cols_part : skinny_rows_part, &a, parts, 0);
  return 1;
}

int skinny_gemm(float *c, const float *a, int lda, const float *b, int ldb, int m, int n, int k, int ta, int tb) {
  if (k < 1) return 0;
  const int wide_out = n <= NARROW && (size_t)m * k >= SKINNY_MIN_ELEMENTS; /* C is m × ≤32: A is the large side */
  const int tall_out = m <= NARROW && (size_t)n * k >= SKINNY_MIN_ELEMENTS; /* C is ≤32 × n: B is the large side */
  if (!wide_out && !tall_out) return 0;
  const int big_a = wide_out && (!tall_out || (size_t)m * k >= (size_t)n * k);
  const int outer = big_a ? m : n;
  scratch_set own, *set;
  const int was_kept = scratch_begin(&set, &own);
  float *y = scratch(set, 0, (size_t)outer * NARROW * sizeof(float));
  float *z = scratch(set, 1, (size_t)k * NARROW * sizeof(float));
  int ok = y != NULL && z != NULL;
  if (ok && big_a) /* C = op(A)·op(B): A stored m×k (M·Z) or k×m (Mᵀ·Z); Z = op(B), k × n */
    ok = ta ? skinny_run(a, (size_t)lda, k, m, 1, b, (size_t)ldb, tb, n, y, z) : skinny_run(a, (size_t)lda, m, k, 0, b, (size_t)ldb, tb, n, y, z);
  else if (ok) /* Cᵀ = op(B)ᵀ·op(A)ᵀ: B stored k×n (Mᵀ·Z) or n×k (M·Z); Z = op(A)ᵀ, k × m */
    ok = tb ? skinny_run(b, (size_t)ldb, n, k, 0, a, (size_t)lda, !ta, m, y, z) : skinny_run(b, (size_t)ldb, k, n, 1, a, (size_t)lda, !ta, m, y, z);
  if (ok) {
    if (big_a)
      for (int i = 0; i < m; i++) memcpy(c + (size_t)i * n, y + (size_t)i * NARROW, (size_t)n * sizeof(float));
    else
      for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) c[(size_t)i * n + j] = y[(size_t)j * NARROW + i];
  }
  scratch_end(set, was_kept);
  return ok;
}

/* ------------------------------------------------------------------------------------------- */

/*
 * One Cholesky-QR step in float64: G = XᵀX, G = RᵀR (R upper), Q = X·R⁻¹, for X m×l (l ≤ 32) as
 * float32 (xf) or float64 (xd) rows; q gets float64 rows. Rows are widened to 32 lanes of zeros
 * so that both passes over X are 4 vectors of 8 doubles per term. Returns 0 when G is not
 * numerically positive definite (a pivot at or below 1e-14 of G's largest diagonal: cond(X)
 * beyond ~10^7, or rank deficient).
 */
typedef double dlanes8 __attribute__((vector_size(64)));
#define DLOAD8(v, p) memcpy(&(v), (p), sizeof(dlanes8))
#define DSTORE8(p, v) memcpy((p), &(v), sizeof(dlanes8))

SKINNY_LANES static void gram(double *g, const float *xf, const double *xd, int m, int l) {
  dlanes8 acc[NARROW][4];
  memset(acc, 0, sizeof acc);
  for (int i = 0; i < m; i++) {
    double row[NARROW] = {0};
    for (int j = 0; j < l; j++) row[j] = xf != NULL ? (double)xf[(size_t)i * l + j] : xd[(size_t)i * l + j];
    dlanes8 r[4];
    for (int h = 0; h < 4; h++) DLOAD8(r[h], row + 8 * h);
    for (int p = 0; p < l; p++)
      for (int h = 0; h < 4; h++) acc[p][h] += row[p] * r[h];
  }
  for (int p = 0; p < l; p++) {
    double full[NARROW];
    for (int h = 0; h < 4; h++) DSTORE8(full + 8 * h, acc[p][h]);
    for (int j = 0; j < l; j++) g[(size_t)p * l + j] = full[j];
  }
}

SKINNY_LANES static void times_upper(double *q, const float *xf, const double *xd, int m, int l, const double *rinv) {
  dlanes8 rv[NARROW][4];
  for (int p = 0; p < l; p++) {
    double full[NARROW] = {0};
    for (int j = 0; j < l; j++) full[j] = rinv[(size_t)p * l + j];
    for (int h = 0; h < 4; h++) DLOAD8(rv[p][h], full + 8 * h);
  }
  for (int i = 0; i < m; i++) {
    dlanes8 out[4] = {{0}, {0}, {0}, {0}};
    for (int p = 0; p < l; p++) {
      const double x = xf != NULL ? (double)xf[(size_t)i * l + p] : xd[(size_t)i * l + p];
      for (int h = 0; h < 4; h++) out[h] += x * rv[p][h];
    }
    double full[NARROW];
    for (int h = 0; h < 4; h++) DSTORE8(full + 8 * h, out[h]);
    for (int j = 0; j < l; j++) q[(size_t)i * l + j] = full[j];
  }
}

static int cholesky_qr_step(double *q, const float *xf, const double *xd, int m, int l, double *g, double *rinv) {
  gram(g, xf, xd, m, l);
  double top = 0.0;
  for (int p = 0; p < l; p++) top = g[p * l + p] > top ? g[p * l + p] : top;
  if (!(top > 0.0) || !isfinite(top)) return 0;
  /* In place: the upper triangle of g becomes R. */
  for (int p = 0; p < l; p++) {
    double d = g[p * l + p];
    for (int t = 0; t < p; t++) d -= g[t * l + p] * g[t * l + p];
    if (!(d > 1e-14 * top)) return 0;
    const double r = sqrt(d);
    g[p * l + p] = r;
    for (int j = p + 1; j < l; j++) {
      double s = g[p * l + j];
      for (int t = 0; t < p; t++) s -= g[t * l + p] * g[t * l + j];
      g[p * l + j] = s / r;
    }
  }
  /* R⁻¹, upper triangular, column by column: R·x = e_j. */
  memset(rinv, 0, (size_t)l * l * sizeof(double));
  for (int j = 0; j < l; j++) {
    for (int p = j; p >= 0; p--) {
      double s = p == j ? 1.0 : 0.0;
      for (int t = p + 1; t <= j; t++) s -= g[p * l + t] * rinv[t * l + j];
      rinv[p * l + j] = s / g[p * l + p];
    }
  }
  times_upper(q, xf, xd, m, l, rinv);
  return 1;
}

int skinny_orthonormalize(float *q, const float *x, int m, int l) {
  if (l < 1 || l > NARROW || m < l) return 0;
  scratch_set own, *set;
  const int was_kept = scratch_begin(&set, &own);
  double *q1 = scratch(set, 0, (size_t)m * l * sizeof(double)), *q2 = scratch(set, 1, (size_t)m * l * sizeof(double));
  double g[NARROW * NARROW], rinv[NARROW * NARROW];
  const int ok = q1 != NULL && q2 != NULL && cholesky_qr_step(q1, x, NULL, m, l, g, rinv) && cholesky_qr_step(q2, NULL, q1, m, l, g, rinv);
  if (ok)
    for (size_t i = 0; i < (size_t)m * l; i++) q[i] = (float)q2[i];
  scratch_end(set, was_kept);
  return ok;
}

/* ------------------------------------------------------------------------------------------- */

/*
 * out = C + alpha·A·B rounded to bfloat16 (f16 0) or float16 bits, C m×n, A m×k, B k×n, k ≤ 32:
 * 8 rows × 32 columns at a time, summed in registers and rounded as they are stored (one read of
 * C, one write of out). The rounding is src/core/dtype.ts's (half.h; bf16 vectorized below).
 */
typedef struct {
  uint16_t *out;
  const float *c, *a, *b;
  int m, n, k, f16;
  float alpha;
} residual_args;

SKINNY_LANES void skinny_residual_part(void *ctx, int part, int parts) {
  const residual_args *r = ctx;
  const int blocks = (r->m + 7) / 8;
  const int r0 = (int)((long)blocks * part / parts) * 8, r1 = (int)((long)blocks * (part + 1) / parts) * 8;
  const int n32 = r->n - r->n % NARROW;
  for (int i = r0; i < r1 && i < r->m; i += 8) {
    const int rows = r->m - i < 8 ? r->m - i : 8;
    for (int j = 0; j < r->n; j += NARROW) {
      const int cols = j < n32 ? NARROW : r->n - j;
      float sum[8][NARROW];
      if (cols == NARROW) {
        lanes16 s[8][2];
        for (int t = 0; t < 8; t++) s[t][0] = (lanes16){0}, s[t][1] = (lanes16){0};
        for (int p = 0; p < r->k; p++) {
          lanes16 b0, b1;
          LOAD16(b0, r->b + (size_t)p * r->n + j), LOAD16(b1, r->b + (size_t)p * r->n + j + 16);
          for (int t = 0; t < 8; t++) {
            const float x = r->a[(size_t)(i + (t < rows ? t : 0)) * r->k + p];
            s[t][0] += x * b0, s[t][1] += x * b1;
          }
        }
        for (int t = 0; t < rows; t++) STORE16(sum[t], s[t][0]), STORE16(sum[t] + 16, s[t][1]);
      } else {
        for (int t = 0; t < rows; t++)
          for (int q = 0; q < cols; q++) {
            float x = 0.0f;
            for (int p = 0; p < r->k; p++) x += r->a[(size_t)(i + t) * r->k + p] * r->b[(size_t)p * r->n + j + q];
            sum[t][q] = x;
          }
      }
      for (int t = 0; t < rows; t++) {
        const float *c = r->c + (size_t)(i + t) * r->n + j;
        uint16_t *o = r->out + (size_t)(i + t) * r->n + j;
        if (r->f16 || cols < NARROW) {
          for (int q = 0; q < cols; q++) {
            const float v = c[q] + r->alpha * sum[t][q];
            uint32_t bits;
            memcpy(&bits, &v, sizeof bits);
            o[q] = r->f16 ? f16_of(bits) : bf16_of(bits);
          }
          continue;
        }
        for (int h = 0; h < NARROW; h += 16) {
          lanes16 cv, sv;
          LOAD16(cv, c + h), LOAD16(sv, sum[t] + h);
          const lanes16 v = cv + r->alpha * sv;
          bits16 b;
          memcpy(&b, &v, sizeof b);
          const bits16 rounded = (b + 0x7fffu + ((b >> 16) & 1u)) >> 16;
          const bits16 quiet = (b >> 16) | 0x40u;
          const bits16 nan = (bits16)((b & 0x7fffffffu) > 0x7f800000u); /* all ones where NaN */
          const half16 out = __builtin_convertvector((rounded & ~nan) | (quiet & nan), half16);
          memcpy(o + h, &out, sizeof out);
        }
      }
    }
  }
}

int skinny_residual_half(uint16_t *out, const float *c, const float *a, const float *b, int m, int n, int k, float alpha, int f16) {
  if (k < 1 || k > NARROW || m < 1 || n < 1) return 0;
  residual_args r = {out, c, a, b, m, n, k, f16, alpha};
  const size_t work = (size_t)m * n * NARROW;
  nn_parallel(skinny_residual_part, &r, work < SKINNY_PARALLEL_MIN ? 1 : nn_parts_for((m + 7) / 8), 0);
  return 1;
}
