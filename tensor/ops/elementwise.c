/* tensor/ops/elementwise.c: the shared elementwise drivers (result dtype, broadcasting, dtype
 * conversion, backward), and the instantiation of every row of unary.def and binary.def into
 * per-dtype loops, a shape rule, forward, backward and the td_op descriptor. */
#include "elementwise.h"

/* ---- shared shape rules and drivers -------------------------------------------------------- */

static int category(td_dtype d) {
    return d == TD_BOOL ? 0 : td_dtype_is_float(d) ? 2 : 1;
}

td_dtype td_ew_dtype(td_node *n, bool float_only) {
    td_dtype d = n->in[0]->dtype;
    bool same = true;
    for (int i = 1; i < n->nin; i++) same &= n->in[i]->dtype == d;
    if (same) return float_only && !td_dtype_is_float(d) ? TD_FLOAT32 : d;
    td_dtype dim = TD_BOOL, zero = TD_BOOL;
    bool any_dim = false;
    for (int i = 0; i < n->nin; i++) {
        const td_tensor *t = n->in[i];
        if (t->ndim > 0) {
            dim = any_dim ? td_dtype_promote(dim, t->dtype) : t->dtype;
            any_dim = true;
        } else {
            zero = td_dtype_promote(zero, t->dtype);
        }
    }
    d = !any_dim ? zero : category(zero) > category(dim) ? td_dtype_promote(dim, zero) : dim;
    if (float_only && !td_dtype_is_float(d)) d = TD_FLOAT32;
    return d;
}

/* Whether in[1..] all have in[0]'s shape or are 0-dim: the result has in[0]'s shape. */
static bool shape_of_first(td_node *n) {
    const td_tensor *t = n->in[0];
    for (int k = 1; k < n->nin; k++) {
        const td_tensor *u = n->in[k];
        if (u->ndim == 0) continue;
        if (u->ndim != t->ndim) return false;
        for (int i = 0; i < t->ndim; i++)
            if (u->shape[i] != t->shape[i]) return false;
    }
    return true;
}

int td_ew_shape(td_node *n, bool float_only, bool bool_out) {
    td_meta *m = &n->meta[0];
    if (shape_of_first(n)) { /* the common cases skip the broadcast walk */
        m->ndim = n->in[0]->ndim;
        for (int i = 0; i < m->ndim; i++) m->shape[i] = n->in[0]->shape[i];
    } else if (td_broadcast_shape(n->op->name, n->in, n->nin, m->shape, &m->ndim) < 0) {
        return -1;
    }
    m->dtype = bool_out ? TD_BOOL : td_ew_dtype(n, float_only);
    n->nout = 1;
    return 0;
}

int td_ew_run(td_node *n, td_dtype dt, td_loop const *loops) {
    td_tensor *ops[TD_ITER_MAX] = {n->out[0]};
    bool owned[TD_ITER_MAX] = {false};
    int rc = -1, k = 1;
    if (!loops[dt])
        return td_error("%s: not supported for %s tensors", n->op->name, td_dtype_name(dt));
    if (n->nin + 1 > TD_ITER_MAX)
        return td_error("%s: at most %d operands", n->op->name, TD_ITER_MAX - 1);
    for (; k <= n->nin; k++) {
        ops[k] = n->in[k - 1];
        if (ops[k]->dtype == dt) continue; /* the common case: no copy, no refcount traffic */
        if (!(ops[k] = td_to_dtype(n->in[k - 1], dt))) goto done;
        owned[k] = true;
    }
    rc = td_foreach(ops, k, loops[dt], &n->args);
done:
    for (int i = 1; i < k; i++)
        if (owned[i]) td_release(ops[i]);
    return rc;
}

int td_ew_grad(td_node *n, td_tensor *g, td_loop const *loops, int i, td_tensor **gin) {
    td_dtype dt = n->meta[0].dtype;
    int flags = n->op->flags;
    td_tensor *ops[4] = {NULL};
    int rc = -1;
    if (!(ops[1] = td_to_dtype(g, dt))) return -1;
    for (int k = 0; k < 2; k++) {
        td_tensor *src = ops[1]; /* stands in for what backward does not read */
        if (!(flags & TD_GRAD_NOREAD) && k < n->nin) src = n->in[k];
        if (k == 1 && n->nin == 1 && (flags & TD_SAVE_OUT) && n->saved_out[0])
            src = n->saved_out[0];
        if (!(ops[2 + k] = td_to_dtype(src, dt))) goto done;
    }
    if (!(ops[0] = td_empty(ops[1]->shape, ops[1]->ndim, dt))) goto done;
    if ((rc = td_foreach(ops, 4, loops[dt], &n->args)) < 0) goto done;
    td_dtype want = n->in[i]->dtype;
    if (td_dtype_is_float(want) && want != dt) { /* f32 input of an f64 op: grad in f32 */
        td_tensor *c = td_to_dtype(ops[0], want);
        td_release(ops[0]);
        if (!(ops[0] = c)) rc = -1;
    }
done:
    for (int k = 1; k < 4; k++) td_release(ops[k]);
    if (rc < 0) {
        td_release(ops[0]);
        return -1;
    }
    *gin = ops[0];
    return 0;
}

