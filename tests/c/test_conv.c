/* tests/c/test_conv.c: conv2d, conv_transpose2d and the pooling ops against naive float64 loops
 * (written here, from the definitions) on many configurations and layouts, gradients against
 * finite differences, thread-count independence, and the error messages. Sizes: N C H W input,
 * K output channels, KH KW kernel, G groups. */
#include "../../tensor/ops/sgemm.h"
#include "ref.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

typedef struct cfg {
    int64_t N, C, H, W, K, KH, KW, sh, sw, ph, pw, dh, dw, oph, opw, G;
    bool bias;
} cfg;

static td_args conv_args(const cfg *c) {
    td_args a = {0};
    int64_t *s = a.sizes;
    s[0] = c->sh, s[1] = c->sw, s[2] = c->ph, s[3] = c->pw;
    s[4] = c->dh, s[5] = c->dw, s[6] = c->oph, s[7] = c->opw;
    a.nsizes = 8;
    a.step = c->G;
    return a;
}

static td_tensor *zeros64(const int64_t *shape, int nd) {
    return td_zeros(shape, nd, TD_FLOAT64);
}

/* y[n,k,oy,ox] = b[k] + sum x[n, g Cg + c, oy sh - ph + i dh, ox sw - pw + j dw] w[k, c, i, j] */
static td_tensor *ref_conv(const td_tensor *x, const td_tensor *w, const td_tensor *b,
                           const cfg *c) {
    int64_t Cg = c->C / c->G, Kg = c->K / c->G;
    int64_t OH = (c->H + 2 * c->ph - (c->KH - 1) * c->dh - 1) / c->sh + 1;
    int64_t OW = (c->W + 2 * c->pw - (c->KW - 1) * c->dw - 1) / c->sw + 1;
    int64_t sh[4] = {c->N, c->K, OH, OW};
    td_tensor *y = zeros64(sh, 4);
    for (int64_t n = 0; n < c->N; n++)
        for (int64_t k = 0; k < c->K; k++)
            for (int64_t oy = 0; oy < OH; oy++)
                for (int64_t ox = 0; ox < OW; ox++) {
                    double s = b ? td_get(b, &k) : 0;
                    for (int64_t ci = 0; ci < Cg; ci++)
                        for (int64_t i = 0; i < c->KH; i++)
                            for (int64_t j = 0; j < c->KW; j++) {
                                int64_t iy = oy * c->sh - c->ph + i * c->dh;
                                int64_t ix = ox * c->sw - c->pw + j * c->dw;
                                if (iy < 0 || iy >= c->H || ix < 0 || ix >= c->W) continue;
                                int64_t xi[4] = {n, k / Kg * Cg + ci, iy, ix},
                                        wi[4] = {k, ci, i, j};
                                s += td_get(x, xi) * td_get(w, wi);
                            }
                    int64_t yi[4] = {n, k, oy, ox};
                    td_set(y, yi, s);
                }
    return y;
}

/* every x[n, c, iy, ix] w[c, ko, i, j] lands on y[n, g Kg + ko, iy sh - ph + i dh, ...] */
static td_tensor *ref_convt(const td_tensor *x, const td_tensor *w, const td_tensor *b,
                            const cfg *c) {
    int64_t Cg = c->C / c->G, Kg = c->K / c->G;
    int64_t OH = (c->H - 1) * c->sh - 2 * c->ph + (c->KH - 1) * c->dh + c->oph + 1;
    int64_t OW = (c->W - 1) * c->sw - 2 * c->pw + (c->KW - 1) * c->dw + c->opw + 1;
    int64_t sh[4] = {c->N, c->K, OH, OW};
    td_tensor *y = zeros64(sh, 4);
    for (int64_t n = 0; n < c->N; n++)
        for (int64_t k = 0; k < c->K; k++)
            for (int64_t oy = 0; oy < OH; oy++)
                for (int64_t ox = 0; ox < OW; ox++) {
                    int64_t yi[4] = {n, k, oy, ox};
                    td_set(y, yi, b ? td_get(b, &k) : 0);
                }
    for (int64_t n = 0; n < c->N; n++)
        for (int64_t ci = 0; ci < c->C; ci++)
            for (int64_t iy = 0; iy < c->H; iy++)
                for (int64_t ix = 0; ix < c->W; ix++)
                    for (int64_t ko = 0; ko < Kg; ko++)
                        for (int64_t i = 0; i < c->KH; i++)
                            for (int64_t j = 0; j < c->KW; j++) {
                                int64_t oy = iy * c->sh - c->ph + i * c->dh;
                                int64_t ox = ix * c->sw - c->pw + j * c->dw;
                                if (oy < 0 || oy >= OH || ox < 0 || ox >= OW) continue;
                                int64_t xi[4] = {n, ci, iy, ix}, wi[4] = {ci, ko, i, j};
                                int64_t yi[4] = {n, ci / Cg * Kg + ko, oy, ox};
                                td_set(y, yi, td_get(y, yi) + td_get(x, xi) * td_get(w, wi));
                            }
    return y;
}

