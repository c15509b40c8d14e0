/* tests/c/test_compare.c: comparisons, isnan/isfinite and logical ops against naive references
 * in every dtype and layout pair, with broadcasting, NaN, mixed dtypes and no recorded grad. */
#include "ew_helpers.h"

typedef struct crow {
    const td_op *op;
    bool (*ref)(double, double);
} crow;

static bool c_eq(double x, double y) {
    return x == y;
}
static bool c_ne(double x, double y) {
    return x != y;
}
static bool c_lt(double x, double y) {
    return x < y;
}
static bool c_le(double x, double y) {
    return x <= y;
}
static bool c_gt(double x, double y) {
    return x > y;
}
static bool c_ge(double x, double y) {
    return x >= y;
}
static bool c_and(double x, double y) {
    return x != 0 && y != 0;
}
static bool c_or(double x, double y) {
    return x != 0 || y != 0;
}
static bool c_xor(double x, double y) {
    return (x != 0) != (y != 0);
}

static const crow rows[] = {
    {&td_op_eq, c_eq},           {&td_op_ne, c_ne},         {&td_op_lt, c_lt},
    {&td_op_le, c_le},           {&td_op_gt, c_gt},         {&td_op_ge, c_ge},
    {&td_op_logical_and, c_and}, {&td_op_logical_or, c_or}, {&td_op_logical_xor, c_xor},
};

static void check_pair(const crow *c, td_tensor *x, td_tensor *y, const char *what) {
    td_tensor *z = td_apply2(c->op, x, y, NULL);
    cr_assert_not_null(z, "%s %s: %s", c->op->name, what, td_errmsg());
    cr_assert_eq(z->dtype, TD_BOOL);
    int64_t idx[TD_MAX_DIMS] = {0};
    do {
        double xv = get_bcast(x, idx, z->ndim), yv = get_bcast(y, idx, z->ndim);
        cr_assert_eq(td_get(z, idx) != 0, c->ref(xv, yv), "%s(%g, %g) %s %s", c->op->name, xv, yv,
                     td_dtype_name(x->dtype), what);
    } while (next_idx(idx, z->shape, z->ndim));
    td_release(z);
}

/* small integer values so that ties (eq, le, ge) really occur */
Test(compare, every_dtype_and_layout_pair) {
    for (size_t r = 0; r < sizeof rows / sizeof rows[0]; r++)
        for (int dt = 0; dt < TD_NDTYPES; dt++) {
            double lo = dt == TD_BOOL ? 0 : dt == TD_UINT8 ? 0 : -2, hi = dt == TD_BOOL ? 1 : 2;
            double step = td_dtype_is_float((td_dtype)dt) ? 0.5 : 1;
            for (int lx = 0; lx < NLAYOUT; lx++)
                for (int ly = 0; ly < NLAYOUT; ly++) {
                    td_tensor *x = make_layout(lx, (td_dtype)dt, lo, hi, step, 0);
                    td_tensor *y = make_layout(ly, (td_dtype)dt, lo, hi, step, 0);
                    check_pair(&rows[r], x, y, layout_name[lx]);
                    td_release(x), td_release(y);
                }
        }
}

Test(compare, broadcasting_mixed_dtypes_and_scalars) {
    for (size_t r = 0; r < sizeof rows / sizeof rows[0]; r++) {
        int64_t ks = K;
        td_tensor *x = make_layout(TRANSPOSED, TD_FLOAT32, -2, 2, 0.5, 0);
        td_tensor *yi = make_shape(&ks, 1, TD_INT64, -2, 2, 1, 0); /* compared as float32 */
        td_tensor *s = td_scalar(0.5, TD_FLOAT64);
        check_pair(&rows[r], x, yi, "f32 vs int64 row");
        check_pair(&rows[r], yi, x, "int64 row vs f32");
        check_pair(&rows[r], x, s, "vs 0-dim");
        td_release(x), td_release(yi), td_release(s);
    }
}

Test(compare, nan_and_no_grad) {
    float xs[3] = {NAN, 1, NAN}, ys[3] = {NAN, NAN, 1};
    int64_t n = 3;
    td_tensor *x = td_from_data(xs, &n, 1, TD_FLOAT32), *y = td_from_data(ys, &n, 1, TD_FLOAT32);
    x->requires_grad = true;
    for (size_t r = 0; r < sizeof rows / sizeof rows[0]; r++) {
        check_pair(&rows[r], x, y, "nan");
        td_tensor *z = td_apply2(rows[r].op, x, y, NULL);
        cr_assert_null(z->grad_fn, "%s recorded a node", rows[r].op->name);
        cr_assert(!z->requires_grad);
        td_release(z);
    }
    td_release(x), td_release(y);
}

Test(compare, isnan_isfinite_logical_not) {
    float v[6] = {0, -1.5f, NAN, INFINITY, -INFINITY, 3};
    int64_t n = 6;
    td_tensor *x = td_from_data(v, &n, 1, TD_FLOAT32);
    td_tensor *nan = td_apply1(&td_op_isnan, x, NULL), *fin = td_apply1(&td_op_isfinite, x, NULL);
    td_tensor *nt = td_apply1(&td_op_logical_not, x, NULL);
    for (int64_t i = 0; i < n; i++) {
        cr_assert_eq(td_get(nan, &i) != 0, isnan(v[i]) != 0);
        cr_assert_eq(td_get(fin, &i) != 0, isfinite(v[i]) != 0);
        cr_assert_eq(td_get(nt, &i) != 0, v[i] == 0); /* NaN is true, so not NaN is false */
    }
    cr_assert_eq(nan->dtype, TD_BOOL);
    td_release(nan), td_release(fin), td_release(nt), td_release(x);
    for (int dt = 0; dt < TD_NDTYPES; dt++)
        for (int l = 0; l < NLAYOUT; l++) {
            td_tensor *t = make_layout(l, (td_dtype)dt, 0, 1, 1, 0);
            td_tensor *a = td_apply1(&td_op_isnan, t, NULL),
                      *b = td_apply1(&td_op_isfinite, t, NULL);
            td_tensor *c = td_apply1(&td_op_logical_not, t, NULL);
            int64_t idx[2] = {0, 0};
            do {
                cr_assert_eq(td_get(a, idx), 0);
                cr_assert_eq(td_get(b, idx), 1);
                cr_assert_eq(td_get(c, idx) != 0, td_get(t, idx) == 0);
            } while (next_idx(idx, a->shape, 2));
            td_release(a), td_release(b), td_release(c), td_release(t);
        }
}

Test(compare, broadcast_error_names_the_op_and_shapes) {
    int64_t s1[2] = {2, 3}, s2[1] = {4};
    td_tensor *a = td_zeros(s1, 2, TD_FLOAT32), *b = td_zeros(s2, 1, TD_FLOAT32);
    cr_assert_null(td_apply2(&td_op_lt, a, b, NULL));
    cr_assert(strstr(td_errmsg(), "lt: shapes 2x3 and 4 cannot be broadcast"), "%s", td_errmsg());
    td_release(a), td_release(b);
}
