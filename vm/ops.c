/* vm/ops.c: the ONE table-driven binder for tensor/ops/ops.def. Each row becomes a method of
 * tide.Tensor and a function of the module (tide.exp(t) = t:exp()); rows whose op has
 * TD_INPLACE also get "name_". A row's td_sig picks its argument checker below. */
#include <stdio.h>
#include <string.h>

#include "tdl.h"

typedef struct call {
    td_tensor *in[TD_ITER_MAX]; /* borrowed from boxes on the Lua stack (numbers get boxes
                                   too), so a checker that raises midway leaks nothing */
    td_tensor **list;           /* SIG_LIST_DIM: borrowed from the boxes in the list */
    int nin;
    td_args a;
} call;

typedef void (*sig_check)(lua_State *L, const char *fn, call *c);

static td_tensor *self(lua_State *L, call *c) {
    td_tensor *t = tdL_checktensor(L, 1);
    c->in[c->nin++] = t;
    return t;
}

static void operand(lua_State *L, int i, td_dtype like, const char *fn, call *c) {
    td_tensor *t = tdL_totensor(L, i);
    if (!t) { /* a number: its 0-dim tensor lives in a box on the stack, owned by the GC */
        tdL_box *b = tdL_newbox(L);
        t = b->t = tdL_checkoperand(L, i, like, fn);
    }
    c->in[c->nin++] = t;
}

