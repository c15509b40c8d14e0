/* tests/c/test_select.c: clamp, where, masked_fill and dropout against naive references in
 * every supported dtype and layout, their gradients (finite differences, PyTorch's rules at the
 * edges), in-place twins, and the errors for misuse. */
#include "ew_helpers.h"

static td_args bounds(bool has_lo, double lo, bool has_hi, double hi) {
    td_args a = {.has_a = has_lo, .a = lo, .has_b = has_hi, .b = hi};
    return a;
}

static double r_clamp(double x, const td_args *a) {
    if (isnan(x)) return x;
    if (a->has_a && x < a->a) x = a->a;
    if (a->has_b && x > a->b) x = a->b;
    return x;
}

Test(clamp, every_dtype_layout_and_bound_combination) {
    const td_args cases[4] = {bounds(true, -1, true, 2), bounds(true, 0.5, false, 0),
                              bounds(false, 0, true, -0.5), bounds(true, 2, true, 1)};
    static const td_dtype dts[4] = {TD_FLOAT32, TD_FLOAT64, TD_INT64, TD_UINT8};
    for (int c = 0; c < 4; c++)
        for (int d = 0; d < 4; d++)
            for (int l = 0; l < NLAYOUT; l++) {
                bool ints = !td_dtype_is_float(dts[d]);
                td_tensor *x = make_layout(l, dts[d], dts[d] == TD_UINT8 ? 0 : -3, 3, ints, 0);
                td_tensor *y = td_apply1(&td_op_clamp, x, &cases[c]);
                cr_assert_not_null(y, "%s", td_errmsg());
                cr_assert_eq(y->dtype, dts[d]);
                td_args ia = cases[c]; /* integer bounds truncate, like the kernel */
                if (ints) ia.a = trunc(ia.a), ia.b = trunc(ia.b);
                if (dts[d] == TD_UINT8) ia.a = fmax(ia.a, 0), ia.b = fmax(ia.b, 0); /* saturate */
                int64_t idx[2] = {0, 0};
                do {
                    double xv = td_get(x, idx), want = as_dtype(r_clamp(xv, &ia), dts[d]);
                    cr_assert(close_to(td_get(y, idx), want, dts[d]), "clamp case %d %s %s: %g", c,
                              td_dtype_name(dts[d]), layout_name[l], xv);
                } while (next_idx(idx, y->shape, 2));
                td_release(x), td_release(y);
            }
}

Test(clamp, nan_inplace_and_errors) {
    float v[4] = {NAN, -5, 0.5f, 5};
    int64_t n = 4, i;
    td_tensor *x = td_from_data(v, &n, 1, TD_FLOAT32);
    td_args a = bounds(true, 0, true, 1);
    cr_assert_eq(td_apply_(&td_op_clamp, &x, 1, &a), 0);
    static const double want[4] = {NAN, 0, 0.5, 1};
    for (i = 0; i < n; i++)
        cr_assert(i == 0 ? isnan(td_get(x, &i)) : td_get(x, &i) == want[i], "clamp_ at %d", (int)i);
    td_args none = bounds(false, 0, false, 0);
    cr_assert_null(td_apply1(&td_op_clamp, x, &none));
    cr_assert(strstr(td_errmsg(), "clamp: expected at least one bound"), "%s", td_errmsg());
    td_release(x);
    td_tensor *b = make_layout(CONTIG, TD_BOOL, 0, 1, 1, 0);
    cr_assert_null(td_apply1(&td_op_clamp, b, &a));
    cr_assert(strstr(td_errmsg(), "clamp: not supported for bool"), "%s", td_errmsg());
    td_release(b);
}

