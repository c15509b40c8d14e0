/* tensor/ops/elementwise.h: the shared pieces of elementwise ops (elementwise.c, compare.c,
 * select.c): shape/dtype rules, drivers, 1-D loop templates and the dtype-generic scalar
 * helpers the rows of unary.def and binary.def are written with. */
#ifndef TIDE_ELEMENTWISE_H
#define TIDE_ELEMENTWISE_H

#include "../tide.h"

#include <tgmath.h>

/* The dtype a row computes in: PyTorch's result_type over the inputs (a 0-dim input raises
 * the result only when it is of a higher category: bool < integer < float), integers lifted
 * to float32 when float_only. */
td_dtype td_ew_dtype(td_node *n, bool float_only);
/* Broadcast shape of all inputs into meta[0]; dtype td_ew_dtype(), or bool. 0 or -1. */
int td_ew_shape(td_node *n, bool float_only, bool bool_out);
/* Runs loops[dt] over {out, in...}, converting inputs to dt first; n->args is the loop's ctx.
 * -1 + "op: not supported for <dtype> tensors" when loops[dt] is NULL. */
int td_ew_run(td_node *n, td_dtype dt, td_loop const *loops);
/* Backward of a row: *gin = new tensor (g's shape) from loops[out dtype] over {gin, g, a, b}:
 * unary a = x, b = saved y; binary a = x, b = y. Operands the op's flags say backward does not
 * read are replaced by g (no conversion, no saved copy). The result is converted to in[i]'s
 * float dtype when it differs. 0 or -1. */
int td_ew_grad(td_node *n, td_tensor *g, td_loop const *loops, int i, td_tensor **gin);
/* Whether any element of t (any dtype) is zero (nonzero = false) or negative (nonzero = true). */
bool td_ew_any(td_tensor *t, bool negative);

/* Which values a row's backward reads: N none, I inputs, O the output only, IO both. */
#define GRAD_N  TD_GRAD_NOREAD
#define GRAD_I  0
#define GRAD_O  (TD_SAVE_OUT | TD_GRAD_NOREAD)
#define GRAD_IO TD_SAVE_OUT

/* ---- loop templates ------------------------------------------------------------------------
 * A loop gets n elements with byte strides s[] per operand (operand 0 is the output). The
 * unit-stride branches (and the one with a broadcast scalar operand, `t * 2`) are the ones the
 * compiler vectorises; the last branch handles any strides. C(v) keeps float32 in float. */
#define C(v) ((T)(v))

/* LOOP1(fn, TI, TO, expr): out = expr of x (type T = TI); ctx is available as `ctx`. */
#define LOOP1(fn, TI, TO, expr)                                                                    \
    static void fn(char **p, const int64_t *s, int64_t n, const void *ctx) {                       \
        typedef TI T;                                                                              \
        (void)ctx;                                                                                 \
        if (s[0] == sizeof(TO) && s[1] == sizeof(T)) {                                             \
            TO *restrict o = (TO *)p[0];                                                           \
            const T *restrict a = (const T *)p[1];                                                 \
            for (int64_t i = 0; i < n; i++) {                                                      \
                T x = a[i];                                                                        \
                o[i] = (TO)(expr);                                                                 \
            }                                                                                      \
        } else {                                                                                   \
            for (int64_t i = 0; i < n; i++) {                                                      \
                T x = *(const T *)(p[1] + i * s[1]);                                               \
                *(TO *)(p[0] + i * s[0]) = (TO)(expr);                                             \
            }                                                                                      \
        }                                                                                          \
    }

/* LOOP2(fn, TI, TO, expr): out = expr of x, y (type T = TI). */
#define LOOP2(fn, TI, TO, expr)                                                                    \
    static void fn(char **p, const int64_t *s, int64_t n, const void *ctx) {                       \
        typedef TI T;                                                                              \
        (void)ctx;                                                                                 \
        TO *restrict o = (TO *)p[0];                                                               \
        const T *restrict a = (const T *)p[1], *restrict b = (const T *)p[2];                      \
        if (s[0] == sizeof(TO) && s[1] == sizeof(T) && s[2] == sizeof(T)) {                        \
            for (int64_t i = 0; i < n; i++) {                                                      \
                T x = a[i], y = b[i];                                                              \
                o[i] = (TO)(expr);                                                                 \
            }                                                                                      \
        } else if (s[0] == sizeof(TO) && s[1] == sizeof(T) && s[2] == 0) {                         \
            const T y = *b;                                                                        \
            for (int64_t i = 0; i < n; i++) {                                                      \
                T x = a[i];                                                                        \
                o[i] = (TO)(expr);                                                                 \
            }                                                                                      \
        } else if (s[0] == sizeof(TO) && s[1] == 0 && s[2] == sizeof(T)) {                         \
            const T x = *a;                                                                        \
            for (int64_t i = 0; i < n; i++) {                                                      \
                T y = b[i];                                                                        \
                o[i] = (TO)(expr);                                                                 \
            }                                                                                      \
        } else {                                                                                   \
            for (int64_t i = 0; i < n; i++) {                                                      \
                T x = *(const T *)(p[1] + i * s[1]), y = *(const T *)(p[2] + i * s[2]);            \
                *(TO *)(p[0] + i * s[0]) = (TO)(expr);                                             \
            }                                                                                      \
        }                                                                                          \
    }

