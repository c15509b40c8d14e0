/* tensor/ops/sgemm.c: the packed float32 GEMM of sgemm.h. Sizes: C (M x N) = A (M x K) B (K x
 * N) in MR x NR tiles, K in blocks of KC so that a B panel block (KC x NR) stays in L1. The
 * kernel keeps a 8 x 32 tile of C in 16 zmm registers and does 16 FMAs per k (2 B loads, 8 A
 * broadcasts), so it is bound by the FMA units, not by loads. */
#include "sgemm.h"

#include <cblas.h>
#include <string.h>
#ifdef __AVX512F__
#include <immintrin.h>
#endif

#define MR TD_SG_MR
#define NR TD_SG_NR
#define KC 256

static int64_t rup(int64_t n, int64_t m) {
    return (n + m - 1) / m * m;
}

int64_t td_sgemm_asize(int64_t M, int64_t K) {
    return rup(M, MR) * K;
}

int64_t td_sgemm_bsize(int64_t K, int64_t N) {
    return K * rup(N, NR);
}

void td_sgemm_pack_a(float *dst, const float *a, int64_t rs, int64_t cs, int64_t M, int64_t K) {
    for (int64_t i0 = 0; i0 < M; i0 += MR, dst += K * MR) {
        int64_t m = M - i0 < MR ? M - i0 : MR;
        const float *s = a + i0 * rs;
        if (cs == 1 && m == MR) /* rows of A: MR streams, each read in order */
            for (int64_t k = 0; k < K; k++)
                for (int64_t i = 0; i < MR; i++) dst[k * MR + i] = s[i * rs + k];
        else if (rs == 1 && m == MR) /* columns of A: contiguous runs of MR */
            for (int64_t k = 0; k < K; k++) memcpy(dst + k * MR, s + k * cs, sizeof(float) * MR);
        else
            for (int64_t k = 0; k < K; k++)
                for (int64_t i = 0; i < MR; i++)
                    dst[k * MR + i] = i < m ? s[i * rs + k * cs] : 0.0f;
    }
}

void td_sgemm_pack_b(float *dst, const float *b, int64_t rs, int64_t cs, int64_t K, int64_t N) {
    if (cs != 1 && rs == 1) { /* B's columns are contiguous: one column at a time */
        for (int64_t j = 0; j < N; j += 16) /* 16 x 16 transposes where they fit */
            td_sgemm_b_cols(dst, b + j * cs, cs, j, N - j < 16 ? N - j : 16, K, N);
        td_sgemm_pad_b(dst, K, N);
        return;
    }
    for (int64_t j0 = 0; j0 < N; j0 += NR, dst += K * NR) {
        int64_t n = N - j0 < NR ? N - j0 : NR;
        const float *s = b + j0 * cs;
        if (cs == 1 && n == NR)
            for (int64_t k = 0; k < K; k++) memcpy(dst + k * NR, s + k * rs, sizeof(float) * NR);
        else
            for (int64_t k = 0; k < K; k++)
                for (int64_t j = 0; j < NR; j++)
                    dst[k * NR + j] = j < n ? s[k * rs + j * cs] : 0.0f;
    }
}

void td_sgemm_b_row(float *dst, const float *row, int64_t k, int64_t K, int64_t N) {
    for (int64_t j0 = 0; j0 < N; j0 += NR) {
        float *d = dst + j0 * K + k * NR;
        int64_t n = N - j0 < NR ? N - j0 : NR;
        memcpy(d, row + j0, sizeof(float) * (size_t)n);
        for (int64_t j = n; j < NR; j++) d[j] = 0;
    }
}

