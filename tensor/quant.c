/* tensor/quant.c: affine int8/uint8 quantization (PyTorch's rounding, clamping and observer
 * formulas) and the quantized linear and conv2d built on ops/qgemm.c. Sizes: B rows (examples,
 * or output pixels of an image), K inputs, N outputs; conv: N images, C x H x W in, OC x OH x OW
 * out, KH x KW kernel. */
#include <float.h>
#include <math.h>
#include <string.h>

#include "ops/qgemm.h"

static bool qdtype(td_dtype dt) {
    return dt == TD_UINT8 || dt == TD_INT8;
}

static int qrange(td_dtype dt, float *lo, float *hi) {
    *lo = dt == TD_UINT8 ? 0.0f : -128.0f;
    *hi = dt == TD_UINT8 ? 255.0f : 127.0f;
    return 0;
}

/* Which scale applies to element i of a contiguous tensor: its index along axis. */
static int64_t chan_of(int64_t i, int64_t inner, int64_t nc) {
    return nc == 1 ? 0 : (i / inner) % nc;
}

static int check_scales(const char *fn, const td_tensor *t, const float *scale, const int32_t *zp,
                        int64_t ns, int axis, td_dtype dt) {
    char s[128];
    float lo, hi;
    qrange(dt, &lo, &hi);
    if (ns != 1 && (axis < 0 || axis >= t->ndim || t->shape[axis] != ns))
        return td_error("%s: %lld scales for axis %d of a tensor of shape %s (expected one per "
                        "position along the axis)",
                        fn, (long long)ns, axis + 1, td_shape_str(t->shape, t->ndim, s, sizeof s));
    for (int64_t c = 0; c < ns; c++) {
        if (!(scale[c] > 0) || !isfinite(scale[c]))
            return td_error("%s: scale must be a positive finite number, got %g", fn,
                            (double)scale[c]);
        if (zp[c] < lo || zp[c] > hi)
            return td_error("%s: zero point %d outside the %s range [%d, %d]", fn, (int)zp[c],
                            td_dtype_name(dt), (int)lo, (int)hi);
    }
    return 0;
}

td_tensor *td_quantize(td_tensor *x, const float *scale, const int32_t *zp, int64_t ns, int axis,
                       td_dtype dt) {
    if (!td_dtype_is_float(x->dtype) || !qdtype(dt)) {
        td_error("quantize: expected a float tensor into uint8 or int8, got %s into %s",
                 td_dtype_name(x->dtype), td_dtype_name(dt));
        return NULL;
    }
    if (check_scales("quantize", x, scale, zp, ns, axis, dt) < 0) return NULL;
    td_tensor *xf = td_to_dtype(x, TD_FLOAT32), *c = xf ? td_contiguous(xf) : NULL;
    td_tensor *q = c ? td_empty(x->shape, x->ndim, dt) : NULL;
    td_release(xf);
    if (!q) {
        td_release(c);
        return NULL;
    }
    int64_t n = td_numel(x), inner = 1;
    for (int d = axis + 1; ns > 1 && d < x->ndim; d++) inner *= x->shape[d];
    float lo, hi;
    qrange(dt, &lo, &hi);
    const float *src = td_data(c);
    char *dst = td_data(q);
    /* runs of one channel's scale: the inner loop has no division and vectorises */
    for (int64_t i0 = 0; i0 < n; i0 += ns == 1 ? n : inner) {
        int64_t k = chan_of(i0, inner, ns), m = ns == 1 ? n : inner;
        float inv = 1.0f / scale[k], z = (float)zp[k];
        for (int64_t i = i0; i < i0 + m; i++) {
            /* PyTorch: x * (1 / scale) in float, rounded half to even, plus the zero point */
            float v = rintf(src[i] * inv) + z;
            v = v > lo ? v : lo; /* NaN gives lo */
            v = v < hi ? v : hi;
            if (dt == TD_UINT8) ((uint8_t *)dst)[i] = (uint8_t)(int32_t)v;
            else ((int8_t *)dst)[i] = (int8_t)(int32_t)v;
        }
    }
    td_release(c);
    return q;
}