static const cfg convs[] = {
    /* N  C  H  W  K KH KW sh sw ph pw dh dw oph opw G bias */
    {2, 3, 6, 6, 4, 3, 3, 1, 1, 0, 0, 1, 1, 0, 0, 1, true},
    {2, 3, 7, 7, 4, 3, 3, 2, 2, 1, 1, 1, 1, 0, 0, 1, true},
    {1, 2, 9, 9, 3, 3, 3, 1, 1, 0, 0, 2, 2, 0, 0, 1, false},
    {2, 4, 5, 5, 6, 3, 3, 1, 1, 1, 1, 1, 1, 0, 0, 2, true},
    {2, 3, 5, 8, 2, 2, 3, 1, 2, 1, 0, 1, 1, 0, 0, 1, true},
    {3, 4, 3, 3, 5, 1, 1, 1, 1, 0, 0, 1, 1, 0, 0, 1, true},    /* 1x1: no columns */
    {2, 6, 4, 4, 6, 1, 1, 1, 1, 0, 0, 1, 1, 0, 0, 3, false},   /* grouped 1x1 */
    {1, 2, 6, 7, 4, 3, 2, 3, 2, 2, 1, 2, 1, 0, 0, 2, true},    /* everything at once */
    {2, 3, 6, 5, 4, 3, 3, 1, 1, 2, 2, 2, 2, 0, 0, 1, true},    /* dilated "same": flat rows */
    {1, 2, 5, 7, 3, 3, 5, 1, 1, 1, 2, 1, 1, 0, 0, 1, false},   /* non-square "same" */
    {8, 8, 12, 12, 16, 3, 3, 1, 1, 1, 1, 1, 1, 0, 0, 1, true}, /* the threaded path */
};
static const cfg convts[] = {
    {2, 4, 3, 3, 3, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 1, true},
    {1, 4, 4, 5, 4, 2, 3, 1, 1, 0, 0, 2, 2, 0, 0, 2, false},
    {2, 3, 3, 3, 2, 1, 1, 1, 1, 0, 0, 1, 1, 0, 0, 1, true}, /* 1x1 */
    {1, 2, 4, 3, 3, 3, 2, 3, 2, 1, 0, 1, 2, 2, 1, 1, true},
    {2, 3, 5, 6, 4, 3, 3, 1, 1, 1, 1, 1, 1, 0, 0, 1, true},  /* "same": flat rows */
    {8, 16, 7, 7, 8, 4, 4, 2, 2, 1, 1, 1, 1, 0, 0, 1, true}, /* the threaded path */
};

static void make_inputs(const cfg *c, bool tr, td_dtype dt, int lay, td_tensor **in) {
    int64_t xs[4] = {c->N, c->C, c->H, c->W};
    int64_t ws[4] = {c->K, c->C / c->G, c->KH, c->KW};
    if (tr) ws[0] = c->C, ws[1] = c->K / c->G;
    in[0] = ref_rand(xs, 4, dt, lay, -1, 1);
    in[1] = ref_rand(ws, 4, dt, lay == L_EXPANDED ? L_CONTIG : lay, -1, 1);
    in[2] = c->bias ? ref_rand(&c->K, 1, dt, L_CONTIG, -1, 1) : NULL;
}

