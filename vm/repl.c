/* vm/repl.c: the interactive loop (lua.c's: "return " first, then statements that continue
 * while the syntax error ends in <eof>), readline with Ctrl-C clearing the line, completion and
 * value printing delegated to stdlib/tide/repl.lua, errors with a trimmed traceback. */
#include "prog.h"
#include "../tensor/tide.h"

#include <errno.h>
#include <fcntl.h>
#include <lauxlib.h>
#include <poll.h>
#include <readline/history.h>
#include <readline/readline.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define REPL_KEY "tide.repl" /* registry: the tide.repl module table, or absent */

static lua_State *replL;
static int use_readline;
static volatile sig_atomic_t got_sigint, got_winch;
/* The handler may run on any thread (OpenMP's workers do not block signals), so it also wakes
 * the reading thread through this pipe rather than relying on EINTR. */
static int wakefd[2] = {-1, -1};

static void wake(void) {
    int saved = errno;
    if (wakefd[1] >= 0 && write(wakefd[1], "", 1) < 0) errno = saved; /* full: already awake */
    errno = saved;
}

static void on_sigint(int sig) {
    (void)sig;
    got_sigint = 1;
    wake();
}

static void on_winch(int sig) {
    (void)sig;
    got_winch = 1;
    wake();
}

/* ---- reading a line ------------------------------------------------------------------------ */

enum { READ_OK, READ_EOF, READ_CANCEL };

static char *rl_line;
static int rl_got;

static void on_line(char *line) {
    rl_line = line;
    rl_got = 1;
    rl_callback_handler_remove(); /* no prompt redisplay after the line is accepted */
}

static void drain(void) {
    char buf[64];
    while (wakefd[0] >= 0 && read(wakefd[0], buf, sizeof buf) > 0) {
    }
}

/* Waits for input on fd or a signal. SIGINT stays unblocked in this thread (the kernel then
 * delivers it here first); the wake pipe covers a handler that ran on another thread. Returns
 * 1 when fd is readable, 0 after a signal, -1 on error. */
static int wait_input(int fd) {
    for (;;) {
        if (got_sigint) return 0;
        struct pollfd p[2] = {{fd, POLLIN, 0}, {wakefd[0], POLLIN, 0}};
        int r = poll(p, wakefd[0] >= 0 ? 2 : 1, -1);
        if (r < 0 && errno != EINTR) return -1;
        if (r > 0 && (p[1].revents & POLLIN)) drain();
        if (got_winch) {
            got_winch = 0;
            rl_resize_terminal();
        }
        if (got_sigint) return 0;
        if (r > 0 && p[0].revents) return 1;
    }
}

/* readline's key reader: a Ctrl-C typed ahead of more keys must win over them */
static int tty_getc(FILE *f) {
    if (wait_input(fileno(f)) <= 0) return EOF;
    unsigned char c;
    ssize_t n;
    while ((n = read(fileno(f), &c, 1)) < 0 && errno == EINTR && !got_sigint) {
    }
    return n == 1 ? c : EOF;
}

/* readline's callback interface, fed by wait_input, so that Ctrl-C clears the line (or the
 * unfinished statement) the way Python's REPL does instead of readline re-raising it. */
static int read_tty(const char *prompt, char **out) {
    got_sigint = 0;
    drain();
    rl_got = 0;
    rl_line = NULL;
    rl_callback_handler_install(prompt, on_line);
    int status = READ_OK, fd = fileno(rl_instream ? rl_instream : stdin);
    while (!rl_got) {
        int r = wait_input(fd);
        if (r > 0) rl_callback_read_char();
        if (got_sigint) {
            if (!rl_got) {
                rl_free_line_state();
                rl_callback_sigcleanup();
                rl_cleanup_after_signal();
                rl_callback_handler_remove();
            }
            free(rl_line);
            rl_line = NULL;
            got_sigint = 0;
            fputs("^C\n", stdout);
            fflush(stdout);
            status = READ_CANCEL;
            break;
        }
        if (r < 0) {
            rl_callback_handler_remove();
            status = READ_EOF;
            break;
        }
    }
    if (status == READ_OK && !rl_line) status = READ_EOF;
    *out = status == READ_OK ? rl_line : NULL;
    return status;
}

