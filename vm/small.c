/* vm/small.c: small tensors. An elementwise op on tensors of at most TDL_SMALL_BYTES that need
 * no gradient (and Lua numbers) gives a box holding its values itself, with no finalizer: Lua frees it like a
 * string. A regular box costs a td_tensor, a storage, a buffer and a finalizer (Lua runs each
 * one in a protected call, and frees the box only a cycle later): 74 ns of the ~160 that
 * `c = a + b` on 4 elements took, where PyTorch takes ~1 us. The first time anything else
 * reads a small box (tdL_totensor), it is promoted: its values move into a regular tensor and
 * it gets the finalizer, so no C code ever holds a pointer into memory that the collector owns.
 * Small boxes carry a copy of the tensor metatable without __gc; its __metatable field makes
 * getmetatable() answer the same table for both kinds. */
#include <string.h>

#include "tdl.h"

_Static_assert(sizeof(tdL_small) != sizeof(tdL_box), "boxes are told apart by size");

static tdL_box *box_at(lua_State *L, int i) {
    size_t n = lua_rawlen(L, i); /* 0 for anything but strings, tables and userdata */
    if (n != sizeof(tdL_box) && n != sizeof(tdL_small)) return NULL;
    tdL_box *b = lua_touserdata(L, i);
    return b && (b->magic == TDL_MAGIC || b->magic == TDL_SMALL) ? b : NULL;
}

bool tdL_istensor(lua_State *L, int i) {
    return box_at(L, i) != NULL;
}

td_tensor *tdL_promote(lua_State *L, int i, tdL_small *s) {
    td_tensor *t = td_empty(s->shape, s->ndim, s->dtype);
    if (!t) luaL_error(L, "%s", td_errmsg());
    memcpy(td_data(t), s->data, (size_t)td_numel(t) * td_dtype_sizes[s->dtype]);
    i = lua_absindex(L, i);
    s->b.t = t;
    s->b.magic = TDL_MAGIC;
    luaL_getmetatable(L, TDL_TENSOR); /* with __gc: the box now owns t */
    lua_setmetatable(L, i);
    return t;
}

/* what the fast path needs of an operand, without promoting it */
typedef struct operand {
    td_dtype dt;
    int ndim;
    const int64_t *shape;
    char *data;
    int64_t numel;
} operand;

static bool peek(lua_State *L, int i, operand *o) {
    tdL_box *b = box_at(L, i);
    if (!b) return false;
    if (b->magic == TDL_SMALL) {
        tdL_small *s = (tdL_small *)b;
        *o = (operand){s->dtype, s->ndim, s->shape, s->data, 1};
        for (int d = 0; d < s->ndim; d++) o->numel *= s->shape[d];
        return true;
    }
    const td_tensor *t = b->t;
    if (!t || t->requires_grad || t->ndim > TDL_SMALL_DIMS || !td_is_contiguous(t)) return false;
    int64_t m = td_numel(t);
    if (m * td_dtype_sizes[t->dtype] > TDL_SMALL_BYTES) return false;
    *o = (operand){t->dtype, t->ndim, t->shape, td_data(t), m};
    return true;
}

/* A Lua number as the fast path's operand of dtype dt, as tdL_checkoperand would convert it
 * (float tensors take any number, int64 ones integers); false for anything else. */
static bool scalar(lua_State *L, int i, td_dtype dt, double *buf, operand *o) {
    if (dt == TD_FLOAT32)
        *(float *)buf = (float)lua_tonumber(L, i);
    else if (dt == TD_FLOAT64)
        *buf = lua_tonumber(L, i);
    else if (dt == TD_INT64 && lua_isinteger(L, i))
        *(int64_t *)buf = lua_tointeger(L, i);
    else
        return false;
    o->data = (char *)buf;
    return true;
}

int tdL_small_op(lua_State *L, const td_op *op, int nin) {
    static const td_args noargs;
    operand in[2];
    double num; /* a number operand's value; its stride is 0 */
    int t = 0;  /* the operand that sets dtype and shape */
    if (!op->flat || lua_gettop(L) < nin) return 0;
    if (nin == 2 && lua_type(L, 1) == LUA_TNUMBER) t = 1;
    if (!peek(L, t + 1, &in[t])) return 0;
    const operand *a = &in[t];
    td_loop f = op->flat[a->dt];
    if (!f || a->numel == 0) return 0;
    int64_t es = td_dtype_sizes[a->dt], st[3] = {es, es, es};
    if (nin == 2) {
        int u = 1 - t;
        if (lua_type(L, u + 1) == LUA_TNUMBER) {
            if (!scalar(L, u + 1, a->dt, &num, &in[u])) return 0;
            st[u + 1] = 0;
        } else if (!peek(L, u + 1, &in[u]) || in[u].dt != a->dt || in[u].ndim != a->ndim ||
                   memcmp(in[u].shape, a->shape, sizeof(int64_t) * (size_t)a->ndim) != 0) {
            return 0;
        }
    }
    tdL_small *s = lua_newuserdatauv(L, sizeof *s, 0);
    s->b.magic = TDL_SMALL;
    s->b.t = NULL;
    s->ndim = a->ndim;
    s->dtype = a->dt;
    memcpy(s->shape, a->shape, sizeof(int64_t) * (size_t)a->ndim);
    lua_pushvalue(L, lua_upvalueindex(3));
    lua_setmetatable(L, -2);
    char *p[3] = {s->data, in[0].data, nin > 1 ? in[1].data : NULL};
    f(p, st, a->numel, &noargs);
    return 1;
}

/* Fills the small boxes' metatable (made empty by tdL_register_tensor so that op closures can
 * hold it) from the tensor metatable, once that is complete. */
void tdL_small_metatable(lua_State *L) {
    luaL_getmetatable(L, TDL_TENSOR);
    lua_getfield(L, LUA_REGISTRYINDEX, TDL_SMALLMT);
    lua_pushnil(L);
    while (lua_next(L, -3)) {
        const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : NULL;
        if (k && strcmp(k, "__gc") == 0) {
            lua_pop(L, 1);
            continue;
        }
        lua_pushvalue(L, -2);
        lua_insert(L, -2);
        lua_rawset(L, -4);
    }
    lua_pushvalue(L, -2);
    lua_setfield(L, -2, "__metatable");
    lua_pop(L, 2);
}
