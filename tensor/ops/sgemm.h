/* tensor/ops/sgemm.h: the packed float32 GEMM of matmul, linear, conv and the RNNs, with
 * AVX-512 kernels. Sizes: C (M x N) = A (M x K) B (K x N). OpenBLAS
 * runs its AVX2 kernels here (OPENBLAS_CORETYPE=Haswell); these use the 512-bit units. A is
 * packed in panels of MR rows (K x MR each, k-major), B in panels of NR columns (K x NR each);
 * padding rows and columns are zeros. Producers (im2col) may write packed B directly. */
#ifndef TIDE_SGEMM_H
#define TIDE_SGEMM_H

#include "../tide.h"

#define TD_SG_MR 8
#define TD_SG_NR 32

bool td_sgemm_available(void); /* false when built without AVX-512: use BLAS */

int64_t td_sgemm_asize(int64_t M, int64_t K); /* floats of packed A */
int64_t td_sgemm_bsize(int64_t K, int64_t N); /* floats of packed B */

/* A(i, k) = a[i rs + k cs]; B(k, j) = b[k rs + j cs] (transposes cost nothing but locality) */
void td_sgemm_pack_a(float *dst, const float *a, int64_t rs, int64_t cs, int64_t M, int64_t K);
void td_sgemm_pack_b(float *dst, const float *b, int64_t rs, int64_t cs, int64_t K, int64_t N);
/* one row k of B (N values) into packed B */
void td_sgemm_b_row(float *dst, const float *row, int64_t k, int64_t K, int64_t N);
/* columns j..j+n-1 of B, given as n rows of K values ld apart (16 at a time transpose fast);
 * after columns, td_sgemm_pad_b zeroes the padding columns of the last panel */
void td_sgemm_pad_b(float *dst, int64_t K, int64_t N);
void td_sgemm_b_cols(float *dst, const float *cols, int64_t ld, int64_t j, int64_t n, int64_t K,
                     int64_t N);

#ifdef __AVX512F__
/* the 16 x 16 block at s (row stride ld) transposed into d (row stride ldd) */
void td_sgemm_transpose16(float *d, int64_t ldd, const float *s, int64_t ld);
#endif

/* C (M x N, row stride ldc) = A B, plus C when acc, else plus bias[i] on row i (bias may be
 * NULL); on nt threads (panels of NR columns each on one thread: results do not depend on nt) */
void td_sgemm_packed(int64_t M, int64_t N, int64_t K, const float *ap, const float *bp, float *c,
                     int64_t ldc, bool acc, const float *bias, int nt);

/* The GEMM of tensor/ops: C (M x N, rows ldc apart) = A B (+ C when acc) for A(i, k) =
 * a[i ars + k acs] and B(k, j) = b[k brs + j bcs], float32 or float64. float32 runs on the
 * packed kernel where there is one (operands packed into scratch from the buffer cache, on every
 * thread once the product is big enough), else on OpenBLAS, which reads each operand as stored
 * or transposed: one of its strides must be 1 (or its dim 1). 0, or -1 + error (no scratch). */
int td_gemm(td_dtype dt, int64_t M, int64_t N, int64_t K, const void *a, int64_t ars,
            int64_t acs, const void *b, int64_t brs, int64_t bcs, bool acc, void *c,
            int64_t ldc);

#endif
