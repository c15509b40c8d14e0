/* tensor/ops/attention.c: scaled_dot_product_attention, fused: O = D(P) v with
 * P = softmax(scale q k^T + mask) and D an optional dropout, per batch entry, on BLAS.
 * Sizes: q is ... x L x E, k ... x S x E, v ... x S x Ev, mask broadcasts to ... x L x S; the
 * batch dims "..." (nb entries in all) broadcast between q, k, v and mask. Inputs {q, k, v,
 * mask if given}; args.a = scale (args.has_a, else 1/sqrt(E)), args.flag = causal (query i sees
 * keys 1..i, cut in the row loop: no mask tensor), args.b = dropout probability.
 * Outputs: O (... x L x Ev) and the weights D(P) (... x L x S), which backward reads: saving P
 * costs nb L S values, the size of the scores the composed ops kept too, and spares backward a
 * third GEMM and a softmax per entry (recomputing, as FlashAttention does, pays where memory
 * bandwidth is the limit; here at L = S = 64 the GEMMs are the cost). With dropout, the
 * undropped P and the keep mask also go to n->ctx when a gradient will be needed. */
#include "nn.h"
#include "vexp.h"

#include <cblas.h>
#include <limits.h>
#include <math.h>
#include <string.h>

enum { IQ, IK, IV, IM }; /* input positions */

typedef struct att {                  /* where everything is, per batch entry */
    int nbd;                          /* batch dims */
    int64_t bsh[TD_MAX_DIMS];         /* broadcast batch shape */
    int64_t bst[4][TD_MAX_DIMS];      /* elements between batch entries, 0 where broadcast */
    int64_t rs[4], cs[4];             /* row and column strides (mask: any; q k v: cs 1) */
    int64_t L, S, E, Ev, nb;
    double scale, keep;               /* softmax scale; dropout 1/(1-p), 0 when p = 1 */
    bool causal, has_mask, mask_bool;
    const char *p[4];                 /* element 0 of q, k, v, mask (prepared copies) */
    char *o, *w;                      /* outputs: O, weights D(P) */
    char *praw;                       /* P before dropout (ctx), or NULL */
    const uint8_t *keepm;             /* dropout keep bytes (nb L S), or NULL */
    /* backward */
    const char *go, *gw;              /* gradients of O and of the weights (dense), or NULL */
    char *gq, *gk, *gv, *gm, *ds;     /* gradients (dense, broadcast batch), scratch dS */
} att;

typedef struct drop_ctx { /* n->ctx with dropout: P before dropout, then the keep bytes */
    int64_t n;            /* elements of P */
    int64_t pad;          /* keeps the values that follow 16-byte aligned */
} drop_ctx;

static void offsets(const att *a, int64_t b, int64_t *off) { /* off[4]: entry b of each */
    off[0] = off[1] = off[2] = off[3] = 0;
    for (int d = a->nbd - 1; d >= 0; d--) {
        int64_t i = b % a->bsh[d];
        b /= a->bsh[d];
        for (int t = 0; t < 4; t++) off[t] += i * a->bst[t][d];
    }
}

/* C (M x N, row stride ldc) = alpha op(A) op(B); K == 0 gives zeros (BLAS is not asked) */
#define GEMM(sfx, T, blas)                                                                         \
    static void gemm_##sfx(bool ta, bool tb, int64_t M, int64_t N, int64_t K, double alpha,        \
                           const T *A, int64_t lda, const T *B, int64_t ldb, T *C, int64_t ldc) {  \
        if (M == 0 || N == 0) return;                                                              \
        if (K == 0) {                                                                              \
            for (int64_t i = 0; i < M; i++) memset(C + i * ldc, 0, sizeof(T) * (size_t)N);         \
            return;                                                                                \
        }                                                                                          \
        blas(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,        \
             (blasint)M, (blasint)N, (blasint)K, (T)alpha, A, (blasint)lda, B, (blasint)ldb, 0,    \
             C, (blasint)ldc);                                                                     \
    }
