/* tensor/ops/index.c: indexing by tensors: index (index_select), gather, scatter, masked_select,
 * and assign (the op behind t[key] = v). Index tensors hold 1-based int64 positions (negative
 * ones count from the end). Names: x = in[0], d = the indexed dim, n = x's size along d,
 * k = the number of indices, outer/inner = the sizes before/after d. */
#include "../tide.h"

#include <string.h>

/* ---- shared pieces ------------------------------------------------------------------------- */

/* A row-major walk over a shape with element offsets into up to 3 operands (strides right-
 * aligned to the shape, 0 where an operand is broadcast). Operand 0 also gets stride 0 along
 * dim `zero` (or none when -1): its offset is then the start of the line that an index picks
 * a position of. */
typedef struct walker {
    int nd, nops;
    int64_t shape[TD_MAX_DIMS], pos[TD_MAX_DIMS];
    int64_t st[3][TD_MAX_DIMS];
    int64_t off[3];
} walker;

static void walk_init(walker *w, const int64_t *shape, int nd, const td_tensor *const *ops,
                      int nops, int zero) {
    memset(w, 0, sizeof *w);
    w->nd = nd;
    w->nops = nops;
    memcpy(w->shape, shape, sizeof(int64_t) * (size_t)nd);
    for (int k = 0; k < nops; k++)
        for (int i = 0; i < nd; i++) {
            int j = i - (nd - ops[k]->ndim);
            bool flat = j < 0 || ops[k]->shape[j] == 1 || (k == 0 && i == zero);
            w->st[k][i] = flat ? 0 : ops[k]->stride[j];
        }
}

static void walk_next(walker *w) {
    for (int i = w->nd - 1; i >= 0; i--) {
        if (++w->pos[i] < w->shape[i]) {
            for (int k = 0; k < w->nops; k++) w->off[k] += w->st[k][i];
            return;
        }
        w->pos[i] = 0;
        for (int k = 0; k < w->nops; k++) w->off[k] -= w->st[k][i] * (w->shape[i] - 1);
    }
}

/* The loop condition of a walk: stops early (every 64K elements it looks) on Ctrl-C; the
 * caller then returns td_poll_interrupt(). */
static bool more(int64_t i, int64_t total) {
    return i < total && ((i & 0xffff) || !td_interrupted);
}

static void copy_elem(char *dst, const char *src, size_t esz) {
    switch (esz) {
    case 8:
        memcpy(dst, src, 8);
        break;
    case 4:
        memcpy(dst, src, 4);
        break;
    default:
        *dst = *src;
        break;
    }
}

static char *at(const td_tensor *t, int64_t off) {
    return (char *)td_data(t) + off * (int64_t)td_dtype_size(t->dtype);
}

static const char *shp(const td_tensor *x, char *buf) {
    return td_shape_str(x->shape, x->ndim, buf, 128);
}

static int64_t prod(const int64_t *shape, int nd) {
    int64_t p = 1;
    for (int i = 0; i < nd; i++) p *= shape[i];
    return p;
}

/* Checks every value of the int64 tensor idx against 1..n or -n..-1. 0 or -1 + error. */
static int check_indices(const char *fn, const td_tensor *idx, int64_t d, int64_t n) {
    char b[128];
    if (idx->dtype != TD_INT64)
        return td_error("%s: indices must be an int64 tensor, got %s (shape %s)", fn,
                        td_dtype_name(idx->dtype), shp(idx, b));
    walker w;
    walk_init(&w, idx->shape, idx->ndim, &idx, 1, -1);
    for (int64_t i = 0, total = td_numel(idx); more(i, total); i++, walk_next(&w)) {
        int64_t v = *(const int64_t *)at(idx, w.off[0]);
        if (v == 0 || v > n || v < -n)
            return td_error("%s: index %lld out of range for dim %d of size %lld (expected 1..%lld "
                            "or -%lld..-1)",
                            fn, (long long)v, (int)d + 1, (long long)n, (long long)n, (long long)n);
    }
    return td_poll_interrupt();
}

