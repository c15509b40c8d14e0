/* tensor/ops/matmul.c: matmul (torch.matmul semantics), mm, bmm, mv, dot, outer and addmm on
 * OpenBLAS. Sizes: A is M x K, B is K x N, C is M x N, behind broadcast batch dims. A transposed
 * view goes to BLAS as CblasTrans with its own leading dim (no copy); an operand is copied only
 * when neither of its matrix strides is 1. 1-D operands become 1 x K rows or K x 1 columns. */
#include "reduce.h"
#include "sgemm.h"

#include <cblas.h>
#include <limits.h>
#include <string.h>

enum { INS_NONE, INS_ROW, INS_COL }; /* how a 1-D operand is made 2-D: 1 x K, or K x 1 */

typedef struct form {    /* how an op reads its operands */
    int ia, ib;          /* input positions of A and B (addmm: 1, 2) */
    int insa, insb;      /* INS_* for 1-D operands */
    bool drop_m, drop_n; /* the result loses the M (or N) dim: matmul of a 1-D operand */
} form;

/* a view of t with a size-1 dim inserted as the rows (INS_ROW) or the columns (INS_COL) */
static td_tensor *promote(td_tensor *t, int ins) {
    if (ins == INS_NONE || t->ndim != 1) {
        td_retain(t);
        return t;
    }
    int64_t sh[2] = {1, t->shape[0]}, st[2] = {t->shape[0] * t->stride[0], t->stride[0]};
    if (ins == INS_COL) sh[0] = t->shape[0], sh[1] = 1, st[0] = t->stride[0], st[1] = 1;
    return td_view_of(t, sh, st, 2, t->offset);
}

/* the view with the last two dims swapped */
static td_tensor *transposed(td_tensor *t) {
    int64_t sh[TD_MAX_DIMS], st[TD_MAX_DIMS];
    int d = t->ndim;
    memcpy(sh, t->shape, sizeof sh);
    memcpy(st, t->stride, sizeof st);
    sh[d - 2] = t->shape[d - 1], sh[d - 1] = t->shape[d - 2];
    st[d - 2] = t->stride[d - 1], st[d - 1] = t->stride[d - 2];
    return td_view_of(t, sh, st, d, t->offset);
}

/* How BLAS reads a rows x cols matrix with strides rs, cs: as stored (trans false, ld = rs) or
 * as the transpose of a stored cols x rows matrix (ld = cs); false when neither works. */
static bool blas_form(int64_t rows, int64_t cols, int64_t rs, int64_t cs, bool *trans,
                      int64_t *ld) {
    int64_t r1 = rows > 1 ? rows : 1, c1 = cols > 1 ? cols : 1;
    if ((cs == 1 || cols == 1) && (rows == 1 || rs >= c1)) {
        *trans = false, *ld = rows == 1 ? c1 : rs;
        return *ld <= INT_MAX;
    }
    if ((rs == 1 || rows == 1) && (cols == 1 || cs >= r1)) {
        *trans = true, *ld = cols == 1 ? r1 : cs;
        return *ld <= INT_MAX;
    }
    return false;
}

/* ---- the core: C (contiguous, batch x M x N) = alpha A B + beta C ---------------------------- */

typedef struct mat { /* one operand: batches of rows x cols at bst[] apart (0: broadcast) */
    const char *p;
    int64_t rows, cols, rs, cs, ld;
    bool trans;
    int64_t bst[TD_MAX_DIMS];
} mat;

