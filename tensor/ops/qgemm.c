/* tensor/ops/qgemm.c: the int8 GEMM of qgemm.h. Sizes: M rows of A, N channels of W, K inner,
 * Kp = K rounded up to 4, KG = Kp / 4 groups. A unit of work is a tile of MR rows x NR channels
 * (two panels) over the whole K: for the CNN and MLP sizes a tile's A rows and W panels fit in
 * L1 (Zen 4: 8 x 1024 + 32 x 1024 bytes). Kernels write the tile's int32 sums to acc; one scalar
 * epilogue (cost 1/K of the products) applies the zero point, scales, bias and requantization. */
#include "qgemm.h"

#include "sgemm.h"

#include <immintrin.h>
#include <omp.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MR 8
#define NR (2 * TD_QP)
#define ALWAYS static inline __attribute__((always_inline))

static int64_t rup(int64_t n, int64_t m) {
    return (n + m - 1) / m * m;
}

int64_t td_qpad_k(int64_t K) {
    return rup(K, 4);
}

int64_t td_qpack_bytes(int64_t N, int64_t K) {
    return rup(N, TD_QP) * (td_qpad_k(K) + 4);
}

void td_qpack_w(int8_t *dst, const int8_t *w, int64_t rs, int64_t cs, int64_t N, int64_t K) {
    int64_t Kp = td_qpad_k(K), Np = rup(N, TD_QP);
    int32_t *sums = (int32_t *)(dst + Np * Kp);
    for (int64_t n = 0; n < Np; n++) {
        int8_t *p = dst + (n / TD_QP) * TD_QP * Kp + (n % TD_QP) * 4;
        int32_t s = 0;
        for (int64_t k = 0; k < Kp; k++) {
            int8_t v = n < N && k < K ? w[n * rs + k * cs] : 0;
            p[(k / 4) * 4 * TD_QP + k % 4] = v;
            s += v;
        }
        sums[n] = s;
    }
}

/* ---- kernels: acc[i NR + j] = sum over Kp of A(i, k) W(n0 + j, k), i < m, j < 16 np --------- */
typedef void (*qkern)(int32_t *acc, const uint8_t *a, int64_t lda, const int8_t *b, int64_t kg,
                      int m, int np);

static void kern_generic(int32_t *acc, const uint8_t *a, int64_t lda, const int8_t *b, int64_t kg,
                         int m, int np) {
    for (int i = 0; i < m; i++)
        for (int j = 0; j < np * TD_QP; j++) {
            const int8_t *w = b + (j / TD_QP) * kg * 4 * TD_QP + (j % TD_QP) * 4;
            const uint8_t *x = a + i * lda;
            uint32_t s = 0; /* wraps past 2^31 like vpdpbusd's int32 lanes, never overflows */
            for (int64_t g = 0; g < kg; g++)
                for (int t = 0; t < 4; t++) s += (uint32_t)(x[4 * g + t] * w[g * 4 * TD_QP + t]);
            acc[i * NR + j] = (int32_t)s;
        }
}

static int32_t load4(const uint8_t *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return v;
}

#define AVX512 __attribute__((target("avx512f,avx512bw,avx512vnni")))
AVX512 ALWAYS void vnni_tile(int32_t *acc, const uint8_t *a, int64_t lda, const int8_t *b,
                             int64_t kg, const int m, const int np) {
    __m512i c[MR][2];
    for (int i = 0; i < m; i++) c[i][0] = c[i][1] = _mm512_setzero_si512();
    const int8_t *b1 = b + kg * 4 * TD_QP;
    for (int64_t g = 0; g < kg; g++) {
        __m512i w0 = _mm512_loadu_si512(b + g * 64), w1 = w0;
        if (np > 1) w1 = _mm512_loadu_si512(b1 + g * 64);
        for (int i = 0; i < m; i++) {
            __m512i x = _mm512_set1_epi32(load4(a + i * lda + 4 * g));
            c[i][0] = _mm512_dpbusd_epi32(c[i][0], x, w0);
            if (np > 1) c[i][1] = _mm512_dpbusd_epi32(c[i][1], x, w1);
        }
    }
    for (int i = 0; i < m; i++)
        for (int p = 0; p < np; p++) _mm512_storeu_si512(acc + i * NR + p * TD_QP, c[i][p]);
}

