/* tensor/io/idx.c: IDX files (the MNIST format), plain or gzipped, parsed from memory and
 * validated before a byte is trusted: magic 00 00 type ndims, ndims big-endian u32 sizes, then
 * exactly prod(sizes) elements, big-endian. uint8 stays uint8, int8/int16/int32 become int64,
 * float32 and float64 stay as they are. */
#include "../tide.h"

#include <stdio.h>
#include <string.h>
#include <zlib.h>

#define MAX_DATA ((uint64_t)1 << 40) /* bytes: td_empty's own limit */
#define GZ_RATIO 1032                /* deflate's best compression ratio: caps the claimed size */
#define GZ_CHUNK ((size_t)1 << 22)   /* bytes inflated between interrupt polls */

typedef struct idx_header {
    int code, ndim; /* element type code, 1..8 */
    td_dtype dt;    /* of the tensor made */
    size_t esz;     /* bytes per element in the file */
    int64_t shape[TD_MAX_DIMS];
    size_t hdr, data; /* bytes of header (4 + 4 ndim) and of data (overflow-checked) */
} idx_header;

static const struct {
    int code;
    size_t esz; /* bytes per element in the file */
    td_dtype dt;
} types[] = {
    {0x08, 1, TD_UINT8},   /* unsigned byte */
    {0x09, 1, TD_INT64},   /* signed byte */
    {0x0B, 2, TD_INT64},   /* short */
    {0x0C, 4, TD_INT64},   /* int */
    {0x0D, 4, TD_FLOAT32}, /* float */
    {0x0E, 8, TD_FLOAT64}, /* double */
};

/* Header from its first bytes b[0..n): n may be short, in which case *need says how many
 * bytes the header has and 1 is returned (call again with more). 0 when done, -1 + error. */
static int parse_header(const uint8_t *b, size_t n, const char *name, idx_header *h, size_t *need) {
    *need = 4;
    if (n < 4) return 1;
    if (b[0] != 0 || b[1] != 0)
        return td_error("idx: %s: bad magic %02x %02x %02x %02x (expected 00 00 type ndims: not "
                        "an IDX file)",
                        name, b[0], b[1], b[2], b[3]);
    h->code = b[2];
    h->esz = 0;
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        if (types[i].code == h->code) h->esz = types[i].esz, h->dt = types[i].dt;
    if (!h->esz)
        return td_error("idx: %s: unknown element type 0x%02x (expected 0x08 uint8, 0x09 int8, "
                        "0x0B int16, 0x0C int32, 0x0D float32 or 0x0E float64)",
                        name, h->code);
    h->ndim = b[3];
    if (h->ndim < 1 || h->ndim > TD_MAX_DIMS)
        return td_error("idx: %s: %d dims (expected 1..%d)", name, h->ndim, TD_MAX_DIMS);
    h->hdr = *need = 4 + 4 * (size_t)h->ndim;
    if (n < h->hdr) return 1;
    uint64_t total = h->esz, span = h->esz; /* span: sizes of 0 taken as 1 (the strides) */
    bool over = false;
    for (int i = 0; i < h->ndim; i++) {
        const uint8_t *p = b + 4 + 4 * i;
        h->shape[i] =
            (int64_t)((uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]);
        over = over || __builtin_mul_overflow(total, (uint64_t)h->shape[i], &total) ||
               __builtin_mul_overflow(span, h->shape[i] ? (uint64_t)h->shape[i] : 1, &span);
    }
    if (over || total > MAX_DATA || span > MAX_DATA) {
        char buf[128];
        return td_error("idx: %s: sizes %s of %zu-byte elements exceed 2^40 bytes", name,
                        td_shape_str(h->shape, h->ndim, buf, sizeof buf), h->esz);
    }
    h->data = (size_t)total;
    return 0;
}

/* Turns the file's big-endian elements at raw into t's values. raw may be the last
 * h->data bytes of t's own buffer: element i is read before out[i] is written, and out[i]
 * never reaches past raw's element i (8 (i+1) <= 8 count - esz count + esz (i+1)). */
