/* vm/create.c: tide.tensor (from nested Lua tables), zeros/ones/full/empty and the *_like
 * forms, eye, arange, linspace, and the random constructors. */
#include <string.h>

#include "tdl.h"

static const char *const create_opts[] = {"dtype", "requires_grad", NULL};

/* Applies {requires_grad=} from the options table at i to the tensor on top of the stack. */
static void apply_opts(lua_State *L, int i, const char *fn) {
    if (!tdL_optboolfield(L, i, "requires_grad", 0)) return;
    td_tensor *t = tdL_totensor(L, -1);
    if (!td_dtype_is_float(t->dtype))
        luaL_error(L, "%s: only float tensors can require grad, got %s", fn,
                   td_dtype_name(t->dtype));
    t->requires_grad = true;
}

/* Walks a nested table once to find its shape; ragged nesting is an error naming the path. */
static int nested_shape(lua_State *L, int i, int64_t *shape, int d, const char *fn) {
    if (lua_type(L, i) != LUA_TTABLE) return d;
    if (d >= TD_MAX_DIMS) luaL_error(L, "%s: nesting deeper than %d dims", fn, TD_MAX_DIMS);
    shape[d] = (int64_t)luaL_len(L, i);
    if (shape[d] == 0) return d + 1;
    lua_geti(L, i, 1);
    int nd = nested_shape(L, lua_gettop(L), shape, d + 1, fn);
    lua_pop(L, 1);
    return nd;
}

static void fill_nested(lua_State *L, int i, td_tensor *t, int64_t *idx, int d, const char *fn) {
    if (d == t->ndim) {
        int tt = lua_type(L, i);
        double v = 0;
        if (tt == LUA_TNUMBER)
            v = lua_tonumber(L, i);
        else if (tt == LUA_TBOOLEAN)
            v = lua_toboolean(L, i);
        else
            luaL_error(L, "%s: expected a number at this position, got %s", fn,
                       luaL_typename(L, i));
        if (t->dtype == TD_INT64 && lua_isinteger(L, i)) {
            int64_t o = 0;
            for (int k = 0; k < t->ndim; k++) o += idx[k] * t->stride[k];
            ((int64_t *)td_data(t))[o] = lua_tointeger(L, i);
        } else {
            td_set(t, idx, v);
        }
        return;
    }
    if (lua_type(L, i) != LUA_TTABLE || (int64_t)luaL_len(L, i) != t->shape[d]) {
        char buf[128];
        luaL_error(L, "%s: ragged nested table: expected %d elements at depth %d (shape %s), got %s",
                   fn, (int)t->shape[d], d + 1, td_shape_str(t->shape, t->ndim, buf, sizeof buf),
                   lua_type(L, i) == LUA_TTABLE ? "a different length" : luaL_typename(L, i));
    }
    for (idx[d] = 0; idx[d] < t->shape[d]; idx[d]++) {
        lua_geti(L, i, idx[d] + 1);
        fill_nested(L, lua_gettop(L), t, idx, d + 1, fn);
        lua_pop(L, 1);
    }
}

static int l_tensor(lua_State *L) {
    tdL_checkopts(L, 2, "tensor", create_opts);
    td_dtype dt = tdL_optdtypefield(L, 2, "tensor", TD_FLOAT32);
    int tt = lua_type(L, 1);
    if (tt != LUA_TTABLE && tt != LUA_TNUMBER && tt != LUA_TBOOLEAN)
        return luaL_error(L, "tensor: expected a number or a nested table of numbers, got %s",
                          luaL_typename(L, 1));
    if (tdL_totensor(L, 1)) return luaL_error(L, "tensor: got a tensor (use t:clone())");
    int64_t shape[TD_MAX_DIMS], idx[TD_MAX_DIMS] = {0};
    int nd = nested_shape(L, 1, shape, 0, "tensor");
    luaL_checkstack(L, nd + 4, "tensor");
    tdL_box *b = tdL_newbox(L);
    if (!(b->t = td_empty(shape, nd, dt))) return tdL_error(L);
    fill_nested(L, 1, b->t, idx, 0, "tensor");
    apply_opts(L, 2, "tensor");
    tdL_gcpressure(L);
    return 1;
}

/* zeros/ones/empty/full share: shape from the arguments, {dtype=, requires_grad=} last. */
static int make_filled(lua_State *L, const char *fn, int first, double v, bool fill) {
    int64_t shape[TD_MAX_DIMS];
    int top = lua_gettop(L), opt = top >= first && lua_istable(L, top) && top > first ? top : 0;
    if (top == first && lua_istable(L, top)) { /* one table: is it a shape or options? */
        lua_geti(L, top, 1);
        if (lua_isnil(L, -1)) opt = top;
        lua_pop(L, 1);
    }
    tdL_checkopts(L, opt, fn, create_opts);
    td_dtype dt = tdL_optdtypefield(L, opt, fn, TD_FLOAT32);
    int nd = opt == first ? 0 : tdL_checkshape(L, first, shape, fn);
    tdL_box *b = tdL_newbox(L);
    b->t = fill ? td_full(shape, nd, dt, v) : td_empty(shape, nd, dt);
    if (!b->t) return luaL_error(L, "%s: %s", fn, td_errmsg());
    apply_opts(L, opt, fn);
    tdL_gcpressure(L);
    return 1;
}

static int l_zeros(lua_State *L) {
    return make_filled(L, "zeros", 1, 0, true);
}
static int l_ones(lua_State *L) {
    return make_filled(L, "ones", 1, 1, true);
}
static int l_empty(lua_State *L) {
    return make_filled(L, "empty", 1, 0, false);
}
static int l_full(lua_State *L) {
    if (!lua_istable(L, 1)) return luaL_error(L, "full: expected a shape table first, got %s", luaL_typename(L, 1));
    double v = luaL_checknumber(L, 2);
    lua_remove(L, 2);
    return make_filled(L, "full", 1, v, true);
}

static const luaL_Reg funcs[] = {
    {"tensor", l_tensor}, {"zeros", l_zeros}, {"ones", l_ones},
    {"empty", l_empty},   {"full", l_full},   {NULL, NULL},
};

void tdL_register_create(lua_State *L) {
    luaL_setfuncs(L, funcs, 0);
}