GEMM(f32, float, cblas_sgemm)
GEMM(f64, double, cblas_dgemm)

#define EXP_f32 td_vexpf
#define EXP_f64 exp

/* Forward of entry b: P = scale q k^T (+ mask), row softmax over the first lim keys (lim = i + 1
 * when causal), dropout, O = D(P) v. Backward: dD = gO v^T + gW, dP = D'(dD),
 * dS = P (dP - sum(P dP)), gq = scale dS k, gk = scale dS^T q, gv = D(P)^T gO, gmask = dS. */
#define ATTENTION(sfx, T)                                                                          \
    static void fwd_##sfx(void *vj, int64_t b) {                                                   \
        const att *a = vj;                                                                         \
        int64_t off[4], L = a->L, S = a->S, E = a->E;                                              \
        offsets(a, b, off);                                                                        \
        const T *q = (const T *)a->p[IQ] + off[IQ], *k = (const T *)a->p[IK] + off[IK];                \
        const T *v = (const T *)a->p[IV] + off[IV];                                                  \
        T *w = (T *)a->w + b * L * S;                                                              \
        gemm_##sfx(false, true, L, S, E, a->scale, q, a->rs[IQ], k, a->rs[IK], w, S);                \
        for (int64_t i = 0; i < L; i++) {                                                          \
            T *row = w + i * S;                                                                    \
            int64_t lim = a->causal && i + 1 < S ? i + 1 : S;                                      \
            if (a->has_mask) {                                                                     \
                const char *m = a->p[IM] + (off[IM] + i * a->rs[IM]) *                       \
                                                 (a->mask_bool ? 1 : (int64_t)sizeof(T));          \
                int64_t ms = a->cs[IM];                                                          \
                if (a->mask_bool)                                                                  \
                    for (int64_t j = 0; j < lim; j++)                                              \
                        row[j] = m[j * ms] ? row[j] : (T)-INFINITY;                                \
                else                                                                               \
                    for (int64_t j = 0; j < lim; j++) row[j] += ((const T *)m)[j * ms];            \
            }                                                                                      \
            T mx = -INFINITY, tot = 0;                                                             \
            for (int64_t j = 0; j < lim; j++) mx = row[j] > mx ? row[j] : mx;                      \
            _Pragma("omp simd reduction(+ : tot)") for (int64_t j = 0; j < lim; j++) {             \
                T e = EXP_##sfx(row[j] - mx);                                                      \
                row[j] = e;                                                                        \
                tot += e;                                                                          \
            }                                                                                      \
            T inv = 1 / tot; /* a row with every key masked: 0/0, NaN, as in PyTorch */            \
            for (int64_t j = 0; j < lim; j++) row[j] *= inv;                                       \
            for (int64_t j = lim; j < S; j++) row[j] = 0;                                          \
        }                                                                                          \
        if (a->keepm) {                                                                            \
            const uint8_t *m = a->keepm + b * L * S;                                               \
            T keep = (T)a->keep;                                                                   \
            if (a->praw) memcpy((T *)a->praw + b * L * S, w, sizeof(T) * (size_t)(L * S));         \
            for (int64_t i = 0; i < L * S; i++) w[i] = m[i] ? w[i] * keep : 0;                     \
        }                                                                                          \
        gemm_##sfx(false, false, L, a->Ev, S, 1, w, S, v, a->rs[IV], (T *)a->o + b * L * a->Ev,    \
                   a->Ev);                                                                         \
    }                                                                                              \
    static void bwd_##sfx(void *vj, int64_t b) {                                                   \
        const att *a = vj;                                                                         \
        int64_t off[4], L = a->L, S = a->S, E = a->E, Ev = a->Ev;                                  \
        offsets(a, b, off);                                                                        \
        const T *q = (const T *)a->p[IQ] + off[IQ], *k = (const T *)a->p[IK] + off[IK];                \
        const T *v = (const T *)a->p[IV] + off[IV];                                                  \
        const T *w = (const T *)a->w + b * L * S;                                                  \
        const T *p = a->praw ? (const T *)a->praw + b * L * S : w;                                 \
        const T *go = a->go ? (const T *)a->go + b * L * Ev : NULL;                                \
        T *ds = (T *)a->ds + b * L * S;                                                            \
        if (go)                                                                                    \
            gemm_##sfx(false, true, L, S, Ev, 1, go, Ev, v, a->rs[IV], ds, S);                      \
        else                                                                                       \
            memset(ds, 0, sizeof(T) * (size_t)(L * S));                                            \
        if (a->gw) {                                                                               \
            const T *gw = (const T *)a->gw + b * L * S;                                            \
            for (int64_t i = 0; i < L * S; i++) ds[i] += gw[i];                                    \
        }                                                                                          \
        if (a->keepm) {                                                                            \
            const uint8_t *m = a->keepm + b * L * S;                                               \
            T keep = (T)a->keep;                                                                   \
            for (int64_t i = 0; i < L * S; i++) ds[i] = m[i] ? ds[i] * keep : 0;                   \
        }                                                                                          \
        for (int64_t i = 0; i < L; i++) {                                                          \
            T *d = ds + i * S, dot = 0;                                                            \
            const T *pr = p + i * S;                                                               \
            int64_t lim = a->causal && i + 1 < S ? i + 1 : S;                                      \
            _Pragma("omp simd reduction(+ : dot)") for (int64_t j = 0; j < lim; j++) dot +=        \
                pr[j] * d[j];                                                                      \
            for (int64_t j = 0; j < lim; j++) d[j] = pr[j] * (d[j] - dot);                         \
            for (int64_t j = lim; j < S; j++) d[j] = 0;                                            \
        }                                                                                          \
        if (a->gm) memcpy((T *)a->gm + b * L * S, ds, sizeof(T) * (size_t)(L * S));                \
        if (a->gq) gemm_##sfx(false, false, L, E, S, a->scale, ds, S, k, a->rs[IK],                 \
                              (T *)a->gq + b * L * E, E);                                          \
        if (a->gk) gemm_##sfx(true, false, S, E, L, a->scale, ds, S, q, a->rs[IQ],                  \
                              (T *)a->gk + b * S * E, E);                                          \
        if (a->gv && go)                                                                           \
            gemm_##sfx(true, false, S, Ev, L, 1, w, S, go, Ev, (T *)a->gv + b * S * Ev, Ev);       \
        else if (a->gv)                                                                            \
            memset((T *)a->gv + b * S * Ev, 0, sizeof(T) * (size_t)(S * Ev));                      \
    }
