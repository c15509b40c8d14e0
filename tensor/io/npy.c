/* tensor/io/npy.c: NumPy .npy reader and writer (numpy/lib/format.py; shared/FORMATS.md). The
 * header is a Python dict literal; it is read by a tiny strict grammar for exactly that dict
 * ('descr', 'fortran_order', 'shape'; quoted keys, True/False, a tuple of non-negative
 * integers), never by anything that could evaluate code. Object arrays (pickles) are refused. */
#include <stdio.h>
#include <string.h>

#include "io.h"

#define FMT        "npy"
#define MAX_HEADER 10000 /* numpy's _MAX_HEADER_SIZE: no legitimate header comes close */

typedef struct hp { /* header parser */
    const char *s;
    size_t n, i;
    const char *what;
} hp;

static int hfail(hp *p, const char *msg) {
    return td_error(FMT ": %s: header byte %zu: %s", p->what, p->i, msg);
}

static void hws(hp *p) {
    while (p->i < p->n && (p->s[p->i] == ' ' || p->s[p->i] == '\t' || p->s[p->i] == '\n' || p->s[p->i] == '\r'))
        p->i++;
}

static int hpeek(hp *p) {
    hws(p);
    return p->i < p->n ? (unsigned char)p->s[p->i] : -1;
}

static int hexpect(hp *p, char c) {
    char m[48];
    if (hpeek(p) != (unsigned char)c) {
        snprintf(m, sizeof m, "expected '%c'", c);
        return hfail(p, m);
    }
    p->i++;
    return 0;
}

/* a quoted string without escapes into out[cap] */
static int hstring(hp *p, char *out, size_t cap) {
    int q = hpeek(p);
    if (q != '\'' && q != '"') return hfail(p, "expected a quoted string");
    size_t start = ++p->i;
    while (p->i < p->n && p->s[p->i] != q) {
        if (p->s[p->i] == '\\') return hfail(p, "escapes are not supported in header strings");
        p->i++;
    }
    if (p->i >= p->n) return hfail(p, "unterminated string");
    size_t len = p->i - start;
    p->i++;
    if (len >= cap) return hfail(p, "string too long");
    memcpy(out, p->s + start, len);
    out[len] = 0;
    return 0;
}

/* (a, b, ...) with the Python rule that one element needs a trailing comma */
static int htuple(hp *p, int64_t *shape, int *ndim) {
    if (hexpect(p, '(') < 0) return -1;
    int k = 0;
    bool comma = false;
    while (hpeek(p) != ')') {
        int c = hpeek(p);
        if (c == '-') return hfail(p, "negative dimension in 'shape'");
        if (c < '0' || c > '9') return hfail(p, "expected an integer or ')' in 'shape'");
        if (k == TD_MAX_DIMS) return hfail(p, "'shape' has more than 8 dimensions (tide's limit)");
        size_t start = p->i;
        int64_t v = 0;
        while (p->i < p->n && p->s[p->i] >= '0' && p->s[p->i] <= '9') {
            int d = p->s[p->i++] - '0';
            if (v > (INT64_MAX - d) / 10) return hfail(p, "dimension too large in 'shape'");
            v = v * 10 + d;
        }
        if (p->i - start > 1 && p->s[start] == '0') return hfail(p, "leading zero in 'shape'");
        shape[k++] = v;
        comma = false;
        if (hpeek(p) == ',') p->i++, comma = true;
        else if (hpeek(p) != ')') return hfail(p, "expected ',' or ')' in 'shape'");
    }
    p->i++;
    if (k == 1 && !comma) return hfail(p, "'shape' (n) is not a tuple: a 1-tuple is written (n,)");
    *ndim = k;
    return 0;
}

typedef struct npy_info {
    int raw;
    bool swap, fortran;
    int ndim;
    int64_t shape[TD_MAX_DIMS];
} npy_info;

