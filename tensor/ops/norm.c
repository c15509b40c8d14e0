/* tensor/ops/norm.c: layer_norm and batch_norm, fused forward and backward. Sizes: layer_norm
 * sees x as R rows of D normalised elements (D = the product of normalized_shape); batch_norm
 * sees x as N x C x S (S = the product of the dims after the channels, 1 for N x C) and
 * normalises each channel over its M = N*S elements. Inputs are packed {x, weight if has_a,
 * bias if has_b}; eps is args.c. Forward saves mean and 1/std per row or channel in n->ctx. */
#include "nn.h"

#include <stdio.h>
#include <string.h>
#include <tgmath.h>

#define CB 32 /* columns (layer_norm) or channels (batch_norm with small S) per unit */

static int win(const td_node *n) { return n->args.has_a ? 1 : -1; }
static int bin(const td_node *n) { return n->args.has_b ? 1 + n->args.has_a : -1; }

static td_tensor *param(const td_node *n, int i, td_dtype dt, td_tensor **keep) {
    *keep = NULL;
    if (i < 0) return NULL;
    return *keep = td_dense_as(n->in[i], dt);
}

/* the packed inputs agree with has_a/has_b, x is float; -1 + error otherwise */
static int check_inputs(const td_node *n, const char *fn) {
    if (n->nin != 1 + n->args.has_a + n->args.has_b)
        return td_error("%s: expected %d inputs (x, weight, bias as flagged), got %d", fn,
                        1 + n->args.has_a + n->args.has_b, n->nin);
    for (int i = 0; i < n->nin; i++)
        if (!td_dtype_is_float(n->in[i]->dtype))
            return td_error("%s: expected float %s, got %s", fn,
                            i == 0 ? "input" : i == win(n) ? "weight" : "bias",
                            td_dtype_name(n->in[i]->dtype));
    return 0;
}

/* ---- layer_norm ------------------------------------------------------------------------- */
typedef struct lnjob {
    void *out;                  /* y (forward) or dx (backward), R x D */
    const void *x, *w, *b, *g;  /* w, b may be NULL; g: backward's gradient */
    const double *stat;         /* mean[R] then rstd[R] */
    double *mean, *rstd;        /* forward writes them */
    double *gw, *gb;            /* backward column sums [D] (NULL: not wanted) */
    int64_t R, D;
    double eps;
} lnjob;

/* Forward: y = (x - mean) * rstd * w + b per row. Backward per row: dx = rstd * (dh - mean(dh)
 * - xh * mean(dh * xh)) with xh = (x - mean) * rstd, dh = g * w; per column block: gw = sum
 * g * xh, gb = sum g over the rows (one unit owns its columns: no races, fixed order). */
