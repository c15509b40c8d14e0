/* tide.h: the public C API of tide's tensor library, and its manual. No Lua anywhere here.
 *
 * Conventions
 * - Dims and scalar positions in td_args are 0-based in C (vm/ converts Lua's 1-based ones);
 *   shapes, strides and offsets are counted in elements. Index *tensors* (int64 values that
 *   name positions: gather/scatter/index inputs, argmax/max/min/sort outputs, class targets)
 *   hold 1-based values in C too, so they pass between Lua and C unchanged (Torch7's rule).
 * - Every fallible function returns NULL or -1 after td_error() filled a thread-local message
 *   (td_errmsg()); nothing aborts or exits. Contracts are stated on each declaration.
 * - Ownership: td_storage, td_tensor and td_node are reference counted. A function returning a
 *   td_tensor * gives the caller one reference ("new ref"); arguments are borrowed.
 */
#ifndef TIDE_H
#define TIDE_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TD_MAX_DIMS  8
#define TD_MAX_OUT   2 /* outputs of one op (max with a dim: values, indices) */
#define TD_MAX_SAVED 4

/* ---- dtypes ------------------------------------------------------------------------------ */
/* New dtypes go at the end: tables indexed by dtype list them in this order. */
typedef enum td_dtype {
    TD_FLOAT32, TD_FLOAT64, TD_INT64, TD_UINT8, TD_BOOL, TD_INT8, TD_NDTYPES
} td_dtype;

const char *td_dtype_name(td_dtype t);              /* "float32" ... */
int td_dtype_parse(const char *name, td_dtype *t);  /* 0, or -1 + error naming the choices */
extern const uint8_t td_dtype_sizes[TD_NDTYPES];    /* bytes per element */
static inline size_t td_dtype_size(td_dtype t) {
    return td_dtype_sizes[t];
}
bool td_dtype_is_float(td_dtype t);
/* bool < uint8, int8 < int64 < float32 < float64; uint8 with int8 gives int64 (no int16) */
td_dtype td_dtype_promote(td_dtype a, td_dtype b);

/* ---- errors, interruption, memory --------------------------------------------------------- */
int td_error(const char *fmt, ...) __attribute__((format(printf, 1, 2))); /* sets msg, returns -1 */
const char *td_errmsg(void);                 /* the last error of this thread */
int td_error_in(const char *fn);             /* prefixes the message with "fn: " once; -1 */
char *td_shape_str(const int64_t *shape, int ndim, char *buf, size_t n); /* "2x3", "scalar" */

extern volatile sig_atomic_t td_interrupted; /* set by vm/'s SIGINT handler */
int td_poll_interrupt(void);                 /* -1 + "interrupted!" once the flag is set */

/* tensor/alloc.c: size-classed buffers with a cache of freed ones, main thread only */
void *td_malloc(size_t n);   /* 64-byte aligned; NULL + error on failure or TIDE_FAIL_ALLOC=N */
/* The one failure point: TIDE_FAIL_ALLOC=N, or td_fail_alloc(N) from a test, makes the Nth
 * allocation request from then on fail (0 turns it off). Every allocation in tensor/ asks it:
 * td_buf_alloc (cache hits too), tensor, storage and node structs, and the plain mallocs, which
 * go through td_sys_malloc/calloc/realloc (no error message: the caller writes one). */
void td_fail_alloc(long n);
bool td_alloc_fails(void);
void *td_sys_malloc(size_t n);
void *td_sys_calloc(size_t n, size_t size);
void *td_sys_realloc(void *p, size_t n);
void td_free(void *p);
void *td_buf_alloc(size_t n);         /* the same without the size word: free with the size */
void td_buf_free(void *p, size_t n);  /* n as given to td_buf_alloc */
void td_buf_trim(void);   /* releases buffers unused since the last trim (at most once a second) */
void td_buf_release(void); /* returns every cached buffer to the system */
size_t td_buf_cached(void); /* bytes waiting in the cache */
uint64_t td_alloc_total(void); /* bytes of storage created so far (monotonic) */
uint64_t td_live_bytes(void);  /* bytes of storage alive now: vm/ collects garbage by it */

