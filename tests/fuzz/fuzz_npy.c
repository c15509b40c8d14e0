// tests/fuzz/fuzz_npy.c: libFuzzer target for the .npy reader (make fuzz).
// fuzz-seeds: tests/fixtures/*.npy
// Any input must give a tensor or an error message, never a crash, leak or sanitizer report;
// a tensor that loads must serialize and load again to the same bytes.
#include <stdint.h>
#include <string.h>

#include "../../tensor/tide.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    td_tensor *t = td_npy_parse(data, size, "fuzz");
    if (!t) {
        if (!td_errmsg()[0]) __builtin_trap();
        return 0;
    }
    void *buf;
    size_t len;
    if (td_npy_serialize(t, &buf, &len) == 0) {
        td_tensor *u = td_npy_parse(buf, len, "fuzz round trip");
        if (!u || u->dtype != t->dtype || u->ndim != t->ndim ||
            memcmp(u->shape, t->shape, sizeof(int64_t) * (size_t)t->ndim) ||
            (td_numel(t) && memcmp(td_data(u), td_data(t), (size_t)td_numel(t) * td_dtype_size(t->dtype))))
            __builtin_trap();
        td_release(u);
        td_free(buf);
    }
    td_release(t);
    return 0;
}