/* td_ew_any: ctx is an int flag, set (benignly racing to the same value) on a hit. */
#define ANY_LOOP(fn, T, test)                                                                      \
    static void fn(char **p, const int64_t *s, int64_t n, const void *ctx) {                       \
        int hit = 0;                                                                               \
        for (int64_t i = 0; i < n; i++) {                                                          \
            T x = *(const T *)(p[0] + i * s[0]);                                                   \
            hit |= (test);                                                                         \
        }                                                                                          \
        if (hit) __atomic_store_n((int *)ctx, 1, __ATOMIC_RELAXED);                                \
    }
ANY_LOOP(any0_f32, float, x == 0)
ANY_LOOP(any0_f64, double, x == 0)
ANY_LOOP(any0_i64, int64_t, x == 0)
ANY_LOOP(any0_u8, uint8_t, x == 0)
ANY_LOOP(anyneg_i8, int8_t, x < 0)
ANY_LOOP(anyneg_f32, float, x < 0)
ANY_LOOP(anyneg_f64, double, x < 0)
ANY_LOOP(anyneg_i64, int64_t, x < 0)

bool td_ew_any(td_tensor *t, bool negative) {
    static const td_loop zero[TD_NDTYPES] = {any0_f32, any0_f64, any0_i64, any0_u8, any0_u8, any0_u8};
    static const td_loop neg[TD_NDTYPES] = {anyneg_f32, anyneg_f64, anyneg_i64, [TD_INT8] = anyneg_i8};
    int hit = 0;
    td_loop loop = (negative ? neg : zero)[t->dtype];
    if (loop) td_foreach(&t, 1, loop, &hit);
    return hit;
}