/* ---- storage: a reference-counted, 64-byte aligned buffer ---------------------------------- */
typedef struct td_storage {
    void *data;       /* 64-byte aligned; NULL when nbytes == 0 */
    size_t nbytes;    /* capacity */
    int64_t refcount;
    uint64_t version; /* bumped by every in-place write; autograd compares it */
} td_storage;

td_storage *td_storage_new(size_t nbytes); /* new ref, uninitialised bytes; NULL + error */
void td_storage_retain(td_storage *s);
void td_storage_release(td_storage *s);    /* frees (to the buffer cache) at zero */

/* ---- tensors: a strided view of a storage ------------------------------------------------- */
struct td_node;
typedef struct td_tensor {
    td_storage *storage;           /* one ref */
    int64_t offset;                /* elements from storage->data */
    int64_t shape[TD_MAX_DIMS];    /* elements */
    int64_t stride[TD_MAX_DIMS];   /* elements; 0 for expanded dims */
    int ndim;                      /* 0 = scalar (one element) */
    td_dtype dtype;
    int64_t refcount;
    /* autograd (tensor/autograd.c) */
    bool requires_grad;            /* a leaf that wants .grad, or an op output that needs backward */
    struct td_tensor *grad;        /* owned, NULL until backward reached this leaf */
    struct td_node *grad_fn;       /* owned ref; NULL for leaves */
    int out_index;                 /* which output of grad_fn this is */
    int grad_pending;              /* with a grad hook: contributions still due in pass grad_epoch */
    uint64_t grad_epoch;
} td_tensor;

/* Creation. All return a new ref or NULL + error (negative or absurd sizes included). */
td_tensor *td_empty(const int64_t *shape, int ndim, td_dtype t);
td_tensor *td_zeros(const int64_t *shape, int ndim, td_dtype t);
td_tensor *td_full(const int64_t *shape, int ndim, td_dtype t, double v);
td_tensor *td_scalar(double v, td_dtype t);                     /* 0-dim */
td_tensor *td_from_data(const void *src, const int64_t *shape, int ndim, td_dtype t); /* copies */
td_tensor *td_view_of(td_tensor *base, const int64_t *shape, const int64_t *stride, int ndim,
                      int64_t offset); /* new tensor sharing base's storage; no checks, no grad */
void td_retain(td_tensor *t);
void td_release(td_tensor *t);         /* NULL-safe */

int64_t td_numel(const td_tensor *t);
bool td_is_contiguous(const td_tensor *t);
void *td_data(const td_tensor *t);     /* address of element 0 (storage data + offset) */
double td_get(const td_tensor *t, const int64_t *idx);        /* no bounds check */
void td_set(td_tensor *t, const int64_t *idx, double v);      /* no bounds check */
double td_item(const td_tensor *t);                           /* first element, as double */
int td_normdim(const char *fn, int64_t *d, int ndim);         /* -1..-n -> n-1..0; -1 + error */
int td_copy_into(td_tensor *dst, const td_tensor *src);       /* broadcasts, converts dtype */
td_tensor *td_contiguous(td_tensor *t); /* new ref: t itself when already contiguous */
td_tensor *td_to_dtype(td_tensor *t, td_dtype dt);            /* new ref, copy (or t itself) */

/* ---- conversions (tensor/convert.c): the one rule for values entering a dtype ---------------
 * A number from outside (a Lua integer or float: tide.tensor, full, fill_, t[k] = v, masked_fill's
 * value) must fit, PyTorch's checked rule: int64 takes every integer, uint8 0..255 (and -255..-1,
 * which wrap: -1 is 255, as in PyTorch); a float goes into an integer dtype truncated toward
 * zero when its integer part fits the dtype, else (NaN, inf, 1e30, 256.0) it is an error;
 * float32 takes any number but a finite one beyond its range; bool takes every number (v ~= 0,
 * NaN is true). Integers are never rounded through a double.
 * Tensor to tensor (to, copy_, promotion): integers into a narrower integer dtype wrap (int64
 * 300 is uint8 44, PyTorch's result); floats into an integer dtype truncate toward zero and must
 * fit as above, else the copy is refused before anything is written (PyTorch's result there is
 * undefined: INT64_MIN for NaN); float64 beyond float32's range becomes inf. A new dtype adds a
 * row to convert.c's tables and inherits all of this. */
