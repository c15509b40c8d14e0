/* vm/main.c: the `tide` executable (the shape of lua.c): options, the script, -e/-l/-i, the
 * Ctrl-C machinery, and the globals tide programs start with. */
#include "../tensor/tide.h"
#include "prog.h"

#include <lauxlib.h>
#include <lualib.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int luaopen_tide_core(lua_State *L);

const char *tdP_progname = "tide";
static lua_State *globalL;

/* A signal handler cannot touch the Lua state beyond setting a hook (lua.c's rule); C kernels
 * poll td_interrupted. A second Ctrl-C falls back to the default action and ends tide. */
static void lstop(lua_State *L, lua_Debug *ar) {
    (void)ar;
    lua_sethook(L, NULL, 0, 0);
    td_interrupted = 0;
    luaL_error(L, "interrupted!");
}

static void laction(int i) {
    signal(i, SIG_DFL);
    td_interrupted = 1;
    lua_sethook(globalL, lstop, LUA_MASKCALL | LUA_MASKRET | LUA_MASKCOUNT, 1);
}

static int msghandler(lua_State *L) {
    const char *msg = lua_tostring(L, 1);
    if (!msg) {
        if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING) return 1;
        msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
    }
    luaL_traceback(L, L, msg, 1);
    return 1;
}

int tdP_docall(lua_State *L, int narg, int nres) {
    int base = lua_gettop(L) - narg;
    lua_pushcfunction(L, msghandler);
    lua_insert(L, base);
    globalL = L;
    td_interrupted = 0;
    /* restore the caller's handler afterwards (the REPL's prompt handler, or SIG_DFL) */
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = laction;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old);
    int status = lua_pcall(L, narg, nres, base);
    sigaction(SIGINT, &old, NULL);
    lua_sethook(L, NULL, 0, 0);
    td_interrupted = 0; /* a Ctrl-C that a kernel or the hook did not consume ends here */
    lua_remove(L, base);
    return status;
}

int tdP_report(lua_State *L, int status) {
    if (status != LUA_OK) {
        const char *msg = lua_tostring(L, -1);
        fprintf(stderr, "%s: %s\n", tdP_progname, msg ? msg : "(error object)");
        fflush(stderr);
        lua_pop(L, 1);
    }
    return status;
}

static int dochunk(lua_State *L, int status) {
    if (status == LUA_OK) status = tdP_docall(L, 0, 0);
    return tdP_report(L, status);
}

static int dostring(lua_State *L, const char *s, const char *name) {
    return dochunk(L, luaL_loadbufferx(L, s, strlen(s), name, "t"));
}

static int dolibrary(lua_State *L, const char *name) {
    lua_getglobal(L, "require");
    lua_pushstring(L, name);
    int status = tdP_docall(L, 1, 1);
    if (status == LUA_OK) lua_setglobal(L, name);
    return tdP_report(L, status);
}

static int pushargs(lua_State *L) {
    if (lua_getglobal(L, "arg") != LUA_TTABLE) luaL_error(L, "'arg' is not a table");
    int n = (int)luaL_len(L, -1);
    luaL_checkstack(L, n + 3, "too many arguments to script");
    int i;
    for (i = 1; i <= n; i++) lua_rawgeti(L, -i, i);
    lua_remove(L, -i);
    return n;
}

static int handle_script(lua_State *L, char **argv) {
    const char *fname = argv[0];
    if (strcmp(fname, "-") == 0 && strcmp(argv[-1], "--") != 0) fname = NULL; /* stdin */
    int status = luaL_loadfilex(L, fname, "t");
    if (status == LUA_OK) {
        int n = pushargs(L);
        status = tdP_docall(L, n, LUA_MULTRET);
    }
    return tdP_report(L, status);
}

static void createargtable(lua_State *L, char **argv, int argc, int script) {
    if (script == argc) script = 0;
    lua_createtable(L, argc - (script + 1), script + 1);
    for (int i = 0; i < argc; i++) {
        lua_pushstring(L, argv[i]);
        lua_rawseti(L, -2, i - script);
    }
    lua_setglobal(L, "arg");
}

/* package.path gains the stdlib beside the executable: <dir>/../stdlib in a checkout,
 * <dir>/../share/lua/5.4 after `make install`; package.cpath the modules built apart from the
 * program (tide.dist): <dir>/lua in a checkout, <dir>/../lib/lua/5.4 after `make install`. */
static void setpaths(lua_State *L) {
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) return;
    exe[n] = 0;
    char *slash = strrchr(exe, '/');
    if (!slash) return;
    *slash = 0;
    lua_getglobal(L, "package");
    lua_getfield(L, -1, "path");
    lua_pushfstring(L,
                    "%s/../stdlib/?.lua;%s/../stdlib/?/init.lua;"
                    "%s/../share/lua/5.4/?.lua;%s/../share/lua/5.4/?/init.lua;%s",
                    exe, exe, exe, exe, lua_tostring(L, -1));
    lua_setfield(L, -3, "path");
    lua_getfield(L, -2, "cpath");
    lua_pushfstring(L, "%s/lua/?.so;%s/../lib/lua/5.4/?.so;%s", exe, exe, lua_tostring(L, -1));
    lua_setfield(L, -4, "cpath");
    lua_pop(L, 3);
    lua_pushstring(L, exe);
    lua_setfield(L, LUA_REGISTRYINDEX, "tide.exedir");
}

/* The globals of tide programs: tide now; nn, optim, data, plot, models and help on first use,
 * so the REPL starts in milliseconds. __lazy lets the REPL's completion list them. */
