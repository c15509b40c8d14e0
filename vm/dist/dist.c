/* vm/dist/dist.c: luaopen_tide_dist, tide's binding of Open MPI: the world (init, rank, size,
 * finalize; a world of one when not launched by mpirun), the collectives on tensors, and what a
 * failing rank does (it aborts the job with a message, so that the others never wait forever).
 * Collectives first exchange a small header (dtype, shape, op or root) so that tensors that
 * differ between ranks are an error on every rank, not silently mixed bytes. */
#include <dlfcn.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dist.h"
#include "header.h"

dist_world dist_w;
const tdL_capi *dist_capi;
static bool finalized; /* MPI cannot be initialized again in the same process */

MPI_Datatype dist_mpi_type(td_dtype t) {
    switch (t) {
    case TD_FLOAT32: return MPI_FLOAT;
    case TD_FLOAT64: return MPI_DOUBLE;
    case TD_INT64: return MPI_INT64_T;
    default: return MPI_DATATYPE_NULL;
    }
}

void dist_checkinit(lua_State *L, const char *fn) {
    if (!dist_w.initialized) luaL_error(L, "%s: call dist.init() first", fn);
}

int dist_mpierror(lua_State *L, const char *fn, int rc) {
    char msg[MPI_MAX_ERROR_STRING];
    int len = 0;
    MPI_Error_string(rc, msg, &len);
    return luaL_error(L, "%s: MPI failed on rank %d: %s", fn, dist_w.rank + 1, msg);
}

/* ---- the world ------------------------------------------------------------------------------ */

/* mpirun ends the job with SIGTERM when a rank dies: say why before dying of it. The message is
 * made at init (snprintf is not async-signal-safe). */
static char term_msg[256];
static struct sigaction old_term;

/* A rank that ends without dist.finalize() either failed (its error is printed above: stop the
 * others now rather than let them wait in their next collective) or simply ended. */
static void at_exit(int status, void *ud) {
    (void)ud;
    if (!dist_w.initialized || !dist_w.mpi) return;
    dist_w.initialized = false;
    if (status != 0) {
        sigaction(SIGTERM, &old_term, NULL); /* this rank's message says it all */
        fprintf(stderr, "tide.dist: rank %d of %d failed (exit status %d, its error is above): "
                        "aborting the job\n", dist_w.rank + 1, dist_w.size, status);
        MPI_Abort(MPI_COMM_WORLD, status);
    }
    MPI_Finalize();
}

static void on_term(int sig) {
    ssize_t r = write(2, term_msg, strlen(term_msg));
    (void)r;
    sigaction(SIGTERM, &old_term, NULL);
    raise(sig);
}

static bool launched(void) { /* Open MPI's mpirun, or a PMI(x) launcher (MPICH, srun) */
    return getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMIX_RANK") || getenv("PMI_RANK");
}

static int start_mpi(lua_State *L) {
    /* Lua loads this module RTLD_LOCAL; Open MPI's plugins (mca_*.so) need libmpi's symbols
     * in the global scope, or MPI_Init fails to open them. */
    if (!dlopen("libmpi.so.40", RTLD_NOW | RTLD_GLOBAL | RTLD_NOLOAD))
        dlopen("libmpi.so", RTLD_NOW | RTLD_GLOBAL | RTLD_NOLOAD);
    /* Blocking calls poll; yielding while they do lets a rank that shares the core catch up
     * (mpirun sets this only when it sees more ranks than slots). */
    setenv("OMPI_MCA_mpi_yield_when_idle", "1", 0);
    int done = 0, provided;
    MPI_Initialized(&done);
    if (!done && MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
        return luaL_error(L, "dist.init: MPI_Init failed");
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, &dist_w.rank);
    MPI_Comm_size(MPI_COMM_WORLD, &dist_w.size);
    static bool hooked;
    if (!hooked) {
        hooked = true;
        on_exit(at_exit, NULL);
        snprintf(term_msg, sizeof term_msg, "tide.dist: rank %d of %d stopped: mpirun ended the "
                 "job because another rank failed (mpirun's message names it, counting ranks "
                 "from 0)\n", dist_w.rank + 1, dist_w.size);
        struct sigaction sa = {.sa_handler = on_term};
        sigemptyset(&sa.sa_mask);
        sigaction(SIGTERM, &sa, &old_term);
    }
    dist_w.mpi = true;
    /* Ranks sharing a machine share its cores: each keeps at most its share of threads (the
     * OpenMP default, all cores per rank, would make them spin against each other). */
    const char *local = getenv("OMPI_COMM_WORLD_LOCAL_SIZE");
    long cores = sysconf(_SC_NPROCESSORS_ONLN), share = local ? cores / atol(local) : cores;
    if (!getenv("OMP_NUM_THREADS") && share >= 1 && dist_capi->get_num_threads() > share)
        dist_capi->set_num_threads((int)share);
    return 0;
}

