/* tests/c/ref.c: naive reference kernels (one loop nest each, float64, through td_get) and test
 * helpers: random tensors in several layouts and a finite-difference gradient check. Sizes:
 * N elements reduced per output, M x K times K x N for matmul. Clarity over speed. */
#include "ref.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

const char *const ref_layout_name[L_NLAYOUTS] = {"contiguous", "transposed", "narrowed",
                                                 "expanded"};

td_tensor *ref_rand(const int64_t *shape, int ndim, td_dtype dt, int lay, double lo, double hi) {
    int64_t base[TD_MAX_DIMS], st[TD_MAX_DIMS], off = 0;
    for (int i = 0; i < ndim; i++)
        base[i] = lay == L_TRANSPOSED           ? shape[ndim - 1 - i]
                  : lay == L_NARROWED           ? shape[i] + 3
                  : lay == L_EXPANDED && i == 0 ? 1
                                                : shape[i];
    td_tensor *b = td_empty(base, ndim, dt);
    if (!b) return NULL;
    if (td_dtype_is_float(dt))
        td_fill_uniform(b, lo, hi);
    else
        td_fill_randint(b, (int64_t)lo, (int64_t)hi - 1);
    for (int i = 0; i < ndim; i++) {
        st[i] = lay == L_TRANSPOSED ? b->stride[ndim - 1 - i] : b->stride[i];
        if (lay == L_NARROWED) off += b->stride[i];
        if (lay == L_EXPANDED && i == 0) st[i] = 0;
    }
    td_tensor *v = td_view_of(b, shape, st, ndim, off);
    td_release(b);
    return v;
}

static void unravel(int64_t o, const int64_t *shape, int ndim, int64_t *idx) {
    for (int i = ndim - 1; i >= 0; i--) {
        idx[i] = shape[i] ? o % shape[i] : 0;
        o = shape[i] ? o / shape[i] : 0;
    }
}

double ref_maxdiff(const td_tensor *a, const td_tensor *b) {
    if (a->ndim != b->ndim || memcmp(a->shape, b->shape, sizeof(int64_t) * (size_t)a->ndim))
        return INFINITY;
    double m = 0;
    int64_t n = td_numel(a), idx[TD_MAX_DIMS];
    for (int64_t o = 0; o < n; o++) {
        unravel(o, a->shape, a->ndim, idx);
        double x = td_get(a, idx), y = td_get(b, idx);
        if (isnan(x) && isnan(y)) continue;
        if (x == y) continue; /* infinities */
        double d = fabs(x - y) / (1 + fabs(y));
        if (!(d <= m)) m = d;
    }
    return m;
}

/* element r of the run that output o reduces (dim < 0: all elements in row-major order) */
static double run_elem(const td_tensor *x, int dim, const int64_t *oidx, int64_t r) {
    int64_t idx[TD_MAX_DIMS];
    if (dim < 0) {
        unravel(r, x->shape, x->ndim, idx);
    } else {
        for (int i = 0, j = 0; i < x->ndim; i++) idx[i] = i == dim ? r : oidx[j++];
    }
    return td_get(x, idx);
}

static double reduce_vals(const double *v, int64_t n, int kind) {
    double s = 0, m = n ? v[0] : 0, mean = 0;
    int64_t at = 0;
    switch (kind) {
    case R_SUM:
    case R_MEAN:
        for (int64_t j = 0; j < n; j++) s += v[j];
        return kind == R_MEAN ? s / (double)n : s;
    case R_PROD:
        s = 1;
        for (int64_t j = 0; j < n; j++) s *= v[j];
        return s;
    case R_MAX:
    case R_ARGMAX:
    case R_MIN:
    case R_ARGMIN:
        for (int64_t j = 1; j < n; j++) {
            bool better = (kind == R_MAX || kind == R_ARGMAX) ? v[j] > m : v[j] < m;
            if (better || (isnan(v[j]) && !isnan(m))) m = v[j], at = j;
        }
        return (kind == R_ARGMAX || kind == R_ARGMIN) ? (double)(at + 1) : m;
    case R_VAR:
    case R_VARB:
    case R_STD:
        for (int64_t j = 0; j < n; j++) mean += v[j] / (double)n;
        for (int64_t j = 0; j < n; j++) s += (v[j] - mean) * (v[j] - mean);
        s /= (double)(kind == R_VARB ? n : n - 1);
        return kind == R_STD ? sqrt(s) : s;
    case R_NORM:
        for (int64_t j = 0; j < n; j++) s += v[j] * v[j];
        return sqrt(s);
    case R_LSE:
        for (int64_t j = 0; j < n; j++) m = v[j] > m ? v[j] : m;
        if (isinf(m)) return m;
        for (int64_t j = 0; j < n; j++) s += exp(v[j] - m);
        return log(s) + m;
    case R_ALL:
        for (int64_t j = 0; j < n; j++)
            if (v[j] == 0) return 0;
        return 1;
    default: /* R_ANY */
        for (int64_t j = 0; j < n; j++)
            if (v[j] != 0) return 1;
        return 0;
    }
}

