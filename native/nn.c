/*
 * The training kernels of the native backend, float32, each forward next to its backward (the
 * arithmetic of src/backend/js/nn.ts, which is the float64 reference they are tested against).
 * Plain C over CBLAS, no N-API: lowrank.c runs them on a libuv pool thread. Row reductions
 * accumulate in double. Rows are [N, width] with N = batch·T, batch-major.
 */
#include "nn.h"

#include <cblas.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/*
 * e^x in float32 to about 1 ulp, written so that loops over it vectorize (glibc's expf is a call
 * per element, 3-4 ns here; this is ~1 ns in SSE2 lanes): x = n·ln2 + r with |r| ≤ ln2/2 (n
 * rounded by the 1.5·2^23 trick, ln2 split in two for an exact reduction), e^r by Cephes' degree-6
 * polynomial, 2^n put into the exponent bits. Inputs are clamped to [−87.3, 88] (no subnormals,
 * no overflow to Inf); the comparisons are written so that NaN passes through as NaN.
 */
static inline float nn_expf(float x) {
  x = x > 88.0f ? 88.0f : x;
  x = x < -87.3f ? -87.3f : x;
  const float shift = 12582912.0f; /* 1.5·2^23: adding it rounds to an integer in the low bits */
  const float t = x * 1.44269504088896341f + shift;
  const float n = t - shift;
  const float r = (x - n * 0.693359375f) + n * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  union { float f; int32_t i; } tb = {t}, scale;
  scale.i = (tb.i - 0x4B400000 + 127) << 23; /* the integer n from t's low bits, biased */
  return p * scale.f;
}

/*
 * The loops of each part function are compiled twice on x86-64 Linux with GCC, for AVX2 and for the
 * baseline, and the loader picks one by CPU (ifunc): 8 lanes instead of SSE2's 4 where the CPU has
 * them. The attribute goes on the part functions themselves: nn_parallel() calls them through a
 * pointer, so a clone of their caller would not reach them.
 */
#if defined(__x86_64__) && defined(__linux__) && defined(__GNUC__) && !defined(__clang__)
#define NN_LANES __attribute__((target_clones("avx2", "default")))
#else
#define NN_LANES
#endif

/* OpenBLAS's thread controls (declared by its cblas.h too). */
void openblas_set_num_threads(int num_threads);
int openblas_get_num_threads(void);

/*
 * Runs fn(ctx, part, parts) for part = 0..parts−1 on as many threads and waits for all. With blas set, OpenBLAS runs single-threaded meanwhile (each part's small
 * products are too small to share, and its worker pool must not be entered from two threads).
 *
 * The parts run on a pool of threads started once and kept, waiting on a condition variable,
 * while the caller waits: a thread started per call costs 20-50 us and begins on its parent's
 * core, and the caller is whichever of Node's four libuv threads took the job, so the scheduler
 * kept finding two busy threads on one core (skinny products ran at half speed or less from Node
 * against a C program). One caller uses the pool at a time; a second, concurrent one
 * runs its parts itself.
 */
#define MAX_PARTS 64

static struct {
  pthread_mutex_t busy; /* held by the caller using the pool */
  pthread_mutex_t lock; /* guards the fields below */
  pthread_cond_t go, done;
  int threads;          /* workers started: parts 0..threads−1 */
  unsigned long round;  /* bumped for each job */
  int pending;          /* workers still running this round's parts */
  void (*fn)(void *, int, int);
  void *ctx;
  int parts, helpers;  /* this round's parts; workers 0..helpers−1 take one each */
} pool = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, 0, NULL, NULL, 0, 0};

typedef struct {
  int part;
  unsigned long seen;
} worker_start;

