/* vm/repl.c: the interactive loop. */
#include <lauxlib.h>
#include <stdio.h>
#include <string.h>

#include "prog.h"

void tdR_repl(lua_State *L) {
    char line[4096];
    fputs("> ", stdout);
    while (fgets(line, sizeof line, stdin)) {
        if (luaL_loadbufferx(L, line, strlen(line), "=stdin", "t") == LUA_OK)
            tdP_report(L, tdP_docall(L, 0, 0));
        else
            tdP_report(L, LUA_ERRSYNTAX);
        fputs("> ", stdout);
    }
}
