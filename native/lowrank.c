/*
 * lowrank_native: the dense kernels of lowrank's `native` backend over OpenBLAS (CBLAS) and
 * LAPACKE, as an N-API addon written in C (node_api.h only).
 *
 * Every kernel takes row-major Float32Array or Float64Array inputs plus their dimensions and
 * returns a Promise. The calling (JS) thread validates the arguments, copies the inputs LAPACK
 * overwrites into private buffers or straight into the outputs (inputs are never modified) and
 * allocates the output ArrayBuffers; the LAPACK/BLAS work then runs on a libuv pool thread
 * (napi_create_async_work), writing into those outputs, and the promise resolves with new typed
 * arrays over them. The read-only inputs of gemm, qr and trsm are not copied but referenced until the
 * work is done: like a buffer passed to fs.write, they must not be changed or transferred while
 * the promise is pending. Failures reject with an Error whose message names the routine
 * and whose `code` is "E_NUMERIC" (not positive definite, no convergence) or "E_INTERNAL".
 *
 * Two costs around a gemm are kept off the product itself:
 *   - the output's memory. Outputs that the kernel overwrites in full (gemm's C; the in-place
 *     copies of lu, cholesky, trsm and eigh's vectors) are allocated without zero-filling
 *     (napi_create_buffer: malloc rather than calloc), and on Linux outputs of 4 MiB or more are
 *     advised to use transparent huge pages, as numpy does for its arrays: OpenBLAS otherwise
 *     faults C's fresh pages in 4 KiB at a time while it writes them, which made a 1024³ sgemm
 *     15-35% slower than one writing into memory already in use when the process had been idle
 *     in between (freed output memory goes back to the system before the next call);
 *   - a gemm of at most SYNC_GEMM_MAX_MNK multiply-adds (about 0.1 ms) runs on the calling thread
 *     and returns an already settled promise: the round trip through the libuv pool (queue, wake a
 *     pool thread, wake the event loop) costs 20-40 us, a third to a half of a 64³-128³ product.
 *
 * Row-major data is handed to column-major LAPACK without transposing wherever the algebra allows
 * (a row-major A is a column-major Aᵀ):
 *   svd      gesdd on Aᵀ = V S Uᵀ: LAPACK's U is our Vt and its Vt is our U (fallback gesvd);
 *   qr       geqrf + orgqr on a column-major copy of A (contiguous columns);
 *   eigh     syevd on the upper triangle of Aᵀ (= the lower triangle of A), vectors transposed;
 *   cholesky potrf 'U' on Aᵀ: Uᵀ U = A, and U read row-major is the lower factor L = Uᵀ;
 *   lu       getrf needs the rows of A as rows, so it goes through LAPACKE's row-major path;
 *   gemm and trsm use CBLAS's row-major interface directly.
 */
#if defined(__linux__) && !defined(_DEFAULT_SOURCE)
#define _DEFAULT_SOURCE /* madvise, MADV_HUGEPAGE and syscall under -std=c11 */
#endif
#ifndef NAPI_VERSION
#define NAPI_VERSION 8
#endif
#include <node_api.h>

#include <cblas.h>
#include <lapacke.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>

#include "nn.h"
#include "skinny.h"
#include "half.h"

#if defined(__SSE__) || defined(__x86_64__)
#include <xmmintrin.h>
#endif
#if defined(__linux__)
#include <sys/mman.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <unistd.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/syscall.h>
#define RENAME_EXCHANGE_FLAG (1 << 1) /* RENAME_EXCHANGE of <linux/fs.h> */
#endif

/* OpenBLAS extensions (declared by OpenBLAS's cblas.h; repeated for other cblas.h headers). */
char *openblas_get_config(void);
char *openblas_get_corename(void);
int openblas_get_num_threads(void);
int openblas_get_parallel(void);

/* ------------------------------------------------------------------------------------------- */
/* Jobs                                                                                        */

typedef enum { OP_GEMM, OP_QR, OP_SVD, OP_EIGH, OP_LU, OP_CHOL, OP_TRSM, OP_ENCODE, OP_DECODE, OP_GEMM_HALF,
  OP_ATTENTION, OP_ATTENTION_BACKWARD, OP_ATTENTION_CACHED, OP_RMSNORM, OP_RMSNORM_BACKWARD, OP_SWIGLU, OP_SWIGLU_BACKWARD, OP_CROSS_ENTROPY } op_kind;

#define MAX_OUT 3
#define MAX_IN 6

typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  op_kind op;
  int f64;     /* element type: 0 float32, 1 float64 */
  size_t esz;  /* element size in bytes */
  int m, n, k; /* op-specific dimensions (see each op) */
  int lda, ldb;
  int flag_a, flag_b, flag_c; /* gemm: transA, transB, C given; trsm: lower, trans, unit; encode/decode: f16; qr: Q only */
  double alpha;               /* gemm with C: out = C + alpha·op(A)·op(B) */
  size_t count;               /* encode/decode: elements */
  char job;                   /* svd: 'S' 'A' 'N'; eigh: 'V' 'N' */
  void *in[MAX_IN];           /* private copies of the inputs (malloc), or borrowed (see below) */
  napi_ref in_ref[MAX_IN];    /* when set, in[i] points into this JS typed array: read only */
  int dims[7];                /* nn kernels: batch, t, heads, kv heads, head dim (, past, capacity) / rows, cols */
  int nout;                   /* number of result slots */
  int has_out[MAX_OUT];       /* slot present (else null in the result) */
  napi_ref out_ref[MAX_OUT];  /* the output ArrayBuffers, kept alive while the work runs */
  void *out[MAX_OUT];
  size_t out_count[MAX_OUT];
  napi_typedarray_type out_type[MAX_OUT];
  size_t out_offset[MAX_OUT]; /* byte offset of the data in its ArrayBuffer */
  const char *err_code; /* NULL on success */
  char err_msg[384];
} job_t;

static void job_fail(job_t *j, const char *code, const char *fmt, const char *routine, int value) {
  j->err_code = code;
  snprintf(j->err_msg, sizeof j->err_msg, fmt, routine, value);
}

/* The name of the single (s) or double (d) routine, by the job's element type. */
static const char *rname(const job_t *j, const char *s_name, const char *d_name) {
  return j->f64 ? d_name : s_name;
}

/* Reports a LAPACKE info < 0 (bad argument or out of memory). */
static void lapacke_error(job_t *j, const char *routine, lapack_int info) {
  if (info == LAPACK_WORK_MEMORY_ERROR || info == LAPACK_TRANSPOSE_MEMORY_ERROR)
    job_fail(j, "E_INTERNAL", "%s: out of memory for the workspace (info %d)", routine, (int)info);
  else
    job_fail(j, "E_INTERNAL", "%s: argument %d had an illegal value", routine, (int)-info);
}

static void transpose_square_inplace(job_t *j, void *data, int n) {
  if (j->f64) {
    double *a = (double *)data;
    for (int i = 0; i < n; i++)
      for (int c = i + 1; c < n; c++) {
        double t = a[(size_t)i * n + c];
        a[(size_t)i * n + c] = a[(size_t)c * n + i];
        a[(size_t)c * n + i] = t;
      }
  } else {
    float *a = (float *)data;
    for (int i = 0; i < n; i++)
      for (int c = i + 1; c < n; c++) {
        float t = a[(size_t)i * n + c];
        a[(size_t)i * n + c] = a[(size_t)c * n + i];
        a[(size_t)c * n + i] = t;
      }
  }
}

static void set_identity(job_t *j, void *data, int n) {
  memset(data, 0, (size_t)n * n * j->esz);
  for (int i = 0; i < n; i++) {
    if (j->f64) ((double *)data)[(size_t)i * n + i] = 1.0;
    else ((float *)data)[(size_t)i * n + i] = 1.0f;
  }
}

/* ------------------------------------------------------------------------------------------- */
/* Kernels (run on a pool thread: no N-API calls here)                                         */

/*
 * One row times a weight of at most this many elements (x·Wᵀ, float32) runs in nn_gemv_small on
 * this thread: for such small weights OpenBLAS's sgemv spends more on handing the product to its
 * threads than on the product, and a small model's decoding step is ~30 of them (the built-in
 * model's decode before and after: `npm run bench -- generate`).
 */
#define SMALL_GEMV_MAX_NK ((size_t)1 << 17)

/*
 * C (m×n) = op(A) · op(B), or with a C given (flag_c) C + alpha · op(A) · op(B): C is copied into
 * the output here, on the pool thread, and gemm adds to it with beta = 1 (one pass over C, where a
 * product followed by a JavaScript loop makes three). k the inner dimension, lda/ldb the stored
 * column counts.
 */