static void s_t(lua_State *L, const char *fn, call *c) {
    (void)fn;
    self(L, c);
}
static void s_t_t(lua_State *L, const char *fn, call *c) {
    td_tensor *t = tdL_totensor(L, 1);
    td_tensor *u = tdL_totensor(L, 2);
    if (!t && !u) {
        if (tdL_istensor(L, 1) || tdL_istensor(L, 2)) luaL_error(L, "%s: tensor was closed", fn);
        luaL_error(L, "%s: expected a tensor argument", fn);
    }
    td_dtype like = t ? t->dtype : u->dtype;
    if (t) /* the common case, tensor op tensor, without a second look at each box */
        c->in[c->nin++] = t;
    else
        operand(L, 1, like, fn, c);
    if (u)
        c->in[c->nin++] = u;
    else
        operand(L, 2, like, fn, c);
}
static void s_t_tensor(lua_State *L, const char *fn, call *c) {
    self(L, c);
    td_tensor *u = tdL_totensor(L, 2);
    if (!u) luaL_error(L, "%s: expected a tensor, got %s", fn, luaL_typename(L, 2));
    c->in[c->nin++] = u;
}
static void s_t_t_t(lua_State *L, const char *fn, call *c) {
    td_tensor *t = self(L, c);
    td_tensor *u = tdL_totensor(L, 2), *v = tdL_totensor(L, 3);
    (void)t; /* where(cond, 1, 0): numbers are float32 (doc/tensor.md, creation), not the condition's bool */
    td_dtype like = u ? u->dtype : v ? v->dtype : TD_FLOAT32;
    operand(L, 2, like, fn, c);
    operand(L, 3, like, fn, c);
}
static void s_t_dim(lua_State *L, const char *fn, call *c) {
    td_tensor *t = self(L, c);
    c->a.dim = tdL_checkdim(L, 2, t->ndim, fn);
}
static void s_t_dim2(lua_State *L, const char *fn, call *c) {
    td_tensor *t = self(L, c);
    c->a.dim = tdL_checkdim(L, 2, t->ndim, fn);
    c->a.dim2 = tdL_checkdim(L, 3, t->ndim, fn);
}
static void s_t_odim(lua_State *L, const char *fn, call *c) {
    td_tensor *t = self(L, c);
    c->a.has_a = !lua_isnoneornil(L, 2);
    if (c->a.has_a) c->a.dim = tdL_checkdim(L, 2, t->ndim, fn);
}
static void s_reduce(lua_State *L, const char *fn, call *c) {
    static const char *const known[] = {"unbiased", "keepdim", "dim", NULL};
    td_tensor *t = tdL_checktensor(L, 1); /* self() borrows: it may come last */
    int top = lua_gettop(L), opt = 0, dpos = 0;
    if (top >= 2 && lua_istable(L, top)) {
        opt = top--;
        tdL_checkopts(L, opt, fn, known);
    }
    c->a.flag = tdL_optboolfield(L, opt, "unbiased", 1);
    if (top >= 2 && !lua_isnil(L, 2))
        dpos = 2;
    else if (opt && lua_getfield(L, opt, "dim") != LUA_TNIL) /* t:sum({dim = 2}) */
        dpos = lua_gettop(L);
    c->a.has_a = dpos != 0;
    if (dpos) c->a.dim = tdL_checkdim(L, dpos, t->ndim, fn);
    c->a.keepdim = top >= 3 ? lua_toboolean(L, 3) : tdL_optboolfield(L, opt, "keepdim", 0);
    self(L, c);
}
static void s_t_sizes(lua_State *L, const char *fn, call *c) {
    self(L, c);
    c->a.nsizes = tdL_checkshape(L, 2, c->a.sizes, fn);
}
static void s_t_narrow(lua_State *L, const char *fn, call *c) {
    td_tensor *t = self(L, c);
    c->a.dim = tdL_checkdim(L, 2, t->ndim, fn);
    int64_t n = t->ndim ? t->shape[c->a.dim] : 1;
    lua_Integer s = luaL_checkinteger(L, 3);
    if (s < 0) s += n + 1; /* -1 is the last position; n+1 allows an empty narrow at the end */
    if (s < 1 || s > n + 1)
        luaL_error(L, "%s: start %I out of range for dim %d of size %I (expected 1..%I or -%I..-1)",
                   fn, luaL_checkinteger(L, 3), (int)c->a.dim + 1, (lua_Integer)n, (lua_Integer)n,
                   (lua_Integer)n);
    c->a.start = s - 1;
    c->a.len = luaL_checkinteger(L, 4);
}
static void s_t_select(lua_State *L, const char *fn, call *c) {
    td_tensor *t = self(L, c);
    if (t->ndim == 0) luaL_error(L, "%s: cannot select from a 0-D tensor", fn);
    c->a.dim = tdL_checkdim(L, 2, t->ndim, fn);
    c->a.index = tdL_checkpos(L, 3, t->shape[c->a.dim], fn, "index");
}
static void s_t_flatten(lua_State *L, const char *fn, call *c) {
    td_tensor *t = self(L, c);
    c->a.dim = tdL_optdim(L, 2, t->ndim, fn, 0);
    c->a.dim2 = tdL_optdim(L, 3, t->ndim, fn, t->ndim ? t->ndim - 1 : 0);
}
static void s_t_num(lua_State *L, const char *fn, call *c) {
    (void)fn;
    self(L, c);
    c->a.a = luaL_checknumber(L, 2);
    c->a.has_a = true;
}
static void s_t_onum2(lua_State *L, const char *fn, call *c) {
    (void)fn;
    self(L, c);
    c->a.has_a = !lua_isnoneornil(L, 2);
    c->a.has_b = !lua_isnoneornil(L, 3);
    if (c->a.has_a) c->a.a = luaL_checknumber(L, 2), c->a.lo = tdL_tonum(L, 2);
    if (c->a.has_b) c->a.b = luaL_checknumber(L, 3), c->a.hi = tdL_tonum(L, 3);
}
static void s_t_dtype(lua_State *L, const char *fn, call *c) {
    self(L, c);
    c->a.dtype = tdL_checkdtype(L, 2, fn);
}
static void s_t_dim_t(lua_State *L, const char *fn, call *c) {
    td_tensor *t = self(L, c);
    c->a.dim = tdL_checkdim(L, 2, t->ndim, fn);
    td_tensor *idx = tdL_checktensor(L, 3);
    c->in[c->nin++] = idx;
}
static void s_t_dim_t_t(lua_State *L, const char *fn, call *c) {
    s_t_dim_t(L, fn, c);
    operand(L, 4, c->in[0]->dtype, fn, c);
}
static void s_t_t_num(lua_State *L, const char *fn, call *c) {
    td_tensor *t = self(L, c);
    td_tensor *m = tdL_checktensor(L, 2);
    c->in[c->nin++] = m;
    if (lua_type(L, 3) != LUA_TNUMBER)
        luaL_error(L, "%s: value must be a number, got %s", fn, luaL_typename(L, 3));
    td_num v = tdL_tonum(L, 3);
    if (td_num_check(fn, v, t->dtype) < 0) tdL_error(L);
    c->a.a = v.is_int ? (double)v.i : v.f;
    c->a.index = v.i, c->a.flag = v.is_int; /* exact: masked_fill stores by td_num_store */
}
static void s_t_value(lua_State *L, const char *fn, call *c) {
    td_tensor *t = self(L, c);
    if (lua_type(L, 2) != LUA_TNUMBER) {
        operand(L, 2, t->dtype, fn, c);
        return;
    }
    tdL_box *b = tdL_newbox(L); /* the 0-dim value, owned by the GC */
    c->in[c->nin++] = b->t = tdL_checkvalue(L, 2, t->dtype, fn);
}
static void s_list_dim(lua_State *L, const char *fn, call *c) {
    lua_settop(L, 2); /* the dim stays at 2 (maybe nil) when the list array is pushed */
    if (!lua_istable(L, 1) || tdL_istensor(L, 1))
        luaL_error(L, "%s: expected a list of tensors, got %s", fn, luaL_typename(L, 1));
    int n = (int)luaL_len(L, 1);
    if (n == 0) luaL_error(L, "%s: expected a non-empty list of tensors", fn);
    c->list = lua_newuserdatauv(L, sizeof(td_tensor *) * (size_t)n, 0); /* freed by the GC */
    for (int k = 0; k < n; k++) {
        lua_geti(L, 1, k + 1);
        c->list[k] = tdL_totensor(L, -1);
        if (!c->list[k])
            luaL_error(L, "%s: element %d of the list is a %s, expected a tensor", fn, k + 1,
                       luaL_typename(L, -1));
        lua_pop(L, 1); /* the list table keeps the box alive */
    }
    c->nin = n;
    int nd = c->list[0]->ndim + (strcmp(fn, "stack") == 0); /* stack inserts a dim */
    c->a.dim = tdL_optdim(L, 2, nd, fn, 0);
}
static void s_t_num_opt(lua_State *L, const char *fn, call *c) {
    (void)fn;
    self(L, c);
    c->a.a = luaL_optnumber(L, 2, 0.5);
    c->a.flag = lua_isnoneornil(L, 3) ? true : lua_toboolean(L, 3);
}

