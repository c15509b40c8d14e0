/* tests/c/test_index.c: index, gather, scatter, masked_select, cat, stack and assign
 * (tensor/ops/index.c, join.c) against naive loops on contiguous and strided inputs, their
 * errors (out-of-range indices name the value and the valid range), and each backward by
 * finite differences (ref_gradcheck). */
#include "ref.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

static void unravel(int64_t o, const int64_t *shape, int nd, int64_t *idx) {
    for (int i = nd - 1; i >= 0; i--) {
        idx[i] = o % shape[i];
        o /= shape[i];
    }
}

static td_tensor *longs(const int64_t *v, const int64_t *shape, int nd) {
    return td_from_data(v, shape, nd, TD_INT64);
}

static void assert_err(const char *want) {
    cr_assert(strstr(td_errmsg(), want), "error '%s' lacks '%s'", td_errmsg(), want);
}

static int64_t pos(int64_t v, int64_t n) { /* 1-based or negative -> 0-based */
    return v < 0 ? v + n : v - 1;
}

/* naive index_select: out[p] = x[p with p_d = idx[p_d]] */
static void check_index(const td_tensor *x, int d, const td_tensor *idx, const td_tensor *out) {
    int64_t p[TD_MAX_DIMS], q[TD_MAX_DIMS];
    cr_assert_eq(out->shape[d], td_numel(idx));
    for (int64_t o = 0; o < td_numel(out); o++) {
        unravel(o, out->shape, out->ndim, p);
        memcpy(q, p, sizeof p);
        int64_t k = p[d];
        q[d] = pos((int64_t)td_get(idx, &k), x->shape[d]);
        cr_assert_eq(td_get(out, p), td_get(x, q), "element %lld", (long long)o);
    }
}

Test(index, index_matches_naive_on_every_layout_and_dim) {
    int64_t s[3] = {4, 5, 3}, iv[5] = {2, -1, 2, 1, 3}, is[1] = {5};
    td_tensor *idx = longs(iv, is, 1);
    for (int lay = 0; lay < L_NLAYOUTS; lay++)
        for (int d = 0; d < 3; d++) {
            td_tensor *x = ref_rand(s, 3, TD_FLOAT32, lay, -1, 1);
            td_args a = {.dim = d};
            td_tensor *out = td_apply2(&td_op_index, x, idx, &a);
            cr_assert_not_null(out, "%s dim %d: %s", ref_layout_name[lay], d, td_errmsg());
            check_index(x, d, idx, out);
            td_release(x), td_release(out);
        }
    td_release(idx);
}

Test(index, index_is_exact_for_int64_and_parallel_sizes) {
    int64_t s[2] = {300, 200}, iv[300], is[1] = {300};
    for (int i = 0; i < 300; i++) iv[i] = 300 - (i * 7) % 300;
    td_tensor *x = ref_rand(s, 2, TD_FLOAT64, L_CONTIG, -1, 1), *idx = longs(iv, is, 1);
    td_args a = {.dim = 0};
    td_tensor *out = td_apply2(&td_op_index, x, idx, &a);
    check_index(x, 0, idx, out);
    int64_t big[3] = {1, (1LL << 53) + 1, 7}, bs[1] = {3}, two[2] = {3, 3}, ts[1] = {2};
    td_tensor *b = longs(big, bs, 1), *sel = longs(two, ts, 1);
    td_tensor *ob = td_apply2(&td_op_index, b, sel, &a);
    cr_assert_eq(((int64_t *)td_data(ob))[0], 7);
    cr_assert_eq(((int64_t *)td_data(b))[1], (1LL << 53) + 1);
    td_release(x), td_release(idx), td_release(out), td_release(b), td_release(sel);
    td_release(ob);
}

