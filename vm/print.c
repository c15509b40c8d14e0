/* vm/print.c: tostring(t) in PyTorch's layout (nested brackets, one format for all elements
 * chosen from the printed ones only, `...` past a threshold, so a huge tensor prints as fast as
 * a small one), a footer line naming dtype and shape, and tide.set_printoptions. */
#include "tdl.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

typedef struct popts {
    int precision;     /* decimals of fixed and scientific forms */
    int64_t threshold; /* summarise tensors with more elements than this */
    int64_t edgeitems; /* elements kept at each end of a summarised dim */
    int linewidth;     /* characters per line before a 1-D row wraps */
    int sci;           /* -1 auto, 0 never, 1 always */
} popts;
static popts po = {4, 1000, 3, 80, -1};

enum { INT, FIXED, SCI };

typedef struct fmt {
    int mode, width;
    bool sum; /* summarising */
    double minabs, maxabs;
    bool any, integral; /* any nonzero finite value; all of them integers */
} fmt;

typedef void (*visit_fn)(fmt *f, const td_tensor *t, const int64_t *idx);

/* Calls fn on every element that will be printed: all of them, or the edges when summarising. */
static void each_printed(fmt *f, const td_tensor *t, int64_t *idx, int d, visit_fn fn) {
    if (d == t->ndim) {
        fn(f, t, idx);
        return;
    }
    int64_t n = t->shape[d], e = po.edgeitems;
    bool cut = f->sum && n > 2 * e;
    for (int64_t i = 0; i < n; i++) {
        if (cut && i == e) i = n - e;
        idx[d] = i;
        each_printed(f, t, idx, d + 1, fn);
    }
}

static int64_t get_int(const td_tensor *t, const int64_t *idx) {
    int64_t o = 0;
    for (int i = 0; i < t->ndim; i++) o += idx[i] * t->stride[i];
    return ((const int64_t *)td_data(t))[o]; /* exact beyond 2^53, unlike td_get */
}

/* Writes element idx in format f (unpadded) into buf; returns its length. */
static int format(const fmt *f, const td_tensor *t, const int64_t *idx, char *buf, size_t n) {
    switch (t->dtype) {
    case TD_BOOL:
        return snprintf(buf, n, "%s", td_get(t, idx) != 0 ? "true" : "false");
    case TD_INT64:
        return snprintf(buf, n, "%lld", (long long)get_int(t, idx));
    case TD_UINT8:
    case TD_INT8:
        return snprintf(buf, n, "%d", (int)td_get(t, idx));
    default:
        break;
    }
    double v = td_get(t, idx);
    if (isnan(v)) return snprintf(buf, n, "nan"); /* never "-nan" */
    if (isinf(v)) return snprintf(buf, n, v < 0 ? "-inf" : "inf");
    if (f->mode == SCI) return snprintf(buf, n, "%.*e", po.precision, v);
    return snprintf(buf, n, "%.*f", f->mode == FIXED ? po.precision : 0, v);
}

static void scan(fmt *f, const td_tensor *t, const int64_t *idx) {
    double v = td_get(t, idx), a = fabs(v);
    if (!isfinite(v) || v == 0) return;
    f->minabs = f->any && f->minabs < a ? f->minabs : a;
    f->maxabs = f->any && f->maxabs > a ? f->maxabs : a;
    f->integral = f->integral && v == ceil(v);
    f->any = true;
}

static void widen(fmt *f, const td_tensor *t, const int64_t *idx) {
    char buf[400];
    int len = format(f, t, idx, buf, sizeof buf);
    f->width = len > f->width ? len : f->width;
}

/* Chooses the format: PyTorch's rule for floats (scientific when max/min > 1e3, max > 1e8 or
 * min < 1e-4 over nonzero finite |values|), except that integral floats stay integers up to
 * 1e8 (arange(1, 2000) reads as integers), then the width of the widest printed element. */
