/* tensor/ops/loss_pointwise.c: the losses that compare input x and target y element by element
 * (mse, l1, smooth_l1, binary_cross_entropy, ..._with_logits, kl_div), one row each below.
 * Sizes: n elements, cut into fixed chunks of CHUNK (the sum is taken chunk by chunk, in order,
 * so it does not depend on the thread count). args: mode = reduction, a = beta (smooth_l1),
 * flag = log_target (kl_div); binary_cross_entropy_with_logits takes pos_weight as an optional
 * third input broadcast to x. */
#include "nn.h"

#include <string.h>
#include <tgmath.h>

#define CHUNK 16384

/* Each row: kind, loss l(x, y), dl/dx, dl/dy, dl/dW. In scope: x, y, d = x - y, B = beta,
 * W = the pos_weight element (1 without), and `real`, the element type. */
#define SGN(v)   ((real)((v > 0) - (v < 0)))
#define CLOG(v)  fmax(log(v), (real)-100)                      /* PyTorch clamps BCE's logs */
#define SP(v)    (log1p(exp(-fabs(v))) + fmax(-(v), (real)0))  /* softplus(-v), stable */
#define SIG(v)   (1 / (1 + exp(-(v))))
#define XLOGX(v) ((v) == 0 ? (real)0 : (v) * log(v))            /* 0 log 0 = 0, as xlogy */
#define LOSSES(X)                                                                                  \
    X(MSE, d * d, 2 * d, -2 * d, 0)                                                                \
    X(L1, fabs(d), SGN(d), -SGN(d), 0)                                                             \
    X(SMOOTH_L1, fabs(d) < B ? d * d / (2 * B) : fabs(d) - B / 2, fabs(d) < B ? d / B : SGN(d),   \
      fabs(d) < B ? -d / B : -SGN(d), 0)                                                           \
    X(BCE, -(y * CLOG(x) + (1 - y) * CLOG(1 - x)), (x - y) / fmax((1 - x) * x, (real)1e-12),       \
      CLOG(1 - x) - CLOG(x), 0)                                                                    \
    X(BCE_LOGITS, (1 - y) * x + (1 + (W - 1) * y) * SP(x), (W * y + 1 - y) * SIG(x) - W * y,       \
      (W - 1) * SP(x) - x, y * SP(x))                                                              \
    X(KL, XLOGX(y) - y * x, -y, (y == 0 ? 0 : log(y) + 1) - x, 0)                                  \
    X(KL_LOG, exp(y) * (y - x), -exp(y), exp(y) * (y - x + 1), 0)

#define X(K, ...) K,
enum { LOSSES(X) NKINDS };
#undef X

typedef struct pwjob {
    const void *x, *y, *w, *g; /* g: per-element output gradient (reduction none) or NULL */
    void *out, *gx, *gy, *gw;  /* out NULL: sum into part[] */
    double *part, beta, g0;
    int64_t n;
} pwjob;

#define PW_KERNELS(K, sfx, T, L, DX, DY, DW)                                                       \
    static void K##_fwd_##sfx(void *vj, int64_t u) {                                               \
        typedef T real;                                                                            \
        const pwjob *j = vj;                                                                       \
        const real *xs = j->x, *ys = j->y, *ws = j->w, B = (real)j->beta;                          \
        real *out = j->out;                                                                        \
        int64_t i0 = u * CHUNK, i1 = i0 + CHUNK < j->n ? i0 + CHUNK : j->n;                        \
        double acc = 0;                                                                            \
        (void)B, (void)ws;                                                                         \
        for (int64_t i = i0; i < i1; i++) {                                                        \
            real x = xs[i], y = ys[i], W = ws ? ws[i] : 1, d = x - y, l = L;                       \
            (void)W, (void)d;                                                                      \
            if (out) out[i] = l;                                                                   \
            else acc += (double)l;                                                                 \
        }                                                                                          \
        if (!out) j->part[u] = acc;                                                                \
    }                                                                                              \
    static void K##_bwd_##sfx(void *vj, int64_t u) {                                               \
        typedef T real;                                                                            \
        const pwjob *j = vj;                                                                       \
        const real *xs = j->x, *ys = j->y, *ws = j->w, *g = j->g, B = (real)j->beta;               \
        real *gx = j->gx, *gy = j->gy, *gw = j->gw, g0 = (real)j->g0;                              \
        int64_t i0 = u * CHUNK, i1 = i0 + CHUNK < j->n ? i0 + CHUNK : j->n;                        \
        (void)B, (void)ws, (void)gw;                                                               \
        for (int64_t i = i0; i < i1; i++) {                                                        \
            real x = xs[i], y = ys[i], W = ws ? ws[i] : 1, d = x - y, G = g ? g[i] : g0;           \
            (void)W, (void)d;                                                                      \
            if (gx) gx[i] = G * (DX);                                                              \
            if (gy) gy[i] = G * (DY);                                                              \
            if (gw) gw[i] = G * (DW);                                                              \
        }                                                                                          \
    }