Test(index, index_rejects_out_of_range_values) {
    int64_t s[2] = {3, 4}, is[1] = {1};
    td_tensor *x = ref_rand(s, 2, TD_FLOAT32, L_CONTIG, -1, 1);
    int64_t bad[3] = {0, 5, -5};
    for (int i = 0; i < 3; i++) {
        td_tensor *idx = longs(&bad[i], is, 1);
        td_args a = {.dim = 1};
        cr_assert_null(td_apply2(&td_op_index, x, idx, &a));
        char want[128];
        snprintf(want, sizeof want,
                 "index: index %lld out of range for dim 2 of size 4 "
                 "(expected 1..4 or -4..-1)",
                 (long long)bad[i]);
        assert_err(want);
        td_release(idx);
    }
    td_tensor *f = td_full(is, 1, TD_FLOAT32, 1);
    td_args a = {.dim = 0};
    cr_assert_null(td_apply2(&td_op_index, x, f, &a));
    assert_err("index: indices must be an int64 tensor, got float32");
    td_release(x), td_release(f);
}

/* naive gather: out[p] = x[p with p_d = idx[p]] */
Test(index, gather_matches_naive) {
    int64_t s[3] = {4, 5, 3}, is[3] = {3, 2, 3};
    int64_t iv[18];
    for (int i = 0; i < 18; i++) iv[i] = 1 + (i * 5) % 3;
    td_tensor *idx = longs(iv, is, 3);
    for (int lay = 0; lay < L_NLAYOUTS; lay++)
        for (int d = 0; d < 3; d++) {
            td_tensor *x = ref_rand(s, 3, TD_FLOAT64, lay, -1, 1);
            td_args a = {.dim = d};
            td_tensor *out = td_apply2(&td_op_gather, x, idx, &a);
            cr_assert_not_null(out, "%s", td_errmsg());
            int64_t p[3], q[3];
            for (int64_t o = 0; o < 18; o++) {
                unravel(o, is, 3, p);
                memcpy(q, p, sizeof p);
                q[d] = pos((int64_t)td_get(idx, p), s[d]);
                cr_assert_eq(td_get(out, p), td_get(x, q));
            }
            td_release(x), td_release(out);
        }
    td_release(idx);
}

Test(index, gather_checks_shapes_and_values) {
    int64_t s[2] = {3, 4}, is[2] = {4, 1}, iv[4] = {1, 1, 1, 1}, s1[1] = {2}, v1[2] = {1, 2};
    td_tensor *x = ref_rand(s, 2, TD_FLOAT32, L_CONTIG, -1, 1), *idx = longs(iv, is, 2);
    td_args a = {.dim = 1};
    cr_assert_null(td_apply2(&td_op_gather, x, idx, &a));
    assert_err("gather: index of shape 4x1 is larger than the tensor's shape 3x4 at dim 1");
    td_tensor *i1 = longs(v1, s1, 1);
    cr_assert_null(td_apply2(&td_op_gather, x, i1, &a));
    assert_err("gather: index of shape 2 needs as many dims as the tensor's shape 3x4");
    int64_t vs[2] = {1, 1}, vv[1] = {5};
    td_tensor *i2 = longs(vv, vs, 2);
    cr_assert_null(td_apply2(&td_op_gather, x, i2, &a));
    assert_err("gather: index 5 out of range for dim 2 of size 4");
    td_release(x), td_release(idx), td_release(i1), td_release(i2);
}