static void check_forward(const cfg *cs, size_t ncfg, bool tr) {
    const td_op *op = tr ? &td_op_conv_transpose2d : &td_op_conv2d;
    td_manual_seed(5);
    for (size_t ci = 0; ci < ncfg; ci++)
        for (int dt = TD_FLOAT32; dt <= TD_FLOAT64; dt++)
            for (int lay = 0; lay < L_NLAYOUTS; lay++) {
                const cfg *c = &cs[ci];
                td_tensor *in[3];
                make_inputs(c, tr, (td_dtype)dt, lay, in);
                td_args a = conv_args(c);
                td_tensor *y = td_apply(op, in, c->bias ? 3 : 2, &a);
                cr_assert_not_null(y, "%s cfg %zu: %s", op->name, ci, td_errmsg());
                td_tensor *r =
                    tr ? ref_convt(in[0], in[1], in[2], c) : ref_conv(in[0], in[1], in[2], c);
                double d = ref_maxdiff(y, r), tol = dt == TD_FLOAT32 ? 1e-5 : 1e-12;
                cr_assert(d < tol, "%s cfg %zu %s %s: off by %g", op->name, ci,
                          td_dtype_name((td_dtype)dt), ref_layout_name[lay], d);
                td_release(y), td_release(r);
                for (int i = 0; i < 3; i++) td_release(in[i]);
            }
}

Test(conv, conv2d_matches_the_definition) {
    check_forward(convs, sizeof convs / sizeof convs[0], false);
}

Test(conv, conv_transpose2d_matches_the_definition) {
    check_forward(convts, sizeof convts / sizeof convts[0], true);
}

static void check_grads(const cfg *cs, size_t ncfg, bool tr) {
    const td_op *op = tr ? &td_op_conv_transpose2d : &td_op_conv2d;
    td_manual_seed(6);
    for (size_t ci = 0; ci + 1 < ncfg; ci++) { /* the big threaded one is checked below */
        const cfg *c = &cs[ci];
        td_tensor *in[3];
        make_inputs(c, tr, TD_FLOAT64, L_CONTIG, in);
        td_args a = conv_args(c);
        double e = ref_gradcheck(op, in, c->bias ? 3 : 2, &a);
        cr_assert(e < 1e-6, "%s cfg %zu: gradient off by %g", op->name, ci, e);
        for (int i = 0; i < 3; i++) td_release(in[i]);
    }
}

Test(conv, conv_gradients_match_finite_differences) {
    check_grads(convs, sizeof convs / sizeof convs[0], false);
    check_grads(convts, sizeof convts / sizeof convts[0], true);
}

/* gradients of sum(y * g) through td_backward; returns them as new refs */
static void grads_of(const td_op *op, td_tensor **in, int nin, const td_args *a, td_tensor *g,
                     td_tensor **out) {
    bool prev = td_set_grad_enabled(true);
    for (int i = 0; i < nin; i++) in[i]->requires_grad = true, in[i]->grad = NULL;
    td_tensor *y = td_apply(op, in, nin, a);
    cr_assert_not_null(y, "%s", td_errmsg());
    cr_assert(td_backward(&y, &g, 1, false) == 0, "%s", td_errmsg());
    for (int i = 0; i < nin; i++) out[i] = in[i]->grad, in[i]->grad = NULL;
    td_release(y);
    td_set_grad_enabled(prev);
}

/* float32 gradients (packed AVX-512 kernels where available) against float64 ones (BLAS) */
static void check_f32_grads(const cfg *cs, size_t ncfg, bool tr) {
    const td_op *op = tr ? &td_op_conv_transpose2d : &td_op_conv2d;
    td_manual_seed(11);
    for (size_t ci = 0; ci < ncfg; ci++) {
        const cfg *c = &cs[ci];
        int nin = c->bias ? 3 : 2;
        td_tensor *in[3], *in64[3] = {0}, *g32[3], *g64[3];
        make_inputs(c, tr, TD_FLOAT32, L_CONTIG, in);
        for (int i = 0; i < nin; i++) in64[i] = td_to_dtype(in[i], TD_FLOAT64);
        td_args a = conv_args(c);
        td_tensor *y = td_apply(op, in, nin, &a);
        td_tensor *g = ref_rand(y->shape, y->ndim, TD_FLOAT32, L_CONTIG, -1, 1);
        td_tensor *gd = td_to_dtype(g, TD_FLOAT64);
        grads_of(op, in, nin, &a, g, g32);
        grads_of(op, in64, nin, &a, gd, g64);
        for (int i = 0; i < nin; i++) {
            double d = ref_maxdiff(g32[i], g64[i]);
            cr_assert(d < 2e-5, "%s cfg %zu: float32 gradient of input %d off by %g", op->name, ci,
                      i, d);
            td_release(g32[i]), td_release(g64[i]), td_release(in[i]), td_release(in64[i]);
        }
        td_release(y), td_release(g), td_release(gd);
    }
}

Test(conv, float32_gradients_match_float64) {
    check_f32_grads(convs, sizeof convs / sizeof convs[0], false);
    check_f32_grads(convts, sizeof convts / sizeof convts[0], true);
}