/* permute's dims: each checked, then 1-based/negative -> 0-based; self() after (it borrows,
 * so the order only keeps c->in filled once every check passed) */
static void s_t_dims(lua_State *L, const char *fn, call *c) {
    td_tensor *t = tdL_checktensor(L, 1);
    int n = t->ndim ? t->ndim : 1;
    c->a.nsizes = tdL_checkshape(L, 2, c->a.sizes, fn);
    for (int k = 0; k < c->a.nsizes; k++) {
        int64_t d = c->a.sizes[k];
        if (d == 0 || d > n || d < -n)
            luaL_error(L, "%s: dim %I out of range for a %d-D tensor (expected 1..%d or -%d..-1)",
                       fn, (lua_Integer)d, t->ndim, n, n);
        c->a.sizes[k] = d > 0 ? d - 1 : n + d;
    }
    self(L, c);
}
/* unsqueeze's dim: one of ndim+1 positions */
static void s_t_newdim(lua_State *L, const char *fn, call *c) {
    td_tensor *t = tdL_checktensor(L, 1);
    int isnum, n = t->ndim + 1;
    lua_Integer d = lua_tointegerx(L, 2, &isnum);
    if (!isnum) luaL_error(L, "%s: dim must be an integer, got %s", fn, luaL_typename(L, 2));
    if (d == 0 || d > n || d < -n)
        luaL_error(L, "%s: dim %I out of range for a %d-D tensor (expected 1..%d or -%d..-1)", fn,
                   d, t->ndim, n, n);
    c->a.dim = d > 0 ? d - 1 : n + d;
    self(L, c);
}

/* addmm's (a, b [, {alpha=, beta=}]) after c (self): all checked, then borrowed into c->in */
static void s_t_t_t_ab(lua_State *L, const char *fn, call *c) {
    static const char *const known[] = {"alpha", "beta", NULL};
    td_tensor *t[3];
    for (int i = 0; i < 3; i++) t[i] = tdL_checktensor(L, i + 1);
    int opt = lua_isnoneornil(L, 4) ? 0 : 4;
    tdL_checkopts(L, opt, fn, known);
    for (int k = 0; opt && k < 2; k++) {
        int ty = lua_getfield(L, opt, known[k]);
        if (ty != LUA_TNIL && ty != LUA_TNUMBER)
            luaL_error(L, "%s: %s must be a number, got %s", fn, known[k], lua_typename(L, ty));
        *(k ? &c->a.has_b : &c->a.has_a) = ty == LUA_TNUMBER;
        *(k ? &c->a.b : &c->a.a) = lua_tonumber(L, -1);
        lua_pop(L, 1);
    }
    for (int i = 0; i < 3; i++) c->in[c->nin++] = t[i];
}