static int read_plain(const char *prompt, char **out) {
    fputs(prompt, stdout);
    fflush(stdout);
    size_t cap = 0;
    *out = NULL;
    ssize_t n = getline(out, &cap, stdin);
    if (n < 0) {
        free(*out);
        *out = NULL;
        return READ_EOF;
    }
    if (n > 0 && (*out)[n - 1] == '\n') (*out)[n - 1] = 0;
    return READ_OK;
}

/* pushes the line read (without its newline) or returns READ_EOF / READ_CANCEL */
static int pushline(lua_State *L, int first) {
    lua_getglobal(L, first ? "_PROMPT" : "_PROMPT2");
    const char *prompt = lua_tostring(L, -1); /* a string or a number */
    if (!prompt) prompt = first ? "> " : ">> ";
    char *line;
    if (first) td_buf_release(); /* idle at the prompt: cached tensor buffers go back */
    int status = use_readline ? read_tty(prompt, &line) : read_plain(prompt, &line);
    lua_pop(L, 1);
    if (status != READ_OK) return status;
    if (first && line[0] == '=')
        lua_pushfstring(L, "return %s", line + 1); /* lua.c's 5.2 habit */
    else
        lua_pushstring(L, line);
    free(line);
    return READ_OK;
}

/* ---- compiling a statement ----------------------------------------------------------------- */

/* lua.c's rule: a syntax error that ends in "<eof>" means the statement is unfinished */
static int incomplete(lua_State *L, int status) {
    if (status != LUA_ERRSYNTAX) return 0;
    size_t n;
    const char *msg = lua_tolstring(L, -1, &n);
    return msg && n >= 5 && !strcmp(msg + n - 5, "<eof>");
}

/* does the line on top compile as an expression? then its function goes above it */
static int addreturn(lua_State *L) {
    const char *line = lua_tostring(L, -1);
    const char *ret = lua_pushfstring(L, "return %s;", line);
    int status = luaL_loadbufferx(L, ret, strlen(ret), "=stdin", "t");
    lua_remove(L, -2);
    if (status != LUA_OK) lua_pop(L, 1);
    return status; /* [line, function] or [line] */
}

static void checklocal(const char *code) {
    code += strspn(code, " \t\n");
    if (!strncmp(code, "local", 5) && (code[5] == ' ' || code[5] == '\t'))
        fputs("warning: locals do not survive across lines in the REPL; use a global\n", stderr);
}

/* Reads one statement. Leaves [source, function] on the stack and returns LUA_OK, or leaves
 * [source, error] and returns the error status; -1 at end of input, -2 when Ctrl-C dropped it. */
static int loadline(lua_State *L) {
    lua_settop(L, 0);
    int r = pushline(L, 1);
    if (r != READ_OK) return r == READ_EOF ? -1 : -2;
    int status = addreturn(L);
    if (status == LUA_OK) return LUA_OK;
    for (;;) {
        size_t n;
        const char *code = lua_tolstring(L, 1, &n);
        status = luaL_loadbufferx(L, code, n, "=stdin", "t");
        if (!incomplete(L, status)) break;
        lua_pop(L, 1);
        r = pushline(L, 0);
        if (r == READ_CANCEL) return -2;
        if (r == READ_EOF) {
            status = luaL_loadbufferx(L, code, n, "=stdin", "t");
            break;
        }
        lua_pushvalue(L, 1);
        lua_pushliteral(L, "\n");
        lua_pushvalue(L, 2);
        lua_concat(L, 3);
        lua_replace(L, 1);
        lua_pop(L, 1);
    }
    if (status == LUA_OK) checklocal(lua_tostring(L, 1));
    return status;
}

/* A kernel cell (vm/kernel/): the REPL's rule for one line first (an expression's values are
 * the result), then the cell whose last line is returned when it is an expression, then the
 * cell as statements. Pushes the function, or the error of the plain cell; returns the status. */
int tdR_compile(lua_State *L, const char *code) {
    lua_pushstring(L, code);
    if (addreturn(L) == LUA_OK) return LUA_OK;
    lua_pop(L, 1);
    size_t n = strlen(code);
    while (n > 0 && strchr(" \t\r\n;", code[n - 1])) n--;
    const char *nl = code + n;
    while (nl > code && nl[-1] != '\n') nl--;
    if (nl > code && n > (size_t)(nl - code)) {
        lua_pushfstring(L, "%s\nreturn %s;", lua_pushlstring(L, code, (size_t)(nl - code)),
                        lua_pushlstring(L, nl, (size_t)(code + n - nl)));
        size_t len;
        const char *s = lua_tolstring(L, -1, &len);
        int status = luaL_loadbufferx(L, s, len, "=stdin", "t");
        lua_replace(L, -4);
        lua_pop(L, 2);
        if (status == LUA_OK) return LUA_OK;
        lua_pop(L, 1);
    }
    return luaL_loadbufferx(L, code, strlen(code), "=stdin", "t");
}