/* ---- unary rows ---------------------------------------------------------------------------- */
#define ULOOPS_FLOAT(nm, fwd) static const td_loop nm##_loops[TD_NDTYPES] = {nm##_f32, nm##_f64};
#define ULOOPS_INT(nm, fwd)                                                                        \
    LOOP1(nm##_i64, int64_t, int64_t, fwd)                                                         \
    static const td_loop nm##_loops[TD_NDTYPES] = {nm##_f32, nm##_f64, nm##_i64};
#define UFLOAT_FLOAT true
#define UFLOAT_INT   false

#define UNARY(nm, kind, reads, fwd, bwd, dc)                                                       \
    LOOP1(nm##_f32, float, float, fwd)                                                             \
    LOOP1(nm##_f64, double, double, fwd)                                                           \
    ULOOPS_##kind(nm, fwd) GLOOP(nm##_b32, float, bwd)                                             \
        GLOOP(nm##_b64, double, bwd) static const td_loop nm##_gloops[TD_NDTYPES] = {nm##_b32,     \
                                                                                     nm##_b64};    \
    static int nm##_shape(td_node *n) {                                                            \
        return td_ew_shape(n, UFLOAT_##kind, false);                                               \
    }                                                                                              \
    static int nm##_forward(td_node *n) {                                                          \
        return td_ew_run(n, n->meta[0].dtype, nm##_loops);                                         \
    }                                                                                              \
    static int nm##_backward(td_node *n, td_tensor *const *gout, td_tensor **gin) {                \
        return td_ew_grad(n, gout[0], nm##_gloops, 0, &gin[0]);                                    \
    }                                                                                              \
    const td_op td_op_##nm = {.name = #nm,                                                         \
                              .nin = 1,                                                            \
                              .flags = GRAD_##reads | TD_INPLACE,                                  \
                              .doc = dc,                                                           \
                              .shape = nm##_shape,                                                 \
                              .forward = nm##_forward,                                             \
                              .backward = nm##_backward,                                           \
                              .flat = nm##_loops};
#include "unary.def"
#undef UNARY

/* ---- binary rows --------------------------------------------------------------------------- */
#define BLOOPS_ARITH(nm, fwd)                                                                      \
    LOOP2(nm##_i64, int64_t, int64_t, fwd)                                                         \
    LOOP2(nm##_u8, uint8_t, uint8_t, fwd)                                                          \
    LOOP2(nm##_i8, int8_t, int8_t, fwd)                                                            \
    static const td_loop nm##_loops[TD_NDTYPES] = {nm##_f32, nm##_f64, nm##_i64,                   \
                                                   nm##_u8,  NULL,     nm##_i8};
#define BLOOPS_IDIV           BLOOPS_ARITH
#define BLOOPS_IPOW           BLOOPS_ARITH
#define BLOOPS_FLOAT(nm, fwd) static const td_loop nm##_loops[TD_NDTYPES] = {nm##_f32, nm##_f64};
/* td_op.flat: the loops that need no conversion and no check (integer IDIV/IPOW are checked) */
#define BFLAT_ARITH(nm)       nm##_loops
#define BFLAT_FLOAT(nm)       nm##_loops
#define BFLAT_IDIV(nm)        (const td_loop[TD_NDTYPES]){nm##_f32, nm##_f64}
#define BFLAT_IPOW            BFLAT_IDIV
#define BFLOAT_ARITH          false
#define BFLOAT_IDIV           false
#define BFLOAT_IPOW           false
#define BFLOAT_FLOAT          true
enum { CHECK_ARITH, CHECK_FLOAT = 0, CHECK_IDIV, CHECK_IPOW };

/* Integer division by zero would trap and PyTorch refuses negative integer powers: both are
 * checked on the divisor/exponent before the loop runs. */
static int binary_forward(td_node *n, td_loop const *loops, int check) {
    td_dtype dt = n->meta[0].dtype;
    if (check && !td_dtype_is_float(dt) && td_ew_any(n->in[1], check == CHECK_IPOW)) {
        char a[128], b[128];
        td_shape_str(n->in[0]->shape, n->in[0]->ndim, a, sizeof a);
        td_shape_str(n->in[1]->shape, n->in[1]->ndim, b, sizeof b);
        return td_error(check == CHECK_IDIV
                            ? "%s: integer division by zero (%s tensors of shapes %s and %s; "
                              "expected a divisor with no zero)"
                            : "%s: integers to negative integer powers are not allowed (%s "
                              "tensors of shapes %s and %s)",
                        n->op->name, td_dtype_name(dt), a, b);
    }
    return td_ew_run(n, dt, loops);
}

/* A derivative written as plain `g` (add's dx and dy, sub's dx) passes the gradient on itself,
 * shared rather than computed into a copy; autograd never writes a gradient in place and copies
 * a shared one before it becomes a leaf's .grad. The test folds to a constant. */
#define IS_G(e) (__builtin_strcmp(#e, "g") == 0)
static int grad_of(td_node *n, td_tensor *g, td_loop const *loops, int i, td_tensor **gin,
                   bool is_g) {
    if (is_g && g->dtype == n->in[i]->dtype) {
        td_retain(g);
        *gin = g;
        return 0;
    }
    return td_ew_grad(n, g, loops, i, gin);
}

#define BINARY(nm, kind, reads, fwd, dx, dy, dc)                                                   \
    LOOP2(nm##_f32, float, float, fwd)                                                             \
    LOOP2(nm##_f64, double, double, fwd)                                                           \
    BLOOPS_##kind(nm, fwd) GLOOP(nm##_dx32, float, dx) GLOOP(nm##_dx64, double, dx)                \
        GLOOP(nm##_dy32, float, dy)                                                                \
            GLOOP(nm##_dy64, double, dy) static const td_loop nm##_dx[TD_NDTYPES] = {nm##_dx32,    \
                                                                                     nm##_dx64};   \
    static const td_loop nm##_dy[TD_NDTYPES] = {nm##_dy32, nm##_dy64};                             \
    static int nm##_shape(td_node *n) {                                                            \
        return td_ew_shape(n, BFLOAT_##kind, false);                                               \
    }                                                                                              \
    static int nm##_forward(td_node *n) {                                                          \
        return binary_forward(n, nm##_loops, CHECK_##kind);                                        \
    }                                                                                              \
    static int nm##_backward(td_node *n, td_tensor *const *gout, td_tensor **gin) {                \
        if (n->needs_grad[0] && grad_of(n, gout[0], nm##_dx, 0, &gin[0], IS_G(dx)) < 0) return -1; \
        if (n->needs_grad[1] && grad_of(n, gout[0], nm##_dy, 1, &gin[1], IS_G(dy)) < 0) {          \
            td_release(gin[0]); /* leaves no half-filled gin behind */                             \
            gin[0] = NULL;                                                                         \
            return -1;                                                                             \
        }                                                                                          \
        return 0;                                                                                  \
    }                                                                                              \
    const td_op td_op_##nm = {.name = #nm,                                                         \
                              .nin = 2,                                                            \
                              .flags = GRAD_##reads | TD_INPLACE,                                  \
                              .doc = dc,                                                           \
                              .shape = nm##_shape,                                                 \
                              .forward = nm##_forward,                                             \
                              .backward = nm##_backward,                                           \
                              .flat = BFLAT_##kind(nm)};
#include "binary.def"
#undef BINARY
