/* tensor/ops/stats.c: two-pass reductions on reduce.c's engine (var std: mean first, then squared
 * deviations; logsumexp: max first, then exp(x - max); norm) and cumsum. Sizes: x is seen as a
 * dense O x N x I block around the reduced (or scanned) dim; COLB outputs side by side. */
#include "reduce.h"

#include <math.h>

/* Per-output centres (the mean, or the max made finite) as doubles in output order. */
static double *centres(td_node *n, bool mean) {
    td_tensor *x = n->in[0];
    int d0, d1;
    td_red_run(n, &d0, &d1);
    int64_t nout = 1;
    for (int i = 0; i < x->ndim; i++)
        if (i < d0 || i > d1) nout *= x->shape[i];
    double *c = td_malloc(sizeof(double) * (size_t)(nout ? nout : 1));
    sink sk = {
        .out = c, .odt = TD_FLOAT64, .fin = mean ? F_DIV : F_NONE, .div = (double)td_red_count(n)};
    if (!c || td_reduce_dims(x, d0, d1, mean ? K_SUM : K_MAX, &sk) < 0) {
        td_free(c);
        return NULL;
    }
    if (!mean)
        for (int64_t o = 0; o < nout; o++)
            if (!isfinite(c[o])) c[o] = 0; /* exp(x - inf) would be NaN: all -inf gives -inf */
    return c;
}

static double dof(const td_node *n) { /* N - 1 for the unbiased estimate (flag) */
    return (double)td_red_count(n) - (n->args.flag ? 1 : 0);
}

static int moment_forward(td_node *n, int fin) {
    int d0, d1;
    td_red_run(n, &d0, &d1);
    double *c = centres(n, true);
    if (!c) return -1;
    sink sk = {
        .out = td_data(n->out[0]), .odt = n->out[0]->dtype, .fin = fin, .div = dof(n), .c = c};
    int rc = td_reduce_dims(n->in[0], d0, d1, K_SQDEV, &sk);
    td_free(c);
    return rc;
}

static int float_shape(td_node *n) {
    return td_red_shape(n, n->in[0]->dtype, 1, true, false);
}
static int var_forward(td_node *n) {
    return moment_forward(n, F_DIV);
}
static int std_forward(td_node *n) {
    return moment_forward(n, F_SQRT);
}

static int norm_forward(td_node *n) {
    int d0, d1;
    td_red_run(n, &d0, &d1);
    sink sk = {.out = td_data(n->out[0]), .odt = n->out[0]->dtype, .fin = F_SQRT, .div = 1};
    return td_reduce_dims(n->in[0], d0, d1, K_SUMSQ, &sk);
}

static int logsumexp_forward(td_node *n) {
    int d0, d1;
    td_red_run(n, &d0, &d1);
    double *c = centres(n, false);
    if (!c) return -1;
    sink sk = {.out = td_data(n->out[0]), .odt = n->out[0]->dtype, .fin = F_LSE, .c = c};
    int rc = td_reduce_dims(n->in[0], d0, d1, K_EXPDEV, &sk);
    td_free(c);
    return rc;
}

/* gin = f(g, x, y, mean) elementwise over the O x N x I block, in float64 */
enum { B_VAR, B_STD, B_NORM, B_LSE };

static int moment_backward(td_node *n, td_tensor *g0, int which, td_tensor **gin) {
    int64_t O, N, I;
    td_red_block(n, &O, &N, &I);
    td_tensor *x = td_dense64(n->in[0]), *g = td_dense64(g0), *y = NULL, *r = NULL;
    if (!x || !g || (which != B_VAR && !(y = td_dense64(n->saved_out[0]))) ||
        !(r = td_empty(x->shape, x->ndim, TD_FLOAT64)))
        goto done;
    const double *xd = td_data(x), *gd = td_data(g), *yd = y ? td_data(y) : NULL;
    double *rd = td_data(r), den = dof(n);
    for (int64_t o = 0; o < O; o++)
        for (int64_t i = 0; i < I; i++) {
            const double *xl = xd + o * N * I + i;
            double *rl = rd + o * N * I + i, gv = gd[o * I + i], yv = yd ? yd[o * I + i] : 0;
            double mean = 0;
            if (which <= B_STD) {
                for (int64_t j = 0; j < N; j++) mean += xl[j * I];
                mean /= (double)N;
            }
            for (int64_t j = 0; j < N; j++) {
                double v = xl[j * I];
                switch (which) {
                case B_VAR:
                    rl[j * I] = gv * 2 * (v - mean) / den;
                    break;
                case B_STD:
                    rl[j * I] = gv * (v - mean) / (den * yv);
                    break;
                case B_NORM:
                    rl[j * I] = yv == 0 ? 0 : gv * v / yv;
                    break;
                default:
                    rl[j * I] = gv * exp(v - yv);
                    break;
                }
            }
        }
    gin[0] = td_to_dtype(r, n->in[0]->dtype);
done:
    td_release(x), td_release(g), td_release(y), td_release(r);
    return gin[0] ? 0 : -1;
}

