/* tensor/dtype.c: dtype names, sizes and the promotion order. */
#include <string.h>

#include "tide.h"

static const char *const names[TD_NDTYPES] = {
    [TD_FLOAT32] = "float32", [TD_FLOAT64] = "float64", [TD_INT64] = "int64",
    [TD_UINT8] = "uint8",     [TD_BOOL] = "bool",       [TD_INT8] = "int8",
};

const uint8_t td_dtype_sizes[TD_NDTYPES] = {
    [TD_FLOAT32] = 4, [TD_FLOAT64] = 8, [TD_INT64] = 8, [TD_UINT8] = 1, [TD_BOOL] = 1,
    [TD_INT8] = 1,
};

const char *td_dtype_name(td_dtype t) {
    return (unsigned)t < TD_NDTYPES ? names[t] : "invalid";
}

bool td_dtype_is_float(td_dtype t) {
    return t == TD_FLOAT32 || t == TD_FLOAT64;
}

int td_dtype_parse(const char *name, td_dtype *t) {
    for (int i = 0; i < TD_NDTYPES; i++)
        if (strcmp(name, names[i]) == 0) {
            *t = (td_dtype)i;
            return 0;
        }
    return td_error("unknown dtype '%s' (expected float32, float64, int64, uint8, int8 or bool)", name);
}

td_dtype td_dtype_promote(td_dtype a, td_dtype b) {
    static const int rank[TD_NDTYPES] = {
        [TD_BOOL] = 0, [TD_UINT8] = 1, [TD_INT8] = 1, [TD_INT64] = 2, [TD_FLOAT32] = 3,
        [TD_FLOAT64] = 4};
    if (a != b && rank[a] == 1 && rank[b] == 1) return TD_INT64;
    return rank[a] >= rank[b] ? a : b;
}
