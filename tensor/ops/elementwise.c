/* tensor/ops/elementwise.c: instantiates the rows of unary.def and binary.def: f32/f64 (and
 * integer, for ARITH rows) 1-D loops with a contiguous fast path the compiler vectorises, the
 * shape rule (broadcasting, dtype promotion), forward and backward, and the td_op descriptor. */
#include <tgmath.h>

#include "../tide.h"
#include "elementwise.h"

/* ---- shared shape rules and drivers -------------------------------------------------------- */

/* The dtype a row computes in: the promoted input dtype, with integers lifted to float32 for
 * FLOAT rows. */
static td_dtype compute_dtype(td_node *n, bool float_only) {
    td_dtype d = n->in[0]->dtype;
    for (int i = 1; i < n->nin; i++) d = td_dtype_promote(d, n->in[i]->dtype);
    if (float_only && !td_dtype_is_float(d)) d = TD_FLOAT32;
    return d;
}

int td_ew_shape(td_node *n, bool float_only, bool bool_out) {
    td_meta *m = &n->meta[0];
    if (td_broadcast_shape(n->op->name, n->in, n->nin, m->shape, &m->ndim) < 0) return -1;
    m->dtype = bool_out ? TD_BOOL : compute_dtype(n, float_only);
    n->nout = 1;
    return 0;
}

/* Runs loops[dtype] over {out, in...}, converting inputs of another dtype first. */
int td_ew_run(td_node *n, td_dtype dt, td_loop const *loops) {
    td_tensor *ops[TD_ITER_MAX] = {n->out[0]};
    int rc = -1, k = 1;
    td_loop loop = loops[dt];
    if (!loop)
        return td_error("%s: not supported for %s tensors", n->op->name, td_dtype_name(dt));
    for (; k <= n->nin; k++)
        if (!(ops[k] = td_to_dtype(n->in[k - 1], dt))) goto done;
    rc = td_foreach(ops, k, loop, &n->args);
done:
    for (int i = 1; i < k; i++) td_release(ops[i]);
    return rc;
}

/* Backward of a row: gin[i] = loop over {gin, g, x, y, z}, in the output's dtype. */
int td_ew_grad(td_node *n, td_tensor *g, td_loop const *loops, td_tensor **gin) {
    td_tensor *ops[TD_ITER_MAX + 1];
    td_dtype dt = n->meta[0].dtype;
    int m = 0, rc = -1;
    ops[m++] = NULL;
    if (!(ops[m++] = td_to_dtype(g, dt))) goto done;
    for (int i = 0; i < n->nin; i++)
        if (!(ops[m++] = td_to_dtype(n->in[i], dt))) goto done;
    td_retain(n->saved_out[0]);
    ops[m++] = n->saved_out[0];
    if (!(ops[0] = td_empty(ops[1]->shape, ops[1]->ndim, dt))) goto done;
    rc = td_foreach(ops, m, loops[dt], NULL);
done:
    for (int i = 1; i < m; i++) td_release(ops[i]);
    if (rc < 0) {
        td_release(ops[0]);
        return -1;
    }
    *gin = ops[0];
    return 0;
}

/* ---- loop templates ------------------------------------------------------------------------
 * LOOPn(fn, T, expr): y = expr over n inputs named x, y (binary: z is the output). The
 * contiguous branch is the one the compiler vectorises. */
#define C(v) ((T)(v))

#define LOOP1(fn, TY, expr)                                                                      \
    static void fn(char **p, const int64_t *s, int64_t n, const void *ctx) {                     \
        typedef TY T;                                                                            \
        (void)ctx;                                                                               \
        if (s[0] == sizeof(T) && s[1] == sizeof(T)) {                                            \
            T *restrict o = (T *)p[0];                                                           \
            const T *restrict a = (const T *)p[1];                                               \
            for (int64_t i = 0; i < n; i++) {                                                    \
                T x = a[i];                                                                      \
                o[i] = (T)(expr);                                                                \
            }                                                                                    \
        } else {                                                                                 \
            for (int64_t i = 0; i < n; i++) {                                                    \
                T x = *(const T *)(p[1] + i * s[1]);                                             \
                *(T *)(p[0] + i * s[0]) = (T)(expr);                                             \
            }                                                                                    \
        }                                                                                        \
    }

#define LOOP2(fn, TY, TO, expr)                                                                  \
    static void fn(char **p, const int64_t *s, int64_t n, const void *ctx) {                     \
        typedef TY T;                                                                            \
        (void)ctx;                                                                               \
        if (s[0] == sizeof(TO) && s[1] == sizeof(T) && s[2] == sizeof(T)) {                      \
            TO *restrict o = (TO *)p[0];                                                         \
            const T *restrict a = (const T *)p[1], *restrict b = (const T *)p[2];                \
            for (int64_t i = 0; i < n; i++) {                                                    \
                T x = a[i], y = b[i];                                                            \
                o[i] = (TO)(expr);                                                               \
            }                                                                                    \
        } else {                                                                                 \
            for (int64_t i = 0; i < n; i++) {                                                    \
                T x = *(const T *)(p[1] + i * s[1]), y = *(const T *)(p[2] + i * s[2]);          \
                *(TO *)(p[0] + i * s[0]) = (TO)(expr);                                           \
            }                                                                                    \
        }                                                                                        \
    }

