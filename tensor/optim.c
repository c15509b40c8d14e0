/* tensor/optim.c: fused optimizer updates (SGD, Adam/AdamW, RMSprop, Adagrad). Each reads a
 * parameter's grad once and writes the parameter and its state buffers in place in one pass over
 * its N elements, with PyTorch 1.13's formulas (torch/optim/<name>.py, _single_tensor_<name>),
 * in the parameter's dtype (float32 or float64), split across threads above OPTIM_GRAIN. */
#include "tide.h"

#include <tgmath.h>

/* Elements per parameter below which one thread does the whole update: an update is a few flops
 * per 28 bytes moved, so waking the pool only pays for parameters of ~100k elements or more. */
#define OPTIM_GRAIN ((int64_t)1 << 17)
#define MAX_BUFS    3

typedef void (*upd_fn)(char *p, const char *g, char *const *b, int64_t n, const td_optim_hp *h);

/* Each kernel spells PyTorch's sequence of tensor ops element by element, keeping their order
 * of operations (add with alpha: a + alpha*b; addcmul: a + (v*t1)*t2; addcdiv: a + (v*t1)/t2),
 * each rounded in T as PyTorch's float32 kernels round it. The loops are always_inline bodies
 * called with constant flags for the optional buffers, so every variant is a branch-free loop
 * the compiler vectorises (GCC's own unswitching gives up on three invariant conditions). */
