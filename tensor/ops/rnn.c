/* tensor/ops/rnn.c: the recurrent scans behind nn.LSTM, nn.GRU and nn.RNN, one layer and one
 * direction per call. Sizes: T steps, B batch, H hidden, G gate rows (4H LSTM in i,f,g,o order,
 * 3H GRU in r,z,n order, H RNN). gx (T x B x G, any strides with the gates contiguous) is the
 * input projection of every step, x W_ih^T + biases, done by the caller in one GEMM; a scan runs
 * per step one GEMM h W_hh^T and one fused gate kernel. LSTM and GRU return what backward reads
 * as a second output S (T x B x R per step and row: LSTM [c | i f g o | tanh c], R = 6H; GRU
 * [r z n | gh_n], R = 4H), a tensor so that its bytes come from the storage cache and the GC
 * sees them. Backward walks the steps in reverse with one GEMM each (dh' = dgates W_hh) and ends
 * with one GEMM for dW_hh over all steps; the gradient of gx is the gates' gradient. */
#include "nn.h"

#include <string.h>
#include <tgmath.h>

#include "sgemm.h"
#include "vexp.h"

enum { K_LSTM, K_GRU, K_TANH, K_RELU };

static int kind(const td_node *n) {
    return n->op == &td_op_lstm_scan ? K_LSTM
           : n->op == &td_op_gru_scan ? K_GRU
           : n->op == &td_op_rnn_tanh_scan ? K_TANH
                                           : K_RELU;
}

/* ---- activations: float32 through td_vexpf (vectorises), float64 through libm -------------- */
static inline float sig_f32(float x) { return 1.0f / (1.0f + td_vexpf(-x)); }
static inline float th_f32(float x) { return 2.0f / (1.0f + td_vexpf(-2.0f * x)) - 1.0f; }
static inline double sig_f64(double x) { return 1.0 / (1.0 + exp(-x)); }
static inline double th_f64(double x) { return tanh(x); }

/* Scratch of n elements of dt from the storage cache (td_malloc'd blocks of a few MB would be
 * fresh pages, faulted in on every call): its data, with *keep the tensor to release. */
static void *scratch(int64_t n, td_dtype dt, td_tensor **keep) {
    *keep = td_empty(&n, 1, dt);
    return *keep ? td_data(*keep) : NULL;
}

/* The per-step product C (M x N, dense) = A (M x K, rows lda apart) times a fixed matrix Bm
 * (K x N): stored K x N with rows ldb apart, or (trans) the transpose of a stored N x K matrix.
 * float32 with AVX-512 packs Bm once per scan and A per step (the packed kernel beats BLAS at
 * these small sizes, and the pack of W_hh is paid once, not T times); else BLAS reads Bm. */
typedef struct stepmm {
    td_dtype dt;
    int64_t M, N, K, ldb;
    bool trans;
    const void *b;
    float *bp, *ap; /* packed Bm and A, NULL on the BLAS path */
    td_tensor *kb, *ka;
    int nt;
} stepmm;

/* 0, or -1 + error (allocation) */
static int stepmm_init(stepmm *s, td_dtype dt, int64_t M, int64_t N, int64_t K, const void *b,
                       int64_t ldb, bool trans) {
    *s = (stepmm){dt, M, N, K, ldb, trans, b, NULL, NULL, NULL, NULL, td_get_num_threads()};
    if (dt != TD_FLOAT32 || !td_sgemm_available() || M == 0 || N == 0 || K == 0) return 0;
    s->bp = scratch(td_sgemm_bsize(K, N), dt, &s->kb);
    s->ap = scratch(td_sgemm_asize(M, K), dt, &s->ka);
    if (!s->bp || !s->ap) return -1;
    td_sgemm_pack_b(s->bp, b, trans ? 1 : ldb, trans ? ldb : 1, K, N);
    return 0;
}

