/* vm/check.c: the argument vocabulary of the bindings (tensor boxes, dims, shapes, dtypes,
 * options tables) and the GC pressure that keeps tensor garbage from piling up. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tdl.h"

/* Lua's own small blocks go through a cache of freed ones. Every op result is a 56-byte userdata
 * that the collector frees in bursts of thousands, far more than glibc's per-size cache holds,
 * and malloc + free cost ~250 instructions per op on the overhead benchmark (a tenth of it).
 * Freed blocks of each exact size up to POOL_MAX bytes wait on a list (POOL_BYTES in all) for
 * the next request of that size; everything else goes to the allocator the state had before.
 * Only exact sizes are reused, so that allocator always gets a block back with the size it
 * handed out, and any realloc can go straight to it. Pools are never freed: blocks still come
 * back through them while lua_close runs, and `pools` keeps them reachable for leak checkers. */
#define POOL_MAX   160 /* tdL_small boxes take ~150 */
#define POOL_BYTES ((size_t)4 << 20)

typedef struct pool {
    lua_Alloc f; /* the state's previous allocator */
    void *ud;
    size_t bytes;
    void *head[POOL_MAX + 1]; /* by exact size, linked through their first word */
    struct pool *next;
} pool;
static pool *pools;

static void *pool_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
    pool *p = ud;
    if (!ptr) { /* osize is a type tag here, not a size */
        if (nsize >= sizeof(void *) && nsize <= POOL_MAX && p->head[nsize]) {
            void *b = p->head[nsize];
            p->head[nsize] = *(void **)b;
            p->bytes -= nsize;
            return b;
        }
        return p->f(p->ud, NULL, osize, nsize);
    }
    if (nsize == 0 && osize >= sizeof(void *) && osize <= POOL_MAX &&
        p->bytes + osize <= POOL_BYTES) {
        *(void **)ptr = p->head[osize];
        p->head[osize] = ptr;
        p->bytes += osize;
        return NULL;
    }
    return p->f(p->ud, ptr, osize, nsize);
}

void tdL_pool_install(lua_State *L) {
    void *ud;
    lua_Alloc f = lua_getallocf(L, &ud);
    const char *off = getenv("TIDE_NO_CACHE"); /* as for tensor buffers: ASan sees every free */
    if (f == pool_alloc || (off && *off && *off != '0')) return; /* or loaded twice */
    pool *p = calloc(1, sizeof *p);
    if (!p) return; /* the old allocator serves on */
    p->f = f, p->ud = ud, p->next = pools;
    pools = p;
    lua_setallocf(L, pool_alloc, p);
}

static tdL_box *newbox(lua_State *L) {
    tdL_box *b = lua_newuserdatauv(L, sizeof *b, 0);
    b->magic = TDL_MAGIC;
    b->t = NULL;
    return b;
}

tdL_box *tdL_newbox(lua_State *L) {
    tdL_box *b = newbox(L);
    luaL_setmetatable(L, TDL_TENSOR);
    return b;
}

tdL_box *tdL_newboxmt(lua_State *L, int mt) {
    tdL_box *b = newbox(L);
    lua_pushvalue(L, mt);
    lua_setmetatable(L, -2);
    return b;
}

int tdL_error(lua_State *L) {
    return luaL_error(L, "%s", td_errmsg());
}

/* Tensor bytes live outside Lua's heap, so Lua alone would collect them far too late (Torch7's
 * memory blow-ups). Whenever the live tensor bytes exceed what survived the last collection by a
 * quarter (at least GC_SLACK), a collection runs: first a generational young collection, which
 * frees the temporaries made since the last one at a fraction of a full collection's cost
 * (~40 us against ~200 us with the stdlib loaded), then a full one only if that left the live
 * bytes above the threshold (the garbage was old, or the state collects incrementally, where a
 * step frees little). Garbage stays a small fraction of the live set either way. */
#define GC_SLACK ((uint64_t)8 << 20) /* small: recycled buffers stay warm in cache */

