/* vm/quant.c: tide._quant, the raw calls stdlib/tide/quant.lua and tide.quantize_per_tensor
 * build on (tensor/quant.c). Scales and zero points arrive as Lua numbers or 1-D tensors; their
 * float32/int32 copies live in userdata, so a Lua error on the way leaks nothing. Every check
 * runs before a tensor is made. */
#include <string.h>

#include "../tensor/ops/qgemm.h"
#include "tdl.h"

/* scales (number or tensor at i) and zero points (at j) as arrays of the same length */
typedef struct qarr {
    float *scale;
    int32_t *zp;
    int64_t n;
} qarr;

static int64_t arg_len(lua_State *L, int i) {
    td_tensor *t = tdL_totensor(L, i);
    return t ? td_numel(t) : 1;
}

static void fill(lua_State *L, int i, const char *fn, const char *what, int64_t n, float *f,
                 int32_t *z) {
    td_tensor *t = tdL_totensor(L, i);
    if (!t) {
        if (!lua_isnumber(L, i))
            luaL_error(L, "%s: %s must be a number or a tensor, got %s", fn, what,
                       luaL_typename(L, i));
        if (!f && !lua_isinteger(L, i))
            luaL_error(L, "%s: %s must be an integer, got %s", fn, what, luaL_tolstring(L, i, NULL));
        if (f) f[0] = (float)lua_tonumber(L, i);
        else z[0] = (int32_t)lua_tointeger(L, i);
        return;
    }
    if (t->ndim > 1 || td_numel(t) != n)
        luaL_error(L, "%s: %s must be 1-D with %I values, got %I", fn, what, (lua_Integer)n,
                   (lua_Integer)td_numel(t));
    int64_t idx[1];
    for (int64_t k = 0; k < n; k++) {
        idx[0] = k;
        double v = td_get(t, idx);
        if (f) f[k] = (float)v;
        else if (v != (double)(int32_t)v) luaL_error(L, "%s: %s must be integers, got %f", fn, what, v);
        else z[k] = (int32_t)v;
    }
}

static qarr check_qarr(lua_State *L, int i, int j, const char *fn) {
    qarr a = {.n = arg_len(L, i)};
    if (arg_len(L, j) != a.n)
        luaL_error(L, "%s: %I scales but %I zero points", fn, (lua_Integer)a.n,
                   (lua_Integer)arg_len(L, j));
    a.scale = lua_newuserdatauv(L, sizeof(float) * (size_t)(a.n + 1), 0);
    a.zp = lua_newuserdatauv(L, sizeof(int32_t) * (size_t)(a.n + 1), 0);
    fill(L, i, fn, "scale", a.n, a.scale, NULL);
    fill(L, j, fn, "zero_point", a.n, NULL, a.zp);
    return a;
}

/* quantize(x, scale, zero_point, axis (1-based; 0: per tensor), dtype) */
static int l_quantize(lua_State *L) {
    td_tensor *x = tdL_checktensor(L, 1);
    qarr a = check_qarr(L, 2, 3, "quantize");
    int axis = (int)luaL_checkinteger(L, 4) - 1;
    td_dtype dt = tdL_checkdtype(L, 5, "quantize");
    return tdL_pushtensor(L, td_quantize(x, a.scale, a.zp, a.n, axis, dt));
}

static int l_dequantize(lua_State *L) {
    td_tensor *q = tdL_checktensor(L, 1);
    qarr a = check_qarr(L, 2, 3, "dequantize");
    int axis = (int)luaL_checkinteger(L, 4) - 1;
    return tdL_pushtensor(L, td_dequantize(q, a.scale, a.zp, a.n, axis));
}

/* qparams(lo, hi, dtype, symmetric) -> scale, zero_point */
static int l_qparams(lua_State *L) {
    float s;
    int32_t z;
    td_qparams((float)luaL_checknumber(L, 1), (float)luaL_checknumber(L, 2),
               tdL_checkdtype(L, 3, "qparams"), lua_toboolean(L, 4), &s, &z);
    lua_pushnumber(L, (lua_Number)s);
    lua_pushinteger(L, z);
    return 2;
}

static int l_histc(lua_State *L) {
    return tdL_pushtensor(L, td_histc(tdL_checktensor(L, 1), luaL_checkinteger(L, 2),
                                      (float)luaL_checknumber(L, 3), (float)luaL_checknumber(L, 4)));
}

static int l_pack(lua_State *L) {
    return tdL_pushtensor(L, td_qpack(tdL_checktensor(L, 1)));
}

static float numfield(lua_State *L, int t, const char *k) {
    lua_getfield(L, t, k);
    float v = (float)luaL_optnumber(L, -1, 0);
    lua_pop(L, 1);
    return v;
}

