/* vm/core.c: luaopen_tide_core, the module both the `tide` program and stock lua5.4 load.
 * It builds the module table and calls each registrar. */
#include <time.h>
#include <unistd.h>

#include "tdl.h"

static int l_manual_seed(lua_State *L) {
    td_manual_seed((uint64_t)luaL_checkinteger(L, 1));
    return 0;
}

static int l_set_num_threads(lua_State *L) {
    lua_Integer n = luaL_checkinteger(L, 1);
    if (n < 1) return luaL_error(L, "set_num_threads: expected n >= 1, got %d", (int)n);
    td_set_num_threads((int)n);
    return 0;
}

static int l_get_num_threads(lua_State *L) {
    lua_pushinteger(L, td_get_num_threads());
    return 1;
}

static int l_is_tensor(lua_State *L) {
    lua_pushboolean(L, tdL_istensor(L, 1));
    return 1;
}

/* tide._isatty(fd): whether fd (0 stdin, 1 stdout, 2 stderr) is a terminal (progress bars) */
static int l_isatty(lua_State *L) {
    lua_pushboolean(L, isatty((int)luaL_checkinteger(L, 1)));
    return 1;
}

/* tide._clock(): seconds on a monotonic wall clock (os.clock counts CPU time of all threads) */
static int l_clock(lua_State *L) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    lua_pushnumber(L, (lua_Number)ts.tv_sec + (lua_Number)ts.tv_nsec * 1e-9);
    return 1;
}

static const luaL_Reg funcs[] = {
    {"is_tensor", l_is_tensor},
    {"manual_seed", l_manual_seed},
    {"set_num_threads", l_set_num_threads},
    {"get_num_threads", l_get_num_threads},
    {"_isatty", l_isatty},
    {"_clock", l_clock},
    {NULL, NULL},
};

int luaopen_tide_core(lua_State *L);
int luaopen_tide_core(lua_State *L) {
    luaL_newlib(L, funcs);
    tdL_register_tensor(L);
    tdL_register_ops(L);
    tdL_register_operators(L);
    tdL_register_create(L);
    tdL_register_autograd(L);
    tdL_register_optim(L);
    tdL_register_io(L);
    tdL_register_data(L);
    tdL_register_quant(L);
    return 1;
}