static int64_t zero_based(int64_t v, int64_t n) {
    return v < 0 ? v + n : v - 1;
}

/* Same dims as x, and no larger than x except along d: the rule gather and scatter share. */
static int check_index_shape(const char *fn, const td_tensor *x, const td_tensor *idx, int64_t d) {
    char a[128], b[128];
    if (x->ndim == 0)
        return td_error("%s: expected a tensor with at least 1 dim, got a 0-D one", fn);
    if (idx->ndim != x->ndim)
        return td_error("%s: index of shape %s needs as many dims as the tensor's shape %s", fn,
                        shp(idx, a), shp(x, b));
    for (int i = 0; i < x->ndim; i++)
        if (i != d && idx->shape[i] > x->shape[i])
            return td_error("%s: index of shape %s is larger than the tensor's shape %s at dim %d",
                            fn, shp(idx, a), shp(x, b), i + 1);
    return check_indices(fn, idx, d, x->shape[d]);
}

/* ---- index (index_select) ------------------------------------------------------------------ */

static int index_shape(td_node *n) {
    td_tensor *x = n->in[0], *idx = n->in[1];
    td_meta *m = &n->meta[0];
    int64_t d = n->args.dim;
    char a[128];
    if (x->ndim == 0)
        return td_error("index: expected a tensor with at least 1 dim, got a 0-D one");
    if (td_normdim("index", &d, x->ndim) < 0) return -1;
    if (idx->ndim > 1) return td_error("index: indices must be 1-D, got shape %s", shp(idx, a));
    if (check_indices("index", idx, d, x->shape[d]) < 0) return -1;
    n->args.dim = d;
    m->ndim = x->ndim;
    memcpy(m->shape, x->shape, sizeof(int64_t) * (size_t)x->ndim);
    m->shape[d] = td_numel(idx);
    m->dtype = x->dtype;
    return 0;
}

/* Copies rows of `inner` elements: out (outer, k, inner) <- x (outer, n, inner) at idx. */

/* One row of index_select's output: the input row named by the (1-based) index. */
typedef struct index_rows {
    char *dst;
    const char *src;
    const int64_t *iv;
    size_t row;
    int64_t k, size;
} index_rows;

static void index_row(void *ctx, int64_t r) {
    const index_rows *c = ctx;
    int64_t b = r / c->k, j = zero_based(c->iv[r % c->k], c->size);
    memcpy(c->dst + (size_t)r * c->row, c->src + (size_t)(b * c->size + j) * c->row, c->row);
}

static int index_forward(td_node *n) {
    td_tensor *x = td_contiguous(n->in[0]), *idx = td_contiguous(n->in[1]), *o = n->out[0];
    int rc = -1;
    if (!x || !idx) goto done;
    int64_t d = n->args.dim, size = x->shape[d], k = td_numel(idx);
    int64_t outer = prod(x->shape, (int)d), inner = prod(x->shape + d + 1, x->ndim - (int)d - 1);
    size_t esz = td_dtype_size(x->dtype), row = (size_t)inner * esz;
    const int64_t *iv = td_data(idx);
    const char *src = td_data(x);
    char *dst = td_data(o);
    index_rows rows = {dst, src, iv, row, k, size};
    td_run_units(outer * k, outer * k * inner, index_row, &rows);
    rc = td_poll_interrupt();
done:
    td_release(x);
    td_release(idx);
    return rc;
}

#define INDEX_ADD(T)                                                                               \
    for (int64_t b = 0; b < outer && !td_interrupted; b++)                                         \
        for (int64_t r = 0; r < k; r++) {                                                          \
            T *zr = (T *)td_data(z) + (b * size + zero_based(iv[r], size)) * inner;                \
            const T *gr = (const T *)td_data(g) + (b * k + r) * inner;                             \
            for (int64_t i = 0; i < inner; i++) zr[i] += gr[i];                                    \
        }