#define X(K, ...) PW_KERNELS(K, f32, float, __VA_ARGS__) PW_KERNELS(K, f64, double, __VA_ARGS__)
LOSSES(X)
#undef X

#define X(K, ...) K##_fwd_f32,
static const td_unit_fn fwd_f32[] = {LOSSES(X)};
#undef X
#define X(K, ...) K##_fwd_f64,
static const td_unit_fn fwd_f64[] = {LOSSES(X)};
#undef X
#define X(K, ...) K##_bwd_f32,
static const td_unit_fn bwd_f32[] = {LOSSES(X)};
#undef X
#define X(K, ...) K##_bwd_f64,
static const td_unit_fn bwd_f64[] = {LOSSES(X)};
#undef X

static int kind_of(const td_node *n) {
    const td_op *op = n->op;
    if (op == &td_op_mse_loss) return MSE;
    if (op == &td_op_l1_loss) return L1;
    if (op == &td_op_smooth_l1_loss) return SMOOTH_L1;
    if (op == &td_op_binary_cross_entropy) return BCE;
    if (op == &td_op_binary_cross_entropy_with_logits) return BCE_LOGITS;
    return n->args.flag ? KL_LOG : KL;
}

static int pointwise_shape(td_node *n) {
    const char *fn = n->op->name;
    td_tensor *x = n->in[0], *y = n->in[1];
    char s1[128], s2[128];
    int k = kind_of(n);
    if (n->nin != 2 + (k == BCE_LOGITS && n->nin == 3))
        return td_error("%s: expected 2 inputs%s, got %d", fn,
                        k == BCE_LOGITS ? " (3 with pos_weight)" : "", n->nin);
    if (!td_dtype_is_float(x->dtype))
        return td_error("%s: expected a float input, got %s", fn, td_dtype_name(x->dtype));
    if (y->dtype == TD_BOOL && k != BCE && k != BCE_LOGITS)
        return td_error("%s: expected a numeric target, got bool", fn);
    if (x->ndim != y->ndim || memcmp(x->shape, y->shape, sizeof(int64_t) * (size_t)x->ndim))
        return td_error("%s: input shape %s and target shape %s differ", fn,
                        td_shape_str(x->shape, x->ndim, s1, sizeof s1),
                        td_shape_str(y->shape, y->ndim, s2, sizeof s2));
    if (n->nin == 3) {
        td_tensor *w = n->in[2], *pair[2] = {x, w};
        int64_t bs[TD_MAX_DIMS];
        int bn;
        if (!td_dtype_is_float(w->dtype))
            return td_error("%s: pos_weight must be float, got %s", fn, td_dtype_name(w->dtype));
        if (td_broadcast_shape(fn, pair, 2, bs, &bn) < 0 || bn != x->ndim ||
            memcmp(bs, x->shape, sizeof(int64_t) * (size_t)bn))
            return td_error("%s: pos_weight of shape %s does not broadcast to input %s", fn,
                            td_shape_str(w->shape, w->ndim, s1, sizeof s1),
                            td_shape_str(x->shape, x->ndim, s2, sizeof s2));
    }
    int m = n->args.mode;
    if (m < TD_REDUCE_MEAN || m > TD_REDUCE_BATCHMEAN || (m == TD_REDUCE_BATCHMEAN && k < KL))
        return td_error("%s: reduction must be %s, got '%s'", fn,
                        k >= KL ? "'mean', 'sum', 'none' or 'batchmean'" : "'mean', 'sum' or 'none'",
                        td_reduction_name(m));
    if (k == SMOOTH_L1 && !(n->args.a >= 0))
        return td_error("%s: beta must be >= 0, got %g", fn, n->args.a);
    td_loss_meta(n, x->shape, x->ndim, x->dtype);
    return 0;
}

/* what mean (numel) or batchmean (the first dim) divides by */
static double denominator(const td_node *n) {
    td_tensor *x = n->in[0];
    if (n->args.mode == TD_REDUCE_MEAN) return (double)td_numel(x);
    if (n->args.mode == TD_REDUCE_BATCHMEAN) return x->ndim ? (double)x->shape[0] : 1;
    return 1;
}

/* pos_weight broadcast to x's shape, dense, of dtype dt (new ref) */
static td_tensor *expand_dense(td_tensor *w, const td_tensor *x, td_dtype dt) {
    int64_t st[TD_MAX_DIMS];
    for (int i = 0; i < x->ndim; i++) {
        int k = i - (x->ndim - w->ndim);
        st[i] = k < 0 || w->shape[k] == 1 ? 0 : w->stride[k];
    }
    td_tensor *v = td_view_of(w, x->shape, st, x->ndim, w->offset);
    if (!v) return NULL;
    td_tensor *a = td_to_dtype(v, dt), *c = a ? td_contiguous(a) : NULL;
    td_release(v), td_release(a);
    return c;
}

typedef struct operands {
    td_tensor *x, *y, *w;
} operands;