static void stepmm_run(stepmm *s, const void *a, int64_t lda, void *c) {
    if (s->bp) {
        td_sgemm_pack_a(s->ap, a, lda, 1, s->M, s->K);
        td_sgemm_packed(s->M, s->N, s->K, s->ap, s->bp, c, s->N, false, NULL, s->nt);
    } else {
        td_gemm(s->dt, s->M, s->N, s->K, a, lda, 1, s->b, s->trans ? 1 : s->ldb,
                s->trans ? s->ldb : 1, false, c, s->N); /* BLAS: no scratch, cannot fail */
    }
}

static void stepmm_free(stepmm *s) {
    td_release(s->kb), td_release(s->ka);
}

/* y[q ldy] += sum over the R rows of x (R x G, dense) of column q: GRU's db_hh */
static void col_sums(bool f64, void *y, int64_t ldy, const void *x, int64_t R, int64_t G) {
    for (int64_t r = 0; r < R; r++)
        for (int64_t q = 0; q < G; q++)
            if (f64) ((double *)y)[q * ldy] += ((const double *)x)[r * G + q];
            else ((float *)y)[q * ldy] += ((const float *)x)[r * G + q];
}

/* R: elements of S per step and batch row */
static int64_t saved_per_row(int k, int64_t H) {
    return k == K_LSTM ? 6 * H : k == K_GRU ? 4 * H : 0;
}

/* ---- shapes ------------------------------------------------------------------------------ */
static int scan_shape(td_node *n) {
    td_tensor *gx = n->in[0], *w = n->in[1], *s = n->in[2];
    int k = kind(n);
    const char *nm = n->op->name;
    char s1[128], s2[128];
    if (!td_dtype_is_float(gx->dtype) || w->dtype != gx->dtype || s->dtype != gx->dtype)
        return td_error("%s: expected gx, w_hh and the state of one float dtype, got %s, %s, %s",
                        nm, td_dtype_name(gx->dtype), td_dtype_name(w->dtype),
                        td_dtype_name(s->dtype));
    if (gx->ndim != 3)
        return td_error("%s: expected gx of 3 dims (T x B x gates), got %s", nm,
                        td_shape_str(gx->shape, gx->ndim, s1, sizeof s1));
    int64_t T = gx->shape[0], B = gx->shape[1];
    int64_t H = w->ndim == 2 ? w->shape[1] - (k == K_GRU) : 0;
    int64_t G = k == K_LSTM ? 4 * H : k == K_GRU ? 3 * H : H;
    if (w->ndim != 2 || H < 1 || w->shape[0] != G)
        return td_error("%s: expected w_hh of shape %s, got %s", nm,
                        k == K_LSTM ? "4H x H" : k == K_GRU ? "3H x (H+1) (b_hh as last column)"
                                                            : "H x H",
                        td_shape_str(w->shape, w->ndim, s1, sizeof s1));
    if (gx->shape[2] != G)
        return td_error("%s: gx has %lld gate columns, expected %lld for hidden size %lld (gx %s)",
                        nm, (long long)gx->shape[2], (long long)G, (long long)H,
                        td_shape_str(gx->shape, 3, s1, sizeof s1));
    if (T < 1) return td_error("%s: expected at least one step, got T = 0", nm);
    int64_t want[3] = {2, B, H};
    int sd = k == K_LSTM ? 3 : 2;
    const int64_t *ws = k == K_LSTM ? want : want + 1;
    if (s->ndim != sd || memcmp(s->shape, ws, sizeof(int64_t) * (size_t)sd))
        return td_error("%s: expected the initial state of shape %s, got %s", nm,
                        td_shape_str(ws, sd, s1, sizeof s1),
                        td_shape_str(s->shape, s->ndim, s2, sizeof s2));
    for (int o = 0; o < 1 + (k <= K_GRU); o++) { /* out; LSTM and GRU also S */
        td_meta *m = &n->meta[o];
        m->ndim = 3, m->shape[0] = T, m->shape[1] = B, m->dtype = gx->dtype;
        m->shape[2] = o ? saved_per_row(k, H) : H;
    }
    n->nout = 1 + (k <= K_GRU);
    return 0;
}

