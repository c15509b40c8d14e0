/* tests/c/test_elementwise.c: every row of unary.def and binary.def against naive double
 * references, on contiguous, transposed, narrowed and expanded (stride 0) inputs in every
 * dtype the row supports, their in-place twins, dtype promotion, broadcasting, PyTorch's
 * semantics (fixed values printed by torch 1.13), and finite-difference gradient checks. */
#include <stdlib.h>

#include "ew_helpers.h"

/* ---- naive references ---------------------------------------------------------------------- */
static double r_rsqrt(double x) {
    return 1 / sqrt(x);
}
static double r_sigmoid(double x) {
    return 1 / (1 + exp(-x));
}
static double r_relu(double x) {
    return x > 0 ? x : 0;
}
static double r_gelu(double x) {
    return 0.5 * x * (1 + erf(x / sqrt(2.0)));
}
static double r_silu(double x) {
    return x / (1 + exp(-x));
}
static double r_recip(double x) {
    return 1 / x;
}
static double r_neg(double x) {
    return -x;
}
static double r_sign(double x) {
    return x > 0 ? 1 : x < 0 ? -1 : 0;
}
static double r_round(double x) { /* half to even, spelled out */
    double f = floor(x), d = x - f;
    if (d > 0.5 || (d == 0.5 && fmod(f, 2) != 0)) f += 1;
    return f;
}

typedef struct urow {
    const td_op *op;
    double (*ref)(double);
    double lo, hi, step; /* input values: draw(lo, hi, step) */
    bool ints;           /* int64 keeps its dtype */
} urow;

static const urow unary_rows[] = {
    {&td_op_exp, exp, -3, 3, 0, false},
    {&td_op_log, log, 0.1, 5, 0, false},
    {&td_op_log1p, log1p, -0.5, 5, 0, false},
    {&td_op_sqrt, sqrt, 0, 9, 0, false},
    {&td_op_rsqrt, r_rsqrt, 0.1, 9, 0, false},
    {&td_op_sin, sin, -4, 4, 0, false},
    {&td_op_cos, cos, -4, 4, 0, false},
    {&td_op_tanh, tanh, -3, 3, 0, false},
    {&td_op_sigmoid, r_sigmoid, -6, 6, 0, false},
    {&td_op_relu, r_relu, -3, 3, 0, false},
    {&td_op_gelu, r_gelu, -4, 4, 0, false},
    {&td_op_silu, r_silu, -4, 4, 0, false},
    {&td_op_reciprocal, r_recip, 0.5, 4, 0, false},
    {&td_op_neg, r_neg, -5, 5, 0, true},
    {&td_op_abs, fabs, -5, 5, 0, true},
    {&td_op_sign, r_sign, -2, 2, 1, true},
    {&td_op_floor, floor, -5, 5, 0, true},
    {&td_op_ceil, ceil, -5, 5, 0, true},
    {&td_op_round, r_round, -4, 4, 0.5, true},
};
#define NUNARY (sizeof unary_rows / sizeof unary_rows[0])

static void check_unary(const urow *u, td_dtype in_dt, int layout) {
    double step = in_dt == TD_INT64 ? 1 : u->step;
    td_tensor *x = make_layout(layout, in_dt, u->lo, u->hi, step, 0);
    td_tensor *y = td_apply1(u->op, x, NULL);
    cr_assert_not_null(y, "%s: %s", u->op->name, td_errmsg());
    td_dtype want = in_dt == TD_INT64 && !u->ints ? TD_FLOAT32 : in_dt;
    cr_assert_eq(y->dtype, want, "%s on %s gave %s", u->op->name, td_dtype_name(in_dt),
                 td_dtype_name(y->dtype));
    cr_assert(y->ndim == 2 && y->shape[0] == R && y->shape[1] == K);
    for (int64_t i = 0; i < R; i++)
        for (int64_t j = 0; j < K; j++) {
            int64_t idx[2] = {i, j};
            double xv = td_get(x, idx), ref = as_dtype(u->ref(xv), want), got = td_get(y, idx);
            cr_assert(close_to(got, ref, want), "%s(%.9g) %s %s: got %.9g, want %.9g", u->op->name,
                      xv, td_dtype_name(in_dt), layout_name[layout], got, ref);
        }
    td_release(y);
    td_release(x);
}

