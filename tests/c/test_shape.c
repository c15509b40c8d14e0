/* tests/c/test_shape.c: the views and copies of tensor/ops/shape.c: geometry (shapes, strides,
 * shared storage), values against naive index arithmetic on contiguous and strided inputs, the
 * errors, and every backward by finite differences (ref_gradcheck). */
#include "ref.h"

#include <criterion/criterion.h>
#include <string.h>

static void unravel(int64_t o, const int64_t *shape, int nd, int64_t *idx) {
    for (int i = nd - 1; i >= 0; i--) {
        idx[i] = o % shape[i];
        o /= shape[i];
    }
}

/* values 0, 1, 2, ... in row-major order */
static td_tensor *seq(const int64_t *shape, int nd, td_dtype dt) {
    td_tensor *t = td_empty(shape, nd, dt);
    int64_t idx[TD_MAX_DIMS];
    for (int64_t o = 0; o < td_numel(t); o++) {
        unravel(o, shape, nd, idx);
        td_set(t, idx, (double)o);
    }
    return t;
}

/* the o-th element of t in row-major order */
static double flat(const td_tensor *t, int64_t o) {
    int64_t idx[TD_MAX_DIMS];
    unravel(o, t->shape, t->ndim, idx);
    return td_get(t, idx);
}

/* y holds x's elements in x's row-major order (what view/reshape/flatten promise) */
static void assert_same_order(const td_tensor *y, const td_tensor *x) {
    cr_assert_eq(td_numel(y), td_numel(x));
    for (int64_t o = 0; o < td_numel(x); o++)
        cr_assert_eq(flat(y, o), flat(x, o), "element %lld", (long long)o);
}

static void assert_shape(const td_tensor *t, int nd, const int64_t *shape) {
    cr_assert_eq(t->ndim, nd);
    for (int i = 0; i < nd; i++) cr_assert_eq(t->shape[i], shape[i], "dim %d", i);
}

static void assert_err(const char *want) {
    cr_assert(strstr(td_errmsg(), want), "error '%s' lacks '%s'", td_errmsg(), want);
}

static td_tensor *sized(const td_op *op, td_tensor *x, int n, const int64_t *sizes) {
    td_args a = {.nsizes = n};
    memcpy(a.sizes, sizes, sizeof(int64_t) * (size_t)n);
    return td_apply1(op, x, &a);
}

Test(shape, view_shares_storage_and_has_row_major_strides) {
    int64_t s[3] = {2, 3, 4}, v[2] = {6, 4};
    td_tensor *x = seq(s, 3, TD_FLOAT32), *y = sized(&td_op_view, x, 2, v);
    cr_assert_not_null(y, "%s", td_errmsg());
    assert_shape(y, 2, v);
    cr_assert(y->storage == x->storage && y->stride[0] == 4 && y->stride[1] == 1);
    int64_t at[2] = {5, 3}, xat[3] = {1, 2, 3};
    td_set(y, at, 100);
    cr_assert_eq(td_get(x, xat), 100); /* written through the view */
    td_release(x), td_release(y);
}

Test(shape, view_infers_one_size_and_names_bad_shapes) {
    int64_t s[3] = {2, 3, 4}, v1[2] = {-1, 4}, v2[2] = {-1, -1}, v3[2] = {5, -1}, v4[2] = {0, -1};
    td_tensor *x = seq(s, 3, TD_FLOAT32), *y = sized(&td_op_view, x, 2, v1);
    int64_t want[2] = {6, 4};
    assert_shape(y, 2, want);
    cr_assert_null(sized(&td_op_view, x, 2, v2));
    assert_err("view: only one size can be -1, got shape -1x-1");
    cr_assert_null(sized(&td_op_view, x, 2, v3));
    assert_err("view: shape 5x-1 is invalid for a tensor of 24 elements (shape 2x3x4)");
    cr_assert_null(sized(&td_op_view, x, 2, v4));
    assert_err("ambiguous");
    int64_t big[3] = {1LL << 40, 1LL << 40, 1LL << 40};
    cr_assert_null(sized(&td_op_view, x, 3, big));
    assert_err("too large");
    td_release(x), td_release(y);
}

