"""Build script for cconv's C extensions.

Every extension compiles plain C99 from csrc/ plus one Cython wrapper. OpenMP is probed by
compiling a tiny program; when the compiler has none, cconv builds serial code and warns
(set CCONV_REQUIRE_OPENMP=1 to make that an error, as CI does). Files named *_avx2.c or
*_avx512.c get their own ISA flags so that one binary runs on any x86-64 CPU and picks the
wide kernels at run time. CCONV_SANITIZE=1 builds with AddressSanitizer and UBSan.
"""
import glob
import os
import platform
import shutil
import sys
import tempfile
import warnings

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

GCC_ISA_FLAGS = {
    "_avx2.c": ["-mavx2", "-mfma"],
    "_avx512.c": ["-mavx512f", "-mavx512bw", "-mavx512dq", "-mavx512vl", "-mfma"],
}
MSVC_ISA_FLAGS = {"_avx2.c": ["/arch:AVX2"], "_avx512.c": ["/arch:AVX512"]}

OPENMP_PROBE = r"""
#include <omp.h>
int main(void) { int n = 0;
#pragma omp parallel reduction(+:n)
    n += 1;
    return n > 0 ? 0 : 1; }
"""


def is_x86_64():
    return platform.machine().lower() in ("x86_64", "amd64", "x64")


def try_compile(compiler, code, compile_args, link_args):
    """True when `code` compiles and links with the given flags."""
    tmp = tempfile.mkdtemp(prefix="cconv-probe-")
    try:
        src = os.path.join(tmp, "probe.c")
        with open(src, "w") as f:
            f.write(code)
        objects = compiler.compile([src], output_dir=tmp, extra_postargs=compile_args)
        compiler.link_executable(objects, "probe", output_dir=tmp, extra_postargs=link_args)
        return True
    except Exception:
        return False
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def openmp_flags(compiler):
    """(compile_args, link_args) that enable OpenMP, or None when the compiler has none."""
    if os.environ.get("CCONV_DISABLE_OPENMP") == "1":
        return None
    if compiler.compiler_type == "msvc":
        return ["/openmp"], []
    candidates = [(["-fopenmp"], ["-fopenmp"])]
    if sys.platform == "darwin":  # Apple Clang needs libomp (brew install libomp)
        for prefix in (os.environ.get("LIBOMP_PREFIX", ""), "/opt/homebrew/opt/libomp", "/usr/local/opt/libomp"):
            if prefix:
                candidates.append((["-Xpreprocessor", "-fopenmp", "-I" + prefix + "/include"],
                                   ["-L" + prefix + "/lib", "-lomp"]))
    for cflags, lflags in candidates:
        if try_compile(compiler, OPENMP_PROBE, cflags, lflags):
            return cflags, lflags
    return None


class BuildExt(build_ext):
    def build_extensions(self):
        msvc = self.compiler.compiler_type == "msvc"
        base = ["/O2"] if msvc else ["-O3", "-fno-math-errno", "-Wall", "-Wextra", "-Wno-unused-function", "-pthread"]
        link = [] if msvc else ["-pthread"]  # the workspace pool's lock (csrc/workspace.c)
        if os.environ.get("CCONV_SANITIZE") == "1" and not msvc:
            base += ["-fsanitize=address,undefined", "-fno-omit-frame-pointer", "-O1", "-g"]
            link += ["-fsanitize=address,undefined"]
        omp = openmp_flags(self.compiler)
        if omp is None:
            message = ("cconv: the C compiler has no usable OpenMP; building single-threaded kernels. "
                       "Install an OpenMP runtime (libgomp / libomp) for multi-threading.")
            if os.environ.get("CCONV_REQUIRE_OPENMP") == "1":
                raise RuntimeError(message)
            warnings.warn(message)
            print("WARNING: " + message)
            if not msvc:
                base.append("-Wno-unknown-pragmas")
        else:
            base += omp[0]
            link += omp[1]
        for ext in self.extensions:
            ext.extra_compile_args = base + ext.extra_compile_args
            ext.extra_link_args = link + ext.extra_link_args
        self._add_isa_flags(msvc)
        super().build_extensions()

    def _add_isa_flags(self, msvc):
        """Compile *_avx2.c / *_avx512.c with their own ISA flags (x86-64 only)."""
        table = MSVC_ISA_FLAGS if msvc else GCC_ISA_FLAGS
        compiler = self.compiler
        if msvc:
            original = compiler.compile

            def compile_msvc(sources, *args, **kwargs):
                plain = [s for s in sources if not any(s.endswith(k) for k in table)]
                objects = original(plain, *args, **kwargs) if plain else []
                for suffix, flags in table.items():
                    picked = [s for s in sources if s.endswith(suffix)]
                    if picked:
                        kw = dict(kwargs)
                        kw["extra_postargs"] = list(kw.get("extra_postargs") or []) + flags
                        objects += original(picked, *args, **kw)
                return objects

            compiler.compile = compile_msvc
            return
        original = compiler._compile

        def compile_one(obj, src, ext, cc_args, extra_postargs, pp_opts):
            extra = list(extra_postargs)
            for suffix, flags in table.items():
                if src.endswith(suffix):
                    extra += flags
            return original(obj, src, ext, cc_args, extra, pp_opts)

        compiler._compile = compile_one


def isa_variants(stem):
    """(sources, macros) of the run-time dispatched SIMD variants of a kernel file, on x86-64."""
    if not is_x86_64():
        return [], []
    found = [(f"csrc/{stem}_{isa}.c", ("CCONV_HAVE_" + isa.upper(), "1")) for isa in ("avx2", "avx512")]
    found = [(src, macro) for src, macro in found if os.path.exists(src)]
    return [src for src, _ in found], [macro for _, macro in found]


HEADERS = sorted(glob.glob("csrc/*.h"))  # rebuild when a header changes
gemm_sources, gemm_macros = isa_variants("gemm")
extensions = [
    Extension("cconv._conv",
              ["cconv/_conv.pyx", "csrc/conv2d.c", "csrc/dense.c", "csrc/gemm.c", "csrc/cpu_features.c",
               "csrc/workspace.c"] + gemm_sources,
              include_dirs=["csrc"], define_macros=gemm_macros, depends=HEADERS),
    Extension("cconv._pool", ["cconv/_pool.pyx", "csrc/pool2d.c"], include_dirs=["csrc"], depends=HEADERS),
]

if __name__ == "__main__":
    from Cython.Build import cythonize

    setup(ext_modules=cythonize(extensions, language_level=3,
                                compiler_directives={"boundscheck": False, "wraparound": False,
                                                     "freethreading_compatible": True}),
          cmdclass={"build_ext": BuildExt})