static void choose(fmt *f, const td_tensor *t) {
    int64_t idx[TD_MAX_DIMS] = {0};
    f->mode = INT;
    f->width = 1;
    f->integral = true;
    if (td_dtype_is_float(t->dtype)) {
        each_printed(f, t, idx, 0, scan);
        if (f->any && f->integral)
            f->mode = f->maxabs > 1e8 ? SCI : INT;
        else if (f->any)
            f->mode =
                f->maxabs / f->minabs > 1e3 || f->maxabs > 1e8 || f->minabs < 1e-4 ? SCI : FIXED;
        if (po.sci == 1) f->mode = SCI;
        if (po.sci == 0 && f->mode == SCI) f->mode = f->integral ? INT : FIXED;
    }
    each_printed(f, t, idx, 0, widen);
}

static void spaces(luaL_Buffer *b, int n) {
    for (int i = 0; i < n; i++) luaL_addchar(b, ' ');
}

static void element(luaL_Buffer *b, const fmt *f, const td_tensor *t, const int64_t *idx) {
    char buf[400];
    int len = format(f, t, idx, buf, sizeof buf);
    spaces(b, f->width - len); /* right-aligned columns */
    luaL_addlstring(b, buf, (size_t)len);
}

/* Dim d of t at nesting depth `indent`: a row of elements wrapped at the line width, or the
 * slices of the next dim separated by ndim-d-1 blank-line breaks (PyTorch's layout). */
static void render(luaL_Buffer *b, const fmt *f, const td_tensor *t, int64_t *idx, int d,
                   int indent) {
    int64_t n = t->shape[d], e = po.edgeitems;
    bool cut = f->sum && n > 2 * e, row = d == t->ndim - 1;
    int per_line = (po.linewidth - indent) / (f->width + 2), col = 0;
    if (per_line < 1) per_line = 1;
    luaL_addchar(b, '[');
    for (int64_t i = 0; i < n; i++) {
        bool dots = cut && i == e;
        if (i > 0 && row && col == per_line) {
            luaL_addstring(b, ",\n");
            spaces(b, indent + 1);
            col = 0;
        } else if (i > 0 && row) {
            luaL_addstring(b, ", ");
        } else if (i > 0) {
            luaL_addchar(b, ',');
            for (int k = d + 1; k < t->ndim; k++) luaL_addchar(b, '\n');
            spaces(b, indent + 1);
        }
        col++;
        if (dots) {
            luaL_addstring(b, row ? " ..." : "...");
            i = n - e - 1;
            continue;
        }
        idx[d] = i;
        if (row)
            element(b, f, t, idx);
        else
            render(b, f, t, idx, d + 1, indent + 1);
    }
    luaL_addchar(b, ']');
}

int tdL_tostring(lua_State *L) {
    if (!tdL_istensor(L, 1)) luaL_typeerror(L, 1, TDL_TENSOR);
    td_tensor *t = tdL_totensor(L, 1);
    if (!t) return lua_pushliteral(L, "[closed tensor]"), 1;
    char shape[160], grad[64];
    int64_t idx[TD_MAX_DIMS] = {0};
    fmt f = {.sum = td_numel(t) > po.threshold};
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    if (td_numel(t) == 0) {
        luaL_addstring(&b, "[]");
    } else {
        choose(&f, t);
        if (t->ndim == 0)
            element(&b, &f, t, idx);
        else
            render(&b, &f, t, idx, 0, 0);
    }
    luaL_addchar(&b, '\n');
    luaL_addchar(&b, '[');
    luaL_addstring(&b, td_dtype_name(t->dtype));
    luaL_addstring(&b, " tensor ");
    luaL_addstring(&b, td_shape_str(t->shape, t->ndim, shape, sizeof shape));
    if (t->grad_fn) {
        luaL_addstring(&b, ", grad_fn=");
        luaL_addstring(&b, td_grad_fn_name(t->grad_fn, grad, sizeof grad));
    } else if (t->requires_grad) {
        luaL_addstring(&b, ", requires_grad=true");
    }
    luaL_addchar(&b, ']');
    luaL_pushresult(&b);
    return 1;
}

/* ---- tide.set_printoptions ---------------------------------------------------------------- */

