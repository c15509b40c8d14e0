/* vm/kernel/kernel.c: the sockets of `tide --kernel` and what stdlib/tide/kernel.lua calls. The
 * main thread owns shell, control and stdin; a heartbeat thread echoes; an iopub thread owns
 * the PUB socket and the read ends of the pipes that replace fds 1 and 2, so that anything
 * written by Lua or C while a cell runs goes out as stream messages as it is written. */
#include "kernel.h"
#include "../../tensor/tide.h"
#include "../prog.h"

#include <errno.h>
#include <fcntl.h>
#include <lauxlib.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#define MAXFRAMES 64 /* more identities or buffers than this: the message is dropped */

static struct {
    void *ctx, *shell, *control, *stdin_, *pair; /* pair: to the iopub thread */
    void *iopub, *hb;                            /* owned by their threads once started */
    char *key;
    size_t keylen;
    char session[33];
    int logfd, out, err; /* the original stderr; the read ends of the stdout/stderr pipes */
} K = {.logfd = -1, .out = -1, .err = -1};
static atomic_ulong counter;

static void logf_(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void logf_(const char *fmt, ...) {
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf - 1, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if ((size_t)n > sizeof buf - 2) n = sizeof buf - 2;
    buf[n++] = '\n';
    if (write(K.logfd >= 0 ? K.logfd : 2, buf, (size_t)n) < 0) { /* nowhere else to say it */
    }
}

/* ---- sending ------------------------------------------------------------------------------ */

static size_t header(char *buf, size_t cap, const char *type) {
    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    gmtime_r(&tv.tv_sec, &tm);
    char date[40];
    strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%S", &tm);
    int n = snprintf(buf, cap,
                     "{\"msg_id\":\"%s-%lu\",\"session\":\"%s\",\"username\":\"tide\","
                     "\"date\":\"%s.%06ldZ\",\"msg_type\":\"%s\",\"version\":\"5.3\"}",
                     K.session, (unsigned long)atomic_fetch_add(&counter, 1) + 1, K.session, date,
                     (long)tv.tv_usec, type);
    return n < 0 || (size_t)n >= cap ? 0 : (size_t)n;
}

/* one message; type is a short identifier (the handlers' own names) */
static int sendmsg_(void *sock, const tdK_frame *ids, int nids, const char *type, const char *parent,
                    const char *content) {
    char head[512];
    size_t hn = header(head, sizeof head, type);
    if (hn == 0) return -1;
    tdK_frame parts[4] = {{head, hn}, {parent, strlen(parent)}, {"{}", 2}, {content, strlen(content)}};
    char sig[65] = "";
    if (K.keylen && tdK_sign(K.key, K.keylen, parts, sig) < 0) return -1;
    int r = 0;
    for (int i = 0; i < nids; i++) r |= zmq_send(sock, ids[i].p, ids[i].n, ZMQ_SNDMORE) < 0;
    r |= zmq_send(sock, "<IDS|MSG>", 9, ZMQ_SNDMORE) < 0;
    r |= zmq_send(sock, sig, strlen(sig), ZMQ_SNDMORE) < 0;
    for (int i = 0; i < 4; i++) r |= zmq_send(sock, parts[i].p, parts[i].n, i < 3 ? ZMQ_SNDMORE : 0) < 0;
    return r ? -1 : 0;
}

/* ---- the iopub thread --------------------------------------------------------------------- */

typedef struct stream {
    int fd;
    const char *name;
    char buf[65536];
    size_t held; /* bytes of an unfinished UTF-8 character kept for the next read */
} stream;

/* the length of an incomplete UTF-8 sequence at the end of s[0..n), 0 when there is none */
static size_t unfinished(const unsigned char *s, size_t n) {
    for (size_t k = 1; k <= 3 && k <= n; k++) {
        unsigned char c = s[n - k];
        if ((c & 0xC0) == 0x80) continue;
        size_t need = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
        return need > k ? k : 0;
    }
    return 0;
}

/* sends what the pipe holds now (all of it when drain) as stream messages */
static void forward(void *pub, stream *s, const char *parent, int drain, tdK_buf *json) {
    for (;;) {
        ssize_t r = read(s->fd, s->buf + s->held, sizeof s->buf - s->held);
        if (r <= 0) return;
        size_t n = s->held + (size_t)r;
        s->held = unfinished((unsigned char *)s->buf, n);
        json->n = 0;
        if (tdK_put(json, "{\"name\":\"", 9) == 0 && tdK_put(json, s->name, strlen(s->name)) == 0 &&
            tdK_put(json, "\",\"text\":", 9) == 0 && tdK_json_string(json, s->buf, n - s->held) == 0 &&
            tdK_put(json, "}", 1) == 0 && sendmsg_(pub, &(tdK_frame){"stream", 6}, 1, "stream", parent, json->p) == 0) {
        } else {
            logf_("tide kernel: a stream message could not be sent");
        }
        memmove(s->buf, s->buf + n - s->held, s->held);
        if (!drain) return;
    }
}

static int recvframe(void *sock, zmq_msg_t *m) {
    zmq_msg_init(m);
    while (zmq_msg_recv(m, sock, 0) < 0) {
        if (errno != EINTR) return -1;
    }
    return 0;
}

static void *iopub_main(void *arg) {
    (void)arg;
    void *pair = zmq_socket(K.ctx, ZMQ_PAIR);
    zmq_connect(pair, "inproc://tide-iopub");
    static stream out, err;
    out.fd = K.out, out.name = "stdout";
    err.fd = K.err, err.name = "stderr";
    char *parent = strdup("{}");
    tdK_buf json = {0};
    for (;;) {
        zmq_pollitem_t it[3] = {{pair, 0, ZMQ_POLLIN, 0}, {NULL, out.fd, ZMQ_POLLIN, 0}, {NULL, err.fd, ZMQ_POLLIN, 0}};
        if (zmq_poll(it, 3, -1) < 0) continue;
        /* Commands first, in order; the pipes only when none is pending, so that output never
         * overtakes the status and execute_input sent before it. "flush" drains them. */
        int events = 0;
        size_t len = sizeof events;
        zmq_getsockopt(pair, ZMQ_EVENTS, &events, &len);
        if (!(events & ZMQ_POLLIN)) {
            if (it[1].revents) forward(K.iopub, &out, parent, 0, &json);
            if (it[2].revents) forward(K.iopub, &err, parent, 0, &json);
            continue;
        }
        zmq_msg_t f[4];
        int n = 0, more = 1;
        while (more && n < 4 && recvframe(pair, &f[n]) == 0) more = zmq_msg_more(&f[n++]);
        char *cmd = n > 0 ? strndup(zmq_msg_data(&f[0]), zmq_msg_size(&f[0])) : NULL;
        char *a[3] = {NULL, NULL, NULL};
        for (int i = 1; i < n; i++) a[i - 1] = strndup(zmq_msg_data(&f[i]), zmq_msg_size(&f[i]));
        if (cmd && !strcmp(cmd, "parent") && a[0]) {
            free(parent);
            parent = a[0], a[0] = NULL;
        } else if (cmd && !strcmp(cmd, "send") && a[2]) {
            if (sendmsg_(K.iopub, &(tdK_frame){a[0], strlen(a[0])}, 1, a[0], a[2], a[1]) < 0)
                logf_("tide kernel: %s could not be sent on iopub", a[0]);
        } else if (cmd && !strcmp(cmd, "flush")) {
            forward(K.iopub, &out, parent, 1, &json);
            forward(K.iopub, &err, parent, 1, &json);
            zmq_send(pair, "", 0, 0);
        }
        free(cmd);
        for (int i = 0; i < 3; i++) free(a[i]);
        for (int i = 0; i < n; i++) zmq_msg_close(&f[i]);
    }
    return NULL;
}

static void *hb_main(void *arg) {
    (void)arg;
    for (;;) {
        zmq_msg_t m;
        if (recvframe(K.hb, &m) == 0) zmq_msg_send(&m, K.hb, 0);
        zmq_msg_close(&m);
    }
    return NULL;
}

/* ---- receiving ---------------------------------------------------------------------------- */

static const char *const PARTS[4] = {"header", "parent_header", "metadata", "content"};

/* reads one multipart message on sock and pushes it as a table, or returns 0 after logging
 * why it was dropped */
static int readmsg(lua_State *L, void *sock, const char *chan) {
    zmq_msg_t m[MAXFRAMES];
    tdK_frame f[MAXFRAMES];
    int n = 0, more = 1, over = 0;
    while (more) {
        zmq_msg_t x;
        if (recvframe(sock, &x) < 0) return 0;
        more = zmq_msg_more(&x);
        if (n < MAXFRAMES) {
            m[n] = x;
            f[n].p = zmq_msg_data(&m[n]), f[n].n = zmq_msg_size(&m[n]);
            n++;
        } else {
            over = 1;
            zmq_msg_close(&x);
        }
    }
    const char *why = "more than 64 frames";
    int d = over ? -1 : tdK_parse(f, n, K.key, K.keylen, &why);
    int ok = d >= 0;
    if (ok) {
        int top = lua_gettop(L);
        lua_createtable(L, 0, 6);
        lua_createtable(L, d, 0);
        for (int i = 0; i < d; i++) {
            lua_pushlstring(L, f[i].p, f[i].n);
            lua_rawseti(L, -2, i + 1);
        }
        lua_setfield(L, -2, "idents");
        lua_pushlstring(L, f[d + 2].p, f[d + 2].n);
        lua_setfield(L, -2, "raw_header");
        for (int i = 0; i < 4 && ok; i++) {
            ok = tdK_json_decode(L, f[d + 2 + i].p, f[d + 2 + i].n, PARTS[i]) == 0;
            if (ok && !lua_istable(L, -1)) ok = td_error("%s is not a JSON object", PARTS[i]) == 0;
            if (ok) lua_setfield(L, -2, PARTS[i]);
        }
        if (!ok) {
            why = td_errmsg();
            lua_settop(L, top);
        }
    }
    if (!ok) logf_("tide kernel: dropped a message on %s: %s", chan, why);
    for (int i = 0; i < n; i++) zmq_msg_close(&m[i]);
    return ok;
}

/* recv() -> channel, message: the next message on shell or control (control first) */
static int l_recv(lua_State *L) {
    for (;;) {
        zmq_pollitem_t it[2] = {{K.control, 0, ZMQ_POLLIN, 0}, {K.shell, 0, ZMQ_POLLIN, 0}};
        if (zmq_poll(it, 2, -1) < 0) {
            if (errno == EINTR) continue;
            return luaL_error(L, "kernel: zmq_poll: %s", zmq_strerror(errno));
        }
        for (int i = 0; i < 2; i++) {
            const char *chan = i ? "shell" : "control";
            if (it[i].revents && readmsg(L, i ? K.shell : K.control, chan)) {
                lua_pushstring(L, chan);
                lua_insert(L, -2);
                return 2;
            }
        }
    }
}

/* ---- what kernel.lua calls ---------------------------------------------------------------- */

static const char *encode(lua_State *L, int idx, tdK_buf *b) {
    if (tdK_json_encode(L, idx, b) < 0) {
        free(b->p);
        luaL_error(L, "kernel: %s", td_errmsg());
    }
    return b->p;
}

static const char *parentjson(lua_State *L, int idx) {
    if (lua_isnoneornil(L, idx)) return "{}";
    luaL_checktype(L, idx, LUA_TTABLE);
    lua_getfield(L, idx, "raw_header");
    const char *s = lua_tostring(L, -1);
    lua_pop(L, 1); /* the message table keeps it alive */
    return s ? s : "{}";
}

/* send(channel, type, content, parent): replies go to the parent's identities */
static int l_send(lua_State *L) {
    const char *chan = luaL_checkstring(L, 1), *type = luaL_checkstring(L, 2);
    luaL_argcheck(L, strlen(type) < 64, 2, "a message type is a short name");
    const char *parent = parentjson(L, 4);
    tdK_buf b = {0};
    const char *content = encode(L, 3, &b);
    int r;
    if (!strcmp(chan, "iopub")) {
        r = zmq_send(K.pair, "send", 4, ZMQ_SNDMORE) < 0 || zmq_send(K.pair, type, strlen(type), ZMQ_SNDMORE) < 0 ||
            zmq_send(K.pair, content, strlen(content), ZMQ_SNDMORE) < 0 ||
            zmq_send(K.pair, parent, strlen(parent), 0) < 0;
    } else {
        void *sock = !strcmp(chan, "shell") ? K.shell : !strcmp(chan, "control") ? K.control
                   : !strcmp(chan, "stdin") ? K.stdin_ : NULL;
        if (!sock) {
            free(b.p);
            return luaL_error(L, "kernel.send: unknown channel '%s'", chan);
        }
        tdK_frame ids[MAXFRAMES];
        int nids = 0;
        if (lua_istable(L, 4) && lua_getfield(L, 4, "idents") == LUA_TTABLE) {
            for (; nids < MAXFRAMES && lua_rawgeti(L, -1, nids + 1) == LUA_TSTRING; nids++) {
                ids[nids].p = lua_tolstring(L, -1, &ids[nids].n);
                lua_pop(L, 1); /* the idents table keeps it alive */
            }
            lua_pop(L, 1);
        }
        r = sendmsg_(sock, ids, nids, type, parent, content) < 0;
    }
    free(b.p);
    if (r) logf_("tide kernel: %s could not be sent on %s", type, chan);
    return 0;
}

/* parent(msg): the message the stream output that follows answers */
static int l_parent(lua_State *L) {
    const char *p = parentjson(L, 1);
    zmq_send(K.pair, "parent", 6, ZMQ_SNDMORE);
    zmq_send(K.pair, p, strlen(p), 0);
    return 0;
}

/* flush(): returns once everything written so far and every iopub message is sent */
static int l_flush(lua_State *L) {
    (void)L;
    fflush(stdout);
    fflush(stderr);
    zmq_send(K.pair, "flush", 5, 0);
    zmq_msg_t m;
    if (recvframe(K.pair, &m) == 0) zmq_msg_close(&m);
    return 0;
}

/* input(prompt, password, parent) -> the line typed, or nothing when interrupted (Ctrl-C's
 * hook then raises at the return) */
static int l_input(lua_State *L) {
    lua_newtable(L);
    lua_pushvalue(L, 1);
    lua_setfield(L, -2, "prompt");
    lua_pushboolean(L, lua_toboolean(L, 2));
    lua_setfield(L, -2, "password");
    lua_pushcfunction(L, l_flush);
    lua_call(L, 0, 0);
    lua_pushcfunction(L, l_send);
    lua_pushliteral(L, "stdin");
    lua_pushliteral(L, "input_request");
    lua_pushvalue(L, -4);
    lua_pushvalue(L, 3);
    lua_call(L, 4, 0);
    for (;;) {
        if (td_interrupted) return 0;
        zmq_pollitem_t it = {K.stdin_, 0, ZMQ_POLLIN, 0};
        int r = zmq_poll(&it, 1, 100);
        if (r < 0 && errno != EINTR) return luaL_error(L, "kernel: zmq_poll: %s", zmq_strerror(errno));
        if (r <= 0 || !readmsg(L, K.stdin_, "stdin")) continue;
        lua_getfield(L, -1, "content");
        lua_getfield(L, -1, "value");
        if (lua_isstring(L, -1)) return 1;
        lua_pop(L, 3);
    }
}

/* run(f, ...) -> true, values... | false, the error as the REPL prints it */
static int l_run(lua_State *L) {
    luaL_checktype(L, 1, LUA_TFUNCTION);
    int status = tdP_docall(L, lua_gettop(L) - 1, LUA_MULTRET);
    fflush(stdout);
    fflush(stderr);
    if (status != LUA_OK) {
        /* the frames below the cell are the kernel's own */
        size_t n;
        const char *msg = lua_tolstring(L, -1, &n);
        const char *own = msg ? strstr(msg, "\n\t[C]: in function 'tide.kernelwire.run'") : NULL;
        if (own) {
            lua_pushlstring(L, msg, (size_t)(own - msg));
            lua_replace(L, -2);
        }
        tdR_errtext(L);
        lua_pushboolean(L, 0);
        lua_insert(L, -2);
        return 2;
    }
    lua_pushboolean(L, 1);
    lua_insert(L, 1);
    return lua_gettop(L);
}

static int l_compile(lua_State *L) {
    if (tdR_compile(L, luaL_checkstring(L, 1)) == LUA_OK) return 1;
    lua_pushnil(L);
    lua_insert(L, -2);
    return 2;
}

static int l_status(lua_State *L) {
    static const char *const names[] = {"complete", "incomplete", "invalid"};
    lua_pushstring(L, names[tdR_status(L, luaL_checkstring(L, 1))]);
    return 1;
}

static int l_encode(lua_State *L) {
    luaL_checkany(L, 1);
    tdK_buf b = {0};
    lua_pushstring(L, encode(L, 1, &b));
    free(b.p);
    return 1;
}

static int l_decode(lua_State *L) {
    size_t n;
    const char *s = luaL_checklstring(L, 1, &n);
    if (tdK_json_decode(L, s, n, luaL_optstring(L, 2, "text")) < 0) return luaL_error(L, "%s", td_errmsg());
    return 1;
}

static int l_array(lua_State *L) {
    if (lua_isnoneornil(L, 1)) lua_newtable(L);
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    tdK_array(L, 1);
    return 1;
}

/* ---- opening ------------------------------------------------------------------------------ */

static void *bind(lua_State *L, int cfg, int type, const char *port) {
    lua_getfield(L, cfg, "transport");
    lua_getfield(L, cfg, "ip");
    lua_getfield(L, cfg, port);
    const char *tr = luaL_optstring(L, -3, "tcp"), *ip = luaL_optstring(L, -2, "127.0.0.1");
    if (!lua_isinteger(L, -1)) luaL_error(L, "kernel: the connection file has no integer %s", port);
    const char *url = !strcmp(tr, "ipc") ? lua_pushfstring(L, "ipc://%s-%d", ip, (int)lua_tointeger(L, -1))
                                         : lua_pushfstring(L, "%s://%s:%d", tr, ip, (int)lua_tointeger(L, -1));
    void *s = zmq_socket(K.ctx, type);
    int linger = 1000;
    if (s) zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger);
    if (!s || zmq_bind(s, url) < 0) luaL_error(L, "kernel: cannot bind %s (%s): %s", port, url, zmq_strerror(errno));
    lua_pop(L, 4);
    return s;
}

