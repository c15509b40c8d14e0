/* tensor/ops/conv.c: conv2d and conv_transpose2d in PyTorch's layouts, as im2col (conv_cols.c)
 * and one GEMM per image and group. Sizes: N batch, C input channels (x: N x C x H x W), K output
 * channels (y: N x K x OH x OW), KH x KW kernel, G groups (Cg = C/G, Kg = K/G); conv2d's weight
 * is K x Cg x KH x KW, conv_transpose2d's C x Kg x KH x KW. float32 runs on sgemm.c's AVX-512
 * kernels (about 2x OpenBLAS's AVX2 ones here), float64 on OpenBLAS. Images run side by side on
 * the threads when the batch splits evenly, else one after another with each product split
 * over the threads; the weight gradient sums fixed runs of images, then the runs in order, so
 * results never depend on the thread count. */
#include "conv.h"

#include <cblas.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

/* td_args layout (vm/ops.c SIG_CONV fills it): sizes = {stride h, w, padding h, w, dilation h,
 * w, output_padding h, w}, step = groups. nsizes == 0 means every default (a C caller's {0}). */
typedef struct params {
    int64_t sh, sw, ph, pw, dh, dw, oph, opw, groups;
} params;

/* C (M x N, ld N) = op(A) op(B) + beta C, row-major; ta: A is stored K x M */
static void gemm(const conv *c, bool ta, bool tb, int64_t M, int64_t N, int64_t K, const char *A,
                 int64_t lda, const char *B, int64_t ldb, double beta, char *C) {
    CBLAS_TRANSPOSE a = ta ? CblasTrans : CblasNoTrans, b = tb ? CblasTrans : CblasNoTrans;
    if (c->dt == TD_FLOAT32)
        cblas_sgemm(CblasRowMajor, a, b, (blasint)M, (blasint)N, (blasint)K, 1.0f, (const float *)A,
                    (blasint)lda, (const float *)B, (blasint)ldb, (float)beta, (float *)C,
                    (blasint)N);
    else
        cblas_dgemm(CblasRowMajor, a, b, (blasint)M, (blasint)N, (blasint)K, 1.0, (const double *)A,
                    (blasint)lda, (const double *)B, (blasint)ldb, beta, (double *)C, (blasint)N);
}

/* ---- per-image work ------------------------------------------------------------------------ */

static const char *xof(const conv *c, int64_t i, int64_t g) { /* x[i, g*Cg] */
    return c->x + ((i * c->C + g * c->Cg) * c->H * c->W) * c->es;
}
static int64_t yspatial(const conv *c) {
    return c->OH * c->OW;
}

/* y[i] from x[i]; col: one column matrix of scratch */
static void forward_image(const conv *c, int64_t i, char *col) {
    size_t es = c->es;
    int64_t S = yspatial(c);
    char *y = c->y + i * c->K * S * es;
    double beta = c->b ? 1 : 0;
    if (c->b)
        td_conv_fill_rows(c, y, S);
    else if (c->tr && !c->direct)
        memset(y, 0, (size_t)(c->K * S) * es); /* col2im adds */
    for (int64_t g = 0; g < c->G; g++) {
        const char *xg = xof(c, i, g), *wg = c->w + g * c->wg * es;
        if (!c->tr) { /* y_g (Kg x L) = W_g (Kg x ckk) cols (ckk x L) */
            const char *m = xg;
            if (!c->direct) td_conv_im2col(c, col, xg), m = col;
            gemm(c, false, false, c->Kg, c->L, c->ckk, wg, c->ckk, m, c->L, beta,
                 y + g * c->Kg * S * es);
        } else if (c->direct) { /* y_g (Kg x HW) = W_g^T (Kg x Cg) x_g (Cg x HW) */
            gemm(c, true, false, c->ckk, c->L, c->Cg, wg, c->ckk, xg, c->L, beta,
                 y + g * c->Kg * S * es);
        } else { /* cols (ckk x HW) = W_g^T x_g, added into y_g */
            gemm(c, true, false, c->ckk, c->L, c->Cg, wg, c->ckk, xg, c->L, 0, col);
            td_conv_col2im(c, y + g * c->Kg * S * es, col);
        }
    }
}

