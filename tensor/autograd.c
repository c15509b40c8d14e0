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

/* Nodes with up to SMALL_NIN inputs (nearly all) come from a free list: a training step
 * records hundreds of them, and malloc showed up in the profile of the tiny autograd step. */
#define SMALL_NIN 4
static td_node *free_nodes;

static size_t node_bytes(int nin) {
    return sizeof(td_node) + (size_t)nin * (sizeof(td_tensor *) + sizeof(td_node *) +
                                            sizeof(uint64_t) + sizeof(int) + sizeof(bool));
}

static td_node *node_alloc(int nin) {
    if (td_alloc_fails()) return NULL; /* the failure point, free list or not */
    if (nin <= SMALL_NIN && free_nodes) {
        td_node *n = free_nodes;
        free_nodes = (td_node *)n->ctx;
        return n;
    }
    return malloc(node_bytes(nin > SMALL_NIN ? nin : SMALL_NIN));
}

static void node_dealloc(td_node *n) {
    if (n->nin > SMALL_NIN) {
        free(n);
        return;
    }
    n->ctx = (void *)free_nodes;
    free_nodes = n;
}

static void free_ctx(td_node *n) {
    if (n->ctx && n->op->release) n->op->release(n);
    td_free(n->ctx);
    n->ctx = NULL;
}

void td_node_retain(td_node *n) {
    n->refcount++;
}

static void node_free_saved(td_node *n) {
    for (int i = 0; i < n->nin; i++) {
        td_release(n->in[i]);
        n->in[i] = NULL;
        if (n->next[i]) td_node_release(n->next[i]);
        n->next[i] = NULL;
    }
    for (int k = 0; k < TD_MAX_OUT; k++) {
        td_release(n->saved_out[k]);
        n->saved_out[k] = NULL;
        td_release(n->gacc[k]);
        n->gacc[k] = NULL;
    }
    free_ctx(n);
    n->released = true;
}

/* Releasing a long chain recursively could overflow the C stack (an RNN over 10^5 steps), so
 * nodes whose count drops to zero are queued and freed iteratively. */
static td_node *dying;
static bool draining;

void td_node_release(td_node *n) {
    if (!n || --n->refcount > 0) return;
    free_ctx(n);
    n->ctx = (void *)dying; /* the op's scratch is gone; ctx links the queue */
    dying = n;
    if (draining) return;
    draining = true;
    while (dying) {
        td_node *d = dying;
        dying = (td_node *)d->ctx;
        d->ctx = NULL;
        node_free_saved(d);
        node_dealloc(d);
    }
    draining = false;
}

char *td_grad_fn_name(const td_node *n, char *buf, size_t len) {
    size_t k = 0; /* log_softmax -> LogSoftmaxBackward, copy_ -> CopyBackward */
    bool up = true;
    for (const char *c = n->op->name; *c && k + 1 < len; c++) {
        if (*c == '_') {
            up = true;
            continue;
        }
        buf[k++] = up ? (char)toupper((unsigned char)*c) : *c;
        up = false;
    }
    snprintf(buf + k, len - k, "Backward");
    return buf;
}