#define TILES(tile)                                                                                \
    switch (m * 2 + np - 1) {                                                                      \
    case 2: tile(acc, a, lda, b, kg, 1, 1); break;                                                 \
    case 3: tile(acc, a, lda, b, kg, 1, 2); break;                                                 \
    case 4: tile(acc, a, lda, b, kg, 2, 1); break;                                                 \
    case 5: tile(acc, a, lda, b, kg, 2, 2); break;                                                 \
    case 6: tile(acc, a, lda, b, kg, 3, 1); break;                                                 \
    case 7: tile(acc, a, lda, b, kg, 3, 2); break;                                                 \
    case 8: tile(acc, a, lda, b, kg, 4, 1); break;                                                 \
    case 9: tile(acc, a, lda, b, kg, 4, 2); break;                                                 \
    case 10: tile(acc, a, lda, b, kg, 5, 1); break;                                                \
    case 11: tile(acc, a, lda, b, kg, 5, 2); break;                                                \
    case 12: tile(acc, a, lda, b, kg, 6, 1); break;                                                \
    case 13: tile(acc, a, lda, b, kg, 6, 2); break;                                                \
    case 14: tile(acc, a, lda, b, kg, 7, 1); break;                                                \
    case 15: tile(acc, a, lda, b, kg, 7, 2); break;                                                \
    case 16: tile(acc, a, lda, b, kg, 8, 1); break;                                                \
    default: tile(acc, a, lda, b, kg, 8, 2); break;                                                \
    }

AVX512 static void kern_vnni(int32_t *acc, const uint8_t *a, int64_t lda, const int8_t *b,
                             int64_t kg, int m, int np) {
    TILES(vnni_tile)
}

/* AVX2: 4 channels x 4 k of a group widened to 16 int16; a row's 4 bytes widened and repeated 4
 * times; vpmaddwd leaves two int32 partial sums per channel, added once at the end. Two rows
 * at a time keep 8 accumulators, 4 weight vectors and 2 row vectors in the 16 ymm registers. */
#define AVX2 __attribute__((target("avx2")))
AVX2 ALWAYS void avx2_rows(int32_t *acc, const uint8_t *a, int64_t lda, const int8_t *b,
                           int64_t kg, const int r) {
    __m256i c[2][4];
    for (int i = 0; i < r; i++)
        for (int q = 0; q < 4; q++) c[i][q] = _mm256_setzero_si256();
    for (int64_t g = 0; g < kg; g++) {
        __m256i w[4];
        for (int q = 0; q < 4; q++)
            w[q] = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(b + g * 64 + 16 * q)));
        for (int i = 0; i < r; i++) {
            __m128i x4 = _mm_cvtepu8_epi16(_mm_cvtsi32_si128(load4(a + i * lda + 4 * g)));
            __m256i x = _mm256_broadcastq_epi64(x4);
            for (int q = 0; q < 4; q++) c[i][q] = _mm256_add_epi32(c[i][q], _mm256_madd_epi16(w[q], x));
        }
    }
    for (int i = 0; i < r; i++)
        for (int q = 0; q < 4; q++) {
            int32_t s[8];
            _mm256_storeu_si256((__m256i *)s, c[i][q]);
            for (int j = 0; j < 4; j++) acc[i * NR + 4 * q + j] = s[2 * j] + s[2 * j + 1];
        }
}

AVX2 static void kern_avx2(int32_t *acc, const uint8_t *a, int64_t lda, const int8_t *b,
                           int64_t kg, int m, int np) {
    for (int p = 0; p < np; p++) {
        const int8_t *bp = b + p * kg * 4 * TD_QP;
        int i = 0;
        for (; i + 2 <= m; i += 2) avx2_rows(acc + i * NR + p * TD_QP, a + i * lda, lda, bp, kg, 2);
        if (i < m) avx2_rows(acc + i * NR + p * TD_QP, a + i * lda, lda, bp, kg, 1);
    }
}

