/* tests/c/test_quant.c: quantize/dequantize rounding and clamping, the observer formulas, and the
 * int8 GEMM and conv on every kernel path this CPU has (generic, avx2, vnni) against naive
 * integer references, tails of M, N and K included. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../../tensor/ops/qgemm.h"

static uint64_t rng = 88172645463325252ULL;
static int64_t rnd(int64_t lo, int64_t hi) { /* xorshift: inclusive range */
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return lo + (int64_t)(rng % (uint64_t)(hi - lo + 1));
}

Test(quant, rounds_half_to_even_and_clamps) {
    float x[] = {0.5f, 1.5f, 2.5f, -0.5f, -1.5f, 1000, -1000, NAN, 0.26f};
    int64_t n = 9;
    td_tensor *t = td_from_data(x, &n, 1, TD_FLOAT32);
    float s = 1;
    int32_t z = 0;
    td_tensor *q = td_quantize(t, &s, &z, 1, -1, TD_INT8);
    cr_assert_not_null(q, "%s", td_errmsg());
    const int8_t want[] = {0, 2, 2, 0, -2, 127, -128, -128, 0};
    cr_assert_arr_eq(td_data(q), want, sizeof want);
    z = 10;
    s = 0.5f;
    td_tensor *u = td_quantize(t, &s, &z, 1, -1, TD_UINT8);
    const uint8_t wantu[] = {11, 13, 15, 9, 7, 255, 0, 0, 11};
    cr_assert_arr_eq(td_data(u), wantu, sizeof wantu);
    td_tensor *d = td_dequantize(u, &s, &z, 1, -1);
    cr_assert_float_eq(((float *)td_data(d))[0], 0.5f, 0);
    cr_assert_float_eq(((float *)td_data(d))[5], 122.5f, 0);
    td_release(t), td_release(q), td_release(u), td_release(d);
}

Test(quant, per_channel_axis_and_bad_scales) {
    float x[6] = {1, 2, 3, 4, 5, 6};
    int64_t sh[2] = {2, 3};
    td_tensor *t = td_from_data(x, sh, 2, TD_FLOAT32);
    float s[3] = {1, 2, 4};
    int32_t z[3] = {0, 1, -1};
    td_tensor *q = td_quantize(t, s, z, 3, 1, TD_INT8); /* along dim 2 (axis 1) */
    const int8_t want[6] = {1, 2, 0, 4, 3, 1};          /* 5/2 = 2.5 -> 2 + 1; 6/4 -> 2 - 1 */
    cr_assert_not_null(q, "%s", td_errmsg());
    cr_assert_arr_eq(td_data(q), want, sizeof want);
    cr_assert_null(td_quantize(t, s, z, 2, 1, TD_INT8));
    cr_assert(strstr(td_errmsg(), "2 scales for axis 2"), "%s", td_errmsg());
    s[0] = 0;
    cr_assert_null(td_quantize(t, s, z, 3, 1, TD_INT8));
    cr_assert(strstr(td_errmsg(), "positive finite"), "%s", td_errmsg());
    s[0] = 1, z[0] = 300;
    cr_assert_null(td_quantize(t, s, z, 3, 1, TD_UINT8));
    cr_assert(strstr(td_errmsg(), "zero point 300 outside the uint8 range"), "%s", td_errmsg());
    td_release(t), td_release(q);
}

Test(quant, observer_formulas) {
    float s;
    int32_t z;
    td_qparams(-1.0f, 3.0f, TD_UINT8, false, &s, &z);
    cr_assert_float_eq(s, 4.0f / 255, 1e-9);
    cr_assert_eq(z, 64); /* 0 - rint(-63.75) */
    td_qparams(0.5f, 2.0f, TD_UINT8, false, &s, &z); /* widened to [0, 2] */
    cr_assert_eq(z, 0);
    td_qparams(-2.0f, 1.0f, TD_INT8, true, &s, &z);
    cr_assert_float_eq(s, 2.0f / 127.5f, 1e-9);
    cr_assert_eq(z, 0);
    td_qparams(0, 0, TD_UINT8, false, &s, &z);
    cr_assert(s > 0);
}

/* one GEMM on the current path against sum (a - azp) w, scaled, with requantization too */
static void check_gemm(int64_t M, int64_t N, int64_t K) {
    int64_t Kp = td_qpad_k(K);
    uint8_t *a = calloc((size_t)(M * Kp), 1);
    int8_t *w = malloc((size_t)(N * K)), *pk = td_malloc((size_t)td_qpack_bytes(N, K));
    float *ws = malloc(sizeof(float) * (size_t)N), *bias = malloc(sizeof(float) * (size_t)N);
    float *y = malloc(sizeof(float) * (size_t)(M * N));
    uint8_t *yq = malloc((size_t)(M * N));
    for (int64_t i = 0; i < M; i++)
        for (int64_t k = 0; k < K; k++) a[i * Kp + k] = (uint8_t)rnd(0, 255);
    for (int64_t i = 0; i < N * K; i++) w[i] = (int8_t)rnd(-128, 127);
    for (int64_t n = 0; n < N; n++) ws[n] = (float)rnd(1, 100) / 4096, bias[n] = (float)rnd(-8, 8);
    td_qpack_w(pk, w, K, 1, N, K);
    td_qepi e = {.y = y, .rs = N, .cs = 1, .wscale = ws, .bias = bias, .ascale = 0.02f, .azp = 7};
    td_qgemm(1, M, N, K, a, Kp, 0, pk, &e);
    td_qepi eq = e;
    eq.y = NULL, eq.yq = yq, eq.oscale = 0.25f, eq.ozp = 100;
    td_qgemm(1, M, N, K, a, Kp, 0, pk, &eq);
    for (int64_t i = 0; i < M; i++)
        for (int64_t n = 0; n < N; n++) {
            int32_t s = 0;
            for (int64_t k = 0; k < K; k++) s += (a[i * Kp + k] - 7) * w[n * K + k];
            float f = (float)s * (0.02f * ws[n]) + bias[n];
            cr_assert_eq(y[i * N + n], f, "%s M=%ld N=%ld K=%ld at (%ld, %ld): %g vs %g",
                         td_qgemm_isa_name(td_qgemm_isa()), (long)M, (long)N, (long)K, (long)i,
                         (long)n, (double)y[i * N + n], (double)f);
            float r = fminf(fmaxf(rintf(f * 4) + 100, 0), 255);
            cr_assert_eq(yq[i * N + n], (uint8_t)r);
        }
    free(a), free(w), td_free(pk), free(ws), free(bias), free(y), free(yq);
}

