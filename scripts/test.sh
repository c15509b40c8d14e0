#!/bin/sh
# Runs the C suite (Criterion) and the Lua suite (busted under lua5.4) and ends with one line
# "N passed, N failed"; exits non-zero when anything failed. T=pattern runs a subset.
# SANITIZE=1 (make check) runs against the ASan build.
BUILD=${BUILD:-build}
cd "$(dirname "$0")/.." || exit 2
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
if [ -n "$SANITIZE" ]; then
    # Leaks are checked on the C suite, which frees everything it makes. Lua processes that
    # end with os.exit() never close their state (Lua's documented default), so their tensors
    # are unreleased at exit by design: the Lua suite checks memory by peak RSS instead.
    export ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1
    # lua5.4 is not instrumented: the sanitizer runtime must be loaded first
    export LD_PRELOAD="$(gcc -print-file-name=libasan.so) $(gcc -print-file-name=libubsan.so)"
    export TIDE_NO_CACHE=1
fi

gfail=0
scripts/sz.sh || gfail=1   # the 800-line gate counts as a failed check

cpass=0 cfail=0
if [ -x "$BUILD/test_c" ]; then
    filter=""
    [ -n "$T" ] && filter="--filter=*$T*/*"
    LD_PRELOAD= ASAN_OPTIONS=${ASAN_OPTIONS:+detect_leaks=1:abort_on_error=1} \
        "$BUILD/test_c" -j2 $filter >"$out/c.log" 2>&1
    crc=$?
    tail -n 25 "$out/c.log" | grep -v '^\[----\]' | grep -E 'FAIL|CRASH|Assertion|Synthesis|Warning' || true
    line=$(grep 'Synthesis' "$out/c.log" | tail -1)
    cpass=$(echo "$line" | sed -n 's/.*Passing: \([0-9]*\).*/\1/p')
    cf=$(echo "$line" | sed -n 's/.*Failing: \([0-9]*\).*/\1/p')
    cc=$(echo "$line" | sed -n 's/.*Crashing: \([0-9]*\).*/\1/p')
    cpass=${cpass:-0}
    cfail=$(( ${cf:-0} + ${cc:-0} ))
    [ -z "$line" ] && cfail=$((cfail + 1)) && cat "$out/c.log"
    [ $crc -ne 0 ] && [ $cfail -eq 0 ] && cfail=1
    echo "C suite: $cpass passed, $cfail failed"
fi

export TIDE_BUILD="$BUILD"
export LUA_PATH="stdlib/?.lua;stdlib/?/init.lua;tests/lua/?.lua;;"
export LUA_CPATH="$BUILD/lua/?.so;;"
filter=""
[ -n "$T" ] && filter="--filter=$T"
lua5.4 /usr/bin/busted -o utfTerminal $filter tests/lua >"$out/lua.log" 2>&1
lrc=$?
# the failure reports follow busted's summary line
sed -n '/[0-9]* success/,$p' "$out/lua.log" | head -n 400
line=$(grep -E '[0-9]+ success' "$out/lua.log" | tail -1)
lpass=$(echo "$line" | sed -n 's/^[^0-9]*\([0-9]*\) success.*/\1/p')
lf=$(echo "$line" | sed -n 's/.* \([0-9]*\) failure.*/\1/p')
le=$(echo "$line" | sed -n 's/.* \([0-9]*\) error.*/\1/p')
lpass=${lpass:-0}
lfail=$(( ${lf:-0} + ${le:-0} ))
[ -z "$line" ] && lfail=$((lfail + 1))
[ $lrc -ne 0 ] && [ $lfail -eq 0 ] && lfail=1
echo "Lua suite: $lpass passed, $lfail failed"

# the Jupyter kernel, driven by Debian's jupyter_client (tests/jupyter/)
jpass=0 jfail=0
if [ -z "$T" ] || echo "jupyter kernel" | grep -q -- "$T"; then
    LD_PRELOAD= /usr/bin/python3 tests/jupyter/test_kernel.py "$BUILD" >"$out/jupyter.log" 2>&1
    jrc=$?
    grep -A12 '^FAIL' "$out/jupyter.log" | head -n 80
    line=$(grep -E '^jupyter: [0-9]+ passed' "$out/jupyter.log" | tail -1)
    jpass=$(echo "$line" | sed -n 's/^jupyter: \([0-9]*\) passed.*/\1/p')
    jfail=$(echo "$line" | sed -n 's/.* \([0-9]*\) failed.*/\1/p')
    jpass=${jpass:-0} jfail=${jfail:-0}
    [ -z "$line" ] && jfail=1 && tail -n 30 "$out/jupyter.log"
    [ $jrc -ne 0 ] && [ $jfail -eq 0 ] && jfail=1
    echo "Jupyter kernel: $jpass passed, $jfail failed"
fi

passed=$((cpass + lpass + jpass)) failed=$((cfail + lfail + gfail + jfail))
echo "$passed passed, $failed failed"
[ $failed -eq 0 ]