ATTENTION(f32, float)
ATTENTION(f64, double)

static const char *const NAMES[4] = {"q", "k", "v", "mask"};

/* the dtype everything computes in: q, k and v promoted (all float) */
static td_dtype work_dtype(const td_node *n) {
    return td_dtype_promote(td_dtype_promote(n->in[IQ]->dtype, n->in[IK]->dtype), n->in[IV]->dtype);
}

static int attention_shape(td_node *n) {
    const char *fn = n->op->name;
    char s[4][96];
    if (n->nin != 3 && n->nin != 4)
        return td_error("%s: expected q, k, v and an optional mask, got %d inputs", fn, n->nin);
    for (int i = 0; i < n->nin; i++) td_shape_str(n->in[i]->shape, n->in[i]->ndim, s[i], 96);
    for (int i = 0; i < 3; i++) {
        if (!td_dtype_is_float(n->in[i]->dtype))
            return td_error("%s: %s must be a float tensor, got %s (shape %s)", fn, NAMES[i],
                            td_dtype_name(n->in[i]->dtype), s[i]);
        if (n->in[i]->ndim < 2)
            return td_error("%s: %s must have at least 2 dims (... x len x features), got %s",
                            fn, NAMES[i], s[i]);
    }
    const td_tensor *q = n->in[IQ], *k = n->in[IK], *v = n->in[IV];
    int64_t L = q->shape[q->ndim - 2], E = q->shape[q->ndim - 1];
    int64_t S = k->shape[k->ndim - 2], Ev = v->shape[v->ndim - 1];
    if (k->shape[k->ndim - 1] != E)
        return td_error("%s: q and k must have the same feature size, got q %s and k %s", fn,
                        s[IQ], s[IK]);
    if (v->shape[v->ndim - 2] != S)
        return td_error("%s: k and v must have the same number of keys, got k %s and v %s", fn,
                        s[IK], s[IV]);
    if (n->nin == 4 && n->in[IM]->dtype != TD_BOOL && !td_dtype_is_float(n->in[IM]->dtype))
        return td_error("%s: mask must be a bool or float tensor, got %s", fn,
                        td_dtype_name(n->in[IM]->dtype));
    if (!(n->args.b >= 0 && n->args.b <= 1))
        return td_error("%s: dropout must be in [0, 1], got %g", fn, n->args.b);
    if (L > INT_MAX || S > INT_MAX || E > INT_MAX || Ev > INT_MAX)
        return td_error("%s: sizes above 2^31 are not supported (q %s, k %s)", fn, s[IQ], s[IK]);
    /* batch dims: q, k, v align right before their last two; the mask aligns right with
     * ... x L x S */
    int nbd = 0;
    for (int i = 0; i < n->nin; i++) nbd = n->in[i]->ndim - 2 > nbd ? n->in[i]->ndim - 2 : nbd;
    int64_t bsh[TD_MAX_DIMS];
    for (int d = 0; d < nbd; d++) {
        bsh[d] = 1;
        for (int i = 0; i < n->nin; i++) {
            int j = d - (nbd - (n->in[i]->ndim - 2));
            int64_t sz = j >= 0 ? n->in[i]->shape[j] : 1;
            if (sz != 1 && bsh[d] != 1 && sz != bsh[d])
                return td_error("%s: batch dims do not broadcast: q %s, k %s, v %s%s%s", fn,
                                s[IQ], s[IK], s[IV], n->nin == 4 ? ", mask " : "",
                                n->nin == 4 ? s[IM] : "");
            if (sz != 1) bsh[d] = sz;
        }
    }
    if (n->nin == 4) {
        const td_tensor *m = n->in[IM];
        int64_t ml = m->ndim >= 2 ? m->shape[m->ndim - 2] : 1, ms = m->ndim ? m->shape[m->ndim - 1] : 1;
        if ((ml != 1 && ml != L) || (ms != 1 && ms != S))
            return td_error("%s: mask %s does not broadcast to the scores (%lld x %lld: queries x "
                            "keys)", fn, s[IM], (long long)L, (long long)S);
    }
    td_dtype dt = work_dtype(n);
    for (int o = 0; o < 2; o++) {
        td_meta *m = &n->meta[o];
        m->ndim = nbd + 2;
        memcpy(m->shape, bsh, sizeof(int64_t) * (size_t)nbd);
        m->shape[nbd] = L;
        m->shape[nbd + 1] = o == 0 ? Ev : S;
        m->dtype = dt;
    }
    n->nout = 2;
    return 0;
}