#define LN(sfx, T)                                                                                 \
    static void ln_fwd_##sfx(void *vj, int64_t r) {                                                \
        const lnjob *j = vj;                                                                       \
        int64_t D = j->D;                                                                          \
        const T *x = (const T *)j->x + r * D, *w = j->w, *b = j->b;                                \
        T *y = (T *)j->out + r * D, s = 0, v = 0;                                                  \
        _Pragma("omp simd reduction(+ : s)") for (int64_t d = 0; d < D; d++) s += x[d];            \
        T mu = s / (T)D;                                                                           \
        _Pragma("omp simd reduction(+ : v)") for (int64_t d = 0; d < D; d++) {                     \
            T c = x[d] - mu;                                                                       \
            v += c * c;                                                                            \
        }                                                                                          \
        T rs = 1 / sqrt(v / (T)D + (T)j->eps);                                                     \
        j->mean[r] = (double)mu, j->rstd[r] = (double)rs;                                          \
        if (w && b)                                                                                \
            for (int64_t d = 0; d < D; d++) y[d] = (x[d] - mu) * rs * w[d] + b[d];                 \
        else if (w)                                                                                \
            for (int64_t d = 0; d < D; d++) y[d] = (x[d] - mu) * rs * w[d];                        \
        else if (b)                                                                                \
            for (int64_t d = 0; d < D; d++) y[d] = (x[d] - mu) * rs + b[d];                        \
        else                                                                                       \
            for (int64_t d = 0; d < D; d++) y[d] = (x[d] - mu) * rs;                               \
    }                                                                                              \
    static void ln_bwd_##sfx(void *vj, int64_t r) {                                                \
        const lnjob *j = vj;                                                                       \
        int64_t D = j->D;                                                                          \
        const T *x = (const T *)j->x + r * D, *g = (const T *)j->g + r * D, *w = j->w;             \
        T *dx = (T *)j->out + r * D, mu = (T)j->stat[r], rs = (T)j->stat[j->R + r], a = 0, c = 0;  \
        if (w) {                                                                                   \
            _Pragma("omp simd reduction(+ : a, c)") for (int64_t d = 0; d < D; d++) {              \
                T dh = g[d] * w[d];                                                                \
                a += dh, c += dh * (x[d] - mu);                                                    \
            }                                                                                      \
        } else {                                                                                   \
            _Pragma("omp simd reduction(+ : a, c)") for (int64_t d = 0; d < D; d++) {              \
                a += g[d], c += g[d] * (x[d] - mu);                                                \
            }                                                                                      \
        }                                                                                          \
        a /= (T)D, c *= rs / (T)D;                                                                 \
        T k = c * rs; /* mean(dh * xh) * rstd: the xh term is (x - mu) * rs * c */                 \
        if (w)                                                                                     \
            for (int64_t d = 0; d < D; d++) dx[d] = rs * (g[d] * w[d] - a - (x[d] - mu) * k);      \
        else                                                                                       \
            for (int64_t d = 0; d < D; d++) dx[d] = rs * (g[d] - a - (x[d] - mu) * k);             \
    }                                                                                              \
    static void ln_cols_##sfx(void *vj, int64_t u) {                                               \
        const lnjob *j = vj;                                                                       \
        int64_t D = j->D, d0 = u * CB, nd = D - d0 < CB ? D - d0 : CB;                             \
        T sw[CB] = {0}, sb[CB] = {0};                                                              \
        for (int64_t r = 0; r < j->R; r++) {                                                       \
            const T *x = (const T *)j->x + r * D + d0, *g = (const T *)j->g + r * D + d0;          \
            T mu = (T)j->stat[r], rs = (T)j->stat[j->R + r];                                       \
            for (int64_t d = 0; d < nd; d++) sw[d] += g[d] * (x[d] - mu) * rs, sb[d] += g[d];      \
        }                                                                                          \
        for (int64_t d = 0; d < nd; d++) {                                                         \
            if (j->gw) j->gw[d0 + d] = (double)sw[d];                                              \
            if (j->gb) j->gb[d0 + d] = (double)sb[d];                                              \
        }                                                                                          \
    }
LN(f32, float)
LN(f64, double)

static int layer_norm_shape(td_node *n) {
    td_tensor *x = n->in[0];
    const td_args *a = &n->args;
    char s1[128], s2[128];
    if (check_inputs(n, "layer_norm") < 0) return -1;
    if (a->nsizes < 1 || a->nsizes > x->ndim ||
        memcmp(a->sizes, x->shape + x->ndim - a->nsizes, sizeof(int64_t) * (size_t)a->nsizes))
        return td_error("layer_norm: normalized_shape %s does not match the last dims of input %s",
                        td_shape_str(a->sizes, a->nsizes, s1, sizeof s1),
                        td_shape_str(x->shape, x->ndim, s2, sizeof s2));
    for (int i = 1; i < n->nin; i++) {
        td_tensor *p = n->in[i];
        if (p->ndim != a->nsizes ||
            memcmp(p->shape, a->sizes, sizeof(int64_t) * (size_t)a->nsizes))
            return td_error("layer_norm: %s has shape %s, expected %s (normalized_shape)",
                            i == win(n) ? "weight" : "bias",
                            td_shape_str(p->shape, p->ndim, s1, sizeof s1),
                            td_shape_str(a->sizes, a->nsizes, s2, sizeof s2));
    }
    if (!(a->c >= 0)) return td_error("layer_norm: eps must be >= 0, got %g", a->c);
    n->meta[0].ndim = x->ndim;
    memcpy(n->meta[0].shape, x->shape, sizeof x->shape);
    n->meta[0].dtype = x->dtype;
    return 0;
}

static void ln_size(const td_node *n, int64_t *R, int64_t *D) {
    *D = 1;
    for (int i = 0; i < n->args.nsizes; i++) *D *= n->args.sizes[i];
    *R = *D ? td_numel(n->in[0]) / *D : 0;
}

