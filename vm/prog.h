/* vm/prog.h: what the `tide` program's files share (vm/main.c, vm/repl.c, vm/history.c); none
 * of this is in the tide.core module that stock lua5.4 loads. */
#ifndef TIDE_PROG_H
#define TIDE_PROG_H

#include <lua.h>

#define TDP_VERSION "tide 0.1 (" LUA_RELEASE ")"

extern const char *tdP_progname;
/* lua_pcall with a traceback handler and Ctrl-C armed (the hook + td_interrupted); the SIGINT
 * disposition in force before the call is restored after it. */
int tdP_docall(lua_State *L, int narg, int nres);
/* prints an error on the stack (if status != LUA_OK) to stderr, pops it; returns status */
int tdP_report(lua_State *L, int status);
/* the interactive loop; returns when the user ends input. banner: print the greeting first. */
void tdR_repl(lua_State *L, int banner);
/* what the Jupyter kernel (vm/kernel/) shares with the REPL: */
void tdR_errtext(lua_State *L);                  /* error on top -> its trimmed traceback text */
int tdR_compile(lua_State *L, const char *code); /* a cell -> function (LUA_OK) or error */
int tdR_status(lua_State *L, const char *code);  /* 0 complete, 1 unfinished, 2 invalid */
/* vm/kernel/: `tide --kernel FILE`, in tide/kernelwire.so (zmq, libcrypto), loaded on demand */

/* vm/history.c: ~/.tide_history, one entry per statement (multi-line ones included) */
void tdH_load(void);             /* reads the file into readline's history, bounded */
void tdH_add(const char *entry); /* adds to the history and appends to the file */

#endif