typedef struct td_num {
    double f;     /* the value when !is_int */
    int64_t i;    /* the value when is_int */
    bool is_int;
} td_num;
int td_num_check(const char *fn, td_num v, td_dtype dt); /* 0, or -1 + "fn: value 256 does not
                                                            fit dtype uint8 (0..255 ...)" */
void td_num_store(td_num v, td_dtype dt, void *dst); /* one element; defined for any value
                                                        (floats saturate, NaN -> 0) */
td_tensor *td_full_num(const int64_t *shape, int ndim, td_dtype dt, td_num v); /* no check */
int64_t td_f2i(double v); /* truncation, saturating at the int64 range, NaN -> 0 */
void td_bump_version(td_tensor *t);

/* Memory overlap (tensor/overlap.c), the one check of every in-place write. */
typedef enum td_overlap { TD_OVERLAP_NONE, TD_OVERLAP_FULL, TD_OVERLAP_PARTIAL } td_overlap;
/* FULL: a and b are the same elements (same storage, offset, dtype, shape and strides);
 * PARTIAL: their bytes may intersect otherwise (a conservative answer); NONE: disjoint. */
td_overlap td_overlap_of(const td_tensor *a, const td_tensor *b);
bool td_internal_overlap(const td_tensor *t); /* two of t's elements share memory */
/* 0, or -1 + "fn: the tensor written to ... share memory" when t has internal overlap. */
int td_check_writable(const char *fn, const td_tensor *t);
/* The in-place writers' check: out must be writable; local[i] gets a new ref to a copy
 * (autograd-recorded, like clone()) of each in[i] that partially overlaps out, else NULL.
 * 0, or -1 + error with nothing to release. */
int td_inplace_inputs(const char *fn, const td_tensor *out, td_tensor *const *in, int nin,
                      td_tensor **local);

/* ---- elementwise iteration (tensor/iter.c) -------------------------------------------------
 * An iterator broadcasts up to TD_ITER_MAX operands (operand 0 is the output), coalesces
 * contiguous dims, and calls a 1-D loop with byte strides. Kernels vectorise when every stride
 * equals the item size (checked inside the loop function) and split across threads above
 * TD_PAR_GRAIN elements. */
#define TD_ITER_MAX 4
#define TD_PAR_GRAIN 32768
typedef void (*td_loop)(char **p, const int64_t *s, int64_t n, const void *ctx);
int td_broadcast_shape(const char *fn, td_tensor *const *ts, int n, int64_t *shape, int *ndim);
int td_foreach(td_tensor *const *ops, int nops, td_loop loop, const void *ctx);

/* ---- ops ------------------------------------------------------------------------------------
 * An op is a descriptor (td_op) registered by one row of tensor/ops/ops.def; td_apply is the one
 * path that runs it: shape() fills node->meta, apply allocates the outputs (or makes views when
 * op->flags has TD_VIEW), forward() computes, and when grad mode is on and an input requires
 * grad the node is kept on the output for backward(). */
typedef struct td_args {
    int64_t dim, dim2;              /* 0-based dims (vm/ normalises) */
    int64_t start, len, index, step;
    int64_t sizes[TD_MAX_DIMS];     /* a shape or a dim list (view, permute, expand) */
    int nsizes;
    double a, b;                    /* scalars: fill value, alpha/beta, lo/hi, p, exponent */
    bool keepdim, flag;             /* flag: op-specific (unbiased, has lo, ...) */
    bool has_a, has_b;
    td_dtype dtype;
    double c;                       /* a third scalar: eps of the norms, label smoothing */
    td_num lo, hi;                  /* clamp: a, b again when given as integers (exact) */
    int mode;                       /* op-specific choice: a loss's TD_REDUCE_* */
    td_tensor *aux[2];              /* borrowed side-effect targets, forward only (batch_norm's
                                       running mean/var); backward must never read them */
} td_args;
enum { TD_REDUCE_MEAN, TD_REDUCE_SUM, TD_REDUCE_NONE, TD_REDUCE_BATCHMEAN }; /* mean = 0 */

typedef struct td_meta {            /* what td_apply allocates for one output */
    int64_t shape[TD_MAX_DIMS], stride[TD_MAX_DIMS]; /* stride/offset: TD_VIEW ops only */
    int ndim;
    int64_t offset;
    td_dtype dtype;
} td_meta;

