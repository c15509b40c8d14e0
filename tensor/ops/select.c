/* tensor/ops/select.c: elementwise ops that pick between values: clamp(lo, hi), where(cond,
 * a, b), masked_fill(mask, v) and dropout(p, training). Conditions and masks are bool tensors
 * that broadcast; gradients flow to the values picked. */
#include "elementwise.h"

#include <string.h>

/* Bounds and fill values arrive as doubles; integer dtypes saturate instead of overflowing. */
#define to_i64 td_f2i

static uint8_t to_u8(double v) {
    return v > 255 ? 255 : v > 0 ? (uint8_t)v : 0;
}

static int8_t to_i8(double v) {
    return v > 127 ? 127 : v < -128 ? -128 : v == v ? (int8_t)v : 0;
}

static int check_bool(const td_node *n, int i, const char *what) {
    const td_tensor *t = n->in[i];
    char s[128];
    if (t->dtype == TD_BOOL) return 0;
    return td_error("%s: %s must be a bool tensor, got %s of shape %s (compare to make one, "
                    "e.g. t:gt(0))",
                    n->op->name, what, td_dtype_name(t->dtype),
                    td_shape_str(t->shape, t->ndim, s, sizeof s));
}

/* Gradient picking loops over {gin, g, cond}: gin = g where cond (or where not cond). */
#define PICK_LOOP(fn, TY, expr)                                                                    \
    static void fn(char **p, const int64_t *s, int64_t n, const void *ctx) {                       \
        typedef TY T;                                                                              \
        (void)ctx;                                                                                 \
        for (int64_t i = 0; i < n; i++) {                                                          \
            T g = *(const T *)(p[1] + i * s[1]);                                                   \
            bool c = *(const bool *)(p[2] + i * s[2]);                                             \
            *(T *)(p[0] + i * s[0]) = (expr);                                                      \
        }                                                                                          \
    }
PICK_LOOP(pick_t32, float, c ? g : 0)
PICK_LOOP(pick_t64, double, c ? g : 0)
PICK_LOOP(pick_f32, float, c ? 0 : g)
PICK_LOOP(pick_f64, double, c ? 0 : g)
static const td_loop pick_true[TD_NDTYPES] = {pick_t32, pick_t64};
static const td_loop pick_false[TD_NDTYPES] = {pick_f32, pick_f64};

/* *gin = loops[dtype of g] over {gin, g, n->in[c]}, in in[i]'s dtype. 0 or -1. */
static int pick_grad(td_node *n, td_tensor *g, int c, const td_loop *loops, int i,
                     td_tensor **gin) {
    td_tensor *out = td_empty(g->shape, g->ndim, g->dtype), *conv;
    td_tensor *ops[3] = {out, g, n->in[c]};
    if (!out) return -1;
    if (!loops[g->dtype]) {
        td_release(out);
        return td_error("%s: backward: gradient of dtype %s", n->op->name, td_dtype_name(g->dtype));
    }
    if (td_foreach(ops, 3, loops[g->dtype], NULL) < 0) {
        td_release(out);
        return -1;
    }
    if (out->dtype == n->in[i]->dtype || !td_dtype_is_float(n->in[i]->dtype)) {
        *gin = out;
        return 0;
    }
    conv = td_to_dtype(out, n->in[i]->dtype);
    td_release(out);
    *gin = conv;
    return conv ? 0 : -1;
}

#define EW_ID(v) (v)

/* ---- clamp ----------------------------------------------------------------------------------
 * y = min(max(x, lo), hi) (so lo > hi gives hi, and NaN stays NaN, as in PyTorch); the
 * gradient passes where lo <= x <= hi. */
#define CLAMP_LOOP(fn, TY, lowest, highest, LO, HI)                                               \
    static void fn(char **p, const int64_t *s, int64_t n, const void *ctx) {                       \
        typedef TY T;                                                                              \
        const td_args *a = ctx;                                                                    \
        const T lo = a->has_a ? (T)(LO) : (T)(lowest);                                             \
        const T hi = a->has_b ? (T)(HI) : (T)(highest);                                            \
        if (s[0] == sizeof(T) && s[1] == sizeof(T)) {                                              \
            T *restrict o = (T *)p[0];                                                             \
            const T *restrict x = (const T *)p[1];                                                 \
            for (int64_t i = 0; i < n; i++) {                                                      \
                T v = x[i] < lo ? lo : x[i];                                                       \
                o[i] = v > hi ? hi : v;                                                            \
            }                                                                                      \
        } else {                                                                                   \
            for (int64_t i = 0; i < n; i++) {                                                      \
                T v = *(const T *)(p[1] + i * s[1]);                                               \
                v = v < lo ? lo : v;                                                               \
                *(T *)(p[0] + i * s[0]) = v > hi ? hi : v;                                         \
            }                                                                                      \
        }                                                                                          \
    }
