/* tensor/ops/loss.c: cross_entropy (fused log-softmax + NLL) and nll_loss over class targets,
 * plus the reduction helpers of nn.h. Sizes: logits are N x C x S (S = the product of the dims
 * after the classes, 1 for N x C; a 1-D input is one sample of C classes), R = N*S samples.
 * Class targets are int64 1..C of the logits' shape without dim 2; cross_entropy also takes
 * float probabilities of the logits' shape. args: mode = reduction, c = label smoothing,
 * flag = ignore_index given, index = that (1-based) class. */
#include "nn.h"
#include "vexp.h"

#include <string.h>
#include <tgmath.h>

#define EXP_f32 td_vexpf
#define EXP_f64 exp

/* sum of e^(x_c - m) over a row of C classes st apart, storing each in p[c st] (p may be
 * NULL). float32: contiguous rows go through the vector exp in multiples of 16 and the tail
 * (or a strided row) through a buffer padded with -inf, so a row of 10 classes is one vector
 * and no scalar remainder; float64 uses libm. */
static float exp_row_f32(const float *x, int64_t st, int64_t C, float m, float *p) {
    float buf[256] __attribute__((aligned(64))), sum = 0;
    int64_t c0 = st == 1 ? C & ~(int64_t)15 : 0;
    if (p) {
#pragma omp simd reduction(+ : sum)
        for (int64_t c = 0; c < c0; c++) {
            float v = td_vexpf(x[c] - m);
            p[c] = v;
            sum += v;
        }
    } else {
#pragma omp simd reduction(+ : sum)
        for (int64_t c = 0; c < c0; c++) sum += td_vexpf(x[c] - m);
    }
    for (; c0 < C; c0 += 256) {
        int64_t nb = C - c0 < 256 ? C - c0 : 256, np = (nb + 15) & ~(int64_t)15;
        for (int64_t k = 0; k < nb; k++) buf[k] = x[(c0 + k) * st] - m;
        for (int64_t k = nb; k < np; k++) buf[k] = -INFINITY; /* e^-inf = 0 adds nothing */
#pragma omp simd reduction(+ : sum)
        for (int64_t k = 0; k < np; k++) {
            buf[k] = td_vexpf(buf[k]);
            sum += buf[k];
        }
        if (p)
            for (int64_t k = 0; k < nb; k++) p[(c0 + k) * st] = buf[k];
    }
    return sum;
}

static double exp_row_f64(const double *x, int64_t st, int64_t C, double m, double *p) {
    double sum = 0;
    for (int64_t c = 0; c < C; c++) {
        double v = exp(x[c * st] - m);
        if (p) p[c * st] = v;
        sum += v;
    }
    return sum;
}

/* ---- helpers of nn.h ---------------------------------------------------------------------- */
td_tensor *td_dense_as(td_tensor *t, td_dtype dt) {
    td_tensor *a = td_to_dtype(t, dt);
    if (!a) return NULL;
    td_tensor *c = td_contiguous(a);
    td_release(a);
    return c;
}

void td_loss_meta(td_node *n, const int64_t *shape, int ndim, td_dtype dt) {
    td_meta *m = &n->meta[0];
    m->ndim = n->args.mode == TD_REDUCE_NONE ? ndim : 0;
    if (m->ndim) memcpy(m->shape, shape, sizeof(int64_t) * (size_t)ndim);
    m->dtype = dt;
}

void td_loss_store(td_tensor *out, double v) {
    if (out->dtype == TD_FLOAT32) *(float *)td_data(out) = (float)v;
    else *(double *)td_data(out) = v;
}

int td_lossgrad_init(td_lossgrad *lg, td_tensor *gout, td_dtype dt, double den, td_tensor **keep) {
    *keep = NULL;
    lg->g = NULL;
    lg->g0 = 0;
    if (td_numel(gout) != 1 || gout->ndim > 0) { /* reduction none: one gradient per sample */
        if (!(*keep = td_dense_as(gout, dt))) return -1;
        lg->g = td_data(*keep);
        return 0;
    }
    lg->g0 = td_item(gout) / den;
    return 0;
}

