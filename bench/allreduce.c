/* bench/allreduce.c: the raw MPI side of allreduce_10m (bench/allreduce.lua's peer): in-place
 * MPI_Allreduce (MPI_SUM) of N float32, timed as the tide side is: 3 warm-up calls, then the
 * median of 7 samples of 5 calls; GB/s = 4 N bytes per call per second. Rank 0 reports.
 * Usage: mpirun -np 2 [--mca btl self,tcp] allreduce [N] */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    int n = argc > 1 ? atoi(argv[1]) : 10000000;
    float *g = malloc(sizeof *g * (size_t)n);
    for (int i = 0; i < n; i++) g[i] = 1;
    for (int w = 0; w < 3; w++) MPI_Allreduce(MPI_IN_PLACE, g, n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
    double secs[7];
    for (int s = 0; s < 7; s++) {
        MPI_Barrier(MPI_COMM_WORLD);
        double t0 = MPI_Wtime();
        for (int k = 0; k < 5; k++)
            MPI_Allreduce(MPI_IN_PLACE, g, n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
        secs[s] = (MPI_Wtime() - t0) / 5;
    }
    qsort(secs, 7, sizeof secs[0], cmp);
    if (rank == 0)
        printf("RESULT name=allreduce_10m value=%.6g unit=GB/s elements=%d ranks=%d ms=%.2f\n",
               4.0 * n / secs[3] / 1e9, n, size, secs[3] * 1000);
    free(g);
    MPI_Finalize();
    return 0;
}