/* ---- the fused gate kernels, one batch row per call ----------------------------------------
 * LSTM: a = gx + gh; i, f, o = sigmoid, g = tanh; c = f c' + i g; h = o tanh(c).
 * GRU: r, z = sigmoid(gx + gh), n = tanh(gx_n + r gh_n), h = (1 - z) n + z h' (gh has b_hh).
 * RNN: h = tanh or relu(gx + gh); backward reads h only. */
typedef struct sjob {
    int64_t B, H, G;
    const char *gx;      /* gx at this step, row b at gx + b gs1 (elements) */
    int64_t gs1;
    const void *gh;      /* B x G, this step's h' W_hh^T (+ b_hh for GRU) */
    const void *hp, *cp; /* h' (B x H), c' (row b at cp + b cps) */
    int64_t cps;
    void *h;             /* this step's h (B x H) */
    void *s;             /* this step's rows of S, R apart */
    int64_t R;
    /* backward */
    const void *go;      /* gradient of this step's h from the output (NULL: none) */
    const void *gc;      /* LSTM: gradient of this step's c (rows R apart; NULL: none) */
    const void *dh;      /* the carried dh (B x H, from the GEMM) */
    void *dc;            /* LSTM: the carried dc (B x H), updated in place */
    void *dg, *dgh;      /* out: gradient of gx (B x G) and, GRU, of gh (B x G) */
    void *dhp;           /* GRU: out, the direct part z dh of dh' (B x H) */
    bool relu;
} sjob;

/* Row pointers are restrict and loops omp simd (no two rows alias): without both, gcc keeps
 * the cell loops scalar behind alias checks. */
