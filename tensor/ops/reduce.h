/* tensor/ops/reduce.h: the reduction engine shared by reduce.c and stats.c. Sizes: O outputs
 * (kept dims), each reducing a run of N elements s apart; CH is the fixed chunk of a long run and
 * COLB the block of side-by-side outputs in the column layout. */
#ifndef TIDE_REDUCE_H
#define TIDE_REDUCE_H

#include "../tide.h"

enum { K_SUM, K_SUMSQ, K_SQDEV, K_EXPDEV, K_PROD, K_MAX, K_MIN }; /* what a run accumulates */
enum { F_NONE, F_DIV, F_SQRT, F_LSE };                            /* how a result is finished */
#define CH   16384
#define COLB 128

typedef struct plan {
    const void *x;                             /* element 0 of the input */
    int nk;                                    /* kept dims, coalesced */
    int64_t ks[TD_MAX_DIMS], kst[TD_MAX_DIMS]; /* their sizes and strides (elements) */
    int64_t nout, n, s;                        /* outputs, run length, run stride */
} plan;

typedef struct sink { /* where results go: contiguous, in the order of the kept dims */
    void *out;        /* values (NULL: positions only) */
    td_dtype odt;
    int64_t *at; /* 1-based positions of max/min, or NULL */
    int fin;     /* F_*: value = v / div, sqrt(v / div), log(v) + c[o] */
    double div;
    const double *c; /* per-output centres of K_SQDEV, K_EXPDEV (and F_LSE) */
} sink;

/* Reduces the run of dims d0..d1 of x (any layout) with kind k into sk. 0 or -1 + error. */
int td_reduce_dims(td_tensor *x, int d0, int d1, int k, const sink *sk);

/* The run a reduction node reduces (all dims, or args.dim) and its element count. */
void td_red_run(const td_node *n, int *d0, int *d1);
int64_t td_red_count(const td_node *n);
/* The shape rule: output dtype odt, nout outputs (2: values and int64 positions); need_float
 * refuses integer inputs naming the dtype; need_items refuses reducing nothing (max of empty). */
int td_red_shape(td_node *n, td_dtype odt, int nout, bool need_float, bool need_items);
/* x seen as a dense O x N x I block around the run (for backward). */
void td_red_block(const td_node *n, int64_t *O, int64_t *N, int64_t *I);
/* A contiguous float64 copy of t (new ref) or NULL + error. */
td_tensor *td_dense64(td_tensor *t);

#endif
