/* tests/c/test_idx.c: tensor/io/idx.c from memory: the in-place widening of int8/16/32 to
 * int64 over many elements (the raw bytes sit at the end of the tensor's own buffer), gzip
 * made here with zlib (one member, several members, stored blocks), and the contract on
 * errors: NULL and a message naming the source, with no tensor leaked. */
#include "../../tensor/tide.h"

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

/* An IDX buffer: header for a 1-D tensor of n elements of `code`, element i = f(i). */
static uint8_t *idx1(int code, size_t esz, uint32_t n, size_t *len) {
    *len = 8 + esz * n;
    uint8_t *b = malloc(*len);
    cr_assert_not_null(b);
    b[0] = 0, b[1] = 0, b[2] = (uint8_t)code, b[3] = 1;
    b[4] = (uint8_t)(n >> 24), b[5] = (uint8_t)(n >> 16), b[6] = (uint8_t)(n >> 8),
    b[7] = (uint8_t)n;
    for (uint32_t i = 0; i < n; i++) {
        int64_t v = (int64_t)i * 7919 - 100000; /* negative and positive, all widths */
        for (size_t k = 0; k < esz; k++) b[8 + i * esz + k] = (uint8_t)(v >> (8 * (esz - 1 - k)));
    }
    return b;
}

static int64_t expect(uint32_t i, size_t esz) {
    int64_t v = (int64_t)i * 7919 - 100000;
    if (esz == 1) return (int8_t)v;
    if (esz == 2) return (int16_t)v;
    return (int32_t)v;
}

static uint8_t *gz(const uint8_t *in, size_t n, int level, size_t *len) {
    z_stream z;
    memset(&z, 0, sizeof z);
    cr_assert_eq(deflateInit2(&z, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY), Z_OK);
    size_t cap = deflateBound(&z, (uLong)n) + 64;
    uint8_t *out = malloc(cap);
    z.next_in = (Bytef *)(uintptr_t)in;
    z.avail_in = (uInt)n;
    z.next_out = out;
    z.avail_out = (uInt)cap;
    cr_assert_eq(deflate(&z, Z_FINISH), Z_STREAM_END);
    *len = cap - z.avail_out;
    deflateEnd(&z);
    return out;
}

Test(idx, widens_int8_int16_int32_in_place) {
    const int codes[] = {0x09, 0x0B, 0x0C};
    const size_t sizes[] = {1, 2, 4};
    for (int c = 0; c < 3; c++) {
        size_t len;
        uint32_t n = 10007;
        uint8_t *b = idx1(codes[c], sizes[c], n, &len);
        td_tensor *t = td_idx_parse(b, len, "w.idx");
        cr_assert_not_null(t, "%s", td_errmsg());
        cr_assert_eq(t->dtype, TD_INT64);
        const int64_t *d = td_data(t);
        for (uint32_t i = 0; i < n; i++)
            cr_assert_eq(d[i], expect(i, sizes[c]), "code 0x%02x element %u", codes[c], i);
        td_release(t);
        free(b);
    }
}

Test(idx, gzip_levels_and_members) {
    size_t len, glen, hlen, dlen;
    uint8_t *b = idx1(0x0C, 4, 5000, &len);
    for (int level = 0; level <= 9; level += 9) { /* 0: stored blocks */
        uint8_t *g = gz(b, len, level, &glen);
        td_tensor *t = td_idx_parse(g, glen, "g.idx.gz");
        cr_assert_not_null(t, "%s", td_errmsg());
        cr_assert_eq(td_numel(t), 5000);
        cr_assert_eq(((int64_t *)td_data(t))[4999], expect(4999, 4));
        td_release(t);
        free(g);
    }
    uint8_t *h = gz(b, 8, 6, &hlen), *d = gz(b + 8, len - 8, 6, &dlen); /* two members */
    uint8_t *both = malloc(hlen + dlen);
    memcpy(both, h, hlen);
    memcpy(both + hlen, d, dlen);
    td_tensor *t = td_idx_parse(both, hlen + dlen, "two.gz");
    cr_assert_not_null(t, "%s", td_errmsg());
    cr_assert_eq(((int64_t *)td_data(t))[17], expect(17, 4));
    td_release(t);
    free(both), free(h), free(d), free(b);
}

Test(idx, errors_name_the_source) {
    size_t len;
    uint8_t *b = idx1(0x0D, 4, 3, &len);
    cr_assert_null(td_idx_parse(b, len - 1, "short.idx"));
    cr_assert(strstr(td_errmsg(), "idx: short.idx: truncated: expected 12 bytes of data"), "%s",
              td_errmsg());
    cr_assert_null(td_idx_parse(b, 0, NULL));
    cr_assert(strstr(td_errmsg(), "(buffer)"), "%s", td_errmsg());
    b[3] = 0;
    cr_assert_null(td_idx_parse(b, len, "nd.idx"));
    cr_assert(strstr(td_errmsg(), "0 dims"), "%s", td_errmsg());
    cr_assert_null(td_idx_read("/nonexistent/x.idx"));
    cr_assert(strstr(td_errmsg(), "idx: cannot open '/nonexistent/x.idx'"), "%s", td_errmsg());
    free(b);
}

Test(idx, float_bits_exact) {
    uint8_t b[8 + 16] = {0, 0, 0x0E, 1, 0, 0, 0, 2};
    double v[2] = {-0.0, 5e-324};
    for (int i = 0; i < 2; i++) {
        uint64_t u;
        memcpy(&u, &v[i], 8);
        for (int k = 0; k < 8; k++) b[8 + 8 * i + k] = (uint8_t)(u >> (56 - 8 * k));
    }
    td_tensor *t = td_idx_parse(b, sizeof b, "f64");
    cr_assert_not_null(t, "%s", td_errmsg());
    cr_assert_eq(memcmp(td_data(t), v, 16), 0);
    td_release(t);
}
