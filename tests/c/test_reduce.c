/* tests/c/test_reduce.c: reductions, cumsum and td_sum_to against the naive kernels of ref.c, on
 * contiguous, transposed, narrowed and expanded inputs; thread-count independence, float32
 * accuracy over 2^24 elements, and finite-difference gradients of every differentiable one. */
#include "ref.h"

#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

static td_args dim_args(int dim, bool keepdim) {
    td_args a = {0};
    a.has_a = dim >= 0;
    a.dim = dim;
    a.keepdim = keepdim;
    a.flag = true; /* unbiased */
    return a;
}

static td_tensor *run(const td_op *op, td_tensor *x, int dim) {
    td_args a = dim_args(dim, false);
    td_tensor *y = td_apply1(op, x, &a);
    cr_assert_not_null(y, "%s: %s", op->name, td_errmsg());
    return y;
}

static const struct {
    const td_op *op;
    int kind;
} cases[] = {
    {&td_op_sum, R_SUM}, {&td_op_mean, R_MEAN},     {&td_op_prod, R_PROD},     {&td_op_max, R_MAX},
    {&td_op_min, R_MIN}, {&td_op_argmax, R_ARGMAX}, {&td_op_argmin, R_ARGMIN}, {&td_op_var, R_VAR},
    {&td_op_std, R_STD}, {&td_op_norm, R_NORM},     {&td_op_logsumexp, R_LSE}, {&td_op_all, R_ALL},
    {&td_op_any, R_ANY},
};

/* every op, every layout, every dim and all, both float dtypes, several shapes (the shapes pick
 * the row, chunked-row and column kernels) */
Test(reduce, matches_naive_in_every_layout) {
    static const int64_t shapes[][3] = {{5, 7, 9}, {3, 2, 300}, {2, 40, 130}};
    td_manual_seed(1);
    for (size_t si = 0; si < 3; si++)
        for (int dt = TD_FLOAT32; dt <= TD_FLOAT64; dt++)
            for (int lay = 0; lay < L_NLAYOUTS; lay++) {
                td_tensor *x = ref_rand(shapes[si], 3, (td_dtype)dt, lay, 0.5, 1.5);
                for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++)
                    for (int dim = -1; dim < 3; dim++) {
                        td_tensor *y = run(cases[c].op, x, dim),
                                  *r = ref_reduce(x, dim, cases[c].kind);
                        double d = ref_maxdiff(y, r), tol = dt == TD_FLOAT32 ? 2e-5 : 1e-11;
                        cr_assert(d < tol, "%s dim %d %s %s: off by %g", cases[c].op->name, dim,
                                  ref_layout_name[lay], td_dtype_name((td_dtype)dt), d);
                        td_release(y), td_release(r);
                    }
                td_release(x);
            }
}

Test(reduce, long_rows_and_wide_columns) {
    td_manual_seed(2);
    int64_t s1[2] = {3, 70001}, s2[2] = {50000, 5}, s3[2] = {3000, 300};
    const int64_t *shapes[3] = {s1, s2, s3};
    for (int k = 0; k < 3; k++)
        for (int lay = 0; lay < L_NLAYOUTS; lay++) {
            td_tensor *x = ref_rand(shapes[k], 2, TD_FLOAT32, lay, -1, 1);
            for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++)
                for (int dim = -1; dim < 2; dim++) {
                    if (cases[c].op == &td_op_prod) continue; /* underflows to 0 either way */
                    td_tensor *y = run(cases[c].op, x, dim), *r = ref_reduce(x, dim, cases[c].kind);
                    double d = ref_maxdiff(y, r);
                    cr_assert(d < 2e-5, "%s dim %d %s: off by %g", cases[c].op->name, dim,
                              ref_layout_name[lay], d);
                    td_release(y), td_release(r);
                }
            td_release(x);
        }
}