Test(unary, every_row_dtype_and_layout) {
    for (size_t r = 0; r < NUNARY; r++)
        for (int l = 0; l < NLAYOUT; l++) {
            check_unary(&unary_rows[r], TD_FLOAT32, l);
            check_unary(&unary_rows[r], TD_FLOAT64, l);
            check_unary(&unary_rows[r], TD_INT64, l); /* float rows: int64 -> float32 */
        }
}

Test(unary, inplace_twins_write_through_views) {
    for (size_t r = 0; r < NUNARY; r++) {
        const urow *u = &unary_rows[r];
        for (int l = CONTIG; l <= NARROWED; l++) { /* expanded views cannot be written */
            td_tensor *x = make_layout(l, TD_FLOAT64, u->lo, u->hi, u->step, 0);
            td_tensor *ref = td_apply1(u->op, x, NULL);
            uint64_t v0 = x->storage->version;
            cr_assert_eq(td_apply_(u->op, &x, 1, NULL), 0, "%s_: %s", u->op->name, td_errmsg());
            cr_assert_gt(x->storage->version, v0, "%s_ did not bump the version", u->op->name);
            for (int64_t i = 0; i < R; i++)
                for (int64_t j = 0; j < K; j++) {
                    int64_t idx[2] = {i, j};
                    cr_assert_eq(td_get(x, idx), td_get(ref, idx), "%s_ %s", u->op->name,
                                 layout_name[l]);
                }
            td_release(ref);
            td_release(x);
        }
    }
}

Test(unary, float_rows_refuse_inplace_on_integers) {
    td_tensor *x = make_layout(CONTIG, TD_INT64, 1, 5, 1, 0);
    cr_assert_eq(td_apply_(&td_op_exp, &x, 1, NULL), -1);
    cr_assert(strstr(td_errmsg(), "exp_: result dtype float32 cannot be written into a int64"),
              "%s", td_errmsg());
    cr_assert_eq(td_apply_(&td_op_neg, &x, 1, NULL), 0, "%s", td_errmsg()); /* int rows can */
    td_release(x);
    td_tensor *b = make_layout(CONTIG, TD_BOOL, 0, 1, 1, 0);
    cr_assert_null(td_apply1(&td_op_neg, b, NULL));
    cr_assert(strstr(td_errmsg(), "neg: not supported for bool tensors"), "%s", td_errmsg());
    td_release(b);
}

Test(unary, pytorch_values) {
    static const double xs[7] = {-3, -1, -0.5, 0, 0.5, 1, 3};
    static const double gelu[7] = {
        -0.00404969409489031, -0.15865525393145702, -0.15426876936299344, 0.0,
        0.34573123063700656,  0.841344746068543,    2.99595030590511};
    static const double silu[7] = {
        -0.14227761953270035, -0.2689414213699951, -0.1887703343990727, 0.0,
        0.3112296656009273,   0.7310585786300049,  2.8577223804672998};
    static const double halves[7] = {-2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 3.5};
    static const double rounded[7] = {-2, -2, -0.0, 0, 2, 2, 4};
    int64_t n = 7;
    td_tensor *x = td_from_data(xs, &n, 1, TD_FLOAT64),
              *h = td_from_data(halves, &n, 1, TD_FLOAT64);
    td_tensor *g = td_apply1(&td_op_gelu, x, NULL), *s = td_apply1(&td_op_silu, x, NULL);
    td_tensor *r = td_apply1(&td_op_round, h, NULL);
    for (int64_t i = 0; i < n; i++) {
        cr_assert_float_eq(td_get(g, &i), gelu[i], 1e-15);
        cr_assert_float_eq(td_get(s, &i), silu[i], 1e-15);
        cr_assert_eq(td_get(r, &i), rounded[i]);
        cr_assert_eq(signbit(td_get(r, &i)), signbit(rounded[i]));
    }
    static const float odd[5] = {NAN, -0.0f, 2.5f, -2.5f, INFINITY};
    n = 5;
    td_tensor *o = td_from_data(odd, &n, 1, TD_FLOAT32);
    td_tensor *sg = td_apply1(&td_op_sign, o, NULL), *re = td_apply1(&td_op_relu, o, NULL);
    int64_t i0 = 0, i3 = 3, i4 = 4;
    cr_assert_eq(td_get(sg, &i0), 0);  /* sign(NaN) = 0, as torch.sign */
    cr_assert(isnan(td_get(re, &i0))); /* relu keeps NaN */
    cr_assert_eq(td_get(re, &i3), 0);
    cr_assert_eq(td_get(re, &i4), INFINITY);
    td_release(x), td_release(h), td_release(g), td_release(s), td_release(r);
    td_release(o), td_release(sg), td_release(re);
}