/* fds 1 and 2 become pipes the iopub thread reads: C's printf and Lua's print alike stream */
static void redirect(lua_State *L) {
    int p[2][2];
    K.logfd = dup(2);
    for (int i = 0; i < 2; i++) {
        if (pipe2(p[i], O_CLOEXEC) < 0) luaL_error(L, "kernel: pipe: %s", strerror(errno));
        fcntl(p[i][0], F_SETFL, O_NONBLOCK);
        dup2(p[i][1], i + 1);
        close(p[i][1]);
    }
    K.out = p[0][0], K.err = p[1][0];
    setvbuf(stdout, NULL, _IONBF, 0); /* a progress bar's "\r" shows without a newline */
}

/* open(connection) with the connection file's table */
static int l_open(lua_State *L) {
    luaL_checktype(L, 1, LUA_TTABLE);
    if (K.ctx) return luaL_error(L, "kernel.open: already open");
    lua_getfield(L, 1, "key");
    size_t n;
    const char *key = luaL_optlstring(L, -1, "", &n);
    lua_getfield(L, 1, "signature_scheme");
    const char *scheme = luaL_optstring(L, -1, "hmac-sha256");
    if (n && strcmp(scheme, "hmac-sha256"))
        return luaL_error(L, "kernel: signature scheme '%s' is not supported (hmac-sha256 is)", scheme);
    K.key = malloc(n + 1);
    if (!K.key) return luaL_error(L, "kernel: out of memory");
    memcpy(K.key, key, n + 1);
    K.keylen = n;
    lua_pop(L, 2);
    unsigned char r[16];
    if (RAND_bytes(r, sizeof r) != 1) return luaL_error(L, "kernel: no random bytes for the session id");
    for (int i = 0; i < 16; i++) snprintf(K.session + 2 * i, 3, "%02x", r[i]);
    K.ctx = zmq_ctx_new();
    K.shell = bind(L, 1, ZMQ_ROUTER, "shell_port");
    K.control = bind(L, 1, ZMQ_ROUTER, "control_port");
    K.stdin_ = bind(L, 1, ZMQ_ROUTER, "stdin_port");
    K.iopub = bind(L, 1, ZMQ_PUB, "iopub_port");
    K.hb = bind(L, 1, ZMQ_REP, "hb_port");
    K.pair = zmq_socket(K.ctx, ZMQ_PAIR);
    if (zmq_bind(K.pair, "inproc://tide-iopub") < 0) return luaL_error(L, "kernel: inproc: %s", zmq_strerror(errno));
    redirect(L);
    /* the threads take no signals: Ctrl-C's handler must find the main thread's Lua state */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pthread_t t;
    int e = pthread_create(&t, NULL, iopub_main, NULL);
    if (!e) pthread_detach(t);
    if (!e && !(e = pthread_create(&t, NULL, hb_main, NULL))) pthread_detach(t);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (e) return luaL_error(L, "kernel: cannot start a thread: %s", strerror(e));
    signal(SIGINT, SIG_IGN); /* between cells an interrupt has nothing to stop */
    return 0;
}

int luaopen_tide_kernelwire(lua_State *L);
int luaopen_tide_kernelwire(lua_State *L) {
    static const luaL_Reg fns[] = {
        {"open", l_open},       {"recv", l_recv},     {"send", l_send},       {"parent", l_parent},
        {"flush", l_flush},     {"input", l_input},   {"run", l_run},         {"compile", l_compile},
        {"status", l_status},   {"encode", l_encode}, {"decode", l_decode},   {"array", l_array},
        {NULL, NULL}};
    luaL_newlib(L, fns);
    lua_pushstring(L, TDP_VERSION);
    lua_setfield(L, -2, "version");
    return 1;
}