/* dx = zeros with each row of g added at its index (index_add). */
static int index_backward(td_node *n, td_tensor *const *gout, td_tensor **gin) {
    td_tensor *x = n->in[0], *g = td_contiguous(gout[0]), *idx = td_contiguous(n->in[1]);
    td_tensor *z = g ? td_zeros(x->shape, x->ndim, g->dtype) : NULL;
    int64_t d = n->args.dim, size = x->shape[d], k = td_numel(n->in[1]);
    int64_t outer = prod(x->shape, (int)d), inner = prod(x->shape + d + 1, x->ndim - (int)d - 1);
    int rc = -1;
    if (!z || !idx) goto done;
    const int64_t *iv = td_data(idx);
    if (g->dtype == TD_FLOAT32) {
        INDEX_ADD(float)
    } else if (g->dtype == TD_FLOAT64) {
        INDEX_ADD(double)
    } else {
        td_error("index: no gradient for %s tensors", td_dtype_name(g->dtype));
        goto done;
    }
    if (td_poll_interrupt() < 0) goto done;
    gin[0] = z;
    z = NULL;
    rc = 0;
done:
    td_release(z);
    td_release(g);
    td_release(idx);
    return rc;
}

/* ---- gather, scatter ------------------------------------------------------------------------ */

static int gather_shape(td_node *n) {
    td_tensor *x = n->in[0], *idx = n->in[1];
    td_meta *m = &n->meta[0];
    int64_t d = n->args.dim;
    if (x->ndim && td_normdim("gather", &d, x->ndim) < 0) return -1;
    if (check_index_shape("gather", x, idx, d) < 0) return -1;
    n->args.dim = d;
    m->ndim = idx->ndim;
    memcpy(m->shape, idx->shape, sizeof(int64_t) * (size_t)idx->ndim);
    m->dtype = x->dtype;
    return 0;
}

typedef struct gather_ctx {
    int64_t size, step; /* x's size and byte stride along d */
    size_t esz;
} gather_ctx;

/* operands {out, idx, x restrided to idx's shape with stride 0 along d} */
static void gather_loop(char **p, const int64_t *s, int64_t len, const void *ctx) {
    const gather_ctx *c = ctx;
    for (int64_t i = 0; i < len; i++) {
        int64_t j = zero_based(*(const int64_t *)(p[1] + i * s[1]), c->size);
        copy_elem(p[0] + i * s[0], p[2] + i * s[2] + j * c->step, c->esz);
    }
}

/* out[p] = x[p with p_d = idx[p]] for every position p of idx; out has idx's shape. */
static int gather_into(td_tensor *out, td_tensor *x, td_tensor *idx, int64_t d) {
    int64_t st[TD_MAX_DIMS];
    memcpy(st, x->stride, sizeof(int64_t) * (size_t)x->ndim);
    st[d] = 0;
    td_tensor *xr = td_view_of(x, idx->shape, st, idx->ndim, x->offset);
    if (!xr) return -1;
    gather_ctx c = {x->shape[d], x->stride[d] * (int64_t)td_dtype_size(x->dtype),
                    td_dtype_size(x->dtype)};
    td_tensor *ops[3] = {out, idx, xr};
    int rc = td_foreach(ops, 3, gather_loop, &c);
    td_release(xr);
    return rc;
}

static int gather_forward(td_node *n) {
    return gather_into(n->out[0], n->in[0], n->in[1], n->args.dim);
}

#define SCATTER_ADD(T)                                                                             \
    for (int64_t i = 0; more(i, total); i++, walk_next(&w)) {                                      \
        int64_t j = zero_based(*(const int64_t *)at(idx, w.off[1]), size);                         \
        *(T *)at(z, w.off[0] + j * z->stride[d]) += *(const T *)at(g, w.off[2]);                   \
    }

/* dx = zeros with g added at the gathered positions (scatter_add); serial, so repeated
 * indices add up deterministically. */