Test(conv, gradients_do_not_depend_on_the_thread_count) {
    const cfg *c = &convs[sizeof convs / sizeof convs[0] - 1];
    td_manual_seed(7);
    td_tensor *in[3], *g1[3], *g2[3];
    make_inputs(c, false, TD_FLOAT32, L_CONTIG, in);
    td_args a = conv_args(c);
    int64_t ys[4] = {c->N, c->K, c->H, c->W};
    td_tensor *g = ref_rand(ys, 4, TD_FLOAT32, L_CONTIG, -1, 1);
    int nt = td_get_num_threads();
    td_set_num_threads(1);
    grads_of(&td_op_conv2d, in, 3, &a, g, g1);
    td_set_num_threads(2);
    grads_of(&td_op_conv2d, in, 3, &a, g, g2);
    /* one big image: each product is split over the threads instead */
    cfg big = {1, 16, 40, 40, 32, 3, 3, 1, 1, 1, 1, 1, 1, 0, 0, 1, true};
    td_tensor *bin[3], *y1, *y2, *bg1[3], *bg2[3];
    make_inputs(&big, false, TD_FLOAT32, L_CONTIG, bin);
    td_args ba = conv_args(&big);
    td_tensor *bg = ref_rand((int64_t[]){1, 32, 40, 40}, 4, TD_FLOAT32, L_CONTIG, -1, 1);
    y2 = td_apply(&td_op_conv2d, bin, 3, &ba);
    grads_of(&td_op_conv2d, bin, 3, &ba, bg, bg2);
    td_set_num_threads(1);
    y1 = td_apply(&td_op_conv2d, bin, 3, &ba);
    grads_of(&td_op_conv2d, bin, 3, &ba, bg, bg1);
    td_set_num_threads(nt);
    /* (OpenBLAS, which float32 falls back to without AVX-512, rounds differently by threads) */
    bool exact = td_sgemm_available();
    cr_assert(!exact || ref_maxdiff(y1, y2) == 0, "one image: the output differs by threads");
    for (int i = 0; i < 3; i++) {
        cr_assert(!exact || ref_maxdiff(bg1[i], bg2[i]) == 0, "one image: gradient %d differs", i);
        td_release(bg1[i]), td_release(bg2[i]), td_release(bin[i]);
    }
    td_release(y1), td_release(y2), td_release(bg);
    for (int i = 0; i < 3; i++) {
        cr_assert(ref_maxdiff(g1[i], g2[i]) == 0, "input %d: gradients differ by thread count", i);
        td_release(g1[i]), td_release(g2[i]), td_release(in[i]);
    }
    /* the float64 weight gradient of the threaded configuration against the definition */
    make_inputs(c, false, TD_FLOAT64, L_CONTIG, in);
    td_tensor *g64 = td_to_dtype(g, TD_FLOAT64);
    grads_of(&td_op_conv2d, in, 3, &a, g64, g1);
    int64_t KK = c->C * c->KH * c->KW;
    double worst = 0;
    for (int64_t k = 0; k < c->K; k++)
        for (int64_t q = 0; q < KK; q++) {
            int64_t cc = q / (c->KH * c->KW), i = q / c->KW % c->KH, j = q % c->KW;
            double s = 0;
            for (int64_t n = 0; n < c->N; n++)
                for (int64_t oy = 0; oy < c->H; oy++)
                    for (int64_t ox = 0; ox < c->W; ox++) {
                        int64_t iy = oy - 1 + i, ix = ox - 1 + j;
                        if (iy < 0 || iy >= c->H || ix < 0 || ix >= c->W) continue;
                        int64_t xi[4] = {n, cc, iy, ix}, gi[4] = {n, k, oy, ox};
                        s += td_get(in[0], xi) * td_get(g64, gi);
                    }
            int64_t wi[4] = {k, cc, i, j};
            double d = fabs(s - td_get(g1[1], wi));
            worst = d > worst ? d : worst;
        }
    cr_assert(worst < 1e-10, "threaded weight gradient off by %g", worst);
    for (int i = 0; i < 3; i++) td_release(g1[i]), td_release(in[i]);
    td_release(g), td_release(g64);
}

/* sgemm.c's packed products against a plain loop: odd sizes (edge tiles, K blocks, tails of 16
 * columns), every operand layout, accumulation, a bias per row, and columns written one by one */
