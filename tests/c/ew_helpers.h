/* tests/c/ew_helpers.h: shared by the elementwise test files: R x K tensors in four layouts
 * (contiguous, transposed, narrowed, expanded with stride 0), seeded test values, element
 * comparison against naive double references, and a finite-difference gradient check. */
#ifndef TEST_EW_HELPERS_H
#define TEST_EW_HELPERS_H

#include "../../tensor/tide.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#define R 4
#define K 6
enum { CONTIG, TRANSPOSED, NARROWED, EXPANDED, NLAYOUT };
static const char *const layout_name[NLAYOUT] = {"contiguous", "transposed", "narrowed",
                                                 "expanded"};

static uint64_t test_rng = 0x1234567;

static inline double urand(void) {
    test_rng ^= test_rng << 13, test_rng ^= test_rng >> 7, test_rng ^= test_rng << 17;
    return (double)(test_rng >> 11) * 0x1p-53;
}

/* A value in [lo, hi]: any real (step 0), or a multiple of step (integers, halves). */
static inline double draw(double lo, double hi, double step) {
    double v = lo + (hi - lo) * urand();
    return step > 0 ? lo + step * floor((v - lo) / step + 0.5) : v;
}

/* An R x K tensor of dtype dt laid out as `layout`, values from draw(lo, hi, step) with
 * |v| >= avoid (keeps divisors off zero and kinks out of finite differences). */
static inline td_tensor *make_layout(int layout, td_dtype dt, double lo, double hi, double step,
                                     double avoid) {
    int64_t bs[2], vs[2] = {R, K}, st[2], off = 0;
    switch (layout) {
    case TRANSPOSED:
        bs[0] = K, bs[1] = R, st[0] = 1, st[1] = R;
        break;
    case NARROWED:
        bs[0] = R, bs[1] = K + 3, st[0] = K + 3, st[1] = 1, off = 2;
        break;
    case EXPANDED:
        bs[0] = 1, bs[1] = K, st[0] = 0, st[1] = 1;
        break;
    default:
        bs[0] = R, bs[1] = K, st[0] = K, st[1] = 1;
        break;
    }
    td_tensor *base = td_empty(bs, 2, dt);
    cr_assert_not_null(base);
    for (int64_t i = 0; i < bs[0]; i++)
        for (int64_t j = 0; j < bs[1]; j++) {
            double v;
            do v = draw(lo, hi, step);
            while (fabs(v) < avoid);
            int64_t idx[2] = {i, j};
            td_set(base, idx, v);
        }
    td_tensor *t = td_view_of(base, vs, st, 2, off);
    td_release(base);
    return t;
}

/* A contiguous tensor of the given shape with values from draw(). */
static inline td_tensor *make_shape(const int64_t *shape, int nd, td_dtype dt, double lo, double hi,
                                    double step, double avoid) {
    td_tensor *t = td_empty(shape, nd, dt);
    int64_t n = td_numel(t), idx[TD_MAX_DIMS] = {0};
    for (int64_t e = 0; e < n; e++) {
        double v;
        do v = draw(lo, hi, step);
        while (fabs(v) < avoid);
        td_set(t, idx, v);
        for (int d = nd - 1; d >= 0 && ++idx[d] == shape[d]; d--) idx[d] = 0;
    }
    return t;
}

/* Element idx of t, reading t through broadcasting to an output of ndim dims. */
static inline double get_bcast(const td_tensor *t, const int64_t *idx, int ndim) {
    int64_t j[TD_MAX_DIMS];
    for (int d = 0; d < t->ndim; d++) {
        int64_t i = idx[ndim - t->ndim + d];
        j[d] = t->shape[d] == 1 ? 0 : i;
    }
    return td_get(t, j);
}

/* Rounds a double reference to what dtype dt holds. */
static inline double as_dtype(double v, td_dtype dt) {
    switch (dt) {
    case TD_FLOAT32:
        return (double)(float)v;
    case TD_INT64:
        return (double)(int64_t)v;
    case TD_UINT8:
        return (double)(uint8_t)(int64_t)v;
    case TD_BOOL:
        return v != 0;
    default:
        return v;
    }
}