static int layer_norm_forward(td_node *n) {
    td_tensor *y = n->out[0], *kw, *kb;
    int64_t R, D;
    ln_size(n, &R, &D);
    td_tensor *x = td_dense_as(n->in[0], y->dtype);
    td_tensor *w = param(n, win(n), y->dtype, &kw), *b = param(n, bin(n), y->dtype, &kb);
    n->ctx = td_malloc(sizeof(double) * (size_t)(2 * R + 1));
    int rc = -1;
    if (!x || (win(n) >= 0 && !w) || (bin(n) >= 0 && !b) || !n->ctx) goto done;
    double *st = n->ctx;
    lnjob j = {.out = td_data(y), .x = td_data(x), .w = w ? td_data(w) : NULL,
               .b = b ? td_data(b) : NULL, .mean = st, .rstd = st + R, .R = R, .D = D,
               .eps = n->args.c};
    if (D > 0) td_run_units(R, R * D, y->dtype == TD_FLOAT32 ? ln_fwd_f32 : ln_fwd_f64, &j);
    rc = td_poll_interrupt();
done:
    td_release(x), td_release(kw), td_release(kb);
    return rc;
}

/* a C-length (or D-length) double array as a new tensor shaped like p, of p's dtype */
static td_tensor *from_sums(const double *v, const td_tensor *p) {
    td_tensor *t = td_empty(p->shape, p->ndim, p->dtype);
    if (!t) return NULL;
    int64_t k = td_numel(t);
    if (t->dtype == TD_FLOAT32)
        for (int64_t i = 0; i < k; i++) ((float *)td_data(t))[i] = (float)v[i];
    else
        memcpy(td_data(t), v, sizeof(double) * (size_t)k);
    return t;
}

static int layer_norm_backward(td_node *n, td_tensor *const *gout, td_tensor **gin) {
    td_dtype dt = n->in[0]->dtype;
    int64_t R, D;
    ln_size(n, &R, &D);
    int iw = win(n), ib = bin(n), rc = -1;
    bool gw = iw >= 0 && n->needs_grad[iw], gb = ib >= 0 && n->needs_grad[ib];
    td_tensor *x = td_dense_as(n->in[0], dt), *g = td_dense_as(gout[0], dt), *kw;
    td_tensor *w = param(n, iw, dt, &kw);
    double *sums = (gw || gb) ? td_malloc(sizeof(double) * (size_t)(2 * D + 1)) : NULL;
    if (!x || !g || (iw >= 0 && !w) || ((gw || gb) && !sums)) goto done;
    lnjob j = {.x = td_data(x), .w = w ? td_data(w) : NULL, .g = td_data(g), .stat = n->ctx,
               .gw = gw ? sums : NULL, .gb = gb ? sums + D : NULL, .R = R, .D = D};
    bool f32 = dt == TD_FLOAT32;
    if (n->needs_grad[0]) {
        if (!(gin[0] = td_empty(x->shape, x->ndim, dt))) goto done;
        j.out = td_data(gin[0]);
        if (D > 0) td_run_units(R, R * D, f32 ? ln_bwd_f32 : ln_bwd_f64, &j);
    }
    if (gw || gb) {
        if (R == 0) memset(sums, 0, sizeof(double) * (size_t)(2 * D));
        else td_run_units((D + CB - 1) / CB, R * D, f32 ? ln_cols_f32 : ln_cols_f64, &j);
        if (gw && !(gin[iw] = from_sums(sums, n->in[iw]))) goto done;
        if (gb && !(gin[ib] = from_sums(sums + D, n->in[ib]))) goto done;
    }
    rc = td_poll_interrupt();
done:
    td_release(x), td_release(g), td_release(kw);
    td_free(sums);
    return rc;
}

const td_op td_op_layer_norm = {
    .name = "layer_norm",
    .nin = 1,
    .flags = TD_VARIN,
    .doc = "normalises the last dims (normalized_shape) of each sample to mean 0, variance 1, "
           "then scales by weight and shifts by bias",
    .shape = layer_norm_shape,
    .forward = layer_norm_forward,
    .backward = layer_norm_backward,
};

