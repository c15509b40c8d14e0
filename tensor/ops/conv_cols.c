/* tensor/ops/conv_cols.c: the columns of conv.c's products. im2col turns one image group
 * (ci x ih x iw) into columns (ci KH KW) x (oh ow): row (c, i, j) is channel c seen through kernel
 * tap (i, j) at every grid position; col2im adds columns back. The flat case (stride 1, rows as
 * long as the image's: "same" convolutions) copies whole shifted images instead of row pieces. */
#include "conv.h"

#include <string.h>

/* the grid columns ox whose input column ox*s + d lies inside 0..n-1: [*a, *b) */
static void span(int64_t d, int64_t s, int64_t n, int64_t cols, int64_t *a, int64_t *b) {
    int64_t lo = d >= 0 ? 0 : (-d + s - 1) / s, hi = n - 1 - d < 0 ? 0 : (n - 1 - d) / s + 1;
    lo = lo < cols ? lo : cols;
    hi = hi < cols ? hi : cols;
    *a = lo, *b = hi > lo ? hi : lo;
}

/* stride 1 and rows as long as the image's: a kernel tap shifts the whole image by one offset */
static bool flat(const geom *g) {
    return g->sh == 1 && g->sw == 1 && g->ow == g->iw;
}

/* im2col writes every column entry (zeros where the kernel hangs over the padding); col2im adds
 * the columns back into an image the caller zeroed. */