#define ROW(T, p, n) ((T *)(p) + b * (n))
#define KERNELS(sfx, T)                                                                            \
    static void lstm_fwd_##sfx(void *vj, int64_t b) {                                              \
        const sjob *j = vj;                                                                        \
        int64_t H = j->H, G = j->G;                                                                \
        const T *restrict gx = (const T *)j->gx + b * j->gs1;                                      \
        const T *restrict gh = ROW(const T, j->gh, G), *restrict cp = ROW(const T, j->cp, j->cps); \
        T *restrict c = ROW(T, j->s, j->R), *restrict h = ROW(T, j->h, H);                         \
        T *restrict act = c + H, *restrict tc = c + 5 * H;                                         \
        /* one loop per activation: a select between them in one loop would not vectorise */       \
        _Pragma("omp simd") for (int64_t k = 0; k < 2 * H; k++) act[k] = sig_##sfx(gx[k] + gh[k]); \
        _Pragma("omp simd") for (int64_t k = 2 * H; k < 3 * H; k++)                                \
            act[k] = th_##sfx(gx[k] + gh[k]);                                                      \
        _Pragma("omp simd") for (int64_t k = 3 * H; k < G; k++) act[k] = sig_##sfx(gx[k] + gh[k]); \
        _Pragma("omp simd") for (int64_t k = 0; k < H; k++) {                                      \
            T cc = act[H + k] * cp[k] + act[k] * act[2 * H + k];                                   \
            T t = th_##sfx(cc);                                                                    \
            c[k] = cc, tc[k] = t, h[k] = act[3 * H + k] * t;                                       \
        }                                                                                          \
    }                                                                                              \
    static void lstm_bwd_##sfx(void *vj, int64_t b) {                                              \
        const sjob *j = vj;                                                                        \
        int64_t H = j->H, G = j->G;                                                                \
        const T *restrict act = ROW(const T, j->s, j->R) + H, *restrict tc = act + 4 * H;          \
        const T *restrict cp = ROW(const T, j->cp, j->cps), *restrict dh = ROW(const T, j->dh, H); \
        const T *restrict go = j->go ? ROW(const T, j->go, H) : NULL;                              \
        const T *restrict gc = j->gc ? ROW(const T, j->gc, j->R) : NULL;                           \
        T *restrict dc = ROW(T, j->dc, H), *restrict dg = ROW(T, j->dg, G);                        \
        _Pragma("omp simd") for (int64_t k = 0; k < H; k++) {                                      \
            T i = act[k], f = act[H + k], g = act[2 * H + k], o = act[3 * H + k], t = tc[k];       \
            T d = dh[k] + (go ? go[k] : 0);                                                        \
            T dcc = dc[k] + (gc ? gc[k] : 0) + d * o * (1 - t * t);                                \
            dg[k] = dcc * g * i * (1 - i);                                                         \
            dg[H + k] = dcc * cp[k] * f * (1 - f);                                                 \
            dg[2 * H + k] = dcc * i * (1 - g * g);                                                 \
            dg[3 * H + k] = d * t * o * (1 - o);                                                   \
            dc[k] = dcc * f;                                                                       \
        }                                                                                          \
    }                                                                                              \
    static void gru_fwd_##sfx(void *vj, int64_t b) {                                               \
        const sjob *j = vj;                                                                        \
        int64_t H = j->H, G = j->G;                                                                \
        const T *restrict gx = (const T *)j->gx + b * j->gs1;                                      \
        const T *restrict gh = ROW(const T, j->gh, G), *restrict hp = ROW(const T, j->hp, H);      \
        T *restrict act = ROW(T, j->s, j->R), *restrict h = ROW(T, j->h, H);                       \
        _Pragma("omp simd") for (int64_t k = 0; k < 2 * H; k++) act[k] = sig_##sfx(gx[k] + gh[k]); \
        _Pragma("omp simd") for (int64_t k = 0; k < H; k++) {                                      \
            T r = act[k], z = act[H + k], hn = gh[2 * H + k];                                      \
            T nn = th_##sfx(gx[2 * H + k] + r * hn);                                               \
            act[2 * H + k] = nn, act[3 * H + k] = hn;                                              \
            h[k] = (1 - z) * nn + z * hp[k];                                                       \
        }                                                                                          \
    }                                                                                              \
    static void gru_bwd_##sfx(void *vj, int64_t b) {                                               \
        const sjob *j = vj;                                                                        \
        int64_t H = j->H, G = j->G;                                                                \
        const T *restrict act = ROW(const T, j->s, j->R), *restrict hp = ROW(const T, j->hp, H);   \
        const T *restrict dh = ROW(const T, j->dh, H);                                             \
        const T *restrict go = j->go ? ROW(const T, j->go, H) : NULL;                              \
        T *restrict dg = ROW(T, j->dg, G), *restrict dgh = ROW(T, j->dgh, G);                      \
        T *restrict dhp = ROW(T, j->dhp, H);                                                       \
        _Pragma("omp simd") for (int64_t k = 0; k < H; k++) {                                      \
            T r = act[k], z = act[H + k], nn = act[2 * H + k], hn = act[3 * H + k];                \
            T d = dh[k] + (go ? go[k] : 0);                                                        \
            T dn = d * (1 - z) * (1 - nn * nn);                                                    \
            T dz = d * (hp[k] - nn) * z * (1 - z);                                                 \
            T dr = dn * hn * r * (1 - r);                                                          \
            dg[k] = dgh[k] = dr;                                                                   \
            dg[H + k] = dgh[H + k] = dz;                                                           \
            dg[2 * H + k] = dn, dgh[2 * H + k] = dn * r;                                           \
            dhp[k] = d * z;                                                                        \
        }                                                                                          \
    }                                                                                              \
    static void rnn_fwd_##sfx(void *vj, int64_t b) {                                               \
        const sjob *j = vj;                                                                        \
        int64_t H = j->H;                                                                          \
        const T *restrict gx = (const T *)j->gx + b * j->gs1;                                      \
        const T *restrict gh = ROW(const T, j->gh, H);                                             \
        T *restrict h = ROW(T, j->h, H);                                                           \
        if (j->relu)                                                                               \
            _Pragma("omp simd") for (int64_t k = 0; k < H; k++)                                    \
                h[k] = gx[k] + gh[k] > 0 ? gx[k] + gh[k] : 0;                                      \
        else                                                                                       \
            _Pragma("omp simd") for (int64_t k = 0; k < H; k++) h[k] = th_##sfx(gx[k] + gh[k]);    \
    }                                                                                              \
    static void rnn_bwd_##sfx(void *vj, int64_t b) {                                               \
        const sjob *j = vj;                                                                        \
        int64_t H = j->H;                                                                          \
        const T *restrict h = ROW(const T, j->h, H), *restrict dh = ROW(const T, j->dh, H);        \
        const T *restrict go = j->go ? ROW(const T, j->go, H) : NULL;                              \
        T *restrict dg = ROW(T, j->dg, H);                                                         \
        _Pragma("omp simd") for (int64_t k = 0; k < H; k++) {                                      \
            T d = dh[k] + (go ? go[k] : 0);                                                        \
            dg[k] = j->relu ? (h[k] > 0 ? d : 0) : d * (1 - h[k] * h[k]);                          \
        }                                                                                          \
    }
