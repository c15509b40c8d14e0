// tests/fuzz/fuzz_idx.c: libFuzzer target for the IDX reader (make fuzz), plain and gzipped.
// fuzz-seeds: /usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz
// Any input must give a tensor or an error message, never a crash, leak or sanitizer report.
// Differential check: a plain input, gzipped here, must parse to the same result (the same
// tensor, or an error in both), and a tensor's size must account for every input byte.
#include "../../tensor/tide.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

static size_t file_elem_size(const uint8_t *d) {
    switch (d[2]) {
    case 0x0B:
        return 2;
    case 0x0C:
    case 0x0D:
        return 4;
    case 0x0E:
        return 8;
    default:
        return 1;
    }
}

static int gzip(const uint8_t *in, size_t n, uint8_t **out, size_t *len) {
    z_stream z;
    memset(&z, 0, sizeof z);
    if (deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) return -1;
    size_t cap = deflateBound(&z, (uLong)n) + 32;
    *out = malloc(cap);
    if (!*out) {
        deflateEnd(&z);
        return -1;
    }
    z.next_in = (Bytef *)(uintptr_t)in;
    z.avail_in = (uInt)n;
    z.next_out = *out;
    z.avail_out = (uInt)cap;
    int rc = deflate(&z, Z_FINISH);
    *len = cap - z.avail_out;
    deflateEnd(&z);
    if (rc != Z_STREAM_END) {
        free(*out);
        return -1;
    }
    return 0;
}

static void same(const td_tensor *a, const td_tensor *b) {
    if (!a != !b) __builtin_trap();
    if (!a) return;
    if (a->dtype != b->dtype || a->ndim != b->ndim ||
        memcmp(a->shape, b->shape, sizeof(int64_t) * (size_t)a->ndim) ||
        (td_numel(a) &&
         memcmp(td_data(a), td_data(b), (size_t)td_numel(a) * td_dtype_size(a->dtype))))
        __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    td_tensor *t = td_idx_parse(data, size, "fuzz");
    if (!t) {
        if (!td_errmsg()[0]) __builtin_trap();
    } else if (!(size >= 2 && data[0] == 0x1f && data[1] == 0x8b)) {
        size_t want = 4 + 4 * (size_t)t->ndim + (size_t)td_numel(t) * file_elem_size(data);
        if (want != size) __builtin_trap(); /* every byte accounted for, none more */
    }
    if (size < 4096 && !(size >= 2 && data[0] == 0x1f && data[1] == 0x8b)) {
        uint8_t *gz;
        size_t len;
        if (gzip(data, size, &gz, &len) == 0) {
            td_tensor *u = td_idx_parse(gz, len, "fuzz.gz");
            if (!u && !td_errmsg()[0]) __builtin_trap();
            same(t, u);
            td_release(u);
            free(gz);
        }
    }
    td_release(t);
    return 0;
}