static int gather_backward(td_node *n, td_tensor *const *gout, td_tensor **gin) {
    td_tensor *x = n->in[0], *idx = n->in[1], *g = gout[0];
    td_tensor *z = td_zeros(x->shape, x->ndim, g->dtype);
    int64_t d = n->args.dim, size = x->shape[d], total = td_numel(idx);
    if (!z) return -1;
    const td_tensor *ops[3] = {z, idx, g};
    walker w;
    walk_init(&w, idx->shape, idx->ndim, ops, 3, (int)d);
    if (g->dtype == TD_FLOAT32) {
        SCATTER_ADD(float)
    } else if (g->dtype == TD_FLOAT64) {
        SCATTER_ADD(double)
    } else {
        td_release(z);
        return td_error("gather: no gradient for %s tensors", td_dtype_name(g->dtype));
    }
    if (td_poll_interrupt() < 0) {
        td_release(z);
        return -1;
    }
    gin[0] = z;
    return 0;
}

/* src: a 0-D tensor (one value for every position) or as many dims as idx and no smaller. */
static int scatter_shape(td_node *n) {
    td_tensor *x = n->in[0], *idx = n->in[1], *src = n->in[2];
    int64_t d = n->args.dim;
    char a[128], b[128];
    if (x->ndim && td_normdim("scatter", &d, x->ndim) < 0) return -1;
    if (check_index_shape("scatter", x, idx, d) < 0) return -1;
    if (src->ndim) {
        bool ok = src->ndim == idx->ndim;
        for (int i = 0; ok && i < idx->ndim; i++) ok = src->shape[i] >= idx->shape[i];
        if (!ok)
            return td_error("scatter: source of shape %s is smaller than the index's shape %s",
                            shp(src, a), shp(idx, b));
    }
    n->args.dim = d;
    td_meta *m = &n->meta[0];
    m->ndim = x->ndim;
    memcpy(m->shape, x->shape, sizeof(int64_t) * (size_t)x->ndim);
    m->dtype = x->dtype;
    return 0;
}

/* Serial, so that with repeated indices the last write wins on every run. */
static int scatter_forward(td_node *n) {
    td_tensor *o = n->out[0], *idx = n->in[1], *src = td_to_dtype(n->in[2], o->dtype);
    int64_t d = n->args.dim, size = o->shape[d], total = td_numel(idx);
    size_t esz = td_dtype_size(o->dtype);
    if (!src) return -1;
    if (o != n->in[0] && td_copy_into(o, n->in[0]) < 0) {
        td_release(src);
        return -1;
    }
    const td_tensor *ops[3] = {o, idx, src};
    walker w;
    walk_init(&w, idx->shape, idx->ndim, ops, 3, (int)d);
    for (int64_t i = 0; more(i, total); i++, walk_next(&w)) {
        int64_t j = zero_based(*(const int64_t *)at(idx, w.off[1]), size);
        copy_elem(at(o, w.off[0] + j * o->stride[d]), at(src, w.off[2]), esz);
    }
    td_release(src);
    return td_poll_interrupt();
}

/* dx = g with the written positions zeroed; dsrc = g at those positions (gather), laid out in
 * src's shape (autograd sums it down when src was one value). */