int td_record(td_node *n) {
    int nin = n->nin;
    td_node *h = node_alloc(nin);
    if (!h) return td_error("%s: out of memory recording the autograd graph", n->op->name);
    *h = *n;
    h->in = (td_tensor **)(h + 1); /* pointer-sized arrays first, then the narrower ones */
    h->next = (td_node **)(h->in + nin);
    h->in_version = (uint64_t *)(h->next + nin);
    h->next_index = (int *)(h->in_version + nin);
    h->needs_grad = (bool *)(h->next_index + nin);
    h->refcount = 0; /* td_run leaves the autograd fields of its stack node unset: set them all */
    h->pending = 0;
    h->epoch = 0;
    h->released = false;
    for (int k = 0; k < TD_MAX_OUT; k++) {
        h->saved_out[k] = h->gacc[k] = NULL;
        h->out_version[k] = 0;
    }
    for (int i = 0; i < nin; i++) {
        td_tensor *t = n->in[i];
        h->in[i] = t;
        h->needs_grad[i] = t && t->requires_grad;
        h->in_version[i] = t ? t->storage->version : 0;
        h->next[i] = t ? t->grad_fn : NULL;
        h->next_index[i] = t ? t->out_index : 0;
        if (t) td_retain(t);
        if (h->next[i]) td_node_retain(h->next[i]);
    }
    n->ctx = NULL; /* the op's scratch now belongs to h */
    for (int k = 0; k < n->nout; k++) {
        td_tensor *o = n->out[k];
        if (!td_dtype_is_float(o->dtype)) continue; /* indices carry no gradient */
        if (n->op->flags & TD_SAVE_OUT) {
            h->saved_out[k] = td_view_of(o, o->shape, o->stride, o->ndim, o->offset);
            if (!h->saved_out[k]) goto fail;
            h->out_version[k] = o->storage->version; /* apply.c adds an in-place op's bump */
        }
        if (o->grad_fn) td_node_release(o->grad_fn);
        o->grad_fn = h;
        o->out_index = k;
        o->requires_grad = true;
        h->refcount++;
    }
    if (h->refcount == 0) { /* no float output: nothing to differentiate */
        node_free_saved(h);
        node_dealloc(h);
    }
    return 0;
fail:
    for (int k = 0; k < n->nout; k++)
        if (n->out[k]->grad_fn == h) {
            n->out[k]->grad_fn = NULL;
            n->out[k]->requires_grad = false;
        }
    node_free_saved(h);
    node_dealloc(h);
    return -1;
}

/* ---- backward ------------------------------------------------------------------------------ */

typedef struct walk {
    td_node **nodes; /* every node reachable from the roots, each retained for the pass */
    int n, cap;
    td_node **ready; /* nodes whose consumers have all run */
    int nready;
    /* td_grad: the tensors whose gradients are wanted, and where they go */
    td_tensor *const *inputs;
    td_tensor **out;
    int ninputs;
    /* td_backward: the leaves reached (retained) and their gradients, summed apart from .grad
     * and committed only when the whole pass succeeded: an error or Ctrl-C leaves .grad as it
     * was (PyTorch would leave a partial sum) */
    td_tensor **leaf, **lgrad;
    int nleaf, leafcap;
} walk;

static uint64_t epoch;
static td_grad_hook hook; /* NULL but in distributed data parallel runs */
static void *hook_ud;

void td_set_grad_hook(td_grad_hook fn, void *ud) {
    hook = fn;
    hook_ud = ud;
}
/* The walk's arrays are kept between passes (grow only): backward is not re-entered. */
static td_node **keep_nodes, **keep_ready;
static int keep_cap;

/* Doubles two parallel arrays of pointers (*a, *b) of capacity *cap; 0 or -1 + error. */
static int grow_pair(void **a, void **b, int *cap, const char *what) {
    int c = *cap ? 2 * *cap : 64;
    void *p = td_sys_realloc(*a, sizeof(void *) * (size_t)c);
    if (p) *a = p;
    void *q = p ? td_sys_realloc(*b, sizeof(void *) * (size_t)c) : NULL;
    if (q) *b = q;
    if (!p || !q) return td_error("backward: out of memory %s", what);
    *cap = c;
    return 0;
}

static int push_node(walk *w, td_node *n) {
    if (w->n == w->cap &&
        grow_pair((void **)&w->nodes, (void **)&w->ready, &w->cap, "walking the graph") < 0)
        return -1;
    td_node_retain(n);
    w->nodes[w->n++] = n;
    n->epoch = epoch;
    n->pending = 0;
    return 0;
}

static int freed_error(const td_node *n) {
    char buf[64];
    return td_error("backward: the graph through %s was already freed by an earlier backward "
                    "(pass {retain_graph = true} to the first backward to run it twice)",
                    td_grad_fn_name(n, buf, sizeof buf));
}

/* The edges into a leaf in this pass: its gradient is complete once as many have arrived. */
static void count_leaf(td_tensor *t) {
    if (!t->requires_grad || t->grad_fn) return;
    if (t->grad_epoch != epoch) {
        t->grad_epoch = epoch;
        t->grad_pending = 0;
    }
    t->grad_pending++;
}

/* Collects the graph (iteratively: graphs of 10^5 nodes must not overflow the C stack) and
 * counts, for each node, the consumers that will send it a gradient. */
