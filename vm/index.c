/* vm/index.c: t[key] and t[key] = v. A key is a position along dim 1, a table of per-dim
 * slices ({} all, a number selects, {a, b[, step]} an inclusive range), a bool mask or an int64
 * index tensor. Reads run the select/narrow/masked_select/index ops and writes td_op_assign, so
 * autograd sees both; every key is checked here before anything is allocated. */
#include "tdl.h"

#include <string.h>

typedef struct step { /* one row of td_op_assign's key: the layout matters */
    int64_t kind, dim, start, len, step;
} step;

typedef struct key {
    step s[TD_MAX_DIMS];
    int n;                      /* steps */
    int64_t shape[TD_MAX_DIMS]; /* of the result */
    int ndim;
} key;

static int64_t position(lua_State *L, int i, int64_t size, const char *fn, int dim) {
    int isnum;
    lua_Integer p = lua_tointegerx(L, i, &isnum);
    if (!isnum)
        luaL_error(L, "%s: positions must be integers, got %s", fn,
                   lua_type(L, i) == LUA_TNUMBER ? lua_tostring(L, i) : luaL_typename(L, i));
    lua_Integer q = p < 0 ? p + size + 1 : p;
    if (q < 1 || q > size)
        luaL_error(L, "%s: index %I out of range for dim %d of size %I (expected 1..%I or -%I..-1)",
                   fn, p, dim, (lua_Integer)size, (lua_Integer)size, (lua_Integer)size);
    return q - 1;
}

static void add_select(key *k, int d, int64_t index) {
    k->s[k->n++] = (step){TD_STEP_SELECT, d, index, 0, 1};
    for (int i = d; i + 1 < k->ndim; i++) k->shape[i] = k->shape[i + 1];
    k->ndim--;
}

/* {a, b[, step]} at index r for dim d (key entry e): an inclusive range, negatives from the end */
static void add_range(lua_State *L, key *k, int r, int d, int e, const char *fn) {
    int64_t size = k->shape[d], v[3] = {1, size, 1};
    int n = (int)luaL_len(L, r);
    if (n > 3)
        luaL_error(L, "%s: key entry %d has %d values (expected {}, {i}, {a, b} or {a, b, step})",
                   fn, e, n);
    for (int j = 0; j < n; j++) {
        int isnum;
        lua_geti(L, r, j + 1);
        v[j] = lua_tointegerx(L, -1, &isnum);
        if (!isnum)
            luaL_error(L, "%s: key entry %d: range values must be integers, got %s", fn, e,
                       luaL_typename(L, -1));
        lua_pop(L, 1);
    }
    if (n == 1) v[1] = v[0];
    int64_t a = v[0] < 0 ? v[0] + size + 1 : v[0], b = v[1] < 0 ? v[1] + size + 1 : v[1];
    if (a < 1 || a > size + 1 || b > size || b < a - 1)
        luaL_error(L,
                   "%s: range {%I, %I} out of range for dim %d of size %I (expected positions "
                   "1..%I or -%I..-1, first <= last + 1)",
                   fn, (lua_Integer)v[0], (lua_Integer)v[1], e, (lua_Integer)size,
                   (lua_Integer)size, (lua_Integer)size);
    if (v[2] < 1) luaL_error(L, "%s: range step must be positive, got %I", fn, (lua_Integer)v[2]);
    int64_t len = b >= a ? (b - a) / v[2] + 1 : 0;
    if (a == 1 && len == size) return; /* the whole dim: nothing to do */
    k->s[k->n++] = (step){TD_STEP_NARROW, d, a - 1, len, v[2]};
    k->shape[d] = len;
}

/* Parses the key at index 2 for t. Raises on any bad entry; allocates nothing. */
static void parse_key(lua_State *L, const td_tensor *t, key *k, const char *fn) {
    memset(k, 0, sizeof *k);
    k->ndim = t->ndim;
    memcpy(k->shape, t->shape, sizeof(int64_t) * (size_t)t->ndim);
    if (lua_type(L, 2) == LUA_TNUMBER) {
        if (t->ndim == 0) luaL_error(L, "%s: a 0-D tensor cannot be indexed (use item())", fn);
        add_select(k, 0, position(L, 2, t->shape[0], fn, 1));
        return;
    }
    int n = (int)luaL_len(L, 2);
    if (n > t->ndim) luaL_error(L, "%s: %d key entries for a %d-D tensor", fn, n, t->ndim);
    for (int e = 1, d = 0; e <= n; e++) {
        int ty = lua_geti(L, 2, e);
        if (ty == LUA_TNUMBER)
            add_select(k, d, position(L, -1, k->shape[d], fn, e));
        else if (ty == LUA_TTABLE)
            add_range(L, k, lua_gettop(L), d++, e, fn);
        else
            luaL_error(L, "%s: key entry %d must be a number or a range table, got %s", fn, e,
                       luaL_typename(L, -1));
        lua_pop(L, 1);
    }
}

/* Pushes the part of t that the steps name, as a tensor. Every dim selected gives the element
 * as a Lua number (truthiness and comparisons work on it), except when autograd tracks t: then
 * a 0-dim tensor in the graph, so `out[{1, c}]:backward()` works as in PyTorch. */
