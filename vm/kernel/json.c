/* vm/kernel/json.c: JSON for the kernel's messages, on top of the strict reader of
 * tensor/io/json.c (its strings and punctuation); numbers, literals, arrays and nesting here. */
#include "kernel.h"
#include "../../tensor/io/io.h"
#include "../../tensor/tide.h"

#include <lauxlib.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MAXDEPTH 64
static const char ARRAY_KEY[] = "tide.kernel.array";

void tdK_array(lua_State *L, int idx) {
    idx = lua_absindex(L, idx);
    if (luaL_newmetatable(L, ARRAY_KEY)) {
        lua_pushliteral(L, "array");
        lua_setfield(L, -2, "__name");
    }
    lua_setmetatable(L, idx);
}

static int number(lua_State *L, td_json *j) {
    size_t a = j->i;
    const char *s = j->s;
    size_t i = a;
    int isfloat = 0;
    if (i < j->n && s[i] == '-') i++;
    if (i < j->n && s[i] == '0') {
        i++;
    } else if (i < j->n && s[i] >= '1' && s[i] <= '9') {
        while (i < j->n && s[i] >= '0' && s[i] <= '9') i++;
    } else {
        return td_json_fail(j, "expected a value");
    }
    if (i < j->n && s[i] == '.') {
        isfloat = 1;
        size_t d = ++i;
        while (i < j->n && s[i] >= '0' && s[i] <= '9') i++;
        if (i == d) return td_json_fail(j, "expected a digit after '.'");
    }
    if (i < j->n && (s[i] == 'e' || s[i] == 'E')) {
        isfloat = 1;
        i++;
        if (i < j->n && (s[i] == '+' || s[i] == '-')) i++;
        size_t d = i;
        while (i < j->n && s[i] >= '0' && s[i] <= '9') i++;
        if (i == d) return td_json_fail(j, "expected a digit in the exponent");
    }
    char buf[64];
    if (i - a >= sizeof buf) isfloat = 1; /* too long for an integer: strtod below */
    size_t len = i - a < sizeof buf ? i - a : sizeof buf - 1;
    memcpy(buf, s + a, len);
    buf[len] = 0;
    j->i = i;
    if (!isfloat) {
        char *end;
        long long v = strtoll(buf, &end, 10);
        if (*end == 0 && v != LLONG_MAX && v != LLONG_MIN) {
            lua_pushinteger(L, (lua_Integer)v);
            return 0;
        }
    }
    double v = strtod(buf, NULL);
    if (!isfinite(v)) return td_json_fail(j, "number %s is out of range", buf);
    lua_pushnumber(L, v);
    return 0;
}

static int literal(lua_State *L, td_json *j, const char *word, int kind) {
    size_t n = strlen(word);
    if (j->n - j->i < n || memcmp(j->s + j->i, word, n)) return td_json_fail(j, "expected a value");
    j->i += n;
    if (kind < 0) lua_pushnil(L);
    else lua_pushboolean(L, kind);
    return 0;
}

static int value(lua_State *L, td_json *j, int depth);

static int string(lua_State *L, td_json *j) {
    char *s;
    if (td_json_string(j, &s) < 0) return -1;
    lua_pushstring(L, s);
    td_free(s);
    return 0;
}

static int container(lua_State *L, td_json *j, int depth, int obj) {
    if (depth >= MAXDEPTH) return td_json_fail(j, "nested deeper than %d levels", MAXDEPTH);
    if (!lua_checkstack(L, 4)) return td_json_fail(j, "out of Lua stack");
    char close = obj ? '}' : ']';
    j->i++;
    lua_newtable(L);
    if (!obj) tdK_array(L, -1);
    if (td_json_peek(j) == close) {
        j->i++;
        return 0;
    }
    for (lua_Integer k = 1;; k++) {
        if (obj) {
            if (td_json_peek(j) != '"') return td_json_fail(j, "expected a key string");
            if (string(L, j) < 0 || td_json_expect(j, ':') < 0) return -1;
        }
        if (value(L, j, depth + 1) < 0) return -1;
        if (obj) lua_rawset(L, -3);
        else lua_rawseti(L, -2, k);
        int c = td_json_peek(j);
        if (c == close) {
            j->i++;
            return 0;
        }
        if (td_json_expect(j, ',') < 0) return -1;
    }
}

static int value(lua_State *L, td_json *j, int depth) {
    int c = td_json_peek(j);
    switch (c) {
    case '{': return container(L, j, depth, 1);
    case '[': return container(L, j, depth, 0);
    case '"': return string(L, j);
    case 't': return literal(L, j, "true", 1);
    case 'f': return literal(L, j, "false", 0);
    case 'n': return literal(L, j, "null", -1);
    default: return number(L, j);
    }
}

