/* vm/tensor.c: the tide.Tensor userdata: lifetime (__gc = __close), properties and methods
 * through one C __index, assignment through __newindex, operators, and the plain methods that
 * are not ops (size, item, totable, ...). Ops come from vm/ops.c. */
#include <string.h>

#include "tdl.h"

static int l_release(lua_State *L) {
    if (!tdL_istensor(L, 1)) luaL_typeerror(L, 1, TDL_TENSOR); /* t:close() on something else */
    tdL_box *b = lua_touserdata(L, 1);
    b->magic = TDL_MAGIC; /* a small box closes too: its values go with it */
    td_release(b->t);
    b->t = NULL;
    return 0;
}

static void push_shape(lua_State *L, const int64_t *shape, int ndim) {
    lua_createtable(L, ndim, 0);
    for (int i = 0; i < ndim; i++) {
        lua_pushinteger(L, shape[i]);
        lua_rawseti(L, -2, i + 1);
    }
}

static int l_size(lua_State *L) {
    td_tensor *t = tdL_checktensor(L, 1);
    if (lua_isnoneornil(L, 2)) {
        push_shape(L, t->shape, t->ndim);
        return 1;
    }
    if (t->ndim == 0) return luaL_error(L, "size: a 0-D tensor has no dims");
    lua_pushinteger(L, t->shape[tdL_checkdim(L, 2, t->ndim, "size")]);
    return 1;
}

static int l_stride(lua_State *L) {
    td_tensor *t = tdL_checktensor(L, 1);
    if (lua_isnoneornil(L, 2)) {
        push_shape(L, t->stride, t->ndim);
        return 1;
    }
    if (t->ndim == 0) return luaL_error(L, "stride: a 0-D tensor has no dims");
    lua_pushinteger(L, t->stride[tdL_checkdim(L, 2, t->ndim, "stride")]);
    return 1;
}

static int l_numel(lua_State *L) {
    lua_pushinteger(L, td_numel(tdL_checktensor(L, 1)));
    return 1;
}

static int l_dim(lua_State *L) {
    lua_pushinteger(L, tdL_checktensor(L, 1)->ndim);
    return 1;
}

static int l_is_contiguous(lua_State *L) {
    lua_pushboolean(L, td_is_contiguous(tdL_checktensor(L, 1)));
    return 1;
}

static void push_elem(lua_State *L, const td_tensor *t, const int64_t *idx) {
    double v = td_get(t, idx);
    if (t->dtype == TD_BOOL)
        lua_pushboolean(L, v != 0);
    else if (t->dtype == TD_INT64) {
        int64_t o = 0;
        for (int i = 0; i < t->ndim; i++) o += idx[i] * t->stride[i];
        lua_pushinteger(L, ((const int64_t *)td_data(t))[o]); /* exact beyond 2^53 */
    } else if (t->dtype == TD_UINT8 || t->dtype == TD_INT8)
        lua_pushinteger(L, (lua_Integer)v);
    else
        lua_pushnumber(L, v);
}

void tdL_pushelem(lua_State *L, const td_tensor *t, const int64_t *idx) {
    push_elem(L, t, idx);
}

static int l_item(lua_State *L) {
    td_tensor *t = tdL_checktensor(L, 1);
    char buf[128];
    if (td_numel(t) != 1)
        return luaL_error(L, "item: expected a tensor with one element, got shape %s",
                          td_shape_str(t->shape, t->ndim, buf, sizeof buf));
    static const int64_t zero[TD_MAX_DIMS];
    push_elem(L, t, zero);
    return 1;
}

static void totable(lua_State *L, const td_tensor *t, int64_t *idx, int d) {
    if (d == t->ndim) {
        push_elem(L, t, idx);
        return;
    }
    lua_createtable(L, (int)t->shape[d], 0);
    for (idx[d] = 0; idx[d] < t->shape[d]; idx[d]++) {
        totable(L, t, idx, d + 1);
        lua_rawseti(L, -2, idx[d] + 1);
    }
}

static int l_totable(lua_State *L) {
    td_tensor *t = tdL_checktensor(L, 1);
    int64_t idx[TD_MAX_DIMS] = {0};
    luaL_checkstack(L, t->ndim + 4, "totable");
    totable(L, t, idx, 0);
    return 1;
}

static int l_len(lua_State *L) {
    td_tensor *t = tdL_checktensor(L, 1);
    if (t->ndim == 0) return luaL_error(L, "#: a 0-D tensor has no length");
    lua_pushinteger(L, t->shape[0]);
    return 1;
}

static const luaL_Reg methods[] = {
    {"size", l_size},     {"stride", l_stride},   {"numel", l_numel},
    {"dim", l_dim},       {"is_contiguous", l_is_contiguous},
    {"item", l_item},     {"totable", l_totable}, {"close", l_release},
    {NULL, NULL},
};

void tdL_pushmethods(lua_State *L) {
    lua_getfield(L, LUA_REGISTRYINDEX, "tide.Tensor.methods");
}