const char *td_reduction_name(int mode) {
    static const char *const names[] = {"mean", "sum", "none", "batchmean"};
    return mode >= 0 && mode < 4 ? names[mode] : "?";
}

/* ---- class targets ------------------------------------------------------------------------ */
typedef struct layout {
    int64_t N, C, S;
    bool probs; /* float probability targets (cross_entropy only) */
} layout;

/* Checks logits and target, fills lay and the per-sample shape (logits without dim 2). */
static int class_shape(td_node *n, layout *lay, int64_t *shape, int *ndim) {
    const char *fn = n->op->name;
    td_tensor *x = n->in[0], *t = n->in[1];
    bool ce = n->op == &td_op_cross_entropy;
    char s1[128], s2[128], s3[128];
    if (!td_dtype_is_float(x->dtype))
        return td_error("%s: expected float %s, got %s", fn, ce ? "logits" : "log-probabilities",
                        td_dtype_name(x->dtype));
    if (x->ndim < 1)
        return td_error("%s: expected an input of shape C, N x C or N x C x ..., got a scalar", fn);
    lay->probs = ce && td_dtype_is_float(t->dtype);
    if (t->dtype != TD_INT64 && !lay->probs)
        return td_error(ce ? "%s: expected int64 class targets or float probabilities, got %s"
                           : "%s: expected int64 class targets, got %s",
                        fn, td_dtype_name(t->dtype));
    int cd = x->ndim == 1 ? 0 : 1; /* the class dim */
    lay->N = cd ? x->shape[0] : 1, lay->C = x->shape[cd], lay->S = 1;
    for (int i = 2; i < x->ndim; i++) lay->S *= x->shape[i];
    *ndim = 0;
    for (int i = 0; i < x->ndim; i++)
        if (i != cd) shape[(*ndim)++] = x->shape[i];
    if (lay->C < 1)
        return td_error("%s: expected at least 1 class, got input of shape %s", fn,
                        td_shape_str(x->shape, x->ndim, s1, sizeof s1));
    bool same = lay->probs ? t->ndim == x->ndim && !memcmp(t->shape, x->shape, sizeof(int64_t) *
                                                                               (size_t)x->ndim)
                           : t->ndim == *ndim &&
                                 !memcmp(t->shape, shape, sizeof(int64_t) * (size_t)*ndim);
    if (!same && lay->probs && t->ndim == *ndim &&
        !memcmp(t->shape, shape, sizeof(int64_t) * (size_t)*ndim)) /* float class labels */
        return td_error("%s: target is %s of shape %s for input %s: class indices must be int64 "
                        "(or the target probabilities of shape %s)",
                        fn, td_dtype_name(t->dtype), td_shape_str(t->shape, t->ndim, s1, sizeof s1),
                        td_shape_str(x->shape, x->ndim, s2, sizeof s2), s2);
    if (!same)
        return td_error("%s: target shape %s does not match input %s (expected %s %s)", fn,
                        td_shape_str(t->shape, t->ndim, s1, sizeof s1),
                        td_shape_str(x->shape, x->ndim, s2, sizeof s2),
                        lay->probs ? "probabilities of shape" : "class indices of shape",
                        lay->probs ? s2 : td_shape_str(shape, *ndim, s3, sizeof s3));
    if (lay->probs && n->args.flag)
        return td_error("%s: ignore_index is not supported for probability targets", fn);
    if (!(n->args.c >= 0 && n->args.c <= 1))
        return td_error("%s: label_smoothing must be in [0, 1], got %g", fn, n->args.c);
    if (n->args.mode != TD_REDUCE_MEAN && n->args.mode != TD_REDUCE_SUM &&
        n->args.mode != TD_REDUCE_NONE)
        return td_error("%s: reduction must be 'mean', 'sum' or 'none', got '%s'", fn,
                        td_reduction_name(n->args.mode));
    return 0;
}