#define COLUMNS(sfx, T)                                                                            \
    /* row (c, i, j) of the columns: image channel c seen through kernel tap (i, j) */             \
    static void im2row_##sfx(T *col, const T *img, const geom *g, int64_t c, int64_t i,            \
                             int64_t j) {                                                          \
        int64_t ow = g->ow, dx = j * g->dw - g->pw, x0, x1, sw = g->sw;                            \
        span(dx, sw, g->iw, ow, &x0, &x1);                                                         \
        if (flat(g)) { /* rows shift as one block: one copy, then zero the wrapped edges */        \
            int64_t dy = i * g->dh - g->ph, a, b, n = g->ih * g->iw;                               \
            span(dy, 1, g->ih, g->oh, &a, &b);                                                     \
            int64_t lo = a * ow, hi = b * ow, d = dy * g->iw + dx;                                 \
            int64_t l0 = lo + d < 0 ? -d : lo, l1 = hi + d > n ? n - d : hi;                       \
            memset(col, 0, sizeof(T) * (size_t)(l0 > 0 ? l0 : 0));                                 \
            if (l1 > l0) memcpy(col + l0, img + c * n + l0 + d, sizeof(T) * (size_t)(l1 - l0));    \
            if (l1 < g->oh * ow) memset(col + l1, 0, sizeof(T) * (size_t)(g->oh * ow - l1));       \
            for (int64_t oy = a; oy < b; oy++) {                                                   \
                for (int64_t ox = 0; ox < x0; ox++) col[oy * ow + ox] = 0;                         \
                for (int64_t ox = x1; ox < ow; ox++) col[oy * ow + ox] = 0;                        \
            }                                                                                      \
            return;                                                                                \
        }                                                                                          \
        for (int64_t oy = 0; oy < g->oh; oy++) {                                                   \
            T *r = col + oy * ow;                                                                  \
            int64_t iy = oy * g->sh - g->ph + i * g->dh;                                           \
            if (iy < 0 || iy >= g->ih) {                                                           \
                memset(r, 0, sizeof(T) * (size_t)ow);                                              \
                continue;                                                                          \
            }                                                                                      \
            const T *s = img + (c * g->ih + iy) * g->iw;                                           \
            for (int64_t ox = 0; ox < x0; ox++) r[ox] = 0;                                         \
            if (sw == 1)                                                                           \
                for (int64_t ox = x0; ox < x1; ox++) r[ox] = s[ox + dx];                           \
            else                                                                                   \
                for (int64_t ox = x0; ox < x1; ox++) r[ox] = s[ox * sw + dx];                      \
            for (int64_t ox = x1; ox < ow; ox++) r[ox] = 0;                                        \
        }                                                                                          \
    }                                                                                              \
    static void im2col_##sfx(T *col, const T *img, const geom *g) {                                \
        int64_t L = g->oh * g->ow;                                                                 \
        for (int64_t c = 0; c < g->ci; c++)                                                        \
            for (int64_t i = 0; i < g->kh; i++)                                                    \
                for (int64_t j = 0; j < g->kw; j++, col += L) im2row_##sfx(col, img, g, c, i, j);  \
    }                                                                                              \
    /* (col is scratch: the flat case zeroes its wrapped edges, then adds one block per row) */    \
    static void col2im_##sfx(T *img, T *col, const geom *g) {                                      \
        int64_t L = g->oh * g->ow, ow = g->ow;                                                     \
        for (int64_t c = 0; c < g->ci; c++)                                                        \
            for (int64_t i = 0; i < g->kh; i++)                                                    \
                for (int64_t j = 0; j < g->kw; j++, col += L) {                                    \
                    int64_t dx = j * g->dw - g->pw, x0, x1, sw = g->sw;                            \
                    span(dx, sw, g->iw, ow, &x0, &x1);                                             \
                    if (flat(g)) {                                                                 \
                        int64_t dy = i * g->dh - g->ph, a, b, n = g->ih * g->iw;                   \
                        span(dy, 1, g->ih, g->oh, &a, &b);                                         \
                        int64_t d = dy * g->iw + dx, l0 = a * ow, l1 = b * ow;                     \
                        for (int64_t oy = a; oy < b; oy++) {                                       \
                            for (int64_t ox = 0; ox < x0; ox++) col[oy * ow + ox] = 0;             \
                            for (int64_t ox = x1; ox < ow; ox++) col[oy * ow + ox] = 0;            \
                        }                                                                          \
                        l0 = l0 + d < 0 ? -d : l0, l1 = l1 + d > n ? n - d : l1;                   \
                        T *s = img + c * n;                                                        \
                        for (int64_t l = l0; l < l1; l++) s[l + d] += col[l];                      \
                        continue;                                                                  \
                    }                                                                              \
                    for (int64_t oy = 0; oy < g->oh; oy++) {                                       \
                        int64_t iy = oy * g->sh - g->ph + i * g->dh;                               \
                        if (iy < 0 || iy >= g->ih) continue;                                       \
                        const T *r = col + oy * ow;                                                \
                        T *s = img + (c * g->ih + iy) * g->iw;                                     \
                        if (sw == 1)                                                               \
                            for (int64_t ox = x0; ox < x1; ox++) s[ox + dx] += r[ox];              \
                        else                                                                       \
                            for (int64_t ox = x0; ox < x1; ox++) s[ox * sw + dx] += r[ox];         \
                    }                                                                              \
                }                                                                                  \
    }                                                                                              \
    /* y (K x S) = bias per row; gb[k] += the sum of row k of gy (K x S) */                        \
    static void fill_rows_##sfx(T *y, const T *b, int64_t K, int64_t S) {                          \
        for (int64_t k = 0; k < K; k++)                                                            \
            for (int64_t s = 0; s < S; s++) y[k * S + s] = b[k];                                   \
    }                                                                                              \
    static void sum_rows_##sfx(double *gb, const T *gy, int64_t K, int64_t S) {                    \
        for (int64_t k = 0; k < K; k++) {                                                          \
            T acc = 0;                                                                             \
            _Pragma("omp simd reduction(+ : acc)") for (int64_t s = 0; s < S; s++) acc +=          \
                gy[k * S + s];                                                                     \
            gb[k] += (double)acc;                                                                  \
        }                                                                                          \
    }
COLUMNS(f32, float)
COLUMNS(f64, double)

