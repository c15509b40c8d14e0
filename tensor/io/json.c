/* tensor/io/json.c: the strict JSON reader the safetensors header needs and nothing more:
 * whitespace, punctuation, strings (all escapes, surrogate pairs combined, lone surrogates,
 * raw control characters and NUL refused) and non-negative integers below 2^63 (no sign,
 * fraction, exponent or leading zero). The caller has checked the buffer is valid UTF-8. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "io.h"

int td_json_fail(td_json *j, const char *fmt, ...) {
    char msg[320];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return td_error("%s: %s: header byte %zu: %s", j->fmt, j->what, j->i, msg);
}

static void skip_ws(td_json *j) {
    while (j->i < j->n) {
        char c = j->s[j->i];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
        j->i++;
    }
}

int td_json_peek(td_json *j) {
    skip_ws(j);
    return j->i < j->n ? (unsigned char)j->s[j->i] : -1;
}

/* what the reader found, for "expected X, got Y" */
static const char *got(td_json *j, char *buf, size_t n) {
    if (j->i >= j->n) return "the end of the header";
    unsigned char c = (unsigned char)j->s[j->i];
    if (c >= 0x20 && c < 0x7f) snprintf(buf, n, "'%c'", c);
    else snprintf(buf, n, "byte 0x%02x", c);
    return buf;
}

int td_json_expect(td_json *j, char c) {
    char b[32];
    if (td_json_peek(j) != (unsigned char)c) return td_json_fail(j, "expected '%c', got %s", c, got(j, b, sizeof b));
    j->i++;
    return 0;
}

static int hex4(td_json *j, unsigned *v) {
    *v = 0;
    if (j->n - j->i < 4) return td_json_fail(j, "truncated \\u escape");
    for (int k = 0; k < 4; k++) {
        char c = j->s[j->i++];
        unsigned d = c >= '0' && c <= '9' ? (unsigned)(c - '0')
                     : c >= 'a' && c <= 'f' ? (unsigned)(c - 'a' + 10)
                     : c >= 'A' && c <= 'F' ? (unsigned)(c - 'A' + 10) : 16u;
        if (d == 16) return td_json_fail(j, "bad hex digit in a \\u escape");
        *v = *v << 4 | d;
    }
    return 0;
}

int td_json_string(td_json *j, char **out) {
    char b[32];
    *out = NULL;
    if (td_json_peek(j) != '"') return td_json_fail(j, "expected a string, got %s", got(j, b, sizeof b));
    size_t start = ++j->i, end = start;
    while (end < j->n && j->s[end] != '"') end += j->s[end] == '\\' ? 2 : 1; /* escapes only shrink */
    if (end >= j->n) return td_json_fail(j, "unterminated string");
    char *o = td_malloc(end - start + 1), *p = o;
    if (!o) return -1;
    while (j->s[j->i] != '"') {
        unsigned char c = (unsigned char)j->s[j->i];
        if (c < 0x20) {
            td_free(o);
            return td_json_fail(j, "control character 0x%02x inside a string (must be escaped)", c);
        }
        j->i++;
        if (c != '\\') {
            *p++ = (char)c;
            continue;
        }
        char e = j->s[j->i++];
        unsigned u, lo;
        switch (e) {
        case '"': case '\\': case '/': *p++ = e; continue;
        case 'b': *p++ = '\b'; continue;
        case 'f': *p++ = '\f'; continue;
        case 'n': *p++ = '\n'; continue;
        case 'r': *p++ = '\r'; continue;
        case 't': *p++ = '\t'; continue;
        case 'u': break;
        default:
            j->i--;
            td_free(o);
            return td_json_fail(j, "unknown escape \\%c", e >= 0x20 && e < 0x7f ? e : '?');
        }
        if (hex4(j, &u) < 0) goto fail;
        if (u >= 0xdc00 && u <= 0xdfff) {
            td_json_fail(j, "lone low surrogate \\u%04x", u);
            goto fail;
        }
        if (u >= 0xd800 && u <= 0xdbff) { /* a high surrogate needs its low half next */
            if (j->n - j->i < 6 || j->s[j->i] != '\\' || j->s[j->i + 1] != 'u') {
                td_json_fail(j, "lone high surrogate \\u%04x", u);
                goto fail;
            }
            j->i += 2;
            if (hex4(j, &lo) < 0) goto fail;
            if (lo < 0xdc00 || lo > 0xdfff) {
                td_json_fail(j, "high surrogate \\u%04x not followed by a low one", u);
                goto fail;
            }
            u = 0x10000 + ((u - 0xd800) << 10) + (lo - 0xdc00);
        }
        if (u == 0) {
            td_json_fail(j, "\\u0000 in a string (names and metadata cannot hold NUL)");
            goto fail;
        }
        /* 6 escaped bytes (12 for a pair) always make at most 3 (4) UTF-8 bytes: o is big enough */
        if (u < 0x80) *p++ = (char)u;
        else if (u < 0x800) *p++ = (char)(0xc0 | u >> 6), *p++ = (char)(0x80 | (u & 63));
        else if (u < 0x10000)
            *p++ = (char)(0xe0 | u >> 12), *p++ = (char)(0x80 | (u >> 6 & 63)),
            *p++ = (char)(0x80 | (u & 63));
        else
            *p++ = (char)(0xf0 | u >> 18), *p++ = (char)(0x80 | (u >> 12 & 63)),
            *p++ = (char)(0x80 | (u >> 6 & 63)), *p++ = (char)(0x80 | (u & 63));
    }
    j->i++; /* the closing quote */
    *p = 0;
    *out = o;
    return 0;
fail:
    td_free(o);
    return -1;
}

int td_json_uint(td_json *j, uint64_t *v, const char *ctx) {
    char b[32];
    int c = td_json_peek(j);
    if (c == '-') return td_json_fail(j, "%s: negative value", ctx);
    if (c < '0' || c > '9') return td_json_fail(j, "%s: expected an integer, got %s", ctx, got(j, b, sizeof b));
    size_t start = j->i;
    uint64_t x = 0;
    while (j->i < j->n && j->s[j->i] >= '0' && j->s[j->i] <= '9') {
        unsigned d = (unsigned)(j->s[j->i++] - '0');
        if (x > ((uint64_t)INT64_MAX - d) / 10) return td_json_fail(j, "%s: integer too large", ctx);
        x = x * 10 + d;
    }
    if (j->i - start > 1 && j->s[start] == '0') return td_json_fail(j, "%s: leading zero in an integer", ctx);
    if (j->i < j->n && (j->s[j->i] == '.' || j->s[j->i] == 'e' || j->s[j->i] == 'E'))
        return td_json_fail(j, "%s: expected an integer, got a fraction or exponent", ctx);
    *v = x;
    return 0;
}