/* naive scatter in row-major order of idx, so the last of repeated indices wins */
Test(index, scatter_matches_naive_and_scatter_writes_in_place) {
    int64_t s[2] = {3, 4}, is[2] = {2, 3}, iv[6] = {4, 4, 1, -1, 2, 3};
    td_tensor *idx = longs(iv, is, 2);
    for (int lay = 0; lay < L_NLAYOUTS; lay++) {
        td_tensor *x = ref_rand(s, 2, TD_FLOAT32, lay, -1, 1);
        td_tensor *src = ref_rand(is, 2, TD_FLOAT32, L_TRANSPOSED, 5, 6);
        td_args a = {.dim = 1};
        td_tensor *in[3] = {x, idx, src};
        td_tensor *out = td_apply(&td_op_scatter, in, 3, &a);
        cr_assert_not_null(out, "%s", td_errmsg());
        td_tensor *want = td_empty(s, 2, TD_FLOAT32);
        td_copy_into(want, x);
        for (int64_t o = 0; o < 6; o++) {
            int64_t p[2], q[2];
            unravel(o, is, 2, p);
            q[0] = p[0], q[1] = pos((int64_t)td_get(idx, p), 4);
            td_set(want, q, td_get(src, p));
        }
        cr_assert_eq(ref_maxdiff(out, want), 0, "%s", ref_layout_name[lay]);
        if (lay != L_EXPANDED) {
            uint64_t v0 = x->storage->version;
            cr_assert_eq(td_apply_(&td_op_scatter, in, 3, &a), 0, "%s", td_errmsg());
            cr_assert_eq(ref_maxdiff(x, want), 0);
            cr_assert_gt(x->storage->version, v0);
        }
        td_release(x), td_release(src), td_release(out), td_release(want);
    }
    td_release(idx);
}

Test(index, scatter_takes_one_value_and_checks_the_source) {
    int64_t s[2] = {2, 3}, is[2] = {2, 1}, iv[2] = {3, 1};
    td_tensor *x = td_zeros(s, 2, TD_INT64), *idx = longs(iv, is, 2), *v = td_scalar(9, TD_INT64);
    td_args a = {.dim = 1};
    td_tensor *in[3] = {x, idx, v};
    td_tensor *out = td_apply(&td_op_scatter, in, 3, &a);
    int64_t want[6] = {0, 0, 9, 9, 0, 0};
    cr_assert_arr_eq(td_data(out), want, sizeof want);
    int64_t ss[2] = {1, 1};
    td_tensor *small = td_zeros(ss, 2, TD_INT64);
    in[2] = small;
    cr_assert_null(td_apply(&td_op_scatter, in, 3, &a));
    assert_err("scatter: source of shape 1x1 is smaller than the index's shape 2x1");
    td_release(x), td_release(idx), td_release(v), td_release(out), td_release(small);
}

Test(index, masked_select_matches_naive_with_broadcast_masks) {
    int64_t s[2] = {3, 4}, ms[2] = {3, 1};
    bool mv[3] = {true, false, true};
    td_tensor *mask = td_from_data(mv, ms, 2, TD_BOOL);
    for (int lay = 0; lay < L_NLAYOUTS; lay++) {
        td_tensor *x = ref_rand(s, 2, TD_FLOAT64, lay, -1, 1);
        td_tensor *out = td_apply2(&td_op_masked_select, x, mask, NULL);
        cr_assert_not_null(out, "%s", td_errmsg());
        cr_assert(out->ndim == 1 && out->shape[0] == 8);
        int64_t k = 0;
        for (int64_t i = 0; i < 3; i++)
            for (int64_t j = 0; j < 4; j++) {
                int64_t p[2] = {i, j};
                if (mv[i]) {
                    cr_assert_eq(td_get(out, &k), td_get(x, p));
                    k++;
                }
            }
        td_release(x), td_release(out);
    }
    td_tensor *f = td_zeros(ms, 2, TD_FLOAT32), *x = td_zeros(s, 2, TD_FLOAT32);
    cr_assert_null(td_apply2(&td_op_masked_select, x, f, NULL));
    assert_err("masked_select: mask must be a bool tensor, got float32 (shape 3x1)");
    td_release(mask), td_release(f), td_release(x);
}

