/* tests/c/ref.h: naive reference kernels for the C tests, kept out of the product (llm.c's
 * *_naive), plus random tensors in several memory layouts and a float64 finite-difference
 * gradient check that calls an op's backward directly. Everything reads through td_get. */
#ifndef TIDE_TEST_REF_H
#define TIDE_TEST_REF_H

#include "../../tensor/tide.h"

/* layouts of a random tensor with a given logical shape */
enum { L_CONTIG, L_TRANSPOSED, L_NARROWED, L_EXPANDED, L_NLAYOUTS };
extern const char *const ref_layout_name[L_NLAYOUTS];

/* uniform [lo, hi) values (integers for integer dtypes) in layout lay: transposed = every dim
 * reversed in memory, narrowed = a window of a larger tensor, expanded = dim 0 has stride 0 */
td_tensor *ref_rand(const int64_t *shape, int ndim, td_dtype dt, int lay, double lo, double hi);

/* the largest |a - b| / (1 + |b|) over all elements; INFINITY when the shapes differ */
double ref_maxdiff(const td_tensor *a, const td_tensor *b);

/* reductions, in float64 (positions as 1-based values); dim < 0 reduces everything */
enum {
    R_SUM,
    R_MEAN,
    R_PROD,
    R_MAX,
    R_MIN,
    R_ARGMAX,
    R_ARGMIN,
    R_VAR,
    R_VARB,
    R_STD,
    R_NORM,
    R_LSE,
    R_ALL,
    R_ANY
};
td_tensor *ref_reduce(const td_tensor *x, int dim, int kind);
td_tensor *ref_cumsum(const td_tensor *x, int dim);
td_tensor *ref_softmax(const td_tensor *x, int dim, bool log);
/* torch.matmul semantics for 1-D, 2-D and batched operands (batch dims broadcast) */
td_tensor *ref_matmul(const td_tensor *a, const td_tensor *b);

/* Runs op on float64 inputs, calls its backward with a random gout, and compares every input's
 * gradient with central differences of sum(out0 * gout). Returns the largest abs error. */
double ref_gradcheck(const td_op *op, td_tensor **in, int nin, const td_args *a);

#endif