/* ---- batch_norm ------------------------------------------------------------------------- */
typedef struct bnjob {
    void *out;                 /* y (forward) or dx (backward), N x C x S */
    const void *x, *g;
    double *mean, *var;        /* [C]: forward's batch statistics */
    const double *k1, *k2, *k3; /* [C] per-channel coefficients: y = x k1 + k2; dx = g k1 + x k2 + k3 */
    double *s1, *s2;           /* [C] backward sums of g and g * (x - mean) */
    int64_t N, C, S, cb;
} bnjob;

/* One unit is a block of cb channels, read as N runs of cb*S contiguous elements, so S = 1
 * (N x C) still reads whole rows. Statistics and sums are accumulated in double. */
#define BN(sfx, T)                                                                                 \
    static void bn_stats_##sfx(void *vj, int64_t u) {                                              \
        const bnjob *j = vj;                                                                       \
        int64_t C = j->C, S = j->S, c0 = u * j->cb, c1 = c0 + j->cb < C ? c0 + j->cb : C;          \
        double M = (double)(j->N * S);                                                             \
        for (int64_t c = c0; c < c1; c++) j->mean[c] = j->var[c] = 0;                              \
        for (int64_t n = 0; n < j->N; n++)                                                         \
            for (int64_t c = c0; c < c1; c++) {                                                    \
                const T *x = (const T *)j->x + (n * C + c) * S;                                    \
                double t = 0;                                                                      \
                _Pragma("omp simd reduction(+ : t)") for (int64_t s = 0; s < S; s++) t +=          \
                    (double)x[s];                                                                  \
                j->mean[c] += t;                                                                   \
            }                                                                                      \
        for (int64_t c = c0; c < c1; c++) j->mean[c] /= M;                                         \
        for (int64_t n = 0; n < j->N; n++)                                                         \
            for (int64_t c = c0; c < c1; c++) {                                                    \
                const T *x = (const T *)j->x + (n * C + c) * S;                                    \
                double t = 0, m = j->mean[c];                                                      \
                _Pragma("omp simd reduction(+ : t)") for (int64_t s = 0; s < S; s++) t +=          \
                    ((double)x[s] - m) * ((double)x[s] - m);                                       \
                j->var[c] += t;                                                                    \
            }                                                                                      \
        for (int64_t c = c0; c < c1; c++) j->var[c] /= M;                                          \
    }                                                                                              \
    static void bn_apply_##sfx(void *vj, int64_t u) {                                              \
        const bnjob *j = vj;                                                                       \
        int64_t C = j->C, S = j->S, c0 = u * j->cb, c1 = c0 + j->cb < C ? c0 + j->cb : C;          \
        for (int64_t n = 0; n < j->N; n++)                                                         \
            for (int64_t c = c0; c < c1; c++) {                                                    \
                int64_t o = (n * C + c) * S;                                                       \
                const T *x = (const T *)j->x + o, *g = j->g ? (const T *)j->g + o : NULL;          \
                T *y = (T *)j->out + o, a = (T)j->k1[c], b = (T)j->k2[c];                          \
                if (g) {                                                                           \
                    T k = (T)j->k3[c];                                                             \
                    for (int64_t s = 0; s < S; s++) y[s] = g[s] * a + x[s] * b + k;                \
                } else {                                                                           \
                    for (int64_t s = 0; s < S; s++) y[s] = x[s] * a + b;                           \
                }                                                                                  \
            }                                                                                      \
    }                                                                                              \
    static void bn_sums_##sfx(void *vj, int64_t u) {                                               \
        const bnjob *j = vj;                                                                       \
        int64_t C = j->C, S = j->S, c0 = u * j->cb, c1 = c0 + j->cb < C ? c0 + j->cb : C;          \
        for (int64_t c = c0; c < c1; c++) j->s1[c] = j->s2[c] = 0;                                 \
        for (int64_t n = 0; n < j->N; n++)                                                         \
            for (int64_t c = c0; c < c1; c++) {                                                    \
                int64_t o = (n * C + c) * S;                                                       \
                const T *x = (const T *)j->x + o, *g = (const T *)j->g + o;                        \
                double a = 0, b = 0, m = j->mean[c];                                               \
                _Pragma("omp simd reduction(+ : a, b)") for (int64_t s = 0; s < S; s++) {          \
                    a += (double)g[s];                                                             \
                    b += (double)g[s] * ((double)x[s] - m);                                        \
                }                                                                                  \
                j->s1[c] += a, j->s2[c] += b;                                                      \
            }                                                                                      \
    }
