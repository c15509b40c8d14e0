/* vm/autograd.c: t:backward, t:detach, t:requires_grad_, tide.no_grad, grad mode switches and
 * tide.autograd.grad. The engine is tensor/autograd.c; gradcheck is Lua (stdlib/tide). */
#include <stdlib.h>

#include "tdl.h"

static int l_backward(lua_State *L) {
    static const char *const known[] = {"retain_graph", NULL};
    td_tensor *t = tdL_checktensor(L, 1), *g = NULL;
    int opt = 0;
    if ((g = tdL_totensor(L, 2)))
        opt = 3;
    else if (lua_istable(L, 2) && !tdL_istensor(L, 2))
        opt = 2;
    else if (!lua_isnoneornil(L, 2))
        return luaL_error(L, "backward: expected a gradient tensor or an options table, got %s",
                          luaL_typename(L, 2));
    tdL_checkopts(L, opt, "backward", known);
    bool retain = tdL_optboolfield(L, opt, "retain_graph", 0);
    lua_State *prev = tdL_hook_enter(L, "backward");
    int rc = td_backward(&t, &g, 1, retain);
    tdL_hook_leave(prev);
    if (rc < 0) return tdL_error(L);
    return 0;
}

static int l_detach(lua_State *L) {
    td_tensor *t = tdL_checktensor(L, 1);
    tdL_box *b = tdL_newbox(L);
    if (!(b->t = td_view_of(t, t->shape, t->stride, t->ndim, t->offset))) return tdL_error(L);
    return 1;
}

static int l_requires_grad_(lua_State *L) {
    td_tensor *t = tdL_checktensor(L, 1);
    bool on = lua_isnoneornil(L, 2) ? true : lua_toboolean(L, 2);
    if (on && !td_dtype_is_float(t->dtype))
        return luaL_error(L, "requires_grad_: only float tensors can require grad, got %s",
                          td_dtype_name(t->dtype));
    if (!on && t->grad_fn)
        return luaL_error(L, "requires_grad_: cannot turn off grad on a non-leaf tensor "
                             "(use detach())");
    t->requires_grad = on;
    lua_settop(L, 1);
    return 1;
}

/* Runs fn(...) with grad mode off, restoring the mode even when fn raises. */
static int l_no_grad(lua_State *L) {
    luaL_checktype(L, 1, LUA_TFUNCTION);
    bool prev = td_set_grad_enabled(false);
    int status = lua_pcall(L, lua_gettop(L) - 1, LUA_MULTRET, 0);
    td_set_grad_enabled(prev);
    if (status != LUA_OK) return lua_error(L);
    return lua_gettop(L);
}

static int l_is_grad_enabled(lua_State *L) {
    lua_pushboolean(L, td_grad_enabled());
    return 1;
}

static int l_set_grad_enabled(lua_State *L) {
    luaL_checktype(L, 1, LUA_TBOOLEAN);
    lua_pushboolean(L, td_set_grad_enabled(lua_toboolean(L, 1)));
    return 1;
}

/* A tensor or a list of tensors at i, as borrowed pointers in a GC-owned array. */
static td_tensor **tensor_list(lua_State *L, int i, int *n, const char *what) {
    td_tensor *t = tdL_totensor(L, i);
    td_tensor **v;
    if (t) {
        v = lua_newuserdatauv(L, sizeof *v, 0);
        v[0] = t;
        *n = 1;
        return v;
    }
    if (!lua_istable(L, i))
        luaL_error(L, "autograd.grad: %s must be a tensor or a list of tensors, got %s", what,
                   luaL_typename(L, i));
    *n = (int)luaL_len(L, i);
    if (*n == 0) luaL_error(L, "autograd.grad: %s is an empty list", what);
    v = lua_newuserdatauv(L, sizeof *v * (size_t)*n, 0);
    for (int k = 0; k < *n; k++) {
        lua_geti(L, i, k + 1);
        if (!(v[k] = tdL_totensor(L, -1)))
            luaL_error(L, "autograd.grad: %s[%d] is a %s, expected a tensor", what, k + 1,
                       luaL_typename(L, -1));
        lua_pop(L, 1);
    }
    return v;
}

static int l_grad(lua_State *L) {
    static const char *const known[] = {"grad_outputs", "retain_graph", "allow_unused", NULL};
    int nout, nin, ng = 0;
    tdL_checkopts(L, 3, "autograd.grad", known);
    td_tensor **outs = tensor_list(L, 1, &nout, "outputs");
    td_tensor **ins = tensor_list(L, 2, &nin, "inputs");
    td_tensor **gs = NULL;
    if (lua_istable(L, 3) && lua_getfield(L, 3, "grad_outputs") != LUA_TNIL) {
        gs = tensor_list(L, lua_gettop(L), &ng, "grad_outputs");
        if (ng != nout)
            return luaL_error(L, "autograd.grad: %d grad_outputs for %d outputs", ng, nout);
    }
    bool retain = tdL_optboolfield(L, 3, "retain_graph", 0);
    bool unused = tdL_optboolfield(L, 3, "allow_unused", 0);
    td_tensor **res = lua_newuserdatauv(L, sizeof *res * (size_t)nin, 0);
    lua_createtable(L, nin, 0);
    for (int j = 0; j < nin; j++) tdL_newbox(L); /* boxes first: no leak on a later error */
    lua_State *prev = tdL_hook_enter(L, "autograd.grad");
    int rc = td_grad(outs, gs, nout, ins, nin, res, retain);
    tdL_hook_leave(prev);
    if (rc < 0) return tdL_error(L);
    int top = lua_gettop(L);
    for (int j = 0; j < nin; j++) {
        tdL_box *b = lua_touserdata(L, top - nin + 1 + j);
        b->t = res[j];
    }
    for (int j = 0; j < nin; j++)
        if (!res[j] && !unused)
            return luaL_error(L, "autograd.grad: input %d does not influence the outputs "
                                 "(pass {allow_unused = true} to get nil)", j + 1);
    for (int j = nin; j >= 1; j--) {
        tdL_box *b = lua_touserdata(L, -1);
        if (b->t)
            lua_rawseti(L, top - nin, j);
        else
            lua_pop(L, 1);
    }
    return 1;
}

static const luaL_Reg methods[] = {
    {"backward", l_backward},
    {"detach", l_detach},
    {"requires_grad_", l_requires_grad_},
    {NULL, NULL},
};

static const luaL_Reg funcs[] = {
    {"no_grad", l_no_grad},
    {"is_grad_enabled", l_is_grad_enabled},
    {"set_grad_enabled", l_set_grad_enabled},
    {NULL, NULL},
};

void tdL_register_autograd(lua_State *L) {
    luaL_setfuncs(L, funcs, 0);
    tdL_pushmethods(L);
    luaL_setfuncs(L, methods, 0);
    lua_pop(L, 1);
    lua_newtable(L);
    lua_pushcfunction(L, l_grad);
    lua_setfield(L, -2, "grad");
    lua_setfield(L, -2, "autograd");
}