/* ---- convolution and pooling (tensor/ops/conv.c, pool.c): sizes are ints or {h, w} pairs ---- */

/* the integer or {h, w} pair at stack index i into p[0], p[1] */
static void pair_at(lua_State *L, int i, const char *fn, const char *what, int64_t *p) {
    int isint;
    if (lua_type(L, i) == LUA_TNUMBER) {
        lua_Integer v = lua_tointegerx(L, i, &isint);
        if (!isint) luaL_error(L, "%s: %s must be an integer or {h, w}, got %s", fn, what,
                               lua_tostring(L, i));
        p[0] = p[1] = v;
        return;
    }
    if (!lua_istable(L, i) || tdL_istensor(L, i) || luaL_len(L, i) != 2)
        luaL_error(L, "%s: %s must be an integer or a pair {h, w}, got %s", fn, what,
                   lua_istable(L, i) ? "a table that is not a pair" : luaL_typename(L, i));
    for (int k = 0; k < 2; k++) {
        lua_geti(L, i, k + 1);
        p[k] = lua_tointegerx(L, -1, &isint);
        if (!isint) luaL_error(L, "%s: %s must hold integers, got %s", fn, what, luaL_typename(L, -1));
        lua_pop(L, 1);
    }
}

/* option `key` of the table at opt (0: none) as a pair, else def */
static void pair_opt(lua_State *L, int opt, const char *fn, const char *key, int64_t *p,
                     int64_t d0, int64_t d1) {
    p[0] = d0, p[1] = d1;
    if (!opt) return;
    if (lua_getfield(L, opt, key) != LUA_TNIL) pair_at(L, lua_gettop(L), fn, key, p);
    lua_pop(L, 1);
}

/* (x, w [, b] [, opts]): b may be nil or left out (conv2d(x, w, {stride = 2})) */
static void conv_args(lua_State *L, const char *fn, call *c, bool tr) {
    static const char *const known[] = {"stride", "padding", "dilation", "groups", NULL};
    static const char *const known_t[] = {"stride", "padding", "output_padding", "dilation",
                                          "groups", NULL};
    td_tensor *x = tdL_checktensor(L, 1), *w = tdL_checktensor(L, 2), *b = tdL_totensor(L, 3);
    int opt = lua_isnoneornil(L, 4) ? 0 : 4;
    if (!b && lua_istable(L, 3) && !tdL_istensor(L, 3)) opt = 3;
    else if (!b && !lua_isnoneornil(L, 3))
        luaL_error(L, "%s: bias must be a tensor or nil, got %s", fn, luaL_typename(L, 3));
    tdL_checkopts(L, opt, fn, tr ? known_t : known);
    int64_t *s = c->a.sizes;
    pair_opt(L, opt, fn, "stride", s, 1, 1);
    pair_opt(L, opt, fn, "padding", s + 2, 0, 0);
    pair_opt(L, opt, fn, "dilation", s + 4, 1, 1);
    pair_opt(L, opt, fn, "output_padding", s + 6, 0, 0);
    c->a.nsizes = 8;
    c->a.step = 1;
    if (opt && lua_getfield(L, opt, "groups") != LUA_TNIL) {
        int isint;
        c->a.step = lua_tointegerx(L, -1, &isint);
        if (!isint) luaL_error(L, "%s: groups must be an integer, got %s", fn, luaL_typename(L, -1));
    }
    if (opt) lua_pop(L, 1);
    td_tensor *t[3] = {x, w, b};
    for (int i = 0; i < 3 && t[i]; i++) c->in[c->nin++] = t[i];
}
static void s_conv(lua_State *L, const char *fn, call *c) {
    conv_args(L, fn, c, false);
}
static void s_conv_t(lua_State *L, const char *fn, call *c) {
    conv_args(L, fn, c, true);
}
/* (x, k [, {stride = k, padding = 0}]) */
static void s_pool(lua_State *L, const char *fn, call *c) {
    static const char *const known[] = {"stride", "padding", NULL};
    tdL_checktensor(L, 1);
    int64_t *s = c->a.sizes;
    pair_at(L, 2, fn, "kernel size", s);
    int opt = lua_isnoneornil(L, 3) ? 0 : 3;
    tdL_checkopts(L, opt, fn, known);
    pair_opt(L, opt, fn, "stride", s + 2, s[0], s[1]);
    pair_opt(L, opt, fn, "padding", s + 4, 0, 0);
    c->a.nsizes = 6;
    self(L, c);
}
/* (k [, {stride, padding, dilation}]): im2col */
static void s_unfold(lua_State *L, const char *fn, call *c) {
    static const char *const known[] = {"stride", "padding", "dilation", NULL};
    tdL_checktensor(L, 1);
    int64_t *s = c->a.sizes;
    pair_at(L, 2, fn, "kernel size", s);
    int opt = lua_isnoneornil(L, 3) ? 0 : 3;
    tdL_checkopts(L, opt, fn, known);
    pair_opt(L, opt, fn, "stride", s + 2, 1, 1);
    pair_opt(L, opt, fn, "padding", s + 4, 0, 0);
    pair_opt(L, opt, fn, "dilation", s + 6, 1, 1);
    c->a.nsizes = 8;
    self(L, c);
}
/* (n) or ({h, w}) */
static void s_t_size2(lua_State *L, const char *fn, call *c) {
    tdL_checktensor(L, 1);
    pair_at(L, 2, fn, "output size", c->a.sizes);
    c->a.nsizes = 2;
    self(L, c);
}

