/* tensor/ops/shape.c: the views (view, reshape, flatten, squeeze, unsqueeze, transpose, t,
 * permute, narrow, select, expand) as stride arithmetic on in[0]'s storage, and the copies that
 * belong with them (contiguous, clone, to). Per op: geometry (shape), forward, backward, row.
 * Names: x = in[0], d = the dim an op acts on (0-based), n = x's size along d. */
#include "../tide.h"

#include <stdio.h>
#include <string.h>

/* ---- shared pieces ------------------------------------------------------------------------- */

static void contiguous_strides(const int64_t *shape, int nd, int64_t *stride) {
    int64_t s = 1;
    for (int i = nd - 1; i >= 0; i--) {
        stride[i] = s;
        s *= shape[i] > 0 ? shape[i] : 1;
    }
}

static int64_t prod(const int64_t *shape, int nd) {
    int64_t p = 1;
    for (int i = 0; i < nd; i++) p *= shape[i];
    return p;
}

static void meta_like(td_meta *m, const td_tensor *x) {
    memcpy(m->shape, x->shape, sizeof(int64_t) * (size_t)x->ndim);
    memcpy(m->stride, x->stride, sizeof(int64_t) * (size_t)x->ndim);
    m->ndim = x->ndim;
    m->offset = x->offset;
    m->dtype = x->dtype;
}

static const char *shp(const td_tensor *x, char *buf) {
    return td_shape_str(x->shape, x->ndim, buf, 128);
}

/* new ref: a view of x with m's geometry, outside autograd (backward helpers). */
static td_tensor *view_meta(td_tensor *x, const td_meta *m) {
    return td_view_of(x, m->shape, m->stride, m->ndim, m->offset);
}

/* Swaps the storage of `out` (a view td_run made) for a fresh contiguous copy of x in dtype dt:
 * the copying branch of reshape, contiguous and to, which share when they can. */
static int materialize(const char *fn, td_tensor *out, td_tensor *x, td_dtype dt) {
    td_tensor *c = td_empty(x->shape, x->ndim, dt);
    if (!c) {
        char msg[256];
        snprintf(msg, sizeof msg, "%s", td_errmsg());
        return td_error("%s: cannot copy: %s", fn, msg);
    }
    if (td_copy_into(c, x) < 0) {
        td_release(c);
        return td_error_in(fn);
    }
    td_storage_release(out->storage);
    out->storage = c->storage;
    td_storage_retain(out->storage);
    out->offset = 0;
    out->dtype = dt;
    contiguous_strides(out->shape, out->ndim, out->stride);
    td_release(c);
    return 0;
}

static int nothing(td_node *n) {
    (void)n;
    return 0;
}

/* The gradient itself: ops whose Jacobian is the identity up to broadcasting (autograd sums the
 * broadcast dims away) or dtype (autograd converts). */
static int grad_same(td_node *n, td_tensor *const *gout, td_tensor **gin) {
    (void)n;
    td_retain(gout[0]);
    gin[0] = gout[0];
    return 0;
}

/* ---- view, reshape, flatten ------------------------------------------------------------------ */

/* Resolves one -1 in sizes against x's element count into shape. 0 or -1 + error. */
static int infer_shape(const char *fn, const td_tensor *x, const int64_t *sizes, int nd,
                       int64_t *shape) {
    char a[128], b[128];
    int free_dim = -1;
    int64_t known = 1, numel = td_numel(x);
    for (int i = 0; i < nd; i++) {
        shape[i] = sizes[i];
        if (sizes[i] == -1) {
            if (free_dim >= 0)
                return td_error("%s: only one size can be -1, got shape %s", fn,
                                td_shape_str(sizes, nd, a, sizeof a));
            free_dim = i;
        } else if (sizes[i] < 0) {
            return td_error("%s: invalid size %lld in shape %s (sizes are >= 0, or -1 once)", fn,
                            (long long)sizes[i], td_shape_str(sizes, nd, a, sizeof a));
        } else if (__builtin_mul_overflow(known, sizes[i], &known)) {
            return td_error("%s: shape %s is too large", fn, td_shape_str(sizes, nd, a, sizeof a));
        }
    }
    if (free_dim >= 0) {
        if (known == 0)
            return td_error("%s: shape %s is ambiguous for a tensor of shape %s (the -1 could be "
                            "any size)",
                            fn, td_shape_str(sizes, nd, a, sizeof a), shp(x, b));
        if (numel % known == 0) shape[free_dim] = numel / known;
    }
    if (prod(shape, nd) != numel || (free_dim >= 0 && numel % known))
        return td_error("%s: shape %s is invalid for a tensor of %lld elements (shape %s)", fn,
                        td_shape_str(sizes, nd, a, sizeof a), (long long)numel, shp(x, b));
    return 0;
}