static int load(const td_node *n, td_dtype dt, operands *o) {
    o->x = td_dense_as(n->in[0], dt);
    o->y = td_dense_as(n->in[1], dt);
    o->w = n->nin == 3 ? expand_dense(n->in[2], n->in[0], dt) : NULL;
    return o->x && o->y && (n->nin < 3 || o->w) ? 0 : -1;
}

static void unload(operands *o) {
    td_release(o->x), td_release(o->y), td_release(o->w);
}

/* binary_cross_entropy's input must be probabilities (PyTorch refuses others too) */
static int check_probs(const td_tensor *x) {
    int64_t k = td_numel(x);
    for (int64_t i = 0; i < k; i++) {
        double v = x->dtype == TD_FLOAT32 ? (double)((const float *)td_data(x))[i]
                                          : ((const double *)td_data(x))[i];
        if (!(v >= 0 && v <= 1))
            return td_error("binary_cross_entropy: input values must be in [0, 1], got %g "
                            "(element %lld)", v, (long long)(i + 1));
    }
    return 0;
}

static int pointwise_forward(td_node *n) {
    td_tensor *out = n->out[0];
    td_dtype dt = out->dtype;
    operands o;
    int k = kind_of(n), rc = -1;
    int64_t N = td_numel(n->in[0]), nu = (N + CHUNK - 1) / CHUNK;
    bool none = n->args.mode == TD_REDUCE_NONE;
    double *part = none ? NULL : td_malloc(sizeof(double) * (size_t)(nu + 1));
    if (load(n, dt, &o) < 0 || (!none && !part)) goto done;
    if (k == BCE && check_probs(o.x) < 0) goto done;
    pwjob j = {.x = td_data(o.x), .y = td_data(o.y), .w = o.w ? td_data(o.w) : NULL,
               .out = none ? td_data(out) : NULL, .part = part, .beta = n->args.a, .n = N};
    td_run_units(nu, N, (dt == TD_FLOAT32 ? fwd_f32 : fwd_f64)[k], &j);
    if (td_poll_interrupt() < 0) goto done;
    if (!none) {
        double tot = 0;
        for (int64_t u = 0; u < nu; u++) tot += part[u];
        td_loss_store(out, n->args.mode == TD_REDUCE_SUM ? tot : tot / denominator(n));
    }
    rc = 0;
done:
    unload(&o);
    td_free(part);
    return rc;
}

static int pointwise_backward(td_node *n, td_tensor *const *gout, td_tensor **gin) {
    td_dtype dt = n->in[0]->dtype;
    td_tensor *x = n->in[0], *gk = NULL;
    operands o;
    td_lossgrad lg;
    int k = kind_of(n), rc = -1;
    int64_t N = td_numel(x), nu = (N + CHUNK - 1) / CHUNK;
    if (load(n, dt, &o) < 0 || td_lossgrad_init(&lg, gout[0], dt, denominator(n), &gk) < 0)
        goto done;
    for (int i = 0; i < n->nin; i++)
        if (n->needs_grad[i] && !(gin[i] = td_empty(x->shape, x->ndim, dt))) goto done;
    pwjob j = {.x = td_data(o.x), .y = td_data(o.y), .w = o.w ? td_data(o.w) : NULL,
               .g = lg.g, .g0 = lg.g0, .beta = n->args.a, .n = N};
    j.gx = gin[0] ? td_data(gin[0]) : NULL;
    j.gy = gin[1] ? td_data(gin[1]) : NULL;
    j.gw = n->nin == 3 && gin[2] ? td_data(gin[2]) : NULL; /* autograd sums it to pos_weight */
    td_run_units(nu, N, (dt == TD_FLOAT32 ? bwd_f32 : bwd_f64)[k], &j);
    rc = td_poll_interrupt();
done:
    unload(&o);
    td_release(gk);
    return rc;
}

#define POINTWISE(id, lname, varin, text)                                                          \
    const td_op td_op_##id = {.name = lname,                                                       \
                              .nin = 2,                                                            \
                              .flags = varin,                                                      \
                              .doc = text,                                                         \
                              .shape = pointwise_shape,                                            \
                              .forward = pointwise_forward,                                        \
                              .backward = pointwise_backward};
POINTWISE(mse_loss, "mse_loss", 0, "mean squared error (x - y)^2")
POINTWISE(l1_loss, "l1_loss", 0, "mean absolute error |x - y|")
POINTWISE(smooth_l1_loss, "smooth_l1_loss", 0,
          "Huber-like loss: (x - y)^2 / (2 beta) below beta, |x - y| - beta/2 above")
POINTWISE(binary_cross_entropy, "binary_cross_entropy", 0,
          "-(y log p + (1 - y) log(1 - p)) for probabilities p, logs clamped at -100")
POINTWISE(binary_cross_entropy_with_logits, "binary_cross_entropy_with_logits", TD_VARIN,
          "binary cross-entropy of sigmoid(x), computed stably from the logits x")
POINTWISE(kl_div, "kl_div", 0,
          "Kullback-Leibler divergence y (log y - x) of target y from log-probabilities x")