static int scatter_backward(td_node *n, td_tensor *const *gout, td_tensor **gin) {
    td_tensor *idx = n->in[1], *src = n->in[2], *g = gout[0];
    int64_t d = n->args.dim;
    if (n->needs_grad[0]) {
        td_tensor *c = td_empty(g->shape, g->ndim, g->dtype);
        if (!c || td_copy_into(c, g) < 0) {
            td_release(c);
            return -1;
        }
        const td_tensor *ops[2] = {c, idx};
        walker w;
        walk_init(&w, idx->shape, idx->ndim, ops, 2, (int)d);
        static const char zero[8];
        size_t esz = td_dtype_size(c->dtype);
        for (int64_t i = 0, total = td_numel(idx); more(i, total); i++, walk_next(&w)) {
            int64_t j = zero_based(*(const int64_t *)at(idx, w.off[1]), c->shape[d]);
            copy_elem(at(c, w.off[0] + j * c->stride[d]), zero, esz);
        }
        if (td_poll_interrupt() < 0) {
            td_release(c);
            return -1;
        }
        gin[0] = c;
    }
    if (n->needs_grad[2]) {
        bool same =
            src->ndim == 0 || !memcmp(src->shape, idx->shape, sizeof(int64_t) * (size_t)idx->ndim);
        td_tensor *z = same ? td_empty(idx->shape, idx->ndim, g->dtype)
                            : td_zeros(src->shape, src->ndim, g->dtype);
        td_tensor *part = z ? td_view_of(z, idx->shape, z->stride, idx->ndim, 0) : NULL;
        int rc = part ? gather_into(part, g, idx, d) : -1;
        td_release(part);
        if (rc < 0) {
            td_release(z);
            return -1;
        }
        gin[2] = z;
    }
    return 0;
}

/* ---- masks: masked_select and the mask form of assign ---------------------------------------- */

/* The number of true elements of mask broadcast to shape. */
static int64_t mask_count(const td_tensor *mask, const int64_t *shape, int nd) {
    walker w;
    int64_t c = 0;
    walk_init(&w, shape, nd, &mask, 1, -1);
    for (int64_t i = 0, total = prod(shape, nd); more(i, total); i++, walk_next(&w))
        c += *(const bool *)at(mask, w.off[0]);
    return c;
}

static int check_mask(const char *fn, const td_tensor *mask) {
    char a[128];
    if (mask->dtype != TD_BOOL)
        return td_error("%s: mask must be a bool tensor, got %s (shape %s)", fn,
                        td_dtype_name(mask->dtype), shp(mask, a));
    return 0;
}

static int masked_select_shape(td_node *n) {
    td_meta *m = &n->meta[0];
    int64_t shape[TD_MAX_DIMS];
    int nd;
    if (check_mask("masked_select", n->in[1]) < 0) return -1;
    if (td_broadcast_shape("masked_select", n->in, 2, shape, &nd) < 0) return -1;
    m->ndim = 1;
    m->shape[0] = mask_count(n->in[1], shape, nd);
    m->dtype = n->in[0]->dtype;
    return td_poll_interrupt();
}

/* to[i++] = from[p] for each position p (of from and mask broadcast) where mask is true:
 * gathering when `to` is 1-D contiguous; scattering (to = a tensor, from = 1-D) when `back`. */
static void mask_walk(td_tensor *x, const td_tensor *mask, td_tensor *flat, bool back) {
    int64_t shape[TD_MAX_DIMS];
    int nd;
    td_tensor *ops[2] = {x, (td_tensor *)mask};
    if (td_broadcast_shape("mask", ops, 2, shape, &nd) < 0) return; /* checked by shape() */
    size_t esz = td_dtype_size(x->dtype);
    bool one = td_numel(flat) == 1 && back; /* a single value fills every true position */
    char *f = td_data(flat);
    walker w;
    walk_init(&w, shape, nd, (const td_tensor *const *)ops, 2, -1);
    for (int64_t i = 0, total = prod(shape, nd); more(i, total); i++, walk_next(&w)) {
        if (!*(const bool *)at(mask, w.off[1])) continue;
        if (back)
            copy_elem(at(x, w.off[0]), f, esz);
        else
            copy_elem(f, at(x, w.off[0]), esz);
        if (!one) f += esz;
    }
}

static int masked_select_forward(td_node *n) {
    mask_walk(n->in[0], n->in[1], n->out[0], false);
    return td_poll_interrupt();
}

