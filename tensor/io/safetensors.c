/* tensor/io/safetensors.c: the safetensors reader and writer (huggingface/safetensors
 * "Format"; shared/FORMATS.md has the rules). The reader checks, in this order: the 8-byte
 * header length against the file and a 100 MB cap, strict UTF-8, the JSON (json.c: strict,
 * duplicates refused), each entry's dtype, shape (at most TD_MAX_DIMS entries, products
 * overflow-checked) and data_offsets (back to back from 0 when sorted, no hole or overlap,
 * exactly the shape's byte size, ending exactly at the end of the file) - and only then
 * allocates tensors, whose bytes are read straight into their storage. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io.h"

#define MAX_HEADER 100000000u /* the reference reader's MAX_HEADER_SIZE */
#define FMT "safetensors"

/* dtype names of the format; raw < 0: known but refused. rank: the reference's Dtype enum
 * order, by which its writer sorts (descending) before the name. */
static const struct {
    const char *name;
    int raw, rank;
    unsigned bits;
} dtypes[] = {
    {"F32", TD_RAW_F32, 11, 32},  {"F64", TD_RAW_F64, 12, 64},  {"I64", TD_RAW_I64, 13, 64},
    {"U8", TD_RAW_U8, 1, 8},      {"BOOL", TD_RAW_BOOL, 0, 8},  {"F16", TD_RAW_F16, 7, 16},
    {"BF16", TD_RAW_BF16, 8, 16}, {"I8", TD_RAW_I8, 2, 8},      {"I16", TD_RAW_I16, 5, 16},
    {"I32", TD_RAW_I32, 9, 32},   {"U16", TD_RAW_U16, 6, 16},   {"U32", TD_RAW_U32, 10, 32},
    {"U64", TD_RAW_U64, 14, 64},  {"C64", -1, 15, 64},          {"F8_E5M2", -1, 3, 8},
    {"F8_E4M3", -1, 4, 8},        {"F8_E8M0", -1, 4, 8},        {"F8_E4M3FNUZ", -1, 4, 8},
    {"F8_E5M2FNUZ", -1, 4, 8},    {"F4", -1, 0, 4},             {"F6_E2M3", -1, 0, 6},
    {"F6_E3M2", -1, 0, 6},
};
#define NDTYPES (int)(sizeof dtypes / sizeof dtypes[0])
static const int write_dtype[TD_NDTYPES] = {0, 1, 2, 3, 4, 7}; /* td_dtype -> dtypes[] row */

typedef struct entry {
    char *name;
    int dt; /* row of dtypes[] */
    int ndim;
    int64_t shape[TD_MAX_DIMS];
    uint64_t begin, end; /* data_offsets, relative to the data section */
} entry;

typedef struct header {
    entry *e;
    int n, cap;
    char **mk, **mv; /* __metadata__ */
    int nm, mcap;
    bool has_meta;
} header;

static void header_free(header *h) {
    for (int i = 0; i < h->n; i++) td_free(h->e[i].name);
    for (int i = 0; i < h->nm; i++) td_free(h->mk[i]), td_free(h->mv[i]);
    free(h->e);
    free(h->mk);
    free(h->mv);
    memset(h, 0, sizeof *h);
}

static int grow(void **p, int *cap, size_t elem, int need) {
    if (need <= *cap) return 0;
    int c = *cap ? *cap * 2 : 16;
    void *q = td_sys_realloc(*p, (size_t)c * elem);
    if (!q) return td_error(FMT ": out of memory reading the header");
    *p = q;
    *cap = c;
    return 0;
}

static int grow_meta(header *h) {
    if (h->nm < h->mcap) return 0;
    int c = h->mcap ? h->mcap * 2 : 16;
    char **k = td_sys_realloc(h->mk, (size_t)c * sizeof *k);
    if (k) h->mk = k;
    char **v = k ? td_sys_realloc(h->mv, (size_t)c * sizeof *v) : NULL;
    if (!v) return td_error(FMT ": out of memory reading the header");
    h->mv = v;
    h->mcap = c;
    return 0;
}