/* dist.init() -> rank, size: idempotent */
static int l_init(lua_State *L) {
    if (!dist_w.initialized) {
        if (finalized)
            return luaL_error(L, "dist.init: the world was finalized; MPI cannot start twice in "
                                 "one process");
        if (launched())
            start_mpi(L);
        else
            dist_w.rank = 0, dist_w.size = 1, dist_w.mpi = false;
        dist_w.initialized = true;
    }
    lua_pushinteger(L, dist_w.rank + 1);
    lua_pushinteger(L, dist_w.size);
    return 2;
}

static int l_finalize(lua_State *L) {
    (void)L;
    if (!dist_w.initialized) return 0;
    dist_w.initialized = false;
    if (dist_w.mpi) {
        MPI_Finalize();
        finalized = true;
    }
    return 0;
}

static int l_is_initialized(lua_State *L) {
    lua_pushboolean(L, dist_w.initialized);
    return 1;
}

static int l_rank(lua_State *L) {
    dist_checkinit(L, "dist.rank");
    lua_pushinteger(L, dist_w.rank + 1);
    return 1;
}

static int l_size(lua_State *L) {
    dist_checkinit(L, "dist.size");
    lua_pushinteger(L, dist_w.size);
    return 1;
}

static int l_barrier(lua_State *L) {
    dist_checkinit(L, "dist.barrier");
    int rc = dist_w.mpi ? MPI_Barrier(MPI_COMM_WORLD) : MPI_SUCCESS;
    if (rc != MPI_SUCCESS) return dist_mpierror(L, "dist.barrier", rc);
    return 0;
}

/* ---- collectives ---------------------------------------------------------------------------- */

static const char *const ops[] = {"sum", "mean", "max", "min", NULL};

/* The collective's tensor at 1, checked: a float32, float64 or int64 contiguous tensor. */
static td_tensor *check_arg(lua_State *L, const char *fn) {
    dist_checkinit(L, fn);
    td_tensor *t = dist_capi->checktensor(L, 1);
    if (dist_mpi_type(t->dtype) == MPI_DATATYPE_NULL)
        luaL_error(L, "%s: expected a float32, float64 or int64 tensor, got %s", fn,
                   dist_capi->dtype_name(t->dtype));
    if (!dist_capi->is_contiguous(t))
        luaL_error(L, "%s: the tensor is not contiguous (a view such as a transpose): pass "
                      "t:contiguous() and use the result", fn);
    return t;
}

/* Every rank sends its header (kind: the op or the root) and checks that all agree: a
 * mismatch raises the same error on every rank, naming rank 1's header and the first other. */
static void agree(lua_State *L, const char *fn, const td_tensor *t, int64_t kind, const char *what,
                  const char *const *kinds) {
    if (!dist_w.mpi || dist_w.size == 1) return;
    int64_t h[DIST_HDR];
    dist_header_fill(h, t, kind);
    int64_t *all = lua_newuserdatauv(L, sizeof h * (size_t)dist_w.size, 0);
    int rc = MPI_Allgather(h, DIST_HDR, MPI_INT64_T, all, DIST_HDR, MPI_INT64_T, MPI_COMM_WORLD);
    if (rc != MPI_SUCCESS) dist_mpierror(L, fn, rc);
    const dist_fmt f = {dist_capi->dtype_name, dist_capi->shape_str};
    char msg[512];
    if (dist_header_agree(all, dist_w.size, what, kinds, &f, msg, sizeof msg) < 0)
        luaL_error(L, "%s: the ranks disagree: %s", fn, msg);
    lua_pop(L, 1);
}

/* MPI counts are int: long tensors go in pieces of at most 2^30 elements. */
#define PIECE ((int64_t)1 << 30)
static const MPI_Op mop[] = {MPI_SUM, MPI_SUM, MPI_MAX, MPI_MIN}; /* by index in ops */

typedef int (*piece_fn)(void *p, int count, MPI_Datatype ty, int arg);
static int allreduce_piece(void *p, int count, MPI_Datatype ty, int op) {
    return MPI_Allreduce(MPI_IN_PLACE, p, count, ty, mop[op], MPI_COMM_WORLD);
}
static int broadcast_piece(void *p, int count, MPI_Datatype ty, int root) {
    return MPI_Bcast(p, count, ty, root, MPI_COMM_WORLD);
}

/* Runs f over t's elements, piece by piece, then bumps t's version (written in place). */
static void in_pieces(lua_State *L, const char *fn, td_tensor *t, piece_fn f, int arg) {
    char *p = dist_capi->data(t);
    size_t item = dist_item(t->dtype);
    for (int64_t at = 0, n = dist_capi->numel(t); at < n; at += PIECE) {
        int rc = f(p + (size_t)at * item, (int)(n - at < PIECE ? n - at : PIECE),
                   dist_mpi_type(t->dtype), arg);
        if (rc != MPI_SUCCESS) dist_mpierror(L, fn, rc);
    }
    dist_capi->bump_version(t);
}

