#!/bin/sh
# `make bench`: installs the bench-only packages, builds the C peers into $BUILD/bench and runs
# scripts/bench.py, which prints one `BENCH name=... ratio=...` line per workload (doc/bench.md).
# Env: BUILD (default build), BENCH_ONLY=a,b, BENCH_PEER=0, BENCH_ROUNDS=5, BENCH_TRAIN=1.
set -e
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
# The peer scripts live beside the repository (CI clones the repo with shared/ next to it).
SHARED=${BENCH_SHARED:-$(cd .. && pwd)/shared/bench}
if [ "${BENCH_PEER:-1}" != 0 ]; then
    if [ ! -f "$SHARED/peer_overhead.py" ] || [ ! -f "$SHARED/sgemm.c" ]; then
        echo "bench: the peer scripts are missing: expected $SHARED (../shared/bench beside" \
             "the repository, or BENCH_SHARED=dir); BENCH_PEER=0 runs tide's side alone" >&2
        exit 2
    fi
    scripts/deps.sh scripts/deps-bench.txt
    targets=all
else
    # tide's side alone needs only hyperfine (start-up); the rest is for the peer
    list=$(mktemp)
    trap 'rm -f "$list"' EXIT
    grep -x hyperfine scripts/deps-bench.txt >"$list"
    scripts/deps.sh "$list" || echo "bench: could not install hyperfine; startup will be n/a" >&2
    targets=tide-side
fi
[ -x "$BUILD/tide" ] || { echo "bench: $BUILD/tide is missing; run make BUILD=$BUILD" >&2; exit 2; }
make --no-print-directory -s -f bench/bench.mk BUILD="$BUILD" SHARED="$SHARED" $targets
BUILD="$BUILD" BENCH_SHARED="$SHARED" exec /usr/bin/python3 scripts/bench.py