static int parse_metadata(td_json *j, header *h) {
    if (h->has_meta) return td_json_fail(j, "duplicate key '__metadata__'");
    h->has_meta = true;
    if (td_json_expect(j, '{') < 0) return -1;
    if (td_json_peek(j) == '}') return j->i++, 0;
    for (;;) {
        char *k = NULL, *v = NULL;
        if (td_json_string(j, &k) < 0) return -1;
        if (td_json_expect(j, ':') < 0 || grow_meta(h) < 0) {
            td_free(k);
            return -1;
        }
        if (td_json_peek(j) != '"') {
            char q[96];
            td_json_fail(j, "__metadata__ '%s': values must be strings", td_io_quote(k, q, sizeof q));
            td_free(k);
            return -1;
        }
        if (td_json_string(j, &v) < 0) {
            td_free(k);
            return -1;
        }
        h->mk[h->nm] = k, h->mv[h->nm] = v, h->nm++;
        int c = td_json_peek(j);
        if (c == '}') return j->i++, 0;
        if (td_json_expect(j, ',') < 0) return -1;
    }
}

/* [a, b, ...] of up to `max` integers into v; returns the count or -1 + error */
static int parse_ints(td_json *j, uint64_t *v, int max, const char *ctx) {
    if (td_json_expect(j, '[') < 0) return -1;
    if (td_json_peek(j) == ']') return j->i++, 0;
    for (int k = 0;; k++) {
        if (k == max) return td_json_fail(j, "%s: more than %d entries", ctx, max);
        if (td_json_uint(j, &v[k], ctx) < 0) return -1;
        if (td_json_peek(j) == ']') return j->i++, k + 1;
        if (td_json_expect(j, ',') < 0) return -1;
    }
}

static int parse_tensor(td_json *j, entry *e) {
    char q[96], ctx[160];
    const char *name = td_io_quote(e->name, q, sizeof q);
    unsigned seen = 0;
    uint64_t v[TD_MAX_DIMS + 1];
    if (td_json_expect(j, '{') < 0) return -1;
    if (td_json_peek(j) != '}') for (;;) {
        char *f = NULL;
        if (td_json_string(j, &f) < 0) return -1;
        unsigned bit = !strcmp(f, "dtype") ? 1 : !strcmp(f, "shape") ? 2 : !strcmp(f, "data_offsets") ? 4 : 0;
        if (!bit || (seen & bit)) {
            char fq[96];
            td_json_fail(j, "tensor '%s': %s field '%s' (expected dtype, shape, data_offsets)", name,
                         bit ? "duplicate" : "unknown", td_io_quote(f, fq, sizeof fq));
            td_free(f);
            return -1;
        }
        td_free(f);
        seen |= bit;
        if (td_json_expect(j, ':') < 0) return -1;
        if (bit == 1) {
            char *d;
            if (td_json_string(j, &d) < 0) return -1;
            e->dt = -1;
            for (int k = 0; k < NDTYPES; k++)
                if (!strcmp(d, dtypes[k].name)) e->dt = k;
            if (e->dt < 0 || dtypes[e->dt].raw < 0) {
                char dq[96];
                td_json_fail(j, "tensor '%s': %s dtype '%s' (tide reads F32 F64 I64 U8 BOOL, and "
                             "F16 BF16 as float32, I8 I16 I32 U16 U32 U64 as int64)", name,
                             e->dt < 0 ? "unknown" : "unsupported", td_io_quote(d, dq, sizeof dq));
                td_free(d);
                return -1;
            }
            td_free(d);
        } else if (bit == 2) {
            snprintf(ctx, sizeof ctx, "tensor '%s': shape", name);
            if ((e->ndim = parse_ints(j, v, TD_MAX_DIMS, ctx)) < 0) return -1;
            for (int k = 0; k < e->ndim; k++) e->shape[k] = (int64_t)v[k];
        } else {
            snprintf(ctx, sizeof ctx, "tensor '%s': data_offsets", name);
            int k = parse_ints(j, v, 2, ctx);
            if (k < 0) return -1;
            if (k != 2) return td_json_fail(j, "%s: expected [begin, end]", ctx);
            e->begin = v[0], e->end = v[1];
        }
        if (td_json_peek(j) == '}') break;
        if (td_json_expect(j, ',') < 0) return -1;
    }
    j->i++;
    if (seen != 7)
        return td_json_fail(j, "tensor '%s': missing field '%s'", name,
                            !(seen & 1) ? "dtype" : !(seen & 2) ? "shape" : "data_offsets");
    return 0;
}

