/* tensor/ops/pool.c: max_pool2d, avg_pool2d and adaptive_avg_pool2d over the last two dims of
 * N x C x H x W (or C x H x W). Sizes: P = N C planes of H x W pooled to OH x OW by a KH x KW
 * window moved by SH x SW over the input padded by PH x PW. max_pool2d keeps the flat position
 * (0-based, within the plane) of each maximum in the node's ctx, one int32 per output. */
#include "reduce.h"

#include <limits.h>
#include <math.h>
#include <string.h>

/* td_args layout (vm/ops.c SIG_POOL fills it): sizes = {kernel h, w, stride h, w, padding h, w};
 * with 2 sizes the stride is the kernel and the padding 0, with 4 the padding is 0.
 * adaptive_avg_pool2d (SIG_T_SIZE2): sizes = {output h, w}. */
typedef struct pool {
    int64_t P, H, W, OH, OW, kh, kw, sh, sw, ph, pw;
    bool adaptive;
    const void *x, *gy;
    void *y, *gx;
    int32_t *at; /* max_pool2d: the argmax of each output, or NULL when not recording */
} pool;

/* the window of output o along one dim: [*a, *b) in input positions */
static void window(const pool *p, bool rows, int64_t o, int64_t *a, int64_t *b) {
    int64_t n = rows ? p->H : p->W, on = rows ? p->OH : p->OW;
    if (p->adaptive) { /* PyTorch's floor(o n / on) .. ceil((o + 1) n / on) */
        *a = o * n / on, *b = ((o + 1) * n + on - 1) / on;
        return;
    }
    int64_t s = rows ? p->sh : p->sw, k = rows ? p->kh : p->kw, pad = rows ? p->ph : p->pw;
    int64_t lo = o * s - pad, hi = lo + k;
    *a = lo < 0 ? 0 : lo, *b = hi < n ? hi : n;
}

/* the averaging divisor: the whole window, padding included (PyTorch's count_include_pad) */
static double divisor(const pool *p, int64_t ya, int64_t yb, int64_t xa, int64_t xb) {
    return p->adaptive ? (double)((yb - ya) * (xb - xa)) : (double)(p->kh * p->kw);
}

/* the outputs ox whose column ox*s + d lies inside 0..n-1: [*a, *b) */
static void span(int64_t d, int64_t s, int64_t n, int64_t on, int64_t *a, int64_t *b) {
    int64_t lo = d >= 0 ? 0 : (-d + s - 1) / s, hi = n - 1 - d < 0 ? 0 : (n - 1 - d) / s + 1;
    lo = lo < on ? lo : on;
    hi = hi < on ? hi : on;
    *a = lo, *b = hi > lo ? hi : lo;
}

/* Fixed windows run a row of outputs at a time: for each input row and kernel column of the
 * window, one pass over the row's outputs (PyTorch's row-major window order: the first maximum
 * wins ties). The pass assumes no NaN, so that its selects compile without branches (random
 * data mispredicts half of them), and reports any NaN it saw: such a plane is redone by the
 * exact loop, where a NaN wins its window. Adaptive windows differ in size per output and take
 * plain loops. restrict and a constant stride let the passes vectorise. */
#define MAX_ROW(sfx, T, S, name)                                                                   \
    static int name(T *restrict y, int32_t *restrict at, const T *restrict r, int64_t a,           \
                    int64_t b, int64_t sw, int32_t base) {                                         \
        int64_t st = S ? S : sw;                                                                   \
        int nan = 0;                                                                               \
        if (at)                                                                                    \
            for (int64_t ox = a; ox < b; ox++) {                                                   \
                T v = r[ox * st], m = y[ox];                                                       \
                int32_t k = -(int32_t)(v > m); /* a mask, not a branch */                          \
                nan |= v != v;                                                                     \
                y[ox] = v > m ? v : m;                                                             \
                at[ox] = (at[ox] & ~k) | ((base + (int32_t)(ox * st)) & k);                        \
            }                                                                                      \
        else                                                                                       \
            for (int64_t ox = a; ox < b; ox++) {                                                   \
                T v = r[ox * st], m = y[ox];                                                       \
                nan |= v != v;                                                                     \
                y[ox] = v > m ? v : m;                                                             \
            }                                                                                      \
        return nan;                                                                                \
    }