Test(conv, packed_sgemm_matches_a_plain_loop) {
    if (!td_sgemm_available()) return;
    static const int64_t dims[][3] = {{1, 1, 1},      {8, 32, 16},  {9, 33, 300}, {17, 16, 7},
                                      {64, 196, 288}, {5, 50, 513}, {16, 17, 0}};
    td_manual_seed(12);
    for (size_t q = 0; q < sizeof dims / sizeof dims[0]; q++)
        for (int lay = 0; lay < 4; lay++) { /* A and B each row-major or transposed */
            int64_t M = dims[q][0], N = dims[q][1], K = dims[q][2];
            int64_t sa[2] = {M, K > 0 ? K : 1}, sb[2] = {K > 0 ? K : 1, N}, sc[2] = {M, N};
            td_tensor *a = ref_rand(sa, 2, TD_FLOAT32, L_CONTIG, -1, 1);
            td_tensor *b = ref_rand(sb, 2, TD_FLOAT32, L_CONTIG, -1, 1);
            td_tensor *c = ref_rand(sc, 2, TD_FLOAT32, L_CONTIG, -1, 1);
            td_tensor *bias = ref_rand(&M, 1, TD_FLOAT32, L_CONTIG, -1, 1);
            const float *pa = td_data(a), *pb = td_data(b), *pbias = td_data(bias);
            bool ta = lay & 1, tb = lay & 2; /* read the same memory as the transposed matrix */
            int64_t ars = ta ? 1 : K, acs = ta ? M : 1, brs = tb ? 1 : N, bcs = tb ? K : 1;
            float *ap = td_malloc(sizeof(float) * (size_t)(td_sgemm_asize(M, K) + 1));
            float *bp = td_malloc(sizeof(float) * (size_t)(td_sgemm_bsize(K, N) + 1));
            float *cc = td_malloc(sizeof(float) * (size_t)(M * N));
            float *c2 = td_malloc(sizeof(float) * (size_t)(M * N));
            td_sgemm_pack_a(ap, pa, ars, acs, M, K);
            if (lay == 2) { /* B's columns through the column writer, 16 at a time */
                for (int64_t j = 0; j < N; j += 16)
                    td_sgemm_b_cols(bp, pb + j * K, K, j, N - j < 16 ? N - j : 16, K, N);
                td_sgemm_pad_b(bp, K, N);
            } else
                td_sgemm_pack_b(bp, pb, brs, bcs, K, N);
            for (int mode = 0; mode < 3; mode++) { /* plain, accumulate, bias */
                memcpy(cc, td_data(c), sizeof(float) * (size_t)(M * N));
                td_sgemm_packed(M, N, K, ap, bp, cc, N, mode == 1, mode == 2 ? pbias : NULL, 2);
                memcpy(c2, td_data(c), sizeof(float) * (size_t)(M * N));
                td_sgemm_packed(M, N, K, ap, bp, c2, N, mode == 1, mode == 2 ? pbias : NULL, 1);
                cr_assert(memcmp(cc, c2, sizeof(float) * (size_t)(M * N)) == 0,
                          "sgemm %ldx%ldx%ld: 2 threads differ from 1", M, N, K);
                double worst = 0;
                for (int64_t i = 0; i < M; i++)
                    for (int64_t j = 0; j < N; j++) {
                        double s = mode == 1   ? (double)((float *)td_data(c))[i * N + j]
                                   : mode == 2 ? (double)pbias[i]
                                               : 0;
                        for (int64_t k = 0; k < K; k++)
                            s += (double)pa[i * ars + k * acs] * (double)pb[k * brs + j * bcs];
                        double d = fabs(s - (double)cc[i * N + j]);
                        worst = d > worst ? d : worst;
                    }
                cr_assert(worst < 1e-4, "sgemm %ldx%ldx%ld layout %d mode %d: off by %g", M, N, K,
                          lay, mode, worst);
            }
            td_free(ap), td_free(bp), td_free(cc), td_free(c2);
            td_release(a), td_release(b), td_release(c), td_release(bias);
        }
}

/* ---- pooling --------------------------------------------------------------------------------- */

enum { P_MAX, P_AVG, P_ADAPT };

