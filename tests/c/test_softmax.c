/* tests/c/test_softmax.c: softmax and log_softmax against ref_softmax on every layout and dim
 * (rows when the dim is last, column blocks otherwise), stability at large inputs, and
 * finite-difference gradients. */
#include "ref.h"

#include <criterion/criterion.h>
#include <math.h>

static td_tensor *run(const td_op *op, td_tensor *x, int dim) {
    td_args a = {0};
    a.dim = dim;
    td_tensor *y = td_apply1(op, x, &a);
    cr_assert_not_null(y, "%s: %s", op->name, td_errmsg());
    return y;
}

Test(softmax, matches_naive_in_every_layout) {
    static const int64_t shapes[][3] = {{4, 5, 6}, {3, 70, 130}, {2, 1000, 3}};
    td_manual_seed(21);
    for (size_t si = 0; si < 3; si++)
        for (int dt = TD_FLOAT32; dt <= TD_FLOAT64; dt++)
            for (int lay = 0; lay < L_NLAYOUTS; lay++) {
                td_tensor *x = ref_rand(shapes[si], 3, (td_dtype)dt, lay, -8, 8);
                for (int lg = 0; lg < 2; lg++)
                    for (int dim = 0; dim < 3; dim++) {
                        const td_op *op = lg ? &td_op_log_softmax : &td_op_softmax;
                        td_tensor *y = run(op, x, dim), *r = ref_softmax(x, dim, lg);
                        double d = ref_maxdiff(y, r), tol = dt == TD_FLOAT32 ? 1e-5 : 1e-13;
                        cr_assert(d < tol, "%s dim %d %s %s: off by %g", op->name, dim,
                                  ref_layout_name[lay], td_dtype_name((td_dtype)dt), d);
                        td_release(y), td_release(r);
                    }
                td_release(x);
            }
}

Test(softmax, stable_for_large_inputs_and_integers_become_float32) {
    float v[4] = {1000, 1001, -1000, 50};
    int64_t s = 4;
    td_tensor *x = td_from_data(v, &s, 1, TD_FLOAT32);
    td_tensor *y = run(&td_op_softmax, x, 0), *l = run(&td_op_log_softmax, x, 0);
    const float *p = td_data(y), *q = td_data(l);
    double e = exp(-1.0), z = 1 + e;
    cr_assert(fabs((double)p[0] - e / z) < 1e-6 && fabs((double)p[1] - 1 / z) < 1e-6);
    cr_assert(p[2] == 0 && !isnan(p[3]));
    cr_assert(fabs((double)q[2] - (-2001 - log(z))) < 1e-2, "log_softmax stays finite: %g",
              (double)q[2]);
    td_release(y), td_release(l), td_release(x);
    float m[6] = {0, -INFINITY, 2, -INFINITY, -INFINITY, 5}; /* masked attention rows */
    int64_t ms[2] = {2, 3};
    td_tensor *xm = td_from_data(m, ms, 2, TD_FLOAT32);
    y = run(&td_op_softmax, xm, 1);
    p = td_data(y);
    double e2 = exp(2.0);
    cr_assert(fabs((double)p[0] - 1 / (1 + e2)) < 1e-6 && p[1] == 0 && p[3] == 0 && p[4] == 0);
    cr_assert(p[5] == 1, "%g", (double)p[5]);
    td_release(y), td_release(xm);
    int64_t iv[3] = {1, 2, 3}, n = 3;
    td_tensor *xi = td_from_data(iv, &n, 1, TD_INT64);
    y = run(&td_op_softmax, xi, 0);
    cr_assert_eq(y->dtype, TD_FLOAT32);
    td_release(y), td_release(xi);
}

Test(softmax, gradients_match_finite_differences) {
    int64_t s[3] = {3, 4, 5};
    td_manual_seed(22);
    for (int lg = 0; lg < 2; lg++)
        for (int dim = 0; dim < 3; dim++) {
            td_tensor *x = ref_rand(s, 3, TD_FLOAT64, L_CONTIG, -2, 2);
            td_args a = {0};
            a.dim = dim;
            const td_op *op = lg ? &td_op_log_softmax : &td_op_softmax;
            double e = ref_gradcheck(op, &x, 1, &a);
            cr_assert(e < 1e-7, "%s dim %d: gradient off by %g", op->name, dim, e);
            td_release(x);
        }
}
