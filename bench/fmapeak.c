/* bench/fmapeak.c: this machine's measured float32 FMA peak, the reference of the training
 * workloads' peak_fraction, and its effective clock, both printed at the top of `make bench`.
 * The peak: 12 independent chains of vfmadd per thread on THREADS threads (argv[1], default 2),
 * 256-bit (AVX2+FMA) and 512-bit (AVX-512F) when the CPU has them; the faster counts, since a
 * CPU with AVX-512 on 256-bit units (Zen 4) peaks no higher at 512 bits. The clock: a
 * dependent chain of 1-cycle integer adds on one thread, so cycles = adds. Best of 3 each. */
#include <immintrin.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define ITERS 40000000L /* per thread; 12 FMAs each */

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* the asm barriers keep the 12 chains in registers and the loop from being folded */
#define CHAINS(T, FMA, ADD, C)                                                                   \
    T a0 = FMA##_set1_ps(1), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0,     \
      a8 = a0, a9 = a0, a10 = a0, a11 = a0;                                                      \
    const T m = FMA##_set1_ps(0.999999f), c = FMA##_set1_ps(1e-7f);                              \
    for (long i = 0; i < iters; i++) {                                                           \
        a0 = FMA##_fmadd_ps(a0, m, c), a1 = FMA##_fmadd_ps(a1, m, c);                            \
        a2 = FMA##_fmadd_ps(a2, m, c), a3 = FMA##_fmadd_ps(a3, m, c);                            \
        a4 = FMA##_fmadd_ps(a4, m, c), a5 = FMA##_fmadd_ps(a5, m, c);                            \
        a6 = FMA##_fmadd_ps(a6, m, c), a7 = FMA##_fmadd_ps(a7, m, c);                            \
        a8 = FMA##_fmadd_ps(a8, m, c), a9 = FMA##_fmadd_ps(a9, m, c);                            \
        a10 = FMA##_fmadd_ps(a10, m, c), a11 = FMA##_fmadd_ps(a11, m, c);                        \
        __asm__ volatile("" : "+" C(a0), "+" C(a1), "+" C(a2), "+" C(a3), "+" C(a4), "+" C(a5)); \
        __asm__ volatile("" : "+" C(a6), "+" C(a7), "+" C(a8), "+" C(a9), "+" C(a10), "+" C(a11)); \
    }                                                                                            \
    T s = ADD(ADD(ADD(a0, a1), ADD(a2, a3)), ADD(ADD(a4, a5), ADD(a6, a7)));                     \
    s = ADD(s, ADD(ADD(a8, a9), ADD(a10, a11)))

#define X(v) "x"(v)
#define V(v) "v"(v)

__attribute__((target("avx2,fma"), noinline)) static float fma256(long iters) {
    CHAINS(__m256, _mm256, _mm256_add_ps, X);
    return _mm256_cvtss_f32(s);
}

__attribute__((target("avx512f"), noinline)) static float fma512(long iters) {
    CHAINS(__m512, _mm512, _mm512_add_ps, V);
    return _mm512_reduce_add_ps(s);
}

__attribute__((noinline)) static long adds(long iters) {
    long x = 0;
    for (long i = 0; i < iters; i++)
        __asm__ volatile("add $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\tadd $1, %0" : "+r"(x));
    return x;
}

/* best GFLOP/s of 3 runs on `threads` threads (2 FLOPs per lane per FMA) */
static double peak(float (*fn)(long), int lanes, int threads, float *sink) {
    double best = 0;
    for (int rep = 0; rep < 3; rep++) {
        double t0 = now();
#pragma omp parallel num_threads(threads)
        {
            float v = fn(ITERS);
#pragma omp atomic
            *sink += v;
        }
        double g = (double)threads * ITERS * 12 * lanes * 2 / (now() - t0) / 1e9;
        best = g > best ? g : best;
    }
    return best;
}

int main(int argc, char **argv) {
    int threads = argc > 1 ? atoi(argv[1]) : 2;
    if (threads < 1) threads = 2;
    __builtin_cpu_init();
    double dt = 1e30;
    long sink = 0;
    for (int rep = 0; rep < 3; rep++) {
        double t0 = now();
        sink += adds(100000000L);
        dt = now() - t0 < dt ? now() - t0 : dt;
    }
    double ghz = 4e8 / dt / 1e9;
    printf("RESULT name=clock value=%.2f unit=GHz threads=1 sink=%ld\n", ghz, sink & 1);
    float fsink = 0;
    double g = 0;
    const char *isa = "none";
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        g = peak(fma256, 8, threads, &fsink), isa = "avx2";
    if (__builtin_cpu_supports("avx512f")) {
        double g512 = peak(fma512, 16, threads, &fsink);
        if (g512 > g) g = g512, isa = "avx512";
    }
    if (g == 0) {
        printf("NA name=fma_peak reason=no AVX2+FMA on this CPU\n");
        return 0;
    }
    printf("RESULT name=fma_peak value=%.1f unit=GFLOP/s threads=%d isa=%s "
           "flops_per_cycle_per_core=%.1f sink=%d\n",
           g, threads, isa, g / threads / ghz, fsink != fsink);
    return 0;
}
