/* tests/c/test_matmul.c: matmul and friends against ref_matmul (a triple loop) for 1-D, 2-D and
 * batched operands in contiguous, transposed, narrowed and expanded layouts; that transposed
 * operands reach BLAS without a copy; error messages; finite-difference gradients. */
#include "ref.h"

#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

static td_tensor *mk(const int64_t *shape, int nd, td_dtype dt, int lay) {
    td_tensor *t = ref_rand(shape, nd, dt, lay, -2, 2);
    cr_assert_not_null(t, "%s", td_errmsg());
    return t;
}

static const struct {
    int na, nb;
    int64_t a[4], b[4];
} pairs[] = {
    {1, 1, {7}, {7}},                /* dot */
    {1, 2, {7}, {7, 5}},             /* vector x matrix */
    {2, 1, {6, 7}, {7}},             /* matrix x vector */
    {2, 2, {6, 7}, {7, 5}},          /* matrices */
    {3, 2, {4, 6, 7}, {7, 5}},       /* batch x matrix: folds into one GEMM */
    {2, 3, {6, 7}, {4, 7, 5}},       /* matrix x batch */
    {1, 3, {7}, {4, 7, 5}},          /* vector x batch */
    {3, 1, {4, 6, 7}, {7}},          /* batch x vector */
    {4, 3, {2, 1, 6, 7}, {3, 7, 5}}, /* broadcast batch dims */
    {3, 3, {3, 1, 7}, {3, 7, 1}},    /* 1 x 1 results per batch */
    {3, 3, {40, 8, 9}, {40, 9, 8}},  /* many small products: run side by side */
};

Test(matmul, matches_naive_for_every_shape_layout_and_dtype) {
    td_manual_seed(11);
    for (size_t p = 0; p < sizeof pairs / sizeof pairs[0]; p++)
        for (int dt = TD_FLOAT32; dt <= TD_INT64; dt++)
            for (int la = 0; la < L_NLAYOUTS; la++)
                for (int lb = 0; lb < L_NLAYOUTS; lb++) {
                    td_tensor *a = mk(pairs[p].a, pairs[p].na, (td_dtype)dt, la);
                    td_tensor *b = mk(pairs[p].b, pairs[p].nb, (td_dtype)dt, lb);
                    td_tensor *c = td_apply2(&td_op_matmul, a, b, NULL);
                    cr_assert_not_null(c, "%s", td_errmsg());
                    td_tensor *r = ref_matmul(a, b);
                    double d = ref_maxdiff(c, r), tol = dt == TD_FLOAT32 ? 1e-5 : 1e-12;
                    cr_assert(d < tol, "pair %zu %s a %s b %s: off by %g", p,
                              td_dtype_name((td_dtype)dt), ref_layout_name[la], ref_layout_name[lb],
                              d);
                    cr_assert_eq(c->dtype, (td_dtype)dt);
                    td_release(a), td_release(b), td_release(c), td_release(r);
                }
}

/* batch x M x K with the last two dims transposed (K x M in memory per batch) */
static td_tensor *batch_t(int64_t B, int64_t M, int64_t K) {
    int64_t sh[3] = {B, K, M}, vs[3] = {B, M, K}, st[3] = {K * M, 1, M};
    td_tensor *base = mk(sh, 3, TD_FLOAT32, L_CONTIG), *v = td_view_of(base, vs, st, 3, 0);
    td_release(base);
    return v;
}

Test(matmul, transposed_and_narrowed_operands_are_not_copied) {
    int64_t sa[3] = {3, 64, 48}, sb[2] = {48, 32};
    td_manual_seed(12);
    for (int la = 0; la < 3; la++)
        for (int lb = L_CONTIG; lb <= L_NARROWED; lb++) {
            td_tensor *a = la == 1 ? batch_t(3, 64, 48) : mk(sa, 3, TD_FLOAT32, la);
            td_tensor *b = mk(sb, 2, TD_FLOAT32, lb);
            uint64_t before = td_alloc_total();
            td_tensor *c = td_apply2(&td_op_matmul, a, b, NULL);
            uint64_t used = td_alloc_total() - before;
            cr_assert_eq(used, (uint64_t)(3 * 64 * 32 * 4), "a %s b %s: %llu bytes allocated",
                         ref_layout_name[la], ref_layout_name[lb], (unsigned long long)used);
            td_tensor *r = ref_matmul(a, b);
            cr_assert(ref_maxdiff(c, r) < 1e-5);
            td_release(a), td_release(b), td_release(c), td_release(r);
        }
}