/* ---- dispatch ------------------------------------------------------------------------------ */
static int isa = -1, best = -1;

int td_qgemm_isa_best(void) {
    if (best < 0) {
        __builtin_cpu_init();
        best = __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512bw")
                   ? TD_ISA_VNNI
               : __builtin_cpu_supports("avx2") ? TD_ISA_AVX2
                                                : TD_ISA_GENERIC;
    }
    return best;
}

void td_qgemm_set_isa(int want) {
    int b = td_qgemm_isa_best();
    isa = want < 0 ? b : want < b ? want : b;
}

const char *td_qgemm_isa_name(int i) {
    static const char *const names[TD_NISA] = {"generic", "avx2", "vnni"};
    return i >= 0 && i < TD_NISA ? names[i] : "invalid";
}

int td_qgemm_isa(void) {
    if (isa < 0) {
        const char *env = getenv("TIDE_ISA");
        int want = TD_NISA;
        for (int i = 0; env && i < TD_NISA; i++)
            if (!strcmp(env, td_qgemm_isa_name(i))) want = i;
        td_qgemm_set_isa(want);
    }
    return isa;
}

/* ---- driver -------------------------------------------------------------------------------- */
typedef struct job {
    int64_t M, N, K, lda, abs, mt, nt;
    const uint8_t *a;
    const int8_t *w;
    const td_qepi *e;
    qkern kern;
    char *scratch; /* image_unit's: M x N floats (or bytes) per thread */
} job;

/* The tile (m <= MR rows of NR int32 sums, rows NR apart) to outputs: per channel
 * f = (acc - azp colsum) (ascale wscale) + bias, the subtraction exact in int32, computed over
 * whole rows of NR (vectorised; unused channels have zero factors), then stored row by row
 * (channels contiguous: linear) or channel by channel (m pixels contiguous: conv's NCHW). */
static void epilogue(const job *j, const int32_t *acc, int64_t b, int64_t m0, int64_t n0, int m,
                     int n) {
    const td_qepi *e = j->e;
    const int32_t *sums = (const int32_t *)(j->w + rup(j->N, TD_QP) * td_qpad_k(j->K));
    float mult[NR] = {0}, bias[NR] = {0}, f[MR][NR];
    int32_t corr[NR] = {0};
    for (int c = 0; c < n; c++) {
        mult[c] = e->ascale * e->wscale[n0 + c];
        bias[c] = e->bias ? e->bias[n0 + c] : 0;
        corr[c] = e->azp * sums[n0 + c];
    }
    int w = n > TD_QP ? NR : TD_QP; /* the channels the kernel wrote */
    for (int i = 0; i < m; i++)
        for (int c = 0; c < w; c++)
            f[i][c] = (float)(acc[i * NR + c] - corr[c]) * mult[c] + bias[c];
    int64_t o = b * e->ybs + m0 * e->rs + n0 * e->cs, rs = e->rs, cs = e->cs;
    if (e->yq) { /* locals, not e->...: stores through e's pointers would reload them */
        float inv = 1.0f / e->oscale, oz = (float)e->ozp, lo = e->relu ? oz : 0;
        uint8_t q[MR][NR], *restrict y = e->yq + o;
        for (int i = 0; i < m; i++)
            for (int c = 0; c < w; c++) {
                float v = rintf(f[i][c] * inv) + oz;
                q[i][c] = (uint8_t)(int32_t)(v < lo ? lo : v > 255 ? 255 : v);
            }
        for (int i = 0; i < m; i++)
            for (int c = 0; c < n; c++) y[i * rs + c * cs] = q[i][c];
        return;
    }
    float *restrict y = e->y + o;
    if (cs == 1)
        for (int i = 0; i < m; i++) memcpy(y + i * rs, f[i], sizeof(float) * (size_t)n);
    else
        for (int c = 0; c < n; c++)
            for (int i = 0; i < m; i++) y[c * cs + i * rs] = f[i][c];
}