static void gemm(td_dtype dt, const mat *a, const mat *b, int64_t M, int64_t N, int64_t K,
                 const char *pa, const char *pb, double alpha, double beta, char *c) {
    CBLAS_TRANSPOSE ta = a->trans ? CblasTrans : CblasNoTrans;
    CBLAS_TRANSPOSE tb = b->trans ? CblasTrans : CblasNoTrans;
    bool f32 = dt == TD_FLOAT32;
    if (N == 1 && (K == 1 || b->rs != 0)) { /* matrix x vector: gemv reads B's column */
        blasint inc = K == 1 ? 1 : (blasint)b->rs;
        blasint r = (blasint)(a->trans ? K : M), q = (blasint)(a->trans ? M : K);
        if (f32)
            cblas_sgemv(CblasRowMajor, ta, r, q, (float)alpha, (const float *)pa, (blasint)a->ld,
                        (const float *)pb, inc, (float)beta, (float *)c, 1);
        else
            cblas_dgemv(CblasRowMajor, ta, r, q, alpha, (const double *)pa, (blasint)a->ld,
                        (const double *)pb, inc, beta, (double *)c, 1);
        return;
    }
    if (M == 1 && (K == 1 || a->cs != 0)) { /* vector x matrix: gemv on B transposed */
        blasint inc = K == 1 ? 1 : (blasint)a->cs;
        CBLAS_TRANSPOSE t = b->trans ? CblasNoTrans : CblasTrans;
        blasint r = (blasint)(b->trans ? N : K), q = (blasint)(b->trans ? K : N);
        if (f32)
            cblas_sgemv(CblasRowMajor, t, r, q, (float)alpha, (const float *)pb, (blasint)b->ld,
                        (const float *)pa, inc, (float)beta, (float *)c, 1);
        else
            cblas_dgemv(CblasRowMajor, t, r, q, alpha, (const double *)pb, (blasint)b->ld,
                        (const double *)pa, inc, beta, (double *)c, 1);
        return;
    }
    if (f32)
        cblas_sgemm(CblasRowMajor, ta, tb, (blasint)M, (blasint)N, (blasint)K, (float)alpha,
                    (const float *)pa, (blasint)a->ld, (const float *)pb, (blasint)b->ld,
                    (float)beta, (float *)c, (blasint)N);
    else
        cblas_dgemm(CblasRowMajor, ta, tb, (blasint)M, (blasint)N, (blasint)K, alpha,
                    (const double *)pa, (blasint)a->ld, (const double *)pb, (blasint)b->ld, beta,
                    (double *)c, (blasint)N);
}

/* integers: a plain loop (BLAS has none); wraps on overflow like PyTorch */
static void gemm_i64(const mat *a, const mat *b, int64_t M, int64_t N, int64_t K, const int64_t *pa,
                     const int64_t *pb, double alpha, double beta, int64_t *c) {
    int64_t al = (int64_t)alpha, be = (int64_t)beta;
    for (int64_t m = 0; m < M; m++)
        for (int64_t n = 0; n < N; n++) {
            uint64_t s = 0;
            for (int64_t k = 0; k < K; k++)
                s += (uint64_t)pa[m * a->rs + k * a->cs] * (uint64_t)pb[k * b->rs + n * b->cs];
            uint64_t prev = be ? (uint64_t)c[m * N + n] * (uint64_t)be : 0;
            c[m * N + n] = (int64_t)((uint64_t)al * s + prev);
        }
}

/* the deterministic dot product: one thread, double accumulation */
static double dot(td_dtype dt, const char *pa, int64_t sa, const char *pb, int64_t sb, int64_t K) {
    double s = 0;
    if (dt == TD_FLOAT32) {
        const float *x = (const float *)pa, *y = (const float *)pb;
#pragma omp simd reduction(+ : s)
        for (int64_t k = 0; k < K; k++) s += (double)x[k * sa] * (double)y[k * sb];
    } else {
        const double *x = (const double *)pa, *y = (const double *)pb;
#pragma omp simd reduction(+ : s)
        for (int64_t k = 0; k < K; k++) s += x[k * sa] * y[k * sb];
    }
    return s;
}

typedef struct batch_job {
    td_dtype dt;
    const mat *a, *b;
    int64_t M, N, K;
    double alpha, beta;
    char *c;
    int nb;
    const int64_t *bsh;
} batch_job;

