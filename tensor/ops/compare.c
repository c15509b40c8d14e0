/* tensor/ops/compare.c: comparisons (eq ne lt le gt ge), value tests (isnan isfinite) and
 * logical ops, all giving bool tensors and none differentiable. Comparisons broadcast and
 * compare in the promoted dtype of their operands; logical ops treat nonzero as true. */
#include "elementwise.h"

static int bool_shape(td_node *n) {
    return td_ew_shape(n, false, true);
}

/* CMP(name, expr of x and y, doc): a comparison in every dtype. */
#define CMP(nm, expr, dc)                                                                          \
    LOOP2(nm##_f32, float, bool, expr)                                                             \
    LOOP2(nm##_f64, double, bool, expr)                                                            \
    LOOP2(nm##_i64, int64_t, bool, expr)                                                           \
    LOOP2(nm##_u8, uint8_t, bool, expr)                                                            \
    LOOP2(nm##_b, bool, bool, expr)                                                                \
    LOOP2(nm##_i8, int8_t, bool, expr)                                                             \
    static const td_loop nm##_loops[TD_NDTYPES] = {nm##_f32, nm##_f64, nm##_i64,                   \
                                                   nm##_u8,  nm##_b,   nm##_i8};                   \
    static int nm##_forward(td_node *n) {                                                          \
        return td_ew_run(n, td_ew_dtype(n, false), nm##_loops);                                    \
    }                                                                                              \
    const td_op td_op_##nm = {.name = #nm,                                                         \
                              .nin = 2,                                                            \
                              .flags = TD_NOGRAD,                                                  \
                              .doc = dc,                                                           \
                              .shape = bool_shape,                                                 \
                              .forward = nm##_forward};

CMP(eq, x == y, "x == y, elementwise: a bool tensor")
CMP(ne, x != y, "x ~= y, elementwise: a bool tensor (true where either is NaN)")
CMP(lt, x < y, "x < y, elementwise: a bool tensor")
CMP(le, x <= y, "x <= y, elementwise: a bool tensor")
CMP(gt, x > y, "x > y, elementwise: a bool tensor")
CMP(ge, x >= y, "x >= y, elementwise: a bool tensor")

/* TEST(name, float expr, integer expr, doc): a unary test of each value. */
#define TEST(nm, fexpr, iexpr, dc)                                                                 \
    LOOP1(nm##_f32, float, bool, fexpr)                                                            \
    LOOP1(nm##_f64, double, bool, fexpr)                                                           \
    LOOP1(nm##_i64, int64_t, bool, iexpr)                                                          \
    LOOP1(nm##_u8, uint8_t, bool, iexpr)                                                           \
    static const td_loop nm##_loops[TD_NDTYPES] = {nm##_f32, nm##_f64, nm##_i64, nm##_u8,          \
                                                   nm##_u8}; /* bool is a byte */                  \
    static int nm##_forward(td_node *n) { /* the test ignores the value: bytes as uint8 */         \
        td_dtype dt = td_dtype_size(n->in[0]->dtype) == 1 ? TD_UINT8 : n->in[0]->dtype;            \
        td_tensor *ops[2] = {n->out[0], n->in[0]};                                                 \
        return td_foreach(ops, 2, nm##_loops[dt], NULL);                                           \
    }                                                                                              \
    const td_op td_op_##nm = {.name = #nm,                                                         \
                              .nin = 1,                                                            \
                              .flags = TD_NOGRAD,                                                  \
                              .doc = dc,                                                           \
                              .shape = bool_shape,                                                 \
                              .forward = nm##_forward};

TEST(isnan, isnan(x), ((void)x, false), "true where x is NaN")
TEST(isfinite, isfinite(x), ((void)x, true), "true where x is neither infinite nor NaN")

/* Logical ops run on bool copies of their operands (nonzero and NaN are true). */
LOOP1(not_b, bool, bool, !x)
LOOP2(and_b, bool, bool, x &&y)
LOOP2(or_b, bool, bool, x || y)
LOOP2(xor_b, bool, bool, x != y)
#define LOGICAL(nm, fn, nargs, dc)                                                                 \
    static int nm##_forward(td_node *n) {                                                          \
        static const td_loop loops[TD_NDTYPES] = {[TD_BOOL] = fn};                                 \
        return td_ew_run(n, TD_BOOL, loops);                                                       \
    }                                                                                              \
    const td_op td_op_##nm = {.name = #nm,                                                         \
                              .nin = nargs,                                                        \
                              .flags = TD_NOGRAD,                                                  \
                              .doc = dc,                                                           \
                              .shape = bool_shape,                                                 \
                              .forward = nm##_forward};

LOGICAL(logical_not, not_b, 1, "not x: true where x is zero")
LOGICAL(logical_and, and_b, 2, "x and y: true where both are nonzero")
LOGICAL(logical_or, or_b, 2, "x or y: true where either is nonzero")
LOGICAL(logical_xor, xor_b, 2, "true where exactly one of x, y is nonzero")
