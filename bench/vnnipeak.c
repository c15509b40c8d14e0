/* bench/vnnipeak.c: the measured int8 peak of this machine, the reference of bench/infer.lua's
 * qgemm_1024: 12 independent chains of AVX-512 VNNI vpdpbusd (64 u8 x s8 products summed into
 * 16 int32 each, 128 operations) per thread, on THREADS threads (argv[1], default 2).
 * Prints `RESULT name=qgemm_1024 value=GOPS unit=GOPS` so the harness's ratio is the fraction of
 * the peak the GEMM reaches; NA when the CPU has no AVX-512 VNNI. */
#include <immintrin.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define ITERS 20000000L /* per thread; 12 instructions each */

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

#define DP(x) x = _mm512_dpbusd_epi32(x, a, b)
__attribute__((target("avx512f,avx512vnni"), noinline)) static int run(long iters) {
    const __m512i a = _mm512_set1_epi8(3), b = _mm512_set1_epi8(-2);
    __m512i c0 = _mm512_setzero_si512(), c1 = c0, c2 = c0, c3 = c0, c4 = c0, c5 = c0, c6 = c0,
            c7 = c0, c8 = c0, c9 = c0, c10 = c0, c11 = c0;
    for (long i = 0; i < iters; i++) {
        DP(c0), DP(c1), DP(c2), DP(c3), DP(c4), DP(c5);
        DP(c6), DP(c7), DP(c8), DP(c9), DP(c10), DP(c11);
        __asm__ volatile("" : "+v"(c0), "+v"(c1), "+v"(c2), "+v"(c3), "+v"(c4), "+v"(c5));
        __asm__ volatile("" : "+v"(c6), "+v"(c7), "+v"(c8), "+v"(c9), "+v"(c10), "+v"(c11));
    }
    __m512i s = _mm512_add_epi32(_mm512_add_epi32(_mm512_add_epi32(c0, c1), _mm512_add_epi32(c2, c3)),
                                 _mm512_add_epi32(_mm512_add_epi32(c4, c5), _mm512_add_epi32(c6, c7)));
    s = _mm512_add_epi32(s, _mm512_add_epi32(_mm512_add_epi32(c8, c9), _mm512_add_epi32(c10, c11)));
    return _mm512_reduce_add_epi32(s);
}

int main(int argc, char **argv) {
    int threads = argc > 1 ? atoi(argv[1]) : 2;
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx512vnni")) {
        printf("NA name=qgemm_1024 reason=no AVX-512 VNNI on this CPU\n");
        return 0;
    }
    long sink = 0;
    double best = 0;
    for (int rep = 0; rep < 3; rep++) {
        double t0 = now();
#pragma omp parallel num_threads(threads) reduction(+ : sink)
        sink += run(ITERS);
        double gops = (double)threads * ITERS * 12 * 128 / (now() - t0) / 1e9;
        best = gops > best ? gops : best;
    }
    printf("RESULT name=qgemm_1024 value=%.1f unit=GOPS threads=%d sink=%ld\n", best, threads,
           sink & 1);
    return 0;
}
