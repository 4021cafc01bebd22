#!/usr/bin/env bash
# Portability of the C kernels in csrc/ (no Python involved):
#   - GCC and Clang, with and without OpenMP, -std=c99 -Wall -Wextra -Werror, build and run the
#     C-level tests natively (x86-64: the AVX2 / AVX-512 files get their own ISA flags, as in
#     setup.py; the serial builds add -Wno-unknown-pragmas, as setup.py does);
#   - aarch64 cross build (gcc-aarch64-linux-gnu, scalar kernels only), run under qemu-aarch64;
#   - Windows cross build (mingw-w64, linked statically), run under wine where it is installed
#     (apt-get install wine64: not installed by this script, it is large).
# The C-level tests are tests/c/test_kernels.c.
# Missing compilers / qemu are installed with apt-get when run as root.
# Usage: tools/check_portability.sh [OUTDIR]    (where the binaries go; default: a temp dir, removed at the end)
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -ge 1 ]; then OUT=$1; else OUT=$(mktemp -d /tmp/cconv-portability.XXXXXX); trap 'rm -rf "$OUT"' EXIT; fi
mkdir -p "$OUT"
FLAGS="-std=c99 -O3 -fno-math-errno -Wall -Wextra -Werror -Icsrc"
# Every csrc/*.c; as in setup.py, *_avx2.c / *_avx512.c get their ISA flags and are x86-64 only.
SOURCES=()
for src in csrc/*.c; do case $src in *_avx2.c | *_avx512.c) ;; *) SOURCES+=("$src") ;; esac; done
AVX2="-mavx2 -mfma"
AVX512="-mavx512f -mavx512bw -mavx512dq -mavx512vl -mfma"
TEST=tests/c/test_kernels.c
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
echo "C-level tests: $TEST"

# build NAME CC "OPENMP-FLAGS" x86|plain [LINK-FLAGS]: compile csrc/ and the tests into $OUT/NAME;
# warnings are errors.
build() {
    local name=$1 cc=$2 omp=$3 arch=$4 link=${5:-} extra=() defs=()
    [ -n "$omp" ] || omp="-Wno-unknown-pragmas"
    if [ "$arch" = x86 ]; then
        for src in csrc/*_avx2.c csrc/*_avx512.c; do
            local isa=${src##*_}; isa=${isa%.c}; local flags=$AVX2
            [ "$isa" = avx512 ] && flags=$AVX512
            $cc $FLAGS $omp $flags -c "$src" -o "$OUT/$name-$(basename "$src" .c).o"
            extra+=("$OUT/$name-$(basename "$src" .c).o")
        done
        defs=(-DCCONV_HAVE_AVX2 -DCCONV_HAVE_AVX512)
    fi
    [ -n "$link" ] || link=-pthread  # the workspace pool's lock (Windows builds use an SRW lock)
    $cc $FLAGS $omp "${defs[@]}" "${SOURCES[@]}" "$TEST" "${extra[@]}" $link -lm -o "$OUT/$name"
    echo "$name: built warning-free ($cc $omp)"
}

step "native x86-64: GCC and Clang, with and without OpenMP"
for cc in gcc clang; do
    build "$cc-openmp" $cc -fopenmp x86
    build "$cc-serial" $cc "" x86
    for variant in openmp serial; do run "$cc-$variant" env OMP_NUM_THREADS=3 "$OUT/$cc-$variant"; done
done

step "aarch64 cross build, run under qemu-aarch64"
build aarch64-openmp aarch64-linux-gnu-gcc -fopenmp plain
build aarch64-serial aarch64-linux-gnu-gcc "" plain
for variant in openmp serial; do
    run "aarch64-$variant (qemu)" env OMP_NUM_THREADS=3 qemu-aarch64 -L /usr/aarch64-linux-gnu "$OUT/aarch64-$variant"
done

step "Windows cross build (mingw-w64)"
build windows-openmp.exe x86_64-w64-mingw32-gcc -fopenmp x86 -static
build windows-serial.exe x86_64-w64-mingw32-gcc "" x86 -static
WINE=$(command -v wine64 || command -v wine || ls /usr/lib/wine/wine64 2> /dev/null || true)
if [ -n "$WINE" ]; then
    export WINEDEBUG=-all WINEPREFIX="$OUT/wineprefix"
    for variant in openmp serial; do run "windows-$variant (wine)" env OMP_NUM_THREADS=3 "$WINE" "$OUT/windows-$variant.exe"; done
else
    echo "wine is not installed: the Windows binaries are linked, not run"
fi

if [ ${#failures[@]} -gt 0 ]; then
    step "FAILED: ${failures[*]}"
    exit 1
fi
step "all portability checks passed"
