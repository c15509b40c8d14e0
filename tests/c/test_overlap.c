/* tests/c/test_overlap.c: in-place writes through views (tensor/overlap.c). The property: every
 * in-place row of the registry, and copy_, run on random views of one storage (expand, narrow,
 * transpose, as_strided) as output and inputs, either refuses an output whose elements share
 * memory, or leaves the storage exactly as the same op on contiguous copies would. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../../tensor/tide.h"

#define BASE 64

static uint64_t rng = 88172645463325252ull;
static int64_t pick(int64_t n) { /* 0..n-1, xorshift64 */
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (int64_t)(rng % (uint64_t)n);
}

/* A random r x c view of base's storage: contiguous at an offset, transposed, expanded (stride
 * 0), a strided narrow, or as_strided with any strides that stay in bounds. */
static td_tensor *rand_view(td_tensor *base, int64_t r, int64_t c, int *kind) {
    int64_t sh[2] = {r, c}, st[2];
    *kind = (int)pick(5);
    switch (*kind) {
    case 0: st[0] = c, st[1] = 1; break;
    case 1: st[0] = 1, st[1] = r; break;
    case 2: st[0] = 0, st[1] = 1; break;
    case 3: st[0] = 2 * c, st[1] = 2; break;
    default: st[0] = pick(6), st[1] = pick(6); break;
    }
    int64_t reach = (r - 1) * st[0] + (c - 1) * st[1] + 1;
    if (reach > BASE) st[0] = c, st[1] = 1, reach = r * c;
    return td_view_of(base, sh, st, 2, pick(BASE - reach + 1));
}

static td_tensor *rand_tensor(int64_t r, int64_t c, td_dtype dt, double lo, double hi) {
    int64_t sh[2] = {r, c};
    td_tensor *t = td_empty(sh, 2, dt);
    for (int64_t i = 0; i < r * c; i++) {
        int64_t ix[2] = {i / c, i % c};
        td_set(t, ix, lo + (hi - lo) * (double)pick(1000) / 1000);
    }
    return t;
}

static td_tensor *clone(td_tensor *t) {
    td_tensor *c = td_empty(t->shape, t->ndim, t->dtype);
    cr_assert(c && td_copy_into(c, t) == 0);
    return c;
}

static bool same(double a, double b) {
    return a == b || (isnan(a) && isnan(b)) || fabs(a - b) <= 1e-12 * fabs(b);
}

/* The inputs of row e with out = in[0]: extra inputs are views of base (so they overlap out)
 * or separate tensors; masks and indices are separate (their dtypes differ). */
static int make_inputs(const td_op_entry *e, td_tensor *base, td_tensor *out, td_tensor **in,
                       td_args *a) {
    int64_t r = out->shape[0], c = out->shape[1];
    int kind;
    memset(a, 0, sizeof *a);
    in[0] = out;
    td_retain(out);
    switch (e->sig) {
    case SIG_T: return 1;
    case SIG_T_ONUM2: a->a = 0.8, a->b = 1.5, a->has_a = a->has_b = true; return 1;
    case SIG_T_NUM_OPT: a->a = 0.5, a->flag = true; return 1;
    case SIG_T_T:
    case SIG_T_TENSOR:
    case SIG_T_VALUE:
        in[1] = pick(4) ? rand_view(base, r, c, &kind) : rand_tensor(r, c, TD_FLOAT64, 0.5, 2);
        return 2;
    case SIG_T_T_NUM:
        in[1] = rand_tensor(r, c, TD_BOOL, 0, 2);
        a->a = 7;
        return 2;
    case SIG_T_DIM_T_T:
        a->dim = pick(2);
        in[1] = rand_tensor(r, c, TD_INT64, 1, (double)out->shape[a->dim] + 0.999);
        in[2] = pick(4) ? rand_view(base, r, c, &kind) : rand_tensor(r, c, TD_FLOAT64, 0.5, 2);
        return 3;
    default: return 0;
    }
}