void tdL_gcpressure(lua_State *L) {
    static uint64_t threshold = GC_SLACK;
    if (td_live_bytes() < threshold) return;
    lua_gc(L, LUA_GCSTEP, 0);
    uint64_t live = td_live_bytes();
    if (live >= threshold) {
        lua_gc(L, LUA_GCCOLLECT);
        live = td_live_bytes();
    }
    threshold = live + (live / 4 > GC_SLACK ? live / 4 : GC_SLACK);
    td_buf_trim(); /* the buffers this collection freed wait for reuse; idle ones go */
}

int tdL_pushtensor(lua_State *L, td_tensor *t) {
    if (!t) return tdL_error(L);
    tdL_newbox(L)->t = t; /* a memory error there leaks t: Lua's allocator failing is fatal */
    tdL_gcpressure(L);
    return 1;
}

td_tensor *tdL_totensor(lua_State *L, int i) {
    /* two API calls, not three: rawlen is 0 for a light userdata, and touserdata gives NULL for
     * the strings and tables whose length could match */
    size_t n = lua_rawlen(L, i);
    if (n != sizeof(tdL_box) && n != sizeof(tdL_small)) return NULL;
    tdL_box *b = lua_touserdata(L, i);
    if (b && b->magic == TDL_SMALL) return tdL_promote(L, i, (tdL_small *)b);
    return b && b->magic == TDL_MAGIC ? b->t : NULL;
}

td_tensor *tdL_checktensor(lua_State *L, int i) {
    td_tensor *t = tdL_totensor(L, i);
    if (t) return t;
    if (tdL_istensor(L, i)) luaL_argerror(L, i, "tensor was closed");
    luaL_typeerror(L, i, TDL_TENSOR);
    return NULL;
}

td_num tdL_tonum(lua_State *L, int i) {
    if (lua_isinteger(L, i)) return (td_num){.i = lua_tointeger(L, i), .is_int = true};
    return (td_num){.f = lua_tonumber(L, i)};
}

td_tensor *tdL_checkoperand(lua_State *L, int i, td_dtype like, const char *fn) {
    td_tensor *t = tdL_totensor(L, i);
    if (t) {
        td_retain(t);
        return t;
    }
    if (lua_type(L, i) == LUA_TNUMBER) {
        td_num v = tdL_tonum(L, i);
        td_dtype dt = like;
        if (!v.is_int && !td_dtype_is_float(like)) {
            if (v.f == floor(v.f) && v.f >= -0x1p63 && v.f < 0x1p63)
                v = (td_num){.i = (int64_t)v.f, .is_int = true}; /* 2.0 acts as 2 */
            else
                dt = TD_FLOAT32; /* int tensor * 2.5 is float32, as in PyTorch */
        }
        /* integers wrap into uint8 (u8 + 300 is u8 + 44), as in PyTorch's arithmetic */
        if (!(t = td_full_num(NULL, 0, dt, v))) tdL_error(L);
        return t;
    }
    if (tdL_istensor(L, i)) luaL_error(L, "%s: argument #%d: tensor was closed", fn, i);
    luaL_error(L, "%s: expected a tensor or a number, got %s", fn, luaL_typename(L, i));
    return NULL;
}

td_tensor *tdL_checkvalue(lua_State *L, int i, td_dtype dt, const char *fn) {
    if (lua_type(L, i) != LUA_TNUMBER) return tdL_checkoperand(L, i, dt, fn);
    td_num v = tdL_tonum(L, i);
    td_tensor *t = td_num_check(fn, v, dt) < 0 ? NULL : td_full_num(NULL, 0, dt, v);
    if (!t) tdL_error(L);
    return t;
}

int64_t tdL_checkdim(lua_State *L, int i, int ndim, const char *fn) {
    int isnum;
    lua_Integer d = lua_tointegerx(L, i, &isnum);
    int n = ndim ? ndim : 1;
    if (!isnum)
        luaL_error(L, "%s: dim must be an integer, got %s", fn,
                   lua_isnoneornil(L, i) ? "nil" : luaL_tolstring(L, i, NULL));
    if (d == 0 || d > n || d < -n)
        luaL_error(L, "%s: dim %I out of range for a %d-D tensor (expected 1..%d or -%d..-1)", fn,
                   d, ndim, n, n);
    return d > 0 ? d - 1 : n + d;
}

int64_t tdL_optdim(lua_State *L, int i, int ndim, const char *fn, int64_t def) {
    return lua_isnoneornil(L, i) ? def : tdL_checkdim(L, i, ndim, fn);
}

