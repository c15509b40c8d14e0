/* vm/create.c: tide.tensor (from nested Lua tables), zeros/ones/full/empty and the *_like
 * forms, eye, arange, linspace, the random constructors, the in-place random fills
 * (t:uniform_, t:normal_, t:bernoulli_) and the generator state. Every constructor takes a
 * trailing {dtype=, requires_grad=} table; shapes come as numbers or one table. */
#include "tdl.h"

#include <math.h>
#include <string.h>

static const char *const create_opts[] = {"dtype", "requires_grad", NULL};

/* ---- argument vocabulary ------------------------------------------------------------------ */

/* Index of the trailing options table among the arguments from `first` on, or 0. A lone table
 * at `first` is a shape when it has a [1] ({2, 3}), options otherwise ({dtype = "int64"}). */
static int opts_at(lua_State *L, int first) {
    int top = lua_gettop(L);
    if (top < first || !lua_istable(L, top)) return 0;
    if (top > first) return top;
    bool shape = lua_geti(L, top, 1) != LUA_TNIL;
    lua_pop(L, 1);
    return shape ? 0 : top;
}

static int64_t check_size(lua_State *L, int i, const char *fn) {
    int isint;
    lua_Integer v = lua_tointegerx(L, i, &isint);
    if (lua_type(L, i) != LUA_TNUMBER || !isint)
        luaL_error(L, "%s: sizes must be integers, got %s", fn,
                   lua_type(L, i) == LUA_TNUMBER ? luaL_tolstring(L, i, NULL)
                                                 : luaL_typename(L, i));
    return v;
}

/* A shape from the arguments first..last: sizes as numbers, or one table of them. */
static int read_shape(lua_State *L, int first, int last, int64_t *shape, const char *fn) {
    int n = last - first + 1;
    if (n == 1 && lua_istable(L, first)) {
        lua_Integer len = luaL_len(L, first);
        if (len > TD_MAX_DIMS)
            luaL_error(L, "%s: at most %d dims, got %I", fn, TD_MAX_DIMS, len);
        lua_pushnil(L);
        while (lua_next(L, first)) { /* {2, 3, dtype = "int64"} mixes a shape and options */
            lua_pop(L, 1);
            int isint;
            lua_Integer k = lua_tointegerx(L, -1, &isint);
            if (lua_type(L, -1) != LUA_TNUMBER || !isint || k < 1 || k > len)
                luaL_error(L,
                           "%s: a shape table holds sizes only, got key %s (options go in a "
                           "table of their own)",
                           fn, luaL_tolstring(L, -1, NULL));
        }
        for (int k = 0; k < (int)len; k++) {
            lua_geti(L, first, k + 1);
            shape[k] = check_size(L, -1, fn);
            lua_pop(L, 1);
        }
        return (int)len;
    }
    if (n < 0) n = 0;
    if (n > TD_MAX_DIMS) luaL_error(L, "%s: at most %d dims, got %d", fn, TD_MAX_DIMS, n);
    for (int k = 0; k < n; k++) {
        if (lua_istable(L, first + k))
            luaL_error(L, "%s: expected sizes as numbers or one table, got a table at argument %d",
                       fn, first + k);
        shape[k] = check_size(L, first + k, fn);
    }
    return n;
}

static double check_number(lua_State *L, int i, const char *fn, const char *what) {
    if (lua_type(L, i) != LUA_TNUMBER)
        luaL_error(L, "%s: %s must be a number, got %s", fn, what, luaL_typename(L, i));
    return lua_tonumber(L, i);
}

static int64_t check_integer(lua_State *L, int i, const char *fn, const char *what) {
    int isint;
    lua_Integer v = lua_tointegerx(L, i, &isint);
    if (lua_type(L, i) != LUA_TNUMBER || !isint)
        luaL_error(L, "%s: %s must be an integer, got %s", fn, what,
                   lua_type(L, i) == LUA_TNUMBER ? luaL_tolstring(L, i, NULL)
                                                 : luaL_typename(L, i));
    return v;
}

/* A value must fit its dtype: tensor/convert.c's rule (tide.h, "conversions"). */
static void check_num(lua_State *L, td_num v, td_dtype dt, const char *fn) {
    if (td_num_check(fn, v, dt) < 0) tdL_error(L);
}