MAX_ROW(f32, float, 1, max_row1_f32)
MAX_ROW(f32, float, 2, max_row2_f32)
MAX_ROW(f32, float, 0, max_rown_f32)
MAX_ROW(f64, double, 1, max_row1_f64)
MAX_ROW(f64, double, 2, max_row2_f64)
MAX_ROW(f64, double, 0, max_rown_f64)

#define POOL(sfx, T)                                                                               \
    static void max_exact_##sfx(const pool *p, int64_t u) { /* NaN wins its window */              \
        int64_t W = p->W, OW = p->OW;                                                              \
        const T *x = (const T *)p->x + u * p->H * W;                                               \
        T *y = (T *)p->y + u * p->OH * OW;                                                         \
        int32_t *at = p->at ? p->at + u * p->OH * OW : NULL;                                       \
        for (int64_t oy = 0; oy < p->OH; oy++)                                                     \
            for (int64_t ox = 0; ox < OW; ox++) {                                                  \
                int64_t ya, yb, xa, xb;                                                            \
                window(p, true, oy, &ya, &yb);                                                     \
                window(p, false, ox, &xa, &xb);                                                    \
                int64_t best = ya * W + xa;                                                        \
                T m = -(T)INFINITY;                                                                \
                for (int64_t iy = ya; iy < yb; iy++)                                               \
                    for (int64_t ix = xa; ix < xb; ix++) {                                         \
                        T v = x[iy * W + ix];                                                      \
                        if (v > m || v != v) m = v, best = iy * W + ix;                            \
                    }                                                                              \
                y[oy * OW + ox] = m;                                                               \
                if (at) at[oy * OW + ox] = (int32_t)best;                                          \
            }                                                                                      \
    }                                                                                              \
    /* tiling windows (kernel = stride, no padding: MaxPool2d(k)): each output's window in         \
     * registers, no passes over the output row */                                                 \
    static int max_tiles_##sfx(const pool *p, const T *restrict x, T *restrict y,                  \
                               int32_t *restrict at) {                                             \
        int64_t W = p->W, kh = p->kh, kw = p->kw;                                                  \
        int nan = 0;                                                                               \
        for (int64_t oy = 0; oy < p->OH; oy++)                                                     \
            for (int64_t ox = 0; ox < p->OW; ox++) {                                               \
                int32_t i0 = (int32_t)(oy * kh * W + ox * kw), best = i0;                          \
                T m = -(T)INFINITY;                                                                \
                for (int64_t i = 0; i < kh; i++)                                                   \
                    for (int64_t j = 0; j < kw; j++) {                                             \
                        int32_t q = i0 + (int32_t)(i * W + j);                                     \
                        T v = x[q];                                                                \
                        nan |= v != v;                                                             \
                        best = v > m ? q : best;                                                   \
                        m = v > m ? v : m;                                                         \
                    }                                                                              \
                y[oy * p->OW + ox] = m;                                                            \
                if (at) at[oy * p->OW + ox] = best;                                                \
            }                                                                                      \
        return nan;                                                                                \
    }                                                                                              \
    /* MaxPool2d(2), the common case: one pass per output row over two input rows, the four     \
     * candidates compared in window order with selects, so the loop vectorises */                 \
    static int max_2x2_##sfx(const pool *p, const T *restrict x, T *restrict y,                    \
                             int32_t *restrict at) {                                               \
        int64_t W = p->W, OW = p->OW;                                                              \
        int nan = 0;                                                                               \
        for (int64_t oy = 0; oy < p->OH; oy++) {                                                   \
            const T *r0 = x + 2 * oy * W, *r1 = r0 + W;                                            \
            T *yr = y + oy * OW;                                                                   \
            int32_t *ar = at ? at + oy * OW : NULL, i0 = (int32_t)(2 * oy * W);                    \
            for (int64_t ox = 0; ox < OW; ox++) {                                                  \
                T a = r0[2 * ox], b = r0[2 * ox + 1], c = r1[2 * ox], d = r1[2 * ox + 1];          \
                nan |= (a != a) | (b != b) | (c != c) | (d != d);                                  \
                int32_t q = i0 + (int32_t)(2 * ox), best = q;                                      \
                T m = a;                                                                           \
                best = b > m ? q + 1 : best, m = b > m ? b : m;                                    \
                best = c > m ? q + (int32_t)W : best, m = c > m ? c : m;                           \
                best = d > m ? q + (int32_t)W + 1 : best, m = d > m ? d : m;                       \
                yr[ox] = m;                                                                        \
                if (ar) ar[ox] = best;                                                             \
            }                                                                                      \
        }                                                                                          \
        return nan;                                                                                \
    }                                                                                              \
    static void max_fwd_##sfx(void *vp, int64_t u) {                                               \
        const pool *p = vp;                                                                        \
        int64_t W = p->W, OW = p->OW, sw = p->sw;                                                  \
        const T *x = (const T *)p->x + u * p->H * W;                                               \
        int nan = 0;                                                                               \
        if (p->kh == p->sh && p->kw == p->sw && p->ph == 0 && p->pw == 0) {                        \
            T *y = (T *)p->y + u * p->OH * OW;                                                     \
            int32_t *at = p->at ? p->at + u * p->OH * OW : NULL;                                   \
            if (p->kh == 2 && p->kw == 2 ? max_2x2_##sfx(p, x, y, at)                              \
                                         : max_tiles_##sfx(p, x, y, at))                           \
                max_exact_##sfx(p, u);                                                             \
            return;                                                                                \
        }                                                                                          \
        for (int64_t oy = 0; oy < p->OH; oy++) {                                                   \
            T *y = (T *)p->y + (u * p->OH + oy) * OW;                                              \
            int32_t *at = p->at ? p->at + (u * p->OH + oy) * OW : NULL;                            \
            int64_t ya, yb;                                                                        \
            window(p, true, oy, &ya, &yb);                                                         \
            for (int64_t ox = 0; ox < OW; ox++) {                                                  \
                int64_t xa, xb;                                                                    \
                window(p, false, ox, &xa, &xb);                                                    \
                y[ox] = -(T)INFINITY;                                                              \
                if (at) at[ox] = (int32_t)(ya * W + xa); /* PyTorch's when nothing beats -inf */   \
            }                                                                                      \
            for (int64_t iy = ya; iy < yb; iy++)                                                   \
                for (int64_t j = 0; j < p->kw; j++) {                                              \
                    int64_t d = j - p->pw, a, b;                                                   \
                    span(d, sw, W, OW, &a, &b);                                                    \
                    const T *r = x + iy * W + d;                                                   \
                    int32_t base = (int32_t)(iy * W + d);                                          \
                    if (sw == 1)                                                                   \
                        nan |= max_row1_##sfx(y, at, r, a, b, 1, base);                            \
                    else if (sw == 2)                                                              \
                        nan |= max_row2_##sfx(y, at, r, a, b, 2, base);                            \
                    else                                                                           \
                        nan |= max_rown_##sfx(y, at, r, a, b, sw, base);                           \
                }                                                                                  \
        }                                                                                          \
        if (nan) max_exact_##sfx(p, u);                                                            \
    }                                                                                              \
    static void max_bwd_##sfx(void *vp, int64_t u) {                                               \
        const pool *p = vp;                                                                        \
        int64_t n = p->OH * p->OW;                                                                 \
        const T *gy = (const T *)p->gy + u * n;                                                    \
        T *gx = (T *)p->gx + u * p->H * p->W;                                                      \
        const int32_t *at = p->at + u * n;                                                         \
        memset(gx, 0, sizeof(T) * (size_t)(p->H * p->W));                                          \
        for (int64_t o = 0; o < n; o++) gx[at[o]] += gy[o];                                        \
    }                                                                                              \
    static void avg_fwd_##sfx(void *vp, int64_t u) {                                               \
        const pool *p = vp;                                                                        \
        int64_t W = p->W, OW = p->OW, sw = p->sw;                                                  \
        const T *x = (const T *)p->x + u * p->H * W;                                               \
        for (int64_t oy = 0; oy < p->OH; oy++) {                                                   \
            T *y = (T *)p->y + (u * p->OH + oy) * OW;                                              \
            int64_t ya, yb;                                                                        \
            window(p, true, oy, &ya, &yb);                                                         \
            if (p->adaptive) {                                                                     \
                for (int64_t ox = 0; ox < OW; ox++) {                                              \
                    int64_t xa, xb;                                                                \
                    window(p, false, ox, &xa, &xb);                                                \
                    T s = 0;                                                                       \
                    for (int64_t iy = ya; iy < yb; iy++)                                           \
                        for (int64_t ix = xa; ix < xb; ix++) s += x[iy * W + ix];                  \
                    y[ox] = s / (T)divisor(p, ya, yb, xa, xb);                                     \
                }                                                                                  \
                continue;                                                                          \
            }                                                                                      \
            for (int64_t ox = 0; ox < OW; ox++) y[ox] = 0;                                         \
            for (int64_t iy = ya; iy < yb; iy++)                                                   \
                for (int64_t j = 0; j < p->kw; j++) {                                              \
                    int64_t d = j - p->pw, a, b;                                                   \
                    span(d, sw, W, OW, &a, &b);                                                    \
                    const T *r = x + iy * W + d;                                                   \
                    for (int64_t ox = a; ox < b; ox++) y[ox] += r[ox * sw];                        \
                }                                                                                  \
            T inv = (T)1 / (T)(p->kh * p->kw);                                                     \
            for (int64_t ox = 0; ox < OW; ox++) y[ox] *= inv;                                      \
        }                                                                                          \
    }                                                                                              \
    static void avg_bwd_##sfx(void *vp, int64_t u) {                                               \
        const pool *p = vp;                                                                        \
        int64_t W = p->W, OW = p->OW, sw = p->sw;                                                  \
        T *gx = (T *)p->gx + u * p->H * W;                                                         \
        memset(gx, 0, sizeof(T) * (size_t)(p->H * W));                                             \
        for (int64_t oy = 0; oy < p->OH; oy++) {                                                   \
            const T *gy = (const T *)p->gy + (u * p->OH + oy) * OW;                                \
            int64_t ya, yb;                                                                        \
            window(p, true, oy, &ya, &yb);                                                         \
            if (p->adaptive) {                                                                     \
                for (int64_t ox = 0; ox < OW; ox++) {                                              \
                    int64_t xa, xb;                                                                \
                    window(p, false, ox, &xa, &xb);                                                \
                    T g = gy[ox] / (T)divisor(p, ya, yb, xa, xb);                                  \
                    for (int64_t iy = ya; iy < yb; iy++)                                           \
                        for (int64_t ix = xa; ix < xb; ix++) gx[iy * W + ix] += g;                 \
                }                                                                                  \
                continue;                                                                          \
            }                                                                                      \
            T inv = (T)1 / (T)(p->kh * p->kw);                                                     \
            for (int64_t iy = ya; iy < yb; iy++)                                                   \
                for (int64_t j = 0; j < p->kw; j++) {                                              \
                    int64_t d = j - p->pw, a, b;                                                   \
                    span(d, sw, W, OW, &a, &b);                                                    \
                    T *r = gx + iy * W + d;                                                        \
                    for (int64_t ox = a; ox < b; ox++) r[ox * sw] += gy[ox] * inv;                 \
                }                                                                                  \
        }                                                                                          \
    }