/* part p of the backward: its images' input gradients, and its partial weight and bias
 * gradients (summed over the parts in order afterwards, so results do not depend on threads) */
static void backward_part(const conv *c, int64_t p, char *scratch) {
    size_t es = c->es;
    int64_t i0 = p * c->N / c->P, i1 = (p + 1) * c->N / c->P, S = yspatial(c);
    int64_t HW = c->H * c->W, colsz = c->ckk * c->L;
    char *gw = c->gwp ? c->gwp + (size_t)(p * c->wg * c->G) * es : NULL;
    double *gb = c->gbp ? c->gbp + p * c->K : NULL;
    char *col = scratch, *dcol = scratch + (size_t)colsz * es;
    for (int64_t i = i0; i < i1; i++) {
        const char *gy = c->gy + i * c->K * S * es;
        double beta = i > i0;
        if (gb) td_conv_sum_rows(c, gb, gy, S);
        for (int64_t g = 0; g < c->G; g++) {
            const char *xg = xof(c, i, g), *wg = c->w + g * c->wg * es;
            const char *gyg = gy + g * c->Kg * S * es;
            char *gxg = c->gx ? c->gx + ((i * c->C + g * c->Cg) * HW) * es : NULL;
            char *gwg = gw ? gw + g * c->wg * es : NULL;
            if (!c->tr) {
                const char *m = xg;
                if (gwg && !c->direct) td_conv_im2col(c, col, xg), m = col;
                if (gwg) /* gW_g (Kg x ckk) += gy_g (Kg x L) cols^T */
                    gemm(c, false, true, c->Kg, c->ckk, c->L, gyg, c->L, m, c->L, beta, gwg);
                if (gxg && c->direct) /* gx_g = W_g^T gy_g */
                    gemm(c, true, false, c->ckk, c->L, c->Kg, wg, c->ckk, gyg, c->L, 0, gxg);
                else if (gxg) {
                    gemm(c, true, false, c->ckk, c->L, c->Kg, wg, c->ckk, gyg, c->L, 0, dcol);
                    memset(gxg, 0, (size_t)(c->Cg * HW) * es);
                    td_conv_col2im(c, gxg, dcol);
                }
            } else if (gxg || gwg) { /* the columns of gy_g drive both: conv2d's forward */
                const char *m = gyg;
                if (!c->direct) td_conv_im2col(c, col, gyg), m = col;
                if (gxg) /* gx_g (Cg x HW) = W_g (Cg x ckk) cols */
                    gemm(c, false, false, c->Cg, c->L, c->ckk, wg, c->ckk, m, c->L, 0, gxg);
                if (gwg) /* gW_g (Cg x ckk) += x_g (Cg x HW) cols^T */
                    gemm(c, false, true, c->Cg, c->ckk, c->L, xg, c->L, m, c->L, beta, gwg);
            }
        }
    }
}

/* ---- float32 on sgemm.c's packed kernels ------------------------------------------------------
 * The same products as above, with operands packed for the kernels: the weights once per call
 * (c->wn, c->wt), the rest per image into the thread's scratch; im2col writes its columns
 * straight into packed form, as B (ckk x L) or as B transposed (L x ckk, for weight gradients). */

typedef struct fparts {
    float *a, *b, *bt, *d, *row; /* A (K = L), B (N = L), B^T of the columns, columns, 16 rows */
} fparts;

static int64_t imax(int64_t a, int64_t b) {
    return a > b ? a : b;
}

static size_t fast_sizes(const conv *c, int64_t *n) { /* floats of each part, and the total */
    n[0] = td_sgemm_asize(imax(c->Kg, c->Cg), c->L);
    n[1] = td_sgemm_bsize(imax(c->ckk, imax(c->Kg, c->Cg)), c->L);
    n[2] = td_sgemm_bsize(c->L, c->ckk);
    n[3] = c->ckk * c->L, n[4] = 16 * c->L;
    size_t t = 0;
    for (int k = 0; k < 5; k++) t += (size_t)(n[k] + 15) / 16 * 16; /* 64-byte aligned parts */
    return t * sizeof(float);
}

