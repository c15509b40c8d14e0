/* tensor/ops/sgemm.c: the packed float32 GEMM of sgemm.h. Sizes: C (M x N) = A (M x K) B (K x
 * N) in MR x NR tiles, K in blocks of KC so that a B panel block (KC x NR) stays in L1. The
 * kernel keeps a 8 x 32 tile of C in 16 zmm registers and does 16 FMAs per k (2 B loads, 8 A
 * broadcasts), so it is bound by the FMA units, not by loads. */
#include "sgemm.h"

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
                for (int64_t i = 0; i < MR; i++) dst[k * MR + i] = i < m ? s[i * rs + k * cs] : 0.0f;
    }
}

void td_sgemm_pack_b(float *dst, const float *b, int64_t rs, int64_t cs, int64_t K, int64_t N) {
    if (cs != 1 && rs == 1) { /* B's columns are contiguous: one column at a time */
        for (int64_t j = 0; j < N; j++) td_sgemm_b_col(dst, b + j * cs, j, K, N);
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
                for (int64_t j = 0; j < NR; j++) dst[k * NR + j] = j < n ? s[k * rs + j * cs] : 0.0f;
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

void td_sgemm_b_col(float *dst, const float *col, int64_t j, int64_t K, int64_t N) {
    (void)N;
    float *d = dst + (j / NR) * NR * K + j % NR;
    for (int64_t k = 0; k < K; k++) d[k * NR] = col[k];
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

#define LOADC(i) c##i##0 = _mm512_loadu_ps(c + i * ldc), c##i##1 = _mm512_loadu_ps(c + i * ldc + 16)
#define ZEROC(i) c##i##0 = c##i##1 = _mm512_setzero_ps()
#define FMAC(i)                                                                                    \
    a = _mm512_set1_ps(ap[i]);                                                                     \
    c##i##0 = _mm512_fmadd_ps(a, b0, c##i##0);                                                     \
    c##i##1 = _mm512_fmadd_ps(a, b1, c##i##1)
#define STOREC(i) _mm512_storeu_ps(c + i * ldc, c##i##0), _mm512_storeu_ps(c + i * ldc + 16, c##i##1)

/* the MR x NR tile at c (row stride ldc) = (acc ? tile : 0) + A panel B panel over kc */
static void kernel(int64_t kc, const float *restrict ap, const float *restrict bp, float *c,
                   int64_t ldc, bool acc) {
    __m512 c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51, c60, c61, c70, c71, a;
    if (acc) {
        LOADC(0), LOADC(1), LOADC(2), LOADC(3), LOADC(4), LOADC(5), LOADC(6), LOADC(7);
    } else {
        ZEROC(0), ZEROC(1), ZEROC(2), ZEROC(3), ZEROC(4), ZEROC(5), ZEROC(6), ZEROC(7);
    }
    for (int64_t k = 0; k < kc; k++, ap += MR, bp += NR) {
        __m512 b0 = _mm512_loadu_ps(bp), b1 = _mm512_loadu_ps(bp + 16);
        FMAC(0);
        FMAC(1);
        FMAC(2);
        FMAC(3);
        FMAC(4);
        FMAC(5);
        FMAC(6);
        FMAC(7);
    }
    STOREC(0), STOREC(1), STOREC(2), STOREC(3), STOREC(4), STOREC(5), STOREC(6), STOREC(7);
}

void td_sgemm_packed(int64_t M, int64_t N, int64_t K, const float *ap, const float *bp, float *c,
                     int64_t ldc, bool acc) {
    float tile[MR * NR]; /* edge tiles go through here: C has no room for a whole tile */
    for (int64_t k0 = 0; k0 < K; k0 += KC) {
        int64_t kc = K - k0 < KC ? K - k0 : KC;
        bool add = acc || k0 > 0;
        for (int64_t j0 = 0; j0 < N; j0 += NR) {
            const float *b = bp + j0 * K + k0 * NR;
            int64_t n = N - j0 < NR ? N - j0 : NR;
            for (int64_t i0 = 0; i0 < M; i0 += MR) {
                const float *a = ap + i0 * K + k0 * MR;
                int64_t m = M - i0 < MR ? M - i0 : MR;
                float *t = c + i0 * ldc + j0;
                if (m == MR && n == NR) {
                    kernel(kc, a, b, t, ldc, add);
                    continue;
                }
                for (int64_t i = 0; add && i < m; i++) memcpy(tile + i * NR, t + i * ldc, sizeof(float) * (size_t)n);
                kernel(kc, a, b, tile, NR, add);
                for (int64_t i = 0; i < m; i++) memcpy(t + i * ldc, tile + i * NR, sizeof(float) * (size_t)n);
            }
        }
    }
    if (K == 0 && !acc)
        for (int64_t i = 0; i < M; i++) memset(c + i * ldc, 0, sizeof(float) * (size_t)N);
}
#else
bool td_sgemm_available(void) {
    return false;
}

void td_sgemm_packed(int64_t M, int64_t N, int64_t K, const float *ap, const float *bp, float *c,
                     int64_t ldc, bool acc) { /* a plain loop: never called when unavailable */
    for (int64_t i = 0; i < M; i++)
        for (int64_t j = 0; j < N; j++) {
            float s = acc ? c[i * ldc + j] : 0.0f;
            for (int64_t k = 0; k < K; k++)
                s += ap[(i / MR) * MR * K + k * MR + i % MR] * bp[(j / NR) * NR * K + k * NR + j % NR];
            c[i * ldc + j] = s;
        }
}
#endif
