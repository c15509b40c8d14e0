/* vm/core.c: luaopen_tide_core, the module both the `tide` program and stock lua5.4 load.
 * It builds the module table and calls each registrar. */
#include <stdio.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "tdl.h"

static int l_manual_seed(lua_State *L) {
    td_manual_seed((uint64_t)luaL_checkinteger(L, 1));
    return 0;
}

/* set_num_threads(n): n capped at the CPUs, saying so on stderr; returns the count set */
static int l_set_num_threads(lua_State *L) {
    lua_Integer n = luaL_checkinteger(L, 1);
    if (n < 1) return luaL_error(L, "set_num_threads: expected n >= 1, got %I", n);
    int got = td_set_num_threads(n > 65536 ? 65536 : (int)n);
    if (got < 0) return tdL_error(L);
    if (got < n)
        fprintf(stderr, "tide.set_num_threads: %lld threads asked, this machine has %d CPUs: "
                "using %d\n", (long long)n, td_num_cpus(), got);
    lua_pushinteger(L, got);
    return 1;
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

/* tide._rusage(): CPU seconds of this process (user + system, all threads) and its peak
 * resident set in bytes so far: tide.fit's cost of a run (stdlib/tide/cost.lua) */
static int l_rusage(lua_State *L) {
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0) return luaL_error(L, "_rusage: getrusage failed");
    lua_Number user = (lua_Number)ru.ru_utime.tv_sec + (lua_Number)ru.ru_utime.tv_usec * 1e-6;
    lua_Number sys = (lua_Number)ru.ru_stime.tv_sec + (lua_Number)ru.ru_stime.tv_usec * 1e-6;
    lua_pushnumber(L, user + sys);
    lua_pushinteger(L, (lua_Integer)ru.ru_maxrss * 1024); /* Linux reports KiB */
    return 2;
}

static const luaL_Reg funcs[] = {
    {"is_tensor", l_is_tensor},
    {"manual_seed", l_manual_seed},
    {"set_num_threads", l_set_num_threads},
    {"get_num_threads", l_get_num_threads},
    {"_isatty", l_isatty},
    {"_clock", l_clock},
    {"_rusage", l_rusage},
    {NULL, NULL},
};

static const tdL_capi capi = {
    .version = TDL_CAPI_VERSION, .checktensor = tdL_checktensor, .pushtensor = tdL_pushtensor,
    .empty = td_empty, .view_of = td_view_of, .retain = td_retain, .release = td_release,
    .numel = td_numel, .data = td_data, .is_contiguous = td_is_contiguous,
    .copy_into = td_copy_into, .bump_version = td_bump_version, .set_grad_hook = td_set_grad_hook,
    .dtype_name = td_dtype_name, .dtype_sizes = td_dtype_sizes, .shape_str = td_shape_str, .errmsg = td_errmsg,
    .get_num_threads = td_get_num_threads, .set_num_threads = td_set_num_threads,
};

int luaopen_tide_core(lua_State *L);
int luaopen_tide_core(lua_State *L) {
    td_get_num_threads(); /* sizes the pool (and OpenBLAS's) before any kernel runs */
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
    tdL_register_hook(L);
    lua_pushlightuserdata(L, (void *)&capi);
    lua_setfield(L, LUA_REGISTRYINDEX, TDL_CAPI);
    return 1;
}