/* 0: the code compiles, 1: it is an unfinished statement, 2: it can never compile */
int tdR_status(lua_State *L, const char *code) {
    int status = luaL_loadbufferx(L, code, strlen(code), "=stdin", "t");
    int r = status == LUA_OK ? 0 : incomplete(L, status) ? 1 : 2;
    lua_pop(L, 1);
    return r;
}

/* ---- reporting and printing ---------------------------------------------------------------- */

/* frames that say nothing at the prompt: the statement itself, error() and the REPL's own */
static int noise(const char *f, size_t n) {
    static const char *const plain[] = {"\t[C]: in ?", "\t[C]: in function 'error'",
                                        "\t[C]: in function 'assert'"};
    for (size_t i = 0; i < sizeof plain / sizeof plain[0]; i++)
        if (n == strlen(plain[i]) && !memcmp(f, plain[i], n)) return 1;
    static const char chunk[] = ": in main chunk";
    size_t k = sizeof chunk - 1;
    return n > 7 + k && !memcmp(f, "\tstdin:", 7) && !memcmp(f + n - k, chunk, k);
}

/* Replaces the error on top by its text as the prompt shows it. Frames "[C]: in ?" (the
 * REPL's own, Ctrl-C's hook) and the tail call of "return f()" are dropped, and the whole
 * traceback goes when only noise is left (an error typed at the prompt). */
void tdR_errtext(lua_State *L) {
    size_t n;
    const char *msg = lua_tolstring(L, -1, &n);
    if (!msg) msg = "(error object is not a string)", n = strlen(msg);
    static const char tail[] = "\n\t[C]: in ?";
    while (n >= sizeof tail - 1 && !memcmp(msg + n - (sizeof tail - 1), tail, sizeof tail - 1))
        n -= sizeof tail - 1;
    const char *tb = strstr(msg, "\nstack traceback:"), *end = msg + n;
    if (!tb || tb > end) tb = end;
    int useful = 0;
    for (const char *f = tb < end ? strchr(tb + 1, '\n') : NULL; f && f < end && !useful;) {
        const char *e = memchr(f + 1, '\n', (size_t)(end - f - 1));
        if (!e) e = end;
        useful = !noise(f + 1, (size_t)(e - f - 1));
        f = e;
    }
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    luaL_addlstring(&b, msg, (size_t)(tb - msg));
    if (useful) {
        for (const char *f = tb; f < end;) { /* f: the '\n' that starts each line */
            const char *e = memchr(f + 1, '\n', (size_t)(end - f - 1));
            if (!e) e = end;
            size_t k = (size_t)(e - f - 1);
            int drop = (k == 10 && !memcmp(f + 1, "\t[C]: in ?", 10)) ||
                       (e == end && k == 19 && !memcmp(f + 1, "\t(...tail calls...)", 19));
            if (!drop) luaL_addlstring(&b, f, (size_t)(e - f));
            f = e;
        }
    }
    luaL_pushresult(&b);
    lua_remove(L, -2);
}

/* prints the error on top to stderr and pops it */
static void report(lua_State *L) {
    tdR_errtext(L);
    fputs(lua_tostring(L, -1), stderr);
    fputc('\n', stderr);
    fflush(stderr);
    lua_pop(L, 1);
}

/* prints the n values on top through tide.repl.show (print when it failed to load) */
static void show(lua_State *L, int n) {
    if (lua_getfield(L, LUA_REGISTRYINDEX, REPL_KEY) == LUA_TTABLE) {
        lua_getfield(L, -1, "show");
        lua_remove(L, -2);
    } else {
        lua_pop(L, 1);
        lua_getglobal(L, "print");
    }
    lua_insert(L, -(n + 1));
    if (tdP_docall(L, n, 0) != LUA_OK) report(L);
}

/* ---- completion ---------------------------------------------------------------------------- */

static char **matches;
static size_t nmatches, imatch;

