/* tensor/ops/conv.h: what conv.c (the ops, per-image products) and conv_cols.c (the columns
 * of im2col, plain and packed for sgemm.c) share. Sizes: N batch, C input channels, K output
 * channels, KH x KW kernel, G groups (Cg = C/G, Kg = K/G); ckk x L columns per image and group. */
#ifndef TIDE_CONV_H
#define TIDE_CONV_H

#include "sgemm.h"

/* One im2col mapping: an image of ci x ih x iw <-> columns (ci KH KW) x (oh ow), where (oh, ow)
 * is the grid the kernel visits. conv2d: the image is x, the grid y. Transposed: the image is y,
 * the grid x (its forward is conv2d's input gradient). */
typedef struct geom {
    int64_t ci, ih, iw, kh, kw, oh, ow, sh, sw, ph, pw, dh, dw;
} geom;

typedef struct conv {
    td_dtype dt;
    size_t es;          /* bytes per element */
    bool tr;            /* conv_transpose2d */
    int64_t N, C, H, W; /* x */
    int64_t K, OH, OW;  /* y */
    int64_t G, Cg, Kg;
    geom g;
    int64_t ckk, L; /* column rows (g.ci KH KW) and columns (g.oh g.ow) */
    int64_t wg;     /* elements of one group's weight block */
    bool direct;    /* 1x1, stride 1, no padding: the image is its own column matrix */
    /* data of one run (forward or backward) */
    const char *x, *w, *b, *gy;
    char *y, *gx, *gwp;   /* gwp: P partial weight gradients */
    double *gbp;          /* P partial bias gradients */
    int64_t P;            /* backward parts (images split into P runs, fixed by N and |w|) */
    bool fast;            /* float32 through sgemm.c's packed AVX-512 kernels */
    int inner;            /* threads of each packed product (images one after another) */
    const float *wn, *wt; /* each group's weight block packed as A: as stored, or transposed */
    int64_t wrows;        /* rows of a group's weight block: Kg (conv2d) or Cg (transposed) */
} conv;

/* the columns (ckk x L) of one image group img, all of them written (padding gives zeros) */
void td_conv_im2col(const conv *c, char *col, const char *img);
/* adds the columns back into img (which the caller zeroed); col is scratch and gets changed */
void td_conv_col2im(const conv *c, char *img, char *col);
/* y (K x S) = the bias on each row; gb[k] += the sum of row k of gy (K x S) */
void td_conv_fill_rows(const conv *c, char *y, int64_t S);
void td_conv_sum_rows(const conv *c, double *gb, const char *gy, int64_t S);
/* float32 columns packed for td_sgemm_packed as B (ckk x L), or as B transposed (L x ckk);
 * rows: scratch for 16 rows of L */
void td_conv_im2col_b(const conv *c, float *d, const float *img, bool trans, float *rows);

#endif