static int64_t optint(lua_State *L, const char *key, int64_t cur, int64_t lo, const char *want) {
    lua_getfield(L, 1, key);
    int64_t v = cur;
    if (!lua_isnil(L, -1)) {
        int isint;
        v = lua_tointegerx(L, -1, &isint);
        if (!isint && lua_type(L, -1) == LUA_TNUMBER && lua_tonumber(L, -1) == HUGE_VAL)
            v = INT64_MAX, isint = 1; /* math.huge: never summarise, never wrap */
        if (!isint || v < lo)
            luaL_error(L, "set_printoptions: %s must be %s, got %s", key, want,
                       luaL_tolstring(L, -1, NULL));
    }
    lua_pop(L, 1);
    return v;
}

static void push_options(lua_State *L) {
    lua_createtable(L, 0, 5);
    lua_pushinteger(L, po.precision);
    lua_setfield(L, -2, "precision");
    if (po.threshold == INT64_MAX)
        lua_pushnumber(L, HUGE_VAL);
    else
        lua_pushinteger(L, po.threshold);
    lua_setfield(L, -2, "threshold");
    lua_pushinteger(L, po.edgeitems);
    lua_setfield(L, -2, "edgeitems");
    lua_pushinteger(L, po.linewidth);
    lua_setfield(L, -2, "linewidth");
    if (po.sci < 0)
        lua_pushliteral(L, "auto");
    else
        lua_pushboolean(L, po.sci);
    lua_setfield(L, -2, "sci_mode");
}

/* set_printoptions{precision=, threshold=, edgeitems=, linewidth=, sci_mode=, profile=}:
 * profile ("default", "short", "full") first, then the other keys; returns the previous
 * options as a table that set_printoptions accepts back. */
int tdL_set_printoptions(lua_State *L) {
    static const char *const known[] = {"precision", "threshold", "edgeitems", "linewidth",
                                        "sci_mode",  "profile",   NULL};
    luaL_checktype(L, 1, LUA_TTABLE);
    tdL_checkopts(L, 1, "set_printoptions", known);
    push_options(L);
    popts o = po; /* committed only once every key is valid */
    lua_getfield(L, 1, "profile");
    if (!lua_isnil(L, -1)) {
        const char *p = lua_tostring(L, -1);
        if (p && !strcmp(p, "default"))
            o = (popts){4, 1000, 3, 80, -1};
        else if (p && !strcmp(p, "short"))
            o = (popts){2, 1000, 2, 80, -1};
        else if (p && !strcmp(p, "full"))
            o = (popts){4, INT64_MAX, 3, 80, -1};
        else
            return luaL_error(L,
                              "set_printoptions: unknown profile %s (expected \"default\", "
                              "\"short\" or \"full\")",
                              luaL_tolstring(L, -1, NULL));
    }
    lua_pop(L, 1);
    int64_t precision = optint(L, "precision", o.precision, 0, "an integer in 0..30");
    o.threshold = optint(L, "threshold", o.threshold, 0, "an integer >= 0 or math.huge");
    o.edgeitems = optint(L, "edgeitems", o.edgeitems, 1, "an integer >= 1");
    int64_t linewidth = optint(L, "linewidth", o.linewidth, 1, "an integer >= 1");
    if (precision > 30)
        return luaL_error(L, "set_printoptions: precision must be an integer in 0..30, got %d",
                          (int)precision);
    o.precision = (int)precision;
    o.linewidth = linewidth > 100000 ? 100000 : (int)linewidth;
    if (o.edgeitems > 100000) o.edgeitems = 100000;
    lua_getfield(L, 1, "sci_mode");
    if (lua_isboolean(L, -1))
        o.sci = lua_toboolean(L, -1);
    else if (lua_type(L, -1) == LUA_TSTRING && !strcmp(lua_tostring(L, -1), "auto"))
        o.sci = -1;
    else if (!lua_isnil(L, -1))
        return luaL_error(L, "set_printoptions: sci_mode must be true, false or \"auto\", got %s",
                          luaL_tolstring(L, -1, NULL));
    lua_pop(L, 1);
    po = o;
    return 1; /* the previous options */
}