static void run_gemm(job_t *j) {
  if (j->m == 0 || j->n == 0) return;
  const size_t bytes = (size_t)j->m * j->n * j->esz;
  if (j->flag_c) memcpy(j->out[0], j->in[2], bytes);
  if (j->k == 0) { /* an empty sum: the output is not zero-filled when allocated */
    if (!j->flag_c) memset(j->out[0], 0, bytes);
    return;
  }
  enum CBLAS_TRANSPOSE ta = j->flag_a ? CblasTrans : CblasNoTrans;
  enum CBLAS_TRANSPOSE tb = j->flag_b ? CblasTrans : CblasNoTrans;
  const double alpha = j->flag_c ? j->alpha : 1.0, beta = j->flag_c ? 1.0 : 0.0;
  if (j->m == 1) {
    /* A's one row is contiguous either way: stored [1, k], or [k, 1] with lda 1. */
    if (!j->f64 && j->flag_b && (size_t)j->n * j->k <= SMALL_GEMV_MAX_NK) {
      nn_gemv_small(j->out[0], j->in[0], j->in[1], j->n, j->k, j->ldb, (float)alpha, j->flag_c);
      return;
    }
    /*
     * One row (a decoding step's x·Wᵀ): a matrix-vector product. OpenBLAS 0.3.21's gemm packs all
     * of B for one row; its gemv streams B once (`npm run bench -- generate` shows decoding).
     */
    const int incx = j->flag_a ? j->lda : 1;
    const enum CBLAS_TRANSPOSE t = j->flag_b ? CblasNoTrans : CblasTrans; /* B is [n, k] or [k, n] */
    const int rows = j->flag_b ? j->n : j->k, cols = j->flag_b ? j->k : j->n;
    if (j->f64) cblas_dgemv(CblasRowMajor, t, rows, cols, alpha, j->in[1], j->ldb, j->in[0], incx, beta, j->out[0], 1);
    else cblas_sgemv(CblasRowMajor, t, rows, cols, (float)alpha, j->in[1], j->ldb, j->in[0], incx, (float)beta, j->out[0], 1);
    return;
  }
  if (!j->f64 && !j->flag_c && skinny_gemm(j->out[0], j->in[0], j->lda, j->in[1], j->ldb, j->m, j->n, j->k, j->flag_a, j->flag_b)) return;
  if (j->f64)
    cblas_dgemm(CblasRowMajor, ta, tb, j->m, j->n, j->k, alpha, j->in[0], j->lda, j->in[1], j->ldb, beta, j->out[0], j->n);
  else
    cblas_sgemm(CblasRowMajor, ta, tb, j->m, j->n, j->k, (float)alpha, j->in[0], j->lda, j->in[1], j->ldb, (float)beta,
                j->out[0], j->n);
}

/* out[0] (uint16, count) = in[0] (float32) as bf16 (flag_c 0) or f16 (flag_c 1) bits. */
static void run_encode(job_t *j) {
  const uint32_t *x = (const uint32_t *)j->in[0];
  uint16_t *o = (uint16_t *)j->out[0];
  const size_t n = j->count;
  if (j->flag_c)
    for (size_t i = 0; i < n; i++) o[i] = f16_of(x[i]);
  else
    for (size_t i = 0; i < n; i++) o[i] = bf16_of(x[i]);
}

/* out[0] (float32, count) = in[0] (uint16 bf16 or f16 bits) exactly. */
static void run_decode(job_t *j) {
  const uint16_t *x = (const uint16_t *)j->in[0];
  uint32_t *o = (uint32_t *)j->out[0];
  const size_t n = j->count;
  if (j->flag_c)
    for (size_t i = 0; i < n; i++) o[i] = f32_bits_of_f16(x[i]);
  else
    for (size_t i = 0; i < n; i++) o[i] = (uint32_t)x[i] << 16;
}

/*
 * Thin QR of A (m×n): out[0] = Q (m×k), out[1] = R (k×n). A is copied into column-major order first
 * so that geqrf/orgqr walk contiguous columns (LQ of the row-major buffer read as Aᵀ walks rows with
 * stride n: 2048×74 took 45 ms that way, against 2 ms here).
 */
static void run_qr(job_t *j) {
  const int m = j->m, n = j->n, k = j->k;
  if (k == 0) return;
  if (j->flag_a && !j->f64 && skinny_orthonormalize(j->out[0], j->in[0], m, n)) return; /* Q only */
  const char *geq = rname(j, "LAPACKE_sgeqrf", "LAPACKE_dgeqrf");
  const char *org = rname(j, "LAPACKE_sorgqr", "LAPACKE_dorgqr");
  const size_t esz = j->esz;
  void *tau = malloc((size_t)k * esz);
  void *a = malloc((size_t)m * (size_t)n * esz);
  if (tau == NULL || a == NULL) {
    free(tau);
    free(a);
    job_fail(j, "E_INTERNAL", "%s: out of memory (%d columns)", geq, n);
    return;
  }
  if (j->f64) {
    const double *in = j->in[0];
    double *ca = a;
    for (int r = 0; r < m; r++)
      for (int c = 0; c < n; c++) ca[(size_t)c * m + r] = in[(size_t)r * n + c];
  } else {
    const float *in = j->in[0];
    float *ca = a;
    for (int r = 0; r < m; r++)
      for (int c = 0; c < n; c++) ca[(size_t)c * m + r] = in[(size_t)r * n + c];
  }
  lapack_int info = j->f64 ? LAPACKE_dgeqrf(LAPACK_COL_MAJOR, m, n, a, m, tau) : LAPACKE_sgeqrf(LAPACK_COL_MAJOR, m, n, a, m, tau);
  if (info != 0) {
    lapacke_error(j, geq, info);
    free(tau);
    free(a);
    return;
  }
  /* R (k×n, row-major): the upper triangle of the first k rows. */
  for (int r = 0; r < (j->flag_a ? 0 : k); r++)
    for (int c = 0; c < n; c++) {
      const size_t o = (size_t)r * n + c;
      const size_t ia = (size_t)c * m + r;
      if (j->f64) ((double *)j->out[1])[o] = c >= r ? ((double *)a)[ia] : 0.0;
      else ((float *)j->out[1])[o] = c >= r ? ((float *)a)[ia] : 0.0f;
    }
  info = j->f64 ? LAPACKE_dorgqr(LAPACK_COL_MAJOR, m, k, k, a, m, tau) : LAPACKE_sorgqr(LAPACK_COL_MAJOR, m, k, k, a, m, tau);
  free(tau);
  if (info != 0) {
    lapacke_error(j, org, info);
    free(a);
    return;
  }
  /* Q (m×k, row-major) from its column-major first k columns. */
  if (j->f64) {
    const double *ca = a;
    double *q = j->out[0];
    for (int r = 0; r < m; r++)
      for (int c = 0; c < k; c++) q[(size_t)r * k + c] = ca[(size_t)c * m + r];
  } else {
    const float *ca = a;
    float *q = j->out[0];
    for (int r = 0; r < m; r++)
      for (int c = 0; c < k; c++) q[(size_t)r * k + c] = ca[(size_t)c * m + r];
  }
  free(a);
}

/*
 * SVD of A (m×n): out[0] = s (k), out[1] = U (m×k or m×m), out[2] = Vt (k×n or n×n).
 * LAPACK sees Aᵀ (n×m) = V S Uᵀ, so its U (ldu n) is our Vt and its Vt is our U.
 */
static void run_svd(job_t *j) {
  const int m = j->m, n = j->n, k = j->k;
  const char job = j->job;
  if (k == 0) {
    if (job == 'A') {
      set_identity(j, j->out[1], m);
      set_identity(j, j->out[2], n);
    }
    return;
  }
  double dummy[1];
  void *lu = job == 'N' ? (void *)dummy : j->out[2]; /* LAPACK's U = our Vt */
  void *lvt = job == 'N' ? (void *)dummy : j->out[1]; /* LAPACK's Vt = our U */
  const lapack_int ldu = job == 'N' ? 1 : n;
  const lapack_int ldvt = job == 'N' ? 1 : (job == 'A' ? m : k);
  const size_t bytes = (size_t)m * n * j->esz;

  /* gesdd overwrites its input; keep in[0] intact for the gesvd fallback. */
  void *a = malloc(bytes);
  lapack_int info;
  if (a != NULL) {
    memcpy(a, j->in[0], bytes);
    info = j->f64 ? LAPACKE_dgesdd(LAPACK_COL_MAJOR, job, n, m, a, n, j->out[0], lu, ldu, lvt, ldvt)
                  : LAPACKE_sgesdd(LAPACK_COL_MAJOR, job, n, m, a, n, j->out[0], lu, ldu, lvt, ldvt);
    free(a);
    if (info < 0) {
      lapacke_error(j, rname(j, "LAPACKE_sgesdd", "LAPACKE_dgesdd"), info);
      return;
    }
    if (info == 0) return;
  }
  /* gesdd did not converge (info > 0) or there was no memory for a second copy: gesvd on in[0]. */
  void *superb = malloc((size_t)(k > 1 ? k - 1 : 1) * j->esz);
  const char *gesvd = rname(j, "LAPACKE_sgesvd", "LAPACKE_dgesvd");
  if (superb == NULL) {
    job_fail(j, "E_INTERNAL", "%s: out of memory (%d values)", gesvd, k);
    return;
  }
  info = j->f64 ? LAPACKE_dgesvd(LAPACK_COL_MAJOR, job, job, n, m, j->in[0], n, j->out[0], lu, ldu, lvt, ldvt, superb)
                : LAPACKE_sgesvd(LAPACK_COL_MAJOR, job, job, n, m, j->in[0], n, j->out[0], lu, ldu, lvt, ldvt, superb);
  free(superb);
  if (info < 0) lapacke_error(j, gesvd, info);
  else if (info > 0)
    job_fail(j, "E_NUMERIC", "%s (after gesdd failed): the QR iteration did not converge (%d superdiagonals left)",
             gesvd, (int)info);
}

