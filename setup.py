"""Build script for cconv's C extensions.

Each extension cconv.MODULE is the Cython wrapper cconv/MODULE.pyx plus the C files that
csrc/sources.txt lists for MODULE: the one list of C sources and ISA flags, which tests/c and
benchmarks build from too (its format is described at its top). A file named *-ISA.c (ISA: a
name of the manifest's `isa` lines, avx2 and avx512) is compiled only for x86-64, with that ISA's
flags on top of the common ones, and linked into its extension as an extra object; every compile
of an x86-64 build defines CCONV_HAVE_<ISA>. So one binary runs on any x86-64 CPU and picks the
wide kernels at run time. OpenMP is probed by compiling a tiny program; when the compiler has
none, cconv builds serial code and warns (CCONV_REQUIRE_OPENMP=1 makes that an error, as CI
does; CCONV_DISABLE_OPENMP=1 builds serial code on purpose). CCONV_SANITIZE=1 builds with
AddressSanitizer and UBSan, signed overflow included (-fno-wrapv).
"""
import glob
import os
import shutil
import sys
import sysconfig
import tempfile
import warnings

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext
from setuptools.modified import newer_group

MANIFEST = "csrc/sources.txt"

OPENMP_PROBE = r"""
#include <omp.h>
int main(void) { int n = 0;
#pragma omp parallel reduction(+:n)
    n += 1;
    return n > 0 ? 0 : 1; }
"""


def read_manifest(path=MANIFEST):
    """({module: [C files]}, {isa: {"gcc" | "msvc": [flags]}}) from csrc/sources.txt. Stops on a
    line it cannot read, a listed file that is missing, and a C file under csrc/ listed in no
    module or in two."""
    modules, isas = {}, {}
    with open(path) as f:
        for number, line in enumerate(f, 1):
            words = line.split("#", 1)[0].split()
            if not words:
                continue
            if words[0] == "source" and len(words) >= 3:
                for entry in words[2:]:
                    found = sorted(p.replace("\\", "/") for p in glob.glob("csrc/" + entry))
                    if not found and not any(c in entry for c in "*?["):
                        sys.exit(f"{path}:{number}: csrc/{entry} does not exist")
                    modules.setdefault(words[1], []).extend(found)
            elif words[0] == "isa" and len(words) >= 3:
                isas.setdefault(words[1], {})[words[2]] = words[3:]
            else:
                sys.exit(f"{path}:{number}: not a `source` or `isa` line: {line.strip()!r}")
    listed = [src for files in modules.values() for src in files]
    on_disk = {p.replace("\\", "/") for p in glob.glob("csrc/**/*.c", recursive=True)}
    unlisted = sorted(on_disk - set(listed))
    if unlisted:
        sys.exit(f"{path}: {' '.join(unlisted)} in no module; add a `source` line for it")
    twice = sorted({src for src in listed if listed.count(src) > 1})
    if twice:
        sys.exit(f"{path}: {' '.join(twice)} in more than one module")
    return modules, isas


def isa_of(source, isas):
    """The ISA a *-ISA.c file is written for; None for a portable file."""
    return next((isa for isa in isas if source.endswith(f"-{isa}.c")), None)


def building_for_x86_64():
    """True when the extensions are built for x86-64. sysconfig's platform is the target's, also
    when cibuildwheel cross-compiles (macOS arm64 <-> x86_64)."""
    return sysconfig.get_platform().lower().endswith(("x86_64", "amd64"))


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
    """build_ext with cconv's common flags (optimisation, warnings, OpenMP, sanitizers) on every
    compile and link, and each extension's *-ISA.c files compiled with their ISA's flags."""

    def build_extensions(self):
        msvc = self.compiler.compiler_type == "msvc"
        base = ["/O2"] if msvc else ["-O3", "-fno-math-errno", "-Wall", "-Wextra", "-Wno-unused-function", "-pthread"]
        link = [] if msvc else ["-pthread"]  # the memory pools' locks (csrc/workspace.c, csrc/buffer_cache.c)
        if os.environ.get("CCONV_SANITIZE") == "1" and not msvc:
            # -fno-wrapv undoes the -fwrapv that extensions inherit from CPython's flags (these come
            # after them), under which signed overflow is defined and UBSan never checks it
            sanitizers = "-fsanitize=address,undefined,signed-integer-overflow"
            base += [sanitizers, "-fno-wrapv", "-fno-omit-frame-pointer", "-O1", "-g"]
            link += [sanitizers]
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
        super().build_extensions()

    def build_extension(self, ext):
        """Compile the extension's *-ISA.c files, each with its ISA's flags added to the
        extension's own, and link the objects into it; then build it as usual. Like build_ext,
        it skips an extension that is newer than its sources and depends."""
        by_isa = ISA_SOURCES.get(ext.name, {})
        target = self.get_ext_fullpath(ext.name)
        if by_isa and (self.force or newer_group(list(ext.sources) + list(ext.depends), target, "newer")):
            flavour = "msvc" if self.compiler.compiler_type == "msvc" else "gcc"
            for isa, sources in by_isa.items():
                if flavour not in ISAS[isa]:
                    sys.exit(f"{MANIFEST}: no `isa {isa} {flavour}` line, needed by the {self.compiler.compiler_type} "
                             "compiler")
                ext.extra_objects = list(ext.extra_objects) + self.compiler.compile(
                    sources, output_dir=self.build_temp, macros=ext.define_macros, include_dirs=ext.include_dirs,
                    debug=self.debug, extra_postargs=ext.extra_compile_args + ISAS[isa][flavour],
                    depends=ext.depends)
        super().build_extension(ext)


MODULES, ISAS = read_manifest()
X86_64 = building_for_x86_64()
HEADERS = sorted(p.replace("\\", "/") for p in glob.glob("csrc/**/*.h", recursive=True))  # rebuild when one changes
ISA_SOURCES = {}  # extension name -> {isa: [its *-ISA.c files]}, on x86-64; compiled by BuildExt.build_extension
extensions = []
for module, files in MODULES.items():
    name = "cconv." + module
    ISA_SOURCES[name] = {}
    if X86_64:
        for src in files:
            if isa_of(src, ISAS):
                ISA_SOURCES[name].setdefault(isa_of(src, ISAS), []).append(src)
    portable = [src for src in files if isa_of(src, ISAS) is None]
    isa_files = [src for sources in ISA_SOURCES[name].values() for src in sources]
    macros = [("CCONV_HAVE_" + isa.upper(), "1") for isa in ISAS] if X86_64 else []
    extensions.append(Extension(name, [f"cconv/{module}.pyx"] + portable, include_dirs=["csrc"],
                                define_macros=macros, depends=HEADERS + isa_files + [MANIFEST]))

if __name__ == "__main__":
    from Cython.Build import cythonize

    setup(ext_modules=cythonize(extensions, language_level=3,
                                compiler_directives={"boundscheck": False, "wraparound": False,
                                                     "freethreading_compatible": True}),
          cmdclass={"build_ext": BuildExt})