/* t as BLAS reads it: dtype dt, last stride 1, rows at least a row apart; a new ref (t itself
 * when it already is one) or NULL */
static td_tensor *blas_ready(td_tensor *t, td_dtype dt) {
    int d = t->ndim;
    int64_t rows = t->shape[d - 2], cols = t->shape[d - 1];
    bool ok = t->dtype == dt && (t->stride[d - 1] == 1 || cols <= 1) &&
              (rows <= 1 || t->stride[d - 2] >= (cols > 1 ? cols : 1)) && t->stride[d - 2] <= INT_MAX;
    if (ok) {
        td_retain(t);
        return t;
    }
    return td_dense_as(t, dt);
}

/* Fills a from the node and its output O (out[0] in forward, saved_out[0] in backward, where
 * out[] may be gone): prepared inputs in keep[] (released by the caller). 0 or -1 + error. */
static int prepare(td_node *n, const td_tensor *o, att *a, td_tensor **keep) {
    td_dtype dt = o->dtype;
    memset(a, 0, sizeof *a);
    a->nbd = o->ndim - 2;
    memcpy(a->bsh, o->shape, sizeof(int64_t) * (size_t)a->nbd);
    a->L = o->shape[a->nbd], a->Ev = o->shape[a->nbd + 1];
    a->E = n->in[IQ]->shape[n->in[IQ]->ndim - 1], a->S = n->in[IK]->shape[n->in[IK]->ndim - 2];
    a->nb = 1;
    for (int d = 0; d < a->nbd; d++) a->nb *= a->bsh[d];
    a->scale = n->args.has_a ? n->args.a : 1 / sqrt((double)(a->E > 0 ? a->E : 1));
    a->causal = n->args.flag;
    a->has_mask = n->nin == 4;
    a->mask_bool = a->has_mask && n->in[IM]->dtype == TD_BOOL;
    a->keep = n->args.b < 1 ? 1 / (1 - n->args.b) : 0;
    for (int i = 0; i < n->nin; i++) {
        td_tensor *t = n->in[i];
        if (i < 3) keep[i] = blas_ready(t, dt);
        else keep[i] = a->mask_bool ? (td_retain(t), t) : td_to_dtype(t, dt);
        if (!keep[i]) return -1;
        t = keep[i];
        a->p[i] = (const char *)td_data(t);
        int nd = t->ndim, lead = a->nbd - (nd - 2);
        for (int d = 0; d < a->nbd; d++) {
            int j = d - lead;
            a->bst[i][d] = j >= 0 && t->shape[j] != 1 ? t->stride[j] : 0;
        }
        a->rs[i] = nd >= 2 && t->shape[nd - 2] != 1 ? t->stride[nd - 2] : 0;
        a->cs[i] = nd >= 1 && t->shape[nd - 1] != 1 ? t->stride[nd - 1] : 0;
        if (i < 3 && t->shape[nd - 2] <= 1) a->rs[i] = t->shape[nd - 1] > 1 ? t->shape[nd - 1] : 1;
    }
    return 0;
}

