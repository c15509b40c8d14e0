/* tensor/ops/reduce.c: reductions over one dim or all elements (sum mean prod max min argmax
 * argmin all any), td_sum_to, and the engine stats.c shares. Sizes: x is O outputs (kept dims)
 * times a run of N elements s apart, or (backward) a dense O x N x I block. One thread computes
 * each output in a fixed order, long runs in fixed chunks: results ignore the thread count. */
#include "reduce.h"

#include <math.h>
#include <string.h>

static bool col_layout(const plan *pl) {
    /* the innermost kept dim is contiguous: accumulate whole rows of outputs at once */
    return pl->nk > 0 && pl->kst[pl->nk - 1] == 1 && pl->ks[pl->nk - 1] >= 4 &&
           (pl->s != 1 || pl->n == 1);
}

static int64_t kept_offset(const plan *pl, int64_t o) {
    int64_t off = 0;
    for (int i = pl->nk - 1; i >= 0; i--) {
        off += o % pl->ks[i] * pl->kst[i];
        o /= pl->ks[i];
    }
    return off;
}

static double finish(const sink *sk, int64_t o, double v) {
    switch (sk->fin) {
    case F_DIV:
        return v / sk->div;
    case F_SQRT:
        return sqrt(v / sk->div);
    case F_LSE:
        return log(v) + sk->c[o];
    default:
        return v;
    }
}

#define RCAT_(a, b) a##_##b
#define RCAT(a, b)  RCAT_(a, b)
#define ISNAN(v)    isnan(v)
#define T           float
#define ACC         double
#define UACC        double
#define SFX         f32
#include "reduce_kern.h"
#undef T
#undef ACC
#undef UACC
#undef SFX
#define T   double
#define ACC double
#define UACC double
#define SFX f64
#include "reduce_kern.h"
#undef T
#undef ACC
#undef UACC
#undef SFX
#undef ISNAN
#define ISNAN(v) ((void)(v), 0)
#define T        int64_t
#define ACC      int64_t
#define UACC     uint64_t
#define SFX      i64
#include "reduce_kern.h"
#undef T
#undef ACC
#undef UACC
#undef SFX
#define T   uint8_t
#define ACC int64_t
#define UACC uint64_t
#define SFX u8
#include "reduce_kern.h"
#undef T
#undef ACC
#undef UACC
#undef SFX
#define T   int8_t
#define ACC int64_t
#define UACC uint64_t
#define SFX i8
#include "reduce_kern.h"
#undef T
#undef ACC
#undef UACC
#undef SFX
#define T   bool
#define ACC int64_t
#define UACC uint64_t
#define SFX b
#include "reduce_kern.h"
#undef T
#undef ACC
#undef UACC
#undef SFX
#undef ISNAN

/* Views x as kept dims around the run d0..d1. Returns false when the run's elements are not one
 * stride apart (the caller then reduces a contiguous copy). sortable: the order inside the run
 * does not matter (a full reduction without positions), so a transposed x still coalesces. */
static bool make_plan(const td_tensor *x, int d0, int d1, bool sortable, plan *pl) {
    int64_t sh[TD_MAX_DIMS], st[TD_MAX_DIMS];
    int m = 0;
    pl->x = td_data(x);
    pl->nk = 0;
    pl->nout = pl->n = pl->s = 1;
    for (int i = 0; i < x->ndim; i++) {
        if (x->shape[i] == 1) continue;
        if (i >= d0 && i <= d1) {
            sh[m] = x->shape[i], st[m++] = x->stride[i];
            pl->n *= x->shape[i];
            continue;
        }
        pl->nout *= x->shape[i];
        int k = pl->nk;
        if (k && pl->kst[k - 1] == x->stride[i] * x->shape[i]) {
            pl->ks[k - 1] *= x->shape[i];
            pl->kst[k - 1] = x->stride[i];
        } else {
            pl->ks[k] = x->shape[i], pl->kst[k] = x->stride[i];
            pl->nk++;
        }
    }
    if (sortable) /* insertion sort by descending stride; stable */
        for (int i = 1; i < m; i++)
            for (int j = i; j > 0 && st[j] > st[j - 1]; j--) {
                int64_t a = sh[j], b = st[j];
                sh[j] = sh[j - 1], st[j] = st[j - 1];
                sh[j - 1] = a, st[j - 1] = b;
            }
    for (int j = 0; j + 1 < m; j++)
        if (st[j] != st[j + 1] * sh[j + 1]) return pl->n == 0;
    if (m) pl->s = st[m - 1];
    return true;
}