/* int64 bounds: an integer given exactly (lo/hi) is not rounded through the double a/b */
static int64_t bound_i64(td_num exact, double v) { return exact.is_int ? exact.i : to_i64(v); }
CLAMP_LOOP(clamp_f32, float, -INFINITY, INFINITY, a->a, a->b)
CLAMP_LOOP(clamp_f64, double, -INFINITY, INFINITY, a->a, a->b)
CLAMP_LOOP(clamp_i64, int64_t, INT64_MIN, INT64_MAX, bound_i64(a->lo, a->a), bound_i64(a->hi, a->b))
CLAMP_LOOP(clamp_u8, uint8_t, 0, 255, to_u8(a->a), to_u8(a->b))
CLAMP_LOOP(clamp_i8, int8_t, -128, 127, to_i8(a->a), to_i8(a->b))

#define A ((const td_args *)ctx)
GLOOP(clamp_b32, float, (!A->has_a || x >= (T)A->a) && (!A->has_b || x <= (T)A->b) ? g : 0)
GLOOP(clamp_b64, double, (!A->has_a || x >= A->a) && (!A->has_b || x <= A->b) ? g : 0)
#undef A

static int clamp_shape(td_node *n) {
    if (!n->args.has_a && !n->args.has_b)
        return td_error("clamp: expected at least one bound (lo, hi), both are nil");
    return td_ew_shape(n, false, false);
}

static int clamp_forward(td_node *n) {
    static const td_loop loops[TD_NDTYPES] = {clamp_f32, clamp_f64, clamp_i64, clamp_u8,
                                              [TD_INT8] = clamp_i8};
    return td_ew_run(n, n->meta[0].dtype, loops);
}

static int clamp_backward(td_node *n, td_tensor *const *gout, td_tensor **gin) {
    static const td_loop loops[TD_NDTYPES] = {clamp_b32, clamp_b64};
    return td_ew_grad(n, gout[0], loops, 0, &gin[0]);
}

const td_op td_op_clamp = {
    .name = "clamp",
    .nin = 1,
    .flags = TD_INPLACE,
    .doc = "clamp(lo, hi): each value limited to [lo, hi]; either bound may be nil",
    .shape = clamp_shape,
    .forward = clamp_forward,
    .backward = clamp_backward,
};

/* ---- where ----------------------------------------------------------------------------------
 * in = {cond, a, b}; out = cond ? a : b in the result type of a and b. */
#define WHERE_LOOP(fn, T)                                                                          \
    static void fn(char **p, const int64_t *s, int64_t n, const void *ctx) {                       \
        (void)ctx;                                                                                 \
        if (s[0] == sizeof(T) && s[1] == 1 && s[2] == sizeof(T) && s[3] == sizeof(T)) {            \
            T *restrict o = (T *)p[0];                                                             \
            const bool *restrict c = (const bool *)p[1];                                           \
            const T *restrict a = (const T *)p[2], *restrict b = (const T *)p[3];                  \
            for (int64_t i = 0; i < n; i++) o[i] = c[i] ? a[i] : b[i];                             \
        } else {                                                                                   \
            for (int64_t i = 0; i < n; i++)                                                        \
                *(T *)(p[0] + i * s[0]) = *(const bool *)(p[1] + i * s[1])                         \
                                              ? *(const T *)(p[2] + i * s[2])                      \
                                              : *(const T *)(p[3] + i * s[3]);                     \
        }                                                                                          \
    }
WHERE_LOOP(where_f32, float)
WHERE_LOOP(where_f64, double)
WHERE_LOOP(where_i64, int64_t)
WHERE_LOOP(where_u8, uint8_t) /* bool too: one byte */