static int parse_descr(const char *d, npy_info *h, const char *what) {
    char o = d[0];
    if (!strcmp(d, "|O") || !strcmp(d, "<O") || !strcmp(d, ">O") || !strcmp(d, "=O"))
        return td_error(FMT ": %s: object arrays hold Python pickles and are refused", what);
    static const struct {
        const char *ks;
        int raw;
    } kinds[] = {{"f4", TD_RAW_F32}, {"f8", TD_RAW_F64}, {"i8", TD_RAW_I64}, {"u1", TD_RAW_U8},
                 {"b1", TD_RAW_BOOL}, {"f2", TD_RAW_F16}, {"i1", TD_RAW_I8}, {"i2", TD_RAW_I16},
                 {"i4", TD_RAW_I32}, {"u2", TD_RAW_U16}, {"u4", TD_RAW_U32}, {"u8", TD_RAW_U64}};
    h->raw = -1;
    if (o == '<' || o == '>' || o == '=' || o == '|')
        for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++)
            if (!strcmp(d + 1, kinds[k].ks)) h->raw = kinds[k].raw;
    if (h->raw >= 0 && o == '|' && td_raw_size(h->raw) > 1) h->raw = -1; /* '|' is for bytes */
    if (h->raw < 0)
        return td_error(FMT ": %s: unsupported descr '%s' (tide reads <f4 <f8 <i8 |u1 |i1 |b1, and <f2 "
                        "as float32, <i2 <i4 <u2 <u4 <u8 as int64; '>' big-endian forms too)", what, d);
    h->swap = o == '>' && td_raw_size(h->raw) > 1;
    return 0;
}

static int parse_dict(hp *p, npy_info *h) {
    unsigned seen = 0;
    char key[32], descr[32];
    if (hexpect(p, '{') < 0) return -1;
    while (hpeek(p) != '}') {
        if (hstring(p, key, sizeof key) < 0 || hexpect(p, ':') < 0) return -1;
        unsigned bit = !strcmp(key, "descr") ? 1 : !strcmp(key, "fortran_order") ? 2 : !strcmp(key, "shape") ? 4 : 0;
        if (!bit) return hfail(p, "unknown key (expected 'descr', 'fortran_order', 'shape')");
        if (seen & bit) return hfail(p, "duplicate key");
        seen |= bit;
        if (bit == 1) {
            if (hpeek(p) == '[') return td_error(FMT ": %s: structured arrays (a list descr) are not supported", p->what);
            if (hstring(p, descr, sizeof descr) < 0 || parse_descr(descr, h, p->what) < 0) return -1;
        } else if (bit == 2) {
            hws(p);
            if (p->n - p->i >= 4 && !memcmp(p->s + p->i, "True", 4)) h->fortran = true, p->i += 4;
            else if (p->n - p->i >= 5 && !memcmp(p->s + p->i, "False", 5)) h->fortran = false, p->i += 5;
            else return hfail(p, "'fortran_order' must be True or False");
        } else if (htuple(p, h->shape, &h->ndim) < 0) {
            return -1;
        }
        if (hpeek(p) == ',') p->i++;
        else if (hpeek(p) != '}') return hfail(p, "expected ',' or '}'");
    }
    p->i++;
    if (hpeek(p) != -1) return hfail(p, "unexpected data after the header dict");
    if (seen != 7)
        return td_error(FMT ": %s: the header has no '%s'", p->what,
                        !(seen & 1) ? "descr" : !(seen & 2) ? "fortran_order" : "shape");
    return 0;
}

