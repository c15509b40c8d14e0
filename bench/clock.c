/* bench/clock.c: `benchclock.now()`, a monotonic wall clock in seconds for the tide-side bench
 * scripts. Lua has only os.clock (process CPU time, which counts every OpenMP thread) and
 * os.time (whole seconds); tide has no wall clock of its own yet. */
#include <lauxlib.h>
#include <lua.h>
#include <time.h>

int luaopen_benchclock(lua_State *L);

static int l_now(lua_State *L) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    lua_pushnumber(L, (lua_Number)t.tv_sec + (lua_Number)t.tv_nsec * 1e-9);
    return 1;
}

int luaopen_benchclock(lua_State *L) {
    lua_newtable(L);
    lua_pushcfunction(L, l_now);
    lua_setfield(L, -2, "now");
    return 1;
}