Test(matmul, named_variants) {
    int64_t s23[2] = {2, 3}, s34[2] = {3, 4}, s3[1] = {3}, s4[1] = {4}, b1[3] = {5, 2, 3},
            b2[3] = {5, 3, 4};
    td_manual_seed(13);
    td_tensor *a = mk(s23, 2, TD_FLOAT64, L_CONTIG), *b = mk(s34, 2, TD_FLOAT64, L_TRANSPOSED);
    td_tensor *v = mk(s3, 1, TD_FLOAT64, L_NARROWED), *w = mk(s4, 1, TD_FLOAT64, L_CONTIG);
    td_tensor *p = mk(b1, 3, TD_FLOAT64, L_CONTIG), *q = mk(b2, 3, TD_FLOAT64, L_TRANSPOSED);
    struct {
        const td_op *op;
        td_tensor *x, *y;
    } ok[] = {{&td_op_mm, a, b}, {&td_op_bmm, p, q}, {&td_op_mv, a, v}, {&td_op_dot, v, v}};
    for (size_t k = 0; k < 4; k++) {
        td_tensor *c = td_apply2(ok[k].op, ok[k].x, ok[k].y, NULL),
                  *r = ref_matmul(ok[k].x, ok[k].y);
        cr_assert(ref_maxdiff(c, r) < 1e-12, "%s", ok[k].op->name);
        td_release(c), td_release(r);
    }
    td_tensor *o = td_apply2(&td_op_outer, v, w, NULL);
    cr_assert(o->ndim == 2 && o->shape[0] == 3 && o->shape[1] == 4);
    for (int64_t i = 0; i < 3; i++)
        for (int64_t j = 0; j < 4; j++)
            cr_assert(fabs(td_get(o, (int64_t[]){i, j}) - td_get(v, &i) * td_get(w, &j)) < 1e-12);
    td_release(o);
    struct {
        const td_op *op;
        td_tensor *x, *y;
        const char *msg;
    } bad[] = {
        {&td_op_mm, a, a, "mm: shapes 2x3 and 2x3 cannot be multiplied (3 columns against 2 rows)"},
        {&td_op_mm, a, v, "mm: expected two 2-D matrices, got shapes 2x3 and 3"},
        {&td_op_bmm, a, b, "bmm: expected two 3-D batches of matrices, got shapes 2x3 and 3x4"},
        {&td_op_mv, a, w, "mv: shapes 2x3 and 4 cannot be multiplied"},
        {&td_op_dot, v, w, "dot: shapes 3 and 4 cannot be multiplied"},
        {&td_op_outer, a, v, "outer: expected two 1-D vectors, got shapes 2x3 and 3"},
        {&td_op_matmul, p, NULL,
         "matmul: the batch dims of shapes 5x2x3 and 4x3x2 cannot be "
         "broadcast (5 vs 4)"},
    };
    int64_t b3[3] = {4, 3, 2};
    bad[6].y = mk(b3, 3, TD_FLOAT64, L_CONTIG);
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        cr_assert_null(td_apply2(bad[k].op, bad[k].x, bad[k].y, NULL), "%s", bad[k].msg);
        cr_assert(strstr(td_errmsg(), bad[k].msg), "got '%s', want '%s'", td_errmsg(), bad[k].msg);
    }
    td_release(bad[6].y);
    td_tensor *s = td_scalar(2, TD_FLOAT64);
    cr_assert_null(td_apply2(&td_op_matmul, s, a, NULL));
    cr_assert(
        strstr(td_errmsg(), "matmul: expected tensors with at least 1 dim, got shapes scalar"),
        "%s", td_errmsg());
    td_tensor *bo = td_to_dtype(a, TD_BOOL), *bt = td_to_dtype(b, TD_BOOL);
    cr_assert_null(td_apply2(&td_op_mm, bo, bt, NULL));
    cr_assert(strstr(td_errmsg(), "mm: expected float32, float64 or int64 tensors, got bool"), "%s",
              td_errmsg());
    td_release(bo), td_release(bt), td_release(s);
    td_release(a), td_release(b), td_release(v), td_release(w), td_release(p), td_release(q);
}

