/* tensor/overlap.c: the one memory-overlap check of in-place writes (td_run's preset outputs,
 * the random fills, the optimizers). A written-to tensor whose elements share memory (expand's
 * stride 0, an overlapping as_strided view) is refused, as in PyTorch: the result would depend
 * on the order of the writes. An input that partially overlaps the output is read from a copy
 * taken before the write; an input that is the output itself, element for element, is fine. */
#include <stdlib.h>

#include "tide.h"

/* Above this many elements the exact test of an unusual layout is not run: it is refused. */
#define EXACT_MAX ((int64_t)1 << 24)

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* The exact test: every element offset, sorted, looking for a repeat. */
static bool repeats(const td_tensor *t, int64_t n) {
    int64_t *off = td_sys_malloc(sizeof *off * (size_t)n), idx[TD_MAX_DIMS] = {0};
    if (!off) return true; /* cannot tell: refusing is the safe answer */
    for (int64_t k = 0; k < n; k++) {
        int64_t o = 0;
        for (int i = 0; i < t->ndim; i++) o += idx[i] * t->stride[i];
        off[k] = o;
        for (int i = t->ndim - 1; i >= 0 && ++idx[i] == t->shape[i]; i--) idx[i] = 0;
    }
    qsort(off, (size_t)n, sizeof *off, cmp_i64);
    bool rep = false;
    for (int64_t k = 1; k < n && !rep; k++) rep = off[k] == off[k - 1];
    free(off);
    return rep;
}

bool td_internal_overlap(const td_tensor *t) {
    int64_t st[TD_MAX_DIMS], sz[TD_MAX_DIMS], n = 1;
    int m = 0;
    for (int i = 0; i < t->ndim; i++) {
        if (t->shape[i] == 0) return false;
        if (t->shape[i] == 1) continue;
        if (t->stride[i] == 0) return true;
        int64_t s = t->stride[i] < 0 ? -t->stride[i] : t->stride[i];
        int j = m++; /* insertion sort by stride: at most TD_MAX_DIMS dims */
        for (; j > 0 && st[j - 1] > s; j--) st[j] = st[j - 1], sz[j] = sz[j - 1];
        st[j] = s, sz[j] = t->shape[i];
        n *= t->shape[i];
    }
    /* the usual layouts: each stride steps past everything the smaller strides reach */
    int64_t reach = 0;
    bool simple = true;
    for (int j = 0; j < m && simple; j++) {
        simple = st[j] > reach;
        reach += (sz[j] - 1) * st[j];
    }
    if (simple) return false;
    return n > EXACT_MAX || repeats(t, n);
}

/* [lo, hi) in bytes of the storage that t's elements occupy; false when t has none */
static bool span(const td_tensor *t, int64_t *lo, int64_t *hi) {
    int64_t es = (int64_t)td_dtype_size(t->dtype), a = t->offset, b = t->offset;
    for (int i = 0; i < t->ndim; i++) {
        if (t->shape[i] == 0) return false;
        int64_t d = (t->shape[i] - 1) * t->stride[i];
        if (d < 0) a += d;
        else b += d;
    }
    *lo = a * es, *hi = (b + 1) * es;
    return true;
}

static bool same_layout(const td_tensor *a, const td_tensor *b) {
    if (a->offset != b->offset || a->dtype != b->dtype || a->ndim != b->ndim) return false;
    for (int i = 0; i < a->ndim; i++)
        if (a->shape[i] != b->shape[i] || (a->shape[i] > 1 && a->stride[i] != b->stride[i]))
            return false;
    return true;
}

td_overlap td_overlap_of(const td_tensor *a, const td_tensor *b) {
    int64_t alo, ahi, blo, bhi;
    if (a == b) return TD_OVERLAP_FULL;
    if (a->storage != b->storage || !span(a, &alo, &ahi) || !span(b, &blo, &bhi) || ahi <= blo ||
        bhi <= alo)
        return TD_OVERLAP_NONE;
    return same_layout(a, b) ? TD_OVERLAP_FULL : TD_OVERLAP_PARTIAL;
}

int td_check_writable(const char *fn, const td_tensor *t) {
    if (!td_internal_overlap(t)) return 0;
    char a[128], b[128];
    return td_error("%s: the tensor written to (shape %s, strides %s) has elements that share "
                    "memory (an expand()ed view?): clone() it before writing in place",
                    fn, td_shape_str(t->shape, t->ndim, a, sizeof a),
                    td_shape_str(t->stride, t->ndim, b, sizeof b));
}

int td_inplace_inputs(const char *fn, const td_tensor *out, td_tensor *const *in, int nin,
                      td_tensor **local) {
    if (td_check_writable(fn, out) < 0) return -1;
    for (int i = 0; i < nin; i++) {
        local[i] = NULL;
        if (!in[i] || td_overlap_of(out, in[i]) != TD_OVERLAP_PARTIAL) continue;
        if (!(local[i] = td_apply1(&td_op_clone, in[i], NULL))) {
            while (i--) td_release(local[i]);
            return -1;
        }
    }
    return 0;
}