void dist_scale(td_tensor *t, double f) {
    int64_t n = dist_capi->numel(t);
    if (t->dtype == TD_FLOAT32) {
        float *p = dist_capi->data(t), g = (float)f;
        for (int64_t i = 0; i < n; i++) p[i] *= g;
    } else {
        double *p = dist_capi->data(t);
        for (int64_t i = 0; i < n; i++) p[i] *= f;
    }
}

/* dist.allreduce(t, op = "sum") -> t: in place, every rank gets the reduction */
static int l_allreduce(lua_State *L) {
    const char *fn = "dist.allreduce";
    td_tensor *t = check_arg(L, fn);
    const char *name = luaL_optstring(L, 2, "sum");
    int op = 0;
    while (ops[op] && strcmp(ops[op], name) != 0) op++;
    if (!ops[op])
        return luaL_error(L, "%s: unknown op '%s' (expected \"sum\", \"mean\", \"max\" or "
                             "\"min\")", fn, name);
    if (op == 1 && t->dtype == TD_INT64)
        return luaL_error(L, "%s: \"mean\" needs a float tensor, got int64 (use \"sum\")", fn);
    agree(L, fn, t, op, "op", ops);
    if (dist_w.mpi && dist_w.size > 1) {
        in_pieces(L, fn, t, allreduce_piece, op);
        if (op == 1) dist_scale(t, 1.0 / dist_w.size);
    }
    lua_settop(L, 1);
    return 1;
}

/* dist.broadcast(t, root = 1) -> t: every rank gets root's values, in place */
static int l_broadcast(lua_State *L) {
    const char *fn = "dist.broadcast";
    td_tensor *t = check_arg(L, fn);
    lua_Integer root = luaL_optinteger(L, 2, 1);
    if (root < 1 || root > dist_w.size)
        return luaL_error(L, "%s: root must be a rank from 1 to %d, got %I", fn, dist_w.size,
                          root);
    agree(L, fn, t, root, "root", NULL);
    if (dist_w.mpi && dist_w.size > 1) in_pieces(L, fn, t, broadcast_piece, (int)root - 1);
    lua_settop(L, 1);
    return 1;
}

/* dist.allgather(t) -> a new tensor of shape size x t's shape: row r is rank r's t */
static int l_allgather(lua_State *L) {
    const char *fn = "dist.allgather";
    td_tensor *t = check_arg(L, fn);
    if (t->ndim == TD_MAX_DIMS)
        return luaL_error(L, "%s: the result would have %d dims (at most %d)", fn,
                          TD_MAX_DIMS + 1, TD_MAX_DIMS);
    int64_t n = dist_capi->numel(t);
    if (n > INT_MAX) return luaL_error(L, "%s: at most %d elements per rank", fn, INT_MAX);
    agree(L, fn, t, 0, NULL, NULL);
    int64_t shape[TD_MAX_DIMS] = {dist_w.size};
    memcpy(shape + 1, t->shape, sizeof(int64_t) * (size_t)t->ndim);
    td_tensor *out = dist_capi->empty(shape, t->ndim + 1, t->dtype);
    if (!out) return luaL_error(L, "%s: %s", fn, dist_capi->errmsg());
    dist_capi->pushtensor(L, out);
    if (!dist_w.mpi || dist_w.size == 1) {
        if (n) memcpy(dist_capi->data(out), dist_capi->data(t), (size_t)n * dist_item(t->dtype));
        return 1;
    }
    MPI_Datatype ty = dist_mpi_type(t->dtype);
    int rc = MPI_Allgather(dist_capi->data(t), (int)n, ty, dist_capi->data(out), (int)n, ty,
                           MPI_COMM_WORLD);
    if (rc != MPI_SUCCESS) return dist_mpierror(L, fn, rc);
    return 1;
}

static const luaL_Reg funcs[] = {
    {"init", l_init},
    {"finalize", l_finalize},
    {"is_initialized", l_is_initialized},
    {"rank", l_rank},
    {"size", l_size},
    {"barrier", l_barrier},
    {"allreduce", l_allreduce},
    {"broadcast", l_broadcast},
    {"allgather", l_allgather},
    {NULL, NULL},
};

/* require "tide.dist": the C functions above, then stdlib/tide/ddp.lua adds DataParallel. */
int luaopen_tide_dist(lua_State *L);
int luaopen_tide_dist(lua_State *L) {
    lua_getglobal(L, "require");
    lua_pushstring(L, "tide.core");
    lua_call(L, 1, 0);
    lua_getfield(L, LUA_REGISTRYINDEX, TDL_CAPI);
    dist_capi = lua_touserdata(L, -1);
    if (!dist_capi || dist_capi->version != TDL_CAPI_VERSION)
        return luaL_error(L, "tide.dist: tide.core is of another version than this module");
    lua_pop(L, 1);
    luaL_newlib(L, funcs);
    dist_register_reducer(L);
    lua_getglobal(L, "require");
    lua_pushstring(L, "tide.ddp");
    lua_call(L, 1, 1);
    lua_pushvalue(L, -2);
    lua_call(L, 1, 0);
    return 1;
}
