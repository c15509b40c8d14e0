/* tensor/alloc.c: where tensor memory comes from. Requests are rounded up to size classes
 * (2^k * {4,5,6,7}/4 bytes) and freed buffers wait in a per-class cache for the next request of
 * their class, so a training loop that makes the same shapes every step stops calling the
 * system. Classes of MAP_MIN bytes and up are pages mapped for them alone, so that releasing one
 * returns it to the kernel at once: from malloc they would land in glibc's heap, whose dynamic
 * mmap threshold then keeps freed tensor-sized chunks around (RSS grew without bound in long
 * training loops, and differed run to run with the order of frees).
 * The cache is sized by use, not by a fixed bound: td_buf_trim releases, in each class, the
 * buffers that sat unused through the whole interval since its previous trim (the class's
 * low-water mark), at most once per TRIM_PERIOD. A loop's steady state keeps what one step
 * reuses; what a finished phase left (the bytes a dataset was decoded from) goes back.
 * Main thread only, as are all allocations in tensor/. */
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>

#include "tide.h"

#define NCLASS      (4 * 48)
#define MAP_MIN     ((size_t)128 << 10)
#define CACHE_MAX   ((size_t)1 << 30) /* a guard: trimming keeps the cache far below it */
#define TRIM_PERIOD 1.0               /* seconds: longer than a training step */
#define HEADER      64                /* td_malloc's size word, keeping the 64-byte alignment */

static struct {
    void *head;    /* cached buffers, linked through their first word */
    size_t n, low; /* cached now, and the fewest since the last trim */
} cache[NCLASS];
static size_t cached_bytes;
static double last_trim;

size_t td_buf_cached(void) {
    return cached_bytes;
}

static int cache_off = -1;

static bool caching(void) {
    if (cache_off < 0) {
        const char *e = getenv("TIDE_NO_CACHE");
        cache_off = e && *e && *e != '0';
    }
    return !cache_off;
}

/* The failure point of every allocation in tensor/: TIDE_FAIL_ALLOC=N (or td_fail_alloc(N))
 * makes the Nth request from then on fail, whatever it is for (a buffer, from the cache or not,
 * a tensor or storage struct, an autograd node, a reader's table), to prove the error paths. */
static long fail_at = -1, nalloc;

void td_fail_alloc(long n) {
    fail_at = n > 0 ? n : 0;
    nalloc = 0;
}

bool td_alloc_fails(void) {
    if (fail_at == -1) {
        const char *e = getenv("TIDE_FAIL_ALLOC");
        fail_at = e ? atol(e) : 0;
    }
    return fail_at > 0 && ++nalloc == fail_at;
}

void *td_sys_malloc(size_t n) {
    return td_alloc_fails() ? NULL : malloc(n);
}

void *td_sys_calloc(size_t n, size_t size) {
    return td_alloc_fails() ? NULL : calloc(n, size);
}

void *td_sys_realloc(void *p, size_t n) {
    return td_alloc_fails() ? NULL : realloc(p, n);
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

static void *sys_alloc(size_t n) {
    void *p = NULL;
    if (n >= MAP_MIN) {
        p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        return p == MAP_FAILED ? NULL : p;
    }
    return posix_memalign(&p, 64, n) == 0 ? p : NULL;
}

static void sys_free(void *p, size_t n) {
    if (n >= MAP_MIN)
        munmap(p, n);
    else
        free(p);
}

void *td_buf_alloc(size_t n) {
    size_t cap;
    if (td_alloc_fails()) {
        td_error("out of memory allocating %zu bytes", n);
        return NULL;
    }
    int c = size_class(n, &cap);
    if (c >= NCLASS) cap = n; /* beyond 2^48 bytes: the system refuses it below */
    if (c < NCLASS && cache[c].n > 0) {
        void *p = cache[c].head;
        cache[c].head = *(void **)p;
        if (--cache[c].n < cache[c].low) cache[c].low = cache[c].n;
        cached_bytes -= cap;
        return p;
    }
    void *p = sys_alloc(cap);
    if (!p) td_error("out of memory allocating %zu bytes", n);
    return p;
}

void td_buf_free(void *p, size_t n) {
    if (!p) return;
    size_t cap;
    int c = size_class(n, &cap);
    if (c < NCLASS && cached_bytes + cap <= CACHE_MAX && caching()) {
        *(void **)p = cache[c].head; /* buffers are >= 64 bytes */
        cache[c].head = p;
        cache[c].n++;
        cached_bytes += cap;
    } else {
        sys_free(p, c < NCLASS ? cap : n);
    }
}

static size_t class_cap(int c) {
    size_t base = (size_t)1 << (c / 4);
    return c ? base + (size_t)(c % 4) * (base / 4) : 64;
}

static void drop(int c, size_t k) {
    size_t cap = class_cap(c);
    for (; k > 0 && cache[c].head; k--) {
        void *p = cache[c].head;
        cache[c].head = *(void **)p;
        cache[c].n--;
        cached_bytes -= cap;
        sys_free(p, cap);
    }
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void td_buf_trim(void) {
    double t = now();
    if (t - last_trim < TRIM_PERIOD) return;
    last_trim = t;
    for (int c = 0; c < NCLASS; c++) {
        drop(c, cache[c].low);
        cache[c].low = cache[c].n;
    }
}

void td_buf_release(void) {
    for (int c = 0; c < NCLASS; c++) {
        drop(c, cache[c].n);
        cache[c].low = 0;
    }
}

/* A size word before the block, so that td_free can give it back to its class. */
void *td_malloc(size_t n) {
    char *b = n <= SIZE_MAX - HEADER ? td_buf_alloc(n + HEADER) : NULL;
    if (!b) {
        td_error("out of memory allocating %zu bytes", n);
        return NULL;
    }
    *(size_t *)b = n + HEADER;
    return b + HEADER;
}

void td_free(void *p) {
    if (!p) return;
    char *b = (char *)p - HEADER;
    td_buf_free(b, *(size_t *)b);
}