static td_tensor *read_npy(const td_src *s) {
    const char *what = s->what;
    unsigned char pre[12];
    if (s->size < 10) {
        td_error(FMT ": %s: %llu bytes is too short for a .npy file (truncated?)", what, (unsigned long long)s->size);
        return NULL;
    }
    if (td_src_read(s, 0, pre, 10) < 0) return NULL;
    if (memcmp(pre, "\x93NUMPY", 6)) {
        td_error(FMT ": %s: not a .npy file (no \\x93NUMPY magic)", what);
        return NULL;
    }
    if (pre[6] < 1 || pre[6] > 3 || pre[7] != 0) {
        td_error(FMT ": %s: unsupported format version %d.%d (tide reads 1.0, 2.0, 3.0)", what, pre[6], pre[7]);
        return NULL;
    }
    uint64_t prefix = pre[6] == 1 ? 10 : 12, hlen = (uint64_t)pre[8] | (uint64_t)pre[9] << 8;
    if (pre[6] > 1) {
        if (s->size < 12) {
            td_error(FMT ": %s: truncated in the header length", what);
            return NULL;
        }
        if (td_src_read(s, 10, pre + 10, 2) < 0) return NULL;
        hlen |= (uint64_t)pre[10] << 16 | (uint64_t)pre[11] << 24;
    }
    if (hlen > MAX_HEADER) {
        td_error(FMT ": %s: header length %llu exceeds %d bytes", what, (unsigned long long)hlen, MAX_HEADER);
        return NULL;
    }
    if (prefix + hlen > s->size) {
        td_error(FMT ": %s: header length %llu runs past the end of the file (%llu bytes): truncated",
                 what, (unsigned long long)hlen, (unsigned long long)s->size);
        return NULL;
    }
    char hb[MAX_HEADER];
    if (td_src_read(s, prefix, hb, (size_t)hlen) < 0) return NULL;
    for (size_t k = 0; k < hlen; k++)
        if ((unsigned char)hb[k] >= 0x80 || (hb[k] < 0x20 && hb[k] != '\n' && hb[k] != '\t' && hb[k] != '\r')) {
            td_error(FMT ": %s: header byte %zu: not printable ASCII", what, k);
            return NULL;
        }
    npy_info h = {0};
    hp p = {hb, (size_t)hlen, 0, what};
    if (parse_dict(&p, &h) < 0) return NULL;
    uint64_t count = 1, bytes;
    bool over = false;
    for (int k = 0; k < h.ndim; k++) over |= __builtin_mul_overflow(count, (uint64_t)h.shape[k], &count);
    for (int k = 0; k < h.ndim; k++) /* a zero dim: no elements, however big the others */
        if (h.shape[k] == 0) count = 0, over = false;
    over |= __builtin_mul_overflow(count, (uint64_t)td_raw_size(h.raw), &bytes);
    char sh[160];
    td_shape_str(h.shape, h.ndim, sh, sizeof sh);
    uint64_t avail = s->size - prefix - hlen;
    if (over || bytes > avail) {
        td_error(FMT ": %s: shape %s needs %s%llu data bytes, the file has %llu: truncated", what, sh,
                 over ? "more than " : "", over ? (unsigned long long)UINT64_MAX : (unsigned long long)bytes,
                 (unsigned long long)avail);
        return NULL;
    }
    if (bytes < avail) {
        td_error(FMT ": %s: %llu bytes after the data of shape %s", what, (unsigned long long)(avail - bytes), sh);
        return NULL;
    }
    /* Fortran order: the bytes are the C-order array of the reversed shape; read that, then copy
     * its transpose into C order. */
    int64_t rs[TD_MAX_DIMS];
    for (int k = 0; k < h.ndim; k++) rs[k] = h.shape[h.fortran ? h.ndim - 1 - k : k];
    td_tensor *t = td_empty(rs, h.ndim, td_raw_dtype(h.raw));
    if (!t) {
        char msg[300];
        snprintf(msg, sizeof msg, "%s", td_errmsg());
        td_error(FMT ": %s: %s", what, msg);
        return NULL;
    }
    if (td_raw_read(s, prefix + hlen, h.raw, h.swap, t, FMT, what) < 0) {
        td_release(t);
        return NULL;
    }
    if (!h.fortran || h.ndim < 2) return t;
    if (td_numel(t) == 0) { /* no bytes to reorder: just the shape */
        td_release(t);
        return td_empty(h.shape, h.ndim, td_raw_dtype(h.raw));
    }
    int64_t st[TD_MAX_DIMS], cs[TD_MAX_DIMS], acc = 1;
    for (int k = h.ndim - 1; k >= 0; k--) cs[k] = acc, acc *= rs[k];
    for (int k = 0; k < h.ndim; k++) st[k] = cs[h.ndim - 1 - k];
    td_tensor *v = td_view_of(t, h.shape, st, h.ndim, 0);
    td_tensor *c = v ? td_contiguous(v) : NULL;
    td_release(v);
    td_release(t);
    return c;
}