static void check_value(lua_State *L, double v, td_dtype dt, const char *fn) {
    check_num(L, (td_num){.f = v}, dt, fn);
}

static void check_float(lua_State *L, td_dtype dt, const char *fn) {
    if (!td_dtype_is_float(dt))
        luaL_error(L, "%s: dtype must be float32 or float64, got %s", fn, td_dtype_name(dt));
}

/* Pushes a box holding a new tensor (zeros when zero is set, else uninitialised) and returns it;
 * the box comes first so an error later leaves garbage for the GC, not a leak. */
static td_tensor *push_new(lua_State *L, const int64_t *shape, int nd, td_dtype dt, bool zero,
                           const char *fn) {
    tdL_box *b = tdL_newbox(L);
    b->t = zero ? td_zeros(shape, nd, dt) : td_empty(shape, nd, dt);
    if (!b->t) luaL_error(L, "%s: %s", fn, td_errmsg());
    return b->t;
}

/* push_new filled with v (checked by the caller) */
static td_tensor *push_full(lua_State *L, const int64_t *shape, int nd, td_dtype dt, td_num v,
                            const char *fn) {
    tdL_box *b = tdL_newbox(L);
    if (!(b->t = td_full_num(shape, nd, dt, v))) luaL_error(L, "%s: %s", fn, td_errmsg());
    return b->t;
}

/* Applies {requires_grad=} from the options table at opt to t (on top of the stack). */
static int finish(lua_State *L, td_tensor *t, int opt, const char *fn) {
    if (tdL_optboolfield(L, opt, "requires_grad", 0)) {
        if (!td_dtype_is_float(t->dtype))
            return luaL_error(L, "%s: only float tensors can require grad, got %s", fn,
                              td_dtype_name(t->dtype));
        t->requires_grad = true;
    }
    tdL_gcpressure(L);
    return 1;
}


/* ---- tide.tensor -------------------------------------------------------------------------- */

/* Walks the first elements of a nested table to find its shape and the type of its leaves. */
static int nested_shape(lua_State *L, int i, int64_t *shape, int d, int *leaf, const char *fn) {
    if (lua_type(L, i) != LUA_TTABLE) {
        *leaf = lua_type(L, i);
        return d;
    }
    if (d >= TD_MAX_DIMS) luaL_error(L, "%s: nesting deeper than %d dims", fn, TD_MAX_DIMS);
    shape[d] = (int64_t)luaL_len(L, i);
    if (shape[d] == 0) return d + 1;
    lua_geti(L, i, 1);
    int nd = nested_shape(L, lua_gettop(L), shape, d + 1, leaf, fn);
    lua_pop(L, 1);
    return nd;
}

/* mixed: booleans and numbers may not meet in one table unless a dtype was given */
static void fill_nested(lua_State *L, int i, td_tensor *t, int64_t *idx, int d, int leaf,
                        const char *fn) {
    if (d == t->ndim) {
        int tt = lua_type(L, i);
        if (tt != LUA_TNUMBER && tt != LUA_TBOOLEAN)
            luaL_error(L, "%s: expected a number or a boolean at this position, got %s", fn,
                       tdL_totensor(L, i) ? "a tensor (use tide.stack)" : luaL_typename(L, i));
        if (leaf != LUA_TNONE && tt != leaf)
            luaL_error(L, "%s: booleans and numbers mixed in one table (give {dtype = ...})", fn);
        td_num v = tt == LUA_TNUMBER ? tdL_tonum(L, i) : (td_num){.i = lua_toboolean(L, i),
                                                                   .is_int = true};
        check_num(L, v, t->dtype, fn);
        int64_t o = 0;
        for (int k = 0; k < t->ndim; k++) o += idx[k] * t->stride[k];
        td_num_store(v, t->dtype, (char *)td_data(t) + o * (int64_t)td_dtype_size(t->dtype));
        return;
    }
    if (lua_type(L, i) != LUA_TTABLE || (int64_t)luaL_len(L, i) != t->shape[d]) {
        char buf[128];
        luaL_error(L,
                   "%s: ragged nested table: expected %I elements at depth %d (shape %s), got %s",
                   fn, (lua_Integer)t->shape[d], d + 1, td_shape_str(t->shape, t->ndim, buf, sizeof buf),
                   lua_type(L, i) == LUA_TTABLE ? "a different length" : luaL_typename(L, i));
    }
    for (idx[d] = 0; idx[d] < t->shape[d]; idx[d]++) {
        lua_geti(L, i, idx[d] + 1);
        fill_nested(L, lua_gettop(L), t, idx, d + 1, leaf, fn);
        lua_pop(L, 1);
    }
}