/* 0-based classes of the R targets (-1 for ignored ones) in tz, their count of kept ones in
 * *kept; -1 + an error naming the first target out of 1..C */
static int class_targets(const td_node *n, const layout *lay, int64_t *tz, int64_t *kept) {
    td_tensor *t = td_dense_as(n->in[1], TD_INT64);
    if (!t) return -1;
    const int64_t *tv = td_data(t);
    int64_t R = lay->N * lay->S, k = 0;
    for (int64_t i = 0; i < R; i++) {
        if (n->args.flag && tv[i] == n->args.index) {
            tz[i] = -1;
            continue;
        }
        if (tv[i] < 1 || tv[i] > lay->C) {
            td_error("%s: target class %lld out of range 1..%lld (target %lld)", n->op->name,
                     (long long)tv[i], (long long)lay->C, (long long)(i + 1));
            td_release(t);
            return -1;
        }
        tz[i] = tv[i] - 1, k++;
    }
    td_release(t);
    *kept = k;
    return 0;
}

static int layout_of(td_node *n, layout *lay) {
    int64_t shape[TD_MAX_DIMS];
    int nd;
    return class_shape(n, lay, shape, &nd);
}

/* ---- cross_entropy ------------------------------------------------------------------------- */
/* ctx: a header, lse[R], then the softmax probabilities (logits' layout) when x needs grad */
typedef struct cectx {
    double den;  /* what mean divides by: kept targets (classes) or R (probabilities) */
    bool saved;  /* probabilities saved */
} cectx;

#define BLK 1024 /* elements per unit of short rows (ce_block) */

typedef struct cejob {
    const void *x, *q;  /* logits; probability targets or NULL */
    const int64_t *tz;  /* 0-based classes (-1 ignored) or NULL */
    void *p, *gx, *gq;  /* saved probabilities; gradients */
    double *loss, *lse; /* [R] */
    td_lossgrad lg;
    int64_t C, S, R, rb; /* rb: rows per ce_block unit */
    double eps;          /* label smoothing */
} cejob;

/* One unit is one n (S samples, each C classes S apart). Forward: lse = max + log(sum(exp(x -
 * max))), loss = sum_c q_c (lse - x_c) with q = (1 - eps) onehot(t) + eps/C (or the smoothed
 * probabilities); backward: dx = G (p sum(q) - q), dq = G (1 - eps) (lse - x). */