static void batch_unit(void *vj, int64_t t) { /* product number t of the broadcast batch */
    const batch_job *j = vj;
    const mat *a = j->a, *b = j->b;
    int64_t oa = 0, ob = 0, rem = t, es = (int64_t)td_dtype_size(j->dt);
    for (int i = j->nb - 1; i >= 0; i--) {
        int64_t q = rem % j->bsh[i];
        rem /= j->bsh[i];
        oa += q * a->bst[i], ob += q * b->bst[i];
    }
    const char *pa = a->p + oa * es, *pb = b->p + ob * es;
    char *pc = j->c + t * j->M * j->N * es;
    if (j->dt == TD_INT64)
        gemm_i64(a, b, j->M, j->N, j->K, (const int64_t *)pa, (const int64_t *)pb, j->alpha,
                 j->beta, (int64_t *)pc);
    else
        gemm(j->dt, a, b, j->M, j->N, j->K, pa, pb, j->alpha, j->beta, pc);
}

/* float32 products (not matrix-vector ones, which gemv serves) run on sgemm.c's AVX-512 kernel
 * where there is one: 1.6x OpenBLAS's AVX2 kernel on 64 x 64 matrices here; alpha 1 only, and
 * beta 0 or 1 (the kernel writes or accumulates). */
static bool packed_ok(td_dtype dt, int64_t M, int64_t N, double alpha, double beta) {
    return dt == TD_FLOAT32 && M > 1 && N > 1 && alpha == 1 && (beta == 0 || beta == 1) &&
           td_sgemm_available();
}

/* Fills m from t (>= 2-D) for a batch of nb dims; t's batch dims align right. 0, or 1 when t
 * must be copied first. */
static int mat_of(const td_tensor *t, int nb, mat *m) {
    int d = t->ndim, tb = d - 2;
    m->p = td_data(t);
    m->rows = t->shape[d - 2], m->cols = t->shape[d - 1];
    m->rs = t->stride[d - 2], m->cs = t->stride[d - 1];
    for (int i = 0; i < nb; i++) {
        int j = i - (nb - tb);
        m->bst[i] = j < 0 || t->shape[j] == 1 ? 0 : t->stride[j];
    }
    m->trans = false, m->ld = 0; /* defined for int64, whose strided operands skip BLAS */
    return blas_form(m->rows, m->cols, m->rs, m->cs, &m->trans, &m->ld) ? 0 : 1;
}

/* C = alpha X Y + beta C for X (..., M, K) and Y (..., K, N), any layouts; c is contiguous
 * with the broadcast batch shape (possibly with the M or N dim dropped). 0 or -1 + error. */