/* tide.tensor(x [, opts]): float32 from numbers, bool from booleans, unless dtype says else. */
static int l_tensor(lua_State *L) {
    if (tdL_totensor(L, 1)) return luaL_error(L, "tensor: got a tensor (use t:clone())");
    int tt = lua_type(L, 1);
    if (tt != LUA_TTABLE && tt != LUA_TNUMBER && tt != LUA_TBOOLEAN)
        return luaL_error(L,
                          "tensor: expected a number, a boolean or a nested table of them, "
                          "got %s",
                          luaL_typename(L, 1));
    if (!lua_isnoneornil(L, 2)) luaL_checktype(L, 2, LUA_TTABLE);
    tdL_checkopts(L, 2, "tensor", create_opts);
    int64_t shape[TD_MAX_DIMS], idx[TD_MAX_DIMS] = {0};
    int leaf = LUA_TNONE;
    int nd = nested_shape(L, 1, shape, 0, &leaf, "tensor");
    bool given = !lua_isnoneornil(L, 2) && lua_getfield(L, 2, "dtype") != LUA_TNIL;
    if (!lua_isnoneornil(L, 2)) lua_pop(L, 1);
    td_dtype dt = tdL_optdtypefield(L, 2, "tensor", leaf == LUA_TBOOLEAN ? TD_BOOL : TD_FLOAT32);
    luaL_checkstack(L, nd + 4, "tensor");
    td_tensor *t = push_new(L, shape, nd, dt, false, "tensor");
    fill_nested(L, 1, t, idx, 0, given ? LUA_TNONE : leaf, "tensor");
    return finish(L, t, 2, "tensor");
}

/* ---- filled constructors ------------------------------------------------------------------ */

/* zeros/ones/empty: (sizes... [, opts]) or ({sizes} [, opts]). */
static int make_filled(lua_State *L, const char *fn, double v, bool fill) {
    int64_t shape[TD_MAX_DIMS];
    int opt = opts_at(L, 1);
    tdL_checkopts(L, opt, fn, create_opts);
    td_dtype dt = tdL_optdtypefield(L, opt, fn, TD_FLOAT32);
    int nd = read_shape(L, 1, opt ? opt - 1 : lua_gettop(L), shape, fn);
    td_tensor *t = fill && v != 0 ? push_full(L, shape, nd, dt, (td_num){.f = v}, fn)
                                  : push_new(L, shape, nd, dt, fill, fn);
    return finish(L, t, opt, fn);
}

static int l_zeros(lua_State *L) {
    return make_filled(L, "zeros", 0, true);
}

static int l_ones(lua_State *L) {
    return make_filled(L, "ones", 1, true);
}

static int l_empty(lua_State *L) {
    return make_filled(L, "empty", 0, false);
}

/* A fill value: a number, or a boolean (which makes the default dtype bool). */
static td_num fill_arg(lua_State *L, int i, td_dtype *def, const char *fn) {
    if (lua_isboolean(L, i)) {
        *def = TD_BOOL;
        return (td_num){.i = lua_toboolean(L, i), .is_int = true};
    }
    check_number(L, i, fn, "the fill value");
    return tdL_tonum(L, i);
}

/* full(shape, v [, opts]): shape is one table or one size. */
static int l_full(lua_State *L) {
    int64_t shape[TD_MAX_DIMS];
    if (!lua_istable(L, 1) && lua_type(L, 1) != LUA_TNUMBER)
        return luaL_error(L, "full: expected a shape table first, got %s", luaL_typename(L, 1));
    td_dtype def = TD_FLOAT32;
    td_num v = fill_arg(L, 2, &def, "full");
    int opt = lua_gettop(L) >= 3 ? 3 : 0;
    tdL_checkopts(L, opt, "full", create_opts);
    td_dtype dt = tdL_optdtypefield(L, opt, "full", def);
    int nd = read_shape(L, 1, 1, shape, "full");
    check_num(L, v, dt, "full");
    return finish(L, push_full(L, shape, nd, dt, v, "full"), opt, "full");
}

