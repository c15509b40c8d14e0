/* tensor/apply.c: td_run, the one path every op takes (shape, allocate, forward, record), and
 * the registry of ops.def rows. */
#include <stdio.h>
#include <string.h>

#include "tide.h"

const td_op_entry td_ops[] = {
#define OP(lname, desc, sig) {lname, &desc, sig},
#include "ops/ops.def"
#undef OP
};
const size_t td_nops = sizeof td_ops / sizeof td_ops[0];

static bool grad_on = true;

bool td_grad_enabled(void) {
    return grad_on;
}

bool td_set_grad_enabled(bool on) {
    bool prev = grad_on;
    grad_on = on;
    return prev;
}


static bool same_shape(const td_tensor *t, const td_meta *m) {
    return t->ndim == m->ndim && !memcmp(t->shape, m->shape, sizeof(int64_t) * (size_t)m->ndim);
}

/* "add_" for add, "copy_" for copy_ (whose descriptor is named in place already) */
static const char *inplace_name(const td_op *op, char *buf, size_t n) {
    size_t k = strlen(op->name);
    snprintf(buf, n, k && op->name[k - 1] == '_' ? "%s" : "%s_", op->name);
    return buf;
}

static int preset_ok(const td_op *op, const td_tensor *t, const td_meta *m) {
    char a[128], b[128], nm[64];
    if (!same_shape(t, m))
        return td_error("%s: the result has shape %s but the tensor written to has shape %s",
                        inplace_name(op, nm, sizeof nm), td_shape_str(m->shape, m->ndim, a, sizeof a),
                        td_shape_str(t->shape, t->ndim, b, sizeof b));
    if (t->dtype != m->dtype)
        return td_error("%s: result dtype %s cannot be written into a %s tensor",
                        inplace_name(op, nm, sizeof nm),
                        td_dtype_name(m->dtype), td_dtype_name(t->dtype));
    return 0;
}

/* Writing in place into a tensor that autograd tracks: a leaf that requires grad is refused
 * (PyTorch's rule; optimizers write under no_grad), a view of one too (its base's history would
 * be wrong). Otherwise the target's history moves to an alias that the new node takes as its
 * input, so t:add_(x) records AddBackward(old t, x) and t continues from there. */
static int inplace_check(const td_op *op, const td_tensor *t) {
    char nm[64];
    if (t->requires_grad && !t->grad_fn)
        return td_error("%s: a leaf tensor that requires grad cannot be modified in place "
                        "(use tide.no_grad, or detach() it)", inplace_name(op, nm, sizeof nm));
    if (t->grad_fn && (t->grad_fn->op->flags & TD_VIEW))
        return td_error("%s: a view of a tensor that requires grad cannot be modified in place "
                        "(clone() it first)", inplace_name(op, nm, sizeof nm));
    return 0;
}

static td_tensor *detach_history(td_tensor *t) {
    td_tensor *old = td_view_of(t, t->shape, t->stride, t->ndim, t->offset);
    if (!old) return NULL;
    old->grad_fn = t->grad_fn;
    old->out_index = t->out_index;
    old->requires_grad = t->requires_grad;
    t->grad_fn = NULL;
    return old;
}

/* An in-place op under autograd whose backward reads its inputs (mul_, div_, clamp_, pow_...)
 * overwrites a value it will need: as PyTorch does, it saves a copy of the original taken before
 * the forward into *keep (left NULL when no input is the output); -1 + error. */
static int saved_original(td_tensor *const *in, int nin, td_tensor *out, td_tensor **keep) {
    bool reads_out = false;
    for (int i = 0; i < nin; i++) reads_out = reads_out || in[i] == out;
    if (!reads_out) return 0;
    td_tensor *c = td_empty(out->shape, out->ndim, out->dtype);
    if (!c) return -1;
    if (td_copy_into(c, out) < 0) {
        td_release(c);
        return -1;
    }
    *keep = c;
    return 0;
}