/* Symmetric eigendecomposition of A (n×n, lower triangle): out[0] = values, out[1] = vectors. */
static void run_eigh(job_t *j) {
  const int n = j->n;
  if (n == 0) return;
  /* The lower triangle of row-major A is the upper triangle of column-major Aᵀ = A. */
  void *a = j->job == 'V' ? j->out[1] : j->in[0];
  lapack_int info = j->f64 ? LAPACKE_dsyevd(LAPACK_COL_MAJOR, j->job, 'U', n, a, n, j->out[0])
                           : LAPACKE_ssyevd(LAPACK_COL_MAJOR, j->job, 'U', n, a, n, j->out[0]);
  const char *name = rname(j, "LAPACKE_ssyevd", "LAPACKE_dsyevd");
  if (info < 0) {
    lapacke_error(j, name, info);
    return;
  }
  if (info > 0) {
    job_fail(j, "E_NUMERIC", "%s: the eigenvalue algorithm did not converge (info %d)", name, (int)info);
    return;
  }
  /* Column-major eigenvectors (vector c in column c) into row-major with vectors as columns. */
  if (j->job == 'V') transpose_square_inplace(j, a, n);
}

/* LU with partial pivoting of A (m×n), in place in out[0]; out[1] = perm (m). */
static void run_lu(job_t *j) {
  const int m = j->m, n = j->n, k = j->k;
  int32_t *perm = (int32_t *)j->out[1];
  for (int i = 0; i < m; i++) perm[i] = i;
  if (k == 0) return;
  const char *name = rname(j, "LAPACKE_sgetrf", "LAPACKE_dgetrf");
  lapack_int *ipiv = (lapack_int *)malloc((size_t)k * sizeof(lapack_int));
  if (ipiv == NULL) {
    job_fail(j, "E_INTERNAL", "%s: out of memory (%d pivots)", name, k);
    return;
  }
  lapack_int info = j->f64 ? LAPACKE_dgetrf(LAPACK_ROW_MAJOR, m, n, j->out[0], n, ipiv)
                           : LAPACKE_sgetrf(LAPACK_ROW_MAJOR, m, n, j->out[0], n, ipiv);
  if (info < 0) {
    lapacke_error(j, name, info);
    free(ipiv);
    return;
  }
  /* info > 0: U has an exact zero on its diagonal; the factorization is still valid. */
  /* ipiv: row i was swapped with row ipiv[i]-1, in order; applying the swaps to the identity gives
     perm with row i of P·A = row perm[i] of A. */
  for (int i = 0; i < k; i++) {
    const int p = (int)ipiv[i] - 1;
    if (p != i && p >= 0 && p < m) {
      const int32_t t = perm[i];
      perm[i] = perm[p];
      perm[p] = t;
    }
  }
  free(ipiv);
}

/* Lower Cholesky factor of A (n×n, lower triangle), in place in out[0]. */
static void run_chol(job_t *j) {
  const int n = j->n;
  if (n == 0) return;
  const char *name = rname(j, "LAPACKE_spotrf", "LAPACKE_dpotrf");
  lapack_int info = j->f64 ? LAPACKE_dpotrf(LAPACK_COL_MAJOR, 'U', n, j->out[0], n)
                           : LAPACKE_spotrf(LAPACK_COL_MAJOR, 'U', n, j->out[0], n);
  if (info < 0) {
    lapacke_error(j, name, info);
    return;
  }
  if (info > 0) {
    job_fail(j, "E_NUMERIC", "%s: the matrix is not positive definite (the leading minor of order %d is not positive)",
             name, (int)info);
    return;
  }
  /* Row-major result: the factor is in the lower triangle; clear the untouched upper part. */
  for (int i = 0; i + 1 < n; i++)
    memset((char *)j->out[0] + ((size_t)i * n + i + 1) * j->esz, 0, (size_t)(n - 1 - i) * j->esz);
}

/* Solves op(T) X = B; T n×n in in[0], B n×k copied into out[0] and overwritten with X. */
static void run_trsm(job_t *j) {
  if (j->n == 0 || j->k == 0) return;
  enum CBLAS_UPLO uplo = j->flag_a ? CblasLower : CblasUpper;
  enum CBLAS_TRANSPOSE tr = j->flag_b ? CblasTrans : CblasNoTrans;
  enum CBLAS_DIAG diag = j->flag_c ? CblasUnit : CblasNonUnit;
  if (j->f64)
    cblas_dtrsm(CblasRowMajor, CblasLeft, uplo, tr, diag, j->n, j->k, 1.0, j->in[0], j->n, j->out[0], j->k);
  else
    cblas_strsm(CblasRowMajor, CblasLeft, uplo, tr, diag, j->n, j->k, 1.0f, j->in[0], j->n, j->out[0], j->k);
}

/*
 * out[0] (uint16 m×n) = C + alpha·op(A)·op(B) rounded once to bf16 (flag_c 0) or f16 (flag_c 1),
 * float32 only: the sum is made one block of rows at a time in a scratch buffer that stays in
 * cache (copy C's rows, gemm with beta = 1, round), so no m×n float32 result is ever allocated —
 * a weight's residual W − s·B·A goes straight to its storage type. k from j->k, transposes in
 * flag_a/flag_b as in run_gemm.
 */
static void run_gemm_half(job_t *j) {
  const int m = j->m, n = j->n, k = j->k;
  if (m == 0 || n == 0) return;
  if (!j->flag_a && !j->flag_b && skinny_residual_half(j->out[0], j->in[2], j->in[0], j->in[1], m, n, k, (float)j->alpha, j->flag_c)) return;
  const int rows = n >= 16384 ? 4 : 65536 / n; /* ~256 KiB of float32 per block */
  float *scratch = (float *)malloc((size_t)rows * n * sizeof(float));
  if (scratch == NULL) {
    job_fail(j, "E_INTERNAL", "%s: out of memory (%d columns)", "gemm to half", n);
    return;
  }
  const float *a = j->in[0], *b = j->in[1], *c = j->in[2];
  uint16_t *o = (uint16_t *)j->out[0];
  enum CBLAS_TRANSPOSE ta = j->flag_a ? CblasTrans : CblasNoTrans;
  enum CBLAS_TRANSPOSE tb = j->flag_b ? CblasTrans : CblasNoTrans;
  for (int r0 = 0; r0 < m; r0 += rows) {
    const int h = m - r0 < rows ? m - r0 : rows;
    memcpy(scratch, c + (size_t)r0 * n, (size_t)h * n * sizeof(float));
    /* Rows r0.. of op(A): rows of A (lda = k), or columns of A stored k×m (lda = m). */
    const float *ablock = j->flag_a ? a + r0 : a + (size_t)r0 * j->lda;
    if (k > 0) cblas_sgemm(CblasRowMajor, ta, tb, h, n, k, (float)j->alpha, ablock, j->lda, b, j->ldb, 1.0f, scratch, n);
    const uint32_t *x = (const uint32_t *)scratch;
    uint16_t *ob = o + (size_t)r0 * n;
    const size_t cnt = (size_t)h * n;
    if (j->flag_c)
      for (size_t i = 0; i < cnt; i++) ob[i] = f16_of(x[i]);
    else
      for (size_t i = 0; i < cnt; i++) ob[i] = bf16_of(x[i]);
  }
  free(scratch);
}

/*
 * The training kernels of nn.c; dims and inputs as js_nn below describes them. They run with
 * subnormals flushed to zero (x86 MXCSR FTZ and DAZ, restored after): vectorized, their clamped
 * exponentials compute every lane of both sides of a select, and a lane that makes a subnormal
 * costs a ~150-cycle microcode assist even when it is not selected (SiLU ran 7x slower).
 */
static void run_nn_kernel(job_t *j);

static void run_nn(job_t *j) {
#if defined(__SSE__) || defined(__x86_64__)
  const unsigned csr = _mm_getcsr();
  _mm_setcsr(csr | 0x8040u); /* FTZ (bit 15) | DAZ (bit 6) */
#endif
  run_nn_kernel(j);
#if defined(__SSE__) || defined(__x86_64__)
  _mm_setcsr(csr);
#endif
}

static void run_nn_kernel(job_t *j) {
  const int *d = j->dims;
  float *const *o = (float *const *)j->out;
  void *const *in = j->in;
  switch (j->op) {
    case OP_ATTENTION: nn_attention_forward(o[0], o[1], in[0], in[1], in[2], d[0], d[1], d[2], d[3], d[4]); break;
    case OP_ATTENTION_BACKWARD:
      if (!nn_attention_backward(o[0], o[1], o[2], in[4], in[0], in[1], in[2], in[3], d[0], d[1], d[2], d[3], d[4]))
        job_fail(j, "E_INTERNAL", "%s: out of memory for the scratch (T = %d)", "attentionBackward", d[1]);
      break;
    case OP_ATTENTION_CACHED:
      if (!nn_attention_cached(o[0], in[0], in[1], in[2], in[3], d[0], d[1], d[2], d[3], d[4], d[5], d[6]))
        job_fail(j, "E_INTERNAL", "%s: out of memory for the scratch (past + t = %d)", "attentionCached", d[5] + d[1]);
      break;
    case OP_RMSNORM: nn_rmsnorm_forward(o[0], o[1], in[0], in[1], d[0], d[1], j->alpha); break;
    case OP_RMSNORM_BACKWARD: nn_rmsnorm_backward(o[0], o[1], in[0], in[1], in[2], in[3], d[0], d[1]); break;
    case OP_SWIGLU: nn_swiglu_forward(o[0], in[0], in[1], j->count); break;
    case OP_SWIGLU_BACKWARD: nn_swiglu_backward(o[0], o[1], in[0], in[1], in[2], j->count); break;
    case OP_CROSS_ENTROPY:
      *(double *)j->out[1] = nn_cross_entropy(o[0], in[0], in[1], d[0], d[1], (int)j->alpha);
      break;
    default: break;
  }
}