/* Properties read with '.': computed on each read, so t.shape is a fresh copy. */
static int property(lua_State *L, td_tensor *t, const char *k) {
    if (!strcmp(k, "shape")) {
        push_shape(L, t->shape, t->ndim);
    } else if (!strcmp(k, "ndim")) {
        lua_pushinteger(L, t->ndim);
    } else if (!strcmp(k, "dtype")) {
        lua_pushstring(L, td_dtype_name(t->dtype));
    } else if (!strcmp(k, "requires_grad")) {
        lua_pushboolean(L, t->requires_grad);
    } else if (!strcmp(k, "_version")) { /* bumped by every in-place write (caches compare it) */
        lua_pushinteger(L, (lua_Integer)t->storage->version);
    } else if (!strcmp(k, "is_leaf")) {
        lua_pushboolean(L, t->grad_fn == NULL);
    } else if (!strcmp(k, "grad")) {
        if (!t->grad) return lua_pushnil(L), 1;
        td_retain(t->grad);
        tdL_pushtensor(L, t->grad);
    } else if (!strcmp(k, "grad_fn")) {
        char buf[64];
        if (!t->grad_fn) return lua_pushnil(L), 1;
        lua_pushstring(L, td_grad_fn_name(t->grad_fn, buf, sizeof buf));
    } else {
        return 0;
    }
    return 1;
}

static int l_index(lua_State *L) {
    if (lua_type(L, 2) == LUA_TSTRING) {
        lua_pushvalue(L, 2);
        if (lua_rawget(L, lua_upvalueindex(1)) != LUA_TNIL) return 1; /* a method: the method
                                                                    itself checks a closed t */
        lua_pop(L, 1);
        td_tensor *t = tdL_checktensor(L, 1);
        const char *k = lua_tostring(L, 2);
        if (property(L, t, k)) return 1;
        if (!strcmp(k, "T")) { /* the 2-D transpose, a view */
            if (t->ndim != 2)
                return luaL_error(L, "T: expected a 2-D tensor, got %d-D", t->ndim);
            lua_getfield(L, lua_upvalueindex(1), "t");
            lua_pushvalue(L, 1);
            lua_call(L, 1, 1);
            return 1;
        }
        return 0;
    }
    return tdL_index(L);
}

static int l_newindex(lua_State *L) {
    td_tensor *t = tdL_checktensor(L, 1);
    if (lua_type(L, 2) != LUA_TSTRING) return tdL_newindex(L);
    const char *k = lua_tostring(L, 2);
    if (!strcmp(k, "requires_grad")) {
        bool on = lua_toboolean(L, 3);
        if (on && !td_dtype_is_float(t->dtype))
            return luaL_error(L, "requires_grad: only float tensors can require grad, got %s",
                              td_dtype_name(t->dtype));
        if (!on && t->grad_fn)
            return luaL_error(L, "requires_grad: cannot turn off grad on a non-leaf tensor "
                                 "(use detach())");
        t->requires_grad = on;
        return 0;
    }
    if (!strcmp(k, "grad")) {
        td_tensor *g = lua_isnil(L, 3) ? NULL : tdL_checktensor(L, 3);
        char a[128], b[128];
        if (g && (g->ndim != t->ndim ||
                  memcmp(g->shape, t->shape, sizeof(int64_t) * (size_t)t->ndim)))
            return luaL_error(L, "grad: shape %s does not match the tensor's shape %s",
                              td_shape_str(g->shape, g->ndim, a, sizeof a),
                              td_shape_str(t->shape, t->ndim, b, sizeof b));
        if (g) td_retain(g);
        td_release(t->grad);
        t->grad = g;
        return 0;
    }
    return luaL_error(L, "tensor: cannot set field '%s' (settable: requires_grad, grad)", k);
}

void tdL_register_tensor(lua_State *L) {
    tdL_pool_install(L); /* first: tensor boxes are most of what the state allocates */
    lua_newtable(L); /* filled by tdL_small_metatable once this one is complete */
    lua_setfield(L, LUA_REGISTRYINDEX, TDL_SMALLMT);
    luaL_newmetatable(L, TDL_TENSOR);
    lua_newtable(L); /* methods */
    luaL_setfuncs(L, methods, 0);
    lua_pushvalue(L, -1);
    lua_setfield(L, LUA_REGISTRYINDEX, "tide.Tensor.methods");
    lua_pushvalue(L, -1);
    lua_setfield(L, -4, "Tensor"); /* tide.Tensor: the method table, for stdlib additions */
    lua_pushcclosure(L, l_index, 1);
    lua_setfield(L, -2, "__index");
    static const luaL_Reg meta[] = {
        {"__gc", l_release},   {"__close", l_release},     {"__newindex", l_newindex},
        {"__len", l_len},      {"__tostring", tdL_tostring}, {NULL, NULL},
    };
    luaL_setfuncs(L, meta, 0);
    lua_pop(L, 1);
}

void tdL_register_operators(lua_State *L) {
    static const char *const ops[][2] = {
        {"__add", "add"}, {"__sub", "sub"},          {"__mul", "mul"},
        {"__div", "div"}, {"__mod", "remainder"},    {"__pow", "pow"},
        {"__unm", "neg"}, {"__idiv", "floor_divide"},
    };
    luaL_getmetatable(L, TDL_TENSOR);
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) tdL_setoperator(L, ops[i][0], ops[i][1]);
    lua_pop(L, 1);
    tdL_small_metatable(L);
}
