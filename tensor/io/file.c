/* tensor/io/file.c: whole-file reads, atomic writes (temporary file beside the target, fsync,
 * rename, fsync of the directory: a crash or a failed write never leaves a half-written file
 * under the real name; a later save removes the temporaries of writers that died), the td_src
 * byte source of the readers, UTF-8 checking, and the element conversions (float16, bfloat16,
 * narrow integers, byte swapping) the readers share. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "io.h"

#define CHUNK ((size_t)64 << 20) /* bytes per read or write call: interrupts are polled between */

/* What a path that is not a regular file is, for the message. */
static const char *kind(mode_t m) {
    return S_ISDIR(m)    ? "is a directory"
           : S_ISFIFO(m) ? "not a regular file (a FIFO)"
           : S_ISCHR(m)  ? "not a regular file (a character device)"
           : S_ISBLK(m)  ? "not a regular file (a block device)"
           : S_ISSOCK(m) ? "not a regular file (a socket)"
                         : "not a regular file";
}

/* Opened without blocking: open() on a FIFO would wait for a writer, past Ctrl-C. */
int td_src_open(td_src *s, const char *path) {
    struct stat st;
    s->buf = NULL;
    s->what = path;
    s->fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (s->fd < 0) return td_error("cannot open '%s': %s", path, strerror(errno));
    const char *why = fstat(s->fd, &st) < 0 ? strerror(errno) : S_ISREG(st.st_mode) ? NULL
                                                                                   : kind(st.st_mode);
    if (why) {
        close(s->fd);
        s->fd = -1;
        return td_error("cannot read '%s': %s", path, why);
    }
    s->size = (uint64_t)st.st_size;
    return 0;
}

void td_src_close(td_src *s) {
    if (s->fd >= 0) close(s->fd);
    s->fd = -1;
}

int td_src_read(const td_src *s, uint64_t off, void *dst, size_t n) {
    if (s->buf) {
        if (n) memcpy(dst, s->buf + off, n);
        return 0;
    }
    char *p = dst;
    while (n > 0) {
        if (td_poll_interrupt() < 0) return -1;
        ssize_t r = pread(s->fd, p, n < CHUNK ? n : CHUNK, (off_t)off);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) return td_error("cannot read '%s': %s", s->what, strerror(errno));
        if (r == 0) return td_error("cannot read '%s': the file shrank while it was read", s->what);
        p += r, off += (uint64_t)r, n -= (size_t)r;
    }
    return 0;
}

int td_read_file(const char *path, void **buf, size_t *len) {
    td_src s;
    *buf = NULL;
    *len = 0;
    if (td_src_open(&s, path) < 0) return -1;
    if (s.size > SIZE_MAX - 1) {
        td_src_close(&s);
        return td_error("cannot read '%s': too large", path);
    }
    char *b = td_malloc((size_t)s.size + 1);
    if (!b || td_src_read(&s, 0, b, (size_t)s.size) < 0) {
        td_free(b);
        td_src_close(&s);
        return -1;
    }
    td_src_close(&s);
    b[s.size] = 0;
    *buf = b;
    *len = (size_t)s.size;
    return 0;
}

static int write_all(int fd, const char *p, size_t n) {
    while (n > 0) {
        if (td_poll_interrupt() < 0) return -1;
        ssize_t w = write(fd, p, n < CHUNK ? n : CHUNK);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) return td_error("%s", strerror(errno));
        p += w, n -= (size_t)w;
    }
    return 0;
}

/* The directory part of path ("." when it has none) into dir; 0, or -1 when it does not fit. */
static int dir_of(const char *path, char *dir, size_t size) {
    const char *slash = strrchr(path, '/');
    if (!slash) snprintf(dir, size, ".");
    else if (slash == path) snprintf(dir, size, "/");
    else if ((size_t)(slash - path) < size) snprintf(dir, size, "%.*s", (int)(slash - path), path);
    else return -1;
    return 0;
}

/* The directory entry made by rename() is durable only once the directory itself is synced.
 * Errors are ignored: the file is already complete under its name, and some filesystems
 * refuse fsync on directories (EINVAL). */
static void sync_dir(const char *path) {
    char dir[4096];
    if (dir_of(path, dir, sizeof dir) < 0) return;
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return;
    (void)fsync(fd);
    close(fd);
}

#define STALE_AGE (24 * 3600) /* seconds without a write after which any temporary is stale */

/* Removes the temporaries of writers of path that died (kill -9, a crash, a power cut) before
 * their rename: <path>.tmp-<host>-<pid>-<6 hex> of this host whose process is gone, and any
 * <path>.tmp-* (another host's, or an older name) not written to for STALE_AGE. A live writer
 * keeps writing or renames within moments, so neither rule takes its file. Best effort:
 * errors are ignored, as the save itself does not depend on it. */
