"""Tests of what an installed cconv (a wheel above all) must carry.

show_config() reports OpenMP and the SIMD paths; threadpoolctl sees cconv's OpenMP runtime (the
copy vendored into the wheel, when there is one) and threadpool_limits(1) limits it; the only
runtime dependency is NumPy; on free-threaded CPython, importing cconv leaves the GIL disabled.
"""
import glob
import importlib.metadata
import os
import platform
import re
import shutil
import subprocess
import sys
import sysconfig

import pytest

import cconv
from cconv import _config, _conv

OPENMP = bool(_conv.openmp_version())
needs_openmp = pytest.mark.skipif(not OPENMP, reason="serial build (no OpenMP)")


def vendored_openmp_runtimes():
    """OpenMP runtimes that a wheel repair tool copied next to the package (none in a source build):
    auditwheel / delvewheel put them in cconv.libs/, delocate in cconv/.dylibs/."""
    package = os.path.dirname(os.path.abspath(cconv.__file__))
    patterns = [os.path.join(os.path.dirname(package), "cconv.libs", "*"), os.path.join(package, ".dylibs", "*")]
    found = [path for pattern in patterns for path in glob.glob(pattern)]
    return [path for path in found if re.match(r"(lib)?(gomp|omp|iomp5|vcomp)", os.path.basename(path))]


def openmp_pools():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    return [pool for pool in threadpoolctl.threadpool_info() if pool["user_api"] == "openmp"]


def same_file(a, b):
    return os.path.exists(a) and os.path.exists(b) and os.path.samefile(a, b)


def test_show_config_reports_openmp_and_simd(capsys):
    cconv.show_config()
    text = capsys.readouterr().out
    info = _config.config()
    assert info["openmp"].startswith("yes" if OPENMP else "no")
    built = info["simd_built"].split(",")
    assert "scalar" in built
    assert info["simd_selected"].split()[0] in built
    if platform.machine().lower() in ("x86_64", "amd64"):
        assert {"avx2", "avx512"} <= set(built), "x86-64 builds must carry the run-time dispatched kernels"
    for key, value in info.items():
        assert f"{key:>14}: {value}" in text


@needs_openmp
def test_threadpoolctl_sees_cconvs_openmp_runtime():
    pools = openmp_pools()
    assert pools, "threadpoolctl finds no OpenMP runtime although cconv was built with OpenMP"
    for runtime in vendored_openmp_runtimes():
        assert any(same_file(pool["filepath"], runtime) for pool in pools), (runtime, pools)


@needs_openmp
def test_threadpool_limits_limits_cconv():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    cconv.set_num_threads(None)
    before = cconv.get_num_threads()
    with threadpoolctl.threadpool_limits(limits=1, user_api="openmp"):
        assert cconv.get_num_threads() == 1
        vendored = vendored_openmp_runtimes()
        for pool in openmp_pools():
            if any(same_file(pool["filepath"], runtime) for runtime in vendored):
                assert pool["num_threads"] == 1
    assert cconv.get_num_threads() == before


def test_numpy_is_the_only_runtime_dependency():
    try:
        requires = importlib.metadata.requires("cconv") or []
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("cconv is not installed as a distribution (in-place build)")
    runtime = [r for r in requires if "extra ==" not in r]
    assert [re.split(r"[<>=!~;\[ ]", r, maxsplit=1)[0].lower() for r in runtime] == ["numpy"], runtime


@pytest.mark.skipif(not sysconfig.get_config_var("Py_GIL_DISABLED"), reason="not a free-threaded CPython")
def test_import_keeps_the_gil_disabled():
    env = {k: v for k, v in os.environ.items() if k != "PYTHON_GIL"}
    code = "import sys, cconv; print(sys._is_gil_enabled())"
    out = subprocess.run([sys.executable, "-W", "error::RuntimeWarning", "-c", code],
                         env=env, capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def source_copy(root, with_setup_py):
    """A copy of the cconv package's Python files (no compiled extensions) under root, as a
    source checkout (with setup.py beside it) or as a broken installation."""
    package = os.path.dirname(os.path.abspath(cconv.__file__))
    shutil.copytree(package, os.path.join(root, "cconv"),
                    ignore=shutil.ignore_patterns("*.so", "*.pyd", "__pycache__", "*.c", "*.html"))
    if with_setup_py:
        with open(os.path.join(root, "setup.py"), "w") as f:
            f.write("# a source checkout\n")


def import_error(cwd):
    done = subprocess.run([sys.executable, "-c", "import cconv"], cwd=cwd, capture_output=True,
                          text=True, env={**os.environ, "PYTHONPATH": str(cwd)})
    assert done.returncode != 0
    return done.stderr.strip().splitlines()[-1]


def test_importing_from_the_source_folder_says_what_to_do(tmp_path):
    source_copy(tmp_path, with_setup_py=True)
    message = import_error(tmp_path)
    assert message.startswith("ImportError: you are importing cconv from its source folder")
    assert "Run Python from another folder" in message and "pip install -e ." in message
    assert "partially initialized" not in message


def test_an_installation_without_its_extensions_says_to_reinstall(tmp_path):
    source_copy(tmp_path, with_setup_py=False)
    message = import_error(tmp_path)
    assert "cannot be loaded" in message and "reinstall cconv" in message