static int mm_into(td_tensor *c, td_tensor *x0, td_tensor *y0, double alpha, double beta) {
    td_dtype dt = c->dtype;
    td_tensor *x = td_to_dtype(x0, dt), *y = x ? td_to_dtype(y0, dt) : NULL;
    int rc = -1, nb = 0;
    mat a, b;
    if (!y) goto done;
    nb = x->ndim > y->ndim ? x->ndim - 2 : y->ndim - 2;
    for (int k = 0; k < 2; k++) { /* strides BLAS cannot express: copy that operand once */
        td_tensor **t = k ? &y : &x;
        if (mat_of(*t, nb, k ? &b : &a) == 0 || dt == TD_INT64) continue;
        td_tensor *cc = td_contiguous(*t);
        td_release(*t);
        if (!(*t = cc)) goto done;
        mat_of(*t, nb, k ? &b : &a);
    }
    int64_t M = a.rows, K = a.cols, N = b.cols, bsh[TD_MAX_DIMS], nbatch = 1;
    for (int i = 0; i < nb; i++) {
        int ja = i - (nb - (x->ndim - 2)), jb = i - (nb - (y->ndim - 2));
        int64_t sa = ja >= 0 ? x->shape[ja] : 1, sb = jb >= 0 ? y->shape[jb] : 1;
        bsh[i] = sa == 1 ? sb : sa;
        nbatch *= bsh[i];
    }
    if (M > INT_MAX || N > INT_MAX || K > INT_MAX) {
        rc = td_error("matmul: dims above 2^31 are not supported (M %lld, K %lld, N %lld)",
                      (long long)M, (long long)K, (long long)N);
        goto done;
    }
    char *cp = td_data(c);
    if (M * N == 0 || nbatch == 0) {
        rc = 0;
        goto done;
    }
    if (K == 0 || alpha == 0) { /* nothing to multiply: C = beta C (BLAS is not asked) */
        for (int64_t i = 0, tot = nbatch * M * N; i < tot; i++)
            if (dt == TD_FLOAT32)
                ((float *)cp)[i] = beta == 0 ? 0 : ((float *)cp)[i] * (float)beta;
            else if (dt == TD_FLOAT64)
                ((double *)cp)[i] = beta == 0 ? 0 : ((double *)cp)[i] * beta;
            else
                ((int64_t *)cp)[i] = beta == 0 ? 0
                                               : (int64_t)((uint64_t)((int64_t *)cp)[i] *
                                                           (uint64_t)(int64_t)beta); /* wraps */
        rc = 0;
        goto done;
    }
    if (nbatch == 1 && M == 1 && N == 1 && dt != TD_INT64) { /* dot: same sum on any threads */
        double v = alpha * dot(dt, a.p, a.cs, b.p, b.rs, K);
        if (dt == TD_FLOAT32)
            *(float *)cp = (float)(v + (beta == 0 ? 0 : beta * (double)*(float *)cp));
        else
            *(double *)cp = v + (beta == 0 ? 0 : beta * *(double *)cp);
        rc = 0;
        goto done;
    }
    bool ybroad = true, collapse;
    for (int i = 0; i < nb; i++) ybroad = ybroad && b.bst[i] == 0;
    /* the batch folds into M when X's rows continue across batches (Linear on B x T x C) */
    collapse = ybroad && nb > 0 && !a.trans && dt != TD_INT64 && M > 1;
    for (int64_t i = nb - 1, want = M * a.rs; collapse && i >= 0; i--)
        if (bsh[i] != 1) collapse = a.bst[i] == want, want *= bsh[i];
    if (collapse || nbatch == 1) {
        rc = 0;
        if (packed_ok(dt, collapse ? M * nbatch : M, N, alpha, beta))
            rc = td_gemm(dt, collapse ? M * nbatch : M, N, K, a.p, a.rs, a.cs, b.p, b.rs, b.cs,
                         beta != 0, cp, N);
        else if (dt == TD_INT64)
            gemm_i64(&a, &b, M, N, K, (const int64_t *)a.p, (const int64_t *)b.p, alpha, beta,
                     (int64_t *)cp);
        else
            gemm(dt, &a, &b, collapse ? M * nbatch : M, N, K, a.p, b.p, alpha, beta, cp);
        if (rc == 0) rc = td_poll_interrupt();
        goto done;
    }
    /* many small products run side by side (OpenBLAS goes single-threaded inside a parallel
     * region); big ones one after another, each on every thread */
    batch_job j = {dt, &a, &b, M, N, K, alpha, beta, cp, nb, bsh};
    td_run_units(nbatch, M * N * K <= 96 * 96 * 96 ? nbatch * M * N * K : 0, batch_unit, &j);
    rc = td_poll_interrupt();
done:
    td_release(x), td_release(y);
    return rc;
}

/* ---- ops: shape rules, forward, backward --------------------------------------------------- */