Test(unary, gradients_match_finite_differences) {
    for (size_t r = 0; r < NUNARY; r++) {
        const urow *u = &unary_rows[r];
        int64_t shape[2] = {3, 5};
        /* off the kinks of relu/abs/sign and the steps of floor/ceil/round */
        td_tensor *x = make_shape(shape, 2, TD_FLOAT64, u->lo, u->hi, 0, 0.05);
        if (u->op == &td_op_floor || u->op == &td_op_ceil || u->op == &td_op_round) {
            double *d = td_data(x);
            for (int e = 0; e < 15; e++) d[e] = floor(d[e]) + 0.25;
        }
        gradcheck(u->op, &x, 1, NULL, (const bool[]){true});
        td_release(x);
    }
}

Test(unary, float32_gradients_on_strided_inputs) {
    /* backward through the strided loop path (transposed x) equals the contiguous one */
    for (size_t r = 0; r < NUNARY; r++) {
        const urow *u = &unary_rows[r];
        td_tensor *xt = make_layout(TRANSPOSED, TD_FLOAT32, u->lo, u->hi, 0, 0.05);
        td_tensor *xc = td_empty(xt->shape, 2, TD_FLOAT32), *gin[2][1] = {{0}};
        td_copy_into(xc, xt); /* same values, contiguous */
        td_tensor *xs[2] = {xt, xc}, *g = make_layout(NARROWED, TD_FLOAT32, -1, 1, 0, 0);
        for (int k = 0; k < 2; k++) {
            xs[k]->requires_grad = true;
            td_tensor *y = td_apply1(u->op, xs[k], NULL);
            cr_assert_eq(y->grad_fn->op->backward(y->grad_fn, &g, gin[k]), 0, "%s", td_errmsg());
            cr_assert_eq(gin[k][0]->dtype, TD_FLOAT32);
            td_release(y);
        }
        for (int64_t i = 0; i < R; i++)
            for (int64_t j = 0; j < K; j++) {
                int64_t idx[2] = {i, j};
                cr_assert_eq(td_get(gin[0][0], idx), td_get(gin[1][0], idx), "%s", u->op->name);
            }
        td_release(gin[0][0]), td_release(gin[1][0]), td_release(g);
        td_release(xt), td_release(xc);
    }
}

/* ---- binary rows --------------------------------------------------------------------------- */
static double b_add(double x, double y) {
    return x + y;
}
static double b_sub(double x, double y) {
    return x - y;
}
static double b_mul(double x, double y) {
    return x * y;
}
static double b_div(double x, double y) {
    return x / y;
}
static double b_pow(double x, double y) {
    return pow(x, y);
}
static double b_rem(double x, double y) {
    return x - floor(x / y) * y;
}
static double b_fdiv(double x, double y) {
    return floor(x / y);
}
static double b_max(double x, double y) {
    return x > y ? x : y;
}
static double b_min(double x, double y) {
    return x < y ? x : y;
}

typedef struct brow {
    const td_op *op;
    double (*ref)(double, double);
    double xlo, xhi, ylo, yhi, yavoid; /* value ranges; |y| >= yavoid */
    bool ints;                         /* int64 and uint8 keep their dtype */
} brow;