POOL(f32, float)
POOL(f64, double)

#define SHP(t, buf) td_shape_str((t)->shape, (t)->ndim, buf, sizeof buf)

/* Checks x and the arguments, fills p's sizes; 0 or -1 + error. */
static int pool_plan(const td_node *n, pool *p) {
    const char *fn = n->op->name;
    const td_tensor *x = n->in[0];
    const td_args *a = &n->args;
    const int64_t *s = a->sizes;
    char sx[96];
    *p = (pool){.adaptive = n->op == &td_op_adaptive_avg_pool2d};
    if (x->ndim != 3 && x->ndim != 4)
        return td_error("%s: expected a 4-D input (N,C,H,W) or 3-D (C,H,W), got %s", fn,
                        SHP(x, sx));
    if (x->dtype != TD_FLOAT32 && x->dtype != TD_FLOAT64)
        return td_error("%s: expected a float32 or float64 input, got %s", fn,
                        td_dtype_name(x->dtype));
    int d = x->ndim;
    p->H = x->shape[d - 2], p->W = x->shape[d - 1];
    if (d == 4)
        p->P = x->shape[0] * x->shape[1];
    else
        p->P = x->shape[0];
    if (p->adaptive) {
        if (a->nsizes != 2)
            return td_error("%s: expected an output size (h, w), got %d sizes", fn, a->nsizes);
        p->OH = s[0], p->OW = s[1];
        if (p->OH < 1 || p->OW < 1)
            return td_error("%s: output size must be positive, got %lldx%lld", fn, (long long)p->OH,
                            (long long)p->OW);
        if (p->H < 1 || p->W < 1)
            return td_error("%s: input %s has an empty plane", fn, SHP(x, sx));
        return 0;
    }
    if (a->nsizes != 2 && a->nsizes != 4 && a->nsizes != 6)
        return td_error("%s: expected 2, 4 or 6 sizes (kernel, stride, padding), got %d", fn,
                        a->nsizes);
    p->kh = s[0], p->kw = s[1];
    p->sh = a->nsizes > 2 ? s[2] : s[0], p->sw = a->nsizes > 2 ? s[3] : s[1];
    p->ph = a->nsizes > 4 ? s[4] : 0, p->pw = a->nsizes > 4 ? s[5] : 0;
    if (p->kh < 1 || p->kw < 1)
        return td_error("%s: kernel size must be positive, got %lldx%lld", fn, (long long)p->kh,
                        (long long)p->kw);
    if (p->sh < 1 || p->sw < 1)
        return td_error("%s: stride must be positive, got %lldx%lld", fn, (long long)p->sh,
                        (long long)p->sw);
    if (p->ph < 0 || p->pw < 0 || 2 * p->ph > p->kh || 2 * p->pw > p->kw)
        return td_error("%s: padding %lldx%lld must be between 0 and half the kernel %lldx%lld", fn,
                        (long long)p->ph, (long long)p->pw, (long long)p->kh, (long long)p->kw);
    if (p->kh > p->H + 2 * p->ph || p->kw > p->W + 2 * p->pw)
        return td_error("%s: kernel %lldx%lld is larger than the padded input %lldx%lld (input %s, "
                        "padding %lldx%lld)",
                        fn, (long long)p->kh, (long long)p->kw, (long long)(p->H + 2 * p->ph),
                        (long long)(p->W + 2 * p->pw), SHP(x, sx), (long long)p->ph,
                        (long long)p->pw);
    p->OH = (p->H + 2 * p->ph - p->kh) / p->sh + 1;
    p->OW = (p->W + 2 * p->pw - p->kw) / p->sw + 1;
    if (p->H * p->W > INT32_MAX)
        return td_error("%s: planes above 2^31 elements are not supported (input %s)", fn,
                        SHP(x, sx));
    return 0;
}