Test(matmul, addmm_scales_and_broadcasts) {
    int64_t s23[2] = {2, 3}, s34[2] = {3, 4}, s4[1] = {4};
    td_manual_seed(14);
    td_tensor *a = mk(s23, 2, TD_FLOAT32, L_TRANSPOSED), *b = mk(s34, 2, TD_FLOAT32, L_CONTIG);
    td_tensor *c = mk(s4, 1, TD_FLOAT32, L_CONTIG), *in[3] = {c, a, b};
    td_args args = {0};
    args.a = 2, args.b = 0.5, args.has_a = args.has_b = true;
    td_tensor *y = td_apply(&td_op_addmm, in, 3, &args), *ab = ref_matmul(a, b);
    cr_assert_not_null(y, "%s", td_errmsg());
    for (int64_t i = 0; i < 2; i++)
        for (int64_t j = 0; j < 4; j++) {
            int64_t ij[2] = {i, j};
            double want = 0.5 * td_get(c, &j) + 2 * td_get(ab, ij);
            cr_assert(fabs(td_get(y, ij) - want) < 1e-5);
        }
    td_release(y);
    ((float *)td_data(c))[1] = NAN; /* beta = 0: c is not read, as in BLAS and PyTorch */
    args.b = 0;
    y = td_apply(&td_op_addmm, in, 3, &args);
    for (int64_t i = 0; i < 2; i++) cr_assert(!isnan(td_get(y, (int64_t[]){i, 1})));
    td_release(y);
    int64_t s5[1] = {5};
    td_tensor *bad = mk(s5, 1, TD_FLOAT32, L_CONTIG);
    in[0] = bad;
    cr_assert_null(td_apply(&td_op_addmm, in, 3, &args));
    cr_assert(
        strstr(td_errmsg(), "addmm: c of shape 5 cannot be broadcast to the result shape 2x4"),
        "%s", td_errmsg());
    td_release(bad), td_release(a), td_release(b), td_release(c), td_release(ab);
}

Test(matmul, gradients_match_finite_differences) {
    td_manual_seed(15);
    for (size_t p = 0; p < sizeof pairs / sizeof pairs[0] - 1; p++)
        for (int lay = L_CONTIG; lay <= L_NARROWED; lay++) {
            td_tensor *in[2] = {mk(pairs[p].a, pairs[p].na, TD_FLOAT64, lay),
                                mk(pairs[p].b, pairs[p].nb, TD_FLOAT64, L_CONTIG)};
            double e = ref_gradcheck(&td_op_matmul, in, 2, NULL);
            cr_assert(e < 1e-6, "matmul pair %zu (%s): gradient off by %g", p, ref_layout_name[lay],
                      e);
            td_release(in[0]), td_release(in[1]);
        }
    int64_t s23[2] = {2, 3}, s34[2] = {3, 4}, s3[1] = {3}, s4[1] = {4}, b1[3] = {2, 2, 3},
            b2[3] = {2, 3, 4}, s24[2] = {2, 4};
    struct {
        const td_op *op;
        const int64_t *x, *y, *z;
        int nx, ny, nz;
    } t[] = {{&td_op_mm, s23, s34, NULL, 2, 2, 0},  {&td_op_bmm, b1, b2, NULL, 3, 3, 0},
             {&td_op_mv, s23, s3, NULL, 2, 1, 0},   {&td_op_dot, s3, s3, NULL, 1, 1, 0},
             {&td_op_outer, s3, s4, NULL, 1, 1, 0}, {&td_op_addmm, s4, s23, s34, 1, 2, 2},
             {&td_op_addmm, s24, s23, s34, 2, 2, 2}};
    for (size_t k = 0; k < sizeof t / sizeof t[0]; k++) {
        td_tensor *in[3] = {mk(t[k].x, t[k].nx, TD_FLOAT64, L_CONTIG),
                            mk(t[k].y, t[k].ny, TD_FLOAT64, L_TRANSPOSED),
                            t[k].z ? mk(t[k].z, t[k].nz, TD_FLOAT64, L_CONTIG) : NULL};
        td_args args = {0};
        args.a = 1.5, args.b = -0.5, args.has_a = args.has_b = true;
        double e = ref_gradcheck(t[k].op, in, t[k].z ? 3 : 2, &args);
        cr_assert(e < 1e-6, "%s: gradient off by %g", t[k].op->name, e);
        for (int i = 0; i < 3; i++) td_release(in[i]);
    }
}

Test(matmul, float32_and_float64_promote) {
    int64_t s23[2] = {2, 3}, s34[2] = {3, 4};
    td_tensor *a = mk(s23, 2, TD_FLOAT32, L_CONTIG), *b = mk(s34, 2, TD_FLOAT64, L_CONTIG);
    td_tensor *c = td_apply2(&td_op_mm, a, b, NULL), *r = ref_matmul(a, b);
    cr_assert_eq(c->dtype, TD_FLOAT64);
    cr_assert(ref_maxdiff(c, r) < 1e-12);
    td_release(a), td_release(b), td_release(c), td_release(r);
}