static void *pool_worker(void *arg) {
  const worker_start start = *(const worker_start *)arg;
  free(arg);
  unsigned long seen = start.seen;
  pthread_mutex_lock(&pool.lock);
  for (;;) {
    while (pool.round == seen) pthread_cond_wait(&pool.go, &pool.lock);
    seen = pool.round;
    if (start.part >= pool.helpers) continue;
    void (*fn)(void *, int, int) = pool.fn;
    void *ctx = pool.ctx;
    const int parts = pool.parts;
    pthread_mutex_unlock(&pool.lock);
    fn(ctx, start.part, parts);
    pthread_mutex_lock(&pool.lock);
    if (--pool.pending == 0) pthread_cond_signal(&pool.done);
  }
  return NULL;
}

/* Starts workers until parts 0..want−1 have one (or a start fails); pool.lock held. */
static void pool_grow(int want) {
  while (pool.threads < want) {
    worker_start *s = malloc(sizeof *s);
    if (s == NULL) return;
    *s = (worker_start){pool.threads, pool.round};
    pthread_t tid;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    const int ok = pthread_create(&tid, &attr, pool_worker, s) == 0;
    pthread_attr_destroy(&attr);
    if (!ok) {
      free(s);
      return;
    }
    pool.threads++;
  }
}

void nn_parallel(void (*fn)(void *, int, int), void *ctx, int parts, int blas) {
  parts = parts < 1 ? 1 : parts > MAX_PARTS ? MAX_PARTS : parts;
  const int threads = blas ? openblas_get_num_threads() : 0;
  if (blas) openblas_set_num_threads(1);
  if (parts == 1 || pthread_mutex_trylock(&pool.busy) != 0) {
    for (int i = 0; i < parts; i++) fn(ctx, i, parts);
  } else {
    pthread_mutex_lock(&pool.lock);
    pool_grow(parts);
    const int helpers = pool.threads < parts ? pool.threads : parts;
    pool.fn = fn, pool.ctx = ctx, pool.parts = parts, pool.helpers = helpers, pool.pending = helpers;
    pool.round++;
    pthread_cond_broadcast(&pool.go);
    pthread_mutex_unlock(&pool.lock);
    for (int i = helpers; i < parts; i++) fn(ctx, i, parts); /* parts no worker could take */
    pthread_mutex_lock(&pool.lock);
    while (pool.pending > 0) pthread_cond_wait(&pool.done, &pool.lock);
    pthread_mutex_unlock(&pool.lock);
    pthread_mutex_unlock(&pool.busy);
  }
  if (blas) openblas_set_num_threads(threads);
}

/*
 * y = x·Bᵀ (accumulate 0) or y + alpha·x·Bᵀ (accumulate 1) for one row x [k] and B [n, k] (row
 * stride ldb): a decoding step's product with a small weight, on this thread. Four rows of B at a
 * time, each summed in 16 float lanes (two 8-lane vectors, so the sums stay in registers), the
 * lanes added pairwise at the end.
 */
typedef float lanes8 __attribute__((vector_size(32)));

/* An unaligned load of 8 floats, and the sum of 16 lanes pairwise (macros: inline functions taking
   vectors would be compiled for the baseline too, where 8-lane vectors change the calling ABI). */
#define LOAD8(v, p) memcpy(&(v), (p), sizeof(lanes8))
#define LANE_SUM(a, b) (((a)[0] + (b)[0] + ((a)[4] + (b)[4])) + ((a)[1] + (b)[1] + ((a)[5] + (b)[5])) + \
                        (((a)[2] + (b)[2] + ((a)[6] + (b)[6])) + ((a)[3] + (b)[3] + ((a)[7] + (b)[7]))))