static fparts fast_parts(const conv *c, char *scratch) {
    int64_t n[5];
    fast_sizes(c, n);
    float *q[5], *f = (float *)scratch;
    for (int k = 0; k < 5; k++) q[k] = f, f += (n[k] + 15) / 16 * 16;
    return (fparts){q[0], q[1], q[2], q[3], q[4]};
}

static const float *wpk(const conv *c, bool trans, int64_t g) { /* group g's packed weights */
    return trans ? c->wt + g * td_sgemm_asize(c->ckk, c->wrows)
                 : c->wn + g * td_sgemm_asize(c->wrows, c->ckk);
}

static void fast_forward_image(const conv *c, int64_t i, char *scratch) {
    fparts s = fast_parts(c, scratch);
    int64_t S = yspatial(c), L = c->L;
    float *y = (float *)c->y + i * c->K * S;
    const float *bias = (const float *)c->b;
    if (c->tr && !c->direct) { /* col2im adds into y */
        if (bias)
            td_conv_fill_rows(c, (char *)y, S);
        else
            memset(y, 0, sizeof(float) * (size_t)(c->K * S));
    }
    for (int64_t g = 0; g < c->G; g++) {
        const float *xg = (const float *)xof(c, i, g);
        float *yg = y + g * c->Kg * S;
        if (!c->tr) { /* y_g = W_g cols */
            if (c->direct)
                td_sgemm_pack_b(s.b, xg, L, 1, c->ckk, L);
            else
                td_conv_im2col_b(c, s.b, xg, false, s.row);
            td_sgemm_packed(c->Kg, L, c->ckk, wpk(c, false, g), s.b, yg, L, false,
                            bias ? bias + g * c->Kg : NULL, c->inner);
            continue;
        }
        td_sgemm_pack_b(s.b, xg, L, 1, c->Cg, L); /* cols = W_g^T x_g, added into y_g */
        if (c->direct)
            td_sgemm_packed(c->ckk, L, c->Cg, wpk(c, true, g), s.b, yg, L, false,
                            bias ? bias + g * c->Kg : NULL, c->inner);
        else {
            td_sgemm_packed(c->ckk, L, c->Cg, wpk(c, true, g), s.b, s.d, L, false, NULL, c->inner);
            td_conv_col2im(c, (char *)yg, (char *)s.d);
        }
    }
}

static void fast_backward_part(const conv *c, int64_t p, char *scratch) {
    fparts s = fast_parts(c, scratch);
    int64_t i0 = p * c->N / c->P, i1 = (p + 1) * c->N / c->P, S = yspatial(c), L = c->L;
    int64_t HW = c->H * c->W, ckk = c->ckk;
    float *gw = c->gwp ? (float *)c->gwp + p * c->wg * c->G : NULL;
    double *gb = c->gbp ? c->gbp + p * c->K : NULL;
    for (int64_t i = i0; i < i1; i++) {
        const float *gy = (const float *)c->gy + i * c->K * S;
        bool acc = i > i0;
        if (gb) td_conv_sum_rows(c, gb, (const char *)gy, S);
        for (int64_t g = 0; g < c->G; g++) {
            const float *xg = (const float *)xof(c, i, g), *gyg = gy + g * c->Kg * S;
            float *gxg = c->gx ? (float *)c->gx + (i * c->C + g * c->Cg) * HW : NULL;
            float *gwg = gw ? gw + g * c->wg : NULL;
            if (!c->tr) {
                if (gwg) { /* gW_g += gy_g cols^T */
                    td_sgemm_pack_a(s.a, gyg, L, 1, c->Kg, L);
                    if (c->direct)
                        td_sgemm_pack_b(s.bt, xg, 1, L, L, ckk);
                    else
                        td_conv_im2col_b(c, s.bt, xg, true, s.row);
                    td_sgemm_packed(c->Kg, ckk, L, s.a, s.bt, gwg, ckk, acc, NULL, c->inner);
                }
                if (gxg) { /* gx_g = td_conv_col2im(W_g^T gy_g) */
                    td_sgemm_pack_b(s.b, gyg, L, 1, c->Kg, L);
                    float *d = c->direct ? gxg : s.d;
                    td_sgemm_packed(ckk, L, c->Kg, wpk(c, true, g), s.b, d, L, false, NULL,
                                    c->inner);
                    if (!c->direct) {
                        memset(gxg, 0, sizeof(float) * (size_t)(c->Cg * HW));
                        td_conv_col2im(c, (char *)gxg, (char *)s.d);
                    }
                }
                continue;
            }
            if (gxg) { /* gx_g = W_g cols(gy_g) */
                if (c->direct)
                    td_sgemm_pack_b(s.b, gyg, L, 1, ckk, L);
                else
                    td_conv_im2col_b(c, s.b, gyg, false, s.row);
                td_sgemm_packed(c->Cg, L, ckk, wpk(c, false, g), s.b, gxg, L, false, NULL,
                                c->inner);
            }
            if (gwg) { /* gW_g += x_g cols(gy_g)^T */
                td_sgemm_pack_a(s.a, xg, L, 1, c->Cg, L);
                if (c->direct)
                    td_sgemm_pack_b(s.bt, gyg, 1, L, L, ckk);
                else
                    td_conv_im2col_b(c, s.bt, gyg, true, s.row);
                td_sgemm_packed(c->Cg, ckk, L, s.a, s.bt, gwg, ckk, acc, NULL, c->inner);
            }
        }
    }
}

