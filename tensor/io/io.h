/* tensor/io/io.h: what the file-format readers and writers of tensor/io/ share; not public API
 * (tide.h is). A td_src is where a reader's bytes come from: a memory buffer (the *_parse
 * entry points, which the fuzzers call) or an open file read with pread, so tensor data goes
 * straight from the file into storage without a second whole-file copy. */
#ifndef TIDE_IO_H
#define TIDE_IO_H

#include "../tide.h"

typedef struct td_src {
    const unsigned char *buf; /* memory source, or NULL for the file fd */
    int fd;                   /* -1 when buf is used */
    uint64_t size;            /* bytes in the source */
    const char *what;         /* the file name (or "<memory>") for messages */
} td_src;

/* td_data, but NULL for an empty tensor: its storage has no buffer, and NULL + 0 is undefined */
static inline void *td_io_data(const td_tensor *t) {
    return td_numel(t) ? td_data(t) : NULL;
}

/* td_contiguous, except that an empty tensor is returned as it is (a new ref): there are no
 * bytes to arrange, and copying would walk a storage without a buffer */
static inline td_tensor *td_io_contiguous(td_tensor *t) {
    if (td_numel(t) == 0) {
        td_retain(t);
        return t;
    }
    return td_contiguous(t);
}

int td_src_open(td_src *s, const char *path); /* 0 or -1 + error naming path */
void td_src_close(td_src *s);
/* Copies n bytes at off into dst; the caller has checked off + n <= size. -1 + error on an I/O
 * error, a file that shrank under us, or an interrupt (polled between 64 MiB chunks). */
int td_src_read(const td_src *s, uint64_t off, void *dst, size_t n);

/* Index of the first byte of s[0..n) that breaks strict UTF-8 (overlong forms, surrogates and
 * code points above U+10FFFF included), or n when it is all valid. */
size_t td_utf8_check(const unsigned char *s, size_t n);

/* s made printable for an error message: at most ~60 bytes, control bytes as \xNN. */
const char *td_io_quote(const char *s, char *buf, size_t n);

/* A strict JSON reader over one buffer (the safetensors header): whitespace, objects, strings
 * with every escape (surrogate pairs combined, lone surrogates refused), non-negative integers.
 * Errors go through td_error as "<fmt>: <what>: header byte <i>: <problem>". */
typedef struct td_json {
    const char *s;
    size_t n, i;     /* buffer length and read position */
    const char *fmt; /* "safetensors" */
    const char *what;
} td_json;
int td_json_fail(td_json *j, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int td_json_peek(td_json *j);              /* next non-space byte (not consumed) or -1 at end */
int td_json_expect(td_json *j, char c);    /* skips space, consumes c; 0 or -1 + error */
/* A string into *out (td_malloc'd, NUL-terminated; NUL inside is refused). 0 or -1 + error. */
int td_json_string(td_json *j, char **out);
/* A non-negative integer below 2^63 (no sign, fraction, exponent or leading zero); `ctx` names
 * the field in messages. 0 or -1 + error. */
int td_json_uint(td_json *j, uint64_t *v, const char *ctx);

/* Little-endian conversions the readers share (src may be unaligned; dst is aligned). */
enum td_raw {
    TD_RAW_F32, TD_RAW_F64, TD_RAW_I64, TD_RAW_U8, TD_RAW_BOOL, /* stored as themselves */
    TD_RAW_F16, TD_RAW_BF16,                                    /* to float32 */
    TD_RAW_I8,                                                  /* as itself */
    TD_RAW_I16, TD_RAW_I32, TD_RAW_U16, TD_RAW_U32, TD_RAW_U64, /* to int64 */
};
td_dtype td_raw_dtype(int raw);           /* the tide dtype raw data is read into */
size_t td_raw_size(int raw);              /* bytes per element in the file */
/* Reads n elements of raw type `raw` at off of src into t (contiguous, td_raw_dtype(raw)),
 * byte-swapping each element first when `swap`. -1 + error (I/O, or a U64 value above
 * INT64_MAX, named with `name`). */
int td_raw_read(const td_src *s, uint64_t off, int raw, bool swap, td_tensor *t,
                const char *fmt, const char *name);

#endif