/* entries side by side when each is small (OpenBLAS runs single-threaded inside the region);
 * one after another, each GEMM on every thread, when they are big */
static void run(const att *a, td_unit_fn f) {
    int64_t per = a->L * a->S * (a->E > a->Ev ? a->E : a->Ev);
    td_run_units(a->nb, per <= 128 * 128 * 128 ? a->nb * per : 0, f, (void *)a);
}

static int attention_forward(td_node *n) {
    td_tensor *keep[4] = {0}, *bern = NULL;
    att a;
    int rc = -1;
    if (prepare(n, n->out[0], &a, keep) < 0) goto done;
    a.o = td_data(n->out[0]), a.w = td_data(n->out[1]);
    int64_t np = a.nb * a.L * a.S;
    if (td_numel(n->out[0]) == 0 && np == 0) {
        rc = 0;
        goto done;
    }
    if (n->args.b > 0) { /* the keep mask first, in element order: the same draw on any threads */
        bern = td_empty(&np, 1, TD_UINT8);
        if (!bern || td_fill_bernoulli(bern, 1 - n->args.b) < 0) goto done;
        a.keepm = td_data(bern);
        bool rec = false;
        for (int i = 0; i < n->nin; i++) rec = rec || n->in[i]->requires_grad;
        if (rec && td_grad_enabled()) { /* backward needs P before dropout and the mask */
            size_t es = td_dtype_size(n->out[1]->dtype), pb = es * (size_t)np;
            drop_ctx *c = n->ctx = td_malloc(sizeof *c + pb + (size_t)np);
            if (!c) goto done;
            c->n = np;
            a.praw = (char *)(c + 1);
            if (np) memcpy(a.praw + pb, a.keepm, (size_t)np);
        }
    }
    if (a.S == 0) { /* no keys: the weights are empty and the output is zeros */
        memset(a.o, 0, td_dtype_size(n->out[0]->dtype) * (size_t)td_numel(n->out[0]));
        rc = 0;
        goto done;
    }
    run(&a, n->out[0]->dtype == TD_FLOAT32 ? fwd_f32 : fwd_f64);
    rc = td_poll_interrupt();
done:
    for (int i = 0; i < 4; i++) td_release(keep[i]);
    td_release(bern);
    return rc;
}

