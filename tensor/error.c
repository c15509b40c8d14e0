/* tensor/error.c: the thread-local error message, shape strings for messages, and Ctrl-C
 * polling. */
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

int td_error_in(const char *fn) {
    size_t k = strlen(fn);
    if (strncmp(errbuf, fn, k) == 0 && errbuf[k] == ':') return -1;
    char msg[sizeof errbuf];
    memcpy(msg, errbuf, sizeof msg);
    return td_error("%s: %s", fn, msg);
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