static const struct rule {
    const td_op *op;
    int na, nb; /* required dims of A and B (0: at least 1) */
    const char *want;
} rules[] = {
    {&td_op_matmul, 0, 0, "tensors with at least 1 dim"},
    {&td_op_mm, 2, 2, "two 2-D matrices"},
    {&td_op_bmm, 3, 3, "two 3-D batches of matrices"},
    {&td_op_mv, 2, 1, "a 2-D matrix and a 1-D vector"},
    {&td_op_dot, 1, 1, "two 1-D vectors"},
    {&td_op_outer, 1, 1, "two 1-D vectors"},
    {&td_op_addmm, 2, 2, "2-D matrices a and b"},
};

/* the two shapes for an error message (formatted only on the error path) */
#define SHAPES(a, b)                                                                               \
    td_shape_str((a)->shape, (a)->ndim, sa, sizeof sa),                                            \
        td_shape_str((b)->shape, (b)->ndim, sb, sizeof sb)

static void form_of(const td_node *n, form *f) {
    const td_op *op = n->op;
    bool outer = op == &td_op_outer;
    f->ia = op == &td_op_addmm, f->ib = f->ia + 1;
    const td_tensor *a = n->in[f->ia], *b = n->in[f->ib];
    f->insa = a->ndim == 1 ? (outer ? INS_COL : INS_ROW) : INS_NONE;
    f->insb = b->ndim == 1 ? (outer ? INS_ROW : INS_COL) : INS_NONE;
    f->drop_m = a->ndim == 1 && !outer;
    f->drop_n = b->ndim == 1 && !outer;
}

static int mm_shape(td_node *n) {
    const char *fn = n->op->name;
    const struct rule *r = rules;
    while (r->op != n->op) r++;
    form f;
    form_of(n, &f);
    td_tensor *a = n->in[f.ia], *b = n->in[f.ib];
    char sa[128], sb[128], sc[128];
    bool bad_a = r->na ? a->ndim != r->na : a->ndim < 1;
    bool bad_b = r->nb ? b->ndim != r->nb : b->ndim < 1;
    if (bad_a || bad_b)
        return td_error("%s: expected %s, got shapes %s and %s", fn, r->want, SHAPES(a, b));
    td_dtype dt = td_dtype_promote(a->dtype, b->dtype);
    if (f.ia) dt = td_dtype_promote(dt, n->in[0]->dtype);
    if (dt != TD_FLOAT32 && dt != TD_FLOAT64 && dt != TD_INT64)
        return td_error("%s: expected float32, float64 or int64 tensors, got %s", fn,
                        td_dtype_name(dt));
    /* the 2-D-ified sizes: A is M x K behind na batch dims, B is K x N behind nb */
    int ad = a->ndim, bd = b->ndim;
    int64_t M = f.insa == INS_ROW ? 1 : a->shape[ad - (ad > 1 ? 2 : 1)];
    int64_t K = f.insa == INS_COL ? 1 : a->shape[ad - 1];
    int64_t Kb = f.insb == INS_ROW ? 1 : b->shape[bd - (bd > 1 ? 2 : 1)];
    int64_t N = f.insb == INS_COL ? 1 : b->shape[bd - 1];
    if (K != Kb)
        return td_error("%s: shapes %s and %s cannot be multiplied (%lld columns against %lld "
                        "rows)",
                        fn, SHAPES(a, b), (long long)K, (long long)Kb);
    int na = ad > 2 ? ad - 2 : 0, nb = bd > 2 ? bd - 2 : 0, nbt = na > nb ? na : nb;
    td_meta *m = &n->meta[0];
    m->ndim = 0;
    for (int i = 0; i < nbt; i++) {
        int ja = i - (nbt - na), jb = i - (nbt - nb);
        int64_t x = ja >= 0 ? a->shape[ja] : 1, y = jb >= 0 ? b->shape[jb] : 1;
        if (x != y && x != 1 && y != 1)
            return td_error("%s: the batch dims of shapes %s and %s cannot be broadcast "
                            "(%lld vs %lld)",
                            fn, SHAPES(a, b), (long long)x, (long long)y);
        if (x != y && n->op == &td_op_bmm)
            return td_error("bmm: batch sizes differ: shapes %s and %s", SHAPES(a, b));
        m->shape[m->ndim++] = x == 1 ? y : x;
    }
    if (!f.drop_m) m->shape[m->ndim++] = M;
    if (!f.drop_n) m->shape[m->ndim++] = N;
    m->dtype = dt;
    if (f.ia) { /* addmm: c must broadcast to M x N */
        const td_tensor *c = n->in[0];
        bool ok = c->ndim <= 2;
        for (int i = 0; ok && i < c->ndim; i++) {
            int64_t want = m->shape[2 - c->ndim + i];
            ok = c->shape[i] == want || c->shape[i] == 1;
        }
        if (!ok)
            return td_error("addmm: c of shape %s cannot be broadcast to the result shape %s",
                            td_shape_str(c->shape, c->ndim, sc, sizeof sc),
                            td_shape_str(m->shape, m->ndim, sa, sizeof sa));
    }
    return 0;
}