static int where_shape(td_node *n) {
    if (check_bool(n, 0, "condition") < 0) return -1;
    td_meta *m = &n->meta[0];
    if (td_broadcast_shape("where", n->in, 3, m->shape, &m->ndim) < 0) return -1;
    td_node ab = {.op = n->op, .nin = 2, .in = n->in + 1};
    m->dtype = td_ew_dtype(&ab, false);
    n->nout = 1;
    return 0;
}

static int where_forward(td_node *n) {
    static const td_loop loops[TD_NDTYPES] = {where_f32, where_f64, where_i64,
                                              where_u8,  where_u8,  where_u8};
    td_dtype dt = n->meta[0].dtype;
    td_tensor *ops[4] = {n->out[0], n->in[0], NULL, NULL};
    int rc = -1;
    if (!(ops[2] = td_to_dtype(n->in[1], dt)) || !(ops[3] = td_to_dtype(n->in[2], dt))) goto done;
    rc = td_foreach(ops, 4, loops[dt], NULL);
done:
    td_release(ops[2]);
    td_release(ops[3]);
    return rc;
}

static int where_backward(td_node *n, td_tensor *const *gout, td_tensor **gin) {
    if (n->needs_grad[1] && pick_grad(n, gout[0], 0, pick_true, 1, &gin[1]) < 0) return -1;
    if (n->needs_grad[2] && pick_grad(n, gout[0], 0, pick_false, 2, &gin[2]) < 0) {
        td_release(gin[1]);
        gin[1] = NULL;
        return -1;
    }
    return 0;
}

const td_op td_op_where = {
    .name = "where",
    .nin = 3,
    .doc = "where(cond, a, b): a where cond is true, else b (cond bool; all broadcast)",
    .shape = where_shape,
    .forward = where_forward,
    .backward = where_backward,
};

/* ---- masked_fill ----------------------------------------------------------------------------
 * in = {t, mask}; out = mask ? v : t in t's dtype: v = args.a, or the integer args.index when
 * args.flag (a Lua integer, exact beyond 2^53), stored by tensor/convert.c's rule. */
#define FILL_LOOP(fn, T, dt)                                                                       \
    static void fn(char **p, const int64_t *s, int64_t n, const void *ctx) {                       \
        const td_args *a = ctx;                                                                    \
        T v;                                                                                       \
        td_num_store((td_num){a->a, a->index, a->flag}, dt, &v);                                   \
        for (int64_t i = 0; i < n; i++)                                                            \
            *(T *)(p[0] + i * s[0]) =                                                              \
                *(const bool *)(p[2] + i * s[2]) ? v : *(const T *)(p[1] + i * s[1]);              \
    }
FILL_LOOP(fill_f32, float, TD_FLOAT32)
FILL_LOOP(fill_f64, double, TD_FLOAT64)
FILL_LOOP(fill_i64, int64_t, TD_INT64)
FILL_LOOP(fill_u8, uint8_t, TD_UINT8)
FILL_LOOP(fill_b, bool, TD_BOOL)
FILL_LOOP(fill_i8, int8_t, TD_INT8)

static int masked_fill_shape(td_node *n) {
    if (check_bool(n, 1, "mask") < 0) return -1;
    td_meta *m = &n->meta[0];
    if (td_broadcast_shape("masked_fill", n->in, 2, m->shape, &m->ndim) < 0) return -1;
    m->dtype = n->in[0]->dtype;
    n->nout = 1;
    return 0;
}

static int masked_fill_forward(td_node *n) {
    static const td_loop loops[TD_NDTYPES] = {fill_f32, fill_f64, fill_i64,
                                              fill_u8,  fill_b,   fill_i8};
    td_tensor *ops[3] = {n->out[0], n->in[0], n->in[1]};
    return td_foreach(ops, 3, loops[n->meta[0].dtype], &n->args);
}

static int masked_fill_backward(td_node *n, td_tensor *const *gout, td_tensor **gin) {
    return pick_grad(n, gout[0], 1, pick_false, 0, &gin[0]);
}

const td_op td_op_masked_fill = {
    .name = "masked_fill",
    .nin = 2,
    .flags = TD_INPLACE,
    .doc = "masked_fill(mask, v): v where the bool mask is true, else the tensor's value",
    .shape = masked_fill_shape,
    .forward = masked_fill_forward,
    .backward = masked_fill_backward,
};