/* ---- normalisation and losses (tensor/ops/norm.c, loss.c, loss_pointwise.c) ---- */

/* number option `key` of the table at opt (0: none), else def */
static double num_opt(lua_State *L, int opt, const char *fn, const char *key, double def) {
    if (!opt) return def;
    int ty = lua_getfield(L, opt, key);
    if (ty != LUA_TNIL && ty != LUA_TNUMBER)
        luaL_error(L, "%s: %s must be a number, got %s", fn, key, lua_typename(L, ty));
    double v = ty == LUA_TNIL ? def : lua_tonumber(L, -1);
    lua_pop(L, 1);
    return v;
}

/* k optional tensors (a tensor or nil each) from stack index i0, then an optional options
 * table, which may also come early (layer_norm(x, {4}, {eps = 1e-3})): fills t[] (NULL for nil
 * or left out), returns the options index or 0. Borrows: the Lua stack keeps them alive. */
static int opt_tensors(lua_State *L, int i0, int k, const char *fn, const char *const *what,
                       td_tensor **t) {
    int top = lua_gettop(L), opt = 0;
    for (int j = 0; j < k; j++) {
        int i = i0 + j;
        t[j] = NULL;
        if (opt || i > top || lua_isnil(L, i) || (t[j] = tdL_totensor(L, i))) continue;
        if (lua_istable(L, i) && i == top) opt = i;
        else luaL_error(L, "%s: %s must be a tensor or nil, got %s", fn, what[j],
                        luaL_typename(L, i));
    }
    if (!opt && top >= i0 + k && !lua_isnil(L, i0 + k)) {
        if (!lua_istable(L, i0 + k) || tdL_totensor(L, i0 + k))
            luaL_error(L, "%s: expected an options table after %s, got %s", fn, what[k - 1],
                       luaL_typename(L, i0 + k));
        opt = i0 + k;
    }
    return opt;
}

static void borrow_in(call *c, td_tensor *const *t, int k) {
    for (int i = 0; i < k; i++)
        if (t[i]) c->in[c->nin++] = t[i];
}