static int pool_shape(td_node *n) {
    pool p;
    if (pool_plan(n, &p) < 0) return -1;
    const td_tensor *x = n->in[0];
    td_meta *m = &n->meta[0];
    m->ndim = x->ndim;
    for (int i = 0; i < x->ndim - 2; i++) m->shape[i] = x->shape[i];
    m->shape[x->ndim - 2] = p.OH, m->shape[x->ndim - 1] = p.OW;
    m->dtype = x->dtype;
    return 0;
}

static int pool_forward(td_node *n) {
    pool p;
    if (pool_plan(n, &p) < 0) return -1;
    bool f32 = n->in[0]->dtype == TD_FLOAT32, mx = n->op == &td_op_max_pool2d;
    int64_t nout = td_numel(n->out[0]);
    if (nout == 0) return 0;
    if (mx && td_grad_enabled() && n->in[0]->requires_grad) { /* td_run records this node */
        if (!(n->ctx = td_malloc(sizeof(int32_t) * (size_t)nout))) return -1;
        p.at = n->ctx;
    }
    td_tensor *x = td_contiguous(n->in[0]);
    if (!x) return -1;
    p.x = td_data(x), p.y = td_data(n->out[0]);
    td_unit_fn f = mx ? (f32 ? max_fwd_f32 : max_fwd_f64) : (f32 ? avg_fwd_f32 : avg_fwd_f64);
    td_run_units(p.P, td_numel(x) + nout, f, &p);
    td_release(x);
    return td_poll_interrupt();
}