static void remove_stale(const char *path, const char *host) {
    char dir[4096];
    if (dir_of(path, dir, sizeof dir) < 0) return;
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    size_t bl = strlen(base), hl = strlen(host);
    DIR *d = opendir(dir);
    if (!d) return;
    time_t now = time(NULL);
    struct dirent *e;
    while ((e = readdir(d))) {
        const char *n = e->d_name;
        if (strncmp(n, base, bl) != 0 || strncmp(n + bl, ".tmp-", 5) != 0) continue;
        const char *tail = n + bl + 5;
        bool dead = false;
        if (strncmp(tail, host, hl) == 0 && tail[hl] == '-') {
            char *end;
            long pid = strtol(tail + hl + 1, &end, 10);
            dead = end != tail + hl + 1 && *end == '-' && strlen(end + 1) == 6 && pid > 0 &&
                   kill((pid_t)pid, 0) < 0 && errno == ESRCH;
        }
        struct stat st;
        if (!dead && fstatat(dirfd(d), n, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode))
            dead = now - st.st_mtime > STALE_AGE;
        if (dead) (void)unlinkat(dirfd(d), n, 0);
    }
    closedir(d);
}

int td_write_atomic(const char *path, const td_iov *parts, int nparts) {
    char host[72] = "";
    if (gethostname(host, 64) < 0 || !host[0]) snprintf(host, sizeof host, "localhost");
    host[64] = 0;
    for (char *c = host; *c; c++)
        if (*c == '/') *c = '_';
    remove_stale(path, host);
    size_t pl = strlen(path), tl = pl + strlen(host) + 48;
    char *tmp = td_sys_malloc(tl);
    if (!tmp) return td_error("cannot write '%s': out of memory", path);
    /* O_EXCL with a fresh name: never reuses a stale temporary a crashed writer left, and the
     * new file gets the usual 0666 & ~umask mode (mkstemp would make it 0600). The host and pid
     * in the name let a later save tell whether its writer is gone (remove_stale). */
    static unsigned counter;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    unsigned seed = (unsigned)ts.tv_nsec ^ ((unsigned)getpid() << 12);
    int fd = -1;
    for (int tries = 0; tries < 100 && fd < 0; tries++) {
        unsigned r = (seed + ++counter * 2654435761u) & 0xffffffu;
        snprintf(tmp, tl, "%s.tmp-%s-%ld-%06x", path, host, (long)getpid(), r);
        fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (fd < 0 && errno != EEXIST) break;
    }
    if (fd < 0) {
        td_error("cannot write '%s': cannot create '%s': %s", path, tmp, strerror(errno));
        free(tmp);
        return -1;
    }
    int rc = 0;
    for (int i = 0; i < nparts && rc == 0; i++)
        if (write_all(fd, parts[i].data, parts[i].len) < 0) rc = -1;
    if (rc == 0 && fsync(fd) < 0) rc = td_error("fsync: %s", strerror(errno));
    if (close(fd) < 0 && rc == 0) rc = td_error("close: %s", strerror(errno));
    if (rc == 0 && rename(tmp, path) < 0) rc = td_error("rename: %s", strerror(errno));
    if (rc < 0) {
        char msg[256];
        snprintf(msg, sizeof msg, "%s", td_errmsg());
        unlink(tmp);
        td_error("cannot write '%s': %s (the previous file, if any, is unchanged)", path, msg);
    } else {
        sync_dir(path);
    }
    free(tmp);
    return rc;
}

size_t td_utf8_check(const unsigned char *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t k;
        unsigned lo = 0x80, hi = 0xbf; /* allowed range of the second byte */
        if (c >= 0xc2 && c <= 0xdf) k = 1;
        else if (c == 0xe0) k = 2, lo = 0xa0;           /* no overlong 3-byte forms */
        else if (c == 0xed) k = 2, hi = 0x9f;           /* no surrogates */
        else if (c >= 0xe1 && c <= 0xef) k = 2;
        else if (c == 0xf0) k = 3, lo = 0x90;           /* no overlong 4-byte forms */
        else if (c >= 0xf1 && c <= 0xf3) k = 3;
        else if (c == 0xf4) k = 3, hi = 0x8f;           /* nothing above U+10FFFF */
        else return i;
        if (n - i <= k || s[i + 1] < lo || s[i + 1] > hi) return i;
        for (size_t j = 2; j <= k; j++)
            if ((s[i + j] & 0xc0) != 0x80) return i;
        i += k + 1;
    }
    return n;
}

const char *td_io_quote(const char *s, char *buf, size_t n) {
    size_t k = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p && k + 8 < n; p++) {
        if (k >= 60) {
            k += (size_t)snprintf(buf + k, n - k, "...");
            break;
        }
        if (*p < 0x20 || *p == 0x7f) k += (size_t)snprintf(buf + k, n - k, "\\x%02x", *p);
        else buf[k++] = (char)*p;
    }
    buf[k < n ? k : n - 1] = 0;
    return buf;
}

/* ---- element conversions ------------------------------------------------------------------ */