#ifdef __AVX512F__
void td_sgemm_transpose16(float *d, int64_t ldd, const float *s, int64_t ld) {
    __m512 r[16], t[16];
    for (int i = 0; i < 16; i++) r[i] = _mm512_loadu_ps(s + i * ld);
    for (int i = 0; i < 16; i += 2) { /* pairs of rows interleave element by element */
        t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
    }
    for (int i = 0; i < 16; i += 4) { /* then by pairs of elements */
        r[i] = _mm512_shuffle_ps(t[i], t[i + 2], 0x44);
        r[i + 1] = _mm512_shuffle_ps(t[i], t[i + 2], 0xEE);
        r[i + 2] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0x44);
        r[i + 3] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
    }
    for (int i = 0; i < 4; i++) { /* then by 128-bit lanes, across groups of 4 rows */
        t[i] = _mm512_shuffle_f32x4(r[i], r[i + 4], 0x88);
        t[i + 4] = _mm512_shuffle_f32x4(r[i], r[i + 4], 0xDD);
        t[i + 8] = _mm512_shuffle_f32x4(r[i + 8], r[i + 12], 0x88);
        t[i + 12] = _mm512_shuffle_f32x4(r[i + 8], r[i + 12], 0xDD);
    }
    for (int i = 0; i < 4; i++) {
        r[i] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0x88);
        r[i + 8] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0xDD);
        r[i + 4] = _mm512_shuffle_f32x4(t[i + 4], t[i + 12], 0x88);
        r[i + 12] = _mm512_shuffle_f32x4(t[i + 4], t[i + 12], 0xDD);
    }
    for (int i = 0; i < 16; i++) _mm512_storeu_ps(d + i * ldd, r[i]);
}
#endif

void td_sgemm_b_cols(float *dst, const float *cols, int64_t ld, int64_t j, int64_t n, int64_t K,
                     int64_t N) {
    int64_t k = 0;
#ifdef __AVX512F__
    if (n == 16 && j % 16 == 0) { /* 16 columns in one half of a panel: 16 x 16 transposes */
        float *d = dst + (j / NR) * NR * K + j % NR;
        for (; k + 16 <= K; k += 16) td_sgemm_transpose16(d + k * NR, NR, cols + k, ld);
    }
#endif
    for (int64_t q = 0; q < n; q++) {
        float *d = dst + ((j + q) / NR) * NR * K + (j + q) % NR;
        for (int64_t kk = k; kk < K; kk++) d[kk * NR] = cols[q * ld + kk];
    }
    (void)N;
}

/* float32 on the packed kernel: both operands packed into scratch from the buffer cache */
static int packed_gemm(int64_t M, int64_t N, int64_t K, const float *a, int64_t ars,
                       int64_t acs, const float *b, int64_t brs, int64_t bcs, bool acc, float *c,
                       int64_t ldc) {
    size_t na = (size_t)(td_sgemm_asize(M, K) + 15) / 16 * 16, nb = (size_t)td_sgemm_bsize(K, N);
    size_t bytes = (na + nb) * sizeof(float);
    float *ap = td_buf_alloc(bytes), *bp = ap + na;
    if (!ap) return -1;
    td_sgemm_pack_a(ap, a, ars, acs, M, K);
    td_sgemm_pack_b(bp, b, brs, bcs, K, N);
    double flops = 2.0 * (double)M * (double)N * (double)K;
    td_sgemm_packed(M, N, K, ap, bp, c, ldc, acc, NULL, flops >= 4e6 ? td_get_num_threads() : 1);
    td_buf_free(ap, bytes);
    return 0;
}

