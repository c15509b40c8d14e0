// tests/fuzz/fuzz_dist_header.c: libFuzzer target for the header tide.dist's ranks exchange
// before each collective (vm/dist/header.c), with any words a peer could send.
// fuzz-seeds: none
// Input: 1 byte of rank count (1 + b % 4), 1 byte choosing the kind list (op names, root, none),
// then the headers as int64 words (zero-padded). Any input must give 0 or a NUL-terminated
// message naming two ranks, never a crash or sanitizer report; equal headers must agree.
#include "../../vm/dist/header.c"

#include <assert.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const char *const ops[] = {"sum", "mean", "max", "min", NULL};
    static const dist_fmt f = {td_dtype_name, td_shape_str};
    if (size < 2) return 0;
    int ranks = 1 + data[0] % 4, mode = data[1] % 3;
    int64_t all[4 * DIST_HDR] = {0};
    size_t n = size - 2 < sizeof all ? size - 2 : sizeof all;
    memcpy(all, data + 2, n);
    const char *what = mode == 0 ? "op" : mode == 1 ? "root" : NULL;
    char msg[256];
    msg[0] = 0;
    int rc = dist_header_agree(all, ranks, what, mode == 0 ? ops : NULL, &f, msg, sizeof msg);
    assert(rc == 0 || (rc == -1 && strlen(msg) < sizeof msg && strstr(msg, "rank 1 has")));
    for (int r = 1; r < ranks; r++) memcpy(all + r * DIST_HDR, all, sizeof(int64_t) * DIST_HDR);
    assert(dist_header_agree(all, ranks, what, mode == 0 ? ops : NULL, &f, msg, sizeof msg) == 0);
    return 0;
}