/* The fast path's test: op has a flat loop for in[0]'s dtype, and every input is contiguous with
 * in[0]'s shape and dtype, under TD_PAR_GRAIN elements (bigger ones go to the threaded path).
 * The loop, or NULL; *numel gets the element count. */
static td_loop flat_loop(const td_op *op, td_tensor *const *in, int nin, int64_t *numel) {
    const td_tensor *a = in[0];
    td_loop f = op->flat ? op->flat[a->dtype] : NULL;
    if (!f) return NULL;
    for (int k = 0; k < nin; k++) {
        const td_tensor *t = in[k];
        if (t->dtype != a->dtype || t->ndim != a->ndim) return NULL;
        int64_t m = 1;
        for (int i = t->ndim - 1; i >= 0; i--) {
            if (t->shape[i] != a->shape[i] || (t->stride[i] != m && t->shape[i] != 1)) return NULL;
            m *= t->shape[i];
        }
        *numel = m;
    }
    return *numel < TD_PAR_GRAIN ? f : NULL;
}

/* shape() + forward() of an elementwise row in one step: out has in[0]'s shape and dtype */
static int run_flat(td_node *n, td_loop f, int64_t numel) {
    td_tensor *const *in = n->in;
    td_meta *m = &n->meta[0];
    m->ndim = in[0]->ndim;
    m->dtype = in[0]->dtype;
    for (int i = 0; i < m->ndim; i++) m->shape[i] = in[0]->shape[i];
    if (!(n->out[0] = td_empty(m->shape, m->ndim, m->dtype))) return -1;
    char *p[TD_ITER_MAX];
    int64_t s[TD_ITER_MAX], es = td_dtype_sizes[m->dtype];
    p[0] = n->out[0]->storage->data, s[0] = es;
    for (int k = 0; k < n->nin; k++)
        p[k + 1] = (char *)in[k]->storage->data + in[k]->offset * es, s[k + 1] = es;
    if (numel) f(p, s, numel, &n->args);
    return 0;
}

