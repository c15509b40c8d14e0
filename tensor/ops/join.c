/* tensor/ops/join.c: cat and stack, which join any number of tensors (TD_VARIN) along dim d.
 * Each input is copied into its slice of the output (converting to the promoted dtype), and the
 * gradient of each input is the matching slice of the output's gradient (a view). */
#include "../tide.h"

#include <string.h>

static bool same_except(const td_tensor *a, const td_tensor *b, int64_t d) {
    if (a->ndim != b->ndim) return false;
    for (int i = 0; i < a->ndim; i++)
        if (i != d && a->shape[i] != b->shape[i]) return false;
    return true;
}

/* Shared checks: a non-empty list whose shapes agree except along d (cat) or everywhere
 * (stack, d = -1); meta gets the promoted dtype and in[0]'s shape. */
static int join_check(td_node *n, const char *fn, int64_t d) {
    char a[128], b[128];
    if (n->nin < 1) return td_error("%s: expected a non-empty list of tensors", fn);
    td_tensor *first = n->in[0];
    td_meta *m = &n->meta[0];
    m->dtype = first->dtype;
    for (int i = 1; i < n->nin; i++) {
        td_tensor *t = n->in[i];
        if (same_except(t, first, d)) {
            m->dtype = td_dtype_promote(m->dtype, t->dtype);
            continue;
        }
        td_shape_str(t->shape, t->ndim, a, sizeof a);
        td_shape_str(first->shape, first->ndim, b, sizeof b);
        if (d < 0)
            return td_error("%s: tensor %d has shape %s but tensor 1 has shape %s (all shapes "
                            "must be equal)",
                            fn, i + 1, a, b);
        return td_error("%s: tensor %d has shape %s but tensor 1 has shape %s (all dims except "
                        "dim %d must match)",
                        fn, i + 1, a, b, (int)d + 1);
    }
    m->ndim = first->ndim;
    memcpy(m->shape, first->shape, sizeof(int64_t) * (size_t)first->ndim);
    return 0;
}

static int cat_shape(td_node *n) {
    td_tensor *first = n->nin ? n->in[0] : NULL;
    int64_t d = n->args.dim;
    if (first && first->ndim == 0)
        return td_error("cat: 0-D tensors cannot be concatenated (use stack)");
    if (first && td_normdim("cat", &d, first->ndim) < 0) return -1;
    if (join_check(n, "cat", d) < 0) return -1;
    n->args.dim = d;
    n->meta[0].shape[d] = 0;
    for (int i = 0; i < n->nin; i++) n->meta[0].shape[d] += n->in[i]->shape[d];
    return 0;
}

/* Input i's slice of t: along d from position `at` (cat), or position i of a new dim (stack). */
static td_tensor *slice_of(td_tensor *t, const td_tensor *in, int64_t d, int64_t at, bool stack) {
    int64_t st[TD_MAX_DIMS];
    for (int i = 0, k = 0; i < t->ndim; i++)
        if (!stack || i != d) st[k++] = t->stride[i];
    return td_view_of(t, in->shape, st, in->ndim, t->offset + at * t->stride[d]);
}

static int join_forward(td_node *n, bool stack) {
    int64_t d = n->args.dim, at = 0;
    for (int i = 0; i < n->nin; i++) {
        td_tensor *part = slice_of(n->out[0], n->in[i], d, at, stack);
        int rc = part ? td_copy_into(part, n->in[i]) : -1;
        td_release(part);
        if (rc < 0) return -1;
        at += stack ? 1 : n->in[i]->shape[d];
    }
    return 0;
}

static int join_backward(td_node *n, td_tensor *g, td_tensor **gin, bool stack) {
    int64_t d = n->args.dim, at = 0;
    for (int i = 0; i < n->nin; i++) {
        if (n->needs_grad[i] && !(gin[i] = slice_of(g, n->in[i], d, at, stack))) return -1;
        at += stack ? 1 : n->in[i]->shape[d];
    }
    return 0;
}

static int cat_forward(td_node *n) {
    return join_forward(n, false);
}

static int cat_backward(td_node *n, td_tensor *const *gout, td_tensor **gin) {
    return join_backward(n, gout[0], gin, false);
}

static int stack_shape(td_node *n) {
    int64_t d = n->args.dim;
    td_meta *m = &n->meta[0];
    if (n->nin && n->in[0]->ndim == TD_MAX_DIMS)
        return td_error("stack: the tensors already have the maximum of %d dims", TD_MAX_DIMS);
    if (n->nin && td_normdim("stack", &d, n->in[0]->ndim + 1) < 0) return -1;
    if (join_check(n, "stack", -1) < 0) return -1;
    n->args.dim = d;
    for (int i = m->ndim; i > d; i--) m->shape[i] = m->shape[i - 1];
    m->shape[d] = n->nin;
    m->ndim++;
    return 0;
}

static int stack_forward(td_node *n) {
    return join_forward(n, true);
}

static int stack_backward(td_node *n, td_tensor *const *gout, td_tensor **gin) {
    return join_backward(n, gout[0], gin, true);
}

const td_op td_op_cat = {.name = "cat",
                         .nin = 0,
                         .flags = TD_VARIN | TD_GRAD_NOREAD,
                         .doc = "tide.cat(list, d): the tensors joined along dim d (default 1)",
                         .shape = cat_shape,
                         .forward = cat_forward,
                         .backward = cat_backward};
const td_op td_op_stack = {
    .name = "stack",
    .nin = 0,
    .flags = TD_VARIN | TD_GRAD_NOREAD,
    .doc = "tide.stack(list, d): equal-shaped tensors joined along a new dim d (default 1)",
    .shape = stack_shape,
    .forward = stack_forward,
    .backward = stack_backward};