Test(reduce, integer_and_bool_inputs) {
    int64_t v[6] = {3, -2, 7, 7, 0, 5}, s[2] = {2, 3};
    td_tensor *x = td_from_data(v, s, 2, TD_INT64);
    td_tensor *y = run(&td_op_sum, x, 1);
    cr_assert_eq(y->dtype, TD_INT64);
    cr_assert_eq(((int64_t *)td_data(y))[0], 8);
    cr_assert_eq(((int64_t *)td_data(y))[1], 12);
    td_release(y);
    int64_t big[2] = {(int64_t)1 << 60, 1}, s1 = 2;
    td_tensor *b = td_from_data(big, &s1, 1, TD_INT64);
    y = run(&td_op_sum, b, -1);
    cr_assert_eq(*(int64_t *)td_data(y), ((int64_t)1 << 60) + 1, "int64 sums are exact");
    td_release(y), td_release(b);
    y = run(&td_op_prod, x, 0);
    cr_assert_eq(((int64_t *)td_data(y))[0], 21);
    cr_assert_eq(((int64_t *)td_data(y))[1], 0);
    td_release(y);
    y = run(&td_op_max, x, -1);
    cr_assert_eq(y->dtype, TD_INT64);
    cr_assert_eq(*(int64_t *)td_data(y), 7);
    td_release(y);
    y = run(&td_op_argmax, x, -1);
    cr_assert_eq(*(int64_t *)td_data(y), 3, "first of the tied maxima, 1-based");
    td_release(y);
    td_args a = dim_args(-1, false);
    cr_assert_null(td_apply1(&td_op_mean, x, &a));
    cr_assert(strstr(td_errmsg(), "mean: expected a float tensor, got int64"), "%s", td_errmsg());
    cr_assert_null(td_apply1(&td_op_var, x, &a));
    cr_assert(strstr(td_errmsg(), "var: expected a float tensor, got int64"), "%s", td_errmsg());
    td_tensor *bo = td_to_dtype(x, TD_BOOL);
    y = run(&td_op_sum, bo, -1);
    cr_assert_eq(y->dtype, TD_INT64);
    cr_assert_eq(*(int64_t *)td_data(y), 5);
    td_release(y);
    y = run(&td_op_all, x, 1);
    cr_assert_eq(y->dtype, TD_BOOL);
    cr_assert(((bool *)td_data(y))[0] && !((bool *)td_data(y))[1]);
    td_release(y), td_release(bo), td_release(x);
}

Test(reduce, nan_wins_and_empty_rules) {
    double v[5] = {1, NAN, 9, NAN, -3};
    int64_t n = 5;
    td_tensor *x = td_from_data(v, &n, 1, TD_FLOAT64);
    td_tensor *y = run(&td_op_max, x, -1);
    cr_assert(isnan(td_item(y)));
    td_release(y);
    y = run(&td_op_argmin, x, -1);
    cr_assert_eq(td_item(y), 2, "argmin points at the first NaN");
    td_release(y);
    y = run(&td_op_any, x, -1);
    cr_assert_eq(td_item(y), 1);
    td_release(y), td_release(x);
    int64_t es[2] = {0, 3};
    td_tensor *e = td_zeros(es, 2, TD_FLOAT32);
    y = run(&td_op_sum, e, 0);
    cr_assert_eq(y->shape[0], 3);
    cr_assert_eq(((float *)td_data(y))[2], 0);
    td_release(y);
    y = run(&td_op_prod, e, -1);
    cr_assert_eq(td_item(y), 1);
    td_release(y);
    y = run(&td_op_all, e, -1);
    cr_assert_eq(td_item(y), 1);
    td_release(y);
    y = run(&td_op_any, e, -1);
    cr_assert_eq(td_item(y), 0);
    td_release(y);
    y = run(&td_op_max, e, 1); /* 0 outputs of 3 elements each: fine */
    cr_assert_eq(y->shape[0], 0);
    td_release(y);
    td_args a = dim_args(0, false);
    cr_assert_null(td_apply1(&td_op_max, e, &a));
    cr_assert(strstr(td_errmsg(), "max: cannot reduce an empty dim of shape 0x3"), "%s",
              td_errmsg());
    td_release(e);
}

Test(reduce, max_with_dim_returns_positions_and_keepdim_shapes) {
    float v[6] = {1, 8, 8, 4, -1, 2};
    int64_t s[2] = {2, 3};
    td_tensor *x = td_from_data(v, s, 2, TD_FLOAT32), *out[2] = {0};
    td_args a = dim_args(1, true);
    cr_assert_eq(td_run(&td_op_max, &x, 1, &a, out), 2);
    cr_assert_eq(out[0]->ndim, 2);
    cr_assert(out[0]->shape[0] == 2 && out[0]->shape[1] == 1);
    cr_assert_eq(out[1]->dtype, TD_INT64);
    const float *val = td_data(out[0]);
    const int64_t *at = td_data(out[1]);
    cr_assert(val[0] == 8 && val[1] == 4 && at[0] == 2 && at[1] == 1, "%g %g %ld %ld",
              (double)val[0], (double)val[1], (long)at[0], (long)at[1]);
    td_release(out[0]), td_release(out[1]);
    a = dim_args(-1, true);
    td_tensor *y = td_apply1(&td_op_sum, x, &a);
    cr_assert(y->ndim == 2 && y->shape[0] == 1 && y->shape[1] == 1);
    cr_assert_eq(td_item(y), 22);
    td_release(y), td_release(x);
}