Test(shape, view_of_strided_tensors_follows_the_strides) {
    int64_t s[2] = {4, 6}, split[3] = {2, 3, 4}, all[1] = {24};
    td_tensor *x = seq(s, 2, TD_FLOAT64);
    td_args tr = {.dim = 0, .dim2 = 1};
    td_tensor *xt = td_apply1(&td_op_transpose, x, &tr); /* 6x4, strides 1x6 */
    cr_assert_null(sized(&td_op_view, xt, 1, all));
    assert_err("view: a tensor of shape 6x4 with strides 1x6 cannot be viewed as 24");
    td_tensor *y = sized(&td_op_view, xt, 3, split); /* splitting dim 0 needs no copy */
    cr_assert_not_null(y, "%s", td_errmsg());
    cr_assert(y->stride[0] == 3 && y->stride[1] == 1 && y->stride[2] == 6);
    assert_same_order(y, xt);
    td_args na = {.dim = 1, .start = 1, .len = 3};
    td_tensor *nw = td_apply1(&td_op_narrow, x, &na); /* 4x3 of rows of 6 */
    int64_t s12[1] = {12}, s223[3] = {2, 2, 3};
    cr_assert_null(sized(&td_op_view, nw, 1, s12));
    td_tensor *z = sized(&td_op_view, nw, 3, s223);
    cr_assert_not_null(z, "%s", td_errmsg());
    assert_same_order(z, nw);
    cr_assert_eq(z->offset, 1);
    td_release(x), td_release(xt), td_release(y), td_release(nw), td_release(z);
}

Test(shape, reshape_and_flatten_share_when_they_can_and_copy_when_not) {
    int64_t s[3] = {2, 3, 4}, r[2] = {4, 6};
    td_tensor *x = seq(s, 3, TD_FLOAT32), *y = sized(&td_op_reshape, x, 2, r);
    cr_assert(y->storage == x->storage);
    td_args pa = {.nsizes = 3, .sizes = {1, 2, 0}};
    td_tensor *p = td_apply1(&td_op_permute, x, &pa); /* 3x4x2, strides 4x1x12: no 4x6 view */
    td_tensor *c = sized(&td_op_reshape, p, 2, r);
    cr_assert_not_null(c, "%s", td_errmsg());
    cr_assert(c->storage != x->storage && td_is_contiguous(c));
    assert_shape(c, 2, r);
    assert_same_order(c, p);
    td_args fa = {.dim = 1, .dim2 = 2};
    td_tensor *f = td_apply1(&td_op_flatten, p, &fa);
    int64_t fs[2] = {3, 8};
    assert_shape(f, 2, fs);
    cr_assert(f->storage != x->storage);
    assert_same_order(f, p);
    td_args fb = {.dim = 0, .dim2 = 1};
    td_tensor *g = td_apply1(&td_op_flatten, x, &fb); /* merge of contiguous dims: a view */
    int64_t gs[2] = {6, 4};
    assert_shape(g, 2, gs);
    cr_assert(g->storage == x->storage);
    td_args bad = {.dim = 2, .dim2 = 1};
    cr_assert_null(td_apply1(&td_op_flatten, x, &bad));
    assert_err("flatten: start dim 3 comes after end dim 2");
    td_release(x), td_release(y), td_release(p), td_release(c), td_release(f), td_release(g);
}