int64_t tdL_checkpos(lua_State *L, int i, int64_t size, const char *fn, const char *what) {
    int isnum;
    lua_Integer p = lua_tointegerx(L, i, &isnum);
    if (!isnum) luaL_error(L, "%s: %s must be an integer, got %s", fn, what, luaL_typename(L, i));
    if (p < 0) p += size + 1;
    if (p < 1 || p > size)
        luaL_error(L, "%s: %s %I out of range (expected 1..%I or -%I..-1)", fn, what,
                   lua_tointeger(L, i), (lua_Integer)size, (lua_Integer)size);
    return p - 1;
}

static int64_t checksize(lua_State *L, int i, const char *fn) {
    int isnum;
    lua_Integer v = lua_tointegerx(L, i, &isnum);
    if (!isnum) {
        if (lua_type(L, i) == LUA_TNUMBER)
            luaL_error(L, "%s: sizes must be integers, got %s", fn, lua_tostring(L, i));
        luaL_error(L, "%s: sizes must be integers, got %s", fn, luaL_typename(L, i));
    }
    return v;
}

int tdL_checkshape(lua_State *L, int i, int64_t *shape, const char *fn) {
    int n;
    if (lua_istable(L, i)) {
        n = (int)luaL_len(L, i);
        if (n > TD_MAX_DIMS) luaL_error(L, "%s: at most %d dims, got %d", fn, TD_MAX_DIMS, n);
        for (int k = 0; k < n; k++) {
            lua_geti(L, i, k + 1);
            shape[k] = checksize(L, -1, fn);
            lua_pop(L, 1);
        }
        return n;
    }
    int top = lua_gettop(L);
    while (top >= i && !lua_isnumber(L, top)) top--; /* a trailing options table */
    n = top - i + 1;
    if (n < 0) n = 0;
    if (n > TD_MAX_DIMS) luaL_error(L, "%s: at most %d dims, got %d", fn, TD_MAX_DIMS, n);
    for (int k = 0; k < n; k++) shape[k] = checksize(L, i + k, fn);
    return n;
}

td_dtype tdL_checkdtype(lua_State *L, int i, const char *fn) {
    td_dtype d;
    const char *s = lua_tostring(L, i);
    if (!s) luaL_error(L, "%s: dtype must be a string, got %s", fn, luaL_typename(L, i));
    if (td_dtype_parse(s, &d) < 0) luaL_error(L, "%s: %s", fn, td_errmsg());
    return d;
}

void tdL_checkopts(lua_State *L, int i, const char *fn, const char *const *known) {
    if (i == 0 || lua_isnoneornil(L, i)) return; /* 0: no options argument */
    luaL_checktype(L, i, LUA_TTABLE);
    lua_pushnil(L);
    while (lua_next(L, i)) {
        lua_pop(L, 1);
        const char *k = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
        bool ok = false;
        for (int j = 0; k && known[j] && !ok; j++) ok = strcmp(k, known[j]) == 0;
        if (!ok) {
            luaL_Buffer b;
            luaL_buffinit(L, &b);
            for (int j = 0; known[j]; j++) {
                if (j) luaL_addstring(&b, ", ");
                luaL_addstring(&b, known[j]);
            }
            luaL_pushresult(&b);
            luaL_error(L, "%s: unknown option '%s' (expected %s)", fn,
                       k ? k : luaL_tolstring(L, -2, NULL), lua_tostring(L, -1));
        }
    }
}

td_dtype tdL_optdtypefield(lua_State *L, int i, const char *fn, td_dtype def) {
    if (i == 0 || !lua_istable(L, i)) return def;
    lua_getfield(L, i, "dtype");
    td_dtype d = lua_isnil(L, -1) ? def : tdL_checkdtype(L, -1, fn);
    lua_pop(L, 1);
    return d;
}

int tdL_optboolfield(lua_State *L, int i, const char *key, int def) {
    if (i == 0 || !lua_istable(L, i)) return def;
    lua_getfield(L, i, key);
    int v = lua_isnil(L, -1) ? def : lua_toboolean(L, -1);
    lua_pop(L, 1);
    return v;
}