Test(index, cat_and_stack_match_naive_and_promote) {
    int64_t s1[2] = {2, 3}, s2[2] = {2, 2};
    td_tensor *a = ref_rand(s1, 2, TD_FLOAT32, L_TRANSPOSED, -1, 1);
    td_tensor *b = ref_rand(s2, 2, TD_FLOAT64, L_NARROWED, -1, 1);
    td_tensor *in[2] = {a, b};
    td_args d1 = {.dim = 1};
    td_tensor *c = td_apply(&td_op_cat, in, 2, &d1);
    cr_assert_not_null(c, "%s", td_errmsg());
    cr_assert(c->dtype == TD_FLOAT64 && c->shape[0] == 2 && c->shape[1] == 5);
    for (int64_t i = 0; i < 2; i++)
        for (int64_t j = 0; j < 5; j++) {
            int64_t p[2] = {i, j}, q[2] = {i, j < 3 ? j : j - 3};
            cr_assert_eq(td_get(c, p), td_get(j < 3 ? a : b, q));
        }
    td_args d0 = {.dim = 0};
    cr_assert_null(td_apply(&td_op_cat, in, 2, &d0));
    assert_err("cat: tensor 2 has shape 2x2 but tensor 1 has shape 2x3 (all dims except dim 1 "
               "must match)");
    td_tensor *a2 = ref_rand(s1, 2, TD_INT64, L_CONTIG, 0, 9);
    td_tensor *sin[2] = {a, a2};
    td_args dl = {.dim = -1};
    td_tensor *st = td_apply(&td_op_stack, sin, 2, &dl);
    cr_assert_not_null(st, "%s", td_errmsg());
    cr_assert(st->dtype == TD_FLOAT32 && st->ndim == 3 && st->shape[2] == 2);
    for (int64_t i = 0; i < 2; i++)
        for (int64_t j = 0; j < 3; j++)
            for (int64_t k = 0; k < 2; k++) {
                int64_t p[3] = {i, j, k}, q[2] = {i, j};
                cr_assert_eq(td_get(st, p), td_get(k ? a2 : a, q));
            }
    in[1] = b;
    cr_assert_null(td_apply(&td_op_stack, in, 2, &d0));
    assert_err(
        "stack: tensor 2 has shape 2x2 but tensor 1 has shape 2x3 (all shapes must be equal)");
    td_tensor *z = td_scalar(1, TD_FLOAT32), *zin[1] = {z};
    cr_assert_null(td_apply(&td_op_cat, zin, 1, &d0));
    assert_err("cat: 0-D tensors cannot be concatenated");
    td_release(a), td_release(b), td_release(c), td_release(a2), td_release(st), td_release(z);
}

static td_tensor *steps(const int64_t *rows, int n) {
    int64_t s[2] = {n, 5};
    return td_from_data(rows, s, 2, TD_INT64);
}

Test(index, assign_writes_slices_and_masks_in_place) {
    int64_t s[2] = {3, 4};
    td_tensor *t = td_zeros(s, 2, TD_FLOAT32);
    /* t[{{1, 3, 2}, 2}] = {7, 8}: rows 1 and 3, column 2 */
    int64_t rows[10] = {TD_STEP_NARROW, 0, 0, 2, 2, TD_STEP_SELECT, 1, 1, 0, 1};
    int64_t vs[1] = {2};
    float vv[2] = {7, 8};
    td_tensor *key = steps(rows, 2), *v = td_from_data(vv, vs, 1, TD_FLOAT32);
    td_tensor *in[3] = {t, v, key};
    cr_assert_eq(td_apply_(&td_op_assign, in, 3, NULL), 0, "%s", td_errmsg());
    float want[12] = {0, 7, 0, 0, 0, 0, 0, 0, 0, 8, 0, 0};
    cr_assert_arr_eq(td_data(t), want, sizeof want);
    bool mv[4] = {true, false, false, true};
    int64_t ms[1] = {4};
    td_tensor *mask = td_from_data(mv, ms, 1, TD_BOOL), *one = td_scalar(-1, TD_FLOAT64);
    td_tensor *min[3] = {t, one, mask};
    cr_assert_eq(td_apply_(&td_op_assign, min, 3, NULL), 0, "%s", td_errmsg());
    for (int i = 0; i < 12; i++)
        cr_assert_eq(((float *)td_data(t))[i], mv[i % 4] ? -1.0f : want[i], "%d", i);
    int64_t s3[1] = {3};
    td_tensor *three = td_zeros(s3, 1, TD_FLOAT32);
    in[1] = three;
    cr_assert_eq(td_apply_(&td_op_assign, in, 3, NULL), -1);
    assert_err("index assignment: value of shape 3 cannot be broadcast to the indexed shape 2");
    min[1] = three;
    cr_assert_eq(td_apply_(&td_op_assign, min, 3, NULL), -1);
    assert_err("index assignment: 6 positions are masked but the value has shape 3");
    td_release(t), td_release(key), td_release(v), td_release(mask), td_release(one);
    td_release(three);
}