NN_LANES void nn_gemv_small(float *y, const float *x, const float *b, int n, int k, int ldb, float alpha, int accumulate) {
  const int k16 = k - k % 16;
  for (int i = 0; i < n; i += 4) {
    const int rows = n - i < 4 ? n - i : 4;
    const float *r[4];
    for (int q = 0; q < 4; q++) r[q] = b + (size_t)(i + (q < rows ? q : 0)) * ldb;
    lanes8 s0 = {0}, s1 = {0}, s2 = {0}, s3 = {0}, t0 = {0}, t1 = {0}, t2 = {0}, t3 = {0};
    for (int j = 0; j < k16; j += 16) {
      lanes8 xa, xb, w;
      LOAD8(xa, x + j), LOAD8(xb, x + j + 8);
      LOAD8(w, r[0] + j), s0 += xa * w, LOAD8(w, r[0] + j + 8), t0 += xb * w;
      LOAD8(w, r[1] + j), s1 += xa * w, LOAD8(w, r[1] + j + 8), t1 += xb * w;
      LOAD8(w, r[2] + j), s2 += xa * w, LOAD8(w, r[2] + j + 8), t2 += xb * w;
      LOAD8(w, r[3] + j), s3 += xa * w, LOAD8(w, r[3] + j + 8), t3 += xb * w;
    }
    const float sums[4] = {LANE_SUM(s0, t0), LANE_SUM(s1, t1), LANE_SUM(s2, t2), LANE_SUM(s3, t3)};
    for (int q = 0; q < rows; q++) {
      float t = sums[q];
      for (int j = k16; j < k; j++) t += x[j] * r[q][j];
      y[i + q] = accumulate ? y[i + q] + alpha * t : t;
    }
  }
}

/* How many parts to split n units of work into: OpenBLAS's thread count, at most n. */
int nn_parts_for(int n) {
  const int t = openblas_get_num_threads();
  return t < n ? (t > MAX_PARTS ? MAX_PARTS : t) : n;
}

/*
 * Causal attention with grouped-query heads: query head h reads key/value head h / (H/KV).
 * Per sequence b and head h, S = Q·Kᵀ/√D masked to j ≤ i, P = softmax(S) (written to p, zeros
 * above the diagonal), O = P·V. Heads are strided views of the rows (lda = H·D or KV·D): no copies.
 * The work is split by (sequence, kv head): the query heads of one group stay on one thread, so
 * the backward pass's sums into dK and dV never race.
 */
typedef struct {
  float *o, *p, *dq, *dk, *dv, *scratch; /* scratch: a T×T block per part */
  const float *q, *k, *v, *dout, *pin;
  int B, T, H, KV, D;
} attn_args;

NN_LANES static void attention_forward_part(void *ctx, int part, int parts) {
  const attn_args *a = ctx;
  const int T = a->T, D = a->D, H = a->H, KV = a->KV, qw = H * D, kw = KV * D, group = H / KV;
  const float scale = 1.0f / sqrtf((float)D);
  for (int unit = part; unit < a->B * KV; unit += parts) {
    const int b = unit / KV, g = unit % KV;
    const size_t row0 = (size_t)b * T;
    const float *kg = a->k + row0 * kw + (size_t)g * D, *vg = a->v + row0 * kw + (size_t)g * D;
    for (int h = g * group; h < (g + 1) * group; h++) {
      const float *qh = a->q + row0 * qw + (size_t)h * D;
      float *ph = a->p + ((size_t)b * H + h) * T * T;
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, T, D, scale, qh, qw, kg, kw, 0.0f, ph, T);
      for (int i = 0; i < T; i++) {
        float *row = ph + (size_t)i * T;
        float max = row[0];
        for (int j = 1; j <= i; j++) max = row[j] > max ? row[j] : max;
        for (int j = 0; j <= i; j++) row[j] = nn_expf(row[j] - max);
        double sum = 0;
        for (int j = 0; j <= i; j++) sum += row[j];
        const float inv = (float)(1.0 / sum);
        for (int j = 0; j <= i; j++) row[j] *= inv;
        for (int j = i + 1; j < T; j++) row[j] = 0.0f;
      }
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, D, T, 1.0f, ph, T, vg, kw, 0.0f, a->o + row0 * qw + (size_t)h * D, qw);
    }
  }
}