/*
 * Decompositions of at most this much work (m·n·min(m, n)) run with OpenBLAS on the calling thread
 * alone: its workers gain nothing on a 26 × 2048 SVD (a randomized SVD's last step), and once
 * woken they spin for ~0.1 s (its THREAD_TIMEOUT), taking a core from the skinny products and nn
 * kernels that follow (after every such SVD, in a PiSSA init of 154 matrices).
 */
#define SMALL_DECOMPOSITION ((double)(1 << 24))

static void execute(napi_env env, void *data) {
  (void)env;
  job_t *j = (job_t *)data;
  const int decomposition = j->op == OP_QR || j->op == OP_SVD || j->op == OP_EIGH || j->op == OP_LU || j->op == OP_CHOL;
  const int threads = openblas_get_num_threads();
  const int rows = j->m > 0 ? j->m : j->n; /* eigh and cholesky set n alone */
  const int alone = decomposition && threads > 1 && (double)rows * j->n * (rows < j->n ? rows : j->n) <= SMALL_DECOMPOSITION;
  if (alone) openblas_set_num_threads(1);
  switch (j->op) {
    case OP_GEMM: run_gemm(j); break;
    case OP_QR: run_qr(j); break;
    case OP_SVD: run_svd(j); break;
    case OP_EIGH: run_eigh(j); break;
    case OP_LU: run_lu(j); break;
    case OP_CHOL: run_chol(j); break;
    case OP_TRSM: run_trsm(j); break;
    case OP_ENCODE: run_encode(j); break;
    case OP_DECODE: run_decode(j); break;
    case OP_GEMM_HALF: run_gemm_half(j); break;
    case OP_ATTENTION:
    case OP_ATTENTION_BACKWARD:
    case OP_ATTENTION_CACHED:
    case OP_RMSNORM:
    case OP_RMSNORM_BACKWARD:
    case OP_SWIGLU:
    case OP_SWIGLU_BACKWARD:
    case OP_CROSS_ENTROPY: run_nn(j); break;
  }
  if (alone) openblas_set_num_threads(threads);
}

/* ------------------------------------------------------------------------------------------- */
/* N-API plumbing (JS thread)                                                                  */

static void job_free(napi_env env, job_t *j) {
  if (j == NULL) return;
  for (int i = 0; i < MAX_OUT; i++)
    if (j->out_ref[i] != NULL) napi_delete_reference(env, j->out_ref[i]);
  if (j->work != NULL) napi_delete_async_work(env, j->work);
  for (int i = 0; i < MAX_IN; i++) {
    if (j->in_ref[i] != NULL) napi_delete_reference(env, j->in_ref[i]);
    else free(j->in[i]);
  }
  free(j);
}

/* Throws a JS error for a failed N-API call (unless one is already pending). */
static void throw_last(napi_env env, const char *what) {
  bool pending = false;
  napi_is_exception_pending(env, &pending);
  if (pending) return;
  const napi_extended_error_info *info = NULL;
  napi_get_last_error_info(env, &info);
  char msg[256];
  snprintf(msg, sizeof msg, "lowrank_native: %s failed: %s", what,
           info != NULL && info->error_message != NULL ? info->error_message : "unknown N-API error");
  napi_throw_error(env, "E_INTERNAL", msg);
}

#define CHECK(call, what)                                                                          \
  do {                                                                                             \
    if ((call) != napi_ok) {                                                                       \
      throw_last(env, what);                                                                       \
      goto fail;                                                                                   \
    }                                                                                              \
  } while (0)

static void complete(napi_env env, napi_status status, void *data) {
  job_t *j = (job_t *)data;
  napi_value result = NULL, error = NULL, code = NULL, msg = NULL;
  if (status != napi_ok && j->err_code == NULL) {
    j->err_code = "E_INTERNAL";
    snprintf(j->err_msg, sizeof j->err_msg, "lowrank_native: the work was %s",
             status == napi_cancelled ? "cancelled" : "not run");
  }
  if (j->err_code != NULL) {
    if (napi_create_string_utf8(env, j->err_code, NAPI_AUTO_LENGTH, &code) == napi_ok &&
        napi_create_string_utf8(env, j->err_msg, NAPI_AUTO_LENGTH, &msg) == napi_ok &&
        napi_create_error(env, code, msg, &error) == napi_ok)
      napi_reject_deferred(env, j->deferred, error);
    job_free(env, j);
    return;
  }
  napi_value items[MAX_OUT];
  for (int i = 0; i < j->nout; i++) {
    if (!j->has_out[i]) {
      if (napi_get_null(env, &items[i]) != napi_ok) goto fail;
      continue;
    }
    napi_value ab;
    if (napi_get_reference_value(env, j->out_ref[i], &ab) != napi_ok || ab == NULL) goto fail;
    if (napi_create_typedarray(env, j->out_type[i], j->out_count[i], ab, j->out_offset[i], &items[i]) != napi_ok)
      goto fail;
  }
  if (j->nout == 1) {
    result = items[0];
  } else {
    if (napi_create_array_with_length(env, (size_t)j->nout, &result) != napi_ok) goto fail;
    for (int i = 0; i < j->nout; i++)
      if (napi_set_element(env, result, (uint32_t)i, items[i]) != napi_ok) goto fail;
  }
  napi_resolve_deferred(env, j->deferred, result);
  job_free(env, j);
  return;
fail:
  {
    bool pending = false;
    napi_is_exception_pending(env, &pending);
    if (pending) {
      napi_get_and_clear_last_exception(env, &error);
    } else if (napi_create_string_utf8(env, "E_INTERNAL", NAPI_AUTO_LENGTH, &code) == napi_ok &&
               napi_create_string_utf8(env, "lowrank_native: could not build the result", NAPI_AUTO_LENGTH, &msg) ==
                   napi_ok) {
      napi_create_error(env, code, msg, &error);
    }
    if (error != NULL) napi_reject_deferred(env, j->deferred, error);
    job_free(env, j);
  }
}

/* A new job with room for the arguments. */
static job_t *job_new(napi_env env) {
  job_t *j = (job_t *)calloc(1, sizeof(job_t));
  if (j == NULL) napi_throw_range_error(env, "E_INTERNAL", "lowrank_native: out of memory");
  return j;
}

/* Reads a Float32Array/Float64Array argument. Sets the job's element type from the first one. */
static int get_floats(napi_env env, napi_value v, job_t *j, int first, const char *what, void **data, size_t *length) {
  bool is_ta = false;
  if (napi_is_typedarray(env, v, &is_ta) != napi_ok || !is_ta) {
    char msg[128];
    snprintf(msg, sizeof msg, "lowrank_native: %s must be a Float32Array or Float64Array", what);
    napi_throw_type_error(env, "E_INTERNAL", msg);
    return 0;
  }
  napi_typedarray_type type;
  napi_value ab;
  size_t offset;
  if (napi_get_typedarray_info(env, v, &type, length, data, &ab, &offset) != napi_ok) {
    throw_last(env, "napi_get_typedarray_info");
    return 0;
  }
  if (type != napi_float32_array && type != napi_float64_array) {
    char msg[128];
    snprintf(msg, sizeof msg, "lowrank_native: %s must be a Float32Array or Float64Array", what);
    napi_throw_type_error(env, "E_INTERNAL", msg);
    return 0;
  }
  const int f64 = type == napi_float64_array;
  if (first) {
    j->f64 = f64;
    j->esz = f64 ? sizeof(double) : sizeof(float);
  } else if (f64 != j->f64) {
    char msg[128];
    snprintf(msg, sizeof msg, "lowrank_native: %s has a different element type than the first matrix", what);
    napi_throw_type_error(env, "E_INTERNAL", msg);
    return 0;
  }
  return 1;
}

static int get_dim(napi_env env, napi_value v, const char *what, int *out) {
  int32_t x = -1;
  if (napi_get_value_int32(env, v, &x) != napi_ok || x < 0) {
    char msg[128];
    snprintf(msg, sizeof msg, "lowrank_native: %s must be a non-negative integer", what);
    napi_throw_type_error(env, "E_INTERNAL", msg);
    return 0;
  }
  *out = x;
  return 1;
}

static int get_flag(napi_env env, napi_value v, const char *what, int *out) {
  bool b = false;
  if (napi_get_value_bool(env, v, &b) != napi_ok) {
    char msg[128];
    snprintf(msg, sizeof msg, "lowrank_native: %s must be a boolean", what);
    napi_throw_type_error(env, "E_INTERNAL", msg);
    return 0;
  }
  *out = b ? 1 : 0;
  return 1;
}

/* Checks that an array holds exactly rows×cols elements. */
static int check_len(napi_env env, size_t length, int rows, int cols, const char *what) {
  if (length != (size_t)rows * (size_t)cols) {
    char msg[192];
    snprintf(msg, sizeof msg, "lowrank_native: %s has %zu elements, not %d x %d", what, length, rows, cols);
    napi_throw_range_error(env, "E_INTERNAL", msg);
    return 0;
  }
  return 1;
}