/* Backward of each op by finite differences: indices without repeats for scatter (with
 * repeats, only the last write reaches the output; PyTorch documents the same limit). */
Test(index, backward_matches_finite_differences) {
    int64_t s[2] = {3, 4}, is[1] = {5}, iv[5] = {2, 4, 2, -1, 1};
    td_tensor *idx = longs(iv, is, 1);
    for (int lay = 0; lay < L_EXPANDED; lay++) {
        td_tensor *x = ref_rand(s, 2, TD_FLOAT64, lay, -1, 1);
        td_args a = {.dim = 1};
        td_tensor *in[3] = {x, idx};
        cr_assert_lt(ref_gradcheck(&td_op_index, in, 2, &a), 1e-6, "%s", ref_layout_name[lay]);
        int64_t gs[2] = {3, 2}, gv[6] = {1, 1, 4, 2, 3, 3};
        td_tensor *gi = longs(gv, gs, 2);
        in[1] = gi;
        cr_assert_lt(ref_gradcheck(&td_op_gather, in, 2, &a), 1e-6, "%s", ref_layout_name[lay]);
        int64_t sv[6] = {2, 4, 1, 3, 4, 1};
        td_tensor *si = longs(sv, gs, 2), *src = ref_rand(gs, 2, TD_FLOAT64, lay, -1, 1);
        in[1] = si, in[2] = src;
        cr_assert_lt(ref_gradcheck(&td_op_scatter, in, 3, &a), 1e-6, "%s", ref_layout_name[lay]);
        td_tensor *val = td_scalar(0.5, TD_FLOAT64);
        in[2] = val;
        cr_assert_lt(ref_gradcheck(&td_op_scatter, in, 3, &a), 1e-6, "%s", ref_layout_name[lay]);
        bool mv[4] = {true, false, true, true};
        int64_t ms[1] = {4};
        td_tensor *mask = td_from_data(mv, ms, 1, TD_BOOL);
        in[1] = mask;
        cr_assert_lt(ref_gradcheck(&td_op_masked_select, in, 2, NULL), 1e-6);
        td_tensor *y = ref_rand(s, 2, TD_FLOAT64, L_CONTIG, -1, 1),
                  *w = ref_rand(gs, 2, TD_FLOAT64, lay, -1, 1);
        td_tensor *cin[3] = {x, y, w};
        td_args d1 = {.dim = 1}, d0 = {.dim = 0};
        cr_assert_lt(ref_gradcheck(&td_op_cat, cin, 3, &d1), 1e-6);
        cr_assert_lt(ref_gradcheck(&td_op_stack, cin, 2, &d0), 1e-6);
        int64_t rows[5] = {TD_STEP_NARROW, 1, 1, 2, 2}; /* t[{{}, {2, 4, 2}}] = v */
        td_tensor *key = steps(rows, 1), *v = ref_rand(gs, 2, TD_FLOAT64, lay, -1, 1);
        td_tensor *ain[3] = {x, v, key};
        cr_assert_lt(ref_gradcheck(&td_op_assign, ain, 3, NULL), 1e-6);
        int64_t ones[1] = {1};
        td_tensor *v1 = ref_rand(ones, 1, TD_FLOAT64, L_CONTIG, -1, 1);
        td_tensor *min[3] = {x, v1, mask};
        cr_assert_lt(ref_gradcheck(&td_op_assign, min, 3, NULL), 1e-6);
        td_release(x), td_release(gi), td_release(si), td_release(src), td_release(val);
        td_release(mask), td_release(y), td_release(w), td_release(key), td_release(v);
        td_release(v1);
    }
    td_release(idx);
}