static int collect(walk *w, td_tensor *const *roots, int nroots) {
    epoch++;
    for (int r = 0; r < nroots; r++) {
        td_node *g = roots[r]->grad_fn;
        if (!g || g->epoch == epoch) continue;
        if (g->released) return freed_error(g);
        if (push_node(w, g) < 0) return -1;
    }
    for (int k = 0; k < w->n; k++) { /* w->nodes doubles as the DFS queue */
        td_node *n = w->nodes[k];
        for (int i = 0; i < n->nin; i++) {
            if (!n->needs_grad[i]) continue;
            if (!n->next[i]) {
                if (hook && !w->out) count_leaf(n->in[i]);
                continue;
            }
            td_node *c = n->next[i];
            if (c->epoch != epoch) {
                if (c->released) return freed_error(c);
                if (push_node(w, c) < 0) return -1;
            }
            c->pending++;
        }
    }
    return 0;
}

/* *acc += g without writing into either operand (they may be shared). Takes g's ref. */
static int accumulate(td_tensor **acc, td_tensor *g) {
    if (!*acc) {
        *acc = g;
        return 0;
    }
    td_tensor *s = td_apply2(&td_op_add, *acc, g, NULL);
    td_release(g);
    if (!s) return -1;
    td_release(*acc);
    *acc = s;
    return 0;
}

static int check_versions(const td_node *n) {
    char buf[64];
    if (!(n->op->flags & TD_GRAD_NOREAD))
        for (int i = 0; i < n->nin; i++)
            if (n->in[i]->storage->version != n->in_version[i])
                return td_error("backward: input %d of %s was modified in place after it was "
                                "used (version %llu, saved at %llu); use clone() before the "
                                "in-place op", i + 1, td_grad_fn_name(n, buf, sizeof buf),
                                (unsigned long long)n->in[i]->storage->version,
                                (unsigned long long)n->in_version[i]);
    for (int k = 0; k < TD_MAX_OUT; k++)
        if (n->saved_out[k] && n->saved_out[k]->storage->version != n->out_version[k])
            return td_error("backward: the output of %s was modified in place after it was "
                            "used; use clone() before the in-place op",
                            td_grad_fn_name(n, buf, sizeof buf));
    return 0;
}

/* Where a gradient arriving for leaf t goes in td_grad: the index of t in inputs, or -1. */
static int wanted(const walk *w, const td_tensor *t) {
    for (int j = 0; j < w->ninputs; j++)
        if (w->inputs[j] == t) return j;
    return -1;
}

/* What the user gets owns its buffer: a gradient shared with another path (elementwise.c passes
 * `g` itself on), or a view of one, is copied first. Takes r; a new ref or NULL + error. */
static td_tensor *owned(td_tensor *r) {
    if (r->refcount == 1 && r->storage->refcount == 1 && td_is_contiguous(r)) return r;
    td_tensor *c = td_empty(r->shape, r->ndim, r->dtype);
    if (c && td_copy_into(c, r) < 0) {
        td_release(c);
        c = NULL;
    }
    td_release(r);
    return c;
}

/* Commits leaf t's staged gradient *slot into t->grad now (the grad hook's early case). */
static int settle(td_tensor *t, td_tensor **slot) {
    td_tensor *g = t->grad ? td_apply2(&td_op_add, t->grad, *slot, NULL) : owned(*slot);
    if (t->grad) td_release(*slot);
    *slot = NULL;
    if (!g) return -1;
    td_release(t->grad);
    t->grad = g;
    return 0;
}

/* The staging slot of leaf t in td_backward (added on first use); NULL + error. */
static td_tensor **staged(walk *w, td_tensor *t) {
    for (int j = w->nleaf - 1; j >= 0; j--)
        if (w->leaf[j] == t) return &w->lgrad[j];
    if (w->nleaf == w->leafcap &&
        grow_pair((void **)&w->leaf, (void **)&w->lgrad, &w->leafcap, "staging gradients") < 0)
        return NULL;
    td_retain(t);
    w->leaf[w->nleaf] = t;
    w->lgrad[w->nleaf] = NULL;
    return &w->lgrad[w->nleaf++];
}

/* Sends gradient g (taken) for input tensor t (reached through edge `to`, out_index `k`): to
 * that node, to the .grad of a leaf, or to td_grad's output. */