Test(shape, transpose_permute_and_t_move_values) {
    int64_t s[3] = {2, 3, 4};
    td_tensor *x = seq(s, 3, TD_FLOAT32);
    td_args pa = {.nsizes = 3, .sizes = {1, 2, 0}};
    td_tensor *p = td_apply1(&td_op_permute, x, &pa);
    int64_t ps[3] = {3, 4, 2};
    assert_shape(p, 3, ps);
    td_args ta = {.dim = 0, .dim2 = -1};
    td_tensor *t = td_apply1(&td_op_transpose, x, &ta);
    for (int64_t i = 0; i < 2; i++)
        for (int64_t j = 0; j < 3; j++)
            for (int64_t k = 0; k < 4; k++) {
                int64_t xi[3] = {i, j, k}, pi[3] = {j, k, i}, ti[3] = {k, j, i};
                cr_assert_eq(td_get(p, pi), td_get(x, xi));
                cr_assert_eq(td_get(t, ti), td_get(x, xi));
            }
    cr_assert(p->storage == x->storage && t->storage == x->storage);
    cr_assert_null(td_apply1(&td_op_t, x, NULL));
    assert_err("t: expected a tensor of at most 2 dims, got shape 2x3x4");
    td_args dup = {.nsizes = 3, .sizes = {0, 1, 1}};
    cr_assert_null(td_apply1(&td_op_permute, x, &dup));
    assert_err("permute: dim 2 appears twice");
    td_args few = {.nsizes = 2, .sizes = {0, 1}};
    cr_assert_null(td_apply1(&td_op_permute, x, &few));
    assert_err("permute: got 2 dims for a tensor of shape 2x3x4 (expected 3)");
    int64_t s2[2] = {2, 5};
    td_tensor *m = seq(s2, 2, TD_INT64), *mt = td_apply1(&td_op_t, m, NULL);
    int64_t a[2] = {4, 1}, b[2] = {1, 4};
    cr_assert_eq(td_get(mt, a), td_get(m, b));
    td_release(x), td_release(p), td_release(t), td_release(m), td_release(mt);
}

Test(shape, narrow_and_select_pick_the_right_elements) {
    int64_t s[2] = {5, 7};
    for (int lay = 0; lay < L_NLAYOUTS; lay++) {
        td_tensor *x = ref_rand(s, 2, TD_FLOAT64, lay, -1, 1);
        td_args na = {.dim = 1, .start = 1, .len = 3, .step = 2}; /* columns 1, 3, 5 */
        td_tensor *n = td_apply1(&td_op_narrow, x, &na);
        cr_assert_not_null(n, "%s", td_errmsg());
        td_args sa = {.dim = 0, .index = 4};
        td_tensor *r = td_apply1(&td_op_select, x, &sa);
        cr_assert_eq(r->ndim, 1);
        for (int64_t i = 0; i < 5; i++)
            for (int64_t j = 0; j < 3; j++) {
                int64_t ni[2] = {i, j}, xi[2] = {i, 1 + 2 * j};
                cr_assert_eq(td_get(n, ni), td_get(x, xi), "%s", ref_layout_name[lay]);
            }
        for (int64_t j = 0; j < 7; j++) {
            int64_t xi[2] = {4, j};
            cr_assert_eq(td_get(r, &j), td_get(x, xi), "%s", ref_layout_name[lay]);
        }
        td_release(x), td_release(n), td_release(r);
    }
}

Test(shape, narrow_and_select_reject_positions_out_of_range) {
    int64_t s[2] = {3, 4};
    td_tensor *x = seq(s, 2, TD_FLOAT32);
    td_args sa = {.dim = 1, .index = 4};
    cr_assert_null(td_apply1(&td_op_select, x, &sa));
    assert_err("select: index 5 out of range for dim 2 of shape 3x4 (expected 1..4)");
    sa.index = -1;
    cr_assert_null(td_apply1(&td_op_select, x, &sa));
    td_args na = {.dim = 0, .start = 2, .len = 2};
    cr_assert_null(td_apply1(&td_op_narrow, x, &na));
    assert_err("narrow: length 2 from start 3 (step 1) goes past the end of dim 1 of shape 3x4");
    na = (td_args){.dim = 2, .start = 0, .len = 1};
    cr_assert_null(td_apply1(&td_op_narrow, x, &na));
    assert_err("narrow: dim 2 out of range for a 2-D tensor");
    na = (td_args){.dim = 0, .start = 3, .len = 0}; /* empty, at the end: allowed */
    td_tensor *e = td_apply1(&td_op_narrow, x, &na);
    cr_assert_not_null(e, "%s", td_errmsg());
    cr_assert_eq(td_numel(e), 0);
    td_release(x), td_release(e);
}

