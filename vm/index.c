/* vm/index.c: t[i], t[{...}] reads and assignments. */
#include "tdl.h"

int tdL_index(lua_State *L) {
    return luaL_error(L, "tensor indexing: coming with vm/index.c");
}

int tdL_newindex(lua_State *L) {
    return luaL_error(L, "tensor assignment: coming with vm/index.c");
}
