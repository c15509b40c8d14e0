/* tensor/storage.c: reference-counted buffers from tensor/alloc.c's cache, counted so that the
 * Lua GC can be asked to keep tensor garbage small. Main thread only. */
#include <stdlib.h>

#include "tide.h"

static td_storage *free_structs; /* storage structs reused through their data field */
static uint64_t alloc_total;     /* bytes handed out, cache hits included (monotonic) */
static uint64_t live_bytes;      /* bytes of storages alive now: what the GC is asked to bound */

uint64_t td_alloc_total(void) {
    return alloc_total;
}

uint64_t td_live_bytes(void) {
    return live_bytes;
}

td_storage *td_storage_new(size_t nbytes) {
    td_storage *s = NULL;
    if (!td_alloc_fails()) { /* the failure point, free list or not */
        if ((s = free_structs)) free_structs = (td_storage *)s->data;
        else s = malloc(sizeof *s);
    }
    if (!s) {
        td_error("out of memory allocating a storage");
        return NULL;
    }
    s->data = NULL;
    s->nbytes = nbytes;
    s->refcount = 1;
    s->version = 0;
    if (nbytes == 0) return s;
    if (!(s->data = td_buf_alloc(nbytes))) {
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
        td_buf_free(s->data, s->nbytes);
    }
    s->data = free_structs;
    free_structs = s;
}