Test(clamp, gradient_passes_inside_the_closed_range) {
    /* torch 1.13: clamp(x, 1, 2) for x = 0, 1, 2, 3 has gradient 0, 1, 1, 0 */
    double v[4] = {0, 1, 2, 3};
    int64_t n = 4;
    td_tensor *x = td_from_data(v, &n, 1, TD_FLOAT64), *g = td_full(&n, 1, TD_FLOAT64, 1);
    td_args a = bounds(true, 1, true, 2);
    x->requires_grad = true;
    td_tensor *y = td_apply1(&td_op_clamp, x, &a), *gin[1] = {0};
    cr_assert_eq(y->grad_fn->op->backward(y->grad_fn, &g, gin), 0);
    static const double want[4] = {0, 1, 1, 0};
    for (int64_t i = 0; i < n; i++) cr_assert_eq(td_get(gin[0], &i), want[i]);
    td_release(y), td_release(gin[0]), td_release(g);
    x->requires_grad = false;
    td_release(x);
    int64_t s[2] = {3, 4};
    x = make_shape(s, 2, TD_FLOAT64, -3, 3, 0, 0);
    double *d = td_data(x);
    for (int e = 0; e < 12; e++)
        if (fabs(fabs(d[e]) - 1) < 0.05) d[e] = 0; /* off the bounds' kinks */
    a = bounds(true, -1, true, 1);
    gradcheck(&td_op_clamp, &x, 1, &a, (const bool[]){true});
    a = bounds(false, 0, true, 1);
    gradcheck(&td_op_clamp, &x, 1, &a, (const bool[]){true});
    td_release(x);
}

/* ---- where ---------------------------------------------------------------------------------- */
static void check_where(td_tensor *c, td_tensor *a, td_tensor *b, td_dtype want) {
    td_tensor *in[3] = {c, a, b}, *z = td_apply(&td_op_where, in, 3, NULL);
    cr_assert_not_null(z, "%s", td_errmsg());
    cr_assert_eq(z->dtype, want, "where gave %s", td_dtype_name(z->dtype));
    int64_t idx[TD_MAX_DIMS] = {0};
    do {
        double want_v = get_bcast(c, idx, z->ndim) != 0 ? get_bcast(a, idx, z->ndim)
                                                        : get_bcast(b, idx, z->ndim);
        cr_assert_eq(td_get(z, idx), as_dtype(want_v, want));
    } while (next_idx(idx, z->shape, z->ndim));
    td_release(z);
}

Test(where, every_dtype_and_layout) {
    for (int dt = 0; dt < TD_NDTYPES; dt++)
        for (int l = 0; l < NLAYOUT; l++) {
            double hi = dt == TD_BOOL ? 1 : 9, step = td_dtype_is_float((td_dtype)dt) ? 0 : 1;
            td_tensor *c = make_layout((l + 1) % NLAYOUT, TD_BOOL, 0, 1, 1, 0);
            td_tensor *a = make_layout(l, (td_dtype)dt, 0, hi, step, 0);
            td_tensor *b = make_layout((l + 2) % NLAYOUT, (td_dtype)dt, 0, hi, step, 0);
            check_where(c, a, b, (td_dtype)dt);
            td_release(c), td_release(a), td_release(b);
        }
}

Test(where, broadcasting_promotion_and_errors) {
    int64_t ks = K, rs[2] = {R, 1};
    td_tensor *c = make_shape(&ks, 1, TD_BOOL, 0, 1, 1, 0);
    td_tensor *a = make_shape(rs, 2, TD_INT64, -5, 5, 1, 0), *b = td_scalar(0.25, TD_FLOAT32);
    check_where(c, a, b, TD_FLOAT32); /* int64 column, 0-dim float: float32, R x K */
    check_where(c, b, a, TD_FLOAT32);
    td_tensor *f = make_shape(&ks, 1, TD_FLOAT32, 0, 1, 0, 0), *in[3] = {f, a, b};
    cr_assert_null(td_apply(&td_op_where, in, 3, NULL));
    cr_assert(strstr(td_errmsg(), "where: condition must be a bool tensor, got float32 of shape 6"),
              "%s", td_errmsg());
    int64_t bad = 5;
    td_tensor *c5 = td_zeros(&bad, 1, TD_BOOL);
    in[0] = c5, in[2] = f;
    cr_assert_null(td_apply(&td_op_where, in, 3, NULL));
    cr_assert(strstr(td_errmsg(), "where: shapes 5 and 6 cannot be broadcast"), "%s", td_errmsg());
    td_release(c), td_release(a), td_release(b), td_release(f), td_release(c5);
}

