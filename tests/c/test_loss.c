/* tests/c/test_loss.c: the ops of norm.c, embedding.c, loss.c and loss_pointwise.c at the C level:
 * cross_entropy against a naive float64 reference on every path (short rows in blocks, long rows,
 * K-dim, one sample, threaded sizes, strided inputs, float32 and float64), finite-difference
 * gradients of every op and option, and the error contract (NULL + message, nothing written). */
#include "ref.h"

#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

static td_tensor *classes(const int64_t *shape, int nd, int64_t C) {
    td_tensor *t = td_empty(shape, nd, TD_INT64);
    cr_assert(t && td_fill_randint(t, 1, C) == 0);
    return t;
}

static int64_t at(const td_tensor *t, int64_t i) { /* element i of a contiguous int64 tensor */
    return ((const int64_t *)td_data(t))[i];
}

/* naive cross_entropy in float64: x is N x C x S (or C), t classes or probabilities */
static td_tensor *naive_ce(td_tensor *x, td_tensor *t, double eps, int mode, bool ign, int64_t ig) {
    int cd = x->ndim == 1 ? 0 : 1;
    int64_t N = cd ? x->shape[0] : 1, C = x->shape[cd], S = 1, R, kept = 0;
    for (int i = 2; i < x->ndim; i++) S *= x->shape[i];
    R = N * S;
    bool probs = td_dtype_is_float(t->dtype);
    td_tensor *xd = ref_rand(x->shape, x->ndim, TD_FLOAT64, L_CONTIG, 0, 1);
    td_tensor *td = probs ? ref_rand(t->shape, t->ndim, TD_FLOAT64, L_CONTIG, 0, 1) : td_contiguous(t);
    cr_assert(td_copy_into(xd, x) == 0 && (!probs || td_copy_into(td, t) == 0));
    const double *xv = td_data(xd), *qv = probs ? td_data(td) : NULL;
    int64_t os[TD_MAX_DIMS];
    int on = 0;
    for (int i = 0; i < x->ndim; i++)
        if (i != cd) os[on++] = x->shape[i];
    td_tensor *out = td_zeros(os, mode == TD_REDUCE_NONE ? on : 0, TD_FLOAT64);
    double *o = td_data(out), tot = 0;
    for (int64_t i = 0; i < R; i++) {
        int64_t n = i / S, s = i % S;
        const double *xr = xv + n * C * S + s;
        double m = -INFINITY, z = 0, l = 0;
        for (int64_t c = 0; c < C; c++) m = fmax(m, xr[c * S]);
        for (int64_t c = 0; c < C; c++) z += exp(xr[c * S] - m);
        double lse = m + log(z);
        if (probs) {
            for (int64_t c = 0; c < C; c++)
                l += (qv[n * C * S + s + c * S] * (1 - eps) + eps / (double)C) * (lse - xr[c * S]);
            kept++;
        } else if (!(ign && at(td, i) == ig)) {
            for (int64_t c = 0; c < C; c++)
                l += ((c == at(td, i) - 1) * (1 - eps) + eps / (double)C) * (lse - xr[c * S]);
            kept++;
        }
        if (mode == TD_REDUCE_NONE) o[i] = l;
        tot += l;
    }
    if (mode != TD_REDUCE_NONE) o[0] = mode == TD_REDUCE_MEAN ? tot / (double)kept : tot;
    td_release(xd), td_release(td);
    return out;
}

static td_tensor *ce(td_tensor *x, td_tensor *t, double eps, int mode, bool ign, int64_t ig) {
    td_args a = {0};
    a.c = eps, a.mode = mode, a.flag = ign, a.index = ig;
    td_tensor *y = td_apply2(&td_op_cross_entropy, x, t, &a);
    cr_assert_not_null(y, "cross_entropy: %s", td_errmsg());
    return y;
}