void td_conv_im2col(const conv *c, char *col, const char *img) {
    if (c->dt == TD_FLOAT32)
        im2col_f32((float *)col, (const float *)img, &c->g);
    else
        im2col_f64((double *)col, (const double *)img, &c->g);
}
void td_conv_col2im(const conv *c, char *img, char *col) {
    if (c->dt == TD_FLOAT32)
        col2im_f32((float *)img, (float *)col, &c->g);
    else
        col2im_f64((double *)img, (double *)col, &c->g);
}
void td_conv_fill_rows(const conv *c, char *y, int64_t S) {
    if (c->dt == TD_FLOAT32)
        fill_rows_f32((float *)y, (const float *)c->b, c->K, S);
    else
        fill_rows_f64((double *)y, (const double *)c->b, c->K, S);
}
void td_conv_sum_rows(const conv *c, double *gb, const char *gy, int64_t S) {
    if (c->dt == TD_FLOAT32)
        sum_rows_f32(gb, (const float *)gy, c->K, S);
    else
        sum_rows_f64(gb, (const double *)gy, c->K, S);
}

/* Row r = (ch, i, j) of the columns written straight into packed B (K = ckk rows), for the flat
 * geometry: each chunk of TD_SG_NR columns is one copy of the shifted image, then the columns
 * that wrapped around a row edge are zeroed. */
static void im2row_packed(float *dst, const float *img, const geom *g, int64_t ch, int64_t i,
                          int64_t j, int64_t r, int64_t K) {
    int64_t ow = g->ow, L = g->oh * ow, n = g->ih * g->iw, NR = TD_SG_NR;
    int64_t dx = j * g->dw - g->pw, dy = i * g->dh - g->ph, a, b, x0, x1;
    span(dx, 1, g->iw, ow, &x0, &x1);
    span(dy, 1, g->ih, g->oh, &a, &b);
    int64_t d = dy * g->iw + dx, l0 = a * ow, l1 = b * ow;
    l0 = l0 + d < 0 ? -d : l0, l1 = l1 + d > n ? n - d : l1;
    const float *src = img + ch * n;
    for (int64_t p0 = 0; p0 < L; p0 += NR) {
        float *o = dst + p0 * K + r * NR;
        int64_t c0 = p0 > l0 ? p0 : l0, c1 = p0 + NR < l1 ? p0 + NR : l1;
        if (c1 <= c0) {
            memset(o, 0, sizeof(float) * (size_t)NR);
            continue;
        }
        for (int64_t q = p0; q < c0; q++) o[q - p0] = 0;
        memcpy(o + (c0 - p0), src + c0 + d, sizeof(float) * (size_t)(c1 - c0));
        for (int64_t q = c1; q < p0 + NR; q++) o[q - p0] = 0;
    }
    for (int64_t oy = a; oy < b; oy++) { /* the wrapped edges */
        for (int64_t ox = 0; ox < x0; ox++) {
            int64_t l = oy * ow + ox;
            dst[(l - l % NR) * K + r * NR + l % NR] = 0;
        }
        for (int64_t ox = x1; ox < ow; ox++) {
            int64_t l = oy * ow + ox;
            dst[(l - l % NR) * K + r * NR + l % NR] = 0;
        }
    }
}

/* the columns of img packed as B (ckk x L), or as B transposed (L x ckk: rows go through
 * `rows`, 16 at a time, to be transposed in blocks) */
void td_conv_im2col_b(const conv *c, float *d, const float *img, bool trans, float *rows) {
    const geom *g = &c->g;
    int64_t r = 0, r0 = 0, L = c->L;
    for (int64_t ch = 0; ch < g->ci; ch++)
        for (int64_t i = 0; i < g->kh; i++)
            for (int64_t j = 0; j < g->kw; j++, r++) {
                if (!trans && flat(g)) {
                    im2row_packed(d, img, g, ch, i, j, r, c->ckk);
                    continue;
                }
                if (!trans) {
                    im2row_f32(rows, img, g, ch, i, j);
                    td_sgemm_b_row(d, rows, r, c->ckk, L);
                    continue;
                }
                im2row_f32(rows + (r - r0) * L, img, g, ch, i, j);
                if (r - r0 == 15 || r == c->ckk - 1) {
                    td_sgemm_b_cols(d, rows, L, r0, r - r0 + 1, L, c->ckk);
                    r0 = r + 1;
                }
            }
    if (trans) td_sgemm_pad_b(d, L, c->ckk);
}
