/* tests/c/test_wrap.c: int64 arithmetic at the extremes wraps in two's complement (PyTorch's
 * results, torch 1.13), never C's undefined behaviour: make check runs these under UBSan, which
 * aborts on a signed overflow. Every op that computes int64 values from int64 values: + - * and
 * unary minus (and their in-place twins), abs, floor_divide and remainder by -1, sum, prod,
 * cumsum, along both the small flat path and the threaded one. */
#include <criterion/criterion.h>
#include <stdint.h>

#include "../../tensor/tide.h"

#define MAXI INT64_MAX
#define MINI INT64_MIN

static td_tensor *vec(const int64_t *v, int64_t n) {
    td_tensor *t = td_from_data(v, &n, 1, TD_INT64);
    cr_assert_not_null(t);
    return t;
}

static void expect(td_tensor *t, const int64_t *want, int64_t n, const char *what) {
    cr_assert_not_null(t, "%s: %s", what, td_errmsg());
    cr_assert_eq(td_numel(t), n, "%s", what);
    const int64_t *d = td_data(t);
    for (int64_t i = 0; i < n; i++)
        cr_assert_eq(d[i], want[i], "%s[%lld]: %lld, expected %lld", what, (long long)i,
                     (long long)d[i], (long long)want[i]);
    td_release(t);
}

Test(wrap, binary_and_unary_int64_ops) {
    const int64_t x[] = {MAXI, MINI, MINI, MAXI, -1}, y[] = {1, -1, MINI, 2, MINI};
    const int64_t add[] = {MINI, MAXI, 0, MINI + 1, MAXI};
    const int64_t sub[] = {MAXI - 1, MINI + 1, 0, MAXI - 2, MAXI};
    const int64_t mul[] = {MAXI, MINI, 0, -2, MINI};
    const int64_t neg[] = {MINI + 1, MINI, MINI, MINI + 1, 1};
    const int64_t abs_[] = {MAXI, MINI, MINI, MAXI, 1};
    td_tensor *a = vec(x, 5), *b = vec(y, 5);
    expect(td_apply2(&td_op_add, a, b, NULL), add, 5, "add");
    expect(td_apply2(&td_op_sub, a, b, NULL), sub, 5, "sub");
    expect(td_apply2(&td_op_mul, a, b, NULL), mul, 5, "mul");
    expect(td_apply1(&td_op_neg, a, NULL), neg, 5, "neg");
    expect(td_apply1(&td_op_abs, a, NULL), abs_, 5, "abs");
    /* INT64_MIN / -1 and % -1: PyTorch gives INT64_MIN and 0 */
    const int64_t m1[] = {-1, -1, -1, -1, -1}, fd[] = {MINI + 1, MINI, MINI, MINI + 1, 1};
    const int64_t zero[5] = {0};
    td_tensor *c = vec(m1, 5);
    expect(td_apply2(&td_op_floor_divide, a, c, NULL), fd, 5, "floor_divide");
    expect(td_apply2(&td_op_remainder, a, c, NULL), zero, 5, "remainder");
    td_tensor *in[2] = {a, b};
    cr_assert_eq(td_apply_(&td_op_mul, in, 2, NULL), 0, "%s", td_errmsg());
    td_retain(a);
    expect(a, mul, 5, "mul_");
    td_release(a), td_release(b), td_release(c);
}

Test(wrap, threaded_path) {
    int64_t n = 3 * TD_PAR_GRAIN; /* past the flat path: td_foreach, split across threads */
    td_tensor *a = td_full(&n, 1, TD_INT64, 0), *b = td_full(&n, 1, TD_INT64, 0);
    int64_t *pa = td_data(a), *pb = td_data(b);
    for (int64_t i = 0; i < n; i++) pa[i] = MAXI, pb[i] = i % 3;
    td_tensor *s = td_apply2(&td_op_add, a, b, NULL), *p = td_apply2(&td_op_mul, a, a, NULL);
    cr_assert(s && p);
    for (int64_t i = 0; i < n; i++) {
        cr_assert_eq(((int64_t *)td_data(s))[i], i % 3 ? MINI + i % 3 - 1 : MAXI);
        cr_assert_eq(((int64_t *)td_data(p))[i], 1); /* (2^63-1)^2 = 1 mod 2^64 */
    }
    td_release(s), td_release(p), td_release(a), td_release(b);
}

Test(wrap, reductions_and_cumsum) {
    const int64_t x[] = {MAXI, 1, MAXI, 3};
    td_tensor *a = vec(x, 4);
    const int64_t sum[] = {(int64_t)((uint64_t)MAXI * 2 + 4)}; /* = 2 */
    const int64_t prod[] = {(int64_t)((uint64_t)MAXI * MAXI * 3)};
    const int64_t cs[] = {MAXI, MINI, -1, 2};
    expect(td_apply1(&td_op_sum, a, NULL), sum, 1, "sum");
    expect(td_apply1(&td_op_prod, a, NULL), prod, 1, "prod");
    td_args d = {0};
    expect(td_apply1(&td_op_cumsum, a, &d), cs, 4, "cumsum");
    /* a column reduction (sum over dim 0 of 2 x 4) and a long chunked row */
    int64_t sh[2] = {2, 2};
    td_tensor *m = td_view_of(a, sh, (int64_t[]){2, 1}, 2, 0);
    td_args d0 = {.dim = 0, .has_a = true};
    const int64_t col[] = {(int64_t)((uint64_t)MAXI * 2), 4};
    expect(td_apply1(&td_op_sum, m, &d0), col, 2, "sum over dim 1");
    int64_t n = 1 << 20;
    td_tensor *big = td_full(&n, 1, TD_INT64, 0);
    for (int64_t i = 0; i < n; i++) ((int64_t *)td_data(big))[i] = MAXI;
    const int64_t bs[] = {(int64_t)((uint64_t)MAXI * (uint64_t)n)};
    expect(td_apply1(&td_op_sum, big, NULL), bs, 1, "sum of 2^20");
    td_release(big), td_release(m), td_release(a);
}
