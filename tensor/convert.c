/* tensor/convert.c: copies between tensors of any layout and dtype (broadcasting the source),
 * and the contiguous / dtype-changing copies built on it. */
#include <string.h>

#include "tide.h"

#define CONV(fn, TO, TI, expr)                                                                   \
    static void fn(char **p, const int64_t *s, int64_t n, const void *ctx) {                     \
        (void)ctx;                                                                               \
        if (s[0] == sizeof(TO) && s[1] == sizeof(TI)) {                                          \
            TO *restrict o = (TO *)p[0];                                                         \
            const TI *restrict a = (const TI *)p[1];                                             \
            for (int64_t i = 0; i < n; i++) {                                                    \
                TI x = a[i];                                                                     \
                o[i] = (TO)(expr);                                                               \
            }                                                                                    \
        } else {                                                                                 \
            for (int64_t i = 0; i < n; i++) {                                                    \
                TI x = *(const TI *)(p[1] + i * s[1]);                                           \
                *(TO *)(p[0] + i * s[0]) = (TO)(expr);                                           \
            }                                                                                    \
        }                                                                                        \
    }

/* to X from Y; bool targets test != 0 (NaN is true, as in PyTorch) */
#define CONV_FROM(sfx, TI)                                                                       \
    CONV(f32_##sfx, float, TI, x)                                                                \
    CONV(f64_##sfx, double, TI, x)                                                               \
    CONV(i64_##sfx, int64_t, TI, x)                                                              \
    CONV(u8_##sfx, uint8_t, TI, x)                                                               \
    CONV(i8_##sfx, int8_t, TI, x)                                                                \
    CONV(b_##sfx, bool, TI, x != 0)
CONV_FROM(f32, float)
CONV_FROM(f64, double)
CONV_FROM(i64, int64_t)
CONV_FROM(u8, uint8_t)
CONV_FROM(b, bool)
CONV_FROM(i8, int8_t)

/* conv[to][from] */
static const td_loop conv[TD_NDTYPES][TD_NDTYPES] = {
#define ROW(to) {to##_f32, to##_f64, to##_i64, to##_u8, to##_b, to##_i8}
    ROW(f32), ROW(f64), ROW(i64), ROW(u8), ROW(b), ROW(i8),
#undef ROW
};

int td_copy_into(td_tensor *dst, const td_tensor *src) {
    td_tensor *ops[2] = {dst, (td_tensor *)src};
    int64_t shape[TD_MAX_DIMS];
    int nd;
    if (td_broadcast_shape("copy_", ops, 2, shape, &nd) < 0) return -1;
    if (nd != dst->ndim || memcmp(shape, dst->shape, sizeof(int64_t) * (size_t)nd)) {
        char a[128], b[128];
        return td_error("copy_: source of shape %s cannot be broadcast to the shape %s",
                        td_shape_str(src->shape, src->ndim, a, sizeof a),
                        td_shape_str(dst->shape, dst->ndim, b, sizeof b));
    }
    return td_foreach(ops, 2, conv[dst->dtype][src->dtype], NULL);
}

td_tensor *td_contiguous(td_tensor *t) {
    if (td_is_contiguous(t)) {
        td_retain(t);
        return t;
    }
    td_tensor *c = td_empty(t->shape, t->ndim, t->dtype);
    if (c && td_copy_into(c, t) < 0) {
        td_release(c);
        return NULL;
    }
    return c;
}

td_tensor *td_to_dtype(td_tensor *t, td_dtype dt) {
    if (t->dtype == dt) {
        td_retain(t);
        return t;
    }
    td_tensor *c = td_empty(t->shape, t->ndim, dt);
    if (c && td_copy_into(c, t) < 0) {
        td_release(c);
        return NULL;
    }
    return c;
}