static int attention_backward(td_node *n, td_tensor *const *gout, td_tensor **gin) {
    td_tensor *keep[4] = {0}, *go = NULL, *gw = NULL, *ds = NULL;
    td_tensor *w = n->saved_out[1];
    td_dtype dt = w->dtype;
    att a;
    int rc = -1;
    if (prepare(n, n->saved_out[0], &a, keep) < 0) goto done;
    a.w = td_data(w);
    if (n->ctx) {
        const drop_ctx *c = n->ctx;
        a.praw = (char *)(c + 1);
        a.keepm = (const uint8_t *)a.praw + td_dtype_size(dt) * (size_t)c->n;
    }
    if (gout[0] && !(go = td_dense_as(gout[0], dt))) goto done;
    if (gout[1] && !(gw = td_dense_as(gout[1], dt))) goto done;
    a.go = go ? td_data(go) : NULL, a.gw = gw ? td_data(gw) : NULL;
    int64_t bd = a.nbd, sh[TD_MAX_DIMS];
    memcpy(sh, a.bsh, sizeof(int64_t) * (size_t)bd);
    int64_t cols[4] = {a.E, a.E, a.Ev, a.S}, rows[4] = {a.L, a.S, a.S, a.L};
    char **dst[4] = {&a.gq, &a.gk, &a.gv, &a.gm};
    for (int i = 0; i < n->nin; i++) {
        if (!n->needs_grad[i]) continue;
        sh[bd] = rows[i], sh[bd + 1] = cols[i];
        if (!(gin[i] = td_empty(sh, (int)bd + 2, dt))) goto done;
        *dst[i] = td_data(gin[i]);
    }
    sh[bd] = a.L, sh[bd + 1] = a.S;
    if (!(ds = td_empty(sh, (int)bd + 2, dt))) goto done;
    a.ds = td_data(ds);
    if (a.nb * a.L * a.S == 0) { /* nothing flows back: gradients of empty products are zeros */
        for (int i = 0; i < n->nin; i++)
            if (gin[i]) memset(td_data(gin[i]), 0, td_dtype_size(dt) * (size_t)td_numel(gin[i]));
        rc = 0;
        goto done;
    }
    run(&a, dt == TD_FLOAT32 ? bwd_f32 : bwd_f64);
    rc = td_poll_interrupt();
done:
    for (int i = 0; i < 4; i++) td_release(keep[i]);
    td_release(go), td_release(gw), td_release(ds);
    return rc;
}

const td_op td_op_scaled_dot_product_attention = {
    .name = "scaled_dot_product_attention",
    .nin = 3,
    .flags = TD_VARIN | TD_SAVE_OUT,
    .doc = "softmax(q k^T * scale + mask) v in one fused kernel (causal without a mask tensor, "
           "optional dropout on the weights); returns the output and the weights",
    .shape = attention_shape,
    .forward = attention_forward,
    .backward = attention_backward,
};