static int run_plan(td_dtype dt, const plan *pl, int k, const sink *sk) {
    switch (dt) {
    case TD_FLOAT32:
        return reduce_f32(pl, k, sk);
    case TD_FLOAT64:
        return reduce_f64(pl, k, sk);
    case TD_INT64:
        return reduce_i64(pl, k, sk);
    case TD_UINT8:
        return reduce_u8(pl, k, sk);
    case TD_INT8:
        return reduce_i8(pl, k, sk);
    default:
        return reduce_b(pl, k, sk);
    }
}

int td_reduce_dims(td_tensor *x, int d0, int d1, int k, const sink *sk) {
    plan pl;
    bool sortable = d0 == 0 && d1 == x->ndim - 1 && !sk->at;
    if (make_plan(x, d0, d1, sortable, &pl)) return run_plan(x->dtype, &pl, k, sk);
    td_tensor *c = td_contiguous(x);
    if (!c) return -1;
    make_plan(c, d0, d1, false, &pl);
    int rc = run_plan(c->dtype, &pl, k, sk);
    td_release(c);
    return rc;
}

/* ---- shape rules shared by the reduction ops ----------------------------------------------- */

void td_red_run(const td_node *n, int *d0, int *d1) {
    const td_tensor *x = n->in[0];
    bool all = !n->args.has_a || x->ndim == 0;
    *d0 = all ? 0 : (int)n->args.dim;
    *d1 = all ? x->ndim - 1 : (int)n->args.dim;
}

int64_t td_red_count(const td_node *n) {
    int d0, d1;
    td_red_run(n, &d0, &d1);
    int64_t c = 1;
    for (int i = d0; i <= d1; i++) c *= n->in[0]->shape[i];
    return c;
}

int td_red_shape(td_node *n, td_dtype odt, int nout, bool need_float, bool need_items) {
    td_tensor *x = n->in[0];
    td_meta *m = &n->meta[0];
    char buf[128];
    const char *fn = n->op->name;
    if (need_float && !td_dtype_is_float(x->dtype))
        return td_error("%s: expected a float tensor, got %s (convert with t:float())", fn,
                        td_dtype_name(x->dtype));
    if (n->args.has_a && x->ndim > 0 && td_normdim(fn, &n->args.dim, x->ndim) < 0) return -1;
    int d0, d1;
    td_red_run(n, &d0, &d1);
    m->ndim = 0;
    for (int i = 0; i < x->ndim; i++)
        if (i < d0 || i > d1)
            m->shape[m->ndim++] = x->shape[i];
        else if (n->args.keepdim)
            m->shape[m->ndim++] = 1;
    if (need_items && td_red_count(n) == 0) {
        bool some_out = true;
        for (int i = 0; i < m->ndim; i++) some_out = some_out && m->shape[i] != 0;
        if (some_out || !n->args.has_a)
            return td_error("%s: cannot reduce an empty %s of shape %s", fn,
                            n->args.has_a ? "dim" : "tensor",
                            td_shape_str(x->shape, x->ndim, buf, sizeof buf));
    }
    m->dtype = odt;
    n->nout = nout;
    if (nout == 2) {
        n->meta[1] = *m;
        n->meta[1].dtype = TD_INT64;
    }
    return 0;
}

/* ---- gradients: x as a dense O x N x I block --------------------------------------------- */

void td_red_block(const td_node *n, int64_t *O, int64_t *N, int64_t *I) {
    int d0, d1;
    td_red_run(n, &d0, &d1);
    const td_tensor *x = n->in[0];
    *O = *N = *I = 1;
    for (int i = 0; i < x->ndim; i++) *(i < d0 ? O : i > d1 ? I : N) *= x->shape[i];
}