td_tensor *td_dequantize(td_tensor *q, const float *scale, const int32_t *zp, int64_t ns,
                         int axis) {
    if (!qdtype(q->dtype)) {
        td_error("dequantize: expected a uint8 or int8 tensor, got %s", td_dtype_name(q->dtype));
        return NULL;
    }
    if (check_scales("dequantize", q, scale, zp, ns, axis, q->dtype) < 0) return NULL;
    td_tensor *c = td_contiguous(q), *y = c ? td_empty(q->shape, q->ndim, TD_FLOAT32) : NULL;
    if (!y) {
        td_release(c);
        return NULL;
    }
    int64_t n = td_numel(q), inner = 1;
    for (int d = axis + 1; ns > 1 && d < q->ndim; d++) inner *= q->shape[d];
    float *out = td_data(y);
    const char *src = td_data(c);
    for (int64_t i = 0; i < n; i++) {
        int64_t k = chan_of(i, inner, ns);
        float v = q->dtype == TD_UINT8 ? ((const uint8_t *)src)[i] : ((const int8_t *)src)[i];
        out[i] = (v - (float)zp[k]) * scale[k];
    }
    td_release(c);
    return y;
}

void td_qparams(float lo, float hi, td_dtype dt, bool symmetric, float *scale, int32_t *zp) {
    float qlo, qhi;
    qrange(dt, &qlo, &qhi);
    lo = lo < 0 ? lo : 0; /* the range always holds 0, so padding and ReLU zeros are exact */
    hi = hi > 0 ? hi : 0;
    if (symmetric) {
        float m = -lo > hi ? -lo : hi;
        *scale = fmaxf(m / ((qhi - qlo) / 2), FLT_EPSILON);
        *zp = dt == TD_UINT8 ? 128 : 0;
        return;
    }
    *scale = fmaxf((hi - lo) / (qhi - qlo), FLT_EPSILON);
    float z = qlo - rintf(lo / *scale);
    *zp = (int32_t)(z < qlo ? qlo : z > qhi ? qhi : z);
}

td_tensor *td_histc(td_tensor *x, int64_t bins, float lo, float hi) {
    if (bins < 1 || !(lo < hi) || !td_dtype_is_float(x->dtype)) {
        td_error("histc: expected a float tensor, bins >= 1 and lo < hi, got %s, %lld bins, "
                 "[%g, %g]", td_dtype_name(x->dtype), (long long)bins, (double)lo, (double)hi);
        return NULL;
    }
    td_tensor *f = td_to_dtype(x, TD_FLOAT32), *c = f ? td_contiguous(f) : NULL;
    td_tensor *h = c ? td_zeros(&bins, 1, TD_FLOAT64) : NULL;
    td_release(f);
    if (h) {
        const float *v = td_data(c);
        double *o = td_data(h);
        for (int64_t i = 0, n = td_numel(c); i < n; i++) {
            if (!(v[i] >= lo && v[i] <= hi)) continue;
            int64_t b = (int64_t)((v[i] - lo) / (hi - lo) * (float)bins); /* PyTorch's order */
            o[b < bins ? b : bins - 1] += 1;
        }
    }
    td_release(c);
    return h;
}

/* ---- quantized linear and conv2d ----------------------------------------------------------- */
td_tensor *td_qpack(td_tensor *w) {
    char s[128];
    if (w->dtype != TD_INT8 || w->ndim < 2) {
        td_error("qpack: expected int8 weights of 2 or more dims (out x in...), got %s of shape %s",
                 td_dtype_name(w->dtype), td_shape_str(w->shape, w->ndim, s, sizeof s));
        return NULL;
    }
    td_tensor *c;
    if (w->ndim == 4) { /* conv weights (oc, ic, kh, kw): k runs over (kh, kw, ic), im2row's order */
        int64_t sh[4] = {w->shape[0], w->shape[2], w->shape[3], w->shape[1]};
        int64_t st[4] = {w->stride[0], w->stride[2], w->stride[3], w->stride[1]};
        td_tensor *v = td_view_of(w, sh, st, 4, w->offset);
        c = v ? td_contiguous(v) : NULL;
        td_release(v);
    } else {
        c = td_contiguous(w);
    }
    int64_t N = w->shape[0], K = N ? td_numel(w) / N : 0, bytes = td_qpack_bytes(N, K);
    td_tensor *p = c ? td_empty(&bytes, 1, TD_INT8) : NULL;
    if (p) td_qpack_w(td_data(p), td_data(c), K, 1, N, K);
    td_release(c);
    return p;
}

