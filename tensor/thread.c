/* tensor/thread.c: one OpenMP pool for tide's kernels and OpenBLAS (the OpenMP build of
 * OpenBLAS runs its threads in the same pool, so the two never spin against each other). */
#include <cblas.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "tide.h"

static int nthreads;

void td_set_num_threads(int n) {
    if (n < 1) n = 1;
    nthreads = n;
#ifdef _OPENMP
    omp_set_num_threads(n);
#endif
    openblas_set_num_threads(n);
}

int td_get_num_threads(void) {
    if (nthreads == 0) {
#ifdef _OPENMP
        nthreads = omp_get_max_threads();
#else
        nthreads = 1;
#endif
    }
    return nthreads;
}

void td_run_units(int64_t n, int64_t work, td_unit_fn f, void *ctx) {
    int nt = td_get_num_threads();
    if (nt < 2 || n < 2 || work < TD_PAR_GRAIN) {
        for (int64_t u = 0; u < n && !td_interrupted; u++) f(ctx, u);
        return;
    }
#pragma omp parallel for schedule(static) num_threads(nt)
    for (int64_t u = 0; u < n; u++)
        if (!td_interrupted) f(ctx, u);
}