Test(where, gradients_flow_to_the_picked_values) {
    int64_t s[2] = {3, 4}, row = 4;
    td_tensor *in[3] = {make_shape(s, 2, TD_BOOL, 0, 1, 1, 0),
                        make_shape(s, 2, TD_FLOAT64, -2, 2, 0, 0),
                        make_shape(&row, 1, TD_FLOAT64, -2, 2, 0, 0)};
    gradcheck(&td_op_where, in, 3, NULL, (const bool[]){false, true, true});
    gradcheck(&td_op_where, in, 3, NULL, (const bool[]){false, false, true});
    td_release(in[0]), td_release(in[1]), td_release(in[2]);
}

/* ---- masked_fill ---------------------------------------------------------------------------- */
Test(masked_fill, every_dtype_layout_and_mask_shape) {
    static const int64_t ms[3][2] = {{R, K}, {K, 0}, {R, 1}};
    static const int mnd[3] = {2, 1, 2};
    td_args a = {.a = 7};
    for (int dt = 0; dt < TD_NDTYPES; dt++)
        for (int l = 0; l < NLAYOUT; l++)
            for (int m = 0; m < 3; m++) {
                td_tensor *x = make_layout(l, (td_dtype)dt, 0, dt == TD_BOOL ? 0 : 5, 1, 0);
                td_tensor *mask = make_shape(ms[m], mnd[m], TD_BOOL, 0, 1, 1, 0);
                td_tensor *y = td_apply2(&td_op_masked_fill, x, mask, &a);
                cr_assert_not_null(y, "%s", td_errmsg());
                cr_assert_eq(y->dtype, (td_dtype)dt);
                int64_t idx[2] = {0, 0};
                do {
                    double want =
                        get_bcast(mask, idx, 2) != 0 ? as_dtype(7, (td_dtype)dt) : td_get(x, idx);
                    cr_assert_eq(td_get(y, idx), want, "%s %s", td_dtype_name((td_dtype)dt),
                                 layout_name[l]);
                } while (next_idx(idx, y->shape, 2));
                if (l != EXPANDED) { /* the in-place twin gives the same */
                    td_tensor *in[2] = {x, mask};
                    cr_assert_eq(td_apply_(&td_op_masked_fill, in, 2, &a), 0, "%s", td_errmsg());
                    do cr_assert_eq(td_get(x, idx), td_get(y, idx));
                    while (next_idx(idx, y->shape, 2));
                }
                td_release(x), td_release(mask), td_release(y);
            }
}

Test(masked_fill, gradient_and_errors) {
    int64_t s[2] = {3, 4}, row = 4;
    td_args a = {.a = -7}; /* big fills would drown the finite differences */
    td_tensor *in[2] = {make_shape(s, 2, TD_FLOAT64, -2, 2, 0, 0),
                        make_shape(&row, 1, TD_BOOL, 0, 1, 1, 0)};
    gradcheck(&td_op_masked_fill, in, 2, &a, (const bool[]){true, false});
    td_release(in[1]);
    in[1] = make_shape(&row, 1, TD_UINT8, 0, 1, 1, 0);
    cr_assert_null(td_apply(&td_op_masked_fill, in, 2, &a));
    cr_assert(strstr(td_errmsg(), "masked_fill: mask must be a bool tensor, got uint8"), "%s",
              td_errmsg());
    td_release(in[0]), td_release(in[1]);
}