static int parse_header(td_json *j, header *h) {
    if (j->n == 0 || j->s[0] != '{') return td_json_fail(j, "the header must begin with '{'");
    j->i = 1;
    if (td_json_peek(j) != '}') for (;;) {
        char *k;
        if (td_json_string(j, &k) < 0) return -1;
        if (td_json_expect(j, ':') < 0) {
            td_free(k);
            return -1;
        }
        if (!strcmp(k, "__metadata__")) {
            td_free(k);
            if (parse_metadata(j, h) < 0) return -1;
        } else {
            if (grow((void **)&h->e, &h->cap, sizeof(entry), h->n + 1) < 0) {
                td_free(k);
                return -1;
            }
            entry *e = &h->e[h->n++];
            memset(e, 0, sizeof *e);
            e->name = k;
            if (parse_tensor(j, e) < 0) return -1;
        }
        if (td_json_peek(j) == '}') break;
        if (td_json_expect(j, ',') < 0) return -1;
    }
    j->i++;
    if (td_json_peek(j) != -1) return td_json_fail(j, "unexpected data after the header object");
    return 0;
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int cmp_offsets(const void *a, const void *b) {
    const entry *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return strcmp(x->name, y->name);
}

/* duplicates among n strings (sorted copy); -1 + error naming one */
static int no_dups(char **s, int n, const char *what, const char *kind) {
    if (n < 2) return 0;
    char **c = td_sys_malloc((size_t)n * sizeof *c);
    if (!c) return td_error(FMT ": out of memory");
    memcpy(c, s, (size_t)n * sizeof *c);
    qsort(c, (size_t)n, sizeof *c, cmp_str);
    for (int i = 1; i < n; i++)
        if (!strcmp(c[i - 1], c[i])) {
            char q[96];
            td_error(FMT ": %s: duplicate %s '%s'", what, kind, td_io_quote(c[i], q, sizeof q));
            free(c);
            return -1;
        }
    free(c);
    return 0;
}

/* offsets and sizes, after sorting by offsets (FORMATS.md rules 3-5) */
static int check_layout(header *h, uint64_t data_len, const char *what) {
    if (h->n > 0) /* an empty header has no entry array: qsort must not see NULL */
        qsort(h->e, (size_t)h->n, sizeof(entry), cmp_offsets);
    uint64_t pos = 0;
    for (int i = 0; i < h->n; i++) {
        entry *e = &h->e[i];
        char q[96], p[96], sh[160];
        const char *name = td_io_quote(e->name, q, sizeof q);
        unsigned long long b = e->begin, en = e->end;
        if (en < b) return td_error(FMT ": %s: tensor '%s': data_offsets [%llu, %llu] end before they begin", what, name, b, en);
        if (b < pos)
            return td_error(FMT ": %s: tensor '%s': data_offsets [%llu, %llu] overlap tensor '%s' (which ends at %llu)",
                            what, name, b, en, td_io_quote(h->e[i - 1].name, p, sizeof p), (unsigned long long)pos);
        if (b > pos)
            return td_error(FMT ": %s: tensor '%s': data_offsets [%llu, %llu] leave a hole: expected it to begin at %llu",
                            what, name, b, en, (unsigned long long)pos);
        uint64_t bits = dtypes[e->dt].bits, count = 1;
        bool over = false;
        for (int k = 0; k < e->ndim; k++) over |= __builtin_mul_overflow(count, (uint64_t)e->shape[k], &count);
        over |= __builtin_mul_overflow(count, bits, &bits);
        td_shape_str(e->shape, e->ndim, sh, sizeof sh);
        if (over)
            return td_error(FMT ": %s: tensor '%s': shape %s %s is too large (the byte size overflows)",
                            what, name, sh, dtypes[e->dt].name);
        if (bits / 8 != en - b)
            return td_error(FMT ": %s: tensor '%s': data_offsets [%llu, %llu] do not match shape %s %s (%llu bytes)",
                            what, name, b, en, sh, dtypes[e->dt].name, (unsigned long long)(bits / 8));
        if (en > data_len)
            return td_error(FMT ": %s: tensor '%s': data_offsets [%llu, %llu] run past the end of the data "
                            "(%llu bytes): the file is truncated", what, name, b, en, (unsigned long long)data_len);
        pos = en;
    }
    if (pos != data_len)
        return td_error(FMT ": %s: %llu bytes after the last tensor (the tensors cover %llu of %llu data bytes)",
                        what, (unsigned long long)(data_len - pos), (unsigned long long)pos,
                        (unsigned long long)data_len);
    return 0;
}

static int read_st(const td_src *s, td_safetensors *st) {
    const char *what = s->what;
    memset(st, 0, sizeof *st);
    if (s->size < 8)
        return td_error(FMT ": %s: %llu bytes is too short for the 8-byte header length (truncated?)",
                        what, (unsigned long long)s->size);
    unsigned char lb[8];
    if (td_src_read(s, 0, lb, 8) < 0) return -1;
    uint64_t n = 0;
    for (int k = 7; k >= 0; k--) n = n << 8 | lb[k];
    if (n > MAX_HEADER)
        return td_error(FMT ": %s: header length %llu exceeds the %u-byte limit (not a safetensors file?)",
                        what, (unsigned long long)n, MAX_HEADER);
    if (n > s->size - 8)
        return td_error(FMT ": %s: header length %llu runs past the end of the file (%llu bytes): truncated",
                        what, (unsigned long long)n, (unsigned long long)s->size);
    char *hb = td_sys_malloc(n ? n : 1);
    if (!hb) return td_error(FMT ": %s: out of memory for a %llu-byte header", what, (unsigned long long)n);
    header h = {0};
    int rc = td_src_read(s, 8, hb, (size_t)n);
    size_t bad = rc < 0 ? 0 : td_utf8_check((const unsigned char *)hb, (size_t)n);
    if (rc == 0 && bad < n) rc = td_error(FMT ": %s: the header is not valid UTF-8 (byte %zu)", what, bad);
    td_json j = {hb, (size_t)n, 0, FMT, what};
    if (rc == 0) rc = parse_header(&j, &h);
    free(hb);
    if (rc == 0 && h.n > 0) {
        char **names = td_sys_malloc((size_t)h.n * sizeof *names);
        if (!names) rc = td_error(FMT ": out of memory");
        for (int i = 0; rc == 0 && i < h.n; i++) names[i] = h.e[i].name;
        if (rc == 0) rc = no_dups(names, h.n, what, "tensor name");
        free(names);
    }
    if (rc == 0) rc = no_dups(h.mk, h.nm, what, "__metadata__ key");
    uint64_t base = 8 + n;
    if (rc == 0) rc = check_layout(&h, s->size - base, what);
    if (rc < 0) {
        header_free(&h);
        return -1;
    }
    /* Everything is validated: allocate and read. */
    st->names = td_sys_calloc((size_t)h.n + 1, sizeof(char *));
    st->tensors = td_sys_calloc((size_t)h.n + 1, sizeof(td_tensor *));
    if (!st->names || !st->tensors) rc = td_error(FMT ": %s: out of memory", what);
    for (int i = 0; rc == 0 && i < h.n; i++) {
        entry *e = &h.e[i];
        int raw = dtypes[e->dt].raw;
        td_tensor *t = td_empty(e->shape, e->ndim, td_raw_dtype(raw));
        if (!t) {
            char msg[300], q[96];
            snprintf(msg, sizeof msg, "%s", td_errmsg());
            rc = td_error(FMT ": %s: tensor '%s': %s", what, td_io_quote(e->name, q, sizeof q), msg);
            break;
        }
        st->tensors[i] = t;
        st->names[i] = e->name;
        e->name = NULL; /* now owned by st */
        st->n = i + 1;
        rc = td_raw_read(s, base + e->begin, raw, false, t, FMT, st->names[i]);
    }
    if (rc == 0) {
        st->nmeta = h.nm, st->meta_keys = h.mk, st->meta_vals = h.mv;
        h.nm = 0, h.mk = h.mv = NULL;
    }
    header_free(&h);
    if (rc < 0) td_safetensors_free(st);
    return rc;
}

int td_safetensors_parse(const void *buf, size_t len, const char *what, td_safetensors *st) {
    td_src s = {buf, -1, len, what ? what : "<memory>"};
    return read_st(&s, st);
}

int td_safetensors_load(const char *path, td_safetensors *st) {
    td_src s;
    memset(st, 0, sizeof *st);
    if (td_src_open(&s, path) < 0) {
        char msg[300];
        snprintf(msg, sizeof msg, "%s", td_errmsg());
        return td_error(FMT ": %s", msg);
    }
    int rc = read_st(&s, st);
    td_src_close(&s);
    return rc;
}

void td_safetensors_free(td_safetensors *st) {
    for (int i = 0; i < st->n; i++) td_free(st->names[i]), td_release(st->tensors[i]);
    for (int i = 0; i < st->nmeta; i++) td_free(st->meta_keys[i]), td_free(st->meta_vals[i]);
    free(st->names);
    free(st->tensors);
    free(st->meta_keys);
    free(st->meta_vals);
    memset(st, 0, sizeof *st);
}


/* ---- writer ------------------------------------------------------------------------------- */

typedef struct sbuf {
    char *p;
    size_t n, cap;
    bool oom;
} sbuf;

static void sb_put(sbuf *b, const char *s, size_t n) {
    if (b->oom) return;
    if (b->n + n + 1 > b->cap) {
        size_t c = (b->n + n + 1) * 2;
        char *q = td_sys_realloc(b->p, c);
        if (!q) {
            b->oom = true;
            return;
        }
        b->p = q, b->cap = c;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
}

static void sb_cat(sbuf *b, const char *s) {
    sb_put(b, s, strlen(s));
}

/* a JSON string as serde_json (and Python's json with ensure_ascii=False) writes it */
static void sb_str(sbuf *b, const char *s) {
    sb_put(b, "\"", 1);
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        char e[8];
        const char *r = NULL;
        switch (*c) {
        case '"': r = "\\\""; break;
        case '\\': r = "\\\\"; break;
        case '\b': r = "\\b"; break;
        case '\f': r = "\\f"; break;
        case '\n': r = "\\n"; break;
        case '\r': r = "\\r"; break;
        case '\t': r = "\\t"; break;
        default:
            if (*c < 0x20) snprintf(e, sizeof e, "\\u%04x", *c), r = e;
        }
        if (r) sb_cat(b, r);
        else sb_put(b, (const char *)c, 1);
    }
    sb_put(b, "\"", 1);
}

typedef struct ord {
    int rank, i;
    const char *name;
} ord;

static int cmp_ord(const void *a, const void *b) {
    const ord *x = a, *y = b;
    if (x->rank != y->rank) return x->rank > y->rank ? -1 : 1; /* descending dtype order */
    return strcmp(x->name, y->name);
}

static int check_string(const char *s, const char *kind, bool nonempty) {
    if (!s) return td_error(FMT ": a %s is missing (NULL)", kind);
    size_t n = strlen(s);
    if (nonempty && n == 0) return td_error(FMT ": a %s is empty", kind);
    if (td_utf8_check((const unsigned char *)s, n) < n) {
        char q[96];
        return td_error(FMT ": %s '%s' is not valid UTF-8", kind, td_io_quote(s, q, sizeof q));
    }
    return 0;
}

/* What a file is made of: the contiguous tensors in file order and the 8 + N header bytes. */
typedef struct plan {
    int n;
    td_tensor **c; /* [n] owned refs, in file order */
    sbuf h;        /* 8-byte length + header */
    uint64_t data; /* bytes of tensor data */
} plan;

static void plan_free(plan *p) {
    for (int i = 0; p->c && i < p->n; i++) td_release(p->c[i]);
    free(p->c);
    free(p->h.p);
}

static int plan_build(plan *p, int n, const char *const *names, td_tensor *const *ts, int nmeta,
                      const char *const *mkeys, const char *const *mvals) {
    memset(p, 0, sizeof *p);
    if (n < 0 || nmeta < 0) return td_error(FMT ": negative tensor or metadata count");
    for (int i = 0; i < n; i++) {
        if (check_string(names[i], "tensor name", true) < 0) return -1;
        if (!strcmp(names[i], "__metadata__")) return td_error(FMT ": '__metadata__' cannot name a tensor");
        if (!ts[i]) return td_error(FMT ": tensor '%s' is missing (NULL)", names[i]);
    }
    for (int i = 0; i < nmeta; i++)
        if (check_string(mkeys[i], "metadata key", false) < 0 ||
            check_string(mvals[i], "metadata value", false) < 0)
            return -1;
    if (no_dups((char **)names, n, "write", "tensor name") < 0 ||
        no_dups((char **)mkeys, nmeta, "write", "metadata key") < 0)
        return -1;
    ord *o = td_sys_malloc(((size_t)n + 1) * sizeof *o);
    int *mo = td_sys_malloc(((size_t)nmeta + 1) * sizeof *mo);
    p->c = td_sys_calloc((size_t)n + 1, sizeof *p->c);
    if (!o || !mo || !p->c) {
        free(o), free(mo);
        return td_error(FMT ": out of memory");
    }
    for (int i = 0; i < n; i++) o[i] = (ord){dtypes[write_dtype[ts[i]->dtype]].rank, i, names[i]};
    qsort(o, (size_t)n, sizeof *o, cmp_ord);
    /* metadata keys sorted: the reference writes a HashMap in no fixed order */
    for (int i = 0; i < nmeta; i++) mo[i] = i;
    for (int i = 1; i < nmeta; i++) /* insertion sort: metadata is small */
        for (int k = i; k > 0 && strcmp(mkeys[mo[k - 1]], mkeys[mo[k]]) > 0; k--) {
            int t = mo[k];
            mo[k] = mo[k - 1], mo[k - 1] = t;
        }
    sb_put(&p->h, "\0\0\0\0\0\0\0\0{", 9);
    if (nmeta > 0) {
        sb_cat(&p->h, "\"__metadata__\":{");
        for (int i = 0; i < nmeta; i++) {
            if (i) sb_cat(&p->h, ",");
            sb_str(&p->h, mkeys[mo[i]]);
            sb_cat(&p->h, ":");
            sb_str(&p->h, mvals[mo[i]]);
        }
        sb_cat(&p->h, n ? "}," : "}");
    }
    int rc = 0;
    for (int k = 0; k < n && rc == 0; k++) {
        td_tensor *t = ts[o[k].i];
        if (!(p->c[k] = td_io_contiguous(t))) {
            rc = -1;
            break;
        }
        p->n = k + 1;
        uint64_t bytes = (uint64_t)td_numel(t) * td_dtype_size(t->dtype);
        char num[64];
        if (k) sb_cat(&p->h, ",");
        sb_str(&p->h, o[k].name);
        sb_cat(&p->h, ":{\"dtype\":\"");
        sb_cat(&p->h, dtypes[write_dtype[t->dtype]].name);
        sb_cat(&p->h, "\",\"shape\":[");
        for (int d = 0; d < t->ndim; d++) {
            snprintf(num, sizeof num, d ? ",%lld" : "%lld", (long long)t->shape[d]);
            sb_cat(&p->h, num);
        }
        snprintf(num, sizeof num, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)p->data,
                 (unsigned long long)(p->data + bytes));
        sb_cat(&p->h, num);
        p->data += bytes;
    }
    sb_cat(&p->h, "}");
    while (!p->h.oom && (p->h.n - 8) % 8) sb_put(&p->h, " ", 1); /* alignment, as the reference */
    free(o);
    free(mo);
    if (rc == 0 && p->h.oom) rc = td_error(FMT ": out of memory building the header");
    if (rc < 0) return -1;
    uint64_t hn = p->h.n - 8;
    for (int k = 0; k < 8; k++) p->h.p[k] = (char)(hn >> (8 * k) & 0xff);
    return 0;
}