/* Strides that let shape view x's elements in row-major order without a copy (PyTorch's
 * computeStride): false when x's strides make that impossible. */
static bool view_strides(const td_tensor *x, const int64_t *shape, int nd, int64_t *stride) {
    static const int64_t one = 1;
    const int64_t *os = x->ndim ? x->shape : &one, *ost = x->ndim ? x->stride : &one;
    int ond = x->ndim ? x->ndim : 1;
    if (td_numel(x) == 0) {
        contiguous_strides(shape, nd, stride);
        return true;
    }
    int vd = nd - 1;
    int64_t base = ost[ond - 1], tnumel = 1, vnumel = 1;
    for (int td = ond - 1; td >= 0; td--) {
        tnumel *= os[td];
        if (td == 0 || (os[td - 1] != 1 && ost[td - 1] != tnumel * base)) {
            while (vd >= 0 && (vnumel < tnumel || shape[vd] == 1)) {
                stride[vd] = vnumel * base;
                vnumel *= shape[vd];
                vd--;
            }
            if (vnumel != tnumel) return false;
            if (td > 0) {
                base = ost[td - 1];
                tnumel = vnumel = 1;
            }
        }
    }
    return vd == -1;
}

static int view_shape(td_node *n) {
    td_tensor *x = n->in[0];
    td_meta *m = &n->meta[0];
    char a[128], b[128], c[128];
    meta_like(m, x);
    m->ndim = n->args.nsizes;
    if (infer_shape("view", x, n->args.sizes, m->ndim, m->shape) < 0) return -1;
    if (!view_strides(x, m->shape, m->ndim, m->stride))
        return td_error("view: a tensor of shape %s with strides %s cannot be viewed as %s without "
                        "a copy (use reshape(), or contiguous() first)",
                        shp(x, a), td_shape_str(x->stride, x->ndim, b, sizeof b),
                        td_shape_str(m->shape, m->ndim, c, sizeof c));
    return 0;
}

/* The gradient of an op that only regroups x's elements: g reshaped to x's shape. */
static int grad_regroup(td_node *n, td_tensor *const *gout, td_tensor **gin) {
    td_tensor *x = n->in[0];
    td_args a = {.nsizes = x->ndim};
    memcpy(a.sizes, x->shape, sizeof(int64_t) * (size_t)x->ndim);
    return (gin[0] = td_apply1(&td_op_reshape, gout[0], &a)) ? 0 : -1;
}

/* reshape and flatten: a view when the strides allow it, else the forward copies. */
static int regroup_meta(td_node *n, const int64_t *shape, int nd) {
    td_meta *m = &n->meta[0];
    meta_like(m, n->in[0]);
    m->ndim = nd;
    memcpy(m->shape, shape, sizeof(int64_t) * (size_t)nd);
    if (!view_strides(n->in[0], shape, nd, m->stride)) contiguous_strides(shape, nd, m->stride);
    return 0;
}

static int regroup_forward(td_node *n) {
    int64_t st[TD_MAX_DIMS];
    td_tensor *o = n->out[0];
    if (view_strides(n->in[0], o->shape, o->ndim, st)) return 0;
    return materialize(n->op->name, o, n->in[0], o->dtype);
}

static int reshape_shape(td_node *n) {
    int64_t shape[TD_MAX_DIMS];
    if (infer_shape("reshape", n->in[0], n->args.sizes, n->args.nsizes, shape) < 0) return -1;
    return regroup_meta(n, shape, n->args.nsizes);
}

static int flatten_shape(td_node *n) {
    td_tensor *x = n->in[0];
    int64_t from = n->args.dim, to = n->args.dim2, shape[TD_MAX_DIMS];
    if (td_normdim("flatten", &from, x->ndim) < 0 || td_normdim("flatten", &to, x->ndim) < 0)
        return -1;
    if (from > to)
        return td_error("flatten: start dim %d comes after end dim %d", (int)from + 1, (int)to + 1);
    if (x->ndim == 0) {
        shape[0] = 1;
        return regroup_meta(n, shape, 1);
    }
    int nd = 0;
    for (int i = 0; i < from; i++) shape[nd++] = x->shape[i];
    shape[nd++] = prod(x->shape + from, (int)(to - from + 1));
    for (int i = (int)to + 1; i < x->ndim; i++) shape[nd++] = x->shape[i];
    return regroup_meta(n, shape, nd);
}