typedef struct td_node {
    const struct td_op *op;
    td_args args;
    int nin, nout;
    td_tensor **in;                 /* borrowed during forward; owned refs once recorded */
    td_tensor *out[TD_MAX_OUT];     /* borrowed: an output owns its node, never the reverse */
    td_meta meta[TD_MAX_OUT];
    void *ctx;                      /* op-private scratch; freed with td_free by apply/engine */
    /* autograd (tensor/autograd.c) */
    int64_t refcount;
    td_tensor *saved_out[TD_MAX_OUT]; /* plain aliases of outputs (no grad_fn: no cycle) */
    uint64_t out_version[TD_MAX_OUT];
    uint64_t *in_version;           /* [nin] storage versions at record time */
    struct td_node **next;          /* [nin] in[i]'s grad_fn when recorded (owned): the edge,
                                       fixed even if in[i] is later modified in place */
    int *next_index;                /* [nin] which output of next[i] in[i] was */
    bool *needs_grad;               /* [nin] whether backward must produce gin[i] */
    td_tensor *gacc[TD_MAX_OUT];    /* gradients of the outputs, summed during backward */
    int pending;                    /* consumers not yet run in the current backward */
    uint64_t epoch;                 /* the backward pass that last visited this node */
    bool released;                  /* backward ran without retain_graph: saved data freed */
} td_node;

enum {
    TD_VIEW = 1,      /* outputs share in[0]'s storage: shape() also sets stride and offset */
    TD_SAVE_OUT = 2,  /* backward reads the outputs */
    TD_NOGRAD = 4,    /* not differentiable (comparisons, argmax, integer results) */
    TD_VARIN = 8,     /* any number of inputs (cat, stack) */
    TD_GRAD_NOREAD = 16, /* backward reads no input values: in-place writes to inputs are fine */
    TD_INPLACE = 32,  /* vm/ also registers an in-place twin "name_" (td_apply_) */
    TD_INPLACE_ONLY = 64, /* vm/ registers only "name_" (copy_, fill_) */
};

/* backward: given gout[k] (gradient of out[k], NULL when unused), set gin[i] to a new ref
 * holding the gradient of in[i] for every i with node->needs_grad[i]; gin may have the
 * broadcast shape of the output, autograd reduces it to the input's shape. */
typedef struct td_op {
    const char *name;
    int nin, flags;
    const char *doc;
    int (*shape)(td_node *n);       /* validates, fills n->meta and n->nout; -1 + error */
    int (*forward)(td_node *n);     /* computes n->out from n->in; -1 + error (interrupts) */
    int (*backward)(td_node *n, td_tensor *const *gout, td_tensor **gin);
    /* Elementwise rows only: flat[dt] computes the forward over contiguous operands {out, in...}
     * that all have in[0]'s shape and dtype dt, giving dt, with no check needed first (NULL where
     * the row must convert or check). td_run then skips shape() and forward() below
     * TD_PAR_GRAIN elements: the whole cost of a small op is its overhead. */
    const td_loop *flat;
    void (*release)(td_node *n);    /* frees what n->ctx refers to before ctx itself (hook.c) */
} td_op;

/* Runs op; out[] receives new refs, out[0] may be preset (in-place: out[0] = in[0], or an
 * output buffer of the right shape). Returns the number of outputs or -1 + error. */
int td_run(const td_op *op, td_tensor *const *in, int nin, const td_args *a, td_tensor **out);
/* The common single-output form: new ref or NULL + error. */
td_tensor *td_apply(const td_op *op, td_tensor *const *in, int nin, const td_args *a);
td_tensor *td_apply1(const td_op *op, td_tensor *x, const td_args *a);
td_tensor *td_apply2(const td_op *op, td_tensor *x, td_tensor *y, const td_args *a);
/* In place: writes op(t, ...) into t, bumps its version; 0 or -1 + error. */
int td_apply_(const td_op *op, td_tensor *const *in, int nin, const td_args *a);

/* td_hook(x, fn, release, ud): a view of x (which autograd must track) whose backward calls
 * fn(ud, g, &r) with the gradient g of the view: fn sets r to a new ref replacing g (same shape
 * and dtype), or leaves it NULL to pass g on; -1 + error stops the backward. release(ud) runs
 * once when the graph node is freed. New ref or NULL + error. */