/* The input as uint8 (rows of K values, row stride ldx) with the scale and zero point used:
 * a uint8 x as it is; a float one quantized with q's, or with its own min/max when dynamic. */
static td_tensor *quantize_input(const char *fn, td_tensor *x, const td_qspec *q, float *s,
                                 int32_t *z) {
    if (x->dtype == TD_UINT8) {
        *s = q->scale, *z = q->zp;
        td_retain(x);
        return x;
    }
    if (!td_dtype_is_float(x->dtype)) {
        td_error("%s: expected a float or uint8 input, got %s", fn, td_dtype_name(x->dtype));
        return NULL;
    }
    *s = q->scale, *z = q->zp;
    if (q->dynamic) {
        td_tensor *f = td_to_dtype(x, TD_FLOAT32), *c = f ? td_contiguous(f) : NULL;
        td_release(f);
        if (!c) return NULL;
        const float *v = td_data(c);
        float lo = 0, hi = 0;
        for (int64_t i = 0, n = td_numel(c); i < n; i++) {
            lo = v[i] < lo ? v[i] : lo;
            hi = v[i] > hi ? v[i] : hi;
        }
        td_qparams(lo, hi, TD_UINT8, false, s, z);
        td_tensor *r = td_quantize(c, s, z, 1, -1, TD_UINT8);
        td_release(c);
        return r;
    }
    return td_quantize(x, s, z, 1, -1, TD_UINT8);
}

static int check_packed(const char *fn, const td_tensor *p, int64_t N, int64_t K) {
    if (p->dtype == TD_INT8 && p->ndim == 1 && p->shape[0] == td_qpack_bytes(N, K) &&
        td_is_contiguous(p))
        return 0;
    return td_error("%s: packed weights do not match %lld outputs x %lld inputs (pack them with "
                    "qpack)", fn, (long long)N, (long long)K);
}

static td_tensor *new_out(const int64_t *shape, int nd, const td_qspec *q, td_qepi *e) {
    td_tensor *y = td_empty(shape, nd, q->out_scale > 0 ? TD_UINT8 : TD_FLOAT32);
    if (!y) return NULL;
    if (q->out_scale > 0) e->yq = td_data(y);
    else e->y = td_data(y);
    e->oscale = q->out_scale, e->ozp = q->out_zp, e->relu = q->out_relu;
    return y;
}

td_tensor *td_qlinear(td_tensor *x, td_tensor *packed, const float *wscale, const float *bias,
                      int64_t N, int64_t K, const td_qspec *q) {
    char s[128];
    if (check_packed("qlinear", packed, N, K) < 0) return NULL;
    if (x->ndim < 1 || x->shape[x->ndim - 1] != K) {
        td_error("qlinear: expected input of shape (..., %lld), got %s", (long long)K,
                 td_shape_str(x->shape, x->ndim, s, sizeof s));
        return NULL;
    }
    td_qepi e = {.wscale = wscale, .bias = bias, .cs = 1, .rs = N};
    td_tensor *xq = quantize_input("qlinear", x, q, &e.ascale, &e.azp), *a = NULL, *y = NULL;
    if (!xq) return NULL;
    int64_t M = K ? td_numel(x) / K : 0, Kp = td_qpad_k(K), shape[TD_MAX_DIMS];
    memcpy(shape, x->shape, sizeof(int64_t) * (size_t)x->ndim);
    shape[x->ndim - 1] = N;
    int64_t rows[2] = {M, Kp};
    if (!(a = td_zeros(rows, 2, TD_UINT8))) goto done; /* rows padded to Kp */
    td_tensor *c = td_contiguous(xq);
    if (!c) goto done;
    for (int64_t i = 0; i < M; i++)
        memcpy((uint8_t *)td_data(a) + i * Kp, (const uint8_t *)td_data(c) + i * K, (size_t)K);
    td_release(c);
    if ((y = new_out(shape, x->ndim, q, &e)) &&
        td_qgemm(1, M, N, K, td_data(a), Kp, 0, td_data(packed), &e) < 0) {
        td_release(y);
        y = NULL;
    }
done:
    td_release(xq);
    td_release(a);
    return y;
}

