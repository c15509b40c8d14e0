/* vm/tdl.h: the binding vocabulary shared by vm/ files (tdL_* mirrors luaL_*). Every checker
 * raises a Lua error naming the function and the offending value; none allocates a tensor
 * before its checks are done. */
#ifndef TIDE_TDL_H
#define TIDE_TDL_H

#include <lauxlib.h>
#include <lua.h>

#include "../tensor/tide.h"

#define TDL_TENSOR "tide.Tensor"

/* The userdata of a tensor. tdL_totensor recognises boxes by size and magic instead of a
 * metatable lookup: it runs twice per operator call, the hottest path in tide. */
#define TDL_MAGIC 0x7469646554656e73ULL /* "tideTens" */
typedef struct tdL_box {
    uint64_t magic; /* TDL_MAGIC */
    td_tensor *t;   /* one reference; NULL once released (__gc and __close are idempotent) */
} tdL_box;

/* A small tensor (vm/small.c): an elementwise result of at most TDL_SMALL_BYTES that keeps its
 * values in its own userdata, with no finalizer, until tdL_totensor promotes it to a regular
 * box (magic TDL_MAGIC, b.t set). */
#define TDL_SMALL 0x74696465536d616cULL /* "tideSmal" */
#define TDL_SMALL_BYTES 64
#define TDL_SMALL_DIMS 4
#define TDL_SMALLMT "tide.Tensor.small" /* its metatable: the tensor one without __gc */
typedef struct tdL_small {
    tdL_box b; /* magic TDL_SMALL and t NULL while the values are below */
    int32_t ndim;
    td_dtype dtype;
    int64_t shape[TDL_SMALL_DIMS];
    _Alignas(16) char data[TDL_SMALL_BYTES];
} tdL_small;
bool tdL_istensor(lua_State *L, int i); /* a box of either kind, live or closed */
td_tensor *tdL_promote(lua_State *L, int i, tdL_small *s); /* the regular tensor of box i */
/* The op on its 1 or 2 arguments as a small tensor when they allow (pushed: returns 1), else 0.
 * For op closures whose upvalue 3 is the small metatable. */
int tdL_small_op(lua_State *L, const td_op *op, int nin);
void tdL_small_metatable(lua_State *L); /* once the tensor metatable is complete */

/* tensors */
tdL_box *tdL_newbox(lua_State *L);              /* pushes an empty box: fill b->t afterwards */
/* The same with the metatable at index mt (absolute or an upvalue): the op closures carry it as
 * an upvalue, since luaL_setmetatable's lookup by name cost ~120 instructions per result. */
tdL_box *tdL_newboxmt(lua_State *L, int mt);
int tdL_pushtensor(lua_State *L, td_tensor *t); /* takes the ref; NULL raises td_errmsg() */
td_tensor *tdL_checktensor(lua_State *L, int i);
td_tensor *tdL_totensor(lua_State *L, int i);   /* NULL when not a (live) tensor */
/* A tensor or a Lua number (a 0-dim tensor of dtype `like`): a new ref to release. */
td_tensor *tdL_checkoperand(lua_State *L, int i, td_dtype like, const char *fn);
/* A Lua number as a td_num: integers stay integers (exact beyond 2^53). */
td_num tdL_tonum(lua_State *L, int i);
/* A value written into a dtype dt tensor (fill_, t[k] = v): a number must fit dt by
 * tensor/convert.c's rule (else an error naming fn), and becomes a 0-dim tensor of dtype dt;
 * a tensor is taken as tdL_checkoperand takes it. New ref. */
td_tensor *tdL_checkvalue(lua_State *L, int i, td_dtype dt, const char *fn);
int tdL_error(lua_State *L);                    /* raises td_errmsg() */
void tdL_gcpressure(lua_State *L);              /* steps the GC by the tensor bytes made */
void tdL_pool_install(lua_State *L); /* small-block cache in front of the state's allocator */