td_tensor *td_npy_parse(const void *buf, size_t len, const char *what) {
    td_src s = {buf, -1, len, what ? what : "<memory>"};
    return read_npy(&s);
}

td_tensor *td_npy_load(const char *path) {
    td_src s;
    if (td_src_open(&s, path) < 0) {
        char msg[300];
        snprintf(msg, sizeof msg, "%s", td_errmsg());
        td_error(FMT ": %s", msg);
        return NULL;
    }
    td_tensor *t = read_npy(&s);
    td_src_close(&s);
    return t;
}

/* numpy 1.24's _write_array_header + _wrap_header, version 1.0: sorted keys, repr() values,
 * spare spaces for the first dim to grow to 21 digits, padding so the data starts at a
 * multiple of 64 (a full 64 when already aligned, as numpy does), final newline. */
static size_t npy_header(const td_tensor *t, char *out, size_t cap) {
    static const char *descr[TD_NDTYPES] = {"<f4", "<f8", "<i8", "|u1", "|b1", "|i1"};
    char shape[256] = "(";
    size_t k = 1;
    for (int d = 0; d < t->ndim; d++)
        k += (size_t)snprintf(shape + k, sizeof shape - k, d ? ", %lld" : "%lld", (long long)t->shape[d]);
    snprintf(shape + k, sizeof shape - k, t->ndim == 1 ? ",)" : ")");
    int n = snprintf(out + 10, cap - 10, "{'descr': '%s', 'fortran_order': False, 'shape': %s, }",
                     descr[t->dtype], shape);
    size_t h = (size_t)n;
    if (t->ndim > 0) {
        char first[32];
        int spare = 21 - snprintf(first, sizeof first, "%lld", (long long)t->shape[0]);
        while (spare-- > 0) out[10 + h++] = ' ';
    }
    size_t hlen = h + 1, pad = 64 - (10 + hlen) % 64;
    memset(out + 10 + h, ' ', pad);
    out[10 + h + pad] = '\n';
    hlen += pad;
    memcpy(out, "\x93NUMPY\x01\x00", 8);
    out[8] = (char)(hlen & 0xff), out[9] = (char)(hlen >> 8);
    return 10 + hlen;
}

int td_npy_save(const char *path, td_tensor *t) {
    char hdr[512];
    size_t hn = npy_header(t, hdr, sizeof hdr);
    td_tensor *c = td_io_contiguous(t);
    if (!c) return -1;
    td_iov v[2] = {{hdr, hn}, {td_io_data(c), (size_t)td_numel(c) * td_dtype_size(c->dtype)}};
    int rc = td_write_atomic(path, v, 2);
    td_release(c);
    return rc;
}

int td_npy_serialize(td_tensor *t, void **buf, size_t *len) {
    char hdr[512];
    size_t hn = npy_header(t, hdr, sizeof hdr), dn = (size_t)td_numel(t) * td_dtype_size(t->dtype);
    *buf = NULL;
    *len = 0;
    td_tensor *c = td_io_contiguous(t);
    char *b = c ? td_malloc(hn + dn) : NULL;
    if (b) {
        memcpy(b, hdr, hn);
        if (dn) memcpy(b + hn, td_data(c), dn);
        *buf = b;
        *len = hn + dn;
    }
    td_release(c);
    return b ? 0 : -1;
}