/* Packs every group's weight block as A, as stored (rows x ckk) or transposed, into dst. */
static void pack_weights(const conv *c, float *dst, bool trans) {
    const float *w = (const float *)c->w;
    for (int64_t g = 0; g < c->G; g++, w += c->wg)
        if (trans)
            td_sgemm_pack_a(dst + g * td_sgemm_asize(c->ckk, c->wrows), w, 1, c->ckk, c->ckk,
                            c->wrows);
        else
            td_sgemm_pack_a(dst + g * td_sgemm_asize(c->wrows, c->ckk), w, c->ckk, 1, c->wrows,
                            c->ckk);
}

/* Threads for `units` equal pieces of work: all of them when the units split evenly (or are
 * many), else 1 (each GEMM then runs on OpenBLAS's threads). Small work stays on one thread:
 * entering a parallel region costs microseconds. */
static int threads_for(int64_t units, double flops) {
    int nt = td_get_num_threads();
    if (nt < 2 || units < nt || flops < 4e6) return 1;
    if (units % nt != 0 && units < 4 * nt) return 1;
    return nt;
}

typedef void (*unit_fn)(const conv *c, int64_t u, char *scratch);

static void run_units(const conv *c, int64_t units, int nt, unit_fn f, char *scratch, size_t per) {
    if (nt < 2) {
        for (int64_t u = 0; u < units && !td_interrupted; u++) f(c, u, scratch);
        return;
    }
#pragma omp parallel num_threads(nt)
    {
#ifdef _OPENMP
        char *s = scratch + (size_t)omp_get_thread_num() * per;
#else
        char *s = scratch;
#endif
#pragma omp for schedule(static)
        for (int64_t u = 0; u < units; u++)
            if (!td_interrupted) f(c, u, s);
    }
}

/* ---- shapes -------------------------------------------------------------------------------- */