static const brow binary_rows[] = {
    {&td_op_add, b_add, -5, 5, -5, 5, 0, true},
    {&td_op_sub, b_sub, -5, 5, -5, 5, 0, true},
    {&td_op_mul, b_mul, -5, 5, -5, 5, 0, true},
    {&td_op_div, b_div, -5, 5, -5, 5, 0.5, false},
    {&td_op_pow, b_pow, 0.5, 3, -2, 3, 0, true},
    {&td_op_remainder, b_rem, -9, 9, -4, 4, 0.5, true},
    {&td_op_floor_divide, b_fdiv, -9, 9, -4, 4, 0.5, true},
    {&td_op_maximum, b_max, -5, 5, -5, 5, 0, true},
    {&td_op_minimum, b_min, -5, 5, -5, 5, 0, true},
};
#define NBINARY (sizeof binary_rows / sizeof binary_rows[0])

/* y's value range for dtype dt: uint8 stays non-negative, pow's integer exponents too */
static void yrange(const brow *b, td_dtype dt, double *lo, double *hi) {
    *lo = b->ylo, *hi = b->yhi;
    if (dt == TD_UINT8 || (b->op == &td_op_pow && !td_dtype_is_float(dt))) *lo = fmax(*lo, 0);
    if (dt == TD_UINT8 && b->yavoid > 0) *lo = 1;
}

static void check_binary_pair(const brow *b, td_tensor *x, td_tensor *y, const char *what) {
    td_tensor *z = td_apply2(b->op, x, y, NULL);
    cr_assert_not_null(z, "%s %s: %s", b->op->name, what, td_errmsg());
    td_dtype dt = x->dtype;
    td_dtype want = !b->ints && !td_dtype_is_float(dt) ? TD_FLOAT32 : dt;
    cr_assert_eq(z->dtype, want, "%s %s on %s gave %s", b->op->name, what, td_dtype_name(dt),
                 td_dtype_name(z->dtype));
    int64_t idx[TD_MAX_DIMS] = {0};
    do {
        double xv = get_bcast(x, idx, z->ndim), yv = get_bcast(y, idx, z->ndim);
        double ref = as_dtype(b->ref(xv, yv), want), got = td_get(z, idx);
        if (dt == TD_UINT8 && b->ints) ref = as_dtype(b->ref(xv, yv), TD_UINT8); /* wraps */
        cr_assert(close_to(got, ref, want), "%s(%.9g, %.9g) %s %s: got %.9g, want %.9g",
                  b->op->name, xv, yv, td_dtype_name(dt), what, got, ref);
    } while (next_idx(idx, z->shape, z->ndim));
    td_release(z);
}

Test(binary, every_row_dtype_and_layout_pair) {
    static const td_dtype dts[4] = {TD_FLOAT32, TD_FLOAT64, TD_INT64, TD_UINT8};
    for (size_t r = 0; r < NBINARY; r++) {
        const brow *b = &binary_rows[r];
        for (int d = 0; d < 4; d++) {
            td_dtype dt = dts[d];
            double step = td_dtype_is_float(dt) ? 0 : 1, ylo, yhi;
            double xlo = dt == TD_UINT8 ? 0 : b->xlo;
            yrange(b, dt, &ylo, &yhi);
            for (int lx = 0; lx < NLAYOUT; lx++)
                for (int ly = 0; ly < NLAYOUT; ly++) {
                    char what[64];
                    snprintf(what, sizeof what, "%s x %s", layout_name[lx], layout_name[ly]);
                    td_tensor *x = make_layout(lx, dt, xlo, b->xhi, step, 0);
                    td_tensor *y = make_layout(ly, dt, ylo, yhi, step, b->yavoid);
                    check_binary_pair(b, x, y, what);
                    td_release(x), td_release(y);
                }
        }
    }
}