void nn_attention_forward(float *o, float *p, const float *q, const float *k, const float *v, int B, int T, int H, int KV, int D) {
  attn_args a = {.o = o, .p = p, .q = q, .k = k, .v = v, .B = B, .T = T, .H = H, .KV = KV, .D = D};
  nn_parallel(attention_forward_part, &a, nn_parts_for(B * KV), 1);
}

/* dV += Pᵀ·dO, dP = dO·Vᵀ, dS = P ⊙ (dP − rowsum(dP ⊙ P))/√D, dQ = dS·K, dK += dSᵀ·Q. */
NN_LANES static void attention_backward_part(void *ctx, int part, int parts) {
  const attn_args *a = ctx;
  const int T = a->T, D = a->D, H = a->H, KV = a->KV, qw = H * D, kw = KV * D, group = H / KV;
  const float scale = 1.0f / sqrtf((float)D);
  float *ds = a->scratch + (size_t)part * T * T;
  for (int unit = part; unit < a->B * KV; unit += parts) {
    const int b = unit / KV, g = unit % KV;
    const size_t row0 = (size_t)b * T, ko = row0 * kw + (size_t)g * D;
    for (int h = g * group; h < (g + 1) * group; h++) {
      const size_t qo = row0 * qw + (size_t)h * D;
      const float *ph = a->pin + ((size_t)b * H + h) * T * T;
      cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, T, D, T, 1.0f, ph, T, a->dout + qo, qw, 1.0f, a->dv + ko, kw);
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, T, D, 1.0f, a->dout + qo, qw, a->v + ko, kw, 0.0f, ds, T);
      for (int i = 0; i < T; i++) {
        float *row = ds + (size_t)i * T;
        const float *prow = ph + (size_t)i * T;
        double dot = 0;
        for (int j = 0; j <= i; j++) dot += (double)row[j] * prow[j];
        for (int j = 0; j <= i; j++) row[j] = prow[j] * (row[j] - (float)dot) * scale;
        for (int j = i + 1; j < T; j++) row[j] = 0.0f;
      }
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, D, T, 1.0f, ds, T, a->k + ko, kw, 0.0f, a->dq + qo, qw);
      cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, T, D, T, 1.0f, ds, T, a->q + qo, qw, 1.0f, a->dk + ko, kw);
    }
  }
}

/* dk and dv must come in zeroed. Returns 0 when there is no memory for the T×T scratch blocks. */
int nn_attention_backward(float *dq, float *dk, float *dv, const float *dout, const float *q, const float *k, const float *v, const float *p, int B, int T, int H, int KV, int D) {
  const int parts = nn_parts_for(B * KV);
  float *scratch = malloc((size_t)parts * T * T * sizeof(float) + 1);
  if (scratch == NULL) return 0;
  attn_args a = {.dq = dq, .dk = dk, .dv = dv, .scratch = scratch, .q = q, .k = k, .v = v, .dout = dout, .pin = p, .B = B, .T = T, .H = H, .KV = KV, .D = D};
  nn_parallel(attention_backward_part, &a, parts, 1);
  free(scratch);
  return 1;
}

/*
 * Inference attention over a KV cache [B, cap, KV·D]: query i of sequence b is cache row past + i
 * and reads rows start[b] .. past + i (earlier rows are left padding; an empty range gives zeros).
 * Decoding has one query per sequence, so this is dot products and axpys over the cache rows, not
 * products of blocks; split by (sequence, head) when there is enough of it.
 */
typedef struct {
  float *o, *scratch; /* scratch: past + T scores and D sums per part */
  const float *q, *kc, *vc;
  const int32_t *start;
  int B, T, H, KV, D, past, cap;
} cached_args;