static int deliver(walk *w, td_tensor *t, td_node *to, int k, td_tensor *g) {
    td_tensor *r = td_sum_to(g, t->shape, t->ndim);
    td_release(g);
    if (!r) return -1;
    if (r->dtype != t->dtype) {
        td_tensor *c = td_to_dtype(r, t->dtype);
        td_release(r);
        if (!(r = c)) return -1;
    }
    if (to) {
        if (accumulate(&to->gacc[k], r) < 0) return -1;
        if (--to->pending == 0) w->ready[w->nready++] = to;
        return 0;
    }
    td_tensor **acc = NULL;
    if (w->out) { /* td_grad: leaves' .grad stay untouched */
        int j = wanted(w, t);
        acc = j < 0 ? NULL : &w->out[j];
    } else if (t->requires_grad && !(acc = staged(w, t))) {
        td_release(r);
        return -1;
    }
    if (!acc) {
        td_release(r);
        return 0;
    }
    if (w->out && !*acc && !(r = owned(r))) return -1;
    if (accumulate(acc, r) < 0) return -1;
    /* with a grad hook (DataParallel) a leaf's .grad is committed as soon as it has every
     * contribution of the pass, so that its exchange can start while backward runs on */
    if (hook && !w->out && t->grad_epoch == epoch && --t->grad_pending == 0) {
        if (settle(t, acc) < 0) return -1;
        hook(TD_HOOK_READY, t, hook_ud);
    }
    return 0;
}

/* Sets every staged leaf's .grad: .grad + staged, or the staged sum itself. All the sums are
 * made before any .grad changes, so a failure leaves them all as they were. */
static int commit(walk *w) {
    for (int j = 0; j < w->nleaf; j++) {
        td_tensor *t = w->leaf[j], *g = w->lgrad[j];
        if (!g) continue; /* settled early for a grad hook */
        w->lgrad[j] = t->grad ? td_apply2(&td_op_add, t->grad, g, NULL) : owned(g);
        if (t->grad) td_release(g);
        if (!w->lgrad[j]) return -1;
    }
    for (int j = 0; j < w->nleaf; j++) {
        if (!w->lgrad[j]) continue;
        td_release(w->leaf[j]->grad);
        w->leaf[j]->grad = w->lgrad[j];
        w->lgrad[j] = NULL;
    }
    return 0;
}

static int run_node(walk *w, td_node *n) {
    td_tensor *gin[64] = {0}, **gp = gin;
    int rc = -1;
    if (n->nin > 64 && !(gp = td_sys_calloc((size_t)n->nin, sizeof *gp)))
        return td_error("backward: out of memory");
    if (w->out)
        for (int k = 0; k < TD_MAX_OUT; k++) {
            if (!n->gacc[k]) continue;
            for (int j = 0; j < w->ninputs; j++)
                if (w->inputs[j]->grad_fn == n && w->inputs[j]->out_index == k) {
                    td_retain(n->gacc[k]);
                    if (accumulate(&w->out[j], n->gacc[k]) < 0) goto done;
                }
        }
    if (check_versions(n) < 0) goto done;
    if (td_poll_interrupt() < 0) goto done;
    if (n->op->backward(n, n->gacc, gp) < 0) goto done;
    rc = 0;
    for (int i = 0; i < n->nin; i++) {
        if (!gp[i]) continue;
        td_tensor *g = gp[i];
        gp[i] = NULL;
        if (rc == 0 && n->needs_grad[i])
            rc = deliver(w, n->in[i], n->next[i], n->next_index[i], g);
        else
            td_release(g);
    }
done:
    for (int i = 0; i < n->nin; i++) td_release(gp[i]);
    if (gp != gin) free(gp);
    for (int k = 0; k < TD_MAX_OUT; k++) {
        td_release(n->gacc[k]);
        n->gacc[k] = NULL;
    }
    return rc;
}