td_tensor *td_dense64(td_tensor *t) {
    td_tensor *a = td_to_dtype(t, TD_FLOAT64);
    if (!a) return NULL;
    td_tensor *b = td_contiguous(a);
    td_release(a);
    return b;
}

/* g (the output's shape) broadcast back over the reduced run, times scale, as x's dtype. */
static td_tensor *expand_grad(const td_node *n, td_tensor *g, double scale) {
    const td_tensor *x = n->in[0];
    int d0, d1;
    td_red_run(n, &d0, &d1);
    td_tensor *gs = td_empty(g->shape, g->ndim, x->dtype), *v = NULL, *gin = NULL;
    if (!gs || td_copy_into(gs, g) < 0) goto done;
    if (scale != 1) {
        int64_t m = td_numel(gs);
        if (gs->dtype == TD_FLOAT32)
            for (int64_t i = 0; i < m; i++) ((float *)gs->storage->data)[i] *= (float)scale;
        else
            for (int64_t i = 0; i < m; i++) ((double *)gs->storage->data)[i] *= scale;
    }
    int64_t st[TD_MAX_DIMS];
    for (int i = 0, j = 0; i < x->ndim; i++)
        if (i >= d0 && i <= d1) {
            st[i] = 0;
            j += n->args.keepdim;
        } else {
            st[i] = gs->stride[j++];
        }
    if (!(v = td_view_of(gs, x->shape, st, x->ndim, gs->offset))) goto done;
    if ((gin = td_empty(x->shape, x->ndim, x->dtype)) && td_copy_into(gin, v) < 0) {
        td_release(gin);
        gin = NULL;
    }
done:
    td_release(gs);
    td_release(v);
    return gin;
}

/* ---- sum mean prod --------------------------------------------------------------------------- */

static td_dtype int_to_i64(td_dtype t) {
    return td_dtype_is_float(t) ? t : TD_INT64;
}

static int sum_shape(td_node *n) {
    return td_red_shape(n, int_to_i64(n->in[0]->dtype), 1, false, false);
}
static int mean_shape(td_node *n) {
    return td_red_shape(n, n->in[0]->dtype, 1, true, false);
}

static int simple_forward(td_node *n, int k, int fin) {
    int d0, d1;
    td_red_run(n, &d0, &d1);
    sink sk = {.out = td_data(n->out[0]),
               .odt = n->out[0]->dtype,
               .fin = fin,
               .div = (double)td_red_count(n)};
    return td_reduce_dims(n->in[0], d0, d1, k, &sk);
}

static int sum_forward(td_node *n) {
    return simple_forward(n, K_SUM, F_NONE);
}
static int sum_backward(td_node *n, td_tensor *const *gout, td_tensor **gin) {
    return (gin[0] = expand_grad(n, gout[0], 1)) ? 0 : -1;
}
static int mean_forward(td_node *n) {
    return simple_forward(n, K_SUM, F_DIV);
}
static int mean_backward(td_node *n, td_tensor *const *gout, td_tensor **gin) {
    return (gin[0] = expand_grad(n, gout[0], 1.0 / (double)td_red_count(n))) ? 0 : -1;
}
static int prod_forward(td_node *n) {
    return simple_forward(n, K_PROD, F_NONE);
}

/* d prod / d x_r is the product of the others: computed per line, so zeros need no division */
static int prod_backward(td_node *n, td_tensor *const *gout, td_tensor **gin) {
    int64_t O, N, I;
    td_red_block(n, &O, &N, &I);
    td_tensor *x = td_dense64(n->in[0]), *g = td_dense64(gout[0]), *r = NULL;
    if (!x || !g || !(r = td_zeros(x->shape, x->ndim, TD_FLOAT64))) goto done;
    const double *xd = td_data(x), *gd = td_data(g);
    double *rd = td_data(r);
    for (int64_t o = 0; o < O; o++)
        for (int64_t i = 0; i < I; i++) {
            const double *xl = xd + o * N * I + i;
            double *rl = rd + o * N * I + i, p = 1;
            int64_t zeros = 0, z = 0;
            for (int64_t j = 0; j < N; j++)
                if (xl[j * I] == 0)
                    zeros++, z = j;
                else
                    p *= xl[j * I];
            double gv = gd[o * I + i];
            if (zeros == 0)
                for (int64_t j = 0; j < N; j++) rl[j * I] = gv * p / xl[j * I];
            else if (zeros == 1)
                rl[z * I] = gv * p;
        }
    gin[0] = td_to_dtype(r, n->in[0]->dtype);
done:
    td_release(x), td_release(g), td_release(r);
    return gin[0] ? 0 : -1;
}

