/* tensor/ops/softmax.c: softmax and log_softmax along one dim. x is viewed as a dense R x D x S
 * block around dim (D reduced); when S > 1, SB columns are processed side by side so the inner
 * loops run over contiguous memory. Stable: the row max is subtracted before exp. */
#include <tgmath.h>

#include "../tide.h"

#define SB 64

/* Forward: y = exp(x - max) / sum, or x - max - log(sum); backward: dx = y * (g - sum(g * y)),
 * or g - exp(y) * sum(g). One R x SB block (or one row when S == 1) per iteration. */
#define SOFTMAX(sfx, T)                                                                          \
    static void fwd_##sfx(T *y, const T *x, int64_t R, int64_t D, int64_t S, bool lg) {          \
        int64_t nb = (S + SB - 1) / SB;                                                          \
        int nt = td_get_num_threads();                                                           \
        _Pragma("omp parallel for schedule(static) num_threads(nt) if (R * D * S >= TD_PAR_GRAIN)") \
        for (int64_t u = 0; u < R * nb; u++) {                                                   \
            if (td_interrupted) continue;                                                        \
            int64_t r = u / nb, s0 = u % nb * SB, B = S - s0 < SB ? S - s0 : SB;                 \
            const T *xb = x + r * D * S + s0;                                                    \
            T *yb = y + r * D * S + s0;                                                          \
            if (S == 1) { /* a row: the common case, vectorised max and scale */                \
                T mx = xb[0], tot = 0;                                                           \
                for (int64_t d = 1; d < D; d++) mx = xb[d] > mx ? xb[d] : mx;                    \
                for (int64_t d = 0; d < D; d++) {                                                \
                    T e = exp(xb[d] - mx);                                                       \
                    tot += e;                                                                    \
                    if (!lg) yb[d] = e;                                                          \
                }                                                                                \
                T l = mx + log(tot), inv = 1 / tot;                                              \
                if (lg)                                                                          \
                    for (int64_t d = 0; d < D; d++) yb[d] = xb[d] - l;                           \
                else                                                                             \
                    for (int64_t d = 0; d < D; d++) yb[d] *= inv;                                \
                continue;                                                                        \
            }                                                                                    \
            T m[SB], sum[SB];                                                                    \
            for (int64_t j = 0; j < B; j++) m[j] = xb[j], sum[j] = 0;                            \
            for (int64_t d = 1; d < D; d++)                                                      \
                for (int64_t j = 0; j < B; j++) m[j] = xb[d * S + j] > m[j] ? xb[d * S + j] : m[j]; \
            for (int64_t d = 0; d < D; d++)                                                      \
                for (int64_t j = 0; j < B; j++) {                                                \
                    T e = exp(xb[d * S + j] - m[j]);                                             \
                    sum[j] += e;                                                                 \
                    if (!lg) yb[d * S + j] = e;                                                  \
                }                                                                                \
            for (int64_t j = 0; j < B; j++) sum[j] = lg ? m[j] + log(sum[j]) : 1 / sum[j];       \
            for (int64_t d = 0; d < D; d++)                                                      \
                for (int64_t j = 0; j < B; j++)                                                  \
                    yb[d * S + j] = lg ? xb[d * S + j] - sum[j] : yb[d * S + j] * sum[j];        \
        }                                                                                        \
    }                                                                                            \
    static void bwd_##sfx(T *gx, const T *g, const T *y, int64_t R, int64_t D, int64_t S,        \
                          bool lg) {                                                             \
        int64_t nb = (S + SB - 1) / SB;                                                          \
        int nt = td_get_num_threads();                                                           \
        _Pragma("omp parallel for schedule(static) num_threads(nt) if (R * D * S >= TD_PAR_GRAIN)") \
        for (int64_t u = 0; u < R * nb; u++) {                                                   \
            int64_t r = u / nb, s0 = u % nb * SB, B = S - s0 < SB ? S - s0 : SB;                 \
            int64_t off = r * D * S + s0;                                                        \
            T dot[SB];                                                                           \
            for (int64_t j = 0; j < B; j++) dot[j] = 0;                                          \
            for (int64_t d = 0; d < D; d++)                                                      \
                for (int64_t j = 0; j < B; j++)                                                  \
                    dot[j] += lg ? g[off + d * S + j] : g[off + d * S + j] * y[off + d * S + j]; \
            for (int64_t d = 0; d < D; d++)                                                      \
                for (int64_t j = 0; j < B; j++) {                                                \
                    int64_t i = off + d * S + j;                                                 \
                    gx[i] = lg ? g[i] - exp(y[i]) * dot[j] : y[i] * (g[i] - dot[j]);             \
                }                                                                                \
        }                                                                                        \
    }