/* A private copy of count elements (at least one byte is allocated). */
static int copy_in(napi_env env, job_t *j, const void *src, size_t count, void **dst) {
  const size_t bytes = count * j->esz;
  *dst = malloc(bytes > 0 ? bytes : 1);
  if (*dst == NULL) {
    napi_throw_range_error(env, "E_INTERNAL", "lowrank_native: out of memory copying an input");
    return 0;
  }
  if (bytes > 0) memcpy(*dst, src, bytes);
  return 1;
}

/*
 * Borrows a read-only input instead of copying it (gemm's A and B, trsm's T): the typed array is
 * referenced until the work completes. Copying would cost as much as a skinny product itself.
 */
static int borrow_in(napi_env env, napi_value array, void *data, void **dst, napi_ref *ref) {
  if (napi_create_reference(env, array, 1, ref) != napi_ok) {
    throw_last(env, "napi_create_reference");
    return 0;
  }
  *dst = data;
  return 1;
}

/* Outputs of at least this many bytes get MADV_HUGEPAGE (numpy's threshold for the same advice). */
#define HUGEPAGE_MIN_BYTES ((size_t)4 << 20)

/*
 * Advises the kernel to back a new output with transparent huge pages where THP is in "madvise"
 * mode (the Debian default): a 1024x1024 float32 C then takes a few 2 MiB faults instead of 1024
 * 4 KiB ones inside the product. Only a hint on memory that napi_create_buffer/ArrayBuffer gave us
 * (page-aligned interior only); failure changes nothing.
 */
static void advise_hugepages(void *data, size_t bytes) {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  if (bytes < HUGEPAGE_MIN_BYTES) return;
  const long ps = sysconf(_SC_PAGESIZE);
  const uintptr_t page = ps > 0 ? (uintptr_t)ps : 4096;
  const uintptr_t lo = ((uintptr_t)data + page - 1) & ~(page - 1);
  const uintptr_t hi = ((uintptr_t)data + bytes) & ~(page - 1);
  if (hi > lo) (void)madvise((void *)lo, hi - lo, MADV_HUGEPAGE);
#else
  (void)data;
  (void)bytes;
#endif
}

/* Outputs up to this many bytes may come uninitialized from napi_create_buffer (Node's Buffer
   limit is at least 2^31 - 1 bytes in every version); larger ones are zero-filled ArrayBuffers. */
#define MAX_UNINIT_BYTES ((size_t)0x7fffffff)

/*
 * Allocates result slot i: a new ArrayBuffer of count elements, referenced until completion.
 * zeroed: 1 when the kernel may leave part of the output unwritten (the zeros are part of the
 * result), 0 when it overwrites every element before the result is seen: then the memory comes
 * from napi_create_buffer, uninitialized like Buffer.allocUnsafe (malloc, not calloc: no
 * zero-fill on this thread, and freed heap memory is reused instead of fresh zero pages that the
 * kernel would fault in one by one).
 */
static int alloc_out(napi_env env, job_t *j, int i, size_t count, napi_typedarray_type type, int zeroed) {
  const size_t esz = type == napi_int32_array     ? sizeof(int32_t)
                     : type == napi_uint16_array  ? sizeof(uint16_t)
                     : type == napi_float64_array ? sizeof(double)
                     : type == napi_float32_array ? sizeof(float)
                                                  : j->esz;
  const size_t bytes = count * esz;
  napi_value ab;
  j->out_offset[i] = 0;
  if (!zeroed && bytes > 0 && bytes <= MAX_UNINIT_BYTES) {
    napi_value buf;
    void *data = NULL;
    size_t length = 0, offset = 0;
    napi_typedarray_type bt;
    if (napi_create_buffer(env, bytes, &data, &buf) != napi_ok) {
      throw_last(env, "napi_create_buffer (out of memory?)");
      return 0;
    }
    if (napi_get_typedarray_info(env, buf, &bt, &length, &data, &ab, &offset) != napi_ok) {
      throw_last(env, "napi_get_typedarray_info");
      return 0;
    }
    if (offset % esz != 0 || length < bytes) {
      napi_throw_error(env, "E_INTERNAL", "lowrank_native: napi_create_buffer returned a misaligned buffer");
      return 0;
    }
    j->out[i] = data;
    j->out_offset[i] = offset;
  } else if (napi_create_arraybuffer(env, bytes, &j->out[i], &ab) != napi_ok) {
    throw_last(env, "napi_create_arraybuffer (out of memory?)");
    return 0;
  }
  advise_hugepages(j->out[i], bytes);
  if (napi_create_reference(env, ab, 1, &j->out_ref[i]) != napi_ok) {
    throw_last(env, "napi_create_reference");
    return 0;
  }
  j->has_out[i] = 1;
  j->out_count[i] = count;
  j->out_type[i] = type;
  return 1;
}

static napi_typedarray_type float_type(const job_t *j) {
  return j->f64 ? napi_float64_array : napi_float32_array;
}

/*
 * Creates the promise and queues the work; frees the job on failure. With sync set the work runs
 * right here on the calling thread instead and the promise is settled before it is returned (for
 * products too small to be worth a trip through the libuv pool).
 */
static napi_value start(napi_env env, job_t *j, const char *name, int sync) {
  napi_value promise = NULL, resource_name;
  if (sync) {
    CHECK(napi_create_promise(env, &j->deferred, &promise), "napi_create_promise");
    execute(env, j);
    complete(env, napi_ok, j); /* settles the promise and frees the job */
    return promise;
  }
  CHECK(napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &resource_name), "napi_create_string_utf8");
  CHECK(napi_create_async_work(env, NULL, resource_name, execute, complete, j, &j->work), "napi_create_async_work");
  CHECK(napi_create_promise(env, &j->deferred, &promise), "napi_create_promise");
  CHECK(napi_queue_async_work(env, j->work), "napi_queue_async_work");
  return promise;
fail:
  /* A created deferred with no queued work is left pending: the exception thrown wins. */
  job_free(env, j);
  return NULL;
}

static int get_args(napi_env env, napi_callback_info info, size_t want, napi_value *argv, const char *fn) {
  size_t argc = want;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) {
    throw_last(env, "napi_get_cb_info");
    return 0;
  }
  if (argc < want) {
    char msg[128];
    snprintf(msg, sizeof msg, "lowrank_native: %s expects %zu arguments, got %zu", fn, want, argc);
    napi_throw_type_error(env, "E_INTERNAL", msg);
    return 0;
  }
  return 1;
}

/*
 * A gemm of at most this many multiply-adds (m·n·k; 2^21 is a 128³ product: about 70 us on the
 * 2-core development machine, less on bigger ones) runs synchronously on the calling thread: the
 * event loop is held for at most about 0.1 ms, and the libuv round trip it saves (20-40 us) is a
 * large part of such a product. Larger ones go to the pool so the event loop keeps running.
 */
#define SYNC_GEMM_MAX_MNK ((double)(1 << 21))

/*
 * gemm(a, aRows, aCols, b, bRows, bCols, transA, transB[, c, alpha[, f16]]) -> Promise<C>: op(A)·op(B),
 * or C + alpha·op(A)·op(B) when c (m×n, same element type, read only) is given; with the f16 flag
 * too (float32 only), that sum rounded to float16 (true) or bfloat16 (false) bits, a Uint16Array.
 */
static napi_value js_gemm(napi_env env, napi_callback_info info) {
  napi_value argv[11];
  size_t argc = 11;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) {
    throw_last(env, "napi_get_cb_info");
    return NULL;
  }
  if (argc != 8 && argc != 10 && argc != 11) {
    napi_throw_type_error(env, "E_INTERNAL", "lowrank_native: gemm expects 8, 10 or 11 arguments");
    return NULL;
  }
  job_t *j = job_new(env);
  if (j == NULL) return NULL;
  j->op = OP_GEMM;
  void *a, *b;
  size_t alen, blen;
  int ar, ac, br, bc;
  if (!get_floats(env, argv[0], j, 1, "a", &a, &alen) || !get_dim(env, argv[1], "aRows", &ar) ||
      !get_dim(env, argv[2], "aCols", &ac) || !get_floats(env, argv[3], j, 0, "b", &b, &blen) ||
      !get_dim(env, argv[4], "bRows", &br) || !get_dim(env, argv[5], "bCols", &bc) ||
      !get_flag(env, argv[6], "transA", &j->flag_a) || !get_flag(env, argv[7], "transB", &j->flag_b) ||
      !check_len(env, alen, ar, ac, "a") || !check_len(env, blen, br, bc, "b"))
    goto fail;
  j->m = j->flag_a ? ac : ar;
  j->k = j->flag_a ? ar : ac;
  j->n = j->flag_b ? br : bc;
  if ((j->flag_b ? bc : br) != j->k) {
    char msg[160];
    snprintf(msg, sizeof msg, "lowrank_native: gemm inner dimensions differ (%d and %d)", j->k, j->flag_b ? bc : br);
    napi_throw_range_error(env, "E_INTERNAL", msg);
    goto fail;
  }
  j->lda = ac > 0 ? ac : 1;
  j->ldb = bc > 0 ? bc : 1;
  if (!borrow_in(env, argv[0], a, &j->in[0], &j->in_ref[0]) || !borrow_in(env, argv[3], b, &j->in[1], &j->in_ref[1]))
    goto fail;
  if (argc >= 10) {
    void *c;
    size_t clen;
    if (!get_floats(env, argv[8], j, 0, "c", &c, &clen) || !check_len(env, clen, j->m, j->n, "c")) goto fail;
    if (napi_get_value_double(env, argv[9], &j->alpha) != napi_ok) {
      napi_throw_type_error(env, "E_INTERNAL", "lowrank_native: alpha must be a number");
      goto fail;
    }
    if (!borrow_in(env, argv[8], c, &j->in[2], &j->in_ref[2])) goto fail;
    j->flag_c = 1;
  }
  if (argc == 11) { /* rounded to a 16-bit type: f16 (true) or bf16 (false) */
    if (j->f64) {
      napi_throw_type_error(env, "E_INTERNAL", "lowrank_native: gemm to a 16-bit type takes float32 matrices");
      goto fail;
    }
    if (!get_flag(env, argv[10], "f16", &j->flag_c)) goto fail;
    j->op = OP_GEMM_HALF;
    j->nout = 1;
    if (!alloc_out(env, j, 0, (size_t)j->m * j->n, napi_uint16_array, 0)) goto fail;
    return start(env, j, "lowrank_native.sgemm_half", (double)j->m * j->n * (j->k > 0 ? j->k : 1) <= SYNC_GEMM_MAX_MNK);
  }
  j->nout = 1;
  /* Not zero-filled: beta = 0 makes gemm write every element of C (run_gemm zeroes it when k = 0),
     and with C given run_gemm copies it in first. */
  if (!alloc_out(env, j, 0, (size_t)j->m * j->n, float_type(j), 0)) goto fail;
  /* (k = 0 counts as 1: zeroing a large C is no job for the JS thread either) */
  const int sync = (double)j->m * j->n * (j->k > 0 ? j->k : 1) <= SYNC_GEMM_MAX_MNK;
  return start(env, j, j->f64 ? "lowrank_native.dgemm" : "lowrank_native.sgemm", sync);