NN_LANES static void attention_cached_part(void *ctx, int part, int parts) {
  const cached_args *a = ctx;
  const int T = a->T, D = a->D, H = a->H, KV = a->KV, qw = H * D, kw = KV * D, group = H / KV, len = a->past + T;
  const float scale = 1.0f / sqrtf((float)D);
  float *s = a->scratch + (size_t)part * (len + D), *acc = s + len;
  for (int unit = part; unit < a->B * H; unit += parts) {
    const int b = unit / H, h = unit % H, from = a->start[b] < 0 ? 0 : a->start[b];
    const float *kb = a->kc + (size_t)b * a->cap * kw + (size_t)(h / group) * D, *vb = a->vc + (size_t)b * a->cap * kw + (size_t)(h / group) * D;
    for (int i = 0; i < T; i++) {
      const int last = a->past + i;
      const float *qi = a->q + ((size_t)b * T + i) * qw + (size_t)h * D;
      float *oi = a->o + ((size_t)b * T + i) * qw + (size_t)h * D;
      for (int d = 0; d < D; d++) acc[d] = 0.0f;
      float max = -INFINITY;
      for (int j = from; j <= last; j++) {
        const float *kj = kb + (size_t)j * kw;
        float dot = 0.0f;
        for (int d = 0; d < D; d++) dot += qi[d] * kj[d];
        s[j] = dot * scale;
        max = s[j] > max ? s[j] : max;
      }
      double sum = 0;
      for (int j = from; j <= last; j++) sum += s[j] = nn_expf(s[j] - max);
      for (int j = from; j <= last; j++) {
        const float pj = (float)(s[j] / sum), *vj = vb + (size_t)j * kw;
        for (int d = 0; d < D; d++) acc[d] += pj * vj[d];
      }
      for (int d = 0; d < D; d++) oi[d] = acc[d];
    }
  }
}

/* Returns 0 when there is no memory for the scratch. */
int nn_attention_cached(float *o, const float *q, const float *kc, const float *vc, const int32_t *start, int B, int T, int H, int KV, int D, int past, int cap) {
  /* threads cost ~20 µs to start: worth it only over some 2^18 multiply-adds */
  const size_t work = (size_t)B * H * T * (size_t)(past + T) * D;
  const int parts = work < ((size_t)1 << 18) ? 1 : nn_parts_for(B * H);
  float *scratch = malloc((size_t)parts * (past + T + D) * sizeof(float) + 1);
  if (scratch == NULL) return 0;
  cached_args a = {.o = o, .scratch = scratch, .q = q, .kc = kc, .vc = vc, .start = start, .B = B, .T = T, .H = H, .KV = KV, .D = D, .past = past, .cap = cap};
  nn_parallel(attention_cached_part, &a, parts, 0);
  free(scratch);
  return 1;
}

/* The share [lo, hi) of n items that part `part` of `parts` takes. */
static void share(size_t n, int part, int parts, size_t *lo, size_t *hi) {
  *lo = n * (size_t)part / (size_t)parts;
  *hi = n * (size_t)(part + 1) / (size_t)parts;
}

/* Elementwise and per-row work is split when it has at least this many elements. */
#define PARALLEL_MIN ((size_t)1 << 16)

static int parts_of(size_t elements, size_t items) {
  return elements < PARALLEL_MIN ? 1 : nn_parts_for(items > (size_t)MAX_PARTS ? MAX_PARTS : (int)items);
}

/*
 * Row reductions in independent lanes, so that they vectorize without reassociating one chain
 * (which the compiler may not do for floats): the max in 16 float lanes (exact), sums in 8 double
 * lanes. A NaN never wins the max; it reaches the caller through the exponentials instead.
 */
static inline float row_max(const float *x, int n) {
  float m[16];
  for (int l = 0; l < 16; l++) m[l] = x[0];
  int j = 0;
  for (; j + 16 <= n; j += 16)
    for (int l = 0; l < 16; l++) m[l] = x[j + l] > m[l] ? x[j + l] : m[l];
  for (; j < n; j++) m[0] = x[j] > m[0] ? x[j] : m[0];
  float max = m[0];
  for (int l = 1; l < 16; l++) max = m[l] > max ? m[l] : max;
  return max;
}

