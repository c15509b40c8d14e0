/* vm/dist/dist.h: what the two files of the tide.dist module (built apart from core: it links
 * Open MPI, which a script that never distributes must not load) share: the world and the
 * core's C API. */
#ifndef TIDE_DIST_H
#define TIDE_DIST_H

#include <mpi.h>

#include "../tdl.h"

typedef struct dist_world {
    bool initialized; /* dist.init() ran (and dist.finalize() did not) */
    bool mpi;         /* launched by mpirun: MPI is initialized; else a world of one */
    int rank, size;   /* rank 0-based here; Lua sees rank + 1 */
} dist_world;

extern dist_world dist_w;
extern const tdL_capi *dist_capi;

static inline size_t dist_item(td_dtype t) { /* bytes per element */
    return dist_capi->dtype_sizes[t];
}

/* The MPI type of a tensor's dtype (float32, float64, int64), or MPI_DATATYPE_NULL. */
MPI_Datatype dist_mpi_type(td_dtype t);
/* t *= f, t a contiguous float32 or float64 tensor (a sum becomes a mean) */
void dist_scale(td_tensor *t, double f);
/* Raises "fn: call dist.init() first" unless the world is up. */
void dist_checkinit(lua_State *L, const char *fn);
/* Raises fn + the text of MPI error code rc (after MPI_ERRORS_RETURN). */
int dist_mpierror(lua_State *L, const char *fn, int rc);

/* vm/dist/reducer.c: dist._reducer(params, bucket_bytes), DataParallel's gradient averaging */
void dist_register_reducer(lua_State *L);

#endif