static int read_params(const td_node *n, params *p) {
    const td_args *a = &n->args;
    const char *fn = n->op->name;
    *p = (params){1, 1, 0, 0, 1, 1, 0, 0, a->step > 0 ? a->step : 1};
    if (a->nsizes == 0) return 0;
    if (a->nsizes != 8)
        return td_error("%s: expected 8 sizes in the arguments, got %d", fn, a->nsizes);
    const int64_t *s = a->sizes;
    *p = (params){s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7], a->step};
    if (p->sh < 1 || p->sw < 1)
        return td_error("%s: stride must be positive, got %lldx%lld", fn, (long long)p->sh,
                        (long long)p->sw);
    if (p->ph < 0 || p->pw < 0)
        return td_error("%s: padding must be >= 0, got %lldx%lld", fn, (long long)p->ph,
                        (long long)p->pw);
    if (p->dh < 1 || p->dw < 1)
        return td_error("%s: dilation must be positive, got %lldx%lld", fn, (long long)p->dh,
                        (long long)p->dw);
    if (p->groups < 1)
        return td_error("%s: groups must be positive, got %lld", fn, (long long)p->groups);
    if (n->op != &td_op_conv_transpose2d && (p->oph || p->opw))
        return td_error("%s: output_padding is an option of conv_transpose2d", fn);
    if (p->oph < 0 || p->opw < 0 || (p->oph >= p->sh && p->oph >= p->dh) ||
        (p->opw >= p->sw && p->opw >= p->dw))
        return td_error("%s: output_padding %lldx%lld must be smaller than the stride or the "
                        "dilation (stride %lldx%lld, dilation %lldx%lld)",
                        fn, (long long)p->oph, (long long)p->opw, (long long)p->sh,
                        (long long)p->sw, (long long)p->dh, (long long)p->dw);
    return 0;
}

#define SHP(t, buf) td_shape_str((t)->shape, (t)->ndim, buf, sizeof buf)

/* Checks the inputs and fills c's sizes (no data pointers); 0 or -1 + error. */
static int conv_plan(const td_node *n, conv *c) {
    const char *fn = n->op->name;
    bool tr = n->op == &td_op_conv_transpose2d;
    char sx[96], sw[96], sb[96];
    params p;
    if (n->nin != 2 && n->nin != 3)
        return td_error("%s: expected 2 or 3 inputs (input, weight[, bias]), got %d", fn, n->nin);
    td_tensor *x = n->in[0], *w = n->in[1], *b = n->nin == 3 ? n->in[2] : NULL;
    if (x->ndim != 3 && x->ndim != 4)
        return td_error("%s: expected a 4-D input (N,C,H,W) or 3-D (C,H,W), got %s", fn,
                        SHP(x, sx));
    if (w->ndim != 4)
        return td_error(tr ? "%s: expected a 4-D weight (in, out/groups, kh, kw), got %s"
                           : "%s: expected a 4-D weight (out, in/groups, kh, kw), got %s",
                        fn, SHP(w, sw));
    if (x->dtype != TD_FLOAT32 && x->dtype != TD_FLOAT64)
        return td_error("%s: expected a float32 or float64 input, got %s", fn,
                        td_dtype_name(x->dtype));
    if (w->dtype != x->dtype || (b && b->dtype != x->dtype))
        return td_error("%s: input, weight and bias must have one dtype, got %s, %s%s%s", fn,
                        td_dtype_name(x->dtype), td_dtype_name(w->dtype), b ? " and " : "",
                        b ? td_dtype_name(b->dtype) : "");
    if (read_params(n, &p) < 0) return -1;
    bool b4 = x->ndim == 4;
    *c = (conv){.dt = x->dtype, .es = td_dtype_size(x->dtype), .tr = tr, .G = p.groups};
    c->N = b4 ? x->shape[0] : 1, c->C = x->shape[b4], c->H = x->shape[b4 + 1];
    c->W = x->shape[b4 + 2];
    int64_t G = p.groups, KH = w->shape[2], KW = w->shape[3];
    int64_t wc = tr ? w->shape[0] : w->shape[1] * G; /* the input channels w expects */
    if (w->shape[0] % G != 0)
        return td_error("%s: groups %lld must divide the weight's %s channels %lld (weight %s)", fn,
                        (long long)G, tr ? "input" : "output", (long long)w->shape[0], SHP(w, sw));
    if (!tr && c->C % G != 0)
        return td_error("%s: groups %lld must divide the input channels %lld (input %s, weight %s)",
                        fn, (long long)G, (long long)c->C, SHP(x, sx), SHP(w, sw));
    if (c->C != wc) {
        char gs[48] = "";
        if (G > 1) snprintf(gs, sizeof gs, ", groups %lld", (long long)G);
        return td_error("%s: input has %lld channels, weight expects %lld (input %s, weight %s%s)",
                        fn, (long long)c->C, (long long)wc, SHP(x, sx), SHP(w, sw), gs);
    }
    c->K = tr ? w->shape[1] * G : w->shape[0];
    c->Cg = c->C / G, c->Kg = c->K / G;
    if (b && (b->ndim != 1 || b->shape[0] != c->K))
        return td_error("%s: bias must be 1-D with %lld elements (the output channels), got %s", fn,
                        (long long)c->K, SHP(b, sb));
    int64_t ekh = (KH - 1) * p.dh + 1, ekw = (KW - 1) * p.dw + 1; /* the dilated kernel */
    if (!tr) {
        if (ekh > c->H + 2 * p.ph || ekw > c->W + 2 * p.pw)
            return td_error("%s: kernel %lldx%lld%s is larger than the padded input %lldx%lld "
                            "(input %s, weight %s, padding %lldx%lld)",
                            fn, (long long)ekh, (long long)ekw,
                            p.dh > 1 || p.dw > 1 ? " (dilated)" : "", (long long)(c->H + 2 * p.ph),
                            (long long)(c->W + 2 * p.pw), SHP(x, sx), SHP(w, sw), (long long)p.ph,
                            (long long)p.pw);
        c->OH = (c->H + 2 * p.ph - ekh) / p.sh + 1;
        c->OW = (c->W + 2 * p.pw - ekw) / p.sw + 1;
        c->g = (geom){c->Cg, c->H, c->W, KH, KW, c->OH, c->OW, p.sh, p.sw, p.ph, p.pw, p.dh, p.dw};
    } else {
        c->OH = (c->H - 1) * p.sh - 2 * p.ph + ekh + p.oph;
        c->OW = (c->W - 1) * p.sw - 2 * p.pw + ekw + p.opw;
        if (c->OH < 1 || c->OW < 1)
            return td_error("%s: the output would be %lldx%lld: padding %lldx%lld is too large "
                            "for input %s and weight %s",
                            fn, (long long)c->OH, (long long)c->OW, (long long)p.ph,
                            (long long)p.pw, SHP(x, sx), SHP(w, sw));
        c->g = (geom){c->Kg, c->OH, c->OW, KH, KW, c->H, c->W, p.sh, p.sw, p.ph, p.pw, p.dh, p.dw};
    }
    c->ckk = c->g.ci * KH * KW, c->L = c->g.oh * c->g.ow;
    c->wg = w->shape[0] / G * w->shape[1] * KH * KW;
    c->direct = KH == 1 && KW == 1 && p.sh == 1 && p.sw == 1 && p.ph == 0 && p.pw == 0;
    if (c->ckk > INT_MAX || c->L > INT_MAX || c->K > INT_MAX || c->C > INT_MAX)
        return td_error("%s: sizes above 2^31 are not supported (input %s, weight %s)", fn,
                        SHP(x, sx), SHP(w, sw));
    return 0;
}