Test(loss, cross_entropy_matches_naive_on_every_path) {
    static const int64_t shapes[][4] = {{64, 10}, {4096, 37}, {100, 1100}, {6, 5, 3, 4}, {7}};
    static const int nds[] = {2, 2, 2, 4, 1};
    td_manual_seed(31);
    for (int si = 0; si < 5; si++)
        for (int dt = TD_FLOAT32; dt <= TD_FLOAT64; dt++)
            for (int lay = 0; lay < 2; lay++) { /* contiguous and transposed logits */
                const int64_t *sh = shapes[si];
                int nd = nds[si], cd = nd == 1 ? 0 : 1;
                td_tensor *x = ref_rand(sh, nd, (td_dtype)dt, lay ? L_TRANSPOSED : L_CONTIG, -6, 6);
                int64_t ts[4], tn = 0;
                for (int i = 0; i < nd; i++)
                    if (i != cd) ts[tn++] = sh[i];
                td_tensor *t = classes(ts, (int)tn, sh[cd]);
                td_tensor *p = ref_rand(sh, nd, (td_dtype)dt, L_CONTIG, 0, 1);
                for (int mode = TD_REDUCE_MEAN; mode <= TD_REDUCE_NONE; mode++)
                    for (int k = 0; k < 3; k++) { /* plain, smoothed + ignore, probabilities */
                        double eps = k ? 0.2 : 0;
                        td_tensor *tg = k == 2 ? p : t;
                        bool ign = k == 1 && tn > 0;
                        int64_t ig = ign ? at(t, 0) : 0;
                        td_tensor *y = ce(x, tg, eps, mode, ign, ig);
                        td_tensor *r = naive_ce(x, tg, eps, mode, ign, ig);
                        double d = ref_maxdiff(y, r), tol = dt == TD_FLOAT32 ? 2e-5 : 1e-12;
                        cr_assert(d < tol, "shape %d %s %s mode %d case %d: off by %g", si,
                                  td_dtype_name((td_dtype)dt), ref_layout_name[lay], mode, k, d);
                        td_release(y), td_release(r);
                    }
                td_release(x), td_release(t), td_release(p);
            }
}

/* the gradient of mean cross_entropy through td_backward on threaded sizes: (softmax - onehot)/N */
Test(loss, cross_entropy_backward_is_softmax_minus_onehot) {
    static const int64_t shapes[][2] = {{4096, 37}, {300, 1100}, {64, 10}};
    td_manual_seed(32);
    for (int si = 0; si < 3; si++)
        for (int dt = TD_FLOAT32; dt <= TD_FLOAT64; dt++) {
            const int64_t *sh = shapes[si];
            td_tensor *x = ref_rand(sh, 2, (td_dtype)dt, L_CONTIG, -5, 5), *t = classes(sh, 1, sh[1]);
            x->requires_grad = true;
            td_args a = {0};
            td_tensor *l = td_apply2(&td_op_cross_entropy, x, t, &a);
            cr_assert(l && td_backward(&l, NULL, 1, false) == 0, "%s", td_errmsg());
            td_tensor *sm = ref_softmax(x, 1, false);
            double worst = 0, *s = td_data(sm);
            for (int64_t i = 0; i < sh[0]; i++)
                for (int64_t c = 0; c < sh[1]; c++) {
                    int64_t idx[2] = {i, c};
                    double want = (s[i * sh[1] + c] - (c == at(t, i) - 1)) / (double)sh[0];
                    worst = fmax(worst, fabs(td_get(x->grad, idx) - want));
                }
            cr_assert(worst * (double)sh[0] < (dt == TD_FLOAT32 ? 1e-5 : 1e-12),
                      "shape %d %s: off by %g", si, td_dtype_name((td_dtype)dt), worst);
            td_release(l), td_release(sm), td_release(x), td_release(t);
        }
}

static void gradcheck(const td_op *op, td_tensor **in, int nin, const td_args *a, const char *what) {
    double e = ref_gradcheck(op, in, nin, a);
    cr_assert(e < 1e-6, "%s %s: gradient off by %g (%s)", op->name, what, e, td_errmsg());
}

Test(loss, class_losses_gradients_match_finite_differences) {
    int64_t xs[2] = {5, 4}, ks[3] = {3, 4, 2}, kt[2] = {3, 2};
    td_manual_seed(33);
    td_tensor *x = ref_rand(xs, 2, TD_FLOAT64, L_CONTIG, -2, 2), *t = classes(xs, 1, 4);
    td_tensor *p = ref_rand(xs, 2, TD_FLOAT64, L_CONTIG, 0, 1);
    td_tensor *xk = ref_rand(ks, 3, TD_FLOAT64, L_TRANSPOSED, -2, 2), *tk = classes(kt, 2, 4);
    for (int mode = TD_REDUCE_MEAN; mode <= TD_REDUCE_NONE; mode++) {
        td_args a = {0};
        a.mode = mode, a.c = 0.15, a.flag = true, a.index = at(t, 1);
        td_tensor *in[2] = {x, t}, *ip[2] = {x, p}, *ik[2] = {xk, tk};
        gradcheck(&td_op_cross_entropy, in, 2, &a, "classes");
        gradcheck(&td_op_cross_entropy, ik, 2, &a, "K-dim classes");
        gradcheck(&td_op_nll_loss, in, 2, &a, "nll");
        a.flag = false;
        gradcheck(&td_op_cross_entropy, ip, 2, &a, "probabilities");
    }
    td_release(x), td_release(t), td_release(p), td_release(xk), td_release(tk);
}

