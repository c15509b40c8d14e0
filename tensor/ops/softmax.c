/* tensor/ops/softmax.c: softmax and log_softmax along one dim. x is viewed as a dense R x D x S
 * block around dim (D reduced); when S > 1, SB columns are processed side by side so the inner
 * loops run over contiguous memory. Stable: the row max is subtracted before exp. */
#include "reduce.h"
#include "vexp.h"

#include <string.h>
#include <tgmath.h>

#define SB 64

#define EXP_f32 td_vexpf
#define EXP_f64 exp

typedef struct job { /* dense R x D x S blocks; a unit is one r and SB columns of S */
    void *out;
    const void *a, *b; /* forward: x; backward: g, y */
    int64_t D, S, nb;
    bool lg;
} job;

/* Forward: y = exp(x - max) / sum, or x - max - log(sum); backward: dx = y * (g - sum(g * y)),
 * or g - exp(y) * sum(g). One r x SB block (or one row when S == 1) per unit. */
#define SOFTMAX(sfx, T)                                                                            \
    static void fwd_##sfx(void *vj, int64_t u) {                                                   \
        const job *j = vj;                                                                         \
        int64_t D = j->D, S = j->S, r = u / j->nb, s0 = u % j->nb * SB;                            \
        int64_t B = S - s0 < SB ? S - s0 : SB;                                                     \
        const T *xb = (const T *)j->a + r * D * S + s0;                                            \
        T *yb = (T *)j->out + r * D * S + s0;                                                      \
        bool lg = j->lg;                                                                           \
        if (S == 1) { /* a row: the common case, vectorised */                                     \
            T mx = xb[0], tot = 0;                                                                 \
            _Pragma("omp simd reduction(max : mx)") for (int64_t d = 0; d < D; d++) mx =           \
                xb[d] > mx ? xb[d] : mx;                                                           \
            if (lg) {                                                                              \
                _Pragma("omp simd reduction(+ : tot)") for (int64_t d = 0; d < D; d++) tot +=      \
                    EXP_##sfx(xb[d] - mx);                                                         \
                T l = mx + log(tot);                                                               \
                for (int64_t d = 0; d < D; d++) yb[d] = xb[d] - l;                                 \
            } else {                                                                               \
                _Pragma("omp simd reduction(+ : tot)") for (int64_t d = 0; d < D; d++) {           \
                    T e = EXP_##sfx(xb[d] - mx);                                                   \
                    yb[d] = e;                                                                     \
                    tot += e;                                                                      \
                }                                                                                  \
                T inv = 1 / tot;                                                                   \
                for (int64_t d = 0; d < D; d++) yb[d] *= inv;                                      \
            }                                                                                      \
            return;                                                                                \
        }                                                                                          \
        T m[SB], sum[SB];                                                                          \
        for (int64_t q = 0; q < B; q++) m[q] = xb[q], sum[q] = 0;                                  \
        for (int64_t d = 1; d < D; d++)                                                            \
            for (int64_t q = 0; q < B; q++) m[q] = xb[d * S + q] > m[q] ? xb[d * S + q] : m[q];    \
        for (int64_t d = 0; d < D; d++)                                                            \
            for (int64_t q = 0; q < B; q++) {                                                      \
                T e = EXP_##sfx(xb[d * S + q] - m[q]);                                             \
                sum[q] += e;                                                                       \
                if (!lg) yb[d * S + q] = e;                                                        \
            }                                                                                      \
        for (int64_t q = 0; q < B; q++) sum[q] = lg ? m[q] + log(sum[q]) : 1 / sum[q];             \
        for (int64_t d = 0; d < D; d++)                                                            \
            for (int64_t q = 0; q < B; q++)                                                        \
                yb[d * S + q] = lg ? xb[d * S + q] - sum[q] : yb[d * S + q] * sum[q];              \
    }                                                                                              \
    static void bwd_##sfx(void *vj, int64_t u) {                                                   \
        const job *j = vj;                                                                         \
        int64_t D = j->D, S = j->S, r = u / j->nb, s0 = u % j->nb * SB;                            \
        int64_t B = S - s0 < SB ? S - s0 : SB, off = r * D * S + s0;                               \
        const T *g = (const T *)j->a + off, *y = (const T *)j->b + off;                            \
        T *gx = (T *)j->out + off, dot[SB];                                                        \
        bool lg = j->lg;                                                                           \
        for (int64_t q = 0; q < B; q++) dot[q] = 0;                                                \
        for (int64_t d = 0; d < D; d++)                                                            \
            for (int64_t q = 0; q < B; q++)                                                        \
                dot[q] += lg ? g[d * S + q] : g[d * S + q] * y[d * S + q];                         \
        for (int64_t d = 0; d < D; d++)                                                            \
            for (int64_t q = 0; q < B; q++) {                                                      \
                int64_t i = d * S + q;                                                             \
                gx[i] = lg ? g[i] - EXP_##sfx(y[i]) * dot[q] : y[i] * (g[i] - dot[q]);             \
            }                                                                                      \
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

/* runs the unit kernel over out = k(a, b), all dense R x D x S around dim */
static void run(td_tensor *out, const void *a, const void *b, int64_t dim, bool lg, bool back) {
    int64_t R, D, S;
    block(out, dim, &R, &D, &S);
    if (td_numel(out) == 0) return; /* no rows to read */
    job j = {td_data(out), a, b, D, S, (S + SB - 1) / SB, lg};
    bool f32 = out->dtype == TD_FLOAT32;
    td_unit_fn f = back ? (f32 ? bwd_f32 : bwd_f64) : (f32 ? fwd_f32 : fwd_f64);
    td_run_units(R * j.nb, R * D * S, f, &j);
}

static int softmax_run(td_node *n, bool lg) {
    td_tensor *y = n->out[0];
    td_tensor *a = td_to_dtype(n->in[0], y->dtype), *x = a ? td_contiguous(a) : NULL;
    td_release(a);
    if (!x) return -1;
    run(y, td_data(x), NULL, n->args.dim, lg, false);
    td_release(x);
    return td_poll_interrupt();
}

static int softmax_grad(td_node *n, td_tensor *g0, td_tensor **gin, bool lg) {
    td_tensor *y = n->saved_out[0];
    td_tensor *a = td_to_dtype(g0, y->dtype), *g = a ? td_contiguous(a) : NULL;
    td_tensor *yc = td_contiguous(y), *gx = td_empty(y->shape, y->ndim, y->dtype);
    td_release(a);
    if (g && yc && gx) {
        run(gx, td_data(g), td_data(yc), n->args.dim, lg, true);
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

const td_op td_op_softmax = {.name = "softmax",
                             .nin = 1,
                             .flags = TD_SAVE_OUT | TD_GRAD_NOREAD,
                             .doc = "exp(t) normalised to sum 1 along dim (stable)",
                             .shape = softmax_shape,
                             .forward = softmax_forward,
                             .backward = softmax_backward};
const td_op td_op_log_softmax = {.name = "log_softmax",
                                 .nin = 1,
                                 .flags = TD_SAVE_OUT | TD_GRAD_NOREAD,
                                 .doc = "log of softmax along dim, computed as t - logsumexp(t)",
                                 .shape = softmax_shape,
                                 .forward = log_softmax_forward,
                                 .backward = log_softmax_backward};