/* ---- dropout -------------------------------------------------------------------------------- */
Test(dropout, copies_when_not_training_or_p_is_zero) {
    td_tensor *x = make_layout(TRANSPOSED, TD_FLOAT32, -1, 1, 0, 0);
    td_args off = {.a = 0.5, .flag = false}, p0 = {.a = 0, .flag = true};
    for (int k = 0; k < 2; k++) {
        td_tensor *y = td_apply1(&td_op_dropout, x, k ? &p0 : &off);
        cr_assert_not_null(y, "%s", td_errmsg());
        cr_assert_neq(y->storage, x->storage, "dropout must return a copy");
        int64_t idx[2] = {0, 0};
        do cr_assert_eq(td_get(y, idx), td_get(x, idx));
        while (next_idx(idx, y->shape, 2));
        td_release(y);
    }
    td_release(x);
}

Test(dropout, drops_with_probability_p_and_scales_the_rest) {
    int64_t n = 200000;
    td_tensor *x = td_full(&n, 1, TD_FLOAT32, 2);
    td_args a = {.a = 0.3, .flag = true};
    td_manual_seed(7);
    td_tensor *y = td_apply1(&td_op_dropout, x, &a);
    int64_t zeros = 0;
    const float *d = td_data(y);
    for (int64_t i = 0; i < n; i++) {
        if (d[i] == 0)
            zeros++;
        else
            cr_assert_float_eq(d[i], 2 / 0.7f, 1e-6, "kept values are scaled by 1/(1-p)");
    }
    double frac = (double)zeros / (double)n; /* 5 sigma of a binomial: 0.005 */
    cr_assert(fabs(frac - 0.3) < 0.005, "dropped fraction %g, expected 0.3", frac);
    td_manual_seed(7); /* the seed reproduces the mask */
    td_tensor *y2 = td_apply1(&td_op_dropout, x, &a);
    cr_assert_eq(memcmp(td_data(y), td_data(y2), (size_t)n * 4), 0);
    a.a = 1;
    td_tensor *y3 = td_apply1(&td_op_dropout, x, &a);
    for (int64_t i = 0; i < n; i++) cr_assert_eq(((float *)td_data(y3))[i], 0);
    td_release(x), td_release(y), td_release(y2), td_release(y3);
}

Test(dropout, backward_uses_the_forward_mask) {
    td_tensor *x = make_layout(NARROWED, TD_FLOAT64, 0.5, 1.5, 0, 0);
    td_args a = {.a = 0.5, .flag = true};
    x->requires_grad = true;
    td_tensor *y = td_apply1(&td_op_dropout, x, &a);
    td_tensor *g = make_layout(TRANSPOSED, TD_FLOAT64, -1, 1, 0, 0.1), *gin[1] = {0};
    cr_assert_eq(y->grad_fn->op->flags & TD_GRAD_NOREAD, TD_GRAD_NOREAD);
    cr_assert_eq(y->grad_fn->op->backward(y->grad_fn, &g, gin), 0, "%s", td_errmsg());
    int64_t idx[2] = {0, 0}, kept = 0;
    do {
        bool keep = td_get(y, idx) != 0;
        kept += keep;
        double want = keep ? td_get(g, idx) * 2 : 0;
        cr_assert_float_eq(td_get(gin[0], idx), want, 1e-15);
        if (keep) cr_assert_float_eq(td_get(y, idx), td_get(x, idx) * 2, 1e-15);
    } while (next_idx(idx, y->shape, 2));
    cr_assert(kept > 0 && kept < R * K, "a 24-element mask kept %lld", (long long)kept);
    x->requires_grad = false;
    td_release(x), td_release(y), td_release(g), td_release(gin[0]);
}

Test(dropout, errors) {
    int64_t n = 4;
    td_tensor *i = td_zeros(&n, 1, TD_INT64), *f = td_zeros(&n, 1, TD_FLOAT32);
    td_args a = {.a = 0.5, .flag = true};
    cr_assert_null(td_apply1(&td_op_dropout, i, &a));
    cr_assert(strstr(td_errmsg(), "dropout: expected a float tensor, got int64"), "%s",
              td_errmsg());
    a.a = 1.5;
    cr_assert_null(td_apply1(&td_op_dropout, f, &a));
    cr_assert(strstr(td_errmsg(), "dropout: p must be in [0, 1], got 1.5"), "%s", td_errmsg());
    td_release(i), td_release(f);
}