/* dx = zeros (of the broadcast shape) with g put back at the selected positions. */
static int masked_select_backward(td_node *n, td_tensor *const *gout, td_tensor **gin) {
    int64_t shape[TD_MAX_DIMS];
    int nd;
    if (td_broadcast_shape("masked_select", n->in, 2, shape, &nd) < 0) return -1;
    td_tensor *g = td_contiguous(gout[0]), *z = g ? td_zeros(shape, nd, g->dtype) : NULL;
    if (z) mask_walk(z, n->in[1], g, true);
    td_release(g);
    if (z && td_poll_interrupt() < 0) {
        td_release(z);
        return -1;
    }
    return (gin[0] = z) ? 0 : -1;
}

/* ---- assign: t[key] = v -------------------------------------------------------------------- */

/* new ref: the part of t that the steps of key name (a view, outside autograd). */
static td_tensor *apply_steps(td_tensor *t, const td_tensor *key) {
    bool prev = td_set_grad_enabled(false);
    td_tensor *cur = t;
    td_retain(t);
    for (int64_t r = 0; cur && r < key->shape[0]; r++) {
        int64_t s[5];
        for (int c = 0; c < 5; c++)
            s[c] = *(const int64_t *)at(key, r * key->stride[0] + c * key->stride[1]);
        td_args a = {.dim = s[1], .index = s[2], .start = s[2], .len = s[3], .step = s[4]};
        td_tensor *next =
            td_apply1(s[0] == TD_STEP_SELECT ? &td_op_select : &td_op_narrow, cur, &a);
        td_release(cur);
        cur = next;
    }
    td_set_grad_enabled(prev);
    return cur;
}

static int assign_shape(td_node *n) {
    td_tensor *t = n->in[0], *v = n->in[1], *key = n->in[2];
    char a[128], b[128];
    td_meta *m = &n->meta[0];
    m->ndim = t->ndim;
    memcpy(m->shape, t->shape, sizeof(int64_t) * (size_t)t->ndim);
    m->dtype = t->dtype;
    if (key->dtype == TD_BOOL) {
        int64_t shape[TD_MAX_DIMS];
        int nd;
        td_tensor *ops[2] = {t, key};
        if (td_broadcast_shape("index assignment", ops, 2, shape, &nd) < 0 || nd != t->ndim ||
            memcmp(shape, t->shape, sizeof(int64_t) * (size_t)nd))
            return td_error(
                "index assignment: mask of shape %s does not broadcast to the tensor's shape %s",
                shp(key, a), shp(t, b));
        int64_t count = mask_count(key, t->shape, t->ndim);
        if (td_poll_interrupt() < 0) return -1;
        if (td_numel(v) != 1 && (v->ndim != 1 || v->shape[0] != count))
            return td_error(
                "index assignment: %lld positions are masked but the value has shape %s "
                "(expected one value, or %lld)",
                (long long)count, shp(v, a), (long long)count);
        return 0;
    }
    if (key->dtype != TD_INT64 || key->ndim != 2 || key->shape[1] != 5)
        return td_error(
            "index assignment: key must be a bool mask or an int64 Kx5 list of steps, got %s %s",
            td_dtype_name(key->dtype), shp(key, a));
    td_tensor *part = apply_steps(t, key);
    if (!part) return -1;
    bool ok = v->ndim <= part->ndim;
    for (int i = 0; ok && i < v->ndim; i++) {
        int64_t have = v->shape[i], want = part->shape[part->ndim - v->ndim + i];
        ok = have == want || have == 1;
    }
    int rc = ok ? 0
                : td_error("index assignment: value of shape %s cannot be broadcast to the indexed "
                           "shape %s",
                           shp(v, a), shp(part, b));
    td_release(part);
    return rc;
}