#define INLINE static inline __attribute__((always_inline))
#define KERNELS(T, sfx)                                                                            \
    INLINE void sgd_loop_##sfx(T *restrict p, const T *restrict g, T *restrict buf, int64_t n,     \
                               const td_optim_hp *h, const bool hasbuf) {                          \
        const T lr = (T)h->lr, wd = (T)h->weight_decay, mom = (T)h->momentum;                      \
        const T damp = (T)(1 - h->dampening), sign = h->maximize ? (T)-1 : (T)1;                   \
        const bool decay = h->weight_decay != 0, init = h->init_buf, nest = h->nesterov;           \
        for (int64_t i = 0; i < n; i++) {                                                          \
            T d = sign * g[i];                                                                     \
            d = decay ? d + wd * p[i] : d;                                                         \
            if (hasbuf) {                                                                          \
                T m = init ? d : buf[i] * mom + damp * d; /* the first step copies d */            \
                buf[i] = m;                                                                        \
                d = nest ? d + mom * m : m;                                                        \
            }                                                                                      \
            p[i] = p[i] + -lr * d;                                                                 \
        }                                                                                          \
    }                                                                                              \
    static void sgd_##sfx(char *p, const char *g, char *const *b, int64_t n,                       \
                          const td_optim_hp *h) {                                                  \
        if (b[0])                                                                                  \
            sgd_loop_##sfx((T *)p, (const T *)g, (T *)b[0], n, h, true);                           \
        else                                                                                       \
            sgd_loop_##sfx((T *)p, (const T *)g, NULL, n, h, false);                               \
    }                                                                                              \
    INLINE void adam_loop_##sfx(T *restrict p, const T *restrict g, T *restrict m, T *restrict v,  \
                                T *restrict vmax, int64_t n, const td_optim_hp *h,                 \
                                const bool ams) {                                                  \
        double bc1 = 1 - pow(h->beta1, (double)h->step);                                           \
        double bc2 = 1 - pow(h->beta2, (double)h->step);                                           \
        const T b1 = (T)h->beta1, b2 = (T)h->beta2;                                                \
        const T c1 = (T)(1 - h->beta1), c2 = (T)(1 - h->beta2);                                    \
        const T nstep = (T)(-(h->lr / bc1)), bc2s = (T)sqrt(bc2), eps = (T)h->eps;                 \
        const T wd = (T)h->weight_decay, shrink = (T)(1 - h->lr * h->weight_decay);                \
        const T sign = h->maximize ? (T)-1 : (T)1;                                                 \
        const bool decoupled = h->decoupled, coupled = !decoupled && h->weight_decay != 0;         \
        for (int64_t i = 0; i < n; i++) {                                                          \
            T gi = sign * g[i], pi = p[i];                                                         \
            pi = decoupled ? pi * shrink : pi; /* AdamW: p *= 1 - lr*wd, first */                  \
            gi = coupled ? gi + wd * pi : gi;                                                      \
            T mi = m[i] * b1 + c1 * gi;                                                            \
            T vi = v[i] * b2 + c2 * gi * gi;                                                       \
            m[i] = mi, v[i] = vi;                                                                  \
            if (ams) { /* torch.maximum: NaN wins */                                               \
                T old = vmax[i];                                                                   \
                vi = (vi > old || vi != vi) ? vi : old;                                            \
                vmax[i] = vi;                                                                      \
            }                                                                                      \
            T denom = sqrt(vi) / bc2s + eps; /* eps outside the sqrt */                            \
            p[i] = pi + nstep * mi / denom;                                                        \
        }                                                                                          \
    }                                                                                              \
    static void adam_##sfx(char *p, const char *g, char *const *b, int64_t n,                      \
                           const td_optim_hp *h) {                                                 \
        if (b[2])                                                                                  \
            adam_loop_##sfx((T *)p, (const T *)g, (T *)b[0], (T *)b[1], (T *)b[2], n, h, true);    \
        else                                                                                       \
            adam_loop_##sfx((T *)p, (const T *)g, (T *)b[0], (T *)b[1], NULL, n, h, false);        \
    }                                                                                              \
    INLINE void rmsprop_loop_##sfx(T *restrict p, const T *restrict g, T *restrict sq,             \
                                   T *restrict ga, T *restrict buf, int64_t n,                     \
                                   const td_optim_hp *h, const bool centered, const bool hasbuf) { \
        const T a = (T)h->alpha, c = (T)(1 - h->alpha), eps = (T)h->eps, lr = (T)h->lr;            \
        const T wd = (T)h->weight_decay, mom = (T)h->momentum;                                     \
        const T sign = h->maximize ? (T)-1 : (T)1;                                                 \
        const bool decay = h->weight_decay != 0;                                                   \
        for (int64_t i = 0; i < n; i++) {                                                          \
            T gi = sign * g[i];                                                                    \
            gi = decay ? gi + wd * p[i] : gi;                                                      \
            T s = sq[i] * a + c * gi * gi, avg;                                                    \
            sq[i] = s;                                                                             \
            if (centered) {                                                                        \
                T gm = ga[i] * a + c * gi;                                                         \
                ga[i] = gm;                                                                        \
                avg = sqrt(s + (T)-1 * gm * gm);                                                   \
            } else {                                                                               \
                avg = sqrt(s);                                                                     \
            }                                                                                      \
            avg = avg + eps;                                                                       \
            if (hasbuf) {                                                                          \
                T mb = buf[i] * mom + gi / avg;                                                    \
                buf[i] = mb;                                                                       \
                p[i] = p[i] + -lr * mb;                                                            \
            } else {                                                                               \
                p[i] = p[i] + -lr * gi / avg;                                                      \
            }                                                                                      \
        }                                                                                          \
    }                                                                                              \
    static void rmsprop_##sfx(char *pc, const char *gc, char *const *b, int64_t n,                 \
                              const td_optim_hp *h) {                                              \
        T *p = (T *)pc, *sq = (T *)b[0], *ga = (T *)b[1], *buf = (T *)b[2];                        \
        const T *g = (const T *)gc;                                                                \
        if (ga && buf)                                                                             \
            rmsprop_loop_##sfx(p, g, sq, ga, buf, n, h, true, true);                               \
        else if (ga)                                                                               \
            rmsprop_loop_##sfx(p, g, sq, ga, NULL, n, h, true, false);                             \
        else if (buf)                                                                              \
            rmsprop_loop_##sfx(p, g, sq, NULL, buf, n, h, false, true);                            \
        else                                                                                       \
            rmsprop_loop_##sfx(p, g, sq, NULL, NULL, n, h, false, false);                          \
    }                                                                                              \
    static void adagrad_##sfx(char *pc, const char *gc, char *const *b, int64_t n,                 \
                              const td_optim_hp *h) {                                              \
        T *restrict p = (T *)pc, *restrict sum = (T *)b[0];                                        \
        const T *restrict g = (const T *)gc;                                                       \
        const T nclr = (T)(-(h->lr / (1 + (double)(h->step - 1) * h->lr_decay)));                  \
        const T wd = (T)h->weight_decay, eps = (T)h->eps;                                          \
        const T sign = h->maximize ? (T)-1 : (T)1;                                                 \
        const bool decay = h->weight_decay != 0;                                                   \
        for (int64_t i = 0; i < n; i++) {                                                          \
            T gi = sign * g[i];                                                                    \
            gi = decay ? gi + wd * p[i] : gi;                                                      \
            T s = sum[i] + gi * gi;                                                                \
            sum[i] = s;                                                                            \
            p[i] = p[i] + nclr * gi / (sqrt(s) + eps);                                             \
        }                                                                                          \
    }