Test(shape, squeeze_unsqueeze_geometry) {
    int64_t s[4] = {2, 1, 3, 1};
    td_tensor *x = seq(s, 4, TD_FLOAT32);
    td_tensor *a = td_apply1(&td_op_squeeze, x, NULL);
    int64_t as[2] = {2, 3};
    assert_shape(a, 2, as);
    td_args one = {.dim = 1, .has_a = true}, other = {.dim = 0, .has_a = true};
    td_tensor *b = td_apply1(&td_op_squeeze, x, &one), *c = td_apply1(&td_op_squeeze, x, &other);
    int64_t bs[3] = {2, 3, 1};
    assert_shape(b, 3, bs);
    assert_shape(c, 4, s); /* dim 1 has size 2: nothing to squeeze (PyTorch) */
    td_args front = {.dim = 0}, back = {.dim = 2}, neg = {.dim = -1};
    td_tensor *u = td_apply1(&td_op_unsqueeze, a, &front),
              *v = td_apply1(&td_op_unsqueeze, a, &back);
    td_tensor *w = td_apply1(&td_op_unsqueeze, a, &neg);
    int64_t us[3] = {1, 2, 3}, vs[3] = {2, 3, 1};
    assert_shape(u, 3, us);
    assert_shape(v, 3, vs);
    assert_shape(w, 3, vs);
    cr_assert(u->stride[0] == 6 && v->stride[2] == 1);
    assert_same_order(u, x);
    td_args far = {.dim = 3};
    cr_assert_null(td_apply1(&td_op_unsqueeze, a, &far));
    td_release(x), td_release(a), td_release(b), td_release(c);
    td_release(u), td_release(v), td_release(w);
}

Test(shape, expand_uses_zero_strides) {
    int64_t s[2] = {3, 1}, e[3] = {2, 3, 4}, keep[3] = {2, -1, 4}, bad[2] = {4, 4};
    td_tensor *x = seq(s, 2, TD_FLOAT32);
    td_tensor *y = sized(&td_op_expand, x, 3, e), *z = sized(&td_op_expand, x, 3, keep);
    cr_assert_not_null(y, "%s", td_errmsg());
    assert_shape(y, 3, e);
    assert_shape(z, 3, e);
    cr_assert(y->stride[0] == 0 && y->stride[1] == 1 && y->stride[2] == 0);
    for (int64_t o = 0; o < 24; o++) {
        int64_t idx[3], xi[2];
        unravel(o, e, 3, idx);
        xi[0] = idx[1], xi[1] = 0;
        cr_assert_eq(td_get(y, idx), td_get(x, xi));
    }
    cr_assert_null(sized(&td_op_expand, x, 2, bad));
    assert_err("expand: cannot expand shape 3x1 to 4x4 (dim 1 has size 3");
    int64_t lead[3] = {-1, 3, 1};
    cr_assert_null(sized(&td_op_expand, x, 3, lead));
    assert_err("expand: invalid size -1 at dim 1");
    td_release(x), td_release(y), td_release(z);
}

Test(shape, contiguous_clone_and_to) {
    int64_t s[2] = {3, 4};
    td_tensor *x = seq(s, 2, TD_FLOAT32), *c = td_apply1(&td_op_contiguous, x, NULL);
    cr_assert(c->storage == x->storage && c != x);
    td_args ta = {.dim = 0, .dim2 = 1};
    td_tensor *xt = td_apply1(&td_op_transpose, x, &ta),
              *ct = td_apply1(&td_op_contiguous, xt, NULL);
    cr_assert(ct->storage != x->storage && td_is_contiguous(ct));
    cr_assert_eq(ref_maxdiff(ct, xt), 0);
    td_tensor *cl = td_apply1(&td_op_clone, xt, NULL);
    cr_assert(cl->storage != x->storage);
    cr_assert_eq(ref_maxdiff(cl, xt), 0);
    int64_t at[2] = {0, 0};
    td_set(cl, at, -5);
    cr_assert_eq(td_get(xt, at), 0); /* the clone is independent */
    td_args same = {.dtype = TD_FLOAT32}, to64 = {.dtype = TD_INT64};
    td_tensor *s1 = td_apply1(&td_op_to, x, &same), *half = td_full(s, 2, TD_FLOAT32, -2.75);
    td_tensor *i64 = td_apply1(&td_op_to, half, &to64);
    cr_assert(s1->storage == x->storage);
    cr_assert_eq(i64->dtype, TD_INT64);
    cr_assert_eq(((int64_t *)td_data(i64))[11], -2); /* truncates toward zero, like PyTorch */
    td_release(x), td_release(c), td_release(xt), td_release(ct), td_release(cl);
    td_release(s1), td_release(half), td_release(i64);
}

