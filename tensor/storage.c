/* tensor/storage.c: reference-counted buffers with a size-bucketed cache of freed ones, so a
 * training loop that frees and reallocates the same shapes every step stops calling malloc.
 * Size classes are 2^k * {4,5,6,7}/4 bytes; a class keeps CACHE_PER_CLASS buffers, or more
 * while they total under CACHE_CLASS_BYTES (the GC frees small tensors by the thousand), and
 * the whole cache at most CACHE_MAX bytes. Allocation happens on the main thread only.
 * TIDE_NO_CACHE=1 turns the cache off so AddressSanitizer sees every use after free. */
#include <stdlib.h>

#include "tide.h"

#define NCLASS          (4 * 48)
#define CACHE_PER_CLASS   8
#define CACHE_CLASS_BYTES ((size_t)16 << 20) /* > vm/check.c GC_SLACK: one collection's garbage */
#define CACHE_MAX         ((size_t)512 << 20)

static struct {
    void *head; /* cached buffers, linked through their first word */
    size_t n;
} cache[NCLASS];
static size_t cached_bytes;
static td_storage *free_structs; /* storage structs reused through their data field */
static uint64_t alloc_total;     /* bytes handed out, cache hits included (monotonic) */
static uint64_t live_bytes;      /* bytes of storages alive now: what the GC is asked to bound */

uint64_t td_alloc_total(void) {
    return alloc_total;
}

uint64_t td_live_bytes(void) {
    return live_bytes;
}

static int cache_off = -1;

static bool caching(void) {
    if (cache_off < 0) {
        const char *e = getenv("TIDE_NO_CACHE");
        cache_off = e && *e && *e != '0';
    }
    return !cache_off;
}

static int size_class(size_t n, size_t *cap) {
    if (n <= 64) {
        *cap = 64;
        return 0;
    }
    int k = 63 - __builtin_clzll((unsigned long long)n); /* 2^k <= n < 2^(k+1) */
    size_t base = (size_t)1 << k, q = base / 4 ? base / 4 : 1;
    size_t step = (n - base + q - 1) / q; /* 0..4 quarters above 2^k */
    *cap = base + step * q;
    return k * 4 + (int)step;
}

td_storage *td_storage_new(size_t nbytes) {
    td_storage *s = free_structs;
    if (s)
        free_structs = (td_storage *)s->data;
    else if (!(s = malloc(sizeof *s))) {
        td_error("out of memory allocating a storage");
        return NULL;
    }
    s->data = NULL;
    s->nbytes = nbytes;
    s->refcount = 1;
    s->version = 0;
    if (nbytes == 0) return s;
    size_t cap;
    int c = size_class(nbytes, &cap);
    if (c < NCLASS && cache[c].n > 0) {
        s->data = cache[c].head;
        cache[c].head = *(void **)s->data;
        cache[c].n--;
        cached_bytes -= cap;
    } else if (!(s->data = td_malloc(c < NCLASS ? cap : nbytes))) {
        s->data = free_structs;
        free_structs = s;
        return NULL;
    }
    alloc_total += nbytes;
    live_bytes += nbytes;
    return s;
}

void td_storage_retain(td_storage *s) {
    s->refcount++;
}

void td_storage_release(td_storage *s) {
    if (!s || --s->refcount > 0) return;
    if (s->data) {
        live_bytes -= s->nbytes;
        size_t cap;
        int c = size_class(s->nbytes, &cap);
        bool room = c < NCLASS && (cache[c].n < CACHE_PER_CLASS ||
                                   (cache[c].n + 1) * cap <= CACHE_CLASS_BYTES);
        if (room && cached_bytes + cap <= CACHE_MAX && caching()) {
            *(void **)s->data = cache[c].head; /* buffers are >= 64 bytes */
            cache[c].head = s->data;
            cache[c].n++;
            cached_bytes += cap;
        } else {
            td_free(s->data);
        }
    }
    s->data = free_structs;
    free_structs = s;
}

void td_storage_cache_clear(void) {
    for (int c = 0; c < NCLASS; c++) {
        while (cache[c].head) {
            void *b = cache[c].head;
            cache[c].head = *(void **)b;
            td_free(b);
        }
        cache[c].n = 0;
    }
    cached_bytes = 0;
    while (free_structs) {
        td_storage *s = free_structs;
        free_structs = (td_storage *)s->data;
        free(s);
    }
}