KERNELS(float, f32)
KERNELS(double, f64)

static bool same_shape(const td_tensor *a, const td_tensor *b) {
    if (a->ndim != b->ndim) return false;
    for (int i = 0; i < a->ndim; i++)
        if (a->shape[i] != b->shape[i]) return false;
    return true;
}

/* Checks every operand, then runs k over p's elements (chunks per thread above OPTIM_GRAIN).
 * A non-contiguous p is updated in a contiguous copy written back; g is converted to p's dtype
 * and made contiguous when needed. Returns 0, or -1 + error with nothing written. */
static int run(const char *fn, td_tensor *p, td_tensor *g, td_tensor *const *bufs, int nb,
               const upd_fn k[2], const td_optim_hp *h) {
    char a[128], c[128];
    if (!p || !g) return td_error("%s: expected a parameter and its gradient", fn);
    if (p->dtype != TD_FLOAT32 && p->dtype != TD_FLOAT64)
        return td_error("%s: parameters must be float32 or float64, got %s", fn,
                        td_dtype_name(p->dtype));
    if (!same_shape(p, g))
        return td_error("%s: gradient of shape %s for a parameter of shape %s", fn,
                        td_shape_str(g->shape, g->ndim, a, sizeof a),
                        td_shape_str(p->shape, p->ndim, c, sizeof c));
    if (td_check_writable(fn, p) < 0) return -1;
    for (int j = 0; j < nb; j++) {
        const td_tensor *b = bufs[j];
        if (!b) continue;
        if (b->dtype != p->dtype || !same_shape(b, p) || !td_is_contiguous(b))
            return td_error("%s: state buffer %d is a %s tensor of shape %s%s, expected a "
                            "contiguous %s tensor of the parameter's shape %s",
                            fn, j + 1, td_dtype_name(b->dtype),
                            td_shape_str(b->shape, b->ndim, a, sizeof a),
                            td_is_contiguous(b) ? "" : " (not contiguous)", td_dtype_name(p->dtype),
                            td_shape_str(p->shape, p->ndim, c, sizeof c));
        bool shared = td_overlap_of(b, p) || td_overlap_of(b, g);
        for (int i = 0; i < j && !shared; i++) shared = bufs[i] && td_overlap_of(b, bufs[i]);
        if (shared)
            return td_error("%s: state buffer %d shares memory with the parameter, its "
                            "gradient or another buffer",
                            fn, j + 1);
    }
    int64_t n = td_numel(p);
    if (n == 0) return 0;
    td_tensor *gc = NULL, *pc = NULL;
    int rc = -1;
    /* the kernels read g through restrict: a gradient aliasing p is read from a copy */
    if (g->dtype == p->dtype && td_is_contiguous(g) && !td_overlap_of(g, p)) {
        td_retain(g);
        gc = g;
    } else {
        if (!(gc = td_empty(p->shape, p->ndim, p->dtype))) goto done;
        if (td_copy_into(gc, g) < 0) goto done;
    }
    if (!(pc = td_contiguous(p))) goto done;
    size_t es = td_dtype_size(p->dtype);
    char *pd = td_data(pc), *gd = td_data(gc), *bd[MAX_BUFS] = {NULL};
    for (int j = 0; j < nb; j++) bd[j] = bufs[j] ? td_data(bufs[j]) : NULL;
    upd_fn f = k[p->dtype];
    int nt = n >= OPTIM_GRAIN ? td_get_num_threads() : 1;
    if (nt <= 1) {
        f(pd, gd, bd, n, h);
    } else {
#pragma omp parallel for num_threads(nt) schedule(static)
        for (int t = 0; t < nt; t++) {
            /* chunk edges on 16-element boundaries: threads never share a cache line */
            int64_t lo = (n * t / nt) & ~(int64_t)15,
                    hi = t == nt - 1 ? n : (n * (t + 1) / nt) & ~(int64_t)15;
            char *bt[MAX_BUFS] = {NULL};
            for (int j = 0; j < nb; j++) bt[j] = bd[j] ? bd[j] + (size_t)lo * es : NULL;
            if (hi > lo) f(pd + (size_t)lo * es, gd + (size_t)lo * es, bt, hi - lo, h);
        }
    }
    if (pc != p && td_copy_into(p, pc) < 0) goto done;
    td_bump_version(p); /* an in-place write: autograd refuses graphs that saved the old p */
    for (int j = 0; j < nb; j++)
        if (bufs[j]) td_bump_version(bufs[j]);
    rc = 0;
done:
    td_release(gc);
    td_release(pc);
    return rc;
}

