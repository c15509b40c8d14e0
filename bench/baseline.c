/* bench/baseline.c: the "plain C loop" peer of add_big and sum_big: c = a + b and sum(a) over
 * 2^24 float32, OpenMP threads (OMP_NUM_THREADS), GB/s counted as bytes read + written.
 * Usage: baseline [add] [sum]. Same sampling as sgemm.c: warm-up, 7 samples >= 0.2 s each,
 * one RESULT line per op with the median. Build: cc -O3 -march=native -fopenmp (bench.mk). */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define N (1L << 24)
#define SAMPLES 7

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static int cmp(const void *x, const void *y) {
    double u = *(const double *)x, v = *(const double *)y;
    return (u > v) - (u < v);
}

static float *a, *b, *c;
static volatile float sink; /* keeps the sums from being optimised away */

static void op_add(void) {
#pragma omp parallel for simd schedule(static)
    for (long i = 0; i < N; i++) c[i] = a[i] + b[i];
}

static void op_sum(void) {
    float s = 0;
#pragma omp parallel for simd schedule(static) reduction(+ : s)
    for (long i = 0; i < N; i++) s += a[i];
    sink = s;
}

static void bench(const char *name, void (*op)(void), double bytes) {
    op();
    op();
    double t0 = now();
    op();
    double one = now() - t0;
    long calls = (long)(0.2 / (one > 1e-6 ? one : 1e-6)) + 1;
    double g[SAMPLES];
    for (int s = 0; s < SAMPLES; s++) {
        t0 = now();
        for (long k = 0; k < calls; k++) op();
        g[s] = bytes * (double)calls / (now() - t0) / 1e9;
    }
    qsort(g, SAMPLES, sizeof g[0], cmp);
    printf("RESULT name=%s value=%.2f unit=GB/s median=%.2f best=%.2f min=%.2f samples=%d "
           "calls_per_sample=%ld threads=%d\n",
           name, g[SAMPLES / 2], g[SAMPLES / 2], g[SAMPLES - 1], g[0], SAMPLES, calls,
           omp_get_max_threads());
    fflush(stdout);
}

int main(int argc, char **argv) {
    a = aligned_alloc(64, N * sizeof(float));
    b = aligned_alloc(64, N * sizeof(float));
    c = aligned_alloc(64, N * sizeof(float));
    if (!a || !b || !c) {
        fprintf(stderr, "baseline: out of memory\n");
        return 1;
    }
    /* first touch by the same static schedule as the loops, so pages sit near their thread */
#pragma omp parallel for schedule(static)
    for (long i = 0; i < N; i++) {
        a[i] = (float)(i % 1000) * 1e-3f;
        b[i] = 1.0f - a[i];
        c[i] = 0;
    }
    for (int i = 1; i < argc || argc == 1; i++) {
        const char *w = argc == 1 ? "all" : argv[i];
        if (!strcmp(w, "add") || !strcmp(w, "all")) bench("add_big", op_add, 12.0 * N);
        if (!strcmp(w, "sum") || !strcmp(w, "all")) bench("sum_big", op_sum, 4.0 * N);
        if (argc == 1) break;
    }
    free(a), free(b), free(c);
    return 0;
}
