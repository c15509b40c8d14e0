/* vm/prog.h: what vm/main.c and vm/repl.c share (the `tide` program only, not the module). */
#ifndef TIDE_PROG_H
#define TIDE_PROG_H

#include <lua.h>

extern const char *tdP_progname;
/* lua_pcall with a traceback handler and Ctrl-C armed (the hook + td_interrupted). */
int tdP_docall(lua_State *L, int narg, int nres);
/* prints an error on the stack (if status != LUA_OK) to stderr, pops it; returns status */
int tdP_report(lua_State *L, int status);
/* the interactive loop; returns when the user ends input */
void tdR_repl(lua_State *L);

#endif
