#!/usr/bin/env bash
# Sanitizer and Valgrind checks of cconv's C code; exits non-zero on any report or test failure.
#   1. A copy of the working tree (tracked and untracked, not ignored files) in a throwaway
#      directory gets its extensions built with CCONV_SANITIZE=1 (setup.py: AddressSanitizer +
#      UndefinedBehaviorSanitizer, with -fno-wrapv so that signed overflow is checked too: the
#      extensions would otherwise inherit CPython's -fwrapv, under which it is defined and never
#      reported), and the whole pytest suite runs on that copy with libasan preloaded (Python
#      itself is not instrumented) and PYTHONMALLOC=malloc (so that ASan sees Python's
#      allocations too), on two pytest-xdist workers when pytest-xdist is installed, with the
#      'sanitize' Hypothesis profile (tests/hypothesis_profiles.py: a quarter of the examples, as
#      the instrumented kernels are several times slower). Every report
#      is written under the log directory, also from the suite's subprocesses; any report fails
#      the run. Leak detection is off there: the
#      interpreter never frees much of its memory, and LeakSanitizer cannot tell that from a
#      kernel's leak. tests/test_leaks.py is left out too: ASan's quarantine of freed memory and
#      its shadow memory make RSS meaningless. (Leaks: test_leaks.py in the normal suite and the
#      Valgrind run below.) libstdc++ is preloaded with libasan so that ASan can intercept C++
#      exceptions thrown by other extensions (matplotlib's).
#   2. Every C-level test program (tests/c/test_*.c, built by tests/c/Makefile from the C files
#      csrc/sources.txt lists) built with ASan + UBSan and run natively, every SIMD micro-kernel
#      path this CPU has included.
#   3. The same programs built plainly and run under Valgrind memcheck (uninitialised reads,
#      invalid accesses, definite leaks), two at a time (Valgrind runs each program's threads on
#      one core). Valgrind has no AVX-512 support, and its CPUID hides AVX-512, so there the tests
#      cover the scalar and AVX2 micro-kernels only.
# The in-place build in the source tree is never touched.
# Usage: tools/sanitize.sh [pytest arguments...]
# Environment: PYTHON (default python3; needs numpy, Cython, setuptools, pytest, hypothesis;
# pytest-xdist optional), CC (default gcc), KEEP=1 keeps the throwaway directory, SKIP_VALGRIND=1
# skips step 3, JOBS (default 2) the pytest workers and the Valgrind runs at a time.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
CC=${CC:-gcc}
WORK=$(mktemp -d /tmp/cconv-sanitize.XXXXXX)
LOGS=$WORK/logs
mkdir -p "$WORK/src" "$WORK/c-asan" "$WORK/c-plain" "$LOGS"
if [ "${KEEP:-0}" = 1 ]; then echo "keeping $WORK"; else trap 'rm -rf "$WORK"' EXIT; fi
step() { printf '\n== %s (%ds)\n' "$1" "$SECONDS"; }
status=0
fail() { echo "FAILED: $1"; status=1; }