Test(binary, broadcasting_shapes_and_scalars) {
    static const int64_t ys[4][2] = {{K, 0}, {R, 1}, {1, K}, {0, 0}};
    static const int ynd[4] = {1, 2, 2, 0};
    for (size_t r = 0; r < NBINARY; r++) {
        const brow *b = &binary_rows[r];
        for (int c = 0; c < 4; c++) {
            td_tensor *x = make_layout(TRANSPOSED, TD_FLOAT32, b->xlo, b->xhi, 0, 0);
            td_tensor *y = make_shape(ys[c], ynd[c], TD_FLOAT32, b->ylo, b->yhi, 0, b->yavoid);
            check_binary_pair(b, x, y, "x op broadcast y");
            check_binary_pair(b, y, x, "broadcast y op x");
            td_release(x), td_release(y);
        }
    }
}

Test(binary, inplace_twins) {
    for (size_t r = 0; r < NBINARY; r++) {
        const brow *b = &binary_rows[r];
        td_tensor *x = make_layout(TRANSPOSED, TD_FLOAT64, b->xlo, b->xhi, 0, 0);
        int64_t ks = K;
        td_tensor *y = make_shape(&ks, 1, TD_FLOAT64, b->ylo, b->yhi, 0, b->yavoid);
        td_tensor *ref = td_apply2(b->op, x, y, NULL), *in[2] = {x, y};
        cr_assert_eq(td_apply_(b->op, in, 2, NULL), 0, "%s_: %s", b->op->name, td_errmsg());
        int64_t idx[2] = {0, 0};
        do cr_assert_eq(td_get(x, idx), td_get(ref, idx), "%s_", b->op->name);
        while (next_idx(idx, x->shape, 2));
        td_release(x), td_release(y), td_release(ref);
    }
}

static td_tensor *vec(const double *v, int64_t n, td_dtype dt) {
    td_tensor *t = td_empty(&n, 1, dt);
    for (int64_t i = 0; i < n; i++) td_set(t, &i, v[i]);
    return t;
}

static void expect_vec(td_tensor *t, const double *want, int64_t n, const char *what) {
    cr_assert_not_null(t, "%s: %s", what, td_errmsg());
    for (int64_t i = 0; i < n; i++) {
        double got = td_get(t, &i);
        cr_assert(close_to(got, want[i], t->dtype) &&
                      (isnan(got) || signbit(got) == signbit(want[i])),
                  "%s[%lld]: got %.17g, want %.17g", what, (long long)i, got, want[i]);
    }
    td_release(t);
}