KERNELS(f32, float)
KERNELS(f64, double)

/* the row kernels of op kind k: [kind][f64][backward] */
static const td_unit_fn rowfn[4][2][2] = {
    {{lstm_fwd_f32, lstm_bwd_f32}, {lstm_fwd_f64, lstm_bwd_f64}},
    {{gru_fwd_f32, gru_bwd_f32}, {gru_fwd_f64, gru_bwd_f64}},
    {{rnn_fwd_f32, rnn_bwd_f32}, {rnn_fwd_f64, rnn_bwd_f64}},
    {{rnn_fwd_f32, rnn_bwd_f32}, {rnn_fwd_f64, rnn_bwd_f64}},
};

/* rows of y (R x G, dense) += b (b[q] at q ldb): GRU's b_hh (the last column of w), dh */
static void add_bias(bool f64, void *y, const void *b, int64_t ldb, int64_t R, int64_t G) {
    for (int64_t r = 0; r < R; r++)
        for (int64_t q = 0; q < G; q++)
            if (f64) ((double *)y)[r * G + q] += ((const double *)b)[q * ldb];
            else ((float *)y)[r * G + q] += ((const float *)b)[q * ldb];
}

/* ---- forward ------------------------------------------------------------------------------ */
static int scan_forward(td_node *n) {
    int k = kind(n), rc = -1;
    td_tensor *gx = n->in[0], *out = n->out[0], *S = k <= K_GRU ? n->out[1] : NULL, *kgh;
    td_dtype dt = out->dtype;
    size_t es = td_dtype_size(dt);
    int64_t T = gx->shape[0], B = gx->shape[1], G = gx->shape[2], H = out->shape[2];
    int64_t ldw = n->in[1]->shape[1], R = saved_per_row(k, H);
    bool f64 = dt == TD_FLOAT64;
    td_tensor *gxd = gx->stride[2] == 1 ? (td_retain(gx), gx) : td_dense_as(gx, dt);
    td_tensor *w = td_dense_as(n->in[1], dt), *s0 = td_dense_as(n->in[2], dt);
    char *gh = scratch(B * G, dt, &kgh);
    stepmm mm = {0};
    if (!gxd || !w || !s0 || !gh) goto done;
    if (stepmm_init(&mm, dt, B, G, H, td_data(w), ldw, true) < 0) goto done; /* W_hh^T */
    const char *W = td_data(w), *S0 = td_data(s0);
    char *O = td_data(out), *SD = S ? td_data(S) : NULL;
    sjob j = {.B = B, .H = H, .G = G, .gs1 = gxd->stride[1], .gh = gh, .R = R,
              .relu = k == K_RELU};
    td_unit_fn f = rowfn[k][f64][0];
    for (int64_t t = 0; t < T; t++) {
        const char *hp = t ? O + es * (size_t)((t - 1) * B * H) : S0;
        stepmm_run(&mm, hp, H, gh);
        if (k == K_GRU) add_bias(f64, gh, W + es * (size_t)H, ldw, B, G);
        j.gx = (const char *)td_data(gxd) + es * (size_t)(t * gxd->stride[0]);
        j.hp = hp;
        j.h = O + es * (size_t)(t * B * H);
        if (S) j.s = SD + es * (size_t)(t * B * R);
        if (k == K_LSTM) { /* c' is c0 (rows H apart), then S's c of the step before */
            j.cp = t ? SD + es * (size_t)((t - 1) * B * R) : S0 + es * (size_t)(B * H);
            j.cps = t ? R : H;
        }
        td_run_units(B, B * G * 8, f, &j); /* ~8 flops of exp and arithmetic per gate */
        if (td_poll_interrupt() < 0) goto done;
    }
    rc = 0;
done:
    stepmm_free(&mm);
    td_release(kgh), td_release(gxd), td_release(w), td_release(s0);
    return rc;
}