static double alpha_of(const td_node *n) {
    return n->op == &td_op_addmm && n->args.has_a ? n->args.a : 1;
}
static double beta_of(const td_node *n) {
    return n->op != &td_op_addmm ? 0 : n->args.has_b ? n->args.b : 1;
}

static int mm_forward(td_node *n) {
    form f;
    form_of(n, &f);
    double beta = beta_of(n);
    if (beta != 0 && td_copy_into(n->out[0], n->in[0]) < 0) return -1; /* addmm's c */
    td_tensor *a = promote(n->in[f.ia], f.insa), *b = a ? promote(n->in[f.ib], f.insb) : NULL;
    int rc = b ? mm_into(n->out[0], a, b, alpha_of(n), beta) : -1;
    td_release(a), td_release(b);
    return rc;
}

/* alpha X Y as a new tensor (broadcast batch, X's rows, Y's columns), dtype dt */
static td_tensor *mm_new(td_tensor *x, td_tensor *y, double alpha, td_dtype dt) {
    int64_t sh[TD_MAX_DIMS];
    int nd = x->ndim > y->ndim ? x->ndim : y->ndim;
    for (int i = 0; i < nd - 2; i++) {
        int jx = i - (nd - x->ndim), jy = i - (nd - y->ndim);
        int64_t p = jx >= 0 ? x->shape[jx] : 1, q = jy >= 0 ? y->shape[jy] : 1;
        sh[i] = p == 1 ? q : p;
    }
    sh[nd - 2] = x->shape[x->ndim - 2], sh[nd - 1] = y->shape[y->ndim - 1];
    td_tensor *c = td_empty(sh, nd, dt);
    if (c && mm_into(c, x, y, alpha, 0) < 0) {
        td_release(c);
        return NULL;
    }
    return c;
}

/* t's leading dims and rows merged into one rows dim, when the strides allow: a view or NULL */
static td_tensor *flat_rows(td_tensor *t) {
    int d = t->ndim;
    int64_t rows = 1, rs = 1, want = -1;
    for (int i = d - 2; i >= 0; i--) {
        if (t->shape[i] == 1) continue;
        if (want >= 0 && t->stride[i] != want) return NULL;
        if (want < 0) rs = t->stride[i];
        rows *= t->shape[i];
        want = t->stride[i] * t->shape[i];
    }
    int64_t sh[2] = {rows, t->shape[d - 1]}, st[2] = {rs, t->stride[d - 1]};
    return td_view_of(t, sh, st, 2, t->offset);
}

/* g with the dims the forward dropped put back as size 1: batch x M x N */
static td_tensor *regrow(td_tensor *g, const form *f) {
    int64_t sh[TD_MAX_DIMS], st[TD_MAX_DIMS];
    int d = g->ndim;
    memcpy(sh, g->shape, sizeof sh);
    memcpy(st, g->stride, sizeof st);
    if (f->drop_n) sh[d] = 1, st[d] = 1, d++;
    if (f->drop_m) sh[d] = sh[d - 1], st[d] = st[d - 1], sh[d - 1] = 1, st[d - 1] = 1, d++;
    return td_view_of(g, sh, st, d, g->offset);
}