static inline bool close_to(double got, double want, td_dtype dt) {
    if (isnan(want)) return isnan(got);
    if (isinf(want)) return got == want;
    double tol = dt == TD_FLOAT32 ? 2e-6 : dt == TD_FLOAT64 ? 1e-13 : 0;
    return fabs(got - want) <= tol * fmax(1, fabs(want));
}

/* Next index of an nd-dim odometer over shape; false after the last. */
static inline bool next_idx(int64_t *idx, const int64_t *shape, int nd) {
    for (int d = nd - 1; d >= 0; d--) {
        if (++idx[d] < shape[d]) return true;
        idx[d] = 0;
    }
    return false;
}

/* sum(g * f(x)) where f runs op on in[] with in[which] replaced by xs; grad mode off. */
static inline double gsum(const td_op *op, td_tensor **in, int nin, const td_args *a,
                          const td_tensor *g) {
    bool prev = td_set_grad_enabled(false);
    td_tensor *y = td_apply(op, in, nin, a);
    td_set_grad_enabled(prev);
    cr_assert_not_null(y, "%s: %s", op->name, td_errmsg());
    double s = 0;
    int64_t idx[TD_MAX_DIMS] = {0};
    do s += td_get(y, idx) * get_bcast(g, idx, y->ndim);
    while (next_idx(idx, y->shape, y->ndim));
    td_release(y);
    return s;
}

/* Runs op on float64 inputs (those with want[i] require grad), calls its backward with a
 * random g and compares every gin[i] (summed down to in[i]'s shape) with central differences
 * of sum(g * op(...)). Inputs must be contiguous float64 tensors. */
static inline void gradcheck(const td_op *op, td_tensor **in, int nin, const td_args *a,
                             const bool *want) {
    for (int i = 0; i < nin; i++) in[i]->requires_grad = want[i];
    td_tensor *y = td_apply(op, in, nin, a);
    cr_assert_not_null(y, "%s: %s", op->name, td_errmsg());
    cr_assert_not_null(y->grad_fn, "%s: no node recorded", op->name);
    td_tensor *g = make_shape(y->shape, y->ndim, TD_FLOAT64, -1, 1, 0, 0.1);
    td_tensor *gin[8] = {0};
    bool prev = td_set_grad_enabled(false);
    int rc = y->grad_fn->op->backward(y->grad_fn, &g, gin);
    td_set_grad_enabled(prev);
    cr_assert_eq(rc, 0, "%s backward: %s", op->name, td_errmsg());
    for (int i = 0; i < nin; i++) in[i]->requires_grad = false;
    for (int i = 0; i < nin; i++) {
        if (!want[i]) continue;
        cr_assert_not_null(gin[i], "%s: no gradient for input %d", op->name, i);
        td_tensor *x = in[i];
        double *xd = td_data(x);
        int64_t n = td_numel(x);
        for (int64_t e = 0; e < n; e++) {
            double keep = xd[e], h = 1e-6 * fmax(1, fabs(keep));
            xd[e] = keep + h;
            double fp = gsum(op, in, nin, a, g);
            xd[e] = keep - h;
            double fm = gsum(op, in, nin, a, g);
            xd[e] = keep;
            double num = (fp - fm) / (2 * h);
            /* the analytic gradient of element e: gin summed over the broadcast positions */
            double ana = 0;
            int64_t idx[TD_MAX_DIMS] = {0}, xi[TD_MAX_DIMS];
            do {
                int64_t flat = 0;
                for (int d = 0; d < x->ndim; d++) {
                    int64_t v = idx[gin[i]->ndim - x->ndim + d];
                    xi[d] = x->shape[d] == 1 ? 0 : v;
                    flat = flat * x->shape[d] + xi[d];
                }
                if (flat == e) ana += td_get(gin[i], idx);
            } while (next_idx(idx, gin[i]->shape, gin[i]->ndim));
            cr_assert(fabs(ana - num) <= 1e-5 * fmax(1, fabs(num)),
                      "%s: d/d in[%d][%lld]: analytic %.10g, numeric %.10g", op->name, i,
                      (long long)e, ana, num);
        }
    }
    for (int i = 0; i < nin; i++) td_release(gin[i]);
    td_release(g);
    td_release(y);
}

#endif
