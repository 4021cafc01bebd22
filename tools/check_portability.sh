#!/usr/bin/env bash
# Portability of the C kernels in csrc/ (no Python involved): every C-level test program
# (tests/c/test_*.c) is built by tests/c/Makefile (every C file csrc/sources.txt lists, the -ISA.c
# files with their ISA flags on x86-64 targets, as setup.py does) and run:
#   - GCC and Clang, with and without OpenMP, -std=c99 -Wall -Wextra -Werror, natively (the
#     serial builds get -Wno-unknown-pragmas, as in setup.py);
#   - aarch64 cross build (gcc-aarch64-linux-gnu, scalar kernels only), run under qemu-aarch64;
#   - Windows cross build (mingw-w64, linked statically), run under wine where it is installed
#     (apt-get install wine64: not installed by this script, it is large).
# Missing compilers / qemu are installed with apt-get when run as root.
# Usage: tools/check_portability.sh [OUTDIR]    (where the binaries go; default: a temp dir, removed at the end)
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -ge 1 ]; then OUT=$1; else OUT=$(mktemp -d /tmp/cconv-portability.XXXXXX); trap 'rm -rf "$OUT"' EXIT; fi
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)  # make runs in tests/c
FLAGS="-std=c99 -O3 -fno-math-errno -Wall -Wextra -Werror"
TESTS=()
for src in tests/c/test_*.c; do TESTS+=("$(basename "$src" .c)"); done
step() { printf '\n== %s (%ds)\n' "$1" "$SECONDS"; }
failures=()
# run LABEL COMMAND...: run a test binary, show its failures and summary; a failure is recorded
# (all runs still happen) and makes the script exit 1 at the end.
run() {
    local label=$1 out; shift
    echo "-- $label"
    if out=$("$@" 2>&1); then echo "$out" | tail -1; else
        echo "$out" | grep -E "FAIL|passed" || echo "$out" | tail -5
        failures+=("$label")
    fi
}

step "toolchains"
missing=()
need() { command -v "$1" > /dev/null || missing+=("$2"); }
need gcc gcc
need clang clang
need aarch64-linux-gnu-gcc gcc-aarch64-linux-gnu
need x86_64-w64-mingw32-gcc mingw-w64
need qemu-aarch64 qemu-user
[ -e /usr/lib/llvm-"$(clang -dumpversion 2>/dev/null | cut -d. -f1)"/lib/libomp.so ] || missing+=(libomp-dev)
if [ ${#missing[@]} -gt 0 ]; then
    echo "installing: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" > /dev/null
fi
for cc in gcc clang aarch64-linux-gnu-gcc x86_64-w64-mingw32-gcc; do echo "$cc: $($cc --version | head -1)"; done
echo "C-level tests: ${TESTS[*]}"

# build NAME CC "OPENMP-FLAGS" [MAKE-VARIABLE=VALUE...]: every C-level test, built by
# tests/c/Makefile into $OUT/NAME/ (objects there too); warnings are errors.
build() {
    local name=$1 cc=$2 omp=$3; shift 3
    make -s -C tests/c -j"$(nproc)" all OUT="$OUT/$name" CC="$cc" OPENMP="$omp" CFLAGS="$FLAGS" "$@"
    echo "$name: built warning-free ($cc ${omp:-without OpenMP})"
}
# run_tests NAME SUFFIX [RUNNER...]: run every test program of build NAME (file name + SUFFIX),
# under RUNNER when one is given.
run_tests() {
    local name=$1 suffix=$2 test; shift 2
    for test in "${TESTS[@]}"; do run "$name $test" env OMP_NUM_THREADS=3 "$@" "$OUT/$name/$test$suffix"; done
}

step "native x86-64: GCC and Clang, with and without OpenMP"
for cc in gcc clang; do
    build "$cc-openmp" $cc -fopenmp
    build "$cc-serial" $cc ""
    for variant in openmp serial; do run_tests "$cc-$variant" ""; done
done

step "aarch64 cross build, run under qemu-aarch64"
build aarch64-openmp aarch64-linux-gnu-gcc -fopenmp
build aarch64-serial aarch64-linux-gnu-gcc ""
# The fork test is skipped here: qemu-user's own locks are not fork-safe while another guest thread
# runs, so a forked child can hang inside the emulator. The native builds above run it.
for variant in openmp serial; do
    run_tests "aarch64-$variant" "" CCONV_SKIP_FORK_TEST=1 qemu-aarch64 -L /usr/aarch64-linux-gnu
done

step "Windows cross build (mingw-w64)"
# static: the binaries need no MinGW DLLs; no -pthread: Windows builds lock with SRW locks
build windows-openmp x86_64-w64-mingw32-gcc -fopenmp EXE=.exe LDLIBS="-static -lm"
build windows-serial x86_64-w64-mingw32-gcc "" EXE=.exe LDLIBS="-static -lm"
WINE=$(command -v wine64 || command -v wine || ls /usr/lib/wine/wine64 2> /dev/null || true)
if [ -n "$WINE" ]; then
    export WINEDEBUG=-all WINEPREFIX="$OUT/wineprefix"
    for variant in openmp serial; do run_tests "windows-$variant" .exe "$WINE"; done
else
    echo "wine is not installed: the Windows binaries are linked, not run"
fi

if [ ${#failures[@]} -gt 0 ]; then
    step "FAILED: ${failures[*]}"
    exit 1
fi
step "all portability checks passed"