Test(binary, pytorch_semantics) {
    /* remainder has the divisor's sign; floor_divide rounds down (torch 1.13 values) */
    static const double a[7] = {7, -7, 7, -7, 5.5, -0.0, 1e-30}, b[7] = {3, 3, -3, -3, 2, 2, -1};
    td_tensor *x = vec(a, 7, TD_FLOAT32), *y = vec(b, 7, TD_FLOAT32);
    expect_vec(td_apply2(&td_op_remainder, x, y, NULL),
               (const double[]){1, 2, -2, -1, 1.5, -0.0, -1}, 7, "remainder f32");
    expect_vec(td_apply2(&td_op_floor_divide, x, y, NULL),
               (const double[]){2, -3, -3, 2, 2, -0.0, -1}, 7, "floor_divide f32");
    td_release(x), td_release(y);
    static const double ai[6] = {7, -7, 7, -7, 0, -8}, bi[6] = {3, 3, -3, -3, 5, -1};
    x = vec(ai, 6, TD_INT64), y = vec(bi, 6, TD_INT64);
    expect_vec(td_apply2(&td_op_remainder, x, y, NULL), (const double[]){1, 2, -2, -1, 0, 0}, 6,
               "remainder i64");
    expect_vec(td_apply2(&td_op_floor_divide, x, y, NULL), (const double[]){2, -3, -3, 2, 0, 8}, 6,
               "floor_divide i64");
    td_tensor *q = td_apply2(&td_op_div, x, y, NULL);
    cr_assert_eq(q->dtype, TD_FLOAT32); /* true division */
    expect_vec(q, (const double[]){7.0f / 3, -7.0f / 3, -7.0f / 3, 7.0f / 3, 0, 8}, 6, "div i64");
    td_release(x), td_release(y);
    /* the sharp cases of floor division: 0.3 // 0.1 is 3 in float32 and 2 in float64 */
    static const double p3 = 0.3, p1 = 0.1;
    x = vec(&p3, 1, TD_FLOAT32), y = vec(&p1, 1, TD_FLOAT32);
    expect_vec(td_apply2(&td_op_floor_divide, x, y, NULL), (const double[]){3}, 1, "0.3f//0.1f");
    expect_vec(td_apply2(&td_op_remainder, x, y, NULL), (const double[]){7.450580596923828e-09}, 1,
               "0.3f%0.1f");
    td_release(x), td_release(y);
    x = vec(&p3, 1, TD_FLOAT64), y = vec(&p1, 1, TD_FLOAT64);
    expect_vec(td_apply2(&td_op_floor_divide, x, y, NULL), (const double[]){2}, 1, "0.3//0.1");
    expect_vec(td_apply2(&td_op_remainder, x, y, NULL), (const double[]){0.09999999999999998}, 1,
               "0.3%0.1");
    td_release(x), td_release(y);
    /* integer pow, uint8 wrapping, NaN-propagating maximum */
    x = vec((const double[]){2, -3, 5, 0, 7}, 5, TD_INT64);
    y = vec((const double[]){10, 3, 0, 0, 1}, 5, TD_INT64);
    expect_vec(td_apply2(&td_op_pow, x, y, NULL), (const double[]){1024, -27, 1, 1, 7}, 5, "ipow");
    td_release(x), td_release(y);
    x = vec((const double[]){250, 3}, 2, TD_UINT8), y = vec((const double[]){10, 4}, 2, TD_UINT8);
    expect_vec(td_apply2(&td_op_add, x, y, NULL), (const double[]){4, 7}, 2, "u8 add");
    expect_vec(td_apply2(&td_op_sub, y, x, NULL), (const double[]){16, 1}, 2, "u8 sub");
    td_release(x), td_release(y);
    x = vec((const double[]){1, NAN, 2}, 3, TD_FLOAT32),
    y = vec((const double[]){NAN, 1, 3}, 3, TD_FLOAT32);
    expect_vec(td_apply2(&td_op_maximum, x, y, NULL), (const double[]){NAN, NAN, 3}, 3, "maximum");
    expect_vec(td_apply2(&td_op_minimum, x, y, NULL), (const double[]){NAN, NAN, 2}, 3, "minimum");
    td_release(x), td_release(y);
}

Test(binary, integer_errors_instead_of_traps) {
    td_tensor *x = vec((const double[]){1, 2, 3}, 3, TD_INT64),
              *y = vec((const double[]){1, 0, 2}, 3, TD_INT64);
    cr_assert_null(td_apply2(&td_op_remainder, x, y, NULL));
    cr_assert(strstr(td_errmsg(), "remainder: integer division by zero"), "%s", td_errmsg());
    cr_assert_null(td_apply2(&td_op_floor_divide, x, y, NULL));
    cr_assert(strstr(td_errmsg(), "floor_divide: integer division by zero"), "%s", td_errmsg());
    td_tensor *q = td_apply2(&td_op_div, x, y, NULL); /* true division: inf, no error */
    int64_t one = 1;
    cr_assert_eq(td_get(q, &one), INFINITY);
    td_release(q), td_release(y);
    y = vec((const double[]){1, -1, 2}, 3, TD_INT64);
    cr_assert_null(td_apply2(&td_op_pow, x, y, NULL));
    cr_assert(strstr(td_errmsg(), "pow: integers to negative integer powers are not allowed"), "%s",
              td_errmsg());
    td_release(y);
    /* INT64_MIN // -1 and % -1 must not trap */
    int64_t n = 1, mn = INT64_MIN, m1 = -1;
    td_release(x);
    x = td_from_data(&mn, &n, 1, TD_INT64), y = td_from_data(&m1, &n, 1, TD_INT64);
    td_tensor *fd = td_apply2(&td_op_floor_divide, x, y, NULL),
              *rm = td_apply2(&td_op_remainder, x, y, NULL);
    cr_assert_eq(*(int64_t *)td_data(fd), INT64_MIN); /* wraps */
    cr_assert_eq(*(int64_t *)td_data(rm), 0);
    td_release(fd), td_release(rm), td_release(x), td_release(y);
    /* float division by zero is IEEE, as in torch */
    x = vec((const double[]){1, -1, 0}, 3, TD_FLOAT32),
    y = vec((const double[]){0, 0, 0}, 3, TD_FLOAT32);
    expect_vec(td_apply2(&td_op_floor_divide, x, y, NULL),
               (const double[]){INFINITY, -INFINITY, NAN}, 3, "x // 0");
    expect_vec(td_apply2(&td_op_remainder, x, y, NULL), (const double[]){NAN, NAN, NAN}, 3,
               "x % 0");
    td_release(x), td_release(y);
}

