/* tensor/iter.c: broadcasting and the elementwise iterator. Operands are broadcast to the
 * output's shape (operand 0), dims are coalesced, and a 1-D loop runs over rows with byte
 * strides; above TD_PAR_GRAIN elements the flat range is split across OpenMP threads. */
#include <string.h>

#include "tide.h"
#ifdef _OPENMP
#include <omp.h>
#endif

int td_broadcast_shape(const char *fn, td_tensor *const *ts, int n, int64_t *shape, int *ndim) {
    int nd = 0;
    for (int k = 0; k < n; k++)
        if (ts[k]->ndim > nd) nd = ts[k]->ndim;
    for (int i = 0; i < nd; i++) shape[i] = 1;
    for (int k = 0; k < n; k++) {
        const td_tensor *t = ts[k];
        for (int i = 0; i < t->ndim; i++) {
            int j = nd - t->ndim + i;
            int64_t a = shape[j], b = t->shape[i];
            if (a == b || b == 1) continue;
            if (a == 1) {
                shape[j] = b;
                continue;
            }
            char s1[128], s2[128];
            td_shape_str(ts[0]->shape, ts[0]->ndim, s1, sizeof s1);
            td_shape_str(t->shape, t->ndim, s2, sizeof s2);
            return td_error("%s: shapes %s and %s cannot be broadcast (dim %d: %lld vs %lld)", fn,
                            s1, s2, j + 1, (long long)a, (long long)b);
        }
    }
    *ndim = nd;
    return 0;
}

typedef struct iter {
    int nops, ndim;
    int64_t shape[TD_MAX_DIMS];
    int64_t stride[TD_ITER_MAX][TD_MAX_DIMS]; /* bytes */
    char *base[TD_ITER_MAX];
} iter;

static void iter_init(iter *it, td_tensor *const *ops, int nops) {
    const td_tensor *o = ops[0];
    it->nops = nops;
    int nd = 0;
    for (int i = 0; i < o->ndim; i++) {
        if (o->shape[i] == 1) continue; /* size-1 dims carry no iteration */
        it->shape[nd] = o->shape[i];
        for (int k = 0; k < nops; k++) {
            const td_tensor *t = ops[k];
            int j = i - (o->ndim - t->ndim);
            int64_t es = (int64_t)td_dtype_size(t->dtype);
            it->stride[k][nd] = (j < 0 || t->shape[j] == 1) ? 0 : t->stride[j] * es;
        }
        nd++;
    }
    /* merge dim d-1 into d when every operand steps through them as one */
    int w = 0;
    for (int d = 0; d < nd; d++) {
        if (w > 0) {
            bool merge = true;
            for (int k = 0; k < nops && merge; k++)
                merge = it->stride[k][w - 1] == it->stride[k][d] * it->shape[d];
            if (merge) {
                it->shape[w - 1] *= it->shape[d];
                for (int k = 0; k < nops; k++) it->stride[k][w - 1] = it->stride[k][d];
                continue;
            }
        }
        it->shape[w] = it->shape[d];
        for (int k = 0; k < nops; k++) it->stride[k][w] = it->stride[k][d];
        w++;
    }
    if (w == 0) { /* a single element */
        it->shape[0] = 1;
        for (int k = 0; k < nops; k++) it->stride[k][0] = 0;
        w = 1;
    }
    it->ndim = w;
    for (int k = 0; k < nops; k++) it->base[k] = td_data(ops[k]);
}

/* Runs the flat range [begin, end) row by row. */
static void iter_range(const iter *it, int64_t begin, int64_t end, td_loop loop, const void *ctx) {
    int nd = it->ndim, last = nd - 1;
    int64_t coord[TD_MAX_DIMS], rem = begin;
    for (int d = last; d >= 0; d--) {
        coord[d] = rem % it->shape[d];
        rem /= it->shape[d];
    }
    int64_t s[TD_ITER_MAX];
    for (int k = 0; k < it->nops; k++) s[k] = it->stride[k][last];
    int64_t pos = begin;
    while (pos < end) {
        char *p[TD_ITER_MAX];
        for (int k = 0; k < it->nops; k++) {
            char *q = it->base[k];
            for (int d = 0; d < nd; d++) q += coord[d] * it->stride[k][d];
            p[k] = q;
        }
        int64_t n = it->shape[last] - coord[last];
        if (n > end - pos) n = end - pos;
        loop(p, s, n, ctx);
        pos += n;
        coord[last] += n;
        for (int d = last; d > 0 && coord[d] == it->shape[d]; d--) {
            coord[d] = 0;
            coord[d - 1]++;
        }
        if (td_interrupted) return;
    }
}

/* Whether the whole range is one row: operand 0 contiguous, and every other operand either
 * contiguous with operand 0's shape or one element broadcast (a 0-dim or size-1 tensor, or an
 * expanded view whose strides are all 0, as the gradient of a sum is). Fills the data pointers
 * p[], byte strides s[] and the element count. One pass per operand, no calls: this runs for
 * every 4-element add. */
static bool flat(td_tensor *const *ops, int nops, char **p, int64_t *s, int64_t *total) {
    const td_tensor *o = ops[0];
    for (int k = 0; k < nops; k++) {
        const td_tensor *t = ops[k];
        int64_t es = td_dtype_sizes[t->dtype], n = 1;
        p[k] = (char *)t->storage->data + t->offset * es;
        s[k] = es;
        int i = t->ndim - 1;
        bool same = t->ndim == o->ndim;
        for (; same && i >= 0 && t->shape[i] == o->shape[i]; i--) {
            if (t->stride[i] != n && t->shape[i] != 1) break;
            n *= t->shape[i];
        }
        if (k == 0) *total = n;
        if (same && i < 0) continue; /* contiguous, operand 0's shape */
        if (k == 0) return false;
        for (i = 0; i < t->ndim; i++)
            if (t->shape[i] != 1 && t->stride[i] != 0) return false;
        s[k] = 0; /* one element, broadcast */
    }
    return true;
}

int td_foreach(td_tensor *const *ops, int nops, td_loop loop, const void *ctx) {
    int64_t total, s[TD_ITER_MAX];
    char *p[TD_ITER_MAX];
    if (flat(ops, nops, p, s, &total) && (total < TD_PAR_GRAIN || td_get_num_threads() <= 1)) {
        if (total > 0) loop(p, s, total, ctx);
        return td_interrupted ? td_poll_interrupt() : 0; /* no call on the common path */
    }
    if ((total = td_numel(ops[0])) == 0) return 0;
    int nt = total < TD_PAR_GRAIN ? 1 : td_get_num_threads();
    iter it;
    iter_init(&it, ops, nops);
    if (nt <= 1) {
        iter_range(&it, 0, total, loop, ctx);
    } else {
#pragma omp parallel num_threads(nt)
        {
#ifdef _OPENMP
            int id = omp_get_thread_num(), m = omp_get_num_threads();
#else
            int id = 0, m = 1;
#endif
            int64_t chunk = (total + m - 1) / m;
            int64_t b = id * chunk, e = b + chunk < total ? b + chunk : total;
            if (b < e) iter_range(&it, b, e, loop, ctx);
        }
    }
    return td_poll_interrupt();
}