int td_gemm(td_dtype dt, int64_t M, int64_t N, int64_t K, const void *a, int64_t ars,
            int64_t acs, const void *b, int64_t brs, int64_t bcs, bool acc, void *c,
            int64_t ldc) {
    if (M == 0 || N == 0) return 0;
    size_t es = td_dtype_size(dt);
    if (K == 0) { /* an empty sum: BLAS would scale C by beta, the kernel needs a K */
        for (int64_t i = 0; i < M && !acc; i++) memset((char *)c + i * ldc * es, 0, N * es);
        return 0;
    }
    if (dt == TD_FLOAT32 && td_sgemm_available())
        return packed_gemm(M, N, K, a, ars, acs, b, brs, bcs, acc, c, ldc);
    /* an operand is read as stored when its columns are unit-stride (or it has one column),
     * else as the transpose of the stored matrix; a one-row operand needs ld >= its columns */
    bool ta = !(acs == 1 || K == 1), tb = !(bcs == 1 || N == 1);
    int64_t lda = ta ? acs : M == 1 ? K : ars, ldb = tb ? bcs : K == 1 ? N : brs;
    CBLAS_TRANSPOSE at = ta ? CblasTrans : CblasNoTrans, bt = tb ? CblasTrans : CblasNoTrans;
    lda = lda > 0 ? lda : 1, ldb = ldb > 0 ? ldb : 1;
    if (dt == TD_FLOAT32)
        cblas_sgemm(CblasRowMajor, at, bt, (blasint)M, (blasint)N, (blasint)K, 1.0f, a,
                    (blasint)lda, b, (blasint)ldb, acc ? 1.0f : 0.0f, c, (blasint)ldc);
    else
        cblas_dgemm(CblasRowMajor, at, bt, (blasint)M, (blasint)N, (blasint)K, 1.0, a,
                    (blasint)lda, b, (blasint)ldb, acc ? 1.0 : 0.0, c, (blasint)ldc);
    return 0;
}

void td_sgemm_pad_b(float *dst, int64_t K, int64_t N) {
    int64_t n = N % NR;
    if (n == 0) return;
    float *d = dst + (N - n) * K;
    for (int64_t k = 0; k < K; k++)
        for (int64_t j = n; j < NR; j++) d[k * NR + j] = 0;
}

#ifdef __AVX512F__
bool td_sgemm_available(void) {
    return true;
}

/* How a kernel starts its tile: from zero, from C (accumulate), or from a bias per row. */
enum { INIT_ZERO, INIT_C, INIT_BIAS };

#define INIT2(i)                                                                                   \
    c##i##0 = init == INIT_C      ? _mm512_loadu_ps(c + i * ldc)                                   \
              : init == INIT_BIAS ? _mm512_set1_ps(bias[i])                                        \
                                  : _mm512_setzero_ps();                                           \
    c##i##1 = init == INIT_C ? _mm512_loadu_ps(c + i * ldc + 16) : c##i##0
#define FMA2(i)                                                                                    \
    a = _mm512_set1_ps(ap[i]);                                                                     \
    c##i##0 = _mm512_fmadd_ps(a, b0, c##i##0);                                                     \
    c##i##1 = _mm512_fmadd_ps(a, b1, c##i##1)