/* naive pooling of the last two dims; k, s, p = kernel, stride, padding (adaptive: k = out) */
static td_tensor *ref_pool(const td_tensor *x, int kind, const int64_t *k, const int64_t *s,
                           const int64_t *p) {
    int d = x->ndim;
    int64_t H = x->shape[d - 2], W = x->shape[d - 1], planes = td_numel(x) / (H * W);
    int64_t OH = kind == P_ADAPT ? k[0] : (H + 2 * p[0] - k[0]) / s[0] + 1;
    int64_t OW = kind == P_ADAPT ? k[1] : (W + 2 * p[1] - k[1]) / s[1] + 1;
    int64_t xs[3] = {planes, H, W}, ys[3] = {planes, OH, OW}, st[3] = {H * W, W, 1};
    td_tensor *xc = td_contiguous((td_tensor *)x), *xv = td_view_of(xc, xs, st, 3, xc->offset);
    td_tensor *y = zeros64(ys, 3);
    for (int64_t q = 0; q < planes; q++)
        for (int64_t oy = 0; oy < OH; oy++)
            for (int64_t ox = 0; ox < OW; ox++) {
                int64_t y0, y1, x0, x1;
                if (kind == P_ADAPT) {
                    y0 = oy * H / OH, y1 = ((oy + 1) * H + OH - 1) / OH;
                    x0 = ox * W / OW, x1 = ((ox + 1) * W + OW - 1) / OW;
                } else {
                    y0 = oy * s[0] - p[0], y1 = y0 + k[0], x0 = ox * s[1] - p[1], x1 = x0 + k[1];
                }
                double m = -INFINITY, sum = 0;
                for (int64_t iy = y0; iy < y1; iy++)
                    for (int64_t ix = x0; ix < x1; ix++) {
                        if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
                        int64_t xi[3] = {q, iy, ix};
                        double v = td_get(xv, xi);
                        m = v > m ? v : m, sum += v;
                    }
                int64_t yi[3] = {q, oy, ox};
                td_set(y, yi, kind == P_MAX ? m : sum / (double)((y1 - y0) * (x1 - x0)));
            }
    int64_t os[TD_MAX_DIMS], ost[TD_MAX_DIMS], acc = 1;
    memcpy(os, x->shape, sizeof os);
    os[d - 2] = OH, os[d - 1] = OW;
    for (int i = d - 1; i >= 0; i--) ost[i] = acc, acc *= os[i];
    td_tensor *r = td_view_of(y, os, ost, d, 0);
    td_release(y), td_release(xv), td_release(xc);
    return r;
}

typedef struct pcfg {
    int kind, nd;
    int64_t shape[4], k[2], s[2], p[2];
} pcfg;

static const pcfg pools[] = {
    {P_MAX, 4, {2, 3, 6, 6}, {2, 2}, {2, 2}, {0, 0}},
    {P_MAX, 4, {2, 2, 7, 7}, {3, 3}, {2, 2}, {1, 1}},
    {P_MAX, 4, {1, 2, 5, 8}, {2, 3}, {1, 2}, {0, 1}},
    {P_MAX, 3, {3, 9, 9}, {3, 3}, {3, 3}, {0, 0}},
    {P_MAX, 4, {16, 32, 28, 28}, {2, 2}, {2, 2}, {0, 0}}, /* threaded */
    {P_AVG, 4, {2, 3, 6, 6}, {2, 2}, {2, 2}, {0, 0}},
    {P_AVG, 4, {2, 2, 7, 7}, {3, 3}, {2, 2}, {1, 1}},
    {P_AVG, 4, {1, 2, 5, 8}, {2, 3}, {2, 1}, {1, 1}},
    {P_AVG, 3, {2, 4, 4}, {4, 4}, {1, 1}, {2, 2}},
    {P_ADAPT, 4, {2, 3, 7, 7}, {3, 3}, {0, 0}, {0, 0}},
    {P_ADAPT, 4, {1, 2, 5, 9}, {2, 4}, {0, 0}, {0, 0}},
    {P_ADAPT, 3, {3, 4, 4}, {1, 1}, {0, 0}, {0, 0}},
    {P_ADAPT, 4, {1, 1, 3, 5}, {6, 7}, {0, 0}, {0, 0}}, /* larger than the input */
};

static const td_op *pool_op(int kind) {
    return kind == P_MAX   ? &td_op_max_pool2d
           : kind == P_AVG ? &td_op_avg_pool2d
                           : &td_op_adaptive_avg_pool2d;
}

static td_args pool_args(const pcfg *c) {
    td_args a = {0};
    int64_t s[6] = {c->k[0], c->k[1], c->s[0], c->s[1], c->p[0], c->p[1]};
    memcpy(a.sizes, s, sizeof s);
    a.nsizes = c->kind == P_ADAPT ? 2 : 6;
    return a;
}