/* (x, normalized_shape [, weight] [, bias] [, {eps = 1e-5}]) */
static void s_layer_norm(lua_State *L, const char *fn, call *c) {
    static const char *const known[] = {"eps", NULL};
    static const char *const what[] = {"weight", "bias"};
    td_tensor *t[3] = {tdL_checktensor(L, 1)};
    int isint;
    if (lua_type(L, 2) == LUA_TNUMBER) {
        c->a.sizes[0] = lua_tointegerx(L, 2, &isint);
        c->a.nsizes = 1;
        if (!isint) luaL_error(L, "%s: normalized_shape must hold integers, got %s", fn,
                               lua_tostring(L, 2));
    } else if (lua_istable(L, 2) && !tdL_totensor(L, 2)) {
        c->a.nsizes = tdL_checkshape(L, 2, c->a.sizes, fn);
    } else {
        luaL_error(L, "%s: normalized_shape must be an integer or a table of integers, got %s",
                   fn, luaL_typename(L, 2));
    }
    int opt = opt_tensors(L, 3, 2, fn, what, t + 1);
    tdL_checkopts(L, opt, fn, known);
    c->a.c = num_opt(L, opt, fn, "eps", 1e-5);
    c->a.has_a = t[1] != NULL, c->a.has_b = t[2] != NULL;
    borrow_in(c, t, 3);
}

/* (x, running_mean, running_var [, weight] [, bias] [, {training = false, momentum = 0.1,
 * eps = 1e-5}]): the running statistics (nil allowed when training) go to aux, borrowed */
static void s_batch_norm(lua_State *L, const char *fn, call *c) {
    static const char *const known[] = {"training", "momentum", "eps", NULL};
    static const char *const what[] = {"running_mean", "running_var", "weight", "bias"};
    td_tensor *x = tdL_checktensor(L, 1), *p[4];
    int opt = opt_tensors(L, 2, 4, fn, what, p);
    tdL_checkopts(L, opt, fn, known);
    c->a.flag = tdL_optboolfield(L, opt, "training", 0);
    c->a.b = num_opt(L, opt, fn, "momentum", 0.1);
    c->a.c = num_opt(L, opt, fn, "eps", 1e-5);
    c->a.aux[0] = p[0], c->a.aux[1] = p[1]; /* the Lua stack keeps them alive */
    c->a.has_a = p[2] != NULL, c->a.has_b = p[3] != NULL;
    td_tensor *t[3] = {x, p[2], p[3]};
    borrow_in(c, t, 3);
}

/* (input, target [, {reduction = "mean", ...}]) with each loss's own options */
static void s_loss(lua_State *L, const char *fn, call *c) {
    static const char *const red[] = {"mean", "sum", "none", "batchmean", NULL};
    static const char *const plain[] = {"reduction", NULL};
    static const struct {
        const char *fn;
        const char *const known[4];
    } own[] = {
        {"cross_entropy", {"reduction", "label_smoothing", "ignore_index", NULL}},
        {"nll_loss", {"reduction", "ignore_index", NULL}},
        {"smooth_l1_loss", {"reduction", "beta", NULL}},
        {"binary_cross_entropy_with_logits", {"reduction", "pos_weight", NULL}},
        {"kl_div", {"reduction", "log_target", NULL}},
    };
    const char *const *known = plain;
    for (size_t k = 0; k < sizeof own / sizeof own[0]; k++)
        if (strcmp(fn, own[k].fn) == 0) known = own[k].known;
    bool kl = strcmp(fn, "kl_div") == 0;
    td_tensor *t[3] = {tdL_checktensor(L, 1), tdL_totensor(L, 2), NULL};
    if (!t[1]) luaL_error(L, "%s: expected a target tensor, got %s", fn, luaL_typename(L, 2));
    int opt = lua_isnoneornil(L, 3) ? 0 : 3;
    tdL_checkopts(L, opt, fn, known);
    c->a.mode = TD_REDUCE_MEAN;
    if (opt && lua_getfield(L, opt, "reduction") != LUA_TNIL) {
        const char *s = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
        int m = -1;
        for (int k = 0; s && red[k]; k++)
            if (strcmp(s, red[k]) == 0 && (k < 3 || kl)) m = k;
        if (m < 0)
            luaL_error(L, "%s: reduction must be %s, got %s%s%s", fn,
                       kl ? "'mean', 'sum', 'none' or 'batchmean'" : "'mean', 'sum' or 'none'",
                       s ? "'" : "", s ? s : luaL_typename(L, -1), s ? "'" : "");
        c->a.mode = m;
    }
    if (opt) lua_pop(L, 1);
    c->a.c = num_opt(L, opt, fn, "label_smoothing", 0);
    c->a.a = num_opt(L, opt, fn, "beta", 1);
    c->a.flag = kl && tdL_optboolfield(L, opt, "log_target", 0);
    if (opt && lua_getfield(L, opt, "ignore_index") != LUA_TNIL) {
        int isint;
        c->a.index = lua_tointegerx(L, -1, &isint);
        if (!isint) luaL_error(L, "%s: ignore_index must be an integer, got %s", fn,
                               luaL_typename(L, -1));
        c->a.flag = true;
    }
    if (opt) lua_pop(L, 1);
    if (opt && lua_getfield(L, opt, "pos_weight") != LUA_TNIL && !(t[2] = tdL_totensor(L, -1)))
        luaL_error(L, "%s: pos_weight must be a tensor, got %s", fn, luaL_typename(L, -1));
    if (opt) lua_pop(L, 1); /* the options table keeps pos_weight alive */
    borrow_in(c, t, 3);
}