static void freematches(void) {
    for (size_t i = imatch; i < nmatches; i++) free(matches[i]);
    free(matches);
    matches = NULL;
    nmatches = imatch = 0;
}

static char *nextmatch(const char *text, int state) {
    (void)text;
    (void)state;
    return imatch < nmatches ? matches[imatch++] : NULL; /* readline frees what it gets */
}

static int l_collect(lua_State *L) {
    lua_getfield(L, LUA_REGISTRYINDEX, REPL_KEY);
    lua_getfield(L, -1, "complete");
    lua_pushvalue(L, 1);
    lua_call(L, 1, 1);
    luaL_checktype(L, -1, LUA_TTABLE);
    size_t n = (size_t)luaL_len(L, -1);
    matches = calloc(n + 1, sizeof *matches);
    if (!matches) return 0;
    for (size_t i = 1; i <= n; i++) {
        lua_rawgeti(L, -1, (lua_Integer)i);
        const char *s = lua_tostring(L, -1);
        if (s && (matches[nmatches] = strdup(s))) nmatches++;
        lua_pop(L, 1);
    }
    return 0;
}

/* Candidates come from tide.repl.complete (trepl's walk through __index tables); inside a
 * string literal readline's own file-name completion applies. */
static char **complete(const char *text, int start, int end) {
    (void)end;
    if (start > 0 && strchr("\"'", rl_line_buffer[start - 1])) return NULL;
    rl_attempted_completion_over = 1;
    rl_completion_append_character = '\0'; /* readline resets it to ' ' before each attempt */
    freematches();
    lua_State *L = replL;
    int top = lua_gettop(L);
    lua_pushcfunction(L, l_collect);
    lua_pushstring(L, text);
    if (lua_pcall(L, 1, 0, 0) != LUA_OK) freematches();
    lua_settop(L, top);
    if (nmatches == 0) return NULL;
    char **r = rl_completion_matches(text, nextmatch);
    freematches();
    return r;
}

static void setup_readline(void) {
    rl_readline_name = "tide";
    rl_catch_signals = 0; /* read_tty handles SIGINT and SIGWINCH */
    rl_catch_sigwinch = 0;
    rl_getc_function = tty_getc;
    rl_attempted_completion_function = complete;
    rl_basic_word_break_characters = " \t\n\"\\'><=;+-*/%^~#{}()[],&|";
    rl_completer_quote_characters = "\"'";
    tdH_load();
}

/* ---- the loop ------------------------------------------------------------------------------ */

static void loadrepl(lua_State *L) {
    lua_getglobal(L, "require");
    lua_pushliteral(L, "tide.repl");
    if (tdP_docall(L, 1, 1) == LUA_OK && lua_istable(L, -1)) {
        lua_setfield(L, LUA_REGISTRYINDEX, REPL_KEY);
    } else {
        fputs("warning: tide.repl did not load; values print plainly\n", stderr);
        report(L);
    }
}

void tdR_repl(lua_State *L, int banner) {
    replL = L;
    use_readline = isatty(0);
    if (banner) printf("%s   help() for help, Ctrl-D to quit\n", TDP_VERSION);
    loadrepl(L);
    if (use_readline) setup_readline();
    if (wakefd[0] < 0 && pipe2(wakefd, O_CLOEXEC | O_NONBLOCK) != 0) wakefd[0] = wakefd[1] = -1;
    /* between statements Ctrl-C only sets a flag: it must not kill the session */
    struct sigaction sa, oldint, oldwinch;
    memset(&sa, 0, sizeof sa);
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = on_sigint;
    sigaction(SIGINT, &sa, &oldint);
    sa.sa_handler = on_winch;
    sigaction(SIGWINCH, &sa, &oldwinch);
    int status;
    while ((status = loadline(L)) != -1) {
        if (status == -2) continue;
        if (use_readline) tdH_add(lua_tostring(L, 1));
        if (status == LUA_OK) status = tdP_docall(L, 0, LUA_MULTRET);
        if (status == LUA_OK) {
            int n = lua_gettop(L) - 1;
            if (n > 0) show(L, n);
        } else {
            report(L);
        }
    }
    lua_settop(L, 0);
    fputc('\n', stdout);
    fflush(stdout);
    sigaction(SIGINT, &oldint, NULL);
    sigaction(SIGWINCH, &oldwinch, NULL);
}