/* ---- squeeze, unsqueeze, expand ---------------------------------------------------------- */

static int squeeze_shape(td_node *n) {
    td_tensor *x = n->in[0];
    td_meta *m = &n->meta[0];
    int64_t d = n->args.dim;
    if (n->args.has_a && td_normdim("squeeze", &d, x->ndim) < 0) return -1;
    meta_like(m, x);
    int k = 0;
    for (int i = 0; i < x->ndim; i++) {
        bool drop = x->shape[i] == 1 && (!n->args.has_a || i == d);
        if (drop) continue;
        m->shape[k] = x->shape[i];
        m->stride[k++] = x->stride[i];
    }
    m->ndim = k;
    return 0;
}

static int unsqueeze_shape(td_node *n) {
    td_tensor *x = n->in[0];
    td_meta *m = &n->meta[0];
    int64_t d = n->args.dim;
    char a[128];
    if (x->ndim == TD_MAX_DIMS)
        return td_error("unsqueeze: shape %s already has the maximum of %d dims", shp(x, a),
                        TD_MAX_DIMS);
    if (td_normdim("unsqueeze", &d, x->ndim + 1) < 0) return -1;
    meta_like(m, x);
    for (int i = x->ndim; i > d; i--) {
        m->shape[i] = x->shape[i - 1];
        m->stride[i] = x->stride[i - 1];
    }
    m->shape[d] = 1;
    m->stride[d] = d < x->ndim ? x->shape[d] * x->stride[d] : 1;
    m->ndim = x->ndim + 1;
    return 0;
}

/* sizes: new leading dims (stride 0), then one per dim of x: -1 keeps it, a size-1 dim may
 * grow (stride 0). */
static int expand_shape(td_node *n) {
    td_tensor *x = n->in[0];
    td_meta *m = &n->meta[0];
    const int64_t *sz = n->args.sizes;
    int nd = n->args.nsizes, lead = nd - x->ndim;
    int64_t total = 1;
    char a[128], b[128];
    if (lead < 0)
        return td_error("expand: shape %s has fewer dims than the tensor's shape %s",
                        td_shape_str(sz, nd, a, sizeof a), shp(x, b));
    meta_like(m, x);
    m->ndim = nd;
    for (int i = 0; i < nd; i++) {
        int j = i - lead;
        int64_t have = j >= 0 ? x->shape[j] : 1, want = sz[i];
        if (want == -1 && j >= 0) want = have;
        if (want < 0)
            return td_error("expand: invalid size %lld at dim %d of %s (new leading dims need a "
                            "size >= 0)",
                            (long long)sz[i], i + 1, td_shape_str(sz, nd, a, sizeof a));
        if (have != want && have != 1)
            return td_error("expand: cannot expand shape %s to %s (dim %d has size %lld, only "
                            "size-1 dims can grow)",
                            shp(x, a), td_shape_str(sz, nd, b, sizeof b), i + 1, (long long)have);
        m->shape[i] = want;
        m->stride[i] = j >= 0 && have == want ? x->stride[j] : 0;
        if (want && __builtin_mul_overflow(total, want, &total))
            return td_error("expand: shape %s is too large", td_shape_str(sz, nd, a, sizeof a));
    }
    return 0;
}

/* ---- transpose, t, permute ----------------------------------------------------------------- */

static void swap_dims(td_meta *m, int64_t i, int64_t j) {
    int64_t s = m->shape[i], st = m->stride[i];
    m->shape[i] = m->shape[j];
    m->stride[i] = m->stride[j];
    m->shape[j] = s;
    m->stride[j] = st;
}

static int transpose_shape(td_node *n) {
    td_tensor *x = n->in[0];
    int64_t i = n->args.dim, j = n->args.dim2;
    if (td_normdim("transpose", &i, x->ndim) < 0 || td_normdim("transpose", &j, x->ndim) < 0)
        return -1;
    meta_like(&n->meta[0], x);
    if (x->ndim) swap_dims(&n->meta[0], i, j);
    return 0;
}

static int transpose_backward(td_node *n, td_tensor *const *gout, td_tensor **gin) {
    return (gin[0] = td_apply1(&td_op_transpose, gout[0], &n->args)) ? 0 : -1;
}

