// tests/fuzz/fuzz_kernel.c: libFuzzer target for the Jupyter kernel's message reader (make fuzz):
// the wire framing and signature check (vm/kernel/wire.c) and the JSON decoder and encoder
// (vm/kernel/json.c) on bytes from outside.
// fuzz-seeds: tests/fuzz/seeds/kernel/*
// The input is split at '\n' into frames. Every frame is also decoded as JSON whether or not the
// signature holds (so the fuzzer need not forge HMACs); a value that decodes must encode and
// decode again to a text of the same length (object keys
// come in table order). Any input must give a message or an error, never a crash.
#include <lauxlib.h>
#include <lualib.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../tensor/tide.h"
#include "../../vm/kernel/kernel.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static lua_State *L;
    if (!L) L = luaL_newstate();
    tdK_frame f[64];
    int n = 0;
    const char *p = (const char *)data, *end = p + size;
    while (n < 64) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        f[n].p = p, f[n].n = (size_t)((nl ? nl : end) - p);
        n++;
        if (!nl) break;
        p = nl + 1;
    }
    const char *why = NULL;
    int d = tdK_parse(f, n, n % 2 ? "key" : "", n % 2 ? 3 : 0, &why);
    if (d < 0 && !why) __builtin_trap();
    if (d >= 0 && (d + 6 > n || f[d].n != 9)) __builtin_trap();
    tdK_buf a = {0}, b = {0};
    for (int i = 0; i < n; i++) {
        lua_settop(L, 0);
        if (tdK_json_decode(L, f[i].p, f[i].n, "fuzz") < 0) {
            if (!td_errmsg()[0]) __builtin_trap();
            continue;
        }
        if (tdK_json_encode(L, 1, &a) < 0) __builtin_trap();
        lua_settop(L, 0);
        if (tdK_json_decode(L, a.p, a.n, "fuzz round trip") < 0) __builtin_trap();
        if (tdK_json_encode(L, 1, &b) < 0 || b.n != a.n) __builtin_trap();
    }
    free(a.p);
    free(b.p);
    return 0;
}