/* The image (C x H x W uint8) channels-last into d (Hp x Wp x C), inside a border of ph, pw
 * pixels of the zero point (the quantized 0.0), so that a patch never needs a bounds test. */
static void pad_nhwc(uint8_t *d, const uint8_t *img, int64_t C, int64_t H, int64_t W, int64_t ph,
                     int64_t pw, uint8_t zp) {
    int64_t Hp = H + 2 * ph, Wp = W + 2 * pw;
    memset(d, zp, (size_t)(Hp * Wp * C));
    for (int64_t c = 0; c < C; c++)
        for (int64_t h = 0; h < H; h++)
            for (int64_t w = 0; w < W; w++) d[((h + ph) * Wp + w + pw) * C + c] = img[(c * H + h) * W + w];
}

/* Rows of A for one padded channels-last image: a row per output pixel, its patch in (kh, kw,
 * c) order (td_qpack packs conv weights the same way), C contiguous bytes per kernel position,
 * then zeros up to Kp. */
static void im2row(uint8_t *a, const uint8_t *img, const td_qconv *g, int64_t Wp, int64_t OH,
                   int64_t OW, int64_t C, int64_t Kp) {
    int64_t K = g->kh * g->kw * C;
    for (int64_t oh = 0; oh < OH; oh++)
        for (int64_t ow = 0; ow < OW; ow++) {
            uint8_t *r = a + (oh * OW + ow) * Kp;
            for (int64_t i = 0; i < g->kh; i++)
                for (int64_t j = 0; j < g->kw; j++, r += C) {
                    const uint8_t *src =
                        img + ((oh * g->sh + i * g->dh) * Wp + ow * g->sw + j * g->dw) * C;
                    if (C >= 16) memcpy(r, src, (size_t)C);
                    else for (int64_t k = 0; k < C; k++) r[k] = src[k]; /* a call costs more */
                }
            for (int64_t k = K; k < Kp; k++) *r++ = 0; /* at most 3 */
        }
}

td_tensor *td_qconv2d(td_tensor *x, td_tensor *packed, const float *wscale, const float *bias,
                      const td_qconv *g, const td_qspec *q) {
    char s[128];
    int64_t OC = g->oc, C = g->ic, K = C * g->kh * g->kw, Kp = td_qpad_k(K);
    if (check_packed("qconv2d", packed, OC, K) < 0) return NULL;
    if (x->ndim != 4 || x->shape[1] != C) {
        td_error("qconv2d: expected input (N, %lld, H, W), got %s", (long long)C,
                 td_shape_str(x->shape, x->ndim, s, sizeof s));
        return NULL;
    }
    int64_t N = x->shape[0], H = x->shape[2], W = x->shape[3];
    int64_t OH = (H + 2 * g->ph - g->dh * (g->kh - 1) - 1) / g->sh + 1;
    int64_t OW = (W + 2 * g->pw - g->dw * (g->kw - 1) - 1) / g->sw + 1;
    if (OH < 1 || OW < 1 || g->sh < 1 || g->sw < 1) {
        td_error("qconv2d: input %s too small for a %lldx%lld kernel", 
                 td_shape_str(x->shape, x->ndim, s, sizeof s), (long long)g->kh, (long long)g->kw);
        return NULL;
    }
    td_qepi e = {.wscale = wscale, .bias = bias, .rs = 1, .cs = OH * OW, .ybs = OC * OH * OW};
    td_tensor *xq = quantize_input("qconv2d", x, q, &e.ascale, &e.azp), *c = NULL, *a = NULL,
              *y = NULL, *pad = NULL;
    if (!xq || !(c = td_contiguous(xq))) goto done;
    int64_t P = OH * OW, rows[2] = {N * P, Kp}, shape[4] = {N, OC, OH, OW};
    int64_t Hp = H + 2 * g->ph, Wp = W + 2 * g->pw, img = Hp * Wp * C;
    if (!(a = td_empty(rows, 2, TD_UINT8)) || !(pad = td_empty(&img, 1, TD_UINT8))) goto done;
    for (int64_t n = 0; n < N; n++) {
        pad_nhwc(td_data(pad), (const uint8_t *)td_data(c) + n * C * H * W, C, H, W, g->ph, g->pw,
                 (uint8_t)e.azp);
        im2row((uint8_t *)td_data(a) + n * P * Kp, td_data(pad), g, Wp, OH, OW, C, Kp);
    }
    if ((y = new_out(shape, 4, q, &e)) &&
        td_qgemm(N, P, OC, K, td_data(a), Kp, P * Kp, td_data(packed), &e) < 0) {
        td_release(y);
        y = NULL;
    }
done:
    td_release(xq);
    td_release(c);
    td_release(a);
    td_release(pad);
    return y;
}

