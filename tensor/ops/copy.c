/* tensor/ops/copy.c: t:copy_(src) and t:fill_(v), in-place writes that autograd sees: the
 * gradient flows to src (reduced over broadcasting) and none to the overwritten values. */
#include "../tide.h"

static int copy_shape(td_node *n) {
    td_tensor *dst = n->in[0], *src = n->in[1];
    int64_t shape[TD_MAX_DIMS];
    int nd;
    bool same = td_broadcast_shape(n->op->name, n->in, 2, shape, &nd) == 0 && nd == dst->ndim;
    for (int i = 0; same && i < nd; i++) same = shape[i] == dst->shape[i];
    if (!same) {
        char a[128], b[128];
        return td_error("%s: source of shape %s cannot be broadcast to the shape %s",
                        n->op->name, td_shape_str(src->shape, src->ndim, a, sizeof a),
                        td_shape_str(dst->shape, dst->ndim, b, sizeof b));
    }
    td_meta *m = &n->meta[0];
    m->ndim = dst->ndim;
    for (int i = 0; i < dst->ndim; i++) m->shape[i] = dst->shape[i];
    m->dtype = dst->dtype;
    n->nout = 1;
    return 0;
}

static int copy_forward(td_node *n) {
    return td_copy_into(n->out[0], n->in[1]) < 0 ? td_error_in(n->op->name) : 0;
}

static int copy_backward(td_node *n, td_tensor *const *gout, td_tensor **gin) {
    if (n->needs_grad[0] && !(gin[0] = td_zeros(gout[0]->shape, gout[0]->ndim, gout[0]->dtype)))
        return -1;
    if (n->needs_grad[1]) {
        td_retain(gout[0]);
        gin[1] = gout[0]; /* the engine sums it to src's shape and converts its dtype */
    }
    return 0;
}

const td_op td_op_copy = {
    .name = "copy_", .nin = 2, .flags = TD_INPLACE_ONLY | TD_GRAD_NOREAD,
    .doc = "t:copy_(src): copies src (broadcast, converted to t's dtype) into t",
    .shape = copy_shape, .forward = copy_forward, .backward = copy_backward,
};

const td_op td_op_fill = {
    .name = "fill_", .nin = 2, .flags = TD_INPLACE_ONLY | TD_GRAD_NOREAD,
    .doc = "t:fill_(v): sets every element of t to the number (or 0-dim tensor) v",
    .shape = copy_shape, .forward = copy_forward, .backward = copy_backward,
};
