/* tensor/ops/embedding.c: embedding(idx, weight), rows of a V x D table picked by 1-based int64
 * indices of any shape (K of them): out = idx.shape x D. Backward adds each output row's
 * gradient into the weight row it came from (index-add); idx gets none. */
#include "nn.h"

#include <string.h>

#define RB 64 /* output rows per unit */

static int embedding_shape(td_node *n) {
    td_tensor *idx = n->in[0], *w = n->in[1];
    char s[128];
    if (idx->dtype != TD_INT64)
        return td_error("embedding: expected int64 indices, got %s", td_dtype_name(idx->dtype));
    if (w->ndim != 2 || !td_dtype_is_float(w->dtype))
        return td_error("embedding: expected a 2-D float weight (num_embeddings x dim), got %s %s",
                        td_shape_str(w->shape, w->ndim, s, sizeof s), td_dtype_name(w->dtype));
    if (idx->ndim + 1 > TD_MAX_DIMS)
        return td_error("embedding: indices have %d dims, at most %d allowed", idx->ndim,
                        TD_MAX_DIMS - 1);
    td_meta *m = &n->meta[0];
    m->ndim = idx->ndim + 1;
    memcpy(m->shape, idx->shape, sizeof(int64_t) * (size_t)idx->ndim);
    m->shape[idx->ndim] = w->shape[1];
    m->dtype = w->dtype;
    return 0;
}

/* every index in 1..V, or -1 + an error naming the first one that is not */
static int check_range(const int64_t *ix, int64_t K, int64_t V) {
    for (int64_t k = 0; k < K; k++)
        if (ix[k] < 1 || ix[k] > V)
            return td_error("embedding: index %lld out of range 1..%lld (position %lld)",
                            (long long)ix[k], (long long)V, (long long)(k + 1));
    return 0;
}

typedef struct ejob {
    char *out;
    const char *w;
    const int64_t *ix;
    int64_t K;
    size_t row; /* bytes per row */
} ejob;

static void gather_rows(void *vj, int64_t u) {
    const ejob *j = vj;
    int64_t k1 = (u + 1) * RB < j->K ? (u + 1) * RB : j->K;
    for (int64_t k = u * RB; k < k1; k++)
        memcpy(j->out + (size_t)k * j->row, j->w + (size_t)(j->ix[k] - 1) * j->row, j->row);
}

static int embedding_forward(td_node *n) {
    td_tensor *y = n->out[0];
    td_tensor *ix = td_dense_as(n->in[0], TD_INT64), *w = td_dense_as(n->in[1], y->dtype);
    int rc = -1;
    if (!ix || !w) goto done;
    int64_t K = td_numel(ix), V = w->shape[0], D = w->shape[1];
    if (check_range(td_data(ix), K, V) < 0) goto done;
    ejob j = {td_data(y), td_data(w), td_data(ix), K, (size_t)D * td_dtype_size(w->dtype)};
    if (D > 0) td_run_units((K + RB - 1) / RB, K * D, gather_rows, &j);
    rc = td_poll_interrupt();
done:
    td_release(ix), td_release(w);
    return rc;
}

/* serial over the indices (repeated indices add into one row, in a fixed order); the row adds
 * vectorise */
#define EMB_BACK(sfx, T)                                                                           \
    static void index_add_##sfx(T *gw, const T *g, const int64_t *ix, int64_t K, int64_t D) {      \
        for (int64_t k = 0; k < K && !td_interrupted; k++) {                                       \
            T *dst = gw + (ix[k] - 1) * D;                                                         \
            const T *src = g + k * D;                                                              \
            for (int64_t d = 0; d < D; d++) dst[d] += src[d];                                      \
        }                                                                                          \
    }
EMB_BACK(f32, float)
EMB_BACK(f64, double)

static int embedding_backward(td_node *n, td_tensor *const *gout, td_tensor **gin) {
    td_tensor *w = n->in[1];
    if (!n->needs_grad[1]) return 0;
    td_tensor *ix = td_dense_as(n->in[0], TD_INT64), *g = td_dense_as(gout[0], w->dtype);
    td_tensor *gw = td_zeros(w->shape, 2, w->dtype);
    int rc = -1;
    if (!ix || !g || !gw) goto done;
    int64_t K = td_numel(ix), V = w->shape[0], D = w->shape[1];
    if (check_range(td_data(ix), K, V) < 0) goto done; /* idx may have changed since forward */
    if (w->dtype == TD_FLOAT32) index_add_f32(td_data(gw), td_data(g), td_data(ix), K, D);
    else index_add_f64(td_data(gw), td_data(g), td_data(ix), K, D);
    if ((rc = td_poll_interrupt()) == 0) gin[1] = gw, gw = NULL;
done:
    td_release(ix), td_release(g), td_release(gw);
    return rc;
}

const td_op td_op_embedding = {
    .name = "embedding",
    .nin = 2,
    .doc = "rows of weight (num_embeddings x dim) picked by 1-based int64 indices of any shape",
    .shape = embedding_shape,
    .forward = embedding_forward,
    .backward = embedding_backward,
};