static void decode(td_tensor *t, const uint8_t *raw, const idx_header *h) {
    int64_t count = td_numel(t);
    uint8_t *out = td_data(t);
    for (int64_t i = 0; i < count; i++) {
        const uint8_t *p = raw + (size_t)i * h->esz;
        uint64_t v = 0;
        for (size_t k = 0; k < h->esz; k++) v = v << 8 | p[k];
        switch (h->code) {
        case 0x08:
            out[i] = (uint8_t)v;
            break;
        case 0x09:
            ((int64_t *)(void *)out)[i] = (int8_t)v;
            break;
        case 0x0B:
            ((int64_t *)(void *)out)[i] = (int16_t)v;
            break;
        case 0x0C:
            ((int64_t *)(void *)out)[i] = (int32_t)v;
            break;
        case 0x0D:
            memcpy(out + 4 * i, &(uint32_t){(uint32_t)v}, 4);
            break;
        default:
            memcpy(out + 8 * i, &v, 8);
            break;
        }
    }
}

/* A tensor for the data, and *raw where the file's bytes go: the end of its buffer (NULL when
 * there are none: an empty tensor has no buffer). */
static td_tensor *make(const idx_header *h, uint8_t **raw) {
    td_tensor *t = td_empty(h->shape, h->ndim, h->dt);
    *raw = NULL;
    if (t && h->data)
        *raw = (uint8_t *)td_data(t) + (size_t)td_numel(t) * td_dtype_size(h->dt) - h->data;
    return t;
}

static const char *size_str(size_t n, char *buf, size_t len) {
    snprintf(buf, len, "%zu byte%s", n, n == 1 ? "" : "s");
    return buf;
}

/* ---- plain ----------------------------------------------------------------------------------- */

static td_tensor *parse_plain(const uint8_t *b, size_t n, const char *name) {
    idx_header h;
    size_t need;
    char e[64], g[64];
    int rc = parse_header(b, n, name, &h, &need);
    if (rc < 0) return NULL;
    if (rc > 0) {
        td_error("idx: %s: truncated header: expected %s, got %s", name,
                 size_str(need, e, sizeof e), size_str(n, g, sizeof g));
        return NULL;
    }
    if (n - h.hdr != h.data) {
        td_error("idx: %s: %s: expected %s of data after the %zu-byte header, got %s", name,
                 n - h.hdr < h.data ? "truncated" : "trailing bytes", size_str(h.data, e, sizeof e),
                 h.hdr, size_str(n - h.hdr, g, sizeof g));
        return NULL;
    }
    uint8_t *raw;
    td_tensor *t = make(&h, &raw);
    if (!t) return NULL;
    if (h.data) {
        memmove(raw, b + h.hdr, h.data);
        decode(t, raw, &h);
    }
    return t;
}

/* ---- gzip ------------------------------------------------------------------------------------ */

typedef struct gz {
    z_stream z;
    const uint8_t *end; /* of the compressed input */
    const char *name;
    bool done; /* the last member ended */
} gz;

/* Inflates up to `want` bytes into dst (NULL: count and discard). Returns the bytes made, which
 * is less than want only when the stream ended; (size_t)-1 + error on corrupt data, a stream
 * cut short, or an interrupt. Members of a multi-member file are read one after another. */
static size_t gz_read(gz *s, uint8_t *dst, size_t want) {
    uint8_t scratch[4096];
    size_t got = 0;
    while (got < want && !s->done) {
        size_t in = (size_t)(s->end - s->z.next_in), k = want - got;
        s->z.avail_in = (uInt)(in < GZ_CHUNK ? in : GZ_CHUNK);
        k = dst ? (k < GZ_CHUNK ? k : GZ_CHUNK) : (k < sizeof scratch ? k : sizeof scratch);
        s->z.next_out = dst ? dst + got : scratch;
        s->z.avail_out = (uInt)k;
        int rc = inflate(&s->z, Z_NO_FLUSH);
        got += k - s->z.avail_out;
        if (rc == Z_STREAM_END) {
            const uint8_t *p = s->z.next_in;
            if (s->end - p >= 2 && p[0] == 0x1f && p[1] == 0x8b) {
                inflateReset(&s->z); /* another gzip member follows */
                continue;
            }
            if (p != s->end) {
                td_error("idx: %s: %td bytes of garbage after the gzip stream", s->name,
                         s->end - p);
                return (size_t)-1;
            }
            s->done = true;
        } else if (rc == Z_BUF_ERROR && s->z.next_in == s->end) {
            td_error("idx: %s: the gzip stream is truncated (it ends before its end marker)",
                     s->name);
            return (size_t)-1;
        } else if (rc != Z_OK && rc != Z_BUF_ERROR) {
            td_error("idx: %s: bad gzip data (%s)", s->name, s->z.msg ? s->z.msg : "zlib error");
            return (size_t)-1;
        }
        if (td_poll_interrupt() < 0) return (size_t)-1;
    }
    return got;
}