#define STORE2(i)                                                                                  \
    _mm512_storeu_ps(c + i * ldc, c##i##0), _mm512_storeu_ps(c + i * ldc + 16, c##i##1)

/* the MR x NR tile at c (row stride ldc) = start + A panel B panel over kc */
static void kernel32(int64_t kc, const float *restrict ap, const float *restrict bp, float *c,
                     int64_t ldc, int init, const float *bias) {
    __m512 c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51, c60, c61, c70, c71, a;
    INIT2(0), INIT2(1), INIT2(2), INIT2(3), INIT2(4), INIT2(5), INIT2(6), INIT2(7);
    for (int64_t k = 0; k < kc; k++, ap += MR, bp += NR) {
        __m512 b0 = _mm512_loadu_ps(bp), b1 = _mm512_loadu_ps(bp + 16);
        FMA2(0);
        FMA2(1);
        FMA2(2);
        FMA2(3);
        FMA2(4);
        FMA2(5);
        FMA2(6);
        FMA2(7);
    }
    STORE2(0), STORE2(1), STORE2(2), STORE2(3), STORE2(4), STORE2(5), STORE2(6), STORE2(7);
}

#define INIT1(i)                                                                                   \
    c##i = init == INIT_C      ? _mm512_loadu_ps(c + i * ldc)                                      \
           : init == INIT_BIAS ? _mm512_set1_ps(bias[i])                                           \
                               : _mm512_setzero_ps()
#define FMA1(i)   c##i = _mm512_fmadd_ps(_mm512_set1_ps(ap[i]), b0, c##i)
#define STORE1(i) _mm512_storeu_ps(c + i * ldc, c##i)

/* the same for the first 16 columns of a panel: a last panel of at most 16 columns */
static void kernel16(int64_t kc, const float *restrict ap, const float *restrict bp, float *c,
                     int64_t ldc, int init, const float *bias) {
    __m512 c0, c1, c2, c3, c4, c5, c6, c7;
    INIT1(0), INIT1(1), INIT1(2), INIT1(3), INIT1(4), INIT1(5), INIT1(6), INIT1(7);
    for (int64_t k = 0; k < kc; k++, ap += MR, bp += NR) {
        __m512 b0 = _mm512_loadu_ps(bp);
        FMA1(0);
        FMA1(1);
        FMA1(2);
        FMA1(3);
        FMA1(4);
        FMA1(5);
        FMA1(6);
        FMA1(7);
    }
    STORE1(0), STORE1(1), STORE1(2), STORE1(3), STORE1(4), STORE1(5), STORE1(6), STORE1(7);
}

/* the columns j0 .. j0 + NR - 1 of C: every k block, every row panel */
static void panel(int64_t M, int64_t N, int64_t K, const float *ap, const float *bp, float *c,
                  int64_t ldc, bool acc, const float *bias, int64_t j0) {
    float tile[MR * NR], tb[MR]; /* edge tiles go through tile: C has no room for a whole one */
    int64_t n = N - j0 < NR ? N - j0 : NR;
    for (int64_t k0 = 0; k0 == 0 || k0 < K; k0 += KC) {
        int64_t kc = K - k0 < KC ? K - k0 : KC;
        int init = acc || k0 > 0 ? INIT_C : bias ? INIT_BIAS : INIT_ZERO;
        const float *b = bp + j0 * K + k0 * NR;
        for (int64_t i0 = 0; i0 < M; i0 += MR) {
            const float *a = ap + i0 * K + k0 * MR, *bi = bias ? bias + i0 : NULL;
            int64_t m = M - i0 < MR ? M - i0 : MR;
            float *t = c + i0 * ldc + j0;
            if (m == MR && n == NR) {
                kernel32(kc, a, b, t, ldc, init, bi);
                continue;
            }
            if (bi && m < MR) { /* bias rows past M would be read: pad them */
                for (int64_t i = 0; i < MR; i++) tb[i] = i < m ? bi[i] : 0.0f;
                bi = tb;
            }
            for (int64_t i = 0; init == INIT_C && i < m; i++)
                memcpy(tile + i * NR, t + i * ldc, sizeof(float) * (size_t)n);
            if (n <= 16)
                kernel16(kc, a, b, tile, NR, init, bi);
            else
                kernel32(kc, a, b, tile, NR, init, bi);
            for (int64_t i = 0; i < m; i++)
                memcpy(t + i * ldc, tile + i * NR, sizeof(float) * (size_t)n);
        }
    }
}

void td_sgemm_packed(int64_t M, int64_t N, int64_t K, const float *ap, const float *bp, float *c,
                     int64_t ldc, bool acc, const float *bias, int nt) {
    int64_t np = (N + NR - 1) / NR;
    if (nt > 1 && np > 1) { /* each panel on one thread: the same sums as on one thread */
#pragma omp parallel for num_threads(nt) schedule(static)
        for (int64_t p = 0; p < np; p++) panel(M, N, K, ap, bp, c, ldc, acc, bias, p * NR);
        return;
    }
    for (int64_t p = 0; p < np; p++) panel(M, N, K, ap, bp, c, ldc, acc, bias, p * NR);
}
#else
bool td_sgemm_available(void) {
    return false;
}

void td_sgemm_packed(int64_t M, int64_t N, int64_t K, const float *ap, const float *bp, float *c,
                     int64_t ldc, bool acc, const float *bias, int nt) { /* never called */
    (void)nt;
    for (int64_t i = 0; i < M; i++)
        for (int64_t j = 0; j < N; j++) {
            float s = acc ? c[i * ldc + j] : bias ? bias[i] : 0.0f;
            for (int64_t k = 0; k < K; k++)
                s += ap[(i / MR) * MR * K + k * MR + i % MR] *
                     bp[(j / NR) * NR * K + k * NR + j % NR];
            c[i * ldc + j] = s;
        }
}
#endif
