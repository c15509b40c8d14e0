/* tensor/error.c: the thread-local error message, Ctrl-C polling, and the tensor allocator
 * (64-byte aligned, byte-counted for the Lua GC, with TIDE_FAIL_ALLOC=N fault injection). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tide.h"

static _Thread_local char errbuf[512];
volatile sig_atomic_t td_interrupted;

int td_error(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(errbuf, sizeof errbuf, fmt, ap);
    va_end(ap);
    return -1;
}

const char *td_errmsg(void) {
    return errbuf[0] ? errbuf : "unknown error";
}

char *td_shape_str(const int64_t *shape, int ndim, char *buf, size_t n) {
    if (ndim == 0) {
        snprintf(buf, n, "scalar");
        return buf;
    }
    size_t k = 0;
    buf[0] = 0;
    for (int i = 0; i < ndim && k < n; i++)
        k += (size_t)snprintf(buf + k, n - k, i ? "x%lld" : "%lld", (long long)shape[i]);
    return buf;
}

int td_poll_interrupt(void) {
    if (!td_interrupted) return 0;
    return td_error("interrupted!");
}

/* TIDE_FAIL_ALLOC=N makes the Nth td_malloc fail (make check walks N to prove error paths). */
static long fail_at = -1, nalloc;

static int should_fail(void) {
    if (fail_at == -1) {
        const char *e = getenv("TIDE_FAIL_ALLOC");
        fail_at = e ? atol(e) : 0;
    }
    return fail_at > 0 && ++nalloc == fail_at;
}

void *td_malloc(size_t n) {
    void *p = NULL;
    if (should_fail() || posix_memalign(&p, 64, n ? (n + 63) / 64 * 64 : 64) != 0) {
        td_error("out of memory allocating %zu bytes", n);
        return NULL;
    }
    return p;
}

void td_free(void *p) {
    free(p);
}

