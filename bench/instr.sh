#!/bin/sh
# bench/instr.sh: instructions per iteration of a bench/loops.lua case, counted by callgrind
# from runs of N and 2N iterations (start-up and warm-up cancel). Timings on the shared machine
# drift by 25% and more; instruction counts do not, so they show what a change saved.
# Usage: bench/instr.sh BUILD CASE [N]   (N = 200000 by default: fewer leave warm-up in)
# BUILD must be built without AVX-512, which valgrind cannot run:
#   make BUILD=build-vg OPT="-O3 -march=x86-64-v3 -g"
set -e
cd "$(dirname "$0")/.."
b=$1 case=$2 n=${3:-200000}
count() {
    OPENBLAS_CORETYPE=Haswell valgrind --tool=callgrind --callgrind-out-file=/dev/null \
        "$b/tide" --threads 1 bench/loops.lua "$case" "$1" 2>&1 |
        sed -n 's/.*refs: *//p' | tr -d ,
}
one=$(count "$n")
two=$(count $((2 * n)))
echo "$case: $(((two - one) / n)) instructions per iteration ($b)"