static int conv_shape(td_node *n) {
    conv c;
    if (conv_plan(n, &c) < 0) return -1;
    td_meta *m = &n->meta[0];
    bool b4 = n->in[0]->ndim == 4;
    m->ndim = 0;
    if (b4) m->shape[m->ndim++] = c.N;
    m->shape[m->ndim++] = c.K, m->shape[m->ndim++] = c.OH, m->shape[m->ndim++] = c.OW;
    m->dtype = c.dt;
    return 0;
}

/* ---- forward and backward ------------------------------------------------------------------ */

/* contiguous versions of the inputs (new refs in d[]); false + error */
static bool dense(td_node *n, td_tensor **d) {
    for (int i = 0; i < n->nin; i++)
        if (!(d[i] = td_contiguous(n->in[i]))) return false;
    return true;
}

/* scratch from the storage cache, so that a training loop reuses the same pages; NULL + error */
static char *scratch_of(size_t bytes, td_storage **keep) {
    *keep = td_storage_new(bytes ? bytes : 64);
    return *keep ? (*keep)->data : NULL;
}

/* Whether the products go through sgemm.c (float32 on AVX-512), and on how many threads each:
 * all of them when images run one after another and the work is big enough. */
static void use_fast(conv *c, int nt, double flops) {
    c->fast = c->dt == TD_FLOAT32 && td_sgemm_available();
    c->inner = nt == 1 && flops >= 4e6 ? td_get_num_threads() : 1;
}