/* ---- max min argmax argmin all any ---------------------------------------------------------- */

static int max_shape(td_node *n) {
    return td_red_shape(n, n->in[0]->dtype, n->args.has_a ? 2 : 1, false, true);
}
static int arg_shape(td_node *n) {
    return td_red_shape(n, TD_INT64, 1, false, true);
}
static int bool_shape(td_node *n) {
    return td_red_shape(n, TD_BOOL, 1, false, false);
}

static int extreme_forward(td_node *n, int k) {
    int d0, d1;
    td_red_run(n, &d0, &d1);
    bool two = n->nout == 2;
    sink sk = {
        .out = td_data(n->out[0]), .odt = n->out[0]->dtype, .at = two ? td_data(n->out[1]) : NULL};
    if (td_reduce_dims(n->in[0], d0, d1, k, &sk) < 0) return -1;
    if (two && td_grad_enabled() && n->in[0]->requires_grad) { /* positions for backward */
        size_t bytes = sizeof(int64_t) * (size_t)td_numel(n->out[1]);
        if (!(n->ctx = td_malloc(bytes ? bytes : 1))) return -1;
        memcpy(n->ctx, td_data(n->out[1]), bytes);
    }
    return 0;
}

/* with a dim: to the chosen position; over everything: shared evenly by the tied elements */
static int extreme_backward(td_node *n, td_tensor *const *gout, td_tensor **gin) {
    int64_t O, N, I;
    td_red_block(n, &O, &N, &I);
    td_tensor *x = NULL, *g = NULL, *r = NULL;
    if (!(g = td_dense64(gout[0])) || !(r = td_zeros(n->in[0]->shape, n->in[0]->ndim, TD_FLOAT64)))
        goto done;
    const double *gd = td_data(g);
    double *rd = td_data(r);
    if (n->ctx) {
        const int64_t *at = n->ctx;
        for (int64_t o = 0; o < O; o++)
            for (int64_t i = 0; i < I; i++) rd[(o * N + at[o * I + i] - 1) * I + i] = gd[o * I + i];
    } else {
        if (!(x = td_dense64(n->in[0]))) goto done;
        const double *xd = td_data(x);
        double m = td_item(n->saved_out[0]);
        int64_t ties = 0, all = td_numel(x);
        for (int64_t j = 0; j < all; j++) ties += xd[j] == m || (m != m && xd[j] != xd[j]);
        for (int64_t j = 0; j < all; j++)
            if (xd[j] == m || (m != m && xd[j] != xd[j])) rd[j] = gd[0] / (double)ties;
    }
    gin[0] = td_to_dtype(r, n->in[0]->dtype);
done:
    td_release(x), td_release(g), td_release(r);
    return gin[0] ? 0 : -1;
}

static int max_forward(td_node *n) {
    return extreme_forward(n, K_MAX);
}
static int min_forward(td_node *n) {
    return extreme_forward(n, K_MIN);
}

static int arg_forward(td_node *n, int k) {
    int d0, d1;
    td_red_run(n, &d0, &d1);
    sink sk = {.at = td_data(n->out[0])};
    return td_reduce_dims(n->in[0], d0, d1, k, &sk);
}
static int argmax_forward(td_node *n) {
    return arg_forward(n, K_MAX);
}
static int argmin_forward(td_node *n) {
    return arg_forward(n, K_MIN);
}

