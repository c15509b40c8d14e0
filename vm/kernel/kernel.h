/* vm/kernel/kernel.h: `tide --kernel FILE`, the Jupyter kernel (messaging protocol 5.3). The
 * message parsing and JSON are apart from the sockets so that tests/fuzz/fuzz_kernel.c can
 * reach them without ZeroMQ. Everything here lives in tide/kernelwire.so, which the program
 * loads on demand: zmq and libcrypto are never mapped by `tide -e` or by the core module. */
#ifndef TIDE_KERNEL_H
#define TIDE_KERNEL_H

#include <lua.h>
#include <stddef.h>

/* JSON <-> Lua (json.c). Decoding pushes the value (objects and arrays become tables; arrays
 * get the metatable tdK_array marks; null becomes nil) or returns -1 with td_errmsg() set: the
 * text must be valid UTF-8 and at most 64 levels deep. */
int tdK_json_decode(lua_State *L, const char *s, size_t n, const char *what);
/* A growable text buffer (malloc'd; NUL-terminated once anything was put) */
typedef struct tdK_buf {
    char *p;
    size_t n, cap;
} tdK_buf;
int tdK_put(tdK_buf *b, const char *s, size_t n);       /* appends; 0 or -1 + error */
int tdK_json_string(tdK_buf *b, const char *s, size_t n); /* appends s as a JSON string */
/* Writes the value at idx into b (from its start): tables marked as arrays or with a [1] are arrays, other tables
 * objects with their string keys; strings are escaped with invalid UTF-8 as U+FFFD; NaN and
 * infinities are null. 0, or -1 + td_errmsg() on a cycle, a value JSON cannot hold (a
 * function...) or no memory. */
int tdK_json_encode(lua_State *L, int idx, tdK_buf *b);
/* sets the array metatable on the table at idx */
void tdK_array(lua_State *L, int idx);

/* One frame of a multipart message. */
typedef struct tdK_frame {
    const char *p;
    size_t n;
} tdK_frame;

/* The wire format (wire.c): [identities..., "<IDS|MSG>", signature, header, parent_header,
 * metadata, content, buffers...]. tdK_parse finds the delimiter, checks the HMAC-SHA256
 * signature (hex, over the four JSON frames; none when the key is empty) and returns the
 * delimiter's index, or -1 with *why naming what is wrong. */
int tdK_parse(const tdK_frame *f, int n, const char *key, size_t keylen, const char **why);
/* the hex signature of the four frames into out[65]; 0, or -1 when libcrypto failed */
int tdK_sign(const char *key, size_t keylen, const tdK_frame parts[4], char out[65]);

#endif