/* (q, k, v [, mask] [, {causal = false, scale = 1/sqrt(E), dropout = 0}]) */
static void s_attention(lua_State *L, const char *fn, call *c) {
    static const char *const known[] = {"causal", "scale", "dropout", NULL};
    static const char *const what[] = {"mask"};
    td_tensor *t[4];
    for (int i = 0; i < 3; i++)
        if (!(t[i] = tdL_totensor(L, i + 1)))
            luaL_error(L, "%s: %s must be a tensor, got %s", fn, i ? i == 1 ? "k" : "v" : "q",
                       luaL_typename(L, i + 1));
    int opt = opt_tensors(L, 4, 1, fn, what, t + 3);
    tdL_checkopts(L, opt, fn, known);
    c->a.flag = tdL_optboolfield(L, opt, "causal", 0);
    c->a.b = num_opt(L, opt, fn, "dropout", 0);
    c->a.a = num_opt(L, opt, fn, "scale", 0);
    c->a.has_a = opt && lua_getfield(L, opt, "scale") != LUA_TNIL;
    if (opt) lua_pop(L, 1);
    borrow_in(c, t, t[3] ? 4 : 3);
}

static const sig_check checks[TD_NSIG] = {
    [SIG_T] = s_t,           [SIG_T_T] = s_t_t,           [SIG_T_T_T] = s_t_t_t,
    [SIG_T_DIM] = s_t_dim,   [SIG_T_DIM2] = s_t_dim2,     [SIG_T_ODIM] = s_t_odim,
    [SIG_REDUCE] = s_reduce, [SIG_T_SIZES] = s_t_sizes,   [SIG_T_NARROW] = s_t_narrow,
    [SIG_T_SELECT] = s_t_select, [SIG_T_FLATTEN] = s_t_flatten, [SIG_T_NUM] = s_t_num,
    [SIG_T_ONUM2] = s_t_onum2, [SIG_T_DTYPE] = s_t_dtype, [SIG_T_DIM_T] = s_t_dim_t,
    [SIG_T_DIM_T_T] = s_t_dim_t_t, [SIG_T_T_NUM] = s_t_t_num, [SIG_LIST_DIM] = s_list_dim,
    [SIG_T_NUM_OPT] = s_t_num_opt, [SIG_T_TENSOR] = s_t_tensor, [SIG_T_VALUE] = s_t_value, [SIG_T_DIMS] = s_t_dims, [SIG_T_NEWDIM] = s_t_newdim,
    [SIG_T_T_T_AB] = s_t_t_t_ab,
    [SIG_CONV] = s_conv, [SIG_CONV_T] = s_conv_t, [SIG_POOL] = s_pool, [SIG_UNFOLD] = s_unfold,
    [SIG_T_SIZE2] = s_t_size2,
    [SIG_LAYER_NORM] = s_layer_norm, [SIG_BATCH_NORM] = s_batch_norm, [SIG_LOSS] = s_loss,
    [SIG_ATTENTION] = s_attention,
};

/* Runs row e, in place when inplace; pushes the results. The first output's box is made before
 * the op runs so that an error cannot leak it; a second output (max/min indices) gets its box
 * after (only a Lua memory error, fatal anyway, could leak it there). */