static inline double row_sum(const float *x, int n) {
  double s[8] = {0};
  int j = 0;
  for (; j + 8 <= n; j += 8)
    for (int l = 0; l < 8; l++) s[l] += x[j + l];
  for (; j < n; j++) s[0] += x[j];
  return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
}

/* Σ a·b·c (c optional) in 8 double lanes. */
static inline double row_dot(const float *a, const float *b, const float *c, int n) {
  double s[8] = {0};
  int j = 0;
  if (c == NULL)
    for (; j + 8 <= n; j += 8)
      for (int l = 0; l < 8; l++) s[l] += (double)a[j + l] * b[j + l];
  else
    for (; j + 8 <= n; j += 8)
      for (int l = 0; l < 8; l++) s[l] += (double)a[j + l] * b[j + l] * c[j + l];
  for (; j < n; j++) s[0] += (double)a[j] * b[j] * (c == NULL ? 1.0f : c[j]);
  return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
}

typedef struct {
  float *y, *rstd, *dx, *dg;
  const float *x, *g, *dy, *rstd_in;
  int N, C;
  double eps;
} norm_args;

/* y = x·r·g with r = 1/√(mean(x²) + ε) per row (kept in rstd for the backward pass). */
NN_LANES static void rmsnorm_forward_part(void *ctx, int part, int parts) {
  const norm_args *a = ctx;
  const int C = a->C;
  size_t lo, hi;
  share((size_t)a->N, part, parts, &lo, &hi);
  for (size_t i = lo; i < hi; i++) {
    const float *xi = a->x + i * C;
    float *yi = a->y + i * C;
    const float r = (float)(1.0 / sqrt(row_dot(xi, xi, NULL, C) / C + a->eps));
    a->rstd[i] = r;
    for (int j = 0; j < C; j++) yi[j] = xi[j] * r * a->g[j];
  }
}

void nn_rmsnorm_forward(float *y, float *rstd, const float *x, const float *g, int N, int C, double eps) {
  norm_args a = {.y = y, .rstd = rstd, .x = x, .g = g, .N = N, .C = C, .eps = eps};
  nn_parallel(rmsnorm_forward_part, &a, parts_of((size_t)N * C, (size_t)N), 0);
}

/* dx = r·(g⊙dy) − r³/C·x·Σ(g⊙dy⊙x) by rows; dg = Σ_rows dy⊙x·r by columns (no two parts share a sum). */
NN_LANES static void rmsnorm_backward_part(void *ctx, int part, int parts) {
  const norm_args *a = ctx;
  const int C = a->C;
  size_t lo, hi;
  share((size_t)a->N, part, parts, &lo, &hi);
  for (size_t i = lo; i < hi; i++) {
    const float *xi = a->x + i * C, *dyi = a->dy + i * C;
    float *dxi = a->dx + i * C;
    const float r = a->rstd_in[i];
    const float kk = (float)((double)r * r * r * row_dot(a->g, dyi, xi, C) / C);
    for (int j = 0; j < C; j++) dxi[j] = r * a->g[j] * dyi[j] - kk * xi[j];
  }
  share((size_t)C, part, parts, &lo, &hi);
  for (int i = 0; i < a->N; i++) {
    const float *xi = a->x + (size_t)i * C, *dyi = a->dy + (size_t)i * C;
    const float r = a->rstd_in[i];
    for (size_t j = lo; j < hi; j++) a->dg[j] += dyi[j] * xi[j] * r;
  }
}

/* dg comes in zeroed. */
void nn_rmsnorm_backward(float *dx, float *dg, const float *dy, const float *x, const float *g, const float *rstd, int N, int C) {
  norm_args a = {.dx = dx, .dg = dg, .dy = dy, .x = x, .g = g, .rstd_in = rstd, .N = N, .C = C};
  nn_parallel(rmsnorm_backward_part, &a, parts_of((size_t)N * C, (size_t)(N < C ? N : C)), 0);
}