/* all = min and any = max over x != 0, computed on a bool copy */
static int logic_forward(td_node *n, int k) {
    int d0, d1;
    td_red_run(n, &d0, &d1);
    td_tensor *b = td_to_dtype(n->in[0], TD_BOOL);
    if (!b) return -1;
    sink sk = {.out = td_data(n->out[0]), .odt = TD_BOOL};
    int rc = td_reduce_dims(b, d0, d1, k, &sk);
    td_release(b);
    return rc;
}
static int all_forward(td_node *n) {
    return logic_forward(n, K_MIN);
}
static int any_forward(td_node *n) {
    return logic_forward(n, K_MAX);
}

#define RED_OP(nm, fl, dc, sh, fw, bw)                                                             \
    const td_op td_op_##nm = {.name = #nm,                                                         \
                              .nin = 1,                                                            \
                              .flags = fl,                                                         \
                              .doc = dc,                                                           \
                              .shape = sh,                                                         \
                              .forward = fw,                                                       \
                              .backward = bw};
RED_OP(sum, TD_GRAD_NOREAD, "sum of elements, over dim or all", sum_shape, sum_forward,
       sum_backward)
RED_OP(mean, TD_GRAD_NOREAD, "arithmetic mean, over dim or all (float tensors)", mean_shape,
       mean_forward, mean_backward)
RED_OP(prod, 0, "product of elements, over dim or all", sum_shape, prod_forward, prod_backward)
RED_OP(max, TD_SAVE_OUT, "largest element; with a dim also its 1-based position", max_shape,
       max_forward, extreme_backward)
RED_OP(min, TD_SAVE_OUT, "smallest element; with a dim also its 1-based position", max_shape,
       min_forward, extreme_backward)
RED_OP(argmax, TD_NOGRAD, "1-based position of the (first) largest element", arg_shape,
       argmax_forward, NULL)
RED_OP(argmin, TD_NOGRAD, "1-based position of the (first) smallest element", arg_shape,
       argmin_forward, NULL)
RED_OP(all, TD_NOGRAD, "true when every element is non-zero, over dim or all", bool_shape,
       all_forward, NULL)
RED_OP(any, TD_NOGRAD, "true when some element is non-zero, over dim or all", bool_shape,
       any_forward, NULL)

/* ---- td_sum_to: the autograd engine's reduction of broadcast gradients --------------------- */

td_tensor *td_sum_to(td_tensor *g, const int64_t *shape, int ndim) {
    char a[128], b[128];
    int lead = g->ndim - ndim;
    bool red[TD_MAX_DIMS], any = false, ok = lead >= 0;
    for (int i = 0; ok && i < g->ndim; i++) {
        int64_t want = i < lead ? 1 : shape[i - lead];
        ok = want == g->shape[i] || want == 1;
        red[i] = want != g->shape[i];
        any = any || red[i];
    }
    if (!ok)
        return td_error("sum_to: cannot reduce a gradient of shape %s to shape %s",
                        td_shape_str(g->shape, g->ndim, a, sizeof a),
                        td_shape_str(shape, ndim, b, sizeof b)),
               NULL;
    td_retain(g);
    if (!any && lead == 0) return g;
    /* reduce each run of adjacent dims, innermost first, keeping the dims as size 1 */
    for (int e = g->ndim - 1; e >= 0; e--) {
        if (!red[e]) continue;
        int s = e;
        while (s > 0 && red[s - 1]) s--;
        int64_t osh[TD_MAX_DIMS];
        memcpy(osh, g->shape, sizeof osh);
        for (int i = s; i <= e; i++) osh[i] = 1;
        td_tensor *r = td_empty(osh, g->ndim, int_to_i64(g->dtype));
        sink sk = {.out = r ? td_data(r) : NULL, .odt = int_to_i64(g->dtype)};
        if (!r || td_reduce_dims(g, s, e, K_SUM, &sk) < 0) {
            td_release(r);
            td_release(g);
            return NULL;
        }
        td_release(g);
        g = r;
        e = s;
    }
    int64_t st[TD_MAX_DIMS];
    for (int i = 0; i < ndim; i++) st[i] = g->stride[i + lead];
    td_tensor *v = td_view_of(g, shape, st, ndim, g->offset);
    td_release(g);
    return v;
}