#define CE(sfx, T)                                                                                 \
    static inline double ce_loss_##sfx(const cejob *j, int64_t i, const T *x, int64_t st, T lse); \
    static inline double ce_sample_##sfx(const cejob *j, int64_t i, const T *x, int64_t st,       \
                                         T *p) {                                                   \
        int64_t C = j->C;                                                                          \
        T m = x[0], sum;                                                                           \
        _Pragma("omp simd reduction(max : m)") for (int64_t c = 1; c < C; c++) m =                 \
            x[c * st] > m ? x[c * st] : m;                                                         \
        sum = exp_row_##sfx(x, st, C, m, p);                                                       \
        if (p) {                                                                                   \
            T inv = 1 / sum;                                                                       \
            _Pragma("omp simd") for (int64_t c = 0; c < C; c++) p[c * st] *= inv;                  \
        }                                                                                          \
        T lse = m + log(sum);                                                                      \
        j->lse[i] = (double)lse;                                                                   \
        return ce_loss_##sfx(j, i, x, st, lse);                                                    \
    }                                                                                              \
    /* the loss of sample i from its logits x (st apart) and lse */                                \
    static inline double ce_loss_##sfx(const cejob *j, int64_t i, const T *x, int64_t st, T lse) { \
        int64_t C = j->C, t = j->tz ? j->tz[i] : 0;                                                \
        T e = (T)j->eps, ec = e / (T)C, l = 0;                                                     \
        if (j->q) {                                                                                \
            const T *q = (const T *)j->q + (x - (const T *)j->x);                                  \
            _Pragma("omp simd reduction(+ : l)") for (int64_t c = 0; c < C; c++) l +=              \
                (q[c * st] * (1 - e) + ec) * (lse - x[c * st]);                                    \
        } else if (t >= 0) {                                                                       \
            l = (1 - e) * (lse - x[t * st]);                                                       \
            if (e > 0) {                                                                           \
                T sx = 0;                                                                          \
                _Pragma("omp simd reduction(+ : sx)") for (int64_t c = 0; c < C; c++) sx +=        \
                    x[c * st];                                                                     \
                l += ec * ((T)C * lse - sx);                                                       \
            }                                                                                      \
        }                                                                                          \
        return (double)l;                                                                          \
    }                                                                                              \
    static inline void ce_grad_##sfx(const cejob *j, int64_t i, int64_t off, int64_t st) {        \
        int64_t C = j->C, t = j->tz ? j->tz[i] : 0;                                                \
        const T *x = (const T *)j->x + off, *p = (const T *)j->p + off;                            \
        const T *q = j->q ? (const T *)j->q + off : NULL;                                          \
        T e = (T)j->eps, ec = e / (T)C, lse = (T)j->lse[i];                                        \
        T G = t < 0 ? 0 : j->lg.g ? ((const T *)j->lg.g)[i] : (T)j->lg.g0; /* t < 0: ignored */   \
        if (j->gq) {                                                                               \
            T *gq = (T *)j->gq + off, k = G * (1 - e);                                             \
            _Pragma("omp simd") for (int64_t c = 0; c < C; c++) gq[c * st] = k * (lse - x[c * st]); \
        }                                                                                          \
        if (!j->gx) return;                                                                        \
        T *gx = (T *)j->gx + off, Q = 0;                                                           \
        if (q) {                                                                                   \
            _Pragma("omp simd reduction(+ : Q)") for (int64_t c = 0; c < C; c++) Q +=              \
                q[c * st] * (1 - e) + ec;                                                          \
            _Pragma("omp simd") for (int64_t c = 0; c < C; c++) gx[c * st] =                       \
                G * (p[c * st] * Q - (q[c * st] * (1 - e) + ec));                                  \
        } else {                                                                                   \
            _Pragma("omp simd") for (int64_t c = 0; c < C; c++) gx[c * st] = G * (p[c * st] - ec);  \
            if (t >= 0) gx[t * st] -= G * (1 - e);                                                 \
        }                                                                                          \
    }                                                                                              \
    static void ce_fwd_##sfx(void *vj, int64_t n) {                                                \
        const cejob *j = vj;                                                                       \
        int64_t C = j->C, S = j->S;                                                                \
        for (int64_t s = 0; s < S; s++) {                                                          \
            int64_t off = n * C * S + s, i = n * S + s;                                            \
            T *p = j->p ? (T *)j->p + off : NULL;                                                  \
            j->loss[i] = S == 1 ? ce_sample_##sfx(j, i, (const T *)j->x + off, 1, p)               \
                                : ce_sample_##sfx(j, i, (const T *)j->x + off, S, p);              \
        }                                                                                          \
    }                                                                                              \
    /* rows [u RB, (u + 1) RB) of C <= BLK classes (S = 1): the exps of the whole block go       \
     * through one vector loop, which keeps short rows (C = 10) throughput- not latency-bound */   \
    static void ce_block_##sfx(void *vj, int64_t u) {                                              \
        const cejob *j = vj;                                                                       \
        int64_t C = j->C, r0 = u * j->rb, r1 = r0 + j->rb < j->R ? r0 + j->rb : j->R;              \
        const T *x = (const T *)j->x + r0 * C;                                                     \
        T scratch[BLK], *b = j->p ? (T *)j->p + r0 * C : scratch, m[BLK];                          \
        int64_t nr = r1 - r0, n = nr * C;                                                          \
        for (int64_t r = 0; r < nr; r++) {                                                         \
            const T *xr = x + r * C;                                                               \
            T mr = xr[0];                                                                          \
            if (C < 16) /* a vector loop would be all remainder */                                 \
                for (int64_t c = 1; c < C; c++) mr = xr[c] > mr ? xr[c] : mr;                      \
            else                                                                                   \
                _Pragma("omp simd reduction(max : mr)") for (int64_t c = 1; c < C; c++) mr =       \
                    xr[c] > mr ? xr[c] : mr;                                                       \
            m[r] = mr;                                                                             \
            for (int64_t c = 0; c < C; c++) b[r * C + c] = xr[c] - mr;                             \
        }                                                                                          \
        _Pragma("omp simd") for (int64_t k = 0; k < n; k++) b[k] = EXP_##sfx(b[k]);                \
        for (int64_t r = 0; r < nr; r++) {                                                         \
            T *br = b + r * C, sum = 0;                                                            \
            if (C < 16)                                                                            \
                for (int64_t c = 0; c < C; c++) sum += br[c];                                      \
            else                                                                                   \
                _Pragma("omp simd reduction(+ : sum)") for (int64_t c = 0; c < C; c++) sum +=      \
                    br[c];                                                                         \
            T lse = m[r] + log(sum), inv = 1 / sum;                                                \
            if (j->p)                                                                              \
                for (int64_t c = 0; c < C; c++) br[c] *= inv;                                      \
            j->lse[r0 + r] = (double)lse;                                                          \
            j->loss[r0 + r] = ce_loss_##sfx(j, r0 + r, x + r * C, 1, lse);                         \
        }                                                                                          \
    }                                                                                              \
    static void ce_bwd_##sfx(void *vj, int64_t n) {                                                \
        const cejob *j = vj;                                                                       \
        int64_t C = j->C, S = j->S;                                                                \
        if (S == 1) ce_grad_##sfx(j, n, n * C, 1); /* contiguous rows vectorise */                 \
        else                                                                                       \
            for (int64_t s = 0; s < S; s++) ce_grad_##sfx(j, n * S + s, n * C * S + s, S);         \
    }                                                                                              \
    static void ce_probs_##sfx(void *vj, int64_t n) { /* p = exp(x - lse) when not saved */        \
        const cejob *j = vj;                                                                       \
        int64_t C = j->C, S = j->S;                                                                \
        for (int64_t c = 0; c < C; c++)                                                            \
            for (int64_t s = 0; s < S; s++) {                                                      \
                int64_t o = (n * C + c) * S + s;                                                   \
                ((T *)j->p)[o] = EXP_##sfx(((const T *)j->x)[o] - (T)j->lse[n * S + s]);           \
            }                                                                                      \
    }