Test(pool, pooling_matches_the_definition) {
    td_manual_seed(8);
    for (size_t ci = 0; ci < sizeof pools / sizeof pools[0]; ci++)
        for (int dt = TD_FLOAT32; dt <= TD_FLOAT64; dt++)
            for (int lay = 0; lay < L_NLAYOUTS; lay++) {
                const pcfg *c = &pools[ci];
                td_tensor *x = ref_rand(c->shape, c->nd, (td_dtype)dt, lay, -1, 1);
                td_args a = pool_args(c);
                td_tensor *y = td_apply1(pool_op(c->kind), x, &a);
                cr_assert_not_null(y, "pool cfg %zu: %s", ci, td_errmsg());
                td_tensor *r = ref_pool(x, c->kind, c->k, c->s, c->p);
                double d = ref_maxdiff(y, r), tol = dt == TD_FLOAT32 ? 1e-6 : 1e-13;
                cr_assert(d < tol, "pool cfg %zu %s %s: off by %g", ci, td_dtype_name((td_dtype)dt),
                          ref_layout_name[lay], d);
                td_release(x), td_release(y), td_release(r);
            }
}

Test(pool, pooling_gradients_match_finite_differences) {
    td_manual_seed(9);
    for (size_t ci = 0; ci < sizeof pools / sizeof pools[0]; ci++) {
        const pcfg *c = &pools[ci];
        if (c->shape[0] > 4) continue; /* the big one: finite differences would take long */
        td_tensor *x = ref_rand(c->shape, c->nd, TD_FLOAT64, L_CONTIG, -1, 1);
        td_args a = pool_args(c);
        double e = ref_gradcheck(pool_op(c->kind), &x, 1, &a);
        cr_assert(e < 1e-6, "pool cfg %zu: gradient off by %g", ci, e);
        td_release(x);
    }
}

Test(pool, max_pool_propagates_nan_and_routes_ties_to_one_position) {
    double v[8] = {1, NAN, 0, 2, 5, 5, 5, 5};
    int64_t sh[4] = {1, 2, 2, 2};
    td_tensor *x = td_from_data(v, sh, 4, TD_FLOAT64), *g[1];
    td_args a = {0};
    a.sizes[0] = a.sizes[1] = 2, a.nsizes = 2;
    td_tensor *y = td_apply1(&td_op_max_pool2d, x, &a);
    cr_assert(isnan(((double *)td_data(y))[0]) && ((double *)td_data(y))[1] == 5);
    int64_t ys[4] = {1, 2, 1, 1};
    td_tensor *gy = td_full(ys, 4, TD_FLOAT64, 1);
    grads_of(&td_op_max_pool2d, &x, 1, &a, gy, g);
    const double *p = td_data(g[0]);
    cr_assert(p[1] == 1 && p[0] + p[2] + p[3] == 0, "the NaN takes the gradient");
    cr_assert(p[4] + p[5] + p[6] + p[7] == 1, "one of the tied maxima takes it");
    td_release(x), td_release(y), td_release(gy), td_release(g[0]);
}

/* ---- errors -------------------------------------------------------------------------------- */

static const char *conv_error(const char *x, const char *w, const char *b, const cfg *c, bool tr) {
    int64_t xs[4], ws[4], bs[1];
    int nx = sscanf(x, "%ldx%ldx%ldx%ld", &xs[0], &xs[1], &xs[2], &xs[3]);
    int nw = sscanf(w, "%ldx%ldx%ldx%ld", &ws[0], &ws[1], &ws[2], &ws[3]);
    int nb = b ? sscanf(b, "%ld", &bs[0]) : 0;
    td_tensor *in[3] = {td_zeros(xs, nx, TD_FLOAT32), td_zeros(ws, nw, TD_FLOAT32),
                        nb ? td_zeros(bs, 1, TD_FLOAT32) : NULL};
    td_args a = conv_args(c);
    td_tensor *y = td_apply(tr ? &td_op_conv_transpose2d : &td_op_conv2d, in, nb ? 3 : 2, &a);
    cr_assert_null(y, "expected an error for input %s, weight %s", x, w);
    for (int i = 0; i < 3; i++) td_release(in[i]);
    return td_errmsg();
}