/* ---- backward -----------------------------------------------------------------------------
 * Gradients: of out (gout[0]); for LSTM of S's c columns (each step's c); the rest of S (the
 * saved gates) is state and gets none. */
static int scan_backward(td_node *n, td_tensor *const *gout, td_tensor **gin) {
    int k = kind(n), rc = -1;
    td_tensor *out = n->saved_out[0], *S = k <= K_GRU ? n->saved_out[1] : NULL;
    td_dtype dt = out->dtype;
    size_t es = td_dtype_size(dt);
    int64_t T = out->shape[0], B = out->shape[1], H = out->shape[2], G = n->in[0]->shape[2];
    int64_t ldw = n->in[1]->shape[1], R = saved_per_row(k, H);
    bool f64 = dt == TD_FLOAT64;
    td_tensor *w = td_dense_as(n->in[1], dt), *s0 = td_dense_as(n->in[2], dt), *kdgh, *kdh;
    td_tensor *g0 = gout[0] ? td_dense_as(gout[0], dt) : NULL;
    td_tensor *g1 = k == K_LSTM && gout[1] ? td_dense_as(gout[1], dt) : NULL;
    int64_t sh[3] = {T, B, G}, wsh[2] = {G, ldw}, ssh[3] = {2, B, H};
    td_tensor *dgx = td_empty(sh, 3, dt), *dw = td_zeros(wsh, 2, dt);
    td_tensor *ds = td_zeros(k == K_LSTM ? ssh : ssh + 1, k == K_LSTM ? 3 : 2, dt);
    char *dgh = k == K_GRU ? scratch(T * B * G, dt, &kdgh) : (kdgh = NULL, NULL);
    char *dh = scratch(2 * B * H, dt, &kdh), *dhp = dh ? dh + es * (size_t)(B * H) : NULL;
    stepmm mm = {0};
    if (!w || !s0 || (gout[0] && !g0) || (k == K_LSTM && gout[1] && !g1) || !dgx || !dw || !ds ||
        (k == K_GRU && !dgh) || !dh)
        goto done;
    /* dh' = dgates W_hh: Bm = W_hh (G x H, rows ldw apart) */
    if (stepmm_init(&mm, dt, B, H, G, td_data(w), ldw, false) < 0) goto done;
    const char *S0 = td_data(s0), *O = td_data(out), *SD = S ? td_data(S) : NULL;
    char *DG = td_data(dgx), *DS = td_data(ds);
    char *dc = DS + es * (size_t)(B * H); /* LSTM: the carried dc ends as dc0 in ds[1] */
    memset(dh, 0, es * (size_t)(B * H));
    sjob j = {.B = B, .H = H, .G = G, .R = R, .dh = dh, .dc = dc, .dhp = dhp,
              .relu = k == K_RELU};
    td_unit_fn f = rowfn[k][f64][1];
    for (int64_t t = T - 1; t >= 0; t--) {
        j.go = g0 ? (const char *)td_data(g0) + es * (size_t)(t * B * H) : NULL;
        j.gc = g1 ? (const char *)td_data(g1) + es * (size_t)(t * B * R) : NULL;
        j.dg = DG + es * (size_t)(t * B * G);
        j.hp = t ? O + es * (size_t)((t - 1) * B * H) : S0;
        j.h = (void *)(O + es * (size_t)(t * B * H));
        if (S) j.s = (void *)(SD + es * (size_t)(t * B * R));
        if (k == K_LSTM) {
            j.cp = t ? SD + es * (size_t)((t - 1) * B * R) : S0 + es * (size_t)(B * H);
            j.cps = t ? R : H;
        }
        if (k == K_GRU) j.dgh = dgh + es * (size_t)(t * B * G);
        td_run_units(B, B * G * 4, f, &j);
        /* the carried dh for step t-1: dgates W_hh (+ z dh, GRU's direct path) */
        stepmm_run(&mm, k == K_GRU ? j.dgh : j.dg, G, dh);
        if (k == K_GRU) add_bias(f64, dh, dhp, 1, 1, B * H);
        if (td_poll_interrupt() < 0) goto done;
    }
    memcpy(DS, dh, es * (size_t)(B * H)); /* dh0 */
    if (n->needs_grad[1]) { /* dW_hh = sum_t dgates_t^T h'_t: step 0 reads h0, the rest out */
        const char *D = k == K_GRU ? dgh : DG;
        char *DW = td_data(dw);
        if (td_gemm(dt, G, H, B, D, 1, G, S0, H, 1, false, DW, ldw) < 0 ||
            td_gemm(dt, G, H, (T - 1) * B, D + es * (size_t)(B * G), 1, G, O, H, 1, true, DW,
                    ldw) < 0)
            goto done;
        if (k == K_GRU) col_sums(f64, DW + es * (size_t)H, ldw, D, T * B, G); /* db_hh */
    }
    if (n->needs_grad[0]) gin[0] = dgx, dgx = NULL;
    if (n->needs_grad[1]) gin[1] = dw, dw = NULL;
    if (n->needs_grad[2]) gin[2] = ds, ds = NULL;
    rc = 0;
done:
    stepmm_free(&mm);
    td_release(kdgh), td_release(kdh);
    td_release(w), td_release(s0), td_release(g0), td_release(g1);
    td_release(dgx), td_release(dw), td_release(ds);
    return rc;
}