/* eye(n [, m] [, opts]): ones on the main diagonal of an n x m matrix. */
static int l_eye(lua_State *L) {
    int opt = lua_istable(L, lua_gettop(L)) ? lua_gettop(L) : 0;
    int nargs = opt ? opt - 1 : lua_gettop(L);
    if (nargs < 1 || nargs > 2) return luaL_error(L, "eye: expected (n [, m] [, opts])");
    tdL_checkopts(L, opt, "eye", create_opts);
    td_dtype dt = tdL_optdtypefield(L, opt, "eye", TD_FLOAT32);
    int64_t shape[2];
    shape[0] = check_size(L, 1, "eye");
    shape[1] = nargs == 2 ? check_size(L, 2, "eye") : shape[0];
    td_tensor *t = push_new(L, shape, 2, dt, true, "eye");
    for (int64_t i = 0; i < shape[0] && i < shape[1]; i++) {
        int64_t idx[2] = {i, i};
        td_set(t, idx, 1);
    }
    return finish(L, t, opt, "eye");
}

/* ---- ranges ------------------------------------------------------------------------------- */

/* arange(n) = 1..n; arange(a, b [, step]) = a, a+step, ... up to b inclusive, like a Lua numeric
 * for, but computed as a + i*step (no drift) and taking b when it lands on it within rounding. */
static int l_arange(lua_State *L) {
    int top = lua_gettop(L), opt = top >= 1 && lua_istable(L, top) ? top : 0;
    int nargs = opt ? opt - 1 : top;
    if (nargs < 1 || nargs > 3)
        return luaL_error(L, "arange: expected (n), (a, b) or (a, b, step), got %d arguments",
                          nargs);
    tdL_checkopts(L, opt, "arange", create_opts);
    td_dtype dt = tdL_optdtypefield(L, opt, "arange", TD_FLOAT32);
    if (dt == TD_BOOL) return luaL_error(L, "arange: dtype bool is not supported");
    int ia = nargs == 1 ? 0 : 1, ib = nargs == 1 ? 1 : 2, is = nargs == 3 ? 3 : 0;
    double a = ia ? check_number(L, ia, "arange", "start") : 1;
    double b = check_number(L, ib, "arange", "end");
    double step = is ? check_number(L, is, "arange", "step") : 1;
    if (!isfinite(a) || !isfinite(b) || !isfinite(step) || step == 0)
        return luaL_error(L,
                          "arange: expected finite start and end and a nonzero step, got "
                          "(%f, %f, %f)",
                          a, b, step);
    bool ints =
        (!ia || lua_isinteger(L, ia)) && lua_isinteger(L, ib) && (!is || lua_isinteger(L, is));
    lua_Integer ai = ints && ia ? lua_tointeger(L, ia) : 1,
                si = ints && is ? lua_tointeger(L, is) : 1;
    double tol = fmin(fmax(fmax(fabs(a / step), fabs(b / step)) * 1e-9, 1e-9), 1e-3);
    double q = (b - a) / step, n; /* tol: rounding in b - a, not a real overshoot */
    if (ints) {                   /* exact in integers: counts beyond 2^53 stay right */
        lua_Integer bi = lua_tointeger(L, ib);
        lua_Unsigned span =
            si > 0 ? (lua_Unsigned)bi - (lua_Unsigned)ai : (lua_Unsigned)ai - (lua_Unsigned)bi;
        lua_Unsigned st = si > 0 ? (lua_Unsigned)si : 0 - (lua_Unsigned)si;
        n = (si > 0 ? bi < ai : bi > ai) ? 0 : (double)(span / st) + 1;
    } else {
        n = q < -tol ? 0 : floor(q + tol) + 1;
    }
    if (n > 0x1p40) return luaL_error(L, "arange: %f elements is too many (at most 2^40)", n);
    int64_t len = (int64_t)n;
    double last = len ? a + (double)(len - 1) * step : a;
    bool snap = !ints && fabs(last - b) <= tol * fabs(step); /* end exactly on b */
    if (ints) { /* the integer ends, not their doubles */
        check_num(L, (td_num){.i = ai, .is_int = true}, dt, "arange");
        check_num(L, (td_num){.i = (int64_t)((lua_Unsigned)ai + (lua_Unsigned)(len ? len - 1 : 0) *
                                                                    (lua_Unsigned)si),
                              .is_int = true},
                  dt, "arange");
    } else {
        check_value(L, a, dt, "arange");
        check_value(L, last, dt, "arange");
    }
    td_tensor *t = push_new(L, &len, 1, dt, false, "arange");
    void *d = td_data(t);
    for (int64_t i = 0; i < len; i++) {
        double v = snap && i == len - 1 ? b : a + (double)i * step;
        switch (dt) {
        case TD_FLOAT32:
            ((float *)d)[i] = (float)v;
            break;
        case TD_FLOAT64:
            ((double *)d)[i] = v;
            break;
        case TD_INT64:
            ((int64_t *)d)[i] =
                ints ? (int64_t)((lua_Unsigned)ai + (lua_Unsigned)i * (lua_Unsigned)si)
                     : (int64_t)v;
            break;
        default:
            ((uint8_t *)d)[i] = (uint8_t)(int64_t)v;
            break;
        }
    }
    return finish(L, t, opt, "arange");
}