td_tensor *td_qmaxpool2d(td_tensor *x, const int64_t k[2], const int64_t st[2],
                         const int64_t pad[2]) {
    char s[128];
    if (x->dtype != TD_UINT8 || x->ndim != 4 || k[0] < 1 || k[1] < 1 || st[0] < 1 || st[1] < 1 ||
        pad[0] < 0 || pad[1] < 0 || 2 * pad[0] > k[0] || 2 * pad[1] > k[1]) {
        td_error("qmaxpool2d: expected a uint8 (N, C, H, W) input, a kernel and stride >= 1 and "
                 "padding at most half the kernel, got %s of shape %s",
                 td_dtype_name(x->dtype), td_shape_str(x->shape, x->ndim, s, sizeof s));
        return NULL;
    }
    int64_t NC = x->shape[0] * x->shape[1], H = x->shape[2], W = x->shape[3];
    int64_t OH = (H + 2 * pad[0] - k[0]) / st[0] + 1, OW = (W + 2 * pad[1] - k[1]) / st[1] + 1;
    if (OH < 1 || OW < 1) {
        td_error("qmaxpool2d: input %s smaller than the kernel",
                 td_shape_str(x->shape, x->ndim, s, sizeof s));
        return NULL;
    }
    int64_t shape[4] = {x->shape[0], x->shape[1], OH, OW};
    td_tensor *c = td_contiguous(x), *y = c ? td_empty(shape, 4, TD_UINT8) : NULL;
    if (y && k[0] == 2 && k[1] == 2 && st[0] == 2 && st[1] == 2 && pad[0] == 0 && pad[1] == 0) {
        const uint8_t *src = td_data(c); /* the common 2 x 2 window: no bounds to test */
        uint8_t *dst = td_data(y);
        for (int64_t p = 0; p < NC; p++, src += H * W)
            for (int64_t oh = 0; oh < OH; oh++) {
                const uint8_t *r0 = src + 2 * oh * W, *r1 = r0 + W;
                for (int64_t ow = 0; ow < OW; ow++) {
                    uint8_t a = r0[2 * ow] > r0[2 * ow + 1] ? r0[2 * ow] : r0[2 * ow + 1];
                    uint8_t b = r1[2 * ow] > r1[2 * ow + 1] ? r1[2 * ow] : r1[2 * ow + 1];
                    *dst++ = a > b ? a : b;
                }
            }
    } else if (y) { /* max commutes with (q - zp) * scale (scale > 0): pool the integers */
        const uint8_t *src = td_data(c);
        uint8_t *dst = td_data(y);
        for (int64_t p = 0; p < NC; p++, src += H * W)
            for (int64_t oh = 0; oh < OH; oh++)
                for (int64_t ow = 0; ow < OW; ow++) {
                    uint8_t m = 0;
                    for (int64_t i = 0; i < k[0]; i++) {
                        int64_t h = oh * st[0] - pad[0] + i;
                        for (int64_t j = 0; h >= 0 && h < H && j < k[1]; j++) {
                            int64_t w = ow * st[1] - pad[1] + j;
                            if (w >= 0 && w < W && src[h * W + w] > m) m = src[h * W + w];
                        }
                    }
                    *dst++ = m;
                }
    }
    td_release(c);
    return y;
}