static int run_row(lua_State *L, const td_op_entry *e, bool inplace) {
    call c = {0};
    char fn[64]; /* errors name what was called: "add_" for the twin */
    if (inplace) snprintf(fn, sizeof fn, "%s_", e->name);
    checks[e->sig](L, inplace ? fn : e->name, &c);
    tdL_box *box = tdL_newboxmt(L, lua_upvalueindex(2));
    td_tensor *out[TD_MAX_OUT] = {inplace ? c.in[0] : NULL};
    int n = td_run(e->op, c.list ? c.list : c.in, c.nin, &c.a, out);
    if (n < 0) return tdL_error(L);
    if (inplace) {
        for (int k = 1; k < n; k++) td_release(out[k]);
        lua_pushvalue(L, 1);
        return 1;
    }
    box->t = out[0];
    for (int k = 1; k < n; k++) tdL_newboxmt(L, lua_upvalueindex(2))->t = out[k];
    tdL_gcpressure(L);
    return n;
}

/* The row travels as a light userdata upvalue (cheaper to read than an integer index), the
 * metatable of the results as upvalue 2 and that of small results as upvalue 3 (push_row). */
static int l_op(lua_State *L) {
    const td_op_entry *e = lua_touserdata(L, lua_upvalueindex(1));
    if ((e->sig == SIG_T_T || e->sig == SIG_T) &&
        tdL_small_op(L, e->op, e->sig == SIG_T_T ? 2 : 1)) /* a small result: no td_run */
        return 1;
    return run_row(L, e, false);
}

static int l_op_(lua_State *L) {
    return run_row(L, lua_touserdata(L, lua_upvalueindex(1)), true);
}

/* Pushes the closure f for row i, with the two tensor metatables as upvalues 2 and 3. */
static void push_row(lua_State *L, size_t i, lua_CFunction f) {
    lua_pushlightuserdata(L, (void *)&td_ops[i]);
    luaL_getmetatable(L, TDL_TENSOR);
    lua_getfield(L, LUA_REGISTRYINDEX, TDL_SMALLMT);
    lua_pushcclosure(L, f, 3);
}

/* Adds every row to the table on top of the stack; methods_only skips list-taking rows. */
static void add_rows(lua_State *L, bool methods) {
    char name[64];
    for (size_t i = 0; i < td_nops; i++) {
        const td_op_entry *e = &td_ops[i];
        if (methods && e->sig == SIG_LIST_DIM) continue;
        if (!(e->op->flags & TD_INPLACE_ONLY)) {
            push_row(L, i, l_op);
            lua_setfield(L, -2, e->name);
        }
        if (e->op->flags & (TD_INPLACE | TD_INPLACE_ONLY)) {
            snprintf(name, sizeof name, "%s_", e->name);
            push_row(L, i, l_op_);
            lua_setfield(L, -2, name);
        }
    }
}

/* tide._ops: {name = doc line} for every row (and "name_" twins), and tide._nograd, for the
 * registry tests */
static void push_registry(lua_State *L) {
    char name[64];
    lua_newtable(L);
    for (size_t i = 0; i < td_nops; i++) {
        if (!(td_ops[i].op->flags & TD_INPLACE_ONLY)) {
            lua_pushstring(L, td_ops[i].op->doc);
            lua_setfield(L, -2, td_ops[i].name);
        }
        if (td_ops[i].op->flags & (TD_INPLACE | TD_INPLACE_ONLY)) {
            snprintf(name, sizeof name, "%s_", td_ops[i].name);
            lua_pushstring(L, td_ops[i].op->doc);
            lua_setfield(L, -2, name);
        }
    }
    lua_setfield(L, -2, "_ops");
    lua_newtable(L); /* tide._nograd: the rows that are not differentiable */
    for (size_t i = 0; i < td_nops; i++)
        if (td_ops[i].op->flags & TD_NOGRAD) {
            lua_pushboolean(L, 1);
            lua_setfield(L, -2, td_ops[i].name);
        }
    lua_setfield(L, -2, "_nograd");
}

void tdL_register_ops(lua_State *L) {
    push_registry(L);
    add_rows(L, false);
    tdL_pushmethods(L);
    add_rows(L, true);
    lua_pop(L, 1);
}

/* Sets metamethod `meta` of the table on top to the row named `row` (an operator). */
void tdL_setoperator(lua_State *L, const char *meta, const char *row) {
    for (size_t i = 0; i < td_nops; i++)
        if (strcmp(td_ops[i].name, row) == 0) {
            push_row(L, i, l_op);
            lua_setfield(L, -2, meta);
            return;
        }
}
