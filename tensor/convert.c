/* tensor/convert.c: the one rule for values entering a dtype (tide.h, "conversions"), copies
 * between tensors of any layout and dtype (broadcasting the source), and the contiguous /
 * dtype-changing copies built on it. A new dtype adds its row to `ranges` and `conv`. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tide.h"

/* Integer dtypes: the Lua integers that fit, and the open interval of floats whose truncation
 * does (tlo < v < thi). Floats and bool have no row: every value goes in. */
static const struct {
    bool any;
    int64_t lo, hi;
    double tlo, thi;
} ranges[TD_NDTYPES] = {
    [TD_INT64] = {true, INT64_MIN, INT64_MAX, -0x1.0000000000001p63, 0x1p63},
    [TD_UINT8] = {true, 0, 255, -1, 256},
    [TD_INT8] = {true, -128, 127, -129, 128},
};

int64_t td_f2i(double v) {
    if (v != v) return 0;
    if (v >= 0x1p63) return INT64_MAX;
    if (v < -0x1p63) return INT64_MIN;
    return (int64_t)v;
}

/* the shortest form that reads back as the same double; "nan" without a sign */
static const char *num_str(td_num v, char *buf, size_t n) {
    if (v.is_int) snprintf(buf, n, "%lld", (long long)v.i);
    else if (v.f != v.f) snprintf(buf, n, "nan");
    else
        for (int p = 15; p <= 17 && (p == 15 || strtod(buf, NULL) != v.f); p++)
            snprintf(buf, n, "%.*g", p, v.f);
    return buf;
}

int td_num_check(const char *fn, td_num v, td_dtype dt) {
    char b[64];
    if ((unsigned)dt >= TD_NDTYPES) return td_error("%s: unknown dtype %d", fn, (int)dt);
    if (!ranges[dt].any) {
        if (dt == TD_FLOAT32 && !v.is_int && isfinite(v.f) && fabs(v.f) > 0x1.fffffep127)
            return td_error("%s: value %s does not fit dtype float32 (beyond +-3.4e38)", fn,
                            num_str(v, b, sizeof b));
        return 0;
    }
    int64_t lo = ranges[dt].lo, hi = ranges[dt].hi;
    bool ok = v.is_int ? (v.i >= lo && v.i <= hi) || (lo == 0 && v.i < 0 && v.i >= -hi)
                       : v.f > ranges[dt].tlo && v.f < ranges[dt].thi;
    if (ok) return 0;
    return td_error("%s: value %s does not fit dtype %s (%lld..%lld%s)", fn,
                    num_str(v, b, sizeof b), td_dtype_name(dt), (long long)lo, (long long)hi,
                    lo == 0 ? "; negative integers down to -255 wrap" : "");
}

void td_num_store(td_num v, td_dtype dt, void *dst) {
    int64_t i = v.is_int ? v.i : td_f2i(v.f);
    switch (dt) {
    case TD_FLOAT32: *(float *)dst = v.is_int ? (float)v.i : (float)v.f; break;
    case TD_FLOAT64: *(double *)dst = v.is_int ? (double)v.i : v.f; break;
    case TD_INT64: *(int64_t *)dst = i; break;
    case TD_UINT8: *(uint8_t *)dst = (uint8_t)(uint64_t)i; break; /* wraps: -1 is 255 */
    case TD_INT8: *(int8_t *)dst = (int8_t)(uint8_t)(uint64_t)i; break;
    default: *(bool *)dst = v.is_int ? v.i != 0 : v.f != 0; break; /* NaN is true */
    }
}

td_tensor *td_full_num(const int64_t *shape, int ndim, td_dtype dt, td_num v) {
    td_tensor *t = td_empty(shape, ndim, dt);
    if (!t) return NULL;
    int64_t n = td_numel(t);
    size_t es = td_dtype_size(dt);
    char *d = t->storage->data;
    if (n == 0) return t;
    td_num_store(v, dt, d);
    for (int64_t k = 1; k < n; k *= 2) /* doubling copies of the first element */
        memcpy(d + (size_t)k * es, d, (size_t)(n - k < k ? n - k : k) * es);
    return t;
}

/* ---- tensor to tensor -------------------------------------------------------------------- */

/* The float -> integer pre-check: bad gets a value outside (tlo, thi), racing benignly. */
typedef struct {
    double tlo, thi;
    int bad;
    double val;
} scan_ctx;

#define SCAN_LOOP(fn, T)                                                                         \
    static void fn(char **p, const int64_t *s, int64_t n, const void *ctx) {                     \
        scan_ctx *c = (scan_ctx *)ctx;                                                           \
        for (int64_t i = 0; i < n; i++) {                                                        \
            double v = (double)*(const T *)(p[0] + i * s[0]);                                    \
            if (!(v > c->tlo && v < c->thi)) {                                                   \
                c->val = v;                                                                      \
                __atomic_store_n(&c->bad, 1, __ATOMIC_RELAXED);                                  \
                return;                                                                          \
            }                                                                                    \
        }                                                                                        \
    }
SCAN_LOOP(scan_f32, float)
SCAN_LOOP(scan_f64, double)

static int check_floats(td_tensor *src, td_dtype dt) {
    scan_ctx c = {ranges[dt].tlo, ranges[dt].thi, 0, 0};
    if (td_foreach(&src, 1, src->dtype == TD_FLOAT32 ? scan_f32 : scan_f64, &c) < 0) return -1;
    if (!c.bad) return 0;
    char b[64];
    return td_error("%s values cannot be converted to %s: %s is %s (expected a number whose "
                    "integer part is in %lld..%lld)",
                    td_dtype_name(src->dtype), td_dtype_name(dt),
                    num_str((td_num){.f = c.val}, b, sizeof b),
                    c.val != c.val ? "not a number" : "out of range", (long long)ranges[dt].lo,
                    (long long)ranges[dt].hi);
}

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
    if (ranges[dst->dtype].any && td_dtype_is_float(src->dtype) &&
        check_floats((td_tensor *)src, dst->dtype) < 0)
        return -1;
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