/* ---- dropout --------------------------------------------------------------------------------
 * Training: y = x * m / (1 - p) with m ~ Bernoulli(1 - p) from the seeded generator, one mask
 * byte per element kept in n->ctx for backward. Not training, or p = 0: y is a copy of x. */
typedef struct dropout_ctx {
    double scale; /* 1 / (1 - p); 0 when p = 1 */
    int64_t n;    /* mask bytes */
    uint8_t m[];  /* in the output's (contiguous) element order */
} dropout_ctx;

typedef struct mask_run {
    const char *base; /* element 0 of operand 0, contiguous: its offset gives the mask index */
    const dropout_ctx *d;
} mask_run;

#define MASK_LOOP(fn, T)                                                                           \
    static void fn(char **p, const int64_t *s, int64_t n, const void *ctx) {                       \
        const mask_run *r = ctx;                                                                   \
        const uint8_t *m = r->d->m + (p[0] - r->base) / (int64_t)sizeof(T);                        \
        const T scale = (T)r->d->scale;                                                            \
        T *o = (T *)p[0];                                                                          \
        if (s[1] == sizeof(T)) {                                                                   \
            const T *x = (const T *)p[1];                                                          \
            for (int64_t i = 0; i < n; i++) o[i] = m[i] ? x[i] * scale : 0;                        \
        } else {                                                                                   \
            for (int64_t i = 0; i < n; i++)                                                        \
                o[i] = m[i] ? *(const T *)(p[1] + i * s[1]) * scale : 0;                           \
        }                                                                                          \
    }
MASK_LOOP(mask_f32, float)
MASK_LOOP(mask_f64, double)
static const td_loop mask_loops[TD_NDTYPES] = {mask_f32, mask_f64};

static int dropout_shape(td_node *n) {
    const td_tensor *x = n->in[0];
    double p = n->args.a;
    if (!td_dtype_is_float(x->dtype))
        return td_error("dropout: expected a float tensor, got %s", td_dtype_name(x->dtype));
    if (!(p >= 0 && p <= 1)) return td_error("dropout: p must be in [0, 1], got %g", p);
    return td_ew_shape(n, true, false);
}

/* Multiplies src by the mask into the fresh contiguous dst. */
static int apply_mask(td_tensor *dst, td_tensor *src, const dropout_ctx *d) {
    td_tensor *ops[2] = {dst, src};
    mask_run r = {td_data(dst), d};
    return td_foreach(ops, 2, mask_loops[dst->dtype], &r);
}

static int dropout_forward(td_node *n) {
    double p = n->args.a;
    int64_t numel = td_numel(n->out[0]);
    if (!n->args.flag || p == 0) return td_copy_into(n->out[0], n->in[0]);
    dropout_ctx *d = td_malloc(sizeof *d + (size_t)numel);
    if (!d) return -1;
    n->ctx = d; /* td_run or the autograd engine frees it */
    d->scale = p < 1 ? 1 / (1 - p) : 0;
    d->n = numel;
    td_tensor *m = td_empty(&numel, 1, TD_UINT8);
    if (!m || td_fill_bernoulli(m, 1 - p) < 0) {
        td_release(m);
        return -1;
    }
    if (numel) memcpy(d->m, td_data(m), (size_t)numel);
    td_release(m);
    return apply_mask(n->out[0], n->in[0], d);
}

static int dropout_backward(td_node *n, td_tensor *const *gout, td_tensor **gin) {
    td_tensor *g = gout[0], *out = td_empty(g->shape, g->ndim, n->in[0]->dtype);
    if (!out) return -1;
    const dropout_ctx *d = n->ctx;
    td_tensor *gc = d ? td_to_dtype(g, out->dtype) : NULL;
    int rc = !d ? td_copy_into(out, g) : gc ? apply_mask(out, gc, d) : -1;
    td_release(gc);
    if (rc < 0) {
        td_release(out);
        return -1;
    }
    *gin = out;
    return 0;
}

const td_op td_op_dropout = {
    .name = "dropout",
    .nin = 1,
    .flags = TD_GRAD_NOREAD,
    .doc = "dropout(p, training): zeroes each element with probability p and scales the rest "
           "by 1/(1-p); a copy when not training",
    .shape = dropout_shape,
    .forward = dropout_forward,
    .backward = dropout_backward,
};