/* Backward loops: operands {dx, g, x[, y], out}; strided only (backward is not the hot path
 * for tiny graphs, and the compiler still vectorises unit strides well enough). */
#define GLOOP1(fn, TY, expr)                                                                     \
    static void fn(char **p, const int64_t *s, int64_t n, const void *ctx) {                     \
        typedef TY T;                                                                            \
        (void)ctx;                                                                               \
        for (int64_t i = 0; i < n; i++) {                                                        \
            T g = *(const T *)(p[1] + i * s[1]), x = *(const T *)(p[2] + i * s[2]);              \
            T y = *(const T *)(p[3] + i * s[3]);                                                 \
            (void)x, (void)y;                                                                    \
            *(T *)(p[0] + i * s[0]) = (T)(expr);                                                 \
        }                                                                                        \
    }
#define GLOOP2(fn, TY, expr)                                                                     \
    static void fn(char **p, const int64_t *s, int64_t n, const void *ctx) {                     \
        typedef TY T;                                                                            \
        (void)ctx;                                                                               \
        for (int64_t i = 0; i < n; i++) {                                                        \
            T g = *(const T *)(p[1] + i * s[1]), x = *(const T *)(p[2] + i * s[2]);              \
            T y = *(const T *)(p[3] + i * s[3]), z = *(const T *)(p[4] + i * s[4]);              \
            (void)x, (void)y, (void)z;                                                           \
            *(T *)(p[0] + i * s[0]) = (T)(expr);                                                 \
        }                                                                                        \
    }

/* ---- unary rows ---------------------------------------------------------------------------- */
#define UNARY(nm, fwd, bwd, dc)                                                               \
    LOOP1(nm##_f32, float, fwd)                                                                \
    LOOP1(nm##_f64, double, fwd)                                                               \
    GLOOP1(nm##_bf32, float, bwd)                                                              \
    GLOOP1(nm##_bf64, double, bwd)                                                             \
    static const td_loop nm##_loops[TD_NDTYPES] = {nm##_f32, nm##_f64};                    \
    static const td_loop nm##_gloops[TD_NDTYPES] = {nm##_bf32, nm##_bf64};                 \
    static int nm##_shape(td_node *n) {                                                        \
        return td_ew_shape(n, true, false);                                                      \
    }                                                                                            \
    static int nm##_forward(td_node *n) {                                                      \
        return td_ew_run(n, n->meta[0].dtype, nm##_loops);                                     \
    }                                                                                            \
    static int nm##_backward(td_node *n, td_tensor *const *gout, td_tensor **gin) {            \
        return td_ew_grad(n, gout[0], nm##_gloops, &gin[0]);                                   \
    }                                                                                            \
    const td_op td_op_##nm = {.name = #nm, .nin = 1, .flags = TD_SAVE_OUT | TD_INPLACE, .doc = dc,       \
                                .shape = nm##_shape, .forward = nm##_forward,                \
                                .backward = nm##_backward};
#include "unary.def"
#undef UNARY

/* ---- binary rows --------------------------------------------------------------------------- */
#define ARITH_LOOPS(nm, fwd)                                                                   \
    LOOP2(nm##_i64, int64_t, int64_t, fwd)                                                     \
    LOOP2(nm##_u8, uint8_t, uint8_t, fwd)                                                      \
    static const td_loop nm##_loops[TD_NDTYPES] = {nm##_f32, nm##_f64, nm##_i64,         \
                                                     nm##_u8, NULL};
#define FLOAT_LOOPS(nm, fwd)                                                                   \
    static const td_loop nm##_loops[TD_NDTYPES] = {nm##_f32, nm##_f64};
#define BINARY(nm, kind, fwd, dx, dy, dc)                                                     \
    LOOP2(nm##_f32, float, float, fwd)                                                         \
    LOOP2(nm##_f64, double, double, fwd)                                                       \
    kind##_LOOPS(nm, fwd)                                                                      \
    GLOOP2(nm##_dx32, float, dx)                                                               \
    GLOOP2(nm##_dx64, double, dx)                                                              \
    GLOOP2(nm##_dy32, float, dy)                                                               \
    GLOOP2(nm##_dy64, double, dy)                                                              \
    static const td_loop nm##_dx[TD_NDTYPES] = {nm##_dx32, nm##_dx64};                     \
    static const td_loop nm##_dy[TD_NDTYPES] = {nm##_dy32, nm##_dy64};                     \
    static int nm##_shape(td_node *n) {                                                        \
        return td_ew_shape(n, #kind[0] == 'F', false);                                           \
    }                                                                                            \
    static int nm##_forward(td_node *n) {                                                      \
        return td_ew_run(n, n->meta[0].dtype, nm##_loops);                                     \
    }                                                                                            \
    static int nm##_backward(td_node *n, td_tensor *const *gout, td_tensor **gin) {            \
        if (n->needs_grad[0] && td_ew_grad(n, gout[0], nm##_dx, &gin[0]) < 0) return -1;       \
        if (n->needs_grad[1] && td_ew_grad(n, gout[0], nm##_dy, &gin[1]) < 0) return -1;       \
        return 0;                                                                                \
    }                                                                                            \
    const td_op td_op_##nm = {.name = #nm, .nin = 2, .flags = TD_SAVE_OUT | TD_INPLACE, .doc = dc,       \
                                .shape = nm##_shape, .forward = nm##_forward,                \
                                .backward = nm##_backward};
#include "binary.def"
#undef BINARY