typedef int (*td_hook_fn)(void *ud, td_tensor *g, td_tensor **r);
typedef void (*td_hook_free)(void *ud);
extern const td_op td_op_hook;
td_tensor *td_hook(td_tensor *x, td_hook_fn fn, td_hook_free release, void *ud);

/* The registry: every op Lua sees, in ops.def order. */
typedef enum td_sig {
#define SIG(s) s,
#include "ops/sig.def"
#undef SIG
    TD_NSIG
} td_sig;
typedef struct td_op_entry {
    const char *name;  /* Lua name */
    const td_op *op;
    td_sig sig;        /* argument pattern vm/ checks */
} td_op_entry;
extern const td_op_entry td_ops[];
extern const size_t td_nops;

#define OP(lname, desc, sig) extern const td_op desc;
#include "ops/ops.def"
#undef OP

/* Views (shape.c) take 0-based dims, start and index in td_args; narrow also takes args.step
 * (0 or 1: every position). td_op_assign (index.c, not a Lua row) is t[key] = v, run in place
 * with td_apply_ on in = {t, v, key}: key is a bool mask broadcastable to t's shape (v is then
 * one value or one per true position, in row-major order), or an int64 Kx5 tensor of steps
 * applied in order, each row {TD_STEP_SELECT, dim, index} or {TD_STEP_NARROW, dim, start, len,
 * step} (0-based), v broadcast to the part they name. Differentiable in t and v. */
enum { TD_STEP_SELECT = 1, TD_STEP_NARROW = 2 };
extern const td_op td_op_assign;

/* nn ops (norm.c, embedding.c, loss.c, loss_pointwise.c). layer_norm and batch_norm take packed
 * inputs {x, weight if args.has_a, bias if args.has_b}, eps in args.c; layer_norm's
 * normalized_shape is args.sizes/nsizes. batch_norm: args.flag = training, args.b = momentum,
 * aux[0], aux[1] = running mean and variance (both or neither; required in eval), updated in
 * place when training and never differentiated. embedding: in = {idx (int64, 1-based), weight}.
 * Losses: in = {input, target} (+ pos_weight for ..._with_logits), args.mode = TD_REDUCE_*;
 * cross_entropy/nll_loss: args.c = label smoothing, args.flag + args.index = ignore_index (a
 * 1-based class); smooth_l1_loss: args.a = beta; kl_div: args.flag = log_target. */

/* ---- autograd (tensor/autograd.c) --------------------------------------------------------- */
bool td_grad_enabled(void);
bool td_set_grad_enabled(bool on);  /* returns the previous mode */
int td_record(td_node *n);          /* td_run's hook: keeps a heap copy of n on its outputs */
void td_node_retain(td_node *n);
void td_node_release(td_node *n);
char *td_grad_fn_name(const td_node *n, char *buf, size_t len); /* "MulBackward" */
/* Accumulates d(roots)/d(leaves) into the leaves' .grad. grads[i] may be NULL for a one-element
 * root (ones). With retain_graph false, frees each node's saved tensors once it ran. */
int td_backward(td_tensor *const *roots, td_tensor *const *grads, int nroots, bool retain_graph);
/* Like td_backward, but returns d(roots)/d(inputs[j]) as new refs in out[j] (NULL where the
 * input does not influence the roots) and leaves .grad alone. */
int td_grad(td_tensor *const *roots, td_tensor *const *grads, int nroots, td_tensor *const *inputs,
            int ninputs, td_tensor **out, bool retain_graph);
/* A grad hook sees td_backward's progress (distributed data parallel starts reducing a leaf's
 * gradient while the rest of backward runs): TD_HOOK_READY once a leaf's .grad holds every
 * contribution of the pass, TD_HOOK_NODE after each node ran (leaf NULL), TD_HOOK_END when the
 * pass ended, failed or not (leaf NULL). One hook at a time; NULL removes it. Without a hook,
 * backward does no counting. td_grad never calls it. */
typedef enum td_hook_event { TD_HOOK_READY, TD_HOOK_NODE, TD_HOOK_END } td_hook_event;
typedef void (*td_grad_hook)(td_hook_event ev, td_tensor *leaf, void *ud);
void td_set_grad_hook(td_grad_hook fn, void *ud);
/* Sums g over its broadcast dims down to shape: a new ref (g itself when shapes agree). */
td_tensor *td_sum_to(td_tensor *g, const int64_t *shape, int ndim);