CE(f32, float)
CE(f64, double)

static int cross_entropy_shape(td_node *n) {
    layout lay;
    int64_t shape[TD_MAX_DIMS];
    int nd;
    if (class_shape(n, &lay, shape, &nd) < 0) return -1;
    td_loss_meta(n, shape, nd, n->in[0]->dtype);
    return 0;
}

static size_t ce_ctx_size(int64_t R, int64_t numel, td_dtype dt, bool save) {
    return sizeof(cectx) + sizeof(double) * (size_t)R +
           (save ? td_dtype_size(dt) * (size_t)numel : 0);
}

static int cross_entropy_forward(td_node *n) {
    layout lay;
    layout_of(n, &lay);
    td_tensor *y = n->out[0];
    td_dtype dt = y->dtype;
    int64_t R = lay.N * lay.S, numel = R * lay.C, kept = R;
    bool save = td_grad_enabled() && n->in[0]->requires_grad;
    td_tensor *x = td_dense_as(n->in[0], dt), *q = lay.probs ? td_dense_as(n->in[1], dt) : NULL;
    int64_t *tz = lay.probs ? NULL : td_malloc(sizeof(int64_t) * (size_t)(R + 1));
    double *loss = td_malloc(sizeof(double) * (size_t)(R + 1));
    cectx *h = n->ctx = td_malloc(ce_ctx_size(R, numel, dt, save));
    int rc = -1;
    if (!x || (lay.probs ? !q : !tz) || !loss || !h) goto done;
    if (tz && class_targets(n, &lay, tz, &kept) < 0) goto done;
    double *lse = (double *)(h + 1);
    cejob j = {.x = td_data(x), .q = q ? td_data(q) : NULL, .tz = tz,
               .p = save ? (void *)(lse + R) : NULL, .loss = loss, .lse = lse, .C = lay.C,
               .S = lay.S, .eps = n->args.c};
    h->saved = save;
    h->den = (double)kept;
    bool f32 = dt == TD_FLOAT32;
    if (lay.S == 1 && lay.C <= BLK) {
        j.R = R, j.rb = BLK / lay.C;
        td_run_units((R + j.rb - 1) / j.rb, numel, f32 ? ce_block_f32 : ce_block_f64, &j);
    } else {
        td_run_units(lay.N, numel, f32 ? ce_fwd_f32 : ce_fwd_f64, &j);
    }
    if (td_poll_interrupt() < 0) goto done;
    if (n->args.mode == TD_REDUCE_NONE) {
        for (int64_t i = 0; i < R; i++) {
            if (dt == TD_FLOAT32) ((float *)td_data(y))[i] = (float)loss[i];
            else ((double *)td_data(y))[i] = loss[i];
        }
    } else {
        double tot = 0;
        for (int64_t i = 0; i < R; i++) tot += loss[i];
        td_loss_store(y, n->args.mode == TD_REDUCE_MEAN ? tot / h->den : tot);
    }
    rc = 0;
done:
    td_release(x), td_release(q);
    td_free(tz), td_free(loss);
    return rc;
}