int td_run(const td_op *op, td_tensor *const *in, int nin, const td_args *a, td_tensor **out) {
    static const td_args noargs;
    td_node n; /* only the forward fields: td_record sets the autograd ones (saves ~100 instr) */
    n.op = op;
    n.args = a ? *a : noargs;
    n.nin = nin;
    n.in = (td_tensor **)in;
    n.nout = 1;
    n.ctx = NULL;
    n.out[0] = n.out[1] = NULL;
    n.saved_out[0] = n.saved_out[1] = NULL; /* pointers a forward might test stay defined */
    n.needs_grad = NULL;
    n.in_version = NULL;
    n.next = NULL;
    td_tensor *local[TD_ITER_MAX], *old = NULL, *keep = NULL, *copies[TD_ITER_MAX] = {NULL};
    td_tensor *safe[TD_ITER_MAX]; /* in, with copies of the inputs that overlap out[0] */
    if (!(op->flags & TD_VARIN) && nin != op->nin)
        return td_error("%s: expected %d inputs, got %d", op->name, op->nin, nin);
    int64_t numel = 0;
    td_loop fl = !out[0] && nin == op->nin && nin < TD_ITER_MAX ? flat_loop(op, in, nin, &numel)
                                                                 : NULL;
    if (!fl && op->shape(&n) < 0) return -1;
    bool rec = grad_on && !(op->flags & TD_NOGRAD);
    if (rec) {
        bool any = false;
        for (int i = 0; i < nin && !any; i++) any = in[i] && in[i]->requires_grad;
        rec = any;
    }
    bool preset = out[0] != NULL;
    int k = 0;
    if (preset) {
        char nm[64];
        if (preset_ok(op, out[0], &n.meta[0]) < 0) return -1;
        if (grad_on && (rec || out[0]->requires_grad) && inplace_check(op, out[0]) < 0)
            return -1;
        if (nin > TD_ITER_MAX)
            return td_error("%s: at most %d inputs in place", op->name, TD_ITER_MAX);
        if (td_inplace_inputs(inplace_name(op, nm, sizeof nm), out[0], in, nin, copies) < 0)
            return -1;
        for (int i = 0; i < nin; i++) safe[i] = copies[i] ? copies[i] : in[i];
        in = safe;
        n.in = safe;
        n.out[0] = out[0];
        k = 1;
        if (rec && !(op->flags & TD_GRAD_NOREAD) && saved_original(in, nin, out[0], &keep) < 0)
            return -1;
    }
    if (fl) {
        if (run_flat(&n, fl, numel) < 0) goto alloc_fail;
    } else {
        for (; k < n.nout; k++) {
            td_meta *m = &n.meta[k];
            n.out[k] = (op->flags & TD_VIEW)
                           ? td_view_of(in[0], m->shape, m->stride, m->ndim, m->offset)
                           : td_empty(m->shape, m->ndim, m->dtype);
            if (!n.out[k]) goto alloc_fail;
        }
        if (op->forward(&n) < 0) goto fail;
    }
    if (rec && preset) {
        if (!(old = detach_history(out[0]))) goto fail;
        if (keep) { /* backward reads the values the op overwrote: it gets the copy instead */
            keep->grad_fn = old->grad_fn, keep->out_index = old->out_index;
            keep->requires_grad = old->requires_grad;
            old->grad_fn = NULL;
            td_release(old);
            old = keep, keep = NULL;
        }
        for (int i = 0; i < nin; i++) local[i] = in[i] == out[0] ? old : in[i];
        n.in = local;
    }
    if (rec && td_record(&n) < 0) goto fail;
    if (old) td_release(old);
    for (int i = 0; preset && i < nin; i++) td_release(copies[i]);
    if (preset) { /* after td_record saved the input versions: the old values are gone */
        td_bump_version(out[0]);
        td_node *h = out[0]->grad_fn;
        if (rec && h && h->saved_out[0]) /* but the saved output is this new value */
            h->out_version[0] = out[0]->storage->version;
    }
    if (n.ctx) td_free(n.ctx);
    if (!preset) out[0] = n.out[0]; /* not a loop: gcc made that one a memcpy call */
    if (n.nout > 1) out[1] = n.out[1];
    return n.nout;
alloc_fail:;
    char msg[512];
    snprintf(msg, sizeof msg, "%s", td_errmsg());
    td_error("%s: %s", op->name, msg); /* the allocator does not know the op */
fail:
    if (keep) td_release(keep);
    if (old) { /* give the history back */
        out[0]->grad_fn = old->grad_fn;
        old->grad_fn = NULL;
        td_release(old);
    }
    td_free(n.ctx);
    for (k = preset; k < n.nout; k++) td_release(n.out[k]);
    for (int i = 0; preset && i < nin; i++) td_release(copies[i]);
    return -1;
}

td_tensor *td_apply(const td_op *op, td_tensor *const *in, int nin, const td_args *a) {
    td_tensor *out[TD_MAX_OUT] = {0};
    int k = td_run(op, in, nin, a, out);
    if (k < 0) return NULL;
    for (int i = 1; i < k; i++) td_release(out[i]);
    return out[0];
}

td_tensor *td_apply1(const td_op *op, td_tensor *x, const td_args *a) {
    return td_apply(op, &x, 1, a);
}

td_tensor *td_apply2(const td_op *op, td_tensor *x, td_tensor *y, const td_args *a) {
    td_tensor *in[2] = {x, y};
    return td_apply(op, in, 2, a);
}

int td_apply_(const td_op *op, td_tensor *const *in, int nin, const td_args *a) {
    td_tensor *out[TD_MAX_OUT] = {in[0]};
    int k = td_run(op, in, nin, a, out);
    for (int i = 1; i < k; i++) td_release(out[i]);
    return k < 0 ? -1 : 0;
}