/* ---- random (tensor/random.c): one seeded counter-based generator (Philox-4x32-10) -------- */
void td_manual_seed(uint64_t seed);
uint64_t td_seed(void);
void td_rng_get_state(uint64_t st[2]);       /* seed, counter: saved in checkpoints */
void td_rng_set_state(const uint64_t st[2]);
/* Fills draw in element order (row-major over t's shape, any strides), write t in place and
 * bump its version; the result depends on the seed and the fills before it, never on the
 * thread count. -1 + error (wrong dtype, bad range, interrupt) leaves t partly written. */
int td_fill_uniform(td_tensor *t, double lo, double hi); /* float dtypes, [lo, hi) */
int td_fill_normal(td_tensor *t, double mean, double std); /* float dtypes, std >= 0 */
int td_fill_randint(td_tensor *t, int64_t lo, int64_t hi); /* [lo, hi] inclusive, any dtype */
int td_fill_bernoulli(td_tensor *t, double p); /* 1 with probability p in [0, 1], else 0 */
td_tensor *td_randperm(int64_t n);            /* int64, a permutation of 1..n */
/* The same from a private stream keyed by `key` alone: a function of (n, key), leaving the
 * global generator untouched (data loaders shuffle with it). */
td_tensor *td_randperm_seeded(int64_t n, uint64_t key);

/* ---- IDX files (tensor/io/idx.c): MNIST's format, plain or gzipped ------------------------
 * uint8 (0x08) gives uint8; int8, int16, int32 (0x09, 0x0B, 0x0C) give int64; float32 (0x0D)
 * and float64 (0x0E) keep their type; the shape is the file's (1..8 dims). Everything is
 * checked before use: magic, type, ndims, size overflow, the exact data length (truncated or
 * trailing bytes are refused); gzip data (1f 8b) is inflated no further than the header says.
 * New ref, or NULL + an error naming `name` (or the path) and the expected and actual sizes. */
td_tensor *td_idx_parse(const void *buf, size_t n, const char *name); /* name may be NULL */
td_tensor *td_idx_read(const char *path);

/* ---- optimizers (tensor/optim.c): one fused in-place update per parameter ------------------
 * PyTorch 1.13's formulas: each reads g, writes p and its state buffers in one pass, bumps
 * their versions and records nothing for autograd. p is float32 or float64; g has p's shape
 * (converted to p's dtype when it differs); buffers have p's dtype and shape, are contiguous and
 * alias neither p nor g. Optional buffers are NULL when unused. 0, or -1 + error with nothing
 * written. */
typedef struct td_optim_hp {
    double lr, weight_decay, eps;
    double momentum, dampening; /* SGD; RMSprop's momentum */
    double beta1, beta2;        /* Adam, AdamW */
    double alpha;               /* RMSprop's smoothing constant */
    double lr_decay;            /* Adagrad */
    int64_t step;               /* this step's number, 1 on the first (Adam, Adagrad) */
    bool nesterov, maximize;
    bool decoupled;             /* AdamW: p *= 1 - lr*weight_decay instead of g += wd*p */
    bool init_buf;              /* SGD: the buffer's first step (it becomes the gradient) */
} td_optim_hp;
int td_sgd_step(td_tensor *p, td_tensor *g, td_tensor *buf, const td_optim_hp *h);
int td_adam_step(td_tensor *p, td_tensor *g, td_tensor *exp_avg, td_tensor *exp_avg_sq,
                 td_tensor *max_exp_avg_sq, const td_optim_hp *h);
int td_rmsprop_step(td_tensor *p, td_tensor *g, td_tensor *square_avg, td_tensor *grad_avg,
                    td_tensor *momentum_buf, const td_optim_hp *h);
int td_adagrad_step(td_tensor *p, td_tensor *g, td_tensor *sum, const td_optim_hp *h);

/* ---- files (tensor/io/): whole-file reads, atomic writes, safetensors, .npy ---------------
 * Readers validate every header field against the buffer or file size before trusting a byte
 * and never allocate from an unchecked size; messages name the format, the file and the problem
 * ("safetensors: m.st: tensor 'w': data_offsets [0, 12] do not match shape 2x3 F32 (24 bytes)").
 * The *_parse forms read from memory (the fuzz targets call them), `what` naming the source in
 * messages; the *_load forms read a file with pread, straight into the tensors' storage.
 * Writers go through td_write_atomic: a failure (or a crash) leaves the previous file whole. */