static int cross_entropy_backward(td_node *n, td_tensor *const *gout, td_tensor **gin) {
    layout lay;
    layout_of(n, &lay);
    td_dtype dt = n->in[0]->dtype;
    cectx *h = n->ctx;
    int64_t R = lay.N * lay.S, numel = R * lay.C, kept;
    double *lse = (double *)(h + 1);
    bool gq = lay.probs && n->needs_grad[1];
    td_tensor *x = td_dense_as(n->in[0], dt), *q = lay.probs ? td_dense_as(n->in[1], dt) : NULL;
    td_tensor *g = NULL, *p = NULL;
    int64_t *tz = lay.probs ? NULL : td_malloc(sizeof(int64_t) * (size_t)(R + 1));
    int rc = -1;
    if (!x || (lay.probs ? !q : !tz)) goto done;
    if (tz && class_targets(n, &lay, tz, &kept) < 0) goto done;
    cejob j = {.x = td_data(x), .q = q ? td_data(q) : NULL, .tz = tz, .lse = lse, .C = lay.C,
               .S = lay.S, .eps = n->args.c};
    double den = n->args.mode == TD_REDUCE_MEAN ? h->den : 1;
    if (td_lossgrad_init(&j.lg, gout[0], dt, den, &g) < 0) goto done;
    bool f32 = dt == TD_FLOAT32;
    if (n->needs_grad[0]) {
        if (!(gin[0] = td_empty(x->shape, x->ndim, dt))) goto done;
        j.gx = td_data(gin[0]);
        if (h->saved) {
            j.p = lse + R;
        } else { /* recorded without saving (grad mode changed under us): recompute */
            if (!(p = td_empty(x->shape, x->ndim, dt))) goto done;
            j.p = td_data(p);
            td_run_units(lay.N, numel, f32 ? ce_probs_f32 : ce_probs_f64, &j);
        }
    }
    if (gq) {
        if (!(gin[1] = td_empty(x->shape, x->ndim, dt))) goto done;
        j.gq = td_data(gin[1]);
    }
    td_run_units(lay.N, numel, f32 ? ce_bwd_f32 : ce_bwd_f64, &j);
    rc = td_poll_interrupt();
done:
    td_release(x), td_release(q), td_release(g), td_release(p);
    td_free(tz);
    return rc;
}