const td_op td_op_lstm_scan = {
    .name = "lstm_scan",
    .nin = 3,
    .flags = TD_SAVE_OUT,
    .doc = "lstm_scan(gx, w_hh, hc0): an LSTM layer over T steps; out (T x B x H), S (6H, c first)",
    .shape = scan_shape,
    .forward = scan_forward,
    .backward = scan_backward,
};

const td_op td_op_gru_scan = {
    .name = "gru_scan",
    .nin = 3,
    .flags = TD_SAVE_OUT,
    .doc = "gru_scan(gx, w_hh_b, h0): a GRU layer over T steps (w_hh_b = [W_hh | b_hh]); out, S",
    .shape = scan_shape,
    .forward = scan_forward,
    .backward = scan_backward,
};

const td_op td_op_rnn_tanh_scan = {
    .name = "rnn_tanh_scan",
    .nin = 3,
    .flags = TD_SAVE_OUT,
    .doc = "rnn_tanh_scan(gx, w_hh, h0): one tanh RNN layer over T steps; out (T x B x H)",
    .shape = scan_shape,
    .forward = scan_forward,
    .backward = scan_backward,
};

const td_op td_op_rnn_relu_scan = {
    .name = "rnn_relu_scan",
    .nin = 3,
    .flags = TD_SAVE_OUT,
    .doc = "rnn_relu_scan(gx, w_hh, h0): one ReLU RNN layer over T steps; out (T x B x H)",
    .shape = scan_shape,
    .forward = scan_forward,
    .backward = scan_backward,
};
