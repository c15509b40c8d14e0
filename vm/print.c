/* vm/print.c: tostring(t). */
#include "tdl.h"

int tdL_tostring(lua_State *L) {
    td_tensor *t = tdL_checktensor(L, 1);
    char buf[128];
    lua_pushfstring(L, "[%s tensor %s]", td_dtype_name(t->dtype),
                    td_shape_str(t->shape, t->ndim, buf, sizeof buf));
    return 1;
}
