/* vm/data.c: the C side of tide.data, as tide._data: idx (IDX files to a tensor), bytes and
 * text (a string to 1-based byte ids and back, for byte-level corpora), and listdir (the
 * regular files of a directory). The Lua side is stdlib/tide/data/. */
#include "tdl.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* idx(path): the tensor in an IDX file, gzipped or not (tensor/io/idx.c). */
static int l_idx(lua_State *L) {
    if (lua_type(L, 1) != LUA_TSTRING)
        return luaL_error(L, "data.idx: expected a path, got %s", luaL_typename(L, 1));
    const char *path = lua_tostring(L, 1);
    tdL_box *b = tdL_newbox(L);
    if (!(b->t = td_idx_read(path))) return luaL_error(L, "data.%s", td_errmsg());
    tdL_gcpressure(L);
    return 1;
}

/* bytes(s [, i [, j]]): int64 ids byte + 1 (1..256) of s:sub(i, j), one per byte. */
static int l_bytes(lua_State *L) {
    size_t len;
    const char *s = luaL_checklstring(L, 1, &len);
    lua_Integer i = luaL_optinteger(L, 2, 1), j = luaL_optinteger(L, 3, (lua_Integer)len);
    if (i < 1) i = 1;
    if (j > (lua_Integer)len) j = (lua_Integer)len;
    int64_t n = j >= i ? (int64_t)(j - i + 1) : 0;
    tdL_box *b = tdL_newbox(L);
    if (!(b->t = td_empty(&n, 1, TD_INT64))) return luaL_error(L, "encode: %s", td_errmsg());
    int64_t *d = td_data(b->t);
    const unsigned char *p = (const unsigned char *)s + i - 1;
    for (int64_t k = 0; k < n; k++) d[k] = (int64_t)p[k] + 1;
    tdL_gcpressure(L);
    return 1;
}

/* text(t): the string whose bytes are t's ids - 1, in row-major order; ids must be 1..256. */
static int l_text(lua_State *L) {
    td_tensor *t = tdL_checktensor(L, 1);
    if (t->dtype != TD_INT64 && t->dtype != TD_UINT8)
        return luaL_error(L, "decode: expected an int64 tensor of byte ids 1..256, got %s",
                          td_dtype_name(t->dtype));
    int64_t n = td_numel(t), bad = -1, v = 0;
    luaL_Buffer buf;
    char *out = luaL_buffinitsize(L, &buf, (size_t)n); /* before c: it may raise */
    td_tensor *c = td_contiguous(t);
    if (!c) return tdL_error(L);
    for (int64_t k = 0; k < n; k++) {
        v = c->dtype == TD_INT64 ? ((const int64_t *)td_data(c))[k]
                                 : ((const uint8_t *)td_data(c))[k];
        if (v < 1 || v > 256) {
            bad = k;
            break;
        }
        out[k] = (char)(unsigned char)(v - 1);
    }
    td_release(c);
    if (bad >= 0)
        return luaL_error(L, "decode: id %I at position %I is not a byte id (expected 1..256)",
                          (lua_Integer)v, (lua_Integer)bad + 1);
    luaL_pushresultsize(&buf, (size_t)n);
    return 1;
}

/* listdir(path): the names of the regular files in path (not starting with "."), unsorted;
 * nil and a message when path is not a readable directory. The names are gathered in a C
 * buffer first: no Lua call (which may raise) runs while the directory is open. */
static int l_listdir(lua_State *L) {
    const char *path = luaL_checkstring(L, 1);
    DIR *d = opendir(path);
    if (!d) {
        luaL_pushfail(L);
        lua_pushfstring(L, "%s: %s", path, strerror(errno));
        return 2;
    }
    char *names = NULL, full[4096];
    size_t len = 0, cap = 0;
    struct dirent *e;
    bool oom = false;
    while (!oom && (e = readdir(d))) {
        struct stat st;
        size_t k = strlen(e->d_name) + 1;
        if (e->d_name[0] == '.' ||
            (size_t)snprintf(full, sizeof full, "%s/%s", path, e->d_name) >= sizeof full ||
            stat(full, &st) != 0 || !S_ISREG(st.st_mode))
            continue;
        if (len + k > cap) {
            char *p = realloc(names, cap = 2 * cap + k + 4096);
            if (!(oom = !p)) names = p;
        }
        if (!oom) memcpy(names + len, e->d_name, k), len += k;
    }
    closedir(d);
    if (oom) {
        free(names);
        return luaL_error(L, "listdir: out of memory listing %s", path);
    }
    lua_newtable(L); /* may raise: names is then lost, but only on out-of-memory */
    for (size_t i = 0, n = 1; i < len; i += strlen(names + i) + 1, n++) {
        lua_pushstring(L, names + i);
        lua_rawseti(L, -2, (lua_Integer)n);
    }
    free(names);
    return 1;
}

static const luaL_Reg funcs[] = {
    {"idx", l_idx}, {"bytes", l_bytes}, {"text", l_text}, {"listdir", l_listdir}, {NULL, NULL},
};

void tdL_register_data(lua_State *L) {
    luaL_newlib(L, funcs);
    lua_setfield(L, -2, "_data");
}