td_tensor *ref_reduce(const td_tensor *x, int dim, int kind) {
    int64_t osh[TD_MAX_DIMS] = {0}, idx[TD_MAX_DIMS];
    int ond = 0;
    for (int i = 0; dim >= 0 && i < x->ndim; i++)
        if (i != dim) osh[ond++] = x->shape[i];
    td_tensor *out = td_empty(osh, ond, TD_FLOAT64);
    int64_t nout = td_numel(out), n = dim >= 0 ? x->shape[dim] : td_numel(x);
    double *v = malloc(sizeof(double) * (size_t)(n + 1));
    for (int64_t o = 0; o < nout; o++) {
        unravel(o, osh, ond, idx);
        for (int64_t r = 0; r < n; r++) v[r] = run_elem(x, dim, idx, r);
        td_set(out, idx, reduce_vals(v, n, kind));
    }
    free(v);
    return out;
}

/* calls fn on every line along dim: in = values, out = results (same length n) */
static td_tensor *per_line(const td_tensor *x, int dim, void (*fn)(double *, int64_t, bool),
                           bool flag) {
    td_tensor *out = td_empty(x->shape, x->ndim, TD_FLOAT64);
    int64_t osh[TD_MAX_DIMS], oidx[TD_MAX_DIMS], idx[TD_MAX_DIMS], n = x->ndim ? x->shape[dim] : 1;
    int ond = 0;
    for (int i = 0; i < x->ndim; i++)
        if (i != dim) osh[ond++] = x->shape[i];
    int64_t lines = 1;
    for (int i = 0; i < ond; i++) lines *= osh[i];
    double *v = malloc(sizeof(double) * (size_t)(n + 1));
    for (int64_t o = 0; o < lines; o++) {
        unravel(o, osh, ond, oidx);
        for (int64_t r = 0; r < n; r++) v[r] = x->ndim ? run_elem(x, dim, oidx, r) : td_item(x);
        fn(v, n, flag);
        for (int64_t r = 0; r < n; r++) {
            for (int i = 0, j = 0; i < x->ndim; i++) idx[i] = i == dim ? r : oidx[j++];
            td_set(out, idx, v[r]);
        }
    }
    free(v);
    return out;
}

static void cumsum_line(double *v, int64_t n, bool unused) {
    (void)unused;
    for (int64_t j = 1; j < n; j++) v[j] += v[j - 1];
}

static void softmax_line(double *v, int64_t n, bool log_) {
    double m = -INFINITY, s = 0;
    for (int64_t j = 0; j < n; j++) m = v[j] > m ? v[j] : m;
    for (int64_t j = 0; j < n; j++) s += exp(v[j] - m);
    for (int64_t j = 0; j < n; j++) v[j] = log_ ? v[j] - m - log(s) : exp(v[j] - m) / s;
}

td_tensor *ref_cumsum(const td_tensor *x, int dim) {
    return per_line(x, dim, cumsum_line, false);
}

td_tensor *ref_softmax(const td_tensor *x, int dim, bool log_) {
    return per_line(x, dim, softmax_line, log_);
}

