/* vm/dist/header.h: the header every rank sends before a collective (dtype, shape, and the op or
 * the root), and the check that all ranks sent the same. Plain C over int64 words, apart from
 * MPI and Lua, so that tests/fuzz/fuzz_dist_header.c can feed it any bytes a peer could send. */
#ifndef TIDE_DIST_HEADER_H
#define TIDE_DIST_HEADER_H

#include "../../tensor/tide.h"

enum { DIST_H_KIND, DIST_H_DTYPE, DIST_H_NDIM, DIST_H_SHAPE, DIST_HDR = DIST_H_SHAPE + TD_MAX_DIMS };

typedef struct dist_fmt { /* the core's formatting (the module reaches it through its C API) */
    const char *(*dtype_name)(td_dtype t);
    char *(*shape_str)(const int64_t *shape, int ndim, char *buf, size_t n);
} dist_fmt;

/* h[DIST_HDR] = t's dtype and shape, and kind (the op's index or the root) */
void dist_header_fill(int64_t *h, const td_tensor *t, int64_t kind);

/* all: `size` headers, rank 1's first. Returns 0 when every header equals rank 1's; else -1 with
 * msg = "rank 1 has <header>, rank k has <header>" for the first k that differs. A header shows
 * its kind as kinds[kind] (`what` is "op"; kinds NULL-terminated), as "<what> <kind>", or not at
 * all (what NULL). A header no tide rank would send is shown as such, never read past. */
int dist_header_agree(const int64_t *all, int size, const char *what, const char *const *kinds,
                      const dist_fmt *f, char *msg, size_t n);

#endif
