/* vm/io.c: tide._io, the raw file-format calls stdlib/tide/io.lua builds tide.save, tide.load,
 * save_npy, load_npy and checkpoints on. A loaded td_safetensors lives in a userdata whose __gc
 * frees whatever has not yet been handed to Lua, so a Lua error mid-way leaks nothing; the
 * arrays a save needs are userdata too, for the same reason. */
#include <string.h>

#include "tdl.h"

#define ST_META "tide.io.safetensors"

static int st_gc(lua_State *L) {
    td_safetensors *st = luaL_checkudata(L, 1, ST_META);
    td_safetensors_free(st);
    return 0;
}

static td_safetensors *new_st(lua_State *L) {
    td_safetensors *st = lua_newuserdatauv(L, sizeof *st, 0);
    memset(st, 0, sizeof *st);
    if (luaL_newmetatable(L, ST_META)) {
        lua_pushcfunction(L, st_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_setmetatable(L, -2);
    return st;
}

/* pushes names (list), tensors (list, parallel), metadata (table); moves tensors out of st */
static int push_st(lua_State *L, td_safetensors *st) {
    lua_createtable(L, st->n, 0);
    lua_createtable(L, st->n, 0);
    for (int i = 0; i < st->n; i++) {
        lua_pushstring(L, st->names[i]);
        lua_rawseti(L, -3, i + 1);
        tdL_box *b = tdL_newbox(L);
        b->t = st->tensors[i];
        st->tensors[i] = NULL; /* the box owns it now */
        lua_rawseti(L, -2, i + 1);
    }
    lua_createtable(L, 0, st->nmeta);
    for (int i = 0; i < st->nmeta; i++) {
        lua_pushstring(L, st->meta_vals[i]);
        lua_setfield(L, -2, st->meta_keys[i]);
    }
    tdL_gcpressure(L);
    return 3;
}

static const char *check_cstring(lua_State *L, int i, const char *fn, const char *what) {
    size_t n;
    /* checked before lua_tolstring, which would turn a number key under lua_next into a string */
    if (lua_type(L, i) != LUA_TSTRING) luaL_error(L, "%s: %s must be a string, got %s", fn, what, luaL_typename(L, i));
    const char *s = lua_tolstring(L, i, &n);
    if (strlen(s) != n) luaL_error(L, "%s: %s contains a NUL byte", fn, what);
    return s;
}

static int l_st_load(lua_State *L) {
    const char *path = check_cstring(L, 1, "load", "path");
    td_safetensors *st = new_st(L);
    if (td_safetensors_load(path, st) < 0) return tdL_error(L);
    return push_st(L, st);
}

static int l_st_parse(lua_State *L) {
    size_t n;
    const char *buf = luaL_checklstring(L, 1, &n);
    const char *what = luaL_optstring(L, 2, "<string>");
    td_safetensors *st = new_st(L);
    if (td_safetensors_parse(buf, n, what, st) < 0) return tdL_error(L);
    return push_st(L, st);
}

/* The arguments of a save at a..a+2: names (list), tensors (list), metadata (string -> string).
 * Fills arrays held by userdata left on the stack. */
typedef struct save_args {
    int n, nmeta;
    const char **names, **mkeys, **mvals;
    td_tensor **ts;
} save_args;

static void check_save(lua_State *L, int a, save_args *s) {
    luaL_checktype(L, a, LUA_TTABLE);
    luaL_checktype(L, a + 1, LUA_TTABLE);
    luaL_checktype(L, a + 2, LUA_TTABLE);
    s->n = (int)luaL_len(L, a);
    if ((int)luaL_len(L, a + 1) != s->n) luaL_error(L, "save: %d names but %I tensors", s->n, luaL_len(L, a + 1));
    s->names = lua_newuserdatauv(L, sizeof(char *) * ((size_t)s->n + 1), 0);
    s->ts = lua_newuserdatauv(L, sizeof(td_tensor *) * ((size_t)s->n + 1), 0);
    for (int i = 1; i <= s->n; i++) {
        lua_rawgeti(L, a, i);
        s->names[i - 1] = check_cstring(L, -1, "save", "a tensor name");
        lua_pop(L, 1); /* still referenced by the names table */
        lua_rawgeti(L, a + 1, i);
        if (!(s->ts[i - 1] = tdL_totensor(L, -1)))
            luaL_error(L, "save: '%s' must be a tensor, got %s", s->names[i - 1], luaL_typename(L, -1));
        lua_pop(L, 1);
    }
    s->nmeta = 0;
    for (lua_pushnil(L); lua_next(L, a + 2); lua_pop(L, 1)) s->nmeta++;
    s->mkeys = lua_newuserdatauv(L, sizeof(char *) * ((size_t)s->nmeta + 1), 0);
    s->mvals = lua_newuserdatauv(L, sizeof(char *) * ((size_t)s->nmeta + 1), 0);
    int k = 0;
    for (lua_pushnil(L); lua_next(L, a + 2); lua_pop(L, 1), k++) {
        s->mkeys[k] = check_cstring(L, -2, "save", "a metadata key");
        s->mvals[k] = check_cstring(L, -1, "save", "a metadata value");
    }
}

static int l_st_save(lua_State *L) {
    const char *path = check_cstring(L, 1, "save", "path");
    save_args s;
    check_save(L, 2, &s);
    if (td_safetensors_save(path, s.n, s.names, s.ts, s.nmeta, s.mkeys, s.mvals) < 0) return tdL_error(L);
    return 0;
}

static int buf_gc(lua_State *L) {
    void **h = lua_touserdata(L, 1);
    td_free(*h);
    *h = NULL;
    return 0;
}

/* a userdata owning one td_malloc'd buffer until collected: pushing the bytes may raise */
static void **new_holder(lua_State *L) {
    void **h = lua_newuserdatauv(L, sizeof *h, 0);
    *h = NULL;
    if (luaL_newmetatable(L, "tide.io.buffer")) {
        lua_pushcfunction(L, buf_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_setmetatable(L, -2);
    return h;
}

static int l_st_serialize(lua_State *L) {
    save_args s;
    size_t len;
    check_save(L, 1, &s);
    void **h = new_holder(L);
    if (td_safetensors_serialize(s.n, s.names, s.ts, s.nmeta, s.mkeys, s.mvals, h, &len) < 0)
        return tdL_error(L);
    lua_pushlstring(L, *h, len);
    return 1;
}

static int l_npy_load(lua_State *L) {
    const char *path = check_cstring(L, 1, "load_npy", "path");
    tdL_box *b = tdL_newbox(L);
    if (!(b->t = td_npy_load(path))) return tdL_error(L);
    tdL_gcpressure(L);
    return 1;
}

static int l_npy_parse(lua_State *L) {
    size_t n;
    const char *buf = luaL_checklstring(L, 1, &n);
    const char *what = luaL_optstring(L, 2, "<string>");
    tdL_box *b = tdL_newbox(L);
    if (!(b->t = td_npy_parse(buf, n, what))) return tdL_error(L);
    tdL_gcpressure(L);
    return 1;
}

static int l_npy_save(lua_State *L) {
    const char *path = check_cstring(L, 1, "save_npy", "path");
    if (td_npy_save(path, tdL_checktensor(L, 2)) < 0) return tdL_error(L);
    return 0;
}

static int l_npy_serialize(lua_State *L) {
    td_tensor *t = tdL_checktensor(L, 1);
    size_t len;
    void **h = new_holder(L);
    if (td_npy_serialize(t, h, &len) < 0) return tdL_error(L);
    lua_pushlstring(L, *h, len);
    return 1;
}

static const luaL_Reg funcs[] = {
    {"st_load", l_st_load},     {"st_parse", l_st_parse},   {"st_save", l_st_save},
    {"st_serialize", l_st_serialize}, {"npy_load", l_npy_load}, {"npy_parse", l_npy_parse},
    {"npy_save", l_npy_save},   {"npy_serialize", l_npy_serialize}, {NULL, NULL},
};

void tdL_register_io(lua_State *L) {
    luaL_newlib(L, funcs);
    lua_setfield(L, -2, "_io");
}
