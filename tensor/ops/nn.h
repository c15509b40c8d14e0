/* tensor/ops/nn.h: helpers shared by the nn op files (norm.c, embedding.c, loss.c,
 * loss_pointwise.c): dense copies of inputs and the loss reductions. Sizes: a loss reduces the
 * R per-sample (or per-element) values it computes into one, or keeps them (reduction none). */
#ifndef TIDE_NN_H
#define TIDE_NN_H

#include "reduce.h"

/* t as a contiguous tensor of dtype dt: a new ref (t itself when it already is one) or NULL. */
td_tensor *td_dense_as(td_tensor *t, td_dtype dt);

/* A loss's output meta: shape (reduction none) or a scalar, of dtype dt. */
void td_loss_meta(td_node *n, const int64_t *shape, int ndim, td_dtype dt);

/* Writes the reduced loss: out (a scalar of dtype out->dtype) = total / den, or total. */
void td_loss_store(td_tensor *out, double v);

/* The gradient of the loss w.r.t. sample i: g[i] for reduction none, else g0 * scale. */
typedef struct td_lossgrad {
    const void *g; /* dense gradient of the output for reduction none, else NULL */
    double g0;     /* the scalar gradient times 1/den (mean) or 1 (sum) */
} td_lossgrad;
int td_lossgrad_init(td_lossgrad *lg, td_tensor *gout, td_dtype dt, double den, td_tensor **keep);

/* vm-independent spelling of a reduction for messages: "mean", "sum", "none", "batchmean" */
const char *td_reduction_name(int mode);

#endif