BN(f32, float)
BN(f64, double)

static double getv(td_tensor *t, int64_t i) { return td_get(t, &i); }

static int batch_norm_shape(td_node *n) {
    td_tensor *x = n->in[0];
    const td_args *a = &n->args;
    char s1[128], s2[128];
    if (check_inputs(n, "batch_norm") < 0) return -1;
    if (x->ndim < 2)
        return td_error("batch_norm: expected an input of 2 or more dims (N x C [x ...]), got %s",
                        td_shape_str(x->shape, x->ndim, s1, sizeof s1));
    int64_t C = x->shape[1];
    if (!a->aux[0] != !a->aux[1])
        return td_error("batch_norm: give both running_mean and running_var, or neither");
    if (!a->aux[0] && !a->flag)
        return td_error("batch_norm: running_mean and running_var are required in eval mode "
                        "(training = false)");
    static const char *const what[] = {"running_mean", "running_var", "weight", "bias"};
    td_tensor *p[4] = {a->aux[0], a->aux[1], win(n) >= 0 ? n->in[win(n)] : NULL,
                       bin(n) >= 0 ? n->in[bin(n)] : NULL};
    for (int i = 0; i < 4; i++) {
        if (!p[i]) continue;
        if (p[i]->ndim != 1 || p[i]->shape[0] != C)
            return td_error("batch_norm: %s has shape %s, expected %lld (the channels of input %s)",
                            what[i], td_shape_str(p[i]->shape, p[i]->ndim, s1, sizeof s1),
                            (long long)C, td_shape_str(x->shape, x->ndim, s2, sizeof s2));
        if (!td_dtype_is_float(p[i]->dtype))
            return td_error("batch_norm: %s must be float, got %s", what[i],
                            td_dtype_name(p[i]->dtype));
    }
    if (a->flag && td_numel(x) / (C ? C : 1) <= 1 && td_numel(x) > 0)
        return td_error("batch_norm: expected more than 1 value per channel when training, got "
                        "input of shape %s", td_shape_str(x->shape, x->ndim, s1, sizeof s1));
    if (!(a->c >= 0)) return td_error("batch_norm: eps must be >= 0, got %g", a->c);
    n->meta[0].ndim = x->ndim;
    memcpy(n->meta[0].shape, x->shape, sizeof x->shape);
    n->meta[0].dtype = x->dtype;
    return 0;
}

static bnjob bn_job(const td_node *n) {
    td_tensor *x = n->in[0];
    bnjob j = {.N = x->shape[0], .C = x->shape[1], .S = 1};
    for (int i = 2; i < x->ndim; i++) j.S *= x->shape[i];
    j.cb = j.S >= CB ? 1 : CB;
    return j;
}

/* ctx: mean[C], rstd[C], then 5 C of scratch (coefficients, sums) for both passes */
static int batch_norm_forward(td_node *n) {
    td_tensor *y = n->out[0];
    const td_args *a = &n->args;
    bnjob j = bn_job(n);
    int64_t C = j.C, M = j.N * j.S, nu = (C + j.cb - 1) / j.cb;
    td_tensor *x = td_dense_as(n->in[0], y->dtype);
    td_tensor *w = win(n) >= 0 ? n->in[win(n)] : NULL, *b = bin(n) >= 0 ? n->in[bin(n)] : NULL;
    double *st = n->ctx = td_malloc(sizeof(double) * (size_t)(7 * C + 1));
    int rc = -1;
    if (!x || !st) goto done;
    double *mean = st, *rstd = st + C, *k1 = st + 2 * C, *k2 = st + 3 * C;
    bool f32 = y->dtype == TD_FLOAT32;
    j.x = td_data(x), j.out = td_data(y);
    if (a->flag) {
        j.mean = mean, j.var = rstd; /* rstd holds the variance until below */
        if (M > 0) td_run_units(nu, C * M, f32 ? bn_stats_f32 : bn_stats_f64, &j);
        if (td_poll_interrupt() < 0) goto done;
        for (int64_t c = 0; c < C && a->aux[0] && M > 0; c++) { /* momentum update */
            double m = a->b, rm = getv(a->aux[0], c), rv = getv(a->aux[1], c);
            double unb = M > 1 ? rstd[c] * (double)M / (double)(M - 1) : (double)NAN;
            td_set(a->aux[0], &c, (1 - m) * rm + m * mean[c]);
            td_set(a->aux[1], &c, (1 - m) * rv + m * unb);
        }
        if (a->aux[0] && M > 0) td_bump_version(a->aux[0]), td_bump_version(a->aux[1]);
    } else {
        for (int64_t c = 0; c < C; c++) mean[c] = getv(a->aux[0], c), rstd[c] = getv(a->aux[1], c);
    }
    for (int64_t c = 0; c < C; c++) {
        rstd[c] = 1 / sqrt(rstd[c] + a->c);
        double wc = w ? getv(w, c) : 1, bc = b ? getv(b, c) : 0;
        k1[c] = rstd[c] * wc, k2[c] = bc - mean[c] * k1[c];
    }
    j.k1 = k1, j.k2 = k2;
    if (M > 0) td_run_units(nu, C * M, f32 ? bn_apply_f32 : bn_apply_f64, &j);
    rc = td_poll_interrupt();
done:
    td_release(x);
    return rc;
}