/* GLOOP(fn, TY, expr): backward loop over {dx, g, x, y}, all of type T = TY. */
#define GLOOP(fn, TY, expr)                                                                        \
    static void fn(char **p, const int64_t *s, int64_t n, const void *ctx) {                       \
        typedef TY T;                                                                              \
        (void)ctx;                                                                                 \
        if (s[0] == sizeof(T) && s[1] == sizeof(T) && s[2] == sizeof(T) && s[3] == sizeof(T)) {    \
            T *restrict o = (T *)p[0];                                                             \
            const T *restrict pg = (const T *)p[1], *restrict px = (const T *)p[2];                \
            const T *restrict py = (const T *)p[3];                                                \
            for (int64_t i = 0; i < n; i++) {                                                      \
                T g = pg[i], x = px[i], y = py[i];                                                 \
                (void)g, (void)x, (void)y;                                                         \
                o[i] = (T)(expr);                                                                  \
            }                                                                                      \
        } else {                                                                                   \
            for (int64_t i = 0; i < n; i++) {                                                      \
                T g = *(const T *)(p[1] + i * s[1]), x = *(const T *)(p[2] + i * s[2]);            \
                T y = *(const T *)(p[3] + i * s[3]);                                               \
                (void)g, (void)x, (void)y;                                                         \
                *(T *)(p[0] + i * s[0]) = (T)(expr);                                               \
            }                                                                                      \
        }                                                                                          \
    }

/* ---- dtype-generic scalar helpers (float, double, int64_t, uint8_t) ------------------------ */
#define EW_GENERIC(fn, x)                                                                          \
    _Generic((x), float : fn##_f32, double : fn##_f64, int64_t : fn##_i64, uint8_t : fn##_u8,     \
             int8_t : fn##_i8)

/* Arithmetic that wraps: int64 +, -, * and unary minus overflow in two's complement, as in
 * PyTorch, computed in uint64_t because signed overflow is undefined in C. Floats and uint8
 * (promoted to int, then truncated) are the plain operators. */
#define EW_ARITH(sfx, T)                                                                           \
    static inline T ew_add_##sfx(T x, T y) {                                                       \
        return (T)(x + y);                                                                         \
    }                                                                                              \
    static inline T ew_sub_##sfx(T x, T y) {                                                       \
        return (T)(x - y);                                                                         \
    }                                                                                              \
    static inline T ew_mul_##sfx(T x, T y) {                                                       \
        return (T)(x * y);                                                                         \
    }                                                                                              \
    static inline T ew_neg_##sfx(T x) {                                                            \
        return (T)-x;                                                                              \
    }
EW_ARITH(f32, float)
EW_ARITH(f64, double)
EW_ARITH(u8, uint8_t)
EW_ARITH(i8, int8_t) /* int arithmetic, then the wrap of the cast (GCC: two's complement) */
static inline int64_t ew_add_i64(int64_t x, int64_t y) {
    return (int64_t)((uint64_t)x + (uint64_t)y);
}
static inline int64_t ew_sub_i64(int64_t x, int64_t y) {
    return (int64_t)((uint64_t)x - (uint64_t)y);
}
static inline int64_t ew_mul_i64(int64_t x, int64_t y) {
    return (int64_t)((uint64_t)x * (uint64_t)y);
}
static inline int64_t ew_neg_i64(int64_t x) {
    return (int64_t)(0 - (uint64_t)x);
}
#define ew_add(x, y) EW_GENERIC(ew_add, x)(x, y)
#define ew_sub(x, y) EW_GENERIC(ew_sub, x)(x, y)
#define ew_mul(x, y) EW_GENERIC(ew_mul, x)(x, y)
#define ew_neg(x)    EW_GENERIC(ew_neg, x)(x)

/* PyTorch's remainder: the result has the sign of the divisor (Python's %). Integer
 * divisors are checked for zero before a loop runs; y == -1 avoids INT64_MIN % -1. */
#define EW_MOD_FLOAT(sfx, T, fmodf_)                                                               \
    static inline T ew_mod_##sfx(T x, T y) {                                                       \
        T r = fmodf_(x, y);                                                                        \
        return (r != 0 && (r < 0) != (y < 0)) ? r + y : r;                                         \
    }
EW_MOD_FLOAT(f32, float, fmodf)
EW_MOD_FLOAT(f64, double, fmod)
static inline int64_t ew_mod_i64(int64_t x, int64_t y) {
    if (y == 0 || y == -1) return 0;
    int64_t r = x % y;
    return (r != 0 && (r < 0) != (y < 0)) ? r + y : r;
}
static inline uint8_t ew_mod_u8(uint8_t x, uint8_t y) {
    return y ? (uint8_t)(x % y) : 0;
}
static inline int8_t ew_mod_i8(int8_t x, int8_t y) {
    return (int8_t)ew_mod_i64(x, y);
}
#define ew_mod(x, y) EW_GENERIC(ew_mod, x)(x, y)