/* linspace(a, b, n [, opts]): n points from a to b inclusive, both ends exact (PyTorch's
 * symmetric formula: the first half counts up from a, the second down from b). */
static int l_linspace(lua_State *L) {
    double a = check_number(L, 1, "linspace", "start"), b = check_number(L, 2, "linspace", "end");
    int64_t n = check_integer(L, 3, "linspace", "the number of points");
    int opt = lua_gettop(L) >= 4 ? 4 : 0;
    tdL_checkopts(L, opt, "linspace", create_opts);
    td_dtype dt = tdL_optdtypefield(L, opt, "linspace", TD_FLOAT32);
    if (n < 0) return luaL_error(L, "linspace: expected n >= 0 points, got %I", (lua_Integer)n);
    if (!isfinite(a) || !isfinite(b))
        return luaL_error(L, "linspace: expected finite ends, got %f and %f", a, b);
    check_value(L, a, dt, "linspace");
    check_value(L, b, dt, "linspace");
    td_tensor *t = push_new(L, &n, 1, dt, false, "linspace");
    double step = n > 1 ? (b - a) / (double)(n - 1) : 0;
    float fa = (float)a, fb = (float)b, fstep = n > 1 ? (fb - fa) / (float)(n - 1) : 0;
    for (int64_t i = 0; i < n; i++) {
        if (n == 1) {
            td_set(t, &i, a);
            break;
        }
        if (dt == TD_FLOAT32) { /* in float, as PyTorch does: the same bits */
            ((float *)td_data(t))[i] =
                i < n / 2 ? fa + fstep * (float)i : fb - fstep * (float)(n - 1 - i);
            continue;
        }
        td_set(t, &i, i < n / 2 ? a + step * (double)i : b - step * (double)(n - 1 - i));
    }
    return finish(L, t, opt, "linspace");
}

/* ---- random constructors ------------------------------------------------------------------ */

enum { RAND, RANDN };

/* rand/randn: (sizes... [, opts]) or ({sizes} [, opts]); float dtypes only. */
static int make_random(lua_State *L, const char *fn, int kind) {
    int64_t shape[TD_MAX_DIMS];
    int opt = opts_at(L, 1);
    tdL_checkopts(L, opt, fn, create_opts);
    td_dtype dt = tdL_optdtypefield(L, opt, fn, TD_FLOAT32);
    check_float(L, dt, fn);
    int nd = read_shape(L, 1, opt ? opt - 1 : lua_gettop(L), shape, fn);
    td_tensor *t = push_new(L, shape, nd, dt, false, fn);
    if ((kind == RAND ? td_fill_uniform(t, 0, 1) : td_fill_normal(t, 0, 1)) < 0)
        return tdL_error(L);
    return finish(L, t, opt, fn);
}

static int l_rand(lua_State *L) {
    return make_random(L, "rand", RAND);
}

static int l_randn(lua_State *L) {
    return make_random(L, "randn", RANDN);
}