typedef struct {
  float *h, *dgate, *dup;
  const float *gate, *up, *dh;
  size_t n;
} swiglu_args;

/* h = silu(gate) ⊙ up, silu(a) = a / (1 + e^(−a)). */
NN_LANES static void swiglu_forward_part(void *ctx, int part, int parts) {
  const swiglu_args *a = ctx;
  size_t lo, hi;
  share(a->n, part, parts, &lo, &hi);
  for (size_t i = lo; i < hi; i++) a->h[i] = a->gate[i] / (1.0f + nn_expf(-a->gate[i])) * a->up[i];
}

void nn_swiglu_forward(float *h, const float *gate, const float *up, size_t n) {
  swiglu_args a = {.h = h, .gate = gate, .up = up, .n = n};
  nn_parallel(swiglu_forward_part, &a, parts_of(n, n), 0);
}

/* dgate = dh ⊙ up ⊙ σ(a)(1 + a(1 − σ(a))), dup = dh ⊙ silu(a). */
NN_LANES static void swiglu_backward_part(void *ctx, int part, int parts) {
  const swiglu_args *a = ctx;
  size_t lo, hi;
  share(a->n, part, parts, &lo, &hi);
  for (size_t i = lo; i < hi; i++) {
    const float x = a->gate[i], s = 1.0f / (1.0f + nn_expf(-x));
    a->dgate[i] = a->dh[i] * a->up[i] * s * (1.0f + x * (1.0f - s));
    a->dup[i] = a->dh[i] * x * s;
  }
}

void nn_swiglu_backward(float *dgate, float *dup, const float *dh, const float *gate, const float *up, size_t n) {
  swiglu_args a = {.dgate = dgate, .dup = dup, .dh = dh, .gate = gate, .up = up, .n = n};
  nn_parallel(swiglu_backward_part, &a, parts_of(n, n), 0);
}

typedef struct {
  float *d;
  const float *x;
  const int32_t *targets;
  int N, V, ignore, count;
  double loss[MAX_PARTS];
} ce_args;

/*
 * Softmax cross-entropy of rows of logits [N, V] against targets (ignore_index rows count for
 * nothing): the summed loss of the counted rows; dlogits = (softmax − onehot)/count on counted
 * rows, 0 on ignored ones. Targets are in range (checked by the caller).
 */
NN_LANES static void cross_entropy_part(void *ctx, int part, int parts) {
  ce_args *a = ctx;
  const int V = a->V;
  size_t lo, hi;
  share((size_t)a->N, part, parts, &lo, &hi);
  double loss = 0;
  for (size_t i = lo; i < hi; i++) {
    const float *x = a->x + i * V;
    float *d = a->d + i * V;
    const int target = a->targets[i];
    if (target == a->ignore) {
      memset(d, 0, (size_t)V * sizeof(float));
      continue;
    }
    const float max = row_max(x, V);
    for (int j = 0; j < V; j++) d[j] = nn_expf(x[j] - max);
    const double sum = row_sum(d, V);
    loss += log(sum) - ((double)x[target] - max);
    const float f = (float)(1.0 / (sum * a->count));
    for (int j = 0; j < V; j++) d[j] *= f;
    d[target] -= (float)(1.0 / a->count);
  }
  a->loss[part] = loss;
}

double nn_cross_entropy(float *dlogits, const float *logits, const int32_t *targets, int N, int V, int ignore) {
  ce_args a = {.d = dlogits, .x = logits, .targets = targets, .N = N, .V = V, .ignore = ignore};
  for (int i = 0; i < N; i++) a.count += targets[i] != ignore;
  const int parts = parts_of((size_t)N * V, (size_t)N);
  nn_parallel(cross_entropy_part, &a, parts, 0);
  double loss = 0;
  for (int p = 0; p < parts; p++) loss += a.loss[p];
  return loss;
}