static int pool_backward(td_node *n, td_tensor *const *gout, td_tensor **gin) {
    pool p;
    if (pool_plan(n, &p) < 0) return -1;
    td_tensor *x = n->in[0];
    bool f32 = x->dtype == TD_FLOAT32, mx = n->op == &td_op_max_pool2d;
    if (mx && !n->ctx && td_numel(gout[0]) > 0)
        return td_error("max_pool2d: backward without the saved positions of the maxima");
    td_tensor *g1 = td_to_dtype(gout[0], x->dtype), *gy = g1 ? td_contiguous(g1) : NULL;
    td_tensor *gx = gy ? td_empty(x->shape, x->ndim, x->dtype) : NULL; /* planes zero themselves */
    td_release(g1);
    if (!gx) {
        td_release(gy);
        return -1;
    }
    if (td_numel(gy) > 0) {
        p.gy = td_data(gy), p.gx = td_data(gx), p.at = n->ctx;
        td_unit_fn f = mx ? (f32 ? max_bwd_f32 : max_bwd_f64) : (f32 ? avg_bwd_f32 : avg_bwd_f64);
        td_run_units(p.P, td_numel(gx) + td_numel(gy), f, &p);
    }
    td_release(gy);
    gin[0] = gx;
    return td_poll_interrupt();
}

const td_op td_op_max_pool2d = {
    .name = "max_pool2d",
    .nin = 1,
    .flags = TD_GRAD_NOREAD,
    .doc = "maximum over kh x kw windows of the last two dims, {stride = kernel, padding = 0}",
    .shape = pool_shape,
    .forward = pool_forward,
    .backward = pool_backward,
};

const td_op td_op_avg_pool2d = {
    .name = "avg_pool2d",
    .nin = 1,
    .flags = TD_GRAD_NOREAD,
    .doc = "mean over kh x kw windows of the last two dims (padding counts as zeros), "
           "{stride = kernel, padding = 0}",
    .shape = pool_shape,
    .forward = pool_forward,
    .backward = pool_backward,
};

const td_op td_op_adaptive_avg_pool2d = {
    .name = "adaptive_avg_pool2d",
    .nin = 1,
    .flags = TD_GRAD_NOREAD,
    .doc = "mean over the windows that divide the last two dims into an h x w output",
    .shape = pool_shape,
    .forward = pool_forward,
    .backward = pool_backward,
};