td_tensor *ref_matmul(const td_tensor *a, const td_tensor *b) {
    int ad = a->ndim, bd = b->ndim;
    int64_t K = a->shape[ad - 1];
    int64_t M = ad > 1 ? a->shape[ad - 2] : 1, N = bd > 1 ? b->shape[bd - 1] : 1;
    int na = ad > 2 ? ad - 2 : 0, nb = bd > 2 ? bd - 2 : 0, nbat = na > nb ? na : nb;
    int64_t bsh[TD_MAX_DIMS], osh[TD_MAX_DIMS], bi[TD_MAX_DIMS], ia[TD_MAX_DIMS], ib[TD_MAX_DIMS],
        io[TD_MAX_DIMS];
    for (int i = 0; i < nbat; i++) {
        int j = i - (nbat - na), k = i - (nbat - nb);
        int64_t sa = j >= 0 ? a->shape[j] : 1, sb = k >= 0 ? b->shape[k] : 1;
        bsh[i] = sa == 1 ? sb : sa;
    }
    int ond = nbat;
    memcpy(osh, bsh, sizeof(int64_t) * (size_t)nbat);
    if (ad > 1) osh[ond++] = M;
    if (bd > 1) osh[ond++] = N;
    td_tensor *out = td_zeros(osh, ond, TD_FLOAT64);
    int64_t nbatch = 1;
    for (int i = 0; i < nbat; i++) nbatch *= bsh[i];
    for (int64_t t = 0; t < nbatch; t++) {
        unravel(t, bsh, nbat, bi);
        for (int i = 0; i < na; i++) ia[i] = a->shape[i] == 1 ? 0 : bi[i + nbat - na];
        for (int i = 0; i < nb; i++) ib[i] = b->shape[i] == 1 ? 0 : bi[i + nbat - nb];
        for (int64_t m = 0; m < M; m++)
            for (int64_t n = 0; n < N; n++) {
                double s = 0;
                for (int64_t k = 0; k < K; k++) {
                    if (ad > 1)
                        ia[na] = m, ia[na + 1] = k;
                    else
                        ia[0] = k;
                    if (bd > 1)
                        ib[nb] = k, ib[nb + 1] = n;
                    else
                        ib[0] = k;
                    s += td_get(a, ia) * td_get(b, ib);
                }
                memcpy(io, bi, sizeof(int64_t) * (size_t)nbat);
                int q = nbat;
                if (ad > 1) io[q++] = m;
                if (bd > 1) io[q++] = n;
                td_set(out, io, s);
            }
    }
    return out;
}

/* sum(op(in)[0] * w) with grad mode off */
static double loss(const td_op *op, td_tensor **in, int nin, const td_args *a, const td_tensor *w) {
    td_tensor *out[TD_MAX_OUT] = {0};
    int k = td_run(op, in, nin, a, out);
    if (k < 0) return NAN;
    double s = 0;
    int64_t n = td_numel(out[0]), idx[TD_MAX_DIMS];
    for (int64_t o = 0; o < n; o++) {
        unravel(o, out[0]->shape, out[0]->ndim, idx);
        s += td_get(out[0], idx) * td_get(w, idx);
    }
    for (int i = 0; i < k; i++) td_release(out[i]);
    return s;
}

double ref_gradcheck(const td_op *op, td_tensor **in, int nin, const td_args *a) {
    const double eps = 1e-6;
    bool prev = td_set_grad_enabled(true);
    for (int i = 0; i < nin; i++) in[i]->requires_grad = td_dtype_is_float(in[i]->dtype);
    td_tensor *out[TD_MAX_OUT] = {0}, *gin[TD_ITER_MAX] = {0};
    int k = td_run(op, in, nin, a, out);
    td_set_grad_enabled(false);
    double err = INFINITY;
    if (k < 0 || !out[0]->grad_fn) goto done;
    td_node *node = out[0]->grad_fn;
    td_tensor *w = ref_rand(out[0]->shape, out[0]->ndim, TD_FLOAT64, L_CONTIG, -1, 1);
    td_tensor *gout[TD_MAX_OUT] = {w, NULL};
    if (node->op->backward(node, gout, gin) < 0) {
        td_release(w);
        goto done;
    }
    err = 0;
    for (int i = 0; i < nin; i++) {
        if (!in[i]->requires_grad) continue;
        td_tensor *g = gin[i] ? td_sum_to(gin[i], in[i]->shape, in[i]->ndim) : NULL;
        if (!g) {
            err = INFINITY;
            continue;
        }
        int64_t n = td_numel(in[i]), idx[TD_MAX_DIMS];
        for (int64_t o = 0; o < n; o++) {
            unravel(o, in[i]->shape, in[i]->ndim, idx);
            double x0 = td_get(in[i], idx);
            td_set(in[i], idx, x0 + eps);
            double lp = loss(op, in, nin, a, w);
            td_set(in[i], idx, x0 - eps);
            double lm = loss(op, in, nin, a, w);
            td_set(in[i], idx, x0);
            double d = fabs((lp - lm) / (2 * eps) - td_get(g, idx));
            if (!(d <= err)) err = d;
        }
        td_release(g);
    }
    td_release(w);
done:
    for (int i = 0; i < TD_ITER_MAX; i++) td_release(gin[i]);
    for (int i = 0; i < TD_MAX_OUT; i++) td_release(out[i]);
    for (int i = 0; i < nin; i++) in[i]->requires_grad = false;
    td_set_grad_enabled(prev);
    return err;
}
