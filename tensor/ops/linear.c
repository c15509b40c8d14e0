/* tensor/ops/linear.c: linear(x, w, b) = x W^T + b (torch.nn.functional.linear with a bias), the
 * product under nn.Linear. Sizes: x is ... x F (R rows once the leading dims are merged), W is
 * O x F (PyTorch's layout), b is O, y is ... x O. One op instead of addmm(b, x, w:t()) because
 * autograd then hands the weight gradient straight to .grad: gW = gy^T x is computed in W's own
 * O x F layout (the transpose view's gradient was a strided F x O buffer that deliver() had to
 * copy every step), and gb sums gy's rows directly instead of a broadcast product of them. */
#include "sgemm.h"

#include <string.h>

#define SHP(t, buf) td_shape_str((t)->shape, (t)->ndim, buf, sizeof buf)

static int linear_shape(td_node *n) {
    td_tensor *x = n->in[0], *w = n->in[1], *b = n->in[2];
    char sx[96], sw[96], sb[96];
    if (x->dtype != TD_FLOAT32 && x->dtype != TD_FLOAT64)
        return td_error("linear: expected a float32 or float64 input, got %s",
                        td_dtype_name(x->dtype));
    if (w->dtype != x->dtype || b->dtype != x->dtype)
        return td_error("linear: input, weight and bias must have one dtype, got %s, %s and %s",
                        td_dtype_name(x->dtype), td_dtype_name(w->dtype), td_dtype_name(b->dtype));
    if (w->ndim != 2)
        return td_error("linear: expected a 2-D weight (out, in), got %s", SHP(w, sw));
    if (x->ndim < 1 || x->shape[x->ndim - 1] != w->shape[1])
        return td_error("linear: input %s does not end in the weight's %lld input features "
                        "(weight %s)",
                        SHP(x, sx), (long long)w->shape[1], SHP(w, sw));
    if (b->ndim != 1 || b->shape[0] != w->shape[0])
        return td_error("linear: bias must be 1-D with %lld elements (the weight's rows), got %s",
                        (long long)w->shape[0], SHP(b, sb));
    td_meta *m = &n->meta[0];
    m->ndim = x->ndim;
    memcpy(m->shape, x->shape, sizeof m->shape);
    m->shape[x->ndim - 1] = w->shape[0];
    m->dtype = x->dtype;
    return 0;
}

/* y (R x O) = b on every row, then + x W^T in one GEMM (beta 1): addmm's rounding */
static int linear_forward(td_node *n) {
    td_tensor *x = td_contiguous(n->in[0]), *w = x ? td_contiguous(n->in[1]) : NULL;
    td_tensor *b = w ? td_contiguous(n->in[2]) : NULL, *y = n->out[0];
    if (!b) {
        td_release(x), td_release(w);
        return -1;
    }
    int64_t O = w->shape[0], F = w->shape[1], R = O ? td_numel(y) / O : 0;
    size_t es = td_dtype_size(y->dtype), row = (size_t)O * es;
    char *yd = td_data(y);
    for (int64_t r = 0; r < R; r++) memcpy(yd + (size_t)r * row, td_data(b), row);
    int rc = td_gemm(y->dtype, R, O, F, td_data(x), F, 1, td_data(w), 1, F, true, yd, O);
    td_release(x), td_release(w), td_release(b);
    return rc;
}

/* gx = gy W (R x F), gW = gy^T x (O x F, W's layout), gb = column sums of gy */
static int linear_backward(td_node *n, td_tensor *const *gout, td_tensor **gin) {
    td_tensor *x = n->in[0], *w = n->in[1], *gc = NULL, *g = NULL, *xc = NULL, *wc = NULL;
    td_dtype dt = x->dtype;
    int64_t O = w->shape[0], F = w->shape[1], R = O ? td_numel(gout[0]) / O : 0;
    int rc = -1;
    if (!(gc = td_to_dtype(gout[0], dt)) || !(g = td_contiguous(gc))) goto done;
    if (n->needs_grad[0]) {
        if (!(wc = td_contiguous(w)) || !(gin[0] = td_empty(x->shape, x->ndim, dt))) goto done;
        if (O > 0) {
            if (td_gemm(dt, R, F, O, td_data(g), O, 1, td_data(wc), F, 1, false, td_data(gin[0]),
                        F) < 0)
                goto done;
        } else { /* no output features: R is unknown above, and the gradient is zero */
            memset(td_data(gin[0]), 0, (size_t)td_numel(gin[0]) * td_dtype_size(dt));
        }
    }
    if (n->needs_grad[1]) {
        if (!(xc = td_contiguous(x)) || !(gin[1] = td_empty(w->shape, 2, dt))) goto done;
        if (td_gemm(dt, O, F, R, td_data(g), 1, O, td_data(xc), F, 1, false, td_data(gin[1]), F) <
            0)
            goto done;
    }
    if (n->needs_grad[2] && !(gin[2] = td_sum_to(g, &O, 1))) goto done; /* the column sums */
    rc = 0;
done:
    td_release(gc), td_release(g), td_release(xc), td_release(wc);
    return rc;
}

const td_op td_op_linear = {
    .name = "linear",
    .nin = 3,
    .doc = "x W^T + b for x ... x in, W out x in, b out (nn.Linear's product)",
    .shape = linear_shape,
    .forward = linear_forward,
    .backward = linear_backward,
};