int td_safetensors_save(const char *path, int n, const char *const *names, td_tensor *const *ts,
                        int nmeta, const char *const *mkeys, const char *const *mvals) {
    plan p;
    int rc = plan_build(&p, n, names, ts, nmeta, mkeys, mvals);
    td_iov *v = rc == 0 ? td_sys_malloc(((size_t)p.n + 1) * sizeof *v) : NULL;
    if (rc == 0 && !v) rc = td_error(FMT ": out of memory");
    if (rc == 0) {
        v[0] = (td_iov){p.h.p, p.h.n};
        for (int k = 0; k < p.n; k++)
            v[k + 1] = (td_iov){td_io_data(p.c[k]), (size_t)td_numel(p.c[k]) * td_dtype_size(p.c[k]->dtype)};
        rc = td_write_atomic(path, v, p.n + 1);
    }
    free(v);
    plan_free(&p);
    return rc;
}

int td_safetensors_serialize(int n, const char *const *names, td_tensor *const *ts, int nmeta,
                             const char *const *mkeys, const char *const *mvals, void **buf,
                             size_t *len) {
    plan p;
    *buf = NULL;
    *len = 0;
    int rc = plan_build(&p, n, names, ts, nmeta, mkeys, mvals);
    char *b = rc == 0 ? td_malloc(p.h.n + p.data) : NULL;
    if (rc == 0 && b) {
        memcpy(b, p.h.p, p.h.n);
        size_t at = p.h.n;
        for (int k = 0; k < p.n; k++) {
            size_t m = (size_t)td_numel(p.c[k]) * td_dtype_size(p.c[k]->dtype);
            if (m) memcpy(b + at, td_data(p.c[k]), m);
            at += m;
        }
        *buf = b;
        *len = at;
    } else if (rc == 0) {
        rc = -1;
    }
    plan_free(&p);
    return rc;
}
