/* tests/c/test_core.c: storage, tensors, broadcasting, the iterator and td_run's contracts. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../tensor/tide.h"

Test(core, storage_cache_reuses_buffers) {
    if (getenv("TIDE_NO_CACHE")) cr_skip_test("the cache is off (make check)");
    td_storage *a = td_storage_new(1000);
    void *p = a->data;
    cr_assert_eq((uintptr_t)p % 64, 0);
    td_storage_release(a);
    td_storage *b = td_storage_new(990); /* same size class */
    cr_assert_eq(b->data, p);
    td_storage_release(b);
}

Test(core, td_malloc_is_aligned_and_reused) {
    if (getenv("TIDE_NO_CACHE")) cr_skip_test("the cache is off (make check)");
    char *a = td_malloc(3000);
    cr_assert_not_null(a);
    cr_assert_eq((uintptr_t)a % 64, 0);
    memset(a, 7, 3000);
    td_free(a);
    char *b = td_malloc(2900); /* same class once the size word is counted */
    cr_assert_eq(b, a);
    td_free(b);
    td_free(NULL);
}

static long rss_kb(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    long pages = 0, res = 0;
    cr_assert(f && fscanf(f, "%ld %ld", &pages, &res) == 2);
    fclose(f);
    return res * 4;
}

Test(core, trim_returns_buffers_unused_for_a_period) {
    if (getenv("TIDE_NO_CACHE")) cr_skip_test("the cache is off (make check)");
    td_buf_release();
    size_t mb = (size_t)1 << 20;
    char *a = td_buf_alloc(16 * mb), *b = td_buf_alloc(16 * mb);
    memset(a, 1, 16 * mb), memset(b, 1, 16 * mb);
    long before = rss_kb();
    td_buf_free(a, 16 * mb), td_buf_free(b, 16 * mb);
    cr_assert_eq(td_buf_cached(), 32 * mb);
    td_buf_trim(); /* starts a period: nothing was idle through a whole one yet */
    cr_assert_eq(td_buf_cached(), 32 * mb);
    char *c = td_buf_alloc(16 * mb); /* one of the two is used again, one stays idle */
    cr_assert(c == a || c == b);
    usleep(1100 * 1000);
    td_buf_trim();
    cr_assert_eq(td_buf_cached(), 0, "the idle buffer went, the busy one is not cached");
    cr_assert_lt(rss_kb(), before - 15 * 1024, "the idle 16 MB left the resident set");
    td_buf_free(c, 16 * mb);
    td_buf_release();
    cr_assert_eq(td_buf_cached(), 0);
}

Test(core, empty_rejects_bad_shapes) {
    int64_t neg[2] = {2, -1}, huge[3] = {1 << 20, 1 << 20, 1 << 20};
    cr_assert_null(td_empty(neg, 2, TD_FLOAT32));
    cr_assert(strstr(td_errmsg(), "negative size -1"), "%s", td_errmsg());
    cr_assert_null(td_empty(huge, 3, TD_FLOAT32));
    cr_assert(strstr(td_errmsg(), "too large"), "%s", td_errmsg());
}

Test(core, empty_tensors_with_huge_dims_have_no_data) {
    int64_t sh[3] = {0, (int64_t)1 << 40, (int64_t)1 << 40}; /* strides would overflow int64 */
    td_tensor *t = td_empty(sh, 3, TD_FLOAT64);
    cr_assert_not_null(t, "%s", td_errmsg());
    cr_assert_eq(td_numel(t), 0);
    cr_assert_null(td_data(t));
    cr_assert_eq(t->stride[2], 1);
    cr_assert_eq(t->stride[1], (int64_t)1 << 40);
    td_release(t);
}

Test(core, broadcast_shapes) {
    int64_t s1[3] = {4, 1, 3}, s2[2] = {5, 1}, out[TD_MAX_DIMS];
    int nd;
    td_tensor *a = td_zeros(s1, 3, TD_FLOAT32), *b = td_zeros(s2, 2, TD_FLOAT32);
    td_tensor *ts[2] = {a, b};
    cr_assert_eq(td_broadcast_shape("t", ts, 2, out, &nd), 0);
    cr_assert_eq(nd, 3);
    cr_assert(out[0] == 4 && out[1] == 5 && out[2] == 3);
    int64_t s3[1] = {2};
    td_tensor *c = td_zeros(s3, 1, TD_FLOAT32);
    ts[1] = c;
    cr_assert_eq(td_broadcast_shape("add", ts, 2, out, &nd), -1);
    cr_assert(strstr(td_errmsg(), "add: shapes 4x1x3 and 2 cannot be broadcast"), "%s",
              td_errmsg());
    td_release(a), td_release(b), td_release(c);
}

Test(core, add_broadcasts_on_transposed_views) {
    int64_t s[2] = {3, 4};
    td_tensor *a = td_empty(s, 2, TD_FLOAT64);
    for (int i = 0; i < 12; i++) ((double *)a->storage->data)[i] = i;
    int64_t ts[2] = {4, 3}, tst[2] = {1, 4};
    td_tensor *at = td_view_of(a, ts, tst, 2, 0); /* a transposed */
    td_tensor *row = td_scalar(10, TD_FLOAT64);
    td_tensor *c = td_apply2(&td_op_add, at, row, NULL);
    cr_assert_not_null(c);
    for (int64_t i = 0; i < 4; i++)
        for (int64_t j = 0; j < 3; j++) {
            int64_t idx[2] = {i, j};
            cr_assert_float_eq(td_get(c, idx), (double)(j * 4 + i) + 10, 1e-12);
        }
    td_release(a), td_release(at), td_release(row), td_release(c);
}

Test(core, inplace_checks_shape_and_dtype) {
    int64_t s[1] = {3}, s2[2] = {2, 3};
    td_tensor *a = td_zeros(s, 1, TD_INT64), *b = td_zeros(s2, 2, TD_INT64);
    td_tensor *in[2] = {a, b};
    cr_assert_eq(td_apply_(&td_op_add, in, 2, NULL), -1);
    cr_assert(strstr(td_errmsg(), "add_: the result has shape 2x3"), "%s", td_errmsg());
    td_tensor *f = td_zeros(s, 1, TD_FLOAT32);
    in[1] = f;
    cr_assert_eq(td_apply_(&td_op_add, in, 2, NULL), -1);
    cr_assert(strstr(td_errmsg(), "float32 cannot be written into a int64"), "%s", td_errmsg());
    td_release(a), td_release(b), td_release(f);
}

Test(core, registry_rows_are_complete) {
    for (size_t i = 0; i < td_nops; i++) {
        const td_op *op = td_ops[i].op;
        cr_assert_not_null(op->shape, "%s has no shape rule", td_ops[i].name);
        cr_assert_not_null(op->forward, "%s has no forward", td_ops[i].name);
        cr_assert_not_null(op->doc, "%s has no doc line", td_ops[i].name);
        if (!(op->flags & TD_NOGRAD))
            cr_assert_not_null(op->backward, "%s is differentiable but has no backward",
                               td_ops[i].name);
    }
}