static int var_backward(td_node *n, td_tensor *const *gout, td_tensor **gin) {
    return moment_backward(n, gout[0], B_VAR, gin);
}
static int std_backward(td_node *n, td_tensor *const *gout, td_tensor **gin) {
    return moment_backward(n, gout[0], B_STD, gin);
}
static int norm_backward(td_node *n, td_tensor *const *gout, td_tensor **gin) {
    return moment_backward(n, gout[0], B_NORM, gin);
}
static int logsumexp_backward(td_node *n, td_tensor *const *gout, td_tensor **gin) {
    return moment_backward(n, gout[0], B_LSE, gin);
}

const td_op td_op_var = {.name = "var",
                         .nin = 1,
                         .doc = "variance (unbiased unless {unbiased=false}), over dim or all",
                         .shape = float_shape,
                         .forward = var_forward,
                         .backward = var_backward};
const td_op td_op_std = {
    .name = "std",
    .nin = 1,
    .flags = TD_SAVE_OUT,
    .doc = "standard deviation (unbiased unless {unbiased=false}), over dim or all",
    .shape = float_shape,
    .forward = std_forward,
    .backward = std_backward};
const td_op td_op_norm = {.name = "norm",
                          .nin = 1,
                          .flags = TD_SAVE_OUT,
                          .doc = "Euclidean (L2) norm, over dim or all",
                          .shape = float_shape,
                          .forward = norm_forward,
                          .backward = norm_backward};
const td_op td_op_logsumexp = {.name = "logsumexp",
                               .nin = 1,
                               .flags = TD_SAVE_OUT,
                               .doc = "log(sum(exp(x))) computed stably, over dim or all",
                               .shape = float_shape,
                               .forward = logsumexp_forward,
                               .backward = logsumexp_backward};

/* ---- cumsum: running sums along a dim (integers sum in int64, wrapping) ------------------- */

typedef struct scan_job { /* y, x: dense O x N x I; a unit is one o and COLB columns of I */
    void *y;
    const void *x;
    int64_t N, I, nb;
    bool rev;
} scan_job;

#define SCAN(sfx, T, ACC)                                                                          \
    static void scan_##sfx(void *vj, int64_t u) {                                                  \
        const scan_job *j = vj;                                                                    \
        const T *x = j->x;                                                                         \
        T *y = j->y;                                                                               \
        int64_t N = j->N, I = j->I, o = u / j->nb, i0 = u % j->nb * COLB;                          \
        int64_t B = I - i0 < COLB ? I - i0 : COLB;                                                 \
        ACC acc[COLB] = {0};                                                                       \
        for (int64_t r = 0; r < N; r++) {                                                          \
            int64_t off = (o * N + (j->rev ? N - 1 - r : r)) * I + i0;                             \
            for (int64_t q = 0; q < B; q++) {                                                      \
                acc[q] += (ACC)x[off + q];                                                         \
                y[off + q] = (T)acc[q];                                                            \
            }                                                                                      \
        }                                                                                          \
    }
SCAN(f32, float, double)
SCAN(f64, double, double)
SCAN(i64, int64_t, uint64_t) /* wraps in two's complement, as in PyTorch */

/* y = running sum of x (same shape, dtype y's) along dim d, backwards when rev. */
static int scan(td_tensor *y, td_tensor *x0, int d, bool rev) {
    int64_t O = 1, N = 1, I = 1;
    for (int i = 0; i < x0->ndim; i++) *(i < d ? &O : i > d ? &I : &N) *= x0->shape[i];
    td_tensor *a = td_to_dtype(x0, y->dtype), *x = a ? td_contiguous(a) : NULL;
    td_release(a);
    if (!x) return -1;
    scan_job j = {td_data(y), td_data(x), N, I, (I + COLB - 1) / COLB, rev};
    td_unit_fn f = y->dtype == TD_FLOAT32 ? scan_f32 : y->dtype == TD_FLOAT64 ? scan_f64 : scan_i64;
    td_run_units(O * j.nb, O * N * I, f, &j);
    td_release(x);
    return td_poll_interrupt();
}

static int cumsum_shape(td_node *n) {
    td_tensor *x = n->in[0];
    td_meta *m = &n->meta[0];
    if (x->ndim > 0 && td_normdim("cumsum", &n->args.dim, x->ndim) < 0) return -1;
    m->ndim = x->ndim;
    for (int i = 0; i < x->ndim; i++) m->shape[i] = x->shape[i];
    m->dtype = td_dtype_is_float(x->dtype) ? x->dtype : TD_INT64;
    return 0;
}
static int cumsum_forward(td_node *n) {
    return scan(n->out[0], n->in[0], (int)n->args.dim, false);
}
static int cumsum_backward(td_node *n, td_tensor *const *gout, td_tensor **gin) {
    td_tensor *x = n->in[0];
    if (!(gin[0] = td_empty(x->shape, x->ndim, x->dtype))) return -1;
    if (scan(gin[0], gout[0], (int)n->args.dim, true) == 0) return 0;
    td_release(gin[0]);
    gin[0] = NULL;
    return -1;
}

const td_op td_op_cumsum = {.name = "cumsum",
                            .nin = 1,
                            .flags = TD_GRAD_NOREAD,
                            .doc = "running sums along dim (integers sum in int64)",
                            .shape = cumsum_shape,
                            .forward = cumsum_forward,
                            .backward = cumsum_backward};