/* arguments */
int64_t tdL_checkdim(lua_State *L, int i, int ndim, const char *fn); /* 1-based/neg -> 0-based */
int64_t tdL_optdim(lua_State *L, int i, int ndim, const char *fn, int64_t def);
int64_t tdL_checkpos(lua_State *L, int i, int64_t size, const char *fn, const char *what);
/* a shape as numbers from i to top, or one table at i; returns ndim */
int tdL_checkshape(lua_State *L, int i, int64_t *shape, const char *fn);
td_dtype tdL_checkdtype(lua_State *L, int i, const char *fn);
/* an options table at i (0 or none: no options): unknown keys raise "fn: unknown option 'pading'" */
void tdL_checkopts(lua_State *L, int i, const char *fn, const char *const *known);
td_dtype tdL_optdtypefield(lua_State *L, int i, const char *fn, td_dtype def);
int tdL_optboolfield(lua_State *L, int i, const char *key, int def);

/* The part of the C API a separately built module (tide.dist, vm/dist/) calls, found in the
 * registry field TDL_CAPI as a light userdata: stock lua5.4 loads core.so with RTLD_LOCAL, so
 * its symbols are not visible to other modules. A module checks `version` first. */
#define TDL_CAPI "tide.capi"
#define TDL_CAPI_VERSION 1
typedef struct tdL_capi {
    int version;
    td_tensor *(*checktensor)(lua_State *L, int i);
    int (*pushtensor)(lua_State *L, td_tensor *t);
    td_tensor *(*empty)(const int64_t *shape, int ndim, td_dtype t);
    td_tensor *(*view_of)(td_tensor *base, const int64_t *shape, const int64_t *stride, int ndim,
                          int64_t offset);
    void (*retain)(td_tensor *t);
    void (*release)(td_tensor *t);
    int64_t (*numel)(const td_tensor *t);
    void *(*data)(const td_tensor *t);
    bool (*is_contiguous)(const td_tensor *t);
    int (*copy_into)(td_tensor *dst, const td_tensor *src);
    void (*bump_version)(td_tensor *t);
    void (*set_grad_hook)(td_grad_hook fn, void *ud);
    const char *(*dtype_name)(td_dtype t);
    const uint8_t *dtype_sizes; /* td_dtype_sizes: td_dtype_size() is inline over it */
    char *(*shape_str)(const int64_t *shape, int ndim, char *buf, size_t n);
    const char *(*errmsg)(void);
    int (*get_num_threads)(void);
    int (*set_num_threads)(int n); /* the count set (capped at the CPUs), or -1 */
} tdL_capi;

/* registrars, called by luaopen_tide_core with the module table on top */
void tdL_register_tensor(lua_State *L);  /* vm/tensor.c: metatable, methods */
void tdL_register_ops(lua_State *L);     /* vm/ops.c: every ops.def row */
void tdL_register_create(lua_State *L);  /* vm/create.c: tensor, zeros, rand, ... */
void tdL_register_autograd(lua_State *L);/* vm/autograd.c */
void tdL_register_optim(lua_State *L);   /* vm/optim.c: tide._optim */
void tdL_register_io(lua_State *L);      /* vm/io.c: tide._io (safetensors, npy) */
void tdL_register_data(lua_State *L);    /* vm/data.c: tide._data */
void tdL_register_quant(lua_State *L);   /* vm/quant.c: tide._quant */
void tdL_register_hook(lua_State *L);    /* vm/hook.c: tide._hook */
/* Around td_backward/td_grad: backward hooks run on L; raises "fn: ..." inside a hook. */
lua_State *tdL_hook_enter(lua_State *L, const char *fn);
void tdL_hook_leave(lua_State *prev);

/* the method table of tide.Tensor (vm/tensor.c); ops.c adds its rows to it */
void tdL_pushmethods(lua_State *L);
/* sets metamethod `meta` of the table on top to the ops.def row `row` (vm/ops.c) */
void tdL_setoperator(lua_State *L, const char *meta, const char *row);
/* pushes element idx of t as a Lua value (integer, number or boolean by dtype) */
void tdL_pushelem(lua_State *L, const td_tensor *t, const int64_t *idx);
/* operators (__add ...) onto ops.def rows; after tdL_register_ops (vm/tensor.c) */
void tdL_register_operators(lua_State *L);
/* vm/index.c: t[k] and t[k] = v for number and table keys */
int tdL_index(lua_State *L);
int tdL_newindex(lua_State *L);
/* vm/print.c */
int tdL_tostring(lua_State *L);
int tdL_set_printoptions(lua_State *L); /* registered by vm/create.c */

#endif
