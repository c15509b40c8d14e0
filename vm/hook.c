/* vm/hook.c: tide._hook(t, fn), a view of t whose backward calls fn(grad) (nil passes grad on, a
 * tensor of grad's shape replaces it): what nn.Module's backward hooks are built on. The Lua
 * functions live in a registry table under ids; a node freed by the engine queues its id, and the
 * next _hook call drops the queued entries, so freeing a node never runs Lua. Backward runs hooks
 * on the state that called it (tdL_hook_enter); they may not start another backward. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tdl.h"

#define HOOKS "tide.hooks"

static lua_State *active; /* the state running td_backward / td_grad */
static bool busy;         /* a hook is running */
static int *dead, ndead, capdead;

lua_State *tdL_hook_enter(lua_State *L, const char *fn) {
    if (busy) luaL_error(L, "%s: cannot run inside a backward hook", fn);
    lua_State *prev = active;
    active = L;
    return prev;
}

void tdL_hook_leave(lua_State *prev) {
    active = prev;
}

static void release(void *ud) {
    if (ndead == capdead) {
        int cap = capdead ? 2 * capdead : 16;
        int *p = realloc(dead, sizeof *p * (size_t)cap);
        if (!p) return; /* the entry stays in the table: a leak, not a crash */
        dead = p, capdead = cap;
    }
    dead[ndead++] = (int)(intptr_t)ud;
}

typedef struct call {
    int id;
    td_tensor *g, *r;
} call;

static int protected_call(lua_State *L) {
    call *c = lua_touserdata(L, 1);
    lua_getfield(L, LUA_REGISTRYINDEX, HOOKS);
    lua_rawgeti(L, -1, c->id);
    tdL_box *b = tdL_newbox(L);
    td_retain(c->g);
    b->t = c->g;
    lua_call(L, 1, 1);
    if (lua_isnil(L, -1)) return 0;
    td_tensor *r = tdL_totensor(L, -1), *g = c->g;
    char a[128], s[128];
    if (!r || r->ndim != g->ndim ||
        memcmp(r->shape, g->shape, sizeof(int64_t) * (size_t)g->ndim) || r->dtype != g->dtype)
        return luaL_error(L, "backward hook: expected nil or a %s tensor of shape %s, got %s",
                          td_dtype_name(g->dtype), td_shape_str(g->shape, g->ndim, a, sizeof a),
                          r ? td_shape_str(r->shape, r->ndim, s, sizeof s) : luaL_typename(L, -1));
    td_retain(r);
    c->r = r;
    return 0;
}

static int run_hook(void *ud, td_tensor *g, td_tensor **r) {
    lua_State *L = active;
    call c = {(int)(intptr_t)ud, g, NULL};
    if (!L || !lua_checkstack(L, 8))
        return td_error("backward hook: no Lua state to run it in (backward called from C?)");
    lua_pushcfunction(L, protected_call);
    lua_pushlightuserdata(L, &c);
    busy = true;
    int status = lua_pcall(L, 1, 0, 0);
    busy = false;
    if (status != LUA_OK) {
        td_error("%s", lua_tostring(L, -1) ? lua_tostring(L, -1) : "backward hook: error");
        lua_pop(L, 1);
        return -1;
    }
    *r = c.r;
    return 0;
}

static int l_hook(lua_State *L) {
    td_tensor *t = tdL_checktensor(L, 1);
    luaL_checktype(L, 2, LUA_TFUNCTION);
    lua_getfield(L, LUA_REGISTRYINDEX, HOOKS);
    while (ndead > 0) luaL_unref(L, -1, dead[--ndead]);
    lua_pushvalue(L, 2);
    int id = luaL_ref(L, -2);
    tdL_box *b = tdL_newbox(L);
    if (!(b->t = td_hook(t, run_hook, release, (void *)(intptr_t)id))) {
        luaL_unref(L, -2, id);
        return tdL_error(L);
    }
    return 1;
}

void tdL_register_hook(lua_State *L) {
    lua_newtable(L);
    lua_setfield(L, LUA_REGISTRYINDEX, HOOKS);
    lua_pushcfunction(L, l_hook);
    lua_setfield(L, -2, "_hook");
}
