/* tensor/thread.c: one OpenMP pool for tide's kernels and OpenBLAS (the OpenMP build of
 * OpenBLAS runs its threads in the same pool, so the two never spin against each other). */
#include <cblas.h>
#include <sys/mman.h>
#include <sys/resource.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "tide.h"

/* Address space one pool thread takes: its stack, its malloc arena and OpenBLAS's buffer. Under
 * ulimit -v 3000000 (~2.7 GB free) 20 threads ran and 22 did not: ~128 MB each. */
#define THREAD_BYTES ((size_t)160 << 20)

static int nthreads;

int td_num_cpus(void) {
#ifdef _OPENMP
    return omp_get_num_procs(); /* the CPUs this process may run on */
#else
    return 1;
#endif
}

/* Whether the address-space limit leaves room for n threads: OpenBLAS loops forever when it
 * cannot map its buffer, and libgomp aborts when it cannot make a thread. */
static bool room_for(int n) {
    struct rlimit r;
    if (getrlimit(RLIMIT_AS, &r) < 0 || r.rlim_cur == RLIM_INFINITY) return true;
    size_t need = (size_t)n * THREAD_BYTES;
    void *p = mmap(NULL, need, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) return false;
    munmap(p, need);
    return true;
}

static void apply(int n) {
    nthreads = n;
#ifdef _OPENMP
    omp_set_num_threads(n);
#endif
    openblas_set_num_threads(n);
}

int td_set_num_threads(int n) {
    int cpus = td_num_cpus();
    if (n < 1) n = 1;
    if (n > cpus) n = cpus;
    if (n > 1 && !room_for(n))
        return td_error("set_num_threads: the address-space limit (ulimit -v) has no room for %d "
                        "threads' stacks and OpenBLAS buffers (about %zu MB each); use fewer",
                        n, THREAD_BYTES >> 20);
    apply(n);
    return n;
}

int td_get_num_threads(void) {
    if (nthreads == 0) { /* OMP_NUM_THREADS, capped like td_set_num_threads, and what fits */
#ifdef _OPENMP
        int n = omp_get_max_threads(), cpus = td_num_cpus();
        n = n < cpus ? n : cpus;
        while (n > 1 && !room_for(n)) n--;
        apply(n);
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