fail:
  job_free(env, j);
  return NULL;
}

/*
 * qr(a, rows, cols[, qOnly]) -> Promise<[Q, R]>, or with qOnly Promise<Q>: an orthonormal basis of
 * A's columns, by CholeskyQR2 for a tall float32 A of at most 32 columns that is not too
 * ill-conditioned for it (skinny.c), else by Householder as qr.
 */
static napi_value js_qr(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  size_t argc = 4;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) {
    throw_last(env, "napi_get_cb_info");
    return NULL;
  }
  if (argc != 3 && argc != 4) {
    napi_throw_type_error(env, "E_INTERNAL", "lowrank_native: qr expects 3 or 4 arguments");
    return NULL;
  }
  job_t *j = job_new(env);
  if (j == NULL) return NULL;
  j->op = OP_QR;
  void *a;
  size_t alen;
  if (!get_floats(env, argv[0], j, 1, "a", &a, &alen) || !get_dim(env, argv[1], "rows", &j->m) ||
      !get_dim(env, argv[2], "cols", &j->n) || !check_len(env, alen, j->m, j->n, "a"))
    goto fail;
  j->k = j->m < j->n ? j->m : j->n;
  if (argc == 4 && !get_flag(env, argv[3], "qOnly", &j->flag_a)) goto fail;
  /* Read only (run_qr works on its own column-major copy), so borrowed like gemm's inputs. */
  if (!borrow_in(env, argv[0], a, &j->in[0], &j->in_ref[0])) goto fail;
  j->nout = j->flag_a ? 1 : 2;
  /* Q is written in full by either path; R's lower part is zero (left as allocated). */
  if (!alloc_out(env, j, 0, (size_t)j->m * j->k, float_type(j), 0) ||
      (!j->flag_a && !alloc_out(env, j, 1, (size_t)j->k * j->n, float_type(j), 1)))
    goto fail;
  return start(env, j, "lowrank_native.qr", 0);
fail:
  job_free(env, j);
  return NULL;
}

/* svd(a, rows, cols, job: 'thin' | 'full' | 'values') -> Promise<[s, U | null, Vt | null]> */
static napi_value js_svd(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  if (!get_args(env, info, 4, argv, "svd")) return NULL;
  job_t *j = job_new(env);
  if (j == NULL) return NULL;
  j->op = OP_SVD;
  void *a;
  size_t alen;
  char jobs[16] = {0};
  size_t jl = 0;
  if (!get_floats(env, argv[0], j, 1, "a", &a, &alen) || !get_dim(env, argv[1], "rows", &j->m) ||
      !get_dim(env, argv[2], "cols", &j->n) || !check_len(env, alen, j->m, j->n, "a"))
    goto fail;
  if (napi_get_value_string_utf8(env, argv[3], jobs, sizeof jobs, &jl) != napi_ok) jobs[0] = 0;
  if (strcmp(jobs, "thin") == 0) j->job = 'S';
  else if (strcmp(jobs, "full") == 0) j->job = 'A';
  else if (strcmp(jobs, "values") == 0) j->job = 'N';
  else {
    napi_throw_type_error(env, "E_INTERNAL", "lowrank_native: svd job must be 'thin', 'full' or 'values'");
    goto fail;
  }
  j->k = j->m < j->n ? j->m : j->n;
  if (!copy_in(env, j, a, alen, &j->in[0])) goto fail;
  j->nout = 3;
  const size_t uc = j->job == 'A' ? j->m : j->k, vr = j->job == 'A' ? j->n : j->k;
  if (!alloc_out(env, j, 0, (size_t)j->k, float_type(j), 1)) goto fail;
  if (j->job != 'N' && (!alloc_out(env, j, 1, (size_t)j->m * uc, float_type(j), 1) ||
                        !alloc_out(env, j, 2, vr * (size_t)j->n, float_type(j), 1)))
    goto fail;
  return start(env, j, "lowrank_native.svd", 0);
fail:
  job_free(env, j);
  return NULL;
}

/* eigh(a, n, vectors) -> Promise<[values, vectors | null]> */
static napi_value js_eigh(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  if (!get_args(env, info, 3, argv, "eigh")) return NULL;
  job_t *j = job_new(env);
  if (j == NULL) return NULL;
  j->op = OP_EIGH;
  void *a;
  size_t alen;
  int vectors;
  if (!get_floats(env, argv[0], j, 1, "a", &a, &alen) || !get_dim(env, argv[1], "n", &j->n) ||
      !get_flag(env, argv[2], "vectors", &vectors) || !check_len(env, alen, j->n, j->n, "a"))
    goto fail;
  j->job = vectors ? 'V' : 'N';
  j->nout = 2;
  if (!alloc_out(env, j, 0, (size_t)j->n, float_type(j), 1)) goto fail;
  if (vectors) {
    if (!alloc_out(env, j, 1, alen, float_type(j), 0)) goto fail; /* overwritten by the copy below */
    if (alen > 0) memcpy(j->out[1], a, alen * j->esz); /* syevd works in place in the output */
  } else if (!copy_in(env, j, a, alen, &j->in[0])) {
    goto fail;
  }
  return start(env, j, "lowrank_native.eigh", 0);
fail:
  job_free(env, j);
  return NULL;
}

/* lu(a, rows, cols) -> Promise<[LU, perm]> */
static napi_value js_lu(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  if (!get_args(env, info, 3, argv, "lu")) return NULL;
  job_t *j = job_new(env);
  if (j == NULL) return NULL;
  j->op = OP_LU;
  void *a;
  size_t alen;
  if (!get_floats(env, argv[0], j, 1, "a", &a, &alen) || !get_dim(env, argv[1], "rows", &j->m) ||
      !get_dim(env, argv[2], "cols", &j->n) || !check_len(env, alen, j->m, j->n, "a"))
    goto fail;
  j->k = j->m < j->n ? j->m : j->n;
  j->nout = 2;
  /* LU is overwritten by the copy below; perm is small and stays zero-filled. */
  if (!alloc_out(env, j, 0, alen, float_type(j), 0) || !alloc_out(env, j, 1, (size_t)j->m, napi_int32_array, 1))
    goto fail;
  if (alen > 0) memcpy(j->out[0], a, alen * j->esz); /* getrf works in place in the output */
  return start(env, j, "lowrank_native.lu", 0);
fail:
  job_free(env, j);
  return NULL;
}

/* cholesky(a, n) -> Promise<L> */
static napi_value js_cholesky(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!get_args(env, info, 2, argv, "cholesky")) return NULL;
  job_t *j = job_new(env);
  if (j == NULL) return NULL;
  j->op = OP_CHOL;
  void *a;
  size_t alen;
  if (!get_floats(env, argv[0], j, 1, "a", &a, &alen) || !get_dim(env, argv[1], "n", &j->n) ||
      !check_len(env, alen, j->n, j->n, "a"))
    goto fail;
  j->nout = 1;
  if (!alloc_out(env, j, 0, alen, float_type(j), 0)) goto fail; /* overwritten by the copy below */
  if (alen > 0) memcpy(j->out[0], a, alen * j->esz); /* potrf works in place in the output */
  return start(env, j, "lowrank_native.cholesky", 0);
fail:
  job_free(env, j);
  return NULL;
}

