/* vm/optim.c: tide._optim, the fused optimizer updates of tensor/optim.c for stdlib/tide/optim.
 * Each function takes a parameter, its gradient, its state buffers (nil when unused) and the
 * parameter group table holding the hyperparameters, and updates them in place. */
#include "tdl.h"

static double num(lua_State *L, int t, const char *k, const char *fn, double def) {
    int ty = lua_getfield(L, t, k);
    double v = def;
    if (ty == LUA_TNUMBER)
        v = lua_tonumber(L, -1);
    else if (ty != LUA_TNIL)
        luaL_error(L, "%s: option '%s' must be a number, got %s", fn, k, luaL_typename(L, -1));
    lua_pop(L, 1);
    return v;
}

static bool flag(lua_State *L, int t, const char *k) {
    lua_getfield(L, t, k);
    bool v = lua_toboolean(L, -1);
    lua_pop(L, 1);
    return v;
}

static td_tensor *optbuf(lua_State *L, int i) {
    return lua_isnoneornil(L, i) ? NULL : tdL_checktensor(L, i);
}

/* the fields every optimizer reads from its group table at index t */
static void common(lua_State *L, int t, const char *fn, td_optim_hp *h) {
    luaL_checktype(L, t, LUA_TTABLE);
    h->lr = num(L, t, "lr", fn, 0);
    h->weight_decay = num(L, t, "weight_decay", fn, 0);
    h->eps = num(L, t, "eps", fn, 0);
    h->maximize = flag(L, t, "maximize");
}

static lua_Integer checkstep(lua_State *L, int i, const char *fn) {
    lua_Integer s = luaL_checkinteger(L, i);
    if (s < 1) luaL_error(L, "%s: step must be >= 1, got %I", fn, s);
    return s;
}

/* sgd(p, g, momentum_buffer|nil, group, first): first = the buffer's first step */
static int l_sgd(lua_State *L) {
    td_tensor *p = tdL_checktensor(L, 1), *g = tdL_checktensor(L, 2), *buf = optbuf(L, 3);
    td_optim_hp h = {0};
    common(L, 4, "SGD", &h);
    h.momentum = num(L, 4, "momentum", "SGD", 0);
    h.dampening = num(L, 4, "dampening", "SGD", 0);
    h.nesterov = flag(L, 4, "nesterov");
    h.init_buf = lua_toboolean(L, 5);
    if (td_sgd_step(p, g, buf, &h) < 0) return tdL_error(L);
    return 0;
}

/* adam(p, g, exp_avg, exp_avg_sq, max_exp_avg_sq|nil, group, step, decoupled) */
static int l_adam(lua_State *L) {
    td_tensor *p = tdL_checktensor(L, 1), *g = tdL_checktensor(L, 2);
    td_tensor *m = tdL_checktensor(L, 3), *v = tdL_checktensor(L, 4), *vmax = optbuf(L, 5);
    td_optim_hp h = {0};
    h.decoupled = lua_toboolean(L, 8);
    const char *fn = h.decoupled ? "AdamW" : "Adam";
    common(L, 6, fn, &h);
    lua_getfield(L, 6, "betas");
    if (!lua_istable(L, -1)) return luaL_error(L, "%s: option 'betas' must be a table", fn);
    lua_geti(L, -1, 1);
    lua_geti(L, -2, 2);
    if (!lua_isnumber(L, -2) || !lua_isnumber(L, -1))
        return luaL_error(L, "%s: option 'betas' must hold two numbers", fn);
    h.beta1 = lua_tonumber(L, -2);
    h.beta2 = lua_tonumber(L, -1);
    lua_pop(L, 3);
    h.step = checkstep(L, 7, fn);
    if (td_adam_step(p, g, m, v, vmax, &h) < 0) return tdL_error(L);
    return 0;
}

/* rmsprop(p, g, square_avg, grad_avg|nil, momentum_buffer|nil, group) */
static int l_rmsprop(lua_State *L) {
    td_tensor *p = tdL_checktensor(L, 1), *g = tdL_checktensor(L, 2);
    td_tensor *sq = tdL_checktensor(L, 3), *ga = optbuf(L, 4), *buf = optbuf(L, 5);
    td_optim_hp h = {0};
    common(L, 6, "RMSprop", &h);
    h.alpha = num(L, 6, "alpha", "RMSprop", 0.99);
    h.momentum = num(L, 6, "momentum", "RMSprop", 0);
    if (td_rmsprop_step(p, g, sq, ga, buf, &h) < 0) return tdL_error(L);
    return 0;
}

/* adagrad(p, g, sum, group, step) */
static int l_adagrad(lua_State *L) {
    td_tensor *p = tdL_checktensor(L, 1), *g = tdL_checktensor(L, 2), *sum = tdL_checktensor(L, 3);
    td_optim_hp h = {0};
    common(L, 4, "Adagrad", &h);
    h.lr_decay = num(L, 4, "lr_decay", "Adagrad", 0);
    h.step = checkstep(L, 5, "Adagrad");
    if (td_adagrad_step(p, g, sum, &h) < 0) return tdL_error(L);
    return 0;
}

void tdL_register_optim(lua_State *L) {
    static const luaL_Reg funcs[] = {
        {"sgd", l_sgd},         {"adam", l_adam}, {"rmsprop", l_rmsprop},
        {"adagrad", l_adagrad}, {NULL, NULL},
    };
    luaL_newlib(L, funcs);
    lua_setfield(L, -2, "_optim");
}