static const char *prelude =
    "tide = require 'tide'\n"
    "local lazy = {nn = 'tide.nn', optim = 'tide.optim', data = 'tide.data', plot = 'tide.plot',\n"
    "  models = 'tide.models', help = 'tide.help'}\n"
    "setmetatable(_G, {__lazy = lazy, __index = function(g, k)\n"
    "  local name = lazy[k]\n"
    "  if name then local m = require(name); rawset(g, k, m); return m end\n"
    "end})\n";

enum { HAS_I = 1, HAS_V = 2, HAS_E = 4 };

/* "--threads N" or "--threads=N": the value, or NULL when this is not that option */
static const char *threads_value(char **argv, int *i) {
    if (!strncmp(argv[*i], "--threads=", 10)) return argv[*i] + 10;
    if (strcmp(argv[*i], "--threads")) return NULL;
    return argv[*i + 1] ? argv[++*i] : "";
}

/* Checks the options; *first becomes the index of the script (argc when there is none).
 * Returns the HAS_* flags, or -1 after printing what is wrong. */
static int collectargs(char **argv, int *first) {
    int args = 0, i;
    for (i = 1; argv[i]; i++) {
        const char *a = argv[i];
        if (a[0] != '-') break;
        if (!strcmp(a, "--")) {
            i++;
            break;
        } else if (!strcmp(a, "-")) {
            break;
        } else if (!strcmp(a, "-i")) {
            args |= HAS_I | HAS_V;
        } else if (!strcmp(a, "-v")) {
            args |= HAS_V;
        } else if (!strcmp(a, "-e") || !strcmp(a, "-l")) {
            if (!strcmp(a, "-e")) args |= HAS_E;
            if (!argv[++i]) {
                fprintf(stderr, "%s: '%s' needs an argument\n", tdP_progname, a);
                return -1;
            }
        } else if (threads_value(argv, &i)) {
            continue;
        } else {
            fprintf(stderr, "%s: unrecognized option '%s'\n", tdP_progname, a);
            return -1;
        }
    }
    *first = i;
    return args;
}

/* --threads applies before anything runs, wherever it appears among the options */
static int setthreads(char **argv, int n) {
    for (int i = 1; i < n; i++) {
        if (!strcmp(argv[i], "-e") || !strcmp(argv[i], "-l")) {
            i++;
            continue;
        }
        const char *v = threads_value(argv, &i);
        if (!v) continue;
        char *end;
        long t = strtol(v, &end, 10);
        if (*v == 0 || *end != 0 || t < 1 || t > 4096) {
            fprintf(stderr, "%s: --threads expects a positive number, got '%s'\n", tdP_progname, v);
            return 0;
        }
        int got = td_set_num_threads((int)t);
        if (got < 0) {
            fprintf(stderr, "%s: --threads: %s\n", tdP_progname, td_errmsg());
            return 0;
        }
        if (got < t)
            fprintf(stderr, "%s: --threads %ld: this machine has %d CPUs: using %d\n",
                    tdP_progname, t, td_num_cpus(), got);
    }
    return 1;
}

static int runargs(lua_State *L, char **argv, int n) {
    for (int i = 1; i < n; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-e") && dostring(L, argv[++i], "=(command line)") != LUA_OK) return 0;
        if (!strcmp(a, "-l") && dolibrary(L, argv[++i]) != LUA_OK) return 0;
        if (!strcmp(a, "--threads")) i++;
    }
    return 1;
}

static void usage(void) {
    fprintf(stderr, "usage: tide [options] [script [args]]\n"
                    "  -e stat      execute string 'stat'\n"
                    "  -i           enter interactive mode after running the script\n"
                    "  -l mod       require library 'mod' into global 'mod'\n"
                    "  -v           show version information\n"
                    "  --threads N  use N threads (OpenMP kernels and OpenBLAS)\n"
                    "  --           stop handling options\n"
                    "  -            run stdin as a script and stop handling options\n");
}

static int pmain(lua_State *L) {
    int argc = (int)lua_tointeger(L, 1);
    char **argv = lua_touserdata(L, 2);
    int script = 0;
    int args = collectargs(argv, &script);
    if (args < 0) {
        usage();
        return 0;
    }
    if (!setthreads(argv, script)) return 0;
    luaL_openlibs(L);
    luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
    lua_pushcfunction(L, luaopen_tide_core);
    lua_setfield(L, -2, "tide.core");
    lua_pop(L, 1);
    setpaths(L);
    createargtable(L, argv, argc, script);
    if (args & HAS_V) printf("%s\n", TDP_VERSION);
    if (dostring(L, prelude, "=(prelude)") != LUA_OK) return 0;
    if (!runargs(L, argv, script)) return 0;
    if (script < argc && handle_script(L, argv + script) != LUA_OK) return 0;
    if (args & HAS_I) {
        tdR_repl(L, 0);
    } else if (script == argc && !(args & (HAS_E | HAS_V))) {
        if (isatty(0))
            tdR_repl(L, 1);
        else if (dochunk(L, luaL_loadfilex(L, NULL, "t")) != LUA_OK)
            return 0;
    }
    lua_pushboolean(L, 1);
    return 1;
}

int main(int argc, char **argv) {
    lua_State *L = luaL_newstate();
    if (!L) {
        fprintf(stderr, "tide: cannot create state: not enough memory\n");
        return EXIT_FAILURE;
    }
    lua_gc(L, LUA_GCGEN, 0, 0);
    lua_pushcfunction(L, pmain);
    lua_pushinteger(L, argc);
    lua_pushlightuserdata(L, argv);
    int status = lua_pcall(L, 2, 1, 0);
    int ok = lua_toboolean(L, -1);
    tdP_report(L, status);
    lua_close(L);
    return (ok && status == LUA_OK) ? EXIT_SUCCESS : EXIT_FAILURE;
}