/* Reads all of path: *buf gets td_malloc'd bytes (free with td_free) followed by a NUL that
 * *len does not count. 0, or -1 + error naming path; nothing to free on failure. */
int td_read_file(const char *path, void **buf, size_t *len);
typedef struct td_iov {
    const void *data;
    size_t len;
} td_iov;
/* Writes the parts, in order, to a new temporary file beside path ("path.tmp-" and 6 random
 * characters, same filesystem), fsyncs it, renames it over path and fsyncs the directory. 0, or -1 + error: path untouched and the
 * temporary removed. */
int td_write_atomic(const char *path, const td_iov *parts, int nparts);

/* safetensors. dtypes read: F32 F64 I64 U8 I8 BOOL as themselves; F16 and BF16 become float32;
 * I16 I32 U16 U32 become int64, and U64 too when every value fits (else an error). Others
 * (C64, F8_*, F4, F6_*) are refused by name. Tensor entries with fields other than dtype, shape
 * and data_offsets are refused. Names and metadata may not contain NUL (\u0000). */
typedef struct td_safetensors {
    int n;                /* tensors, in file (data offset) order */
    char **names;         /* [n] owned UTF-8 names */
    td_tensor **tensors;  /* [n] owned refs, contiguous */
    int nmeta;            /* __metadata__ entries, in header order */
    char **meta_keys, **meta_vals; /* [nmeta] owned strings */
} td_safetensors;
/* Fills *st (which the caller zeroes first); 0, or -1 + error with *st left empty. */
int td_safetensors_parse(const void *buf, size_t len, const char *what, td_safetensors *st);
int td_safetensors_load(const char *path, td_safetensors *st);
void td_safetensors_free(td_safetensors *st); /* releases everything, zeroes *st */
/* Writes tensors (any layout; float32/float64/int64/uint8/int8/bool as F32/F64/I64/U8/I8/BOOL)
 * the way the reference writer does: sorted by descending alignment, then name; compact JSON,
 * __metadata__ first with sorted keys (omitted when nmeta is 0), header padded with spaces to a
 * multiple of 8. Names: non-empty valid UTF-8, unique, not "__metadata__". 0 or -1 + error. */
int td_safetensors_save(const char *path, int n, const char *const *names, td_tensor *const *ts,
                        int nmeta, const char *const *mkeys, const char *const *mvals);
/* The same bytes into *buf (td_malloc'd, free with td_free), for tests and fuzzing. */
int td_safetensors_serialize(int n, const char *const *names, td_tensor *const *ts, int nmeta,
                             const char *const *mkeys, const char *const *mvals, void **buf,
                             size_t *len);

/* .npy (versions 1.0, 2.0, 3.0). descr read: <f4 <f8 <i8 |u1 |i1 |b1 as themselves; <f2 becomes
 * float32; <i2 <i4 <u2 <u4 become int64, <u8 too when every value fits; big-endian '>'
 * forms are byte-swapped. Object arrays (pickles), structured, complex, string and datetime
 * descrs are refused. fortran_order True is read into a C-order (contiguous) tensor. The data
 * must be exactly prod(shape) items: truncation and trailing bytes are errors. */
td_tensor *td_npy_parse(const void *buf, size_t len, const char *what); /* new ref or NULL */
td_tensor *td_npy_load(const char *path);                               /* new ref or NULL */
/* Writes numpy 1.24's exact bytes for t (any layout, written in C order): version 1.0, sorted
 * keys, growth padding, header aligned to 64. 0 or -1 + error. */
int td_npy_save(const char *path, td_tensor *t);
int td_npy_serialize(td_tensor *t, void **buf, size_t *len); /* td_malloc'd bytes */

/* ---- int8 quantization (tensor/quant.c; kernels in ops/qgemm.c) --------------------------------
 * An affine quantized value q (uint8 or int8) stands for (q - zero_point) * scale. Per tensor:
 * ns = 1 (axis ignored); per channel: scale[c], zp[c] for position c along `axis` (ns equals that
 * dim's size). Scales must be positive and finite, zero points inside the dtype's range. */