Test(binary, dtype_promotion) {
    static const struct {
        td_dtype a, b;
        int nda, ndb;
        td_dtype want;
    } cases[] = {
        {TD_FLOAT32, TD_FLOAT64, 1, 1, TD_FLOAT64}, {TD_INT64, TD_FLOAT32, 1, 1, TD_FLOAT32},
        {TD_UINT8, TD_INT64, 1, 1, TD_INT64},       {TD_BOOL, TD_UINT8, 1, 1, TD_UINT8},
        {TD_FLOAT32, TD_FLOAT64, 1, 0, TD_FLOAT32}, /* a 0-dim operand of the same category */
        {TD_INT64, TD_FLOAT64, 1, 0, TD_FLOAT64},   /* a 0-dim of a higher category promotes */
        {TD_UINT8, TD_INT64, 1, 0, TD_UINT8},       {TD_FLOAT32, TD_FLOAT64, 0, 0, TD_FLOAT64},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        int64_t s = 3;
        td_tensor *a = td_full(&s, cases[c].nda, cases[c].a, 1);
        td_tensor *b = td_full(&s, cases[c].ndb, cases[c].b, 2);
        td_tensor *z = td_apply2(&td_op_add, a, b, NULL), *z2 = td_apply2(&td_op_mul, b, a, NULL);
        cr_assert_not_null(z, "%s", td_errmsg());
        cr_assert_eq(z->dtype, cases[c].want, "case %zu: %s + %s gave %s", c,
                     td_dtype_name(cases[c].a), td_dtype_name(cases[c].b), td_dtype_name(z->dtype));
        cr_assert_eq(z2->dtype, cases[c].want, "case %zu (swapped)", c);
        int64_t zero = 0;
        cr_assert_eq(td_get(z, &zero), 3);
        cr_assert_eq(td_get(z2, &zero), 2);
        td_release(a), td_release(b), td_release(z), td_release(z2);
    }
}

Test(binary, gradients_match_finite_differences) {
    static const int64_t ys[3][2] = {{3, 4}, {4, 0}, {3, 1}}; /* same, row, column broadcast */
    static const int ynd[3] = {2, 1, 2};
    for (size_t r = 0; r < NBINARY; r++) {
        const brow *b = &binary_rows[r];
        for (int c = 0; c < 3; c++) {
            int64_t xs[2] = {3, 4};
            td_tensor *in[2];
            in[0] = make_shape(xs, 2, TD_FLOAT64, b->xlo, b->xhi, 0, 0.05);
            in[1] = make_shape(ys[c], ynd[c], TD_FLOAT64, b->ylo, b->yhi, 0, fmax(b->yavoid, 0.05));
            if (b->op == &td_op_maximum || b->op == &td_op_minimum)
                ((double *)td_data(in[1]))[0] = ((double *)td_data(in[0]))[0]; /* a tie: g/2 */
            gradcheck(b->op, in, 2, NULL, (const bool[]){true, true});
            gradcheck(b->op, in, 2, NULL, (const bool[]){false, true});
            td_release(in[0]), td_release(in[1]);
        }
    }
}