Test(loss, pointwise_gradients_match_finite_differences) {
    static const td_op *const ops[] = {&td_op_mse_loss, &td_op_l1_loss, &td_op_smooth_l1_loss,
                                       &td_op_binary_cross_entropy,
                                       &td_op_binary_cross_entropy_with_logits, &td_op_kl_div};
    int64_t s[2] = {3, 5}, ws = 5;
    td_manual_seed(34);
    for (size_t k = 0; k < sizeof ops / sizeof ops[0]; k++)
        for (int mode = TD_REDUCE_MEAN; mode <= TD_REDUCE_BATCHMEAN; mode++) {
            bool kl = ops[k] == &td_op_kl_div, bce = ops[k] == &td_op_binary_cross_entropy;
            if (mode == TD_REDUCE_BATCHMEAN && !kl) continue;
            td_tensor *x = ref_rand(s, 2, TD_FLOAT64, L_TRANSPOSED, bce ? 0.1 : -2, bce ? 0.9 : 2);
            td_tensor *y = ref_rand(s, 2, TD_FLOAT64, L_CONTIG, kl ? 0.1 : 0, 1);
            td_tensor *w = ref_rand(&ws, 1, TD_FLOAT64, L_CONTIG, 0.5, 2), *in[3] = {x, y, w};
            td_args a = {0};
            a.mode = mode, a.a = 0.3; /* beta: |x - y| crosses it */
            gradcheck(ops[k], in, 2, &a, "");
            if (ops[k] == &td_op_binary_cross_entropy_with_logits)
                gradcheck(ops[k], in, 3, &a, "pos_weight");
            if (kl) {
                a.flag = true; /* log_target */
                gradcheck(ops[k], in, 2, &a, "log_target");
            }
            td_release(x), td_release(y), td_release(w);
        }
}

Test(loss, norm_and_embedding_gradients_match_finite_differences) {
    int64_t xs[3] = {4, 3, 5}, ds = 5, cs = 3, es[2] = {6, 3}, is[2] = {2, 4};
    td_manual_seed(35);
    td_tensor *x = ref_rand(xs, 3, TD_FLOAT64, L_TRANSPOSED, -2, 2);
    td_tensor *w = ref_rand(&ds, 1, TD_FLOAT64, L_CONTIG, 0.5, 2);
    td_tensor *b = ref_rand(&ds, 1, TD_FLOAT64, L_CONTIG, -1, 1);
    td_tensor *wc = ref_rand(&cs, 1, TD_FLOAT64, L_CONTIG, 0.5, 2);
    td_tensor *bc = ref_rand(&cs, 1, TD_FLOAT64, L_CONTIG, -1, 1);
    td_tensor *rm = ref_rand(&cs, 1, TD_FLOAT64, L_CONTIG, -1, 1);
    td_tensor *rv = ref_rand(&cs, 1, TD_FLOAT64, L_CONTIG, 0.5, 2);
    for (int k = 0; k < 4; k++) { /* weight and bias each present or not */
        td_args a = {0};
        a.sizes[0] = 5, a.nsizes = 1, a.c = 1e-5, a.has_a = k & 1, a.has_b = k >> 1;
        td_tensor *in[3] = {x, NULL, NULL}, *ib[3] = {x, NULL, NULL};
        int n = 1;
        if (a.has_a) in[n] = w, ib[n++] = wc;
        if (a.has_b) in[n] = b, ib[n++] = bc;
        gradcheck(&td_op_layer_norm, in, n, &a, "weight/bias");
        a.flag = true, a.b = 0.1; /* training, without running statistics */
        gradcheck(&td_op_batch_norm, ib, n, &a, "training");
        a.flag = false, a.aux[0] = rm, a.aux[1] = rv;
        gradcheck(&td_op_batch_norm, ib, n, &a, "eval");
    }
    td_tensor *e = ref_rand(es, 2, TD_FLOAT64, L_CONTIG, -1, 1), *idx = classes(is, 2, 6);
    ((int64_t *)td_data(idx))[1] = ((int64_t *)td_data(idx))[0]; /* a repeated index adds up */
    td_tensor *ie[2] = {idx, e};
    gradcheck(&td_op_embedding, ie, 2, NULL, "");
    td_release(x), td_release(w), td_release(b), td_release(wc), td_release(bc), td_release(rm);
    td_release(rv), td_release(e), td_release(idx);
}

/* training updates the running statistics in place (biased variance normalises, unbiased
 * enters the running variance); eval reads them; both bump the version only when written */
