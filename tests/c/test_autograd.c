/* tests/c/test_autograd.c: the backward walk is all or nothing. An interrupt (the flag vm/'s
 * SIGINT handler sets, raised here by a test op's backward, mid-walk) or an error leaves every
 * .grad exactly as it was and the graph whole: the same backward then runs to the right sums. */
#include <criterion/criterion.h>
#include <string.h>

#include "../../tensor/tide.h"

/* interrupt(x) = x; its backward passes g on and, the first time, raises the Ctrl-C flag as a
 * signal would */
static int fired;
static int hook_shape(td_node *n) {
    td_meta *m = &n->meta[0];
    m->ndim = n->in[0]->ndim;
    memcpy(m->shape, n->in[0]->shape, sizeof(int64_t) * (size_t)m->ndim);
    m->dtype = n->in[0]->dtype;
    n->nout = 1;
    return 0;
}
static int hook_forward(td_node *n) {
    return td_copy_into(n->out[0], n->in[0]);
}
static int hook_backward(td_node *n, td_tensor *const *gout, td_tensor **gin) {
    (void)n;
    if (!fired++) td_interrupted = 1;
    td_retain(gout[0]);
    gin[0] = gout[0];
    return 0;
}
static const td_op hook = {.name = "interrupt", .nin = 1, .flags = TD_GRAD_NOREAD,
                           .shape = hook_shape, .forward = hook_forward,
                           .backward = hook_backward};

static td_tensor *scaled(td_tensor *x, double k) {
    td_tensor *c = td_scalar(k, TD_FLOAT64), *y = td_apply2(&td_op_mul, x, c, NULL);
    td_release(c);
    cr_assert_not_null(y, "%s", td_errmsg());
    return y;
}

static void expect_grad(td_tensor *x, double want) {
    cr_assert_not_null(x->grad);
    for (int i = 0; i < 2; i++)
        cr_assert_eq(((double *)td_data(x->grad))[i], want, "grad[%d] = %g, expected %g", i,
                     ((double *)td_data(x->grad))[i], want);
}

Test(autograd, interrupted_backward_leaves_grad_and_graph_untouched) {
    int64_t n = 2;
    td_tensor *x = td_full(&n, 1, TD_FLOAT64, 1), *z = td_full(&n, 1, TD_FLOAT64, 1);
    x->requires_grad = z->requires_grad = true;
    x->grad = td_full(&n, 1, TD_FLOAT64, 5); /* from an earlier step */
    /* L = sum(interrupt(x*2) + x*3 + z): x*3 reaches x.grad first (the ready stack runs the add's
     * last input first), then interrupt() raises the flag and the mul under it stops the walk */
    td_tensor *u = scaled(x, 2), *v = td_apply1(&hook, u, NULL), *w = scaled(x, 3);
    td_tensor *s1 = td_apply2(&td_op_add, v, w, NULL), *s = td_apply2(&td_op_add, s1, z, NULL);
    td_tensor *loss = td_apply1(&td_op_sum, s, NULL);
    cr_assert_not_null(loss, "%s", td_errmsg());
    td_tensor *before = x->grad;
    cr_assert_eq(td_backward(&loss, NULL, 1, false), -1);
    cr_assert_str_eq(td_errmsg(), "interrupted!");
    cr_assert_eq(x->grad, before, "the .grad tensor itself is unchanged");
    expect_grad(x, 5);
    cr_assert_null(z->grad, "a leaf without .grad before has none after");
    td_interrupted = 0;
    /* the graph was not freed: the same backward runs to the right sums */
    cr_assert_eq(td_backward(&loss, NULL, 1, false), 0, "%s", td_errmsg());
    expect_grad(x, 5 + 2 + 3);
    cr_assert_not_null(z->grad);
    cr_assert_eq(td_backward(&loss, NULL, 1, false), -1, "freed once it succeeded");
    cr_assert(strstr(td_errmsg(), "already freed"), "%s", td_errmsg());
    td_tensor *all[] = {x, z, u, v, w, s1, s, loss};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) td_release(all[i]);
}

Test(autograd, failed_backward_leaves_grad_untouched) {
    int64_t n = 2;
    td_tensor *x = td_full(&n, 1, TD_FLOAT64, 3);
    x->requires_grad = true;
    x->grad = td_full(&n, 1, TD_FLOAT64, 5);
    td_tensor *a = scaled(x, 4), *b = td_apply2(&td_op_mul, a, a, NULL);
    td_tensor *c = td_apply2(&td_op_add, b, x, NULL), *loss = td_apply1(&td_op_sum, c, NULL);
    cr_assert_not_null(loss, "%s", td_errmsg());
    /* modifying a saved input in place makes MulBackward fail after x got x's own gradient */
    td_tensor *in[2] = {a, a};
    bool prev = td_set_grad_enabled(false);
    cr_assert_eq(td_apply_(&td_op_add, in, 2, NULL), 0, "%s", td_errmsg());
    td_set_grad_enabled(prev);
    cr_assert_eq(td_backward(&loss, NULL, 1, true), -1);
    cr_assert(strstr(td_errmsg(), "modified in place"), "%s", td_errmsg());
    expect_grad(x, 5);
    td_release(loss), td_release(c), td_release(b), td_release(a), td_release(x);
}

Test(autograd, grad_of_an_input_given_twice_goes_to_both_places) {
    int64_t n = 2;
    td_tensor *x = td_full(&n, 1, TD_FLOAT64, 3);
    x->requires_grad = true;
    td_tensor *h = scaled(x, 2), *y = td_apply2(&td_op_mul, h, x, NULL);
    td_tensor *loss = td_apply1(&td_op_sum, y, NULL), *in[4] = {x, x, h, h}, *out[4];
    cr_assert_eq(td_grad(&loss, NULL, 1, in, 4, out, false), 0, "%s", td_errmsg());
    for (int j = 0; j < 4; j++) { /* d(2x*x)/dx = 4x = 12 through the leaf; d(h*x)/dh = x = 3 */
        cr_assert_not_null(out[j], "input %d", j + 1);
        cr_assert_eq(((double *)td_data(out[j]))[1], j < 2 ? 12.0 : 3.0, "input %d", j + 1);
        td_release(out[j]);
    }
    td_release(loss), td_release(y), td_release(h), td_release(x);
}
