/* vm/ops.c: the ONE table-driven binder for tensor/ops/ops.def. Each row becomes a method of
 * tide.Tensor and a function of the module (tide.exp(t) = t:exp()); rows whose op has
 * TD_INPLACE also get "name_". A row's td_sig picks its argument checker below. */
#include <stdio.h>
#include <string.h>

#include "tdl.h"

typedef struct call {
    td_tensor *in[TD_ITER_MAX]; /* owned refs, released after the op */
    td_tensor **list;           /* SIG_LIST_DIM: borrowed from the boxes on the stack */
    int nin;
    td_args a;
} call;

typedef void (*sig_check)(lua_State *L, const char *fn, call *c);

static td_tensor *self(lua_State *L, call *c) {
    td_tensor *t = tdL_checktensor(L, 1);
    td_retain(t);
    c->in[c->nin++] = t;
    return t;
}

static void operand(lua_State *L, int i, td_dtype like, const char *fn, call *c) {
    c->in[c->nin++] = tdL_checkoperand(L, i, like, fn);
}

static void s_t(lua_State *L, const char *fn, call *c) {
    (void)fn;
    self(L, c);
}
static void s_t_t(lua_State *L, const char *fn, call *c) {
    td_tensor *t = tdL_totensor(L, 1);
    td_tensor *u = tdL_totensor(L, 2);
    if (!t && !u) luaL_error(L, "%s: expected a tensor argument", fn);
    td_dtype like = t ? t->dtype : u->dtype;
    operand(L, 1, like, fn, c);
    operand(L, 2, like, fn, c);
}
static void s_t_tensor(lua_State *L, const char *fn, call *c) {
    self(L, c);
    td_tensor *u = tdL_totensor(L, 2);
    if (!u) luaL_error(L, "%s: expected a tensor, got %s", fn, luaL_typename(L, 2));
    td_retain(u);
    c->in[c->nin++] = u;
}
static void s_t_t_t(lua_State *L, const char *fn, call *c) {
    td_tensor *t = self(L, c);
    td_tensor *u = tdL_totensor(L, 2), *v = tdL_totensor(L, 3);
    td_dtype like = u ? u->dtype : v ? v->dtype : t->dtype;
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
    td_tensor *t = tdL_checktensor(L, 1); /* self() last: a failing check then leaks no ref */
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
        luaL_error(L, "%s: start %d out of range for dim %d of size %d (expected 1..%d or -%d..-1)",
                   fn, (int)luaL_checkinteger(L, 3), (int)c->a.dim + 1, (int)n, (int)n, (int)n);
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
    if (c->a.has_a) c->a.a = luaL_checknumber(L, 2);
    if (c->a.has_b) c->a.b = luaL_checknumber(L, 3);
}
static void s_t_dtype(lua_State *L, const char *fn, call *c) {
    self(L, c);
    c->a.dtype = tdL_checkdtype(L, 2, fn);
}
static void s_t_dim_t(lua_State *L, const char *fn, call *c) {
    td_tensor *t = self(L, c);
    c->a.dim = tdL_checkdim(L, 2, t->ndim, fn);
    td_tensor *idx = tdL_checktensor(L, 3);
    td_retain(idx);
    c->in[c->nin++] = idx;
}
static void s_t_dim_t_t(lua_State *L, const char *fn, call *c) {
    s_t_dim_t(L, fn, c);
    operand(L, 4, c->in[0]->dtype, fn, c);
}
static void s_t_t_num(lua_State *L, const char *fn, call *c) {
    self(L, c);
    td_tensor *m = tdL_checktensor(L, 2);
    td_retain(m);
    c->in[c->nin++] = m;
    if (lua_type(L, 3) != LUA_TNUMBER)
        luaL_error(L, "%s: value must be a number, got %s", fn, luaL_typename(L, 3));
    c->a.a = lua_tonumber(L, 3);
}
static void s_list_dim(lua_State *L, const char *fn, call *c) {
    lua_settop(L, 2); /* the dim stays at 2 (maybe nil) when the list array is pushed */
    if (!lua_istable(L, 1) || luaL_testudata(L, 1, TDL_TENSOR))
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

/* permute's dims: each checked, then 1-based/negative -> 0-based (before self() takes a ref,
 * so that an error leaks nothing) */
static void s_t_dims(lua_State *L, const char *fn, call *c) {
    td_tensor *t = tdL_checktensor(L, 1);
    int n = t->ndim ? t->ndim : 1;
    c->a.nsizes = tdL_checkshape(L, 2, c->a.sizes, fn);
    for (int k = 0; k < c->a.nsizes; k++) {
        int64_t d = c->a.sizes[k];
        if (d == 0 || d > n || d < -n)
            luaL_error(L, "%s: dim %d out of range for a %d-D tensor (expected 1..%d or -%d..-1)",
                       fn, (int)d, t->ndim, n, n);
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
        luaL_error(L, "%s: dim %d out of range for a %d-D tensor (expected 1..%d or -%d..-1)", fn,
                   (int)d, t->ndim, n, n);
    c->a.dim = d > 0 ? d - 1 : n + d;
    self(L, c);
}

/* addmm's (a, b [, {alpha=, beta=}]) after c (self): all checked before any ref is taken */
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
    for (int i = 0; i < 3; i++) td_retain(t[i]), c->in[c->nin++] = t[i];
}

static const sig_check checks[TD_NSIG] = {
    [SIG_T] = s_t,           [SIG_T_T] = s_t_t,           [SIG_T_T_T] = s_t_t_t,
    [SIG_T_DIM] = s_t_dim,   [SIG_T_DIM2] = s_t_dim2,     [SIG_T_ODIM] = s_t_odim,
    [SIG_REDUCE] = s_reduce, [SIG_T_SIZES] = s_t_sizes,   [SIG_T_NARROW] = s_t_narrow,
    [SIG_T_SELECT] = s_t_select, [SIG_T_FLATTEN] = s_t_flatten, [SIG_T_NUM] = s_t_num,
    [SIG_T_ONUM2] = s_t_onum2, [SIG_T_DTYPE] = s_t_dtype, [SIG_T_DIM_T] = s_t_dim_t,
    [SIG_T_DIM_T_T] = s_t_dim_t_t, [SIG_T_T_NUM] = s_t_t_num, [SIG_LIST_DIM] = s_list_dim,
    [SIG_T_NUM_OPT] = s_t_num_opt, [SIG_T_TENSOR] = s_t_tensor, [SIG_T_DIMS] = s_t_dims, [SIG_T_NEWDIM] = s_t_newdim,
    [SIG_T_T_T_AB] = s_t_t_t_ab,
};

static void release_call(call *c) {
    if (c->list) return; /* borrowed */
    for (int i = 0; i < c->nin; i++) td_release(c->in[i]);
}

/* Runs row e, in place when inplace; pushes the results. The first output's box is made before
 * the op runs so that an error cannot leak it; a second output (max/min indices) gets its box
 * after (only a Lua memory error, fatal anyway, could leak it there). */
static int run_row(lua_State *L, const td_op_entry *e, bool inplace) {
    call c = {0};
    char fn[64];
    snprintf(fn, sizeof fn, inplace ? "%s_" : "%s", e->name); /* errors name what was called */
    checks[e->sig](L, fn, &c);
    tdL_box *box = tdL_newbox(L);
    td_tensor *out[TD_MAX_OUT] = {inplace ? c.in[0] : NULL};
    int n = td_run(e->op, c.list ? c.list : c.in, c.nin, &c.a, out);
    release_call(&c);
    if (n < 0) return tdL_error(L);
    if (inplace) {
        for (int k = 1; k < n; k++) td_release(out[k]);
        lua_pushvalue(L, 1);
        return 1;
    }
    box->t = out[0];
    for (int k = 1; k < n; k++) tdL_newbox(L)->t = out[k];
    tdL_gcpressure(L);
    return n;
}

static int l_op(lua_State *L) {
    return run_row(L, &td_ops[lua_tointeger(L, lua_upvalueindex(1))], false);
}

static int l_op_(lua_State *L) {
    return run_row(L, &td_ops[lua_tointeger(L, lua_upvalueindex(1))], true);
}

/* Adds every row to the table on top of the stack; methods_only skips list-taking rows. */
static void add_rows(lua_State *L, bool methods) {
    char name[64];
    for (size_t i = 0; i < td_nops; i++) {
        const td_op_entry *e = &td_ops[i];
        if (methods && e->sig == SIG_LIST_DIM) continue;
        if (!(e->op->flags & TD_INPLACE_ONLY)) {
            lua_pushinteger(L, (lua_Integer)i);
            lua_pushcclosure(L, l_op, 1);
            lua_setfield(L, -2, e->name);
        }
        if (e->op->flags & (TD_INPLACE | TD_INPLACE_ONLY)) {
            snprintf(name, sizeof name, "%s_", e->name);
            lua_pushinteger(L, (lua_Integer)i);
            lua_pushcclosure(L, l_op_, 1);
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
            lua_pushinteger(L, (lua_Integer)i);
            lua_pushcclosure(L, l_op, 1);
            lua_setfield(L, -2, meta);
            return;
        }
}