Test(loss, batch_norm_running_statistics) {
    double xv[8] = {1, 10, 3, 30, 5, 50, 7, 70}, one[2] = {1, 1};
    int64_t xs[2] = {4, 2}, cs = 2;
    td_tensor *x = td_from_data(xv, xs, 2, TD_FLOAT64), *rm = td_zeros(&cs, 1, TD_FLOAT64);
    td_tensor *rv = td_from_data(one, &cs, 1, TD_FLOAT64);
    td_args a = {0};
    a.flag = true, a.b = 0.5, a.c = 0, a.aux[0] = rm, a.aux[1] = rv;
    uint64_t v0 = rm->storage->version;
    td_tensor *y = td_apply1(&td_op_batch_norm, x, &a);
    cr_assert_not_null(y, "%s", td_errmsg());
    const double *m = td_data(rm), *v = td_data(rv), *yv = td_data(y);
    cr_assert(fabs(m[0] - 2) < 1e-12 && fabs(m[1] - 20) < 1e-12, "mean %g %g", m[0], m[1]);
    cr_assert(fabs(v[0] - (0.5 + 0.5 * 20.0 / 3)) < 1e-12, "unbiased variance: %g", v[0]);
    cr_assert(fabs(yv[0] + 3 / sqrt(5.0)) < 1e-12, "biased variance normalises: %g", yv[0]);
    cr_assert(rm->storage->version > v0);
    td_release(y);
    a.flag = false;
    v0 = rm->storage->version;
    y = td_apply1(&td_op_batch_norm, x, &a);
    cr_assert(y && rm->storage->version == v0 && fabs(m[0] - 2) < 1e-12, "eval must not write");
    cr_assert(fabs(((double *)td_data(y))[0] - (1 - 2) / sqrt(v[0])) < 1e-12);
    td_release(y), td_release(x), td_release(rm), td_release(rv);
}

static void expect_error(td_tensor *y, const char *want) {
    cr_assert_null(y, "expected the error '%s'", want);
    cr_assert(strstr(td_errmsg(), want), "got '%s', expected '%s'", td_errmsg(), want);
}

Test(loss, errors_name_values_and_shapes) {
    int64_t xs[2] = {64, 10}, n = 64, n2 = 32;
    td_tensor *x = td_zeros(xs, 2, TD_FLOAT32), *t = td_full(&n, 1, TD_INT64, 3);
    td_tensor *b = td_zeros(&n, 1, TD_BOOL), *t2 = td_full(&n2, 1, TD_INT64, 1);
    td_args a = {0};
    ((int64_t *)td_data(t))[63] = 11;
    expect_error(td_apply2(&td_op_cross_entropy, x, t, &a),
                 "cross_entropy: target class 11 out of range 1..10 (target 64)");
    ((int64_t *)td_data(t))[63] = 0;
    expect_error(td_apply2(&td_op_cross_entropy, x, t, &a),
                 "cross_entropy: target class 0 out of range 1..10 (target 64)");
    a.flag = true, a.index = 0; /* an ignored value needs no range */
    td_tensor *y = td_apply2(&td_op_cross_entropy, x, t, &a);
    cr_assert(y && fabs(td_item(y) - log(10.0)) < 1e-6, "%s", td_errmsg());
    td_release(y);
    a.flag = false;
    expect_error(td_apply2(&td_op_cross_entropy, x, b, &a),
                 "cross_entropy: expected int64 class targets or float probabilities, got bool");
    expect_error(td_apply2(&td_op_cross_entropy, x, t2, &a),
                 "cross_entropy: target shape 32 does not match input 64x10");
    expect_error(td_apply2(&td_op_mse_loss, x, t2, &a),
                 "mse_loss: input shape 64x10 and target shape 32 differ");
    a.mode = TD_REDUCE_BATCHMEAN;
    expect_error(td_apply2(&td_op_l1_loss, x, x, &a), "l1_loss: reduction must be");
    a.mode = 0;
    td_tensor *w1 = td_zeros(&n, 1, TD_FLOAT32);
    expect_error(td_apply2(&td_op_embedding, t, w1, &a), "embedding: expected a 2-D float weight");
    td_release(w1);
    ((int64_t *)td_data(t))[5] = 99;
    expect_error(td_apply2(&td_op_embedding, t, x, &a),
                 "embedding: index 99 out of range 1..64 (position 6)");
    int64_t one[2] = {1, 10};
    td_tensor *x1 = td_zeros(one, 2, TD_FLOAT32);
    a.flag = true;
    expect_error(td_apply1(&td_op_batch_norm, x1, &a),
                 "batch_norm: expected more than 1 value per channel when training");
    a.sizes[0] = 9, a.nsizes = 1;
    expect_error(td_apply1(&td_op_layer_norm, x, &a),
                 "layer_norm: normalized_shape 9 does not match the last dims of input 64x10");
    td_release(x), td_release(t), td_release(b), td_release(t2), td_release(x1);
}
