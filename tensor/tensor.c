/* tensor/tensor.c: tensor structs (reference-counted strided views of a storage), creation,
 * element access and dtype conversion. */
#include <stdlib.h>
#include <string.h>

#include "tide.h"

static td_tensor *free_tensors; /* structs reused through their grad field */

/* Elements above this are refused before any allocation ("absurd sizes"): 2^40 bytes. */
#define MAX_BYTES ((int64_t)1 << 40)

static td_tensor *tensor_struct(void) {
    td_tensor *t = NULL;
    if (!td_alloc_fails()) { /* the failure point, free list or not */
        if ((t = free_tensors)) free_tensors = t->grad;
        else t = malloc(sizeof *t);
    }
    if (!t) {
        td_error("out of memory allocating a tensor");
        return NULL;
    }
    memset(t, 0, sizeof *t);
    t->refcount = 1;
    return t;
}

/* An empty tensor's other dims may multiply past int64 (0 x 2^40 x 2^40): its strides address
 * nothing, so they saturate instead of overflowing. */
static void contiguous_strides(const int64_t *shape, int ndim, int64_t *stride) {
    int64_t s = 1;
    for (int i = ndim - 1; i >= 0; i--) {
        stride[i] = s;
        if (__builtin_mul_overflow(s, shape[i] > 0 ? shape[i] : 1, &s)) s = INT64_MAX;
    }
}

td_tensor *td_empty(const int64_t *shape, int ndim, td_dtype dt) {
    char buf[128];
    if (ndim < 0 || ndim > TD_MAX_DIMS) {
        td_error("at most %d dims are supported, got %d", TD_MAX_DIMS, ndim);
        return NULL;
    }
    if ((unsigned)dt >= TD_NDTYPES) {
        td_error("unknown dtype %d", (int)dt);
        return NULL;
    }
    int64_t n = 1, esz = td_dtype_sizes[dt], limit = MAX_BYTES / esz;
    bool empty = false; /* a zero dim: no elements, however big the others (2^32 x 2^32 x 0) */
    for (int i = 0; i < ndim; i++) empty |= shape[i] == 0;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0) {
            td_error("negative size %lld in shape %s", (long long)shape[i],
                     td_shape_str(shape, ndim, buf, sizeof buf));
            return NULL;
        }
        if (empty) continue;
        if (__builtin_mul_overflow(n, shape[i], &n) || n > limit) { /* no divide per dim */
            td_error("shape %s is too large (over 2^40 bytes)",
                     td_shape_str(shape, ndim, buf, sizeof buf));
            return NULL;
        }
    }
    td_tensor *t = tensor_struct();
    if (!t) return NULL;
    if (!(t->storage = td_storage_new(empty ? 0 : (size_t)(n * esz)))) {
        t->grad = free_tensors;
        free_tensors = t;
        return NULL;
    }
    t->ndim = ndim;
    t->dtype = dt;
    for (int i = 0; i < ndim; i++) t->shape[i] = shape[i]; /* memcpy became a slow rep movs */
    contiguous_strides(shape, ndim, t->stride);
    return t;
}

td_tensor *td_zeros(const int64_t *shape, int ndim, td_dtype dt) {
    td_tensor *t = td_empty(shape, ndim, dt);
    if (t && t->storage->nbytes) memset(t->storage->data, 0, t->storage->nbytes);
    return t;
}

td_tensor *td_full(const int64_t *shape, int ndim, td_dtype dt, double v) {
    return td_full_num(shape, ndim, dt, (td_num){.f = v});
}

td_tensor *td_scalar(double v, td_dtype dt) {
    return td_full(NULL, 0, dt, v);
}

td_tensor *td_from_data(const void *src, const int64_t *shape, int ndim, td_dtype dt) {
    td_tensor *t = td_empty(shape, ndim, dt);
    if (t && t->storage->nbytes) memcpy(t->storage->data, src, t->storage->nbytes);
    return t;
}

td_tensor *td_view_of(td_tensor *base, const int64_t *shape, const int64_t *stride, int ndim,
                      int64_t offset) {
    td_tensor *t = tensor_struct();
    if (!t) return NULL;
    t->storage = base->storage;
    td_storage_retain(t->storage);
    t->ndim = ndim;
    t->dtype = base->dtype;
    t->offset = offset;
    for (int i = 0; i < ndim; i++) t->shape[i] = shape[i], t->stride[i] = stride[i];
    return t;
}

void td_retain(td_tensor *t) {
    t->refcount++;
}


void td_release(td_tensor *t) {
    if (!t || --t->refcount > 0) return;
    td_storage_release(t->storage);
    td_release(t->grad);
    if (t->grad_fn) td_node_release(t->grad_fn);
    t->grad = free_tensors;
    free_tensors = t;
}

/* In uint64_t: the dims of an empty tensor may multiply past int64 (2^32 x 2^32 x 0), and a
 * zero factor makes the wrapped product 0 all the same. */
int64_t td_numel(const td_tensor *t) {
    uint64_t n = 1;
    for (int i = 0; i < t->ndim; i++) n *= (uint64_t)t->shape[i];
    return (int64_t)n;
}

bool td_is_contiguous(const td_tensor *t) {
    uint64_t s = 1;
    for (int i = t->ndim - 1; i >= 0; i--) {
        if (t->shape[i] != 1 && (uint64_t)t->stride[i] != s) return false;
        s *= (uint64_t)t->shape[i];
    }
    return true;
}

void *td_data(const td_tensor *t) {
    char *p = t->storage->data; /* NULL for an empty tensor: no offset applies to it */
    return p ? p + t->offset * (int64_t)td_dtype_sizes[t->dtype] : NULL;
}

static int64_t elem_offset(const td_tensor *t, const int64_t *idx) {
    int64_t o = 0;
    for (int i = 0; i < t->ndim; i++) o += idx[i] * t->stride[i];
    return o;
}

double td_get(const td_tensor *t, const int64_t *idx) {
    char *p = (char *)td_data(t) + elem_offset(t, idx) * (int64_t)td_dtype_size(t->dtype);
    switch (t->dtype) {
    case TD_FLOAT32: return *(float *)p;
    case TD_FLOAT64: return *(double *)p;
    case TD_INT64: return (double)*(int64_t *)p;
    case TD_UINT8: return *(uint8_t *)p;
    case TD_INT8: return *(int8_t *)p;
    default: return *(bool *)p;
    }
}

void td_set(td_tensor *t, const int64_t *idx, double v) {
    char *p = (char *)td_data(t) + elem_offset(t, idx) * (int64_t)td_dtype_size(t->dtype);
    td_num_store((td_num){.f = v}, t->dtype, p);
}

double td_item(const td_tensor *t) {
    static const int64_t zero[TD_MAX_DIMS];
    return td_get(t, zero);
}

int td_normdim(const char *fn, int64_t *d, int ndim) {
    int n = ndim ? ndim : 1;
    if (*d < -n || *d >= n)
        return td_error("%s: dim %lld out of range for a %d-D tensor", fn, (long long)*d, ndim);
    if (*d < 0) *d += n;
    return 0;
}

void td_bump_version(td_tensor *t) {
    t->storage->version++;
}