Test(conv, errors_name_the_op_the_shapes_and_the_expectation) {
    cfg c = {.sh = 1, .sw = 1, .dh = 1, .dw = 1, .G = 1};
    cr_assert_str_eq(conv_error("8x3x28x28", "32x1x3x3", NULL, &c, false),
                     "conv2d: input has 3 channels, weight expects 1 (input 8x3x28x28, weight "
                     "32x1x3x3)");
    cr_assert_str_eq(conv_error("3x28", "32x1x3x3", NULL, &c, false),
                     "conv2d: expected a 4-D input (N,C,H,W) or 3-D (C,H,W), got 3x28");
    cr_assert_str_eq(conv_error("1x1x2x2", "1x1x3x3", NULL, &c, false),
                     "conv2d: kernel 3x3 is larger than the padded input 2x2 (input 1x1x2x2, "
                     "weight 1x1x3x3, padding 0x0)");
    cr_assert_str_eq(conv_error("1x4x5x5", "6x4x3x3", "5", &c, false),
                     "conv2d: bias must be 1-D with 6 elements (the output channels), got 5");
    c.G = 3;
    cr_assert_str_eq(conv_error("1x4x5x5", "6x2x3x3", NULL, &c, false),
                     "conv2d: groups 3 must divide the input channels 4 (input 1x4x5x5, weight "
                     "6x2x3x3)");
    c.G = 2;
    cr_assert_str_eq(conv_error("1x4x5x5", "5x2x3x3", NULL, &c, false),
                     "conv2d: groups 2 must divide the weight's output channels 5 (weight "
                     "5x2x3x3)");
    cr_assert_str_eq(conv_error("1x4x5x5", "4x1x3x3", NULL, &c, false),
                     "conv2d: input has 4 channels, weight expects 2 (input 1x4x5x5, weight "
                     "4x1x3x3, groups 2)");
    c.G = 1;
    cr_assert_str_eq(conv_error("1x3x5x5", "4x1x3x3", NULL, &c, true),
                     "conv_transpose2d: input has 3 channels, weight expects 4 (input 1x3x5x5, "
                     "weight 4x1x3x3)");
    c.sh = 0;
    cr_assert_str_eq(conv_error("1x1x5x5", "1x1x3x3", NULL, &c, false),
                     "conv2d: stride must be positive, got 0x1");
    c.sh = 1, c.ph = 3;
    cr_assert_str_eq(conv_error("1x1x2x2", "1x1x3x3", NULL, &c, true),
                     "conv_transpose2d: the output would be -2x4: padding 3x0 is too large for "
                     "input 1x1x2x2 and weight 1x1x3x3");
}

Test(pool, errors_name_the_op_the_shapes_and_the_expectation) {
    int64_t sh[4] = {1, 1, 2, 2};
    td_tensor *x = td_zeros(sh, 4, TD_FLOAT32);
    td_args a = {0};
    a.sizes[0] = a.sizes[1] = 3, a.nsizes = 2;
    cr_assert_null(td_apply1(&td_op_max_pool2d, x, &a));
    cr_assert_str_eq(td_errmsg(), "max_pool2d: kernel 3x3 is larger than the padded input 2x2 "
                                  "(input 1x1x2x2, padding 0x0)");
    int64_t s6[6] = {2, 2, 1, 1, 2, 0};
    memcpy(a.sizes, s6, sizeof s6), a.nsizes = 6;
    cr_assert_null(td_apply1(&td_op_avg_pool2d, x, &a));
    cr_assert_str_eq(td_errmsg(), "avg_pool2d: padding 2x0 must be between 0 and half the "
                                  "kernel 2x2");
    td_release(x);
    int64_t s2[2] = {4, 4};
    x = td_zeros(s2, 2, TD_FLOAT32);
    a.nsizes = 2;
    cr_assert_null(td_apply1(&td_op_adaptive_avg_pool2d, x, &a));
    cr_assert_str_eq(td_errmsg(), "adaptive_avg_pool2d: expected a 4-D input (N,C,H,W) or 3-D "
                                  "(C,H,W), got 4x4");
    td_release(x);
}

Test(conv, an_interrupt_stops_the_kernels) {
    cfg c = convs[sizeof convs / sizeof convs[0] - 1];
    td_tensor *in[3];
    make_inputs(&c, false, TD_FLOAT32, L_CONTIG, in);
    td_args a = conv_args(&c);
    td_interrupted = 1;
    td_tensor *y = td_apply(&td_op_conv2d, in, 3, &a);
    td_interrupted = 0;
    cr_assert_null(y);
    cr_assert_str_eq(td_errmsg(), "interrupted!");
    for (int i = 0; i < 3; i++) td_release(in[i]);
}