/* trsm(t, n, b, cols, lower, trans, unitDiagonal) -> Promise<X> with op(T) X = B */
static napi_value js_trsm(napi_env env, napi_callback_info info) {
  napi_value argv[7];
  if (!get_args(env, info, 7, argv, "trsm")) return NULL;
  job_t *j = job_new(env);
  if (j == NULL) return NULL;
  j->op = OP_TRSM;
  void *t, *b;
  size_t tlen, blen;
  if (!get_floats(env, argv[0], j, 1, "t", &t, &tlen) || !get_dim(env, argv[1], "n", &j->n) ||
      !get_floats(env, argv[2], j, 0, "b", &b, &blen) || !get_dim(env, argv[3], "cols", &j->k) ||
      !get_flag(env, argv[4], "lower", &j->flag_a) || !get_flag(env, argv[5], "trans", &j->flag_b) ||
      !get_flag(env, argv[6], "unitDiagonal", &j->flag_c) || !check_len(env, tlen, j->n, j->n, "t") ||
      !check_len(env, blen, j->n, j->k, "b"))
    goto fail;
  if (!borrow_in(env, argv[0], t, &j->in[0], &j->in_ref[0])) goto fail;
  j->nout = 1;
  if (!alloc_out(env, j, 0, blen, float_type(j), 0)) goto fail; /* overwritten by the copy below */
  if (blen > 0) memcpy(j->out[0], b, blen * j->esz); /* trsm overwrites B with X */
  return start(env, j, "lowrank_native.trsm", 0);
fail:
  job_free(env, j);
  return NULL;
}

/* Conversions of at most this many elements (~0.1 ms) run on the calling thread. */
#define SYNC_CONVERT_MAX ((size_t)1 << 16)

/*
 * One conversion job: in[0] borrowed (from_type elements), out[0] to_type elements of the same
 * count; f16 selects float16 instead of bfloat16.
 */
static napi_value convert(napi_env env, napi_callback_info info, op_kind op, const char *name) {
  napi_value argv[2];
  if (!get_args(env, info, 2, argv, name)) return NULL;
  const napi_typedarray_type from = op == OP_ENCODE ? napi_float32_array : napi_uint16_array;
  const napi_typedarray_type to = op == OP_ENCODE ? napi_uint16_array : napi_float32_array;
  napi_typedarray_type type;
  size_t length;
  void *data;
  if (napi_get_typedarray_info(env, argv[0], &type, &length, &data, NULL, NULL) != napi_ok || type != from) {
    char msg[128];
    snprintf(msg, sizeof msg, "lowrank_native: %s takes a %s", name, op == OP_ENCODE ? "Float32Array" : "Uint16Array");
    napi_throw_type_error(env, "E_INTERNAL", msg);
    return NULL;
  }
  job_t *j = job_new(env);
  if (j == NULL) return NULL;
  j->op = op;
  j->esz = sizeof(float);
  j->count = length;
  if (!get_flag(env, argv[1], "f16", &j->flag_c) || !borrow_in(env, argv[0], data, &j->in[0], &j->in_ref[0])) goto fail;
  j->nout = 1;
  if (!alloc_out(env, j, 0, length, to, 0)) goto fail;
  return start(env, j, name, length <= SYNC_CONVERT_MAX);
fail:
  job_free(env, j);
  return NULL;
}

/* encodeHalf(x: Float32Array, f16: boolean) -> Promise<Uint16Array>: bf16 (or f16) bits, rounded to nearest even. */
static napi_value js_encode_half(napi_env env, napi_callback_info info) {
  return convert(env, info, OP_ENCODE, "lowrank_native.encodeHalf");
}

/* decodeHalf(bits: Uint16Array, f16: boolean) -> Promise<Float32Array>: the values, exactly. */
static napi_value js_decode_half(napi_env env, napi_callback_info info) {
  return convert(env, info, OP_DECODE, "lowrank_native.decodeHalf");
}

/* The nn kernels by name, with their number of inputs and dims. */
static const struct {
  const char *name;
  op_kind op;
  int n_in, n_dims;
} NN_KINDS[] = {
    {"attention", OP_ATTENTION, 3, 5},         {"attentionBackward", OP_ATTENTION_BACKWARD, 5, 5},
    {"attentionCached", OP_ATTENTION_CACHED, 4, 7},
    {"rmsNorm", OP_RMSNORM, 2, 2},             {"rmsNormBackward", OP_RMSNORM_BACKWARD, 4, 2},
    {"swiglu", OP_SWIGLU, 2, 1},               {"swigluBackward", OP_SWIGLU_BACKWARD, 3, 1},
    {"crossEntropy", OP_CROSS_ENTROPY, 2, 2},
};

/* nn kernels with at most this many input elements run on the calling thread. */
#define SYNC_NN_MAX ((size_t)1 << 15)

/*
 * nn(kind, inputs, dims, scalar) -> Promise<outputs>: one training kernel of nn.c on float32 rows.
 *   attention          [q, k, v], [B, T, H, KV, D]          -> [o, p]
 *   attentionBackward  [q, k, v, p, dout], [B, T, H, KV, D] -> [dq, dk, dv]
 *   attentionCached    [q, kCache, vCache, start (Int32Array)], [B, T, H, KV, D, past, capacity] -> o
 *   rmsNorm            [x, g], [N, C], eps                  -> [y, rstd]
 *   rmsNormBackward    [dy, x, g, rstd], [N, C]             -> [dx, dg]
 *   swiglu             [gate, up], [n]                      -> h
 *   swigluBackward     [dh, gate, up], [n]                  -> [dgate, dup]
 *   crossEntropy       [logits, targets (Int32Array)], [N, V], ignore id -> [dlogits, loss sum (Float64Array(1))]
 * Inputs are borrowed (read only until the promise settles); their lengths are checked here.
 */
static napi_value js_nn(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  if (!get_args(env, info, 4, argv, "nn")) return NULL;
  char name[32] = {0};
  size_t name_len = 0;
  if (napi_get_value_string_utf8(env, argv[0], name, sizeof name, &name_len) != napi_ok) {
    napi_throw_type_error(env, "E_INTERNAL", "lowrank_native: nn kind must be a string");
    return NULL;
  }
  int kind = -1;
  for (size_t i = 0; i < sizeof NN_KINDS / sizeof NN_KINDS[0]; i++)
    if (strcmp(name, NN_KINDS[i].name) == 0) kind = (int)i;
  if (kind < 0) {
    napi_throw_type_error(env, "E_INTERNAL", "lowrank_native: unknown nn kernel");
    return NULL;
  }
  job_t *j = job_new(env);
  if (j == NULL) return NULL;
  j->op = NN_KINDS[kind].op;
  j->f64 = 0;
  j->esz = sizeof(float);
  for (int i = 0; i < NN_KINDS[kind].n_dims; i++) {
    napi_value v;
    if (napi_get_element(env, argv[2], (uint32_t)i, &v) != napi_ok || !get_dim(env, v, "nn dim", &j->dims[i])) goto fail;
  }
  if (napi_get_value_double(env, argv[3], &j->alpha) != napi_ok) {
    napi_throw_type_error(env, "E_INTERNAL", "lowrank_native: nn scalar must be a number");
    goto fail;
  }
  const int *d = j->dims;
  const size_t N = (size_t)d[0] * (size_t)d[1], n = (size_t)d[0];
  size_t want[MAX_IN] = {0}, out[MAX_OUT] = {0};
  int zeroed[MAX_OUT] = {0};
  napi_typedarray_type out_type[MAX_OUT] = {napi_float32_array, napi_float32_array, napi_float32_array};
  switch (j->op) {
    case OP_ATTENTION:
    case OP_ATTENTION_BACKWARD: {
      if (d[3] == 0 || d[2] % d[3] != 0) {
        napi_throw_range_error(env, "E_INTERNAL", "lowrank_native: attention heads must be a multiple of kv heads");
        goto fail;
      }
      const size_t qn = N * d[2] * d[4], kn = N * d[3] * d[4], pn = (size_t)d[0] * d[2] * d[1] * d[1];
      want[0] = qn, want[1] = kn, want[2] = kn, want[3] = pn, want[4] = qn;
      if (j->op == OP_ATTENTION) out[0] = qn, out[1] = pn, j->nout = 2;
      else out[0] = qn, out[1] = kn, out[2] = kn, zeroed[1] = zeroed[2] = 1, j->nout = 3;
      break;
    }
    case OP_ATTENTION_CACHED: {
      if (d[3] == 0 || d[2] % d[3] != 0 || d[5] + d[1] > d[6]) {
        napi_throw_range_error(env, "E_INTERNAL", "lowrank_native: attentionCached needs heads a multiple of kv heads and past + t within the capacity");
        goto fail;
      }
      const size_t qn = N * d[2] * d[4], cn = n * d[6] * d[3] * d[4];
      want[0] = qn, want[1] = cn, want[2] = cn, want[3] = n, out[0] = qn, j->nout = 1;
      break;
    }
    case OP_RMSNORM: want[0] = N, want[1] = d[1], out[0] = N, out[1] = d[0], j->nout = 2; break;
    case OP_RMSNORM_BACKWARD:
      want[0] = want[1] = N, want[2] = d[1], want[3] = d[0];
      out[0] = N, out[1] = d[1], zeroed[1] = 1, j->nout = 2;
      break;
    case OP_SWIGLU: want[0] = want[1] = n, out[0] = n, j->nout = 1; break;
    case OP_SWIGLU_BACKWARD: want[0] = want[1] = want[2] = n, out[0] = out[1] = n, j->nout = 2; break;
    case OP_CROSS_ENTROPY:
      want[0] = N, want[1] = d[0], out[0] = N, out[1] = 1, out_type[1] = napi_float64_array, j->nout = 2;
      if (d[1] == 0) {
        napi_throw_range_error(env, "E_INTERNAL", "lowrank_native: crossEntropy needs a vocabulary");
        goto fail;
      }
      break;
    default: goto fail;
  }
  j->count = n;
  size_t total = 0;
  for (int i = 0; i < NN_KINDS[kind].n_in; i++) {
    napi_value v;
    napi_typedarray_type type;
    size_t len;
    void *data;
    const napi_typedarray_type expect = (j->op == OP_CROSS_ENTROPY && i == 1) || (j->op == OP_ATTENTION_CACHED && i == 3) ? napi_int32_array : napi_float32_array;
    if (napi_get_element(env, argv[1], (uint32_t)i, &v) != napi_ok ||
        napi_get_typedarray_info(env, v, &type, &len, &data, NULL, NULL) != napi_ok || type != expect || len != want[i]) {
      char msg[160];
      snprintf(msg, sizeof msg, "lowrank_native: nn %s input %d must be a %s of %zu elements", name, i,
               expect == napi_int32_array ? "Int32Array" : "Float32Array", want[i]);
      napi_throw_type_error(env, "E_INTERNAL", msg);
      goto fail;
    }
    if (!borrow_in(env, v, data, &j->in[i], &j->in_ref[i])) goto fail;
    total += len;
  }
  for (int i = 0; i < j->nout; i++)
    if (!alloc_out(env, j, i, out[i], out_type[i], zeroed[i])) goto fail;
  return start(env, j, "lowrank_native.nn", total <= SYNC_NN_MAX);
fail:
  job_free(env, j);
  return NULL;
}