SOFTMAX(f32, float)
SOFTMAX(f64, double)

static void block(const td_tensor *x, int64_t dim, int64_t *R, int64_t *D, int64_t *S) {
    *R = *D = *S = 1;
    for (int i = 0; i < x->ndim; i++) *(i < dim ? R : i > dim ? S : D) *= x->shape[i];
}

static int softmax_shape(td_node *n) {
    td_tensor *x = n->in[0];
    td_meta *m = &n->meta[0];
    if (x->ndim > 0 && td_normdim(n->op->name, &n->args.dim, x->ndim) < 0) return -1;
    m->ndim = x->ndim;
    for (int i = 0; i < x->ndim; i++) m->shape[i] = x->shape[i];
    m->dtype = td_dtype_is_float(x->dtype) ? x->dtype : TD_FLOAT32; /* integers become float32 */
    return 0;
}

static int softmax_run(td_node *n, bool lg) {
    td_tensor *y = n->out[0];
    td_tensor *a = td_to_dtype(n->in[0], y->dtype), *x = a ? td_contiguous(a) : NULL;
    td_release(a);
    if (!x) return -1;
    int64_t R, D, S;
    block(x, n->args.dim, &R, &D, &S);
    if (y->dtype == TD_FLOAT32)
        fwd_f32(td_data(y), td_data(x), R, D, S, lg);
    else
        fwd_f64(td_data(y), td_data(x), R, D, S, lg);
    td_release(x);
    return td_poll_interrupt();
}

static int softmax_grad(td_node *n, td_tensor *g0, td_tensor **gin, bool lg) {
    td_tensor *y = n->saved_out[0];
    td_tensor *a = td_to_dtype(g0, y->dtype), *g = a ? td_contiguous(a) : NULL;
    td_tensor *yc = td_contiguous(y), *gx = td_empty(y->shape, y->ndim, y->dtype);
    td_release(a);
    if (g && yc && gx) {
        int64_t R, D, S;
        block(y, n->args.dim, &R, &D, &S);
        if (y->dtype == TD_FLOAT32)
            bwd_f32(td_data(gx), td_data(g), td_data(yc), R, D, S, lg);
        else
            bwd_f64(td_data(gx), td_data(g), td_data(yc), R, D, S, lg);
        gin[0] = gx;
        gx = NULL;
    }
    td_release(g), td_release(yc), td_release(gx);
    return gin[0] ? 0 : -1;
}

static int softmax_forward(td_node *n) {
    return softmax_run(n, false);
}
static int softmax_backward(td_node *n, td_tensor *const *gout, td_tensor **gin) {
    return softmax_grad(n, gout[0], gin, false);
}
static int log_softmax_forward(td_node *n) {
    return softmax_run(n, true);
}
static int log_softmax_backward(td_node *n, td_tensor *const *gout, td_tensor **gin) {
    return softmax_grad(n, gout[0], gin, true);
}

const td_op td_op_softmax = {.name = "softmax", .nin = 1, .flags = TD_SAVE_OUT | TD_GRAD_NOREAD,
                             .doc = "exp(t) normalised to sum 1 along dim (stable)",
                             .shape = softmax_shape, .forward = softmax_forward,
                             .backward = softmax_backward};
const td_op td_op_log_softmax = {.name = "log_softmax", .nin = 1,
                                 .flags = TD_SAVE_OUT | TD_GRAD_NOREAD,
                                 .doc = "log of softmax along dim, computed as t - logsumexp(t)",
                                 .shape = softmax_shape, .forward = log_softmax_forward,
                                 .backward = log_softmax_backward};
