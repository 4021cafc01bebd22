#!/usr/bin/env bash
# Build LLVM's OpenMP runtime (libomp) for macOS wheels, for this Mac's architecture and for
# MACOSX_DEPLOYMENT_TARGET, and install it into PREFIX (lib/libomp.dylib, include/omp.h).
#
# Why not Homebrew's libomp: its bottles are built for the runner's own macOS (14, 15, ...), and
# delocate refuses to bundle a library newer than the wheel's deployment target. Building from
# the LLVM release sources with CMAKE_OSX_DEPLOYMENT_TARGET = the wheel's target fixes that.
# cibuildwheel runs this as before-all (see [tool.cibuildwheel.macos] in pyproject.toml), with
# the environment of the architecture it builds; setup.py finds the result through LIBOMP_PREFIX.
# Usage: MACOSX_DEPLOYMENT_TARGET=11.0 tools/build_libomp_macos.sh PREFIX
set -euo pipefail
PREFIX=${1:?usage: $0 PREFIX}
TARGET=${MACOSX_DEPLOYMENT_TARGET:?set MACOSX_DEPLOYMENT_TARGET to the wheels deployment target}
VERSION=19.1.7
OPENMP_SHA256=bd7e6901ab086fd268750363017935fd4a717c153dad3c2aab86cb0140d9e3fe
CMAKE_SHA256=11c5a28f90053b0c43d0dec3d0ad579347fc277199c005206b963c19aae514e3
URL=https://github.com/llvm/llvm-project/releases/download/llvmorg-$VERSION
ARCH=$(uname -m)   # wheels are built on a runner of their own architecture (setup.py picks SIMD files by host)

if [ -f "$PREFIX/lib/libomp.dylib" ]; then echo "libomp already in $PREFIX"; exit 0; fi
WORK=$(mktemp -d)
fetch() {  # fetch NAME SHA256: download NAME-$VERSION.src.tar.xz, check it, unpack it as $WORK/NAME
    curl --fail --location --silent --show-error --retry 3 "$URL/$1-$VERSION.src.tar.xz" -o "$WORK/$1.tar.xz"
    echo "$2  $WORK/$1.tar.xz" | shasum -a 256 --check
    mkdir "$WORK/$1" && tar -xf "$WORK/$1.tar.xz" -C "$WORK/$1" --strip-components=1
}
fetch openmp "$OPENMP_SHA256"
fetch cmake "$CMAKE_SHA256"   # LLVM's shared CMake modules, expected beside openmp/

cmake -S "$WORK/openmp" -B "$WORK/build" \
    -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_INSTALL_PREFIX="$PREFIX" \
    -DCMAKE_OSX_ARCHITECTURES="$ARCH" \
    -DCMAKE_OSX_DEPLOYMENT_TARGET="$TARGET" \
    -DLIBOMP_INSTALL_ALIASES=OFF \
    -DOPENMP_ENABLE_LIBOMPTARGET=OFF \
    -DLIBOMP_OMPD_SUPPORT=OFF \
    -DOPENMP_ENABLE_TESTING=OFF
cmake --build "$WORK/build" --parallel "$(sysctl -n hw.ncpu)"
cmake --install "$WORK/build"
# An absolute install name, so that delocate finds the library without rpath help.
install_name_tool -id "$PREFIX/lib/libomp.dylib" "$PREFIX/lib/libomp.dylib"
otool -l "$PREFIX/lib/libomp.dylib" | grep -A3 LC_BUILD_VERSION || true
echo "libomp $VERSION for $ARCH, macOS >= $TARGET, in $PREFIX"
rm -rf "$WORK"
