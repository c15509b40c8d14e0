// tests/fuzz/fuzz_safetensors.c: libFuzzer target for the safetensors reader (make fuzz).
// fuzz-seeds: tests/fixtures/*.safetensors
// Any input must give a file or an error message, never a crash, leak or sanitizer report;
// a file that parses must serialize and parse again to the same tensors.
#include <stdint.h>
#include <string.h>

#include "../../tensor/tide.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    td_safetensors st = {0};
    if (td_safetensors_parse(data, size, "fuzz", &st) < 0) {
        if (!td_errmsg()[0]) __builtin_trap(); /* every failure has a message */
        return 0;
    }
    /* Round trip: converted dtypes (F16 ...) come back as tide's, so compare the re-read. */
    void *buf;
    size_t len;
    if (td_safetensors_serialize(st.n, (const char *const *)st.names, st.tensors, st.nmeta,
                                 (const char *const *)st.meta_keys,
                                 (const char *const *)st.meta_vals, &buf, &len) == 0) {
        td_safetensors again = {0};
        if (td_safetensors_parse(buf, len, "fuzz round trip", &again) < 0) __builtin_trap();
        if (again.n != st.n || again.nmeta != st.nmeta) __builtin_trap();
        for (int i = 0; i < again.n; i++) {
            td_tensor *a = again.tensors[i];
            bool found = false;
            for (int k = 0; k < st.n; k++) {
                td_tensor *b = st.tensors[k];
                if (strcmp(again.names[i], st.names[k])) continue;
                found = a->dtype == b->dtype && a->ndim == b->ndim &&
                        !memcmp(a->shape, b->shape, sizeof(int64_t) * (size_t)a->ndim) &&
                        (td_numel(a) == 0 ||
                         !memcmp(td_data(a), td_data(b), (size_t)td_numel(a) * td_dtype_size(a->dtype)));
            }
            if (!found) __builtin_trap();
        }
        td_safetensors_free(&again);
        td_free(buf);
    }
    td_safetensors_free(&st);
    return 0;
}