static td_qspec check_spec(lua_State *L, int t) {
    luaL_checktype(L, t, LUA_TTABLE);
    td_qspec q = {.scale = numfield(L, t, "scale"), .zp = (int32_t)numfield(L, t, "zero_point"),
                  .out_scale = numfield(L, t, "out_scale"),
                  .out_zp = (int32_t)numfield(L, t, "out_zero_point")};
    lua_getfield(L, t, "dynamic");
    q.dynamic = lua_toboolean(L, -1);
    lua_getfield(L, t, "out_relu");
    q.out_relu = lua_toboolean(L, -1);
    lua_pop(L, 2);
    return q;
}

/* a float32 1-D tensor of n values at i (nil allowed when opt): its data, kept alive at i */
static const float *check_vec(lua_State *L, int i, int64_t n, const char *fn, const char *what,
                              bool opt) {
    if (opt && lua_isnoneornil(L, i)) return NULL;
    td_tensor *t = tdL_checktensor(L, i);
    if (t->dtype != TD_FLOAT32 || t->ndim != 1 || t->shape[0] != n || !td_is_contiguous(t))
        luaL_error(L, "%s: %s must be a contiguous float32 vector of %I values", fn, what,
                   (lua_Integer)n);
    return td_data(t);
}

/* linear(x, packed, wscale, bias or nil, N, K, spec) */
static int l_linear(lua_State *L) {
    td_tensor *x = tdL_checktensor(L, 1), *p = tdL_checktensor(L, 2);
    int64_t N = luaL_checkinteger(L, 5), K = luaL_checkinteger(L, 6);
    const float *ws = check_vec(L, 3, N, "qlinear", "weight scales", false);
    const float *b = check_vec(L, 4, N, "qlinear", "bias", true);
    td_qspec q = check_spec(L, 7);
    return tdL_pushtensor(L, td_qlinear(x, p, ws, b, N, K, &q));
}

static int64_t intfield(lua_State *L, int t, const char *k) {
    lua_getfield(L, t, k);
    int64_t v = luaL_checkinteger(L, -1);
    lua_pop(L, 1);
    return v;
}

/* conv2d(x, packed, wscale, bias or nil, geometry {ic, oc, kh, kw, sh, sw, ph, pw, dh, dw}, spec) */
static int l_conv2d(lua_State *L) {
    td_tensor *x = tdL_checktensor(L, 1), *p = tdL_checktensor(L, 2);
    luaL_checktype(L, 5, LUA_TTABLE);
    td_qconv g = {intfield(L, 5, "ic"), intfield(L, 5, "oc"), intfield(L, 5, "kh"),
                  intfield(L, 5, "kw"), intfield(L, 5, "sh"), intfield(L, 5, "sw"),
                  intfield(L, 5, "ph"), intfield(L, 5, "pw"), intfield(L, 5, "dh"),
                  intfield(L, 5, "dw")};
    const float *ws = check_vec(L, 3, g.oc, "qconv2d", "weight scales", false);
    const float *b = check_vec(L, 4, g.oc, "qconv2d", "bias", true);
    td_qspec q = check_spec(L, 6);
    return tdL_pushtensor(L, td_qconv2d(x, p, ws, b, &g, &q));
}

static void pair(lua_State *L, int t, const char *k, int64_t v[2]) {
    lua_getfield(L, t, k);
    luaL_checktype(L, -1, LUA_TTABLE);
    for (int i = 0; i < 2; i++) {
        lua_rawgeti(L, -1, i + 1);
        v[i] = luaL_checkinteger(L, -1);
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
}

/* maxpool2d(x uint8, {kernel = {kh, kw}, stride = {sh, sw}, padding = {ph, pw}}) */
static int l_maxpool2d(lua_State *L) {
    td_tensor *x = tdL_checktensor(L, 1);
    int64_t k[2], st[2], p[2];
    luaL_checktype(L, 2, LUA_TTABLE);
    pair(L, 2, "kernel", k);
    pair(L, 2, "stride", st);
    pair(L, 2, "padding", p);
    return tdL_pushtensor(L, td_qmaxpool2d(x, k, st, p));
}

/* isa() -> the path in use, the best this CPU has; set_isa(name or nil) */
static int l_isa(lua_State *L) {
    lua_pushstring(L, td_qgemm_isa_name(td_qgemm_isa()));
    lua_pushstring(L, td_qgemm_isa_name(td_qgemm_isa_best()));
    return 2;
}

static int l_set_isa(lua_State *L) {
    static const char *const names[] = {"generic", "avx2", "vnni", NULL};
    td_qgemm_set_isa(lua_isnoneornil(L, 1) ? -1 : luaL_checkoption(L, 1, NULL, names));
    return 0;
}

static const luaL_Reg funcs[] = {
    {"quantize", l_quantize}, {"dequantize", l_dequantize}, {"qparams", l_qparams},
    {"pack", l_pack},         {"linear", l_linear},         {"conv2d", l_conv2d},
    {"isa", l_isa},           {"set_isa", l_set_isa},       {"histc", l_histc},
    {"maxpool2d", l_maxpool2d}, {NULL, NULL},
};

void tdL_register_quant(lua_State *L) {
    luaL_newlib(L, funcs);
    lua_setfield(L, -2, "_quant");
}