Test(overlap, inplace_ops_on_random_views_match_contiguous_copies) {
    int checked = 0, refused = 0, rows = 0;
    for (size_t k = 0; k < td_nops; k++) {
        const td_op_entry *e = &td_ops[k];
        if (!(e->op->flags & (TD_INPLACE | TD_INPLACE_ONLY))) continue;
        rows++;
        for (int trial = 0; trial < 40; trial++) {
            td_tensor *base = rand_tensor(1, BASE, TD_FLOAT64, 0.5, 2), *in[3] = {NULL};
            int kind;
            td_tensor *out = rand_view(base, 1 + pick(4), 1 + pick(4), &kind);
            td_args a;
            int nin = make_inputs(e, base, out, in, &a);
            cr_assert(nin > 0, "%s: signature %d has no generator in this test", e->name, e->sig);
            td_tensor *before = clone(base);
            /* the reference: the op on contiguous copies, written back into a copy of base */
            td_tensor *rin[3], *want = clone(base);
            for (int i = 0; i < nin; i++) rin[i] = clone(in[i]);
            td_manual_seed(5);
            int rrc = td_apply_(e->op, rin, nin, &a);
            td_tensor *wview = td_view_of(want, out->shape, out->stride, 2, out->offset);
            if (rrc == 0) cr_assert(td_copy_into(wview, rin[0]) == 0);
            td_manual_seed(5);
            int rc = td_apply_(e->op, in, nin, &a);
            if (td_internal_overlap(out)) {
                cr_assert_eq(rc, -1, "%s into a view with strides %lldx%lld", e->name,
                             (long long)out->stride[0], (long long)out->stride[1]);
                cr_assert(strstr(td_errmsg(), "share memory"), "%s", td_errmsg());
                for (int64_t i = 0; i < BASE; i++)
                    cr_assert_eq(((double *)base->storage->data)[i],
                                 ((double *)before->storage->data)[i], "refused, yet written");
                refused++;
            } else {
                cr_assert_eq(rc, rrc, "%s: %s", e->name, td_errmsg());
                for (int64_t i = 0; rc == 0 && i < BASE; i++) {
                    double g = ((double *)base->storage->data)[i];
                    double w = ((double *)want->storage->data)[i];
                    cr_assert(same(g, w),
                              "%s: element %lld is %g, expected %g (out %lldx%lld strides "
                              "%lld,%lld offset %lld, view kind %d)",
                              e->name, (long long)i, g, w, (long long)out->shape[0],
                              (long long)out->shape[1], (long long)out->stride[0],
                              (long long)out->stride[1], (long long)out->offset, kind);
                }
                checked++;
            }
            for (int i = 0; i < nin; i++) td_release(in[i]), td_release(rin[i]);
            td_release(wview), td_release(want), td_release(before);
            td_release(out), td_release(base);
        }
    }
    cr_assert_gt(rows, 30, "the registry's in-place rows were found");
    cr_assert_gt(checked, 20 * rows);
    cr_assert_gt(refused, rows);
}

Test(overlap, classifies_views) {
    int64_t sh[1] = {4}, s1[1] = {1};
    td_tensor *a = td_zeros(sh, 1, TD_FLOAT32);
    int64_t sh2[2] = {2, 2}, st[2] = {2, 1}, stt[2] = {1, 2}, z[2] = {0, 1}, ov[2] = {1, 1};
    td_tensor *m = td_view_of(a, sh2, st, 2, 0), *t = td_view_of(a, sh2, stt, 2, 0);
    td_tensor *lo = td_view_of(a, (int64_t[]){2}, s1, 1, 0);
    td_tensor *hi = td_view_of(a, (int64_t[]){2}, s1, 1, 2);
    td_tensor *mid = td_view_of(a, (int64_t[]){2}, s1, 1, 1);
    td_tensor *m2 = td_view_of(a, sh2, st, 2, 0), *ex = td_view_of(a, sh2, z, 2, 0);
    td_tensor *sl = td_view_of(a, sh2, ov, 2, 0); /* as_strided [[0,1],[1,2]] */
    td_tensor *odd = td_view_of(a, (int64_t[]){3, 2}, (int64_t[]){2, 3}, 2, 0); /* 0 2 4 3 5 7 */
    cr_assert_eq(td_overlap_of(m, m2), TD_OVERLAP_FULL);
    cr_assert_eq(td_overlap_of(m, t), TD_OVERLAP_PARTIAL);
    cr_assert_eq(td_overlap_of(lo, hi), TD_OVERLAP_NONE);
    cr_assert_eq(td_overlap_of(lo, mid), TD_OVERLAP_PARTIAL);
    cr_assert(!td_internal_overlap(m) && !td_internal_overlap(t));
    cr_assert(td_internal_overlap(ex) && td_internal_overlap(sl));
    cr_assert(!td_internal_overlap(odd), "distinct offsets that the quick test cannot prove");
    td_tensor *all[] = {m, t, lo, hi, mid, m2, ex, sl, odd, a};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) td_release(all[i]);
}
