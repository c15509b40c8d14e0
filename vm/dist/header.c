/* vm/dist/header.c: filling and comparing collective headers (header.h). */
#include <stdio.h>
#include <string.h>

#include "header.h"

void dist_header_fill(int64_t *h, const td_tensor *t, int64_t kind) {
    memset(h, 0, sizeof(int64_t) * DIST_HDR);
    h[DIST_H_KIND] = kind;
    h[DIST_H_DTYPE] = t->dtype;
    h[DIST_H_NDIM] = t->ndim;
    memcpy(h + DIST_H_SHAPE, t->shape, sizeof(int64_t) * (size_t)t->ndim);
}

static bool valid(const int64_t *h, const char *what, const char *const *kinds) {
    if (h[DIST_H_DTYPE] < 0 || h[DIST_H_DTYPE] >= TD_NDTYPES) return false;
    if (h[DIST_H_NDIM] < 0 || h[DIST_H_NDIM] > TD_MAX_DIMS) return false;
    for (int d = 0; d < h[DIST_H_NDIM]; d++)
        if (h[DIST_H_SHAPE + d] < 0) return false;
    if (what && kinds) {
        int64_t k = 0;
        while (kinds[k]) k++;
        if (h[DIST_H_KIND] < 0 || h[DIST_H_KIND] >= k) return false;
    }
    return true;
}

static void describe(char *buf, size_t n, const int64_t *h, const char *what,
                     const char *const *kinds, const dist_fmt *f) {
    if (!valid(h, what, kinds)) {
        snprintf(buf, n, "a header no tide rank sends (another program or version?)");
        return;
    }
    char shape[128];
    f->shape_str(h + DIST_H_SHAPE, (int)h[DIST_H_NDIM], shape, sizeof shape);
    int k = snprintf(buf, n, "%s of shape %s", f->dtype_name((td_dtype)h[DIST_H_DTYPE]), shape);
    if (!what || k < 0 || (size_t)k >= n) return;
    if (kinds)
        snprintf(buf + k, n - (size_t)k, ", %s \"%s\"", what, kinds[h[DIST_H_KIND]]);
    else
        snprintf(buf + k, n - (size_t)k, ", %s %lld", what, (long long)h[DIST_H_KIND]);
}

int dist_header_agree(const int64_t *all, int size, const char *what, const char *const *kinds,
                      const dist_fmt *f, char *msg, size_t n) {
    for (int r = 1; r < size; r++) {
        const int64_t *o = all + (size_t)r * DIST_HDR;
        if (memcmp(o, all, sizeof(int64_t) * DIST_HDR) == 0) continue;
        char a[192], b[192];
        describe(a, sizeof a, all, what, kinds, f);
        describe(b, sizeof b, o, what, kinds, f);
        snprintf(msg, n, "rank 1 has %s, rank %d has %s", a, r + 1, b);
        return -1;
    }
    return 0;
}
