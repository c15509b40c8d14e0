/* tensor/ops/hook.c: hook, an identity whose backward hands the output's gradient to a callback
 * that may replace it: the primitive under nn.Module's backward hooks (vm/hook.c calls Lua from
 * it). Not an ops.def row: its argument is a C callback, not something Lua passes. */
#include "../tide.h"

#include <string.h>

typedef struct hook_ctx {
    td_hook_fn fn;
    td_hook_free release;
    void *ud;
} hook_ctx;

static int hook_shape(td_node *n) {
    const td_tensor *x = n->in[0];
    td_meta *m = &n->meta[0];
    memcpy(m->shape, x->shape, sizeof(int64_t) * (size_t)x->ndim);
    memcpy(m->stride, x->stride, sizeof(int64_t) * (size_t)x->ndim);
    m->ndim = x->ndim;
    m->offset = x->offset;
    m->dtype = x->dtype;
    return 0;
}

static int hook_forward(td_node *n) {
    (void)n; /* a view: td_run made the output share x's storage */
    return 0;
}

static int hook_backward(td_node *n, td_tensor *const *gout, td_tensor **gin) {
    const hook_ctx *c = n->ctx;
    td_tensor *r = NULL;
    if (!gout[0]) return 0;
    if (c && c->fn(c->ud, gout[0], &r) < 0) return -1;
    if (!r) {
        td_retain(gout[0]);
        r = gout[0];
    }
    gin[0] = r;
    return 0;
}

static void hook_release(td_node *n) {
    const hook_ctx *c = n->ctx;
    if (c && c->release) c->release(c->ud);
}

const td_op td_op_hook = {
    .name = "hook", .nin = 1, .flags = TD_VIEW | TD_GRAD_NOREAD,
    .doc = "identity; backward passes the gradient through a callback",
    .shape = hook_shape, .forward = hook_forward, .backward = hook_backward,
    .release = hook_release,
};

td_tensor *td_hook(td_tensor *x, td_hook_fn fn, td_hook_free release, void *ud) {
    if (!td_grad_enabled() || !x->requires_grad) {
        td_error("hook: the tensor is not tracked by autograd (it does not require grad, or grad "
                 "mode is off)");
        return NULL;
    }
    hook_ctx *c = td_malloc(sizeof *c);
    if (!c) return NULL;
    td_tensor *y = td_apply1(&td_op_hook, x, NULL);
    if (!y) {
        td_free(c);
        return NULL;
    }
    *c = (hook_ctx){fn, release, ud};
    y->grad_fn->ctx = c; /* recorded: x requires grad and grad mode is on */
    return y;
}