static int push_steps(lua_State *L, td_tensor *t, const key *k) {
    if (k->ndim == 0 && k->n == t->ndim && !(t->requires_grad && td_grad_enabled())) {
        int64_t idx[TD_MAX_DIMS];
        for (int i = 0; i < k->n; i++) idx[i] = k->s[i].start;
        tdL_pushelem(L, t, idx);
        return 1;
    }
    tdL_box *b = tdL_newbox(L);
    td_tensor *cur = t;
    td_retain(t);
    if (k->n == 0 && t->ndim) { /* t[{}]: a new view of all of t */
        td_args a = {.dim = 0, .start = 0, .len = t->shape[0]};
        td_tensor *v = td_apply1(&td_op_narrow, cur, &a);
        td_release(cur);
        if (!(cur = v)) return tdL_error(L);
    }
    for (int i = 0; i < k->n; i++) {
        const step *s = &k->s[i];
        td_args a = {
            .dim = s->dim, .index = s->start, .start = s->start, .len = s->len, .step = s->step};
        td_tensor *v =
            td_apply1(s->kind == TD_STEP_SELECT ? &td_op_select : &td_op_narrow, cur, &a);
        td_release(cur);
        if (!(cur = v)) return tdL_error(L);
    }
    b->t = cur;
    tdL_gcpressure(L);
    return 1;
}

/* A bool or int64 tensor key: masked_select / index along dim 1. */
static int index_by_tensor(lua_State *L, td_tensor *t, td_tensor *idx) {
    char a[128];
    if (idx->dtype != TD_BOOL && idx->dtype != TD_INT64)
        return luaL_error(L,
                          "index: a tensor key must be a bool mask or int64 positions, got %s "
                          "(shape %s)",
                          td_dtype_name(idx->dtype),
                          td_shape_str(idx->shape, idx->ndim, a, sizeof a));
    tdL_box *b = tdL_newbox(L);
    td_args args = {.dim = 0};
    b->t = idx->dtype == TD_BOOL ? td_apply2(&td_op_masked_select, t, idx, NULL)
                                 : td_apply2(&td_op_index, t, idx, &args);
    if (!b->t) return tdL_error(L);
    tdL_gcpressure(L);
    return 1;
}

int tdL_index(lua_State *L) {
    td_tensor *t = tdL_checktensor(L, 1), *idx = tdL_totensor(L, 2);
    key k;
    if (idx) return index_by_tensor(L, t, idx);
    if (lua_type(L, 2) != LUA_TNUMBER && !lua_istable(L, 2))
        return luaL_error(L, "index: a key must be a number, a table of slices or a tensor, got %s",
                          luaL_typename(L, 2));
    parse_key(L, t, &k, "index");
    return push_steps(L, t, &k);
}

/* t[i] = number on a 1-D tensor that autograd does not track: one store, no op. */
static bool store_fast(lua_State *L, td_tensor *t) {
    if (t->ndim != 1 || lua_type(L, 2) != LUA_TNUMBER || lua_type(L, 3) != LUA_TNUMBER ||
        (t->requires_grad && td_grad_enabled()))
        return false;
    int64_t i = position(L, 2, t->shape[0], "index assignment", 1);
    td_num v = tdL_tonum(L, 3);
    if (td_num_check("index assignment", v, t->dtype) < 0) tdL_error(L);
    td_num_store(v, t->dtype, (char *)td_data(t) + i * t->stride[0] * (int64_t)td_dtype_size(t->dtype));
    td_bump_version(t);
    return true;
}

int tdL_newindex(lua_State *L) {
    const char *fn = "index assignment";
    td_tensor *t = tdL_checktensor(L, 1), *mask = tdL_totensor(L, 2), *kt = NULL;
    char a[128];
    key k;
    if (lua_type(L, 3) != LUA_TNUMBER && !tdL_totensor(L, 3))
        return luaL_error(L, "%s: the value must be a number or a tensor, got %s", fn,
                          luaL_typename(L, 3));
    if (mask && mask->dtype != TD_BOOL)
        return luaL_error(L,
                          "%s: a tensor key must be a bool mask, got %s (shape %s); use "
                          "scatter_ to write at int64 positions",
                          fn, td_dtype_name(mask->dtype),
                          td_shape_str(mask->shape, mask->ndim, a, sizeof a));
    if (!mask && lua_type(L, 2) != LUA_TNUMBER && !lua_istable(L, 2))
        return luaL_error(L, "%s: a key must be a number, a table of slices or a bool mask, got %s",
                          fn, luaL_typename(L, 2));
    if (!mask && store_fast(L, t)) return 0;
    if (!mask) parse_key(L, t, &k, fn);
    td_tensor *v = tdL_checkvalue(L, 3, t->dtype, fn); /* nothing can raise after this */
    if (mask) {
        kt = mask;
        td_retain(kt);
    } else {
        int64_t shape[2] = {k.n, 5};
        kt = td_from_data(k.s, shape, 2, TD_INT64);
    }
    td_tensor *in[3] = {t, v, kt};
    int rc = kt ? td_apply_(&td_op_assign, in, 3, NULL) : -1;
    td_release(v);
    td_release(kt);
    if (rc < 0) return tdL_error(L);
    return 0;
}