static int assign_forward(td_node *n) {
    td_tensor *o = n->out[0], *key = n->in[2], *v = NULL, *part = NULL;
    int rc = -1;
    if (o != n->in[0] && td_copy_into(o, n->in[0]) < 0) return -1;
    /* a value sharing o's storage could be overwritten while it is read */
    if (n->in[1]->storage == o->storage || (key->dtype == TD_BOOL && n->in[1]->dtype != o->dtype)) {
        v = td_empty(n->in[1]->shape, n->in[1]->ndim, o->dtype);
        if (!v || td_copy_into(v, n->in[1]) < 0) goto done;
    } else {
        v = n->in[1];
        td_retain(v);
    }
    if (key->dtype == TD_BOOL) {
        td_tensor *c = td_contiguous(v);
        if (!c) goto done;
        mask_walk(o, key, c, true);
        td_release(c);
        rc = td_poll_interrupt();
    } else if ((part = apply_steps(o, key))) {
        rc = td_copy_into(part, v);
    }
done:
    td_release(part);
    td_release(v);
    return rc;
}

/* dt = g with the assigned part zeroed; dv = g's assigned part (autograd sums it down to v). */
static int assign_backward(td_node *n, td_tensor *const *gout, td_tensor **gin) {
    td_tensor *g = gout[0], *key = n->in[2], *v = n->in[1];
    td_tensor *zero = td_scalar(0, g->dtype), *c = NULL, *part = NULL;
    int rc = -1;
    if (!zero) return -1;
    if (n->needs_grad[0]) {
        if (!(c = td_empty(g->shape, g->ndim, g->dtype)) || td_copy_into(c, g) < 0) goto done;
        if (key->dtype == TD_BOOL)
            mask_walk(c, key, zero, true);
        else if (!(part = apply_steps(c, key)) || td_copy_into(part, zero) < 0)
            goto done;
        gin[0] = c;
        c = NULL;
    }
    if (n->needs_grad[1]) {
        if (key->dtype != TD_BOOL) {
            if (!(gin[1] = apply_steps(g, key))) goto done;
        } else {
            int64_t count = mask_count(key, g->shape, g->ndim);
            td_tensor *sel = td_empty(&count, 1, g->dtype);
            if (!sel) goto done;
            mask_walk(g, key, sel, false);
            if (td_numel(v) == 1 && count != 1) { /* one value filled them all: sum */
                double s = 0;
                for (int64_t i = 0; i < count; i++) s += td_get(sel, &i);
                td_release(sel);
                sel = td_full(v->shape, v->ndim, g->dtype, s);
            }
            if (!(gin[1] = sel)) goto done;
        }
    }
    rc = 0;
done:
    td_release(zero);
    td_release(c);
    td_release(part);
    return rc;
}

/* ---- descriptors ------------------------------------------------------------------------- */

const td_op td_op_index = {.name = "index",
                           .nin = 2,
                           .doc = "index(d, idx): the positions idx (1-based int64, 1-D) of dim d",
                           .shape = index_shape,
                           .forward = index_forward,
                           .backward = index_backward};
const td_op td_op_gather = {
    .name = "gather",
    .nin = 2,
    .doc = "gather(d, idx): out[p] = t[p with dim d replaced by idx[p]]; out has idx's shape",
    .shape = gather_shape,
    .forward = gather_forward,
    .backward = gather_backward};
/* TD_GRAD_NOREAD: backward reads only idx, never t or src, so scatter_ can be differentiated */
const td_op td_op_scatter = {
    .name = "scatter",
    .nin = 3,
    .flags = TD_INPLACE | TD_GRAD_NOREAD,
    .doc = "scatter(d, idx, src): a copy of t with t[p with dim d replaced by idx[p]] = src[p]",
    .shape = scatter_shape,
    .forward = scatter_forward,
    .backward = scatter_backward};
const td_op td_op_masked_select = {
    .name = "masked_select",
    .nin = 2,
    .doc = "masked_select(mask): the elements where the bool mask is true, as a 1-D tensor",
    .shape = masked_select_shape,
    .forward = masked_select_forward,
    .backward = masked_select_backward};
const td_op td_op_assign = {
    .name = "assign",
    .nin = 3,
    .flags = TD_GRAD_NOREAD,
    .doc = "t[key] = v: writes v into the part of t that key names (vm/index.c)",
    .shape = assign_shape,
    .forward = assign_forward,
    .backward = assign_backward};