/* per-thread scratch bytes, plus (fast) room for the packed weights: set up c->wn or c->wt */
static size_t plan_scratch(conv *c, bool back, size_t *wbytes) {
    c->wrows = c->tr ? c->Cg : c->Kg;
    *wbytes = 0;
    if (!c->fast) {
        size_t col = c->direct ? 0 : (size_t)(c->ckk * c->L) * c->es;
        return ((back ? 2 : 1) * col + 63) / 64 * 64;
    }
    int64_t nn[5];
    int64_t wf = imax(td_sgemm_asize(c->wrows, c->ckk), td_sgemm_asize(c->ckk, c->wrows));
    *wbytes = ((size_t)(c->G * wf) * sizeof(float) + 63) / 64 * 64;
    return fast_sizes(c, nn);
}

static int conv_forward(td_node *n) {
    conv c;
    td_tensor *d[3] = {0};
    td_storage *keep = NULL;
    char *scratch = NULL;
    int rc = -1;
    if (conv_plan(n, &c) < 0 || !dense(n, d)) goto done;
    c.x = td_data(d[0]), c.w = td_data(d[1]), c.b = d[2] ? td_data(d[2]) : NULL;
    c.y = td_data(n->out[0]);
    if (td_numel(n->out[0]) == 0) {
        rc = 0;
        goto done;
    }
    if (c.C == 0 || c.x == NULL) { /* no input channels: y is the bias (or zero) */
        for (int64_t i = 0; i < c.N; i++)
            if (c.b)
                td_conv_fill_rows(&c, c.y + i * c.K * yspatial(&c) * c.es, yspatial(&c));
            else
                memset(c.y + i * c.K * yspatial(&c) * c.es, 0, (size_t)(c.K * yspatial(&c)) * c.es);
        rc = 0;
        goto done;
    }
    double flops = 2.0 * (double)c.N * (double)(c.K * c.L) * (double)c.ckk;
    int nt = threads_for(c.N, flops);
    use_fast(&c, nt, flops);
    size_t wbytes, per = plan_scratch(&c, false, &wbytes);
    if (!(scratch = scratch_of(per * (size_t)nt + wbytes, &keep))) goto done;
    if (c.fast) { /* conv2d multiplies by W_g, the transposed convolution by W_g^T */
        float *wp = (float *)(scratch + per * (size_t)nt);
        pack_weights(&c, wp, c.tr);
        *(c.tr ? &c.wt : &c.wn) = wp;
    }
    run_units(&c, c.N, nt, c.fast ? fast_forward_image : forward_image, scratch, per);
    rc = td_poll_interrupt();
done:
    td_storage_release(keep);
    for (int i = 0; i < 3; i++) td_release(d[i]);
    return rc;
}