static int t_shape(td_node *n) {
    td_tensor *x = n->in[0];
    char a[128];
    if (x->ndim > 2)
        return td_error("t: expected a tensor of at most 2 dims, got shape %s (use transpose or "
                        "permute)",
                        shp(x, a));
    meta_like(&n->meta[0], x);
    if (x->ndim == 2) swap_dims(&n->meta[0], 0, 1);
    return 0;
}

static int t_backward(td_node *n, td_tensor *const *gout, td_tensor **gin) {
    (void)n;
    return (gin[0] = td_apply1(&td_op_t, gout[0], NULL)) ? 0 : -1;
}

static int permute_shape(td_node *n) {
    td_tensor *x = n->in[0];
    td_meta *m = &n->meta[0];
    bool seen[TD_MAX_DIMS] = {0};
    char a[128];
    if (n->args.nsizes != x->ndim)
        return td_error("permute: got %d dims for a tensor of shape %s (expected %d)",
                        n->args.nsizes, shp(x, a), x->ndim);
    meta_like(m, x);
    for (int i = 0; i < x->ndim; i++) {
        int64_t d = n->args.sizes[i];
        if (td_normdim("permute", &d, x->ndim) < 0) return -1;
        if (seen[d]) return td_error("permute: dim %d appears twice", (int)d + 1);
        seen[d] = true;
        m->shape[i] = x->shape[d];
        m->stride[i] = x->stride[d];
    }
    return 0;
}

static int permute_backward(td_node *n, td_tensor *const *gout, td_tensor **gin) {
    td_args a = {.nsizes = n->args.nsizes};
    for (int i = 0; i < a.nsizes; i++) {
        int64_t d = n->args.sizes[i];
        if (d < 0) d += a.nsizes;
        a.sizes[d] = i; /* the inverse permutation */
    }
    return (gin[0] = td_apply1(&td_op_permute, gout[0], &a)) ? 0 : -1;
}

/* ---- narrow, select ------------------------------------------------------------------------ */

/* narrow: len elements along d from start, every step-th (step 0 means 1). */
static int narrow_geom(const td_tensor *x, const td_args *a, td_meta *m) {
    int64_t d = a->dim, step = a->step ? a->step : 1;
    char b[128];
    if (x->ndim == 0) return td_error("narrow: cannot narrow a 0-D tensor");
    if (td_normdim("narrow", &d, x->ndim) < 0) return -1;
    int64_t size = x->shape[d];
    if (step < 0) return td_error("narrow: step must be positive, got %lld", (long long)step);
    if (a->start < 0 || a->start > size)
        return td_error("narrow: start %lld out of range for dim %d of shape %s (expected 1..%lld)",
                        (long long)a->start + 1, (int)d + 1, shp(x, b), (long long)size);
    if (a->len < 0 || (a->len > 0 && a->start + (a->len - 1) * step >= size))
        return td_error("narrow: length %lld from start %lld (step %lld) goes past the end of dim "
                        "%d of shape %s",
                        (long long)a->len, (long long)a->start + 1, (long long)step, (int)d + 1,
                        shp(x, b));
    meta_like(m, x);
    m->offset += a->start * x->stride[d];
    m->shape[d] = a->len;
    m->stride[d] *= step;
    return 0;
}

static int select_geom(const td_tensor *x, const td_args *a, td_meta *m) {
    int64_t d = a->dim;
    char b[128];
    if (x->ndim == 0) return td_error("select: cannot select from a 0-D tensor");
    if (td_normdim("select", &d, x->ndim) < 0) return -1;
    if (a->index < 0 || a->index >= x->shape[d])
        return td_error("select: index %lld out of range for dim %d of shape %s (expected 1..%lld)",
                        (long long)a->index + 1, (int)d + 1, shp(x, b), (long long)x->shape[d]);
    meta_like(m, x);
    m->offset += a->index * x->stride[d];
    for (int i = (int)d; i + 1 < x->ndim; i++) {
        m->shape[i] = x->shape[i + 1];
        m->stride[i] = x->stride[i + 1];
    }
    m->ndim = x->ndim - 1;
    return 0;
}

static int narrow_shape(td_node *n) {
    return narrow_geom(n->in[0], &n->args, &n->meta[0]);
}

static int select_shape(td_node *n) {
    return select_geom(n->in[0], &n->args, &n->meta[0]);
}