Test(reduce, cumsum_matches_naive) {
    int64_t s[3] = {4, 5, 300};
    td_manual_seed(3);
    for (int lay = 0; lay < L_NLAYOUTS; lay++)
        for (int dt = TD_FLOAT32; dt <= TD_INT64; dt++) {
            td_tensor *x = ref_rand(s, 3, (td_dtype)dt, lay, -5, 5);
            for (int dim = 0; dim < 3; dim++) {
                td_tensor *y = run(&td_op_cumsum, x, dim), *r = ref_cumsum(x, dim);
                cr_assert_eq(y->dtype, (td_dtype)dt);
                double d = ref_maxdiff(y, r);
                cr_assert(d < 1e-5, "cumsum dim %d %s: off by %g", dim, ref_layout_name[lay], d);
                td_release(y), td_release(r);
            }
            td_release(x);
        }
}

Test(reduce, sum_does_not_depend_on_thread_count) {
    int64_t n = (int64_t)1 << 22, s2[2] = {1024, 4096};
    td_manual_seed(4);
    td_tensor *x = ref_rand(&n, 1, TD_FLOAT32, L_CONTIG, -1, 1);
    td_tensor *m = ref_rand(s2, 2, TD_FLOAT32, L_CONTIG, -1, 1);
    int prev = td_get_num_threads();
    td_tensor *r1[4], *r2[4];
    for (int pass = 0; pass < 2; pass++) {
        td_set_num_threads(pass ? 2 : 1);
        td_tensor **r = pass ? r2 : r1;
        r[0] = run(&td_op_sum, x, -1);
        r[1] = run(&td_op_sum, m, 0);
        r[2] = run(&td_op_var, m, 1);
        r[3] = run(&td_op_logsumexp, x, -1);
    }
    td_set_num_threads(prev);
    for (int k = 0; k < 4; k++) {
        cr_assert_eq(memcmp(td_data(r1[k]), td_data(r2[k]), (size_t)td_numel(r1[k]) * 4), 0,
                     "result %d differs between 1 and 2 threads", k);
        td_release(r1[k]), td_release(r2[k]);
    }
    td_release(x), td_release(m);
}

Test(reduce, float32_sum_of_2_24_is_accurate) {
    int64_t n = (int64_t)1 << 24;
    td_manual_seed(5);
    td_tensor *x = ref_rand(&n, 1, TD_FLOAT32, L_CONTIG, 0, 1);
    const float *p = td_data(x);
    double want = 0;
    for (int64_t i = 0; i < n; i++) want += (double)p[i];
    td_tensor *y = run(&td_op_sum, x, -1);
    double rel = fabs(td_item(y) - want) / want;
    cr_assert(rel < 1e-6, "relative error %g", rel);
    td_release(y);
    td_tensor *m = run(&td_op_mean, x, -1);
    cr_assert(fabs(td_item(m) - want / (double)n) < 1e-7);
    td_release(m), td_release(x);
}