const td_op td_op_cross_entropy = {
    .name = "cross_entropy",
    .nin = 2,
    .doc = "log-softmax over dim 2 (the classes) and negative log-likelihood of the targets "
           "(int64 classes 1..C or probabilities), with label smoothing",
    .shape = cross_entropy_shape,
    .forward = cross_entropy_forward,
    .backward = cross_entropy_backward,
};

/* ---- nll_loss ------------------------------------------------------------------------------ */
/* loss = -x[t] per sample (0 when ignored); dx = -G at the target, 0 elsewhere. */
static double logp_at(const td_tensor *x, const layout *lay, int64_t i, int64_t t) {
    int64_t o = (i / lay->S * lay->C + t) * lay->S + i % lay->S;
    return x->dtype == TD_FLOAT32 ? (double)((const float *)td_data(x))[o]
                                  : ((const double *)td_data(x))[o];
}

static int nll_loss_forward(td_node *n) {
    layout lay;
    layout_of(n, &lay);
    td_tensor *y = n->out[0], *x = td_dense_as(n->in[0], y->dtype);
    int64_t R = lay.N * lay.S, kept;
    int64_t *tz = td_malloc(sizeof(int64_t) * (size_t)(R + 1));
    int rc = -1;
    if (!x || !tz || class_targets(n, &lay, tz, &kept) < 0) goto done;
    double tot = 0;
    for (int64_t i = 0; i < R; i++) {
        double l = tz[i] < 0 ? 0 : -logp_at(x, &lay, i, tz[i]);
        if (n->args.mode != TD_REDUCE_NONE) tot += l;
        else if (y->dtype == TD_FLOAT32) ((float *)td_data(y))[i] = (float)l;
        else ((double *)td_data(y))[i] = l;
    }
    if (n->args.mode != TD_REDUCE_NONE)
        td_loss_store(y, n->args.mode == TD_REDUCE_MEAN ? tot / (double)kept : tot);
    rc = 0;
done:
    td_release(x);
    td_free(tz);
    return rc;
}

static int nll_loss_backward(td_node *n, td_tensor *const *gout, td_tensor **gin) {
    layout lay;
    layout_of(n, &lay);
    td_dtype dt = n->in[0]->dtype;
    int64_t R = lay.N * lay.S, kept;
    int64_t *tz = td_malloc(sizeof(int64_t) * (size_t)(R + 1));
    td_tensor *g = NULL, *gx = td_zeros(n->in[0]->shape, n->in[0]->ndim, dt);
    td_lossgrad lg;
    int rc = -1;
    if (!tz || !gx || class_targets(n, &lay, tz, &kept) < 0) goto done;
    double den = n->args.mode == TD_REDUCE_MEAN ? (double)kept : 1;
    if (td_lossgrad_init(&lg, gout[0], dt, den, &g) < 0) goto done;
    for (int64_t i = 0; i < R; i++) {
        if (tz[i] < 0) continue;
        int64_t o = (i / lay.S * lay.C + tz[i]) * lay.S + i % lay.S;
        if (dt == TD_FLOAT32)
            ((float *)td_data(gx))[o] = -(lg.g ? ((const float *)lg.g)[i] : (float)lg.g0);
        else
            ((double *)td_data(gx))[o] = -(lg.g ? ((const double *)lg.g)[i] : lg.g0);
    }
    gin[0] = gx, gx = NULL, rc = 0;
done:
    td_release(g), td_release(gx);
    td_free(tz);
    return rc;
}

const td_op td_op_nll_loss = {
    .name = "nll_loss",
    .nin = 2,
    .doc = "negative log-likelihood: minus the log-probability (dim 2) of each int64 target "
           "class 1..C",
    .shape = cross_entropy_shape,
    .forward = nll_loss_forward,
    .backward = nll_loss_backward,
};