# Sanitizer output goes to files (pid-suffixed) under $LOGS. Reports (ASan "ERROR:" or "CHECK
# failed", UBSan "runtime error:") fail the run; ASan's warnings that it returned NULL for an
# absurd allocation (allocator_may_return_null=1: the MemoryError tests ask for petabytes on
# purpose) do not.
show_reports() {
    local files
    files=$(grep -l -E "ERROR: |CHECK failed|runtime error:" "$LOGS"/* 2> /dev/null || true)
    if [ -n "$(ls -A "$LOGS")" ]; then
        echo "sanitizer warnings: $(cat "$LOGS"/* | grep -c WARNING || true) (allocations refused as asked)"
    fi
    [ -z "$files" ] && return 0
    for f in $files; do echo "--- $f"; head -60 "$f"; done
    return 1
}
SAN_ASAN="halt_on_error=1:abort_on_error=0:detect_leaks=0:allocator_may_return_null=1:log_path=$LOGS/asan"
SAN_UBSAN="halt_on_error=1:print_stacktrace=1:log_path=$LOGS/ubsan"

step "copy of the working tree in $WORK/src"
git ls-files -z --cached --others --exclude-standard \
    | tar --null --ignore-failed-read -T - -cf - 2> /dev/null | tar -xf - -C "$WORK/src"

step "build the extensions with CCONV_SANITIZE=1 ($CC)"
(cd "$WORK/src" && CC=$CC CCONV_SANITIZE=1 "$PYTHON" setup.py -q build_ext --inplace --build-temp "$WORK/build" \
    > "$WORK/build.log" 2>&1) || { tail -40 "$WORK/build.log"; exit 1; }
LIBASAN=$($CC -print-file-name=libasan.so)
LIBSTDCXX=$($CC -print-file-name=libstdc++.so)
[ -e "$LIBASAN" ] || { echo "cannot find libasan.so for $CC"; exit 1; }
for so in "$WORK"/src/cconv/_*.so; do
    [ "$(nm -D --undefined-only "$so" | grep -c __asan_)" -gt 0 ] || { echo "$so is not instrumented"; exit 1; }
    [ "$(nm -D --undefined-only "$so" | grep -c __ubsan_handle_mul_overflow)" -gt 0 ] \
        || { echo "$so is not checked for signed overflow (built with -fwrapv?)"; exit 1; }
done
echo "built; preloading $LIBASAN $LIBSTDCXX"

JOBS=${JOBS:-2}
WORKERS=()
if [ "$JOBS" -gt 1 ] && "$PYTHON" -c "import xdist" 2> /dev/null; then WORKERS=(-n "$JOBS"); fi
step "pytest under ASan + UBSan ${WORKERS[*]:+(pytest-xdist ${WORKERS[*]})}"
if (cd "$WORK/src" && LD_PRELOAD="$LIBASAN $LIBSTDCXX" ASAN_OPTIONS=$SAN_ASAN UBSAN_OPTIONS=$SAN_UBSAN PYTHONMALLOC=malloc \
        CCONV_HYPOTHESIS_PROFILE=${CCONV_HYPOTHESIS_PROFILE:-sanitize} \
        "$PYTHON" -m pytest -q -p no:cacheprovider "${WORKERS[@]}" --ignore=tests/test_leaks.py "$@" 2>&1 | tail -15;
        exit "${PIPESTATUS[0]}"); then
    echo "pytest passed"
else
    fail "pytest under the sanitizers"
fi
show_reports || fail "sanitizer reports from the Python suite"
rm -f "$LOGS"/*

TESTS=()
for src in tests/c/test_*.c; do TESTS+=("$(basename "$src" .c)"); done

step "C-level tests under ASan + UBSan: ${TESTS[*]}"
make -s -C tests/c -j"$(nproc)" all OUT="$WORK/c-asan" CC="$CC" CFLAGS="-std=c99 -O1 -g -Wall -Wextra" \
    EXTRA_CFLAGS="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined"
for test in "${TESTS[@]}"; do
    echo "-- $test"
    ASAN_OPTIONS=$SAN_ASAN:detect_leaks=1 UBSAN_OPTIONS=$SAN_UBSAN "$WORK/c-asan/$test" | tail -3 \
        || fail "$test under the sanitizers"
done
show_reports || fail "sanitizer reports from the C-level tests"

if [ "${SKIP_VALGRIND:-0}" != 1 ]; then
    step "C-level tests under Valgrind memcheck"
    command -v valgrind > /dev/null || { echo "valgrind is not installed (apt-get install valgrind)"; exit 1; }
    make -s -C tests/c -j"$(nproc)" all OUT="$WORK/c-plain" CC="$CC" CFLAGS="-std=c99 -O1 -g -Wall -Wextra"
    # JOBS programs at a time, each writing its output and exit status to files
    running=0
    for test in "${TESTS[@]}"; do
        # passive waiting: OpenMP's spinning threads are very slow under Valgrind's serialised threads
        # the micro-kernels' long depths were swept under ASan above; here the short ones suffice
        (OMP_WAIT_POLICY=passive CCONV_SKIP_FORK_TEST=1 CCONV_QUICK_SWEEP=1 valgrind -q --error-exitcode=1 \
            --leak-check=full --errors-for-leak-kinds=definite --log-file="$WORK/valgrind-$test.log" \
            "$WORK/c-plain/$test" > "$WORK/valgrind-$test.out" 2>&1; echo $? > "$WORK/valgrind-$test.status") &
        if [ $((++running)) -ge "$JOBS" ]; then wait -n; running=$((running - 1)); fi
    done
    wait
    for test in "${TESTS[@]}"; do
        echo "-- $test"
        tail -3 "$WORK/valgrind-$test.out"
        if [ "$(cat "$WORK/valgrind-$test.status")" = 0 ]; then
            echo "valgrind: no errors"
        else
            grep -v "^==[0-9]*==    by" "$WORK/valgrind-$test.log" | head -40
            fail "$test under Valgrind"
        fi
    done
fi

step "$([ $status = 0 ] && echo "all sanitizer checks passed" || echo "sanitizer checks FAILED")"
exit $status
