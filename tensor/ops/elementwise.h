/* tensor/ops/elementwise.h: the shared pieces of elementwise ops, for files that add rows of
 * their own kind (comparisons, clamp, where). */
#ifndef TIDE_ELEMENTWISE_H
#define TIDE_ELEMENTWISE_H

#include "../tide.h"

/* Broadcast shape of all inputs into meta[0]; dtype: promoted (float_only: integers become
 * float32) or bool. 0 or -1 + error. */
int td_ew_shape(td_node *n, bool float_only, bool bool_out);
/* Runs loops[dt] over {out, in...}, converting inputs to dt first. 0 or -1 + error. */
int td_ew_run(td_node *n, td_dtype dt, td_loop const *loops);
/* *gin = new tensor from loops[dtype of out] over {gin, g, in..., saved out}. 0 or -1. */
int td_ew_grad(td_node *n, td_tensor *g, td_loop const *loops, td_tensor **gin);

#endif