Test(reduce, sum_to_reduces_broadcast_dims) {
    int64_t gs[3] = {2, 3, 4};
    td_manual_seed(6);
    for (int lay = 0; lay < L_NLAYOUTS; lay++) {
        td_tensor *g = ref_rand(gs, 3, TD_FLOAT64, lay, -1, 1);
        struct {
            int64_t shape[3];
            int nd, dim; /* the reference: sum over dim (or all), then compare values */
        } t[] = {{{4}, 1, -1}, {{3, 1}, 2, -1},    {{1, 4}, 2, -1},  {{2, 1, 1}, 3, -1},
                 {{1}, 1, -1}, {{2, 3, 4}, 3, -1}, {{1, 3, 4}, 3, 0}};
        for (size_t k = 0; k < sizeof t / sizeof t[0]; k++) {
            td_tensor *r = td_sum_to(g, t[k].shape, t[k].nd);
            cr_assert_not_null(r, "%s", td_errmsg());
            cr_assert_eq(r->ndim, t[k].nd);
            for (int i = 0; i < t[k].nd; i++) cr_assert_eq(r->shape[i], t[k].shape[i]);
            int64_t n = td_numel(r), idx[3], gi[3];
            for (int64_t o = 0; o < n; o++) { /* the naive sum over every matching g element */
                int64_t rem = o;
                for (int i = t[k].nd - 1; i >= 0; i--)
                    idx[i] = rem % t[k].shape[i], rem /= t[k].shape[i];
                double want = 0;
                for (gi[0] = 0; gi[0] < 2; gi[0]++)
                    for (gi[1] = 0; gi[1] < 3; gi[1]++)
                        for (gi[2] = 0; gi[2] < 4; gi[2]++) {
                            bool match = true;
                            for (int i = 0; i < t[k].nd; i++) {
                                int j = 3 - t[k].nd + i;
                                match = match && (t[k].shape[i] == 1 || gi[j] == idx[i]);
                            }
                            if (match) want += td_get(g, gi);
                        }
                cr_assert(fabs(td_get(r, idx) - want) < 1e-12, "%s case %zu", ref_layout_name[lay],
                          k);
            }
            if (k == 5) cr_assert_eq(r, g, "same shape: g itself");
            td_release(r);
        }
        int64_t bad[2] = {5, 4};
        cr_assert_null(td_sum_to(g, bad, 2));
        cr_assert(
            strstr(td_errmsg(), "sum_to: cannot reduce a gradient of shape 2x3x4 to shape 5x4"),
            "%s", td_errmsg());
        td_release(g);
    }
}

Test(reduce, gradients_match_finite_differences) {
    int64_t s[3] = {3, 4, 5};
    td_manual_seed(7);
    const td_op *ops[] = {&td_op_sum, &td_op_mean, &td_op_prod, &td_op_max,      &td_op_min,
                          &td_op_var, &td_op_std,  &td_op_norm, &td_op_logsumexp};
    for (size_t k = 0; k < sizeof ops / sizeof ops[0]; k++)
        for (int dim = -1; dim < 3; dim++)
            for (int keep = 0; keep < 2; keep++) {
                td_tensor *x = ref_rand(s, 3, TD_FLOAT64, L_CONTIG, 0.5, 1.5);
                td_args a = dim_args(dim, keep);
                a.flag = keep; /* var/std: both estimators */
                double e = ref_gradcheck(ops[k], &x, 1, &a);
                cr_assert(e < 1e-6, "%s dim %d keepdim %d: gradient off by %g", ops[k]->name, dim,
                          keep, e);
                td_release(x);
            }
    for (int dim = 0; dim < 3; dim++) {
        td_tensor *x = ref_rand(s, 3, TD_FLOAT64, L_CONTIG, -1, 1);
        td_args a = dim_args(dim, false);
        cr_assert(ref_gradcheck(&td_op_cumsum, &x, 1, &a) < 1e-6, "cumsum dim %d", dim);
        td_release(x);
    }
}

Test(reduce, special_gradients) {
    /* prod with one zero and with two zeros in a row; max over all with a three-way tie */
    double v[8] = {2, 0, 3, 4, 0, 5, 0, 1};
    int64_t s[2] = {2, 4};
    td_tensor *x = td_from_data(v, s, 2, TD_FLOAT64);
    td_args a = dim_args(1, false);
    cr_assert(ref_gradcheck(&td_op_prod, &x, 1, &a) < 1e-6);
    a = dim_args(-1, false);
    cr_assert(ref_gradcheck(&td_op_prod, &x, 1, &a) < 1e-6);
    td_release(x);
    double t[4] = {1, 7, 7, 7};
    int64_t n = 4;
    td_tensor *y = td_from_data(t, &n, 1, TD_FLOAT64);
    y->requires_grad = true;
    td_tensor *m = td_apply1(&td_op_max, y, &a);
    td_tensor *g = td_scalar(3, TD_FLOAT64), *gin[1] = {0};
    cr_assert_eq(m->grad_fn->op->backward(m->grad_fn, &g, gin), 0);
    for (int64_t i = 0; i < 4; i++) cr_assert_eq(td_get(gin[0], &i), i ? 1.0 : 0.0);
    td_release(gin[0]), td_release(g), td_release(m), td_release(y);
}