/* Backward of a slice: zeros shaped like x with g copied into the same slice. */
static int grad_slice(td_node *n, td_tensor *g,
                      int (*geom)(const td_tensor *, const td_args *, td_meta *), td_tensor **gin) {
    td_tensor *x = n->in[0], *z = td_zeros(x->shape, x->ndim, g->dtype), *v = NULL;
    td_meta m;
    if (!z || geom(z, &n->args, &m) < 0 || !(v = view_meta(z, &m)) || td_copy_into(v, g) < 0) {
        td_release(v);
        td_release(z);
        return -1;
    }
    td_release(v);
    gin[0] = z;
    return 0;
}

static int narrow_backward(td_node *n, td_tensor *const *gout, td_tensor **gin) {
    return grad_slice(n, gout[0], narrow_geom, gin);
}

static int select_backward(td_node *n, td_tensor *const *gout, td_tensor **gin) {
    return grad_slice(n, gout[0], select_geom, gin);
}

/* ---- contiguous, clone, to ----------------------------------------------------------------- */

static int like_shape(td_node *n) {
    meta_like(&n->meta[0], n->in[0]);
    return 0;
}

static int contiguous_forward(td_node *n) {
    td_tensor *x = n->in[0];
    return td_is_contiguous(x) ? 0 : materialize(n->op->name, n->out[0], x, x->dtype);
}

static int clone_forward(td_node *n) {
    return td_copy_into(n->out[0], n->in[0]);
}

static int to_shape(td_node *n) {
    meta_like(&n->meta[0], n->in[0]);
    n->meta[0].dtype = n->args.dtype;
    return 0;
}

static int to_forward(td_node *n) {
    td_tensor *x = n->in[0];
    return n->args.dtype == x->dtype ? 0 : materialize(n->op->name, n->out[0], x, n->args.dtype);
}

static int to_backward(td_node *n, td_tensor *const *gout, td_tensor **gin) {
    return (gin[0] = td_to_dtype(gout[0], n->in[0]->dtype)) ? 0 : -1;
}

/* ---- descriptors ------------------------------------------------------------------------- */

#define VIEW_OP(nm, shp_fn, fwd, bwd, dc)                                                          \
    const td_op td_op_##nm = {.name = #nm,                                                         \
                              .nin = 1,                                                            \
                              .flags = TD_VIEW | TD_GRAD_NOREAD,                                   \
                              .doc = dc,                                                           \
                              .shape = shp_fn,                                                     \
                              .forward = fwd,                                                      \
                              .backward = bwd};

VIEW_OP(view, view_shape, nothing, grad_regroup,
        "view(...): the same elements with another shape, sharing storage (one size may be -1)")
VIEW_OP(reshape, reshape_shape, regroup_forward, grad_regroup,
        "reshape(...): like view, but copies when the strides do not allow a view")
VIEW_OP(flatten, flatten_shape, regroup_forward, grad_regroup,
        "flatten([from, to]): merges dims from..to (default all) into one")
VIEW_OP(squeeze, squeeze_shape, nothing, grad_regroup,
        "squeeze([d]): removes size-1 dims (only d when given)")
VIEW_OP(unsqueeze, unsqueeze_shape, nothing, grad_regroup,
        "unsqueeze(d): inserts a size-1 dim at position d (1..ndim+1)")
VIEW_OP(expand, expand_shape, nothing, grad_same,
        "expand(...): broadcasts size-1 dims (and new leading dims) without copying; -1 keeps")
VIEW_OP(transpose, transpose_shape, nothing, transpose_backward,
        "transpose(d1, d2): swaps two dims")
VIEW_OP(t, t_shape, nothing, t_backward, "t(): the transpose of a 2-D tensor")
VIEW_OP(permute, permute_shape, nothing, permute_backward,
        "permute(d1, d2, ...): reorders the dims")
VIEW_OP(narrow, narrow_shape, nothing, narrow_backward,
        "narrow(d, start, len): len positions of dim d from start")
VIEW_OP(select, select_shape, nothing, select_backward,
        "select(d, i): position i of dim d, which is removed")
VIEW_OP(contiguous, like_shape, contiguous_forward, grad_same,
        "contiguous(): the tensor itself when contiguous, else a contiguous copy")
VIEW_OP(to, to_shape, to_forward, to_backward,
        "to(dtype): converted to dtype (the tensor itself when it already has it)")

const td_op td_op_clone = {.name = "clone",
                           .nin = 1,
                           .flags = TD_GRAD_NOREAD,
                           .doc = "clone(): a copy with its own storage",
                           .shape = like_shape,
                           .forward = clone_forward,
                           .backward = grad_same};