static void tile_unit(void *ctx, int64_t u) {
    const job *j = ctx;
    _Alignas(64) int32_t acc[MR * NR];
    int64_t per = j->mt * j->nt, b = u / per, t = u % per;
    int64_t nj = t / j->mt, mi = t % j->mt; /* consecutive units share a weight panel pair */
    int64_t m0 = mi * MR, n0 = nj * NR, kg = td_qpad_k(j->K) / 4;
    int m = (int)(j->M - m0 < MR ? j->M - m0 : MR);
    int n = (int)(j->N - n0 < NR ? j->N - n0 : NR), np = n > TD_QP ? 2 : 1;
    j->kern(acc, j->a + b * j->abs + m0 * j->lda, j->lda, j->w + n0 * td_qpad_k(j->K), kg, m, np);
    epilogue(j, acc, b, m0, n0, m, n);
}

/* Channel-major outputs (conv's NCHW: pixels 1 apart, channels M apart): a unit is one
 * batch entry; its tiles go channels-last into the thread's scratch (M x N floats, in L2), then
 * one blocked transpose writes each channel's M values as a contiguous run. Stored straight
 * from the tiles instead (8 pixels per channel, 32 channels M apart), the int8 conv 1 -> 32 on
 * 28 x 28 at batch 256 measured ~15x slower here (Zen 4). */
static void image_unit(void *ctx, int64_t b) {
    const job *j = ctx;
    int64_t M = j->M, N = j->N, cs = j->e->cs;
    char *s = j->scratch + (size_t)omp_get_thread_num() * (size_t)(M * N) * sizeof(float);
    td_qepi e = *j->e;
    e.rs = N, e.cs = 1, e.ybs = 0;
    if (e.yq) e.yq = (uint8_t *)s;
    else e.y = (float *)s;
    job jj = *j;
    jj.e = &e;
    jj.a = j->a + b * j->abs;
    for (int64_t t = 0; t < j->mt * j->nt; t++) tile_unit(&jj, t);
    for (int64_t i0 = 0; i0 < M; i0 += 16)
        for (int64_t c0 = 0; c0 < N; c0 += 16) {
            int64_t i1 = i0 + 16 < M ? i0 + 16 : M, c1 = c0 + 16 < N ? c0 + 16 : N;
            if (e.yq) {
                uint8_t *y = j->e->yq + b * j->e->ybs;
                for (int64_t c = c0; c < c1; c++)
                    for (int64_t i = i0; i < i1; i++) y[c * cs + i] = ((uint8_t *)s)[i * N + c];
                continue;
            }
            float *y = j->e->y + b * j->e->ybs, *f = (float *)s;
#ifdef __AVX512F__
            if (i1 - i0 == 16 && c1 - c0 == 16) {
                td_sgemm_transpose16(y + c0 * cs + i0, cs, f + i0 * N + c0, N);
                continue;
            }
#endif
            for (int64_t c = c0; c < c1; c++)
                for (int64_t i = i0; i < i1; i++) y[c * cs + i] = f[i * N + c];
        }
}

int td_qgemm(int64_t nb, int64_t M, int64_t N, int64_t K, const uint8_t *a, int64_t lda,
             int64_t abs, const int8_t *packed, const td_qepi *e) {
    static const qkern kerns[TD_NISA] = {kern_generic, kern_avx2, kern_vnni};
    job j = {.M = M, .N = N, .K = K, .lda = lda, .abs = abs, .a = a, .w = packed, .e = e,
             .mt = (M + MR - 1) / MR, .nt = (N + NR - 1) / NR, .kern = kerns[td_qgemm_isa()]};
    if (M <= 0 || N <= 0) return 0;
    int64_t work = nb * M * N * td_qpad_k(K) / 4;
    if (e->rs != 1 || e->cs == 1) {
        td_run_units(nb * j.mt * j.nt, work, tile_unit, &j);
        return 0;
    }
    size_t bytes = sizeof(float) * (size_t)(M * N) * (size_t)td_get_num_threads();
    if (!(j.scratch = td_buf_alloc(bytes))) return -1;
    td_run_units(nb, work, image_unit, &j);
    td_buf_free(j.scratch, bytes);
    return 0;
}