/* randint(lo, hi, sizes... [, opts]): integers in [lo, hi] inclusive, int64 by default. */
static int l_randint(lua_State *L) {
    int64_t shape[TD_MAX_DIMS];
    int64_t lo = check_integer(L, 1, "randint", "lo"), hi = check_integer(L, 2, "randint", "hi");
    if (hi < lo)
        return luaL_error(L, "randint: empty range [%I, %I] (expected lo <= hi)", (lua_Integer)lo,
                          (lua_Integer)hi);
    int opt = opts_at(L, 3);
    tdL_checkopts(L, opt, "randint", create_opts);
    td_dtype dt = tdL_optdtypefield(L, opt, "randint", TD_INT64);
    int nd = read_shape(L, 3, opt ? opt - 1 : lua_gettop(L), shape, "randint");
    td_tensor *t = push_new(L, shape, nd, dt, false, "randint");
    if (td_fill_randint(t, lo, hi) < 0) return tdL_error(L);
    return finish(L, t, opt, "randint");
}

/* randperm(n [, opts]): a random permutation of 1..n, int64 by default; {seed = s} draws it
 * from a private stream keyed by s (the same as after manual_seed(s)), leaving tide's own. */
static int l_randperm(lua_State *L) {
    static const char *const perm_opts[] = {"dtype", "requires_grad", "seed", NULL};
    int64_t n = check_integer(L, 1, "randperm", "n");
    int opt = lua_gettop(L) >= 2 ? 2 : 0;
    tdL_checkopts(L, opt, "randperm", perm_opts);
    bool seeded = opt && lua_getfield(L, opt, "seed") != LUA_TNIL;
    int64_t key = seeded ? check_integer(L, -1, "randperm", "seed") : 0;
    if (opt) lua_pop(L, 1);
    td_dtype dt = tdL_optdtypefield(L, opt, "randperm", TD_INT64);
    if (n < 0) return luaL_error(L, "randperm: expected n >= 0, got %I", (lua_Integer)n);
    if (dt == TD_BOOL || (dt == TD_UINT8 && n > 255) || (dt == TD_INT8 && n > 127))
        return luaL_error(L, "randperm: 1..%I does not fit a %s tensor", (lua_Integer)n,
                          td_dtype_name(dt));
    tdL_box *b = tdL_newbox(L);
    td_tensor *p = seeded ? td_randperm_seeded(n, (uint64_t)key) : td_randperm(n);
    if (!p) return luaL_error(L, "randperm: %s", td_errmsg());
    b->t = td_to_dtype(p, dt);
    td_release(p);
    if (!b->t) return tdL_error(L);
    return finish(L, b->t, opt, "randperm");
}

/* ---- the *_like forms: t's shape, and t's dtype unless {dtype=} ------------------------- */

enum { LIKE_EMPTY, LIKE_ZEROS, LIKE_ONES, LIKE_FULL, LIKE_RAND, LIKE_RANDN };

static int make_like(lua_State *L, const char *fn, int kind) {
    td_tensor *src = tdL_checktensor(L, 1);
    td_dtype def = src->dtype;
    td_num v = {.i = kind == LIKE_ONES, .is_int = true};
    int opt = 2;
    if (kind == LIKE_FULL) {
        v = fill_arg(L, 2, &def, fn);
        def = src->dtype;
        opt = 3;
    }
    opt = lua_isnoneornil(L, opt) ? 0 : opt;
    tdL_checkopts(L, opt, fn, create_opts);
    td_dtype dt = tdL_optdtypefield(L, opt, fn, def);
    if (kind >= LIKE_RAND) check_float(L, dt, fn);
    if (kind == LIKE_FULL) check_num(L, v, dt, fn);
    td_tensor *t = kind == LIKE_ONES || kind == LIKE_FULL
                       ? push_full(L, src->shape, src->ndim, dt, v, fn)
                       : push_new(L, src->shape, src->ndim, dt, kind == LIKE_ZEROS, fn);
    if (kind == LIKE_RAND && td_fill_uniform(t, 0, 1) < 0) return tdL_error(L);
    if (kind == LIKE_RANDN && td_fill_normal(t, 0, 1) < 0) return tdL_error(L);
    return finish(L, t, opt, fn);
}

