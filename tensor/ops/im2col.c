/* tensor/ops/im2col.c: im2col (PyTorch's F.unfold): the sliding k x k blocks of an image batch
 * as columns, N x C x H x W -> N x (C KH KW) x (OH OW), row (c, i, j) being channel c seen
 * through kernel tap (i, j) at every output position, zeros over the padding. A convolution is
 * then one product by the weight viewed as K x (C KH KW); per-example weight gradients are
 * gy_n (K x L) times cols_n^T (DP-SGD, stdlib/tide/privacy). Backward is col2im (F.fold).
 * The columns are conv_cols.c's, the geometry conv.c's. */
#include "conv.h"

#include <stdio.h>
#include <string.h>

/* td_args (vm/ops.c SIG_UNFOLD): sizes = {kernel h, w, stride h, w, padding h, w, dilation h, w} */
static int plan(const td_node *n, conv *c) {
    const char *fn = n->op->name;
    const td_tensor *x = n->in[0];
    const int64_t *s = n->args.sizes;
    char sx[96];
    if (x->ndim != 4)
        return td_error("%s: expected a 4-D input (N,C,H,W), got %s", fn,
                        td_shape_str(x->shape, x->ndim, sx, sizeof sx));
    if (x->dtype != TD_FLOAT32 && x->dtype != TD_FLOAT64)
        return td_error("%s: expected a float32 or float64 input, got %s", fn,
                        td_dtype_name(x->dtype));
    if (n->args.nsizes != 8)
        return td_error("%s: expected 8 sizes in the arguments, got %d", fn, n->args.nsizes);
    int64_t kh = s[0], kw = s[1], sh = s[2], sw = s[3], ph = s[4], pw = s[5], dh = s[6], dw = s[7];
    if (kh < 1 || kw < 1 || sh < 1 || sw < 1 || dh < 1 || dw < 1 || ph < 0 || pw < 0)
        return td_error("%s: kernel %lldx%lld, stride %lldx%lld and dilation %lldx%lld must be "
                        "positive and padding %lldx%lld >= 0",
                        fn, (long long)kh, (long long)kw, (long long)sh, (long long)sw,
                        (long long)dh, (long long)dw, (long long)ph, (long long)pw);
    *c = (conv){.dt = x->dtype, .es = td_dtype_size(x->dtype), .N = x->shape[0],
                .C = x->shape[1], .H = x->shape[2], .W = x->shape[3]};
    int64_t ekh = (kh - 1) * dh + 1, ekw = (kw - 1) * dw + 1;
    if (ekh > c->H + 2 * ph || ekw > c->W + 2 * pw)
        return td_error("%s: kernel %lldx%lld%s is larger than the padded input %lldx%lld (input "
                        "%s, padding %lldx%lld)",
                        fn, (long long)ekh, (long long)ekw, dh > 1 || dw > 1 ? " (dilated)" : "",
                        (long long)(c->H + 2 * ph), (long long)(c->W + 2 * pw),
                        td_shape_str(x->shape, x->ndim, sx, sizeof sx), (long long)ph,
                        (long long)pw);
    c->OH = (c->H + 2 * ph - ekh) / sh + 1, c->OW = (c->W + 2 * pw - ekw) / sw + 1;
    c->g = (geom){c->C, c->H, c->W, kh, kw, c->OH, c->OW, sh, sw, ph, pw, dh, dw};
    c->ckk = c->C * kh * kw, c->L = c->OH * c->OW;
    return 0;
}

static int im2col_shape(td_node *n) {
    conv c = {0};
    if (plan(n, &c) < 0) return -1;
    td_meta *m = &n->meta[0];
    m->ndim = 3, m->shape[0] = c.N, m->shape[1] = c.ckk, m->shape[2] = c.L;
    m->dtype = c.dt;
    return 0;
}

static int im2col_forward(td_node *n) {
    conv c = {0};
    if (plan(n, &c) < 0) return -1;
    td_tensor *x = td_contiguous(n->in[0]);
    if (!x) return -1;
    const char *img = td_data(x);
    char *col = td_data(n->out[0]);
    size_t isz = (size_t)(c.C * c.H * c.W) * c.es, csz = (size_t)(c.ckk * c.L) * c.es;
#pragma omp parallel for if (c.N > 1 && (double)csz * (double)c.N > 1e6)
    for (int64_t i = 0; i < c.N; i++) td_conv_im2col(&c, col + (size_t)i * csz, img + (size_t)i * isz);
    td_release(x);
    return td_poll_interrupt();
}

static int im2col_backward(td_node *n, td_tensor *const *gout, td_tensor **gin) {
    conv c = {0};
    if (plan(n, &c) < 0) return -1;
    td_tensor *x = n->in[0], *gx = NULL, *gy = NULL, *gyc = td_to_dtype(gout[0], c.dt);
    td_storage *scratch = NULL; /* col2im scribbles on its columns: they go to a private copy */
    size_t isz = (size_t)(c.C * c.H * c.W) * c.es, csz = (size_t)(c.ckk * c.L) * c.es;
    int rc = -1;
    if (!gyc || !(gy = td_contiguous(gyc)) || !(gx = td_zeros(x->shape, x->ndim, c.dt)) ||
        !(scratch = td_storage_new(csz * (size_t)c.N + 64)))
        goto done;
    char *img = td_data(gx), *col = scratch->data;
    if (c.N > 0) memcpy(col, td_data(gy), csz * (size_t)c.N);
#pragma omp parallel for if (c.N > 1 && (double)csz * (double)c.N > 1e6)
    for (int64_t i = 0; i < c.N; i++)
        td_conv_col2im(&c, img + (size_t)i * isz, col + (size_t)i * csz);
    gin[0] = gx, gx = NULL;
    rc = td_poll_interrupt();
done:
    td_storage_release(scratch);
    td_release(gyc), td_release(gy), td_release(gx);
    return rc;
}

const td_op td_op_im2col = {
    .name = "im2col",
    .nin = 1,
    .doc = "the k x k blocks of N x C x H x W as columns N x (C kh kw) x L (PyTorch's F.unfold), "
           "{stride=1, padding=0, dilation=1}",
    .shape = im2col_shape,
    .forward = im2col_forward,
    .backward = im2col_backward,
};
