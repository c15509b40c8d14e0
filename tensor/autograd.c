/* tensor/autograd.c: the dynamic tape. td_run hands every op that should be recorded to
 * td_record, which keeps a heap copy of the node on its outputs; td_backward walks the graph
 * from the roots in reverse topological order, sums gradients per node, reduces broadcast
 * gradients to the input's shape, accumulates leaves' .grad, and frees saved data as it goes.
 * Ownership: a tensor owns its grad_fn; a node owns its inputs (which own their grad_fns), never
 * its outputs, so the graph is acyclic and dies with the last output. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tide.h"

void td_node_retain(td_node *n) {
    n->refcount++;
}

static void node_free_saved(td_node *n) {
    for (int i = 0; i < n->nin; i++) {
        td_release(n->in[i]);
        n->in[i] = NULL;
    }
    for (int k = 0; k < TD_MAX_OUT; k++) {
        td_release(n->saved_out[k]);
        n->saved_out[k] = NULL;
        td_release(n->gacc[k]);
        n->gacc[k] = NULL;
    }
    td_free(n->ctx);
    n->ctx = NULL;
    n->released = true;
}

/* Releasing a long chain recursively could overflow the C stack (an RNN over 10^5 steps), so
 * nodes whose count drops to zero are queued and freed iteratively. */
static td_node *dying;
static bool draining;

void td_node_release(td_node *n) {
    if (!n || --n->refcount > 0) return;
    td_free(n->ctx);
    n->ctx = (void *)dying; /* the op's scratch is gone; ctx links the queue */
    dying = n;
    if (draining) return;
    draining = true;
    while (dying) {
        td_node *d = dying;
        dying = (td_node *)d->ctx;
        d->ctx = NULL;
        node_free_saved(d);
        free(d);
    }
    draining = false;
}

char *td_grad_fn_name(const td_node *n, char *buf, size_t len) {
    snprintf(buf, len, "%sBackward", n->op->name);
    buf[0] = (char)toupper((unsigned char)buf[0]);
    return buf;
}

int td_record(td_node *n) {
    int nin = n->nin;
    size_t extra = (size_t)nin * (sizeof(td_tensor *) + sizeof(uint64_t) + sizeof(bool));
    td_node *h = malloc(sizeof *h + extra);
    if (!h) return td_error("%s: out of memory recording the autograd graph", n->op->name);
    *h = *n;
    h->in = (td_tensor **)(h + 1);
    h->in_version = (uint64_t *)(h->in + nin);
    h->needs_grad = (bool *)(h->in_version + nin);
    h->refcount = 0;
    for (int i = 0; i < nin; i++) {
        td_tensor *t = n->in[i];
        h->in[i] = t;
        h->needs_grad[i] = t && t->requires_grad;
        h->in_version[i] = t ? t->storage->version : 0;
        if (t) td_retain(t);
    }
    n->ctx = NULL; /* the op's scratch now belongs to h */
    for (int k = 0; k < n->nout; k++) {
        td_tensor *o = n->out[k];
        if (!td_dtype_is_float(o->dtype)) continue; /* indices carry no gradient */
        if (n->op->flags & TD_SAVE_OUT) {
            h->saved_out[k] = td_view_of(o, o->shape, o->stride, o->ndim, o->offset);
            if (!h->saved_out[k]) goto fail;
            h->out_version[k] = o->storage->version;
        }
        if (o->grad_fn) td_node_release(o->grad_fn);
        o->grad_fn = h;
        o->out_index = k;
        o->requires_grad = true;
        h->refcount++;
    }
    if (h->refcount == 0) { /* no float output: nothing to differentiate */
        node_free_saved(h);
        free(h);
    }
    return 0;
fail:
    for (int k = 0; k < n->nout; k++)
        if (n->out[k]->grad_fn == h) {
            n->out[k]->grad_fn = NULL;
            n->out[k]->requires_grad = false;
        }
    node_free_saved(h);
    free(h);
    return -1;
}
