/* tests/c/test_io.c: tensor/io/ - safetensors and .npy readers and writers (round trips, the
 * reference layouts byte for byte, every validation rule with its message, conversions), whole
 * file reads and atomic writes. */
#include "../../tensor/tide.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* a safetensors buffer: 8-byte length + header + data (len bytes of zeros when data is NULL) */
static size_t st_buf(char *out, const char *header, const void *data, size_t len) {
    uint64_t n = strlen(header);
    for (int k = 0; k < 8; k++) out[k] = (char)(n >> (8 * k) & 0xff);
    memcpy(out + 8, header, n);
    if (data) memcpy(out + 8 + n, data, len);
    else memset(out + 8 + n, 0, len);
    return 8 + n + len;
}

/* parses and expects failure with `msg` inside the error */
static void st_fails(const char *header, size_t datalen, const char *msg) {
    char buf[4096];
    size_t n = st_buf(buf, header, NULL, datalen);
    td_safetensors st = {0};
    cr_assert_eq(td_safetensors_parse(buf, n, "t.st", &st), -1, "accepted: %s", header);
    cr_assert(strstr(td_errmsg(), msg), "'%s' not in '%s'", msg, td_errmsg());
    cr_assert(!strncmp(td_errmsg(), "safetensors: t.st: ", 19), "%s", td_errmsg());
    cr_assert_eq(st.n, 0);
}

Test(io, safetensors_round_trip_every_dtype) {
    int64_t sh[2] = {2, 3};
    td_tensor *ts[5];
    const char *names[5] = {"f32", "f64", "i64", "u8", "b"};
    for (int d = 0; d < 5; d++) {
        ts[d] = td_empty(sh, 2, (td_dtype)d);
        for (int64_t i = 0; i < 6; i++) {
            int64_t idx[2] = {i / 3, i % 3};
            td_set(ts[d], idx, d == TD_BOOL ? (double)(i & 1) : (double)i * 1.5 - (d == TD_UINT8 ? 0 : 2));
        }
    }
    const char *mk[2] = {"z", "a"}, *mv[2] = {"1", "caf\xc3\xa9"};
    void *buf;
    size_t len;
    cr_assert_eq(td_safetensors_serialize(5, names, ts, 2, mk, mv, &buf, &len), 0, "%s", td_errmsg());
    cr_assert_eq((len - 8 - 6 * (4 + 8 + 8 + 1 + 1)) % 8, 0); /* header padded to 8 */
    td_safetensors st = {0};
    cr_assert_eq(td_safetensors_parse(buf, len, "mem", &st), 0, "%s", td_errmsg());
    cr_assert_eq(st.n, 5);
    cr_assert_str_eq(st.names[0], "i64"); /* reference order: I64 > F64 > F32 > U8 > BOOL */
    cr_assert_str_eq(st.names[1], "f64");
    cr_assert_str_eq(st.names[2], "f32");
    cr_assert_str_eq(st.names[3], "u8");
    cr_assert_str_eq(st.names[4], "b");
    cr_assert_eq(st.nmeta, 2);
    cr_assert_str_eq(st.meta_keys[0], "a"); /* sorted */
    cr_assert_str_eq(st.meta_vals[0], "caf\xc3\xa9");
    for (int i = 0; i < 5; i++) {
        int d = !strcmp(st.names[i], "f32") ? 0 : !strcmp(st.names[i], "f64") ? 1
                : !strcmp(st.names[i], "i64") ? 2 : !strcmp(st.names[i], "u8") ? 3 : 4;
        cr_assert_eq(st.tensors[i]->dtype, (td_dtype)d);
        cr_assert_eq(memcmp(td_data(st.tensors[i]), td_data(ts[d]), 6 * td_dtype_size((td_dtype)d)), 0);
    }
    td_safetensors_free(&st);
    td_free(buf);
    for (int d = 0; d < 5; d++) td_release(ts[d]);
}