static td_tensor *root_grad(td_tensor *root, td_tensor *g) {
    char a[128], b[128];
    if (!g) {
        if (td_numel(root) != 1) {
            td_error("backward: a gradient can be implied only for a one-element output, got "
                     "shape %s (pass a gradient of that shape)",
                     td_shape_str(root->shape, root->ndim, a, sizeof a));
            return NULL;
        }
        return td_full(root->shape, root->ndim, root->dtype, 1);
    }
    if (g->ndim != root->ndim ||
        memcmp(g->shape, root->shape, sizeof(int64_t) * (size_t)root->ndim)) {
        td_error("backward: gradient of shape %s does not match the output's shape %s",
                 td_shape_str(g->shape, g->ndim, a, sizeof a),
                 td_shape_str(root->shape, root->ndim, b, sizeof b));
        return NULL;
    }
    td_retain(g);
    return g;
}

static int run(walk *w, td_tensor *const *roots, td_tensor *const *grads, int nroots,
               bool retain) {
    int rc = -1;
    bool prev = td_set_grad_enabled(false);
    for (int r = 0; r < nroots; r++)
        if (!roots[r]->requires_grad) {
            td_error("backward: the output does not require grad (no input of the computation "
                     "has requires_grad = true, or it ran under no_grad)");
            goto done;
        }
    if (collect(w, roots, nroots) < 0) goto done;
    for (int r = 0; r < nroots; r++) {
        td_tensor *g = root_grad(roots[r], grads ? grads[r] : NULL);
        if (!g) goto done;
        td_node *n = roots[r]->grad_fn;
        if (!n) { /* a leaf root: d leaf / d leaf */
            if (deliver(w, roots[r], NULL, 0, g) < 0) goto done;
            continue;
        }
        if (accumulate(&n->gacc[roots[r]->out_index], g) < 0) goto done;
    }
    for (int k = 0; k < w->n; k++)
        if (w->nodes[k]->pending == 0) w->ready[w->nready++] = w->nodes[k];
    while (w->nready > 0) {
        if (run_node(w, w->ready[--w->nready]) < 0) goto done;
        if (hook && !w->out) hook(TD_HOOK_NODE, NULL, hook_ud);
    }
    if (commit(w) < 0) goto done;
    /* saved data goes only now: an interrupted pass leaves the graph whole, to run again */
    for (int k = 0; !retain && k < w->n; k++) node_free_saved(w->nodes[k]);
    rc = 0;
done:
    if (hook && !w->out) hook(TD_HOOK_END, NULL, hook_ud);
    for (int j = 0; j < w->nleaf; j++) {
        td_release(w->leaf[j]);
        td_release(w->lgrad[j]);
    }
    for (int k = 0; k < w->n; k++) {
        td_node *n = w->nodes[k];
        for (int j = 0; j < TD_MAX_OUT; j++) {
            td_release(n->gacc[j]);
            n->gacc[j] = NULL;
        }
        td_node_release(n);
    }
    keep_nodes = w->nodes;
    keep_ready = w->ready;
    keep_cap = w->cap;
    free(w->leaf);
    free(w->lgrad);
    td_set_grad_enabled(prev);
    return rc;
}

int td_backward(td_tensor *const *roots, td_tensor *const *grads, int nroots, bool retain_graph) {
    walk w = {.nodes = keep_nodes, .ready = keep_ready, .cap = keep_cap};
    return run(&w, roots, grads, nroots, retain_graph);
}

int td_grad(td_tensor *const *roots, td_tensor *const *grads, int nroots, td_tensor *const *inputs,
            int ninputs, td_tensor **out, bool retain_graph) {
    for (int j = 0; j < ninputs; j++) {
        out[j] = NULL;
        if (!inputs[j]->requires_grad)
            return td_error("autograd.grad: input %d does not require grad", j + 1);
    }
    walk w = {.nodes = keep_nodes, .ready = keep_ready, .cap = keep_cap, .inputs = inputs,
              .out = out, .ninputs = ninputs};
    if (run(&w, roots, grads, nroots, retain_graph) == 0) {
        /* an input given twice ({x, x}): a leaf's gradient went to its first place only */
        for (int j = 0; j < ninputs; j++)
            for (int i = 0; i < j && !out[j]; i++)
                if (inputs[i] == inputs[j] && out[i]) {
                    td_retain(out[i]);
                    out[j] = out[i];
                }
        return 0;
    }
    for (int j = 0; j < ninputs; j++) {
        td_release(out[j]);
        out[j] = NULL;
    }
    return -1;
}