/*
 * retainMemory(on: boolean): while on, freed memory stays in the process for reuse (no mmap for
 * large blocks, no trimming of the heap top); off restores the defaults set at load and hands what
 * is free back to the system. For training steps, which allocate the same sizes every step: each
 * fresh page is a fault (~2.4 us per 4 KiB here, a third of a SiLU's time), reuse is a memset.
 */
static napi_value js_retain_memory(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  int on = 0;
  if (!get_args(env, info, 1, argv, "retainMemory") || !get_flag(env, argv[0], "on", &on)) return NULL;
#ifdef __GLIBC__
  if (on) {
    mallopt(M_MMAP_MAX, 0);
    mallopt(M_TRIM_THRESHOLD, 0x7fffffff);
  } else {
    mallopt(M_MMAP_MAX, 65536);
    mallopt(M_MMAP_THRESHOLD, 1 << 20);
    mallopt(M_TRIM_THRESHOLD, 128 * 1024);
    malloc_trim(0);
  }
#endif
  return NULL;
}

/* info() -> { config, corename, threads, parallel } (synchronous) */
static napi_value js_info(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value obj = NULL, v;
  const char *config = openblas_get_config();
  const char *core = openblas_get_corename();
  const int par = openblas_get_parallel();
  const char *parallel = par == 0 ? "sequential" : par == 1 ? "pthreads" : par == 2 ? "openmp" : "unknown";
  CHECK(napi_create_object(env, &obj), "napi_create_object");
  CHECK(napi_create_string_utf8(env, config != NULL ? config : "", NAPI_AUTO_LENGTH, &v), "napi_create_string_utf8");
  CHECK(napi_set_named_property(env, obj, "config", v), "napi_set_named_property");
  CHECK(napi_create_string_utf8(env, core != NULL ? core : "", NAPI_AUTO_LENGTH, &v), "napi_create_string_utf8");
  CHECK(napi_set_named_property(env, obj, "corename", v), "napi_set_named_property");
  CHECK(napi_create_int32(env, openblas_get_num_threads(), &v), "napi_create_int32");
  CHECK(napi_set_named_property(env, obj, "threads", v), "napi_set_named_property");
  CHECK(napi_create_string_utf8(env, parallel, NAPI_AUTO_LENGTH, &v), "napi_create_string_utf8");
  CHECK(napi_set_named_property(env, obj, "parallel", v), "napi_set_named_property");
  return obj;
fail:
  return NULL;
}

/*
 * renameExchange(a: string, b: string) -> number, synchronously: swaps the two paths in one step
 * (Linux renameat2 with RENAME_EXCHANGE), so a folder being replaced is at every instant either
 * the old one or the new one, even if the process is killed. Returns 0 when swapped, the errno
 * when the call failed (EINVAL, ENOSYS or EOPNOTSUPP: this kernel or file system cannot), and -1
 * where the platform has no such call.
 */
static napi_value js_rename_exchange(napi_env env, napi_callback_info info) {
  napi_value argv[2], out = NULL;
  size_t argc = 2;
  char a[4096], b[4096];
  size_t alen = 0, blen = 0;
  int result = -1;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL), "napi_get_cb_info");
  if (argc != 2 || napi_get_value_string_utf8(env, argv[0], a, sizeof a, &alen) != napi_ok ||
      napi_get_value_string_utf8(env, argv[1], b, sizeof b, &blen) != napi_ok || alen >= sizeof a - 1 || blen >= sizeof b - 1) {
    napi_throw_type_error(env, "E_INTERNAL", "lowrank_native: renameExchange takes two paths (strings under 4 KiB)");
    return NULL;
  }
#if defined(__linux__) && defined(SYS_renameat2)
  result = syscall(SYS_renameat2, AT_FDCWD, a, AT_FDCWD, b, RENAME_EXCHANGE_FLAG) == 0 ? 0 : errno;
#endif
  CHECK(napi_create_int32(env, result, &out), "napi_create_int32");
  return out;
fail:
  return NULL;
}

/* allFinite(a: Float32Array | Float64Array) -> boolean, synchronously: a memory-bound scan, faster
   in C than in JavaScript, run on every linalg input to refuse NaN and Inf. */
static napi_value js_all_finite(napi_env env, napi_callback_info info) {
  napi_value argv[1], out = NULL;
  size_t argc = 1;
  napi_typedarray_type type;
  size_t len;
  void *data;
  int finite = 1;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL), "napi_get_cb_info");
  CHECK(napi_get_typedarray_info(env, argv[0], &type, &len, &data, NULL, NULL), "napi_get_typedarray_info");
  if (type == napi_float32_array) {
    /* An all-ones exponent is Inf or NaN; integer tests with no reduction order vectorize. */
    const uint32_t *x = (const uint32_t *)data;
    uint32_t bad = 0;
    for (size_t i = 0; i < len; i++) bad |= (x[i] & 0x7f800000u) == 0x7f800000u;
    finite = bad == 0;
  } else if (type == napi_float64_array) {
    const uint64_t *x = (const uint64_t *)data;
    uint64_t bad = 0;
    for (size_t i = 0; i < len; i++) bad |= (x[i] & 0x7ff0000000000000ull) == 0x7ff0000000000000ull;
    finite = bad == 0;
  } else {
    napi_throw_type_error(env, "E_INTERNAL", "lowrank_native: allFinite takes a Float32Array or Float64Array");
    return NULL;
  }
  CHECK(napi_get_boolean(env, finite, &out), "napi_get_boolean");
  return out;
fail:
  return NULL;
}

NAPI_MODULE_INIT() {
#ifdef __GLIBC__
  /* glibc raises its mmap threshold to the size of each freed mmapped block (up to 32 MiB), so
     after the first large matrix is freed, later ones come from the heap arenas and stay in the
     process when freed: peak memory then grows with the number of tensors processed. A fixed
     1 MiB threshold sends every large buffer (LAPACK work arrays, ArrayBuffer stores) back to the
     system on free. */
  mallopt(M_MMAP_THRESHOLD, 1 << 20);
#endif
  const napi_property_descriptor props[] = {
    {"gemm", NULL, js_gemm, NULL, NULL, NULL, napi_enumerable, NULL},
    {"qr", NULL, js_qr, NULL, NULL, NULL, napi_enumerable, NULL},
    {"svd", NULL, js_svd, NULL, NULL, NULL, napi_enumerable, NULL},
    {"eigh", NULL, js_eigh, NULL, NULL, NULL, napi_enumerable, NULL},
    {"lu", NULL, js_lu, NULL, NULL, NULL, napi_enumerable, NULL},
    {"cholesky", NULL, js_cholesky, NULL, NULL, NULL, napi_enumerable, NULL},
    {"trsm", NULL, js_trsm, NULL, NULL, NULL, napi_enumerable, NULL},
    {"info", NULL, js_info, NULL, NULL, NULL, napi_enumerable, NULL},
    {"allFinite", NULL, js_all_finite, NULL, NULL, NULL, napi_enumerable, NULL},
    {"renameExchange", NULL, js_rename_exchange, NULL, NULL, NULL, napi_enumerable, NULL},
    {"encodeHalf", NULL, js_encode_half, NULL, NULL, NULL, napi_enumerable, NULL},
    {"decodeHalf", NULL, js_decode_half, NULL, NULL, NULL, napi_enumerable, NULL},
    {"nn", NULL, js_nn, NULL, NULL, NULL, napi_enumerable, NULL},
    {"retainMemory", NULL, js_retain_memory, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  if (napi_define_properties(env, exports, sizeof props / sizeof props[0], props) != napi_ok) return NULL;
  return exports;
}