static const struct {
    td_dtype dt;
    size_t size;
} raws[] = {
    [TD_RAW_F32] = {TD_FLOAT32, 4}, [TD_RAW_F64] = {TD_FLOAT64, 8}, [TD_RAW_I64] = {TD_INT64, 8},
    [TD_RAW_U8] = {TD_UINT8, 1},    [TD_RAW_BOOL] = {TD_BOOL, 1},   [TD_RAW_F16] = {TD_FLOAT32, 2},
    [TD_RAW_BF16] = {TD_FLOAT32, 2}, [TD_RAW_I8] = {TD_INT8, 1} ,   [TD_RAW_I16] = {TD_INT64, 2},
    [TD_RAW_I32] = {TD_INT64, 4},   [TD_RAW_U16] = {TD_INT64, 2},   [TD_RAW_U32] = {TD_INT64, 4},
    [TD_RAW_U64] = {TD_INT64, 8},
};

td_dtype td_raw_dtype(int raw) {
    return raws[raw].dt;
}

size_t td_raw_size(int raw) {
    return raws[raw].size;
}

static float half_to_float(uint16_t h) {
    uint32_t sign = (uint32_t)(h >> 15) << 31, e = (h >> 10) & 31, m = h & 0x3ff, bits;
    if (e == 31) bits = sign | 0x7f800000u | (m << 13);        /* inf, NaN */
    else if (e) bits = sign | ((e + 112) << 23) | (m << 13);   /* normal: rebias 15 -> 127 */
    else if (!m) bits = sign;                                   /* zero */
    else {                                                      /* subnormal: normalise */
        e = 113;
        while (!(m & 0x400)) m <<= 1, e--;
        bits = sign | (e << 23) | ((m & 0x3ff) << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

static uint64_t load_le(const unsigned char *p, size_t size, bool swap) {
    uint64_t v = 0;
    for (size_t b = 0; b < size; b++) v |= (uint64_t)p[swap ? size - 1 - b : b] << (8 * b);
    return v;
}

/* Converts n elements from raw bytes in into out (contiguous, td_raw_dtype(raw)); `first` is
 * the index of in[0] in the tensor, for messages. */
static int convert(const unsigned char *in, void *out, size_t n, size_t first, int raw, bool swap,
                   const td_src *s, const char *fmt, const char *name) {
    size_t sz = raws[raw].size;
    for (size_t i = 0; i < n; i++) {
        uint64_t v = load_le(in + i * sz, sz, swap);
        switch (raw) {
        case TD_RAW_F32: memcpy((float *)out + i, &(uint32_t){(uint32_t)v}, 4); break;
        case TD_RAW_F64: memcpy((double *)out + i, &v, 8); break;
        case TD_RAW_I64: ((int64_t *)out)[i] = (int64_t)v; break;
        case TD_RAW_U8: ((uint8_t *)out)[i] = (uint8_t)v; break;
        case TD_RAW_BOOL: ((uint8_t *)out)[i] = v != 0; break; /* tide's bools are 0 or 1 */
        case TD_RAW_F16: ((float *)out)[i] = half_to_float((uint16_t)v); break;
        case TD_RAW_BF16: memcpy((float *)out + i, &(uint32_t){(uint32_t)v << 16}, 4); break;
        case TD_RAW_I8: ((int8_t *)out)[i] = (int8_t)v; break;
        case TD_RAW_I16: ((int64_t *)out)[i] = (int16_t)v; break;
        case TD_RAW_I32: ((int64_t *)out)[i] = (int32_t)v; break;
        case TD_RAW_U16: case TD_RAW_U32: ((int64_t *)out)[i] = (int64_t)v; break;
        default:
            if (v > INT64_MAX) { /* the file always; the tensor when it is not the file */
                char q[96];
                bool named = name && strcmp(name, s->what) != 0;
                return td_error("%s: %s: %s%s%svalue %llu at element %zu does not fit int64 "
                                "(U64 values above 2^63 - 1 cannot be read)",
                                fmt, s->what, named ? "tensor '" : "",
                                named ? td_io_quote(name, q, sizeof q) : "", named ? "': " : "",
                                (unsigned long long)v, first + i);
            }
            ((int64_t *)out)[i] = (int64_t)v;
        }
    }
    return 0;
}

int td_raw_read(const td_src *s, uint64_t off, int raw, bool swap, td_tensor *t, const char *fmt,
                const char *name) {
    size_t n = (size_t)td_numel(t), sz = raws[raw].size, osz = td_dtype_size(t->dtype);
    if (n == 0) return 0;
    char *out = td_data(t);
    bool direct = (!swap && raw <= TD_RAW_U8) || raw == TD_RAW_I8; /* the file's bytes are tide's */
    if (direct) return td_src_read(s, off, out, n * sz);
    if (s->buf) return convert(s->buf + off, out, n, 0, raw, swap, s, fmt, name);
    size_t step = CHUNK / 8; /* elements per staging chunk: bounded memory for any size */
    unsigned char *tmp = td_malloc((n < step ? n : step) * sz);
    if (!tmp) return -1;
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i += step) {
        size_t m = n - i < step ? n - i : step;
        rc = td_src_read(s, off + i * sz, tmp, m * sz);
        if (rc == 0) rc = convert(tmp, out + i * osz, m, i, raw, swap, s, fmt, name);
    }
    td_free(tmp);
    return rc;
}
