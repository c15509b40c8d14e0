# bench/bench.mk: the C side of `make bench`, built into $(BUILD)/bench by scripts/bench.sh:
# the plain C loops (baseline.c), the raw MPI_Allreduce (allreduce.c), the shared sgemm.c
# against the OpenMP OpenBLAS tide links, the Lua wall clock the tide-side scripts load, the
# peak-RSS launcher (rusage.c), the float32 FMA peak and clock probe (fmapeak.c) and the int8
# peak probe (vnnipeak.c).
BUILD   ?= build
SHARED  ?= ../shared/bench
CC      ?= cc
BLASDIR := /usr/lib/x86_64-linux-gnu/openblas-openmp
BLASINC := /usr/include/x86_64-linux-gnu/openblas-openmp
OUT     := $(BUILD)/bench

all: tide-side $(OUT)/sgemm $(OUT)/vnnipeak
tide-side: $(OUT)/baseline $(OUT)/benchclock.so $(OUT)/rusage $(OUT)/allreduce $(OUT)/fmapeak

$(OUT)/baseline: bench/baseline.c
	@mkdir -p $(OUT)
	$(CC) -O3 -march=native -fopenmp -Wall -Wextra -o $@ $<

$(OUT)/rusage: bench/rusage.c
	@mkdir -p $(OUT)
	$(CC) -O2 -Wall -Wextra -o $@ $<

$(OUT)/benchclock.so: bench/clock.c
	@mkdir -p $(OUT)
	$(CC) -O2 -fPIC -shared -Wall -Wextra -I/usr/include/lua5.4 -o $@ $<

# the raw MPI_Allreduce that allreduce_10m compares dist.allreduce with
$(OUT)/allreduce: bench/allreduce.c
	@mkdir -p $(OUT)
	mpicc -O2 -Wall -Wextra -o $@ $<

$(OUT)/sgemm: $(SHARED)/sgemm.c
	@mkdir -p $(OUT)
	$(CC) -O2 -I$(BLASINC) -o $@ $< -L$(BLASDIR) -Wl,-rpath,$(BLASDIR) -lopenblas -fopenmp -lm

# no -march: the probe picks its ISAs at run time, so one build measures any x86-64 CPU
$(OUT)/fmapeak: bench/fmapeak.c
	@mkdir -p $(OUT)
	$(CC) -O2 -fopenmp -Wall -Wextra -o $@ $<

$(OUT)/vnnipeak: bench/vnnipeak.c
	@mkdir -p $(OUT)
	$(CC) -O2 -fopenmp -Wall -Wextra -o $@ $<

.PHONY: all tide-side