Test(shape, views_record_their_backward) {
    int64_t s[2] = {2, 3}, v[1] = {6};
    td_tensor *x = seq(s, 2, TD_FLOAT32);
    x->requires_grad = true;
    td_tensor *y = sized(&td_op_view, x, 1, v);
    char buf[64];
    cr_assert_not_null(y->grad_fn);
    cr_assert_str_eq(td_grad_fn_name(y->grad_fn, buf, sizeof buf), "ViewBackward");
    td_args to64 = {.dtype = TD_FLOAT64};
    td_tensor *d = td_apply1(&td_op_to, x, &to64), *g = td_full(s, 2, TD_FLOAT64, 0.5),
              *gin[1] = {0};
    td_tensor *gout[2] = {g, NULL};
    cr_assert_eq(d->grad_fn->op->backward(d->grad_fn, gout, gin), 0);
    cr_assert_eq(gin[0]->dtype, TD_FLOAT32); /* back to the input's dtype */
    cr_assert_eq(flat(gin[0], 4), 0.5);
    td_release(x), td_release(y), td_release(d), td_release(g), td_release(gin[0]);
}

/* Each view's backward against finite differences, on contiguous, transposed and narrowed
 * inputs (not expanded: a finite difference there moves several elements at once). */
Test(shape, backward_matches_finite_differences) {
    int64_t s[3] = {3, 4, 2};
    td_args view = {.nsizes = 2, .sizes = {6, 4}}, reshape = {.nsizes = 2, .sizes = {-1, 3}};
    td_args flatten = {.dim = 0, .dim2 = 1}, squeeze = {0}, unsq = {.dim = 1};
    td_args tr = {.dim = 0, .dim2 = 2}, perm = {.nsizes = 3, .sizes = {2, 0, 1}};
    td_args narrow = {.dim = 1, .start = 1, .len = 2, .step = 2}, sel = {.dim = 2, .index = 1};
    td_args expand = {.nsizes = 4, .sizes = {2, 3, 4, 2}};
    struct {
        const td_op *op;
        td_args *a;
    } cases[] = {{&td_op_view, &view},       {&td_op_reshape, &reshape}, {&td_op_flatten, &flatten},
                 {&td_op_squeeze, &squeeze}, {&td_op_unsqueeze, &unsq},  {&td_op_transpose, &tr},
                 {&td_op_permute, &perm},    {&td_op_narrow, &narrow},   {&td_op_select, &sel},
                 {&td_op_expand, &expand},   {&td_op_contiguous, NULL},  {&td_op_clone, NULL}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++)
        for (int lay = 0; lay < L_EXPANDED; lay++) {
            td_tensor *x = ref_rand(s, 3, TD_FLOAT64, lay, -1, 1);
            if (cases[c].op == &td_op_view && lay != L_CONTIG) { /* strides forbid it */
                td_release(x);
                continue;
            }
            double err = ref_gradcheck(cases[c].op, &x, 1, cases[c].a);
            cr_assert_lt(err, 1e-6, "%s on %s: error %g (%s)", cases[c].op->name,
                         ref_layout_name[lay], err, td_errmsg());
            td_release(x);
        }
    int64_t s2[2] = {3, 4};
    td_tensor *m = ref_rand(s2, 2, TD_FLOAT64, L_NARROWED, -1, 1);
    cr_assert_lt(ref_gradcheck(&td_op_t, &m, 1, NULL), 1e-6);
    int64_t s3[3] = {3, 1, 2};
    td_tensor *q = ref_rand(s3, 3, TD_FLOAT64, L_TRANSPOSED, -1, 1);
    cr_assert_lt(ref_gradcheck(&td_op_squeeze, &q, 1, NULL), 1e-6);
    td_release(m), td_release(q);
}
