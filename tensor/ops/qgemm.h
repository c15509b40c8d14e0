/* tensor/ops/qgemm.h: the int8 GEMM under quantized linear and conv2d. Sizes: Y (M x N) from
 * A (M x K, uint8 activations with zero point azp) times W^T (W: N x K, int8 weights, zero point
 * 0), accumulated exactly in int32: acc = sum_k (a - azp) w = sum_k a w - azp colsum(w).
 *
 * Packed W: panels of QP = 16 output channels; inside a panel, k in groups of 4 (64 bytes per
 * group: channel j's 4 bytes at j*4), so one vpdpbusd multiplies a broadcast 4-byte group of a row
 * of A with 16 channels. K is padded to Kp = a multiple of 4 and N to a multiple of 16 with zero
 * weights; the int32 column sums follow the panels. Rows of A must have Kp readable bytes.
 *
 * Three kernels, chosen at run time (no -march flag needed: each has a target attribute):
 * - vnni: AVX-512 VNNI vpdpbusd (u8 x s8, 4 products summed into int32, no saturation);
 * - avx2: weights sign-extended to int16 and multiplied with vpmaddwd (int16 pairs summed into
 *   int32): exact. vpmaddubsw would be twice as fast but saturates its int16 pair sums (255 * 127
 *   * 2 > 32767) unless weights are cut to 7 bits; we keep all 8 bits, so every path gives the
 *   same integers;
 * - generic: plain C.
 * TIDE_ISA=avx2 or generic (read at first use) caps the choice; td_qgemm_set_isa overrides it. */
#ifndef TIDE_QGEMM_H
#define TIDE_QGEMM_H

#include "../tide.h"

#define TD_QP 16

enum { TD_ISA_GENERIC, TD_ISA_AVX2, TD_ISA_VNNI, TD_NISA };

int td_qgemm_isa(void);               /* the path in use */
int td_qgemm_isa_best(void);          /* the best path this CPU runs */
void td_qgemm_set_isa(int isa);       /* capped at the best; for tests */
const char *td_qgemm_isa_name(int isa); /* "vnni", "avx2", "generic" */

int64_t td_qpad_k(int64_t K);                 /* Kp */
int64_t td_qpack_bytes(int64_t N, int64_t K); /* panels + column sums */
/* W(n, k) = w[n rs + k cs] into dst (td_qpack_bytes, 64-byte aligned) */
void td_qpack_w(int8_t *dst, const int8_t *w, int64_t rs, int64_t cs, int64_t N, int64_t K);

/* What happens to each accumulator: f = acc * ascale * wscale[n] + bias[n] (bias may be NULL);
 * stored as float32 y, or, when yq is set, requantized: clamp(rint(f / oscale) + ozp, 0, 255)
 * (lower bound ozp when relu).
 * Element (m, n) of batch b goes to offset b ybs + m rs + n cs. */
typedef struct td_qepi {
    float *y;
    uint8_t *yq;
    int64_t rs, cs, ybs;
    const float *wscale, *bias;
    float ascale, oscale;
    int32_t azp, ozp;
    bool relu; /* requantized values clamped below at ozp */
} td_qepi;

/* nb GEMMs sharing W: A of batch b at a + b abs (rows lda >= Kp apart), on the thread pool.
 * 0, or -1 + error (no scratch memory for a channel-major output). */
int td_qgemm(int64_t nb, int64_t M, int64_t N, int64_t K, const uint8_t *a, int64_t lda,
              int64_t abs, const int8_t *packed, const td_qepi *e);

#endif