static td_tensor *parse_gz(const uint8_t *b, size_t n, const char *name) {
    gz s = {.end = b + n, .name = name};
    s.z.next_in = (Bytef *)(uintptr_t)b; /* zlib's next_in is not const */
    if (inflateInit2(&s.z, 15 + 16) != Z_OK) {
        td_error("idx: %s: cannot start zlib (out of memory?)", name);
        return NULL;
    }
    uint8_t hb[4 + 4 * TD_MAX_DIMS];
    idx_header h;
    td_tensor *t = NULL;
    size_t have = 0, need = 4, got;
    char e[64], g[64];
    int rc;
    while ((rc = parse_header(hb, have, name, &h, &need)) > 0) {
        if ((got = gz_read(&s, hb + have, need - have)) == (size_t)-1) goto fail;
        if (have + got < need) {
            td_error("idx: %s: truncated header: expected %s, the gzip stream holds %s", name,
                     size_str(need, e, sizeof e), size_str(have + got, g, sizeof g));
            goto fail;
        }
        have = need;
    }
    if (rc < 0) goto fail;
    if (h.data / GZ_RATIO > n) { /* refuse before allocating what a bomb claims */
        td_error("idx: %s: the header claims %s of data, more than a %s gzip file can hold", name,
                 size_str(h.data, e, sizeof e), size_str(n, g, sizeof g));
        goto fail;
    }
    uint8_t *raw;
    if (!(t = make(&h, &raw))) goto fail;
    if ((got = gz_read(&s, raw, h.data)) == (size_t)-1) goto fail;
    if (got < h.data) {
        td_error("idx: %s: truncated: expected %s of data after the %zu-byte header, got %s", name,
                 size_str(h.data, e, sizeof e), h.hdr, size_str(got, g, sizeof g));
        goto fail;
    }
    size_t extra = gz_read(&s, NULL, (size_t)1 << 20); /* counts what follows, up to 1 MiB */
    if (extra == (size_t)-1) goto fail;
    if (extra) {
        td_error("idx: %s: trailing bytes: expected %s of data after the %zu-byte header, got "
                 "%s%s",
                 name, size_str(h.data, e, sizeof e), h.hdr,
                 extra == (size_t)1 << 20 ? "over " : "", size_str(h.data + extra, g, sizeof g));
        goto fail;
    }
    inflateEnd(&s.z);
    if (h.data) decode(t, raw, &h);
    return t;
fail:
    inflateEnd(&s.z);
    td_release(t);
    return NULL;
}

/* ---- entry points ---------------------------------------------------------------------------- */

td_tensor *td_idx_parse(const void *buf, size_t n, const char *name) {
    const uint8_t *b = buf;
    if (!name) name = "(buffer)";
    if (n >= 2 && b[0] == 0x1f && b[1] == 0x8b) return parse_gz(b, n, name);
    return parse_plain(b, n, name);
}

td_tensor *td_idx_read(const char *path) {
    void *buf;
    size_t n;
    if (td_read_file(path, &buf, &n) < 0) {
        char msg[512]; /* td_errmsg() is the buffer td_error writes: copy it first */
        snprintf(msg, sizeof msg, "%s", td_errmsg());
        td_error("idx: %s", msg); /* "idx: cannot open 'path': No such file or directory" */
        return NULL;
    }
    td_tensor *t = td_idx_parse(buf, n, path);
    td_free(buf);
    return t;
}