/* clamp(rint(x * (1 / scale)) + zp) in float32 (PyTorch's rounding: half to even; NaN gives the
 * dtype's minimum). New ref or NULL + error. */
td_tensor *td_quantize(td_tensor *x, const float *scale, const int32_t *zp, int64_t ns, int axis,
                       td_dtype dt);
td_tensor *td_dequantize(td_tensor *q, const float *scale, const int32_t *zp, int64_t ns,
                         int axis); /* float32 (q - zp) * scale */
/* PyTorch's observer formulas for the range [lo, hi] (widened to hold 0), in float32: affine
 * scale = (hi - lo) / (qmax - qmin), zp = qmin - rint(lo / scale) clamped; symmetric scale =
 * max(-lo, hi) / ((qmax - qmin) / 2), zp = 0 (int8) or 128 (uint8); scale >= FLT_EPSILON. */
void td_qparams(float lo, float hi, td_dtype dt, bool symmetric, float *scale, int32_t *zp);
/* torch.histc: counts of x's values in `bins` equal bins over [lo, hi] (hi in the last; values
 * outside are ignored), computed in float32; a float64 tensor, or NULL + error. */
td_tensor *td_histc(td_tensor *x, int64_t bins, float lo, float hi);
/* int8 weights (out x in..., any layout) packed for the quantized GEMM: an int8 1-D blob. 4-D
 * weights are conv weights (oc, ic, kh, kw), packed in the order td_qconv2d reads patches. */
td_tensor *td_qpack(td_tensor *w);
/* How a quantized op takes its input and gives its output. The input: uint8 already quantized
 * with (scale, zp); or float, quantized to uint8 with (scale, zp), or when `dynamic` with the
 * scale and zero point of its own min and max (td_qparams). The output: float32 when
 * out_scale is 0, else uint8 requantized with (out_scale, out_zp). */
typedef struct td_qspec {
    float scale, out_scale;
    int32_t zp, out_zp;
    bool dynamic;
    bool out_relu; /* uint8 output clamped below at out_zp: a fused ReLU */
} td_qspec;
/* y (..., N) = x (..., K) W^T * (x scale * wscale[n]) + bias[n]; packed from td_qpack of the
 * N x K weights, wscale[N] their per-channel scales (zero points 0), bias[N] or NULL. */
td_tensor *td_qlinear(td_tensor *x, td_tensor *packed, const float *wscale, const float *bias,
                      int64_t N, int64_t K, const td_qspec *q);
typedef struct td_qconv {
    int64_t ic, oc, kh, kw, sh, sw, ph, pw, dh, dw; /* channels in/out, kernel, stride, pad, dilation */
} td_qconv;
/* max_pool2d of uint8 activations (N, C, H, W): kernel k, stride st, padding pad (ignored
 * positions), dilation 1. New ref or NULL + error. */
td_tensor *td_qmaxpool2d(td_tensor *x, const int64_t k[2], const int64_t st[2],
                         const int64_t pad[2]);
/* conv2d (groups 1) of x (N, ic, H, W) with packed oc x (ic kh kw) weights. */
td_tensor *td_qconv2d(td_tensor *x, td_tensor *packed, const float *wscale, const float *bias,
                      const td_qconv *g, const td_qspec *q);

/* ---- threads (tensor/thread.c): one OpenMP pool for tide's kernels and OpenBLAS ------------ */
/* Sets the pool's size: n capped at td_num_cpus(). Returns the count set, or -1 + error when
 * the address-space limit (ulimit -v) has no room for that many threads (OpenBLAS would loop
 * forever mapping its buffer). The first td_get_num_threads takes OMP_NUM_THREADS the same way,
 * lowered to what fits. */
int td_set_num_threads(int n);
int td_get_num_threads(void);
int td_num_cpus(void); /* the CPUs this process may run on */
/* Runs f(ctx, u) for u in [0, n): across the pool when `work` (elements touched) reaches
 * TD_PAR_GRAIN, else in a plain loop, since libgomp charges microseconds even for a parallel
 * region whose if() clause is false. Stops early once td_interrupted is set. */
typedef void (*td_unit_fn)(void *ctx, int64_t u);
void td_run_units(int64_t n, int64_t work, td_unit_fn f, void *ctx);

#endif