static int l_empty_like(lua_State *L) {
    return make_like(L, "empty_like", LIKE_EMPTY);
}
static int l_zeros_like(lua_State *L) {
    return make_like(L, "zeros_like", LIKE_ZEROS);
}
static int l_ones_like(lua_State *L) {
    return make_like(L, "ones_like", LIKE_ONES);
}
static int l_full_like(lua_State *L) {
    return make_like(L, "full_like", LIKE_FULL);
}
static int l_rand_like(lua_State *L) {
    return make_like(L, "rand_like", LIKE_RAND);
}
static int l_randn_like(lua_State *L) {
    return make_like(L, "randn_like", LIKE_RANDN);
}

/* ---- in-place random fills and the generator state ---------------------------------------- */

static double opt_number(lua_State *L, int i, double def, const char *fn, const char *what) {
    return lua_isnoneornil(L, i) ? def : check_number(L, i, fn, what);
}

static int l_uniform_(lua_State *L) {
    td_tensor *t = tdL_checktensor(L, 1);
    double lo = opt_number(L, 2, 0, "uniform_", "lo"), hi = opt_number(L, 3, 1, "uniform_", "hi");
    if (td_fill_uniform(t, lo, hi) < 0) return tdL_error(L);
    lua_settop(L, 1);
    return 1;
}

static int l_normal_(lua_State *L) {
    td_tensor *t = tdL_checktensor(L, 1);
    double m = opt_number(L, 2, 0, "normal_", "mean"), s = opt_number(L, 3, 1, "normal_", "std");
    if (td_fill_normal(t, m, s) < 0) return tdL_error(L);
    lua_settop(L, 1);
    return 1;
}

static int l_bernoulli_(lua_State *L) {
    td_tensor *t = tdL_checktensor(L, 1);
    if (td_fill_bernoulli(t, opt_number(L, 2, 0.5, "bernoulli_", "p")) < 0) return tdL_error(L);
    lua_settop(L, 1);
    return 1;
}

/* {seed =, offset =}: enough to replay every random result from here on (checkpoints). */
static int l_get_rng_state(lua_State *L) {
    uint64_t st[2];
    td_rng_get_state(st);
    lua_createtable(L, 0, 2);
    lua_pushinteger(L, (lua_Integer)st[0]);
    lua_setfield(L, -2, "seed");
    lua_pushinteger(L, (lua_Integer)st[1]);
    lua_setfield(L, -2, "offset");
    return 1;
}

static int l_set_rng_state(lua_State *L) {
    luaL_checktype(L, 1, LUA_TTABLE);
    uint64_t st[2];
    lua_getfield(L, 1, "seed");
    st[0] = (uint64_t)check_integer(L, -1, "set_rng_state", "seed");
    lua_getfield(L, 1, "offset");
    st[1] = (uint64_t)check_integer(L, -1, "set_rng_state", "offset");
    td_rng_set_state(st);
    return 0;
}

static const luaL_Reg funcs[] = {
    {"tensor", l_tensor},
    {"zeros", l_zeros},
    {"ones", l_ones},
    {"empty", l_empty},
    {"full", l_full},
    {"eye", l_eye},
    {"arange", l_arange},
    {"linspace", l_linspace},
    {"rand", l_rand},
    {"randn", l_randn},
    {"randint", l_randint},
    {"randperm", l_randperm},
    {"empty_like", l_empty_like},
    {"zeros_like", l_zeros_like},
    {"ones_like", l_ones_like},
    {"full_like", l_full_like},
    {"rand_like", l_rand_like},
    {"randn_like", l_randn_like},
    {"get_rng_state", l_get_rng_state},
    {"set_rng_state", l_set_rng_state},
    {"set_printoptions", tdL_set_printoptions},
    {NULL, NULL},
};

static const luaL_Reg methods[] = {
    {"uniform_", l_uniform_},
    {"normal_", l_normal_},
    {"bernoulli_", l_bernoulli_},
    {NULL, NULL},
};

void tdL_register_create(lua_State *L) {
    luaL_setfuncs(L, funcs, 0);
    tdL_pushmethods(L);
    luaL_setfuncs(L, methods, 0);
    lua_pop(L, 1);
}