Test(quant, gemm_every_path_matches_the_integer_reference) {
    static const int64_t sizes[][3] = {{1, 1, 1},   {1, 16, 4},  {3, 17, 5},   {8, 32, 64},
                                       {9, 33, 67}, {17, 48, 3}, {2, 100, 300}, {13, 7, 1027}};
    for (int isa = 0; isa <= td_qgemm_isa_best(); isa++) {
        td_qgemm_set_isa(isa);
        cr_assert_eq(td_qgemm_isa(), isa);
        for (size_t c = 0; c < sizeof sizes / sizeof sizes[0]; c++)
            check_gemm(sizes[c][0], sizes[c][1], sizes[c][2]);
    }
    td_qgemm_set_isa(-1);
}

Test(quant, conv2d_every_path_matches_a_naive_conv) {
    int64_t N = 2, C = 3, H = 11, W = 10, OC = 20, KH = 3, KW = 2; /* 16 x 16 blocks + tails */
    td_qconv g = {.ic = C, .oc = OC, .kh = KH, .kw = KW, .sh = 2, .sw = 1, .ph = 1, .pw = 1,
                  .dh = 1, .dw = 2};
    int64_t xs[4] = {N, C, H, W}, wsh[4] = {OC, C, KH, KW};
    td_tensor *x = td_empty(xs, 4, TD_FLOAT32), *w = td_empty(wsh, 4, TD_INT8);
    for (int64_t i = 0; i < td_numel(x); i++) ((float *)td_data(x))[i] = (float)rnd(-40, 60) / 16;
    for (int64_t i = 0; i < td_numel(w); i++) ((int8_t *)td_data(w))[i] = (int8_t)rnd(-128, 127);
    float ws[20], bias[20];
    for (int i = 0; i < 20; i++) ws[i] = 0.001f * (float)(i + 1), bias[i] = (float)(i % 5) - 2;
    td_qspec q = {.scale = 0.0625f, .zp = 40};
    td_tensor *p = td_qpack(w), *xq = td_quantize(x, &q.scale, &q.zp, 1, -1, TD_UINT8);
    const uint8_t *xv = td_data(xq);
    const int8_t *wv = td_data(w);
    int64_t OH = (H + 2 - 2 - 1) / 2 + 1, OW = (W + 2 - 2 - 1) / 1 + 1;
    for (int isa = 0; isa <= td_qgemm_isa_best(); isa++) {
        td_qgemm_set_isa(isa);
        td_tensor *y = td_qconv2d(x, p, ws, bias, &g, &q);
        cr_assert_not_null(y, "%s", td_errmsg());
        cr_assert(y->shape[2] == OH && y->shape[3] == OW);
        for (int64_t n = 0; n < N; n++)
            for (int64_t o = 0; o < OC; o++)
                for (int64_t i = 0; i < OH; i++)
                    for (int64_t j = 0; j < OW; j++) {
                        int32_t s = 0;
                        for (int64_t c = 0; c < C; c++)
                            for (int64_t a = 0; a < KH; a++)
                                for (int64_t b = 0; b < KW; b++) {
                                    int64_t h = i * 2 - 1 + a, v = j - 1 + 2 * b;
                                    int32_t xvv = h >= 0 && h < H && v >= 0 && v < W
                                                      ? xv[((n * C + c) * H + h) * W + v]
                                                      : 40;
                                    s += (xvv - 40) * wv[((o * C + c) * KH + a) * KW + b];
                                }
                        float f = (float)s * (0.0625f * ws[o]) + bias[o];
                        float got = ((float *)td_data(y))[((n * OC + o) * OH + i) * OW + j];
                        cr_assert_eq(got, f, "%s at %ld %ld %ld %ld", td_qgemm_isa_name(isa),
                                     (long)n, (long)o, (long)i, (long)j);
                    }
        td_release(y);
    }
    td_qgemm_set_isa(-1);
    g.ic = 4;
    cr_assert_null(td_qconv2d(x, p, ws, bias, &g, &q));
    cr_assert(strstr(td_errmsg(), "qconv2d: packed weights do not match"), "%s", td_errmsg());
    td_release(x), td_release(w), td_release(p), td_release(xq);
}
