/* tests/c/test_hook.c: td_hook, the identity whose backward calls a C callback: the callback
 * sees the view's gradient, may replace it or stop the backward with an error, and its release
 * runs exactly once, when the node is freed (after a backward, or with the graph unused). */
#include <criterion/criterion.h>

#include "../../tensor/tide.h"

typedef struct probe {
    int calls, released;
    double seen; /* first element of the gradient the callback got */
    double scale; /* 0: pass g on; else replace it by g * scale; < 0: fail */
} probe;

static int cb(void *ud, td_tensor *g, td_tensor **r) {
    probe *p = ud;
    p->calls++;
    p->seen = td_item(g);
    if (p->scale < 0) return td_error("probe: refused");
    if (p->scale > 0) {
        td_tensor *s = td_scalar(p->scale, g->dtype);
        *r = td_apply2(&td_op_mul, g, s, NULL);
        td_release(s);
    }
    return 0;
}

static void rel(void *ud) {
    ((probe *)ud)->released++;
}

/* x (2 elements, requires grad) -> hook -> * 3 -> sum; returns x, runs backward */
static td_tensor *run(probe *p, int *rc) {
    int64_t n = 2;
    td_tensor *x = td_full(&n, 1, TD_FLOAT32, 1.5);
    x->requires_grad = true;
    td_tensor *h = td_hook(x, cb, rel, p);
    cr_assert_not_null(h, "%s", td_errmsg());
    cr_assert_eq(h->storage, x->storage, "a view, not a copy");
    td_tensor *three = td_scalar(3, TD_FLOAT32);
    td_tensor *y = td_apply2(&td_op_mul, h, three, NULL);
    td_tensor *s = td_apply1(&td_op_sum, y, NULL);
    cr_assert_eq(p->released, 0);
    *rc = td_backward(&s, NULL, 1, false);
    if (*rc == 0) cr_assert_eq(p->released, 1, "released when backward frees the node");
    td_release(three), td_release(y), td_release(s), td_release(h);
    cr_assert_eq(p->released, 1, "released once, by the backward or with the graph");
    return x;
}

Test(hook, passes_or_replaces_the_gradient) {
    probe p = {0};
    int rc;
    td_tensor *x = run(&p, &rc);
    cr_assert_eq(rc, 0, "%s", td_errmsg());
    cr_assert_eq(p.calls, 1);
    cr_assert_float_eq(p.seen, 3, 1e-6);
    cr_assert_float_eq(td_item(x->grad), 3, 1e-6);
    td_release(x);
    probe q = {.scale = 0.5};
    x = run(&q, &rc);
    cr_assert_eq(rc, 0, "%s", td_errmsg());
    cr_assert_float_eq(td_item(x->grad), 1.5, 1e-6);
    td_release(x);
}

Test(hook, errors_stop_the_backward_and_unused_graphs_release) {
    probe p = {.scale = -1};
    int rc;
    td_tensor *x = run(&p, &rc);
    cr_assert_eq(rc, -1);
    cr_assert_str_eq(td_errmsg(), "probe: refused");
    cr_assert_null(x->grad);
    td_release(x);
    probe q = {0};
    int64_t n = 2;
    x = td_full(&n, 1, TD_FLOAT64, 1);
    cr_assert_null(td_hook(x, cb, rel, &q), "x does not require grad");
    x->requires_grad = true;
    td_tensor *h = td_hook(x, cb, rel, &q);
    td_release(h); /* never backpropagated: freeing the graph releases once */
    cr_assert_eq(q.released, 1);
    cr_assert_eq(q.calls, 0);
    td_release(x);
}