/* training: dx = w rstd (g - mean(g) - xh mean(g xh)); eval: dx = g w rstd (the statistics are
 * constants); gw = sum g xh, gb = sum g over each channel's N*S elements */
static int batch_norm_backward(td_node *n, td_tensor *const *gout, td_tensor **gin) {
    td_dtype dt = n->in[0]->dtype;
    bnjob j = bn_job(n);
    int64_t C = j.C, M = j.N * j.S, nu = (C + j.cb - 1) / j.cb;
    int iw = win(n), ib = bin(n), rc = -1;
    double *st = n->ctx, *mean = st, *rstd = st + C, *k1 = st + 2 * C, *k2 = st + 3 * C;
    double *s1 = st + 4 * C, *s2 = st + 5 * C, *k3 = st + 6 * C;
    td_tensor *x = td_dense_as(n->in[0], dt), *g = td_dense_as(gout[0], dt);
    td_tensor *w = iw >= 0 ? n->in[iw] : NULL;
    if (!x || !g) goto done;
    bool f32 = dt == TD_FLOAT32, train = n->args.flag;
    j.x = td_data(x), j.g = td_data(g), j.mean = mean, j.s1 = s1, j.s2 = s2;
    if (M > 0) td_run_units(nu, C * M, f32 ? bn_sums_f32 : bn_sums_f64, &j);
    else memset(s1, 0, sizeof(double) * (size_t)(2 * C));
    if (td_poll_interrupt() < 0) goto done;
    if (n->needs_grad[0]) {
        if (!(gin[0] = td_empty(x->shape, x->ndim, dt))) goto done;
        for (int64_t c = 0; c < C; c++) { /* dx = g k1 + x k2 + k3 */
            double kc = rstd[c] * (w ? getv(w, c) : 1), r2 = rstd[c] * rstd[c], Md = (double)M;
            k1[c] = kc;
            k2[c] = train ? -kc * r2 * s2[c] / Md : 0;
            k3[c] = train ? kc * (r2 * mean[c] * s2[c] - s1[c]) / Md : 0;
        }
        j.out = td_data(gin[0]), j.k1 = k1, j.k2 = k2, j.k3 = k3;
        if (M > 0) td_run_units(nu, C * M, f32 ? bn_apply_f32 : bn_apply_f64, &j);
    }
    for (int64_t c = 0; c < C; c++) s2[c] *= rstd[c]; /* sum g (x - mean) -> sum g xh */
    if (iw >= 0 && n->needs_grad[iw] && !(gin[iw] = from_sums(s2, n->in[iw]))) goto done;
    if (ib >= 0 && n->needs_grad[ib] && !(gin[ib] = from_sums(s1, n->in[ib]))) goto done;
    rc = td_poll_interrupt();
done:
    td_release(x), td_release(g);
    return rc;
}

const td_op td_op_batch_norm = {
    .name = "batch_norm",
    .nin = 1,
    .flags = TD_VARIN,
    .doc = "normalises each channel (dim 2) over the batch and the other dims: batch statistics "
           "when training (updating the running ones), running statistics in eval mode",
    .shape = batch_norm_shape,
    .forward = batch_norm_forward,
    .backward = batch_norm_backward,
};