static int check_hp(const char *fn, const td_optim_hp *h) {
    if (!(h->lr >= 0)) return td_error("%s: lr must be >= 0, got %g", fn, h->lr);
    if (!(h->weight_decay >= 0))
        return td_error("%s: weight_decay must be >= 0, got %g", fn, h->weight_decay);
    if (!(h->eps >= 0)) return td_error("%s: eps must be >= 0, got %g", fn, h->eps);
    return 0;
}

int td_sgd_step(td_tensor *p, td_tensor *g, td_tensor *buf, const td_optim_hp *h) {
    static const upd_fn k[2] = {sgd_f32, sgd_f64};
    if (check_hp("SGD", h) < 0) return -1;
    if ((h->momentum != 0) != (buf != NULL))
        return td_error("SGD: a momentum buffer is needed exactly when momentum != 0 "
                        "(momentum %g, buffer %s)",
                        h->momentum, buf ? "given" : "missing");
    td_tensor *b[1] = {buf};
    return run("SGD", p, g, b, 1, k, h);
}

int td_adam_step(td_tensor *p, td_tensor *g, td_tensor *m, td_tensor *v, td_tensor *vmax,
                 const td_optim_hp *h) {
    static const upd_fn k[2] = {adam_f32, adam_f64};
    const char *fn = h->decoupled ? "AdamW" : "Adam";
    if (check_hp(fn, h) < 0) return -1;
    if (!m || !v) return td_error("%s: exp_avg and exp_avg_sq buffers are required", fn);
    if (h->step < 1) return td_error("%s: step must be >= 1, got %lld", fn, (long long)h->step);
    td_tensor *b[3] = {m, v, vmax};
    return run(fn, p, g, b, 3, k, h);
}

int td_rmsprop_step(td_tensor *p, td_tensor *g, td_tensor *sq, td_tensor *gavg, td_tensor *buf,
                    const td_optim_hp *h) {
    static const upd_fn k[2] = {rmsprop_f32, rmsprop_f64};
    if (check_hp("RMSprop", h) < 0) return -1;
    if (!sq) return td_error("RMSprop: a square_avg buffer is required");
    if ((h->momentum > 0) != (buf != NULL))
        return td_error("RMSprop: a momentum buffer is needed exactly when momentum > 0 "
                        "(momentum %g, buffer %s)",
                        h->momentum, buf ? "given" : "missing");
    td_tensor *b[3] = {sq, gavg, buf};
    return run("RMSprop", p, g, b, 3, k, h);
}

int td_adagrad_step(td_tensor *p, td_tensor *g, td_tensor *sum, const td_optim_hp *h) {
    static const upd_fn k[2] = {adagrad_f32, adagrad_f64};
    if (check_hp("Adagrad", h) < 0) return -1;
    if (!sum) return td_error("Adagrad: a sum buffer is required");
    if (h->step < 1) return td_error("Adagrad: step must be >= 1, got %lld", (long long)h->step);
    td_tensor *b[1] = {sum};
    return run("Adagrad", p, g, b, 1, k, h);
}