Test(binary, mixed_precision_gradients_come_back_in_the_input_dtype) {
    int64_t s = 3;
    td_tensor *a = td_full(&s, 1, TD_FLOAT32, 2), *b = td_full(&s, 1, TD_FLOAT64, 5);
    a->requires_grad = b->requires_grad = true;
    td_tensor *z = td_apply2(&td_op_mul, a, b, NULL), *g = td_full(&s, 1, TD_FLOAT64, 1);
    td_tensor *gin[2] = {0};
    cr_assert_eq(z->dtype, TD_FLOAT64);
    cr_assert_eq(z->grad_fn->op->backward(z->grad_fn, &g, gin), 0);
    cr_assert_eq(gin[0]->dtype, TD_FLOAT32);
    cr_assert_eq(gin[1]->dtype, TD_FLOAT64);
    int64_t i = 2;
    cr_assert_eq(td_get(gin[0], &i), 5);
    cr_assert_eq(td_get(gin[1], &i), 2);
    td_release(a), td_release(b), td_release(z), td_release(g), td_release(gin[0]),
        td_release(gin[1]);
}

Test(binary, large_contiguous_and_threaded) {
    /* above TD_PAR_GRAIN the range is split across threads: still exact */
    int64_t n = 3 * TD_PAR_GRAIN + 17;
    td_tensor *x = make_shape(&n, 1, TD_FLOAT32, -5, 5, 0, 0),
              *y = make_shape(&n, 1, TD_FLOAT32, -5, 5, 0, 0);
    td_tensor *z = td_apply2(&td_op_add, x, y, NULL);
    const float *xd = td_data(x), *yd = td_data(y), *zd = td_data(z);
    for (int64_t i = 0; i < n; i++) cr_assert_eq(zd[i], xd[i] + yd[i], "at %lld", (long long)i);
    td_release(x), td_release(y), td_release(z);
}

/* ---- the small-op path: storage reuse and the flat iterator -------------------------------- */
Test(overhead, storage_cache_keeps_a_garbage_batch_of_small_buffers) {
    /* the Lua GC frees thousands of small tensors at once: all their buffers come back */
    if (getenv("TIDE_NO_CACHE")) cr_skip_test("the cache is off (make check)");
    enum { N = 2000 };
    static td_storage *s[N];
    static void *seen[N];
    for (int i = 0; i < N; i++) s[i] = td_storage_new(16);
    for (int i = 0; i < N; i++) seen[i] = s[i]->data, td_storage_release(s[i]);
    int reused = 0;
    for (int i = 0; i < N; i++) {
        s[i] = td_storage_new(16);
        for (int j = 0; j < N && reused <= i; j++) reused += s[i]->data == seen[j];
    }
    cr_assert_eq(reused, N, "only %d of %d buffers came from the cache", reused, N);
    for (int i = 0; i < N; i++) td_storage_release(s[i]);
}

Test(overhead, flat_and_strided_iteration_agree) {
    /* flat: contiguous operands of one shape, or one element broadcast; anything else goes
     * through the coalescing iterator: both must give the same sums */
    int64_t shape[3] = {2, 3, 5}, one[3] = {1, 1, 1};
    td_tensor *x = make_shape(shape, 3, TD_FLOAT64, -1, 1, 0, 0);
    td_tensor *c = make_shape(one, 3, TD_FLOAT64, -1, 1, 0, 0);
    td_tensor *s0 = td_scalar(td_item(c), TD_FLOAT64);
    int64_t pst[3] = {15, 1, 5}, ps[3] = {2, 5, 3};
    td_tensor *xp = td_view_of(x, ps, pst, 3, 0); /* permuted: not flat */
    td_tensor *a = td_apply2(&td_op_add, x, c, NULL), *b = td_apply2(&td_op_add, x, s0, NULL);
    td_tensor *p = td_apply2(&td_op_add, xp, s0, NULL);
    int64_t idx[3] = {0, 0, 0};
    do {
        double want = td_get(x, idx) + td_item(c);
        int64_t pi[3] = {idx[0], idx[2], idx[1]};
        cr_assert_eq(td_get(a, idx), want);
        cr_assert_eq(td_get(b, idx), want);
        cr_assert_eq(td_get(p, pi), want);
    } while (next_idx(idx, shape, 3));
    td_release(x), td_release(c), td_release(s0), td_release(xp);
    td_release(a), td_release(b), td_release(p);
}