static int conv_backward(td_node *n, td_tensor *const *gout, td_tensor **gin) {
    conv c;
    td_tensor *d[3] = {0}, *gy = NULL, *gyc = NULL, *gx = NULL, *gw = NULL, *gb = NULL;
    td_storage *keep = NULL;
    char *scratch = NULL;
    int rc = -1;
    if (conv_plan(n, &c) < 0 || !dense(n, d)) goto done;
    if (!(gyc = td_to_dtype(gout[0], c.dt)) || !(gy = td_contiguous(gyc))) goto done;
    td_tensor *x = n->in[0], *w = n->in[1];
    bool want_b = n->nin == 3 && n->needs_grad[2];
    if (n->needs_grad[0] && !(gx = td_empty(x->shape, x->ndim, c.dt))) goto done;
    if (n->needs_grad[1] && !(gw = td_zeros(w->shape, w->ndim, c.dt))) goto done;
    if (want_b && !(gb = td_zeros(&c.K, 1, c.dt))) goto done;
    c.x = td_data(d[0]), c.w = td_data(d[1]), c.gy = td_data(gy);
    c.gx = gx ? td_data(gx) : NULL;
    if (gx && td_numel(gx) > 0 && (c.K == 0 || c.N == 0 || td_numel(gy) == 0))
        memset(c.gx, 0, (size_t)td_numel(gx) * c.es);
    if (c.N > 0 && c.C > 0 && c.K > 0 && td_numel(gy) > 0) {
        /* P parts, fixed by N and the weight's size (never by the thread count) */
        int64_t wsz = c.wg * c.G, P = c.N < 16 ? c.N : 16;
        while (P > 1 && (double)P * (double)wsz * (double)c.es > 64e6) P /= 2;
        if (!gw && !gb) P = c.N; /* no partial sums: one image per part */
        c.P = P;
        double flops = 2.0 * (double)c.N * (double)(c.Kg * c.L) * (double)c.ckk * (double)c.G;
        int nt = threads_for(P, flops);
        use_fast(&c, nt, flops);
        size_t wbytes, per = plan_scratch(&c, true, &wbytes);
        size_t pw = gw ? ((size_t)(P * wsz) * c.es + 63) / 64 * 64 : 0;
        size_t pb = gb ? (size_t)(P * c.K) * sizeof(double) : 0;
        if (!gx) wbytes = 0; /* the packed weights serve the input gradient only */
        if (!(scratch = scratch_of(per * (size_t)nt + wbytes + pw + pb, &keep))) goto done;
        char *q = scratch + per * (size_t)nt;
        if (wbytes) { /* conv2d's input gradient multiplies by W_g^T, the transposed one's by W_g */
            pack_weights(&c, (float *)q, !c.tr);
            *(c.tr ? &c.wn : &c.wt) = (const float *)q;
        }
        c.gwp = gw ? q + wbytes : NULL;
        c.gbp = gb ? (double *)(q + wbytes + pw) : NULL;
        if (c.gbp) memset(c.gbp, 0, pb);
        run_units(&c, P, nt, c.fast ? fast_backward_part : backward_part, scratch, per);
        if (td_poll_interrupt() < 0) goto done;
        for (int64_t p = 0; gw && p < P; p++) { /* the parts' sums, in order */
            if (c.dt == TD_FLOAT32) {
                float *o = td_data(gw);
                const float *s = (const float *)c.gwp + p * wsz;
                for (int64_t k = 0; k < wsz; k++) o[k] += s[k];
            } else {
                double *o = td_data(gw);
                const double *s = (const double *)c.gwp + p * wsz;
                for (int64_t k = 0; k < wsz; k++) o[k] += s[k];
            }
        }
        for (int64_t k = 0; gb && k < c.K; k++) {
            double s = 0;
            for (int64_t p = 0; p < P; p++) s += c.gbp[p * c.K + k];
            if (c.dt == TD_FLOAT32)
                ((float *)td_data(gb))[k] = (float)s;
            else
                ((double *)td_data(gb))[k] = s;
        }
    }
    gin[0] = gx, gin[1] = gw;
    if (n->nin == 3) gin[2] = gb;
    gx = gw = gb = NULL;
    rc = 0;
done:
    td_storage_release(keep);
    for (int i = 0; i < 3; i++) td_release(d[i]);
    td_release(gy), td_release(gyc), td_release(gx), td_release(gw), td_release(gb);
    return rc;
}

const td_op td_op_conv2d = {
    .name = "conv2d",
    .nin = 3,
    .flags = TD_VARIN,
    .doc = "2-D convolution of N x C x H x W by out x C/groups x kh x kw, optional bias, "
           "{stride, padding, dilation, groups}",
    .shape = conv_shape,
    .forward = conv_forward,
    .backward = conv_backward,
};

const td_op td_op_conv_transpose2d = {
    .name = "conv_transpose2d",
    .nin = 3,
    .flags = TD_VARIN,
    .doc = "transposed 2-D convolution (conv2d's gradient) by in x out/groups x kh x kw, "
           "optional bias, {stride, padding, output_padding, dilation, groups}",
    .shape = conv_shape,
    .forward = conv_forward,
    .backward = conv_backward,
};
