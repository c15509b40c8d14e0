/* tests/c/test_failalloc.c: failure injection through the one allocation failure point
 * (td_fail_alloc, TIDE_FAIL_ALLOC=N). For every N, the Nth allocation of a small training step
 * (linear, mse_loss, backward, SGD), a safetensors save and a load fails: each attempt ends in an
 * "out of memory" error, frees what it made (make check runs this suite under LeakSanitizer),
 * and the next call, with nothing failing, works and gives the same numbers. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../tensor/tide.h"

typedef struct model {
    td_tensor *w, *b, *x, *y;
} model;

static td_tensor *filled(int64_t r, int64_t c, double base) {
    int64_t sh[2] = {r, c};
    td_tensor *t = td_empty(sh, c ? 2 : 1, TD_FLOAT32);
    cr_assert_not_null(t);
    for (int64_t i = 0; i < td_numel(t); i++) ((float *)td_data(t))[i] = (float)(base + 0.1 * (double)i);
    return t;
}

static void model_init(model *m) {
    m->w = filled(2, 3, -0.2), m->b = filled(2, 0, 0.1);
    m->x = filled(4, 3, 0.5), m->y = filled(4, 2, 1);
    m->w->requires_grad = m->b->requires_grad = true;
}

static void model_free(model *m) {
    td_release(m->w), td_release(m->b), td_release(m->x), td_release(m->y);
}

/* One training step, a save of w and b, a load of the file back: 0 or -1 + error, everything it
 * made released either way. */
static int step(model *m, const char *path, double *loss_out) {
    td_tensor *in[3] = {m->x, m->w, m->b}, *out = NULL, *loss = NULL;
    td_safetensors st = {0};
    int rc = -1;
    td_release(m->w->grad), td_release(m->b->grad); /* zero_grad */
    m->w->grad = m->b->grad = NULL;
    if (!(out = td_apply(&td_op_linear, in, 3, NULL))) goto done;
    td_args a = {.mode = TD_REDUCE_MEAN};
    if (!(loss = td_apply2(&td_op_mse_loss, out, m->y, &a))) goto done;
    *loss_out = td_item(loss);
    if (td_backward(&loss, NULL, 1, false) < 0) goto done;
    td_optim_hp h = {.lr = 0.1};
    bool prev = td_set_grad_enabled(false);
    int s1 = td_sgd_step(m->w, m->w->grad, NULL, &h);
    int s2 = s1 < 0 ? -1 : td_sgd_step(m->b, m->b->grad, NULL, &h);
    td_set_grad_enabled(prev);
    if (s2 < 0) goto done;
    const char *names[2] = {"w", "b"};
    td_tensor *ts[2] = {m->w, m->b};
    if (td_safetensors_save(path, 2, names, ts, 0, NULL, NULL) < 0) goto done;
    if (td_safetensors_load(path, &st) < 0) goto done;
    cr_assert_eq(st.n, 2);
    rc = 0;
done:
    td_safetensors_free(&st);
    td_release(loss), td_release(out);
    return rc;
}

Test(failalloc, every_allocation_of_a_step_a_save_and_a_load_fails_cleanly) {
    char path[] = "/tmp/tide-failalloc-XXXXXX";
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    close(fd);
    /* the reference: two steps with nothing failing */
    model ref, m;
    model_init(&ref);
    double l0, l1;
    cr_assert_eq(step(&ref, path, &l0), 0, "%s", td_errmsg());
    cr_assert_eq(step(&ref, path, &l1), 0, "%s", td_errmsg());
    cr_assert_lt(l1, l0, "SGD lowers the loss");
    int failed = 0, n;
    for (n = 1; n < 100000; n++) {
        model_init(&m);
        double l;
        td_fail_alloc(n);
        int rc = step(&m, path, &l);
        td_fail_alloc(0);
        if (rc == 0) { /* the step needs fewer than n allocations: all were tried */
            model_free(&m);
            break;
        }
        failed++;
        cr_assert(strstr(td_errmsg(), "out of memory"), "allocation %d: %s", n, td_errmsg());
        /* the next call works; from fresh parameters it gives the reference's first loss */
        model_free(&m);
        model_init(&m);
        cr_assert_eq(step(&m, path, &l), 0, "after failing allocation %d: %s", n, td_errmsg());
        cr_assert_eq(l, l0, "after failing allocation %d", n);
        model_free(&m);
    }
    cr_assert_gt(failed, 50, "the step makes many allocations, each of them failed once");
    model_free(&ref);
    unlink(path);
}