int tdK_json_decode(lua_State *L, const char *s, size_t n, const char *what) {
    td_json j = {s, n, 0, "json", what};
    if (td_utf8_check((const unsigned char *)s, n) < n) return td_json_fail(&j, "invalid UTF-8");
    int top = lua_gettop(L);
    if (value(L, &j, 0) < 0 || (td_json_peek(&j) >= 0 && td_json_fail(&j, "text after the value") < 0)) {
        lua_settop(L, top);
        return -1;
    }
    return 0;
}

int tdK_put(tdK_buf *b, const char *s, size_t n) {
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n + 1) cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) return td_error("json: out of memory");
        b->p = p, b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
    return 0;
}

static int puts_(tdK_buf *b, const char *s) { return tdK_put(b, s, strlen(s)); }

int tdK_json_string(tdK_buf *b, const char *s, size_t n) {
    int r = tdK_put(b, "\"", 1);
    size_t i = 0;
    while (i < n && r == 0) {
        size_t ok = i + td_utf8_check((const unsigned char *)s + i, n - i);
        while (i < ok && r == 0) {
            size_t k = i; /* a run that needs no escape */
            while (k < ok && (unsigned char)s[k] >= 0x20 && s[k] != 0x7f && s[k] != '"' && s[k] != '\\') k++;
            r |= tdK_put(b, s + i, k - i);
            i = k;
            if (i < ok) {
                unsigned char c = (unsigned char)s[i++];
                static const char hex[] = "0123456789abcdef";
                char e[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
                if (c == '"' || c == '\\') e[1] = (char)c;
                r |= tdK_put(b, e, c == '"' || c == '\\' ? 2 : 6);
            }
        }
        if (i < n) { /* a byte that is not UTF-8 */
            r |= puts_(b, "\\ufffd");
            i++;
        }
    }
    return r | tdK_put(b, "\"", 1);
}

static int isarray(lua_State *L, int idx) {
    if (lua_rawlen(L, idx) > 0) return 1;
    if (!lua_getmetatable(L, idx)) return 0;
    luaL_getmetatable(L, ARRAY_KEY);
    int r = lua_rawequal(L, -1, -2);
    lua_pop(L, 2);
    return r;
}

static int encode(lua_State *L, int idx, tdK_buf *b, int depth) {
    idx = lua_absindex(L, idx);
    switch (lua_type(L, idx)) {
    case LUA_TNIL: return puts_(b, "null");
    case LUA_TBOOLEAN: return puts_(b, lua_toboolean(L, idx) ? "true" : "false");
    case LUA_TNUMBER: {
        char s[64];
        if (lua_isinteger(L, idx)) {
            snprintf(s, sizeof s, "%lld", (long long)lua_tointeger(L, idx));
        } else {
            double v = (double)lua_tonumber(L, idx);
            if (!isfinite(v)) snprintf(s, sizeof s, "null");
            else if (snprintf(s, sizeof s, "%.17g", v) > 0 && !strpbrk(s, ".e"))
                strcat(s, ".0"); /* stays a float when read back (-0.0 too) */
        }
        return puts_(b, s);
    }
    case LUA_TSTRING: {
        size_t n;
        const char *s = lua_tolstring(L, idx, &n);
        return tdK_json_string(b, s, n);
    }
    case LUA_TTABLE: break;
    default: td_error("json: cannot encode a %s", luaL_typename(L, idx)); return -1;
    }
    if (depth >= MAXDEPTH) return td_error("json: nested deeper than %d levels (a cycle?)", MAXDEPTH);
    if (!lua_checkstack(L, 4)) return td_error("json: out of Lua stack");
    int r = 0;
    if (isarray(L, idx)) {
        r |= tdK_put(b, "[", 1);
        lua_Unsigned n = lua_rawlen(L, idx);
        for (lua_Unsigned i = 1; i <= n && r == 0; i++) {
            if (i > 1) r |= tdK_put(b, ",", 1);
            lua_rawgeti(L, idx, (lua_Integer)i);
            r |= encode(L, -1, b, depth + 1);
            lua_pop(L, 1);
        }
        return r | tdK_put(b, "]", 1);
    }
    r |= tdK_put(b, "{", 1);
    int first = 1;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        if (r == 0 && lua_type(L, -2) == LUA_TSTRING) {
            if (!first) r |= tdK_put(b, ",", 1);
            first = 0;
            size_t n;
            const char *k = lua_tolstring(L, -2, &n);
            r |= tdK_json_string(b, k, n) | tdK_put(b, ":", 1) | encode(L, -1, b, depth + 1);
        }
        lua_pop(L, 1);
    }
    return r | tdK_put(b, "}", 1);
}

int tdK_json_encode(lua_State *L, int idx, tdK_buf *b) {
    b->n = 0;
    return tdK_put(b, "", 0) < 0 || encode(L, idx, b, 0) < 0 ? -1 : 0;
}