/* PyTorch's floor division (div_floor_floating): exact for values a naive floor(x / y) gets
 * wrong by one, and x / y (inf or nan) for a zero divisor. */
#define EW_FLOORDIV_FLOAT(sfx, T, fmodf_, floorf_, copysignf_)                                     \
    static inline T ew_floordiv_##sfx(T x, T y) {                                                  \
        if (y == 0) return x / y;                                                                  \
        T m = fmodf_(x, y), d = (x - m) / y;                                                       \
        if (m != 0 && (y < 0) != (m < 0)) d -= 1;                                                  \
        if (d == 0) return copysignf_((T)0, x / y);                                                \
        T f = floorf_(d);                                                                          \
        return d - f > (T)0.5 ? f + 1 : f;                                                         \
    }
EW_FLOORDIV_FLOAT(f32, float, fmodf, floorf, copysignf)
EW_FLOORDIV_FLOAT(f64, double, fmod, floor, copysign)
static inline int64_t ew_floordiv_i64(int64_t x, int64_t y) {
    if (y == 0) return 0;
    if (y == -1) return ew_neg_i64(x); /* INT64_MIN / -1 would trap */
    int64_t q = x / y;
    return (x % y != 0 && (x < 0) != (y < 0)) ? q - 1 : q;
}
static inline uint8_t ew_floordiv_u8(uint8_t x, uint8_t y) {
    return y ? (uint8_t)(x / y) : 0;
}
static inline int8_t ew_floordiv_i8(int8_t x, int8_t y) {
    return (int8_t)ew_floordiv_i64(x, y); /* -128 // -1 wraps to -128, as in PyTorch */
}
#define ew_floordiv(x, y) EW_GENERIC(ew_floordiv, x)(x, y)

/* pow: x*x for the common exponent 2; integers by squaring (negative exponents are refused
 * before the loop runs, as in PyTorch), wrapping like C unsigned arithmetic. */
static inline float ew_pow_f32(float x, float y) {
    return y == 2 ? x * x : powf(x, y);
}
static inline double ew_pow_f64(double x, double y) {
    return y == 2 ? x * x : pow(x, y);
}
static inline int64_t ew_pow_i64(int64_t x, int64_t y) {
    uint64_t r = 1, b = (uint64_t)x;
    for (uint64_t e = y < 0 ? 0 : (uint64_t)y; e; e >>= 1, b *= b)
        if (e & 1) r *= b;
    return (int64_t)r;
}
static inline uint8_t ew_pow_u8(uint8_t x, uint8_t y) {
    return (uint8_t)ew_pow_i64(x, y);
}
static inline int8_t ew_pow_i8(int8_t x, int8_t y) {
    return (int8_t)ew_pow_i64(x, y);
}
#define ew_pow(x, y) EW_GENERIC(ew_pow, x)(x, y)

/* maximum/minimum propagate NaN, like PyTorch (fmax would drop it). */
#define EW_MINMAX(sfx, T)                                                                          \
    static inline T ew_max_##sfx(T x, T y) {                                                       \
        return x > y || x != x ? x : y;                                                            \
    }                                                                                              \
    static inline T ew_min_##sfx(T x, T y) {                                                       \
        return x < y || x != x ? x : y;                                                            \
    }
EW_MINMAX(f32, float)
EW_MINMAX(f64, double)
#define EW_IMINMAX(sfx, T)                                                                         \
    static inline T ew_max_##sfx(T x, T y) {                                                       \
        return x > y ? x : y;                                                                      \
    }                                                                                              \
    static inline T ew_min_##sfx(T x, T y) {                                                       \
        return x < y ? x : y;                                                                      \
    }
EW_IMINMAX(i64, int64_t)
EW_IMINMAX(u8, uint8_t)
EW_IMINMAX(i8, int8_t)
#define ew_max(x, y) EW_GENERIC(ew_max, x)(x, y)
#define ew_min(x, y) EW_GENERIC(ew_min, x)(x, y)

/* Unary helpers: integers keep their value under floor/ceil/round; round is half to even
 * (rint in the default rounding mode), like PyTorch. */
static inline int64_t ew_id_i64(int64_t x) {
    return x;
}
static inline int64_t ew_abs_i64(int64_t x) {
    return x < 0 ? ew_neg_i64(x) : x; /* INT64_MIN stays itself, as in PyTorch */
}
#define ew_floor(x)   _Generic((x), float : floorf, double : floor, int64_t : ew_id_i64)(x)
#define ew_ceil(x)    _Generic((x), float : ceilf, double : ceil, int64_t : ew_id_i64)(x)
#define ew_round(x)   _Generic((x), float : rintf, double : rint, int64_t : ew_id_i64)(x)
#define ew_abs(x)     _Generic((x), float : fabsf, double : fabs, int64_t : ew_abs_i64)(x)
#define ew_sign(x)    (((x) > 0) - ((x) < 0)) /* 0 for NaN, like PyTorch */
#define ew_sigmoid(x) (1 / (1 + exp(-(x))))

#endif
