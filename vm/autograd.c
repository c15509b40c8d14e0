/* vm/autograd.c: backward, autograd.grad, grad mode. */
#include "tdl.h"

static int l_is_grad_enabled(lua_State *L) {
    lua_pushboolean(L, td_grad_enabled());
    return 1;
}

static int l_set_grad_enabled(lua_State *L) {
    luaL_checktype(L, 1, LUA_TBOOLEAN);
    lua_pushboolean(L, td_set_grad_enabled(lua_toboolean(L, 1)));
    return 1;
}

static const luaL_Reg funcs[] = {
    {"is_grad_enabled", l_is_grad_enabled},
    {"set_grad_enabled", l_set_grad_enabled},
    {NULL, NULL},
};

void tdL_register_autograd(lua_State *L) {
    luaL_setfuncs(L, funcs, 0);
}