Test(io, safetensors_writer_matches_the_reference_bytes) {
    /* FORMATS.md's worked example: one F32 tensor w of shape [2, 2] is 88 bytes */
    int64_t sh[2] = {2, 2};
    td_tensor *w = td_zeros(sh, 2, TD_FLOAT32);
    const char *name = "w";
    void *buf;
    size_t len;
    cr_assert_eq(td_safetensors_serialize(1, &name, &w, 0, NULL, NULL, &buf, &len), 0);
    cr_assert_eq(len, 88);
    const char *h = "{\"w\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]}}       ";
    cr_assert_eq(((unsigned char *)buf)[0], 64);
    cr_assert_eq(memcmp((char *)buf + 8, h, 64), 0);
    td_free(buf);
    /* the reference's test_empty: no tensors, no metadata -> "{}" padded */
    cr_assert_eq(td_safetensors_serialize(0, NULL, NULL, 0, NULL, NULL, &buf, &len), 0);
    cr_assert_eq(len, 16);
    cr_assert_eq(memcmp(buf, "\x08\0\0\0\0\0\0\0{}      ", 16), 0);
    td_free(buf);
    td_release(w);
}

Test(io, safetensors_validation_messages) {
    st_fails("{\"w\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,12]}}", 12,
             "tensor 'w': data_offsets [0, 12] do not match shape 2x3 F32 (24 bytes)");
    st_fails("{\"a\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[0,2]},"
             "\"b\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[1,3]}}", 3, "overlap tensor 'a'");
    st_fails("{\"a\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[1,3]}}", 3, "leave a hole");
    st_fails("{\"a\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[0,2]}}", 3, "1 bytes after the last tensor");
    st_fails("{\"a\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0,4]}}", 3, "truncated");
    st_fails("{\"a\":{\"dtype\":\"F8_E4M3\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1, "unsupported dtype 'F8_E4M3'");
    st_fails("{\"a\":{\"dtype\":\"X\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1, "unknown dtype 'X'");
    st_fails("{\"a\":{\"dtype\":\"U8\",\"shape\":[-1],\"data_offsets\":[0,1]}}", 1, "negative");
    st_fails("{\"a\":{\"dtype\":\"F64\",\"shape\":[4611686018427387904,2],\"data_offsets\":[0,0]}}", 0,
             "too large");
    st_fails("{\"a\":{\"dtype\":\"U8\",\"shape\":[01],\"data_offsets\":[0,1]}}", 1, "leading zero");
    st_fails("{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1,2]}}", 1, "more than 2 entries");
    st_fails("{\"a\":{\"dtype\":\"U8\",\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1,
             "duplicate field 'dtype'");
    st_fails("{\"a\":1}", 0, "expected '{'");
    st_fails("{\"a\\q\":1}", 0, "unknown escape");
    st_fails("{\"\\udc00\":1}", 0, "lone low surrogate");
    st_fails("{\"\\ud800\\u0041\":1}", 0, "not followed by a low one");
    st_fails("{\"\xc0\xaf\":1}", 0, "not valid UTF-8"); /* overlong '/' */
    st_fails("{\"\xed\xa0\x80\":1}", 0, "not valid UTF-8"); /* encoded surrogate */
    st_fails("{\"__metadata__\":{},\"__metadata__\":{}}", 0, "duplicate key '__metadata__'");
    st_fails("{\"__metadata__\":{\"k\":[1]}}", 0, "values must be strings");
    st_fails("{", 0, "expected a string");
    st_fails("", 0, "must begin with '{'");
    char buf[64];
    memcpy(buf, "\xff\xff\xff\xff\xff\xff\xff\xff{}", 10);
    td_safetensors st = {0};
    cr_assert_eq(td_safetensors_parse(buf, 10, "t.st", &st), -1);
    cr_assert(strstr(td_errmsg(), "exceeds the 100000000-byte limit"), "%s", td_errmsg());
    cr_assert_eq(td_safetensors_parse(buf, 7, "t.st", &st), -1);
    cr_assert(strstr(td_errmsg(), "too short"), "%s", td_errmsg());
}

Test(io, safetensors_truncated_at_every_byte) {
    char buf[256];
    const char *h = "{\"__metadata__\":{\"k\":\"v\"},\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,12]}}";
    size_t n = st_buf(buf, h, NULL, 12);
    for (size_t k = 0; k < n; k++) {
        td_safetensors st = {0};
        cr_assert_eq(td_safetensors_parse(buf, k, "t.st", &st), -1, "accepted %zu of %zu bytes", k, n);
        cr_assert(td_errmsg()[0]);
    }
    td_safetensors st = {0};
    cr_assert_eq(td_safetensors_parse(buf, n, "t.st", &st), 0, "%s", td_errmsg());
    td_safetensors_free(&st);
}

Test(io, safetensors_converts_half_bfloat_and_narrow_ints) {
    /* F16: 1.0, -2.0, inf, the smallest subnormal 2^-24; BF16: 1.0, -3.0; I8 -1; U64 7 */
    unsigned char data[] = {0x00, 0x3c, 0x00, 0xc0, 0x00, 0x7c, 0x01, 0x00, 0x80, 0x3f, 0x40, 0xc0,
                            0xff, 7, 0, 0, 0, 0, 0, 0, 0};
    char buf[512];
    size_t n = st_buf(buf, "{\"h\":{\"dtype\":\"F16\",\"shape\":[4],\"data_offsets\":[0,8]},"
                           "\"bf\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[8,12]},"
                           "\"i\":{\"dtype\":\"I8\",\"shape\":[],\"data_offsets\":[12,13]},"
                           "\"u\":{\"dtype\":\"U64\",\"shape\":[1],\"data_offsets\":[13,21]}}",
                      data, sizeof data);
    td_safetensors st = {0};
    cr_assert_eq(td_safetensors_parse(buf, n, "t", &st), 0, "%s", td_errmsg());
    const float *h = td_data(st.tensors[0]), *bf = td_data(st.tensors[1]);
    cr_assert_eq(st.tensors[0]->dtype, TD_FLOAT32);
    cr_assert(h[0] == 1.0f && h[1] == -2.0f && h[2] > 3e38f && h[3] == 0x1p-24f);
    cr_assert(bf[0] == 1.0f && bf[1] == -3.0f);
    cr_assert_eq(st.tensors[2]->dtype, TD_INT8);
    cr_assert_eq(st.tensors[2]->ndim, 0);
    cr_assert_eq(*(int8_t *)td_data(st.tensors[2]), -1);
    cr_assert_eq(*(int64_t *)td_data(st.tensors[3]), 7);
    td_safetensors_free(&st);
    data[20] = 0x80; /* 2^63 + 7 does not fit int64 */
    n = st_buf(buf, "{\"u\":{\"dtype\":\"U64\",\"shape\":[1],\"data_offsets\":[0,8]}}", data + 13, 8);
    cr_assert_eq(td_safetensors_parse(buf, n, "t", &st), -1);
    cr_assert(strstr(td_errmsg(), "does not fit int64"), "%s", td_errmsg());
}

Test(io, safetensors_writer_refuses_bad_names) {
    td_tensor *t = td_scalar(1, TD_FLOAT32);
    td_tensor *ts[2] = {t, t};
    const char *dup[2] = {"a", "a"}, *bad[1] = {"\xff"}, *meta[1] = {"__metadata__"}, *empty[1] = {""};
    void *buf;
    size_t len;
    cr_assert_eq(td_safetensors_serialize(2, dup, ts, 0, NULL, NULL, &buf, &len), -1);
    cr_assert(strstr(td_errmsg(), "duplicate tensor name 'a'"), "%s", td_errmsg());
    cr_assert_eq(td_safetensors_serialize(1, bad, ts, 0, NULL, NULL, &buf, &len), -1);
    cr_assert(strstr(td_errmsg(), "not valid UTF-8"), "%s", td_errmsg());
    cr_assert_eq(td_safetensors_serialize(1, meta, ts, 0, NULL, NULL, &buf, &len), -1);
    cr_assert_eq(td_safetensors_serialize(1, empty, ts, 0, NULL, NULL, &buf, &len), -1);
    td_release(t);
}

Test(io, npy_header_matches_numpy) {
    int64_t n = 3;
    td_tensor *t = td_zeros(&n, 1, TD_FLOAT32);
    void *buf;
    size_t len;
    cr_assert_eq(td_npy_serialize(t, &buf, &len), 0);
    cr_assert_eq(len, 128 + 12); /* HEADER_LEN 118, data at 128 (FORMATS.md) */
    const char *h = "\x93NUMPY\x01\x00\x76\x00{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }";
    cr_assert_eq(memcmp(buf, h, strlen(h)), 0);
    cr_assert_eq(((char *)buf)[127], '\n');
    td_tensor *u = td_npy_parse(buf, len, "mem");
    cr_assert_not_null(u, "%s", td_errmsg());
    cr_assert_eq(u->ndim, 1);
    cr_assert_eq(u->shape[0], 3);
    td_release(u);
    cr_assert_null(td_npy_parse(buf, len - 1, "t.npy"));
    cr_assert(strstr(td_errmsg(), "npy: t.npy: shape 3 needs 12 data bytes, the file has 11"), "%s", td_errmsg());
    td_free(buf);
    td_release(t);
}

static td_tensor *npy_of(const char *header, const void *data, size_t dlen) {
    char buf[512];
    size_t h = strlen(header), pad = 63 - (10 + h) % 64, hl = h + pad + 1;
    memcpy(buf, "\x93NUMPY\x01\x00", 8);
    buf[8] = (char)hl, buf[9] = 0;
    memcpy(buf + 10, header, h);
    memset(buf + 10 + h, ' ', pad);
    buf[10 + h + pad] = '\n';
    memcpy(buf + 10 + hl, data, dlen);
    return td_npy_parse(buf, 10 + hl + dlen, "t.npy");
}

Test(io, npy_fortran_big_endian_and_refusals) {
    float f[6] = {0, 3, 1, 4, 2, 5}; /* column-major 2x3 of 0..5 */
    td_tensor *t = npy_of("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }", f, sizeof f);
    cr_assert_not_null(t, "%s", td_errmsg());
    cr_assert(td_is_contiguous(t));
    for (int i = 0; i < 6; i++) cr_assert_eq(((float *)td_data(t))[i], (float)i);
    td_release(t);
    unsigned char be[8] = {0x3f, 0xf8, 0, 0, 0, 0, 0, 0}; /* 1.5 big-endian */
    t = npy_of("{'descr': '>f8', 'fortran_order': False, 'shape': (), }", be, 8);
    cr_assert_not_null(t, "%s", td_errmsg());
    cr_assert_eq(*(double *)td_data(t), 1.5);
    td_release(t);
    cr_assert_null(npy_of("{'descr': '|O', 'fortran_order': False, 'shape': (1,), }", be, 8));
    cr_assert(strstr(td_errmsg(), "pickles"), "%s", td_errmsg());
    cr_assert_null(npy_of("{'descr': '|f4', 'fortran_order': False, 'shape': (), }", be, 4));
    cr_assert(strstr(td_errmsg(), "unsupported descr '|f4'"), "%s", td_errmsg());
    cr_assert_null(npy_of("{'descr': '<f4', 'fortran_order': False, 'shape': (1,2,3,4,5,6,7,8,9), }", be, 0));
    cr_assert(strstr(td_errmsg(), "more than 8 dimensions"), "%s", td_errmsg());
    t = npy_of("{'descr': '<f4', 'fortran_order': True, 'shape': (0, 3), }", be, 0);
    cr_assert_not_null(t, "%s", td_errmsg());
    cr_assert(t->shape[0] == 0 && t->shape[1] == 3);
    td_release(t);
}

Test(io, atomic_write_replaces_or_keeps) {
    char dir[] = "/tmp/tide_io_XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    char path[128], sub[160];
    snprintf(path, sizeof path, "%s/f.bin", dir);
    td_iov a[2] = {{"hello ", 6}, {"world", 5}};
    cr_assert_eq(td_write_atomic(path, a, 2), 0, "%s", td_errmsg());
    void *buf;
    size_t len;
    cr_assert_eq(td_read_file(path, &buf, &len), 0);
    cr_assert_eq(len, 11);
    cr_assert_str_eq(buf, "hello world"); /* NUL-terminated */
    td_free(buf);
    snprintf(sub, sizeof sub, "%s/nodir/f.bin", dir);
    cr_assert_eq(td_write_atomic(sub, a, 1), -1);
    cr_assert(strstr(td_errmsg(), "cannot write"), "%s", td_errmsg());
    snprintf(sub, sizeof sub, "%s/d", dir); /* rename over a non-empty directory fails */
    char inner[200];
    snprintf(inner, sizeof inner, "%s/d/x", dir);
    cr_assert_eq(mkdir(sub, 0755) || mkdir(inner, 0755), 0);
    cr_assert_eq(td_write_atomic(sub, a, 1), -1);
    cr_assert(strstr(td_errmsg(), "unchanged"), "%s", td_errmsg());
    char cmd[256];
    snprintf(cmd, sizeof cmd, "ls %s | grep -c tmp", dir);
    FILE *p = popen(cmd, "r");
    int count = -1;
    cr_assert_eq(fscanf(p, "%d", &count), 1);
    pclose(p);
    cr_assert_eq(count, 0, "a temporary file was left behind");
    cr_assert_eq(td_read_file(dir, &buf, &len), -1);
    cr_assert(strstr(td_errmsg(), "is a directory"), "%s", td_errmsg());
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    cr_assert_eq(system(cmd), 0);
}