/* the gradient of a promoted 1-D operand loses its inserted dim again; new ref or NULL */
static td_tensor *finish_grad(td_tensor *t, int ins, td_dtype want) {
    if (!t) return NULL;
    td_tensor *v = t;
    if (ins != INS_NONE) {
        int64_t sh[TD_MAX_DIMS], st[TD_MAX_DIMS];
        int d = t->ndim, drop = ins == INS_ROW ? d - 2 : d - 1;
        for (int i = 0, j = 0; i < d; i++)
            if (i != drop) sh[j] = t->shape[i], st[j++] = t->stride[i];
        v = td_view_of(t, sh, st, d - 1, t->offset);
        td_release(t);
        if (!v) return NULL;
    }
    td_tensor *r = td_to_dtype(v, want);
    td_release(v);
    return r;
}

static int mm_backward(td_node *n, td_tensor *const *gout, td_tensor **gin) {
    form f;
    form_of(n, &f);
    double alpha = alpha_of(n);
    td_dtype dt = gout[0]->dtype;
    td_tensor *a = promote(n->in[f.ia], f.insa), *b = promote(n->in[f.ib], f.insb);
    td_tensor *g = regrow(gout[0], &f);
    int rc = -1;
    if (!a || !b || !g) goto done;
    if (f.ia && n->needs_grad[0]) { /* addmm: d c = beta g, reduced to c's shape by autograd */
        td_tensor *bt = td_scalar(beta_of(n), dt);
        td_tensor *r = bt ? td_apply2(&td_op_mul, gout[0], bt, NULL) : NULL;
        td_release(bt);
        if (!(gin[0] = finish_grad(r, INS_NONE, n->in[0]->dtype))) goto done;
    }
    if (n->needs_grad[f.ia]) { /* dA = alpha g B^T */
        td_tensor *bt = transposed(b), *r = bt ? mm_new(g, bt, alpha, dt) : NULL;
        td_release(bt);
        if (!(gin[f.ia] = finish_grad(r, f.insa, n->in[f.ia]->dtype))) goto done;
    }
    if (n->needs_grad[f.ib]) { /* dB = alpha A^T g: one GEMM over the whole batch when B is 2-D */
        td_tensor *af = NULL, *gf = NULL;
        if (b->ndim == 2 && a->ndim > 2 && (af = flat_rows(a))) gf = flat_rows(g);
        if (!gf) td_release(af), af = NULL;
        td_tensor *at = transposed(af ? af : a),
                  *r = at ? mm_new(at, gf ? gf : g, alpha, dt) : NULL;
        td_release(at), td_release(af), td_release(gf);
        if (!(gin[f.ib] = finish_grad(r, f.insb, n->in[f.ib]->dtype))) goto done;
    }
    rc = 0;
done:
    td_release(a), td_release(b), td_release(g);
    return rc;
}

#define MM_OP(nm, nin_, dc)                                                                        \
    const td_op td_op_##nm = {.name = #nm,                                                         \
                              .nin = nin_,                                                         \
                              .doc = dc,                                                           \
                              .shape = mm_shape,                                                   \
                              .forward = mm_forward,                                               \
                              .backward = mm_backward};
MM_OP(matmul, 2, "matrix product with torch.matmul's rules (1-D, 2-D, batched, broadcast)")
MM_OP(mm, 2, "product of two 2-D matrices")
MM_OP(bmm, 2, "batched product of two 3-D tensors with the same batch size")
MM_OP(mv, 2, "matrix times vector")
MM_OP(dot, 2, "inner product of two 1-D vectors")
MM_OP(outer, 2, "outer product of two 1-D vectors: an N x M matrix")
MM_OP(addmm, 3, "beta * c + alpha * (a @ b), {alpha = 1, beta = 1}")
